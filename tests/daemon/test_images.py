"""The local image API end to end: tag/rmi, history, filters, save/load, import, prune and
hostile archives, driven by the real docker CLI and the Python SDK against a real berthd."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import time
import urllib.parse
from pathlib import Path

import docker
import pytest

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


# --- helpers ----------------------------------------------------------------------------------

def q(filters: dict) -> str:
    """A `filters` query value."""
    return urllib.parse.quote(json.dumps(filters))


def image_id(engine, name: str) -> str:
    return engine.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()


def tar_bytes(entries) -> bytes:
    """A tar of (TarInfo, data or None) pairs, names kept exactly as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            info.size = len(data) if data is not None else 0
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def link_entry(name: str, target: str, hard: bool):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def docker_archive(layer: bytes, tag: str = "evil:latest", diff_id: str | None = None,
                   layer_name: str | None = None) -> bytes:
    """A docker-archive with one image whose only layer is `layer`."""
    diff_id = diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = "blobs/sha256/" + hashlib.sha256(config).hexdigest()
    layer_name = layer_name or "blobs/sha256/" + hashlib.sha256(layer).hexdigest()
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
    return tar_bytes([file_entry(config_name, config), file_entry("blobs/sha256/" + hashlib.sha256(layer).hexdigest(), layer),
                      file_entry("manifest.json", manifest)])


def stored_state(engine) -> dict:
    """What the image store holds on disk: blobs, ingests, unpacked layers, temp files, tags."""
    images = engine.data_root / "images"
    listing = lambda p: sorted(x.name for x in p.iterdir()) if p.is_dir() else []
    return {
        "blobs": listing(images / "content" / "blobs" / "sha256"),
        "ingest": listing(images / "content" / "ingest"),
        "layers": listing(images / "layers"),
        "tmp": listing(engine.data_root / "tmp"),
        "repositories": (images / "repositories.json").read_text() if (images / "repositories.json").exists() else "",
    }


@pytest.fixture(scope="module")
def rootfs_tar(busybox_tar, tmp_path_factory) -> Path:
    """busybox's root filesystem as a plain tarball, for `docker import`."""
    with tarfile.open(busybox_tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        layer = t.extractfile(manifest[0]["Layers"][0]).read()
    path = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    path.write_bytes(layer)
    return path


@pytest.fixture
def imported(engine, rootfs_tar):
    """Imports busybox's rootfs under a fresh name; removes whatever is left of it afterwards."""
    made: list[str] = []

    def make(name: str, *changes: str, message: str = "") -> str:
        args = ["import"] + [a for c in changes for a in ("--change", c)]
        if message:
            args += ["--message", message]
        out = engine.docker(*args, str(rootfs_tar), *([name] if name else [])).stdout.strip()
        made.append(out)
        return out

    yield make
    for ref in made:
        engine.request("DELETE", f"/images/{ref}?force=1")


@pytest.fixture
def sdk(engine):
    client = docker.DockerClient(base_url=engine.host, version="1.47", timeout=60)
    yield client
    client.close()


# --- inspect, list, history -----------------------------------------------------------------

def test_inspect_resolves_every_docker_name_form_and_has_the_full_shape(engine):
    full = image_id(engine, "busybox")
    assert full.startswith("sha256:")
    for name in [full, full[7:], full[7:19], "busybox", "busybox:latest", "docker.io/library/busybox",
                 "docker.io/library/busybox:latest"]:
        assert image_id(engine, name) == full, name
    status, _, body = engine.request("GET", "/v1.47/images/busybox/json")
    assert status == 200
    d = json.loads(body)
    for key in ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion", "Author", "Config",
                "Architecture", "Os", "Size", "GraphDriver", "RootFS", "Metadata"]:
        assert key in d, key
    assert d["RepoTags"] == ["busybox:latest"]
    assert d["Config"]["Cmd"] == ["sh"]
    assert d["RootFS"]["Type"] == "layers" and len(d["RootFS"]["Layers"]) == 1
    assert d["GraphDriver"]["Name"] == "overlay2"
    assert Path(d["GraphDriver"]["Data"]["UpperDir"], "bin", "busybox").exists()
    assert d["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    assert "Container" not in d
    # Older API versions still get the fields that were removed later.
    old = json.loads(engine.request("GET", "/v1.43/images/busybox/json")[2])
    assert old["Container"] == "" and old["VirtualSize"] == d["Size"]

    status, _, body = engine.request("GET", "/images/nosuch:1/json")
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:1"
    p = engine.docker("image", "inspect", "nosuch", check=False)
    assert p.returncode == 1 and "No such image: nosuch" in p.stderr


def test_history_shows_the_config_history_newest_first(engine, imported):
    p = engine.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", "busybox")
    lines = p.stdout.strip().splitlines()
    assert lines == [f"{image_id(engine, 'busybox')}|mkimage-busybox.sh: static busybox rootfs|"]
    imported("hist:1", message="made for history")
    status, _, body = engine.request("GET", "/images/hist:1/history")
    assert status == 200
    [entry] = json.loads(body)
    assert entry["Id"] == image_id(engine, "hist:1")
    assert entry["Tags"] == ["hist:1"] and entry["Comment"] == "made for history" and entry["Size"] > 1_000_000


def test_list_filters_dangling_label_reference_before_and_since(engine, imported):
    bb = image_id(engine, "busybox")
    web = imported("filt/web:1", "LABEL tier=web")
    imported("filt/db:1", "LABEL tier=db")
    dangling = imported("")

    def ids(*args):
        return engine.docker("images", "-q", "--no-trunc", *args).stdout.split()

    assert dangling in ids("--filter", "dangling=true")
    assert bb not in ids("--filter", "dangling=true")
    assert dangling not in ids("--filter", "dangling=false") and bb in ids("--filter", "dangling=false")
    assert ids("--filter", "label=tier=web") == [web]
    assert len(ids("--filter", "label=tier")) == 2
    assert ids("--filter", "reference=busy*") == [bb]
    assert ids("--filter", "reference=busybox:*") == [bb]
    assert ids("filt/web") == [web]
    # Only the tags matching the pattern are shown.
    engine.docker("tag", "busybox", "filt/extra:1")
    try:
        rows = json.loads(engine.request("GET", "/images/json?filters=" + q({"reference": ["filt/extra"]}))[2])
        assert [r["RepoTags"] for r in rows] == [["filt/extra:1"]]
        assert rows[0]["Containers"] == -1 and rows[0]["SharedSize"] == -1
    finally:
        engine.docker("rmi", "filt/extra:1")
    # busybox was created in 1970, the imports now.
    assert bb in ids("--filter", "before=filt/web:1") and web not in ids("--filter", "before=filt/web:1")
    assert web in ids("--filter", "since=busybox") and bb not in ids("--filter", "since=busybox")
    status, _, body = engine.request("GET", "/images/json?filters=" + q({"bogus": ["x"]}))
    assert status == 400 and "invalid filter 'bogus'" in json.loads(body)["message"]
    status, _, body = engine.request("GET", "/images/json?filters=" + q({"dangling": ["maybe"]}))
    assert status == 400 and "dangling" in json.loads(body)["message"]


# --- tag and rmi ---------------------------------------------------------------------------------

def test_tag_and_rmi_untag_until_the_last_reference_deletes(engine, imported):
    since = time.time()
    iid = imported("tagme:1")
    engine.docker("tag", "tagme:1", "tagme:2")
    engine.docker("tag", iid, "other/tagme")
    assert sorted(json.loads(engine.docker("image", "inspect", "--format", "{{json .RepoTags}}", iid).stdout)) == \
        ["other/tagme:latest", "tagme:1", "tagme:2"]
    assert engine.docker("rmi", "tagme:1").stdout.strip() == "Untagged: tagme:1"
    # By ID while tagged in two repositories: refused unless forced.
    p = engine.docker("rmi", iid, check=False)
    assert p.returncode == 1
    assert f"conflict: unable to delete {iid[7:19]} (must be forced) - image is referenced in multiple repositories" in p.stderr
    engine.docker("rmi", "other/tagme")
    out = engine.docker("rmi", "tagme:2").stdout.splitlines()
    assert out[0] == "Untagged: tagme:2" and f"Deleted: {iid}" in out
    assert engine.docker("image", "inspect", iid, check=False).returncode == 1
    # Each step was an event.
    until = time.time() + 1
    status, _, body = engine.request("GET", f"/events?since={since}&until={until}")
    assert status == 200
    actions = [(e["Action"], e["Actor"]["Attributes"].get("name"))
               for e in map(json.loads, body.decode().splitlines()) if e["Type"] == "image"]
    assert ("tag", "tagme:2") in actions and ("tag", "other/tagme:latest") in actions
    assert ("untag", iid) in actions and ("delete", iid) in actions


def test_tag_with_an_invalid_reference_is_a_400(engine):
    status, _, body = engine.request("POST", "/images/busybox/tag?repo=Not_Valid&tag=x")
    assert status == 400 and "invalid reference format" in json.loads(body)["message"]
    status, _, body = engine.request("POST", "/images/busybox/tag?repo=ok&tag=-bad")
    assert status == 400
    status, _, body = engine.request("POST", "/images/nosuch/tag?repo=ok&tag=1")
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:latest"


def test_rmi_refuses_images_containers_use(engine, imported):
    iid = imported("inuse:1")
    short = iid[7:19]
    stopped = engine.docker("create", "inuse:1", "true").stdout.strip()
    running = None
    try:
        p = engine.docker("rmi", "inuse:1", check=False)
        assert p.returncode == 1
        assert (f'conflict: unable to remove repository reference "inuse:1" (must force) - container {stopped[:12]} '
                f"is using its referenced image {short}") in p.stderr
        p = engine.docker("rmi", iid, check=False)
        assert f"conflict: unable to delete {short} (must be forced) - image is being used by stopped container {stopped[:12]}" in p.stderr
        engine.docker("rm", stopped)
        stopped = None
        running = engine.docker("run", "-d", "inuse:1", "sleep", "60").stdout.strip()
        status, _, body = engine.request("DELETE", f"/images/{iid}?force=1")
        assert status == 409
        assert json.loads(body)["message"] == \
            f"conflict: unable to delete {short} (cannot be forced) - image is being used by running container {running[:12]}"
        # Forcing the tag away leaves the image, untagged, under the running container.
        assert engine.docker("rmi", "-f", "inuse:1").stdout.strip() == "Untagged: inuse:1"
        assert image_id(engine, iid) == iid
        assert iid in engine.docker("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split()
    finally:
        for c in (stopped, running):
            if c:
                engine.docker("rm", "-f", c, check=False)


# --- save, load, import ---------------------------------------------------------------------------

def test_save_rmi_load_round_trips_several_images_with_identical_ids(engine, imported, tmp_path):
    bb = image_id(engine, "busybox")
    other = imported("roundtrip:1", "CMD [\"true\"]")
    archive = tmp_path / "two.tar"
    engine.docker("save", "-o", str(archive), "busybox", "roundtrip:1")
    with tarfile.open(archive) as t:
        names = set(t.getnames())
        manifest = json.load(t.extractfile("manifest.json"))
        repositories = json.load(t.extractfile("repositories"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert sorted(tag for m in manifest for tag in m["RepoTags"]) == ["busybox:latest", "roundtrip:1"]
    assert {m["Config"] for m in manifest} == {f"blobs/sha256/{bb[7:]}", f"blobs/sha256/{other[7:]}"}
    assert set(repositories) == {"busybox", "roundtrip"}

    engine.docker("rmi", "roundtrip:1")
    before = stored_state(engine)
    loaded = engine.docker("load", "-i", str(archive)).stdout
    assert "Loaded image: busybox:latest" in loaded and "Loaded image: roundtrip:1" in loaded
    assert image_id(engine, "busybox") == bb and image_id(engine, "roundtrip:1") == other
    assert stored_state(engine)["layers"] == before["layers"], "the shared layer is unpacked once"

    # Saving by ID writes the image untagged.
    status, _, body = engine.request("GET", f"/images/get?names={other[7:19]}")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        assert json.load(t.extractfile("manifest.json"))[0].get("RepoTags") in (None, [])
    status, _, body = engine.request("GET", "/images/get?names=busybox&names=nosuch")
    assert status == 404 and json.loads(body)["message"] == "No such image: nosuch:latest"


def test_import_with_changes_makes_a_runnable_image(engine, imported, rootfs_tar):
    iid = imported("imp:1", 'CMD ["/bin/sh"]', "ENV A=1", "WORKDIR /tmp", "LABEL made=import")
    assert iid.startswith("sha256:")
    config = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config}}", "imp:1").stdout)
    assert config["Cmd"] == ["/bin/sh"] and config["Env"] == ["A=1"] and config["WorkingDir"] == "/tmp"
    assert config["Labels"] == {"made": "import"}
    assert engine.docker("image", "inspect", "--format", "{{.Comment}}", "imp:1").stdout.strip() == "Imported from -"
    out = engine.docker("run", "--rm", "imp:1", "sh", "-c", 'echo "$A $(pwd)"').stdout
    assert out == "1 /tmp\n"
    # A compressed tarball from stdin, through the raw API with repo and tag apart.
    xz = subprocess.run(["xz", "-c", str(rootfs_tar)], check=True, capture_output=True).stdout
    status, _, body = engine.request("POST", "/images/create?fromSrc=-&repo=imp&tag=xz&message=compressed", body=xz)
    assert status == 200
    new_id = json.loads(body.decode().splitlines()[-1])["status"]
    assert image_id(engine, "imp:xz") == new_id
    engine.docker("rmi", "imp:xz")
    # Changes Docker refuses.
    p = engine.docker("import", "--change", "RUN true", str(rootfs_tar), "imp:bad", check=False)
    assert p.returncode == 1 and "RUN is not a valid change command" in p.stderr


def test_pull_is_answered_with_an_error_not_a_crash(engine):
    status, _, body = engine.request("POST", "/images/create?fromImage=busybox&tag=1")
    assert 400 <= status < 600 and "registry" in json.loads(body)["message"]
    assert engine.docker("version").returncode == 0


# --- prune ----------------------------------------------------------------------------------------

def test_prune_removes_dangling_images_and_with_all_the_unused_ones(engine, imported):
    dangling = imported("")
    tagged = imported("prune/keep:1", "LABEL prune=yes")
    used = imported("prune/used:1", "LABEL prune=yes")
    container = engine.docker("create", "prune/used:1", "true").stdout.strip()
    try:
        out = engine.docker("image", "prune", "-f").stdout
        assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
        assert engine.docker("image", "inspect", dangling, check=False).returncode == 1
        assert image_id(engine, "prune/keep:1") == tagged
        out = engine.docker("image", "prune", "-a", "-f", "--filter", "label=prune=yes").stdout
        assert "untagged: prune/keep:1" in out and f"deleted: {tagged}" in out
        assert image_id(engine, "prune/used:1") == used, "an image a container uses is kept"
        assert image_id(engine, "busybox"), "the label filter kept busybox"
        status, _, body = engine.request("POST", "/images/prune")
        assert status == 200 and json.loads(body) == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    finally:
        engine.docker("rm", "-f", container, check=False)


# --- hostile archives -----------------------------------------------------------------------------

def test_hostile_loads_and_imports_are_refused_and_store_nothing(engine):
    good_layer = tar_bytes([file_entry("ok", b"fine")])
    cases = {
        "dotdot": docker_archive(tar_bytes([file_entry("../../escaped", b"x")])),
        "hardlink out": docker_archive(tar_bytes([link_entry("passwd", "../../../etc/passwd", hard=True)])),
        "missing layer": docker_archive(good_layer, layer_name="blobs/sha256/" + "0" * 64),
        "diffid mismatch": docker_archive(good_layer, diff_id="sha256:" + "1" * 64),
        "outer dotdot": tar_bytes([file_entry("../manifest.json", b"[]")]),
        "not a tar": b"this is not an archive at all" * 100,
    }
    before = stored_state(engine)
    for name, body in cases.items():
        status, _, answer = engine.request("POST", "/images/load", body=body, headers={"Content-Type": "application/x-tar"})
        assert status == 400, (name, answer)
        assert json.loads(answer)["message"], name
        assert stored_state(engine) == before, name
    for name, body in {"import dotdot": tar_bytes([file_entry("../escaped", b"x")]),
                       "import hardlink": tar_bytes([link_entry("x", "../../x", hard=True)])}.items():
        status, _, answer = engine.request("POST", "/images/create?fromSrc=-&repo=evil", body=body)
        assert status == 400, (name, answer)
        assert "escapes the layer root" in json.loads(answer)["message"]
        assert stored_state(engine) == before, name
    assert not Path(engine.data_root, "images", "escaped").exists()
    # The CLI shows the daemon's message and fails.
    bad = engine.root / "bad.tar"
    bad.write_bytes(cases["dotdot"])
    p = engine.docker("load", "-i", str(bad), check=False)
    assert p.returncode == 1 and "escapes the layer root" in p.stderr
    assert "evil" not in engine.docker("images").stdout
    # A write through an absolute symlink lands inside the layer, as in dockerd.
    contained = docker_archive(tar_bytes([link_entry("etc", "/", hard=False), file_entry("etc/marker-berth", b"x")]),
                               tag="contained:1")
    status, _, _ = engine.request("POST", "/images/load", body=contained)
    assert status == 200
    upper = json.loads(engine.docker("image", "inspect", "contained:1").stdout)[0]["GraphDriver"]["Data"]["UpperDir"]
    assert Path(upper, "marker-berth").read_bytes() == b"x"
    assert not Path("/marker-berth").exists()
    engine.docker("rmi", "contained:1")


# --- the Python SDK ---------------------------------------------------------------------------------

def test_sdk_images_list_get_tag_save_load_remove(engine, sdk, imported):
    iid = imported("sdk/img:1")
    img = sdk.images.get("sdk/img:1")
    assert img.id == iid and img.tags == ["sdk/img:1"]
    assert img.tag("sdk/img", "2") is True
    assert sorted(sdk.images.get(iid).tags) == ["sdk/img:1", "sdk/img:2"]
    assert iid in [i.id for i in sdk.images.list()]
    assert [i.id for i in sdk.images.list(name="sdk/img")] == [iid]
    assert iid in [i.id for i in sdk.images.list(filters={"dangling": False})]
    assert img.history()[0]["Id"] == iid
    data = b"".join(img.save(named="sdk/img:1"))
    sdk.images.remove("sdk/img:2")
    sdk.images.remove("sdk/img:1")
    with pytest.raises(docker.errors.ImageNotFound):
        sdk.images.get(iid)
    [loaded] = sdk.images.load(data)
    assert loaded.id == iid and loaded.tags == ["sdk/img:1"]
    with pytest.raises(docker.errors.ImageNotFound):
        sdk.images.get("nosuch:9")
    pruned = sdk.images.prune(filters={"dangling": True})
    assert "SpaceReclaimed" in pruned
