"""Image endpoints: list, inspect, history, tag, remove, save, load, import, prune, and the
registry ones (pull, push, search, distribution inspect) as far as they go with no registry."""

from __future__ import annotations

import io
import tarfile

import pytest

from conftest import bug, query


def layer_tar() -> bytes:
    """A one-file root filesystem to import."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 0
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def busybox_id(world):
    ids = {d: a.json["Id"] for d, a in world.request("GET", "/images/busybox/json").items()}
    assert ids["berthd"] == ids["dockerd"], "the same archive should give the same image ID"
    return ids["dockerd"]


IMAGE_LIST = bug("GET /images/json: Labels {} and RepoDigests [] where dockerd sends null, and no VirtualSize, which "
                 "dockerd sends below API 1.44 (newer dockerd too, see the version history)")
DANGLING_MAYBE = bug("a dangling filter that is not a boolean: berthd \"invalid filter 'dangling=maybe'\", dockerd "
                     "\"Invalid filter 'dangling=[maybe]'\"")


@pytest.mark.parametrize("params", [
    pytest.param({}, marks=IMAGE_LIST), pytest.param(dict(all=1), marks=IMAGE_LIST),
    pytest.param(dict(filters={"reference": ["busybox"]}), marks=IMAGE_LIST),
    pytest.param(dict(filters={"reference": ["bus*"]}), marks=IMAGE_LIST),
    dict(filters={"dangling": ["true"]}), dict(filters={"label": ["nope"]}), dict(filters={"before": ["busybox"]}),
    dict(filters={"bogus": ["x"]}),
    pytest.param(dict(filters={"dangling": ["maybe"]}), marks=DANGLING_MAYBE),
    pytest.param(dict(filters={"before": ["no-such-image"]}),
                 marks=bug("images filter before=no-such-image: berthd 'No such image: no-such-image', dockerd "
                           "'No such image: no-such-image:latest'")),
    pytest.param(dict(shared_size=1), marks=IMAGE_LIST), pytest.param(dict(digests=1), marks=IMAGE_LIST),
])
def test_list_images(world, params):
    world.same("GET", query("/images/json", **params))


IMAGE_INSPECT = bug("GET /images/{name}/json: Config lacks the container-config keys dockerd sends below API 1.50 "
                    "(Hostname, Domainname, User, Attach*, Tty, OpenStdin, StdinOnce, Image, WorkingDir, Entrypoint, "
                    "OnBuild, Volumes, Labels); no ContainerConfig, which dockerd sends below 1.45; GraphDriver.Data lacks "
                    "MergedDir and WorkDir")


@pytest.mark.parametrize("ref", [pytest.param("busybox", marks=IMAGE_INSPECT), pytest.param("busybox:latest", marks=IMAGE_INSPECT),
                                 pytest.param("{id}", marks=IMAGE_INSPECT), pytest.param("{short}", marks=IMAGE_INSPECT),
                                 "no-such-image", "busybox:no-such-tag", "Bad:Name"])
def test_inspect_image(world, busybox_id, ref):
    ref = ref.format(id=busybox_id, short=busybox_id.removeprefix("sha256:")[:12])
    world.same("GET", f"/images/{ref}/json")


@pytest.mark.parametrize("ref", ["busybox", "no-such-image"])
def test_image_history(world, ref):
    world.same("GET", f"/images/{ref}/history")


def test_tag_and_untag(world):
    world.same("POST", query("/images/busybox/tag", repo="cf-tag", tag="1"))
    world.same("POST", query("/images/busybox/tag", repo="cf-tag", tag="1"))        # again: no error
    world.same("GET", "/images/cf-tag:1/json", only=("$.Id", "$.RepoTags*", "$.RepoDigests*"))
    world.same("DELETE", "/images/cf-tag:1")
    world.same("DELETE", "/images/cf-tag:1")


@pytest.mark.parametrize("path", [
    query("/images/no-such-image/tag", repo="x", tag="1"),
    query("/images/busybox/tag", repo="Bad Name", tag="1"),
    query("/images/busybox/tag", repo="x", tag="bad tag!"),
    pytest.param(query("/images/busybox/tag", repo="busybox@sha256:" + "0" * 64),
                 marks=bug("tag with a digest: berthd 'cannot tag with a digest reference: busybox@sha256:...', dockerd "
                           "'refusing to create a tag with a digest reference'")),
    pytest.param("/images/busybox/tag", marks=bug("tag without repo: berthd 'repository name must have at least one component', "
                                                  "dockerd 'invalid reference format'")),
])
def test_tag_refused(world, path):
    world.same("POST", path)


@pytest.mark.parametrize("path", ["/images/no-such-image", "/images/busybox", query("/images/busybox", noprune=1)])
def test_remove_image_refused(world, path):
    # busybox is used by the world's containers: a conflict.
    world.same("DELETE", path)


def test_save(world):
    world.same("GET", "/images/busybox/get", shape="none")
    world.same("GET", query("/images/get", names="busybox"), shape="none")


@pytest.mark.parametrize("path", ["/images/no-such-image/get", query("/images/get", names="no-such-image")])
@bug("save of an unknown image: berthd 'No such image: no-such-image:latest', dockerd 'No such image: no-such-image'")
def test_save_unknown_image(world, path):
    world.same("GET", path)


def test_load(world, busybox_tar):
    world.same("POST", "/images/load", busybox_tar.read_bytes(), headers={"Content-Type": "application/x-tar"}, shape="lines")
    world.same("POST", "/images/load?quiet=1", busybox_tar.read_bytes(), headers={"Content-Type": "application/x-tar"}, shape="lines")


@bug("POST /images/load of something not a tar: berthd 400 'image archive: Unrecognized archive format'; dockerd 200 and "
     "the error as the stream's last message (errorDetail)")
def test_load_refuses_what_is_not_an_archive(world):
    world.same("POST", "/images/load", b"not a tar", headers={"Content-Type": "application/x-tar"}, shape="lines")


def test_import(world, scratch):
    scratch.images.append("cf-imported:1")
    world.same("POST", query("/images/create", fromSrc="-", repo="cf-imported", tag="1"), layer_tar(),
               headers={"Content-Type": "application/x-tar"}, shape="lines")
    world.same("GET", "/images/cf-imported:1/json", only=("$.Id", "$.RepoTags*", "$.RootFS*", "$.Os", "$.Architecture"))
    world.same("GET", "/images/cf-imported:1/history")


@bug("import with an unknown change: berthd 'BOGUS is not a valid change command', dockerd 'bogus is not a valid change "
     "command' (the instruction lower-cased)")
def test_import_with_a_bad_change(world, scratch):
    scratch.images.append("cf-imported:2")
    world.same("POST", query("/images/create", fromSrc="-", repo="cf-imported", tag="2", changes="BOGUS x"), layer_tar(),
               headers={"Content-Type": "application/x-tar"}, shape="lines")


def test_create_needs_a_source(both):
    both.same("POST", "/images/create")


@pytest.mark.parametrize("ref", ["127.0.0.1:1/busybox", "Bad Name", "busybox@sha256:bogus"])
def test_pull_without_a_registry(both, ref):
    both.same("POST", query("/images/create", fromImage=ref, tag="latest" if "@" not in ref else None) if "@" not in ref
              else query("/images/create", fromImage=ref), shape="lines")


@pytest.mark.parametrize("ref", [
    pytest.param("no-such-image", marks=bug("push of an unknown image: berthd 404 'An image does not exist locally with the tag: "
                                            "no-such-image'; dockerd 200, 'The push refers to repository [docker.io/library/"
                                            "no-such-image]', then that error as the stream's last message")),
    "127.0.0.1:1/busybox"])
def test_push(world, ref):
    if ref.startswith("127"):
        world.same("POST", query("/images/busybox/tag", repo=ref, tag="latest"))
    world.same("POST", f"/images/{ref}/push", headers={"X-Registry-Auth": "e30="}, shape="lines")
    if ref.startswith("127"):
        world.same("DELETE", f"/images/{ref}:latest")


@bug("push without X-Registry-Auth: dockerd 400 'Bad parameters and missing X-Registry-Auth: EOF'; berthd pushes (200)")
def test_push_needs_auth_header(world):
    world.same("POST", "/images/busybox/push", shape="lines")


@pytest.mark.parametrize("params", [dict(term="busybox", limit=0), dict(term="busybox", filters={"bogus": ["x"]}),
                                    dict(term="127.0.0.1:1/busybox")])
def test_search(both, params):
    both.same("GET", query("/images/search", **params))


@pytest.mark.parametrize("ref", ["127.0.0.1:1/busybox", "Bad%20Name"])
def test_distribution_inspect(both, ref):
    both.same("GET", f"/distribution/{ref}/json")


def test_prune_images(world):
    world.same("POST", "/images/prune")
    world.same("POST", query("/images/prune", filters={"label": ["cf-none"]}))
    world.same("POST", query("/images/prune", filters={"bogus": ["x"]}))
    world.same("POST", query("/images/prune", filters={"until": ["bogus"]}))
