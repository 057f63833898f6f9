"""Worker processes end when MedView does, however it ended.

A process pool's workers block on their task queue and are never told that the application
died by SIGKILL, a crash or a logout; they were seen running under init 40 minutes later. Each
worker (and the forkserver that forks them) watches its parent instead and exits as soon as it
is re-parented.
"""

from __future__ import annotations

import os
import threading
import time

LIFELINE_ENV = "MEDVIEW_LIFELINE"  # the pid of the MedView process that owns the workers


def watch_parent(interval: float = 0.5) -> None:
    """Exit this process (no cleanup: its owner is gone) once its parent has changed."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="medview-lifeline", daemon=True).start()


def mark_owner() -> None:
    """Record this process as the owner of the workers it is about to start."""
    os.environ[LIFELINE_ENV] = str(os.getpid())


def watch_owner_if_child() -> None:
    """In a process started directly by the owner (a forkserver, a spawned worker): watch it,
    or exit at once when it is already gone. In the owner itself this does nothing."""
    owner = os.environ.get(LIFELINE_ENV)
    if not owner or not owner.isdigit() or int(owner) == os.getpid():
        return
    if int(owner) != os.getppid():  # the owner died while this process was starting
        os._exit(0)
    watch_parent()
