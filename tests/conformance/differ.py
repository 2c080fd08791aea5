"""What "the same answer" means: two HTTP answers differ by status, by error message, by content
type, or by the shape of their JSON (keys, JSON types, null vs [] vs missing, and the values
that do not depend on the daemon: IDs, timestamps, sizes, addresses and paths are never
compared)."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

# An engine ID (64 hex), a short ID (12 hex) or a digest.
_ID = re.compile(r"(sha256:)?\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
# Keys whose values are per daemon, per run or per machine: compared by type only.
VOLATILE_KEYS = re.compile(
    r"(?i)^(id|.*id|created|.*at|time|timenano|.*time|.*size|size.*|pid|.*path|mountpoint|source|.*dir|"
    r"macaddress|.*ipaddress|.*ipv6address|gateway|.*gateway|ipprefixlen|.*prefixlen|subnet|iprange|"
    r"hostname|digest|repodigests|sandboxkey|.*count|containers|images|"
    r"read|preread|num_procs|.*_.*|limit|current|stats|"
    r"processes|logs|output|.*reclaimed|.*deleted|untagged|root|dockerrootdir|.*version.*|"
    r"mem.*|ncpu|cpus|kernel.*|operatingsystem|ostype|osversion|architecture|"
    r"containersrunning|containerspaused|containersstopped|ngoroutines|nfd|nevents.*|"
    r"systemtime|cgroup.*|runtimes|defaultruntime|securityoptions|isolation|initbinary|"
    r"containerdcommit|runccommit|initcommit|actor|attributes|endpointid|networkid|aliases|dnsnames|links)$")
# "Up 3 seconds", "Exited (3) 2 minutes ago": the durations differ, the rest must not.
_DURATION = re.compile(r"\b(\d+|an?|About an?|Less than a(n)?) (second|minute|hour|day|week)s?\b")


def kind(value) -> str:
    """The JSON type: null, bool, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def describe(value) -> str:
    k = kind(value)
    if k == "array":
        return f"[{len(value)} items]" if value else "[]"
    if k == "object":
        return "{...}" if value else "{}"
    return json.dumps(value)[:80]


@dataclass(frozen=True)
class Diff:
    """One difference: where (`$.State.Status`, `status`, `message`), and what each side had."""
    where: str
    berthd: str
    dockerd: str

    def __str__(self):
        return f"{self.where}: berthd {self.berthd}, dockerd {self.dockerd}"


def _sort_key(item):
    if isinstance(item, dict):
        for k in ("Name", "Names", "name", "Type", "Destination", "Target", "Driver"):
            if k in item:
                return json.dumps(item[k])
    return json.dumps(item, sort_keys=True) if kind(item) != "object" else ""


ID_MAPS = ("$.Containers", "$[*].Containers")


def shape_diff(b, d, where: str = "$", values: bool = True, maps: tuple[str, ...] = ()) -> list[Diff]:
    """Differences between berthd's JSON `b` and dockerd's `d`.

    Keys missing on either side, JSON types (null, [] and {} count as their own types only
    when the other side is a different type), array emptiness, and, with `values`, scalar
    values whose key is not volatile (IDs, times, sizes, paths, addresses). Paths matching a
    glob in `maps` are maps whose keys are data (Labels, Options): only values of keys both
    have are compared. Maps keyed by IDs (a network's Containers) compare their values'
    shapes, one with another."""
    kb, kd = kind(b), kind(d)
    if kb != kd:
        return [Diff(where, describe(b), describe(d))]
    out: list[Diff] = []
    if kb == "object" and where in ID_MAPS:
        if bool(b) != bool(d):
            return [Diff(where, describe(b), describe(d))]
        for x, y in zip(b.values(), d.values()):
            return shape_diff(x, y, f"{where}.<id>", False, maps)
        return []
    if kb == "object":
        is_map = any(fnmatch.fnmatchcase(where, m) for m in maps)
        for key in sorted(set(b) | set(d)):
            sub = f"{where}.{key}"
            if key not in b:
                if not is_map:
                    out.append(Diff(sub, "missing", describe(d[key])))
            elif key not in d:
                if not is_map:
                    out.append(Diff(sub, describe(b[key]), "missing"))
            else:
                volatile = values and bool(VOLATILE_KEYS.match(key))
                out += shape_diff(b[key], d[key], sub, values and not volatile and not is_map, maps)
    elif kb == "array":
        if bool(b) != bool(d):
            return [Diff(where, describe(b), describe(d))]
        if values and len(b) != len(d):
            out.append(Diff(where, describe(b), describe(d)))
        bs, ds = sorted(b, key=_sort_key), sorted(d, key=_sort_key)
        seen = set()
        for x, y in zip(bs, ds):
            for diff in shape_diff(x, y, f"{where}[*]", values, maps):
                if diff not in seen:
                    seen.add(diff)
                    out.append(diff)
    elif values and b != d and not (kb == "string" and (_ID.fullmatch(b) or _TIME.match(b)
                                                       or _DURATION.sub("<t>", b) == _DURATION.sub("<t>", d))):
        out.append(Diff(where, describe(b), describe(d)))
    return out


def normalize_message(text: str) -> str:
    """An error message with IDs replaced, and its first letter in lower case (dockerd's errors
    went from "Invalid filter" to Go's "invalid filter" style over the versions), so that the
    two daemons' messages compare."""
    text = _ID.sub("<id>", text).strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


@dataclass
class Answer:
    """One daemon's answer to one request."""
    status: int
    headers: dict
    body: bytes

    @property
    def media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    @property
    def json(self):
        return json.loads(self.body)

    def json_or_none(self):
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def json_lines(self) -> list:
        """A stream of JSON documents (events, progress, stats)."""
        dec, text, pos, out = json.JSONDecoder(), self.body.decode(errors="replace"), 0, []
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return out
            value, pos = dec.raw_decode(text, pos)
            out.append(value)

    def short(self) -> str:
        body = self.body[:300].decode(errors="replace").strip()
        return f"{self.status} {self.media_type} {body}"


# The headers dockerd's middlewares and ping handler set, compared when asked for.
DOCKER_HEADERS = ("Api-Version", "Docker-Experimental", "Ostype", "Server", "Swarm", "Builder-Version",
                  "Cache-Control", "Pragma")


def answer_diff(b: Answer, d: Answer, *, body: str = "json", values: bool = True,
                maps: tuple[str, ...] = (), headers: bool = False) -> list[Diff]:
    """Differences between two answers to the same request.

    `body`: "json" (shape_diff), "lines" (a stream of JSON documents, shape of each kind),
    "text" (compared as is), "none" (status and content type only). `headers`: also compare
    Docker's own headers (presence and value)."""
    out: list[Diff] = []
    if b.status != d.status:
        out.append(Diff("status", str(b.status), str(d.status)))
    if headers:
        for h in DOCKER_HEADERS:
            bv, dv = b.headers.get(h), d.headers.get(h)
            if bv != dv:
                out.append(Diff(f"header {h}", json.dumps(bv) if bv is not None else "missing",
                                json.dumps(dv) if dv is not None else "missing"))
    if b.status >= 400 or d.status >= 400:
        bm, dm = _message(b), _message(d)
        if bm != dm:
            out.append(Diff("message", json.dumps(bm), json.dumps(dm)))
        return out
    if b.status in (204, 304) or d.status in (204, 304):
        return out
    if b.media_type != d.media_type and (b.body or d.body or b.status < 300):
        out.append(Diff("content-type", b.media_type or "none", d.media_type or "none"))
    if body == "none":
        return out
    if body == "json":
        bj, dj = b.json_or_none(), d.json_or_none()
        if bj is None and b.body.strip() or dj is None and d.body.strip():
            if b.body != d.body:
                out.append(Diff("body", b.body[:80].decode(errors="replace"), d.body[:80].decode(errors="replace")))
        else:
            out += shape_diff(bj, dj, values=values, maps=maps)
    elif body == "lines":
        out += shape_diff(_by_kind(b.json_lines()), _by_kind(d.json_lines()), values=values, maps=maps)
    elif body == "text":
        bt, dt = (_ID.sub("<id>", a.body.decode(errors="replace")) for a in (b, d))
        if bt != dt:
            out.append(Diff("body", json.dumps(bt[:80]), json.dumps(dt[:80])))
    return out


def error_message(a: Answer) -> str | None:
    """The `message` of an error answer, IDs normalized."""
    return _message(a) if a.status >= 400 else None


def _message(a: Answer):
    """The error's `message` (normalized), or what the body was instead of Docker's error JSON."""
    j = a.json_or_none()
    if isinstance(j, dict) and set(j) == {"message"} and isinstance(j["message"], str):
        return normalize_message(j["message"])
    if a.status < 400:
        return None
    return f"<not an error JSON: {a.media_type} {a.body[:60].decode(errors='replace')!r}>"


def _by_kind(docs: list) -> dict:
    """A stream as {kind: first document of that kind}, so streams of different lengths compare
    by the kinds of documents they hold: events by Type/Action, other documents by their keys."""
    out = {}
    for doc in docs:
        if isinstance(doc, dict) and "Type" in doc and "Action" in doc:
            key = f"{doc['Type']}/{doc['Action'].split(':')[0]}"
        else:
            key = "+".join(sorted(doc)) if isinstance(doc, dict) else kind(doc)
        out.setdefault(key, doc)
    return out


def glob(pattern: str) -> str:
    """A pattern on diff places, where "[*]" (any element of an array) is literal, for fnmatch."""
    return pattern.replace("[*]", "[[]*]")


@dataclass(frozen=True)
class Allowed:
    """An intentional difference. It covers a diff when every given pattern matches: `endpoint`
    (glob on "GET /route"), `where` (glob on "$.Key.Sub", "status", "message", "header X"),
    `berthd`/`dockerd` (globs on what each side had, as the diff shows it), and `dockerd_says`
    (regex searched in dockerd's error message, for rules about a kind of error)."""
    endpoint: str
    where: str
    reason: str
    berthd: str = "*"
    dockerd: str = "*"
    dockerd_says: str = ""
    same_message: bool = False

    def covers(self, endpoint: str, diff: Diff, comparison: "Comparison") -> bool:
        dm = error_message(comparison.dockerd)
        return (fnmatch.fnmatchcase(endpoint, self.endpoint) and fnmatch.fnmatchcase(diff.where, glob(self.where))
                and fnmatch.fnmatchcase(diff.berthd, self.berthd) and fnmatch.fnmatchcase(diff.dockerd, self.dockerd)
                and (not self.dockerd_says or re.search(self.dockerd_says, dm or "") is not None)
                and (not self.same_message or error_message(comparison.berthd) == dm))


@dataclass
class Comparison:
    """One request sent to both daemons, and what came of it."""
    endpoint: str
    request: str
    berthd: Answer
    dockerd: Answer
    diffs: list[Diff] = field(default_factory=list)
    allowed: list[tuple[Diff, Allowed]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{self.request}  [{self.endpoint}]"]
        lines += [f"    {d}" for d in self.diffs]
        lines.append(f"    berthd:  {self.berthd.short()}")
        lines.append(f"    dockerd: {self.dockerd.short()}")
        return "\n".join(lines)
