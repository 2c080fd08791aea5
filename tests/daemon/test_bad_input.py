"""Bad input gets Docker's status and message, and nothing is created."""

from __future__ import annotations

import json

import pytest

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


@pytest.mark.parametrize("args, message", [
    (["--cap-add", "BOGUS"], "unknown capability"),
    (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
    (["--name", "-bad"], "Invalid container name"),
    (["--restart", "on-failure:-1"], "invalid restart policy"),
    (["--cpus", "-1"], ""),
    (["--security-opt", "seccomp=/nonexistent.json"], ""),
])
def test_invalid_run_options_are_refused_and_nothing_is_created(engine, args, message):
    p = engine.docker("run", *args, "busybox", "true", check=False)
    assert p.returncode == 125, p.stderr
    assert message in p.stderr
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    assert list((engine.data_root / "containers").iterdir()) == []


def test_malformed_create_body_is_400(engine):
    status, _, body = engine.request("POST", "/containers/create", body=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400, body
    assert json.loads(body)["message"]


def test_unknown_container_is_404_with_dockers_message(engine):
    for method, path in [("GET", "/containers/nope/json"), ("POST", "/containers/nope/start"),
                         ("POST", "/containers/nope/stop"), ("DELETE", "/containers/nope")]:
        status, _, body = engine.request(method, path)
        assert status == 404, (method, path)
        assert json.loads(body)["message"] == "No such container: nope"


def test_kill_with_an_invalid_signal_is_400(engine):
    cid = engine.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    try:
        status, _, body = engine.request("POST", f"/containers/{cid}/kill?signal=BOGUS")
        assert status == 400 and json.loads(body)["message"] == "Invalid signal: BOGUS"
        assert json.loads(engine.docker("inspect", cid).stdout)[0]["State"]["Running"]
    finally:
        engine.docker("rm", "-f", cid)


def test_removing_a_running_container_without_force_is_409(engine):
    cid = engine.docker("run", "-d", "--name", "busy", "busybox", "sleep", "100").stdout.strip()
    try:
        p = engine.docker("rm", "busy", check=False)
        assert p.returncode == 1 and "container is running" in p.stderr
    finally:
        engine.docker("rm", "-f", cid)


def test_run_rm_of_a_missing_command_exits_127_and_leaves_nothing(engine):
    p = engine.docker("run", "--rm", "busybox", "/nonexistent", check=False)
    assert p.returncode == 127, p.stderr
    assert "/nonexistent" in p.stderr
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_starting_a_paused_container_is_409(engine):
    cid = engine.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    try:
        engine.docker("pause", cid)
        status, _, body = engine.request("POST", f"/containers/{cid}/start")
        assert status == 409 and b"cannot start a paused container" in body
    finally:
        engine.docker("rm", "-f", cid)


def test_privileged_run_gets_what_the_daemon_can_grant(engine):
    p = engine.docker("run", "--rm", "--privileged", "busybox", "grep", "CapBnd", "/proc/self/status")
    mine = next(l for l in open("/proc/self/status") if l.startswith("CapBnd"))
    assert p.stdout.split()[1] == mine.split()[1]
