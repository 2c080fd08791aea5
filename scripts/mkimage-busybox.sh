#!/usr/bin/env bash
# mkimage-busybox.sh OUT.tar [NAME:TAG]
#
# Builds, with no network, a docker-archive of a busybox image (default tag busybox:latest)
# from the machine's static /bin/busybox (Debian's busybox-static; $BUSYBOX overrides).
# The archive is what `docker save` writes since Docker 25: manifest.json for `docker load`,
# and index.json + oci-layout + blobs/sha256/ so it is also an OCI image layout.
#
# Byte-reproducible: the same busybox binary gives the same archive, layer and image ID
# (names sorted, mtimes 0, owner 0:0 numeric, fixed umask, JSON with sorted keys).
# Needs only bash, coreutils, GNU tar, sha256sum and jq; no root.
set -euo pipefail

OUT=${1:?usage: mkimage-busybox.sh OUT.tar [NAME:TAG]}
TAG=${2:-busybox:latest}
BB=${BUSYBOX:-/bin/busybox}
EPOCH=0
CREATED=1970-01-01T00:00:00Z
export LC_ALL=C
umask 022

for t in tar sha256sum jq; do
  command -v "$t" >/dev/null || { echo "mkimage-busybox: missing tool: $t" >&2; exit 1; }
done
[ -x "$BB" ] || { echo "mkimage-busybox: no $BB (install busybox-static)" >&2; exit 1; }
# The image has no libc: a dynamically linked busybox would not start in it.
if command -v ldd >/dev/null && ldd "$BB" >/dev/null 2>&1; then
  echo "mkimage-busybox: $BB is dynamically linked (install busybox-static)" >&2; exit 1
fi

case "$(uname -m)" in
  x86_64) ARCH=amd64 VARIANT= ;;
  aarch64) ARCH=arm64 VARIANT=v8 ;;
  armv7l) ARCH=arm VARIANT=v7 ;;
  s390x) ARCH=s390x VARIANT= ;;
  ppc64le) ARCH=ppc64le VARIANT= ;;
  riscv64) ARCH=riscv64 VARIANT= ;;
  *) echo "mkimage-busybox: unknown machine $(uname -m)" >&2; exit 1 ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"

# --- root filesystem (the same tree as shared/bench/mkimage-busybox.sh) -----------------
(
  cd "$ROOTFS"
  mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root home var/spool/mail var/www
  chmod 1777 tmp
  chmod 0700 root
  cp "$BB" bin/busybox
  chmod 0755 bin/busybox
  # One absolute symlink per applet, as `busybox --install -s` would make inside the rootfs.
  "$BB" --list-full | sort | while read -r p; do
    [ "$p" = bin/busybox ] && continue
    mkdir -p "$(dirname "$p")"
    ln -sfn /bin/busybox "$p"
  done
  cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat > etc/group <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
  printf 'root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n' > etc/shadow
  chmod 0640 etc/shadow
  : > etc/hostname
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
  : > etc/resolv.conf
)

# Deterministic tar: sorted names, mtime 0, numeric owner 0:0, no atime/ctime/xattrs.
dtar() {
  tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --no-xattrs --no-acls \
    --format=gnu "$@"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }

ARCHIVE=$WORK/archive
mkdir -p "$ARCHIVE/blobs/sha256"
( cd "$ROOTFS" && dtar -cf "$WORK/layer.tar" $(ls -A) )
LAYER=$(sha "$WORK/layer.tar")
LAYER_SIZE=$(size "$WORK/layer.tar")
mv "$WORK/layer.tar" "$ARCHIVE/blobs/sha256/$LAYER"

# Image config (image-spec config.md). The layer is uncompressed, so DiffID = blob digest.
jq -cnS --arg arch "$ARCH" --arg variant "$VARIANT" --arg created "$CREATED" --arg diff "sha256:$LAYER" '{
  architecture: $arch, os: "linux", created: $created,
  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"]},
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: $created, created_by: "mkimage-busybox.sh: static busybox rootfs"}]
} + (if $variant == "" then {} else {variant: $variant} end)' | tr -d '\n' > "$WORK/config.json"
CONFIG=$(sha "$WORK/config.json")
CONFIG_SIZE=$(size "$WORK/config.json")
mv "$WORK/config.json" "$ARCHIVE/blobs/sha256/$CONFIG"

jq -cnS --arg config "sha256:$CONFIG" --argjson csize "$CONFIG_SIZE" \
  --arg layer "sha256:$LAYER" --argjson lsize "$LAYER_SIZE" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $csize},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $layer, size: $lsize}]
}' | tr -d '\n' > "$WORK/manifest"
MANIFEST=$(sha "$WORK/manifest")
MANIFEST_SIZE=$(size "$WORK/manifest")
mv "$WORK/manifest" "$ARCHIVE/blobs/sha256/$MANIFEST"

# Full name for index.json: busybox:latest -> docker.io/library/busybox:latest.
case "$TAG" in
  */*.*/*|*/*:*/*|localhost/*) FULL=$TAG ;;
  */*) case "${TAG%%/*}" in *.*|*:*|localhost) FULL=$TAG ;; *) FULL=docker.io/$TAG ;; esac ;;
  *) FULL=docker.io/library/$TAG ;;
esac
case "${TAG##*/}" in *:*) ;; *) TAG=$TAG:latest FULL=$FULL:latest ;; esac

jq -cnS --arg m "sha256:$MANIFEST" --argjson size "$MANIFEST_SIZE" --arg full "$FULL" --arg tag "${TAG##*:}" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $size,
               annotations: {"io.containerd.image.name": $full, "org.opencontainers.image.ref.name": $tag}}]
}' | tr -d '\n' > "$ARCHIVE/index.json"
jq -cn --arg c "blobs/sha256/$CONFIG" --arg l "blobs/sha256/$LAYER" --arg tag "$TAG" \
  '[{Config: $c, RepoTags: [$tag], Layers: [$l]}]' | tr -d '\n' > "$ARCHIVE/manifest.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$ARCHIVE/oci-layout"

( cd "$ARCHIVE" && dtar -cf "$WORK/out.tar" blobs index.json manifest.json oci-layout )
mkdir -p "$(dirname "$OUT")"
mv -f "$WORK/out.tar" "$OUT"
echo "$TAG sha256:$CONFIG"
