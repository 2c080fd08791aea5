"""`docker logs` and `container.logs` against a real berthd: tail, timestamps, since/until,
stream selection, follow until the container stops, and json-file rotation (max-size/max-file)."""

from __future__ import annotations

import datetime
import json
import re

import pytest

from conftest import requires_docker_cli

pytestmark = requires_docker_cli

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


def _run_to_end(engine, name: str, script: str, *opts: str) -> str:
    """Runs `sh -c script` to completion (docker run without -d waits) and returns its id."""
    engine.docker("run", "--name", name, *opts, "busybox", "sh", "-c", script)
    return engine.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()


def _log_files(engine, cid: str):
    d = engine.data_root / "containers" / cid / "monitor"
    return sorted(p for p in d.iterdir() if p.name.startswith("container.log"))


def test_tail_counts_the_last_lines(engine):
    _run_to_end(engine, "lg-tail", "for i in 1 2 3 4 5; do echo $i; done")
    try:
        assert engine.docker("logs", "--tail", "2", "lg-tail").stdout == "4\n5\n"
        assert engine.docker("logs", "--tail", "0", "lg-tail").stdout == ""
        assert engine.docker("logs", "--tail", "all", "lg-tail").stdout == "1\n2\n3\n4\n5\n"
        assert engine.docker("logs", "--tail", "99", "lg-tail").stdout == "1\n2\n3\n4\n5\n"
    finally:
        engine.docker("rm", "-f", "lg-tail")


def test_timestamps_since_and_until_select_by_record_time(engine):
    # Pauses so the monitor reads each line apart: lines read together share a time.
    _run_to_end(engine, "lg-time", "echo one; sleep 0.1; echo two; sleep 0.1; echo three")
    try:
        lines = engine.docker("logs", "-t", "lg-time").stdout.splitlines()
        stamps = [STAMP.match(line) for line in lines]
        assert all(stamps), lines
        assert [m.group(2) for m in stamps] == ["one", "two", "three"]
        times = [m.group(1) for m in stamps]
        assert times == sorted(set(times))
        # Both bounds are inclusive, as dockerd's.
        assert engine.docker("logs", "--since", times[1], "lg-time").stdout == "two\nthree\n"
        assert engine.docker("logs", "--until", times[1], "lg-time").stdout == "one\ntwo\n"
        assert engine.docker("logs", "--since", times[1], "--until", times[1], "lg-time").stdout == "two\n"
        assert engine.docker("logs", "--since", "1h", "lg-time").stdout == "one\ntwo\nthree\n"
        assert engine.docker("logs", "--until", "1h", "lg-time").stdout == ""
        # tail applies before since, as in dockerd.
        assert engine.docker("logs", "--tail", "1", "--since", times[0], "lg-time").stdout == "three\n"
    finally:
        engine.docker("rm", "-f", "lg-time")


def test_stdout_and_stderr_stay_apart(engine):
    _run_to_end(engine, "lg-streams", "echo out; echo err >&2")
    try:
        p = engine.docker("logs", "lg-streams")
        assert (p.stdout, p.stderr) == ("out\n", "err\n")
        status, headers, body = engine.request("GET", "/containers/lg-streams/logs?stdout=1&stderr=0")
        assert status == 200 and headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
        assert body == b"\x01\x00\x00\x00\x00\x00\x00\x04out\n"
        status, _, body = engine.request("GET", "/containers/lg-streams/logs")
        assert status == 400 and "you must choose at least one stream" in json.loads(body)["message"]
    finally:
        engine.docker("rm", "-f", "lg-streams")


def test_follow_streams_until_the_container_exits(engine):
    engine.docker("run", "-d", "--name", "lg-follow", "busybox", "sh", "-c",
                  "for i in 1 2 3 4; do echo line $i; sleep 0.2; done; echo bye >&2")
    try:
        p = engine.docker("logs", "-f", "lg-follow")
        assert p.stdout == "line 1\nline 2\nline 3\nline 4\n" and p.stderr == "bye\n"
        assert engine.docker("inspect", "-f", "{{.State.Status}}", "lg-follow").stdout.strip() == "exited"
    finally:
        engine.docker("rm", "-f", "lg-follow")


def test_rotation_keeps_max_file_files_and_logs_read_across_them(engine):
    cid = _run_to_end(engine, "lg-rot", "i=1; while [ $i -le 200 ]; do echo line-$i; i=$((i+1)); done",
                      "--log-opt", "max-size=1k", "--log-opt", "max-file=3")
    try:
        files = _log_files(engine, cid)
        assert [p.name for p in files] == ["container.log", "container.log.1", "container.log.2"]
        assert all(p.stat().st_size <= 1024 for p in files)
        kept = sum(len(p.read_text().splitlines()) for p in files)
        out = engine.docker("logs", "lg-rot").stdout.splitlines()
        assert out == [f"line-{i}" for i in range(201 - kept, 201)]
        # More lines than the live file holds: tail crosses into the rotated files.
        live = len(files[0].read_text().splitlines())
        tail = live + 3
        assert engine.docker("logs", "--tail", str(tail), "lg-rot").stdout.splitlines() == \
            [f"line-{i}" for i in range(201 - tail, 201)]
    finally:
        engine.docker("rm", "-f", "lg-rot")


def test_follow_continues_across_rotation(engine):
    engine.docker("run", "-d", "--name", "lg-rotf", "--log-opt", "max-size=1k", "--log-opt", "max-file=10",
                  "busybox", "sh", "-c", "i=1; while [ $i -le 40 ]; do echo line-$i; i=$((i+1)); sleep 0.03; done")
    try:
        out = engine.docker("logs", "-f", "lg-rotf").stdout.splitlines()
        assert out == [f"line-{i}" for i in range(1, 41)]
        cid = engine.docker("inspect", "-f", "{{.Id}}", "lg-rotf").stdout.strip()
        assert len(_log_files(engine, cid)) > 1
    finally:
        engine.docker("rm", "-f", "lg-rotf")


def test_bad_log_options_fail_the_start(engine):
    p = engine.docker("run", "--name", "lg-badopt", "--log-opt", "max-size=lots", "busybox", "true", check=False)
    try:
        assert p.returncode != 0 and "invalid size: 'lots'" in p.stderr
    finally:
        engine.docker("rm", "-f", "lg-badopt", check=False)


def test_none_driver_cannot_be_read(engine):
    _run_to_end(engine, "lg-none", "echo hidden", "--log-driver", "none")
    try:
        p = engine.docker("logs", "lg-none", check=False)
        assert p.returncode != 0 and "configured logging driver does not support reading" in p.stderr
        status, _, _ = engine.request("GET", "/containers/lg-none/logs?stdout=1")
        assert status == 501
    finally:
        engine.docker("rm", "-f", "lg-none")


def test_sdk_logs_stream_timestamps_tail_since_until(engine):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host)
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3 4; do echo n$i; sleep 0.2; done"],
                              name="lg-sdk", detach=True)
    try:
        streamed = b"".join(c.logs(stream=True, follow=True))
        assert streamed == b"n1\nn2\nn3\nn4\n"
        stamped = c.logs(timestamps=True, tail=2).decode().splitlines()
        assert [STAMP.match(line).group(2) for line in stamped] == ["n3", "n4"]
        first = datetime.datetime.fromisoformat(STAMP.match(c.logs(timestamps=True).decode().splitlines()[0])
                                                .group(1)[:26] + "+00:00")
        # The SDK sends whole seconds: bounds a second either side of the first record hold all or none.
        assert c.logs(since=int(first.timestamp()) - 1) == b"n1\nn2\nn3\nn4\n"
        assert c.logs(until=int(first.timestamp()) - 1) == b""
        assert c.logs(since=first.timestamp() - 0.5, stderr=False) == b"n1\nn2\nn3\nn4\n"
    finally:
        c.remove(force=True)
        client.close()
