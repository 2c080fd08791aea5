#!/usr/bin/env bash
# Installs what Berth needs to build, run and test on a fresh Debian 12 machine (as root).
# Idempotent: does nothing but a quick check when everything is present.
set -euo pipefail
PKGS=(
  libseccomp-dev   # BerthSeccomp compiles seccomp profiles with libseccomp
  libarchive-dev   # BerthImages reads and writes layer tars with libarchive
  libssl-dev       # BerthOCI hashes with OpenSSL's SHA-256 (hardware-accelerated)
  busybox-static   # the built-in default image/bundle, and the test rootfs
  jq               # scripts/mkbundle.sh
  iproute2         # tests: network namespaces
  procps           # `ps` for berth-runtime ps (table format)
  runc             # tests run the same bundles under runc
  containerd       # tests: containerd drives berth-runtime
  file
  docker-registry  # tests: distribution 2.8, the reference registry Berth pulls from and pushes to
  skopeo           # tests: an independent registry client
  libcrypt-dev     # BerthRegistry checks htpasswd bcrypt hashes with crypt_r
  libnl-3-dev libnl-route-3-dev  # BerthNetlink: links, addresses, routes over rtnetlink
  libnftables-dev  # BerthFirewall: Berth's nftables tables
  nftables         # tests and operators: `nft list table ip berth`
  iptables         # BerthFirewall's backend for hosts without nf_tables (--firewall-backend iptables)
  docker.io        # tests/conformance: dockerd 20.10, the reference the API is compared with (the suite starts its own; the service is not used)
  golang-github-docker-docker-dev  # tests: Docker's published default seccomp profile (profiles/seccomp/default.json), the reference BerthSeccomp's default is compared with
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Packages with services (docker.io, containerd) must not start them: the tests start their
  # own daemons, and a system dockerd would rewrite the host's firewall.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
