"""Exec endpoints: create, start (detached and attached, with and without a TTY), resize, inspect."""

from __future__ import annotations

import pytest

from conftest import bug, demux, query


def make_exec(both, container: str, body: dict, key: str = "exec") -> None:
    """Creates the same exec in both daemons; `{exec}` in paths is then each one's ID."""
    answers = both.request("POST", f"/containers/{container}/exec", body)
    for daemon, a in answers.items():
        assert a.status == 201, f"{daemon}: {a.short()}"
    both.let(key, berthd=answers["berthd"].json["Id"], dockerd=answers["dockerd"].json["Id"])


def test_exec_create_answers_an_id(world):
    world.same("POST", "/containers/cf-running/exec", {"Cmd": ["true"], "AttachStdout": True})


@pytest.mark.parametrize("container,body", [
    ("cf-exited", {"Cmd": ["true"]}),
    ("cf-created", {"Cmd": ["true"]}),
    ("cf-running", {}),
    ("cf-running", {"Cmd": []}),
    ("cf-running", "{bad json"),
    ("cf-running", {"Cmd": ["true"], "DetachKeys": "bogus-key"}),
    ("cf-running", {"Cmd": "true"}),
])
def test_exec_create_refused(world, container, body):
    world.same("POST", f"/containers/{container}/exec", body)


@bug("GET /exec/{id}/json: ProcessConfig.user \"\" where dockerd omits it when empty (omitempty)")
def test_exec_inspect_before_and_after_start(world):
    make_exec(world, "cf-running", {"Cmd": ["sh", "-c", "exit 5"], "AttachStdout": True, "AttachStderr": True})
    world.same("GET", "/exec/{exec}/json")
    world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": False}, hijacked=True, shape="none")
    world.same("GET", "/exec/{exec}/json")
    world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": False}, hijacked=True, shape="text")  # already ran


def test_exec_start_detached(world):
    make_exec(world, "cf-running", {"Cmd": ["sleep", "0"]})
    world.same("POST", "/exec/{exec}/start", {"Detach": True})


@pytest.mark.parametrize("body", ["", "{bad json"])
def test_exec_start_bad_body(world, body):
    make_exec(world, "cf-running", {"Cmd": ["true"]})
    world.same("POST", "/exec/{exec}/start", body)


def test_exec_attached_output_is_multiplexed_without_tty(world):
    make_exec(world, "cf-running", {"Cmd": ["sh", "-c", "echo out; echo err >&2"], "AttachStdout": True, "AttachStderr": True})
    c = world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": False}, hijacked=True, shape="none")
    assert demux(c.berthd.body) == demux(c.dockerd.body) == {1: b"out\n", 2: b"err\n"}


def test_exec_with_tty_streams_raw(world):
    make_exec(world, "cf-running", {"Cmd": ["echo", "hi"], "AttachStdout": True, "AttachStderr": True, "Tty": True})
    c = world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": True}, hijacked=True, shape="text")
    assert c.berthd.body == c.dockerd.body


def test_exec_start_follows_the_bodys_tty(world):
    """dockerd frames the stream from the start request's Tty, whatever the exec was created with."""
    make_exec(world, "cf-running", {"Cmd": ["echo", "hi"], "AttachStdout": True, "Tty": True})
    c = world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": False}, hijacked=True, shape="none")
    assert c.berthd.body == c.dockerd.body


def test_exec_stdin(world):
    make_exec(world, "cf-running", {"Cmd": ["cat"], "AttachStdin": True, "AttachStdout": True})
    c = world.same("POST", "/exec/{exec}/start", {"Detach": False, "Tty": False}, hijacked=True, shape="none", stdin=b"ping\n")
    assert demux(c.berthd.body) == demux(c.dockerd.body) == {1: b"ping\n"}


def test_exec_resize(world):
    make_exec(world, "cf-running", {"Cmd": ["sleep", "5"], "Tty": True})
    # (Before the start dockerd 20.10 waits 10 s for the process, then answers 500.)
    world.same("POST", "/exec/{exec}/start", {"Detach": True, "Tty": True})
    world.same("POST", "/exec/{exec}/resize?h=10&w=10")
    world.same("POST", "/exec/{exec}/resize?h=x&w=10")


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/exec/no-such-exec/json", None), ("POST", "/exec/no-such-exec/start", {"Detach": True}),
    ("POST", "/exec/no-such-exec/resize?h=1&w=1", None),
])
def test_unknown_exec_is_404(both, method, path, body):
    both.same(method, path, body)


@bug("exec in a paused container: berthd names the container by ID ('Container <id> is paused, ...'), dockerd by the name "
     "the request used ('Container cf-x is paused, unpause the container before exec')")
def test_exec_in_a_paused_container_is_refused(both, scratch):
    name = scratch.container(start=True)
    both.request("POST", f"/containers/{name}/pause")
    both.same("POST", f"/containers/{name}/exec", {"Cmd": ["true"]})
    both.request("POST", f"/containers/{name}/unpause")


@bug("GET /containers/{id}/json: ExecIDs lacks an exec created but not started yet (dockerd lists it)")
def test_container_inspect_lists_exec_ids(both, scratch):
    name = scratch.container(start=True)
    make_exec(both, name, {"Cmd": ["true"]})
    both.same("GET", query(f"/containers/{name}/json"), only=("$.ExecIDs",))
