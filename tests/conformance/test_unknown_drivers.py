"""Unknown log, network, IPAM and volume drivers. dockerd looks each one up as a plugin for
about 15 s before it refuses, so these requests are sent in the background when the session
starts (conftest.SLOW) and only compared here."""

from __future__ import annotations

import pytest

from conftest import SLOW, bug


@bug("unknown log driver at create: both 400 now, but berthd says \"logger: no log driver named 'no-such-driver' is "
     "registered\", dockerd 'error looking up logging plugin no-such-driver: plugin \"no-such-driver\" not found'")
def test_create_container_with_an_unknown_log_driver(world):
    world.same(*SLOW["log-driver"], prefetched="log-driver")


@pytest.mark.parametrize("key", ["network-driver", "ipam-driver"])
def test_create_network_with_an_unknown_driver(world, key):
    world.same(*SLOW[key], prefetched=key)


def test_create_volume_with_an_unknown_driver(world):
    world.same(*SLOW["volume-driver"], prefetched="volume-driver")
