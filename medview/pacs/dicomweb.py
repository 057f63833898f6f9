"""DICOMweb client (dicomweb-client): QIDO-RS search, WADO-RS retrieve, STOW-RS send.

Credentials go into the HTTP session (basic auth), never into a URL or a log line; TLS
certificates are verified. Retrieval streams a series instance by instance (``iter_series``)
and writes each one into the ``ReceivedStore`` as it arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError
from medview.core.tasks import NEVER_CANCELLED, CancelToken, Progress, no_progress
from medview.pacs.dimse import RetrieveResult
from medview.pacs.nodes import PacsNode
from medview.pacs.query import QueryKeys, SeriesMatch, StudyMatch, from_json
from medview.pacs.send import SendResult, dicom_files
from medview.pacs.store import ReceivedStore

log = logging.getLogger(__name__)

TIMEOUT = 60.0
_STUDY_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
_SERIES_FIELDS = (
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)


def client(node: PacsNode) -> Any:
    import requests
    from dicomweb_client import DICOMwebClient

    if not node.dicomweb_url:
        raise PacsError(f"node {node.name!r} has no DICOMweb URL")
    # its DEBUG lines carry query URLs, i.e. patient names and IDs
    logging.getLogger("dicomweb_client").setLevel(logging.WARNING)

    class Client(DICOMwebClient):
        def _http_get(self, url: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            # wildcards stay literal (RFC 3986 allows them in a query); some archives (Orthanc's
            # DICOMweb plugin 1.7) do not decode %2A and then match nothing
            if params:
                url += "?" + urlencode(params, doseq=True, quote_via=quote, safe="*?^,")
            return super()._http_get(url, None, *args, **kwargs)

    session = requests.Session()
    if node.username:
        session.auth = (node.username, node.password)
    return Client(node.dicomweb_url.rstrip("/"), session=session, timeout=TIMEOUT)


def _call(node: PacsNode, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    import requests

    try:
        return fn(*args, **kwargs)
    except requests.HTTPError as e:
        code = e.response.status_code if e.response is not None else "?"
        hint = " (check the user name and password)" if code in (401, 403) else ""
        raise PacsError(f"{node.name}: {what} failed with HTTP {code}{hint}") from e
    except requests.RequestException as e:
        raise PacsError(
            f"{node.name}: cannot reach {node.dicomweb_url} ({type(e).__name__})"
        ) from e
    except ValueError as e:  # malformed multipart or JSON from the server
        raise PacsError(f"{node.name}: {what} returned something unreadable: {e}") from e


def _filters(keys: QueryKeys, level: str) -> dict[str, str]:
    keys = keys.checked()
    f: dict[str, str] = {}
    if level == "study":
        pairs = [
            ("PatientName", keys.patient_name),
            ("PatientID", keys.patient_id),
            ("StudyDate", keys.study_date),
            ("AccessionNumber", keys.accession),
            ("StudyDescription", keys.description),
            ("ModalitiesInStudy", keys.modality),
            ("StudyInstanceUID", keys.study_uid),
        ]
    else:
        pairs = [
            ("Modality", keys.modality),
            ("SeriesDescription", keys.description),
            ("SeriesInstanceUID", keys.series_uid),
        ]
    for name, value in pairs:
        if value:
            f[name] = value
    return f


def qido(
    node: PacsNode, keys: QueryKeys, level: str = "study", *, limit: int = 5000
) -> list[StudyMatch] | list[SeriesMatch]:
    """QIDO-RS search at study or series level."""
    c = client(node)
    if level == "study":
        rows = _call(
            node,
            "the study search",
            c.search_for_studies,
            fields=_STUDY_FIELDS,
            search_filters=_filters(keys, level),
            limit=limit,
        )
        return [StudyMatch.from_dataset(from_json(r)) for r in rows]
    if level != "series":
        raise PacsError("query level must be study or series")
    if not keys.study_uid:
        raise PacsError("a series query needs the study's UID")
    rows = _call(
        node,
        "the series search",
        c.search_for_series,
        study_instance_uid=keys.study_uid,
        fields=_SERIES_FIELDS,
        search_filters=_filters(keys, level),
        limit=limit,
    )
    return [SeriesMatch.from_dataset(from_json(r)) for r in rows]


def wado(
    node: PacsNode,
    study_uid: str,
    series_uid: str | None = None,
    *,
    store: ReceivedStore | None = None,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
) -> RetrieveResult:
    """WADO-RS retrieve of a series (or every series of a study), as stored (no transcoding:
    ``transfer-syntax=*``)."""
    store = store or ReceivedStore()
    c = client(node)
    if series_uid:
        series = [series_uid]
    else:
        found = qido(node, QueryKeys(study_uid=study_uid), "series")
        series = [s.series_uid for s in found if isinstance(s, SeriesMatch)]
    result = RetrieveResult(method="WADO-RS")
    t0 = time.perf_counter()
    for uid in series:
        instances = _call(
            node, "the instance search", c.search_for_instances, study_uid, uid, fields=()
        )
        total = len(instances)
        stream = _call(
            node,
            "the retrieve",
            c.iter_series,
            study_uid,
            uid,
            media_types=(("application/dicom", "*"),),
        )
        try:
            for ds in stream:
                if cancel.cancelled:
                    break
                result.files.append(store.add_dataset(ds))
                result.completed += 1
                progress(result.completed, max(total, result.completed), "retrieving")
        except Exception as e:
            # the multipart stream is parsed lazily: network and parse errors surface here
            raise _call_error(node, e) from e
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if cancel.cancelled:
            break
    result.seconds = time.perf_counter() - t0
    return result


def _call_error(node: PacsNode, e: Exception) -> PacsError:
    return PacsError(f"{node.name}: the retrieve stopped ({type(e).__name__}: {e})")


def stow(
    node: PacsNode,
    paths: Sequence[str | Path],
    *,
    cancel: CancelToken = NEVER_CANCELLED,
    progress: Progress = no_progress,
    batch: int = 16,
) -> SendResult:
    """STOW-RS the DICOM files under ``paths``, a few instances per request."""
    from pydicom import dcmread

    files = dicom_files(paths)
    if not files:
        raise PacsError("nothing to send: no DICOM files found")
    c = client(node)
    result = SendResult()
    t0 = time.perf_counter()
    for start in range(0, len(files), batch):
        if cancel.cancelled:
            break
        chunk = [dcmread(p) for p in files[start : start + batch]]
        response = _call(node, "the upload", c.store_instances, chunk)
        failed = {
            str(item.get("ReferencedSOPInstanceUID", ""))
            for item in getattr(response, "FailedSOPSequence", [])
        }
        for p, ds in zip(files[start : start + batch], chunk, strict=True):
            if str(ds.SOPInstanceUID) in failed:
                result.failed.append((p.name, "refused by the server"))
            else:
                result.sent += 1
                result.sop_instance_uids.append(str(ds.SOPInstanceUID))
        progress(min(start + batch, len(files)), len(files), "sending")
    cancel.raise_if_cancelled()
    result.seconds = time.perf_counter() - t0
    return result
