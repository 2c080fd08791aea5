"""Fixtures for the OCI runtime integration suite.

Every test runs once per runtime listed in BERTH_TEST_RUNTIMES (colon-separated paths or names;
default: .build/debug/berth-runtime if built, else `runc`), so the same bundle is checked against
runc and berth-runtime side by side; test ids end in `[runc]` or `[berth]`.

Each test gets its own `--root` state dir, unique container ids, its own bundles and a private
cgroup parent (/berth-it-<token>); teardown force-deletes every container it created, kills
what is left in its cgroups and removes them, deletes the network namespaces it added and
unmounts anything left under its tmp dir, even when the test failed. Bundles live under
$BERTH_TEST_TMP (default /tmp/berth-it) and are removed afterwards unless BERTH_TEST_KEEP=1.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MKBUNDLE = REPO / "scripts" / "mkbundle.sh"
IS_ROOT = os.geteuid() == 0

requires_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root: creates namespaces, cgroups, mounts and device nodes")


# --------------------------------------------------------------------------------------------
# Runtimes under test
# --------------------------------------------------------------------------------------------

def _label(path: str) -> str:
    base = os.path.basename(path)
    if "berth" in base:
        return "berth"
    return base


def _runtimes() -> list[tuple[str, str]]:
    env = os.environ.get("BERTH_TEST_RUNTIMES")
    if env:
        items = [x for x in env.split(":") if x]
    else:
        dbg = REPO / ".build" / "debug" / "berth-runtime"
        items = [str(dbg)] if dbg.exists() else ["runc"]
    out, seen = [], {}
    for item in items:
        if "/" in item:
            path = os.path.abspath(item)
        else:
            path = shutil.which(item) or shutil.which(item, path="/usr/sbin:/usr/local/sbin:/sbin") or item
        label = _label(path)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}{seen[label]}"
        out.append((path, label))
    return out


RUNTIMES = _runtimes()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    missing = [p for p, _ in RUNTIMES if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        raise pytest.UsageError(
            f"runtime binary not found or not executable: {', '.join(missing)} "
            "(set BERTH_TEST_RUNTIMES to a colon-separated list of runtime paths)")


def is_runc(binary: str) -> bool:
    return os.path.basename(binary).startswith("runc")


def runc_version(binary: str) -> tuple[int, int] | None:
    """(major, minor) when BINARY is runc, else None."""
    if not is_runc(binary):
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"runc version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


_features_cache: dict[str, dict] = {}


def runtime_features(binary: str) -> dict:
    """The runtime's `features` document ({} if the runtime has no such command)."""
    if binary not in _features_cache:
        p = subprocess.run([binary, "features"], capture_output=True, text=True, timeout=30)
        try:
            _features_cache[binary] = json.loads(p.stdout) if p.returncode == 0 else {}
        except ValueError:
            _features_cache[binary] = {}
    return _features_cache[binary]


# --------------------------------------------------------------------------------------------
# Small helpers usable without a fixture
# --------------------------------------------------------------------------------------------

def edit_config(bundle: Path, fn) -> dict:
    """Apply fn to BUNDLE/config.json (fn mutates the dict or returns a new one); returns it."""
    path = Path(bundle) / "config.json"
    cfg = json.loads(path.read_text())
    res = fn(cfg)
    if res is not None:
        cfg = res
    path.write_text(json.dumps(cfg, indent=2))
    return cfg


def add_bind(cfg: dict, source, destination: str, options=("rbind", "rw")) -> dict:
    cfg.setdefault("mounts", []).append(
        {"destination": destination, "type": "bind", "source": str(source), "options": list(options)})
    return cfg


def wait_for(pred, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def proc_status(pid, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def host_mountinfo() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


# ---- cgroups (v1 per-controller hierarchies, or the v2 unified one) ------------------------

def _cgroup_mounts():
    """[(mountpoint, fstype, set(controllers))] for every cgroup/cgroup2 mount of this host."""
    res = []
    for line in host_mountinfo():
        left, right = line.split(" - ", 1)
        fstype, _src, super_opts = right.split(" ")[:3]
        mnt = left.split(" ")[4]
        if fstype == "cgroup":
            res.append((mnt, fstype, set(super_opts.split(","))))
        elif fstype == "cgroup2":
            try:
                ctrls = set(Path(mnt, "cgroup.controllers").read_text().split())
            except OSError:
                ctrls = set()
            res.append((mnt, fstype, ctrls))
    return res


def cgroup_mode(controller: str) -> tuple[str, str] | None:
    """('v1', mountpoint) if CONTROLLER has a v1 hierarchy, ('v2', mountpoint) if it is enabled
    on the unified hierarchy, else None."""
    mounts = _cgroup_mounts()
    for mnt, fs, ctrls in mounts:
        if fs == "cgroup" and controller in ctrls:
            return ("v1", mnt)
    for mnt, fs, ctrls in mounts:
        if fs == "cgroup2" and (controller in ctrls or controller == ""):
            return ("v2", mnt)
    return None


def cgroup_dir_of(pid: int, controller: str) -> Path:
    """The host directory of PID's cgroup for CONTROLLER (read from /proc/PID/cgroup)."""
    mode = cgroup_mode(controller)
    assert mode, f"no cgroup hierarchy has the {controller} controller on this host"
    kind, mnt = mode
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if kind == "v1" and controller in ctrls.split(","):
            return Path(mnt + path)
        if kind == "v2" and hid == "0":
            return Path(mnt + path)
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


def cgroup_paths_for(cgroups_path: str) -> list[Path]:
    """Every directory an absolute cgroupsPath would occupy, over all mounted hierarchies."""
    seen, out = set(), []
    for mnt, _fs, _c in _cgroup_mounts():
        if mnt in seen:
            continue
        seen.add(mnt)
        out.append(Path(mnt + cgroups_path))
    return out


def remove_cgroup_tree(cgroups_path: str):
    """Kill what is left inside a cgroup tree we made, then rmdir it bottom-up."""
    for top in cgroup_paths_for(cgroups_path):
        if not top.is_dir():
            continue
        dirs = sorted((Path(d) for d, _s, _f in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
        for d in dirs:
            frz = d / "freezer.state"
            if frz.exists():  # a frozen task can't die
                try:
                    frz.write_text("THAWED")
                except OSError:
                    pass
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
            except OSError:
                pass
        for d in dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Console socket (SCM_RIGHTS receiver for the pty master)
# --------------------------------------------------------------------------------------------

class ConsoleSocket:
    """A unix socket server that accepts one connection and receives the pty master fd."""

    def __init__(self):
        # sun_path is 108 bytes: keep the path short, not under pytest's long tmp_path
        self.dir = tempfile.mkdtemp(prefix="bit-cs-", dir="/tmp")
        self.path = os.path.join(self.dir, "c.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.fd: int | None = None
        self.msg = b""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
                self.msg = msg
                if fds:
                    self.fd = fds[0]
                    for extra in fds[1:]:
                        os.close(extra)
        except BaseException as e:  # reported by master()
            self.error = e

    def master(self, timeout: float = 15) -> int:
        self._thread.join(timeout)
        if self.fd is None:
            raise AssertionError(f"no pty master received on the console socket ({self.error!r})")
        return self.fd

    def read_until(self, needle: bytes, timeout: float = 15) -> bytes:
        fd = self.master()
        buf = b""
        deadline = time.monotonic() + timeout
        while needle not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out reading {needle!r} from the pty; got {buf!r}")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO once the slave side is closed
                break
            if not chunk:
                break
            buf += chunk
        return buf

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The per-test harness
# --------------------------------------------------------------------------------------------

class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    @property
    def returncode(self):
        return self.rc

    def __repr__(self):
        return f"Result(rc={self.rc}, argv={self.argv!r}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


class RuntimeError_(AssertionError):
    pass


class Harness:
    """`rt(*args)` runs `RUNTIME --root ROOT args...`; the rest are conveniences around it."""

    def __init__(self, binary: str, label: str, tmp: Path, request=None):
        self.request = request
        self.binary = binary
        self.label = label
        self.tmp = tmp
        self.root = tmp / "state"
        self.root.mkdir(mode=0o700)
        self.token = secrets.token_hex(4)
        self.cgroup_parent = f"/berth-it-{self.token}"
        self.ids: list[str] = []
        self.extra_cgroups: list[str] = []
        self.netns: list[str] = []
        self.popens: list[subprocess.Popen] = []
        self._n = 0

    def runc_deviation(self, reason: str, strict: bool = True):
        """Mark the running test as an expected failure under runc: runc breaks the spec clause
        the test pins (the test still runs, and with strict=True must keep failing)."""
        if is_runc(self.binary) and self.request is not None:
            self.request.node.add_marker(pytest.mark.xfail(reason=f"runc deviation: {reason}", strict=strict))

    # -- running the runtime ------------------------------------------------------------------
    def argv(self, *args) -> list[str]:
        return [self.binary, "--root", str(self.root), *map(str, args)]

    def __call__(self, *args, check=True, input=None, timeout=30, cwd=None, env=None) -> Result:
        argv = self.argv(*args)
        # Files, not pipes: a created container inherits the runtime's stdio and would hold a
        # pipe open forever, so reading a pipe to EOF would hang.
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL if input is None else None,
                               input=input.encode() if isinstance(input, str) else input,
                               stdout=fo, stderr=fe, timeout=timeout, cwd=cwd, env=env)
            fo.seek(0)
            fe.seek(0)
            res = Result(argv, p.returncode, fo.read().decode(errors="replace"),
                         fe.read().decode(errors="replace"))
        if check and res.rc != 0:
            raise RuntimeError_(f"{' '.join(argv)} failed: {res!r}")
        return res

    def popen(self, *args, **kw) -> subprocess.Popen:
        """Start the runtime in the background (e.g. a foreground `run`); stdout/err to files."""
        out = open(self.tmp / f"popen-{len(self.popens)}.out", "w+b")
        err = open(self.tmp / f"popen-{len(self.popens)}.err", "w+b")
        p = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL, stdout=out, stderr=err, **kw)
        p.out_file, p.err_file = out, err
        self.popens.append(p)
        return p

    # -- ids and bundles -------------------------------------------------------------------------
    def new_id(self, name: str = "c") -> str:
        self._n += 1
        cid = f"it-{self.token}-{name}-{self._n}"
        self.ids.append(cid)
        return cid

    def bundle(self, *args: str, name: str | None = None, edit=None, cgroups_path: str | None = None) -> Path:
        """A fresh bundle whose process runs ARGS; its cgroupsPath sits under this test's parent."""
        self._n += 1
        name = name or f"b{self._n}"
        path = self.tmp / name
        subprocess.run([str(MKBUNDLE), str(path), *args], check=True, timeout=60)
        cg = cgroups_path or f"{self.cgroup_parent}/{name}"
        if cgroups_path:
            self.extra_cgroups.append(cgroups_path)

        def base(cfg):
            cfg["linux"]["cgroupsPath"] = cg
        edit_config(path, base)
        if edit:
            edit_config(path, edit)
        return path

    def cgroups_path(self, bundle: Path) -> str:
        return json.loads((Path(bundle) / "config.json").read_text())["linux"]["cgroupsPath"]

    def hostdir(self, name: str, mode=0o777) -> Path:
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        os.chmod(d, mode)
        return d

    # -- state ------------------------------------------------------------------------------------
    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).out)

    def status(self, cid: str) -> str | None:
        r = self("state", cid, check=False)
        if r.rc != 0:
            return None
        return json.loads(r.out)["status"]

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self("state", cid, check=False)
            if r.rc == 0:
                last = json.loads(r.out)
                if last["status"] == status:
                    return last
            time.sleep(0.02)
        raise AssertionError(f"{cid} did not reach {status!r} within {timeout}s (last state {last})")

    def create(self, bundle: Path, cid: str | None = None, *extra) -> str:
        cid = cid or self.new_id()
        self("create", *extra, "--bundle", bundle, cid)
        return cid

    def start_container(self, bundle: Path, cid: str | None = None) -> tuple[str, int]:
        """create + start; returns (id, host pid of the container's process)."""
        cid = self.create(bundle, cid)
        self("start", cid)
        st = self.state(cid)
        return cid, st["pid"]

    def run(self, *args, edit=None, timeout=30, check=False) -> Result:
        """Build a bundle for ARGS (with EDIT applied) and `run` it in the foreground."""
        b = self.bundle(*args, edit=edit)
        return self("run", "--bundle", b, self.new_id("run"), check=check, timeout=timeout)

    def add_netns(self) -> str:
        name = f"berth-it-{self.token}-{len(self.netns)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.netns.append(name)
        return name

    # -- teardown ---------------------------------------------------------------------------------
    def cleanup(self):
        for cid in reversed(self.ids):
            try:
                self("delete", "--force", cid, check=False, timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for p in self.popens:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            p.out_file.close()
            p.err_file.close()
        remove_cgroup_tree(self.cgroup_parent)
        for cg in self.extra_cgroups:
            remove_cgroup_tree(cg)
        for ns in self.netns:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        # anything a broken runtime left mounted under our tmp dir on the host
        tmp = str(self.tmp)
        for line in reversed(host_mountinfo()):
            mnt = line.split(" ")[4]
            if mnt.startswith(tmp + "/"):
                subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.fixture(params=RUNTIMES, ids=[label for _, label in RUNTIMES])
def runtime(request) -> str:
    """Path of the runtime binary under test."""
    return request.param[0]


TMP_BASE = Path(os.environ.get("BERTH_TEST_TMP", "/tmp/berth-it"))


@pytest.fixture
def rt(runtime, request) -> Harness:
    if not IS_ROOT:
        pytest.skip("needs root: creates namespaces, cgroups, mounts and device nodes")
    # Not pytest's tmp_path: its parents are 0700, which a user-namespaced container root
    # (a high host uid) cannot traverse to reach its rootfs and bind sources.
    TMP_BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(TMP_BASE, 0o711)
    tmp = Path(tempfile.mkdtemp(prefix="t-", dir=TMP_BASE))
    os.chmod(tmp, 0o711)
    h = Harness(runtime, _label(runtime), tmp, request)
    try:
        yield h
    finally:
        h.cleanup()
        if not os.environ.get("BERTH_TEST_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def console():
    cs = ConsoleSocket()
    try:
        yield cs
    finally:
        cs.close()


# --------------------------------------------------------------------------------------------
# Assertion helpers shared by tests
# --------------------------------------------------------------------------------------------

CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def cap_mask(names) -> int:
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return m


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def single_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    return lines[0]


NOT_FOUND_RE = re.compile(r"does not exist|not found|no such|unknown container", re.I)
