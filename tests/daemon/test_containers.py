"""Containers end to end: `docker load`, `docker run`, ps/logs/inspect/rm against a real berthd
running real containers through berth-monitor and berth-runtime (needs root and overlayfs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, REPO, Daemon, cleanup_daemon, requires_docker_cli  # noqa: F401 (fixtures)

pytestmark = requires_docker_cli


def test_docker_load_prints_loaded_image(engine):
    assert "Loaded image: busybox:latest" in engine.loaded_output
    assert "busybox" in engine.docker("images").stdout


def test_run_rm_echo_prints_hi_and_exits_0(engine):
    p = engine.docker("run", "--rm", "busybox", "echo", "hi")
    assert p.stdout == "hi\n"
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_run_rm_exit_code_is_the_containers(engine):
    p = engine.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3, p.stderr


def test_detached_container_shows_in_ps_logs_and_inspect_then_force_removed(engine):
    cid = engine.docker("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo ready; sleep 100").stdout.strip()
    assert len(cid) == 64
    try:
        ps = engine.docker("ps").stdout
        assert "web" in ps and cid[:12] in ps
        for _ in range(100):
            if "ready" in engine.docker("logs", "web").stdout:
                break
        assert engine.docker("logs", "web").stdout == "ready\n"
        assert engine.docker("inspect", "-f", "{{.State.Status}}", "web").stdout.strip() == "running"
        conflict = engine.docker("run", "-d", "--name", "web", "busybox", "true", check=False)
        assert f'The container name "/web" is already in use by container "{cid}"' in conflict.stderr
    finally:
        engine.docker("rm", "-f", "web")
    assert "web" not in engine.docker("ps", "-a").stdout
    missing = engine.docker("container", "inspect", "web", check=False)
    assert missing.returncode != 0 and "No such container: web" in missing.stderr


def test_unknown_image_is_404_with_dockers_message(engine):
    status, _, body = engine.request("POST", "/containers/create", body=json.dumps({"Image": "nosuch"}),
                                     headers={"Content-Type": "application/json"})
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:latest"


def test_sdk_run_remove_returns_output(engine):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        assert client.containers.run("busybox", "echo hello", remove=True) == b"hello\n"
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def test_info_counts_containers(engine):
    engine.docker("create", "--name", "idle", "busybox", "true")
    try:
        info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
        assert info["Containers"] == 1 and info["ContainersStopped"] == 1
    finally:
        engine.docker("rm", "idle")
