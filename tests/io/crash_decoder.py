"""A decoder that kills the process it runs in, standing in for a native codec crash."""

from __future__ import annotations

import os

import numpy as np

from medview.io.decode_worker import decode_file


def abort_on_crash_files(path: str) -> np.ndarray:
    if "crash" in os.path.basename(path):
        os.abort()  # SIGABRT, like a failed assertion inside a C decoder
    return decode_file(path)
