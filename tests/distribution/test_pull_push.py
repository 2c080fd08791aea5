"""Push and pull through berthd against Debian's docker-registry, checked with skopeo."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading

import pytest
from conftest import OCI_INDEX, registry_request, skopeo, tar_layer, upload_image, upload_manifest


def image_ids(d) -> set[str]:
    return set(d.docker("images", "-q", "--no-trunc").stdout.split())


def test_push_then_pull_back_runs_and_skopeo_sees_it(engine, registry):
    name = f"{registry.localhost}/busybox"
    engine.docker("tag", "busybox:latest", name)
    push = engine.docker("push", name)
    assert f"The push refers to repository [{name}]" in push.stdout
    assert "Pushed" in push.stdout
    assert "latest: digest: sha256:" in push.stdout

    inspect = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}:latest").stdout)
    assert inspect["Name"] == name
    assert len(inspect["Layers"]) >= 1
    pushed_digest = push.stdout.split("latest: digest: ")[1].split()[0]
    assert inspect["Digest"] == pushed_digest

    engine.docker("rmi", name, "busybox:latest")
    assert image_ids(engine) == set()
    pull = engine.docker("pull", name)
    assert "Pull complete" in pull.stdout
    assert f"Digest: {pushed_digest}" in pull.stdout
    assert f"Status: Downloaded newer image for {name}:latest" in pull.stdout
    out = engine.docker("run", "--rm", name, "echo", "pulled and running")
    assert out.stdout.strip() == "pulled and running"
    digests = json.loads(engine.docker("image", "inspect", name).stdout)[0]["RepoDigests"]
    assert f"{name}@{pushed_digest}" in digests

    again = engine.docker("pull", name)
    assert f"Status: Image is up to date for {name}:latest" in again.stdout


def push_busybox(engine, registry, repo: str = "busybox") -> str:
    """Pushes the loaded busybox as <registry>/<repo>:latest; returns the manifest digest."""
    name = f"{registry.localhost}/{repo}"
    engine.docker("tag", "busybox:latest", name)
    out = engine.docker("push", name).stdout
    return out.split("latest: digest: ")[1].split()[0]


def test_pull_by_digest_records_the_repo_digest(engine, registry):
    digest = push_busybox(engine, registry)
    name = f"{registry.localhost}/busybox"
    engine.docker("rmi", name, "busybox:latest")
    out = engine.docker("pull", f"{name}@{digest}").stdout
    assert f"Digest: {digest}" in out
    info = json.loads(engine.docker("image", "inspect", f"{name}@{digest}").stdout)[0]
    assert info["RepoDigests"] == [f"{name}@{digest}"]
    assert info["RepoTags"] == []


def test_pull_progress_stream_has_dockerds_messages(engine, registry):
    push_busybox(engine, registry)
    name = f"{registry.localhost}/busybox"
    engine.docker("rmi", name, "busybox:latest")
    status, headers, body = engine.request("POST", f"/images/create?fromImage={name}&tag=latest")
    assert status == 200
    messages = [json.loads(line) for line in body.decode().splitlines()]
    assert messages[0] == {"status": "Pulling from busybox", "id": "latest"}
    layer_statuses = [m["status"] for m in messages if "id" in m and m["id"] != "latest"]
    for expected in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
        assert expected in layer_statuses
    downloading = next(m for m in messages if m.get("status") == "Downloading")
    assert downloading["progressDetail"]["total"] > 0 and "progress" in downloading
    assert messages[-2]["status"].startswith("Digest: sha256:")
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {name}:latest"}


def test_pull_of_unknown_tag_and_repository_are_404_with_dockerds_words(engine, registry):
    push_busybox(engine, registry)
    p = engine.docker("pull", f"{registry.localhost}/busybox:nope", check=False)
    assert p.returncode != 0
    assert f"manifest for {registry.localhost}/busybox:nope not found: manifest unknown" in p.stderr
    status, _, body = engine.request("POST", f"/images/create?fromImage={registry.localhost}/nothing&tag=latest")
    assert status == 404
    assert "not found" in json.loads(body)["message"]


def test_second_push_mounts_or_skips_existing_layers(engine, registry):
    push_busybox(engine, registry)
    again = engine.docker("push", f"{registry.localhost}/busybox").stdout
    assert "Layer already exists" in again
    engine.docker("tag", "busybox:latest", f"{registry.localhost}/other/copy")
    other = engine.docker("push", f"{registry.localhost}/other/copy").stdout
    assert "Mounted from busybox" in other
    inspect = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.localhost}/other/copy:latest").stdout)
    assert inspect["Name"] == f"{registry.localhost}/other/copy"


def test_multi_platform_index_selects_amd64_by_default_and_honours_platform(engine, registry):
    layer = tar_layer([("hello.txt", b"hello\n")])
    amd = upload_image(registry, "multi", "amd64", [layer], architecture="amd64")
    arm = upload_image(registry, "multi", "arm64", [tar_layer([("arm.txt", b"arm\n")])], architecture="arm64")
    arm["platform"]["variant"] = "v8"
    attestation = dict(amd, platform={"architecture": "unknown", "os": "unknown"})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [attestation, arm, amd]}
    index_digest = upload_manifest(registry, "multi", "latest", index, OCI_INDEX)
    name = f"{registry.localhost}/multi"

    engine.docker("pull", name)
    info = json.loads(engine.docker("image", "inspect", name).stdout)[0]
    assert info["Architecture"] == "amd64"
    assert info["RepoDigests"] == [f"{name}@{index_digest}"]
    # Pulling again changes nothing: the repo digest stays the index's.
    assert "Image is up to date" in engine.docker("pull", name).stdout
    assert json.loads(engine.docker("image", "inspect", name).stdout)[0]["RepoDigests"] == [f"{name}@{index_digest}"]
    # The index digest names the image, as with dockerd.
    by_digest = json.loads(engine.docker("image", "inspect", f"{name}@{index_digest}").stdout)[0]
    assert by_digest["Id"] == info["Id"]

    engine.docker("pull", "--platform", "linux/arm64", name)
    info = json.loads(engine.docker("image", "inspect", name).stdout)[0]
    assert info["Architecture"] == "arm64"

    p = engine.docker("pull", "--platform", "linux/s390x", name, check=False)
    assert p.returncode != 0 and "no matching manifest for linux/s390x" in p.stderr

    status, _, body = engine.request("GET", f"/distribution/{name}:latest/json")
    assert status == 200
    d = json.loads(body)
    assert d["Descriptor"]["digest"] == index_digest and d["Descriptor"]["mediaType"] == OCI_INDEX
    assert {(p["os"], p["architecture"]) for p in d["Platforms"]} >= {("linux", "amd64"), ("linux", "arm64")}


def test_sdk_pull_and_push(engine, registry):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        name = f"{registry.localhost}/sdk"
        client.images.get("busybox:latest").tag(name, "v1")
        lines = list(client.images.push(name, tag="v1", stream=True, decode=True))
        assert any(l.get("status") == "Pushed" for l in lines)
        assert lines[-1]["aux"]["Tag"] == "v1"
        client.images.remove(f"{name}:v1")
        image = client.images.pull(name, tag="v1")
        assert f"{name}:v1" in image.tags
        out = client.containers.run(f"{name}:v1", ["echo", "sdk"], remove=True)
        assert out == b"sdk\n"
    finally:
        client.close()


def test_concurrent_pulls_of_one_image_download_each_blob_once(engine, registry):
    layer = tar_layer([("big.bin", os.urandom(8 << 20))])
    upload_image(registry, "shared", "latest", [layer])
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    name = f"{registry.localhost}/shared"
    results: list[tuple[int, bytes]] = []

    def pull():
        status, _, body = engine.request("POST", f"/images/create?fromImage={name}&tag=latest")
        results.append((status, body))

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results] == [200, 200, 200]
    assert all(b"errorDetail" not in body for _, body in results), results
    gets = [line for line in registry.log().splitlines() if f"GET /v2/shared/blobs/{layer_digest}" in line]
    assert len(gets) == 1, gets
    info = json.loads(engine.docker("image", "inspect", name).stdout)[0]
    assert info["RootFS"]["Layers"] == [layer_digest]  # an uncompressed layer's DiffID is its digest


class CuttingProxy:
    """A read-only HTTP proxy in front of a registry that cuts the first download of one blob
    halfway (headers promise the whole blob, then the connection closes), and records the
    Range header of every request for it."""

    def __init__(self, registry, digest: str):
        self.ranges: list[str | None] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.forward(head=True)

            def do_GET(self):
                self.forward(head=False)

            def forward(self, head: bool):
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range", "authorization")}
                status, reply, body = registry_request(registry, "HEAD" if head else "GET", self.path, headers=headers)
                cut = False
                if digest in self.path and not head:
                    proxy.ranges.append(self.headers.get("Range"))
                    cut = len(proxy.ranges) == 1
                self.send_response(status)
                for k, v in reply.items():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", reply.get("Content-Length", str(len(body))))
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                if not head:
                    self.wfile.write(body[: len(body) // 2] if cut else body)
                    self.wfile.flush()
                if cut:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_interrupted_layer_download_resumes_with_a_range_request(engine, registry):
    layer = tar_layer([("data.bin", os.urandom(2 << 20))])
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    upload_image(registry, "resume", "latest", [layer])
    proxy = CuttingProxy(registry, digest)
    try:
        name = f"{proxy.host}/resume"
        out = engine.docker("pull", name).stdout
        assert f"Status: Downloaded newer image for {name}:latest" in out
        assert proxy.ranges[0] is None
        assert len(proxy.ranges) == 2 and proxy.ranges[1].startswith("bytes=") and proxy.ranges[1] != "bytes=0-", proxy.ranges
        info = json.loads(engine.docker("image", "inspect", name).stdout)[0]
        assert info["RootFS"]["Layers"] == [digest]
    finally:
        proxy.stop()


def test_large_layer_is_pushed_in_chunks_to_another_registry(engine, make_registry):
    source, target = make_registry(), make_registry()
    layer = tar_layer([("big.bin", os.urandom(20 << 20))])  # above the 16 MB monolithic limit
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    upload_image(source, "big", "latest", [layer])
    engine.docker("pull", f"{source.localhost}/big")
    engine.docker("tag", f"{source.localhost}/big", f"{target.localhost}/big")
    out = engine.docker("push", f"{target.localhost}/big").stdout
    assert "Pushed" in out
    patches = [line for line in target.log().splitlines() if '"PATCH /v2/big/blobs/uploads/' in line]
    assert len(patches) == 2, patches
    inspect = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target.localhost}/big:latest").stdout)
    assert inspect["Layers"] == [digest]


def test_push_of_an_image_that_is_not_local_is_404(engine, registry):
    p = engine.docker("push", f"{registry.localhost}/absent", check=False)
    assert p.returncode != 0
    assert f"An image does not exist locally with the tag: {registry.localhost}/absent" in p.stderr


def test_push_all_tags_pushes_every_tag_of_the_repository(engine, registry):
    repo = f"{registry.localhost}/alltags"
    for tag in ("one", "two", "three"):
        engine.docker("tag", "busybox:latest", f"{repo}:{tag}")
    engine.docker("tag", "busybox:latest", f"{registry.localhost}/elsewhere:one")
    out = engine.docker("push", "--all-tags", repo).stdout
    for tag in ("one", "two", "three"):
        assert f"{tag}: digest: sha256:" in out
    status, _, body = registry_request(registry, "GET", "/v2/alltags/tags/list")
    assert status == 200 and sorted(json.loads(body)["tags"]) == ["one", "three", "two"]
    status, _, _ = registry_request(registry, "GET", "/v2/elsewhere/tags/list")
    assert status == 404
    # Without --all-tags the CLI asks for :latest, and there is none.
    p = engine.docker("push", repo, check=False)
    assert p.returncode != 0 and "does not exist locally" in p.stderr
