"""Zip archives and DICOMDIR media: hostile entries refused, nothing lands outside."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import pydicom
import pytest

from medview.io.archive import extract_zip, read_dicomdir
from medview.io.scan import scan
from tests.conftest import PYDICOM_FILES, write_ct


def _zip_with(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)


def test_zip_of_a_series_imports(tmp_path: Path) -> None:
    files = write_ct(tmp_path / "ct", n=5)
    _zip_with(tmp_path / "study.zip", [(f"study/{f.name}", f.read_bytes()) for f in files])
    result = scan([tmp_path / "study.zip"])
    assert len(result.series) == 1 and len(result.series[0].slices) == 5
    assert not result.skipped


def test_hostile_zip_entries_refused(tmp_path: Path) -> None:
    good = write_ct(tmp_path / "ct", n=3)
    canary = tmp_path / "canary"
    canary.mkdir()
    link = zipfile.ZipInfo("link.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        ("../canary/evil.dcm", b"x"),
        ("ok/../../canary/evil2.dcm", b"x"),
        ("/tmp/abs-evil.dcm", b"x"),
        ("C:/evil.dcm", b"x"),
        ("..\\canary\\evil3.dcm", b"x"),
        (link, b"/etc/passwd"),
        ("a/slice.dcm", good[0].read_bytes()),
        ("a/SLICE.dcm", good[1].read_bytes()),  # duplicate on case-insensitive systems
        ("b/slice2.dcm", good[2].read_bytes()),
        ("bomb.bin", b"\0" * 50_000_000),
    ]
    _zip_with(tmp_path / "evil.zip", entries)
    dest = tmp_path / "dest"
    dest.mkdir()
    out = extract_zip(str(tmp_path / "evil.zip"), str(dest))
    reasons = {s.path.split("!", 1)[1]: s.reason for s in out.skipped}
    assert "zip-slip" in reasons["../canary/evil.dcm"]
    assert "zip-slip" in reasons["ok/../../canary/evil2.dcm"]
    assert "absolute" in reasons["/tmp/abs-evil.dcm"]
    assert "absolute" in reasons["C:/evil.dcm"]
    assert "zip-slip" in reasons["..\\canary\\evil3.dcm"]
    assert "symbolic link" in reasons["link.dcm"]
    assert "duplicate" in reasons["a/SLICE.dcm"]
    assert "bomb" in reasons["bomb.bin"]
    assert len(out.files) == 2
    assert list(canary.iterdir()) == []
    assert not Path("/tmp/abs-evil.dcm").exists()
    real_dest = os.path.realpath(dest)
    for f in out.files:
        assert os.path.realpath(f).startswith(real_dest + os.sep)
    # everything written lies in one fresh directory under dest
    assert len(list(dest.iterdir())) == 1


def test_extraction_dir_removed_after_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = write_ct(tmp_path / "ct", n=2)
    _zip_with(tmp_path / "s.zip", [(f.name, f.read_bytes()) for f in files])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    scan([tmp_path / "s.zip"])
    assert list(tmp.iterdir()) == []


def test_pydicom_dicomdir_media_import(tmp_path: Path) -> None:
    media = tmp_path / "media"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests", media)
    via_dicomdir = scan([media / "DICOMDIR"])
    via_folder = scan([media])
    assert via_dicomdir.series and len(via_dicomdir.series) == len(via_folder.series)
    n_files = sum(len(s.instances) for s in via_dicomdir.series)
    assert n_files == sum(len(s.instances) for s in via_folder.series)


def test_dicomdir_with_escaping_references(tmp_path: Path) -> None:
    media = tmp_path / "media"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests", media)
    outside = tmp_path / "outside.dcm"
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", outside)
    ds = pydicom.dcmread(media / "DICOMDIR")
    refs = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    refs[0].ReferencedFileID = ["..", "outside.dcm"]
    refs[1].ReferencedFileID = ["/etc", "passwd"]
    refs[2].ReferencedFileID = ["C:", "evil"]
    ds.save_as(media / "DICOMDIR")
    out = read_dicomdir(str(media / "DICOMDIR"))
    bad = [s for s in out.skipped if "unsafe" in s.reason or "outside" in s.reason]
    assert len(bad) == 3
    assert str(outside) not in out.files and os.path.realpath(outside) not in out.files
    root = os.path.realpath(media)
    assert all(os.path.realpath(f).startswith(root + os.sep) for f in out.files)


def test_dicomdir_symlink_escape(tmp_path: Path) -> None:
    media = tmp_path / "media"
    shutil.copytree(PYDICOM_FILES / "dicomdirtests", media)
    ds = pydicom.dcmread(media / "DICOMDIR")
    ref = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    target = media.joinpath(*ref.ReferencedFileID)
    target.unlink()
    target.symlink_to(PYDICOM_FILES / "CT_small.dcm")  # points outside the media root
    out = read_dicomdir(str(media / "DICOMDIR"))
    assert any("outside the media root" in s.reason for s in out.skipped)
