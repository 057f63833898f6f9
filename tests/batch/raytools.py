"""Running ``medview batch`` and Ray clusters from the tests, and cleaning up after them: every
process a test starts carries a marker in its environment (Ray's workers, raylets and agents
inherit it), so the test kills exactly its own processes, never another test's Ray."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_outside_ci

BIN = Path(sys.executable).parent


def need_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        missing_outside_ci("Ray (pip install 'medview[cluster]')")


def marked_env(marker: str) -> dict[str, str]:
    """This process's environment plus the marker, token authentication on (Ray's default
    from 2.59; every process of one cluster needs the same token) and no usage reports."""
    env = dict(os.environ)
    env["MEDVIEW_TEST_RAY"] = marker
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.pop("QT_QPA_PLATFORM", None)
    return env


def marked(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"MEDVIEW_TEST_RAY={marker}".encode() in env.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_marked(marker: str, timeout: float = 15.0) -> None:
    """SIGKILL every process carrying ``marker`` until none is seen twice in a row, a second
    apart (Ray's agents can start after the raylet that spawns them was found)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        pids = marked(marker)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        quiet = 0 if pids else quiet + 1
        time.sleep(0.5 if pids else 1.0)


def processes_named(marker: str, title: str) -> list[int]:
    """Marked processes whose command line starts with ``title`` (Ray names its workers
    ``ray::ClassName``)."""
    out = []
    for pid in marked(marker):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if cmd.startswith(title):
            out.append(pid)
    return out


@contextlib.contextmanager
def ray_temp() -> Iterator[str]:
    """A short temp folder for Ray (its socket paths must stay under 108 characters)."""
    folder = tempfile.mkdtemp(prefix="mvray-", dir="/tmp")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def two_node_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node on this machine (``ray start``), one core each; yields the
    address and the environment (with the cluster's token) a driver needs."""
    marker = f"cluster-{secrets.token_hex(4)}"
    env = marked_env(marker)
    port = free_port()
    address = f"127.0.0.1:{port}"
    with ray_temp() as tmp:
        try:
            common = ["--num-cpus", "1", "--disable-usage-stats"]
            subprocess.run(
                [
                    BIN / "ray",
                    "start",
                    "--head",
                    "--port",
                    str(port),
                    "--temp-dir",
                    tmp,
                    "--node-ip-address",
                    "127.0.0.1",
                    "--include-dashboard",
                    "false",
                    *common,
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            subprocess.run(
                [
                    BIN / "ray",
                    "start",
                    "--address",
                    address,
                    "--node-ip-address",
                    "127.0.0.1",
                    *common,
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            yield address, env
        except subprocess.CalledProcessError as e:
            pytest.fail(f"ray start failed: {e.stderr.decode()[-2000:]}")
        finally:
            kill_marked(marker)


def batch_command(pipeline: Path, out: Path, *args: str | Path) -> list[str]:
    return [str(BIN / "medview"), "batch", str(pipeline), "--out", str(out), *map(str, args)]
