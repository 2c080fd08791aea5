"""Answers in which berthd once differed from dockerd, pinned with the request that showed it."""

from __future__ import annotations

import json

import pytest


NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
               'to connect this node to swarm and try again.')


@pytest.mark.parametrize("method,path,message", [
    ("POST", "/swarm/leave?force=1", "This node is not part of a swarm"),
    ("GET", "/swarm", NOT_MANAGER), ("GET", "/nodes", NOT_MANAGER), ("GET", "/services", NOT_MANAGER),
    ("GET", "/tasks", NOT_MANAGER), ("GET", "/secrets", NOT_MANAGER), ("GET", "/configs", NOT_MANAGER),
    ("DELETE", "/services/x", NOT_MANAGER),
])
def test_swarm_endpoints_answer_as_off_a_swarm(engine, method, path, message):
    status, _, body = engine.request(method, "/v1.41" + path)
    assert (status, json.loads(body)["message"]) == (503, message)


def test_kill_returns_once_the_container_has_exited(engine):
    engine.docker("run", "-d", "--name", "killed", "busybox", "sleep", "300")
    try:
        engine.docker("kill", "killed")
        state = json.loads(engine.docker("inspect", "killed").stdout)[0]["State"]
        assert (state["Running"], state["Status"], state["ExitCode"]) == (False, "exited", 137)
    finally:
        engine.docker("rm", "-f", "killed", check=False)


def test_network_names_may_hold_spaces_but_not_be_blank(engine):
    engine.docker("network", "create", "my net")
    try:
        assert json.loads(engine.docker("network", "inspect", "my net").stdout)[0]["Name"] == "my net"
    finally:
        engine.docker("network", "rm", "my net", check=False)
    status, _, body = engine.request("POST", "/v1.41/networks/create", body=json.dumps({"Name": "  "}),
                                     headers={"Content-Type": "application/json"})
    assert status == 400, body


def test_unknown_log_driver_is_refused_at_create(engine):
    p = engine.docker("create", "--log-driver", "nosuchdriver", "busybox", "true", check=False)
    assert p.returncode != 0
    assert "logger: no log driver named 'nosuchdriver' is registered" in p.stderr
    engine.docker("rm", "-f", engine.docker("create", "--log-driver", "local", "busybox", "true").stdout.strip())
