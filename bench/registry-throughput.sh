#!/usr/bin/env bash
# registry-throughput.sh — push and pull throughput of berth-registry against Debian's
# docker-registry (distribution 2.8), side by side in one run, with skopeo as the client.
#
# The image is an OCI layout with SIZE_MB (default 200) of random bytes in LAYERS (default 4)
# gzip layers, built once (gzip -1, so skopeo copies the blobs as they are and never
# recompresses). Each registry gets a fresh root on loopback and one push; then PULLS (default
# 3) rounds pull from each in turn into a fresh OCI directory (skopeo verifies every digest);
# the best pull of each counts.
# Env: BERTH_REGISTRY (default .build/release/berth-registry), SIZE_MB, LAYERS, PULLS, KEEP=1.
# Prints MB/s for each registry and berth/docker-registry ratios (higher is better for berth).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BERTH_REGISTRY=${BERTH_REGISTRY:-$REPO/.build/release/berth-registry}
DOCKER_REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}
SIZE_MB=${SIZE_MB:-200}
LAYERS=${LAYERS:-4}
PULLS=${PULLS:-3}
for tool in skopeo jq sha256sum gzip "$BERTH_REGISTRY" "$DOCKER_REGISTRY"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/berth-registry-bench.XXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
now() { date +%s.%N; }

# An OCI layout: LAYERS gzip layers of random tar content, a config, a manifest.
layout=$TMP/image
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
per=$(( SIZE_MB / LAYERS ))
layers_json=() diffs=() total=0
for i in $(seq "$LAYERS"); do
  mkdir -p "$TMP/rootfs$i"
  head -c "${per}M" /dev/urandom > "$TMP/rootfs$i/random-$i.bin"
  tar -C "$TMP/rootfs$i" -cf "$TMP/layer$i.tar" .
  diffs+=("\"sha256:$(sha256sum "$TMP/layer$i.tar" | cut -d' ' -f1)\"")
  gzip -1 -c "$TMP/layer$i.tar" > "$TMP/layer$i.tgz"
  d=$(sha256sum "$TMP/layer$i.tgz" | cut -d' ' -f1); s=$(stat -c %s "$TMP/layer$i.tgz")
  mv "$TMP/layer$i.tgz" "$layout/blobs/sha256/$d"; rm -rf "$TMP/rootfs$i" "$TMP/layer$i.tar"
  layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}")
  total=$(( total + s ))
done
config=$(printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "$(IFS=,; echo "${diffs[*]}")")
cd_=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1); printf '%s' "$config" > "$layout/blobs/sha256/$cd_"
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
  "$cd_" "${#config}" "$(IFS=,; echo "${layers_json[*]}")")
md=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1); printf '%s' "$manifest" > "$layout/blobs/sha256/$md"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$md" "${#manifest}" > "$layout/index.json"
mb=$(echo "scale=1; $total / 1048576" | bc)
echo "# image: $LAYERS layers, $mb MB of blobs; push once, best of $PULLS pulls; skopeo $(skopeo --version | awk '{print $3}')" >&2

start_berth() {
  local port=$1
  "$BERTH_REGISTRY" serve --addr "127.0.0.1:$port" --root "$TMP/berth-root" 2>"$TMP/berth.log" &
  PIDS+=($!)
}
start_distribution() {
  local port=$1
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$TMP/distribution-root" "$port" > "$TMP/distribution.yml"
  "$DOCKER_REGISTRY" serve "$TMP/distribution.yml" >"$TMP/distribution.log" 2>&1 &
  PIDS+=($!)
}

declare -A PUSH PULL REF
for label in berth-registry docker-registry; do
  port=$(free_port)
  if [ "$label" = berth-registry ]; then start_berth "$port"; else start_distribution "$port"; fi
  wait_port "$port" || { echo "$label did not start" >&2; exit 1; }
  REF[$label]="docker://127.0.0.1:$port/bench/image:latest"
  PULL[$label]=0
done
# rate LABEL ARGS...: MB/s of one skopeo copy, started with no dirty pages pending.
rate() {
  sync
  local t0 t1
  t0=$(now); skopeo copy -q "$@"; t1=$(now)
  echo "scale=1; $mb / ($t1 - $t0)" | bc
}
for label in berth-registry docker-registry; do
  PUSH[$label]=$(rate --dest-tls-verify=false "oci:$layout:bench" "${REF[$label]}")
done
# Pulls alternate between the registries, so drift on this small VM hits both alike.
for n in $(seq "$PULLS"); do
  for label in berth-registry docker-registry; do
    rm -rf "$TMP/pulled"
    r=$(rate --src-tls-verify=false "${REF[$label]}" "oci:$TMP/pulled:bench")
    if [ "$(echo "$r > ${PULL[$label]}" | bc)" = 1 ]; then PULL[$label]=$r; fi
  done
done

printf '%-16s %12s %12s\n' registry "push MB/s" "pull MB/s"
for label in berth-registry docker-registry; do printf '%-16s %12s %12s\n' "$label" "${PUSH[$label]}" "${PULL[$label]}"; done
printf '%-16s %12s %12s\n' "berth/docker" \
  "$(echo "scale=2; ${PUSH[berth-registry]} / ${PUSH[docker-registry]}" | bc)" \
  "$(echo "scale=2; ${PULL[berth-registry]} / ${PULL[docker-registry]}" | bc)"
