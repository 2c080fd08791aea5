#!/usr/bin/env bash
# docker-run.sh: `docker run --rm busybox true` end to end, the same docker CLI against berthd
# and against Debian's dockerd, timed side by side in ONE hyperfine run (this VM drifts
# ±20-30 % between batches: compare the ratio). Both engines get the same busybox image,
# built offline by scripts/mkimage-busybox.sh. dockerd is started (and stopped again) with
# /work/shared/bench/anchor-services.sh (isolated socket, data root, no egress); berthd runs
# from .build/release with its own temporary data root.
# Env: RUNS (default 20), WARMUP (3), DOCKER (default /usr/local/bin/docker).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${ANCHOR:-$REPO/../shared/bench/anchor-services.sh}
RUNS=${RUNS:-20}; WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/local/bin/docker}
for t in hyperfine jq "$DOCKER"; do command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }; done
for b in berthd berth-runtime berth-monitor; do
  [ -x "$REPO/.build/release/$b" ] || { echo "build first: swift build -c release (missing $b)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/berth-bench-run.XXXX)
BSOCK=$WORK/berth.sock
DSOCK=/tmp/anchor-docker.sock
STARTED_DOCKERD=0
cleanup() {
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
  [ $STARTED_DOCKERD = 1 ] && "$ANCHOR" stop dockerd >/dev/null 2>&1
}
trap cleanup EXIT

"$REPO/.build/release/berthd" --host "unix://$BSOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" 2>"$WORK/berthd.log" &
BPID=$!
for _ in $(seq 100); do [ -S "$BSOCK" ] && break; sleep 0.05; done
"$REPO/scripts/mkimage-busybox.sh" "$WORK/busybox.tar" >/dev/null
"$DOCKER" -H "unix://$BSOCK" load -q -i "$WORK/busybox.tar" >/dev/null

args=(--command-name "berthd" "$DOCKER -H unix://$BSOCK run --rm --network none busybox true")
if [ -x "$ANCHOR" ] && command -v dockerd >/dev/null; then
  if ! [ -S "$DSOCK" ] || ! "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
    "$ANCHOR" start dockerd >/dev/null && STARTED_DOCKERD=1
  fi
  if "$DOCKER" -H "unix://$DSOCK" load -q -i "$WORK/busybox.tar" >/dev/null 2>&1; then
    args+=(--command-name "dockerd" "$DOCKER -H unix://$DSOCK run --rm --network none busybox true")
  else
    echo "# dockerd not reachable: berthd only" >&2
  fi
else
  echo "# no dockerd (apt-get install docker.io) or anchor script: berthd only" >&2
fi
hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/run.json" "${args[@]}"
jq -r '.results | map({(.command): .median}) | add |
  "median ms: " + (to_entries | map("\(.key) \(.value*1000|floor)") | join(", ")) +
  (if .dockerd then "; berthd/dockerd = \((.berthd / .dockerd * 100 | floor) / 100)" else "" end)' "$WORK/run.json"
