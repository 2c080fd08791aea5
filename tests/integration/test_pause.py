"""pause / resume freeze and thaw every process of the container."""

import json
import time

from conftest import add_bind, wait_for


def _counter(rt):
    host = rt.hostdir("host")
    b = rt.bundle("sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /host/n.tmp; "
                  "mv /host/n.tmp /host/n; sleep 0.02; done", edit=lambda c: add_bind(c, host, "/host"))
    return b, host / "n"


def _read(p):
    try:
        return int(p.read_text())
    except (FileNotFoundError, ValueError):
        return -1


def test_pause_then_resume_changes_status(rt):
    b = rt.bundle("sleep", "100")
    cid, _ = rt.start_container(b)
    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"


def test_paused_container_does_not_advance(rt):
    b, counter = _counter(rt)
    cid, _ = rt.start_container(b)
    wait_for(lambda: _read(counter) > 3, what="counter to start")
    rt("pause", cid)
    time.sleep(0.1)
    frozen = _read(counter)
    time.sleep(0.6)
    assert _read(counter) == frozen
    rt("resume", cid)
    wait_for(lambda: _read(counter) > frozen + 3, what="counter to advance after resume")


def test_paused_container_list_status(rt):
    b = rt.bundle("sleep", "100")
    cid, _ = rt.start_container(b)
    rt("pause", cid)
    items = {x["id"]: x for x in json.loads(rt("list", "--format", "json").out)}
    assert items[cid]["status"] == "paused"


def test_resume_of_running_container_fails(rt):
    b = rt.bundle("sleep", "100")
    cid, _ = rt.start_container(b)
    assert rt("resume", cid, check=False).rc != 0
    assert rt.state(cid)["status"] == "running"


def test_delete_force_of_paused_container(rt):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    rt("pause", cid)
    rt("delete", "--force", cid)
    assert rt("state", cid, check=False).rc != 0
