"""A container that nests directories very deeply must not take berthd down when berthd sizes
its writable layer (`docker ps -s`, `system df`) or removes it: neither walk costs berthd a
descriptor and a stack frame per level."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def test_sizing_a_deeply_nested_writable_layer_keeps_berthd_up(engine, tmp_path):
    d = engine
    nest = tmp_path / "nest"
    subprocess.run(["cc", "-static", "-O2", "-o", str(nest), str(Path(__file__).parent / "deep_tree.c")], check=True)
    d.docker("run", "--name", "deep", "-v", f"{nest}:/nest:ro", "-w", "/root", "busybox", "/nest", "30000")
    cid = d.docker("inspect", "--format", "{{.Id}}", "deep").stdout.strip()
    upper = str(d.data_root / "images" / "containers" / cid / "upper")
    try:
        p = d.docker("ps", "-a", "-s", "--filter", "name=deep", "--format", "{{.Size}}", check=False)
        assert p.returncode == 0, p.stderr
        status, _, body = d.request("GET", "/system/df")
        assert status == 200, body
        assert d.proc.poll() is None, d.log()
        assert any(c["Names"] == ["/deep"] for c in json.loads(body)["Containers"])
        removed = d.docker("rm", "-f", "deep", check=False)
        assert removed.returncode == 0 and d.proc.poll() is None, removed.stderr + d.log()
        assert not Path(upper).exists(), "the writable layer was not removed"
    finally:
        d.docker("rm", "-f", "deep", check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", upper], check=False)  # Python's rmtree recurses
