"""create / start / state / kill / delete, as runtime.md "Operations" describes them."""

import json
import os
import time

import pytest

from conftest import NOT_FOUND_RE, add_bind, pid_alive, wait_for


def _marker_bundle(rt):
    host = rt.hostdir("host")
    b = rt.bundle("sh", "-c", "touch /host/marker; exec sleep 100",
                  edit=lambda c: add_bind(c, host, "/host"))
    return b, host / "marker"


def test_create_reports_created_state_with_pid_bundle_and_version(rt):
    b, _ = _marker_bundle(rt)
    cid = rt.new_id()
    pidfile = rt.tmp / "pid"
    rt("create", "--pid-file", pidfile, "--bundle", b, cid)
    st = rt.state(cid)
    assert st["id"] == cid
    assert st["status"] == "created"
    assert st["pid"] == int(pidfile.read_text().strip())
    assert pid_alive(st["pid"])
    assert st["bundle"] == str(b.resolve())
    assert os.path.isabs(st["bundle"])
    assert isinstance(st["ociVersion"], str) and st["ociVersion"].startswith("1.")


def test_create_does_not_run_user_process_until_start(rt):
    # runtime.md create: "process.args MUST NOT be applied until triggered by the start operation"
    b, marker = _marker_bundle(rt)
    cid = rt.create(b)
    time.sleep(0.3)
    assert not marker.exists()
    rt("start", cid)
    wait_for(marker.exists, what="marker written by the started process")
    assert rt.state(cid)["status"] == "running"


def test_create_with_relative_bundle_path_records_absolute_bundle(rt):
    b = rt.bundle("sleep", "100")
    cid = rt.new_id()
    rt("create", "--bundle", b.name, cid, cwd=b.parent)
    assert rt.state(cid)["bundle"] == str(b.resolve())


def test_create_uses_cwd_as_default_bundle(rt):
    b = rt.bundle("sleep", "100")
    cid = rt.new_id()
    rt("create", cid, cwd=b)
    assert rt.state(cid)["bundle"] == str(b.resolve())


def test_start_moves_to_running(rt):
    b = rt.bundle("sleep", "100")
    cid = rt.create(b)
    rt("start", cid)
    st = rt.state(cid)
    assert st["status"] == "running"
    assert pid_alive(st["pid"])


def test_process_exit_moves_to_stopped(rt):
    b = rt.bundle("true")
    cid = rt.create(b)
    rt("start", cid)
    rt.wait_status(cid, "stopped")


@pytest.mark.parametrize("sig", ["KILL", "9", "SIGKILL"])
def test_kill_stops_container(rt, sig):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    rt("kill", cid, sig)
    rt.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="container process to die")


def test_kill_default_signal_is_sigterm(rt):
    # PID 1 of a pid namespace only receives signals it handles: trap TERM and record it.
    host = rt.hostdir("host")
    b = rt.bundle("sh", "-c", "trap 'echo term > /host/sig; exit 0' TERM; touch /host/ready; "
                  "while :; do sleep 0.05; done", edit=lambda c: add_bind(c, host, "/host"))
    cid, _ = rt.start_container(b)
    wait_for((host / "ready").exists)
    rt("kill", cid)
    rt.wait_status(cid, "stopped")
    assert (host / "sig").read_text() == "term\n"


def test_kill_of_created_container_stops_it(rt):
    # runtime.md kill: allowed on a container that is "created" or "running"
    b = rt.bundle("sleep", "100")
    cid = rt.create(b)
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")


def test_kill_of_stopped_container_fails(rt):
    # runtime.md kill: "Attempting to send a signal to a container that is neither created nor
    # running MUST have no effect on the container and MUST generate an error."
    b = rt.bundle("true")
    cid, _ = rt.start_container(b)
    rt.wait_status(cid, "stopped")
    assert rt("kill", cid, "KILL", check=False).rc != 0
    assert rt.state(cid)["status"] == "stopped"


def test_delete_removes_stopped_container(rt):
    b = rt.bundle("sleep", "100")
    cid, _ = rt.start_container(b)
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt("delete", cid)
    r = rt("state", cid, check=False)
    assert r.rc != 0
    assert cid in r.err or NOT_FOUND_RE.search(r.err), r
    assert not (rt.root / cid).exists()
    assert cid not in rt("list", "-q").out.split()


def test_delete_of_running_container_without_force_fails(rt):
    # runtime.md delete: "Attempting to delete a container that is not stopped MUST have no
    # effect on the container and MUST generate an error."
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    r = rt("delete", cid, check=False)
    assert r.rc != 0
    assert r.err.strip()
    assert rt.state(cid)["status"] == "running"
    assert pid_alive(pid)


def test_delete_force_removes_running_container(rt):
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    rt("delete", "--force", cid)
    assert rt("state", cid, check=False).rc != 0
    wait_for(lambda: not pid_alive(pid), what="container process to die")


def test_delete_of_created_container_removes_it(rt):
    # runtime.md delete says a container that is not "stopped" MUST NOT be deleted, but runc
    # deletes a "created" container without --force and containerd's shim relies on it
    # (createdState.Delete calls `runc delete` without --force). Berth follows runc here.
    b = rt.bundle("sleep", "100")
    cid = rt.create(b)
    pid = rt.state(cid)["pid"]
    rt("delete", cid)
    assert rt("state", cid, check=False).rc != 0
    wait_for(lambda: not pid_alive(pid), what="init process to die")


def test_start_twice_fails_and_leaves_container_running(rt):
    # runtime.md start: "Attempting to start a container that is not created MUST have no
    # effect on the container and MUST generate an error."
    b = rt.bundle("sleep", "100")
    cid, pid = rt.start_container(b)
    r = rt("start", cid, check=False)
    assert r.rc != 0
    assert r.err.strip()
    st = rt.state(cid)
    assert st["status"] == "running" and st["pid"] == pid


def test_start_of_stopped_container_fails(rt):
    b = rt.bundle("true")
    cid, _ = rt.start_container(b)
    rt.wait_status(cid, "stopped")
    assert rt("start", cid, check=False).rc != 0
    assert rt.state(cid)["status"] == "stopped"


def test_state_of_stopped_container_keeps_id_and_bundle(rt):
    b = rt.bundle("true")
    cid, _ = rt.start_container(b)
    st = rt.wait_status(cid, "stopped")
    assert st["id"] == cid and st["bundle"] == str(b.resolve())


def test_list_shows_containers_in_table(rt):
    b1, b2 = rt.bundle("sleep", "100"), rt.bundle("sleep", "100")
    c1, p1 = rt.start_container(b1)
    c2 = rt.create(b2)
    p2 = rt.state(c2)["pid"]
    out = rt("list").out
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["ID", "PID", "STATUS", "BUNDLE"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert rows[c1][1:4] == [str(p1), "running", str(b1.resolve())]
    assert rows[c2][1:4] == [str(p2), "created", str(b2.resolve())]


def test_list_quiet_prints_ids_only(rt):
    b1, b2 = rt.bundle("sleep", "100"), rt.bundle("sleep", "100")
    c1, _ = rt.start_container(b1)
    c2 = rt.create(b2)
    assert sorted(rt("list", "-q").out.split()) == sorted([c1, c2])


def test_list_json_shows_id_pid_status_bundle(rt):
    b1, b2 = rt.bundle("sleep", "100"), rt.bundle("sleep", "100")
    c1, p1 = rt.start_container(b1)
    c2 = rt.create(b2)
    p2 = rt.state(c2)["pid"]
    items = {x["id"]: x for x in json.loads(rt("list", "--format", "json").out)}
    assert set(items) == {c1, c2}
    assert (items[c1]["pid"], items[c1]["status"], items[c1]["bundle"]) == (p1, "running", str(b1.resolve()))
    assert (items[c2]["pid"], items[c2]["status"], items[c2]["bundle"]) == (p2, "created", str(b2.resolve()))


def test_list_of_empty_root_is_empty(rt):
    assert rt("list", "-q").out.strip() == ""
    r = rt("list", "--format", "json")
    assert json.loads(r.out or "null") in (None, [])
