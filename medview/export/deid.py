"""De-identification with the DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile.

The action of each attribute (D replace, Z empty, X remove, U new UID, K keep and the
combined codes) comes from the profile's table as shipped by ``dicom-anonymizer`` (its
``dicomfields_2026c`` module, the 2026c edition of Table E.1-1). That package applies the
table to top-level attributes only and keeps one process-wide UID map, so the walk here is our
own: every attribute is looked up at every depth of every sequence, private attributes are
removed everywhere, the file meta is rebuilt from scratch, and UIDs are remapped through one
map per export (keyed by a secret drawn per export), so a study, its SEG and its SR stay
consistent with each other and with nothing else.

Where the profile leaves a choice we take the one that keeps the object valid: a dummy value
where it allows one (Z/D, X/D, X/Z/D: the attribute may be Type 1 in the IOD), else an empty
one (X/Z), never a removal. Instances that declare burned-in
annotation are not copied (the basic profile does not clean pixel data).
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Callable
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)

METHOD = "PS3.15 Annex E Basic Profile (MedView)"  # LO: at most 64 characters
_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")


def _table() -> tuple[dict[tuple[int, int], str], list[tuple[int, int, int, int, str]]]:
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as t

    actions: dict[tuple[int, int], str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for name, code in (
        ("D_TAGS", "D"),
        ("Z_TAGS", "Z"),
        ("X_TAGS", "X"),
        ("U_TAGS", "U"),
        # where the profile allows a dummy (Z/D, X/D, X/Z/D), a dummy: the attribute may be
        # Type 1 in the object's IOD (ContentDate in enhanced MR, DeviceSerialNumber in
        # Enhanced General Equipment), where an empty value makes the copy invalid; for a
        # sequence, its items are kept and cleaned (one item may be required)
        ("Z_D_TAGS", "D"),
        ("X_Z_TAGS", "Z"),
        ("X_D_TAGS", "D"),
        ("X_Z_D_TAGS", "D"),
        ("X_Z_U_STAR_TAGS", "U*"),
    ):
        for tag in getattr(t, name):
            if len(tag) == 4:
                masked.append((tag[0], tag[1], tag[2], tag[3], code))
            else:
                actions[(tag[0], tag[1])] = code
    return actions, masked


_ACTIONS, _MASKED = _table()


def action_for(group: int, element: int) -> str | None:
    """The profile's action for an attribute ('D', 'Z', 'X', 'U', 'U*'), None to keep it."""
    a = _ACTIONS.get((group, element))
    if a is not None:
        return a
    for g, e, gm, em, code in _MASKED:
        if group & gm == g & gm and element & em == e & em:
            return code
    return None


class Deidentifier:
    """Applies the profile to datasets in place; one instance per export so that every
    object of the export shares one UID map and one pseudonym."""

    def __init__(self, token: str | None = None) -> None:
        self._secret = secrets.token_hex(16)
        self.token = token or "ANON-" + secrets.token_hex(4).upper()
        self.uids: dict[str, str] = {}
        self.skipped: list[str] = []  # reasons, no patient data

    def uid(self, old: str) -> str:
        old = str(old)
        if not old:
            return old
        new = self.uids.get(old)
        if new is None:
            new = generate_uid(prefix="2.25.", entropy_srcs=[self._secret, old])
            self.uids[old] = new
        return new

    def refuses(self, ds: Dataset) -> str | None:
        """Why ``ds`` must not be copied (burned-in text the profile cannot remove)."""
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            return "declares burned-in annotation (pixel data may hold identifiers)"
        return None

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` (and its file meta) in place and return it."""
        self._clean(ds)
        ds.PatientName = f"Anonymous^{self.token}"
        ds.PatientID = self.token
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = _PROFILE_CODE
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        ds.LongitudinalTemporalInformationModified = "REMOVED"
        meta = FileMetaDataset()
        old = getattr(ds, "file_meta", None)
        sop_class = ds.get("SOPClassUID") or (old.get("MediaStorageSOPClassUID") if old else None)
        if sop_class:
            meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if old is not None and "TransferSyntaxUID" in old:
            meta.TransferSyntaxUID = old.TransferSyntaxUID
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
        return ds

    def _clean(self, ds: Dataset) -> None:
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private:
                del ds[tag]
                continue
            action = action_for(tag.group, tag.element)
            if action is None:
                if elem.VR == "SQ":
                    for item in elem.value or ():
                        self._clean(item)
                continue
            if action == "X":
                del ds[tag]
            elif action == "Z":
                _empty(elem)
            elif action == "D":
                self._dummy(elem)
            elif action in ("U", "U*"):
                if elem.VR == "UI":
                    _map(elem, self.uid)
                elif elem.VR == "SQ":
                    for item in elem.value or ():
                        self._clean(item)
                else:
                    _empty(elem)
        # Group 0002 never lives in the dataset body; the meta is rebuilt by `apply`.
        for elem in [e for e in ds if e.tag.group == 0x0002]:
            del ds[elem.tag]

    def _dummy(self, elem: DataElement) -> None:
        vr = elem.VR
        if elem.value is None or elem.value == "" or elem.value == b"":
            return  # empty in the source: empty stays valid wherever it was
        if vr == "SQ":
            for item in elem.value or ():
                self._clean(item)
        elif vr == "UI":
            _map(elem, self.uid)
        elif vr == "PN":
            elem.value = self.token
        elif vr in ("LO", "SH", "LT", "ST", "UT", "UC", "AE", "CS"):
            elem.value = "REMOVED" if vr != "AE" else "ANON"
        elif vr == "DA":
            elem.value = "19000101"
        elif vr == "TM":
            elem.value = "000000"
        elif vr == "DT":
            elem.value = "19000101000000"
        elif vr == "AS":
            elem.value = "000Y"
        elif vr in ("DS", "IS"):
            elem.value = "0"
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
            elem.value = 0
        elif vr == "UR":
            elem.value = "http://removed.invalid"
        else:  # OB, OW, UN and the rest: nothing identifying can stay
            elem.value = b""


def _empty(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence([])
    elif elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "OB", "OW", "UN"):
        elem.value = None
    else:
        elem.value = ""


def _map(elem: DataElement, uid: Callable[[str], str]) -> None:
    v: Any = elem.value
    if v is None or v == "":
        return
    if isinstance(v, str):
        elem.value = uid(v)
    else:
        elem.value = [uid(x) for x in v]


def token_now() -> str:
    """A folder-name token from the clock and randomness only (never from DICOM values)."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
