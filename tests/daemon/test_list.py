"""`docker ps` and `containers.list` against a real berthd: all, limit, size, and every filter
dockerd has data for. Each test labels its containers with its own `suite` value and filters on
it, so tests sharing the module's daemon do not see each other's containers."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


def _names(engine, *args: str) -> list[str]:
    return engine.docker("ps", *args, "--format", "{{.Names}}").stdout.split()


def _rm(engine, *names: str):
    engine.docker("rm", "-f", *names, check=False)


def test_ps_filters_status_and_label_together(engine):
    engine.docker("run", "--name", "l-done", "-l", "suite=st", "-l", "x=y", "busybox", "true")
    engine.docker("run", "-d", "--name", "l-up", "-l", "suite=st", "-l", "x=y", "busybox", "sleep", "60")
    engine.docker("run", "--name", "l-other", "-l", "suite=st", "-l", "x=z", "busybox", "true")
    engine.docker("create", "--name", "l-new", "-l", "suite=st", "busybox", "true")
    try:
        assert _names(engine, "-a", "--filter", "status=exited", "--filter", "label=x=y") == ["l-done"]
        # A status filter lists stopped containers without -a, as dockerd does.
        assert sorted(_names(engine, "--filter", "status=exited", "--filter", "label=suite=st")) == ["l-done", "l-other"]
        assert _names(engine, "--filter", "label=suite=st") == ["l-up"]
        assert _names(engine, "-a", "--filter", "status=created", "--filter", "label=suite") == ["l-new"]
        # Values of one key are ORed; label values are ANDed.
        assert sorted(_names(engine, "--filter", "status=running", "--filter", "status=created",
                             "--filter", "label=suite=st")) == ["l-new", "l-up"]
        assert _names(engine, "-a", "--filter", "label=suite=st", "--filter", "label=x=nope") == []
    finally:
        _rm(engine, "l-done", "l-up", "l-other", "l-new")


def test_ps_status_column_reads_like_dockers(engine):
    assert engine.docker("run", "--name", "s-exit", "-l", "suite=status", "busybox", "sh", "-c", "exit 3",
                         check=False).returncode == 3
    engine.docker("run", "-d", "--name", "s-up", "-l", "suite=status", "busybox", "sleep", "60")
    engine.docker("create", "--name", "s-new", "-l", "suite=status", "busybox", "true")
    try:
        rows = dict(line.split("\t") for line in engine.docker(
            "ps", "-a", "--filter", "label=suite=status", "--format", "{{.Names}}\t{{.Status}}").stdout.splitlines())
        assert rows["s-new"] == "Created"
        assert rows["s-up"].startswith("Up ") and ("second" in rows["s-up"] or "Less than" in rows["s-up"])
        assert rows["s-exit"].startswith("Exited (3) ") and rows["s-exit"].endswith(" ago")
        states = dict(line.split("\t") for line in engine.docker(
            "ps", "-a", "--filter", "label=suite=status", "--format", "{{.Names}}\t{{.State}}").stdout.splitlines())
        assert states == {"s-new": "created", "s-up": "running", "s-exit": "exited"}
    finally:
        _rm(engine, "s-exit", "s-up", "s-new")


def test_ps_limit_latest_and_quiet_are_newest_first(engine):
    ids = [engine.docker("create", "--name", f"n-{i}", "-l", "suite=limit", "busybox", "true").stdout.strip()
           for i in range(3)]
    try:
        # -n implies -a: these containers never ran.
        assert _names(engine, "-n", "2", "--filter", "label=suite=limit") == ["n-2", "n-1"]
        assert _names(engine, "-l", "--filter", "label=suite=limit") == ["n-2"]
        quiet = engine.docker("ps", "-aq", "--filter", "label=suite=limit").stdout.split()
        assert quiet == [i[:12] for i in reversed(ids)]
        assert engine.docker("ps", "-aq", "--no-trunc", "--filter", "label=suite=limit").stdout.split() == ids[::-1]
    finally:
        _rm(engine, "n-0", "n-1", "n-2")


def test_ps_size_counts_the_writable_layer(engine):
    engine.docker("run", "--name", "sized", "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=1024")
    try:
        status, _, body = engine.request("GET", "/containers/json?all=1&size=1&filters="
                                         + urllib.parse.quote(json.dumps({"name": ["sized"]})))
        assert status == 200
        [row] = json.loads(body)
        assert 1048576 <= row["SizeRw"] < 1048576 + 65536
        assert row["SizeRootFs"] > row["SizeRw"]
        # Without size=1 dockerd leaves both out.
        status, _, body = engine.request("GET", "/containers/json?all=1&filters="
                                         + urllib.parse.quote(json.dumps({"name": ["sized"]})))
        assert "SizeRw" not in json.loads(body)[0]
        size = engine.docker("ps", "-as", "--filter", "name=sized", "--format", "{{.Size}}").stdout.strip()
        assert size.startswith("1.05MB (virtual ")
    finally:
        _rm(engine, "sized")


def test_ps_name_id_ancestor_exited_before_since(engine):
    image_id = engine.docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    assert engine.docker("run", "--name", "f-web", "-l", "suite=misc", "busybox", "sh", "-c", "exit 2",
                         check=False).returncode == 2
    mid = engine.docker("create", "--name", "f-webby", "-l", "suite=misc", "busybox", "true").stdout.strip()
    engine.docker("run", "--name", "f-db", "-l", "suite=misc", "busybox", "true")
    try:
        common = ["-a", "--filter", "label=suite=misc"]
        assert sorted(_names(engine, *common, "--filter", "name=f-web")) == ["f-web", "f-webby"]
        assert _names(engine, *common, "--filter", "name=^/f-web$") == ["f-web"]
        assert _names(engine, *common, "--filter", "name=^f-web$") == ["f-web"]
        assert _names(engine, *common, "--filter", f"id={mid[:10]}") == ["f-webby"]
        for ancestor in ("busybox", "busybox:latest", image_id, image_id.removeprefix("sha256:")[:12]):
            assert len(_names(engine, *common, "--filter", f"ancestor={ancestor}")) == 3, ancestor
        assert _names(engine, *common, "--filter", "ancestor=nosuchimage") == []
        # exited matches only containers that ran and stopped with that code.
        assert _names(engine, *common, "--filter", "exited=2") == ["f-web"]
        assert sorted(_names(engine, *common, "--filter", "exited=0")) == ["f-db"]
        assert _names(engine, *common, "--filter", "before=f-webby") == ["f-web"]
        assert _names(engine, *common, "--filter", "since=f-webby") == ["f-db"]
        assert _names(engine, *common, "--filter", "health=none", "--filter", "exited=2") == ["f-web"]
        assert _names(engine, *common, "--filter", "health=healthy") == []
        missing = engine.docker("ps", "--filter", "before=nosuch", check=False)
        assert missing.returncode != 0 and "No such container: nosuch" in missing.stderr
    finally:
        _rm(engine, "f-web", "f-webby", "f-db")


def test_ps_bad_filters_are_400_with_dockers_message(engine):
    for filters, message in (({"status": ["bogus"]}, "invalid filter 'status=bogus'"),
                             ({"bogus": ["1"]}, "invalid filter 'bogus'"),
                             ({"health": ["meh"]}, "Unrecognised filter value for health: meh")):
        status, _, body = engine.request("GET", "/containers/json?filters=" + urllib.parse.quote(json.dumps(filters)))
        assert (status, json.loads(body)["message"]) == (400, message)
    # The older map form of filters is accepted too.
    status, _, _ = engine.request("GET", "/containers/json?filters="
                                  + urllib.parse.quote(json.dumps({"status": {"running": True}})))
    assert status == 200
    p = engine.docker("ps", "--filter", "status=bogus", check=False)
    assert p.returncode != 0 and "invalid filter 'status=bogus'" in p.stderr


def test_sdk_list_with_filters_limit_and_sparse(engine):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    try:
        client.containers.run("busybox", "true", name="k-a", labels={"suite": "sdk", "tier": "db"})
        client.containers.run("busybox", "sleep 60", name="k-b", labels={"suite": "sdk", "tier": "web"}, detach=True)
        running = client.containers.list(filters={"label": "suite=sdk"})
        assert [c.name for c in running] == ["k-b"] and running[0].status == "running"
        exited = client.containers.list(all=True, filters={"label": ["suite=sdk", "tier=db"], "status": "exited"})
        assert [c.name for c in exited] == ["k-a"]
        assert [c.name for c in client.containers.list(limit=1, filters={"label": "suite=sdk"})] == ["k-b"]
        assert {c.name for c in client.containers.list(all=True, filters={"ancestor": "busybox", "label": "suite=sdk"})} \
            == {"k-a", "k-b"}
    finally:
        for name in ("k-a", "k-b"):
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()
