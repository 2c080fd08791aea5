#!/usr/bin/env bash
# pull.sh: `docker pull` of a multi-layer image (about 100 MB gzip-compressed, 400 MB
# unpacked, made of this host's files) from Debian's docker-registry on loopback, berthd
# against Debian's dockerd, timed side by side in ONE hyperfine run (this VM drifts: compare
# the ratio). Each run starts from nothing: the image is removed (and its layers collected)
# before every pull. dockerd is started and stopped with /work/shared/bench/anchor-services.sh.
# Env: RUNS (default 5), LAYER_DIRS (directories, one layer each), DOCKER, KEEP=1.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${ANCHOR:-$REPO/../shared/bench/anchor-services.sh}
RUNS=${RUNS:-5}
DOCKER=${DOCKER:-/usr/local/bin/docker}
LAYER_DIRS=${LAYER_DIRS:-/usr/lib/gcc /usr/share/locale /usr/lib/python3.11 /usr/libexec /usr/share/i18n}
for t in hyperfine jq skopeo gzip sha256sum /usr/bin/docker-registry "$DOCKER"; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
for b in berthd berth-runtime berth-monitor; do
  [ -x "$REPO/.build/release/$b" ] || { echo "build first: swift build -c release (missing $b)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/berth-bench-pull.XXXX)
BSOCK=$WORK/berth.sock
DSOCK=/tmp/anchor-docker.sock
STARTED_DOCKERD=0
# Images left in dockerd by an earlier run would share our layers and make its pulls free.
remove_bench_images() { $1 images -q --filter 'reference=*/bench' 2>/dev/null | sort -u | xargs -r $1 rmi -f >/dev/null 2>&1; }
cleanup() {
  [ -n "${D:-}" ] && remove_bench_images "$D"
  [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
  [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
  [ $STARTED_DOCKERD = 1 ] && "$ANCHOR" stop dockerd >/dev/null 2>&1
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
  nft delete table ip berthpullbench 2>/dev/null || true
}
trap cleanup EXIT

# The image: one gzip layer per directory, as an OCI layout skopeo pushes unchanged.
OCI=$WORK/oci
mkdir -p "$OCI/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$OCI/oci-layout"
layers=() diffids=()
for dir in $LAYER_DIRS; do
  tar -C / -cf "$WORK/layer.tar" "${dir#/}"
  diffids+=("sha256:$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)")
  gzip -1 -c "$WORK/layer.tar" > "$WORK/layer.tgz"
  d=$(sha256sum "$WORK/layer.tgz" | cut -d' ' -f1)
  mv "$WORK/layer.tgz" "$OCI/blobs/sha256/$d"
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$OCI/blobs/sha256/$d")}")
done
rm -f "$WORK/layer.tar"
blob() { local d; d=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1); printf '%s' "$1" > "$OCI/blobs/sha256/$d"; echo "$d"; }
config=$(jq -cn --args '{architecture:"amd64",os:"linux",config:{Cmd:["/bin/sh"]},rootfs:{type:"layers",diff_ids:$ARGS.positional}}' "${diffids[@]}")
cdigest=$(blob "$config")
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdigest\",\"size\":${#config}},\"layers\":[$(IFS=,; echo "${layers[*]}")]}"
mdigest=$(blob "$manifest")
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdigest\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}" > "$OCI/index.json"
compressed=$(du -cb "$OCI"/blobs/sha256/* | tail -1 | cut -f1)
echo "# image: ${#layers[@]} layers, $((compressed / 1000000)) MB compressed" >&2

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$WORK/registry" "$PORT" > "$WORK/registry.yml"
/usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
RPID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
IMAGE=127.0.0.1:$PORT/bench:latest
skopeo copy -q --dest-tls-verify=false "oci:$OCI:latest" "docker://$IMAGE"

"$REPO/.build/release/berthd" --host "unix://$BSOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --bridge none --firewall-table berthpullbench \
  --runtime-path "$REPO/.build/release/berth-runtime" --monitor-path "$REPO/.build/release/berth-monitor" 2>"$WORK/berthd.log" &
BPID=$!
for _ in $(seq 100); do [ -S "$BSOCK" ] && break; sleep 0.05; done

B="$DOCKER -H unix://$BSOCK"
args=(--command-name berthd --prepare "sh -c '$B rmi -f $IMAGE >/dev/null 2>&1; true'" "$B pull -q $IMAGE")
if [ -x "$ANCHOR" ] && command -v dockerd >/dev/null; then
  if ! [ -S "$DSOCK" ] || ! "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
    "$ANCHOR" start dockerd >/dev/null && STARTED_DOCKERD=1
  fi
  D="$DOCKER -H unix://$DSOCK"
  if $D version >/dev/null 2>&1; then
    remove_bench_images "$D"
    args+=(--command-name dockerd --prepare "sh -c '$D rmi -f $IMAGE >/dev/null 2>&1; true'" "$D pull -q $IMAGE")
  else
    echo "# dockerd not reachable: berthd only" >&2
  fi
else
  echo "# no dockerd (apt-get install docker.io) or anchor script: berthd only" >&2
fi
hyperfine -N --runs "$RUNS" --export-json "$WORK/pull.json" "${args[@]}"
jq -r '.results | map({(.command): .median}) | add |
  "median s: " + (to_entries | map("\(.key) \(.value*100|floor/100)") | join(", ")) +
  (if .dockerd then "; berthd/dockerd = \((.berthd / .dockerd * 100 | floor) / 100)" else "" end)' "$WORK/pull.json"
