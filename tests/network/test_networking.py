"""Docker's network model on real kernel networking, checked with real traffic: the docker CLI
and the Python SDK drive a berthd in its own namespace; busybox httpd, nc and nslookup run in
containers; an "outside" namespace plays another machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import HOST_IP, HOST_IP6, OUTSIDE_IP, OUTSIDE_IP6, Outside, cleanup_daemon, inspect, links, nft_table, start_engine, wait_for

# A page busybox httpd serves: /etc/hostname is the container's short ID.
# (Debian's busybox 1.35 wget crashes with -T, so clients run under `timeout` instead.)
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


def run(engine, cleanup, name, *args):
    cleanup["containers"].append(name)
    return engine.docker("run", "-d", "--name", name, *args).stdout.strip()


def fetch(engine, *args, url: str, timeout: int = 3) -> subprocess.CompletedProcess:
    """wget from a fresh container (args: its docker run flags)."""
    # Not as PID 1, which a signal from inside its namespace cannot stop.
    return engine.docker("run", "--rm", *args, "busybox", "sh", "-c", f"timeout {timeout} wget -q -O- {url}; exit $?", check=False)


def outside_get(engine, url: str, timeout: int = 3) -> subprocess.CompletedProcess:
    return engine.outside.run("busybox", "timeout", str(timeout), "wget", "-q", "-O-", url, check=False)


def wait_http(get, expect: str, message: str):
    return wait_for(lambda: (p := get()).returncode == 0 and expect in p.stdout, message=message)


def network(engine, cleanup, name, *args):
    cleanup["networks"].append(name)
    return engine.docker("network", "create", *args, name).stdout.strip()


# Default bridge, host, none

def test_default_bridge_gives_address_gateway_and_outbound_nat(engine, cleanup):
    cid = run(engine, cleanup, "b1", "busybox", "sleep", "300")
    net = inspect(engine, "b1")["NetworkSettings"]
    ep = net["Networks"]["bridge"]
    gw = json.loads(engine.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    assert ep["Gateway"] == gw and ep["IPAddress"] and net["IPAddress"] == ep["IPAddress"]
    assert ep["MacAddress"].startswith("02:42:")
    routes = engine.docker("exec", "b1", "ip", "route").stdout
    assert f"default via {gw} dev eth0" in routes
    addr = engine.docker("exec", "b1", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{ep['IPAddress']}/{ep['IPPrefixLen']}" in addr
    assert net["SandboxKey"] and net["Ports"] == {}
    # Containers on the default bridge reach each other by address (icc is on by default).
    run(engine, cleanup, "b2", "busybox", *HTTPD)
    ip2 = inspect(engine, "b2")["NetworkSettings"]["IPAddress"]
    wait_http(lambda: engine.docker("exec", "b1", "timeout", "2", "wget", "-q", "-O-", f"http://{ip2}/hostname", check=False), "", "icc")
    # But not by name: the default bridge has no embedded DNS, as in Docker.
    assert engine.docker("exec", "b1", "nslookup", "b2", check=False).returncode != 0
    del cid


def test_outbound_connection_is_masqueraded_to_the_hosts_address(engine, cleanup):
    # A server outside that tells the client's address back.
    script = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
              "s.bind(('0.0.0.0',7002));s.listen(1)\nc,a=s.accept();c.sendall(a[0].encode()+b'\\n');c.close()")
    engine.outside.serve("python3", "-c", script)
    time.sleep(0.5)
    out = engine.docker("run", "--rm", "busybox", "nc", "-w", "3", OUTSIDE_IP, "7002").stdout.strip()
    assert out == HOST_IP


def test_host_network_shares_the_daemons_stack(engine, cleanup):
    out = engine.docker("run", "--rm", "--network", "host", "busybox", "ip", "-o", "addr").stdout
    assert f"{HOST_IP}/24" in out and "berth0" in out
    [c] = json.loads(engine.docker("network", "inspect", "host").stdout)
    assert c["Driver"] == "host"


def test_none_network_has_loopback_only(engine, cleanup):
    out = engine.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    assert [l.split(":")[1].strip() for l in out.splitlines()] == ["lo"]


# User-defined networks and DNS

def test_containers_reach_each_other_by_name_alias_and_short_id(engine, cleanup):
    network(engine, cleanup, "front")
    cid = run(engine, cleanup, "web", "--network", "front", "--network-alias", "www", "busybox", *HTTPD)
    for name in ("web", "www", cid[:12], "WEB"):
        wait_http(lambda: fetch(engine, "--network", "front", url=f"http://{name}/hostname"), cid[:12], f"http://{name}")
    ip = inspect(engine, "web")["NetworkSettings"]["Networks"]["front"]["IPAddress"]
    out = engine.docker("run", "--rm", "--network", "front", "busybox", "nslookup", "www").stdout
    assert f"Address: {ip}" in out and "127.0.0.11" in out
    resolv = engine.docker("run", "--rm", "--network", "front", "busybox", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 127.0.0.11" in resolv


def test_names_on_other_networks_do_not_resolve_and_networks_are_isolated(engine, cleanup):
    network(engine, cleanup, "neta")
    network(engine, cleanup, "netb")
    run(engine, cleanup, "ina", "--network", "neta", "busybox", *HTTPD)
    ip = inspect(engine, "ina")["NetworkSettings"]["Networks"]["neta"]["IPAddress"]
    wait_http(lambda: fetch(engine, "--network", "neta", url="http://ina/hostname"), "", "same network")
    assert engine.docker("run", "--rm", "--network", "netb", "busybox", "nslookup", "ina", check=False).returncode != 0
    # Not by address either: the networks are segmented.
    assert fetch(engine, "--network", "netb", url=f"http://{ip}/hostname", timeout=2).returncode != 0
    # Nor from the default bridge.
    assert fetch(engine, url=f"http://{ip}/hostname", timeout=2).returncode != 0


def test_internal_network_cannot_reach_outside_but_reaches_its_members(engine, cleanup):
    network(engine, cleanup, "sealed", "--internal")
    cid = run(engine, cleanup, "inner", "--network", "sealed", "busybox", *HTTPD)
    wait_http(lambda: fetch(engine, "--network", "sealed", url="http://inner/hostname"), cid[:12], "internal member")
    engine.outside.serve("busybox", "httpd", "-f", "-p", "7003", "-h", "/etc")
    time.sleep(0.3)
    assert outside_get(engine, f"http://{OUTSIDE_IP}:7003/hostname").returncode == 0  # the server is up
    assert fetch(engine, url=f"http://{OUTSIDE_IP}:7003/hostname").returncode == 0  # a bridge container gets out
    assert fetch(engine, "--network", "sealed", url=f"http://{OUTSIDE_IP}:7003/hostname", timeout=2).returncode != 0
    routes = engine.docker("run", "--rm", "--network", "sealed", "busybox", "ip", "route").stdout
    assert "default" not in routes


def test_connect_and_disconnect_a_running_container(engine, cleanup):
    network(engine, cleanup, "left", "--subnet", "10.66.0.0/24")
    network(engine, cleanup, "right")
    run(engine, cleanup, "client", "--network", "left", "busybox", "sleep", "300")
    sid = run(engine, cleanup, "server", "--network", "right", "--network-alias", "api", "busybox", *HTTPD)
    get = lambda host: engine.docker("exec", "client", "timeout", "2", "wget", "-q", "-O-", f"http://{host}/hostname", check=False)
    assert get("api").returncode != 0
    engine.docker("network", "connect", "right", "client")
    wait_http(lambda: get("api"), sid[:12], "after connect")
    nets = inspect(engine, "client")["NetworkSettings"]["Networks"]
    assert set(nets) == {"left", "right"} and nets["right"]["IPAddress"]
    # Connecting again is refused.
    p = engine.docker("network", "connect", "right", "client", check=False)
    assert p.returncode != 0 and "already exists" in p.stderr
    engine.docker("network", "disconnect", "right", "client")
    assert get("api").returncode != 0
    assert set(inspect(engine, "client")["NetworkSettings"]["Networks"]) == {"left"}
    assert "eth1" not in engine.docker("exec", "client", "ip", "-o", "link").stdout
    # The other way round, with an alias and a fixed address on the client's network.
    engine.docker("network", "connect", "--alias", "svc", "--ip", "10.66.0.50", "left", "server")
    out = engine.docker("exec", "client", "nslookup", "svc").stdout
    assert "Address: 10.66.0.50" in out
    wait_http(lambda: get("svc"), sid[:12], "by the new alias")


def test_connect_with_static_ip_and_subnet_options(engine, cleanup):
    network(engine, cleanup, "fixed", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254", "--ip-range", "10.77.0.128/25",
            "-o", "com.docker.network.bridge.name=brfixed", "-o", "com.docker.network.driver.mtu=1400", "--label", "team=a")
    [n] = json.loads(engine.docker("network", "inspect", "fixed").stdout)
    assert n["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "IPRange": "10.77.0.128/25", "Gateway": "10.77.0.254"}]
    assert n["Labels"] == {"team": "a"}
    run(engine, cleanup, "pinned", "--network", "fixed", "--ip", "10.77.0.5", "busybox", "sleep", "300")
    run(engine, cleanup, "ranged", "--network", "fixed", "busybox", "sleep", "300")
    assert inspect(engine, "pinned")["NetworkSettings"]["Networks"]["fixed"]["IPAddress"] == "10.77.0.5"
    ranged = inspect(engine, "ranged")["NetworkSettings"]["Networks"]["fixed"]["IPAddress"]
    assert int(ranged.split(".")[-1]) >= 128
    assert "mtu 1400" in engine.docker("exec", "pinned", "ip", "link", "show", "eth0").stdout
    assert "brfixed" in links(engine)
    [n] = json.loads(engine.docker("network", "inspect", "fixed").stdout)
    assert {c["Name"] for c in n["Containers"].values()} == {"pinned", "ranged"}
    # The address is taken: a second container asking for it is refused.
    cleanup["containers"].append("dup")
    engine.docker("create", "--name", "dup", "--network", "fixed", "--ip", "10.77.0.5", "busybox", "true")
    p = engine.docker("start", "dup", check=False)
    assert p.returncode != 0 and "10.77.0.5" in p.stderr


# Published ports

def test_published_tcp_port_from_outside_host_loopback_and_containers(engine, cleanup):
    cid = run(engine, cleanup, "pub", "-p", "8080:80", "busybox", *HTTPD)
    short = cid[:12]
    wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:8080/hostname"), short, "from outside")
    assert short in engine.in_netns("busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/hostname").stdout
    assert short in engine.in_netns("busybox", "wget", "-q", "-O-", f"http://{HOST_IP}:8080/hostname").stdout
    # Hairpin: another container on the bridge, and the container itself, through the host's address.
    assert short in fetch(engine, url=f"http://{HOST_IP}:8080/hostname").stdout
    assert short in engine.docker("exec", "pub", "timeout", "3", "wget", "-q", "-O-", f"http://{HOST_IP}:8080/hostname").stdout
    # From a user network too.
    network(engine, cleanup, "elsewhere")
    assert short in fetch(engine, "--network", "elsewhere", url=f"http://{HOST_IP}:8080/hostname").stdout
    assert engine.docker("port", "pub").stdout.strip() == "80/tcp -> 0.0.0.0:8080"


UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(10):
    s.sendto(b"ping-udp", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(100)[0].decode())
        break
    except socket.timeout:
        pass
"""


def test_published_udp_port_from_outside_and_from_the_host(engine, cleanup, udpecho):
    run(engine, cleanup, "udp", "-p", "5353:7/udp", "-v", f"{udpecho}:/udpecho:ro", "busybox", "/udpecho", "7")
    assert engine.outside.run("python3", "-c", UDP_CLIENT, HOST_IP, "5353").stdout.strip() == "echo:ping-udp"
    assert engine.in_netns("python3", "-c", UDP_CLIENT, "127.0.0.1", "5353").stdout.strip() == "echo:ping-udp"
    assert engine.docker("port", "udp", "7/udp").stdout.strip() == "0.0.0.0:5353"


def test_publish_all_uses_ephemeral_ports_shown_in_inspect_ps_and_port(engine, cleanup):
    cid = run(engine, cleanup, "eph", "-P", "--expose", "80", "--expose", "81/udp", "busybox", *HTTPD)
    ports = inspect(engine, "eph")["NetworkSettings"]["Ports"]
    [b80] = ports["80/tcp"]
    [b81] = ports["81/udp"]
    host_port = int(b80["HostPort"])
    assert host_port >= 1024 and b81["HostPort"]
    assert f"0.0.0.0:{host_port}->80/tcp" in engine.docker("ps", "--format", "{{.Ports}}", "-f", "name=eph").stdout
    assert engine.docker("port", "eph", "80").stdout.strip() == f"0.0.0.0:{host_port}"
    wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:{host_port}/hostname"), cid[:12], "ephemeral port")


def test_port_range_and_host_ip_binding(engine, cleanup):
    run(engine, cleanup, "r1", "-p", "127.0.0.1:9100-9102:80", "busybox", *HTTPD)
    run(engine, cleanup, "r2", "-p", "127.0.0.1:9100-9102:80", "busybox", *HTTPD)
    p1 = int(engine.docker("port", "r1", "80").stdout.split(":")[-1])
    p2 = int(engine.docker("port", "r2", "80").stdout.split(":")[-1])
    assert {p1, p2} <= {9100, 9101, 9102} and p1 != p2
    wait_http(lambda: engine.in_netns("busybox", "timeout", "2", "wget", "-q", "-O-", f"http://127.0.0.1:{p1}/hostname", check=False), "", "127.0.0.1 binding")
    # Bound to 127.0.0.1 only: not reachable through the host's other address.
    assert outside_get(engine, f"http://{HOST_IP}:{p1}/hostname", timeout=2).returncode != 0


def test_host_port_in_use_is_a_conflict_and_leaves_nothing_behind(engine, cleanup):
    run(engine, cleanup, "first", "-p", "8181:80", "busybox", *HTTPD)
    before_links = sorted(links(engine))
    before_rules = nft_table(engine)
    cleanup["containers"].append("second")
    p = engine.docker("run", "-d", "--name", "second", "-p", "8181:80", "busybox", *HTTPD, check=False)
    assert p.returncode != 0 and "port is already allocated" in p.stderr
    assert inspect(engine, "second")["State"]["Running"] is False
    # The kernel destroys the unpinned namespace and its veth pair in the background.
    wait_for(lambda: sorted(links(engine)) == before_links, message="the failed start's links to go")
    assert nft_table(engine) == before_rules
    assert inspect(engine, "second")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    # A port a host process holds is refused too.
    srv = subprocess.Popen(["ip", "netns", "exec", engine.netns, "python3", "-c",
                            "import socket,time;s=socket.socket();s.bind(('0.0.0.0',8282));s.listen();print('ok',flush=True);time.sleep(60)"],
                           stdout=subprocess.PIPE)
    try:
        assert srv.stdout.readline().strip() == b"ok"
        cleanup["containers"].append("third")
        p = engine.docker("run", "-d", "--name", "third", "-p", "8282:80", "busybox", *HTTPD, check=False)
        assert p.returncode != 0 and "port is already allocated" in p.stderr
    finally:
        srv.kill()
        srv.wait()


def test_rules_and_links_go_with_the_container_and_the_network(engine, cleanup):
    network(engine, cleanup, "temp")
    nid = json.loads(engine.docker("network", "inspect", "temp").stdout)[0]["Id"]
    bridge = "br-" + nid[:12]
    before = {l for l in links(engine) if l.startswith("vb")}
    run(engine, cleanup, "short", "--network", "temp", "-p", "8383:80", "busybox", *HTTPD)
    [veth] = {l for l in links(engine) if l.startswith("vb")} - before
    assert bridge in links(engine)
    assert "8383" in nft_table(engine)
    engine.docker("rm", "-f", "short")
    wait_for(lambda: veth not in links(engine), message="the veth to go")
    wait_for(lambda: "8383" not in nft_table(engine), message="the forward to go")
    assert bridge in nft_table(engine)
    engine.docker("network", "rm", "temp")
    assert bridge not in links(engine)
    assert bridge not in nft_table(engine)


def test_host_firewall_keeps_the_last_word_on_published_ports(engine, cleanup):
    cid = run(engine, cleanup, "guarded", "-p", "8484:80", "busybox", *HTTPD)
    wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:8484/hostname"), cid[:12], "before the host rule")
    # The operator's own table, as the README documents: Berth never overrides it.
    engine.in_netns("nft", "add table inet hostfw; add chain inet hostfw hostforward { type filter hook forward priority 0 ; }; "
                    "add rule inet hostfw hostforward meta l4proto tcp ct original proto-dst 8484 drop")
    try:
        assert outside_get(engine, f"http://{HOST_IP}:8484/hostname", timeout=2).returncode != 0
    finally:
        engine.in_netns("nft", "delete", "table", "inet", "hostfw")
    wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:8484/hostname"), cid[:12], "after the host rule is gone")


# Files a container sees

def test_hosts_resolv_and_hostname_options(engine, cleanup):
    out = engine.docker("run", "--rm", "--hostname", "box.example", "--add-host", "db:10.1.2.3",
                        "--add-host", "gw:host-gateway", "--dns", "10.9.9.9", "--dns-search", "corp.example",
                        "--dns-option", "ndots:2", "busybox", "sh", "-c",
                        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; hostname").stdout
    hosts, resolv, hostname = out.split("---\n")
    gw = json.loads(engine.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    assert "10.1.2.3\tdb" in hosts and f"{gw}\tgw" in hosts and "\tbox.example box" in hosts
    assert "nameserver 10.9.9.9" in resolv and "search corp.example" in resolv and "options ndots:2" in resolv
    assert hostname.strip() == "box.example"


# Bad input

def test_bad_network_input_gets_clear_errors_and_creates_nothing(engine, cleanup):
    network(engine, cleanup, "taken", "--subnet", "10.88.0.0/16")
    before = sorted(links(engine))
    cases = [
        (["--subnet", "10.88.1.0/24", "clash"], "overlaps"),
        (["--subnet", "10.300.0.0/16", "badcidr"], "invalid CIDR"),
        (["taken"], "already exists"),
        (["-d", "nosuchdriver", "nodriver"], "not found"),
    ]
    for args, message in cases:
        cleanup["networks"].append(args[-1])
        p = engine.docker("network", "create", *args, check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
    assert sorted(links(engine)) == before
    names = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not {"clash", "badcidr", "badrange", "nodriver"} & set(names)
    # Through the API: status codes.
    status, _, body = engine.request("POST", "/networks/create", body=json.dumps({"Name": "x", "IPAM": {"Config": [{"Subnet": "nope"}]}}),
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and b"invalid CIDR" in body
    status, _, _ = engine.request("POST", "/networks/create", body=json.dumps({"Name": "y", "IPAM": {"Config": [{"Subnet": "10.88.5.0/24"}]}}),
                                  headers={"Content-Type": "application/json"})
    assert status == 403
    status, _, body = engine.request("POST", "/networks/create", body=json.dumps(
        {"Name": "z", "IPAM": {"Config": [{"Subnet": "10.91.0.0/16", "Gateway": "10.92.0.1"}]}}), headers={"Content-Type": "application/json"})
    assert status == 400 and b"not a host address" in body
    status, _, body = engine.request("POST", "/networks/create", body=json.dumps(
        {"Name": "z", "IPAM": {"Config": [{"Subnet": "10.91.0.0/16", "IPRange": "10.93.0.0/24"}]}}), headers={"Content-Type": "application/json"})
    assert status == 400 and b"not inside subnet" in body
    status, _, body = engine.request("DELETE", "/networks/bridge")
    assert status == 403 and b"pre-defined" in body


def test_removing_a_network_in_use_is_refused(engine, cleanup):
    network(engine, cleanup, "busy")
    run(engine, cleanup, "user", "--network", "busy", "busybox", "sleep", "300")
    p = engine.docker("network", "rm", "busy", check=False)
    assert p.returncode != 0 and "active endpoints" in p.stderr
    assert "busy" in engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()


def test_invalid_port_specs_are_refused(engine, cleanup):
    for key in ("abc/tcp", "80/sctp", "0/tcp"):
        body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PortBindings": {key: [{"HostPort": "8080"}]}}}
        status, _, raw = engine.request("POST", "/containers/create?name=badport", body=json.dumps(body),
                                        headers={"Content-Type": "application/json"})
        assert status == 400 and b"invalid" in raw, raw
    p = engine.docker("run", "--rm", "-p", "70000:80", "busybox", "true", check=False)
    assert p.returncode != 0


def test_prune_removes_unused_networks_only(engine, cleanup):
    network(engine, cleanup, "unused", "--label", "gone=yes")
    network(engine, cleanup, "used")
    run(engine, cleanup, "keeper", "--network", "used", "busybox", "sleep", "300")
    out = engine.docker("network", "prune", "-f", "--filter", "label=gone").stdout
    assert "unused" in out
    names = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "unused" not in names and "used" in names and "bridge" in names


# The Python SDK drives the same flows

def test_sdk_network_flow(engine, cleanup):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        net = client.networks.create("sdknet", driver="bridge", labels={"via": "sdk"})
        cleanup["networks"].append("sdknet")
        cleanup["containers"] += ["sdkweb", "sdkc"]
        web = client.containers.run("busybox", HTTPD, name="sdkweb", detach=True, network="sdknet", ports={"80/tcp": None})
        web.reload()
        [binding] = web.ports["80/tcp"]
        wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:{binding['HostPort']}/hostname"), web.id[:12], "sdk port")
        c = client.containers.run("busybox", ["sleep", "300"], name="sdkc", detach=True)
        net.connect(c, aliases=["helper"])
        net.reload()
        assert {x.name for x in net.containers} == {"sdkweb", "sdkc"}
        rc, out = c.exec_run(["timeout", "3", "wget", "-q", "-O-", "http://sdkweb/hostname"])
        assert rc == 0 and web.id[:12] in out.decode()
        net.disconnect(c)
        assert client.networks.list(names=["sdknet"])[0].attrs["Labels"] == {"via": "sdk"}
    finally:
        client.close()


# Other daemon settings

def test_icc_false_blocks_traffic_between_containers_on_the_default_bridge(busybox_tar):
    d = start_engine(busybox_tar, ["--icc=false"])
    d.outside = Outside(d.netns)
    try:
        cid = d.docker("run", "-d", "--name", "srv", "-p", "8585:80", "busybox", *HTTPD).stdout.strip()
        ip = inspect(d, "srv")["NetworkSettings"]["IPAddress"]
        wait_http(lambda: outside_get(d, f"http://{HOST_IP}:8585/hostname"), cid[:12], "published port with icc=false")
        assert fetch(d, url=f"http://{ip}/hostname", timeout=2).returncode != 0
        # The host itself still reaches it.
        assert cid[:12] in d.in_netns("busybox", "timeout", "3", "wget", "-q", "-O-", f"http://{ip}/hostname").stdout
    finally:
        d.outside.close()
        cleanup_daemon(d)


DNS_SERVER = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
print("ready", flush=True)
while True:
    q, addr = s.recvfrom(512)
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    question = q[12:end + 5]
    qtype = struct.unpack("!H", q[end + 1:end + 3])[0]
    name = b".".join(q[12 + 1:end].split(b"\x00"))
    if qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 1, 2, 3])
        s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer, addr)
    else:
        s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, addr)
"""


def test_dns_is_forwarded_to_a_loopback_host_resolver(busybox_tar, tmp_path):
    # The host resolves through 127.0.0.53 (systemd-resolved style), which no container can reach.
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nsearch example.internal\n")
    d = start_engine(busybox_tar, ["--resolv-conf", str(conf)])
    srv = subprocess.Popen(["ip", "netns", "exec", d.netns, "python3", "-c", DNS_SERVER], stdout=subprocess.PIPE)
    try:
        assert srv.stdout.readline().strip() == b"ready"
        for args in ([], ["--network", "bridge"]):
            out = d.docker("run", "--rm", *args, "busybox", "nslookup", "anything.test").stdout
            assert "10.1.2.3" in out
        d.docker("network", "create", "user")
        out = d.docker("run", "--rm", "--network", "user", "busybox", "sh", "-c",
                       "cat /etc/resolv.conf; nslookup anything.test").stdout
        assert "nameserver 127.0.0.11" in out and "search example.internal" in out and "10.1.2.3" in out
    finally:
        srv.kill()
        srv.wait()
        cleanup_daemon(d)


def test_daemon_restart_keeps_running_containers_reachable_without_duplicate_rules(busybox_tar):
    d = start_engine(busybox_tar)
    d.outside = Outside(d.netns)
    try:
        d.docker("network", "create", "keep")
        cid = d.docker("run", "-d", "--name", "live", "--network", "keep", "-p", "8686:80", "busybox", *HTTPD).stdout.strip()
        wait_http(lambda: outside_get(d, f"http://{HOST_IP}:8686/hostname"), cid[:12], "before the crash")
        rules = d.in_netns("nft", "list", "table", "ip", "berth").stdout
        d.proc.kill()  # a crash: no cleanup
        d.proc.wait()
        d.start()
        assert d.in_netns("nft", "list", "table", "ip", "berth").stdout == rules
        wait_http(lambda: outside_get(d, f"http://{HOST_IP}:8686/hostname"), cid[:12], "after the restart")
        # DNS is served again for the running container.
        out = d.docker("exec", "live", "nslookup", "live").stdout
        assert inspect(d, "live")["NetworkSettings"]["Networks"]["keep"]["IPAddress"] in out
        # The host port is held again: a second container cannot take it.
        p = d.docker("run", "-d", "--name", "thief", "-p", "8686:80", "busybox", *HTTPD, check=False)
        assert p.returncode != 0 and "already allocated" in p.stderr
        d.docker("stop", "-t", "1", "live")
        wait_for(lambda: "8686" not in d.in_netns("nft", "list", "table", "ip", "berth").stdout, message="the forward to go")
        wait_for(lambda: not [l for l in links(d) if l.startswith("vb")], message="the veth to go")
        # A container that dies while berthd is down leaves nothing once berthd is back.
        d.docker("start", "live")
        wait_http(lambda: outside_get(d, f"http://{HOST_IP}:8686/hostname"), cid[:12], "after the start")
        pid = inspect(d, "live")["State"]["Pid"]
        d.proc.kill()
        d.proc.wait()
        os.kill(pid, signal.SIGKILL)
        d.start()
        wait_for(lambda: inspect(d, "live")["State"]["Status"] == "exited", message="the exit to be seen")
        wait_for(lambda: not [l for l in links(d) if l.startswith("vb")], message="the veth to go")
        wait_for(lambda: "8686" not in d.in_netns("nft", "list", "table", "ip", "berth").stdout, message="the forward to go")
        assert not list((d.data_root / "netns").iterdir())
    finally:
        d.outside.close()
        cleanup_daemon(d)


def test_macvlan_network_gives_containers_their_own_mac_and_address(busybox_tar):
    d = start_engine(busybox_tar)
    try:
        # The "LAN": one end of a veth pair (this kernel has no dummy links).
        d.in_netns("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        d.in_netns("ip", "link", "set", "lan0", "up")
        d.in_netns("ip", "link", "set", "lan1", "up")
        d.docker("network", "create", "-d", "macvlan", "--subnet", "192.168.77.0/24", "--gateway", "192.168.77.1",
                 "-o", "parent=lan0", "lan")
        a = d.docker("run", "-d", "--name", "ma", "--network", "lan", "busybox", *HTTPD).stdout.strip()
        d.docker("run", "-d", "--name", "mb", "--network", "lan", "busybox", "sleep", "300")
        ea = inspect(d, "ma")["NetworkSettings"]["Networks"]["lan"]
        eb = inspect(d, "mb")["NetworkSettings"]["Networks"]["lan"]
        assert ea["IPAddress"].startswith("192.168.77.") and ea["MacAddress"] != eb["MacAddress"]
        sandbox = inspect(d, "ma")["NetworkSettings"]["SandboxKey"]
        link = subprocess.run(["nsenter", f"--net={sandbox}", "ip", "-d", "link", "show", "eth0"],
                              capture_output=True, text=True, check=True).stdout
        assert "macvlan" in link and ea["MacAddress"] in link
        got = wait_for(lambda: (p := d.docker("exec", "mb", "timeout", "2", "wget", "-q", "-O-", "http://ma/hostname", check=False)).returncode == 0 and p.stdout,
                       message="macvlan neighbour by name")
        assert a[:12] in got
        p = d.docker("network", "create", "-d", "macvlan", "--subnet", "192.168.78.0/24", "nolan", check=False)
        assert p.returncode != 0 and "parent" in p.stderr
    finally:
        cleanup_daemon(d)


def test_stats_count_the_containers_network_traffic(engine, cleanup):
    cid = run(engine, cleanup, "counted", "-p", "8787:80", "busybox", *HTTPD)
    wait_http(lambda: outside_get(engine, f"http://{HOST_IP}:8787/hostname"), cid[:12], "the page")
    for _ in range(5):
        outside_get(engine, f"http://{HOST_IP}:8787/passwd")
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        stats = client.containers.get("counted").stats(stream=False)
    finally:
        client.close()
    eth0 = stats["networks"]["eth0"]
    assert "lo" not in stats["networks"]
    assert eth0["rx_packets"] >= 6 and eth0["tx_bytes"] > 5 * 100


def test_network_mode_container_shares_the_other_containers_stack(engine, cleanup):
    network(engine, cleanup, "shared")
    cid = run(engine, cleanup, "owner", "--network", "shared", "busybox", *HTTPD)
    def shared_stack():
        p = engine.docker("run", "--rm", "--network", "container:owner", "busybox", "sh", "-c",
                          "timeout 3 wget -q -O- http://127.0.0.1/hostname; ip -o -4 addr show eth0; exit 0")
        return p.stdout if cid[:12] in p.stdout else None
    out = wait_for(shared_stack, message="the shared stack")
    ip = inspect(engine, "owner")["NetworkSettings"]["Networks"]["shared"]["IPAddress"]
    assert f"inet {ip}/" in out
    p = engine.docker("run", "--rm", "--network", "container:nosuch", "busybox", "true", check=False)
    assert p.returncode != 0 and "nosuch" in p.stderr


def test_ipv6_dual_stack_network(engine, cleanup):
    network(engine, cleanup, "six", "--ipv6", "--subnet", "fd42:1::/64")
    [n] = json.loads(engine.docker("network", "inspect", "six").stdout)
    assert n["EnableIPv6"] is True
    subnets = {c["Subnet"] for c in n["IPAM"]["Config"]}
    assert "fd42:1::/64" in subnets and len(subnets) == 2  # and an IPv4 one from the pool
    cid = run(engine, cleanup, "web6", "--network", "six", "busybox", *HTTPD)
    ep = inspect(engine, "web6")["NetworkSettings"]["Networks"]["six"]
    addr = ep["GlobalIPv6Address"]
    assert addr.startswith("fd42:1::") and ep["GlobalIPv6PrefixLen"] == 64 and ep["IPv6Gateway"] == "fd42:1::1"
    out = wait_http(lambda: fetch(engine, "--network", "six", url=f"http://[{addr}]/hostname"), cid[:12], "over IPv6")
    assert out
    aaaa = engine.docker("run", "--rm", "--network", "six", "busybox", "nslookup", "-type=AAAA", "web6").stdout
    assert addr in aaaa
    # Outbound IPv6 is masqueraded like IPv4: the other machine sees the host's address.
    script = ("import socket\ns=socket.socket(socket.AF_INET6);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
              "s.bind(('::',7004));s.listen(1)\nc,a=s.accept();c.sendall(a[0].encode()+b'\\n');c.close()")
    engine.outside.serve("python3", "-c", script)
    time.sleep(0.5)
    seen = engine.docker("run", "--rm", "--network", "six", "busybox", "nc", "-w", "3", OUTSIDE_IP6, "7004").stdout.strip()
    assert seen == HOST_IP6
    # A second IPv6 network is segmented from the first.
    network(engine, cleanup, "six2", "--ipv6")
    assert fetch(engine, "--network", "six2", url=f"http://[{addr}]/hostname", timeout=2).returncode != 0
    p = engine.docker("network", "create", "--ipv6", "--subnet", "fd42:1:0:0:8000::/80", "clash6", check=False)
    cleanup["networks"].append("clash6")
    assert p.returncode != 0 and "overlaps" in p.stderr


def test_iptables_backend_publishes_and_segments_like_nftables(busybox_tar):
    # For hosts without nf_tables: the same model through iptables-restore.
    d = start_engine(busybox_tar, ["--firewall-backend", "iptables"])
    d.outside = Outside(d.netns)
    try:
        d.docker("network", "create", "ipta")
        d.docker("network", "create", "iptb")
        cid = d.docker("run", "-d", "--name", "ipweb", "--network", "ipta", "-p", "8989:80", "busybox", *HTTPD).stdout.strip()
        wait_http(lambda: outside_get(d, f"http://{HOST_IP}:8989/hostname"), cid[:12], "published port via iptables")
        assert cid[:12] in d.in_netns("busybox", "wget", "-q", "-O-", "http://127.0.0.1:8989/hostname").stdout
        ip = inspect(d, "ipweb")["NetworkSettings"]["Networks"]["ipta"]["IPAddress"]
        assert fetch(d, "--network", "iptb", url=f"http://{ip}/hostname", timeout=2).returncode != 0
        assert cid[:12] in fetch(d, "--network", "ipta", url="http://ipweb/hostname").stdout
        saved = d.in_netns("iptables-save").stdout
        assert "BERTH-DNAT" in saved and "--dport 8989" in saved and saved.count("-j BERTH-FORWARD") == 1
        assert d.in_netns("nft", "list", "table", "ip", "berth", check=False).returncode != 0
        d.docker("rm", "-f", "ipweb")
        wait_for(lambda: "--dport 8989" not in d.in_netns("iptables-save").stdout, message="the DNAT rule to go")
    finally:
        d.outside.close()
        cleanup_daemon(d)
