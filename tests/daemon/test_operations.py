"""rename, update, restart, container prune and wait conditions against a real berthd, with the
docker CLI and the SDK; update is checked in the container's own cgroup files."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import UnixHTTPConnection, requires_docker_cli

pytestmark = requires_docker_cli


def _inspect(engine, name: str) -> dict:
    return json.loads(engine.docker("inspect", name).stdout)[0]


def _cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> Path:
    """The container's own cgroup file: a v1 hierarchy when the controller has one, else v2."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controller}{path}/{v1_name}")
    unified = next(line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                   if line.startswith("0::"))
    return Path(f"/sys/fs/cgroup{unified}/{v2_name}")


def _events(engine, since: float, container_id: str) -> list[dict]:
    p = engine.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--format", "{{json .}}")
    return [e for e in map(json.loads, p.stdout.splitlines()) if e.get("Actor", {}).get("ID") in (container_id, "")]


def _wait_request(engine, ref: str, condition: str):
    """Sends POST /wait and returns once the response headers arrived (the wait is registered)."""
    conn = UnixHTTPConnection(engine.socket, timeout=30)
    conn.request("POST", f"/containers/{ref}/wait?condition={condition}")
    response = conn.getresponse()
    assert response.status == 200
    return conn, response


def test_rename_keeps_the_container_and_frees_the_old_name(engine):
    since = time.time()
    cid = engine.docker("run", "-d", "--name", "rn-old", "busybox", "sleep", "60").stdout.strip()
    engine.docker("create", "--name", "rn-taken", "busybox", "true")
    try:
        engine.docker("rename", "rn-old", "rn-new")
        info = _inspect(engine, "rn-new")
        assert info["Id"] == cid and info["Name"] == "/rn-new" and info["State"]["Running"]
        missing = engine.docker("container", "inspect", "rn-old", check=False)
        assert missing.returncode != 0 and "No such container: rn-old" in missing.stderr
        conflict = engine.docker("rename", "rn-new", "rn-taken", check=False)
        taken_id = _inspect(engine, "rn-taken")["Id"]
        assert conflict.returncode != 0
        assert (f'Error when allocating new name: Conflict. The container name "/rn-taken" is already in use by '
                f'container "{taken_id}"') in conflict.stderr
        status, _, body = engine.request("POST", "/containers/rn-new/rename?name=rn-taken")
        assert status == 409
        status, _, body = engine.request("POST", "/containers/rn-new/rename?name=-bad")
        assert status == 400 and "Invalid container name (-bad)" in json.loads(body)["message"]
        status, _, _ = engine.request("POST", "/containers/nosuch/rename?name=x1")
        assert status == 404
        renames = [e for e in _events(engine, since, cid) if e["Action"] == "rename"]
        assert renames and renames[0]["Actor"]["Attributes"]["oldName"] == "/rn-old"
        assert renames[0]["Actor"]["Attributes"]["name"] == "rn-new"
    finally:
        engine.docker("rm", "-f", "rn-new", "rn-old", "rn-taken", check=False)


def test_update_applies_limits_to_a_running_container(engine):
    engine.docker("run", "-d", "--name", "up-run", "busybox", "sleep", "60")
    try:
        pid = _inspect(engine, "up-run")["State"]["Pid"]
        memory = _cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
        pids = _cgroup_file(pid, "pids", "pids.max", "pids.max")
        engine.docker("update", "--memory", "64m", "--pids-limit", "50", "--cpu-shares", "512", "up-run")
        assert int(memory.read_text()) == 64 * 1024 * 1024
        assert pids.read_text().strip() == "50"
        host = _inspect(engine, "up-run")["HostConfig"]
        assert (host["Memory"], host["PidsLimit"], host["CpuShares"]) == (64 * 1024 * 1024, 50, 512)
        # Raising memory past the swap limit set with it needs the swap raised too, as in Docker.
        engine.docker("update", "--memory", "32m", "--memory-swap", "64m", "up-run")
        refused = engine.docker("update", "--memory", "100m", "up-run", check=False)
        assert refused.returncode != 0 and "Memory limit should be smaller than already set memoryswap limit" in refused.stderr
        assert int(memory.read_text()) == 32 * 1024 * 1024
        too_small = engine.docker("update", "--memory", "1m", "up-run", check=False)
        assert too_small.returncode != 0 and "Minimum memory limit allowed is 6MB" in too_small.stderr
    finally:
        engine.docker("rm", "-f", "up-run")


def test_update_restart_policy_and_stopped_container(engine):
    engine.docker("create", "--name", "up-stopped", "busybox", "true")
    try:
        engine.docker("update", "--restart", "on-failure:3", "--memory", "48m", "up-stopped")
        host = _inspect(engine, "up-stopped")["HostConfig"]
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        assert host["Memory"] == 48 * 1024 * 1024
        status, _, body = engine.request("POST", "/containers/up-stopped/update", body=json.dumps({"CpuShares": 256}),
                                         headers={"Content-Type": "application/json"})
        assert (status, json.loads(body)) == (200, {"Warnings": []})
        bad = engine.docker("update", "--restart", "sometimes", "up-stopped", check=False)
        assert bad.returncode != 0
    finally:
        engine.docker("rm", "-f", "up-stopped")


def test_restart_is_a_new_run_of_the_same_container(engine):
    since = time.time()
    cid = engine.docker("run", "-d", "--name", "rs-up", "busybox", "sleep", "60").stdout.strip()
    engine.docker("create", "--name", "rs-new", "busybox", "sleep", "60")
    try:
        before = _inspect(engine, "rs-up")["State"]
        engine.docker("restart", "-t", "0", "rs-up")
        after = _inspect(engine, "rs-up")
        assert after["Id"] == cid and after["State"]["Running"]
        assert after["State"]["StartedAt"] != before["StartedAt"] and after["State"]["Pid"] != before["Pid"]
        # A container that never ran is simply started.
        engine.docker("restart", "rs-new")
        assert _inspect(engine, "rs-new")["State"]["Running"]
        actions = [e["Action"] for e in _events(engine, since, cid)]
        assert "restart" in actions and actions.index("restart") > actions.index("die")
        missing = engine.docker("restart", "nosuch", check=False)
        assert missing.returncode != 0 and "No such container: nosuch" in missing.stderr
    finally:
        engine.docker("rm", "-f", "rs-up", "rs-new")


def test_prune_removes_only_stopped_containers_the_filters_select(engine):
    since = time.time()
    gone = [engine.docker("create", "--name", "pr-created", "-l", "suite=prune", "busybox", "true").stdout.strip()]
    engine.docker("run", "--name", "pr-exited", "-l", "suite=prune", "busybox", "dd", "if=/dev/zero", "of=/blob",
                  "bs=1024", "count=100")
    gone.append(_inspect(engine, "pr-exited")["Id"])
    engine.docker("run", "--name", "pr-keep", "-l", "suite=prune", "-l", "keep=1", "busybox", "true")
    engine.docker("run", "-d", "--name", "pr-up", "-l", "suite=prune", "busybox", "sleep", "60")
    engine.docker("run", "--name", "pr-other", "-l", "suite=other", "busybox", "true")
    try:
        # Containers created in the last hour are younger than until=1h: nothing goes.
        p = engine.docker("container", "prune", "-f", "--filter", "until=1h", "--filter", "label=suite=prune")
        assert "Total reclaimed space: 0B" in p.stdout
        p = engine.docker("container", "prune", "-f", "--filter", "label=suite=prune", "--filter", "label!=keep")
        assert sorted(p.stdout.split("Deleted Containers:\n")[1].split("\n\n")[0].split()) == sorted(gone)
        assert "Total reclaimed space: 102.4kB" in p.stdout
        left = engine.docker("ps", "-a", "--filter", "label=suite", "--format", "{{.Names}}").stdout.split()
        assert sorted(left) == ["pr-keep", "pr-other", "pr-up"]
        assert any(e["Action"] == "prune" and e["Type"] == "container" for e in _events(engine, since, ""))
        status, _, body = engine.request("POST", "/containers/prune?filters=" + urllib.parse.quote(json.dumps({"bogus": ["1"]})))
        assert (status, json.loads(body)["message"]) == (400, "invalid filter 'bogus'")
    finally:
        engine.docker("rm", "-f", "pr-created", "pr-exited", "pr-keep", "pr-up", "pr-other", check=False)


def test_sdk_rename_update_restart_prune(engine):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    c = client.containers.run("busybox", "sleep 60", name="sdk-op", detach=True, labels={"suite": "sdkop"})
    try:
        c.rename("sdk-op2")
        c.reload()
        assert c.name == "sdk-op2"
        assert c.update(mem_limit="80m", memswap_limit="160m") == {"Warnings": []}
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 80 * 1024 * 1024
        assert int(_cgroup_file(c.attrs["State"]["Pid"], "memory", "memory.limit_in_bytes", "memory.max")
                   .read_text()) == 80 * 1024 * 1024
        started = c.attrs["State"]["StartedAt"]
        c.restart(timeout=0)
        c.reload()
        assert c.status == "running" and c.attrs["State"]["StartedAt"] != started
        c.stop(timeout=0)
        result = client.containers.prune(filters={"label": "suite=sdkop"})
        assert result["ContainersDeleted"] == [c.id] and result["SpaceReclaimed"] == 0
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(c.id)
    finally:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        client.close()


def test_wait_conditions(engine):
    engine.docker("run", "--name", "wt-done", "busybox", "sh", "-c", "exit 5", check=False)
    engine.docker("run", "-d", "--name", "wt-next", "busybox", "sleep", "60")
    engine.docker("run", "-d", "--name", "wt-rm", "busybox", "sleep", "60")
    try:
        # not-running answers at once for a stopped container, with its code.
        assert engine.docker("wait", "wt-done").stdout.strip() == "5"
        conn, response = _wait_request(engine, "wt-next", "next-exit")
        engine.docker("kill", "wt-next")
        assert json.loads(response.read())["StatusCode"] == 137
        conn.close()
        conn, response = _wait_request(engine, "wt-rm", "removed")
        engine.docker("rm", "-f", "wt-rm")
        assert json.loads(response.read())["StatusCode"] == 137
        conn.close()
        status, _, body = engine.request("POST", "/containers/wt-done/wait?condition=sometime")
        assert status == 400 and "invalid condition" in json.loads(body)["message"]
    finally:
        engine.docker("rm", "-f", "wt-done", "wt-next", "wt-rm", check=False)


def test_stop_and_restart_take_a_signal(engine):
    cid = engine.docker("run", "-d", "busybox", "sh", "-c", "trap 'exit 11' USR1; trap 'exit 12' TERM; while true; do sleep 0.1; done").stdout.strip()
    try:
        time.sleep(0.3)
        status, _, _ = engine.request("POST", f"/containers/{cid}/stop?signal=USR1&t=5")
        assert status == 204
        assert engine.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "11"
        status, _, body = engine.request("POST", f"/containers/{cid}/stop?signal=BOGUS")
        assert status == 304  # already stopped: nothing to do, whatever the signal
        engine.docker("start", cid)
        time.sleep(0.3)
        status, _, body = engine.request("POST", f"/containers/{cid}/stop?signal=BOGUS")
        assert status == 400 and b"Invalid signal: BOGUS" in body
        assert engine.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    finally:
        engine.docker("rm", "-f", cid)
