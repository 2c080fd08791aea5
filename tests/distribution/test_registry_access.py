"""Mirrors, insecure registries and authentication, against Debian's docker-registry."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import warnings

import pytest
from conftest import BUILD, DOCKER, TokenServer, free_tcp_port, skopeo


def test_docker_hub_name_resolves_through_a_loopback_mirror(make_engine, registry):
    pusher = make_engine()
    pusher.docker("tag", "busybox:latest", f"{registry.localhost}/library/busybox")
    pusher.docker("push", f"{registry.localhost}/library/busybox")

    puller = make_engine(extra_args=["--registry-mirror", f"http://{registry.host}"], load=False)
    out = puller.docker("pull", "busybox").stdout
    assert "Pulling from library/busybox" in out
    assert "Status: Downloaded newer image for busybox:latest" in out
    info = json.loads(puller.docker("image", "inspect", "busybox").stdout)[0]
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["RepoDigests"][0].startswith("busybox@sha256:")
    assert puller.docker("run", "--rm", "busybox", "echo", "via mirror").stdout == "via mirror\n"


class PrefixProxy:
    """A mirror that lives under a path prefix (as on a shared host): forwards
    /mirror/v2/... to the registry's /v2/... and records what it was asked."""

    def __init__(self, upstream: str):
        import http.server
        import threading
        import urllib.request
        self.paths: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self, method: str):
                proxy.paths.append(self.path)
                if not self.path.startswith("/mirror/v2/"):
                    self.send_response(404)
                    self.end_headers()
                    return
                req = urllib.request.Request(f"http://{upstream}{self.path[len('/mirror'):]}", method=method,
                                             headers={k: v for k, v in self.headers.items() if k.lower() == "accept"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, headers, body = r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    status, headers, body = e.code, e.headers, e.read()
                self.send_response(status)
                for k in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version"):
                    if headers.get(k):
                        self.send_header(k, headers[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                self.relay("GET")

            def do_HEAD(self):
                self.relay("HEAD")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mirror"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_mirror_under_a_path_prefix(make_engine, registry):
    pusher = make_engine()
    pusher.docker("tag", "busybox:latest", f"{registry.localhost}/library/busybox")
    pusher.docker("push", f"{registry.localhost}/library/busybox")
    proxy = PrefixProxy(registry.host)
    try:
        puller = make_engine(extra_args=["--registry-mirror", proxy.url], load=False)
        assert "Downloaded newer image for busybox:latest" in puller.docker("pull", "busybox").stdout
        assert any(p.startswith("/mirror/v2/library/busybox/manifests/") for p in proxy.paths)
        assert any(p.startswith("/mirror/v2/library/busybox/blobs/") for p in proxy.paths)
        assert puller.docker("run", "--rm", "busybox", "echo", "via prefix").stdout == "via prefix\n"
    finally:
        proxy.stop()


def test_daemon_json_mirror_and_insecure_registry(make_engine, registry, workdir):
    pusher = make_engine()
    pusher.docker("tag", "busybox:latest", f"{registry.localhost}/library/busybox")
    pusher.docker("push", f"{registry.localhost}/library/busybox")
    config = workdir / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": [f"http://{registry.host}/"],
                                  "insecure-registries": ["10.0.0.0/8"]}))
    puller = make_engine(extra_args=["--config-file", str(config)], load=False)
    assert "Downloaded newer image for busybox:latest" in puller.docker("pull", "busybox:latest").stdout


def htpasswd(path, user: str, password: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, but the only bcrypt here (docker-registry's htpasswd wants bcrypt); low cost keeps the test fast
        line = f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n"
    path.write_text(line)


def test_basic_auth_login_push_and_pull(make_engine, make_registry, workdir):
    htpasswd(workdir / "htpasswd", "alice", "s3cret")
    registry = make_registry(htpasswd=workdir / "htpasswd")
    engine = make_engine()
    name = f"{registry.localhost}/private"
    engine.docker("tag", "busybox:latest", name)

    denied = engine.docker("push", name, check=False)
    assert denied.returncode != 0

    bad = engine.docker("login", "-u", "alice", "--password-stdin", registry.localhost, check=False)
    assert bad.returncode != 0
    status, _, body = engine.request("POST", "/auth", body=json.dumps(
        {"username": "alice", "password": "wrong", "serveraddress": registry.localhost}),
        headers={"Content-Type": "application/json"})
    assert status == 401 and "401 Unauthorized" in json.loads(body)["message"]

    login = _login(engine, registry, "alice", "s3cret")
    assert "Login Succeeded" in login.stdout
    assert "Pushed" in engine.docker("push", name).stdout
    skopeo("inspect", "--tls-verify=false", "--creds", "alice:s3cret", f"docker://{name}:latest")
    engine.docker("rmi", name)
    assert "Downloaded newer image" in engine.docker("pull", name).stdout

    engine.docker("logout", registry.localhost)
    engine.docker("rmi", name)
    anonymous = engine.docker("pull", name, check=False)
    assert anonymous.returncode != 0


def _login(engine, registry, user, password):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(engine.root / "docker-config")
    return subprocess.run([DOCKER, "-H", engine.host, "login", "-u", user, "--password-stdin", registry.localhost],
                          input=password, capture_output=True, text=True, timeout=60, env=env, check=True)


def test_bearer_token_login_push_and_pull(make_engine, make_registry, workdir):
    tokens = TokenServer(workdir, "alice", "s3cret")
    try:
        registry = make_registry(auth=tokens.registry_auth())
        engine = make_engine()
        status, _, body = engine.request("POST", "/auth", body=json.dumps(
            {"username": "alice", "password": "wrong", "serveraddress": registry.localhost}),
            headers={"Content-Type": "application/json"})
        assert status == 401 and "incorrect username or password" in json.loads(body)["message"]
        assert "Login Succeeded" in _login(engine, registry, "alice", "s3cret").stdout

        name = f"{registry.localhost}/team/app"
        engine.docker("tag", "busybox:latest", name)
        assert "Pushed" in engine.docker("push", name).stdout
        push_scopes = [r["query"].get("scope") for r in tokens.requests if r["query"].get("scope")]
        assert ["repository:team/app:pull,push"] in push_scopes
        assert all(r["query"].get("service") == ["berth-test-registry"] for r in tokens.requests)

        engine.docker("rmi", name)
        before = len(tokens.requests)
        assert "Downloaded newer image" in engine.docker("pull", name).stdout
        # One token for the pull scope, reused for the manifest, config and layer requests.
        assert len(tokens.requests) - before == 1
        assert engine.docker("run", "--rm", name, "echo", "bearer").stdout == "bearer\n"
    finally:
        tokens.stop()


def test_berth_registry_serve_skopeo_in_berthd_pull_and_push_back(engine, workdir, busybox_tar):
    binary = BUILD / "berth-registry"
    if not binary.is_file():
        pytest.skip(f"berth-registry is not built at {binary}")
    port = free_tcp_port()
    log = open(workdir / "berth-registry.log", "wb")
    server = subprocess.Popen([str(binary), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(workdir / "berth-reg")],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        name = f"localhost:{port}/tools/busybox"
        deadline = time.monotonic() + 15
        while not _listening(port):
            assert server.poll() is None and time.monotonic() < deadline, (workdir / "berth-registry.log").read_text()
            time.sleep(0.05)
        skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", f"docker://{name}:skopeo")
        out = engine.docker("pull", f"{name}:skopeo").stdout
        assert f"Status: Downloaded newer image for {name}:skopeo" in out
        assert engine.docker("run", "--rm", f"{name}:skopeo", "echo", "from berth-registry").stdout == "from berth-registry\n"
        engine.docker("tag", f"{name}:skopeo", f"{name}:pushed")
        push = engine.docker("push", f"{name}:pushed").stdout
        assert "Layer already exists" in push and "pushed: digest: sha256:" in push
        skopeo("inspect", "--tls-verify=false", f"docker://{name}:pushed")
        # `docker search` on berth-registry's v1 search API, through berthd.
        skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", f"docker://localhost:{port}/web/nginxish:1")
        found = engine.docker("search", "--format", "{{.Name}} {{.StarCount}}", f"localhost:{port}/busy").stdout.split("\n")
        assert "tools/busybox 0" in found and not any("nginxish" in line for line in found)
        status, _, body = engine.request("GET", f"/images/search?term=localhost:{port}/tools&limit=0")
        assert status == 400
        client_results = json.loads(engine.request("GET", f"/images/search?term=localhost:{port}/web")[2])
        assert client_results == [{"name": "web/nginxish", "description": "", "star_count": 0,
                                   "is_official": False, "is_automated": False}]
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_login_with_a_wrong_password_after_a_good_one_is_refused(make_engine, make_registry, workdir):
    htpasswd(workdir / "htpasswd", "alice", "s3cret")
    registry = make_registry(htpasswd=workdir / "htpasswd")
    engine = make_engine(load=False)

    def auth(password):
        status, _, _ = engine.request("POST", "/auth", body=json.dumps(
            {"username": "alice", "password": password, "serveraddress": registry.localhost}),
            headers={"Content-Type": "application/json"})
        return status

    assert auth("s3cret") == 200
    assert auth("wrong") == 401


def test_berth_login_stores_credentials_that_pull_and_push_send(make_engine, make_registry, workdir):
    htpasswd(workdir / "htpasswd", "bob", "hunter2")
    registry = make_registry(htpasswd=workdir / "htpasswd")
    engine = make_engine()
    name = f"{registry.localhost}/bobs"
    engine.docker("tag", "busybox:latest", name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BERTH_"))}
    env.update(BERTH_HOST=engine.host, DOCKER_CONFIG=str(workdir / "berth-config"))

    def berth(*args, input=None):
        return subprocess.run([str(BUILD / "berth"), *args], capture_output=True, text=True, env=env, input=input,
                              timeout=60, stdin=None if input is not None else subprocess.DEVNULL)

    assert berth("push", name).returncode != 0
    bad = berth("login", "-u", "bob", "--password-stdin", registry.localhost, input="wrong\n")
    assert bad.returncode == 1 and "401 Unauthorized" in bad.stderr
    assert not (workdir / "berth-config" / "config.json").exists()
    good = berth("login", "-u", "bob", "--password-stdin", registry.localhost, input="hunter2\n")
    assert good.returncode == 0 and good.stdout == "Login Succeeded\n", good.stderr
    config = json.loads((workdir / "berth-config" / "config.json").read_text())
    assert list(config["auths"]) == [registry.localhost]
    assert oct((workdir / "berth-config" / "config.json").stat().st_mode & 0o777) == "0o600"
    pushed = berth("push", name)
    assert pushed.returncode == 0 and "latest: digest: sha256:" in pushed.stdout, pushed.stderr
    engine.docker("rmi", name)
    assert berth("pull", name).returncode == 0
    assert berth("logout", registry.localhost).stdout == f"Removing login credentials for {registry.localhost}\n"
    engine.docker("rmi", name)
    assert berth("pull", name).returncode != 0


def test_identity_token_login_keeps_no_password_and_refreshes_tokens(make_engine, make_registry, workdir):
    tokens = TokenServer(workdir, "alice", "s3cret")
    tokens.issue_refresh_tokens = True
    try:
        registry = make_registry(auth=tokens.registry_auth())
        engine = make_engine()
        assert "Login Succeeded" in _login(engine, registry, "alice", "s3cret").stdout
        offline = [r for r in tokens.requests if r["query"].get("offline_token") == ["true"]]
        assert offline and offline[-1]["query"].get("client_id") == ["docker"]
        # The docker CLI keeps the identity token the daemon returned, not the password.
        entry = json.loads((engine.root / "docker-config" / "config.json").read_text())["auths"][registry.localhost]
        assert entry["identitytoken"] == tokens.refresh_token
        assert base64.b64decode(entry["auth"]).decode() == "alice:"
        name = f"{registry.localhost}/team/idtoken"
        engine.docker("tag", "busybox:latest", name)
        assert "Pushed" in engine.docker("push", name).stdout
        engine.docker("rmi", name)
        assert "Downloaded newer image" in engine.docker("pull", name).stdout
        grants = [r for r in tokens.requests if r.get("method") == "POST"]
        assert grants and all(r["query"]["grant_type"] == ["refresh_token"] for r in grants)
        assert {s for r in grants for s in r["query"].get("scope", [])} >= {"repository:team/idtoken:pull,push", "repository:team/idtoken:pull"}
    finally:
        tokens.stop()


def test_https_registry_trusted_through_its_certs_directory(make_engine, workdir):
    # A private CA, a server certificate for the registry's name, and berth-registry on TLS.
    binary = BUILD / "berth-registry"
    if not binary.is_file():
        pytest.skip(f"berth-registry is not built at {binary}")
    pki = workdir / "pki"
    pki.mkdir()
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=pki)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=berth-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (pki / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    port = free_tcp_port()
    log = open(workdir / "tls-registry.log", "wb")
    server = subprocess.Popen([str(binary), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(workdir / "tls-reg"),
                               "--tls-cert", str(pki / "server.crt"), "--tls-key", str(pki / "server.key")],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            assert server.poll() is None and time.monotonic() < deadline, (workdir / "tls-registry.log").read_text()
            time.sleep(0.05)
        certs = workdir / "certs.d" / f"localhost:{port}"
        certs.mkdir(parents=True)
        shutil.copy(pki / "ca.crt", certs / "ca.crt")
        engine = make_engine(extra_args=["--registry-certs-dir", str(workdir / "certs.d")])
        name = f"localhost:{port}/secure/busybox"
        engine.docker("tag", "busybox:latest", name)
        assert "Pushed" in engine.docker("push", name).stdout
        engine.docker("rmi", name)
        assert "Downloaded newer image" in engine.docker("pull", name).stdout
        # Without the CA the registry is not trusted (and it speaks no plain HTTP).
        other = make_engine(extra_args=["--registry-certs-dir", str(workdir / "empty")], load=False)
        p = other.docker("pull", name, check=False)
        assert p.returncode != 0
    finally:
        server.terminate()
        server.wait()
