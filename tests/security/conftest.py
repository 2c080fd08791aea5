"""Fixtures for the security suite: each test performs a real attack (a hostile image, command,
archive or client) against a real berthd, berth-runtime or berth-registry, and asserts that it
fails. The daemon fixtures are the daemon suite's: each berthd has its own directories and its
own network namespace, and teardown removes everything even when a test failed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "berth_daemon_conftest", Path(__file__).resolve().parents[1] / "daemon" / "conftest.py")
_daemon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_daemon)

REPO = _daemon.REPO
BUILD = _daemon.BUILD
Daemon = _daemon.Daemon
cleanup_daemon = _daemon.cleanup_daemon
make_netns = _daemon.make_netns
remove_netns = _daemon.remove_netns
busybox_tar = _daemon.busybox_tar  # the session fixture, shared as it is
workdir = _daemon.workdir
make_daemon = _daemon.make_daemon
pytest_collection_modifyitems = _daemon.pytest_collection_modifyitems

# $BERTH_BIN_DIR points the suite at another build's helpers (with $BERTHD at its berthd), which
# is how a test is shown to fail on the vulnerable code: BERTH_BIN_DIR=/tmp/old BERTHD=/tmp/old/berthd.
BIN = Path(os.environ.get("BERTH_BIN_DIR", BUILD)).resolve()


def start_daemon(busybox_tar, extra_args=()) -> Daemon:
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BIN / "berth-runtime"),
                                 "--monitor-path", str(BIN / "berth-monitor"),
                                 "--init-path", str(BIN / "berth-init"), *extra_args])
    try:
        d.start()
        d.docker("load", "-i", str(busybox_tar))
    except BaseException:
        cleanup_daemon(d)
        raise
    return d


@pytest.fixture(scope="module")
def engine(busybox_tar):
    """One berthd per test module with busybox loaded; every container is removed at the end."""
    d = start_daemon(busybox_tar)
    try:
        yield d
    finally:
        cleanup_daemon(d)


@pytest.fixture
def host_marker():
    """A file at the host's / that no container may ever list or read: seeing it is an escape."""
    name = f"berth-escape-marker-{os.getpid()}-{os.urandom(4).hex()}"
    path = Path("/") / name
    path.write_text("host\n")
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)
