#!/usr/bin/env bash
# container-memory.sh — memory cost per container of runc, crun and berth-runtime.
#
# For each runtime: create + start N (default 20) containers running `sleep 1000` (one shared
# busybox rootfs, one bundle = config.json each, own cgroup), let them settle, then count:
#   - every process in the containers' cgroups (the sleeps, and anything the runtime left there)
#   - every process the runtime left resident outside them (a monitor/shim of its own): any
#     process whose executable is the runtime binary or whose argv names our state root
#   - Pss (smaps_rollup) and Rss (VmRSS) summed over both sets, and the containers' cgroup
#     memory usage (memory.usage_in_bytes on v1, memory.current on v2)
# and print per-container figures. Everything is force-deleted afterwards, also on failure.
# Env: N (20), SETTLE (seconds, 1), BERTH_RUNTIME (default .build/release/berth-runtime).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT
[ "$(id -u)" = 0 ] || { note "needs root"; exit 1; }

N=${N:-20}
SETTLE=${SETTLE:-1}
discover_runtimes

# One shared rootfs; bundles hold only a config.json whose root.path points at it.
base=$(mkbundle mem-base sleep 1000)

memcg_dir() { # memcg_dir CGROUPS_PATH -> host dir of its memory cgroup (v1 or unified v2)
  if [ -d /sys/fs/cgroup/memory ]; then echo "/sys/fs/cgroup/memory$1"
  else echo "/sys/fs/cgroup$1"; fi
}
memcg_usage() { # bytes
  local d; d=$(memcg_dir "$1")
  if [ -f "$d/memory.usage_in_bytes" ]; then cat "$d/memory.usage_in_bytes"; else cat "$d/memory.current"; fi
}
pss_kb() { awk '/^Pss:/ {print $2; exit}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null || echo 0; }

printf '%-8s %4s %10s %10s %14s %14s %18s\n' runtime N "cont.procs" "rt.procs" "PSS/ctr KiB" "RSS/ctr KiB" "cgroup/ctr KiB"
for l in "${RT_LABELS[@]}"; do
  bin=${RT_BIN[$l]}
  real=$(readlink -f "$bin")
  root=$BENCH_TMP/root-$l
  ids=()
  cgs=()
  for i in $(seq 1 "$N"); do
    b=$BENCH_TMP/bundles/mem-$l-$i
    mkdir -p "$b"
    cg="$BENCH_CGROUP/mem-$l-$i"
    jq --arg cg "$cg" --arg rootfs "$base/rootfs" \
      '.linux.cgroupsPath = $cg | .root.path = $rootfs' "$base/config.json" > "$b/config.json"
    id="mem-$BENCH_TOKEN-$l-$i"
    if ! "$bin" --root "$root" create --bundle "$b" "$id" </dev/null >/dev/null 2>"$BENCH_TMP/err"; then
      note "$l: create $id failed: $(tail -1 "$BENCH_TMP/err")"; continue
    fi
    "$bin" --root "$root" start "$id" || { note "$l: start $id failed"; continue; }
    ids+=("$id"); cgs+=("$cg")
  done
  sleep "$SETTLE"

  cpids=()
  for cg in "${cgs[@]}"; do
    d=$(memcg_dir "$cg")
    [ -f "$d/cgroup.procs" ] && cpids+=($(cat "$d/cgroup.procs"))
  done
  rpids=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    if [ "$exe" = "$real" ] || tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "$root"; then
      case " ${cpids[*]} " in *" $pid "*) ;; *) rpids+=("$pid") ;; esac
    fi
  done
  pss=0; rss=0
  for pid in "${cpids[@]}" "${rpids[@]}"; do
    pss=$((pss + $(pss_kb "$pid"))); rss=$((rss + $(rss_kb "$pid")))
  done
  cgb=0
  for cg in "${cgs[@]}"; do cgb=$((cgb + $(memcg_usage "$cg"))); done
  n=${#ids[@]}
  if [ "$n" -gt 0 ]; then
    printf '%-8s %4d %10d %10d %14.1f %14.1f %18.1f\n' "$l" "$n" "${#cpids[@]}" "${#rpids[@]}" \
      "$(awk -v a="$pss" -v n="$n" 'BEGIN{print a/n}')" "$(awk -v a="$rss" -v n="$n" 'BEGIN{print a/n}')" \
      "$(awk -v a="$cgb" -v n="$n" 'BEGIN{print a/1024/n}')"
  fi
  for id in "${ids[@]}"; do "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; done
done
echo "(cont.procs/rt.procs: processes inside the containers' cgroups / runtime processes left resident outside them)"
