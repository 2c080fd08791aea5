"""berth-registry driven by skopeo, and copies to and from Debian's docker-registry."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
from pathlib import Path

from conftest import ALICE_HTPASSWD, REGISTRY, Registry, free_tcp_port, requires_docker_registry, sha256


def layout_manifest(layout: Path) -> tuple[str, dict]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    return digest, json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def test_skopeo_pushes_inspects_lists_and_pulls_back_the_same_image(registry, busybox_tar, workdir):
    dest = f"docker://{registry.host}/library/busybox:latest"
    registry.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", dest)

    inspect = json.loads(registry.skopeo("inspect", "--tls-verify=false", dest).stdout)
    assert inspect["RepoTags"] == ["latest"]
    assert inspect["Architecture"] == "amd64" and inspect["Os"] == "linux"
    raw = registry.skopeo("inspect", "--raw", "--tls-verify=false", dest).stdout.encode()
    assert inspect["Digest"] == sha256(raw), "the digest is the sha256 of the stored manifest bytes"

    tags = json.loads(registry.skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/library/busybox").stdout)
    assert tags["Tags"] == ["latest"]

    out = workdir / "out"
    registry.skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:latest")
    _, manifest = layout_manifest(out)
    pushed = json.loads(raw)
    assert [l["digest"] for l in manifest["layers"]] == [l["digest"] for l in pushed["layers"]]
    for layer in manifest["layers"]:
        blob = (out / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes()
        assert sha256(blob) == layer["digest"] and len(blob) == layer["size"]

    # Every blob is stored once, content-addressed, and nothing is left in the upload area.
    stored = {p.name for p in (registry.root / "blobs" / "sha256").iterdir()}
    assert {l["digest"].split(":")[1] for l in pushed["layers"]} <= stored
    assert not any((registry.root / "uploads").iterdir())


def test_pushing_the_same_image_to_a_second_repository_stores_no_second_copy(registry, busybox_tar):
    for repo in ("one/busybox", "two/busybox"):
        registry.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", f"docker://{registry.host}/{repo}:v1")
    blobs = list((registry.root / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3, [b.name for b in blobs]  # layer, config, manifest
    catalog = registry.request("GET", "/v2/_catalog").json()
    assert catalog["repositories"] == ["one/busybox", "two/busybox"]


def test_basic_auth_refuses_without_credentials_and_accepts_the_htpasswd_user(make_registry, busybox_tar):
    registry = make_registry(htpasswd=ALICE_HTPASSWD, auth=("alice", "s3cret"))
    r = registry.request("GET", "/v2/", auth=False)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert r.error_codes == ["UNAUTHORIZED"]
    assert registry.request("GET", "/v2/", auth=("alice", "wrong")).status == 401
    assert registry.request("GET", "/v2/", auth=("bob", "s3cret")).status == 401
    assert registry.request("GET", "/v2/").status == 200

    dest = f"docker://{registry.host}/busybox:latest"
    denied = registry.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", dest, check=False)
    assert denied.returncode != 0
    registry.skopeo("copy", "--dest-tls-verify=false", "--dest-creds=alice:s3cret", f"docker-archive:{busybox_tar}", dest)
    inspect = registry.skopeo("inspect", "--tls-verify=false", "--creds=alice:s3cret", dest)
    assert json.loads(inspect.stdout)["RepoTags"] == ["latest"]


@requires_docker_registry
def test_images_copy_between_berth_registry_and_debians_docker_registry(registry, docker_registry, busybox_tar):
    ours = f"docker://{registry.host}/busybox:latest"
    theirs = f"docker://{docker_registry.host}/mirror/busybox:latest"
    back = f"docker://{registry.host}/back/busybox:latest"
    registry.skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_tar}", ours)
    registry.skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", ours, theirs)
    registry.skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", theirs, back)
    digests = [json.loads(registry.skopeo("inspect", "--tls-verify=false", ref).stdout)["Digest"] for ref in (ours, theirs, back)]
    assert digests[0] == digests[1] == digests[2], digests


def test_tls_serves_https_with_the_given_certificate(workdir, busybox_tar):
    d = workdir / "tls"
    d.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    port = free_tcp_port()
    registry = Registry(d, [str(REGISTRY), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(d / "root"),
                            "--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem")], port, d / "root")
    try:
        context = ssl.create_default_context(cafile=str(d / "cert.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        conn.request("GET", "/v2/")
        r = conn.getresponse()
        assert r.status == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        conn.close()
        certs = d / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes((d / "cert.pem").read_bytes())
        registry.skopeo("copy", f"--dest-cert-dir={certs}", f"docker-archive:{busybox_tar}", f"docker://127.0.0.1:{port}/busybox:tls")
        assert json.loads(registry.skopeo("inspect", f"--cert-dir={certs}", f"docker://127.0.0.1:{port}/busybox:tls").stdout)["RepoTags"] == ["tls"]
    finally:
        registry.stop()
