"""linux.seccomp: actions, errnoRet and argument conditions (config-linux.md "Seccomp")."""

import signal


def seccomp(*rules, default="SCMP_ACT_ALLOW"):
    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": default, "syscalls": list(rules)}
    return edit


MKDIR_EPERM = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}


def test_seccomp_errno_blocks_syscall(rt):
    r = rt.run("mkdir", "/tmp/x", edit=seccomp(MKDIR_EPERM))
    assert r.rc != 0
    assert "Operation not permitted" in r.err


def test_seccomp_leaves_other_syscalls_alone(rt):
    r = rt.run("sh", "-c", "touch /tmp/y && echo ok", edit=seccomp(MKDIR_EPERM))
    assert r.rc == 0 and r.out == "ok\n", r


def test_seccomp_without_profile_allows_mkdir(rt):
    # control for test_seccomp_errno_blocks_syscall
    assert rt.run("mkdir", "/tmp/x").rc == 0


def test_seccomp_errno_ret_value(rt):
    rule = dict(MKDIR_EPERM, errnoRet=13)  # EACCES
    r = rt.run("mkdir", "/tmp/x", edit=seccomp(rule))
    assert r.rc != 0
    assert "Permission denied" in r.err


def test_seccomp_errno_default_is_eperm(rt):
    # config-linux.md: errnoRet "...When not set, the errnoRet defaults to EPERM."
    rule = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    r = rt.run("mkdir", "/tmp/x", edit=seccomp(rule))
    assert r.rc != 0
    assert "Operation not permitted" in r.err


def test_seccomp_kill_action(rt):
    rule = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}
    r = rt.run("mkdir", "/tmp/x", edit=seccomp(rule))
    assert r.rc == 128 + signal.SIGSYS, r


def test_seccomp_argument_condition(rt):
    # personality(PER_LINUX32 = 8) is refused; personality(PER_LINUX = 0) is not.
    rule = {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
    edit = seccomp(rule)
    r32 = rt.run("linux32", "true", edit=edit)
    assert r32.rc != 0
    assert "Operation not permitted" in r32.err
    r64 = rt.run("linux64", "true", edit=edit)
    assert r64.rc == 0, r64


def test_seccomp_argument_condition_control(rt):
    # without the profile, linux32 works here (so the refusal above is the filter's doing)
    assert rt.run("linux32", "true").rc == 0
