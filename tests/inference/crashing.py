"""A model whose forward pass aborts the process, as a native crash in a library would."""

from __future__ import annotations

import os
from typing import Any


def aborting_segment(volume: Any, manifest: Any, **kwargs: Any) -> Any:
    from medview.inference import runner

    def forward(net: Any, batch: Any) -> Any:
        os.abort()

    runner._forward = forward
    return runner.segment(volume, manifest, **kwargs)
