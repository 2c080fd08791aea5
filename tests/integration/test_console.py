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
