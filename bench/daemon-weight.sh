#!/usr/bin/env bash
# daemon-weight.sh: what an engine costs besides the containers themselves, berthd against
# Debian's dockerd (with its containerd and one containerd-shim per container), in ONE run:
#   - idle memory: PSS of the daemon's process tree, busybox loaded, no container;
#   - memory per running container: PSS of the daemon tree plus every per-container process
#     (berth-monitor / containerd-shim-runc-v2), N `sleep` containers, minus idle, over N;
#   - `docker ps -a` with 100 containers, timed by hyperfine side by side.
# The same docker CLI and busybox image (scripts/mkimage-busybox.sh) drive both; containers use
# --network none so no bridge work is measured. dockerd comes from
# /work/shared/bench/anchor-services.sh (isolated socket and data root), berthd from
# .build/release with a temporary data root. Compare ratios: this VM drifts between batches.
# Env: N (running containers, default 20), PS_CONTAINERS (100), RUNS (20), DOCKER.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${ANCHOR:-$REPO/../shared/bench/anchor-services.sh}
N=${N:-20}; PS_CONTAINERS=${PS_CONTAINERS:-100}; RUNS=${RUNS:-20}
DOCKER=${DOCKER:-/usr/local/bin/docker}
for t in hyperfine jq "$DOCKER"; do command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }; done
for b in berthd berth-runtime berth-monitor; do
  [ -x "$REPO/.build/release/$b" ] || { echo "build first: swift build -c release (missing $b)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/berth-bench-weight.XXXX)
BSOCK=$WORK/berth.sock
DSOCK=/tmp/anchor-docker.sock
STARTED_DOCKERD=0
cleanup() {
  for h in "unix://$BSOCK" "unix://$DSOCK"; do
    ids=$("$DOCKER" -H "$h" ps -aq --filter label=berth-bench-weight 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" -H "$h" rm -f $ids >/dev/null 2>&1
  done
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
  [ $STARTED_DOCKERD = 1 ] && "$ANCHOR" stop dockerd >/dev/null 2>&1
}
trap cleanup EXIT

pss_kb() { # sum of PSS (kB) over the given pids
  local total=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) && total=$((total + ${v:-0}))
  done
  echo $total
}
tree() { # a pid and all its descendants
  local p=$1 c
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}
monitors() { # per-container processes of one engine: berth-monitor with our dir, or shims of moby
  case $1 in
    berthd) pgrep -f "berth-monitor .*$WORK" ;;
    dockerd) pgrep -f "containerd-shim-runc-v2 -namespace moby" ;;
  esac
}

"$REPO/.build/release/berthd" --host "unix://$BSOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" 2>"$WORK/berthd.log" &
BPID=$!
for _ in $(seq 100); do [ -S "$BSOCK" ] && break; sleep 0.05; done
"$REPO/scripts/mkimage-busybox.sh" "$WORK/busybox.tar" >/dev/null
declare -A HOST=([berthd]="unix://$BSOCK") DAEMON_PID=([berthd]=$BPID)
ENGINES=(berthd)
if [ -x "$ANCHOR" ] && command -v dockerd >/dev/null; then
  if ! "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
    "$ANCHOR" start dockerd >/dev/null && STARTED_DOCKERD=1
  fi
  if "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
    ENGINES+=(dockerd); HOST[dockerd]="unix://$DSOCK"; DAEMON_PID[dockerd]=$(cat /tmp/anchor-run/dockerd.pid)
  fi
fi
[ ${#ENGINES[@]} = 2 ] || echo "# dockerd not available (apt-get install docker.io): berthd only" >&2

declare -A IDLE PER
for e in "${ENGINES[@]}"; do
  h=${HOST[$e]}
  "$DOCKER" -H "$h" load -q -i "$WORK/busybox.tar" >/dev/null
  sleep 2
  IDLE[$e]=$(pss_kb $(tree "${DAEMON_PID[$e]}"))
  for i in $(seq "$N"); do
    "$DOCKER" -H "$h" run -d --network none --label berth-bench-weight=1 busybox sleep 1000 >/dev/null
  done
  sleep 2
  loaded=$(pss_kb $(tree "${DAEMON_PID[$e]}") $(monitors "$e"))
  PER[$e]=$(( (loaded - IDLE[$e]) / N ))
  "$DOCKER" -H "$h" rm -f $("$DOCKER" -H "$h" ps -aq --filter label=berth-bench-weight) >/dev/null
  for i in $(seq "$PS_CONTAINERS"); do
    "$DOCKER" -H "$h" create --network none --label berth-bench-weight=1 busybox true >/dev/null
  done
done

args=()
for e in "${ENGINES[@]}"; do args+=(--command-name "$e" "$DOCKER -H ${HOST[$e]} ps -a"); done
hyperfine -N --runs "$RUNS" --warmup 3 --export-json "$WORK/ps.json" "${args[@]}" >/dev/null

echo "| | idle daemon PSS | per running container | docker ps -a, $PS_CONTAINERS containers (median) |"
echo "|---|---|---|---|"
for e in "${ENGINES[@]}"; do
  ms=$(jq -r --arg e "$e" '.results[] | select(.command == $e) | .median * 1000 | floor' "$WORK/ps.json")
  echo "| $e | $((IDLE[$e] / 1024)) MiB | ${PER[$e]} KiB | $ms ms |"
done
if [ ${#ENGINES[@]} = 2 ]; then
  jq -r --argjson bi "${IDLE[berthd]}" --argjson di "${IDLE[dockerd]}" --argjson bp "${PER[berthd]}" --argjson dp "${PER[dockerd]}" '
    (.results | map({(.command): .median}) | add) as $m |
    "berthd/dockerd: idle \($bi / $di * 100 | floor / 100), per container \($bp / $dp * 100 | floor / 100), ps \($m.berthd / $m.dockerd * 100 | floor / 100)"' "$WORK/ps.json"
fi
