"""Fixtures for the berth-monitor suite: real containers through berth-runtime.

Binaries: $BERTH_MONITOR and $BERTH_RUNTIME, defaulting to .build/debug/berth-monitor and
.build/debug/berth-runtime. Each test gets its own directory under $BERTH_TEST_TMP (default
/tmp/berth-mon), its own runtime --root and ids `mon-<token>-N`; teardown force-deletes every
container it created and kills any monitor still running with its token, even after a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MKBUNDLE = REPO / "scripts" / "mkbundle.sh"
MONITOR = os.environ.get("BERTH_MONITOR", str(REPO / ".build" / "debug" / "berth-monitor"))
RUNTIME = os.environ.get("BERTH_RUNTIME", str(REPO / ".build" / "debug" / "berth-runtime"))
TMP_BASE = Path(os.environ.get("BERTH_TEST_TMP", "/tmp/berth-mon"))


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.geteuid() != 0:
        reason = "needs root: berth-runtime creates namespaces, cgroups and mounts"
    else:
        for path in (MONITOR, RUNTIME):
            if not os.access(path, os.X_OK):
                reason = f"{path} is not built (swift build --product {os.path.basename(path)})"
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def proc_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def processes_with(needle: str) -> list[int]:
    """Live processes whose command line contains NEEDLE."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def demux(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed attach stream -> [(stream, payload)]."""
    frames, i = [], 0
    while i < len(data):
        assert len(data) - i >= 8, f"truncated frame header at {i}: {data[i:]!r}"
        stream, size = data[i], struct.unpack(">I", data[i + 4:i + 8])[0]
        assert data[i + 1:i + 4] == b"\0\0\0", f"bad frame header {data[i:i + 8]!r}"
        assert stream in (1, 2), f"bad stream byte {stream}"
        frames.append((stream, data[i + 8:i + 8 + size]))
        assert len(frames[-1][1]) == size, "truncated frame payload"
        i += 8 + size
    return frames


def read_until(sock: socket.socket, needle: bytes | None = None, timeout: float = 15, buf: bytes = b"") -> bytes:
    """Reads until NEEDLE appears (or end of file when NEEDLE is None)."""
    deadline = time.monotonic() + timeout
    while needle is None or needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; got {buf!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            if needle is None:
                return buf
            raise AssertionError(f"end of file before {needle!r}; got {buf!r}")
        buf += chunk
    return buf


class Launch:
    def __init__(self, cid: str, dir: Path, rc: int, out: str, err: str):
        self.cid, self.dir, self.rc, self.out, self.err = cid, dir, rc, out, err

    @property
    def pid(self) -> int:
        return int(self.out.strip())

    def container_pid(self) -> int:
        return int((self.dir / "pid").read_text().strip())

    def exit(self, timeout: float = 15) -> dict:
        path = self.dir / "exit.json"
        wait_for(path.exists, timeout, f"{path}")
        return json.loads(path.read_text())

    def log_records(self, name: str = "container.log") -> list[dict]:
        return [json.loads(line) for line in (self.dir / name).read_text().splitlines()]

    def attach(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.dir / "attach.sock"))
        return s

    def ctl(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.dir / "ctl.sock"))
            s.sendall(line.encode() + b"\n")
            return read_until(s, b"\n").decode()


class MonitorHarness:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root = tmp / "rt"
        self.token = secrets.token_hex(4)
        self.count = 0
        self.ids: list[str] = []

    def new_id(self) -> str:
        self.count += 1
        cid = f"mon-{self.token}-{self.count}"
        self.ids.append(cid)
        return cid

    def bundle(self, *args: str, tty: bool = False, edit=None) -> Path:
        """A busybox bundle running ARGS; EDIT(config) may change config.json."""
        path = Path(tempfile.mkdtemp(prefix="b", dir=self.tmp))
        subprocess.run([str(MKBUNDLE), str(path), *args], check=True, capture_output=True)
        cfg = json.loads((path / "config.json").read_text())
        if tty:
            cfg["process"]["terminal"] = True
            cfg["process"]["env"].append("TERM=xterm")
        if edit:
            edit(cfg)
        (path / "config.json").write_text(json.dumps(cfg))
        return path

    def monitor_argv(self, bundle: Path, cid: str, dir: Path, *flags: str) -> list[str]:
        return [MONITOR, "--runtime", RUNTIME, "--runtime-root", str(self.root), "--id", cid,
                "--bundle", str(bundle), "--dir", str(dir), *flags]

    def launch(self, bundle: Path, *flags: str, check: bool = True, dir: Path | None = None) -> Launch:
        cid = self.new_id()
        dir = dir or self.tmp / cid
        p = subprocess.run(self.monitor_argv(bundle, cid, dir, *flags), capture_output=True, text=True, timeout=30)
        launch = Launch(cid, dir, p.returncode, p.stdout, p.stderr)
        if check:
            assert p.returncode == 0, f"berth-monitor failed: {p.stderr}"
        return launch

    def runtime(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([RUNTIME, "--root", str(self.root), *args], capture_output=True, text=True, timeout=30)
        if check:
            assert p.returncode == 0, f"berth-runtime {' '.join(args)}: {p.stderr}"
        return p

    def start(self, launch: Launch):
        self.runtime("start", launch.cid)

    def cleanup(self):
        for cid in self.ids:
            self.runtime("delete", "--force", cid, check=False)
        for pid in processes_with(f"mon-{self.token}-"):
            try:
                if "berth-monitor" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def mon(request):
    TMP_BASE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="t", dir=TMP_BASE))
    h = MonitorHarness(tmp)
    try:
        yield h
    finally:
        h.cleanup()
        if os.environ.get("BERTH_TEST_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
