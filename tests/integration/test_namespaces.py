"""linux.namespaces: new, joined by path, user namespace mappings, cgroup and time namespaces."""

import os
import subprocess

import pytest

from conftest import add_bind, edit_config, is_runc, runtime_features, status_fields


def ok(r):
    assert r.rc == 0, r
    return r.out


NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt"}


def test_listed_namespaces_are_new(rt):
    b = rt.bundle("sleep", "100")
    _, pid = rt.start_container(b)
    for typ, f in NS_FILES.items():
        assert os.readlink(f"/proc/{pid}/ns/{f}") != os.readlink(f"/proc/self/ns/{f}"), typ


def test_unlisted_namespaces_are_inherited(rt):
    # config-linux.md namespaces: "If a namespace type is not specified in the namespaces array,
    # the container MUST inherit the runtime namespace of that type."
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] in ("mount", "pid")]
        c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        c.pop("hostname", None)  # a hostname needs a private UTS namespace
    b = rt.bundle("sleep", "100", edit=edit)
    _, pid = rt.start_container(b)
    for f in ("net", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{f}") == os.readlink(f"/proc/self/ns/{f}"), f
    for f in ("mnt", "pid"):
        assert os.readlink(f"/proc/{pid}/ns/{f}") != os.readlink(f"/proc/self/ns/{f}"), f


def test_hostname_is_set_in_a_uts_namespace_joined_by_path(rt, tmp_path):
    # config.md: a hostname needs a UTS namespace of the container's own; joined by path counts.
    ns = tmp_path / "uts"
    ns.touch()
    subprocess.run(["unshare", f"--uts={ns}", "true"], check=True)
    try:
        def edit(c):
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]
            c["linux"]["namespaces"].append({"type": "uts", "path": str(ns)})
            c["hostname"] = "joined-host"
        assert ok(rt.run("hostname", edit=edit)).strip() == "joined-host"
    finally:
        subprocess.run(["umount", str(ns)], check=False)


def test_pid_namespace_makes_process_pid_1(rt):
    assert ok(rt.run("sh", "-c", "echo $$")) == "1\n"


def test_new_network_namespace_has_only_loopback(rt):
    out = ok(rt.run("cat", "/proc/net/dev"))
    ifaces = [l.split(":")[0].strip() for l in out.splitlines()[2:]]
    assert ifaces == ["lo"]


def test_new_network_namespace_has_loopback_up(rt):
    # runc brings lo up in a network namespace it creates; programs expect 127.0.0.1 to answer.
    out = ok(rt.run("cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"))
    assert int(out.split()[1], 16) & 0x1, out  # IFF_UP


def test_joined_network_namespace_keeps_its_loopback_state(rt):
    ns = rt.add_netns()
    path = f"/var/run/netns/{ns}"

    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": path})
    out = ok(rt.run("cat", "/sys/class/net/lo/flags", edit=edit))
    assert not int(out, 16) & 0x1, out  # a joined namespace is the caller's to configure


def test_join_network_namespace_by_path(rt):
    ns = rt.add_netns()
    subprocess.run(["ip", "-n", ns, "link", "add", "berthveth0", "type", "veth",
                    "peer", "name", "berthveth1"], check=True)
    path = f"/var/run/netns/{ns}"

    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": path})
    b = rt.bundle("sleep", "100", edit=edit)
    cid, pid = rt.start_container(b)
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(path).st_ino
    out = rt("exec", cid, "cat", "/proc/net/dev").out
    assert "berthveth0" in out and "berthveth1" in out


def test_join_missing_namespace_path_fails(rt):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": "/var/run/netns/berth-it-absent"})
    b = rt.bundle("true", edit=edit)
    cid = rt.new_id()
    r = rt("create", "--bundle", b, cid, check=False)
    assert r.rc != 0
    assert "berth-it-absent" in r.err
    assert rt("state", cid, check=False).rc != 0


def test_cgroup_namespace_shows_root_paths(rt):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
    out = ok(rt.run("cat", "/proc/self/cgroup", edit=edit))
    lines = [l for l in out.splitlines() if l]
    assert lines
    for l in lines:
        assert l.split(":", 2)[2] == "/", l


def test_without_cgroup_namespace_host_cgroup_paths_visible(rt):
    # control for test_cgroup_namespace_shows_root_paths
    out = ok(rt.run("cat", "/proc/self/cgroup"))
    assert rt.cgroup_parent in out


# ---- user namespace ---------------------------------------------------------------------------

HOST_ID = 100000


def _userns_edit(c):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]


def _userns_bundle(rt, *args):
    host = rt.hostdir("host", 0o755)
    os.chown(host, HOST_ID, HOST_ID)

    def edit(c):
        _userns_edit(c)
        add_bind(c, host, "/host")
    b = rt.bundle(*args, edit=edit)
    # config-linux.md: the mappings say how the rootfs "expects the user namespace to be set
    # up"; the runtime SHOULD NOT chown it, so the bundle owner does.
    subprocess.run(["chown", "-R", "-h", f"{HOST_ID}:{HOST_ID}", str(b / "rootfs")], check=True)
    os.chown(b / "rootfs" / "home" / "user", HOST_ID + 1000, HOST_ID + 1000)
    return b, host


def test_user_namespace_maps_root_to_host_uid(rt):
    b, host = _userns_bundle(rt, "sh", "-c", "touch /host/f; id -u; cat /proc/self/uid_map /proc/self/gid_map")
    r = rt("run", "--bundle", b, rt.new_id())
    lines = r.out.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(HOST_ID), "65536"]
    assert lines[2].split() == ["0", str(HOST_ID), "65536"]
    st = os.stat(host / "f")
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID)


def test_user_namespace_process_uid_seen_from_host(rt):
    b, _ = _userns_bundle(rt, "sleep", "100")
    cid, pid = rt.start_container(b)
    st = status_fields(open(f"/proc/{pid}/status").read())
    assert st["Uid"].split() == [str(HOST_ID)] * 4
    assert st["Gid"].split() == [str(HOST_ID)] * 4
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


def test_user_namespace_non_root_user_maps(rt):
    b, host = _userns_bundle(rt, "sh", "-c", "touch /host/u")
    os.chmod(host, 0o777)

    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
    edit_config(b, edit)
    rt("run", "--bundle", b, rt.new_id())
    assert os.stat(host / "u").st_uid == HOST_ID + 1000


def test_user_namespace_devices_usable(rt):
    b, _ = _userns_bundle(rt, "sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c")
    assert rt("run", "--bundle", b, rt.new_id()).out == "3\n"


# ---- time namespace -----------------------------------------------------------------------------

def test_time_namespace_offsets(rt):
    # config-linux.md: namespace type "time" and linux.timeOffsets (runtime-spec 1.1)
    if is_runc(rt.binary) and "time" not in runtime_features(rt.binary).get("linux", {}).get("namespaces", []):
        pytest.skip("runc 1.1 predates time namespaces")
    offset = 10 * 86400

    def edit(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": offset, "nanosecs": 0},
                                     "monotonic": {"secs": offset, "nanosecs": 0}}
    host_before = float(open("/proc/uptime").read().split()[0])
    out = ok(rt.run("cat", "/proc/uptime", edit=edit))
    host_after = float(open("/proc/uptime").read().split()[0])
    inside = float(out.split()[0])
    assert host_before + offset - 1 <= inside <= host_after + offset + 1
