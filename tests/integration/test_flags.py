"""Command-line flags that containerd and other runc drivers pass: each observed for real."""

import json
import os
import subprocess
import time

from conftest import cgroup_dir_of, cgroup_mode, pid_alive, wait_for


def test_preserve_fds_passes_extra_descriptors(rt):
    # runc's --preserve-fds N keeps the caller's fds 3..3+N-1 open in the container: here the
    # caller opens fd 3 on a host file and the container reads it.
    src = rt.hostdir("pf") / "payload"
    src.write_text("through-fd-3\n")
    b = rt.bundle("sh", "-c", "cat <&3")
    cmd = " ".join(rt.argv("run", "--preserve-fds", "1", "--bundle", str(b), rt.new_id()))
    p = subprocess.run(["sh", "-c", f"exec 3<{src}; exec {cmd}"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "through-fd-3\n"


def test_preserve_fds_the_caller_did_not_open_stay_closed(rt):
    # Nothing at fd 3 in the caller: the container must not get one of the runtime's own fds.
    b = rt.bundle("sh", "-c", "cat <&3")
    cmd = " ".join(rt.argv("run", "--preserve-fds", "1", "--bundle", str(b), rt.new_id()))
    p = subprocess.run(["sh", "-c", f"exec 3<&-; exec {cmd}"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "Bad file descriptor" in p.stderr, p.stderr


def test_fds_are_not_leaked_without_preserve_fds(rt):
    b = rt.bundle("sh", "-c", "ls /proc/self/fd")
    r = rt("run", "--bundle", b, rt.new_id())
    # 0, 1, 2 and the fd `ls` opens for the directory itself.
    assert sorted(int(x) for x in r.out.split()) == [0, 1, 2, 3], r.out


def test_no_pivot_runs_the_container(rt):
    b = rt.bundle("sh", "-c", "cat /etc/hostname >/dev/null; echo no-pivot-ok; ls /")
    r = rt("run", "--no-pivot", "--bundle", b, rt.new_id())
    assert r.out.startswith("no-pivot-ok\n"), r.out
    assert "bin" in r.out.split()


def test_json_log_records_errors_for_containerd(rt):
    # containerd's runc shim reads the last error record of --log with --log-format json.
    log = rt.tmp / "runtime.log"
    r = rt("--log", log, "--log-format", "json", "start", f"it-{rt.token}-missing", check=False)
    assert r.rc != 0
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    errors = [x for x in records if x.get("level") == "error"]
    assert errors, records
    assert "missing" in errors[-1]["msg"] or "not exist" in errors[-1]["msg"], errors[-1]
    assert "time" in errors[-1]


def test_kill_all_signals_every_process(rt):
    b = rt.bundle("sh", "-c", "sleep 100 & sleep 100 & wait")
    cid, pid = rt.start_container(b)
    wait_for(lambda: len(json.loads(rt("ps", "--format", "json", cid).out)) >= 3, what="three processes")
    pids = json.loads(rt("ps", "--format", "json", cid).out)
    rt("kill", "--all", cid, "KILL")
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="every process killed")
    rt.wait_status(cid, "stopped")


def test_console_size_is_applied(rt, console):
    def edit(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": 33, "width": 111}
    b = rt.bundle("sh", "-c", "stty size; sleep 100", edit=edit)
    rt("run", "-d", "--console-socket", console.path, "--bundle", b, rt.new_id())
    assert b"33 111" in console.read_until(b"33 111")


def test_rootfs_propagation_shared_is_applied(rt):
    # config-linux.md rootfsPropagation: the container's root mount gets this propagation.
    rt.runc_deviation("runc 1.1 fails pivot_root (EINVAL) when rootfsPropagation is shared")
    def edit(c):
        c["linux"]["rootfsPropagation"] = "shared"
    b = rt.bundle("sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo", edit=edit)
    r = rt("run", "--bundle", b, rt.new_id())
    assert "shared:" in r.out, r.out


def test_rootfs_propagation_unbindable_is_applied(rt):
    # The root can only be made unbindable after pivot_root: bind-mounting the rootfs from an
    # unbindable tree fails with EINVAL (as it did here before).
    rt.runc_deviation("runc 1.1 fails to bind-mount the rootfs (EINVAL) when rootfsPropagation is unbindable")
    def edit(c):
        c["linux"]["rootfsPropagation"] = "unbindable"
    b = rt.bundle("sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo", edit=edit)
    r = rt("run", "--bundle", b, rt.new_id())
    assert "unbindable" in r.out, r.out


def test_memory_reservation_and_swap_reach_the_cgroup(rt):
    mode = cgroup_mode("memory")
    def edit(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20, "reservation": 32 << 20, "swap": 64 << 20}
    b = rt.bundle("sleep", "100", edit=edit)
    _, pid = rt.start_container(b)
    d = cgroup_dir_of(pid, "memory")
    if mode[0] == "v1":
        assert int((d / "memory.limit_in_bytes").read_text()) == 64 << 20
        assert int((d / "memory.soft_limit_in_bytes").read_text()) == 32 << 20
        memsw = d / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            assert int(memsw.read_text()) == 64 << 20
    else:
        assert int((d / "memory.max").read_text()) == 64 << 20
        assert int((d / "memory.low").read_text()) == 32 << 20


def test_update_changes_limits_of_a_running_container(rt):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    rt("update", "--memory", str(48 << 20), "--pids-limit", "17", cid)
    mode = cgroup_mode("memory")
    if mode[0] == "v1":
        assert int((cgroup_dir_of(pid, "memory") / "memory.limit_in_bytes").read_text()) == 48 << 20
        assert (cgroup_dir_of(pid, "pids") / "pids.max").read_text().strip() == "17"
    else:
        assert int((cgroup_dir_of(pid, "memory") / "memory.max").read_text()) == 48 << 20


def test_update_reads_resources_document_from_stdin(rt):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    doc = json.dumps({"pids": {"limit": 23}})
    rt("update", "--resources", "-", cid, input=doc)
    assert (cgroup_dir_of(pid, "pids") / "pids.max").read_text().strip() == "23"


def test_debug_flag_is_accepted(rt):
    b = rt.bundle("true")
    r = rt("--debug", "run", "--bundle", b, rt.new_id())
    assert r.rc == 0


def test_debug_flag_writes_debug_records_to_the_log(rt):
    log = rt.tmp / "debug.log"
    b = rt.bundle("true")
    cid = rt.new_id()
    rt("--debug", "--log", log, "--log-format", "json", "run", "--bundle", b, cid)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(r.get("level") == "debug" for r in records), records
