"""`docker events` and the SDK's `client.events()` against a real berthd."""

from __future__ import annotations

import json
import subprocess
import time

import docker

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


def test_container_lifecycle_events_in_order_with_since_and_until(engine):
    since = f"{time.time():.9f}"
    cid = engine.docker("create", "--name", "ev1", "-l", "team=blue", "busybox", "true").stdout.strip()
    engine.docker("start", "-a", "ev1")
    engine.docker("rm", "ev1")
    until = f"{time.time():.9f}"
    p = engine.docker("events", "--since", since, "--until", until, "--filter", "container=ev1",
                      "--format", "{{json .}}")
    events = [json.loads(line) for line in p.stdout.splitlines()]
    actions = [e["Action"] for e in events]
    assert actions[:1] == ["create"] and "start" in actions and "die" in actions and actions[-1] == "destroy", actions
    die = next(e for e in events if e["Action"] == "die")
    assert die["Actor"]["ID"] == cid
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["Actor"]["Attributes"]["name"] == "ev1"
    assert die["Actor"]["Attributes"]["team"] == "blue"
    assert die["Type"] == "container" and die["scope"] == "local" and die["timeNano"] > 0


def test_filters_select_by_event_and_label(engine):
    since = f"{time.time():.9f}"
    engine.docker("run", "--rm", "-l", "pick=yes", "busybox", "true")
    engine.docker("run", "--rm", "busybox", "true")
    until = f"{time.time():.9f}"
    p = engine.docker("events", "--since", since, "--until", until, "--filter", "event=die",
                      "--filter", "label=pick=yes", "--format", "{{.Action}} {{.Actor.Attributes.pick}}")
    assert p.stdout.splitlines() == ["die yes"]


def test_bad_filter_and_time_are_400(engine):
    status, _, body = engine.request("GET", "/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
    assert status == 400 and b"invalid filter 'bogus'" in body
    status, _, body = engine.request("GET", "/events?since=yesterday")
    assert status == 400


def test_live_stream_sees_stop_and_kill_signal(engine):
    cid = engine.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    proc = subprocess.Popen(
        ["/usr/local/bin/docker", "-H", engine.host, "events", "--filter", f"container={cid}", "--format", "{{.Action}} {{.Actor.Attributes.signal}}"],
        stdout=subprocess.PIPE, text=True, env={"DOCKER_CONFIG": str(engine.root / "docker-config")})
    try:
        time.sleep(0.5)
        engine.docker("stop", "-t", "1", cid)
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            lines.append(line)
            if line.startswith("stop"):
                break
        assert "kill 15" in lines and any(l.startswith("die") for l in lines) and lines[-1].startswith("stop"), lines
    finally:
        proc.kill()
        proc.wait()
        engine.docker("rm", "-f", cid)


def test_sdk_events_decoded(engine):
    client = docker.DockerClient(base_url=engine.host)
    since = int(time.time()) - 1
    c = client.containers.run("busybox", "true", detach=True)
    c.wait()
    c.remove()
    events = client.events(since=since, until=int(time.time()) + 1, decode=True,
                           filters={"container": c.id, "type": "container"})
    assert [e["Action"] for e in events][-1] == "destroy"
