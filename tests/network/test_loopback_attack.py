"""CVE-2020-8558 against Berth: the host's loopback must stay out of a neighbour's reach.

berthd sets route_localnet=1 on its bridges so that the host reaches ports published on
127.0.0.1; that also stops the kernel from treating 127.0.0.0/8 on those bridges as martian.
Default containers have CAP_NET_RAW, so each test crafts Ethernet frames with loopback_attack.c
(an AF_PACKET socket) from a container, or from the outside machine, and checks that nothing
receives them while the legitimate path to the same service still works. Run against both
firewall backends."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import HOST_IP, Outside, cleanup_daemon, start_engine, wait_for

USER_NET = "lbuser"
SEND = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
socket.socket(family, socket.SOCK_DGRAM).sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
"""


@pytest.fixture(scope="session")
def attack(tmp_path_factory):
    out = tmp_path_factory.mktemp("loopback_attack") / "loopback_attack"
    subprocess.run(["cc", "-static", "-O2", "-o", str(out), str(Path(__file__).parent / "loopback_attack.c")], check=True)
    return out


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def daemon(request, busybox_tar):
    """A berthd per backend, with a dual-stack user network beside the default bridge."""
    d = start_engine(busybox_tar, ["--firewall-backend", request.param])
    d.outside = Outside(d.netns)
    try:
        d.docker("network", "create", "--ipv6", "--subnet", "fd42:7::/64", USER_NET)
        yield d
    finally:
        d.outside.close()
        cleanup_daemon(d)


class Listener:
    """The loopback_attack UDP listener in a namespace; its lines ("SOURCE PAYLOAD") in a queue."""

    def __init__(self, attack: Path, netns: str, address: str, port: int):
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, str(attack), "listen", address, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout.readline().strip() == "ready"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def until(self, marker: str, timeout: float = 5) -> list[str]:
        """Everything received up to the line whose payload is `marker`."""
        seen = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line.split(" ", 1)[-1] == marker:
                return seen
            seen.append(line)

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def listen(daemon, attack):
    made = []

    def start(address: str, port: int) -> Listener:
        made.append(Listener(attack, daemon.netns, address, port))
        return made[-1]

    yield start
    for listener in made:
        listener.close()


def mac(netns: str, ifname: str) -> str:
    return json.loads(subprocess.run(["ip", "-n", netns, "-j", "link", "show", ifname], capture_output=True, text=True,
                                     check=True).stdout)[0]["address"]


def gateway(d, network: str) -> str:
    [n] = json.loads(d.docker("network", "inspect", network).stdout)
    return next(c["Gateway"] for c in n["IPAM"]["Config"] if "." in c["Subnet"])


# Learns the gateway's MAC as an attacker would, from ARP: the bridge's own MAC changes when its
# first port joins (Berth leaves the bridge address unset), so it cannot be read beforehand.
ARP_GATEWAY = ("gw=$(ip route | awk '/^default/ {print $3}'); ping -c 1 -W 1 \"$gw\" >/dev/null; "
               "mac=$(awk -v gw=\"$gw\" '$1 == gw {print $4}' /proc/net/arp)")


def send_from_container(d, attack: Path, network: str, *frames: tuple[str, str, int, str]):
    """Each frame (source or "-", destination, UDP port, payload) three times, to the gateway's MAC."""
    sends = "; ".join(f'/attack send eth0 "$mac" {src} {dst} {port} {payload} 3' for src, dst, port, payload in frames)
    out = d.docker("run", "--rm", "--network", network, "-v", f"{attack}:/attack:ro", "busybox", "sh", "-c",
                   f"{ARP_GATEWAY}; {sends}").stdout
    assert out.split() == ["sent", "3"] * len(frames), out


def send_from_host(d, address: str, port: int, payload: str):
    d.in_netns("python3", "-c", SEND, address, str(port), payload)


def payloads(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[-1] for line in lines]


def test_container_frames_to_the_hosts_loopback_are_dropped(daemon, attack, listen):
    victim = listen("127.0.0.1", 7101)
    witness = listen("0.0.0.0", 7102)  # the same frames to the gateway's address do arrive
    for network in ("bridge", USER_NET):
        send_from_container(daemon, attack, network, ("-", "127.0.0.1", 7101, f"attack-{network}"),
                            ("-", gateway(daemon, network), 7102, f"witness-{network}"))
    send_from_host(daemon, "127.0.0.1", 7101, "control")
    send_from_host(daemon, "127.0.0.1", 7102, "control")
    assert victim.until("control") == []
    assert payloads(witness.until("control")) == ["witness-bridge"] * 3 + [f"witness-{USER_NET}"] * 3


def test_container_frames_with_a_spoofed_loopback_source_are_dropped(daemon, attack, listen):
    # A host service that trusts 127.0.0.1 as local must not see it. The kernel refuses a local
    # source address itself unless accept_local is on, as some hosts have it.
    listener = listen("0.0.0.0", 7103)
    daemon.in_netns("sysctl", "-qw", "net.ipv4.conf.all.accept_local=1")
    try:
        gw = gateway(daemon, "bridge")
        send_from_container(daemon, attack, "bridge", ("127.0.0.1", gw, 7103, "spoofed"), ("-", gw, 7103, "witness"))
    finally:
        daemon.in_netns("sysctl", "-qw", "net.ipv4.conf.all.accept_local=0")
    send_from_host(daemon, "127.0.0.1", 7103, "control")
    assert payloads(listener.until("control")) == ["witness"] * 3


def test_outside_frames_to_a_port_published_on_loopback_are_dropped(daemon, attack, listen):
    # Berth DNATs before routing, so without the drop the outside reaches 127.0.0.1-only ports.
    name = "lbpub"
    witness = listen("0.0.0.0", 7105)
    daemon.docker("run", "-d", "--name", name, "-p", "127.0.0.1:7104:7/udp", "-v", f"{attack}:/attack:ro",
                  "busybox", "/attack", "listen", "0.0.0.0", "7")
    try:
        wait_for(lambda: "ready" in daemon.docker("logs", name).stdout, message="the listener")
        host_mac = mac(daemon.netns, "ext0")
        for dst, port, payload in (("127.0.0.1", 7104, "outside-attack"), (HOST_IP, 7105, "witness")):
            out = daemon.outside.run(str(attack), "send", "ext0", host_mac, "-", dst, str(port), payload, "3").stdout
            assert out.strip() == "sent 3"

        # The host's own path to the port still works.
        def delivered():
            send_from_host(daemon, "127.0.0.1", 7104, "control")
            return "control" in daemon.docker("logs", name).stdout
        wait_for(delivered, message="127.0.0.1:7104 from the host")
        assert "outside-attack" not in daemon.docker("logs", name).stdout
        send_from_host(daemon, "127.0.0.1", 7105, "control")
        assert payloads(witness.until("control")) == ["witness"] * 3
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_container_frames_to_ipv6_loopback_are_dropped(daemon, attack, listen):
    # route_localnet is IPv4 only; the kernel itself drops ::1 arriving on any non-loopback device.
    listener = listen("::", 7106)
    send_from_container(daemon, attack, USER_NET, ("-", "::1", 7106, "attack6"), ("-", "fd42:7::1", 7106, "witness6"))
    send_from_host(daemon, "::1", 7106, "control")
    assert payloads(listener.until("control")) == ["witness6"] * 3
