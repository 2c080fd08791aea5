"""Hostile registries: content that does not match its digests or declarations is refused
with a clear message, and nothing of it is stored (no image, no blob, no ingest file)."""

from __future__ import annotations

import hashlib
import json

from conftest import content_blobs, tar_layer, upload_image


def assert_refused(engine, name: str, expected: str, before: set[str]):
    p = engine.docker("pull", name, check=False)
    assert p.returncode != 0, p.stdout
    assert expected in p.stderr, p.stderr
    assert engine.docker("images", "-q", name).stdout.strip() == ""
    # Nothing new; the failed pull's garbage collection may also drop older unreferenced blobs.
    assert content_blobs(engine) <= before
    assert engine.docker("run", "--rm", "busybox", "true").returncode == 0
    layers = engine.data_root / "images" / "layers"
    assert not any(p.name.startswith(".") for p in layers.iterdir())


def test_corrupt_layer_blob_is_refused(engine, registry):
    layer = tar_layer([("file.txt", b"x" * 4096)])
    upload_image(registry, "corrupt", "latest", [layer])
    path = registry.blob_path("sha256:" + hashlib.sha256(layer).hexdigest())
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_refused(engine, f"{registry.localhost}/corrupt", "filesystem layer verification failed for digest", content_blobs(engine))


def test_truncated_layer_blob_is_refused(engine, registry):
    layer = tar_layer([("file.txt", b"y" * 8192)])
    upload_image(registry, "truncated", "latest", [layer])
    path = registry.blob_path("sha256:" + hashlib.sha256(layer).hexdigest())
    path.write_bytes(path.read_bytes()[:3000])
    assert_refused(engine, f"{registry.localhost}/truncated", "filesystem layer verification failed for digest", content_blobs(engine))


def test_layer_escaping_with_dotdot_is_refused(engine, registry):
    layer = tar_layer([("ok.txt", b"fine\n"), ("../../../../escaped-by-berth-test", b"evil\n")])
    upload_image(registry, "escape", "latest", [layer])
    assert_refused(engine, f"{registry.localhost}/escape", "failed to register layer", content_blobs(engine))
    assert not any(engine.root.rglob("escaped-by-berth-test"))


def test_wrong_layer_media_type_is_refused(engine, registry):
    upload_image(registry, "mediatype", "latest", [tar_layer([("a", b"a")])], layer_media_type="text/html")
    assert_refused(engine, f"{registry.localhost}/mediatype", "unsupported layer media type text/html", content_blobs(engine))


def test_diffid_mismatch_is_refused(engine, registry):
    layer = tar_layer([("a", b"a")])
    upload_image(registry, "diffid", "latest", [layer], diff_ids=["sha256:" + "0" * 64])
    assert_refused(engine, f"{registry.localhost}/diffid", "DiffID mismatch", content_blobs(engine))
