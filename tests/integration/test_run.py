"""`run`: create + start + wait + delete in one command, exit status passed through."""

import signal
import time


def test_run_true_exits_zero(rt):
    r = rt.run("true")
    assert r.rc == 0, r


def test_run_passes_through_exit_code(rt):
    r = rt.run("sh", "-c", "exit 3")
    assert r.rc == 3, r


def test_run_output_appears_on_stdout(rt):
    r = rt.run("echo", "hi")
    assert r.rc == 0, r
    assert r.out == "hi\n"


def test_run_stderr_of_process_appears_on_stderr(rt):
    r = rt.run("sh", "-c", "echo oops >&2")
    assert r.rc == 0, r
    assert "oops" in r.err
    assert "oops" not in r.out


def test_run_killed_by_signal_exits_128_plus_signal(rt):
    b = rt.bundle("sleep", "100")
    cid = rt.new_id()
    p = rt.popen("run", "--bundle", b, cid)
    rt.wait_status(cid, "running")
    rt("kill", cid, "KILL")
    assert p.wait(15) == 128 + signal.SIGKILL


def test_run_exit_by_signal_inside_container(rt):
    # A child of PID 1 killed by a signal: the shell reports 128+n and exits with it.
    r = rt.run("sh", "-c", "sleep 100 & kill -TERM $!; wait $!")
    assert r.rc == 128 + signal.SIGTERM, r


def test_run_deletes_container_after_exit(rt):
    b = rt.bundle("true")
    cid = rt.new_id()
    assert rt("run", "--bundle", b, cid).rc == 0
    assert rt("state", cid, check=False).rc != 0
    assert cid not in rt("list", "-q").out.split()


def test_run_detached_returns_while_process_runs(rt):
    b = rt.bundle("sleep", "100")
    cid = rt.new_id()
    t0 = time.monotonic()
    rt("run", "--detach", "--bundle", b, cid)
    assert time.monotonic() - t0 < 10
    st = rt.wait_status(cid, "running")
    assert st["pid"] > 0
