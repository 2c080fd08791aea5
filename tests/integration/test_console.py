"""process.terminal with --console-socket: the pty master arrives over SCM_RIGHTS."""

import os

from conftest import pid_alive


def _tty_bundle(rt, *args):
    def edit(c):
        c["process"]["terminal"] = True
        c["process"]["env"].append("TERM=xterm")
    return rt.bundle(*args, edit=edit)


def test_create_with_terminal_sends_pty_master(rt, console):
    b = _tty_bundle(rt, "sh", "-c", "tty; echo ok; sleep 100")
    cid = rt.new_id()
    rt("create", "--console-socket", console.path, "--bundle", b, cid)
    console.master()
    rt("start", cid)
    out = console.read_until(b"ok")
    assert b"/dev/pts/" in out
    assert b"ok" in out


def test_run_detached_with_terminal_sends_pty_master(rt, console):
    b = _tty_bundle(rt, "sh", "-c", "tty; echo ok; sleep 100")
    cid = rt.new_id()
    rt("run", "-d", "--console-socket", console.path, "--bundle", b, cid)
    out = console.read_until(b"ok")
    assert b"/dev/pts/" in out


def test_terminal_input_reaches_process(rt, console):
    b = _tty_bundle(rt, "sh", "-c", "read line; echo got:$line; sleep 100")
    cid = rt.new_id()
    rt("run", "-d", "--console-socket", console.path, "--bundle", b, cid)
    os.write(console.master(), b"hello\n")
    assert b"got:hello" in console.read_until(b"got:hello")


def test_exec_tty_sends_pty_master(rt, console):
    b = rt.bundle("sleep", "100")
    cid, _ = rt.start_container(b)
    pf = rt.tmp / "exec.pid"
    rt("exec", "-t", "-d", "--console-socket", console.path, "--pid-file", pf, cid,
       "sh", "-c", "tty; echo ok; sleep 100")
    out = console.read_until(b"ok")
    assert b"/dev/pts/" in out and b"ok" in out
    assert pid_alive(int(pf.read_text()))


def test_terminal_without_console_socket_in_detached_mode_fails(rt):
    b = _tty_bundle(rt, "true")
    cid = rt.new_id()
    r = rt("create", "--bundle", b, cid, check=False)
    assert r.rc != 0
    assert "console" in r.err.lower()
    assert rt("state", cid, check=False).rc != 0


def _run_on_a_terminal(rt, args, typed: bytes, timeout=20):
    """Runs the runtime on a fresh pty (as a shell would), types `typed`, returns (rc, screen)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(rt.binary, [rt.binary, "--root", str(rt.root), *args])
    out = b""
    deadline = time.time() + timeout
    time.sleep(0.3)
    os.write(fd, typed)
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), out
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_foreground_run_with_terminal_relays_the_pty(rt):
    # `spec` then `run ID` in a shell is the canonical way to use a runc-like runtime: with
    # process.terminal and no --console-socket, the runtime itself relays its terminal.
    b = _tty_bundle(rt, "sh")
    cid = rt.new_id()
    rc, screen = _run_on_a_terminal(rt, ["run", "--bundle", str(b), cid],
                                    b"tty; echo sum-$((6*7)); exit 3\n")
    assert rc == 3, screen
    assert b"/dev/pts/0" in screen and b"sum-42" in screen, screen


def test_foreground_exec_tty_relays_the_pty(rt):
    cid, _ = rt.start_container(rt.bundle("sleep", "100"))
    rc, screen = _run_on_a_terminal(rt, ["exec", "-t", cid, "sh"], b"tty; echo in-exec-$((2*21)); exit 4\n")
    assert rc == 4, screen
    assert b"/dev/pts/" in screen and b"in-exec-42" in screen, screen
