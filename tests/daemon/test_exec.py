"""docker exec, terminals and detach keys against a real berthd: the docker CLI (with a real pty
where it needs a terminal), the Python SDK, and raw hijacked API connections."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import socket
import struct
import subprocess
import termios
import time

import pytest

from conftest import DOCKER, Daemon, requires_docker_cli

pytestmark = requires_docker_cli


@pytest.fixture
def box(engine):
    """A running busybox container, force-removed after the test."""
    name = f"ex{os.getpid()}{time.monotonic_ns() % 1_000_000}"
    engine.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    try:
        yield name
    finally:
        engine.docker("rm", "-f", name, check=False)


class Terminal:
    """The docker CLI on a real pty (its controlling terminal), as a person at a shell runs it."""

    def __init__(self, engine: Daemon, *args: str, rows: int = 24, cols: int = 80):
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(engine.root / "docker-config")
        env["TERM"] = "xterm"
        self.proc = subprocess.Popen([DOCKER, "-H", engine.host, *args], stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.output = b""

    def resize(self, rows: int, cols: int):
        # The kernel sends SIGWINCH to the CLI, which tells the daemon.
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes):
        os.write(self.master, data)

    def read_until(self, pattern: bytes, timeout: float = 15) -> bytes:
        """Output up to the first match of the regex `pattern` after what was consumed before."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.output)
            if m:
                seen, self.output = self.output[:m.end()], self.output[m.end():]
                return seen
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in terminal output {self.output!r}")
            if select.select([self.master], [], [], min(left, 0.2))[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the CLI has exited and closed the pty
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"CLI exited ({self.proc.returncode}) before {pattern!r}: {self.output!r}")
                self.output += chunk

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def stty_size_becomes(term: Terminal, rows: int, cols: int, resize: bool = False):
    """Asks the shell for its size until it reports rows x cols (the resize travels
    CLI -> daemon -> pty asynchronously, so the first answer may predate it). With `resize`,
    resizes the CLI's terminal first, again while the answer is stale: the docker CLI installs
    its SIGWINCH handler only after its first resize call, and misses a change made before."""
    for attempt in range(50):
        if resize and attempt % 5 == 0:
            term.resize(rows, cols - 1)  # the kernel signals changes only
            term.resize(rows, cols)
        term.write(b"stty size\r")
        seen = term.read_until(rb"\r\n(\d+ \d+)\r\n")
        if seen.endswith(f"{rows} {cols}\r\n".encode()):
            return
    raise AssertionError(f"the container's terminal never became {rows}x{cols}")


def hijack(engine: Daemon, method: str, path: str, body=None) -> socket.socket:
    """A raw upgraded connection past its response head, as the CLI and SDK open them."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(15)
    s.connect(engine.socket)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, f"connection closed in the response head: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def read_until_closed(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


def read_until(s: socket.socket, needle: bytes) -> bytes:
    out = b""
    while needle not in out:
        chunk = s.recv(4096)
        assert chunk, f"stream ended before {needle!r}: {out!r}"
        out += chunk
    return out


def create_exec(engine: Daemon, container: str, **config) -> str:
    status, _, body = engine.request("POST", f"/containers/{container}/exec", body=json.dumps(config),
                                     headers={"Content-Type": "application/json"})
    assert status == 201, body
    return json.loads(body)["Id"]


# docker CLI


def test_exec_prints_output_and_exits_0(engine, box):
    p = engine.docker("exec", box, "echo", "hi")
    assert p.stdout == "hi\n" and p.returncode == 0


def test_exec_exit_code_is_the_processes(engine, box):
    assert engine.docker("exec", box, "sh", "-c", "exit 7", check=False).returncode == 7


def test_exec_env_user_and_workdir(engine, box):
    p = engine.docker("exec", "-e", "GREETING=hello", "-u", "nobody", "-w", "/tmp", box,
                      "sh", "-c", 'echo "$GREETING $(id -u) $(pwd)"')
    assert p.stdout == "hello 65534 /tmp\n"


def test_exec_unknown_user_exits_126_naming_it(engine, box):
    # As dockerd, the error travels in the stream (on stdout) once the exec has started.
    p = engine.docker("exec", "-u", "nosuchuser", box, "true", check=False)
    assert p.returncode == 126 and "unable to find user nosuchuser" in p.stdout


def test_exec_missing_command_exits_126(engine, box):
    p = engine.docker("exec", box, "nosuchcommand", check=False)
    assert p.returncode == 126 and "nosuchcommand" in p.stderr


def test_exec_stdin_is_piped_to_the_process(engine, box):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    p = subprocess.run([DOCKER, "-H", engine.host, "exec", "-i", box, "sh", "-c", "cat; echo done"],
                       input="line one\nline two\n", capture_output=True, text=True, timeout=30, env=env)
    assert p.stdout == "line one\nline two\ndone\n", p.stderr


def test_exec_stderr_stays_apart_from_stdout(engine, box):
    p = engine.docker("exec", box, "sh", "-c", "echo out; echo err >&2")
    assert p.stdout == "out\n" and p.stderr == "err\n"


def test_exec_privileged_has_every_capability(engine, box):
    plain = engine.docker("exec", box, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    privileged = engine.docker("exec", "--privileged", box, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    assert int(privileged, 16) > int(plain, 16)
    assert int(privileged, 16) & (1 << 21)  # CAP_SYS_ADMIN, not in Docker's default set


def test_exec_detached_runs_in_the_background(engine, box):
    engine.docker("exec", "-d", box, "sh", "-c", "sleep 0.3; echo later > /tmp/bg")
    for _ in range(100):
        p = engine.docker("exec", box, "cat", "/tmp/bg", check=False)
        if p.returncode == 0:
            break
        time.sleep(0.1)
    assert p.stdout == "later\n"


def test_exec_in_a_stopped_container_is_409(engine):
    engine.docker("create", "--name", "exec-stopped", "busybox", "true")
    try:
        status, _, body = engine.request("POST", "/containers/exec-stopped/exec", body=json.dumps({"Cmd": ["true"]}),
                                         headers={"Content-Type": "application/json"})
        assert status == 409 and "is not running" in json.loads(body)["message"]
    finally:
        engine.docker("rm", "exec-stopped")


def test_exec_inspect_reports_exit_code_and_process(engine, box):
    exec_id = create_exec(engine, box, Cmd=["sh", "-c", "exit 3"], AttachStdout=True, AttachStderr=True)
    status, _, body = engine.request("GET", f"/exec/{exec_id}/json")
    before = json.loads(body)
    assert status == 200 and before["Running"] is False and before["ExitCode"] is None
    s = hijack(engine, "POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    read_until_closed(s)
    s.close()
    after = json.loads(engine.request("GET", f"/exec/{exec_id}/json")[2])
    assert after["ExitCode"] == 3 and after["Running"] is False and after["Pid"] > 0
    assert after["ProcessConfig"]["entrypoint"] == "sh" and after["ProcessConfig"]["arguments"] == ["-c", "exit 3"]
    again = engine.request("POST", f"/exec/{exec_id}/start", body=json.dumps({"Detach": True}),
                           headers={"Content-Type": "application/json"})
    assert again[0] == 409


def test_unknown_exec_is_404(engine):
    status, _, body = engine.request("GET", "/exec/nosuchexec/json")
    assert status == 404 and json.loads(body)["message"] == "No such exec instance: nosuchexec"
    assert engine.request("POST", "/exec/nosuchexec/resize?h=10&w=10")[0] == 404


def test_running_exec_is_listed_in_container_inspect(engine, box):
    exec_id = create_exec(engine, box, Cmd=["sleep", "30"])
    engine.request("POST", f"/exec/{exec_id}/start", body=json.dumps({"Detach": True}),
                   headers={"Content-Type": "application/json"})
    info = json.loads(engine.docker("inspect", box).stdout)[0]
    assert info["ExecIDs"] == [exec_id]
    assert json.loads(engine.request("GET", f"/exec/{exec_id}/json")[2])["Running"] is True


# Terminals


def test_exec_it_sees_the_terminal_size_and_its_resize(engine, box):
    term = Terminal(engine, "exec", "-it", box, "sh", rows=33, cols=101)
    try:
        term.read_until(rb"# ")
        stty_size_becomes(term, 33, 101)
        stty_size_becomes(term, 41, 127, resize=True)
        term.write(b"exit 4\r")
        assert term.wait() == 4
    finally:
        term.close()


def test_run_it_resize_reaches_the_container(engine):
    term = Terminal(engine, "run", "-it", "--rm", "--name", "run-it-resize", "busybox", "sh", rows=20, cols=70)
    try:
        term.read_until(rb"# ")
        stty_size_becomes(term, 20, 70)
        stty_size_becomes(term, 50, 150, resize=True)
        term.write(b"exit 5\r")
        assert term.wait() == 5
    finally:
        term.close()
        engine.docker("rm", "-f", "run-it-resize", check=False)


def test_run_it_detaches_with_ctrl_p_ctrl_q_and_keeps_running(engine):
    term = Terminal(engine, "run", "-it", "--name", "detach-me", "busybox", "sh")
    try:
        term.read_until(rb"# ")
        term.write(b"echo marker-$((6*7))\r")
        term.read_until(rb"marker-42")
        term.write(b"\x10\x11")
        assert term.wait() == 0
        assert engine.docker("inspect", "-f", "{{.State.Running}}", "detach-me").stdout.strip() == "true"
        # Attach again: the shell is still there and answers.
        again = Terminal(engine, "attach", "detach-me")
        try:
            again.write(b"echo back-$((1+1))\r")
            again.read_until(rb"back-2")
            again.write(b"exit\r")
            assert again.wait() == 0
        finally:
            again.close()
    finally:
        term.close()
        engine.docker("rm", "-f", "detach-me", check=False)


def test_attach_api_detach_keys_end_the_stream_not_the_container(engine):
    engine.docker("run", "-dit", "--name", "detach-api", "busybox", "sh")
    try:
        s = hijack(engine, "POST", "/containers/detach-api/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x")
        s.sendall(b"echo via-$((2+3))\n")
        read_until(s, b"via-5")
        # A lone ctrl-x followed by something else is passed on; the full sequence detaches.
        s.sendall(b"\x18")
        s.sendall(b"x")
        read_until_closed(s)
        s.close()
        assert engine.docker("inspect", "-f", "{{.State.Status}}", "detach-api").stdout.strip() == "running"
    finally:
        engine.docker("rm", "-f", "detach-api")


def test_attach_api_rejects_invalid_detach_keys(engine, box):
    status, _, body = engine.request("POST", f"/containers/{box}/attach?stream=1&stdin=1&detachKeys=ctrl-foo")
    assert status == 400 and json.loads(body)["message"] == "Invalid detach keys (ctrl-foo) provided"


def test_exec_api_detach_keys_leave_the_process_running(engine, box):
    exec_id = create_exec(engine, box, Cmd=["sh"], Tty=True, AttachStdin=True, AttachStdout=True,
                          DetachKeys="ctrl-a")
    s = hijack(engine, "POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": True})
    s.sendall(b"echo in-$((3*3))\n")
    read_until(s, b"in-9")
    s.sendall(b"\x01")
    read_until_closed(s)
    s.close()
    info = json.loads(engine.request("GET", f"/exec/{exec_id}/json")[2])
    assert info["Running"] is True and info["ExitCode"] is None


def test_exec_with_invalid_detach_keys_is_400(engine, box):
    status, _, body = engine.request("POST", f"/containers/{box}/exec",
                                     body=json.dumps({"Cmd": ["true"], "DetachKeys": "ctrl-"}),
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "Invalid escape keys (ctrl-) provided" in json.loads(body)["message"]


# Python SDK


def test_sdk_exec_run_output_and_exit_code(sdk, box):
    c = sdk.containers.get(box)
    result = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert sorted(result.output.decode().splitlines()) == ["err", "out"]


def test_sdk_exec_run_demux_separates_streams(sdk, box):
    result = sdk.containers.get(box).exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.exit_code == 0 and result.output == (b"out\n", b"err\n")


def test_sdk_exec_run_stream_yields_output_as_it_comes(sdk, box):
    result = sdk.containers.get(box).exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"], stream=True)
    assert b"".join(result.output) == b"1\n2\n3\n"


def test_sdk_exec_run_env_workdir_user_tty(sdk, box):
    c = sdk.containers.get(box)
    result = c.exec_run(["sh", "-c", 'echo "$A $(pwd) $(id -un)"; tty'], environment={"A": "b"}, workdir="/etc",
                        user="nobody", tty=True)
    assert result.exit_code == 0
    lines = result.output.decode().splitlines()
    assert lines[0] == "b /etc nobody" and lines[1].startswith("/dev/pts/")


def test_sdk_exec_run_detach_returns_at_once(sdk, box):
    c = sdk.containers.get(box)
    result = c.exec_run(["sh", "-c", "echo detached > /tmp/sdk-detach"], detach=True)
    assert result.exit_code is None and not result.output
    for _ in range(100):
        r = c.exec_run(["cat", "/tmp/sdk-detach"])
        if r.exit_code == 0:
            break
        time.sleep(0.1)
    assert r.output == b"detached\n"


def test_sdk_exec_with_stdin_socket(sdk, box):
    api = sdk.api
    exec_id = api.exec_create(box, ["cat"], stdin=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = sock._sock
    raw.sendall(b"to cat\n")
    raw.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := raw.recv(4096):
        out += chunk
    sock.close()
    # One stdout frame: stream 1, three zero bytes, big-endian length.
    assert out == b"\x01\x00\x00\x00" + struct.pack(">I", 7) + b"to cat\n"
    assert api.exec_inspect(exec_id)["ExitCode"] == 0


def test_exec_events_are_published(engine, box):
    since = str(time.time() - 1)
    engine.docker("exec", box, "true")
    until = str(time.time() + 1)
    out = engine.docker("events", "--since", since, "--until", until, "--filter", f"container={box}",
                        "--format", "{{.Action}}").stdout.splitlines()
    assert "exec_create: true" in out and "exec_start: true" in out and "exec_die" in out


def test_exec_start_frames_follow_the_start_requests_tty_not_the_execs(engine, box):
    """dockerd decides raw or multiplexed from the start request's Tty: a client that starts a
    TTY exec with Tty false reads frames, and must not lose its first 8 bytes to them."""
    exec_id = create_exec(engine, box, Cmd=["echo", "hello-frames"], Tty=True, AttachStdout=True)
    s = hijack(engine, "POST", f"/v1.47/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    out = read_until_closed(s)
    assert out[:4] == b"\x01\x00\x00\x00", out
    assert out[8:8 + struct.unpack(">I", out[4:8])[0]].startswith(b"hello-frames"), out
    exec_id = create_exec(engine, box, Cmd=["echo", "hello-raw"], Tty=False, AttachStdout=True)
    s = hijack(engine, "POST", f"/v1.47/exec/{exec_id}/start", {"Detach": False, "Tty": True})
    assert read_until_closed(s) == b"hello-raw\n"
