#!/usr/bin/env bash
# start-latency.sh — container start latency of runc, crun and berth-runtime, timed side by
# side in ONE hyperfine run (this 2-vCPU VM drifts ±20-30 % between batches: compare ratios).
#
# Cases, for each runtime, on a busybox bundle whose process is /bin/true:
#   cycle: create + start + wait until `state` says stopped + delete
#   run:   `run` (= create + start + wait + delete in one process)
# Env: RUNS (default 20), WARMUP (2), BERTH_RUNTIME (default .build/release/berth-runtime),
#      OUT (directory for hyperfine's JSON, default: a temp dir that is removed).
# Prints a table of medians (ms) with berth/runc and berth/crun ratios.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT
command -v hyperfine >/dev/null || { note "hyperfine not installed (apt-get install hyperfine)"; exit 1; }
[ "$(id -u)" = 0 ] || { note "needs root"; exit 1; }

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-2}
discover_runtimes

cat > "$BENCH_TMP/cycle.sh" <<'CYCLE'
#!/bin/sh
# cycle.sh RUNTIME ROOT BUNDLE ID
"$1" --root "$2" create --bundle "$3" "$4" || exit 1
"$1" --root "$2" start "$4" || exit 1
until "$1" --root "$2" state "$4" 2>/dev/null | grep -Eq '"status": *"stopped"'; do :; done
exec "$1" --root "$2" delete "$4"
CYCLE

args=()
for l in "${RT_LABELS[@]}"; do
  bin=${RT_BIN[$l]}
  b=$(mkbundle "lat-$l" /bin/true)
  root=$BENCH_TMP/root-$l
  for case in cycle run; do
    id="lat-$BENCH_TOKEN-$l-$case"
    args+=(--prepare "sh -c '$bin --root $root delete --force $id >/dev/null 2>&1; true'")
    if [ $case = cycle ]; then
      args+=(--command-name "$l:cycle" "sh $BENCH_TMP/cycle.sh $bin $root $b $id")
    else
      args+=(--command-name "$l:run" "$bin --root $root run --bundle $b $id")
    fi
  done
done

json=${OUT:-$BENCH_TMP}/start-latency.json
mkdir -p "$(dirname "$json")"
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" "${args[@]}" >&2 || exit 1

echo
jq -r --arg labels "${RT_LABELS[*]}" '
  ($labels | split(" ")) as $L
  | (.results | map({key: .command, value: (.median * 1000)}) | from_entries) as $m
  | def cell($k): if $m[$k] == null then "-" else ($m[$k] * 10 | round / 10 | tostring) end;
    def ratio($a; $b): if $m[$a] == null or $m[$b] == null then "-" else ($m[$a] / $m[$b] * 100 | round / 100 | tostring) end;
  (["case"] + ($L | map(. + " ms")) + ["berth/runc", "berth/crun"] | @tsv),
  (["cycle", "run"][] as $c
   | [$c] + ($L | map(cell(. + ":" + $c))) + [ratio("berth:" + $c; "runc:" + $c), ratio("berth:" + $c; "crun:" + $c)]
   | @tsv)
' "$json" | column -t -s $'\t'
echo "(medians of $RUNS runs after $WARMUP warm-ups; cycle = create+start+wait stopped+delete)"
