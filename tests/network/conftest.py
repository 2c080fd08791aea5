"""Fixtures for the networking suite: real containers on real bridges, veths and nftables
rules, checked with real traffic.

Each berthd runs in its own network namespace (the "host" of its containers). A second
namespace, joined to it by a veth pair, plays another machine on the network:

    outside ns  ext0 10.99.0.2/24 fd99::2/64  <-->  ext0 10.99.0.1/24 fd99::1/64  daemon ns (berth0, br-*, tables)

Nothing touches the machine's own network; teardown removes containers, daemon, namespaces.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "berth_daemon_conftest", Path(__file__).resolve().parents[1] / "daemon" / "conftest.py")
_daemon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_daemon)

BUILD = _daemon.BUILD
Daemon = _daemon.Daemon
cleanup_daemon = _daemon.cleanup_daemon
busybox_tar = _daemon.busybox_tar  # the session fixture, shared as it is
make_netns = _daemon.make_netns
remove_netns = _daemon.remove_netns
pytest_collection_modifyitems = _daemon.pytest_collection_modifyitems

HOST_IP = "10.99.0.1"
OUTSIDE_IP = "10.99.0.2"
HOST_IP6 = "fd99::1"
OUTSIDE_IP6 = "fd99::2"


class Outside:
    """Another machine: a namespace with a link to the daemon's namespace."""

    def __init__(self, daemon_ns: str):
        self.ns = make_netns("bto")
        subprocess.run(["ip", "link", "add", "ext0", "netns", daemon_ns, "type", "veth", "peer", "name", "ext0",
                        "netns", self.ns], check=True)
        for ns, addr, addr6 in ((daemon_ns, HOST_IP, HOST_IP6), (self.ns, OUTSIDE_IP, OUTSIDE_IP6)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "ext0"], check=True)
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", "ext0", "nodad"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "ext0", "up"], check=True)
        self.servers: list[subprocess.Popen] = []

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def serve(self, *cmd: str) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.servers.append(p)
        return p

    def close(self):
        for p in self.servers:
            p.kill()
            p.wait()
        remove_netns(self.ns)


def start_engine(busybox_tar, extra_args=()) -> Daemon:
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BUILD / "berth-runtime"),
                                 "--monitor-path", str(BUILD / "berth-monitor"), *extra_args])
    d.start()
    d.docker("load", "-i", str(busybox_tar))
    return d


@pytest.fixture(scope="session")
def udpecho(tmp_path_factory):
    """A static UDP echo server to bind-mount into busybox containers."""
    out = tmp_path_factory.mktemp("udpecho") / "udpecho"
    subprocess.run(["cc", "-static", "-O2", "-o", str(out), str(Path(__file__).parent / "udpecho.c")], check=True)
    return out


@pytest.fixture(scope="module")
def engine(busybox_tar):
    """One berthd per module in its own namespace, with busybox and an outside machine."""
    d = start_engine(busybox_tar)
    d.outside = Outside(d.netns)
    try:
        yield d
    finally:
        d.outside.close()
        cleanup_daemon(d)


@pytest.fixture
def cleanup(engine):
    """Names of containers and networks a test makes; removed after it, pass or fail."""
    made = {"containers": [], "networks": []}
    yield made
    for c in made["containers"]:
        engine.docker("rm", "-f", c, check=False)
    for n in made["networks"]:
        engine.docker("network", "rm", n, check=False)


def inspect(d: Daemon, name: str) -> dict:
    return json.loads(d.docker("inspect", name).stdout)[0]


def wait_for(predicate, timeout: float = 10, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def links(d: Daemon) -> list[str]:
    return [l["ifname"] for l in json.loads(d.in_netns("ip", "-j", "link").stdout)]


def nft_table(d: Daemon) -> str:
    return d.in_netns("nft", "list", "table", "ip", "berth").stdout
