"""Fixtures for the berth CLI suite: a real berthd (the daemon suite's `Daemon` class and
busybox image helpers, imported from tests/daemon/conftest.py) driven by the `berth` binary.

The berth binary is $BERTH (default .build/debug/berth); the suite is skipped when it or
berthd is not built.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "berth_daemon_conftest", Path(__file__).resolve().parents[1] / "daemon" / "conftest.py")
_daemon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_daemon)

REPO = _daemon.REPO
BUILD = _daemon.BUILD
BERTHD = _daemon.BERTHD
Daemon = _daemon.Daemon
cleanup_daemon = _daemon.cleanup_daemon
busybox_tar = _daemon.busybox_tar  # the session fixture, shared as it is
BERTH = Path(os.environ.get("BERTH", BUILD / "berth")).resolve()


def pytest_collection_modifyitems(config, items):
    missing = [str(p) for p in (BERTH, BERTHD) if not (p.is_file() and os.access(p, os.X_OK))]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"not built: {', '.join(missing)} (swift build)")
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


def berth_env(d: Daemon) -> dict[str, str]:
    """Our environment without any DOCKER_/BERTH_ host, pointed at `d`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BERTH_"))}
    env["BERTH_HOST"] = d.host
    return env


def berth(d: Daemon, *args: str, check: bool = True, input: str | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs the berth binary against `d`; with `check`, a non-zero exit fails with both logs."""
    p = subprocess.run([str(BERTH), *args], capture_output=True, text=True, timeout=timeout,
                       input=input, env=berth_env(d), stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"berth {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n"
                             f"--- berthd log:\n{d.log()}")
    return p


@pytest.fixture(scope="module")
def engine(busybox_tar):
    """One berthd per module with busybox loaded by `berth load`; everything removed after."""
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                 "--monitor-path", str(BUILD / "berth-monitor")])
    try:
        d.start()
        d.loaded_output = berth(d, "load", "-i", str(busybox_tar)).stdout
        yield d
    finally:
        cleanup_daemon(d)
