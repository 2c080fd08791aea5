"""berthd reading files a container controls: /etc/passwd and /etc/group (issue 10, item 5).

berthd resolves `--user name` at create from the image's layers and `exec -u name` from the
running container's root filesystem. A hostile image or container makes /etc/passwd a symlink
to a host file (berthd must not use the host's entries), a fifo (create and exec must not
hang, nor with them every other request), or /dev/zero, as a device node or a symlink
(berthd's memory must not grow). Each attack is performed for real against berthd.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import Daemon

DOCKER = os.environ.get("DOCKER", "/usr/local/bin/docker")
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
USER = f"hostonly{secrets.token_hex(3)}"
GROUP = f"hostgrp{secrets.token_hex(3)}"
# berthd's resident memory may grow by this much during an attack; reading /dev/zero grows it
# by gigabytes within seconds, and the watchdog kills berthd well before that hurts the machine.
RSS_BOUND = 64 << 20
RSS_KILL = 400 << 20

pytestmark = pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason=f"docker CLI not found at {DOCKER}")


@pytest.fixture(scope="module")
def host_files():
    """Host files whose entries no container may ever resolve: a user and a group."""
    d = Path(f"/tmp/berth-hostdb-{secrets.token_hex(4)}")
    d.mkdir()
    (d / "passwd").write_text(f"{USER}:x:4242:4242::/:/bin/sh\n")
    (d / "group").write_text(f"{GROUP}:x:4343:{USER}\n")
    yield d
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


def rss(d: Daemon) -> int:
    """berthd's resident set in bytes (`nsenter` execs berthd in place, so the pid is its own)."""
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def docker_bounded(d: Daemon, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """`docker ARGS` that must finish within `timeout` while berthd's memory stays within
    RSS_BOUND; berthd is killed if it runs away, so a vulnerable daemon fails the test, not the
    machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(d.root / "docker-config")
    before = rss(d)
    p = subprocess.Popen([DOCKER, "-H", d.host, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    peak = before
    while p.poll() is None:
        peak = max(peak, rss(d))
        if peak - before > RSS_KILL:
            d.proc.kill()
            p.kill()
            p.communicate()
            raise AssertionError(f"docker {' '.join(args)}: berthd grew by {(peak - before) >> 20} MiB; killed it")
        if time.monotonic() > deadline:
            p.kill()
            p.communicate()
            raise AssertionError(f"docker {' '.join(args)} did not return within {timeout}s (berthd blocked)")
        time.sleep(0.02)
    out, err = p.communicate()
    peak = max(peak, rss(d))
    assert peak - before < RSS_BOUND, f"docker {' '.join(args)}: berthd grew by {(peak - before) >> 20} MiB"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def import_image(d: Daemon, tmp: Path, name: str, passwd: tarfile.TarInfo, group: tarfile.TarInfo | None = None,
                 files: dict[str, bytes] | None = None) -> str:
    """A busybox image (via `docker import`) whose /etc/passwd (and /etc/group) is `passwd`,
    with `files` added."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for dir_ in ("bin", "etc", "tmp"):
            info = tarfile.TarInfo(dir_)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        t.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "true", "id", "sleep", "grep"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        for entry in (passwd, group):
            if entry is not None:
                t.addfile(entry)
        for path, content in (files or {}).items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), 0o644
            t.addfile(info, io.BytesIO(content))
    path = tmp / f"{name}.tar"
    path.write_bytes(buf.getvalue())
    d.docker("import", str(path), f"{name}:latest")
    return f"{name}:latest"


def symlink_entry(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def special_entry(name: str, kind: bytes, major: int = 0, minor: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.devmajor, info.devminor = kind, 0o644, major, minor
    return info


def assert_daemon_answers(d: Daemon):
    p = docker_bounded(d, "ps", "-a", timeout=5)
    assert p.returncode == 0, p.stderr


# --- at create, from the image's layers --------------------------------------------------

def test_image_passwd_symlink_to_a_host_file_does_not_resolve_the_hosts_user(engine, host_files, tmp_path):
    image = import_image(engine, tmp_path, "pwlink", symlink_entry("etc/passwd", str(host_files / "passwd")),
                         symlink_entry("etc/group", str(host_files / "group")))
    try:
        p = docker_bounded(engine, "create", "--name", "pwlink-user", "-u", USER, image, "true")
        assert p.returncode != 0, f"berthd resolved {USER} from the host's {host_files}/passwd"
        assert f"unable to find user {USER}" in p.stderr, p.stderr
        p = docker_bounded(engine, "create", "--name", "pwlink-group", "-u", f"0:{GROUP}", image, "true")
        assert p.returncode != 0, f"berthd resolved {GROUP} from the host's {host_files}/group"
        assert f"unable to find group {GROUP}" in p.stderr, p.stderr
    finally:
        engine.docker("rm", "-f", "pwlink-user", "pwlink-group", check=False)
        engine.docker("rmi", "-f", image, check=False)


def test_image_passwd_symlink_inside_the_image_still_resolves(engine, tmp_path):
    """The control: a link that stays in the image is followed there, as dockerd does."""
    image = import_image(engine, tmp_path, "pwinside", symlink_entry("etc/passwd", "/etc/passwd.real"),
                         files={"etc/passwd.real": b"inimage:x:4545:4545::/:/bin/sh\n"})
    try:
        p = docker_bounded(engine, "run", "--rm", "-u", "inimage", image, "grep", "^Uid:", "/proc/self/status")
        assert p.returncode == 0 and p.stdout.split()[1:2] == ["4545"], p.stdout + p.stderr
    finally:
        engine.docker("rmi", "-f", image, check=False)


def test_image_passwd_fifo_neither_blocks_create_nor_other_requests(engine, tmp_path):
    image = import_image(engine, tmp_path, "pwfifo", special_entry("etc/passwd", tarfile.FIFOTYPE))
    try:
        p = docker_bounded(engine, "create", "--name", "pwfifo-c", image, "true")
        assert p.returncode == 0, p.stderr
        p = docker_bounded(engine, "create", "--name", "pwfifo-u", "-u", "daemon", image, "true")
        assert p.returncode != 0 and "fifo, not a regular file" in p.stderr, p.stderr
        assert_daemon_answers(engine)
    finally:
        engine.docker("rm", "-f", "pwfifo-c", "pwfifo-u", check=False)
        engine.docker("rmi", "-f", image, check=False)


@pytest.mark.parametrize("kind", ["device", "symlink"])
def test_image_passwd_dev_zero_does_not_grow_berthds_memory(engine, tmp_path, kind):
    entry = (special_entry("etc/passwd", tarfile.CHRTYPE, 1, 5) if kind == "device"
             else symlink_entry("etc/passwd", "/dev/zero"))
    image = import_image(engine, tmp_path, f"pwzero{kind}", entry)
    try:
        p = docker_bounded(engine, "create", "--name", f"pwzero-{kind}", "-u", "daemon", image, "true")
        assert p.returncode != 0 and "unable to find user daemon" in p.stderr, p.stderr
        assert_daemon_answers(engine)
    finally:
        engine.docker("rm", "-f", f"pwzero-{kind}", check=False)
        engine.docker("rmi", "-f", image, check=False)


# --- at exec, from the running container's root filesystem --------------------------------

@pytest.fixture
def box(engine):
    name = f"pwbox{secrets.token_hex(3)}"
    engine.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    try:
        yield name
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_exec_user_after_the_container_links_passwd_to_a_host_file(engine, host_files, box):
    engine.docker("exec", box, "sh", "-c",
                  f"ln -sf {host_files}/passwd /etc/passwd && ln -sf {host_files}/group /etc/group")
    p = docker_bounded(engine, "exec", "-u", USER, box, "id", "-u")
    assert "4242" not in p.stdout, f"berthd resolved {USER} from the host's passwd file"
    # exec reports a failed start on its output stream, with exit code 126, as dockerd does.
    assert p.returncode != 0 and f"unable to find user {USER}" in p.stdout + p.stderr, p.stdout + p.stderr
    p = docker_bounded(engine, "exec", "-u", f"0:{GROUP}", box, "id", "-g")
    assert "4343" not in p.stdout, f"berthd resolved {GROUP} from the host's group file"


@pytest.mark.parametrize("replacement", ["mkfifo /etc/passwd", "mknod /etc/passwd c 1 5", "ln -s /dev/zero /etc/passwd"],
                         ids=["fifo", "device", "symlink"])
def test_exec_user_after_the_container_replaces_passwd_neither_blocks_nor_grows_memory(engine, box, replacement):
    engine.docker("exec", box, "sh", "-c", f"rm /etc/passwd && {replacement}")
    p = docker_bounded(engine, "exec", "-u", "daemon", box, "id", "-u")
    assert p.returncode != 0 and "unable to find user daemon" in p.stdout + p.stderr, p.stdout + p.stderr
    # A numeric user needs no lookup: it still runs (`id` would read the fifo itself).
    p = docker_bounded(engine, "exec", "-u", "1", box, "grep", "^Uid:", "/proc/self/status")
    assert p.returncode == 0 and p.stdout.split()[1:2] == ["1"], p.stdout + p.stderr
    assert_daemon_answers(engine)
