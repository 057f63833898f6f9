"""Safe expansion of zip archives and DICOMDIR media.

Zip: every entry name is checked before anything is written (no absolute paths, drive letters,
``..`` components, symlinks or duplicates), entries are extracted into a fresh directory created
for this archive, byte counts are enforced while copying (declared sizes can lie), and the whole
archive is capped in entry count and total size.

DICOMDIR: ``ReferencedFileID`` components are checked and every resolved file must lie inside the
media root (pydicom CVE-2026-32711 was exactly this).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field

from medview.core.errors import ArchiveError
from medview.core.records import SkippedFile

MAX_ZIP_ENTRIES = 100_000
MAX_ZIP_TOTAL_BYTES = 32 * 1024**3
MAX_ZIP_RATIO = 1000  # uncompressed/compressed above this is a bomb, not a DICOM file
_DRIVE = re.compile(r"^[A-Za-z]:")
_FILEID_COMPONENT = re.compile(r"^[^/\\:\x00]{1,255}$")


@dataclass
class Expanded:
    """Files found under the inputs, plus what was refused and why."""

    files: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _entry_problem(name: str, info: zipfile.ZipInfo) -> str | None:
    if "\x00" in name:
        return "entry name contains a NUL byte"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path in archive entry"
    parts = re.split(r"[/\\]+", name)
    if any(p == ".." for p in parts):
        return "'..' in archive entry path (zip-slip)"
    mode = (info.external_attr >> 16) & 0o170000
    if mode == stat.S_IFLNK:
        return "symbolic link in archive"
    return None


def extract_zip(zip_path: str, dest_root: str) -> Expanded:
    """Extract ``zip_path`` into a fresh directory under ``dest_root``."""
    out = Expanded()
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ArchiveError(f"not a readable zip archive: {e}", path=zip_path) from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ArchiveError(
                f"{len(infos)} entries exceeds the cap of {MAX_ZIP_ENTRIES}", path=zip_path
            )
        declared = sum(i.file_size for i in infos)
        if declared > MAX_ZIP_TOTAL_BYTES:
            raise ArchiveError(
                f"archive would expand to {declared / 1024**3:.1f} GiB "
                f"(cap {MAX_ZIP_TOTAL_BYTES // 1024**3} GiB)",
                path=zip_path,
            )
        dest = tempfile.mkdtemp(prefix="zip-", dir=dest_root)
        real_dest = os.path.realpath(dest)
        seen: set[str] = set()
        written = 0
        for info in infos:
            label = f"{zip_path}!{info.filename}"
            if info.is_dir():
                continue
            problem = _entry_problem(info.filename, info)
            norm = os.path.normpath(info.filename.replace("\\", "/")).lower()
            if problem is None and norm in seen:
                problem = "duplicate entry name"
            if (
                problem is None
                and info.compress_size
                and info.file_size / info.compress_size > MAX_ZIP_RATIO
            ):
                problem = f"compression ratio above {MAX_ZIP_RATIO}:1 (zip bomb)"
            if problem:
                out.skipped.append(SkippedFile(label, problem, "ArchiveError"))
                continue
            seen.add(norm)
            target = os.path.join(real_dest, *[p for p in norm.split("/") if p not in ("", ".")])
            if os.path.commonpath([real_dest, os.path.realpath(target)]) != real_dest:
                out.skipped.append(
                    SkippedFile(
                        label, "entry resolves outside the extraction directory", "ArchiveError"
                    )
                )
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                written += _copy_entry(zf, info, target, MAX_ZIP_TOTAL_BYTES - written)
            except ArchiveError as e:
                out.skipped.append(SkippedFile(label, e.message, "ArchiveError"))
                continue
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
                out.skipped.append(SkippedFile(label, f"cannot extract: {e}", "ArchiveError"))
                continue
            out.files.append(target)
    return out


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, budget: int) -> int:
    limit = min(info.file_size, budget)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    n = 0
    try:
        with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                n += len(chunk)
                if n > limit:
                    raise ArchiveError("entry expands beyond its declared size or the archive cap")
                dst.write(chunk)
    except BaseException:
        os.unlink(target)
        raise
    return n


def _find_case_insensitive(root: str, parts: list[str]) -> str | None:
    """Media written on case-insensitive systems may differ in case from the DICOMDIR."""
    cur = root
    for part in parts:
        try:
            names = {n.lower(): n for n in os.listdir(cur)}
        except OSError:
            return None
        hit = names.get(part.lower())
        if hit is None:
            return None
        cur = os.path.join(cur, hit)
    return cur


def read_dicomdir(path: str) -> Expanded:
    """Files referenced by a DICOMDIR, each checked to lie inside the media root."""
    out = Expanded()
    from medview.io.dicom import pydicom

    root = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    try:
        ds = pydicom.dcmread(path)
        records = ds.get("DirectoryRecordSequence") or []
    except Exception as e:  # untrusted media: any parse failure is an ArchiveError
        raise ArchiveError(f"unreadable DICOMDIR: {type(e).__name__}: {e}", path=path) from e
    for rec in records:
        fid = rec.get("ReferencedFileID")
        if fid is None:
            continue
        parts = (
            [str(p) for p in fid]
            if isinstance(fid, pydicom.multival.MultiValue)
            else re.split(r"[\\/]", str(fid))
        )
        label = f"{path}: {'/'.join(parts)}"
        if not parts or any(
            p in ("", ".", "..") or not _FILEID_COMPONENT.match(p) or _DRIVE.match(p) for p in parts
        ):
            out.skipped.append(
                SkippedFile(
                    label, "DICOMDIR reference with an unsafe path component", "ArchiveError"
                )
            )
            continue
        target = os.path.join(root, *parts)
        if not os.path.exists(target):
            target = _find_case_insensitive(root, parts) or target
        real = os.path.realpath(target)
        if os.path.commonpath([root, real]) != root:
            out.skipped.append(
                SkippedFile(
                    label, "DICOMDIR reference resolves outside the media root", "ArchiveError"
                )
            )
            continue
        if not os.path.isfile(real):
            out.skipped.append(
                SkippedFile(label, "file referenced by DICOMDIR is missing", "ArchiveError")
            )
            continue
        out.files.append(real)
    return out
