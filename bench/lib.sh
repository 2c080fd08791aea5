# Shared by bench/*.sh: runtime discovery, bundles, cleanup. Source it; needs bash.
# Runtimes: runc (always), crun (if installed and it can run here), berth-runtime from
# $BERTH_RUNTIME or .build/release/berth-runtime (skipped with a note when neither exists).

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TOKEN=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
BENCH_TMP=$(mktemp -d "/tmp/berth-bench-$BENCH_TOKEN.XXXX")
chmod 711 "$BENCH_TMP"
BENCH_CGROUP="/berth-bench-$BENCH_TOKEN"    # every bundle's cgroupsPath lives under this
RT_LABELS=()
declare -A RT_BIN

note() { echo "# $*" >&2; }

# mkbundle NAME ARGS... -> prints the bundle dir; cgroupsPath $BENCH_CGROUP/NAME
mkbundle() {
  local name=$1; shift
  local b=$BENCH_TMP/bundles/$name
  mkdir -p "$BENCH_TMP/bundles"
  "$BENCH_REPO/scripts/mkbundle.sh" "$b" "$@" >&2
  jq --arg cg "$BENCH_CGROUP/$name" '.linux.cgroupsPath = $cg' "$b/config.json" > "$b/config.json.tmp"
  mv "$b/config.json.tmp" "$b/config.json"
  echo "$b"
}

# probe LABEL BIN: can BIN run a container here? (crun refuses cgroup v1/v2 hybrid hosts)
probe() {
  local label=$1 bin=$2 b root err
  b=$(mkbundle "probe-$label" /bin/true) || return 1
  root=$BENCH_TMP/root-probe-$label
  if err=$("$bin" --root "$root" run --bundle "$b" "probe-$BENCH_TOKEN" </dev/null 2>&1 >/dev/null); then
    return 0
  fi
  "$bin" --root "$root" delete --force "probe-$BENCH_TOKEN" >/dev/null 2>&1
  note "$label: cannot run a container here, skipped: $(echo "$err" | tail -1)"
  return 1
}

discover_runtimes() {
  local bin
  if bin=$(command -v runc); then RT_LABELS+=(runc); RT_BIN[runc]=$bin
  else note "runc: not installed"; fi
  if bin=$(command -v crun); then
    if probe crun "$bin"; then RT_LABELS+=(crun); RT_BIN[crun]=$bin
    else note "crun: on a hybrid cgroup host run /work/shared/bench/anchor-services.sh start cgroup first"; fi
  else
    note "crun: not installed (apt-get install crun), column skipped"
  fi
  bin=${BERTH_RUNTIME:-$BENCH_REPO/.build/release/berth-runtime}
  if [ -x "$bin" ]; then
    if probe berth "$bin"; then RT_LABELS+=(berth); RT_BIN[berth]=$bin; fi
  else
    note "berth: $bin not built and \$BERTH_RUNTIME unset, column skipped"
  fi
  [ ${#RT_LABELS[@]} -gt 0 ] || { note "no runtime to measure"; exit 1; }
}

# Remove every container in our roots, our cgroups and the tmp dir.
bench_cleanup() {
  local root id d
  for root in "$BENCH_TMP"/root-*; do
    [ -d "$root" ] || continue
    local label=${root##*/root-}; label=${label#probe-}; label=${label%%-*}
    local bin=${RT_BIN[$label]:-}
    [ -n "$bin" ] || bin=$(command -v "$label" 2>/dev/null) || bin=${BERTH_RUNTIME:-$BENCH_REPO/.build/release/berth-runtime}
    for id in $(ls "$root" 2>/dev/null); do
      "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1
    done
  done
  for d in /sys/fs/cgroup/*"$BENCH_CGROUP" /sys/fs/cgroup/*/"${BENCH_CGROUP#/}"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$BENCH_TMP"
}
