"""Atomic file writes: write to a temporary sibling, fsync, rename over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    ``suffix`` keeps the extension writers look at (e.g. ``.nii.gz``). On error the temporary
    file is removed and ``target`` is left untouched.
    """
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(
    target: str | os.PathLike[str], write: Callable[[str], None], suffix: str = ""
) -> None:
    with atomic_path(target, suffix) as tmp:
        write(tmp)
