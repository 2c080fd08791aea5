"""`docker run --init`: berth-init as PID 1 reaps orphans, forwards signals and passes the
command's exit status through."""

from __future__ import annotations

import subprocess
import time

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


def test_init_is_pid_1_and_the_command_its_child(engine):
    out = engine.docker("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $PPID").stdout
    cmdline, ppid = out.splitlines()
    assert cmdline.startswith("/sbin/docker-init -- sh -c"), cmdline
    assert ppid == "1"


def zombies_under(pid: int) -> int:
    stats = subprocess.run(["ps", "--ppid", str(pid), "-o", "stat="], capture_output=True, text=True).stdout.split()
    return sum(s.startswith("Z") for s in stats)


def test_init_reaps_orphans_and_passes_the_exit_code(engine):
    # The orphaned `sleep` is reparented to PID 1: `sleep 100` never reaps it, berth-init does.
    for init, expected in ((["--init"], 0), ([], 1)):
        cid = engine.docker("run", "-d", *init, "busybox", "sh", "-c", "(sleep 0.1 &); exec sleep 100").stdout.strip()
        try:
            pid = int(engine.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout)
            time.sleep(0.6)
            assert zombies_under(pid) == expected, init
        finally:
            engine.docker("rm", "-f", cid)
    p = engine.docker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7", check=False)
    assert p.returncode == 7, p.stderr


def test_init_forwards_the_stop_signal(engine):
    cid = engine.docker("run", "-d", "--init", "busybox", "sh", "-c", "trap 'exit 9' TERM; while true; do sleep 0.1; done").stdout.strip()
    try:
        time.sleep(0.3)
        engine.docker("stop", "-t", "5", cid)
        assert engine.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "9"
    finally:
        engine.docker("rm", "-f", cid)


def test_missing_command_under_init_exits_127(engine):
    p = engine.docker("run", "--rm", "--init", "busybox", "/nonexistent", check=False)
    assert p.returncode == 127
    assert "/nonexistent" in p.stderr
