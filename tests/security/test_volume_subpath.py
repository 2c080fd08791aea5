"""A volume subpath swapped for a symlink between create and start (the CVE-2023-3676 class).

`create` checks the subpath; another container sharing the volume then replaces it with a
symlink to the host's /; `start` must not bind the host directory. The subpath is resolved at
each start inside the volume with every symlink refused, and mounted through that descriptor.
"""

from __future__ import annotations


def test_subpath_replaced_by_a_symlink_after_create_is_refused_at_start(engine, host_marker):
    d = engine
    d.docker("volume", "create", "subvol")
    try:
        d.docker("run", "--rm", "-v", "subvol:/v", "busybox", "mkdir", "/v/sub")
        d.docker("create", "--name", "sub-victim", "--mount", "type=volume,src=subvol,dst=/x,volume-subpath=sub",
                 "busybox", "ls", "/x")
        d.docker("run", "--rm", "-v", "subvol:/v", "busybox", "sh", "-c", "rm -rf /v/sub && ln -s / /v/sub")
        p = d.docker("start", "-a", "sub-victim", check=False)
        logs = d.docker("logs", "sub-victim", check=False)
        out = p.stdout + p.stderr + logs.stdout
        assert host_marker not in out, f"the host's / was mounted into the container:\n{out}"
        assert p.returncode != 0 and "symlink" in p.stderr, out
    finally:
        d.docker("rm", "-f", "sub-victim", check=False)
        d.docker("volume", "rm", "-f", "subvol", check=False)


def test_subpath_mounts_the_directory_and_is_released_after_exit(engine):
    d = engine
    d.docker("volume", "create", "subok")
    try:
        d.docker("run", "--rm", "-v", "subok:/v", "busybox", "sh", "-c", "mkdir -p /v/a/b && echo inside > /v/a/b/f")
        p = d.docker("run", "--rm", "--mount", "type=volume,src=subok,dst=/x,volume-subpath=a/b", "busybox", "cat", "/x/f")
        assert p.stdout.strip() == "inside"
        left = [line for line in open("/proc/self/mountinfo").read().splitlines()
                if line.split()[4].startswith(str(d.root)) and "/subpaths/" in line.split()[4]]
        assert not left, f"a subpath mount outlived its container: {left}"
    finally:
        d.docker("volume", "rm", "-f", "subok", check=False)
