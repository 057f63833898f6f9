"""The storage listener (C-STORE SCP, plus C-ECHO), hardened for an untrusted network.

- Off unless started; bound to 127.0.0.1 unless the caller passes another address.
- Only configured peers: the calling AE title must be one of theirs (A-ASSOCIATE-RJ otherwise)
  and the connection must come from that peer's host (closed at once otherwise).
- Bounded: at most ``max_associations`` at once; our maximum PDU is advertised and any PDU
  that declares more than it is refused before reading it (pynetdicom itself would read any
  declared length, up to 4 GiB, into memory); data sets are streamed to temporary files
  (pynetdicom's chunked mode), never held whole in memory; a peer that sends nothing, or
  stops halfway through a PDU, is cut off after ``timeout`` seconds.
- Files are named by ``ReceivedStore`` (clock + uuid4), never from a dataset value, and handed
  to ``on_received`` (which indexes them) only once complete, renamed into place, and the
  association that carried them has ended.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medview.core.errors import PacsError
from medview.pacs.dimse import configure_pynetdicom, sop_uid, transfer_syntaxes
from medview.pacs.nodes import check_ae_title
from medview.pacs.store import ReceivedStore

log = logging.getLogger(__name__)

# an A-ASSOCIATE-RQ with many contexts is larger than a small data PDU; nothing legitimate
# comes near this
_MIN_PDU_ALLOWANCE = 64 * 1024


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str


@dataclass(frozen=True)
class ListenerSettings:
    ae_title: str = "MEDVIEW"
    port: int = 11112
    host: str = "127.0.0.1"  # "0.0.0.0" only when the user opts in to remote senders
    peers: tuple[Peer, ...] = ()
    max_associations: int = 4
    max_pdu: int = 256 * 1024
    timeout: float = 30.0


def _bounded_handler(max_pdu: int, timeout: float, hosts: set[str]) -> Any:
    """pynetdicom's request handler with a host check and a socket that refuses oversized
    PDUs and stalls."""
    from pynetdicom.transport import AssociationSocket, RequestHandler

    limit = max(max_pdu, _MIN_PDU_ALLOWANCE)

    class BoundedSocket(AssociationSocket):
        def recv(self, nr_bytes: int) -> bytearray:
            if nr_bytes > limit:
                # the DUL treats OSError as "connection closed": it aborts this association
                raise OSError(f"peer declared a {nr_bytes}-byte PDU (limit {limit})")
            if self.socket is not None:
                self.socket.settimeout(timeout)
            return super().recv(nr_bytes)

    class BoundedRequestHandler(RequestHandler):
        def handle(self) -> None:
            if self.client_address[0] not in hosts:
                log.warning("storage listener: refused a connection from an unknown host")
                with contextlib.suppress(OSError):
                    self.request.shutdown(socket.SHUT_RDWR)
                return
            super().handle()

        def _create_association(self) -> Any:
            assoc = super()._create_association()
            # same object and state, bounded reads (a second socket would queue a second
            # "connection open" event)
            assoc.dul.socket.__class__ = BoundedSocket
            return assoc

    return BoundedRequestHandler


class StorageListener:
    """Receives instances from configured peers into a ``ReceivedStore``."""

    def __init__(
        self,
        settings: ListenerSettings,
        store: ReceivedStore | None = None,
        on_received: Callable[[list[Path]], None] | None = None,
    ) -> None:
        check_ae_title(settings.ae_title, "the listener's AE title")
        if not settings.peers:
            raise PacsError("the storage listener needs at least one configured peer")
        for p in settings.peers:
            check_ae_title(p.ae_title, "a peer's AE title")
        self.settings = settings
        self.store = store or ReceivedStore()
        self.on_received = on_received
        self._server: Any = None
        self._ae: Any = None
        self._peer_pairs: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, list[Path]] = {}
        self.received: list[Path] = []  # every file indexed, in order
        self.refused = 0

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server else self.settings.port

    def start(self) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.transport import ThreadedAssociationServer

        if self._server is not None:
            return
        configure_pynetdicom()
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.maximum_associations = s.max_associations
        ae.maximum_pdu_size = s.max_pdu
        ae.acse_timeout = s.timeout
        ae.dimse_timeout = s.timeout
        ae.network_timeout = s.timeout
        ae.require_called_aet = True
        ae.require_calling_aet = sorted({p.ae_title for p in s.peers})
        syntaxes = transfer_syntaxes()
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), syntaxes)
        ae.add_supported_context(sop_uid("Verification"))
        # resolved once here, not per received instance
        self._peer_pairs = {(p.ae_title, socket.gethostbyname(p.host)) for p in s.peers}
        hosts = {host for _, host in self._peer_pairs}
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]
        try:
            self._server = ae.make_server(
                (s.host, s.port),
                evt_handlers=handlers,
                server_class=ThreadedAssociationServer,
                request_handler=_bounded_handler(s.max_pdu, s.timeout, hosts),
            )
        except OSError as e:
            raise PacsError(f"cannot listen on {s.host}:{s.port}: {e}") from e
        self._ae = ae
        ae._servers.append(self._server)  # as start_server does; shutdown() removes it
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="medview-storage-listener", daemon=True
        )
        self._thread.start()
        log.info("storage listener on %s:%d (AE %s)", s.host, self.port, s.ae_title)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            for assoc in self._ae.active_associations:
                assoc.abort()
            for assoc in self._ae.active_associations:
                assoc.join(timeout=5)
            if self._thread is not None:
                self._thread.join(timeout=5)
        self._flush_all()

    def __enter__(self) -> StorageListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers (pynetdicom's association threads) -----------------------------------------

    def _allowed(self, event: Any) -> bool:
        calling = str(event.assoc.requestor.ae_title).strip()
        address = str(event.assoc.requestor.address)
        return (calling, address) in self._peer_pairs

    def _on_store(self, event: Any) -> int:
        if not self._allowed(event):
            self.refused += 1
            return 0xC211  # refused: this AE title is not configured for this host
        try:
            path = self.store.add_file(event.dataset_path)
        except (OSError, PacsError) as e:
            log.warning("storage listener could not write an instance (%s)", type(e).__name__)
            return 0xA700
        with self._lock:
            self._pending.setdefault(id(event.assoc), []).append(path)
        return 0x0000

    def pending_count(self) -> int:
        """Instances written whose association has not ended yet (not yet indexed)."""
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def _on_end(self, event: Any) -> None:
        with self._lock:
            paths = self._pending.pop(id(event.assoc), [])
        self._deliver(paths)

    def _flush_all(self) -> None:
        with self._lock:
            batches = list(self._pending.values())
            self._pending.clear()
        for paths in batches:
            self._deliver(paths)

    def _deliver(self, paths: list[Path]) -> None:
        if not paths:
            return
        if self.on_received is not None:
            try:
                self.on_received(paths)
            except Exception:  # an indexing failure must not take the listener down
                log.exception("indexing received instances failed")
        with self._lock:
            self.received.extend(paths)  # after indexing: "received" means "findable"


def listen_for(
    ae_title: str,
    port: int,
    peers: Sequence[Peer],
    *,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    store: ReceivedStore | None = None,
    on_received: Callable[[list[Path]], None] | None = None,
) -> StorageListener:
    """A started listener (for C-MOVE destinations and the CLI)."""
    listener = StorageListener(
        ListenerSettings(ae_title, port, host, tuple(peers), timeout=timeout),
        store,
        on_received,
    )
    listener.start()
    return listener
