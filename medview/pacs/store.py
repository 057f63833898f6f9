"""Where received instances are written: ``<data>/received/<yyyymmdd>/<random>.dcm``.

Every name comes from the clock and ``uuid4``, never from a dataset value (a UID or a name
such as ``../../x`` can never pick the path). Every write goes to a temporary sibling that is
fsynced and renamed, after a containment check, so a file exists under its final name only
once it is complete; only such files are handed on to be indexed.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import medview.io.dicom  # noqa: F401  (pydicom set up for untrusted files)
from medview.core.errors import PacsError
from medview.core.paths import data_dir

if TYPE_CHECKING:
    from pydicom import Dataset


def received_dir() -> Path:
    return data_dir() / "received"


class ReceivedStore:
    """A folder that received instances are written into, one complete file at a time."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else received_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()

    def _target(self) -> Path:
        target = (self.root / time.strftime("%Y%m%d") / f"{uuid.uuid4().hex}.dcm").resolve()
        # defence in depth: the name has no dataset value in it, and it must land in the store
        if not target.is_relative_to(self.root):
            raise PacsError("refused to write outside the receive folder", path=target)
        target.parent.mkdir(exist_ok=True)
        return target

    def add_file(self, source: str | os.PathLike[str]) -> Path:
        """Copy a complete received file (pynetdicom's chunked temp file) into the store."""
        from medview.core.atomic import atomic_path

        target = self._target()
        with atomic_path(target, ".part") as tmp:
            shutil.copyfile(source, tmp)
        return target

    def add_dataset(self, ds: Dataset) -> Path:
        """Write a dataset (e.g. from WADO-RS) in the DICOM file format into the store."""
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        from medview.core.atomic import atomic_path

        if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
            meta = FileMetaDataset()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.preamble = b"\x00" * 128
        target = self._target()
        with atomic_path(target, ".part") as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        return target
