"""`spec` and `features`: commands that need no container."""

import json
import os
import subprocess

from conftest import edit_config, requires_root


def _run(runtime, *args, cwd=None):
    return subprocess.run([runtime, *args], capture_output=True, text=True, cwd=cwd, timeout=30)


def test_spec_writes_config_json_in_cwd(runtime, tmp_path):
    r = _run(runtime, "spec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["ociVersion"].startswith("1.")
    assert cfg["process"]["args"]
    assert cfg["root"]["path"] == "rootfs"
    assert {"type": "mount"} in cfg["linux"]["namespaces"]


def test_spec_with_bundle_option(runtime, tmp_path):
    b = tmp_path / "bdl"
    b.mkdir()
    r = _run(runtime, "spec", "--bundle", str(b), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((b / "config.json").read_text())["process"]["args"]
    assert not (tmp_path / "config.json").exists()


def test_spec_refuses_to_overwrite_existing_config(runtime, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = _run(runtime, "spec", cwd=tmp_path)
    assert r.returncode != 0
    assert (tmp_path / "config.json").read_text() == "{}"


@requires_root
def test_spec_output_runs_with_a_rootfs(rt):
    b = rt.bundle("true")
    os.remove(b / "config.json")
    r = subprocess.run([rt.binary, "spec"], cwd=b, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def edit(c):
        c["process"]["terminal"] = False
        c["process"]["args"] = ["echo", "spec-ok"]
        c["linux"]["cgroupsPath"] = f"{rt.cgroup_parent}/spec"
    edit_config(b, edit)
    res = rt("run", "--bundle", b, rt.new_id())
    assert res.out == "spec-ok\n"


def test_features_reports_capabilities_of_runtime(runtime):
    r = _run(runtime, "features")
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    assert f["ociVersionMin"].startswith("1.")
    assert f["ociVersionMax"].startswith("1.")
    assert {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop"} <= set(f["hooks"])
    assert {"bind", "rbind", "ro", "nosuid", "nodev", "noexec"} <= set(f["mountOptions"])
    assert {"pid", "network", "ipc", "uts", "mount", "user", "cgroup"} <= set(f["linux"]["namespaces"])
    assert {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"} <= set(f["linux"]["capabilities"])


def test_version_flag(runtime):
    r = _run(runtime, "--version")
    assert r.returncode == 0
    assert "spec:" in r.stdout  # runc prints "spec: 1.0.2-dev"; containerd tooling parses it
