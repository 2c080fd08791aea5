"""Fixtures for the daemon suite: a real `berthd` driven by the real docker CLI and SDK.

Each daemon gets its own temporary directory holding its socket, `--data-root` and
`--exec-root`, and its own network namespace (its bridges, addresses and nftables table never
touch the host's); teardown stops it (SIGTERM, then SIGKILL) and removes the directory and the
namespace even when the test failed. The berthd binary is $BERTHD (default .build/debug/berthd); the suite is
skipped when it is not built. The docker CLI is $DOCKER (default /usr/local/bin/docker).
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BERTHD = Path(os.environ.get("BERTHD", REPO / ".build" / "debug" / "berthd")).resolve()
DOCKER = os.environ.get("DOCKER", "/usr/local/bin/docker")
BUILD = REPO / ".build" / "debug"

requires_docker_cli = pytest.mark.skipif(
    not os.access(DOCKER, os.X_OK), reason=f"docker CLI not found at {DOCKER} (set DOCKER)")


def pytest_collection_modifyitems(config, items):
    if BERTHD.is_file() and os.access(BERTHD, os.X_OK):
        return
    skip = pytest.mark.skip(reason=f"berthd is not built at {BERTHD} (swift build --product berthd, or set BERTHD)")
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX, so raw requests see exactly what the daemon sends."""

    def __init__(self, path: str, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def socket_answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


_namespaces: set[str] = set()
_tables: set[str] = set()


@atexit.register
def _remove_leftovers():
    for ns in list(_namespaces):
        remove_netns(ns)
    for table in list(_tables):
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)


def make_netns(prefix: str = "bt") -> str:
    """A named network namespace (/run/netns/NAME) with loopback up."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    _namespaces.add(name)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


def remove_netns(name: str):
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    _namespaces.discard(name)


class Daemon:
    """One berthd process with its own directories and, unless `netns=False`, its own network
    namespace. Without one it runs in the host's namespace with no default bridge and its own
    nftables table, so it still leaves the host's networking alone."""

    def __init__(self, root: Path, extra_args: list[str] | None = None, hosts: list[str] | None = None,
                 default_host: bool = True, netns: bool = True):
        self.root = root
        self.socket = str(root / "berth.sock")
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.log_path = root / "berthd.log"
        args = [str(BERTHD), "--data-root", str(self.data_root), "--exec-root", str(self.exec_root)]
        if default_host:
            args += ["--host", f"unix://{self.socket}"]
        for h in hosts or []:
            args += ["--host", h]
        self.netns = make_netns() if netns else None
        self.table = None
        if self.netns:
            args = ["nsenter", f"--net=/run/netns/{self.netns}"] + args
        else:
            self.table = f"bt{secrets.token_hex(4)}"
            _tables.add(self.table)
            args += ["--bridge", "none", "--firewall-table", self.table]
        self.args = args + list(extra_args or [])
        self.proc: subprocess.Popen | None = None

    def in_netns(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Runs a command in the daemon's network namespace (its "host")."""
        assert self.netns, "this daemon runs in the host's namespace"
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def close(self):
        """Stops berthd if it runs and removes its namespace or firewall table."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.netns:
            remove_netns(self.netns)
        if self.table:
            subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True)
            _tables.discard(self.table)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, wait: bool = True, timeout: float = 15) -> "Daemon":
        # A socket file left by a daemon that was killed must not pass for the new one's.
        if os.path.exists(self.socket) and not socket_answers(self.socket):
            os.unlink(self.socket)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            deadline = time.monotonic() + timeout
            while not (socket_answers(self.socket) and self._pings()):
                if self.proc.poll() is not None:
                    raise AssertionError(f"berthd exited with {self.proc.returncode}:\n{self.log()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"berthd did not listen on {self.socket} within {timeout}s:\n{self.log()}")
                time.sleep(0.01)
        return self

    def _pings(self) -> bool:
        try:
            return self.request("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def wait_exit(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"berthd ignored signal {sig} for {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, body bytes) of one raw request."""
        conn = UnixHTTPConnection(self.socket)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def docker(self, *args: str, check: bool = True, host: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")  # no user contexts or plugins
        p = subprocess.run([DOCKER, "-H", host or self.host, *args], capture_output=True, text=True, timeout=60, env=env)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n--- berthd log:\n{self.log()}")
        return p


@pytest.fixture
def workdir():
    """A short temporary directory (unix socket paths are limited to 107 bytes), removed after."""
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_daemon(workdir):
    """Factory for daemons (not started); every one made is stopped at teardown."""
    made: list[Daemon] = []

    def make(extra_args=None, hosts=None, default_host=True, subdir: str = "", netns: bool = True) -> Daemon:
        root = workdir / subdir if subdir else workdir
        root.mkdir(parents=True, exist_ok=True)
        d = Daemon(root, extra_args=extra_args, hosts=hosts, default_host=default_host, netns=netns)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture(scope="module")
def daemon():
    """One running berthd shared by a module's read-only tests."""
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root)
    try:
        d.start()
        yield d
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        finally:
            d.close()
            shutil.rmtree(root, ignore_errors=True)


def free_tcp_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def json_body(raw: bytes):
    return json.loads(raw.decode())


@pytest.fixture(scope="session")
def busybox_tar():
    d = Path(tempfile.mkdtemp(prefix="berth-img-", dir="/tmp"))
    tar = d / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), str(tar)], check=True, capture_output=True)
    yield tar
    shutil.rmtree(d, ignore_errors=True)


def cleanup_daemon(d: Daemon):
    """Force-removes every container through the API, stops berthd, then makes sure no overlay
    mount or runtime state is left under the temporary root."""
    try:
        if d.proc is not None and d.proc.poll() is None:
            status, _, body = d.request("GET", "/containers/json?all=1")
            if status == 200:
                for c in json.loads(body):
                    d.request("DELETE", f"/containers/{c['Id']}?force=1")
            d.stop()
    finally:
        d.close()
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split(" ")[4]
            if target.startswith(str(d.root)):
                subprocess.run(["umount", "-l", target], check=False)
        runtime_root = d.data_root / "runtime"
        if runtime_root.is_dir():
            for entry in runtime_root.iterdir():
                subprocess.run([str(BUILD / "berth-runtime"), "--root", str(runtime_root), "delete", "--force", entry.name],
                               check=False, capture_output=True)
        shutil.rmtree(d.root, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(busybox_tar):
    """One berthd per test module with busybox loaded; every container is removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                 "--monitor-path", str(BUILD / "berth-monitor")])
    try:
        d.start()
        out = d.docker("load", "-i", str(busybox_tar)).stdout
        d.loaded_output = out
        yield d
    finally:
        cleanup_daemon(d)


@pytest.fixture
def sdk(engine):
    """The Python docker SDK pointed at the module's berthd."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        yield client
    finally:
        client.close()
