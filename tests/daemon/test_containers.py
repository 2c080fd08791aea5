"""Containers end to end: `docker load`, `docker run`, ps/logs/inspect/rm against a real berthd
running real containers through berth-monitor and berth-runtime (needs root and overlayfs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, Daemon, requires_docker_cli

BUILD = REPO / ".build" / "debug"
pytestmark = requires_docker_cli


@pytest.fixture(scope="session")
def busybox_tar():
    d = Path(tempfile.mkdtemp(prefix="berth-img-", dir="/tmp"))
    tar = d / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), str(tar)], check=True, capture_output=True)
    yield tar
    shutil.rmtree(d, ignore_errors=True)


def _cleanup(d: Daemon):
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
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                 "--monitor-path", str(BUILD / "berth-monitor")])
    try:
        d.start()
        out = d.docker("load", "-i", str(busybox_tar)).stdout
        d.loaded_output = out
        yield d
    finally:
        _cleanup(d)


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
