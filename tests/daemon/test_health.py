"""Health checks: `--health-cmd` and friends, the image's HEALTHCHECK, `State.Health` in
inspect, `health_status` events and the `health` filter."""

from __future__ import annotations

import json
import time

from conftest import requires_docker_cli

pytestmark = requires_docker_cli


def health(d, ref):
    return json.loads(d.docker("inspect", ref).stdout)[0]["State"].get("Health")


def wait_status(d, ref, want, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = health(d, ref)
        if h and h["Status"] == want:
            return h
        time.sleep(0.1)
    raise AssertionError(f"health of {ref} never became {want}: {health(d, ref)}")


def test_passing_check_goes_from_starting_to_healthy(engine):
    since = f"{time.time():.9f}"
    cid = engine.docker("run", "-d", "--health-cmd", "echo ok; test -e /tmp", "--health-interval", "200ms",
                        "busybox", "sleep", "100").stdout.strip()
    try:
        assert health(engine, cid)["Status"] == "starting"
        h = wait_status(engine, cid, "healthy")
        assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "ok\n"
        ps = engine.docker("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout
        assert "(healthy)" in ps
        events = engine.docker("events", "--since", since, "--until", f"{time.time():.9f}",
                               "--filter", f"container={cid}", "--filter", "event=health_status",
                               "--format", "{{.Action}}").stdout.split("\n")
        assert "health_status: healthy" in events
    finally:
        engine.docker("rm", "-f", cid)


def test_failing_check_becomes_unhealthy_after_retries(engine):
    cid = engine.docker("run", "-d", "--health-cmd", "exit 1", "--health-interval", "100ms", "--health-retries", "3",
                        "busybox", "sleep", "100").stdout.strip()
    try:
        h = wait_status(engine, cid, "unhealthy")
        assert h["FailingStreak"] >= 3 and len(h["Log"]) <= 5
    finally:
        engine.docker("rm", "-f", cid)


def test_timeout_counts_as_failure_with_dockers_message(engine):
    cid = engine.docker("run", "-d", "--health-cmd", "sleep 5", "--health-interval", "100ms", "--health-timeout", "200ms",
                        "--health-retries", "1", "busybox", "sleep", "100").stdout.strip()
    try:
        h = wait_status(engine, cid, "unhealthy")
        assert h["Log"][-1]["ExitCode"] == -1
        assert "Health check exceeded timeout" in h["Log"][-1]["Output"]
    finally:
        engine.docker("rm", "-f", cid)


def test_no_healthcheck_means_no_health_and_none_disables(engine):
    cid = engine.docker("run", "-d", "--no-healthcheck", "busybox", "sleep", "100").stdout.strip()
    try:
        assert health(engine, cid) is None
    finally:
        engine.docker("rm", "-f", cid)
