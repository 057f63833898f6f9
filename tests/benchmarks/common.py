"""Benchmark helpers: medians of repeated runs, peak RSS in a fresh process, table printing."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_above_baseline(method: str, folder: Path) -> float:
    """MiB of peak RSS above the post-import baseline, for one run in a fresh interpreter
    (this process only: decoder workers are separate processes with their own memory)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from tests.benchmarks.methods import METHODS, prepare
prepare({method!r})
base = hwm()
METHODS[{method!r}]({str(folder)!r})
print(json.dumps((hwm() - base) / 1024))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(json.loads(r.stdout.strip().splitlines()[-1]))


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(line)
