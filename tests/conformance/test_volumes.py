"""Volume endpoints: list, create, inspect, remove, prune."""

from __future__ import annotations

import pytest

from conftest import bug, query


WARNINGS = bug("GET /volumes: Warnings [] where dockerd sends null")


@pytest.mark.parametrize("params", [
    pytest.param({}, marks=WARNINGS), pytest.param(dict(filters={"name": ["cf-vol"]}), marks=WARNINGS),
    pytest.param(dict(filters={"dangling": ["true"]}), marks=WARNINGS), pytest.param(dict(filters={"driver": ["local"]}), marks=WARNINGS),
    pytest.param(dict(filters={"label": ["nope"]}), marks=WARNINGS), dict(filters={"bogus": ["x"]}),
    pytest.param(dict(filters={"dangling": ["maybe"]}), marks=bug(
        "volumes filter dangling=maybe: berthd \"invalid filter 'dangling=maybe'\", dockerd \"Invalid filter 'dangling=[maybe]'\"")),
])
def test_list_volumes(world, params):
    world.same("GET", query("/volumes", **params))


@pytest.mark.parametrize("name", ["cf-vol", "no-such-volume"])
def test_inspect_volume(world, name):
    world.same("GET", f"/volumes/{name}")


@pytest.mark.parametrize("body", [{"Name": "{name}"},
                                  pytest.param({"Name": "{name}", "Labels": {"a": "b"}, "DriverOpts": {}},
                                               marks=bug("a volume created with DriverOpts {}: Options null where dockerd sends {}")),
                                  {"Name": "{name}", "Driver": "local", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}])
def test_create_volume(both, scratch, body):
    name = scratch.name()
    scratch.volumes.append(name)
    body = {**body, "Name": name}
    both.same("POST", "/volumes/create", body)
    both.same("POST", "/volumes/create", body)   # again: the same volume
    both.same("GET", f"/volumes/{name}")


def test_create_anonymous_volume(both, scratch):
    c = both.same("POST", "/volumes/create", {})
    for a in (c.berthd, c.dockerd):
        if a.status == 201:
            scratch.volumes.append(a.json["Name"])
    both.same("POST", "/volumes/create")


@pytest.mark.parametrize("body", [{"Name": "bad/name"},
                                  {"Name": "cf-x", "DriverOpts": {"bogus": "1"}}, "{bad json", {"Name": 3}])
def test_create_volume_refused(both, scratch, body):
    scratch.volumes.append("cf-x")
    both.same("POST", "/volumes/create", body)


def test_remove_volume(both, scratch):
    name = scratch.name()
    scratch.volumes.append(name)
    both.request("POST", "/volumes/create", {"Name": name})
    c = scratch.container(body={"Image": "busybox", "HostConfig": {"Binds": [f"{name}:/data"]}})
    both.same("DELETE", f"/volumes/{name}")            # in use
    both.request("DELETE", f"/containers/{c}")
    both.same("DELETE", f"/volumes/{name}")
    both.same("DELETE", f"/volumes/{name}")            # gone


def test_prune_volumes(both, scratch):
    name = scratch.name()
    scratch.volumes.append(name)
    both.request("POST", "/volumes/create", {"Name": name, "Labels": {"cf-prune": "1"}})
    both.same("POST", query("/volumes/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/volumes/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/volumes/prune", filters={"bogus": ["x"]}))
