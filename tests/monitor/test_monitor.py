"""berth-monitor against real containers: creation, logs, exit status, detaching, attach, tty,
rotation, create failures, and its resident memory."""

import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (MONITOR, RUNTIME, demux, pid_alive, proc_field, processes_with, read_until,
                      wait_for)


def stream_bytes(frames, stream):
    return b"".join(p for s, p in frames if s == stream)


# ---- exit status and the log ---------------------------------------------------------------

def test_echo_is_logged_as_docker_json_and_exit_zero_recorded(mon):
    run = mon.launch(mon.bundle("echo", "hello"))
    assert pid_alive(run.pid)
    assert (run.dir / "exit.json").exists() is False
    mon.start(run)
    exit = run.exit()
    assert exit["exitCode"] == 0 and exit["signal"] is None and exit["oomKilled"] is False
    assert exit["finishedAt"].endswith("Z") and "T" in exit["finishedAt"]
    records = run.log_records()
    assert [(r["log"], r["stream"]) for r in records] == [("hello\n", "stdout")]
    assert list(records[0]) == ["log", "stream", "time"]
    line = (run.dir / "container.log").read_text()
    assert line.startswith('{"log":"hello\\n","stream":"stdout","time":"')
    wait_for(lambda: not pid_alive(run.pid), 5, "the monitor to exit")


def test_stderr_lines_are_tagged_stderr(mon):
    run = mon.launch(mon.bundle("sh", "-c", "echo out; echo err >&2; echo out2"))
    mon.start(run)
    run.exit()
    records = run.log_records()
    assert sorted((r["stream"], r["log"]) for r in records) == [
        ("stderr", "err\n"), ("stdout", "out\n"), ("stdout", "out2\n")]


def test_exit_code_3_is_recorded(mon):
    run = mon.launch(mon.bundle("sh", "-c", "exit 3"))
    mon.start(run)
    assert run.exit()["exitCode"] == 3


def test_sigkill_of_the_container_is_recorded_as_137(mon):
    run = mon.launch(mon.bundle("sleep", "100"))
    mon.start(run)
    os.kill(run.container_pid(), signal.SIGKILL)
    exit = run.exit()
    assert exit["exitCode"] == 137 and exit["signal"] == 9


def test_lines_are_split_as_docker_does_and_escaped(mon):
    script = ("printf 'a\\nb\\nc'; printf 'd\\n'; head -c 20000 /dev/zero | tr '\\0' x; echo; "
              "printf '\\001tab\\there \"q\" \\\\ <&> h\\303\\251llo \\342\\234\\223 bad\\377\\n'; printf 'tail'")
    run = mon.launch(mon.bundle("sh", "-c", script))
    mon.start(run)
    run.exit()
    logs = [r["log"] for r in run.log_records()]
    assert logs[:3] == ["a\n", "b\n", "cd\n"]
    # A line longer than 16 KiB is logged in pieces, the first one 16384 bytes.
    assert logs[3] == "x" * 16384 and logs[4] == "x" * (20000 - 16384) + "\n"
    assert logs[5] == '\x01tab\there "q" \\ <&> h\u00e9llo \u2713 bad\ufffd\n'
    assert logs[6] == "tail"  # the unterminated end of the stream is a record of its own
    raw = (run.dir / "container.log").read_text().splitlines()[5]
    assert '"\\u0001tab\\there \\"q\\" \\\\ \\u003c\\u0026\\u003e h\u00e9llo \u2713 bad\\ufffd\\n"' in raw


# ---- detaching -----------------------------------------------------------------------------

def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = int(proc_field(pid, "PPid"))
        chain.append(pid)
    return chain


def test_monitor_and_container_outlive_the_process_that_launched_them(mon):
    bundle = mon.bundle("sh", "-c", "while true; do echo tick; sleep 0.1; done")
    cid = mon.new_id()
    dir = mon.tmp / cid
    argv = " ".join(f"'{a}'" for a in mon.monitor_argv(bundle, cid, dir))
    # A caller that launches the monitor, starts the container, and is gone.
    caller = subprocess.Popen(["sh", "-c", f"{argv} > {dir}.monpid && '{RUNTIME}' --root '{mon.root}' start {cid}"])
    assert caller.wait(timeout=30) == 0
    monitor_pid = int(Path(f"{dir}.monpid").read_text())
    assert not pid_alive(caller.pid)
    assert pid_alive(monitor_pid)
    ppid = int(proc_field(monitor_pid, "PPid"))
    assert ppid != caller.pid
    # Reparented to init, or to a subreaper above us (a service manager, a container's init).
    assert ppid == 1 or ppid in _ancestors(os.getpid()), f"monitor's parent {ppid}"
    assert os.getsid(monitor_pid) == monitor_pid  # its own session: no terminal, no caller's group
    state = json.loads(mon.runtime("state", cid).stdout)
    assert state["status"] == "running"
    size = (dir / "container.log").stat().st_size
    wait_for(lambda: (dir / "container.log").stat().st_size > size, 5, "the log to keep growing")
    # The container's process was reparented to the monitor, which reaps it.
    container_pid = int((dir / "pid").read_text())
    assert int(proc_field(container_pid, "PPid")) == monitor_pid
    os.kill(container_pid, signal.SIGKILL)
    wait_for((dir / "exit.json").exists, 10, "exit.json")
    assert json.loads((dir / "exit.json").read_text())["exitCode"] == 137


def test_container_keeps_running_when_its_monitor_is_killed(mon):
    run = mon.launch(mon.bundle("sleep", "100"))
    mon.start(run)
    os.kill(run.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(run.pid), 5, "the monitor to die")
    time.sleep(0.2)
    assert pid_alive(run.container_pid())
    assert json.loads(mon.runtime("state", run.cid).stdout)["status"] == "running"


# ---- attach --------------------------------------------------------------------------------

def test_attach_before_start_receives_multiplexed_stdout_and_stderr(mon):
    run = mon.launch(mon.bundle("sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"))
    a, b = run.attach(), run.attach()  # several clients at once
    mon.start(run)
    for s in (a, b):
        frames = demux(read_until(s))
        assert stream_bytes(frames, 1) == b"out1\nout2\n"
        assert stream_bytes(frames, 2) == b"err1\nerr2\n"
        s.close()
    # A client at end of file can rely on exit.json being there.
    assert (run.dir / "exit.json").exists()
    assert not (run.dir / "attach.sock").exists()


def test_attach_stdin_reaches_the_container(mon):
    run = mon.launch(mon.bundle("sh", "-c", "read x; echo got:$x"), "--stdin")
    s = run.attach()
    mon.start(run)
    s.sendall(b"ping\n")
    frames = demux(read_until(s))
    assert stream_bytes(frames, 1) == b"got:ping\n"
    assert run.exit()["exitCode"] == 0


def test_half_close_of_an_attach_client_closes_the_container_stdin(mon):
    run = mon.launch(mon.bundle("cat"), "--stdin")
    s = run.attach()
    mon.start(run)
    s.sendall(b"abc\n")
    s.shutdown(socket.SHUT_WR)  # Docker's stdin_once: cat sees end of file and exits
    frames = demux(read_until(s))
    assert stream_bytes(frames, 1) == b"abc\n"
    assert run.exit()["exitCode"] == 0


def test_detaching_client_leaves_stdin_open_for_the_next(mon):
    run = mon.launch(mon.bundle("sh", "-c", "read x; echo got:$x"), "--stdin")
    mon.start(run)
    first = run.attach()
    first.close()
    time.sleep(0.3)
    assert json.loads(mon.runtime("state", run.cid).stdout)["status"] == "running"
    second = run.attach()
    second.sendall(b"later\n")
    assert stream_bytes(demux(read_until(second)), 1) == b"got:later\n"


def test_a_client_that_does_not_read_is_dropped_without_blocking_the_container(mon):
    # The container writes 4 MB in 1 MB steps, each released by the reading client once it has
    # read the step before: the reader is never more than one step (under the monitor's 1 MiB
    # queue) behind, however loaded the machine, while the client that reads nothing falls
    # 4 MB behind and must be dropped.
    step, steps = 1_000_000, 4
    run = mon.launch(mon.bundle("sh", "-c", f"for i in $(seq {steps}); do head -c {step} /dev/zero | tr '\\0' x; read x; done; echo"),
                     "--stdin")
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(str(run.dir / "attach.sock"))
    good = run.attach()
    mon.start(run)
    raw, received = b"", b""
    for i in range(1, steps + 1):
        deadline = time.monotonic() + 30
        while len(received) < i * step:
            assert time.monotonic() < deadline, f"step {i}: {len(received)} bytes after 30 s"
            good.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = good.recv(65536)
            assert chunk, f"the reading client was dropped after {len(received)} bytes"
            raw += chunk
            while len(raw) >= 8 and len(raw) >= 8 + struct.unpack(">I", raw[4:8])[0]:
                size = struct.unpack(">I", raw[4:8])[0]
                if raw[0] == 1:
                    received += raw[8:8 + size]
                raw = raw[8 + size:]
        good.sendall(b"\n")
    received += stream_bytes(demux(raw + read_until(good, timeout=30)), 1)
    assert len(received) == steps * step + 1
    assert run.exit()["exitCode"] == 0
    assert sum(len(r["log"]) for r in run.log_records()) == steps * step + 1
    # The slow client was cut off once more than 1 MiB was queued for it.
    got = b""
    slow.settimeout(10)
    try:
        while chunk := slow.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    assert len(got) < 2 << 20, len(got)  # what the socket buffers held when it was closed


def test_tty_attach_is_raw_and_resize_sets_the_terminal_size(mon):
    run = mon.launch(mon.bundle("sh", "-c", "tty; stty size; read x; stty size", tty=True), "--tty", "--stdin")
    assert not (run.dir / "console.sock").exists()  # used once, during create
    s = run.attach()
    assert run.ctl("resize 40 100") == "ok\n"
    mon.start(run)
    out = read_until(s, b"40 100\r\n")
    assert b"/dev/pts/" in out and out.startswith(b"/dev/pts/")  # raw: no frame headers
    assert run.ctl("resize 50 120") == "ok\n"
    s.sendall(b"go\n")
    out = read_until(s, None, buf=out)
    assert b"50 120\r\n" in out
    assert run.exit()["exitCode"] == 0
    logged = "".join(r["log"] for r in run.log_records())
    assert "40 100" in logged and "50 120" in logged
    assert {r["stream"] for r in run.log_records()} == {"stdout"}


def test_ctl_rejects_resize_without_a_terminal_and_unknown_commands(mon):
    run = mon.launch(mon.bundle("sleep", "100"))
    assert run.ctl("resize 40 100").startswith("error:")
    assert run.ctl("frobnicate").startswith("error:")


def test_long_directory_paths_work_for_every_socket(mon):
    long_dir = mon.tmp / ("d" * 60) / ("e" * 60)
    long_dir.parent.mkdir()
    run = mon.launch(mon.bundle("sh", "-c", "echo tty-ok", tty=True), "--tty", dir=long_dir)
    assert len(str(run.dir / "attach.sock")) > 108
    mon.start(run)
    assert run.exit()["exitCode"] == 0
    assert "tty-ok" in "".join(r["log"] for r in run.log_records())


# ---- rotation ------------------------------------------------------------------------------

def test_log_rotation_keeps_max_files_each_within_max_size(mon):
    line = "0123456789" * 9 + "abcdefg"  # 97 characters + newline
    run = mon.launch(mon.bundle("sh", "-c", f"yes {line} | head -n 3000"),
                     "--log-max-size", "100000", "--log-max-files", "3")
    mon.start(run)
    assert run.exit()["exitCode"] == 0
    names = sorted(p.name for p in run.dir.iterdir() if p.name.startswith("container.log"))
    assert names == ["container.log", "container.log.1", "container.log.2"]
    total = 0
    for name in names:
        size = (run.dir / name).stat().st_size
        assert 0 < size <= 100000, f"{name}: {size} bytes"
        records = run.log_records(name)  # every line is valid JSON
        assert all(r["log"] == line + "\n" and r["stream"] == "stdout" for r in records)
        total += len(records)
    assert total < 3000  # the oldest were dropped


# ---- failures ------------------------------------------------------------------------------

def test_hook_output_larger_than_a_pipe_does_not_block_create(mon):
    # berth-runtime runs createRuntime hooks with its own stdio, which is the container's.
    if os.path.basename(RUNTIME).startswith("runc"):
        pytest.skip("runc captures hook output instead of passing it on")
    script = "head -c 200000 /dev/zero | tr '\\0' h; echo; echo hook-err >&2"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    run = mon.launch(mon.bundle("echo", "main", edit=lambda c: c.setdefault("hooks", {}).update(createRuntime=[hook])))
    mon.start(run)
    assert run.exit()["exitCode"] == 0
    records = run.log_records()
    assert sum(len(r["log"]) for r in records if r["stream"] == "stdout" and r["log"].startswith("h")) == 200001
    assert {"stream": "stderr", "log": "hook-err\n"} in [{k: r[k] for k in ("stream", "log")} for r in records]
    assert records[-1]["log"] == "main\n"


def test_create_failure_reports_the_runtime_error_and_leaves_no_monitor(mon):
    bundle = mon.bundle("true")
    subprocess.run(["rm", "-rf", str(bundle / "rootfs")], check=True)
    run = mon.launch(bundle, check=False)
    assert run.rc == 1
    assert run.out == ""
    # The runtime's own message, on one line ("... rootfs ... does not exist" from berth-runtime).
    assert run.err.startswith("berth-monitor: create failed: ") and "rootfs" in run.err, run.err
    assert len(run.err.strip().splitlines()) == 1
    assert processes_with(run.cid) == []
    assert not (run.dir / "attach.sock").exists()
    assert mon.runtime("state", run.cid, check=False).returncode != 0


def test_missing_runtime_binary_is_reported(mon):
    cid = mon.new_id()
    p = subprocess.run([MONITOR, "--runtime", "/nonexistent/runtime", "--runtime-root", str(mon.root), "--id", cid,
                        "--bundle", str(mon.tmp), "--dir", str(mon.tmp / cid)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "/nonexistent/runtime" in p.stderr
    assert processes_with(cid) == []


# ---- memory --------------------------------------------------------------------------------

def test_report_monitor_resident_memory(mon, capsys):
    run = mon.launch(mon.bundle("sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; sleep 100"))
    s = run.attach()
    mon.start(run)
    read_until(s, b"line 2999\n")

    def sample(when):
        status = {k: proc_field(run.pid, k) for k in ("VmRSS", "RssAnon", "RssFile")}
        rollup = dict(line.split(":", 1) for line in Path(f"/proc/{run.pid}/smaps_rollup").read_text().splitlines()[1:])
        return (f"  {when}: VmRSS {status['VmRSS']} (anon {status['RssAnon']}, file {status['RssFile']}), "
                f"Pss {rollup['Pss'].strip()}, Private_Dirty {rollup['Private_Dirty'].strip()}")

    time.sleep(0.2)
    busy = sample("just after 3000 lines")
    time.sleep(4)  # the monitor drops library pages again after 3 s without events
    idle = sample("idle")
    with capsys.disabled():
        print(f"\nberth-monitor {run.pid}, running container, one attach client:\n{busy}\n{idle}")
    s.close()
