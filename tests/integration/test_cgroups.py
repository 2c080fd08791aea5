"""linux.resources and cgroupsPath, read back from the host's cgroupfs (v1 or unified v2)."""

import os
import secrets
from pathlib import Path

import pytest

from conftest import cgroup_dir_of, cgroup_mode, cgroup_paths_for, wait_for


def cg_read(pid: int, controller: str, v1: str, v2: str) -> str:
    mode = cgroup_mode(controller)
    if mode is None:
        pytest.skip(f"the {controller} cgroup controller is not available on this host")
    d = cgroup_dir_of(pid, controller)
    return (d / (v1 if mode[0] == "v1" else v2)).read_text().strip()


def need(controller):
    if cgroup_mode(controller) is None:
        pytest.skip(f"the {controller} cgroup controller is not available on this host")
    return cgroup_mode(controller)[0]


def res_bundle(rt, resources: dict, *args):
    def edit(c):
        c["linux"]["resources"].update(resources)
    return rt.bundle(*(args or ("sleep", "100")), edit=edit)


MB50 = 50 * 1024 * 1024


def test_memory_limit_written_to_cgroup(rt):
    need("memory")
    b = res_bundle(rt, {"memory": {"limit": MB50}})
    _, pid = rt.start_container(b)
    assert int(cg_read(pid, "memory", "memory.limit_in_bytes", "memory.max")) == MB50


def test_memory_limit_oom_kills(rt):
    need("memory")
    b = res_bundle(rt, {"memory": {"limit": MB50}}, "sh", "-c", "head -c 200m /dev/zero | tail")
    r = rt("run", "--bundle", b, rt.new_id(), check=False, timeout=60)
    assert r.rc == 137, r


def test_memory_without_limit_runs_the_same_command(rt):
    # control for test_memory_limit_oom_kills: the workload itself is fine without a limit
    b = rt.bundle("sh", "-c", "head -c 200m /dev/zero | tail | wc -c")
    r = rt("run", "--bundle", b, rt.new_id(), timeout=60)
    assert r.out.strip() == str(200 * 1024 * 1024)


def test_pids_limit(rt):
    need("pids")
    b = res_bundle(rt, {"pids": {"limit": 10}}, "sh", "-c",
                   "i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done; wait")
    cid = rt.new_id()
    rt("create", "--bundle", b, cid)
    pid = rt.state(cid)["pid"]
    assert cg_read(pid, "pids", "pids.max", "pids.max") == "10"
    d = cgroup_dir_of(pid, "pids")
    rt("start", cid)
    # the kernel counts refused forks in pids.events ("max N")
    wait_for(lambda: int((d / "pids.events").read_text().split()[1]) > 0, what="a refused fork")
    assert int((d / "pids.current").read_text()) <= 10


def test_cpu_shares_quota_period(rt):
    kind = need("cpu")
    b = res_bundle(rt, {"cpu": {"shares": 512, "quota": 50000, "period": 100000}})
    _, pid = rt.start_container(b)
    if kind == "v1":
        assert cg_read(pid, "cpu", "cpu.shares", "") == "512"
        assert cg_read(pid, "cpu", "cpu.cfs_quota_us", "") == "50000"
        assert cg_read(pid, "cpu", "cpu.cfs_period_us", "") == "100000"
    else:
        # runc's conversion: weight = 1 + ((shares - 2) * 9999) / 262142
        assert cg_read(pid, "cpu", "", "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)
        assert cg_read(pid, "cpu", "", "cpu.max") == "50000 100000"


def test_cpuset_cpus(rt):
    need("cpuset")
    b = res_bundle(rt, {"cpu": {"cpus": "0", "mems": "0"}})
    cid, pid = rt.start_container(b)
    assert cg_read(pid, "cpuset", "cpuset.cpus", "cpuset.cpus") == "0"
    assert cg_read(pid, "cpuset", "cpuset.mems", "cpuset.mems") == "0"
    out = rt("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status").out
    assert out.split()[-1] == "0"


def test_blockio_weight(rt):
    kind = need("blkio") if cgroup_mode("blkio") else need("io")
    probe = cgroup_mode("blkio" if kind == "v1" else "io")[1]
    names = ["blkio.weight", "blkio.bfq.weight"] if kind == "v1" else ["io.bfq.weight", "io.weight"]
    have = [n for n in names if os.path.exists(os.path.join(probe, n))]
    if not have:
        pytest.skip(f"no {' / '.join(names)} file on this host: the kernel's I/O scheduler "
                    "(no CFQ/BFQ) offers no proportional weight, so blockIO.weight cannot be set")
    b = res_bundle(rt, {"blockIO": {"weight": 300}})
    _, pid = rt.start_container(b)
    d = cgroup_dir_of(pid, "blkio" if kind == "v1" else "io")
    val = (d / have[0]).read_text().split()
    assert "300" in val[-1:] or val[:2] == ["default", "300"], val


DENIED = "Operation not permitted"
NO_DRIVER = "No such device or address"  # the open got past the device cgroup to a driverless major


def _dev_bundle(rt, allow_240: bool):
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/berth-test", "type": "c", "major": 240, "minor": 0,
                                  "fileMode": 0o666, "uid": 0, "gid": 0}]
        rules = [{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
        if allow_240:
            rules.append({"allow": True, "type": "c", "major": 240, "minor": 0, "access": "rw"})
        c["linux"]["resources"]["devices"] = rules
    return rt.bundle("sh", "-c", "echo x > /dev/null && echo null-ok; cat /dev/berth-test", edit=edit)


def test_devices_cgroup_denies_unlisted_device(rt):
    need("devices") if cgroup_mode("devices") else None
    b = _dev_bundle(rt, allow_240=False)
    r = rt("run", "--bundle", b, rt.new_id(), check=False)
    assert r.out == "null-ok\n"
    assert r.rc != 0 and DENIED in r.err, r


def test_devices_cgroup_allows_listed_device(rt):
    b = _dev_bundle(rt, allow_240=True)
    r = rt("run", "--bundle", b, rt.new_id(), check=False)
    assert r.out == "null-ok\n"
    assert r.rc != 0 and NO_DRIVER in r.err, r


def test_cgroups_path_is_honoured(rt):
    need("memory")
    path = f"/berth-it-top-{secrets.token_hex(4)}"
    b = rt.bundle("sleep", "100", cgroups_path=path)
    _, pid = rt.start_container(b)
    mem = cgroup_dir_of(pid, "memory")
    mnt = cgroup_mode("memory")[1]
    assert mem == Path(mnt + path)
    assert str(pid) in (mem / "cgroup.procs").read_text().split()
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        hid, ctrls, p = line.split(":", 2)
        if ctrls and not ctrls.startswith("name=") and ctrls != "hugetlb":
            assert p == path, line


def test_cgroup_removed_after_delete(rt):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    path = rt.cgroups_path(b)
    mem = cgroup_dir_of(pid, "memory") if cgroup_mode("memory") else None
    assert mem is None or mem.is_dir()
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt("delete", cid)
    left = [str(p) for p in cgroup_paths_for(path) if p.exists()]
    assert left == []


def test_cgroup_removed_after_run(rt):
    b = rt.bundle("true")
    rt("run", "--bundle", b, rt.new_id())
    assert [str(p) for p in cgroup_paths_for(rt.cgroups_path(b)) if p.exists()] == []
