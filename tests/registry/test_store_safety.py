"""The registry's store against local users, concurrent writers and abandoned uploads."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import threading
import time

from conftest import REGISTRY, sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def modes(root) -> dict[str, int]:
    """Every directory and file under root (root included) with its permission bits."""
    found = {str(root): stat.S_IMODE(os.lstat(root).st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            found[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def push_image(registry, name: str, tag: str) -> None:
    config = registry.push_blob(name, b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    layer = registry.push_blob(name, os.urandom(100))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 79},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 100}]}
    assert registry.push_manifest(name, tag, manifest, OCI_MANIFEST).status == 201


def test_store_is_readable_only_by_the_registry_user(make_registry, workdir):
    registry = make_registry()
    push_image(registry, "app", "v1")
    assert registry.request("POST", "/v2/app/blobs/uploads/").status == 202
    found = modes(registry.root)
    assert len(found) > 10
    assert {p: oct(m) for p, m in found.items() if m & 0o077} == {}
    registry.stop()

    # A store left world-readable by an older version is closed at start.
    for path in found:
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    again = make_registry(name="again", root=registry.root)
    assert {p: oct(m) for p, m in modes(registry.root).items() if m & 0o077} == {}
    assert again.request("GET", "/v2/app/tags/list").json()["tags"] == ["v1"]


def test_garbage_collect_refuses_while_the_registry_serves(make_registry):
    registry = make_registry()
    push_image(registry, "app", "v1")
    orphan = registry.push_blob("app", b"unreferenced")
    blobs = sorted(os.listdir(registry.root / "blobs" / "sha256"))

    gc = subprocess.run([str(REGISTRY), "garbage-collect", "--root", str(registry.root)],
                        capture_output=True, text=True, timeout=60)
    assert gc.returncode != 0
    assert "in use by a running berth-registry" in gc.stderr, gc.stderr
    assert sorted(os.listdir(registry.root / "blobs" / "sha256")) == blobs, "nothing was collected"
    # A dry run only reads: allowed alongside the server.
    dry = subprocess.run([str(REGISTRY), "garbage-collect", "--dry-run", "--root", str(registry.root)],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and f"would remove blob {orphan}" in dry.stdout, dry

    registry.stop()
    done = subprocess.run([str(REGISTRY), "garbage-collect", "--root", str(registry.root)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"removed blob {orphan}" in done.stdout, done


def test_registry_refuses_to_serve_a_store_being_collected(workdir):
    root = workdir / "root"
    subprocess.run([str(REGISTRY), "garbage-collect", "--root", str(root)], check=True, capture_output=True, timeout=60)
    # What a running garbage-collect holds.
    with open(root / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        serve = subprocess.run([str(REGISTRY), "serve", "--addr", "127.0.0.1:0", "--root", str(root)],
                               capture_output=True, text=True, timeout=10)
    assert serve.returncode != 0
    assert "garbage collection is running" in serve.stderr, serve.stderr


def test_abandoned_upload_is_purged_while_an_active_one_is_kept(make_registry):
    registry = make_registry(args=["--upload-purging-age", "1s", "--upload-purging-interval", "200ms"])

    def start() -> str:
        r = registry.request("POST", "/v2/app/blobs/uploads/")
        assert r.status == 202
        return r.headers["Docker-Upload-UUID"]

    abandoned, active = start(), start()
    assert registry.request("PATCH", f"/v2/app/blobs/uploads/{abandoned}", body=b"partial").status == 202
    data = b""
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        chunk = os.urandom(10)
        r = registry.request("PATCH", f"/v2/app/blobs/uploads/{active}", body=chunk,
                             headers={"Content-Range": f"{len(data)}-{len(data) + 9}"})
        assert r.status == 202, (r.status, r.body)
        data += chunk
        time.sleep(0.3)

    r = registry.request("GET", f"/v2/app/blobs/uploads/{abandoned}")
    assert r.status == 404 and r.error_codes == ["BLOB_UPLOAD_UNKNOWN"]
    assert not (registry.root / "uploads" / abandoned).exists(), "its partial file is deleted"
    assert "purged an abandoned upload" in registry.log()
    r = registry.request("PUT", f"/v2/app/blobs/uploads/{active}?digest={sha256(data)}")
    assert r.status == 201, (r.status, r.body)
    assert sorted(os.listdir(registry.root / "uploads")) == []


def test_concurrent_pushes_of_one_manifest_all_succeed(registry):
    config = registry.push_blob("app", b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    layer = registry.push_blob("app", b"layer")
    for round in range(8):
        # A manifest new to the store each round, so every pusher writes it.
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 79},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
                    "annotations": {"round": str(round)}}
        pushers = 8
        barrier = threading.Barrier(pushers)
        statuses: list[int] = []

        def push(tag: str):
            barrier.wait()
            r = registry.push_manifest("app", tag, manifest, OCI_MANIFEST)
            statuses.append(r.status)

        threads = [threading.Thread(target=push, args=(f"r{round}",)) for _ in range(pushers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [201] * pushers, (round, statuses)
        r = registry.request("GET", f"/v2/app/manifests/r{round}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and json.loads(r.body) == manifest
    leftovers = [name for dirpath, _, names in os.walk(registry.root) for name in names if name.startswith(".tmp-")]
    assert leftovers == []
