#!/usr/bin/env bash
# Builds Berth and runs every test: unit tests (swift test, no root needed) and the
# integration suite (real containers, as root), against berth-runtime and runc side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build
swift test 2>&1 | tail -n 200
if [ "$(id -u)" != 0 ]; then
  echo "integration tests need root: skipped" >&2
  exit 0
fi
export BERTH_TEST_RUNTIMES=${BERTH_TEST_RUNTIMES:-$PWD/.build/debug/berth-runtime:$(command -v runc || echo /usr/sbin/runc)}
python3 -m pytest tests/integration -q -p no:cacheprovider "$@"
