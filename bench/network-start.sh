#!/usr/bin/env bash
# network-start.sh: what network setup adds to a container start, berthd against Debian's
# dockerd, in ONE run. The same docker CLI and busybox image (scripts/mkimage-busybox.sh) drive
# both; hyperfine times, per daemon:
#   run none      docker run --rm --network none busybox true
#   run bridge    docker run --rm busybox true            (default bridge: veth, address, route;
#                                                          torn down again before --rm returns)
#   run publish   docker run --rm -p 8080:80 busybox true (bridge + one published port: NAT
#                                                          rule; dockerd also runs docker-proxy)
#   start *       docker start of a container that hyperfine's untimed --prepare created (after
#                 removing the previous one), same three network modes, `sleep 3600` inside:
#                 network setup only, no teardown in the timed part (START=0 skips these)
# "bridge - none" is what the network adds (for run: setup and teardown); the issue's target is
# that Berth's network setup adds at most 5 ms to a start.
#
# This VM is noisy (other work, ±20-30 % drift between batches), and a 5 ms delta drowns in
# noise when each case's runs come in one block. So the cases are interleaved: ROUNDS hyperfine
# invocations (default RUNS, i.e. one run of every case per round; warmup only in the first
# round), and the delta is paired: per round, the case's time minus the same daemon's "none"
# time of that round, then the median over the rounds. Medians are over all successful runs.
# Compare ratios and deltas measured side by side, never absolute numbers of different runs.
#
# berthd comes from a release build in $BUILD (default /work/release-build, built with
# `swift build -c release --build-path $BUILD` as below if berthd/berth-runtime/berth-monitor
# are missing there, or always with REBUILD=1) and runs with its own temporary data and exec
# root, socket, default bridge ($BRIDGE, $BIP) and nftables table ($TABLE), so it collides
# neither with docker0 nor with a development berthd. dockerd is the one started by
# /work/shared/bench/anchor-services.sh (socket /tmp/anchor-docker.sock); if it is not running
# this script starts it and stops it again at exit. Exit (also on failure or ^C) removes the
# containers, stops berthd and deletes $BRIDGE and the nftables tables ip/bridge $TABLE.
#
# Run as root:  bench/network-start.sh
# Env: RUNS (per case, default 30), ROUNDS (default RUNS), WARMUP (2, first round only),
#      PUBLISH (1: include the -p cases, 0: skip), START (1: include the start cases, 0: skip),
#      PUBLISH_PORT (8080; the start cases use the next two ports), BUILD, REBUILD,
#      DOCKER (/usr/local/bin/docker), BRIDGE (berth-nsbench0), BIP (10.205.0.1/24),
#      TABLE (berthnsbench), KEEP=1 (keep the work dir with the hyperfine JSON).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${ANCHOR:-/work/shared/bench/anchor-services.sh}
BUILD=${BUILD:-/work/release-build}
BIN=$BUILD/release
RUNS=${RUNS:-30}; ROUNDS=${ROUNDS:-$RUNS}; WARMUP=${WARMUP:-2}
PUBLISH=${PUBLISH:-1}; START=${START:-1}; PUBLISH_PORT=${PUBLISH_PORT:-8080}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BRIDGE=${BRIDGE:-berth-nsbench0}; BIP=${BIP:-10.205.0.1/24}; TABLE=${TABLE:-berthnsbench}
DSOCK=/tmp/anchor-docker.sock
LABEL=berth-bench-netstart
PER_ROUND=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in hyperfine jq nft ip "$DOCKER"; do command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }; done
[ -x "$ANCHOR" ] && command -v dockerd >/dev/null || { echo "need dockerd (docker.io) and $ANCHOR" >&2; exit 1; }
if ip link show "$BRIDGE" >/dev/null 2>&1 || nft list table ip "$TABLE" >/dev/null 2>&1; then
  echo "$BRIDGE or nftables table ip $TABLE exists already (another run?): not touching it" >&2; exit 1
fi

# --- release build (reused when present) ---------------------------------------------------
. "$REPO/bench/release.sh"
ensure_release_build

WORK=$(mktemp -d /tmp/berth-bench-netstart.XXXX)
BSOCK=$WORK/berth.sock
STARTED_DOCKERD=0
BPID=
cleanup() {
  local rc=$? h ids
  set +e
  for h in "unix://$BSOCK" "unix://$DSOCK"; do
    [ -S "${h#unix://}" ] || continue
    ids=$("$DOCKER" -H "$h" ps -aq --filter "label=$LABEL" 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" -H "$h" rm -f $ids >/dev/null 2>&1
  done
  if [ -n "$BPID" ]; then kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; fi
  if [ $rc != 0 ] && [ -f "$WORK/berthd.log" ]; then echo "# berthd.log (tail):" >&2; tail -20 "$WORK/berthd.log" >&2; fi
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  ip link del "$BRIDGE" 2>/dev/null
  nft delete table ip "$TABLE" 2>/dev/null
  nft delete table bridge "$TABLE" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
  [ $STARTED_DOCKERD = 1 ] && "$ANCHOR" stop dockerd >/dev/null 2>&1
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- daemons and image ---------------------------------------------------------------------
"$BIN/berthd" --host "unix://$BSOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --bridge "$BRIDGE" --bip "$BIP" --firewall-table "$TABLE" 2>"$WORK/berthd.log" &
BPID=$!
for _ in $(seq 200); do [ -S "$BSOCK" ] && break; kill -0 "$BPID" 2>/dev/null || break; sleep 0.05; done
"$DOCKER" -H "unix://$BSOCK" version >/dev/null 2>&1 || { echo "berthd did not come up" >&2; exit 1; }
if ! "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
  "$ANCHOR" start dockerd >&2 && STARTED_DOCKERD=1
  "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1 || { echo "dockerd did not come up" >&2; exit 1; }
fi
"$REPO/scripts/mkimage-busybox.sh" "$WORK/busybox.tar" >/dev/null
declare -A HOST=([berthd]="unix://$BSOCK" [dockerd]="unix://$DSOCK") SPORT=([berthd]=$((PUBLISH_PORT + 1)) [dockerd]=$((PUBLISH_PORT + 2)))
ENGINES=(berthd dockerd)
MODES=(none bridge); [ "$PUBLISH" = 1 ] && MODES+=(publish)
KINDS=(run); [ "$START" = 1 ] && KINDS+=(start)
for e in "${ENGINES[@]}"; do
  "$DOCKER" -H "${HOST[$e]}" load -q -i "$WORK/busybox.tar" >/dev/null
  # Every mode once, untimed, so a failure shows its error here instead of inside hyperfine.
  "$DOCKER" -H "${HOST[$e]}" run --rm --network none busybox true
  "$DOCKER" -H "${HOST[$e]}" run --rm busybox true
  if [ "$PUBLISH" = 1 ]; then "$DOCKER" -H "${HOST[$e]}" run --rm -p "$PUBLISH_PORT:80" busybox true; fi
done

netopts() { # netopts ENGINE KIND MODE
  case $3 in
    none) echo "--network none" ;;
    bridge) echo "" ;;
    publish) if [ "$2" = run ]; then echo "-p $PUBLISH_PORT:80"; else echo "-p ${SPORT[$1]}:80"; fi ;;
  esac
}
cmd() { # cmd ENGINE KIND MODE: the timed command
  local d="$DOCKER -H ${HOST[$1]}"
  case $2 in
    run) echo "$d run --rm --label $LABEL=1 $(netopts "$@") busybox true" ;;
    start) echo "$d start $LABEL-$1-$3" ;;
  esac
}
prep() { # prep ENGINE KIND MODE: hyperfine's untimed --prepare
  local d="$DOCKER -H ${HOST[$1]}" name=$LABEL-$1-$3
  case $2 in
    run) echo "true" ;;
    start) echo "sh -c '$d rm -f $name >/dev/null 2>&1; $d create --name $name --label $LABEL=1 $(netopts "$@") busybox sleep 3600 >/dev/null'" ;;
  esac
}

# --- measure: ROUNDS interleaved rounds ----------------------------------------------------
echo "# $RUNS runs per case in $ROUNDS rounds of $PER_ROUND, warmup $WARMUP per case in round 1; $(nproc) CPUs; $("$DOCKER" -H "unix://$DSOCK" version -f 'dockerd {{.Server.Version}}')" >&2
for r in $(seq "$ROUNDS"); do
  args=()
  for k in "${KINDS[@]}"; do
    for m in "${MODES[@]}"; do
      for e in "${ENGINES[@]}"; do
        args+=(--command-name "$e/$k/$m" --prepare "$(prep "$e" "$k" "$m")" "$(cmd "$e" "$k" "$m")")
      done
    done
  done
  # -i: a rare failed run is counted and left out below instead of aborting the whole run.
  hyperfine -N -i --runs "$PER_ROUND" --warmup "$([ "$r" = 1 ] && echo "$WARMUP" || echo 0)" --style none \
    --export-json "$WORK/round$(printf %03d "$r").json" "${args[@]}" >/dev/null 2>"$WORK/hyperfine.err" ||
    { cat "$WORK/hyperfine.err" >&2; exit 1; }
done

# Per case: successful runs (n), failed runs, median and lower quartile over all rounds (ms);
# for bridge/publish also the paired delta: median over rounds of (case - none of that round).
jq -s '
  def med: sort | if length == 0 then null else (.[(length - 1) / 2 | floor] + .[length / 2 | floor]) / 2 end;
  [.[] | .results | map({key: .command, value: {
      ok: [[.times, .exit_codes] | transpose[] | select(.[1] == 0) | .[0] * 1000], total: (.times | length)}}) |
    from_entries] as $R |
  $R[0] | keys | map(. as $c | ($c | sub("/[a-z]+$"; "/none")) as $base | [$R[][$c].ok[]] as $all | {key: $c, value: ({
      n: ($all | length), failed: (([$R[][$c].total] | add) - ($all | length)),
      median: ($all | med), q1: ($all | sort | .[(length / 4) | floor])} +
    (if $c == $base then {} else
      {paired: ([$R[] | select((.[$c].ok | length) > 0 and (.[$base].ok | length) > 0) |
                 (.[$c].ok | med) - (.[$base].ok | med)] | med)} end))}) | from_entries
' "$WORK"/round*.json > "$WORK/stats.json"
jq -r 'to_entries[] | select(.value.failed > 0) | "# \(.key): \(.value.failed) failed run(s) left out"' "$WORK/stats.json" >&2
grep 'level=error' "$WORK/berthd.log" | sed 's/^time=[^ ]* //; s/[0-9a-f]\{64\}/ID/g' | sort | uniq -c | sed 's/^ */# berthd log: /' >&2 || true
if jq -e 'any(.[]; .failed * 10 > .n + .failed)' "$WORK/stats.json" >/dev/null; then
  echo "more than 10 % failed runs in a case: not reporting" >&2; exit 1
fi

table() { # table KIND TITLE
  jq -r --arg k "$1" --arg title "$2" --argjson publish "$PUBLISH" --arg pport "$PUBLISH_PORT" '
    def f: . * 10 | round / 10 | tostring | if test("\\.") then . else . + ".0" end;
    def r(a; b): (a / b * 100 | round / 100 | tostring);
    . as $s | ["none", "bridge"] + (if $publish == 1 then ["publish"] else [] end) | . as $modes |
    (["berthd", "dockerd"] | map(. as $e | {key: $e, value: ($modes | map(. as $m | {key: $m, value: $s["\($e)/\($k)/\($m)"]}) | from_entries)}) |
      from_entries) as $m |
    "\($title); \($m.berthd.none.n) runs per case:", "",
    (if $publish == 1 then
       "| daemon | none median | bridge median | bridge - none (paired) | -p \($pport):80 median | publish - none (paired) |",
       "|---|---|---|---|---|---|"
     else "| daemon | none median | bridge median | bridge - none (paired) |", "|---|---|---|---|" end),
    (["berthd", "dockerd"][] as $e | $m[$e] as $v |
      "| \($e) | \($v.none.median | f) ms | \($v.bridge.median | f) ms | \($v.bridge.paired | f) ms" +
      (if $publish == 1 then " | \($v.publish.median | f) ms | \($v.publish.paired | f) ms |" else " |" end)),
    ($m.berthd as $b | $m.dockerd as $d |
      "| berthd/dockerd | \(r($b.none.median; $d.none.median)) | \(r($b.bridge.median; $d.bridge.median)) | \(r($b.bridge.paired; $d.bridge.paired))" +
      (if $publish == 1 then " | \(r($b.publish.median; $d.publish.median)) | \(r($b.publish.paired; $d.publish.paired)) |" else " |" end)),
    "",
    "unpaired cross-checks, bridge - none: difference of medians berthd \($m.berthd.bridge.median - $m.berthd.none.median | f) ms, dockerd \($m.dockerd.bridge.median - $m.dockerd.none.median | f) ms;" +
      " of lower quartiles berthd \($m.berthd.bridge.q1 - $m.berthd.none.q1 | f) ms, dockerd \($m.dockerd.bridge.q1 - $m.dockerd.none.q1 | f) ms" +
      (if $publish == 1 then "; publish - none, of lower quartiles: berthd \($m.berthd.publish.q1 - $m.berthd.none.q1 | f) ms, dockerd \($m.dockerd.publish.q1 - $m.dockerd.none.q1 | f) ms" else "" end),
    ""
  ' "$WORK/stats.json"
}
table run "docker run --rm busybox true (network setup + run + teardown)"
if [ "$START" = 1 ]; then
  table start "docker start of a created busybox (network setup only; create and rm untimed)"
fi
echo "issue target: Berth's network setup adds at most 5 ms to a start (the bridge - none column)"
if [ "${KEEP:-0}" = 1 ]; then echo "# hyperfine JSON: $WORK/round*.json" >&2; fi
exit 0
