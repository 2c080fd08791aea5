"""The runtime driven by containerd 1.6 (`ctr ... --runc-binary RUNTIME`), the way Docker and
Kubernetes drive runc. A private containerd (own root, state, sockets, CRI disabled) is started
for this module and torn down afterwards with every shim, mount and cgroup it left.
The same commands, as a recipe, are in CONTAINERD.md."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from conftest import IS_ROOT, MKBUNDLE, host_mountinfo, remove_cgroup_tree, wait_for

IMAGE = "docker.io/library/busybox:latest"

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="needs root: containerd, overlay mounts, cgroups"),
    pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")
                            and shutil.which("containerd-shim-runc-v2")),
                       reason="containerd, ctr and containerd-shim-runc-v2 are not installed "
                              "(apt-get install containerd)"),
]


def _tar_bytes(add) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add(t)
    return buf.getvalue()


def build_docker_archive(out: Path, workdir: Path):
    """A docker-archive (`docker save` format) of a one-layer busybox image, from the same
    rootfs the bundles use: manifest.json + config + layer tar, no network."""
    subprocess.run([str(MKBUNDLE), str(workdir / "img")], check=True)
    rootfs = workdir / "img" / "rootfs"

    def add_rootfs(t: tarfile.TarFile):
        for p in sorted(rootfs.rglob("*")):
            ti = t.gettarinfo(str(p), arcname=str(p.relative_to(rootfs)))
            ti.mtime = 0
            if ti.isreg():
                with open(p, "rb") as f:
                    t.addfile(ti, f)
            else:
                t.addfile(ti)
    layer = _tar_bytes(add_rootfs)
    layer_sha = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth integration tests"}],
    }, sort_keys=True).encode()
    config_sha = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_sha}.json", "RepoTags": ["busybox:latest"],
                            "Layers": [f"{layer_sha}/layer.tar"]}]).encode()

    def add_all(t: tarfile.TarFile):
        for name, data in ((f"{config_sha}.json", config), (f"{layer_sha}/layer.tar", layer),
                           ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            t.addfile(ti, io.BytesIO(data))
    out.write_bytes(_tar_bytes(add_all))


class Containerd:
    def __init__(self):
        self.token = secrets.token_hex(4)
        self.ns = f"berth-it-{self.token}"
        self.dir = Path(tempfile.mkdtemp(prefix="bit-ctrd-", dir="/tmp"))  # short: socket paths
        self.sock = str(self.dir / "c.sock")
        self.proc: subprocess.Popen | None = None

    def start(self):
        cfg = self.dir / "config.toml"
        cfg.write_text(f'''version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = "{self.dir}/debug.sock"
''')
        self.log = open(self.dir / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "-c", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.ctr("version", check=False).returncode == 0 or self.proc.poll() is not None,
                 timeout=30, interval=0.1, what="containerd to answer")
        if self.proc.poll() is not None:
            raise RuntimeError(f"containerd exited: {(self.dir / 'containerd.log').read_text()[-2000:]}")

    def ctr(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        p = subprocess.run(["ctr", "-a", self.sock, "-n", self.ns, *map(str, args)],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
        return p

    def remove_all(self):
        """Kill and delete every task and container of our namespace."""
        if not self.proc or self.proc.poll() is not None:
            return
        tasks = self.ctr("task", "ls", "-q", check=False).stdout.split()
        for t in tasks:
            self.ctr("task", "kill", "-s", "KILL", t, check=False)
        for t in tasks:
            self.ctr("task", "rm", "-f", t, check=False)
        for c in self.ctr("container", "ls", "-q", check=False).stdout.split():
            self.ctr("container", "rm", c, check=False)

    def _our_shims(self) -> list[int]:
        """Shims our containerd started (they outlive it): matched by our socket address."""
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and self.sock.encode() in argv:
                pids.append(int(d.name))
        return pids

    def stop(self):
        try:
            self.remove_all()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            for pid in self._our_shims():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            remove_cgroup_tree(f"/{self.ns}")
            d = str(self.dir)
            for _ in range(3):
                left = [l.split(" ")[4] for l in host_mountinfo() if l.split(" ")[4].startswith(d + "/")]
                if not left:
                    break
                for mnt in reversed(left):
                    subprocess.run(["umount", "-l", mnt], capture_output=True)
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd():
    c = Containerd()
    try:
        c.start()
        archive = c.dir / "busybox-docker-archive.tar"
        build_docker_archive(archive, c.dir)
        c.ctr("image", "import", archive)
        assert IMAGE in c.ctr("image", "ls", "-q").stdout.split()
        yield c
    finally:
        c.stop()


@pytest.fixture
def ctrd(containerd, runtime):
    """(containerd, runtime) with everything the test created removed afterwards."""
    try:
        yield containerd, runtime
    finally:
        containerd.remove_all()


def cid(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def test_ctr_run_prints_output(ctrd):
    c, runtime = ctrd
    p = c.ctr("run", "--rm", "--runc-binary", runtime, IMAGE, cid("hello"), "echo", "hello")
    assert p.stdout == "hello\n"


def test_ctr_run_passes_exit_code(ctrd):
    c, runtime = ctrd
    p = c.ctr("run", "--rm", "--runc-binary", runtime, IMAGE, cid("exit"), "sh", "-c", "exit 5",
              check=False)
    assert p.returncode == 5, p.stderr


def test_ctr_task_exec(ctrd):
    c, runtime = ctrd
    i = cid("exec")
    c.ctr("run", "-d", "--runc-binary", runtime, IMAGE, i, "sleep", "1000")
    wait_for(lambda: "RUNNING" in c.ctr("task", "ls").stdout, what="task to run")
    p = c.ctr("task", "exec", "--exec-id", "e1", i, "echo", "in-exec")
    assert p.stdout == "in-exec\n"
    pids = c.ctr("task", "ps", i).stdout.split("\n")[1:]
    assert len([l for l in pids if l.strip()]) == 1  # the exec has exited; only init is left


def test_ctr_task_kill_sigterm_stops_task(ctrd):
    c, runtime = ctrd
    i = cid("kill")
    # PID 1 of a pid namespace gets only the signals it handles: trap TERM
    c.ctr("run", "-d", "--runc-binary", runtime, IMAGE, i, "sh", "-c",
          "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    wait_for(lambda: "RUNNING" in c.ctr("task", "ls").stdout, what="task to run")
    c.ctr("task", "kill", i)

    def stopped():
        rows = [l.split() for l in c.ctr("task", "ls").stdout.splitlines()[1:]]
        return any(r[0] == i and r[-1] == "STOPPED" for r in rows)
    wait_for(stopped, timeout=15, what="task to be STOPPED")
    c.ctr("task", "rm", i)
    c.ctr("container", "rm", i)
    assert i not in c.ctr("container", "ls", "-q").stdout.split()


def test_ctr_run_memory_limit_oom(ctrd):
    c, runtime = ctrd
    p = c.ctr("run", "--rm", "--memory-limit", "50000000", "--runc-binary", runtime, IMAGE,
              cid("oom"), "sh", "-c", "head -c 200m /dev/zero | tail", check=False, timeout=120)
    assert p.returncode == 137, (p.returncode, p.stderr)


def test_ctr_uses_the_given_runtime_binary(ctrd, tmp_path):
    # A wrapper that logs its argv proves the shim called exactly the runtime under test.
    c, runtime = ctrd
    log = tmp_path / "calls"
    wrapper = tmp_path / "rt-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {runtime} "$@"\n')
    wrapper.chmod(0o755)
    c.ctr("run", "--rm", "--runc-binary", wrapper, IMAGE, cid("wrap"), "true")
    calls = log.read_text()
    for verb in ("create", "start", "delete"):
        assert f" {verb} " in f" {calls} ".replace("\n", " "), calls
