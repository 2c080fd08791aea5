"""Fixtures for the conformance suite: the same API requests go to a real berthd and to a real
dockerd 20.10 (Debian's docker.io), and their answers are compared at API 1.41, the newest
version both speak.

One of each per session. dockerd runs with its own --data-root, --exec-root, --pidfile, socket,
config file and key file, in its own network namespace (its docker0 and iptables rules live
there) and its own mount namespace with a private /run (so it never finds or touches the host's
containerd, /run/docker or plugins), under its own cgroup parent. berthd is the daemon suite's
`Daemon`, in its own network namespace too. Teardown removes containers, stops both daemons,
ends whatever is left in dockerd's namespace, and removes cgroups, namespaces and directories,
also after a failure.

Every comparison a test makes (`both.same(...)`) is checked when the test returns: its
differences, less those the allowlist (allowlist.py) declares intentional, fail the test. The
session ends with a tally of endpoints, cases and differences.

$DOCKERD is dockerd (default: `dockerd` on PATH); $BERTHD and $BERTH_BIN_DIR as in the daemon
and security suites.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from allowlist import ALLOWED
from differ import Answer, Comparison, answer_diff, glob

_spec = importlib.util.spec_from_file_location(
    "berth_daemon_conftest", Path(__file__).resolve().parents[1] / "daemon" / "conftest.py")
_daemon = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_daemon)

REPO = _daemon.REPO
BUILD = _daemon.BUILD
DOCKER = _daemon.DOCKER if os.access(_daemon.DOCKER, os.X_OK) else shutil.which("docker") or _daemon.DOCKER
Daemon = _daemon.Daemon
UnixHTTPConnection = _daemon.UnixHTTPConnection
cleanup_daemon = _daemon.cleanup_daemon
make_netns = _daemon.make_netns
remove_netns = _daemon.remove_netns
busybox_tar = _daemon.busybox_tar  # the session fixture, shared as it is

BIN = Path(os.environ.get("BERTH_BIN_DIR", BUILD)).resolve()
DOCKERD = os.environ.get("DOCKERD") or shutil.which("dockerd") or "/usr/sbin/dockerd"
API = "/v1.41"


def bug(reason: str):
    """A berthd bug this test shows: it fails until berthd is fixed, then the marker must go."""
    return pytest.mark.xfail(strict=True, reason=reason)


def pytest_collection_modifyitems(config, items):
    _daemon.pytest_collection_modifyitems(config, items)
    if not os.access(DOCKERD, os.X_OK):
        skip = pytest.mark.skip(reason=f"dockerd not found at {DOCKERD} (apt-get install docker.io, or set DOCKERD)")
        for item in items:
            item.add_marker(skip)
    elif os.geteuid() != 0:
        skip = pytest.mark.skip(reason="dockerd and berthd in their own namespaces need root")
        for item in items:
            item.add_marker(skip)


def request(sock: str, method: str, path: str, body=None, headers=None, timeout: float = 30) -> Answer:
    conn = UnixHTTPConnection(sock, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Answer(r.status, dict(r.headers), r.read())
    finally:
        conn.close()


def cli(sock: str, *args: str, config_dir: Path, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(config_dir)
    p = subprocess.run([DOCKER, "-H", f"unix://{sock}", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class Dockerd:
    """The reference: dockerd 20.10 in its own network and mount namespaces."""

    def __init__(self, root: Path):
        self.root = root
        self.socket = str(root / "docker.sock")
        self.log_path = root / "dockerd.log"
        self.config_file = root / "daemon.json"
        # dockerd 20.10 writes its identity key to /etc/docker/key.json unless told otherwise.
        self.config_file.write_text(json.dumps({"deprecated-key-path": str(root / "key.json")}) + "\n")
        self.cgroup_parent = f"berth-conformance-{secrets.token_hex(4)}"
        self.netns = make_netns("cfd")
        # A private /run hides the host's containerd socket (dockerd would use it), /run/docker
        # and /run/docker/plugins; mounts made inside (overlays, netns files) never leave.
        self.args = [
            "nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", 'mount -t tmpfs -o mode=755 tmpfs /run && exec "$@"', "sh",
            DOCKERD, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{self.socket}",
            "--config-file", str(self.config_file),
            "--cgroup-parent", f"/{self.cgroup_parent}", "--log-level", "warn",
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "Dockerd":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dockerd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if request(self.socket, "GET", "/_ping", timeout=5).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dockerd did not answer on {self.socket} within {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def close(self):
        """Removes every container, stops dockerd (SIGTERM, then SIGKILL), ends what is left in
        its namespace (its containerd and shims: nothing else lives there), then removes the
        namespace, the cgroups and the directory."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    a = request(self.socket, "GET", "/containers/json?all=1")
                    for c in json.loads(a.body) if a.status == 200 else []:
                        request(self.socket, "DELETE", f"/containers/{c['Id']}?force=1&v=1")
                except (OSError, ValueError):
                    pass
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            if self.proc is not None:
                self._log.close()
            for _ in range(50):
                pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True).stdout.split()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            remove_netns(self.netns)
            for top in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}"):
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
                    try:
                        d.rmdir()
                    except OSError:
                        pass
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd(busybox_tar):
    d = Dockerd(Path(tempfile.mkdtemp(prefix="cfd-", dir="/tmp")))
    try:
        d.start()
        cli(d.socket, "load", "-i", str(busybox_tar), config_dir=d.root / "docker-config")
        yield d
    finally:
        d.close()


@pytest.fixture(scope="session")
def berthd(busybox_tar):
    root = Path(tempfile.mkdtemp(prefix="cfb-", dir="/tmp"))
    d = Daemon(root, extra_args=["--runtime-path", str(BIN / "berth-runtime"), "--monitor-path", str(BIN / "berth-monitor"),
                                 "--init-path", str(BIN / "berth-init")])
    try:
        d.start(timeout=60)
        cli(d.socket, "load", "-i", str(busybox_tar), config_dir=root / "docker-config")
        yield d
    finally:
        cleanup_daemon(d)


# ---- Routes: what berthd serves (read from its sources), for the coverage tally ----

_ROUTE_CALL = re.compile(r'router\.(get|post|put|delete|head)\("([^"]+)"')
_KIND_LOOP = re.compile(r'for kind in \[([^\]]*)\]')


def served_routes() -> list[str]:
    """"METHOD /pattern" of every route berthd registers (`router.get("/x")` in Sources/BerthAPI,
    `\\(kind)` expanded from the `for kind in [...]` loop around it; comments skipped)."""
    out = set()
    for f in (REPO / "Sources" / "BerthAPI").rglob("*.swift"):
        kinds: list[str] = []
        for line in f.read_text().splitlines():
            if line.lstrip().startswith("//"):
                continue
            if m := _KIND_LOOP.search(line):
                kinds = re.findall(r'"(\w+)"', m.group(1))
            for method, path in _ROUTE_CALL.findall(line):
                for p in ([path.replace("\\(kind)", k) for k in kinds] if "\\(kind)" in path else [path]):
                    out.add(f"{method.upper()} {p}")
    return sorted(out)


# What berthd does not serve yet, and should refuse as dockerd refuses a feature it lacks.
UNSERVED_ROUTES = [
    "GET /plugins", "GET /plugins/privileges", "POST /plugins/pull", "GET /plugins/{name}/json", "DELETE /plugins/{name}",
    "POST /plugins/{name}/enable", "POST /plugins/{name}/disable", "POST /plugins/create",
    "POST /build", "POST /session", "POST /commit", "GET /containers/{id}/export", "GET /containers/{id}/changes",
    "GET /containers/{id}/archive", "HEAD /containers/{id}/archive", "PUT /containers/{id}/archive",
    "POST /containers/{id}/attach/ws", "GET /containers/{id}/attach/ws",
]


def _pattern(route: str) -> tuple[str, re.Pattern]:
    method, path = route.split(" ", 1)
    rx = re.sub(r"\\\{[a-z]+:\\\.\\\*\\\}", ".+", re.escape(path))
    rx = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", rx)
    return method, re.compile(rx + "$")


class Routes:
    def __init__(self, served: list[str], unserved: list[str]):
        self.served = served
        self.unserved = [r for r in unserved if r not in served]
        every = self.served + self.unserved
        # Most literal first, as the router does.
        self.patterns = sorted(((r, *_pattern(r)) for r in every), key=lambda t: (t[0].count("{"), -len(t[0])))

    def endpoint(self, method: str, path: str) -> str:
        path = urllib.parse.urlsplit(path).path
        path = re.sub(r"^/v[0-9.]+", "", path)
        for route, m, rx in self.patterns:
            if m == method and rx.match(path):
                return route
        return f"{method} {path} (no route)"


ROUTES = Routes(served_routes(), UNSERVED_ROUTES)


# Objects whose keys are data, not schema: only the values of keys both have are compared.
MAPS = ("*.Labels", "*.Options", "*.DriverOpts", "*.Attributes", "$.memory_stats.stats")


# ---- The tally ----

class Tally:
    def __init__(self):
        self.comparisons: list[tuple[str, Comparison]] = []   # (test id, comparison)
        self.xfailed: dict[str, str] = {}                      # test id -> reason
        self.partial = False

    def endpoints(self) -> set[str]:
        return {c.endpoint for _, c in self.comparisons}


TALLY = Tally()
_current: list[Comparison] | None = None
_current_id = ""


class Both:
    """The two daemons side by side. Paths and bodies are templates formatted with each daemon's
    own values (`{exec}`: an exec ID each made), set with `both.let(name, berthd=..., dockerd=...)`."""

    def __init__(self, berthd, dockerd):
        self.daemons = {"berthd": berthd, "dockerd": dockerd}
        self.values: dict[str, dict] = {"berthd": {}, "dockerd": {}}
        self.prefetched: dict[str, concurrent.futures.Future] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(8)

    def let(self, key: str, berthd, dockerd):
        self.values["berthd"][key] = berthd
        self.values["dockerd"][key] = dockerd

    def _fill(self, name: str, template):
        """A path with `{key}` replaced by the daemon's value; a callable body called with them."""
        if callable(template):
            return template(self.values[name])
        return re.sub(r"\{(\w+)\}", lambda m: str(self.values[name].get(m.group(1), m.group(0))), template)

    def request(self, method: str, path: str, body=None, *, headers=None, timeout: float = 30,
                raw_path: bool = False, hijacked: bool = False, stdin: bytes | None = None) -> dict[str, Answer]:
        """The same request to both daemons, not compared: {"berthd": Answer, "dockerd": Answer}.
        `path` is under /v1.41 unless `raw_path`; a dict or list body is sent as JSON."""
        out = {}
        for name, d in self.daemons.items():
            b = body(self.values[name]) if callable(body) else body
            hdrs = dict(headers or {})
            if isinstance(b, (dict, list)):
                b = json.dumps(b).encode()
            if isinstance(b, str):
                b = b.encode()
            if b is not None:
                hdrs.setdefault("Content-Type", "application/json")
            p = self._fill(name, path)
            if hijacked:
                out[name] = hijack(d.socket, method, p, b, timeout=timeout, stdin=stdin)
            else:
                out[name] = request(d.socket, method, p if raw_path else API + p, body=b, headers=hdrs, timeout=timeout)
        return out

    def same(self, method: str, path: str, body=None, *, headers=None, timeout: float = 30, raw_path: bool = False,
             hijacked: bool = False, stdin: bytes | None = None, prefetched: str | None = None, **judging) -> Comparison:
        """Sends the request to both (or takes the answers `prefetch` got), compares the answers
        and records the comparison; the test fails at its end if differences outside the
        allowlist remain. `judging`: see `judge`."""
        if prefetched:
            answers = self.prefetched[prefetched].result()
        else:
            answers = self.request(method, path, body, headers=headers, timeout=timeout, raw_path=raw_path,
                                   hijacked=hijacked, stdin=stdin)
        return self.judge(method, path if raw_path else API + path, answers, body=body, **judging)

    def judge(self, method: str, path: str, answers: dict[str, Answer], *, body=None, shape: str = "json",
              values: bool = True, maps: tuple[str, ...] = MAPS, headers_too: bool = False,
              only: tuple[str, ...] = ()) -> Comparison:
        """Compares two answers to `method path` (`shape`, `values`, `maps`: see differ.answer_diff;
        `headers_too`: Docker's own headers too; `only`: the parts of the body a test is about,
        as globs on "$.State*", when a test of its own covers the rest) and records it."""
        endpoint = ROUTES.endpoint(method, self._fill("dockerd", path))
        c = Comparison(endpoint=endpoint, request=f"{method} {path}" + (f" {_short(body)}" if body is not None else ""),
                       berthd=answers["berthd"], dockerd=answers["dockerd"])
        diffs = answer_diff(c.berthd, c.dockerd, body=shape, values=values, maps=maps, headers=headers_too)
        if only:
            diffs = [d for d in diffs if not d.where.startswith("$") or any(fnmatch.fnmatchcase(d.where, glob(g)) for g in only)]
        for diff in diffs:
            rule = next((a for a in ALLOWED if a.covers(endpoint, diff, c)), None)
            if rule:
                c.allowed.append((diff, rule))
            else:
                c.diffs.append(diff)
        TALLY.comparisons.append((_current_id, c))
        if _current is not None:
            _current.append(c)
        return c

    def prefetch(self, key: str, method: str, path: str, body=None):
        """Starts a slow request (dockerd looks an unknown driver up as a plugin for 15 s) in the
        background; `same(..., prefetched=key)` compares its answers later."""
        self.prefetched[key] = self._pool.submit(self.request, method, path, body, timeout=60)


def _short(body) -> str:
    if callable(body):
        return "<per daemon>"
    text = body if isinstance(body, str) else body.decode(errors="replace") if isinstance(body, bytes) else json.dumps(body)
    return text if len(text) < 100 else text[:97] + "..."


# Requests dockerd answers slowly (it looks an unknown driver up as a plugin for 15 s): sent in
# the background when the session starts, compared by the tests that name them.
SLOW = {
    "log-driver": ("POST", "/containers/create?name=cf-slow", {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "no-such-driver"}}}),
    "network-driver": ("POST", "/networks/create", {"Name": "cf-slow", "Driver": "no-such-driver"}),
    "ipam-driver": ("POST", "/networks/create", {"Name": "cf-slow", "IPAM": {"Driver": "no-such-ipam"}}),
    "volume-driver": ("POST", "/volumes/create", {"Name": "cf-slow", "Driver": "no-such-driver"}),
}


@pytest.fixture(scope="session")
def both(berthd, dockerd, request):
    b = Both(berthd, dockerd)
    if any(Path(str(i.fspath)).name == "test_unknown_drivers.py" for i in request.session.items):
        for key, (method, path, body) in SLOW.items():
            b.prefetch(key, method, path, body)
    try:
        yield b
    finally:
        b._pool.shutdown(wait=True, cancel_futures=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Fails a test whose comparisons left differences outside the allowlist."""
    global _current, _current_id
    _current, _current_id = [], item.nodeid
    outcome = yield
    made, _current = _current, None
    bad = [c for c in made if c.diffs]
    if outcome.excinfo is None and bad:
        outcome.force_exception(pytest.fail.Exception(
            "berthd differs from dockerd:\n" + "\n".join(c.report() for c in bad), pytrace=False))


def pytest_runtest_logreport(report):
    if hasattr(report, "wasxfail") and report.skipped:
        TALLY.xfailed[report.nodeid] = report.wasxfail


def pytest_deselected(items):
    TALLY.partial = True


def _cut(text: str, n: int = 150) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def pytest_terminal_summary(terminalreporter):
    if not TALLY.comparisons:
        return
    dump = os.environ.get("CONFORMANCE_DUMP")
    if dump:  # every comparison as JSON lines, for triage
        with open(dump, "w") as f:
            for test, c in TALLY.comparisons:
                f.write(json.dumps({"test": test, "endpoint": c.endpoint, "request": c.request,
                                    "diffs": [str(d) for d in c.diffs],
                                    "allowed": [f"{d} ({r.reason})" for d, r in c.allowed],
                                    "berthd": c.berthd.short(), "dockerd": c.dockerd.short()}) + "\n")
    w = terminalreporter.write_line
    covered = TALLY.endpoints()
    missing = [r for r in ROUTES.served if r not in covered]
    unserved = [r for r in ROUTES.unserved if r in covered]
    others = sorted({c.endpoint for _, c in TALLY.comparisons if "(no route)" in c.endpoint})
    terminalreporter.section("conformance with dockerd 20.10 at API 1.41")
    w(f"endpoints: {len(ROUTES.served) - len(missing)} of the {len(ROUTES.served)} routes berthd serves, "
      f"{len(unserved)} it does not serve yet, {len(others)} unknown paths or wrong methods")
    if missing:
        w(f"  NOT COVERED: {', '.join(missing)}")
    tests = {t for t, _ in TALLY.comparisons}
    identical = sum(1 for _, c in TALLY.comparisons if not c.diffs and not c.allowed)
    w(f"cases compared: {len(TALLY.comparisons)} requests sent to both daemons in {len(tests)} tests; "
      f"{identical} answers identical (status, message, shape, stable values)")
    allowed = Counter(rule.reason for _, c in TALLY.comparisons for _, rule in c.allowed)
    w(f"differences allowed (allowlist.py): {sum(allowed.values())} in "
      f"{sum(1 for _, c in TALLY.comparisons if c.allowed)} answers, for {len(allowed)} reasons:")
    for reason, n in allowed.most_common():
        w(f"  {n:3d}  {_cut(reason)}")
    bugs = defaultdict(list)
    for nodeid, reason in TALLY.xfailed.items():
        bugs[reason].append(nodeid.split("::", 1)[-1])
    w(f"differences that are berthd bugs: {len(bugs)} bugs, shown by {len(TALLY.xfailed)} tests marked xfail:")
    for reason, ids in sorted(bugs.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        w(f"  {len(ids):3d}  {_cut(reason)}")
    bad = defaultdict(list)
    for test, c in TALLY.comparisons:
        if c.diffs and test not in TALLY.xfailed:
            bad[test].append(c)
    w(f"differences left unexplained: {sum(len(v) for v in bad.values())} answers in {len(bad)} tests")
    for test, cs in bad.items():
        for c in cs:
            w(f"  {test.split('::', 1)[-1]}: {_cut(c.request, 100)}: {_cut('; '.join(map(str, c.diffs)), 300)}")


def pytest_sessionfinish(session, exitstatus):
    """A full run fails when berthd serves a route no test compares (a new route needs a case)."""
    whole = {p.name for p in Path(__file__).parent.glob("test_*.py")} <= {Path(str(i.fspath)).name for i in session.items}
    if TALLY.comparisons and whole and not TALLY.partial and exitstatus == 0:
        missing = [r for r in ROUTES.served if r not in TALLY.endpoints()]
        if missing or len(ROUTES.served) < 60:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter:
                reporter.write_line(f"conformance: routes berthd serves that no test compares: {', '.join(missing)}"
                                    if missing else f"conformance: only {len(ROUTES.served)} routes found in "
                                    "Sources/BerthAPI: has the way routes are registered changed? (conftest.served_routes)",
                                    red=True)


# ---- Helpers for tests ----

def query(path: str, /, **params) -> str:
    """`path?k=v&...`, values URL-encoded (dicts and lists as JSON, the way filters are sent)."""
    items = {k.replace("_", "-") if k != "ps_args" else k: json.dumps(v) if isinstance(v, (dict, list)) else v
             for k, v in params.items()}
    return f"{path}?{urllib.parse.urlencode(items)}" if items else path


def hijack(sock: str, method: str, path: str, body: bytes | None = None, timeout: float = 20,
           stdin: bytes | None = None, upgraded=None) -> Answer:
    """A request answered by a hijacked stream (attach, exec start), or one whose answer comes
    in two times (wait): the status and headers, then every byte until the daemon ends the
    body or closes the stream. `upgraded` (a threading.Event) is set once the status line and
    headers arrived, so that a test can act then."""
    import socket as _socket
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    try:
        head = f"{method} {API}{path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        header, _, rest = buf.partition(b"\r\n\r\n")
        lines = header.decode(errors="replace").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().title()] = v.strip()
        if upgraded is not None:
            upgraded.set()
        if stdin is not None and status == 101:
            s.sendall(stdin)
            s.shutdown(_socket.SHUT_WR)
        length = int(headers.get("Content-Length", -1))
        chunked = headers.get("Transfer-Encoding") == "chunked"
        while not (length >= 0 and len(rest) >= length or chunked and rest.endswith(b"0\r\n\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Answer(status, headers, _unchunk(rest) if chunked else rest)
    finally:
        s.close()


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        n = int(size_line.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2:]
    return out


def demux(data: bytes) -> dict[int, bytes] | None:
    """Docker's multiplexed frames as {stream: bytes}, or None when `data` is not framed."""
    out: dict[int, bytes] = {}
    while data:
        if len(data) < 8 or data[0] not in (0, 1, 2) or data[1:4] != b"\0\0\0":
            return None
        n = int.from_bytes(data[4:8], "big")
        if len(data) < 8 + n:
            return None
        out[data[0]] = out.get(data[0], b"") + data[8:8 + n]
        data = data[8 + n:]
    return out


class Scratch:
    """Objects a test makes in both daemons, removed after it whatever happened."""

    def __init__(self, both: Both):
        self.both = both
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []
        self.images: list[str] = []

    def name(self, prefix: str = "cf") -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    def container(self, name: str | None = None, body: dict | None = None, start: bool = False) -> str:
        """Creates (and starts) the same container in both; returns its name."""
        name = name or self.name()
        self.containers.append(name)
        answers = self.both.request("POST", query("/containers/create", name=name), body or {"Image": "busybox", "Cmd": ["sleep", "100000"]})
        for daemon, a in answers.items():
            assert a.status == 201, f"{daemon}: create {name}: {a.short()}"
        if start:
            for daemon, a in self.both.request("POST", f"/containers/{name}/start").items():
                assert a.status == 204, f"{daemon}: start {name}: {a.short()}"
        return name

    def close(self):
        for c in self.containers:
            self.both.request("DELETE", f"/containers/{c}?force=1&v=1")
        for n in self.networks:
            self.both.request("DELETE", f"/networks/{n}")
        for v in self.volumes:
            self.both.request("DELETE", f"/volumes/{v}?force=1")
        for i in self.images:
            self.both.request("DELETE", f"/images/{i}?force=1")


@pytest.fixture
def scratch(both):
    s = Scratch(both)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def world(both, berthd, dockerd):
    """The same objects in both daemons, for tests that only read: containers `cf-created`
    (label a=b), `cf-running` (sleep), `cf-exited` (printed "out" and "err", exit 3), network
    `cf-net`, volume `cf-vol`."""
    for d in (berthd, dockerd):
        def c(*args, check=True):
            return cli(d.socket, *args, config_dir=d.root / "docker-config", check=check)
        c("create", "--name", "cf-created", "--label", "a=b", "busybox")
        c("run", "-d", "--name", "cf-running", "busybox", "sleep", "100000")
        c("run", "--name", "cf-exited", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
        c("network", "create", "cf-net")
        c("volume", "create", "cf-vol")
    return both
