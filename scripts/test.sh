#!/usr/bin/env bash
# Builds Berth and runs every test: unit tests (swift test, no root needed) and the
# integration suites (real containers and daemons, as root): the OCI runtime against
# berth-runtime and runc side by side, then each other suite under tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build
scripts/build-c.sh .build/debug
swift build --build-tests
swift test --skip-build 2>&1 | tail -n 200
if [ "$(id -u)" != 0 ]; then
  echo "integration tests need root: skipped" >&2
  exit 0
fi
export BERTH_TEST_RUNTIMES=${BERTH_TEST_RUNTIMES:-$PWD/.build/debug/berth-runtime:$(command -v runc || echo /usr/sbin/runc)}
# Each suite has its own conftest.py, so each runs in its own pytest process.
for suite in tests/*/; do
  ls "$suite"test_*.py >/dev/null 2>&1 || continue
  echo "== ${suite%/}"
  python3 -m pytest "$suite" -q -p no:cacheprovider "$@"
done
