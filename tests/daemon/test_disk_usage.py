"""`docker system df` and `docker system prune` against a real berthd."""

from __future__ import annotations

import json

import docker

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


def test_system_df_counts_images_containers_and_volumes(engine):
    engine.docker("volume", "create", "dfvol")
    cid = engine.docker("run", "-d", "-v", "dfvol:/data", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /data/f; head -c 50000 /dev/zero > /big; sleep 100").stdout.strip()
    try:
        rows = {}
        for line in engine.docker("system", "df", "--format", "{{json .}}").stdout.splitlines():
            row = json.loads(line)
            rows[row["Type"]] = row
        assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1"
        assert rows["Containers"]["TotalCount"] == "1" and rows["Containers"]["Active"] == "1"
        assert rows["Local Volumes"]["TotalCount"] == "1"
        client = docker.DockerClient(base_url=engine.host)
        df = client.df()
        assert df["LayersSize"] > 500_000  # busybox is about a megabyte unpacked
        assert df["Images"][0]["Containers"] == 1
        vol = next(v for v in df["Volumes"] if v["Name"] == "dfvol")
        assert vol["UsageData"]["Size"] >= 100_000 and vol["UsageData"]["RefCount"] == 1
        container = next(c for c in df["Containers"] if c["Id"] == cid)
        assert container["SizeRw"] >= 50_000
    finally:
        engine.docker("rm", "-f", cid)
        engine.docker("volume", "rm", "dfvol")


def test_unknown_df_type_is_400(engine):
    status, _, body = engine.request("GET", "/system/df?type=bogus")
    assert status == 400 and b"unknown object type" in body


def test_system_prune_removes_stopped_containers_and_keeps_running_ones(engine):
    stopped = engine.docker("create", "busybox", "true").stdout.strip()
    running = engine.docker("run", "-d", "busybox", "sleep", "100").stdout.strip()
    try:
        p = engine.docker("system", "prune", "-f")
        assert stopped in p.stdout
        ids = engine.docker("ps", "-aq", "--no-trunc").stdout.split()
        assert running in ids and stopped not in ids
        assert "busybox" in engine.docker("images").stdout  # in use, and tagged: not dangling
    finally:
        engine.docker("rm", "-f", running)
