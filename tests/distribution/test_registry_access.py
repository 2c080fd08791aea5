"""Mirrors, insecure registries and authentication, against Debian's docker-registry."""

from __future__ import annotations

import crypt
import json
import warnings

from conftest import skopeo


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
        line = f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
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
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(engine.root / "docker-config")
    return subprocess.run(["docker", "-H", engine.host, "login", "-u", user, "--password-stdin", registry.localhost],
                          input=password, capture_output=True, text=True, timeout=60, env=env, check=True)
