"""One entry point per PACS action, whichever protocol the node speaks; what the window's
worker tasks and the CLI call. Retrieved instances are indexed into the study database once
they are complete, so they open like local ones."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.pacs import dicomweb, dimse
from medview.pacs import send as store_scu
from medview.pacs.dimse import RetrieveResult
from medview.pacs.listener import Peer, StorageListener, listen_for
from medview.pacs.nodes import PacsNode
from medview.pacs.query import QueryKeys, SeriesMatch, StudyMatch
from medview.pacs.send import SendResult
from medview.pacs.store import ReceivedStore

RETRIEVE_METHODS = ("get", "move", "wado")


def index_files(
    paths: Sequence[Path], database: str | None = None, store: ReceivedStore | None = None
) -> list[str]:
    """Index complete received files into the study database; the series UIDs touched.

    An instance received again (same SOP Instance UID, already indexed from the receive
    folder and still there) is not kept twice: the new copy is removed before indexing.
    """
    from medview.io.database import StudyDatabase

    if not paths:
        return []
    root = (store or ReceivedStore()).root
    with StudyDatabase(database) as db:
        uids = {p: _sop_instance_uid(p) for p in paths}
        known = db.paths_of_instances(u for u in uids.values() if u)
        keep = []
        for p, uid in uids.items():
            earlier = [q for q in known.get(uid or "", []) if _inside(q, root) and q != str(p)]
            if earlier and any(Path(q).exists() for q in earlier):
                p.unlink(missing_ok=True)
            else:
                keep.append(p)
        return db.import_paths(keep).series_uids if keep else []


def _sop_instance_uid(path: Path) -> str | None:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        return str(ds.get("SOPInstanceUID", "")) or None
    except (InvalidDicomError, OSError, ValueError):
        return None


def _inside(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root)


def search(
    node: PacsNode,
    keys: QueryKeys,
    level: str = "study",
    *,
    web: bool | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[StudyMatch] | list[SeriesMatch]:
    """C-FIND, or QIDO-RS when asked for (``web``) or when the node has only a DICOMweb URL."""
    use_web = web if web is not None else not node.ae_title
    if use_web:
        return dicomweb.qido(node, keys, level)
    return dimse.find(node, keys, level, cancel=cancel)


def retrieve(
    node: PacsNode,
    study_uid: str,
    series_uid: str | None = None,
    *,
    method: str = "get",
    store: ReceivedStore | None = None,
    listen_port: int = 11112,
    index: bool = True,
    database: str | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> RetrieveResult:
    """Bring a study or series here by C-GET, C-MOVE (to a listener started for the purpose,
    accepting only this node) or WADO-RS; the complete files are then indexed."""
    store = store or ReceivedStore()
    if method == "get":
        result = dimse.c_get(
            node, study_uid, series_uid, store=store, cancel=cancel, progress=progress
        )
    elif method == "wado":
        result = dicomweb.wado(
            node, study_uid, series_uid, store=store, cancel=cancel, progress=progress
        )
    elif method == "move":
        result = _move(node, study_uid, series_uid, store, listen_port, cancel, progress)
    else:
        raise PacsError(f"retrieve method must be one of {', '.join(RETRIEVE_METHODS)}")
    if index and result.files:
        index_files(result.files, database, store)
        result.files = [p for p in result.files if p.exists()]
    return result


def _move(
    node: PacsNode,
    study_uid: str,
    series_uid: str | None,
    store: ReceivedStore,
    listen_port: int,
    cancel: CancelToken,
    progress: Progress,
) -> RetrieveResult:
    listener: StorageListener = listen_for(
        node.our_ae_title, listen_port, [Peer(node.ae_title, node.host)], store=store
    )
    try:
        result = dimse.c_move(
            node,
            study_uid,
            series_uid,
            destination=node.our_ae_title,
            cancel=cancel,
            progress=progress,
        )
        # the PACS's final response can overtake the end of its storage association
        deadline = time.monotonic() + 10
        while len(listener.received) + listener.pending_count() < result.completed:
            if time.monotonic() > deadline or cancel.cancelled:
                break
            time.sleep(0.05)
    finally:
        listener.stop()
    result.files = list(listener.received)
    return result


def send(
    node: PacsNode,
    paths: Sequence[str | Path],
    *,
    web: bool | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> SendResult:
    """C-STORE, or STOW-RS when asked for or when the node has only a DICOMweb URL."""
    use_web = web if web is not None else not node.ae_title
    if use_web:
        return dicomweb.stow(node, paths, cancel=cancel, progress=progress)
    return store_scu.c_store(node, paths, cancel=cancel, progress=progress)
