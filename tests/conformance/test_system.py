"""System endpoints, versions, routing errors: /_ping, /version, /info, /system/df, /events, /auth,
and what both daemons answer to paths and methods they do not know."""

from __future__ import annotations

import time

import pytest

from conftest import bug, query


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_answers_ok_with_the_same_headers(both, method):
    both.same(method, "/_ping", shape="text", raw_path=True, headers_too=True)
    both.same(method, "/_ping", shape="text", headers_too=True)


def test_version_has_dockers_shape(both):
    both.same("GET", "/version", headers_too=True)


@bug("GET /info at 1.41 lacks what newer dockerd still sends there: BridgeNfIptables and BridgeNfIp6tables (below 1.50), "
     "ContainerdCommit/RuncCommit/InitCommit.Expected (below 1.49), RegistryConfig.AllowNondistributableArtifactsCIDRs and "
     "...Hostnames (below 1.47), RegistryConfig.Mirrors, KernelMemory (true on this cgroup v1 host); PidsLimit false where "
     "the host has the pids controller (dockerd true); Warnings [] where dockerd sends null; no GenericResources, "
     "Swarm.RemoteManagers nor Plugins.Authorization (dockerd: null)")
def test_info_has_dockers_shape(world):
    world.same("GET", "/info")


DF = bug("GET /system/df: BuildCache [] where dockerd sends null; its images and containers carry the list bugs "
         "(Labels {}, RepoDigests [], no VirtualSize; SizeRw 0)")
DF_TYPE = bug("GET /system/df?type= at API 1.41: the type parameter came with 1.42; dockerd ignores it below 1.42 "
              "(newer dockerd too: system_routes.go), so every section is listed and type=bogus is no error; berthd filters "
              "and refuses 'unknown object type: bogus'")


@pytest.mark.parametrize("path", [pytest.param("/system/df", marks=DF), pytest.param(query("/system/df", type="container"), marks=DF_TYPE),
                                  pytest.param(query("/system/df", type="volume"), marks=DF_TYPE),
                                  pytest.param(query("/system/df", type="bogus"), marks=DF_TYPE)])
def test_system_df(world, path):
    world.same("GET", path)


# dockerd keeps its last 256 events only: each events test reads the window of its own actions.

@bug("GET /events: berthd records no image save event (GET /images/{name}/get) nor network prune event, and its image "
     "prune event carries the old id field (empty) that dockerd leaves out")
def test_events_of_images_networks_volumes(both, scratch):
    since = int(time.time())
    net, vol = scratch.name(), scratch.name()
    scratch.networks.append(net)
    scratch.volumes.append(vol)
    scratch.images.append("cf-events:1")
    both.request("POST", "/networks/create", {"Name": net, "Labels": {"cf-events": "1"}})
    both.request("POST", "/volumes/create", {"Name": vol})
    both.request("DELETE", f"/volumes/{vol}")
    both.request("POST", query("/networks/prune", filters={"label": ["cf-events=1"]}))
    both.request("POST", query("/images/busybox/tag", repo="cf-events", tag="1"))
    both.request("GET", "/images/cf-events:1/get")
    both.request("DELETE", "/images/cf-events:1")
    both.request("POST", query("/images/prune", filters={"label": ["cf-none"]}))
    until = int(time.time()) + 1
    both.same("GET", query("/events", since=since, until=until, filters={"type": ["volume", "network", "image"]}), shape="lines")


def test_events_of_a_container_lifecycle(both, scratch):
    since = int(time.time())
    name = scratch.container(body={"Image": "busybox", "Cmd": ["sleep", "100000"], "Labels": {"cf": "1"}}, start=True)
    both.request("POST", f"/containers/{name}/exec", {"Cmd": ["true"]})
    for verb in ("pause", "unpause", "kill?signal=SIGUSR1", "stop?t=0", "start", "restart?t=0", "kill"):
        both.request("POST", f"/containers/{name}/{verb}")
    both.request("POST", query(f"/containers/{name}/rename", name=name + "-x"))
    both.request("DELETE", f"/containers/{name}-x")
    until = int(time.time()) + 1
    both.same("GET", query("/events", since=since, until=until, filters={"label": ["cf=1"]}), shape="lines")


@pytest.mark.parametrize("params", [
    dict(since="yesterday"),
    pytest.param(dict(filters={"bogus": ["x"]}), marks=bug("GET /events with an unknown filter key: berthd 400 \"invalid "
                                                           "filter 'bogus'\"; dockerd (20.10 and newer) accepts it and streams")),
    dict(filters="{not json"), dict(filters={"type": ["bogus"]})])
def test_events_bad_query_is_refused(both, params):
    # `until` bounds the stream should a daemon accept the query.
    both.same("GET", query("/events", until=int(time.time()) + 1, **params), shape="lines")


@pytest.mark.parametrize("body", ['{"username": "u", "password": "p", "serveraddress": "127.0.0.1:1"}', "{bad"])
def test_auth_against_an_unreachable_registry(both, body):
    both.same("POST", "/auth", body)


# ---- Versions and routing ----

def test_unknown_path_is_404_page_not_found(both):
    both.same("GET", "/no/such/route")
    both.same("GET", "/no/such/route", raw_path=True)


@pytest.mark.parametrize("method,path", [("DELETE", "/version"), ("PUT", "/containers/create"), ("GET", "/containers/create"),
                                         ("POST", "/images/json"), ("DELETE", "/volumes/create")])
def test_wrong_method(both, method, path):
    both.same(method, path)


@pytest.mark.parametrize("version", ["1.99", "1.20", "1.24", "1.40"])
def test_api_version_bounds(both, version):
    both.same("GET", f"/v{version}/version", raw_path=True)


def test_unversioned_path_is_served(both):
    both.same("GET", "/version", raw_path=True, values=False)
