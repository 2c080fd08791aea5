"""Volumes and mounts end to end: named and anonymous volumes, copy-up from the image, binds,
tmpfs, --volumes-from and the volume API, driven by the real docker CLI and the Python SDK
against a real berthd running real containers."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

import docker
import pytest

from conftest import BUILD, Daemon, cleanup_daemon, requires_docker_cli

pytestmark = requires_docker_cli


# --- helpers ----------------------------------------------------------------------------------

def inspect(engine, *args: str):
    return json.loads(engine.docker("inspect", *args).stdout)


def volume_names(engine) -> set[str]:
    return set(engine.docker("volume", "ls", "-q").stdout.split())


@pytest.fixture
def cleanup(engine):
    """Names of containers and volumes a test makes; removed afterwards even if it failed."""
    made = {"containers": [], "volumes": []}
    yield made
    for c in made["containers"]:
        engine.request("DELETE", f"/containers/{c}?force=1&v=1")
    for v in made["volumes"]:
        engine.request("DELETE", f"/volumes/{v}?force=1")


def tar_entry(t: tarfile.TarFile, name: str, kind=tarfile.REGTYPE, data: bytes = b"", mode=0o644,
              uid=0, gid=0, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname, info.size = kind, mode, uid, gid, link, len(data)
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.fixture(scope="module")
def volume_image(engine, busybox_tar, tmp_path_factory) -> str:
    """busybox plus a layer with /data (owned 1000:1000, mode 0750, a file and an absolute
    symlink) and `VOLUME /data` in its config, as `docker load` takes it."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        tar_entry(t, "data", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000)
        tar_entry(t, "data/hello", data=b"from the image\n", mode=0o640, uid=1000, gid=1000)
        tar_entry(t, "data/link", tarfile.SYMTYPE, link="/etc/passwd")
    layer = layer_buf.getvalue()
    layer_digest = hashlib.sha256(layer).hexdigest()
    with tarfile.open(busybox_tar) as src:
        manifest = json.load(src.extractfile("manifest.json"))[0]
        config = json.load(src.extractfile(manifest["Config"]))
        base_layers = [(name, src.extractfile(name).read()) for name in manifest["Layers"]]
    config["config"]["Volumes"] = {"/data": {}}
    config["rootfs"]["diff_ids"].append("sha256:" + layer_digest)
    config_bytes = json.dumps(config).encode()
    config_name = "blobs/sha256/" + hashlib.sha256(config_bytes).hexdigest()
    layer_name = "blobs/sha256/" + layer_digest
    new_manifest = [{"Config": config_name, "RepoTags": ["voltest:latest"],
                     "Layers": manifest["Layers"] + [layer_name]}]
    path = tmp_path_factory.mktemp("volimg") / "voltest.tar"
    with tarfile.open(path, "w") as t:
        for name, data in base_layers + [(layer_name, layer), (config_name, config_bytes),
                                         ("manifest.json", json.dumps(new_manifest).encode())]:
            tar_entry(t, name, data=data)
    engine.docker("load", "-i", str(path))
    return "voltest:latest"


# --- the volume API -----------------------------------------------------------------------------

def test_volume_create_ls_inspect_rm_lifecycle(engine, cleanup):
    cleanup["volumes"].append("life1")
    assert engine.docker("volume", "create", "--label", "team=a", "life1").stdout.strip() == "life1"
    # Creating an existing name again is no error and changes nothing.
    assert engine.docker("volume", "create", "life1").stdout.strip() == "life1"
    assert "life1" in volume_names(engine)
    assert engine.docker("volume", "ls", "-q", "--filter", "label=team=a").stdout.split() == ["life1"]
    assert engine.docker("volume", "ls", "-q", "--filter", "label=team=b").stdout.split() == []
    assert "life1" in engine.docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    assert "life1" in engine.docker("volume", "ls", "-q", "--filter", "name=ife").stdout.split()

    [v] = json.loads(engine.docker("volume", "inspect", "life1").stdout)
    assert v["Name"] == "life1" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Labels"] == {"team": "a"}
    assert v["Mountpoint"] == str(engine.data_root / "volumes" / "life1" / "_data")
    assert Path(v["Mountpoint"]).is_dir()
    assert v["CreatedAt"].endswith("Z")

    engine.docker("volume", "rm", "life1")
    assert "life1" not in volume_names(engine)
    assert not (engine.data_root / "volumes" / "life1").exists()
    p = engine.docker("volume", "inspect", "life1", check=False)
    assert p.returncode != 0 and "get life1: no such volume" in p.stderr
    status, _, body = engine.request("DELETE", "/volumes/life1")
    assert status == 404 and json.loads(body)["message"] == "get life1: no such volume"
    # force makes an unknown name no error.
    engine.docker("volume", "rm", "-f", "life1")


def test_volume_create_refuses_bad_names_and_options_with_400(engine):
    for body, message in [({"Name": "a"}, "includes invalid characters"),
                          ({"Name": "x1", "DriverOpts": {"bogus": "1"}}, 'invalid option: "bogus"'),
                          ({"Name": "x1", "Driver": "nfs"}, "plugin \"nfs\" not found")]:
        status, _, raw = engine.request("POST", "/volumes/create", json.dumps(body),
                                        {"Content-Type": "application/json"})
        assert status in (400, 404) and message in json.loads(raw)["message"], (body, raw)
    assert "x1" not in volume_names(engine)


def test_unnamed_volume_create_gets_a_random_64_hex_name(engine, cleanup):
    name = engine.docker("volume", "create").stdout.strip()
    cleanup["volumes"].append(name)
    assert len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def test_removing_a_volume_in_use_is_409_naming_the_container(engine, cleanup):
    cleanup["volumes"].append("busy1")
    cid = engine.docker("create", "-v", "busy1:/d", "busybox", "true").stdout.strip()
    cleanup["containers"].append(cid)
    p = engine.docker("volume", "rm", "busy1", check=False)
    assert p.returncode != 0 and f"remove busy1: volume is in use - [{cid}]" in p.stderr
    status, _, _ = engine.request("DELETE", "/volumes/busy1?force=1")
    assert status == 409
    assert "busy1" not in engine.docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    engine.docker("rm", cid)
    engine.docker("volume", "rm", "busy1")


def test_prune_removes_unused_anonymous_volumes_and_named_ones_only_with_all(engine, cleanup):
    cleanup["volumes"] += ["keep1", "prune1"]
    engine.docker("volume", "create", "keep1")
    cid = engine.docker("create", "-v", "/anon", "-v", "prune1:/p", "busybox", "true").stdout.strip()
    cleanup["containers"].append(cid)
    [anon] = [m["Name"] for m in inspect(engine, cid)[0]["Mounts"] if m["Destination"] == "/anon"]
    cleanup["volumes"].append(anon)
    # In use: nothing of this container's goes.
    engine.docker("volume", "prune", "-f")
    assert {anon, "prune1", "keep1"} <= volume_names(engine)
    engine.docker("rm", cid)
    out = engine.docker("volume", "prune", "-f").stdout
    assert anon in out
    names = volume_names(engine)
    assert anon not in names and {"keep1", "prune1"} <= names
    status, _, body = engine.request("POST", "/volumes/prune?filters="
                                      + urllib.parse.quote(json.dumps({"all": ["true"], "label!": ["nope"]})))
    assert status == 200
    assert {"keep1", "prune1"} <= set(json.loads(body)["VolumesDeleted"])
    assert not {"keep1", "prune1"} & volume_names(engine)


# --- volumes in containers ----------------------------------------------------------------------

def test_named_volume_is_created_on_first_use_and_its_data_outlives_containers(engine, cleanup):
    cleanup["volumes"].append("keep2")
    engine.docker("run", "--rm", "-v", "keep2:/data", "busybox", "sh", "-c", "echo hello > /data/f")
    assert "keep2" in volume_names(engine)
    assert engine.docker("run", "--rm", "-v", "keep2:/data", "busybox", "cat", "/data/f").stdout == "hello\n"
    # --rm removes anonymous volumes only: the named one is still there.
    assert "keep2" in volume_names(engine)


def test_named_volume_data_survives_a_daemon_restart(busybox_tar):
    root = Path(tempfile.mkdtemp(prefix="berthd-", dir="/tmp"))
    args = ["--runtime-path", str(BUILD / "berth-runtime"), "--monitor-path", str(BUILD / "berth-monitor")]
    first = Daemon(root, extra_args=args)
    second = Daemon(root, extra_args=args)
    try:
        first.start()
        first.docker("load", "-i", str(busybox_tar))
        first.docker("run", "--rm", "-v", "durable:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
        assert first.stop() == 0
        second.start()
        assert "durable" in second.docker("volume", "ls", "-q").stdout.split()
        out = second.docker("run", "--rm", "-v", "durable:/data", "busybox", "cat", "/data/f").stdout
        assert out == "persisted\n"
    finally:
        first.stop()
        first.close()
        cleanup_daemon(second if second.proc is not None else first)


def test_new_volume_is_filled_from_the_image_unless_nocopy(engine, cleanup):
    cleanup["volumes"] += ["etc1", "etc2"]
    out = engine.docker("run", "--rm", "-v", "etc1:/etc", "busybox", "cat", "/etc/passwd").stdout
    assert out.startswith("root:")
    [v] = json.loads(engine.docker("volume", "inspect", "etc1").stdout)
    assert (Path(v["Mountpoint"]) / "passwd").read_text() == out
    # A volume that has content is not filled again.
    engine.docker("run", "--rm", "-v", "etc1:/etc", "busybox", "rm", "/etc/passwd")
    assert engine.docker("run", "--rm", "-v", "etc1:/etc", "busybox", "test", "-e", "/etc/passwd", check=False).returncode == 1
    p = engine.docker("run", "--rm", "--mount", "type=volume,src=etc2,dst=/etc,volume-nocopy", "busybox",
                      "test", "-e", "/etc/passwd", check=False)
    assert p.returncode == 1, p.stderr


def test_image_volume_gets_an_anonymous_volume_filled_with_owners_modes_and_symlinks(engine, cleanup, volume_image):
    cid = engine.docker("create", volume_image, "sh", "-c",
                        "stat -c '%u:%g %a' /data /data/hello; readlink /data/link; cat /data/hello").stdout.strip()
    cleanup["containers"].append(cid)
    [m] = inspect(engine, cid)[0]["Mounts"]
    assert m["Type"] == "volume" and m["Destination"] == "/data" and m["Driver"] == "local" and m["RW"] is True
    assert len(m["Name"]) == 64
    [v] = json.loads(engine.docker("volume", "inspect", m["Name"]).stdout)
    assert v["Labels"] == {"com.docker.volume.anonymous": ""}
    engine.docker("start", cid)
    assert engine.docker("wait", cid).stdout.strip() == "0"
    logs = engine.docker("logs", cid).stdout
    assert logs == "1000:1000 750\n1000:1000 640\n/etc/passwd\nfrom the image\n"
    # `rm -v` takes the anonymous volume with the container.
    engine.docker("rm", "-v", cid)
    assert m["Name"] not in volume_names(engine)


def test_anonymous_volume_for_dash_v_path_is_removed_by_rm_v_only(engine, cleanup):
    kept = engine.docker("create", "-v", "/scratch", "busybox", "true").stdout.strip()
    gone = engine.docker("create", "-v", "/scratch", "busybox", "true").stdout.strip()
    cleanup["containers"] += [kept, gone]
    [kept_vol] = [m["Name"] for m in inspect(engine, kept)[0]["Mounts"]]
    [gone_vol] = [m["Name"] for m in inspect(engine, gone)[0]["Mounts"]]
    cleanup["volumes"] += [kept_vol, gone_vol]
    assert kept_vol != gone_vol and {kept_vol, gone_vol} <= volume_names(engine)
    engine.docker("rm", kept)
    engine.docker("rm", "-v", gone)
    names = volume_names(engine)
    assert kept_vol in names and gone_vol not in names
    # `run --rm` also removes its anonymous volumes.
    before = volume_names(engine)
    engine.docker("run", "--rm", "-v", "/tmpdata", "busybox", "true")
    assert volume_names(engine) == before


def test_bind_mounts_read_only_and_read_write(engine, cleanup, tmp_path):
    host = tmp_path / "share"
    host.mkdir()
    (host / "in").write_text("from host\n")
    p = engine.docker("run", "--rm", "-v", f"{host}:/h:ro", "busybox", "sh", "-c", "cat /h/in; touch /h/x", check=False)
    assert p.returncode != 0 and p.stdout == "from host\n" and "Read-only file system" in p.stderr
    assert not (host / "x").exists()
    engine.docker("run", "--rm", "-v", f"{host}:/h", "busybox", "sh", "-c", "echo back > /h/out")
    assert (host / "out").read_text() == "back\n"
    engine.docker("run", "--rm", "--mount", f"type=bind,src={host},dst=/m,readonly", "busybox", "cat", "/m/in")
    # -v creates a missing host directory, as Docker's legacy binds do.
    missing = tmp_path / "made" / "by" / "v"
    engine.docker("run", "--rm", "-v", f"{missing}:/n", "busybox", "true")
    assert missing.is_dir()


def test_mount_bind_with_missing_source_is_400_and_creates_nothing(engine):
    before_volumes = volume_names(engine)
    before_containers = set(engine.docker("ps", "-aq").stdout.split())
    body = {"Image": "busybox", "Cmd": ["true"],
            "HostConfig": {"Binds": ["fresh1:/v"],
                           "Mounts": [{"Type": "bind", "Source": "/no/such/path", "Target": "/x"}]}}
    status, _, raw = engine.request("POST", "/containers/create", json.dumps(body), {"Content-Type": "application/json"})
    assert status == 400
    assert json.loads(raw)["message"] == 'invalid mount config for type "bind": bind source path does not exist: /no/such/path'
    p = engine.docker("run", "--mount", "type=bind,src=/no/such/path,dst=/x", "busybox", "true", check=False)
    assert p.returncode == 125 and "bind source path does not exist: /no/such/path" in p.stderr
    assert volume_names(engine) == before_volumes
    assert set(engine.docker("ps", "-aq").stdout.split()) == before_containers
    assert not list((engine.data_root / "volumes").glob(".*"))


def test_bad_mount_specs_are_400_naming_the_problem(engine):
    for args, message in [(["-v", "/a:/x", "-v", "/b:/x"], "Duplicate mount point: /x"),
                          (["-v", "/a:rel"], "mount path must be absolute"),
                          (["--mount", "type=tmpfs,src=x,dst=/x"], "field Source must not be specified"),
                          (["-v", "/a:/x:bogus"], "invalid mode: bogus")]:
        p = engine.docker("create", *args, "busybox", "true", check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
    # What the CLI itself refuses, sent as the API gets it.
    for host_config, message in [
            ({"Mounts": [{"Type": "volume", "Source": "v1", "Target": "/x", "BindOptions": {"Propagation": "shared"}}]},
             'invalid mount config for type "volume": field BindOptions must not be specified'),
            ({"VolumesFrom": ["nosuchcontainer"]}, "No such container: nosuchcontainer"),
            ({"VolumesFrom": ["x:bad"]}, 'invalid VolumesFrom: "x:bad"')]:
        status, _, raw = engine.request("POST", "/containers/create",
                                        json.dumps({"Image": "busybox", "HostConfig": host_config}),
                                        {"Content-Type": "application/json"})
        assert status in (400, 404) and message in json.loads(raw)["message"], (host_config, raw)


def test_tmpfs_mounts_have_their_size_and_mode_in_proc_mounts(engine):
    out = engine.docker("run", "--rm", "--tmpfs", "/run1:size=1m,mode=1770",
                        "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2097152,tmpfs-mode=0700",
                        "busybox", "cat", "/proc/mounts").stdout
    lines = {line.split()[1]: line for line in out.splitlines()}
    assert lines["/run1"].split()[2] == "tmpfs" and "size=1024k" in lines["/run1"] and "mode=1770" in lines["/run1"]
    assert "noexec" in lines["/run1"] and "nosuid" in lines["/run1"]
    assert lines["/t2"].split()[2] == "tmpfs" and "size=2048k" in lines["/t2"] and "mode=700" in lines["/t2"]


def test_local_driver_tmpfs_volume_is_mounted_while_used(engine, cleanup):
    cleanup["volumes"].append("mem1")
    engine.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=3m", "mem1")
    [v] = json.loads(engine.docker("volume", "inspect", "mem1").stdout)
    assert v["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=3m"}
    cid = engine.docker("create", "-v", "mem1:/m", "busybox", "sh", "-c", "grep ' /m ' /proc/mounts").stdout.strip()
    cleanup["containers"].append(cid)
    engine.docker("start", cid)
    assert engine.docker("wait", cid).stdout.strip() == "0"
    assert "size=3072k" in engine.docker("logs", cid).stdout
    engine.docker("rm", cid)
    host_mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert v["Mountpoint"] not in host_mounts


def test_volumes_from_shares_mounts_with_an_ro_override(engine, cleanup):
    cleanup["volumes"].append("shared1")
    src = engine.docker("create", "--name", "vfsrc", "-v", "shared1:/shared", "busybox", "true").stdout.strip()
    cleanup["containers"].append(src)
    engine.docker("run", "--rm", "--volumes-from", "vfsrc", "busybox", "sh", "-c", "echo via-from > /shared/f")
    p = engine.docker("run", "--rm", "--volumes-from", "vfsrc:ro", "busybox", "sh", "-c", "cat /shared/f; touch /shared/g",
                      check=False)
    assert p.stdout == "via-from\n" and p.returncode != 0 and "Read-only file system" in p.stderr
    cid = engine.docker("create", "--volumes-from", "vfsrc:ro", "busybox", "true").stdout.strip()
    cleanup["containers"].append(cid)
    [m] = inspect(engine, cid)[0]["Mounts"]
    assert (m["Name"], m["Destination"], m["RW"]) == ("shared1", "/shared", False)


def test_inspect_mounts_have_dockers_mountpoint_shape(engine, cleanup, tmp_path):
    cleanup["volumes"].append("shape1")
    cid = engine.docker("create", "-v", "shape1:/v", "-v", f"{tmp_path}:/b:ro",
                        "--mount", "type=tmpfs,dst=/t", "busybox", "true").stdout.strip()
    cleanup["containers"].append(cid)
    mounts = {m["Destination"]: m for m in inspect(engine, cid)[0]["Mounts"]}
    assert mounts["/v"] == {"Type": "volume", "Name": "shape1", "Driver": "local", "Destination": "/v", "Mode": "z",
                            "RW": True, "Propagation": "",
                            "Source": str(engine.data_root / "volumes" / "shape1" / "_data")}
    assert mounts["/b"] == {"Type": "bind", "Source": str(tmp_path), "Destination": "/b", "Mode": "ro", "RW": False,
                            "Propagation": "rprivate"}
    assert mounts["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
                            "Propagation": ""}
    [row] = [c for c in json.loads(engine.request("GET", "/containers/json?all=1")[2]) if c["Id"] == cid]
    assert {m["Destination"] for m in row["Mounts"]} == {"/v", "/b", "/t"}


# --- the Python SDK -----------------------------------------------------------------------------

def test_sdk_volumes_create_get_list_remove(engine, cleanup):
    cleanup["volumes"].append("sdkvol")
    client = docker.DockerClient(base_url=engine.host, version="1.47", timeout=60)
    try:
        vol = client.volumes.create(name="sdkvol", driver="local", labels={"who": "sdk"})
        assert vol.name == "sdkvol" and vol.attrs["Labels"] == {"who": "sdk"}
        assert client.volumes.get("sdkvol").attrs["Mountpoint"] == vol.attrs["Mountpoint"]
        assert [v.name for v in client.volumes.list(filters={"label": "who=sdk"})] == ["sdkvol"]
        out = client.containers.run("busybox", ["sh", "-c", "echo sdk > /d/f; cat /d/f"],
                                    volumes={"sdkvol": {"bind": "/d", "mode": "rw"}}, remove=True)
        assert out == b"sdk\n"
        vol.remove()
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("sdkvol")
    finally:
        client.close()
