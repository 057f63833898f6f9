"""PACS nodes: where the archive is, how we call it, and its password kept out of plain text.

Nodes live in ``pacs_nodes.json`` in the data folder (written atomically). A node's password is
never in that file nor in a node's ``repr``: it goes to the OS keyring (Secret Service,
Keychain, Windows Credential Manager) through ``keyring``. Where the only keyring backend would
be a plain-text or failing one, the password is kept in memory for this session only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medview.core.errors import PacsError
from medview.core.paths import data_dir

log = logging.getLogger(__name__)

KEYRING_SERVICE = "MedView PACS"
DEFAULT_OUR_AET = "MEDVIEW"
_AET_CHARS = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: no backslash, no controls


def check_ae_title(value: str, what: str = "AE title") -> str:
    """A valid AE title (1-16 printable characters, no backslash, not only spaces)."""
    if not _AET_CHARS.match(value) or not value.strip():
        raise PacsError(
            f"{what} {value!r} is not valid: 1 to 16 printable characters, no backslash"
        )
    return value.strip()


@dataclass(frozen=True)
class PacsNode:
    """One archive. ``port``/``ae_title`` for DIMSE, ``dicomweb_url`` for DICOMweb (either or
    both). ``password`` is never written to the settings file and never shown in ``repr``."""

    name: str
    ae_title: str = ""
    host: str = "127.0.0.1"
    port: int = 104
    our_ae_title: str = DEFAULT_OUR_AET
    dicomweb_url: str = ""
    tls: bool = False
    username: str = ""
    password: str = field(default="", repr=False, compare=False)

    def checked(self) -> PacsNode:
        """Self, or a PacsError naming what is wrong."""
        if not self.name.strip():
            raise PacsError("a PACS node needs a name")
        if not self.ae_title and not self.dicomweb_url:
            raise PacsError(f"node {self.name!r} needs an AE title (DIMSE) or a DICOMweb URL")
        if self.ae_title:
            check_ae_title(self.ae_title, "the node's AE title")
            if not self.host.strip():
                raise PacsError(f"node {self.name!r} needs a host")
            if not 1 <= int(self.port) <= 65535:
                raise PacsError(f"port {self.port} of node {self.name!r} is not 1-65535")
        check_ae_title(self.our_ae_title, "our AE title")
        if self.dicomweb_url and not re.match(r"^https?://", self.dicomweb_url):
            raise PacsError(f"DICOMweb URL of {self.name!r} must start with http:// or https://")
        return self

    def settings(self) -> dict[str, object]:
        """What goes into the settings file: everything but the password."""
        d = asdict(self)
        d.pop("password")
        return d


def nodes_path() -> Path:
    return data_dir() / "pacs_nodes.json"


def load_nodes(path: Path | None = None) -> list[PacsNode]:
    """Configured nodes, with passwords filled in from the keyring where one is stored."""
    path = path or nodes_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise PacsError(f"cannot read the PACS settings: {e}", path=path) from e
    known = {f.name for f in fields(PacsNode)} - {"password"}
    nodes = []
    for item in raw.get("nodes", []) if isinstance(raw, dict) else []:
        if not isinstance(item, dict):
            continue
        node = PacsNode(**{k: v for k, v in item.items() if k in known})
        nodes.append(replace(node, password=get_password(node)))
    return nodes


def save_nodes(nodes: list[PacsNode], path: Path | None = None) -> None:
    """Write the nodes (atomically) and put each password into the keyring."""
    from medview.core.atomic import atomic_path

    path = path or nodes_path()
    names = [n.checked().name for n in nodes]
    if len(set(names)) != len(names):
        raise PacsError("two PACS nodes have the same name")
    for n in nodes:
        set_password(n, n.password)
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump({"nodes": [n.settings() for n in nodes]}, f, indent=2)


# -- passwords ------------------------------------------------------------------------------

_session_passwords: dict[str, str] = {}
_lock = threading.Lock()


def _secure_keyring() -> Any:
    """The keyring backend if it is a real secure store, else None."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception as e:
        log.info("no OS keyring (%s); PACS passwords kept for this session only", type(e).__name__)
        return None
    name = type(backend).__module__ + "." + type(backend).__name__
    if isinstance(backend, fail.Keyring) or "plaintext" in name.lower() or "null" in name.lower():
        return None
    return keyring


def _key(node: PacsNode) -> str:
    return f"{node.name}|{node.username}"


def set_password(node: PacsNode, password: str) -> None:
    with _lock:
        if password:
            _session_passwords[_key(node)] = password
        else:
            _session_passwords.pop(_key(node), None)
    kr = _secure_keyring()
    if kr is None or not password:
        return
    try:
        kr.set_password(KEYRING_SERVICE, _key(node), password)
    except Exception as e:
        log.warning("could not store the PACS password in the keyring (%s)", type(e).__name__)


def get_password(node: PacsNode) -> str:
    with _lock:
        if _key(node) in _session_passwords:
            return _session_passwords[_key(node)]
    kr = _secure_keyring()
    if kr is None:
        return ""
    try:
        return kr.get_password(KEYRING_SERVICE, _key(node)) or ""
    except Exception as e:
        log.warning("could not read the PACS password from the keyring (%s)", type(e).__name__)
        return ""
