"""Issue 10, item 4: the default seccomp profile, probed from inside real containers.

seccomp_probe.c (beside this file, built static) tries each call and prints "name=RESULT"
(RESULT is "ok" or an errno name). The default profile must refuse the escapes the old deny-list
let through (namespace clone flags, the new mount API, NETLINK_NETFILTER, io_uring, pidfd_getfd)
and everything Docker's allow-list leaves out, while fork, threads, posix_spawn and clone3's
ENOSYS fallback keep working. The capability-gated rules follow the container's capabilities as in
Docker, and `--privileged` or `seccomp=unconfined` remove the filter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PROBE_SOURCE = Path(__file__).with_name("seccomp_probe.c")

# What a default container gets. EPERM is the profile's default errno; ENOSYS for clone3 as Docker.
DEFAULT = {
    "clone_newuser_newns_newnet": "EPERM",
    "unshare_newuser_newns_newnet": "EPERM",
    "userns_fsmount_tmpfs": "EPERM",
    "fsconfig_badfd": "EPERM",
    "bpf_badcmd": "EPERM",
    "perf_event_open_null": "EPERM",
    "socket_netlink_netfilter": "EPERM",
    "socket_netlink_netfilter_high_bits": "EPERM",
    "io_uring_setup": "EPERM",
    "pidfd_getfd": "EPERM",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "userfaultfd": "EPERM",
    "personality_bsd": "EPERM",
    "personality_linux": "ok",
    "personality_query": "ok",
    "socket_inet": "ok",
    "socket_netlink_route": "ok",
    "pidfd_open": "ok",
    "clone3": "ENOSYS",
    "fchmodat2_newer_than_profile": "ENOSYS",
    "fork": "ok",
    "pthread_create": "ok",
    "posix_spawn_true": "ok",
}

# Without a filter every call reaches the kernel: the attacks succeed (which shows the probe is
# sound), and the argument probes get the kernel's own errno instead of EPERM.
UNFILTERED = {name: "ok" for name in DEFAULT} | {
    "fsconfig_badfd": "EINVAL",
    "bpf_badcmd": "EINVAL",
    "perf_event_open_null": "EFAULT",
    "clone3": "EINVAL",
    "fchmodat2_newer_than_profile": "ENOENT",
}


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    out = tmp_path_factory.mktemp("seccomp-probe") / "seccomp_probe"
    subprocess.run(["cc", "-static", "-pthread", "-O2", "-o", str(out), str(PROBE_SOURCE)], check=True)
    return out


def run_probe(engine, probe, *options: str) -> dict[str, str]:
    p = engine.docker("run", "--rm", *options, "-v", f"{probe}:/probe:ro", "busybox", "/probe")
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


def test_default_profile_refuses_escapes_and_keeps_ordinary_calls(engine, probe):
    assert run_probe(engine, probe) == DEFAULT


def test_cap_sys_admin_allows_namespace_flags_and_mount_api_as_docker(engine, probe):
    assert run_probe(engine, probe, "--cap-add", "SYS_ADMIN") == DEFAULT | {
        "clone_newuser_newns_newnet": "ok",
        "unshare_newuser_newns_newnet": "ok",
        "userns_fsmount_tmpfs": "ok",
        "fsconfig_badfd": "EINVAL",
        "bpf_badcmd": "EINVAL",
        "perf_event_open_null": "EFAULT",
        "clone3": "EINVAL",  # clone3 reaches the kernel: the ENOSYS rule excludes CAP_SYS_ADMIN
    }


def test_cap_sys_ptrace_allows_pidfd_getfd(engine, probe):
    assert run_probe(engine, probe, "--cap-add", "SYS_PTRACE") == DEFAULT | {"pidfd_getfd": "ok"}


def test_cap_net_admin_allows_netfilter_netlink(engine, probe):
    assert run_probe(engine, probe, "--cap-add", "NET_ADMIN") == DEFAULT | {"socket_netlink_netfilter": "ok",
                                                                             "socket_netlink_netfilter_high_bits": "ok"}


@pytest.mark.parametrize("options", [["--security-opt", "seccomp=unconfined"], ["--privileged"]],
                         ids=["unconfined", "privileged"])
def test_unconfined_and_privileged_have_no_filter(engine, probe, options):
    assert run_probe(engine, probe, *options) == UNFILTERED
