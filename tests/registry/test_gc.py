"""berth-registry garbage-collect: mark and sweep over every repository's manifests."""

from __future__ import annotations

import json
import os

from conftest import REGISTRY, Registry, free_tcp_port, garbage_collect, sha256


def test_garbage_collect_removes_unreferenced_blobs_and_expired_uploads_only(registry, busybox_tar, workdir):
    dest = f"docker://{registry.host}/busybox:latest"
    registry.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", dest)
    orphan = registry.push_blob("busybox", os.urandom(1000))
    # A manifest deleted by digest leaves its config and layer unreferenced.
    config = registry.push_blob("scratch", b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    layer = registry.push_blob("scratch", b"deleted layer")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 79},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 13}]}
    body = json.dumps(manifest).encode()
    assert registry.push_manifest("scratch", "v1", manifest, manifest["mediaType"]).status == 201
    assert registry.request("DELETE", f"/v2/scratch/manifests/{sha256(body)}").status == 202
    old = registry.request("POST", "/v2/busybox/blobs/uploads/").headers["Docker-Upload-UUID"]
    fresh = registry.request("POST", "/v2/busybox/blobs/uploads/").headers["Docker-Upload-UUID"]
    (registry.root / "uploads" / old / "startedat").write_text("1000")
    registry.stop()  # collection runs with the registry stopped, as distribution's

    blobs = registry.root / "blobs" / "sha256"
    before = {p.name for p in blobs.iterdir()}
    dry = garbage_collect(registry.root, dry_run=True)
    expected = {orphan, layer, config, sha256(body)}
    assert {line.split()[-1] for line in dry.splitlines() if line.startswith("would remove blob")} == expected
    assert f"would remove upload {old}" in dry and fresh not in dry
    assert {p.name for p in blobs.iterdir()} == before, "a dry run removes nothing"

    garbage_collect(registry.root)
    after = {p.name for p in blobs.iterdir()}
    assert after == before - {d.split(":")[1] for d in expected}
    assert sorted(p.name for p in (registry.root / "uploads").iterdir()) == [fresh]

    # The tagged image is intact: skopeo copies it out again.
    port = free_tcp_port()
    again = Registry(workdir / "berth", [str(REGISTRY), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(registry.root)],
                     port, registry.root)
    try:
        again.skopeo("copy", "--src-tls-verify=false", f"docker://{again.host}/busybox:latest", f"oci:{workdir / 'out'}:latest")
        assert again.request("HEAD", f"/v2/busybox/blobs/{orphan}").status == 404
    finally:
        again.stop()
