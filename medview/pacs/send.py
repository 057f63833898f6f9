"""Sending to a PACS: C-STORE of files (only DICOM files, each in a presentation context the peer
accepted), with a result per file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.pacs.dimse import associate, make_ae
from medview.pacs.nodes import PacsNode

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    seconds: float = 0.0
    sop_instance_uids: list[str] = field(default_factory=list)


def _headers(paths: Sequence[Path]) -> list[tuple[Path, str, str, str]]:
    """(path, SOP class, SOP instance, transfer syntax) of each DICOM file to send."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    out = []
    for p in paths:
        try:
            ds = dcmread(
                p, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"]
            )
            out.append(
                (
                    p,
                    str(ds.SOPClassUID),
                    str(ds.SOPInstanceUID),
                    str(ds.file_meta.TransferSyntaxUID),
                )
            )
        except (InvalidDicomError, OSError, AttributeError, ValueError) as e:
            raise PacsError(f"not a DICOM file that can be sent: {e}", path=p) from e
    return out


def dicom_files(paths: Sequence[str | Path]) -> list[Path]:
    """The DICOM files under the given files and folders (DICOMDIR and our JSON/PDF skipped)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        candidates = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in candidates:
            if q.name.upper() == "DICOMDIR" or q.suffix.lower() in (".json", ".pdf", ".png"):
                continue
            if q.suffix.lower() in (".nii", ".gz", ".zip"):
                continue
            with open(q, "rb") as f:
                head = f.read(132)
            if head[128:132] == b"DICM":
                out.append(q)
    return out


def _sendable(accepted: set[tuple[str, str]], path: Path, sop: str, ts: str) -> Any:
    """The file itself when the PACS accepted its transfer syntax; otherwise the data set
    decompressed (lossless: same pixel values), for the uncompressed context."""
    from pydicom import dcmread

    if (sop, ts) in accepted:
        return path
    full = dcmread(path)
    full.decompress()
    return full


def c_store(
    node: PacsNode,
    paths: Sequence[str | Path],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> SendResult:
    """Send DICOM files (a series, or MedView's SEG/SR/de-identified copies) by C-STORE, in
    their own transfer syntax (no re-encoding)."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    files = _headers(dicom_files(paths))
    if not files:
        raise PacsError("nothing to send: no DICOM files found")
    contexts = sorted({(sop, ts) for _, sop, _, ts in files})
    uncompressed = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    # each file's own syntax in a context of its own (an acceptor picks one syntax per context,
    # and most pick uncompressed when offered), plus an uncompressed context per SOP class to
    # fall back on when the PACS does not take the compressed one
    wanted = contexts + sorted({(sop, "") for sop, ts in contexts if ts not in uncompressed})
    if len(wanted) > 127:
        raise PacsError("too many kinds of object for one association (over 127)")
    ae = make_ae(node.our_ae_title)
    for sop, ts in wanted:
        ae.add_requested_context(sop, [ts] if ts else uncompressed)
    result = SendResult()
    t0 = time.perf_counter()
    with associate(ae, node, cancel=cancel) as assoc:
        accepted = {
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
        }
        for i, (path, sop, instance, ts) in enumerate(files):
            if cancel.cancelled:
                assoc.abort()
                break
            try:
                status = assoc.send_c_store(_sendable(accepted, path, sop, ts))
            except (ValueError, AttributeError, RuntimeError) as e:
                # pynetdicom raises these when no accepted context fits the file
                result.failed.append((path.name, f"not accepted by the PACS: {e}"))
                continue
            if not status:
                raise PacsError(f"{node.name} stopped answering after {result.sent} instance(s)")
            code = int(status.Status)
            if code in (0x0000, 0xB000, 0xB007, 0xB006):
                result.sent += 1
                result.sop_instance_uids.append(instance)
            else:
                result.failed.append((path.name, f"status 0x{code:04X}"))
            progress(i + 1, len(files), "sending")
    cancel.raise_if_cancelled()
    result.seconds = time.perf_counter() - t0
    return result
