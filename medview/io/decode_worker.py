"""Pixel decoding of one file, run inside an isolated worker process.

Native codecs (OpenJPEG, CharLS, libjpeg, RLE) parse untrusted bytes; a crash there must kill
only this worker, never MedView. Keep this module light: it is preloaded by the fork server.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pydicom.config
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

# Measured on the demo CT (512 x 512 JPEG-LS): CharLS 6 ms per slice vs libjpeg 18 ms, which
# pydicom would pick by default. RLE: the Rust plugin beats pydicom's pure-Python decoder.
PREFERRED_PLUGIN = {
    str(JPEGLSLossless): "pyjpegls",
    str(JPEGLSNearLossless): "pyjpegls",
    str(RLELossless): "pylibjpeg",
}


def decode_file(path: str) -> np.ndarray:
    """All frames of ``path`` as stored values, shape ``(frames, rows, cols[, 3])``.

    Colour comes back as RGB (YBR converted, palette applied); grey values are the stored values
    (modality rescale is applied by the loader).
    """
    # the header parser already decided this is DICOM (files without meta need force)
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit
            else ExplicitVRLittleEndian
            if little
            else ExplicitVRBigEndian
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    plugin = PREFERRED_PLUGIN.get(str(ds.file_meta.TransferSyntaxUID))
    arr = None
    if plugin:
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            arr = ds.pixel_array
        except Exception:  # plugin missing or refusing: fall back to pydicom's choice
            ds.pixel_array_options(decoding_plugin="")
    if arr is None:
        arr = ds.pixel_array  # pydicom converts YBR to RGB by default
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        if arr.dtype.itemsize > 1:  # 16-bit LUT entries: keep the top 8 bits for display
            lut_bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
            arr = (arr >> max(0, lut_bits - 8)).astype(np.uint8)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    colour = spp == 3 or photometric == "PALETTE COLOR"
    if frames == 1:
        arr = arr[np.newaxis]
    if colour and arr.ndim == 3:  # single grey-looking frame of a colour image: keep (f,y,x,3)
        arr = arr[np.newaxis]
    return np.ascontiguousarray(arr)
