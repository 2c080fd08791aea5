"""Network endpoints: list, inspect, create, connect, disconnect, remove, prune."""

from __future__ import annotations

import pytest

from conftest import API, bug, query, request


IPAM_OPTIONS = bug("GET /networks/{id}: IPAM.Options {} where dockerd sends null")
NETWORK_LIST = bug("GET /networks: no Containers key (dockerd sends {} in the list) and IPAM.Options {} where dockerd "
                   "sends null")


@pytest.mark.parametrize("params", [
    pytest.param({}, marks=NETWORK_LIST), pytest.param(dict(filters={"name": ["cf-net"]}), marks=NETWORK_LIST),
    pytest.param(dict(filters={"driver": ["bridge"]}), marks=NETWORK_LIST),
    pytest.param(dict(filters={"type": ["custom"]}), marks=NETWORK_LIST),
    pytest.param(dict(filters={"type": ["builtin"]}), marks=NETWORK_LIST),
    dict(filters={"type": ["bogus"]}), dict(filters={"bogus": ["x"]}),
    pytest.param(dict(filters={"dangling": ["true"]}), marks=NETWORK_LIST),
    pytest.param(dict(filters={"dangling": ["maybe"]}),
                 marks=bug("networks filter dangling=maybe: berthd \"invalid filter 'dangling=maybe'\", dockerd "
                           "'invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")'")),
    dict(filters="{not json"),
])
def test_list_networks(world, params):
    world.same("GET", query("/networks", **params))


@pytest.mark.parametrize("name", [pytest.param("bridge", marks=IPAM_OPTIONS), pytest.param("host", marks=IPAM_OPTIONS),
                                  pytest.param("none", marks=IPAM_OPTIONS), "cf-net", "no-such-network"])
def test_inspect_network(world, name):
    world.same("GET", f"/networks/{name}")


@IPAM_OPTIONS
def test_inspect_network_with_a_container(both, scratch):
    net = scratch.name()
    scratch.networks.append(net)
    both.request("POST", "/networks/create", {"Name": net})
    scratch.container(body={"Image": "busybox", "Cmd": ["sleep", "100000"], "HostConfig": {"NetworkMode": net}}, start=True)
    both.same("GET", f"/networks/{net}")
    both.same("GET", query(f"/networks/{net}", verbose="true"))


@pytest.mark.parametrize("body", [
    {"Name": "{name}"},
    {"Name": "{name}", "Driver": "bridge", "Internal": True, "Labels": {"a": "b"}, "Options": {"com.docker.network.bridge.name": "cfbr0"}},
    {"Name": "{name}", "IPAM": {"Config": [{"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.1", "IPRange": "10.123.0.128/25"}]}},
    {"Name": "{name}", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd12:3456::/64"}]}},
    {"Name": "{name}", "CheckDuplicate": True, "Attachable": True},
])
def test_create_network(both, scratch, body):
    name = scratch.name()
    scratch.networks.append(name)
    body = {**body, "Name": name}
    both.same("POST", "/networks/create", body)
    both.same("GET", f"/networks/{name}", only=("$.Name", "$.Driver", "$.Scope", "$.Internal", "$.Attachable", "$.Ingress",
                                                "$.EnableIPv6", "$.IPAM.Config*", "$.IPAM.Driver", "$.Options*", "$.Labels*",
                                                "$.Containers*", "$.ConfigOnly", "$.ConfigFrom*"))


def test_create_network_whose_name_has_a_space(both, scratch):
    name = "cf net " + scratch.name()
    scratch.networks.append(name.replace(" ", "%20"))
    both.same("POST", "/networks/create", {"Name": name})


@pytest.mark.parametrize("body", [
    {"Name": "cf-net", "CheckDuplicate": True},
    pytest.param({"Name": "bridge"}, marks=bug("create a network named bridge: berthd 'bridge is a pre-defined network and "
                                               "cannot be created', dockerd 'operation is not permitted on predefined bridge network'")),
    pytest.param({"Name": "host"}, marks=bug("create a network named host: berthd 'host is a pre-defined network and cannot be "
                                             "created', dockerd 'operation is not permitted on predefined host network'")),
    pytest.param({}, marks=bug("POST /networks/create {}: berthd 400 'invalid JSON: No value associated with key "
                               "CodingKeys(stringValue: \"Name\", intValue: nil) (\"Name\").' (Swift's decoder speaking); "
                               "dockerd 500 'invalid name:' (newer dockerd: 400)")),
    "{bad json",
    {"Name": "cf-bad", "IPAM": {"Config": [{"Subnet": "bogus"}]}},
    {"Name": "cf-bad", "IPAM": {"Config": [{"Subnet": "10.124.0.0/24", "Gateway": "10.125.0.1"}]}},
    {"Name": "cf-bad", "Driver": "host"},
    {"Name": "cf-bad", "Ingress": True},
])
def test_create_network_refused(world, scratch, body):
    scratch.networks.append("cf-bad")
    world.same("POST", "/networks/create", body)


def test_create_network_with_a_name_in_use(both, scratch):
    """dockerd 20.10 makes a second network of the same name unless CheckDuplicate is set."""
    name = scratch.name()
    scratch.networks.append(name)
    both.request("POST", "/networks/create", {"Name": name})
    c = both.same("POST", "/networks/create", {"Name": name})
    for daemon, a in (("berthd", c.berthd), ("dockerd", c.dockerd)):
        if a.status == 201:
            both.daemons[daemon] and request(both.daemons[daemon].socket, "DELETE", f"{API}/networks/{a.json['Id']}")


def test_connect_and_disconnect(both, scratch):
    net = scratch.name()
    scratch.networks.append(net)
    both.request("POST", "/networks/create", {"Name": net})
    c = scratch.container(start=True)
    both.same("POST", f"/networks/{net}/connect", {"Container": c, "EndpointConfig": {"Aliases": ["web"]}})
    both.same("POST", f"/networks/{net}/connect", {"Container": c})                   # already connected
    both.same("GET", f"/containers/{c}/json", only=("$.NetworkSettings.Networks*",))
    both.same("DELETE", f"/networks/{net}")                                           # in use
    both.same("POST", f"/networks/{net}/disconnect", {"Container": c})
    both.same("DELETE", f"/networks/{net}")


@bug("disconnect a container that is not connected: berthd 403, every dockerd 500 (same message)")
def test_disconnect_what_is_not_connected(both, scratch):
    net = scratch.name()
    scratch.networks.append(net)
    both.request("POST", "/networks/create", {"Name": net})
    c = scratch.container(start=True)
    both.same("POST", f"/networks/{net}/disconnect", {"Container": c})


@pytest.mark.parametrize("path,body", [
    ("/networks/cf-net/connect", {"Container": "no-such-container"}),
    ("/networks/no-such-network/connect", {"Container": "cf-running"}),
    ("/networks/cf-net/connect", "{bad json"),
    pytest.param("/networks/cf-net/connect", {}, marks=bug(
        "connect {}: berthd 'invalid JSON: No value associated with key CodingKeys(stringValue: \"Container\", ...' "
        "(Swift's decoder speaking), dockerd 'invalid name or ID supplied: \"\"'")),
    ("/networks/cf-net/disconnect", {"Container": "no-such-container"}),
    ("/networks/no-such-network/disconnect", {"Container": "cf-running"}),
    pytest.param("/networks/none/connect", {"Container": "cf-running"}, marks=bug(
        "connect to none a container on bridge: berthd 403 'container cannot be connected to network none: it uses network "
        "mode none', dockerd 400 'container cannot be connected to multiple networks with one of the networks in private "
        "(none) mode'")),
    pytest.param("/networks/host/connect", {"Container": "cf-running"}, marks=bug(
        "connect to host: berthd 403 'container cannot be connected to network host: it uses network mode host', dockerd "
        "400 'container cannot be disconnected from host network or connected to host network'")),
    pytest.param("/networks/cf-net/connect", {"Container": "cf-running", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.0.0.5"}}},
                 marks=bug("connect with an IP to a network without a user-set subnet: berthd 'invalid endpoint settings: "
                           "address 10.0.0.5 is not in network cf-net's subnet 172.18.0.0/16', dockerd 'user specified IP "
                           "address is supported only when connecting to networks with user configured subnets'")),
])
def test_connect_refused(world, path, body):
    world.same("POST", path, body)


@pytest.mark.parametrize("name", ["bridge", "host", "none", "no-such-network"])
def test_remove_network_refused(world, name):
    world.same("DELETE", f"/networks/{name}")


@bug("POST /networks/prune: NetworksDeleted [] where dockerd sends null when nothing was deleted")
def test_prune_networks(both, scratch):
    name = scratch.name()
    scratch.networks.append(name)
    both.request("POST", "/networks/create", {"Name": name, "Labels": {"cf-prune": "1"}})
    both.same("POST", query("/networks/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/networks/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/networks/prune", filters={"bogus": ["x"]}))
    both.same("POST", query("/networks/prune", filters={"until": ["bogus"]}))
