"""`exec` of extra processes in a running container, and `ps`."""

import json
import os
import time

import pytest

from conftest import pid_alive, wait_for


@pytest.fixture
def running(rt):
    """A running container whose init is `sleep 100`: (id, init pid, bundle)."""
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    return cid, pid, b


def test_exec_prints_output(rt, running):
    cid, _, _ = running
    r = rt("exec", cid, "echo", "hi")
    assert r.out == "hi\n"


def test_exec_returns_exit_code_of_command(rt, running):
    cid, _, _ = running
    assert rt("exec", cid, "sh", "-c", "exit 7", check=False).rc == 7


def test_exec_process_file(rt, running):
    cid, _, _ = running
    proc = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo $WHO; id -u; pwd"],
        "env": ["PATH=/bin:/usr/bin", "WHO=from-process-json"],
        "cwd": "/tmp",
    }
    pf = rt.tmp / "process.json"
    pf.write_text(json.dumps(proc))
    r = rt("exec", "--process", pf, cid)
    assert r.out.split() == ["from-process-json", "1000", "/tmp"]


def test_exec_env(rt, running):
    cid, _, _ = running
    r = rt("exec", "--env", "FOO=bar", cid, "sh", "-c", "echo $FOO")
    assert r.out == "bar\n"


def test_exec_inherits_config_env(rt):
    b = rt.bundle("sleep", "100", edit=lambda c: c["process"]["env"].append("FROMCFG=yes"))
    cid, _ = rt.start_container(b)
    assert rt("exec", cid, "sh", "-c", "echo $FROMCFG").out == "yes\n"


def test_exec_cwd(rt, running):
    cid, _, _ = running
    assert rt("exec", "--cwd", "/tmp", cid, "pwd").out == "/tmp\n"


def test_exec_user(rt, running):
    cid, _, _ = running
    assert rt("exec", "--user", "1000:1000", cid, "id", "-u").out == "1000\n"
    assert rt("exec", "--user", "1000:1000", cid, "id", "-g").out == "1000\n"


def test_exec_detached_returns_at_once_with_pid_file(rt, running):
    cid, _, _ = running
    pf = rt.tmp / "exec.pid"
    t0 = time.monotonic()
    rt("exec", "-d", "--pid-file", pf, cid, "sleep", "100")
    assert time.monotonic() - t0 < 5
    pid = int(pf.read_text().strip())
    assert pid_alive(pid)
    # runc writes the pid file before its init has exec'd the process: wait for the exec.
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:2] == [b"sleep", b"100"],
             what="the exec'd process to run sleep 100")


def test_exec_shares_namespaces_with_init(rt, running):
    cid, initpid, b = running
    pf = rt.tmp / "exec.pid"
    rt("exec", "-d", "--pid-file", pf, cid, "sleep", "100")
    pid = int(pf.read_text().strip())
    for ns in ("pid", "mnt", "net", "uts", "ipc"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{initpid}/ns/{ns}"), ns
    # and the same cgroup as init
    assert open(f"/proc/{pid}/cgroup").read() == open(f"/proc/{initpid}/cgroup").read()


def test_exec_sees_container_hostname_and_init_as_pid_1(rt, running):
    cid, _, b = running
    assert rt("exec", cid, "hostname").out.strip() == "berth"
    ps = rt("exec", cid, "ps", "-o", "pid,args").out.splitlines()
    pid1 = [l.split(None, 1) for l in ps[1:] if l.split()[0] == "1"]
    assert pid1 and pid1[0][1].strip() == "sleep 100", ps


def test_exec_in_stopped_container_fails(rt):
    b = rt.bundle("true")
    cid, _ = rt.start_container(b)
    rt.wait_status(cid, "stopped")
    r = rt("exec", cid, "true", check=False)
    assert r.rc != 0 and r.err.strip()


def test_exec_of_missing_binary_fails(rt, running):
    cid, _, _ = running
    r = rt("exec", cid, "/no/such/binary", check=False)
    assert r.rc != 0
    assert "/no/such/binary" in r.err or "no such file" in r.err.lower()


def test_ps_json_lists_init_and_exec_pids(rt, running):
    cid, initpid, _ = running
    pf = rt.tmp / "exec.pid"
    rt("exec", "-d", "--pid-file", pf, cid, "sleep", "100")
    execpid = int(pf.read_text().strip())
    pids = json.loads(rt("ps", "--format", "json", cid).out)
    assert initpid in pids and execpid in pids
    assert len(pids) == 2


def test_ps_table_shows_processes(rt, running):
    cid, initpid, _ = running
    out = rt("ps", cid).out.splitlines()
    assert "PID" in out[0]
    assert any(str(initpid) in l.split() for l in out[1:])
