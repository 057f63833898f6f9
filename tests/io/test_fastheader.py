"""The fast header walk gives exactly the records pydicom's parse gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from medview.core.errors import MedviewError
from medview.io.fastheader import read_fast_header
from medview.io.header import WANTED_TAGS, parse_header
from tests.conftest import DEMO, PYDICOM_FILES, pydicom_data_dir, write_ct
from tests.io.test_bad_input import corpus


def _outcome(path: Path, fast: bool) -> object:
    try:
        return parse_header(path, fast=fast)
    except MedviewError as e:
        return (type(e).__name__, e.message)


def _fast_applies(path: Path) -> bool:
    with open(path, "rb") as fp:
        head = fp.read(1024)
        return read_fast_header(fp, path.stat().st_size, head, WANTED_TAGS) is not None


def test_identical_records_on_every_corpus_and_demo_file() -> None:
    files = corpus() + sorted(DEMO.rglob("*.dcm"))
    fast_used = 0
    for f in files:
        if _fast_applies(f):
            fast_used += 1
        assert _outcome(f, fast=True) == _outcome(f, fast=False), f
    assert fast_used > 200  # the fast walk really covers the common files


def test_identical_on_generated_series(tmp_path: Path) -> None:
    for ts in ("explicit", "jpeg-ls", "rle"):
        for f in write_ct(
            tmp_path / ts, n=3, transfer_syntax=ts, seed=ts, patient_name="Müller^Jürgen"
        ):
            assert _fast_applies(f)
            assert parse_header(f) == parse_header(f, fast=False)
            assert parse_header(f).patient_name == "Müller^Jürgen"


@pytest.mark.parametrize(
    "name", ["MR_small_bigendian.dcm", "no_meta.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm"]
)
def test_unusual_files_fall_back(name: str) -> None:
    assert not _fast_applies(PYDICOM_FILES / name)


def test_enhanced_multiframe_falls_back() -> None:
    assert not _fast_applies(pydicom_data_dir() / "eCT_Supplemental.dcm")


def test_truncated_and_corrupt_fall_back(tmp_path: Path) -> None:
    f = write_ct(tmp_path / "ct", n=1, transfer_syntax="jpeg-ls")[0]
    data = f.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-20])  # fragment cut short, no delimiter
    assert not _fast_applies(tmp_path / "cut.dcm")
    assert "truncated" in str(_outcome(tmp_path / "cut.dcm", fast=True))


def test_tables_match_pydicoms_dictionary() -> None:
    """The tags and transfer syntaxes written out in `header` and `fastheader` (so that they
    need not import pydicom) are pydicom's."""
    import pydicom
    from pydicom._uid_dict import UID_dictionary

    from medview.io import fastheader
    from medview.io.header import TEXT_TAGS, T

    for keyword, tag in {**T, **TEXT_TAGS}.items():
        assert pydicom.datadict.tag_for_keyword(keyword) == tag, keyword
    syntaxes = [pydicom.uid.UID(k) for k, v in UID_dictionary.items() if v[1] == "Transfer Syntax"]
    fast = {u for u in syntaxes if u.is_little_endian and not u.is_deflated}
    assert fast == fastheader._FAST_TS
    assert {u for u in fast if u.is_implicit_VR} == fastheader._IMPLICIT_TS


def test_load_of_ordinary_files_never_imports_pydicom(tmp_path: Path) -> None:
    """`medview load` of ordinary files (and a stray text file beside them) takes the fast path
    throughout: pydicom's import alone costs about 0.25 s, more than the rest of a 300-file
    load."""
    import subprocess
    import sys

    write_ct(tmp_path / "ct", n=4)
    (tmp_path / "ct" / "README.txt").write_text("Series notes\n")
    args = ["load", str(tmp_path / "ct"), "--out", str(tmp_path / "o.nii")]
    code = (
        "import sys\n"
        "from medview.cli import main\n"
        f"assert main({args!r}) == 0\n"
        "print(sorted(m for m in ('pydicom', 'SimpleITK', 'nibabel') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout + run.stderr


@pytest.mark.parametrize(
    "module",
    [
        "medview.export.bundle",
        "medview.export.deid",
        "medview.export.dicom_objects",
        "medview.export.series_writer",
        "medview.pacs.service",
        "medview.pacs.dimse",
        "medview.pacs.dicomweb",
        "medview.pacs.query",
        "medview.pacs.store",
        "medview.io.decode_worker",
    ],
)
def test_every_module_reading_dicom_sets_pydicom_up_for_untrusted_files(module: str) -> None:
    """pydicom is no longer set up by importing `medview.io`: each module that reads DICOM
    with it must do so (invalid values ignored, never a warning quoting patient data)."""
    import subprocess
    import sys

    code = (
        f"import {module}\n"
        "import pydicom.config as c\n"
        "print(c.settings.reading_validation_mode == c.IGNORE)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "True", run.stderr
