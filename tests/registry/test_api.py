"""The distribution API over raw HTTP: uploads, ranges, manifests, listings, errors."""

from __future__ import annotations

import json
import os
import threading

from conftest import sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def image(registry, name: str, layer: bytes, media_type=OCI_MANIFEST, **extra) -> tuple[dict, str]:
    """Pushes a config and one layer; returns a manifest referencing them and the layer digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = registry.push_blob(name, config)
    layer_digest = registry.push_blob(name, layer)
    oci = media_type == OCI_MANIFEST
    manifest = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci else "application/vnd.docker.container.image.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar" if oci else "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer_digest, "size": len(layer)}],
        **extra,
    }
    return manifest, layer_digest


def test_version_check_answers_with_the_distribution_header(registry):
    r = registry.request("GET", "/v2/")
    assert r.status == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_chunked_upload_with_content_ranges_then_put_with_digest(registry):
    data = os.urandom(300_000)
    r = registry.request("POST", "/v2/chunks/blobs/uploads/")
    assert r.status == 202
    location, uuid = r.headers["Location"], r.headers["Docker-Upload-UUID"]
    assert location.endswith(uuid) and r.headers["Range"] == "0-0"

    r = registry.request("PATCH", location, body=data[:100_000],
                         headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.headers["Range"] == "0-99999"
    # A chunk that does not start where the upload ends is refused with where it ends.
    r = registry.request("PATCH", location, body=data[200_000:], headers={"Content-Range": "200000-299999"})
    assert r.status == 416 and r.headers["Range"] == "0-99999"
    r = registry.request("PATCH", location, body=data[100_000:200_000], headers={"Content-Range": "100000-199999"})
    assert r.status == 202 and r.headers["Range"] == "0-199999"
    status = registry.request("GET", location)
    assert status.status == 204 and status.headers["Range"] == "0-199999"
    assert registry.request("HEAD", f"/v2/chunks/blobs/{sha256(data)}").status == 404, "not visible before PUT"

    r = registry.request("PUT", f"{location}?digest={sha256(data)}", body=data[200_000:])
    assert r.status == 201, r.body
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    assert r.headers["Location"] == f"/v2/chunks/blobs/{sha256(data)}"
    head = registry.request("HEAD", f"/v2/chunks/blobs/{sha256(data)}")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(data)) and head.body == b""
    assert registry.request("GET", f"/v2/chunks/blobs/{sha256(data)}").body == data
    assert registry.request("GET", location).status == 404, "the finished upload is gone"


def test_blob_range_requests_return_partial_content(registry):
    data = bytes(range(256)) * 40
    digest = registry.push_blob("ranges", data)
    r = registry.request("GET", f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert registry.request("GET", f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=10000-"}).body == data[10000:]
    assert registry.request("GET", f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=-5"}).body == data[-5:]
    r = registry.request("GET", f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=999999-"})
    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"


def test_digest_mismatch_is_refused_and_nothing_is_stored(registry):
    data = b"the real content"
    wrong = sha256(b"something else")
    r = registry.request("POST", f"/v2/bad/blobs/uploads/?digest={wrong}", body=data)
    assert r.status == 400 and r.error_codes == ["DIGEST_INVALID"]
    loc = registry.request("POST", "/v2/bad/blobs/uploads/").headers["Location"]
    registry.request("PATCH", loc, body=data)
    r = registry.request("PUT", f"{loc}?digest={wrong}")
    assert r.status == 400 and r.error_codes == ["DIGEST_INVALID"]
    assert registry.request("HEAD", f"/v2/bad/blobs/{sha256(data)}").status == 404
    assert registry.request("HEAD", f"/v2/bad/blobs/{wrong}").status == 404
    assert list((registry.root / "blobs" / "sha256").iterdir()) == []
    assert list((registry.root / "uploads").iterdir()) == []


def test_cross_repository_mount_links_without_upload(registry):
    data = os.urandom(5000)
    digest = registry.push_blob("source/app", data)
    r = registry.request("POST", f"/v2/target/app/blobs/uploads/?mount={digest}&from=source/app")
    assert r.status == 201 and r.headers["Location"] == f"/v2/target/app/blobs/{digest}"
    assert registry.request("GET", f"/v2/target/app/blobs/{digest}").body == data
    # From a repository that lacks the blob, the registry starts an ordinary upload instead.
    r = registry.request("POST", f"/v2/other/blobs/uploads/?mount={digest}&from=nowhere")
    assert r.status == 202 and "Docker-Upload-UUID" in r.headers
    assert registry.request("HEAD", f"/v2/other/blobs/{digest}").status == 404


def test_manifest_put_get_head_by_tag_and_digest(registry):
    manifest, _ = image(registry, "app", b"layer-bytes", media_type=DOCKER_MANIFEST)
    body = json.dumps(manifest).encode()
    r = registry.request("PUT", "/v2/app/manifests/v1", body=body, headers={"Content-Type": DOCKER_MANIFEST})
    assert r.status == 201, r.body
    assert r.headers["Docker-Content-Digest"] == sha256(body)
    for ref in ("v1", sha256(body)):
        g = registry.request("GET", f"/v2/app/manifests/{ref}", headers={"Accept": DOCKER_MANIFEST})
        assert g.status == 200 and g.body == body
        assert g.headers["Content-Type"] == DOCKER_MANIFEST and g.headers["Docker-Content-Digest"] == sha256(body)
        h = registry.request("HEAD", f"/v2/app/manifests/{ref}")
        assert h.status == 200 and h.headers["Content-Length"] == str(len(body)) and h.body == b""


def test_manifest_with_a_missing_blob_is_refused(registry):
    manifest, _ = image(registry, "app", b"layer")
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"absent"), "size": 6})
    r = registry.push_manifest("app", "broken", manifest, OCI_MANIFEST)
    assert r.status == 400 and r.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == sha256(b"absent")
    g = registry.request("GET", "/v2/app/manifests/broken")
    assert g.status == 404 and g.error_codes == ["MANIFEST_UNKNOWN"]


def test_manifest_with_wrong_media_type_or_digest_is_refused(registry):
    manifest, _ = image(registry, "app", b"layer")
    r = registry.push_manifest("app", "v1", manifest, DOCKER_MANIFEST)  # body says OCI
    assert r.status == 400 and r.error_codes == ["MANIFEST_INVALID"]
    r = registry.push_manifest("app", "v1", {"schemaVersion": 2, "mediaType": "text/plain"}, "text/plain")
    assert r.status == 400 and r.error_codes == ["MANIFEST_INVALID"]
    r = registry.push_manifest("app", sha256(b"not it"), manifest, OCI_MANIFEST)
    assert r.status == 400 and r.error_codes == ["DIGEST_INVALID"]
    assert registry.request("GET", "/v2/app/tags/list").json()["tags"] == []


def test_index_needs_its_manifests_and_serves_the_amd64_image_to_clients_without_lists(registry):
    manifest, _ = image(registry, "multi", b"amd64 layer", media_type=DOCKER_MANIFEST)
    child = json.dumps(manifest).encode()
    index = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": sha256(child), "size": len(child),
         "platform": {"architecture": "amd64", "os": "linux"}}]}
    r = registry.push_manifest("multi", "latest", index, DOCKER_LIST)
    assert r.status == 400 and r.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    assert registry.request("PUT", f"/v2/multi/manifests/{sha256(child)}", body=child,
                            headers={"Content-Type": DOCKER_MANIFEST}).status == 201
    assert registry.push_manifest("multi", "latest", index, DOCKER_LIST).status == 201
    g = registry.request("GET", "/v2/multi/manifests/latest", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert g.headers["Content-Type"] == DOCKER_LIST
    g = registry.request("GET", "/v2/multi/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert g.headers["Content-Type"] == DOCKER_MANIFEST and g.body == child


def test_tags_and_catalog_paginate_with_link_headers(registry):
    manifest, _ = image(registry, "paged", b"x")
    for tag in ["c", "a", "e", "b", "d"]:
        assert registry.push_manifest("paged", tag, manifest, OCI_MANIFEST).status == 201
    assert registry.request("GET", "/v2/paged/tags/list").json() == {"name": "paged", "tags": ["a", "b", "c", "d", "e"]}
    r = registry.request("GET", "/v2/paged/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["Link"] == '</v2/paged/tags/list?n=2&last=b>; rel="next"'
    r = registry.request("GET", "/v2/paged/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = registry.request("GET", "/v2/paged/tags/list?n=2&last=d")
    assert r.json()["tags"] == ["e"] and "Link" not in r.headers

    for repo in ["zeta", "alpha/one", "alpha/two"]:
        registry.push_blob(repo, b"blob")
    r = registry.request("GET", "/v2/_catalog?n=2")
    assert r.json()["repositories"] == ["alpha/one", "alpha/two"]
    assert r.headers["Link"] == '</v2/_catalog?n=2&last=alpha/two>; rel="next"'
    assert registry.request("GET", "/v2/_catalog?n=2&last=alpha/two").json()["repositories"] == ["paged", "zeta"]
    r = registry.request("GET", "/v2/nothing/tags/list")
    assert r.status == 404 and r.error_codes == ["NAME_UNKNOWN"]


def test_delete_manifest_removes_its_tags_and_delete_blob_unlinks_it(registry):
    manifest, layer = image(registry, "gone", b"layer to delete")
    body = json.dumps(manifest).encode()
    registry.push_manifest("gone", "v1", manifest, OCI_MANIFEST)
    registry.push_manifest("gone", "v2", manifest, OCI_MANIFEST)
    assert registry.request("DELETE", "/v2/gone/manifests/v2").status == 202
    assert registry.request("GET", "/v2/gone/tags/list").json()["tags"] == ["v1"]
    assert registry.request("DELETE", f"/v2/gone/manifests/{sha256(body)}").status == 202
    assert registry.request("GET", "/v2/gone/manifests/v1").status == 404
    assert registry.request("GET", "/v2/gone/tags/list").json()["tags"] == []
    assert registry.request("DELETE", f"/v2/gone/blobs/{layer}").status == 202
    r = registry.request("GET", f"/v2/gone/blobs/{layer}")
    assert r.status == 404 and r.error_codes == ["BLOB_UNKNOWN"]
    assert registry.request("DELETE", f"/v2/gone/blobs/{layer}").status == 404


def test_referrers_list_manifests_whose_subject_is_the_digest(registry):
    manifest, _ = image(registry, "art", b"base")
    subject_body = json.dumps(manifest).encode()
    registry.push_manifest("art", "v1", manifest, OCI_MANIFEST)
    subject = {"mediaType": OCI_MANIFEST, "digest": sha256(subject_body), "size": len(subject_body)}
    empty = registry.push_blob("art", b"{}")
    for kind in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        ref = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
               "layers": [], "subject": subject, "annotations": {"kind": kind}}
        r = registry.push_manifest("art", sha256(json.dumps(ref).encode()), ref, OCI_MANIFEST)
        assert r.status == 201 and r.headers["OCI-Subject"] == subject["digest"]
    r = registry.request("GET", f"/v2/art/referrers/{subject['digest']}")
    assert r.status == 200 and r.headers["Content-Type"] == OCI_INDEX
    assert sorted(m["artifactType"] for m in r.json()["manifests"]) == ["application/vnd.example.sbom", "application/vnd.example.sig"]
    r = registry.request("GET", f"/v2/art/referrers/{subject['digest']}?artifactType=application/vnd.example.sig")
    assert [m["annotations"]["kind"] for m in r.json()["manifests"]] == ["application/vnd.example.sig"]
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert registry.request("GET", f"/v2/art/referrers/{sha256(b'none')}").json()["manifests"] == []


def test_invalid_names_and_unknown_uploads_get_the_specs_codes(registry):
    r = registry.request("GET", "/v2/Upper/tags/list")
    assert r.status == 400 and r.error_codes == ["NAME_INVALID"]
    assert registry.request("GET", "/v2/a__b-c.d/tags/list").error_codes == ["NAME_UNKNOWN"]
    r = registry.request("GET", "/v2/app/blobs/uploads/00000000-0000-4000-8000-000000000000")
    assert r.status == 404 and r.error_codes == ["BLOB_UPLOAD_UNKNOWN"]
    r = registry.request("GET", "/v2/app/blobs/not-a-digest")
    assert r.status == 400 and r.error_codes == ["DIGEST_INVALID"]


def test_concurrent_chunked_uploads_each_store_their_own_blob(registry):
    blobs = [os.urandom(2_000_000 + i) for i in range(6)]
    errors: list[str] = []

    def upload(data: bytes):
        try:
            loc = registry.request("POST", "/v2/busy/blobs/uploads/").headers["Location"]
            for start in range(0, len(data), 500_000):
                chunk = data[start:start + 500_000]
                r = registry.request("PATCH", loc, body=chunk, headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
                assert r.status == 202, r.body
            r = registry.request("PUT", f"{loc}?digest={sha256(data)}")
            assert r.status == 201, r.body
        except Exception as e:  # noqa: BLE001 - reported below, from the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=upload, args=(b,)) for b in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    for data in blobs:
        assert registry.request("GET", f"/v2/busy/blobs/{sha256(data)}").body == data
