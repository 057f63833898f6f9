"""A narrow, fast header walk for the common case; anything unusual goes to pydicom.

Hand-written with a measured reason: pydicom's general-purpose element generator costs about
0.5 ms per file, which made indexing plus loading a 300-slice CT only 1.7x faster than
SimpleITK (target 3x) and caps header indexing near 2,500 files/s on two cores.

What it handles: files with a preamble and file meta, explicit or implicit VR little endian
datasets (every compressed transfer syntax is explicit VR little endian), a character set that
is ASCII, Latin-1 or UTF-8, and no functional-group sequences. It walks top-level elements,
keeps the values of the wanted tags, skips everything else (sequences included) and stops at
Pixel Data. On anything else (big endian, deflate, no preamble, other character sets, enhanced
multi-frame, out-of-order tags, a length past the end of the file, no Pixel Data) it returns
None and the caller parses the file with pydicom, which reports problems in detail.
`tests/io/test_fastheader.py` checks both paths give identical records on every corpus file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
# little-endian, not deflated transfer syntaxes the fast walk takes (DICOM PS3.6), and the
# implicit VR ones among them; tests/io/test_fastheader.py checks both against pydicom's UID
# dictionary, which is not imported here (pydicom's import costs about 0.25 s)
_FAST_TS = frozenset(
    {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.1.98",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.52",
        "1.2.840.10008.1.2.4.53",
        "1.2.840.10008.1.2.4.54",
        "1.2.840.10008.1.2.4.55",
        "1.2.840.10008.1.2.4.56",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.58",
        "1.2.840.10008.1.2.4.59",
        "1.2.840.10008.1.2.4.60",
        "1.2.840.10008.1.2.4.61",
        "1.2.840.10008.1.2.4.62",
        "1.2.840.10008.1.2.4.63",
        "1.2.840.10008.1.2.4.64",
        "1.2.840.10008.1.2.4.65",
        "1.2.840.10008.1.2.4.66",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.92",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.94",
        "1.2.840.10008.1.2.4.95",
        "1.2.840.10008.1.2.4.100",
        "1.2.840.10008.1.2.4.100.1",
        "1.2.840.10008.1.2.4.101",
        "1.2.840.10008.1.2.4.101.1",
        "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.102.1",
        "1.2.840.10008.1.2.4.103",
        "1.2.840.10008.1.2.4.103.1",
        "1.2.840.10008.1.2.4.104",
        "1.2.840.10008.1.2.4.104.1",
        "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.105.1",
        "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.106.1",
        "1.2.840.10008.1.2.4.107",
        "1.2.840.10008.1.2.4.108",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.4.204",
        "1.2.840.10008.1.2.4.205",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.6.1",
        "1.2.840.10008.1.2.6.2",
        "1.2.840.10008.1.2.7.1",
        "1.2.840.10008.1.2.7.2",
        "1.2.840.10008.1.2.7.3",
        "1.2.840.10008.1.20",
    }
)
_IMPLICIT_TS = frozenset({"1.2.840.10008.1.2"})

_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_FALLBACK_TAGS = frozenset({0x52009229, 0x52009230})  # shared / per-frame functional groups
_CHARSET_TAG = 0x00080005
_ENCODINGS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
MAX_VALUE = 1 << 20  # a wanted value larger than this is not a header value we trust
MAX_DEPTH = 32
_CHUNK = 1 << 16  # bytes of the header read at a time

_HH = struct.Struct("<HH")
_I = struct.Struct("<I")
_H = struct.Struct("<H")


class _Fallback(Exception):
    pass


@dataclass(frozen=True)
class FastHeader:
    values: dict[int, bytes]
    transfer_syntax: str
    media_class: str
    pixel: tuple[int, int] | None  # (offset, length or -1 when encapsulated)
    text_encoding: str


def read_fast_header(
    fp: BinaryIO, size: int, head: bytes, wanted: frozenset[int]
) -> FastHeader | None:
    """Walk the header of the open file ``fp`` (positioned anywhere). None means: use pydicom."""
    if len(head) < 144 or head[128:132] != b"DICM":
        return None
    try:
        return _read(fp, size, wanted)
    except (_Fallback, struct.error, ValueError, UnicodeDecodeError, OSError):
        return None


def _exact(fp: BinaryIO, n: int) -> bytes:
    b = fp.read(n)
    if len(b) != n:
        raise _Fallback
    return b


def _element_header(fp: BinaryIO, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, header size) of the element at the file position."""
    b = fp.read(8)
    if len(b) < 8:
        raise EOFError
    group, elem = _HH.unpack_from(b)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:
        return tag, None, _I.unpack_from(b, 4)[0], 8
    vr = b[4:6]
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _Fallback
    if vr in _LONG_VRS:
        return tag, vr, _I.unpack(_exact(fp, 4))[0], 12
    return tag, vr, _H.unpack_from(b, 6)[0], 8


def _skip_undefined_sequence(fp: BinaryIO, implicit: bool, size: int) -> None:
    """Skip an undefined-length sequence (file positioned after its header)."""
    depth = 1  # open sequences
    while depth:
        try:
            tag, vr, length, _ = _element_header(fp, implicit)
        except EOFError:
            raise _Fallback from None
        if tag == _SEQ_END:
            depth -= 1
        elif tag in (_ITEM, _ITEM_END):
            if tag == _ITEM and length != _UNDEFINED:
                fp.seek(length, 1)
        elif length == _UNDEFINED:
            if vr == b"UN":
                raise _Fallback  # undefined-length UN switches to implicit VR inside
            depth += 1
            if depth > MAX_DEPTH:
                raise _Fallback
        else:
            if fp.tell() + length > size:
                raise _Fallback
            fp.seek(length, 1)


MAX_FRAGMENTS = 1_000_000


def _check_fragments(fp: BinaryIO, size: int) -> None:
    """Encapsulated Pixel Data must be whole: items inside the file, then a delimiter."""
    for _ in range(MAX_FRAGMENTS):
        b = fp.read(8)
        if len(b) < 8:
            raise _Fallback  # truncated
        group, elem = _HH.unpack_from(b)
        tag, length = group << 16 | elem, _I.unpack_from(b, 4)[0]
        if tag == _SEQ_END:
            return
        if tag != _ITEM or length == _UNDEFINED or fp.tell() + length > size:
            raise _Fallback
        fp.seek(length, 1)
    raise _Fallback


def _read(fp: BinaryIO, size: int, wanted: frozenset[int]) -> FastHeader | None:
    fp.seek(132)
    meta: dict[int, bytes] = {}
    while True:
        pos = fp.tell()
        peek = fp.read(2)
        if len(peek) < 2 or _H.unpack(peek)[0] != 0x0002:
            fp.seek(pos)
            break
        fp.seek(pos)
        tag, _vr, length, _ = _element_header(fp, implicit=False)
        if length == _UNDEFINED or length > MAX_VALUE:
            raise _Fallback
        meta[tag] = _exact(fp, length)
    ts = meta.get(0x00020010, b"").decode("ascii", "replace").strip(" \x00")
    if ts not in _FAST_TS:
        return None
    implicit = ts in _IMPLICIT_TS
    media_class = meta.get(0x00020002, b"").decode("ascii").strip(" \x00")

    values: dict[int, bytes] = {}
    last = -1
    # the dataset is walked in a buffer of the file's bytes (read in chunks), not element by
    # element from the file: a third of the time per element on headers of 350 elements
    base = fp.tell()  # file offset of buf[0]
    buf = fp.read(_CHUNK)
    pos = 0
    pixel: tuple[int, int] | None = None
    unpack_hh, unpack_i, unpack_h = _HH.unpack_from, _I.unpack_from, _H.unpack_from
    while True:
        if pos + 12 > len(buf):  # refill from the current element on
            base += pos
            fp.seek(base)
            buf = fp.read(_CHUNK)
            pos = 0
            if len(buf) < 8:
                return None  # no Pixel Data: not the common case
        group, elem = unpack_hh(buf, pos)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:
            vr = None
            length = unpack_i(buf, pos + 4)[0]
            pos += 8
        else:
            vr = buf[pos + 4 : pos + 6]
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise _Fallback
            if vr in _LONG_VRS:
                length = unpack_i(buf, pos + 8)[0]
                pos += 12
            else:
                length = unpack_h(buf, pos + 6)[0]
                pos += 8
        if tag <= last:
            raise _Fallback  # out of order or repeated: let pydicom judge
        last = tag
        where = base + pos  # file offset of the value
        if tag in _PIXEL_TAGS:
            pixel = (where, -1 if length == _UNDEFINED else length)
            if length == _UNDEFINED:
                fp.seek(where)
                _check_fragments(fp, size)
            break
        if tag in _FALLBACK_TAGS:
            raise _Fallback
        if length == _UNDEFINED:
            if not implicit and vr not in (b"SQ", b"UN"):
                raise _Fallback
            fp.seek(where)
            _skip_undefined_sequence(fp, implicit, size)
            base, buf, pos = fp.tell(), fp.read(_CHUNK), 0
            continue
        if where + length > size:
            raise _Fallback  # truncated: pydicom reports it precisely
        if tag in wanted or tag == _CHARSET_TAG:
            if length > MAX_VALUE:
                raise _Fallback
            if pos + length > len(buf):
                fp.seek(where)
                values[tag] = _exact(fp, length)
                base, buf, pos = where + length, fp.read(_CHUNK), 0
                continue
            values[tag] = buf[pos : pos + length]
        pos += length
        if pos > len(buf):  # skipped past the buffer: continue from there
            base += pos
            fp.seek(base)
            buf = fp.read(_CHUNK)
            pos = 0
    assert pixel is not None

    charset = values.get(_CHARSET_TAG, b"").decode("latin-1").strip(" \x00")
    encoding = _ENCODINGS.get(charset)
    if encoding is None:
        return None
    return FastHeader(values, str(ts), media_class, pixel, encoding)
