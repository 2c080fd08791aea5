"""Restart policies, manual stops and the daemon coming back: `--restart`, live restore, a
berthd killed with SIGKILL, and a lost monitor."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from conftest import BUILD, Daemon, cleanup_daemon, requires_docker_cli

pytestmark = requires_docker_cli


def inspect(d, ref):
    return json.loads(d.docker("inspect", ref).stdout)[0]


def wait_for(predicate, timeout=15, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def fresh(workdir, busybox_tar):
    """A berthd of its own, for tests that kill or restart the daemon."""
    d = Daemon(workdir, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                    "--monitor-path", str(BUILD / "berth-monitor")])
    try:
        d.start()
        d.docker("load", "-i", str(busybox_tar))
        yield d
    finally:
        cleanup_daemon(d)


def test_on_failure_restarts_up_to_the_limit(engine):
    engine.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    try:
        state = wait_for(lambda: (s := inspect(engine, "flaky"))["RestartCount"] == 2 and s["State"]["Status"] == "exited" and s,
                         message="two restarts then exited")
        assert state["State"]["ExitCode"] == 3
        time.sleep(0.5)
        assert inspect(engine, "flaky")["RestartCount"] == 2
    finally:
        engine.docker("rm", "-f", "flaky")


def test_on_failure_does_not_restart_a_clean_exit(engine):
    engine.docker("run", "-d", "--name", "clean", "--restart", "on-failure", "busybox", "true")
    try:
        wait_for(lambda: inspect(engine, "clean")["State"]["Status"] == "exited", message="exit")
        time.sleep(0.5)
        assert inspect(engine, "clean")["RestartCount"] == 0
    finally:
        engine.docker("rm", "-f", "clean")


def test_always_restarts_until_stopped_by_hand(engine):
    engine.docker("run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    try:
        wait_for(lambda: inspect(engine, "loop")["RestartCount"] >= 2, message="restarts")
        engine.docker("stop", "-t", "1", "loop")
        count = inspect(engine, "loop")["RestartCount"]
        time.sleep(1)
        s = inspect(engine, "loop")
        assert s["State"]["Status"] == "exited" and s["RestartCount"] == count
    finally:
        engine.docker("rm", "-f", "loop")


def test_invalid_policies_are_400(engine):
    p = engine.docker("run", "--restart", "sometimes", "busybox", "true", check=False)
    assert p.returncode == 125 and "invalid restart policy" in p.stderr
    p = engine.docker("run", "--rm", "--restart", "always", "busybox", "true", check=False)
    assert p.returncode == 125 and "conflicting options" in p.stderr
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_running_container_and_its_logs_survive_a_daemon_restart(fresh):
    cid = fresh.docker("run", "-d", "busybox", "sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done").stdout.strip()
    wait_for(lambda: "line3" in fresh.docker("logs", cid).stdout, message="output")
    pid = inspect(fresh, cid)["State"]["Pid"]
    fresh.stop()
    time.sleep(0.5)  # the container keeps writing while no daemon runs
    os.kill(pid, 0)
    fresh.start()
    s = inspect(fresh, cid)
    assert s["State"]["Running"] and s["State"]["Pid"] == pid
    logs = fresh.docker("logs", cid).stdout.split()
    n = len(logs)
    assert logs[:n] == [f"line{i}" for i in range(n)] and n >= 8
    fresh.docker("stop", "-t", "1", cid)
    assert inspect(fresh, cid)["State"]["Status"] == "exited"


def test_sigkill_of_the_daemon_loses_nothing_acknowledged(fresh):
    created = [fresh.docker("create", "--name", f"k{i}", "busybox", "true").stdout.strip() for i in range(5)]
    runner = fresh.docker("run", "-d", "--name", "runner", "busybox", "sleep", "100").stdout.strip()
    assert fresh.docker("run", "--name", "done", "busybox", "sh", "-c", "exit 4", check=False).returncode == 4
    fresh.stop(signal.SIGKILL)
    fresh.start()
    names = set(fresh.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    assert {f"k{i}" for i in range(5)} | {"runner", "done"} <= names
    assert inspect(fresh, "runner")["State"]["Running"]
    assert inspect(fresh, "done")["State"]["ExitCode"] == 4
    assert all(inspect(fresh, c)["State"]["Status"] == "created" for c in created)
    fresh.docker("rm", "-f", "runner")


def test_container_that_exits_while_the_daemon_is_down_is_recorded_and_restarted(fresh):
    fresh.docker("run", "-d", "--name", "brief", "busybox", "sh", "-c", "sleep 1; exit 5")
    fresh.docker("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "100")
    fresh.docker("run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox", "sleep", "100")
    fresh.docker("stop", "-t", "0", "always", "unless")
    fresh.stop()
    time.sleep(1.5)
    fresh.start()
    wait_for(lambda: inspect(fresh, "brief")["State"]["Status"] == "exited", message="brief exited")
    assert inspect(fresh, "brief")["State"]["ExitCode"] == 5
    # `always` comes back when the daemon starts even after a manual stop; `unless-stopped` does not.
    wait_for(lambda: inspect(fresh, "always")["State"]["Running"], message="always running again")
    assert inspect(fresh, "unless")["State"]["Status"] == "exited"


def test_lost_monitor_marks_the_container_exited(fresh):
    cid = fresh.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    data = fresh.data_root / "containers" / cid / "container.json"
    monitor = json.loads(data.read_text())["monitorPid"]
    assert monitor > 0
    os.kill(monitor, signal.SIGKILL)
    s = wait_for(lambda: (s := inspect(fresh, cid))["State"]["Status"] == "exited" and s, message="exited")
    assert s["State"]["ExitCode"] == 255 and "monitor" in s["State"]["Error"]
