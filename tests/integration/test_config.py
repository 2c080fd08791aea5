"""config.json semantics, each checked from inside the container (config.md, config-linux.md)."""

import os
import shutil
import subprocess

import pytest

from conftest import DEFAULT_CAPS, add_bind, cap_mask, runc_version, status_fields


def ok(r):
    assert r.rc == 0, r
    return r.out


# ---- process --------------------------------------------------------------------------------

def test_hostname(rt):
    out = ok(rt.run("sh", "-c", "hostname; cat /proc/sys/kernel/hostname",
                    edit=lambda c: c.update(hostname="it-host")))
    assert out.split() == ["it-host", "it-host"]


def test_domainname(rt):
    if runc_version(rt.binary) and runc_version(rt.binary) < (1, 2):
        pytest.skip("runc 1.1 parses but ignores config.domainname (runc 1.2 sets it)")

    def edit(c):
        c["hostname"] = "it-host"
        c["domainname"] = "it.example"
    out = ok(rt.run("sh", "-c", "hostname; cat /proc/sys/kernel/domainname", edit=edit))
    assert out.split() == ["it-host", "it.example"]


def test_env(rt):
    def edit(c):
        c["process"]["env"] += ["FOO=bar", "WITH_EQ=a=b", "SPACES=x y  z"]
    out = ok(rt.run("sh", "-c", 'echo "$FOO|$WITH_EQ|$SPACES"', edit=edit))
    assert out == "bar|a=b|x y  z\n"


def test_env_is_exactly_config_env(rt):
    # config.md process.env: the process environment; no host variables leak in
    out = ok(rt.run("env", edit=lambda c: c["process"].update(env=["PATH=/bin:/usr/bin", "ONLY=1"])))
    env = dict(l.split("=", 1) for l in out.splitlines())
    env.pop("HOME", None)  # runc adds HOME from /etc/passwd when unset (docker does the same)
    assert env == {"PATH": "/bin:/usr/bin", "ONLY": "1"}


def test_cwd(rt):
    assert ok(rt.run("pwd", edit=lambda c: c["process"].update(cwd="/tmp"))) == "/tmp\n"


def test_args_are_passed_verbatim(rt):
    out = ok(rt.run("sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "sh", "a b", "", "-c", "$HOME"))
    assert out.splitlines() == ["[a b]", "[]", "[-c]", "[$HOME]"]


def test_user_uid_gid_additional_gids(rt):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100]}
    st = status_fields(ok(rt.run("cat", "/proc/self/status", edit=edit)))
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert sorted(map(int, st["Groups"].split())) == [5, 100]


def test_user_id_command(rt):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [100]}
    out = ok(rt.run("id", edit=edit))
    assert out.startswith("uid=1000(user) gid=1000(user)")
    assert "100(users)" in out


def test_umask(rt):
    def edit(c):
        c["process"]["user"]["umask"] = 0o027
    out = ok(rt.run("sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f", edit=edit))
    assert out.split() == ["0027", "640"]


def test_rlimits(rt):
    def edit(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
                                   {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}]
    out = ok(rt.run("sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/limits", edit=edit))
    lines = out.splitlines()
    assert lines[:2] == ["512", "2048"]
    nofile = next(l for l in lines if l.startswith("Max open files")).split()
    nproc = next(l for l in lines if l.startswith("Max processes")).split()
    assert nofile[3:5] == ["512", "2048"]
    assert nproc[2:4] == ["300", "400"]


def test_default_rlimit_nofile_from_bundle(rt):
    assert ok(rt.run("sh", "-c", "ulimit -n")) == "1024\n"


def _caps(out):
    st = status_fields(out)
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_default_capabilities(rt):
    caps = _caps(ok(rt.run("cat", "/proc/self/status")))
    m = cap_mask(DEFAULT_CAPS)
    assert caps["CapBnd"] == m
    assert caps["CapPrm"] == m
    assert caps["CapEff"] == m
    assert caps["CapAmb"] == 0
    assert caps["CapInh"] == 0


def test_reduced_capabilities_for_root(rt):
    # For uid 0 execve(2) recomputes permitted = bounding (| inheritable), so only a set that is
    # the same in bounding, permitted and effective is observable for root.
    few = ["CAP_KILL", "CAP_CHOWN"]

    def edit(c):
        c["process"]["capabilities"] = {"bounding": few, "permitted": few, "effective": few}
    caps = _caps(ok(rt.run("cat", "/proc/self/status", edit=edit)))
    assert caps["CapBnd"] == caps["CapPrm"] == caps["CapEff"] == cap_mask(few)
    assert caps["CapAmb"] == 0


def test_ambient_capabilities_for_non_root_user(rt):
    amb = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]

    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["capabilities"] = {k: amb for k in
                                        ("bounding", "permitted", "effective", "inheritable", "ambient")}
    caps = _caps(ok(rt.run("cat", "/proc/self/status", edit=edit)))
    m = cap_mask(amb)
    assert caps == {"CapInh": m, "CapPrm": m, "CapEff": m, "CapBnd": m, "CapAmb": m}


def test_missing_capability_is_enforced(rt):
    # Without CAP_CHOWN root cannot chown a file it does not own... to someone else.
    few = ["CAP_KILL"]

    def edit(c):
        c["process"]["capabilities"] = {"bounding": few, "permitted": few, "effective": few}
    r = rt.run("sh", "-c", "touch /tmp/f && chown 1000 /tmp/f", edit=edit)
    assert r.rc != 0
    assert "Operation not permitted" in r.err


def test_no_new_privileges_true(rt):
    st = status_fields(ok(rt.run("cat", "/proc/self/status")))
    assert st["NoNewPrivs"] == "1"


def test_no_new_privileges_false(rt):
    if status_fields(open("/proc/self/status").read())["NoNewPrivs"] == "1":
        pytest.skip("the test runner itself has no_new_privs set, so every child inherits it")
    st = status_fields(ok(rt.run("cat", "/proc/self/status",
                                 edit=lambda c: c["process"].update(noNewPrivileges=False))))
    assert st["NoNewPrivs"] == "0"


def test_oom_score_adj(rt):
    out = ok(rt.run("cat", "/proc/self/oom_score_adj",
                    edit=lambda c: c["process"].update(oomScoreAdj=123)))
    assert out == "123\n"


# ---- root and mounts ------------------------------------------------------------------------

def test_readonly_root(rt):
    r = rt.run("touch", "/newfile", edit=lambda c: c["root"].update(readonly=True))
    assert r.rc != 0
    assert "Read-only file system" in r.err


def test_writable_root_by_default(rt):
    ok(rt.run("touch", "/newfile"))


def _mounts(out):
    """{mountpoint: (fstype, options set)} from /proc/mounts text (last mount wins)."""
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            res[f[1]] = (f[2], set(f[3].split(",")))
    return res


def test_tmpfs_mount_with_size(rt):
    def edit(c):
        c["mounts"].append({"destination": "/mnt/small", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=1m", "mode=1777"]})
    r = rt.run("sh", "-c", "cat /proc/mounts; echo ===; df -k /mnt/small; echo ===; "
               "dd if=/dev/zero of=/mnt/small/f bs=1024 count=2048", edit=edit)
    assert r.rc != 0, r  # dd must hit ENOSPC
    assert "No space left on device" in r.err
    mounts_txt, df_txt, _ = r.out.split("===")
    fstype, opts = _mounts(mounts_txt)["/mnt/small"]
    assert fstype == "tmpfs"
    assert "size=1024k" in opts
    assert df_txt.strip().splitlines()[1].split()[1] == "1024"


def test_bind_mounts_rw_and_ro(rt):
    rw, ro = rt.hostdir("rw"), rt.hostdir("ro")
    (ro / "in-ro").write_text("ro-content\n")

    def edit(c):
        add_bind(c, rw, "/data-rw", ["rbind", "rw"])
        add_bind(c, ro, "/data-ro", ["rbind", "ro"])
    r = rt.run("sh", "-c", "echo from-container > /data-rw/out; cat /data-ro/in-ro; "
               "touch /data-ro/nope", edit=edit)
    assert r.rc != 0  # the last command, a write to the ro mount, fails
    assert "Read-only file system" in r.err
    assert r.out == "ro-content\n"
    assert (rw / "out").read_text() == "from-container\n"
    assert not (ro / "nope").exists()


def test_recursive_bind_carries_submounts(rt):
    top = rt.hostdir("top")
    sub = top / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "berth-it-sub", str(sub)], check=True)
    try:
        (sub / "deep").write_text("deep\n")
        out = ok(rt.run("cat", "/top/sub/deep", edit=lambda c: add_bind(c, top, "/top", ["rbind", "ro"])))
        assert out == "deep\n"
    finally:
        subprocess.run(["umount", "-l", str(sub)])


def test_mount_flags_nosuid_nodev_noexec(rt):
    d = rt.hostdir("flags")
    shutil.copy2("/bin/busybox", d / "bb")

    def edit(c):
        add_bind(c, d, "/flags", ["rbind", "rw", "nosuid", "nodev", "noexec"])
    r = rt.run("sh", "-c", "cat /proc/mounts; /flags/bb true", edit=edit)
    fstype, opts = _mounts(r.out)["/flags"]
    assert {"nosuid", "nodev", "noexec"} <= opts
    assert r.rc != 0 and "Permission denied" in r.err  # noexec enforced


def test_bind_single_file(rt):
    f = rt.tmp / "single.txt"
    f.write_text("single-file\n")
    out = ok(rt.run("cat", "/etc/berth-file",
                    edit=lambda c: add_bind(c, f, "/etc/berth-file", ["bind", "ro"])))
    assert out == "single-file\n"


def test_masked_paths(rt):
    # config-linux.md maskedPaths: "...MUST render the provided paths inaccessible"
    # (runc: /dev/null over files, an empty read-only tmpfs over directories)
    masked = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
              "/sys/firmware", "/proc/scsi"]
    files = [p for p in masked if os.path.isfile(p)]
    dirs = [p for p in masked if os.path.isdir(p)]
    if not files or not dirs:
        pytest.skip("this host has none of the usual masked files or directories to observe")
    script = "; ".join([f"echo $(cat {p} | wc -c)" for p in files] +
                       [f"echo $(ls -A {p} | wc -l)" for p in dirs])
    out = ok(rt.run("sh", "-c", script))
    assert out.split() == ["0"] * (len(files) + len(dirs)), (files, dirs, out)


def test_masked_path_readable_when_not_listed(rt):
    # the control for test_masked_paths: the same file has content when not masked
    if not os.path.isfile("/proc/timer_list"):
        pytest.skip("/proc/timer_list does not exist on this host")

    def edit(c):
        c["linux"]["maskedPaths"] = [p for p in c["linux"]["maskedPaths"] if p != "/proc/timer_list"]
    out = ok(rt.run("sh", "-c", "cat /proc/timer_list | wc -c", edit=edit))
    assert int(out) > 0


def test_readonly_paths(rt):
    r = rt.run("sh", "-c", "cat /proc/mounts; echo 1 > /proc/sys/net/ipv4/ip_forward")
    assert r.rc != 0
    assert "Read-only file system" in r.err
    fstype, opts = _mounts(r.out)["/proc/sys"]
    assert "ro" in opts


def test_sysctl(rt):
    before = open("/proc/sys/net/ipv4/ip_forward").read()

    def edit(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
    out = ok(rt.run("sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax", edit=edit))
    assert out.split() == ["1", "123456789"]
    assert open("/proc/sys/net/ipv4/ip_forward").read() == before  # host untouched


# ---- devices --------------------------------------------------------------------------------

def test_config_device_created_with_major_minor_mode(rt):
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/myfull", "type": "c", "major": 1, "minor": 7,
                                  "fileMode": 0o640, "uid": 0, "gid": 5}]
        c["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1,
                                                   "minor": 7, "access": "rwm"})
    r = rt.run("sh", "-c", "stat -c '%F %t %T %a %u %g' /dev/myfull; echo x > /dev/myfull", edit=edit)
    assert r.out.strip() == "character special file 1 7 640 0 5"
    assert r.rc != 0 and "No space left on device" in r.err  # it really is /dev/full


def test_default_devices_exist(rt):
    # config-linux.md "Default Devices": null zero full random urandom tty, ptmx -> pts/ptmx
    out = ok(rt.run("sh", "-c", "for d in null zero full random urandom tty; do "
                    "stat -c '%n %F %t:%T %a' /dev/$d; done; readlink /dev/ptmx || stat -c %t:%T /dev/ptmx"))
    lines = out.splitlines()
    expect = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    got = {}
    for l in lines[:6]:
        name, rest = l.split(" ", 1)
        assert rest.startswith("character special file"), l
        got[name.removeprefix("/dev/")] = rest.split()[-2]
        assert rest.split()[-1] == "666", l
    assert got == expect
    assert lines[6] in ("pts/ptmx", "/dev/pts/ptmx", "5:2")


def test_default_devices_usable(rt):
    out = ok(rt.run("sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                    "head -c 8 /dev/urandom | wc -c"))
    assert out.split() == ["4", "8"]


def test_dev_fd_symlinks(rt):
    out = ok(rt.run("sh", "-c", "for l in fd stdin stdout stderr; do readlink /dev/$l; done"))
    assert out.split() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]
