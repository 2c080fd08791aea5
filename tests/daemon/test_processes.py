"""A running container's processes against a real berthd: top, stats (from the container's
cgroup), pause/unpause (the freezer) and what a paused container allows, through the docker
CLI, the Python SDK and the raw API."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from conftest import Daemon, requires_docker_cli

pytestmark = requires_docker_cli

# A PID 1 that exits on SIGTERM: busybox sh ignores it as init unless trapped.
STOPPABLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]


@pytest.fixture
def box(engine):
    """A running busybox container, force-removed after the test."""
    name = f"px{os.getpid()}{time.monotonic_ns() % 1_000_000}"
    engine.docker("run", "-d", "--name", name, "busybox", *STOPPABLE)
    try:
        yield name
    finally:
        engine.docker("rm", "-f", name, check=False)


def state(engine: Daemon, name: str) -> dict:
    return json.loads(engine.docker("inspect", name).stdout)[0]["State"]


def freezer_state(pid: int) -> str:
    """The freezer of the process's cgroup: v1 `freezer.state` or v2 `cgroup.freeze`."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return open(f"/sys/fs/cgroup/freezer{path}/freezer.state").read().strip()
    path = next(line.split(":", 2)[2] for line in open(f"/proc/{pid}/cgroup").read().splitlines() if line.startswith("0::"))
    return open(f"/sys/fs/cgroup{path}/cgroup.freeze").read().strip()


def parse_size(text: str) -> float:
    """`540KiB`, `1.5MiB`, `23.54GiB` in bytes."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?i?B)", text.strip())
    assert m, text
    return float(m[1]) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]


# top


def test_top_lists_the_containers_processes(engine, box):
    engine.docker("exec", "-d", box, "sleep", "123")
    for _ in range(100):
        out = engine.docker("top", box).stdout
        if "sleep 123" in out:
            break
        time.sleep(0.05)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any("sleep 123" in line for line in lines[1:])
    # Only the container's processes: not this test's own.
    assert not any(line.split()[1] == str(os.getpid()) for line in lines[1:])


def test_top_takes_ps_arguments(engine, box):
    out = engine.docker("top", box, "-o", "pid,comm").stdout.splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and any(line.split()[1] == "sh" for line in out[1:])


def test_sdk_top_shape(sdk, box):
    top = sdk.containers.get(box).top()
    assert "PID" in top["Titles"] and top["Processes"] and all(len(p) == len(top["Titles"]) for p in top["Processes"])


def test_top_of_a_stopped_container_is_409(engine):
    engine.docker("create", "--name", "top-stopped", "busybox", "true")
    try:
        status, _, body = engine.request("GET", "/containers/top-stopped/top")
        assert status == 409 and "is not running" in json.loads(body)["message"]
    finally:
        engine.docker("rm", "top-stopped")


# stats


def test_stats_no_stream_shows_cpu_and_memory(engine, box):
    row = json.loads(engine.docker("stats", "--no-stream", "--format", "{{json .}}", box).stdout)
    assert row["Name"] == box
    assert re.fullmatch(r"\d+\.\d\d%", row["CPUPerc"])
    usage, limit = row["MemUsage"].split(" / ")
    assert 0 < parse_size(usage) < parse_size(limit)
    assert int(row["PIDs"]) >= 2  # sh and its sleep


def test_stats_limit_is_the_memory_limit(engine):
    engine.docker("run", "-d", "--name", "stats-limited", "--memory", "64m", "busybox", "sleep", "60")
    try:
        row = json.loads(engine.docker("stats", "--no-stream", "--format", "{{json .}}", "stats-limited").stdout)
        assert row["MemUsage"].endswith(" / 64MiB")
    finally:
        engine.docker("rm", "-f", "stats-limited")


def test_sdk_stats_once_has_dockers_keys(sdk, box):
    stats = sdk.containers.get(box).stats(stream=False)
    for key in ["read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "blkio_stats", "name", "id"]:
        assert key in stats, key
    assert stats["name"] == "/" + box
    cpu, precpu = stats["cpu_stats"], stats["precpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > 0 and cpu["system_cpu_usage"] > precpu["system_cpu_usage"] > 0
    assert cpu["online_cpus"] >= 1
    assert stats["preread"] < stats["read"]
    assert 0 < stats["memory_stats"]["usage"] < stats["memory_stats"]["limit"]
    assert stats["pids_stats"]["current"] >= 1


def test_stats_one_shot_has_no_previous_reading(engine, box):
    status, _, body = engine.request("GET", f"/containers/{box}/stats?stream=false&one-shot=true")
    stats = json.loads(body)
    assert status == 200 and stats["preread"] == "0001-01-01T00:00:00Z"
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_sdk_stats_stream_gives_successive_readings(sdk, box):
    stream = sdk.containers.get(box).stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    stream.close()
    assert second["preread"] == first["read"]
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"]


def test_stats_of_a_stopped_container_are_zero(engine):
    engine.docker("create", "--name", "stats-stopped", "busybox", "true")
    try:
        status, _, body = engine.request("GET", "/containers/stats-stopped/stats?stream=false")
        stats = json.loads(body)
        assert status == 200 and stats["read"] == "0001-01-01T00:00:00Z" and stats["memory_stats"] == {}
    finally:
        engine.docker("rm", "stats-stopped")


def test_stats_of_an_unknown_container_is_404(engine):
    assert engine.request("GET", "/containers/nosuch/stats?stream=false")[0] == 404


# pause / unpause


def test_pause_freezes_and_unpause_thaws(engine, box):
    engine.docker("pause", box)
    s = state(engine, box)
    assert s["Status"] == "paused" and s["Paused"] is True and s["Running"] is True
    assert "(Paused)" in engine.docker("ps", "--filter", f"name={box}").stdout
    assert freezer_state(s["Pid"]) in ("FROZEN", "1")
    engine.docker("unpause", box)
    s = state(engine, box)
    assert s["Status"] == "running" and s["Paused"] is False
    assert engine.docker("exec", box, "echo", "thawed").stdout == "thawed\n"


def test_exec_in_a_paused_container_is_409(engine, box):
    engine.docker("pause", box)
    try:
        status, _, body = engine.request("POST", f"/containers/{box}/exec", body=json.dumps({"Cmd": ["true"]}),
                                         headers={"Content-Type": "application/json"})
        assert status == 409 and "is paused, unpause the container before exec" in json.loads(body)["message"]
        p = engine.docker("exec", box, "true", check=False)
        assert p.returncode != 0 and "paused" in p.stderr
    finally:
        engine.docker("unpause", box)


def test_pause_twice_and_unpause_running_are_409(engine, box):
    engine.docker("pause", box)
    try:
        status, _, body = engine.request("POST", f"/containers/{box}/pause")
        assert status == 409 and "is already paused" in json.loads(body)["message"]
    finally:
        engine.docker("unpause", box)
    status, _, body = engine.request("POST", f"/containers/{box}/unpause")
    assert status == 409 and "is not paused" in json.loads(body)["message"]


def test_kill_of_a_paused_container_stops_it(engine, box):
    engine.docker("pause", box)
    engine.docker("kill", box)
    assert engine.docker("wait", box).stdout.strip() == "137"
    s = state(engine, box)
    assert s["Status"] == "exited" and s["Paused"] is False


def test_stop_of_a_paused_container_delivers_the_signal(engine, box):
    engine.docker("pause", box)
    engine.docker("stop", "-t", "30", box)
    s = state(engine, box)
    # The trap ran (exit 0), so the SIGTERM reached it after the thaw rather than SIGKILL.
    assert s["Status"] == "exited" and s["ExitCode"] == 0


def test_sdk_pause_unpause(sdk, box):
    c = sdk.containers.get(box)
    c.pause()
    c.reload()
    assert c.status == "paused"
    c.unpause()
    c.reload()
    assert c.status == "running"


def test_pause_events_are_published(engine, box):
    since = str(time.time() - 1)
    engine.docker("pause", box)
    engine.docker("unpause", box)
    until = str(time.time() + 1)
    out = engine.docker("events", "--since", since, "--until", until, "--filter", f"container={box}",
                        "--format", "{{.Action}}").stdout.splitlines()
    assert out[-2:] == ["pause", "unpause"]


# resize


def test_resize_of_a_tty_container_reaches_its_terminal(engine):
    engine.docker("run", "-dit", "--name", "resize-api", "busybox", "sh")
    try:
        status, _, _ = engine.request("POST", "/containers/resize-api/resize?h=37&w=111")
        assert status == 200
        # Asked through the terminal of the container's own shell.
        out = engine.docker("exec", "resize-api", "sh", "-c", "stty size < /proc/1/fd/0").stdout
        assert out == "37 111\n"
    finally:
        engine.docker("rm", "-f", "resize-api")


def test_resize_needs_h_and_w(engine, box):
    assert engine.request("POST", f"/containers/{box}/resize?h=abc&w=10")[0] == 400
    assert engine.request("POST", "/containers/nosuch/resize?h=10&w=10")[0] == 404
