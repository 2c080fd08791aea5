"""The berth CLI end to end: the real binary against a real berthd running real busybox
containers, checked for docker's output shapes and exit codes."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import tarfile
import termios
import time

import pytest

from conftest import BERTH, berth, berth_env


def test_version_shows_client_and_server(engine):
    out = berth(engine, "version").stdout
    assert out.startswith("Client:\n")
    assert "\nServer: " in out and " Engine:\n" in out
    assert berth(engine, "version", "--format", "{{.Server.ApiVersion}}").stdout.strip() == "1.47"


def test_info_counts_loaded_image(engine):
    assert "Server Version:" in berth(engine, "info").stdout
    assert int(berth(engine, "info", "--format", "{{.Images}}").stdout) >= 1


def test_load_prints_loaded_image_and_images_lists_it(engine):
    assert "Loaded image: busybox:latest" in engine.loaded_output
    lines = berth(engine, "images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(l.split()[:2] == ["busybox", "latest"] for l in lines[1:])
    assert "busybox:latest" in berth(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.splitlines()
    ids = berth(engine, "images", "-q").stdout.split()
    assert ids and all(len(i) == 12 for i in ids)


def test_run_rm_echo_prints_hi_and_leaves_nothing(engine):
    p = berth(engine, "run", "--rm", "busybox", "echo", "hi")
    assert p.stdout == "hi\n"
    assert berth(engine, "ps", "-aq").stdout.strip() == ""


def test_run_exit_code_is_the_containers(engine):
    p = berth(engine, "run", "--rm", "busybox", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3, p.stderr


def test_run_separates_stdout_and_stderr(engine):
    p = berth(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (p.stdout, p.stderr) == ("out\n", "err\n")


def test_run_missing_command_exits_127(engine):
    p = berth(engine, "run", "--rm", "busybox", "/nonexistent", check=False)
    assert p.returncode == 127, p.stderr
    assert p.stderr.startswith("berth: Error response from daemon:")


def test_run_unknown_image_exits_125_with_dockers_message(engine):
    p = berth(engine, "run", "--rm", "nosuchimage", check=False)
    assert p.returncode == 125
    assert "Unable to find image 'nosuchimage:latest' locally" in p.stderr
    assert "berth: Error response from daemon:" in p.stderr


def test_run_pull_never_reports_missing_image(engine):
    p = berth(engine, "run", "--pull", "never", "nosuchimage", check=False)
    assert p.returncode == 125
    assert "No such image: nosuchimage" in p.stderr
    assert "Unable to find image" not in p.stderr


def test_unknown_flag_exits_125(engine):
    p = berth(engine, "ps", "--bogus", check=False)
    assert p.returncode == 125
    assert "unknown flag: --bogus" in p.stderr


def test_stop_unknown_container_exits_1_with_dockers_message(engine):
    p = berth(engine, "stop", "nosuchcontainer", check=False)
    assert p.returncode == 1
    assert p.stderr == "Error response from daemon: No such container: nosuchcontainer\n"


def test_detached_container_ps_logs_inspect_stop_rm(engine):
    cid = berth(engine, "run", "-d", "--name", "cli-detached", "busybox",
                "sh", "-c", "echo ready; exec sleep 60").stdout.strip()
    assert len(cid) == 64
    try:
        lines = berth(engine, "ps").stdout.splitlines()
        assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        row = next(l for l in lines[1:] if l.startswith(cid[:12]))
        assert row.endswith("cli-detached") and " Up " in row
        assert berth(engine, "inspect", "--format", "{{.State.Status}}", "cli-detached").stdout == "running\n"
        assert berth(engine, "logs", "-f", "--until", "0s", "cli-detached").stdout == "ready\n"
        assert berth(engine, "stop", "-t", "1", "cli-detached").stdout == "cli-detached\n"
        assert berth(engine, "inspect", "-f", "{{.State.Status}}", cid).stdout == "exited\n"
        assert berth(engine, "rm", "cli-detached").stdout == "cli-detached\n"
        assert berth(engine, "ps", "-aq", "--no-trunc").stdout.split().count(cid) == 0
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_inspect_prints_an_indented_array_and_reports_missing_objects(engine):
    cid = berth(engine, "create", "--name", "cli-inspect", "busybox", "true").stdout.strip()
    try:
        p = berth(engine, "inspect", "cli-inspect", "nosuchthing", check=False)
        assert p.returncode == 1
        assert p.stderr == "Error: No such object: nosuchthing\n"
        assert p.stdout.startswith("[\n    {\n")
        assert json.loads(p.stdout)[0]["Id"] == cid
        image = json.loads(berth(engine, "inspect", "--type", "image", "busybox").stdout)[0]
        assert image["Id"].startswith("sha256:")
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_ps_all_format_names(engine):
    cid = berth(engine, "create", "--name", "cli-created", "busybox", "true").stdout.strip()
    try:
        assert "cli-created" in berth(engine, "ps", "-a", "--format", "{{.Names}}").stdout.splitlines()
        assert "cli-created" not in berth(engine, "ps", "--format", "{{.Names}}").stdout.splitlines()
        row = json.loads(berth(engine, "ps", "-a", "--filter", "name=cli-created", "--format", "{{json .}}").stdout)
        assert (row["Names"], row["State"], row["Command"]) == ("cli-created", "created", '"true"')
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_run_env_workdir_user_and_entrypoint(engine):
    p = berth(engine, "run", "--rm", "-e", "A=1", "-e", "B=two words", "-w", "/tmp", "-u", "1234:5678",
              "--entrypoint", "sh", "busybox", "-c", 'echo "$A|$B|$(pwd)|$(id -u):$(id -g)"')
    assert p.stdout == "1|two words|/tmp|1234:5678\n"


def test_run_env_file_and_inherited_variable(engine, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n")
    env = berth_env(engine) | {"INHERITED": "from-host"}
    p = subprocess.run([str(BERTH), "run", "--rm", "--env-file", str(env_file), "-e", "INHERITED", "busybox",
                        "sh", "-c", "echo $FROM_FILE $INHERITED"], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert (p.returncode, p.stdout) == (0, "yes from-host\n"), p.stderr


def test_labels_and_host_config_visible_in_inspect(engine):
    cid = berth(engine, "create", "-l", "tier=web", "--label", "team=core", "-m", "64m", "--restart", "on-failure:2",
                "--init", "busybox", "true").stdout.strip()
    try:
        out = berth(engine, "inspect", "--format",
                    '{{index .Config.Labels "tier"}} {{.Config.Labels.team}} {{.HostConfig.Memory}} '
                    '{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{json .HostConfig.Init}}',
                    cid).stdout
        assert out == "web core 67108864 on-failure:2 true\n"
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_run_interactive_pipes_stdin_and_closes_it(engine):
    p = berth(engine, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="line1\nline2\n")
    assert p.stdout == "line1\nline2\ndone\n"


def _read_until(fd: int, needle: bytes | None, proc: subprocess.Popen, limit: float = 30) -> bytes:
    """Reads a pty until `needle` shows up, or (needle None) until `proc` has exited and its
    output is drained; bounded so a hang fails the test instead of stalling the suite."""
    data = b""
    deadline = time.monotonic() + limit
    while (needle is None or needle not in data) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready and needle is None and proc.poll() is not None:
            break
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def _run_in_pty(engine, args: list[str], script: bytes, rows: int = 30, cols: int = 100):
    """Runs berth on a fresh pty of the given size, waits for a shell prompt, types `script`;
    returns (exit code, output, whether the terminal settings came back unchanged)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([str(BERTH), *args], stdin=slave, stdout=slave, stderr=slave,
                            env=berth_env(engine), start_new_session=True)
    try:
        out = _read_until(master, b"# ", proc)
        os.write(master, script)
        out += _read_until(master, None, proc)
        code = proc.wait(timeout=30)
        return code, out, termios.tcgetattr(slave) == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_run_it_through_a_pty_sizes_the_terminal_and_restores_it(engine):
    code, out, restored = _run_in_pty(engine, ["run", "-it", "--rm", "busybox", "sh"],
                                      b"echo $((6*7)); stty size; exit 7\r")
    assert code == 7, out
    assert b"42\r\n" in out
    assert b"30 100\r\n" in out
    assert restored


def test_exec_it_through_a_pty(engine):
    cid = berth(engine, "run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        code, out, restored = _run_in_pty(engine, ["exec", "-it", cid, "sh"], b"tty; exit 5\r", rows=24, cols=80)
        assert code == 5, out
        assert b"/dev/pts/" in out
        assert restored
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_exec_streams_and_exit_code(engine):
    cid = berth(engine, "run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        p = berth(engine, "exec", "-e", "X=1", "-u", "1000", "-w", "/tmp", cid,
                  "sh", "-c", "echo $X $(id -u) $(pwd); echo oops >&2; exit 4", check=False)
        assert (p.returncode, p.stdout, p.stderr) == (4, "1 1000 /tmp\n", "oops\n")
        assert berth(engine, "exec", "-i", cid, "cat", input="piped\n").stdout == "piped\n"
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_logs_tail_and_timestamps(engine):
    cid = berth(engine, "run", "-d", "busybox", "sh", "-c", "echo one; echo two; echo three >&2").stdout.strip()
    try:
        assert berth(engine, "wait", cid).stdout == "0\n"
        p = berth(engine, "logs", cid)
        assert (p.stdout, p.stderr) == ("one\ntwo\n", "three\n")
        tail = berth(engine, "logs", "--tail", "1", "-t", cid)
        lines = (tail.stdout + tail.stderr).splitlines()
        assert len(lines) == 1 and lines[0].endswith(" three") and lines[0][:4].isdigit()
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_lifecycle_commands_pause_rename_restart_kill_wait(engine):
    cid = berth(engine, "run", "-d", "--name", "cli-life", "busybox", "sleep", "60").stdout.strip()
    try:
        berth(engine, "pause", "cli-life")
        assert berth(engine, "inspect", "-f", "{{.State.Paused}}", cid).stdout == "true\n"
        berth(engine, "unpause", "cli-life")
        berth(engine, "rename", "cli-life", "cli-life2")
        assert berth(engine, "inspect", "-f", "{{.Name}}", cid).stdout == "/cli-life2\n"
        started = berth(engine, "inspect", "-f", "{{.State.StartedAt}}", cid).stdout
        assert berth(engine, "restart", "-t", "0", "cli-life2").stdout == "cli-life2\n"
        assert berth(engine, "inspect", "-f", "{{.State.StartedAt}}", cid).stdout != started
        assert berth(engine, "kill", "-s", "KILL", "cli-life2").stdout == "cli-life2\n"
        assert berth(engine, "wait", "cli-life2").stdout == "137\n"
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_top_and_stats_no_stream(engine):
    cid = berth(engine, "run", "-d", "--name", "cli-stats", "busybox", "sleep", "60").stdout.strip()
    try:
        top = berth(engine, "top", cid).stdout.splitlines()
        assert top[0].split()[:2] == ["UID", "PID"] and "sleep 60" in top[1]
        stats = berth(engine, "stats", "--no-stream", "cli-stats").stdout.splitlines()
        assert stats[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
        assert stats[1].startswith(cid[:12]) and "cli-stats" in stats[1]
        pids = berth(engine, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", cid).stdout
        assert pids == "cli-stats 1\n"
    finally:
        berth(engine, "rm", "-f", cid, check=False)


def test_tag_save_rmi_load_round_trip(engine, tmp_path):
    berth(engine, "tag", "busybox", "cli/roundtrip:v1")
    assert "cli/roundtrip:v1" in berth(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    archive = tmp_path / "saved.tar"
    berth(engine, "save", "-o", str(archive), "cli/roundtrip:v1")
    with tarfile.open(archive) as t:
        assert "manifest.json" in t.getnames()
    assert berth(engine, "rmi", "cli/roundtrip:v1").stdout == "Untagged: cli/roundtrip:v1\n"
    assert "Loaded image: cli/roundtrip:v1" in berth(engine, "load", "-i", str(archive)).stdout
    berth(engine, "rmi", "cli/roundtrip:v1")
    p = berth(engine, "rmi", "cli/roundtrip:v1", check=False)
    assert p.returncode == 1 and "No such image" in p.stderr


def test_import_with_change_and_history(engine, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "hello.txt").write_text("hi\n")
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs / "hello.txt", arcname="hello.txt")
    image_id = berth(engine, "import", "-c", "ENV IMPORTED=1", "-m", "from cli", str(tar), "cli/imported:1").stdout.strip()
    try:
        assert image_id.startswith("sha256:")
        assert berth(engine, "image", "inspect", "-f", "{{.Config.Env}}", "cli/imported:1").stdout == "[IMPORTED=1]\n"
        history = berth(engine, "history", "cli/imported:1").stdout.splitlines()
        assert history[0].split()[:2] == ["IMAGE", "CREATED"] and "from cli" in history[1]
    finally:
        berth(engine, "rmi", "-f", "cli/imported:1", check=False)


def test_volume_lifecycle(engine):
    assert berth(engine, "volume", "create", "--label", "k=v", "cli-vol").stdout == "cli-vol\n"
    try:
        lines = berth(engine, "volume", "ls").stdout.splitlines()
        assert lines[0].split() == ["DRIVER", "VOLUME", "NAME"] and ["local", "cli-vol"] in [l.split() for l in lines]
        assert berth(engine, "volume", "inspect", "-f", "{{.Name}} {{.Labels.k}}", "cli-vol").stdout == "cli-vol v\n"
        p = berth(engine, "run", "--rm", "-v", "cli-vol:/data", "busybox", "sh", "-c", "echo kept > /data/f")
        assert p.returncode == 0
        assert berth(engine, "run", "--rm", "--mount", "type=volume,source=cli-vol,target=/d,readonly", "busybox",
                     "cat", "/d/f").stdout == "kept\n"
    finally:
        berth(engine, "volume", "rm", "cli-vol", check=False)
    assert "cli-vol" not in berth(engine, "volume", "ls", "-q").stdout.split()


def test_events_between_since_and_until(engine):
    cid = berth(engine, "create", "--name", "cli-events", "busybox", "true").stdout.strip()
    berth(engine, "rm", cid)
    p = berth(engine, "events", "--since", "5m", "--until", "0s", "--filter", f"container={cid}",
              "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert p.stdout.splitlines() == ["container create cli-events", "container destroy cli-events"]
    line = berth(engine, "events", "--since", "5m", "--until", "0s", "--filter", f"container={cid}").stdout.splitlines()[0]
    assert f" container create {cid} (" in line and "name=cli-events" in line


def test_container_prune_removes_stopped_containers(engine):
    cid = berth(engine, "run", "-d", "busybox", "true").stdout.strip()
    berth(engine, "wait", cid)
    out = berth(engine, "container", "prune", "-f").stdout
    assert cid in out and "Total reclaimed space:" in out
    assert cid not in berth(engine, "ps", "-aq", "--no-trunc").stdout


def test_start_attach_returns_the_containers_exit_code(engine):
    cid = berth(engine, "create", "busybox", "sh", "-c", "echo attached; exit 6").stdout.strip()
    try:
        p = berth(engine, "start", "-a", cid, check=False)
        assert (p.returncode, p.stdout) == (6, "attached\n"), p.stderr
    finally:
        berth(engine, "rm", "-f", cid, check=False)



# --- networks ---------------------------------------------------------------------------


def _network_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_network_create_ls_inspect_rm_round_trip(engine):
    nid = berth(engine, "network", "create", "--subnet", "10.88.0.0/24", "--gateway", "10.88.0.1",
                "--ip-range", "10.88.0.128/25", "--label", "team=core", "--label", "bare", "-o", "com.example.opt=1",
                "--internal", "cli-net-rt").stdout.strip()
    assert len(nid) == 64 and all(c in "0123456789abcdef" for c in nid)
    try:
        rows = _network_rows(berth(engine, "network", "ls").stdout)
        assert rows[0] == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        assert [nid[:12], "cli-net-rt", "bridge", "local"] in rows[1:]
        assert {"bridge", "host", "none"} <= {r[1] for r in rows[1:]}
        # Names in docker's (natural) order, and the same table and JSON rows as the docker CLI.
        assert berth(engine, "network", "ls").stdout == engine.docker("network", "ls").stdout
        # (docker joins labels in Go's random map order, we sort them.)
        def json_rows(text):
            return [r | {"Labels": sorted(r["Labels"].split(","))} for r in map(json.loads, text.splitlines())]
        assert json_rows(berth(engine, "network", "ls", "--format", "json").stdout) == \
            json_rows(engine.docker("network", "ls", "--format", "json").stdout)
        assert nid in berth(engine, "network", "ls", "-q", "--no-trunc").stdout.split()
        assert berth(engine, "network", "list", "-q").stdout == engine.docker("network", "ls", "-q").stdout
        assert berth(engine, "network", "ls", "--filter", "label=team=core", "--format",
                     "{{.Name}} {{.Internal}} {{.Labels}}").stdout == "cli-net-rt true bare=,team=core\n"

        ours = json.loads(berth(engine, "network", "inspect", "cli-net-rt").stdout)
        theirs = json.loads(engine.docker("network", "inspect", "cli-net-rt").stdout)
        assert ours == theirs and len(ours) == 1
        net = ours[0]
        assert (net["Id"], net["Name"], net["Driver"], net["Internal"]) == (nid, "cli-net-rt", "bridge", True)
        assert net["IPAM"]["Config"] == [{"Subnet": "10.88.0.0/24", "IPRange": "10.88.0.128/25", "Gateway": "10.88.0.1"}]
        assert net["Labels"] == {"team": "core", "bare": ""}
        assert net["Options"] == {"com.example.opt": "1"}
        out = berth(engine, "network", "inspect", "-f",
                    "{{.Name}} {{.Labels.team}}{{range .IPAM.Config}} {{.Subnet}} {{.Gateway}}{{end}}", nid[:12]).stdout
        assert out == "cli-net-rt core 10.88.0.0/24 10.88.0.1\n"

        assert berth(engine, "network", "rm", "cli-net-rt").stdout == "cli-net-rt\n"
    finally:
        berth(engine, "network", "rm", "cli-net-rt", check=False)
    assert "cli-net-rt" not in berth(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
    p = berth(engine, "network", "rm", "cli-net-rt", "bridge", check=False)
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.splitlines()
    assert lines[0] == "Error response from daemon: network cli-net-rt not found"
    assert len(lines) == 2 and lines[1].startswith("Error response from daemon:")  # bridge is built in
    assert berth(engine, "network", "rm", "-f", "cli-net-rt").returncode == 0
    p = berth(engine, "network", "inspect", "cli-net-rt", check=False)
    assert (p.returncode, p.stdout) == (1, "[]\n")


def test_network_create_mistakes_are_caught_before_the_daemon(engine):
    p = berth(engine, "network", "create", "--subnet", "10.89.0.0/24", "--gateway", "10.90.0.1", "cli-net-bad", check=False)
    assert (p.returncode, p.stderr) == (1, "no matching subnet for gateway 10.90.0.1\n")
    p = berth(engine, "network", "create", "--gateway", "10.90.0.1", "cli-net-bad", check=False)
    assert (p.returncode, p.stderr) == (1, "every ip-range or gateway must have a corresponding subnet\n")
    assert "cli-net-bad" not in berth(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
    berth(engine, "network", "create", "cli-net-dup")
    try:
        p = berth(engine, "network", "create", "cli-net-dup", check=False)
        assert p.returncode == 1
        assert p.stderr == engine.docker("network", "create", "cli-net-dup", check=False).stderr
    finally:
        berth(engine, "network", "rm", "cli-net-dup", check=False)


def test_network_prune_removes_unused_networks_by_filter(engine):
    berth(engine, "network", "create", "cli-prune-a")
    berth(engine, "network", "create", "--label", "keep=1", "cli-prune-b")
    try:
        p = berth(engine, "network", "prune", "-f", "--filter", "label!=keep")
        assert p.stdout == "Deleted Networks:\ncli-prune-a\n\n"
        names = berth(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert "cli-prune-a" not in names and "cli-prune-b" in names
        # Declining the prompt removes nothing.
        p = berth(engine, "network", "prune", input="n\n")
        assert p.stdout.startswith("WARNING! This will remove all custom networks not used by at least one container.\n")
        assert "cli-prune-b" in berth(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert berth(engine, "network", "prune", input="y\n").stdout.endswith("Deleted Networks:\ncli-prune-b\n\n")
        assert berth(engine, "network", "prune", "-f").stdout == ""
    finally:
        berth(engine, "network", "rm", "-f", "cli-prune-a", "cli-prune-b", check=False)


def test_run_publishes_ports_on_a_network_with_an_alias(engine):
    berth(engine, "network", "create", "--subnet", "10.91.0.0/24", "cli-web-net")
    cid = ""
    try:
        cid = berth(engine, "run", "-d", "--name", "cli-web", "-p", "8080:80", "--expose", "81/udp",
                    "--network", "cli-web-net", "--network-alias", "webalias",
                    "busybox", "httpd", "-f", "-p", "80", "-h", "/etc").stdout.strip()
        assert berth(engine, "port", "cli-web").stdout == "80/tcp -> 0.0.0.0:8080\n"
        assert berth(engine, "port", "cli-web").stdout == engine.docker("port", "cli-web").stdout
        assert berth(engine, "port", "cli-web", "80").stdout == "0.0.0.0:8080\n"
        assert berth(engine, "container", "port", "cli-web", "80/tcp").stdout == "0.0.0.0:8080\n"
        for asked in ("81/tcp", "81/udp"):
            p = berth(engine, "port", "cli-web", asked, check=False)
            assert (p.returncode, p.stdout, p.stderr) == (1, "", f"Error: No public port '{asked}' published for cli-web\n")

        lines = berth(engine, "ps", "--filter", "name=cli-web").stdout.splitlines()
        assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        assert "81/udp, 0.0.0.0:8080->80/tcp" in lines[1]
        ports = berth(engine, "ps", "--filter", "name=cli-web", "--format", "{{.Ports}}").stdout
        assert ports == "81/udp, 0.0.0.0:8080->80/tcp\n"
        assert ports == engine.docker("ps", "--filter", "name=cli-web", "--format", "{{.Ports}}").stdout
        assert berth(engine, "ps", "--filter", "name=cli-web", "--format", "{{.Networks}}").stdout == "cli-web-net\n"

        networks = json.loads(berth(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout)
        assert list(networks) == ["cli-web-net"]
        ip = networks["cli-web-net"]["IPAddress"]
        assert ip.startswith("10.91.0.") and networks["cli-web-net"]["Aliases"] == ["webalias"]
        assert berth(engine, "inspect", "-f", "{{.HostConfig.NetworkMode}}", cid).stdout == "cli-web-net\n"

        # The alias resolves on the network, and the server answers there and on the published port.
        p = berth(engine, "run", "--rm", "--network", "cli-web-net", "busybox", "nslookup", "webalias")
        assert f"Address: {ip}" in p.stdout
        p = berth(engine, "run", "--rm", "--network", "cli-web-net", "busybox", "wget", "-qO-", "http://webalias/hostname")
        assert p.stdout == cid[:12] + "\n"
        fetch = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/hostname', timeout=10).read().decode(), end='')"
        assert engine.in_netns("python3", "-c", fetch).stdout == cid[:12] + "\n"

        # A network in use is not removed; the daemon says why.
        p = berth(engine, "network", "rm", "cli-web-net", check=False)
        assert p.returncode == 1 and p.stdout == ""
        assert p.stderr.startswith("Error response from daemon: ") and "active endpoints" in p.stderr
        assert p.stderr.splitlines()[0] == engine.docker("network", "rm", "cli-web-net", check=False).stderr.splitlines()[0]
    finally:
        if cid:
            berth(engine, "rm", "-f", cid, check=False)
        berth(engine, "network", "rm", "cli-web-net", check=False)


def test_network_connect_and_disconnect_with_aliases(engine):
    berth(engine, "network", "create", "cli-conn-net")
    cid = berth(engine, "run", "-d", "--name", "cli-conn", "busybox", "sleep", "300").stdout.strip()
    try:
        assert berth(engine, "network", "connect", "--alias", "first,second", "--alias", "third",
                     "cli-conn-net", "cli-conn").stdout == ""
        networks = json.loads(berth(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout)
        assert sorted(networks) == ["bridge", "cli-conn-net"]
        assert networks["cli-conn-net"]["Aliases"] == ["first", "second", "third"]
        ip = networks["cli-conn-net"]["IPAddress"]
        members = json.loads(berth(engine, "network", "inspect", "cli-conn-net").stdout)[0]["Containers"]
        assert list(members) == [cid] and members[cid]["Name"] == "cli-conn"
        p = berth(engine, "run", "--rm", "--network", "cli-conn-net", "busybox", "nslookup", "second")
        assert f"Address: {ip}" in p.stdout
        assert berth(engine, "ps", "--filter", f"id={cid}", "--format", "{{.Networks}}").stdout == "bridge,cli-conn-net\n"

        p = berth(engine, "network", "connect", "cli-conn-net", "cli-conn", check=False)
        assert p.returncode == 1 and p.stderr.startswith("Error response from daemon: ")

        assert berth(engine, "network", "disconnect", "cli-conn-net", "cli-conn").stdout == ""
        networks = json.loads(berth(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout)
        assert list(networks) == ["bridge"]
        p = berth(engine, "network", "disconnect", "cli-conn-net", "cli-conn", check=False)
        assert p.returncode == 1 and p.stderr.startswith("Error response from daemon: ")
        assert berth(engine, "network", "disconnect", "-f", "cli-conn-net", "nosuchcontainer").returncode == 0

        # Connected with a fixed address, as docker's --ip.
        berth(engine, "network", "rm", "cli-conn-net")
        berth(engine, "network", "create", "--subnet", "10.92.0.0/24", "cli-conn-net")
        berth(engine, "network", "connect", "--ip", "10.92.0.42", "cli-conn-net", "cli-conn")
        networks = json.loads(berth(engine, "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout)
        assert networks["cli-conn-net"]["IPAddress"] == "10.92.0.42"
        assert "10.92.0.42/24" in berth(engine, "exec", cid, "ip", "-4", "addr").stdout
    finally:
        berth(engine, "rm", "-f", cid, check=False)
        berth(engine, "network", "rm", "cli-conn-net", check=False)


def test_run_network_flag_mistakes_exit_125(engine):
    p = berth(engine, "run", "--rm", "--network-alias", "x", "busybox", "true", check=False)
    assert p.returncode == 125
    assert p.stderr.startswith("berth: network-scoped aliases are only supported for user-defined networks\n")
    p = berth(engine, "run", "--rm", "-p", "80-81:90-92", "busybox", "true", check=False)
    assert p.returncode == 125
    assert p.stderr.startswith("berth: invalid ranges specified for container and host Ports: 90-92 and 80-81\n")
    p = berth(engine, "run", "--rm", "--network", "nosuchnetwork", "busybox", "true", check=False)
    assert p.returncode == 125 and "Error response from daemon:" in p.stderr
    assert berth(engine, "ps", "-aq").stdout.strip() == ""


def test_run_dns_hosts_and_hostname_flags(engine):
    p = berth(engine, "run", "--rm", "--dns", "9.9.9.9", "--dns-search", "example.com.", "--dns-option", "ndots:3",
              "--add-host", "db=10.1.2.3", "--add-host", "cache:10.1.2.4", "-h", "box", "busybox",
              "sh", "-c", "cat /etc/resolv.conf; cat /etc/hosts; hostname")
    lines = p.stdout.splitlines()
    assert "nameserver 9.9.9.9" in lines and "search example.com" in lines and "options ndots:3" in lines
    assert "10.1.2.3\tdb" in lines and "10.1.2.4\tcache" in lines
    assert lines[-1] == "box"
    p = berth(engine, "run", "--rm", "--dns", "nine", "busybox", "true", check=False)
    assert p.returncode == 125
    assert "invalid argument \"nine\" for \"--dns\" flag: IP address is not correctly formatted: nine" in p.stderr
