"""berth-registry under hostile clients: connections held open without asking anything, and
password guessing. Each test performs the abuse against a real server and checks that valid
clients are still served; none asserts an absolute time (the machine is shared)."""

from __future__ import annotations

import base64
import ctypes
import http.client
import json
import resource
import select
import socket
import ssl
import subprocess
import threading
import time

# Short limits so that each test takes seconds.
FAST = ["--idle-timeout", "1s", "--read-header-timeout", "1s"]


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_server(sockets: list[socket.socket], within: float, enough: int | None = None) -> set[int]:
    """Indices of the sockets the server has closed (EOF or reset) within `within` seconds,
    or as soon as `enough` of them are."""
    closed: set[int] = set()
    deadline = time.monotonic() + within
    enough = len(sockets) if enough is None else enough
    while len(closed) < enough and time.monotonic() < deadline:
        poller = select.poll()
        fds = {}
        for i, s in enumerate(sockets):
            if i not in closed:
                poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
                fds[s.fileno()] = i
        for fd, _ in poller.poll(100):
            i = fds[fd]
            try:
                sockets[i].setblocking(False)
                data = sockets[i].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data == b"":
                closed.add(i)
    return closed


def get(port: int, path: str = "/v2/", source: str = "127.0.0.1", creds: tuple[str, str] | None = None,
        timeout: float = 10) -> tuple[int, http.client.HTTPMessage, bytes]:
    headers = {}
    if creds:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def bcrypt(password: str, cost: int) -> str:
    """An htpasswd bcrypt entry made by the system's libxcrypt (what htpasswd -B writes)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode(), lib.crypt_gensalt(b"$2y$", cost, None, 0)).decode()


# MARK: connections


def test_three_hundred_idle_connections_leave_room_for_valid_requests(make_registry):
    """With a soft open-files limit of 256 (the limit that was exhausted), 300 connections that
    send nothing must not lock valid clients out: the registry raises the limit to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 1024, "the test needs a hard open-files limit above 1024"
    registry = make_registry(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    limits = open(f"/proc/{registry.proc.pid}/limits").read()
    soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(soft) == hard, limits

    idle = [connect(registry.port) for _ in range(300)]
    try:
        for _ in range(3):
            status, _, _ = get(registry.port, timeout=5)
            assert status == 200
        assert registry.proc.poll() is None
    finally:
        for s in idle:
            s.close()


def test_idle_and_slow_header_connections_are_closed_but_busy_ones_stay(make_registry):
    registry = make_registry(args=FAST)
    silent = [connect(registry.port) for _ in range(20)]
    # Slowloris: a request head that never ends, a byte at a time.
    slow = [connect(registry.port) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n")
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.2):
            for s in slow:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle)
    trickler.start()
    # A client that made one request and keeps the connection without another.
    kept = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    kept.request("GET", "/v2/")
    assert kept.getresponse().read() == b"{}"
    # A client that keeps using its connection is never cut off.
    active = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    active.request("GET", "/v2/")
    active.getresponse().read()
    active_socket = active.sock
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            active.request("GET", "/v2/")
            r = active.getresponse()
            assert r.status == 200 and r.read() == b"{}"
            assert active.sock is active_socket, "the active connection was replaced"
            time.sleep(0.3)
        assert closed_by_server(silent, within=5) == set(range(20)), "connections that never sent a request"
        assert closed_by_server(slow, within=5) == set(range(20)), "request heads that never end"
        assert closed_by_server([kept.sock], within=5) == {0}, "a kept-alive connection left idle"
        assert get(registry.port)[0] == 200
    finally:
        stop.set()
        trickler.join()
        for s in silent + slow:
            s.close()
        kept.close()
        active.close()


def test_connection_cap_closes_the_connections_idle_longest_for_new_clients(make_registry):
    # No timeouts here: only the cap acts.
    registry = make_registry(args=["--max-connections", "50", "--idle-timeout", "0", "--read-header-timeout", "0"])
    idle = [connect(registry.port) for _ in range(300)]
    try:
        assert get(registry.port, timeout=5)[0] == 200
        # 301 connections for 50 places: the oldest 251 at least go, the newest stay.
        closed = closed_by_server(idle, within=5, enough=251)
        assert len(closed) >= 251, len(closed)
        assert set(range(200)) <= closed, "the connections idle longest go first"
        assert not closed_by_server(idle[-10:], within=0.3), "the newest connections stay"
    finally:
        for s in idle:
            s.close()


def test_tls_handshake_that_never_finishes_is_cut_off(make_registry, workdir):
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    registry = make_registry(args=["--tls-cert", str(cert), "--tls-key", str(key), "--tls-handshake-timeout", "1s",
                                   "--read-header-timeout", "0", "--idle-timeout", "0"])
    silent = [connect(registry.port) for _ in range(10)]
    # Half a handshake: a ClientHello's first bytes, then nothing.
    partial = [connect(registry.port) for _ in range(10)]
    for s in partial:
        s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", registry.port, timeout=10, context=context)
        conn.request("GET", "/v2/")
        assert conn.getresponse().status == 200
        conn.close()
        assert closed_by_server(silent + partial, within=5) == set(range(20))
    finally:
        for s in silent + partial:
            s.close()


# MARK: passwords


def test_wrong_password_flood_is_rate_limited_per_client_while_valid_clients_are_served(make_registry):
    registry = make_registry(htpasswd=f"alice:{bcrypt('s3cret', 5)}\n", args=["--auth-failures", "5", "--auth-backoff", "30s"])
    attackers = [f"127.0.0.{i}" for i in range(2, 8)]
    statuses: dict[str, list[tuple[int, str | None, list[str]]]] = {a: [] for a in attackers}
    valid: list[int] = []

    def attack(source: str):
        for i in range(30):
            status, headers, body = get(registry.port, "/v2/", source=source, creds=("alice", f"guess{i}"))
            codes = [e["code"] for e in json.loads(body)["errors"]] if body else []
            statuses[source].append((status, headers.get("Retry-After"), codes))

    def use():
        for _ in range(40):
            valid.append(get(registry.port, "/v2/_catalog", creds=("alice", "s3cret"))[0])

    threads = [threading.Thread(target=attack, args=(a,)) for a in attackers] + [threading.Thread(target=use)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert valid == [200] * 40
    for source, answers in statuses.items():
        assert [s for s, _, _ in answers[:5]] == [401] * 5, (source, answers)
        for status, retry_after, codes in answers[5:]:
            assert status == 429 and codes == ["TOOMANYREQUESTS"], (source, answers)
            assert retry_after is not None and 0 < int(retry_after) <= 30
    # Another address is not held back by these, and the right password still works.
    assert get(registry.port, source="127.0.0.9", creds=("alice", "s3cret"))[0] == 200


def test_unknown_user_is_answered_like_a_wrong_password(make_registry):
    """Same answer, same cost (bcrypt against a dummy hash) and same rate limit; the cost is
    compared with the server's own wrong-password answers, on a hash slow enough to dominate."""
    registry = make_registry(htpasswd=f"alice:{bcrypt('s3cret', 10)}\n", args=["--auth-failures", "100"])

    def attempt(user: str, password: str, source: str) -> tuple[float, int, bytes, dict]:
        started = time.monotonic()
        status, headers, body = get(registry.port, source=source, creds=(user, password))
        return time.monotonic() - started, status, body, {k: v for k, v in headers.items() if k != "Date"}

    wrong = [attempt("alice", f"nope{i}", "127.0.0.2") for i in range(3)]
    unknown = [attempt(f"mallory{i}", "nope", "127.0.0.3") for i in range(3)]
    answers = [(s, json.loads(b), sorted(h.items())) for _, s, b, h in wrong + unknown]
    assert all(a == answers[0] for a in answers), answers
    assert wrong[0][1] == 401
    # An answer without bcrypt would take a small fraction of one with it.
    assert min(t for t, *_ in unknown) > 0.3 * min(t for t, *_ in wrong), (wrong, unknown)

    registry.stop()
    limited = make_registry(htpasswd=f"alice:{bcrypt('s3cret', 5)}\n", name="limited", args=["--auth-failures", "3"])
    answers = [get(limited.port, source="127.0.0.4", creds=(f"mallory{i}", "x"))[0] for i in range(5)]
    assert answers == [401, 401, 401, 429, 429], "unknown users count as failures"
