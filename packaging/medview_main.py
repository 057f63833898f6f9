"""The frozen MedView's entry point (PyInstaller runs this script): the same command line as
the ``medview`` command of a pip install. ``freeze_support`` first, so that the worker
processes MedView starts (model inference in a spawned process, decoding in a forkserver's
children) run their target instead of a second MedView."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from medview.cli import main

    sys.exit(main())
