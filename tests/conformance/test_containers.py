"""Container endpoints: list, create, inspect, the lifecycle verbs, rename, update, wait, logs,
top, stats, resize, attach, prune; with their error cases."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from conftest import API, bug, demux, hijack, query

BUSYBOX = {"Image": "busybox", "Cmd": ["sleep", "100000"]}

# What flows compare of a container's inspect (test_inspect_container covers the rest).
STATE = ("$.State*", "$.Name", "$.RestartCount", "$.Path", "$.NetworkSettings.Networks*", "$.Mounts*")

INSPECT_GAPS = bug(
    "GET /containers/{id}/json lacks keys dockerd 20.10 sends at 1.41 (and newer dockerd too): HostnamePath, HostsPath, "
    "ResolvConfPath, LogPath, GraphDriver, MountLabel, ProcessLabel, AppArmorProfile, ExecIDs (null); Config.User, "
    "WorkingDir, Entrypoint, OnBuild, Domainname, Attach*, Tty, OpenStdin, StdinOnce, Labels; HostConfig echoes the create "
    "request instead of the full set (Binds, CapAdd, CapDrop, Dns*, ExtraHosts, GroupAdd, Links, MaskedPaths, ReadonlyPaths, "
    "Runtime, SecurityOpt, VolumesFrom, ConsoleSize, Blkio*, Cpu*, KernelMemory*, IOMaximum*, DeviceCgroupRules, "
    "DeviceRequests, ShmSize 67108864, RestartPolicy...); NetworkSettings.GlobalIPv6*, IPv6Gateway, LinkLocalIPv6*, "
    "Secondary*; values: HostConfig.IpcMode '' (dockerd 'private'), MemorySwappiness -1 and PidsLimit 0 (dockerd null), "
    "Config.Volumes {} (dockerd null)")


# ---- List and inspect ----

COMMAND_QUOTING = bug("GET /containers/json: Command quotes an argument with spaces in double quotes (sh -c \"echo out; "
                      "...\"), dockerd in single quotes (sh -c 'echo out; ...')")


@pytest.mark.parametrize("path", [
    "/containers/json",
    pytest.param(query("/containers/json", all=1), marks=COMMAND_QUOTING),
    pytest.param(query("/containers/json", all=1, size=1),
                 marks=bug("GET /containers/json?size=1: SizeRw 0 where dockerd omits it when 0 (omitempty)")),
    query("/containers/json", all=1, filters={"label": ["a=b"]}),
    pytest.param(query("/containers/json", all=1, filters={"status": ["exited"]}), marks=COMMAND_QUOTING),
    query("/containers/json", all=1, filters={"name": ["cf-running"]}),
    pytest.param(query("/containers/json", all=1, filters={"name": ["cf-exited"]}, limit=1), marks=COMMAND_QUOTING),
    query("/containers/json", filters={"bogus": ["x"]}),
    query("/containers/json", filters={"status": ["bogus"]}),
    query("/containers/json", filters="{not json"),
])
def test_list_containers(world, path):
    world.same("GET", path)


@INSPECT_GAPS
@pytest.mark.parametrize("name", ["cf-created", "cf-running", "cf-exited"])
def test_inspect_container(world, name):
    world.same("GET", f"/containers/{name}/json")


@pytest.mark.parametrize("name", ["cf-created", "cf-running", "cf-exited"])
def test_inspect_container_state(world, name):
    world.same("GET", f"/containers/{name}/json", only=STATE)


@bug("GET /containers/{id}/json?size=1 lacks SizeRw and SizeRootFs")
def test_inspect_container_with_size(world):
    world.same("GET", query("/containers/cf-running/json", size=1), only=("$.Size*",))


def test_inspect_unknown_container_is_404(both):
    both.same("GET", "/containers/no-such-container/json")
    both.same("GET", "/containers/0123456789ab/json")


# ---- Create ----

def test_create_answers_id_and_warnings(both, scratch):
    name = scratch.name()
    scratch.containers.append(name)
    both.same("POST", query("/containers/create", name=name), BUSYBOX)


@bug("a container created with a full host config: its inspect shows HostConfig.MemorySwap missing (dockerd: twice Memory), "
     "Path/Args the init's ('--', ...) where dockerd shows the command, and the gaps of test_inspect_container")
def test_create_with_a_full_host_config(both, scratch):
    name = scratch.name()
    scratch.containers.append(name)
    body = {"Image": "busybox", "Cmd": ["sleep", "100000"], "Env": ["A=1"], "Labels": {"x": "y"}, "WorkingDir": "/tmp",
            "User": "1:1", "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGUSR1", "StopTimeout": 3,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 10000000000},
            "HostConfig": {"Memory": 67108864, "CpuShares": 512, "PidsLimit": 100, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                           "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}, "Binds": ["cf-vol:/data"],
                           "Tmpfs": {"/run": "size=1m"}, "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"], "ExtraHosts": ["h:10.0.0.1"],
                           "Dns": ["10.0.0.2"], "ReadonlyRootfs": True, "Init": True, "ShmSize": 1048576,
                           "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}},
            "NetworkingConfig": {"EndpointsConfig": {"cf-net": {"Aliases": ["web"]}}}}
    both.request("POST", query("/containers/create", name=name), body)
    both.same("GET", f"/containers/{name}/json")


@pytest.mark.parametrize("name,body", [
    ("cf-running", BUSYBOX),                                  # name conflict
    ("bad/name", BUSYBOX),
    (None, {"Image": "no-such-image"}),
    (None, {"Image": "busybox:no-such-tag"}),
    pytest.param(None, {}, marks=bug("POST /containers/create {}: berthd 'no image specified: config.Image is required', "
                                      "dockerd 'Config cannot be empty in order to create a container'")),
    (None, "{bad json"),
    (None, '{"Image": 3}'),
    (None, {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "bogus"}}}),
    (None, {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}}),
    (None, {"Image": "busybox", "HostConfig": {"NetworkMode": "no-such-network"}}),
    pytest.param(None, {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}},
                 marks=bug("a bad host port: berthd 'invalid host port \"x\" for 80/tcp: a port (1-65535) or a range low-high', "
                           "dockerd 'invalid port specification: \"x\"'")),
    (None, {"Image": "busybox", "HostConfig": {"Binds": ["relative:/x:bogus"]}}),
    (None, {"Image": "busybox", "HostConfig": {"Memory": 1}}),
    pytest.param(None, {"Image": "busybox", "HostConfig": {"VolumesFrom": ["no-such-container"]}},
                 marks=bug("VolumesFrom an unknown container: berthd 404, dockerd 400 (same message)")),
])
def test_create_refused(both, scratch, name, body):
    if name is None:
        name = scratch.name()
        scratch.containers.append(name)  # what one daemon accepts by mistake is removed after the test
    both.same("POST", query("/containers/create", name=name), body)


# ---- Lifecycle ----

def test_start_stop_restart_kill_remove(both, scratch):
    name = scratch.container()
    both.same("POST", f"/containers/{name}/start")
    both.same("POST", f"/containers/{name}/start")                 # 304: already started
    both.same("POST", f"/containers/{name}/restart?t=0")
    both.same("POST", f"/containers/{name}/stop?t=0")
    both.same("POST", f"/containers/{name}/stop")                  # 304: already stopped
    both.same("GET", f"/containers/{name}/json", only=STATE)
    both.same("DELETE", f"/containers/{name}")
    both.same("DELETE", f"/containers/{name}")                     # 404 now


def test_kill_returns_once_the_container_exited(both, scratch):
    name = scratch.container(start=True)
    both.same("POST", f"/containers/{name}/kill")
    both.same("GET", f"/containers/{name}/json", only=STATE)


def test_kill_with_a_signal_the_container_survives(both, scratch):
    name = scratch.container(body={"Image": "busybox", "Cmd": ["sh", "-c", "trap '' USR1; sleep 100000"]}, start=True)
    both.same("POST", f"/containers/{name}/kill?signal=SIGUSR1")
    both.same("POST", f"/containers/{name}/kill?signal=BOGUS")


@pytest.mark.parametrize("method,path", [
    ("POST", "/containers/cf-exited/kill"),
    ("POST", "/containers/cf-created/kill"),
    ("POST", "/containers/cf-exited/pause"),
    ("POST", "/containers/cf-created/unpause"),
    ("POST", "/containers/cf-running/unpause"),
    ("GET", "/containers/cf-exited/top"),
    ("POST", "/containers/cf-exited/resize?h=10&w=10"),
    ("POST", "/containers/cf-running/resize?h=x&w=10"),
    ("POST", "/containers/cf-running/resize"),
    ("POST", "/containers/cf-running/start"),
    ("POST", "/containers/cf-created/stop"),
    ("POST", "/containers/cf-exited/restart?t=bogus"),
    ("POST", "/containers/cf-running/stop?t=bogus"),
    ("DELETE", "/containers/cf-running"),
    ("POST", "/containers/cf-running/rename?name=cf-created"),
    ("POST", "/containers/cf-running/rename"),
    pytest.param("POST", "/containers/cf-running/rename?name=bad/name",
                 marks=bug("rename to an invalid name: berthd 'Invalid container name (bad/name), ...', dockerd "
                           "'Error when allocating new name: Invalid container name (/bad/name), ...'")),
    ("POST", "/containers/cf-exited/wait?condition=bogus"),
    ("GET", "/containers/cf-exited/logs"),
    ("GET", "/containers/cf-exited/logs?stdout=1&since=bogus"),
    ("GET", "/containers/cf-running/stats?stream=1&one-shot=1"),
    ("POST", "/containers/cf-running/attach?detachKeys=bogus-key"),
])
def test_refused_in_this_state(world, method, path):
    world.same(method, path)


@pytest.mark.parametrize("method,path", [
    ("POST", "/containers/{x}/start"), ("POST", "/containers/{x}/stop"), ("POST", "/containers/{x}/restart"),
    ("POST", "/containers/{x}/kill"), ("POST", "/containers/{x}/pause"), ("POST", "/containers/{x}/unpause"),
    ("POST", "/containers/{x}/rename?name=y"), ("POST", "/containers/{x}/update"), ("POST", "/containers/{x}/wait"),
    ("DELETE", "/containers/{x}"), ("GET", "/containers/{x}/logs?stdout=1"), ("GET", "/containers/{x}/top"),
    ("GET", "/containers/{x}/stats?stream=0"), ("POST", "/containers/{x}/resize?h=1&w=1"),
    ("POST", "/containers/{x}/attach?stream=1&stdout=1"), ("POST", "/containers/{x}/exec"),
])
def test_unknown_container_is_404(both, method, path):
    body = {"Cmd": ["true"]} if path.endswith("/exec") else {} if path.endswith("/update") else None
    both.same(method, path.replace("{x}", "no-such-container"), body)


def test_pause_and_unpause(both, scratch):
    name = scratch.container(start=True)
    both.same("POST", f"/containers/{name}/pause")
    both.same("POST", f"/containers/{name}/pause")
    both.same("GET", f"/containers/{name}/json", only=STATE)
    both.same("POST", f"/containers/{name}/unpause")


@bug("DELETE of a paused container: berthd 'cannot remove container \"/x\": container is running: stop the container "
     "before removing or force remove', dockerd 20.10 'You cannot remove a paused container <id>. Unpause and then stop the "
     "container before attempting removal or force remove' (newer dockerd: '... container is paused and must be unpaused first')")
def test_remove_a_paused_container_is_refused(both, scratch):
    name = scratch.container(start=True)
    both.request("POST", f"/containers/{name}/pause")
    both.same("DELETE", f"/containers/{name}")


def test_rename(both, scratch):
    name = scratch.container()
    new = scratch.name()
    scratch.containers.append(new)
    both.same("POST", query(f"/containers/{name}/rename", name=new))
    both.same("POST", query(f"/containers/{new}/rename", name=new))
    both.same("GET", f"/containers/{new}/json", only=STATE)


WARNINGS_NULL = bug("POST /containers/{id}/update: Warnings [] where dockerd sends null")


@pytest.mark.parametrize("body", [
    pytest.param({"Memory": 134217728, "MemorySwap": -1}, marks=WARNINGS_NULL),
    pytest.param({"RestartPolicy": {"Name": "always"}}, marks=WARNINGS_NULL),
    pytest.param({"CpuShares": 256, "PidsLimit": 50}, marks=WARNINGS_NULL),
    {"Memory": 1}, "{bad json", {"RestartPolicy": {"Name": "bogus"}},
])
def test_update(both, scratch, body):
    name = scratch.container(start=True)
    both.same("POST", f"/containers/{name}/update", body)


@pytest.mark.parametrize("condition", ["", "not-running"])
def test_wait(both, scratch, condition):
    name = scratch.container(body={"Image": "busybox", "Cmd": ["sh", "-c", "exit 7"]}, start=True)
    path = query(f"/containers/{name}/wait", condition=condition) if condition else f"/containers/{name}/wait"
    both.same("POST", path)
    both.same("DELETE", f"/containers/{name}")
    both.same("POST", path)


def test_wait_for_removal(both, scratch):
    name = scratch.container(body={"Image": "busybox", "Cmd": ["sh", "-c", "exit 7"]}, start=True)
    both.request("POST", f"/containers/{name}/wait")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # The wait answers its status line at once, then the exit once the DELETE happened.
        waits = {}
        for daemon, d in both.daemons.items():
            answered = threading.Event()
            waits[daemon] = pool.submit(hijack, d.socket, "POST", f"/containers/{name}/wait?condition=removed", upgraded=answered)
            assert answered.wait(20), f"{daemon}: wait did not answer"
        both.same("DELETE", f"/containers/{name}")
        both.judge("POST", f"{API}/containers/{name}/wait?condition=removed", {k: f.result() for k, f in waits.items()})


def test_wait_exited(world):
    world.same("POST", "/containers/cf-exited/wait")


# ---- Output: logs, top, stats, attach ----

MUX_AT_141 = bug("logs, attach: at API 1.41 dockerd sends Content-Type application/vnd.docker.raw-stream (20.10: none for "
                 "logs) even when the stream is multiplexed; berthd sends application/vnd.docker.multiplexed-stream, which "
                 "API 1.42 introduced (see the API version history)")


@MUX_AT_141
# (Which of "out" and "err" was logged first is up to each daemon's readers: a tail takes both.)
@pytest.mark.parametrize("params", [dict(stdout=1, stderr=1), dict(stdout=1), dict(stderr=1), dict(stdout=1, stderr=1, tail=2),
                                    dict(stdout=1, stderr=1, timestamps=1)])
def test_logs(world, params):
    c = world.same("GET", query("/containers/cf-exited/logs", **params), shape="none")
    b, d = demux(c.berthd.body), demux(c.dockerd.body)
    if params.get("timestamps"):
        b = {k: v.split(b" ", 1)[-1] for k, v in (b or {}).items()}
        d = {k: v.split(b" ", 1)[-1] for k, v in (d or {}).items()}
    assert b == d, f"demultiplexed logs: berthd {b!r}, dockerd {d!r}"


def test_logs_of_a_tty_container_are_raw(both, scratch):
    name = scratch.container(body={"Image": "busybox", "Tty": True, "Cmd": ["echo", "hi"]})
    for daemon, a in both.request("POST", f"/containers/{name}/start").items():
        assert a.status == 204, daemon
    both.request("POST", f"/containers/{name}/wait")
    c = both.same("GET", query(f"/containers/{name}/logs", stdout=1, stderr=1), shape="text")
    assert c.berthd.body == c.dockerd.body


def test_top(world):
    world.same("GET", "/containers/cf-running/top")
    world.same("GET", query("/containers/cf-running/top", ps_args="-o pid,comm"))


@pytest.mark.parametrize("name,params", [
    pytest.param("cf-running", dict(stream=0, one_shot=1), marks=bug("stats: memory_stats.failcnt 0 where dockerd omits it (omitempty)")),
    pytest.param("cf-running", dict(stream=0), marks=bug("stats: memory_stats.failcnt 0 where dockerd omits it (omitempty)")),
    ("cf-exited", dict(stream=0)),
])
def test_stats(world, name, params):
    world.same("GET", query(f"/containers/{name}/stats", **params), timeout=60)


def attach_then_start(both, name: str, params: str) -> dict:
    """`docker start -a`: attaches to a stopped container, starts it once attached, and reads
    the stream until the container exits."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {}
        for daemon, d in both.daemons.items():
            upgraded = threading.Event()
            futures[daemon] = pool.submit(hijack, d.socket, "POST", f"/containers/{name}/attach?{params}", upgraded=upgraded)
            assert upgraded.wait(20), f"{daemon}: attach did not answer"
        for daemon, a in both.request("POST", f"/containers/{name}/start").items():
            assert a.status == 204, f"{daemon}: start: {a.short()}"
        return {daemon: f.result() for daemon, f in futures.items()}


@pytest.mark.parametrize("state", [
    pytest.param("created", marks=MUX_AT_141),
    pytest.param("exited", marks=bug("attach to an exited container, then start it (docker start -a): berthd's stream ends "
                                     "empty at once; dockerd waits for the start and streams the output")),
])
def test_attach_then_start_streams_the_output(both, scratch, state):
    name = scratch.container(body={"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2"]})
    if state == "exited":
        both.request("POST", f"/containers/{name}/start")
        both.request("POST", f"/containers/{name}/wait")
    answers = attach_then_start(both, name, "stream=1&stdout=1&stderr=1")
    c = both.judge("POST", f"{API}/containers/{name}/attach?stream=1&stdout=1&stderr=1", answers, shape="none")
    assert demux(c.berthd.body) == demux(c.dockerd.body)


@bug("attach with logs=1 (no stream): dockerd replays the container's output, berthd sends nothing")
def test_attach_logs_replays_output(world):
    c = world.same("POST", "/containers/cf-exited/attach?logs=1&stdout=1&stderr=1", hijacked=True, shape="none")
    assert demux(c.berthd.body) == demux(c.dockerd.body)


def test_resize_a_running_container(world):
    world.same("POST", "/containers/cf-running/resize?h=40&w=120")


# ---- Prune ----

@bug("POST /containers/prune: ContainersDeleted [] where dockerd sends null when nothing was deleted")
def test_prune_containers(both, scratch):
    name = scratch.container(body={"Image": "busybox", "Cmd": ["true"], "Labels": {"cf-prune": "1"}}, start=True)
    both.request("POST", f"/containers/{name}/wait")
    both.same("POST", query("/containers/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/containers/prune", filters={"label": ["cf-prune=1"]}))
    both.same("POST", query("/containers/prune", filters={"bogus": ["x"]}))
    both.same("POST", query("/containers/prune", filters={"until": ["bogus"]}))
