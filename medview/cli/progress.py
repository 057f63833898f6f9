"""The command line's one progress printer: ``message done/total`` rewritten in place on
stderr when it is a terminal (nothing when output is piped or JSON is asked for)."""

from __future__ import annotations

import sys

from medview.core.tasks import Progress, no_progress


def printer(enabled: bool = True) -> Progress:
    """A `Progress` callback for a subcommand; silent unless ``enabled`` and on a terminal."""
    if not enabled or not sys.stderr.isatty():
        return no_progress

    def show(done: int, total: int, message: str = "") -> None:
        end = "\n" if total and done >= total else ""
        sys.stderr.write(f"\r{message} {done}/{total}   {end}")
        sys.stderr.flush()

    return show
