"""Preloaded by the decoder's forkserver (and by nothing else): the forkserver watches the
MedView process that started it and exits with it (`medview.core.lifeline`)."""

from __future__ import annotations

from medview.core.lifeline import watch_owner_if_child

watch_owner_if_child()
