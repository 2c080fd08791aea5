"""`berth registry serve` runs berth-registry from beside the berth binary."""

from __future__ import annotations

import signal
import subprocess

from conftest import REGISTRY, Registry, free_tcp_port


def test_berth_registry_serve_runs_the_registry_and_logs_each_request(workdir):
    berth = REGISTRY.parent / "berth"
    port = free_tcp_port()
    registry = Registry(workdir, [str(berth), "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root", str(workdir / "root")],
                        port, workdir / "root")
    try:
        r = registry.request("GET", "/v2/")
        assert r.status == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert registry.request("GET", "/v2/nope/tags/list").status == 404
    finally:
        registry.stop()
    log = registry.log()
    assert "method=GET uri=/v2/ status=200" in log
    assert "uri=/v2/nope/tags/list status=404" in log


def test_sigterm_shuts_the_registry_down_cleanly(workdir):
    port = free_tcp_port()
    registry = Registry(workdir, [str(REGISTRY), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(workdir / "root")],
                        port, workdir / "root")
    try:
        assert registry.request("GET", "/v2/").status == 200
        registry.proc.send_signal(signal.SIGTERM)
        assert registry.proc.wait(timeout=10) == 0
        assert "shutting down" in registry.log()
    finally:
        registry.stop()


def test_serve_help_documents_the_limits_against_hostile_clients():
    berth = REGISTRY.parent / "berth"
    out = subprocess.run([str(berth), "registry", "serve", "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    for flag in ["--idle-timeout", "--read-header-timeout", "--tls-handshake-timeout", "--max-connections",
                 "--upload-purging-age", "--upload-purging-interval", "--auth-failures", "--auth-backoff"]:
        assert flag in out, flag
