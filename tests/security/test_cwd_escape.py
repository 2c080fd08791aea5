"""The CVE-2024-21626 class: a working directory through a descriptor the runtime left open.

`-w /proc/self/fd/N` (or an image's WORKDIR, or `exec -w`) resolves through a magic link. If the
runtime holds a host directory open at chdir time (berth-runtime held the container's cgroup v2
directory), the process starts with its cwd outside the container's root and `ls ../../..`
lists the host. Every descriptor number up to 64 is tried on run, exec and create/start, and
the same bundle is run by berth-runtime directly.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import BIN, REPO

FDS = range(3, 65)
PROBE = "readlink /proc/self/cwd; ls ../../../../../../../.."


def escaped(output: str, marker: str) -> bool:
    return marker in output or "/sys/fs/cgroup" in output


def test_run_with_workdir_through_any_fd_stays_inside(engine, host_marker):
    for fd in FDS:
        p = engine.docker("run", "--rm", "-w", f"/proc/self/fd/{fd}", "busybox", "sh", "-c", PROBE, check=False)
        assert not escaped(p.stdout + p.stderr, host_marker), f"fd {fd}: escaped to the host:\n{p.stdout}{p.stderr}"


def test_create_start_with_workdir_through_any_fd_stays_inside(engine, host_marker):
    for fd in FDS:
        name = f"cwd-cs-{fd}"
        engine.docker("create", "--name", name, "-w", f"/proc/self/fd/{fd}", "busybox", "sh", "-c", PROBE)
        try:
            p = engine.docker("start", "-a", name, check=False)
            logs = engine.docker("logs", name, check=False)
            out = p.stdout + p.stderr + logs.stdout + logs.stderr
            assert not escaped(out, host_marker), f"fd {fd}: escaped to the host:\n{out}"
        finally:
            engine.docker("rm", "-f", name, check=False)


def test_exec_with_workdir_through_any_fd_stays_inside(engine, host_marker):
    engine.docker("run", "-d", "--name", "cwd-exec", "busybox", "sleep", "600")
    try:
        for fd in FDS:
            p = engine.docker("exec", "-w", f"/proc/self/fd/{fd}", "cwd-exec", "sh", "-c", PROBE, check=False)
            assert not escaped(p.stdout + p.stderr, host_marker), f"fd {fd}: escaped to the host:\n{p.stdout}{p.stderr}"
    finally:
        engine.docker("rm", "-f", "cwd-exec", check=False)


def test_image_workdir_through_an_fd_stays_inside(engine, host_marker, tmp_path):
    """An image whose WORKDIR is a magic link: the image, not the user, picks the path."""
    bundle = tmp_path / "bundle"
    subprocess.run([str(REPO / "scripts" / "mkbundle.sh"), str(bundle)], check=True, capture_output=True)
    rootfs_tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-cf", str(rootfs_tar), "."], check=True)
    for fd in (3, 4, 5, 6, 7, 8, 9, 10):
        tag = f"evil-workdir:{fd}"
        engine.docker("import", "--change", f"WORKDIR /proc/self/fd/{fd}", str(rootfs_tar), tag)
        p = engine.docker("run", "--rm", tag, "sh", "-c", PROBE, check=False)
        assert not escaped(p.stdout + p.stderr, host_marker), f"fd {fd}: escaped to the host:\n{p.stdout}{p.stderr}"


def test_runtime_bundle_cwd_through_any_fd_stays_inside(tmp_path, host_marker):
    runtime = str(BIN / "berth-runtime")
    bundle = tmp_path / "bundle"
    subprocess.run([str(REPO / "scripts" / "mkbundle.sh"), str(bundle), "sh", "-c", PROBE], check=True, capture_output=True)
    config = json.loads((bundle / "config.json").read_text())
    root = tmp_path / "state"
    for fd in FDS:
        config["process"]["cwd"] = f"/proc/self/fd/{fd}"
        (bundle / "config.json").write_text(json.dumps(config))
        p = subprocess.run([runtime, "--root", str(root), "run", "--bundle", str(bundle), f"cwd{fd}"],
                           capture_output=True, text=True, timeout=30)
        subprocess.run([runtime, "--root", str(root), "delete", "--force", f"cwd{fd}"], capture_output=True)
        assert not escaped(p.stdout + p.stderr, host_marker), f"fd {fd}: escaped to the host:\n{p.stdout}{p.stderr}"
