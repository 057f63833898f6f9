"""DIMSE client (pynetdicom): C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE against a PACS node.

All calls block and are meant for a worker thread: they take a ``CancelToken`` (cancel aborts
the association) and report progress. Failures raise ``PacsError`` with what the user can act
on (no route, association rejected, a failure status), never a pynetdicom traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.pacs.nodes import PacsNode
from medview.pacs.query import QueryKeys, SeriesMatch, StudyMatch, query_dataset
from medview.pacs.store import ReceivedStore

if TYPE_CHECKING:
    from pynetdicom.ae import ApplicationEntity
    from pynetdicom.association import Association

log = logging.getLogger(__name__)

ACSE_TIMEOUT = 15.0
DIMSE_TIMEOUT = 60.0
NETWORK_TIMEOUT = 60.0
MAX_PDU = 256 * 1024

# What we take in over C-GET (at most 127 storage contexts may share an association with the
# query context): the image, SEG, SR and document classes a reading workstation shows.
RETRIEVE_SOP_CLASSES = (
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "MRImageStorage",
    "EnhancedMRImageStorage",
    "ComputedRadiographyImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing",
    "DigitalMammographyXRayImageStorageForPresentation",
    "UltrasoundImageStorage",
    "UltrasoundMultiFrameImageStorage",
    "SecondaryCaptureImageStorage",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
    "MultiFrameTrueColorSecondaryCaptureImageStorage",
    "PositronEmissionTomographyImageStorage",
    "EnhancedPETImageStorage",
    "NuclearMedicineImageStorage",
    "XRayAngiographicImageStorage",
    "XRayRadiofluoroscopicImageStorage",
    "RTStructureSetStorage",
    "RTDoseStorage",
    "SegmentationStorage",
    "BasicTextSRStorage",
    "EnhancedSRStorage",
    "ComprehensiveSRStorage",
    "Comprehensive3DSRStorage",
    "KeyObjectSelectionDocumentStorage",
    "EncapsulatedPDFStorage",
    "ParametricMapStorage",
    "GrayscaleSoftcopyPresentationStateStorage",
)


def transfer_syntaxes() -> list[str]:
    """What we accept for received instances: uncompressed first, then every lossless and
    lossy codec the loader decodes."""
    from pydicom import uid

    return [
        uid.ExplicitVRLittleEndian,
        uid.ImplicitVRLittleEndian,
        uid.JPEGLSLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLossless,
        uid.JPEG2000Lossless,
        uid.RLELossless,
        uid.DeflatedExplicitVRLittleEndian,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEG2000,
        uid.JPEGLSNearLossless,
    ]


def sop_uid(name: str) -> str:
    """A SOP class UID by its keyword (pynetdicom generates these names at import)."""
    from pynetdicom import sop_class

    return str(getattr(sop_class, name))


# image classes whose instances are often stored compressed
_COMPRESSED_CLASSES = RETRIEVE_SOP_CLASSES[:19]


def retrieve_contexts() -> list[tuple[str, list[str]]]:
    """Storage contexts we propose for C-GET (at most 127 with the query's).

    An acceptor picks one transfer syntax per context and most pick uncompressed, after which
    the archive transcodes every compressed instance before sending it (Orthanc: 1.0 s instead
    of 0.3 s for the 61 JPEG-LS demo slices). So image classes get one context per common
    lossless syntax as well, and an instance arrives as it is stored."""
    from pydicom import uid

    uncompressed = [str(uid.ExplicitVRLittleEndian), str(uid.ImplicitVRLittleEndian)]
    contexts = [(sop_uid(name), uncompressed) for name in RETRIEVE_SOP_CLASSES]
    for name in _COMPRESSED_CLASSES:
        for ts in (uid.JPEGLSLossless, uid.JPEGLosslessSV1, uid.JPEG2000Lossless):
            contexts.append((sop_uid(name), [str(ts)]))
    return contexts


def configure_pynetdicom() -> None:
    """Receive C-STORE data sets into temporary files rather than memory, so a large or hostile
    transfer cannot grow the process (pynetdicom's documented chunked mode)."""
    from pynetdicom import _config

    _config.STORE_RECV_CHUNKED_DATASET = True
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = False  # query keys carry names and IDs: keep them out
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def make_ae(our_aet: str) -> ApplicationEntity:
    from pynetdicom import AE

    configure_pynetdicom()
    ae = AE(ae_title=our_aet)
    ae.acse_timeout = ACSE_TIMEOUT
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.network_timeout = NETWORK_TIMEOUT
    ae.connection_timeout = ACSE_TIMEOUT
    ae.maximum_pdu_size = MAX_PDU
    return ae


def _tls_context(node: PacsNode) -> Any:
    if not node.tls:
        return None
    import ssl

    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


@contextmanager
def associate(
    ae: ApplicationEntity,
    node: PacsNode,
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
) -> Iterator[Association]:
    """An established association with ``node``, released (or aborted on error/cancel)."""
    node.checked()
    if not node.ae_title:
        raise PacsError(f"node {node.name!r} has no AE title for DIMSE")
    tls = _tls_context(node)
    try:
        assoc = ae.associate(
            node.host,
            int(node.port),
            ae_title=node.ae_title,
            ext_neg=ext_neg,
            evt_handlers=evt_handlers,
            tls_args=(tls, node.host) if tls else None,
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise PacsError(f"cannot reach {node.name} ({node.host}:{node.port}): {e}") from e
    if not assoc.is_established:
        if assoc.is_rejected:
            raise PacsError(
                f"{node.name} rejected the association (is our AE title "
                f"{ae.ae_title!r} configured on that PACS?)"
            )
        raise PacsError(
            f"no association with {node.name} at {node.host}:{node.port} "
            f"(AE {node.ae_title}): connection refused, timed out or aborted"
        )
    ok = False
    try:
        yield assoc
        ok = True
    finally:
        if ok and not cancel.cancelled and assoc.is_established:
            assoc.release()
        elif assoc.is_established:
            assoc.abort()


# -- C-ECHO ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoResult:
    node: str
    ok: bool
    status: int
    seconds: float


def echo(node: PacsNode) -> EchoResult:
    """C-ECHO ("Test connection"): status 0x0000 is success."""
    ae = make_ae(node.our_ae_title)
    ae.add_requested_context(sop_uid("Verification"))
    t0 = time.perf_counter()
    with associate(ae, node) as assoc:
        status = assoc.send_c_echo()
    if not status or "Status" not in status:
        raise PacsError(f"{node.name} did not answer the C-ECHO")
    return EchoResult(node.name, status.Status == 0, int(status.Status), time.perf_counter() - t0)


# -- C-FIND ---------------------------------------------------------------------------------


def find(
    node: PacsNode,
    keys: QueryKeys,
    level: str = "study",
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    limit: int = 5000,
) -> list[StudyMatch] | list[SeriesMatch]:
    """C-FIND in the Study Root model at study or series level."""
    FindModel = sop_uid("StudyRootQueryRetrieveInformationModelFind")
    ae = make_ae(node.our_ae_title)
    ae.add_requested_context(FindModel)
    query = query_dataset(keys, level)
    found: list[Any] = []
    with associate(ae, node, cancel=cancel) as assoc:
        for status, identifier in assoc.send_c_find(query, FindModel):
            if cancel.cancelled:
                assoc.abort()
                break
            if not status:
                raise PacsError(f"{node.name} stopped answering the query (timeout or abort)")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and identifier is not None:
                found.append(
                    StudyMatch.from_dataset(identifier)
                    if level == "study"
                    else SeriesMatch.from_dataset(identifier)
                )
                if len(found) >= limit:
                    assoc.abort()
                    break
            elif code != 0:
                raise PacsError(f"{node.name} answered the query with status 0x{code:04X}")
    cancel.raise_if_cancelled()
    return found


# -- C-GET / C-MOVE -------------------------------------------------------------------------


@dataclass
class RetrieveResult:
    """What a retrieve brought: complete files written (in arrival order) and the peer's
    counts of completed, failed and warning sub-operations."""

    files: list[Path] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    seconds: float = 0.0
    method: str = ""


def _retrieve_identifier(study_uid: str, series_uid: str | None) -> Any:
    from pydicom import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    return ds


def _count(result: RetrieveResult, status: Any) -> tuple[int, int]:
    """Update the sub-operation counts from a C-GET/C-MOVE response; (done, total)."""
    done = int(getattr(status, "NumberOfCompletedSuboperations", 0) or 0)
    failed = int(getattr(status, "NumberOfFailedSuboperations", 0) or 0)
    warning = int(getattr(status, "NumberOfWarningSuboperations", 0) or 0)
    remaining = int(getattr(status, "NumberOfRemainingSuboperations", 0) or 0)
    result.completed, result.failed, result.warning = done, failed, warning
    return done + failed + warning, done + failed + warning + remaining


def c_get(
    node: PacsNode,
    study_uid: str,
    series_uid: str | None = None,
    *,
    store: ReceivedStore | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> RetrieveResult:
    """C-GET a study or series: the PACS sends the instances back on the same association and
    each complete one is written into ``store``."""
    from pynetdicom import build_role, evt

    GetModel = sop_uid("StudyRootQueryRetrieveInformationModelGet")
    store = store or ReceivedStore()
    ae = make_ae(node.our_ae_title)
    ae.add_requested_context(GetModel)
    roles = []
    for uid, syntaxes in retrieve_contexts():
        ae.add_requested_context(uid, syntaxes)
    for name in RETRIEVE_SOP_CLASSES:
        roles.append(build_role(sop_uid(name), scp_role=True))
    result = RetrieveResult(method="C-GET")

    def on_store(event: Any) -> int:
        if cancel.cancelled:
            return 0xA700  # refused: out of resources (we are cancelling)
        try:
            result.files.append(store.add_file(event.dataset_path))
        except (OSError, PacsError) as e:
            log.warning("could not write a received instance: %s", type(e).__name__)
            return 0xA700
        return 0x0000

    t0 = time.perf_counter()
    with associate(
        ae, node, cancel=cancel, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    ) as assoc:
        responses = assoc.send_c_get(_retrieve_identifier(study_uid, series_uid), GetModel)
        for status, _ in responses:
            if cancel.cancelled:
                assoc.abort()
                break
            if not status:
                raise PacsError(f"{node.name} stopped during the retrieve (timeout or abort)")
            _, total = _count(result, status)
            progress(len(result.files), max(total, len(result.files)), "retrieving")
            code = int(status.Status)
            if code not in (0x0000, 0xFF00, 0xB000) and not result.files:
                raise PacsError(f"{node.name} refused the retrieve: status 0x{code:04X}")
    result.seconds = time.perf_counter() - t0
    return result


def c_move(
    node: PacsNode,
    study_uid: str,
    series_uid: str | None = None,
    *,
    destination: str,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> RetrieveResult:
    """C-MOVE a study or series to ``destination`` (our listener's AE title, which the PACS
    must know). The files arrive at the listener; this returns the PACS's counts."""
    MoveModel = sop_uid("StudyRootQueryRetrieveInformationModelMove")
    ae = make_ae(node.our_ae_title)
    ae.add_requested_context(MoveModel)
    result = RetrieveResult(method="C-MOVE")
    t0 = time.perf_counter()
    with associate(ae, node, cancel=cancel) as assoc:
        responses = assoc.send_c_move(
            _retrieve_identifier(study_uid, series_uid), destination, MoveModel
        )
        for status, _ in responses:
            if cancel.cancelled:
                assoc.abort()
                break
            if not status:
                raise PacsError(f"{node.name} stopped during the move (timeout or abort)")
            done, total = _count(result, status)
            progress(done, total, "moving")
            code = int(status.Status)
            if code == 0xA801:
                raise PacsError(
                    f"{node.name} does not know the destination {destination!r} "
                    "(add our AE title, host and port to that PACS)"
                )
            if code not in (0x0000, 0xFF00, 0xB000):
                raise PacsError(f"{node.name} refused the move: status 0x{code:04X}")
    result.seconds = time.perf_counter() - t0
    return result


# -- C-STORE --------------------------------------------------------------------------------
