"""Endpoints berthd does not serve yet (swarm mode, plugins, builds, commit, archives, export):
each must fail as dockerd fails for a feature it does not have, never with a bare 404 "page
not found". Where dockerd's answer is one berthd can give without the feature (an empty plugin
list, a 404 for an unknown plugin), berthd should give it."""

from __future__ import annotations

import pytest

from conftest import bug, query

SWARM = [
    ("GET", "/swarm", None), ("GET", "/swarm/unlockkey", None), ("POST", "/swarm/leave", None),
    ("POST", "/swarm/update?version=1", {}), ("POST", "/swarm/unlock", {"UnlockKey": "x"}),
    ("POST", "/swarm/init", "{bad json"), ("POST", "/swarm/join", "{bad json"),
    ("GET", "/nodes", None), ("GET", "/nodes/x", None), ("POST", "/nodes/x/update?version=1", {}), ("DELETE", "/nodes/x", None),
    ("GET", "/services", None), ("GET", "/services/x", None), ("POST", "/services/create", {}),
    ("POST", "/services/x/update?version=1", {}), ("DELETE", "/services/x", None), ("GET", "/services/x/logs?stdout=1", None),
    ("GET", "/tasks", None), ("GET", "/tasks/x", None), ("GET", "/tasks/x/logs?stdout=1", None),
    ("GET", "/secrets", None), ("GET", "/secrets/x", None), ("POST", "/secrets/create", {}),
    ("POST", "/secrets/x/update?version=1", {}), ("DELETE", "/secrets/x", None),
    ("GET", "/configs", None), ("GET", "/configs/x", None), ("POST", "/configs/create", {}),
    ("POST", "/configs/x/update?version=1", {}), ("DELETE", "/configs/x", None),
]


NOT_ROUTED = bug("features berthd does not have yet (plugins, build, commit, diff) answer 501 or 404 where dockerd "
                 "does the work or fails differently ('plugin enable' 500, build 500 'Cannot locate specified Dockerfile', "
                 "diff of a running container 200 null)")


def missing(method, path, body=None):
    return pytest.param(method, path, body, marks=NOT_ROUTED)


OTHER = [
    ("GET", "/plugins", None), ("GET", "/plugins/no-such-plugin/json", None), ("DELETE", "/plugins/no-such-plugin", None),
    missing("POST", "/plugins/no-such-plugin/enable"), ("POST", "/plugins/no-such-plugin/disable", None),
    ("GET", query("/plugins/privileges", remote="127.0.0.1:1/no-such-plugin"), None),
    ("POST", "/plugins/no-such-plugin/push", None), ("POST", "/plugins/no-such-plugin/set", []),
    missing("POST", query("/plugins/no-such-plugin/upgrade", remote="127.0.0.1:1/no-such-plugin"), []),
    ("POST", query("/plugins/pull", remote="127.0.0.1:1/no-such-plugin"), []),
    missing("POST", query("/plugins/create", name="no-such-plugin"), b""),
    missing("POST", "/build", b""), ("POST", "/session", None),
    pytest.param("POST", "/build/prune", None, marks=bug("POST /build/prune: CachesDeleted [] where dockerd sends null")),
    ("POST", query("/commit", container="no-such-container"), {}),
    missing("POST", query("/commit", container="cf-running", repo="Bad Name"), {}),
    ("GET", "/containers/no-such-container/export", None), ("GET", "/containers/no-such-container/changes", None),
    missing("GET", "/containers/cf-running/changes"),
    ("GET", query("/containers/no-such-container/archive", path="/"), None),
    pytest.param("HEAD", query("/containers/cf-running/archive", path="/no-such-file"), None,
                 marks=bug("HEAD /containers/{id}/archive (docker cp's stat) is not served: berthd 405 where dockerd "
                           "answers 404 'Could not find the file ...'")),
    ("PUT", query("/containers/no-such-container/archive", path="/"), b""),
]


def _check(world, method, path, body):
    c = world.same(method, path, body)
    if c.berthd.status == 404 and c.dockerd.status != 404:
        pytest.fail(f"{method} {path}: berthd answers 404 ({c.berthd.body[:80]!r}) where dockerd answers {c.dockerd.short()}")


@pytest.mark.parametrize("method,path,body", SWARM)
def test_swarm_endpoints_say_not_in_a_swarm(world, method, path, body):
    _check(world, method, path, body)


@pytest.mark.parametrize("method,path,body", OTHER)
def test_missing_feature_is_refused_as_dockerd_refuses(world, method, path, body):
    _check(world, method, path, body)
