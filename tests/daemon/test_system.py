"""berthd's system API (/_ping, /version, /info), its listeners and its lifecycle, checked
with the docker CLI 28, the Python docker SDK and raw HTTP over the unix socket."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BERTHD, DOCKER, UnixHTTPConnection, free_tcp_port, json_body, requires_docker_cli, socket_answers


def host_cgroup_version() -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        if left.split(" ")[4] == "/sys/fs/cgroup":
            version = "2" if right.split(" ")[0] == "cgroup2" else "1"
    return version


def host_pretty_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


def host_mem_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# ---- the docker CLI ------------------------------------------------------------------------

@requires_docker_cli
def test_docker_version_shows_berth_engine_with_api_1_47(daemon):
    out = daemon.docker("version").stdout
    assert "Server: Berth" in out
    assert re.search(r"Engine:\n\s+Version:\s+0\.1\.0", out), out
    assert re.search(r"API version:\s+1\.47 \(minimum version 1\.24\)", out), out
    assert re.search(r"OS/Arch:\s+linux/amd64", out) or os.uname().machine != "x86_64", out


@requires_docker_cli
def test_docker_version_format_reports_api_1_47(daemon):
    assert daemon.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == "1.47"


@requires_docker_cli
def test_docker_info_format_reports_driver_and_host_cgroup_version(daemon):
    out = daemon.docker("info", "--format", "{{.Driver}} {{.CgroupVersion}}").stdout.strip()
    assert out == f"overlay2 {host_cgroup_version()}"


@requires_docker_cli
def test_docker_info_renders_the_whole_document(daemon):
    p = daemon.docker("info")
    assert "Server Version: 0.1.0" in p.stdout
    assert f"Docker Root Dir: {daemon.data_root}" in p.stdout
    assert "Default Runtime: berth-runtime" in p.stdout
    assert "Swarm: inactive" in p.stdout
    assert f"Operating System: {host_pretty_name()}" in p.stdout
    assert "WARNING" not in p.stderr, p.stderr


# ---- the Python SDK ------------------------------------------------------------------------

@pytest.fixture
def sdk(daemon):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host, version="auto", timeout=10)
    yield client
    client.close()


def test_sdk_ping_version_and_info(sdk, daemon):
    assert sdk.ping() is True
    version = sdk.version()
    assert version["ApiVersion"] == "1.47"
    assert version["MinAPIVersion"] == "1.24"
    assert version["Components"][0]["Name"] == "Engine"
    info = sdk.info()
    assert info["Driver"] == "overlay2"
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["NCPU"] == os.cpu_count()
    assert info["MemTotal"] == host_mem_total()
    assert info["KernelVersion"] == os.uname().release
    assert info["Architecture"] == os.uname().machine
    assert info["Name"] == socket.gethostname()
    assert info["OperatingSystem"] == host_pretty_name()
    assert info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] == host_cgroup_version()
    assert info["Containers"] == info["ContainersRunning"] == info["ContainersPaused"] == info["ContainersStopped"] == 0
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["SecurityOptions"] == ["name=seccomp,profile=builtin"]
    assert info["Warnings"] == []
    assert Path(info["Runtimes"]["berth-runtime"]["path"]).name == "berth-runtime"
    assert re.fullmatch(r"[0-9a-f-]{36}", info["ID"]), info["ID"]


# ---- raw HTTP ------------------------------------------------------------------------------

def test_head_ping_has_dockers_headers(daemon):
    status, headers, body = daemon.request("HEAD", "/_ping")
    assert status == 200 and body == b""
    assert headers["Api-Version"] == "1.47"
    assert headers["Builder-Version"] == "1"
    assert headers["Docker-Experimental"] == "false"
    assert headers["Ostype"] == "linux"
    assert headers["Swarm"] == "inactive"
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert headers["Pragma"] == "no-cache"
    assert headers["Server"] == "Berth/0.1.0 (linux)"
    assert headers["Content-Length"] == "0"


def test_get_ping_says_ok_with_and_without_version_prefix(daemon):
    for path in ("/_ping", "/v1.47/_ping", "/v1.24/_ping"):
        status, headers, body = daemon.request("GET", path)
        assert (status, body) == (200, b"OK"), path


def test_too_new_version_is_400_with_dockers_message(daemon):
    status, headers, body = daemon.request("GET", "/v1.99/version")
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json_body(body) == {"message": "client version 1.99 is too new. Maximum supported API version is 1.47"}


def test_too_old_version_is_400_with_dockers_message(daemon):
    status, _, body = daemon.request("GET", "/v1.12/info")
    assert status == 400
    assert json_body(body)["message"].startswith("client version 1.12 is too old. Minimum supported API version is 1.24")


def test_unknown_path_is_404_json_and_wrong_method_405(daemon):
    status, headers, body = daemon.request("GET", "/v1.47/no/such/route")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert headers["Api-Version"] == "1.47"
    assert json_body(body) == {"message": "page not found"}
    status, _, body = daemon.request("DELETE", "/version")
    assert status == 405
    assert "message" in json_body(body)


def test_keep_alive_connection_serves_many_requests(daemon):
    conn = UnixHTTPConnection(daemon.socket)
    try:
        for path in ("/_ping", "/v1.47/version", "/v1.47/info", "/_ping"):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            assert not r.will_close
    finally:
        conn.close()


def test_socket_is_0660_and_roots_are_0711(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(daemon.data_root).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(daemon.exec_root).st_mode) == 0o711
    assert (daemon.exec_root / "berthd.pid").read_text().strip() == str(daemon.proc.pid)


# ---- listeners and startup -----------------------------------------------------------------

def test_tcp_without_flag_is_refused_at_startup(make_daemon):
    d = make_daemon(hosts=["tcp://127.0.0.1:2375"], default_host=False)
    d.start(wait=False)
    assert d.wait_exit() != 0
    log = d.log()
    assert "refusing to listen on tcp://127.0.0.1:2375 without TLS" in log
    assert "TLS is not implemented yet" in log
    assert "--insecure-tcp" in log


def test_tls_flags_are_refused_as_not_implemented(make_daemon):
    d = make_daemon(extra_args=["--tlsverify"])
    d.start(wait=False)
    assert d.wait_exit() != 0
    assert "TLS is not implemented yet" in d.log()


@requires_docker_cli
def test_insecure_tcp_serves_with_a_loud_warning(make_daemon):
    port = free_tcp_port()
    d = make_daemon(hosts=[f"tcp://127.0.0.1:{port}"], extra_args=["--insecure-tcp"], netns=False).start()
    warnings = [line for line in d.log().splitlines() if "level=warning" in line]
    assert any(f"tcp://127.0.0.1:{port} without TLS" in line for line in warnings), d.log()
    out = d.docker("version", "--format", "{{.Server.APIVersion}}", host=f"tcp://127.0.0.1:{port}").stdout
    assert out.strip() == "1.47"
    info = json.loads(d.docker("info", "--format", "{{json .Warnings}}", host=f"tcp://127.0.0.1:{port}").stdout)
    assert any("without encryption" in w for w in info)
    assert d.stop() == 0


def test_sigterm_and_sigint_shut_down_cleanly(make_daemon):
    for n, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        d = make_daemon(subdir=f"d{n}").start()
        assert d.stop(sig) == 0, d.log()
        assert not os.path.exists(d.socket), "socket file left behind"
        assert not (d.exec_root / "berthd.pid").exists(), "pid file left behind"
        assert "Daemon shutdown complete" in d.log()


def test_stale_socket_is_replaced_but_a_live_daemon_is_not(make_daemon):
    first = make_daemon(subdir="a")
    Path(first.socket).parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(first.socket)  # bound, never listening, then closed: a dead daemon's leftover
    stale.close()
    first.start()

    second = make_daemon(subdir="b")
    second.args[second.args.index("--host") + 1] = first.host
    second.start(wait=False)
    assert second.wait_exit() != 0
    assert "another daemon is listening" in second.log()
    assert socket_answers(first.socket), "the live daemon lost its socket"
    status, _, _ = first.request("GET", "/_ping")
    assert status == 200


def test_socket_parent_is_created_and_unknown_group_refused(make_daemon, workdir):
    nested = workdir / "deep" / "er" / "api.sock"
    d = make_daemon(hosts=[f"unix://{nested}"], default_host=False, subdir="n").start(wait=False)
    deadline = time.monotonic() + 10
    while not socket_answers(str(nested)):
        assert d.proc.poll() is None, d.log()
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.01)
    assert d.stop() == 0

    bad = make_daemon(extra_args=["--group", "no-such-group-berth"], subdir="g")
    bad.start(wait=False)
    assert bad.wait_exit() != 0
    assert "group no-such-group-berth not found" in bad.log()
    assert not os.path.exists(bad.socket)


def test_config_file_is_read_and_flags_win(make_daemon, workdir):
    cfg = workdir / "daemon.json"
    file_root = workdir / "from-file"
    cfg.write_text(json.dumps({
        "data-root": str(file_root), "debug": True, "exec-root": str(workdir / "file-exec"), "bogus-key": 1,
    }))
    d = make_daemon(extra_args=["--config-file", str(cfg)], subdir="c")
    d.args[d.args.index("--data-root") + 1] = str(workdir / "from-flag")
    d.args.remove("--exec-root")
    d.args.remove(str(d.exec_root))
    d.exec_root = workdir / "file-exec"
    d.start()
    status, _, body = d.request("GET", "/info")
    info = json_body(body)
    assert info["DockerRootDir"] == str(workdir / "from-flag"), "the flag must win over the file"
    assert info["Debug"] is True, "debug comes from the file"
    assert (workdir / "file-exec" / "berthd.pid").exists()
    assert not file_root.exists()
    assert "bogus-key" in d.log() and "level=warning" in d.log()
    assert "level=debug" in d.log()  # debug from the file turns on debug lines
    assert d.stop() == 0


def test_missing_explicit_config_file_is_an_error(make_daemon, workdir):
    d = make_daemon(extra_args=["--config-file", str(workdir / "missing.json")])
    d.start(wait=False)
    assert d.wait_exit() != 0
    assert "cannot read configuration file" in d.log()


def test_json_log_format_writes_one_json_object_per_line(make_daemon):
    d = make_daemon(extra_args=["--log-format", "json", "--debug"]).start()
    d.request("GET", "/_ping")
    assert d.stop() == 0
    lines = [json.loads(line) for line in d.log().splitlines() if line.strip()]
    assert lines, "no log lines"
    assert all({"time", "level", "msg"} <= set(obj) for obj in lines)
    assert any(obj["msg"].startswith("API listen on") for obj in lines)
    assert any(obj["msg"] == "request" and obj.get("uri") == "/_ping" for obj in lines)


def test_engine_id_survives_restart(make_daemon):
    d = make_daemon().start()
    first = json_body(d.request("GET", "/info")[2])["ID"]
    assert d.stop() == 0
    d.start()
    assert json_body(d.request("GET", "/info")[2])["ID"] == first
    assert d.stop() == 0


def test_second_daemon_with_same_pidfile_is_refused(make_daemon):
    first = make_daemon(subdir="p1").start()
    second = make_daemon(subdir="p2", extra_args=["--pidfile", str(first.exec_root / "berthd.pid")])
    second.start(wait=False)
    assert second.wait_exit() != 0
    assert "pid file found" in second.log()
    assert first.stop() == 0


def test_unknown_flag_is_a_usage_error(make_daemon):
    p = subprocess.run([str(BERTHD), "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "unknown flag: --no-such-flag" in p.stderr
    h = subprocess.run([str(BERTHD), "--help"], capture_output=True, text=True, timeout=10)
    assert h.returncode == 0 and "--insecure-tcp" in h.stdout
