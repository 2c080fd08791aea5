"""The CVE-2019-5736 class: a container rewriting the host's runtime binary.

An image holds `/evil`, a script whose interpreter is `#!/proc/self/exe`. When the runtime
execs it (`docker exec c /evil`), the kernel runs the runtime's own binary inside the container.
A process already there opens that binary through /proc/PID/exe and, once the runtime has
exited, writes a script into it, which the host runs at the next runtime call. The attack runs
against copies of the binaries, so a failure can never damage the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, REPO, cleanup_daemon, start_daemon

HERE = Path(__file__).resolve().parent


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """berthd's helpers copied aside: the attack's target."""
    d = tmp_path_factory.mktemp("helpers")
    for name in ("berth-runtime", "berth-monitor", "berth-init"):
        shutil.copy2(BIN / name, d / name)
    return d


@pytest.fixture(scope="module")
def evil_rootfs(tmp_path_factory):
    """busybox, the attacker, and /evil (#!/proc/self/exe), as a rootfs tar and directory."""
    d = tmp_path_factory.mktemp("evil")
    bundle = d / "bundle"
    subprocess.run([str(REPO / "scripts" / "mkbundle.sh"), str(bundle)], check=True, capture_output=True)
    rootfs = bundle / "rootfs"
    subprocess.run(["cc", "-static", "-O2", "-o", str(rootfs / "attacker"), str(HERE / "overwrite_exe.c")], check=True)
    # The libraries the runtime loads, at their host paths, as any image with glibc has its
    # own: the kernel then gets as far as running the runtime inside the container.
    ldd = subprocess.run(["ldd", str(BIN / "berth-runtime")], capture_output=True, text=True, check=True).stdout
    for lib in {w for w in ldd.split() if w.startswith("/")}:
        dest = rootfs / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    (rootfs / "evil").write_text("#!/proc/self/exe\n")
    (rootfs / "evil").chmod(0o755)
    tar = d / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    return bundle, tar


@pytest.fixture(scope="module")
def daemon(busybox_tar, copies):
    d = start_daemon(busybox_tar, extra_args=["--runtime-path", str(copies / "berth-runtime"),
                                              "--monitor-path", str(copies / "berth-monitor"),
                                              "--init-path", str(copies / "berth-init")])
    try:
        yield d
    finally:
        cleanup_daemon(d)


def wait_for_log(d, name: str, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = d.docker("logs", name, check=False).stdout
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def assert_intact(copies: Path, before: dict, marker: Path, result: str):
    after = {name: sha256(copies / name) for name in before}
    assert not marker.exists(), f"the payload ran on the host: {result}"
    assert after == before, f"a helper binary was rewritten from inside the container: {result}"
    assert "OVERWRITTEN" not in result, result


def test_exec_of_a_proc_self_exe_script_cannot_rewrite_the_runtime(daemon, copies, evil_rootfs, tmp_path):
    _, tar = evil_rootfs
    daemon.docker("import", str(tar), "evil-image")
    before = {name: sha256(copies / name) for name in ("berth-runtime", "berth-monitor", "berth-init")}
    marker = tmp_path / "pwned"
    daemon.docker("run", "-d", "--name", "victim", "evil-image", "/attacker", str(marker))
    try:
        assert "READY" in wait_for_log(daemon, "victim", "READY")
        daemon.docker("exec", "victim", "/evil", check=False)
        result = wait_for_log(daemon, "victim", "\n", timeout=25).replace("READY\n", "")
        deadline = time.monotonic() + 25
        while not result.strip() and time.monotonic() < deadline:
            time.sleep(0.1)
            result = daemon.docker("logs", "victim", check=False).stdout.replace("READY\n", "")
        # The host runs the runtime again: a rewritten one would run the payload now.
        daemon.docker("exec", "victim", "true", check=False)
        assert_intact(copies, before, marker, result)
        assert "REFUSED write: Read-only file system" in result, f"the attack did not get as far as the runtime's binary: {result!r}"
    finally:
        daemon.docker("rm", "-f", "victim", check=False)


def test_runtime_run_directly_cannot_be_rewritten(copies, evil_rootfs, tmp_path):
    """berth-runtime driven as containerd drives it, from a writable place: it seals itself."""
    bundle, _ = evil_rootfs
    runtime = copies / "berth-runtime"
    before = {"berth-runtime": sha256(runtime)}
    marker = tmp_path / "pwned"
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/attacker", str(marker)]
    (bundle / "config.json").write_text(json.dumps(config))
    root = tmp_path / "state"
    out = tmp_path / "attacker.out"
    rt = lambda *args, **kw: subprocess.run([str(runtime), "--root", str(root), *args], timeout=30, **kw)
    try:
        with open(out, "wb") as log:
            rt("run", "--detach", "--bundle", str(bundle), "victim", stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True)
        deadline = time.monotonic() + 10
        while "READY" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        rt("exec", "victim", "/evil", capture_output=True)
        deadline = time.monotonic() + 25
        while out.read_text().strip() in ("", "READY") and time.monotonic() < deadline:
            time.sleep(0.1)
        rt("list", capture_output=True)  # the host runs the runtime again
        result = out.read_text().replace("READY\n", "")
        assert_intact(copies, before, marker, result)
        assert "REFUSED write: Read-only file system" in result, f"the attack did not get as far as the runtime's binary: {result!r}"
    finally:
        rt("delete", "--force", "victim", capture_output=True)


def test_init_binary_is_read_only_in_the_container(daemon, evil_rootfs):
    """berth-init (--init) is PID 1 inside the container, bound from the host: read-only."""
    daemon.docker("import", str(evil_rootfs[1]), "evil-image")
    p = daemon.docker("run", "--rm", "--init", "evil-image", "/attacker", "--open", "1", check=False)
    assert "REFUSED write: Read-only file system" in p.stdout, p.stdout + p.stderr


def test_monitor_is_out_of_reach_with_the_host_pid_namespace(daemon, evil_rootfs):
    """With --pid host a container sees berth-monitor; it must not open its executable."""
    daemon.docker("import", str(evil_rootfs[1]), "evil-image")
    daemon.docker("run", "-d", "--name", "sleeper", "busybox", "sleep", "60")
    try:
        monitors = [pid for pid in os.listdir("/proc") if pid.isdigit()
                    and b"berth-monitor" in Path(f"/proc/{pid}/cmdline").read_bytes()[:200]
                    and str(daemon.root) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        assert monitors, "no berth-monitor found for the running container"
        p = daemon.docker("run", "--rm", "--pid", "host", "evil-image", "/attacker", "--open", monitors[0], check=False)
        assert "REFUSED" in p.stdout, p.stdout + p.stderr
    finally:
        daemon.docker("rm", "-f", "sleeper", check=False)


def test_container_process_is_not_dumpable_before_its_execve(tmp_path):
    """Until execve the container's process is the runtime with host files open: a process in
    the container (here a startContainer hook, which runs in it just before the execve) must
    not reach its /proc/PID/exe."""
    runtime = str(BIN / "berth-runtime")
    bundle = tmp_path / "bundle"
    subprocess.run([str(REPO / "scripts" / "mkbundle.sh"), str(bundle), "true"], check=True, capture_output=True)
    config = json.loads((bundle / "config.json").read_text())
    probe = 'readlink /proc/$PPID/exe > /tmp/parent-exe 2>&1; echo rc=$? >> /tmp/parent-exe'
    config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", probe]}]}
    (bundle / "config.json").write_text(json.dumps(config))
    root = tmp_path / "state"
    p = subprocess.run([runtime, "--root", str(root), "run", "--bundle", str(bundle), "dump"],
                       capture_output=True, text=True, timeout=30)
    subprocess.run([runtime, "--root", str(root), "delete", "--force", "dump"], capture_output=True)
    seen = (bundle / "rootfs" / "tmp" / "parent-exe").read_text()
    assert "rc=0" not in seen and "berth-runtime" not in seen, f"the runtime's executable was reachable: {seen}{p.stderr}"
