"""Fixtures for the registry suite: a real `berth-registry serve` on a free loopback port with
its own root, driven by skopeo and by raw HTTP; Debian's docker-registry as a peer.

The binary is $BERTH_REGISTRY (default .build/debug/berth-registry); the suite is skipped when
it is not built. Every server is killed and its directory removed at teardown, even on failure.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REGISTRY = Path(os.environ.get("BERTH_REGISTRY", REPO / ".build" / "debug" / "berth-registry")).resolve()
DOCKER_REGISTRY = "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"

# bcrypt (cost 5) of "s3cret", in htpasswd's $2y$ form.
ALICE_HTPASSWD = "alice:$2y$05$cnsZtpdoTFwQ.vqL/cH31erU2uHtQWLO/UFuZyKUwQaoHOObO3dhS\n"

requires_docker_registry = pytest.mark.skipif(
    not os.access(DOCKER_REGISTRY, os.X_OK), reason="Debian's docker-registry is not installed")


def pytest_collection_modifyitems(config, items):
    missing = None
    if not (REGISTRY.is_file() and os.access(REGISTRY, os.X_OK)):
        missing = f"berth-registry is not built at {REGISTRY} (swift build --product berth-registry)"
    elif not os.access(SKOPEO, os.X_OK):
        missing = "skopeo is not installed"
    if missing:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=missing))


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text(errors='replace')}")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    @property
    def error_codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


class Registry:
    """One registry process (ours or Debian's) on 127.0.0.1:port with its own root."""

    def __init__(self, workdir: Path, args: list[str], port: int, root: Path, auth: tuple[str, str] | None = None,
                 preexec_fn=None):
        self.workdir, self.port, self.root, self.auth = workdir, port, root, auth
        self.log_path = workdir / "server.log"
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"),
                                     preexec_fn=preexec_fn)
        wait_for_port(port, self.proc, self.log_path)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                auth: tuple[str, str] | None | bool = True) -> Reply:
        headers = dict(headers or {})
        creds = self.auth if auth is True else (auth or None)
        if creds:
            import base64
            headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return Reply(r.status, r.headers, r.read())
        finally:
            conn.close()

    def push_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", body=data,
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status == 201, (r.status, r.body)
        return digest

    def push_manifest(self, name: str, reference: str, manifest: dict, media_type: str) -> Reply:
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", body=json.dumps(manifest).encode(),
                            headers={"Content-Type": media_type})

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([SKOPEO, *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="berth-registry-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_registry(workdir):
    started: list[Registry] = []

    def make(htpasswd: str | None = None, auth: tuple[str, str] | None = None, name: str = "berth",
             args: list[str] = (), preexec_fn=None, root: Path | None = None) -> Registry:
        """`args` are extra `serve` flags; `preexec_fn` runs in the child before exec."""
        d = workdir / name
        d.mkdir()
        port = free_tcp_port()
        root = root or d / "root"
        argv = [str(REGISTRY), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(root), *args]
        if htpasswd:
            (d / "htpasswd").write_text(htpasswd)
            argv += ["--htpasswd", str(d / "htpasswd")]
        r = Registry(d, argv, port, root, auth=auth, preexec_fn=preexec_fn)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def registry(make_registry) -> Registry:
    return make_registry()


@pytest.fixture
def docker_registry(workdir):
    d = workdir / "distribution"
    d.mkdir()
    port = free_tcp_port()
    config = d / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {d / 'root'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    r = Registry(d, [DOCKER_REGISTRY, "serve", str(config)], port, d / "root")
    yield r
    r.stop()


@pytest.fixture(scope="session")
def busybox_tar():
    d = Path(tempfile.mkdtemp(prefix="berth-registry-busybox-"))
    tar = d / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), str(tar)], check=True, capture_output=True)
    yield tar
    shutil.rmtree(d, ignore_errors=True)


def garbage_collect(root: Path, dry_run: bool = False) -> str:
    args = [str(REGISTRY), "garbage-collect", "--root", str(root)] + (["--dry-run"] if dry_run else [])
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
