"""POSIX-platform hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle")."""

import json
import os
import time

from conftest import add_bind, cgroup_paths_for, pid_alive, wait_for

ALL = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def recorder(name: str, d: str, extra: str = "") -> dict:
    """A hook that saves its stdin, mount/pid namespace and appends its name to d/seq."""
    script = (f"cat > {d}/{name}.json; readlink /proc/self/ns/mnt > {d}/{name}.mnt; "
              f"{extra}echo {name} >> {d}/seq")
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"]}


class Hooked:
    def __init__(self, rt, startcontainer_delay=0.0):
        self.rt = rt
        self.d = rt.hostdir("hooks")
        d = str(self.d)

        def edit(c):
            add_bind(c, d, "/hooks")
            # createContainer runs before pivot_root (config.md), so host paths still resolve;
            # startContainer's path and files resolve in the container, hence /hooks.
            c["hooks"] = {
                "prestart": [recorder("prestart", d)],
                "createRuntime": [recorder("createRuntime", d)],
                "createContainer": [recorder("createContainer", d)],
                "startContainer": [recorder("startContainer", "/hooks",
                                            f"sleep {startcontainer_delay}; " if startcontainer_delay else "")],
                "poststart": [recorder("poststart", d)],
                "poststop": [recorder("poststop", d)],
            }
        self.bundle = rt.bundle("sh", "-c", "echo user >> /hooks/seq; exec sleep 100", edit=edit)

    def seq(self):
        try:
            return (self.d / "seq").read_text().split()
        except FileNotFoundError:
            return []

    def state(self, name):
        return json.loads((self.d / f"{name}.json").read_text())

    def mntns(self, name):
        return (self.d / f"{name}.mnt").read_text().strip()

    def full_cycle(self):
        rt = self.rt
        cid = rt.new_id()
        rt("create", "--bundle", self.bundle, cid)
        after_create = self.seq()
        pid = rt.state(cid)["pid"]
        mnt = os.readlink(f"/proc/{pid}/ns/mnt")
        rt("start", cid)
        wait_for(lambda: "user" in self.seq(), what="user process")
        after_start = self.seq()
        rt("kill", cid, "KILL")
        rt.wait_status(cid, "stopped")
        rt("delete", cid)
        return cid, pid, mnt, after_create, after_start, self.seq()


def test_hooks_run_in_lifecycle_phases(rt):
    h = Hooked(rt)
    cid, pid, mnt, after_create, after_start, final = h.full_cycle()
    # runtime.md lifecycle steps 3-5: prestart, createRuntime, createContainer during create
    assert after_create[:3] == ["prestart", "createRuntime", "createContainer"]
    assert "startContainer" not in after_create and "user" not in after_create
    # steps 7-8: startContainer before the user program
    assert after_start.index("startContainer") < after_start.index("user")
    assert sorted(after_start) == sorted(ALL[:-1] + ["user"])
    # step 13: poststop during delete
    assert final == after_start + ["poststop"]


def test_poststart_runs_during_start_after_user_process(rt):
    # config.md: "The poststart hooks MUST be called after the user-specified process is
    # executed but before the start operation returns"; runtime.md lifecycle: startContainer
    # (7), user program (8), poststart (9), all part of `start`.
    rt.runc_deviation("runc 1.1 runs poststart hooks at the end of `create`, before the "
                      "startContainer hooks and the user process")
    h = Hooked(rt, startcontainer_delay=0.3)
    _, _, _, after_create, after_start, _ = h.full_cycle()
    assert after_create == ["prestart", "createRuntime", "createContainer"]
    assert after_start[3:] == ["startContainer", "user", "poststart"]


def test_hooks_receive_state_on_stdin(rt):
    h = Hooked(rt)
    cid, pid, _, _, _, _ = h.full_cycle()
    bundle = str(h.bundle.resolve())
    for name in ALL:
        st = h.state(name)
        assert st["id"] == cid, name
        assert st["bundle"] == bundle, name
        assert st["ociVersion"].startswith("1."), name
    for name in ("prestart", "createRuntime", "createContainer"):
        assert h.state(name)["status"] == "creating", name
    for name in ("prestart", "createRuntime"):
        assert h.state(name)["pid"] == pid, name
    assert h.state("startContainer")["status"] == "created"
    assert h.state("poststop")["status"] == "stopped"


def test_container_namespace_hooks_get_host_pid_in_state(rt):
    # runtime.md state: pid "is the ID of the container process, as seen by the host"
    # (REQUIRED when status is created, as it is for startContainer).
    rt.runc_deviation("runc 1.1 passes the pid as seen inside the container (1) to "
                      "createContainer and startContainer hooks")
    h = Hooked(rt)
    _, pid, _, _, _, _ = h.full_cycle()
    assert h.state("startContainer")["pid"] == pid
    assert h.state("createContainer").get("pid", pid) == pid


def test_poststart_state_is_running(rt):
    # runtime.md state: "running: the container process has executed the user-specified
    # program" (after lifecycle step 8); poststart is step 9.
    rt.runc_deviation("runc 1.1 passes status \"created\" to poststart hooks")
    h = Hooked(rt)
    h.full_cycle()
    assert h.state("poststart")["status"] == "running"


def test_hooks_run_in_the_documented_namespaces(rt):
    h = Hooked(rt)
    _, pid, mnt, _, _, _ = h.full_cycle()
    host = os.readlink("/proc/self/ns/mnt")
    assert mnt != host
    for name in ("prestart", "createRuntime", "poststart", "poststop"):
        assert h.mntns(name) == host, f"{name} must run in the runtime namespace"
    for name in ("createContainer", "startContainer"):
        assert h.mntns(name) == mnt, f"{name} must run in the container namespace"


def test_hook_env_and_args(rt):
    d = rt.hostdir("hooks")
    hook = {"path": "/bin/sh", "args": ["hook-argv0", "-c", f'echo "$0|$HOOKVAR" > {d}/out; env > {d}/env'],
            "env": ["PATH=/usr/bin:/bin", "HOOKVAR=hv"]}
    b = rt.bundle("true", edit=lambda c: c.update(hooks={"createRuntime": [hook]}))
    rt("run", "--bundle", b, rt.new_id())
    assert (d / "out").read_text() == "hook-argv0|hv\n"
    env = dict(l.split("=", 1) for l in (d / "env").read_text().splitlines())
    env.pop("PWD", None)
    env.pop("SHLVL", None)
    env.pop("_", None)
    assert env == {"PATH": "/usr/bin:/bin", "HOOKVAR": "hv"}


def _assert_nothing_left(rt, cid, b):
    assert rt("state", cid, check=False).rc != 0
    assert rt("list", "-q").out.strip() == ""
    assert [str(p) for p in cgroup_paths_for(rt.cgroups_path(b)) if p.exists()] == []


def test_failing_create_runtime_hook_fails_create(rt):
    # runtime.md lifecycle 4: "If any createRuntime hook fails, the runtime MUST generate an
    # error, stop the container, and continue the lifecycle at step 12."
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
    b = rt.bundle("sleep", "100", edit=lambda c: c.update(hooks={"createRuntime": [hook]}))
    cid = rt.new_id()
    r = rt("create", "--bundle", b, cid, check=False)
    assert r.rc != 0 and r.err.strip()
    _assert_nothing_left(rt, cid, b)


def _failing_start_container(rt):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
    host = rt.hostdir("host")

    def edit(c):
        c["hooks"] = {"startContainer": [hook]}
        add_bind(c, host, "/host")
    b = rt.bundle("sh", "-c", "touch /host/ran", edit=edit)
    return rt.create(b), host / "ran"


def test_failing_start_container_hook_prevents_user_process(rt):
    cid, ran = _failing_start_container(rt)
    rt("start", cid, check=False)
    rt.wait_status(cid, "stopped") if rt.status(cid) else None
    time.sleep(0.2)
    assert not ran.exists()


def test_failing_start_container_hook_fails_start(rt):
    # runtime.md lifecycle 7: "If any startContainer hook fails, the runtime MUST generate an
    # error, stop the container, and continue the lifecycle at step 12."
    rt.runc_deviation("runc 1.1 `start` exits 0 although the startContainer hook failed "
                      "(the hook runs in the init process after `start` has returned)")
    cid, ran = _failing_start_container(rt)
    r = rt("start", cid, check=False)
    assert r.rc != 0


def test_hook_timeout_kills_hanging_hook(rt):
    d = rt.hostdir("hooks")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {d}/hang.pid; exec sleep 100"],
            "timeout": 1}
    b = rt.bundle("sleep", "100", edit=lambda c: c.update(hooks={"createRuntime": [hook]}))
    cid = rt.new_id()
    t0 = time.monotonic()
    r = rt("create", "--bundle", b, cid, check=False, timeout=30)
    took = time.monotonic() - t0
    assert r.rc != 0
    assert took < 10, f"create took {took:.1f}s with a 1s hook timeout"
    hang = int((d / "hang.pid").read_text())
    wait_for(lambda: not pid_alive(hang), timeout=5, what="the timed-out hook to be killed")
    _assert_nothing_left(rt, cid, b)


def _failing_poststop(rt):
    d = rt.hostdir("hooks")
    hooks = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},
                          {"path": "/bin/sh", "args": ["sh", "-c", f"touch {d}/second"]}]}
    b = rt.bundle("true", edit=lambda c: c.update(hooks=hooks))
    cid, _ = rt.start_container(b)
    rt.wait_status(cid, "stopped")
    return cid, d / "second", rt("delete", cid, check=False)


def test_failing_poststop_hook_does_not_fail_delete(rt):
    # runtime.md lifecycle 13: "If any poststop hook fails, the runtime MUST log a warning, but
    # the remaining hooks and lifecycle continue as if the hook had succeeded."
    cid, _, r = _failing_poststop(rt)
    assert r.rc == 0, r
    assert rt("state", cid, check=False).rc != 0


def test_failing_poststop_hook_runs_remaining_hooks(rt):
    # runtime.md lifecycle 13, as above: "the remaining hooks ... continue"
    rt.runc_deviation("runc 1.1 stops at the first failing poststop hook")
    _, second, _ = _failing_poststop(rt)
    assert second.exists()
