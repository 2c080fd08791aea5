"""Fixtures for the distribution suite: a real berthd (the daemon suite's `Daemon` class and
busybox image, imported from tests/daemon/conftest.py) pulling from and pushing to Debian's
`docker-registry` (distribution 2.8) started on a loopback port, with skopeo as an
independent client. Everything runs in temporary directories removed at teardown.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import importlib.util
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "berth_daemon_conftest", Path(__file__).resolve().parents[1] / "daemon" / "conftest.py")
_daemon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_daemon)

BUILD = _daemon.BUILD
DOCKER = _daemon.DOCKER
BERTHD = _daemon.BERTHD
Daemon = _daemon.Daemon
cleanup_daemon = _daemon.cleanup_daemon
free_tcp_port = _daemon.free_tcp_port
busybox_tar = _daemon.busybox_tar  # the session fixture, shared as it is
workdir = _daemon.workdir
REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def pytest_collection_modifyitems(config, items):
    missing = [str(p) for p in (BERTHD, Path(REGISTRY_BIN), Path(SKOPEO)) if not Path(p).is_file()]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"missing: {', '.join(missing)}")
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


class Registry:
    """One docker-registry process serving a temporary storage directory on 127.0.0.1."""

    def __init__(self, root: Path, htpasswd: Path | None = None, auth: str = ""):
        self.root = root
        self.storage = root / "storage"
        self.port = free_tcp_port()
        self.host = f"127.0.0.1:{self.port}"
        self.localhost = f"localhost:{self.port}"
        config = root / "config.yml"
        if htpasswd is not None:
            auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + auth)
        self.log_path = root / "registry.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401 with auth: it answers
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"docker-registry did not start:\n{self.log()}")
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def blob_path(self, digest: str) -> Path:
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def make_registry(workdir):
    """Factory for registries (each in its own directory); all are stopped at teardown."""
    made: list[Registry] = []

    def make(htpasswd: Path | None = None, auth: str = "") -> Registry:
        root = workdir / f"registry{len(made)}"
        root.mkdir()
        r = Registry(root, htpasswd=htpasswd, auth=auth)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def registry(make_registry):
    return make_registry()


@pytest.fixture
def make_engine(busybox_tar):
    """Factory for berthds (extra flags allowed) with busybox loaded; all cleaned up at teardown."""
    made: list[Daemon] = []

    def make(extra_args: list[str] | None = None, load: bool = True) -> Daemon:
        root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
        # In the host's namespace: the registries under test listen on its 127.0.0.1.
        d = Daemon(root, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                     "--monitor-path", str(BUILD / "berth-monitor"), *(extra_args or [])], netns=False)
        made.append(d)
        d.start()
        if load:
            d.docker("load", "-i", str(busybox_tar))
        return d

    yield make
    for d in made:
        cleanup_daemon(d)


@pytest.fixture
def engine(make_engine):
    return make_engine()


def registry_request(registry: Registry, method: str, path: str, data: bytes | None = None,
                     headers: dict | None = None, auth: str | None = None):
    """(status, headers, body) of one request to the registry API, errors included."""
    req = urllib.request.Request(f"http://{registry.host}{path}", data=data, method=method, headers=headers or {})
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def upload_blob(registry: Registry, repo: str, data: bytes) -> dict:
    """Uploads a blob monolithically (POST then PUT); returns its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = registry_request(registry, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, status
    location = headers["Location"]
    if location.startswith("http"):
        location = location.split(registry.host, 1)[1]
    sep = "&" if "?" in location else "?"
    status, _, body = registry_request(registry, "PUT", f"{location}{sep}digest={digest}", data=data,
                                       headers={"Content-Type": "application/octet-stream"})
    assert status == 201, (status, body)
    return {"digest": digest, "size": len(data)}


def upload_manifest(registry: Registry, repo: str, ref: str, manifest: dict, media_type: str) -> str:
    data = json.dumps(manifest).encode()
    status, _, body = registry_request(registry, "PUT", f"/v2/{repo}/manifests/{ref}", data=data,
                                       headers={"Content-Type": media_type})
    assert status == 201, (status, body)
    return "sha256:" + hashlib.sha256(data).hexdigest()


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def tar_layer(entries: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed layer tar of regular files (names taken as given, even hostile ones)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def upload_image(registry: Registry, repo: str, tag: str, layers: list[bytes], architecture: str = "amd64",
                 layer_media_type: str = OCI_LAYER, diff_ids: list[str] | None = None) -> dict:
    """Uploads a single-platform OCI image whose layers are uncompressed tars; returns the
    manifest's descriptor (with platform) for building indexes."""
    config = {
        "architecture": architecture, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]},
    }
    config_desc = upload_blob(registry, repo, json.dumps(config).encode())
    layer_descs = [dict(upload_blob(registry, repo, l), mediaType=layer_media_type) for l in layers]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(config_desc, mediaType=OCI_CONFIG),
                "layers": layer_descs}
    digest = upload_manifest(registry, repo, tag, manifest, OCI_MANIFEST)
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(json.dumps(manifest).encode()),
            "platform": {"architecture": architecture, "os": "linux"}}


def content_blobs(d) -> set[str]:
    """The blobs in a berthd's content store, and what is left in its ingest directory."""
    root = d.data_root / "images" / "content"
    blobs = {"sha256:" + p.name for p in (root / "blobs" / "sha256").iterdir()}
    return blobs | {"ingest:" + p.name for p in (root / "ingest").iterdir()}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A distribution token service (docker/distribution docs/spec/auth/token.md) on loopback:
    checks Basic credentials and grants the requested scopes in an RS256 JWT signed with a
    self-signed certificate (made with openssl) that the registry trusts."""

    def __init__(self, root: Path, user: str, password: str):
        self.key = root / "token.key"
        self.cert = root / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=berth-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests: list[dict] = []
        self.issue_refresh_tokens = False
        self.refresh_token = "refresh-" + base64.b16encode(os.urandom(8)).decode().lower()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, document: dict | None = None):
                body = json.dumps(document).encode() if document is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization")
                server.requests.append({"query": query, "auth": auth})
                if auth != server.expected:
                    return self.answer(401)
                document = {"token": server.token(query.get("service", [""])[0], query.get("scope", []))}
                if query.get("offline_token") == ["true"] and server.issue_refresh_tokens:
                    # The OAuth2 refresh token a client keeps instead of the password.
                    document["refresh_token"] = server.refresh_token
                self.answer(200, document)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                server.requests.append({"query": form, "auth": self.headers.get("Authorization"), "method": "POST"})
                if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [server.refresh_token]:
                    return self.answer(401)
                self.answer(200, {"access_token": server.token(form.get("service", [""])[0], form.get("scope", []))})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, service: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")[0], ":".join(scope.split(":")[1:-1]), scope.split(":")[-1]
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {"iss": "berth-test", "sub": "alice", "aud": service, "exp": now + 600, "nbf": now - 10, "iat": now,
                  "jti": str(now) + str(len(self.requests)), "access": access}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                                   check=True, capture_output=True).stdout
        return signing_input + "." + _b64url(signature)

    def registry_auth(self) -> str:
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: berth-test-registry\n"
                f"    issuer: berth-test\n    rootcertbundle: {self.cert}\n")

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
