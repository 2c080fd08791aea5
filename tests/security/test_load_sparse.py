"""`docker load` of a small archive holding a huge sparse entry (issue 10, item 6).

A sparse tar entry stores only its data and a map of holes: a few KB can claim gigabytes or
terabytes. berthd must write the holes without holding them in memory, and refuse an archive
that claims more than the data root's disk has free, cleanly: a clear error, the daemon alive,
nothing left behind. GNU tar writes the entries (old GNU and PAX 1.0 sparse formats).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Daemon

DOCKER = os.environ.get("DOCKER", "/usr/local/bin/docker")
# berthd's peak memory may grow by this much while loading; the old code grew by the entry's size.
HWM_BOUND = 64 << 20

pytestmark = pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason=f"docker CLI not found at {DOCKER}")


def memory(d: Daemon, field: str) -> int:
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def reset_peak(d: Daemon) -> int:
    """Resets berthd's peak resident memory (VmHWM) to its current size, and returns that."""
    Path(f"/proc/{d.proc.pid}/clear_refs").write_text("5")
    return memory(d, "VmHWM")


def sparse_tar(tmp: Path, size: int, fmt: str) -> Path:
    """An archive of one sparse file of `size` bytes with 4 KiB of data at its end."""
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    big = src / "big"
    with open(big, "wb") as f:
        f.truncate(size)
        f.seek(size - 4096)
        f.write(b"x" * 4096)
    out = tmp / f"sparse-{fmt}.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", str(out), "big"], check=True)
    big.unlink()
    assert out.stat().st_size < 64 << 10, "the archive itself must stay small"
    return out


def load(d: Daemon, archive: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(d.root / "docker-config")
    return subprocess.run([DOCKER, "-H", d.host, "load", "-i", str(archive)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def stored_files(d: Daemon) -> list[str]:
    """The content store's blobs and ingest files, and the data root's temporary files: a
    refused load must add none (its garbage collection may remove earlier garbage)."""
    roots = [d.data_root / "images" / "content", d.data_root / "tmp"]
    return sorted(str(p) for r in roots if r.is_dir() for p in r.rglob("*") if p.is_file())


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_entry_is_loaded_without_holding_its_holes_in_memory(engine, tmp_path, fmt):
    archive = sparse_tar(tmp_path, 256 << 20, fmt)
    files = stored_files(engine)
    before = reset_peak(engine)
    p = load(engine, archive)
    assert engine.proc.poll() is None, f"berthd died:\n{engine.log()[-2000:]}"
    grown = memory(engine, "VmHWM") - before
    assert grown < HWM_BOUND, f"a {archive.stat().st_size}-byte archive raised berthd's peak memory by {grown >> 20} MiB"
    # No manifest.json: refused as Docker does, after reading it all.
    assert p.returncode != 0 and "manifest.json" in p.stderr, p.stderr
    assert set(stored_files(engine)) <= set(files)


@pytest.fixture
def small_disk_daemon(make_daemon, workdir):
    """A berthd whose data root is a 256 MiB tmpfs: the refusal is tested against that free
    space, and should it ever fail, the writes stop there instead of filling the machine's disk."""
    data = workdir / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(data)], check=True)
    try:
        d = make_daemon()
        d.start()
        yield d
        d.stop()
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_archive_claiming_more_than_the_free_disk_is_refused_cleanly(small_disk_daemon, tmp_path):
    d = small_disk_daemon
    st = os.statvfs(d.data_root)
    archive = sparse_tar(tmp_path, st.f_bavail * st.f_frsize + (1 << 30), "posix")
    files = stored_files(d)
    before = reset_peak(d)
    started = time.monotonic()
    p = load(d, archive)
    assert d.proc.poll() is None, f"berthd died:\n{d.log()[-2000:]}"
    assert p.returncode != 0, p.stdout
    assert "No space left on device" in p.stderr and "Error processing tar file" in p.stderr, p.stderr
    assert time.monotonic() - started < 10, "refused only after writing"
    assert memory(d, "VmHWM") - before < HWM_BOUND
    assert set(stored_files(d)) <= set(files)
    assert d.docker("images", "-q").stdout == ""
    after = os.statvfs(d.data_root)
    assert abs(after.f_bavail - st.f_bavail) * after.f_frsize < 1 << 20, "the refused archive left data behind"
