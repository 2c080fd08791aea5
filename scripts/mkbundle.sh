#!/usr/bin/env bash
# mkbundle.sh DIR [ARGS...]
#
# Builds an OCI runtime bundle at DIR (DIR/config.json + DIR/rootfs) without network:
# the rootfs is Debian's static busybox (busybox-static) plus one symlink per applet,
# /etc/passwd and /etc/group with a non-root user `user` (1000:1000). The rootfs is built
# once into a cache directory ($BERTH_ROOTFS_CACHE, default /tmp/berth-rootfs-cache) keyed
# by busybox's checksum, and copied with `cp -a` into each bundle.
#
# config.json is runc-`spec`-like, with these deliberate differences:
#   - process.args = ARGS (default ["sh"]), terminal false, no TERM
#   - capabilities: the 14 Docker/runc-default capabilities (runc's `spec` has only 3)
#   - root.readonly false (tests write to /tmp); hostname "berth"
# Environment: BUSYBOX (default /bin/busybox), BERTH_ROOTFS_CACHE.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR [ARGS...]" >&2; exit 2; }
DIR=$1; shift
BB=${BUSYBOX:-/bin/busybox}
CACHE=${BERTH_ROOTFS_CACHE:-/tmp/berth-rootfs-cache}

command -v jq >/dev/null || { echo "mkbundle.sh: jq is required" >&2; exit 1; }
[ -x "$BB" ] || { echo "mkbundle.sh: $BB missing (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$BB" 2>/dev/null | grep -q 'statically linked' && ldd "$BB" >/dev/null 2>&1; then
  echo "mkbundle.sh: $BB is dynamically linked; install busybox-static" >&2; exit 1
fi

# Bumping the "v" suffix invalidates caches built by older versions of this script.
KEY=$(sha256sum "$BB" | cut -c1-16)-v1
CACHED=$CACHE/rootfs-$KEY

build_rootfs() { # build_rootfs TARGET
  local r=$1
  mkdir -p "$r"
  (
    cd "$r"
    mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root home/user var/tmp run
    chmod 1777 tmp var/tmp
    chmod 0700 root
    install -m 0755 "$BB" bin/busybox
    "$BB" --list-full | while read -r p; do
      [ "$p" = bin/busybox ] && continue
      mkdir -p "$(dirname "$p")"
      ln -sfn /bin/busybox "$p"
    done
    cat > etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
PW
    cat > etc/group <<'GR'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
user:x:1000:
nogroup:x:65534:
GR
    chown 1000:1000 home/user
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
    : > etc/resolv.conf
    : > etc/hostname
  )
}

if [ ! -x "$CACHED/bin/busybox" ]; then
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  build_rootfs "$tmp/rootfs"
  # Atomic publish: concurrent builders race harmlessly; the loser drops its copy.
  if ! mv -T "$tmp/rootfs" "$CACHED" 2>/dev/null; then :; fi
  rm -rf "$tmp"
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -e "$DIR/rootfs" ] && { echo "mkbundle.sh: $DIR/rootfs already exists" >&2; exit 1; }
cp -a "$CACHED" "$DIR/rootfs"

if [ $# -eq 0 ]; then set -- sh; fi
# One jq call per argument: jq would parse a "-c" among the arguments as its own option.
ARGS_JSON='[]'
for a in "$@"; do ARGS_JSON=$(jq -c --arg a "$a" '. + [$a]' <<<"$ARGS_JSON"); done

jq -n --argjson args "$ARGS_JSON" '
def caps: ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW",
           "CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE",
           "CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"];
{
  ociVersion: "1.0.2",
  process: {
    terminal: false,
    user: {uid: 0, gid: 0},
    args: $args,
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    cwd: "/",
    capabilities: {bounding: caps, effective: caps, permitted: caps},
    rlimits: [{type: "RLIMIT_NOFILE", hard: 1024, soft: 1024}],
    noNewPrivileges: true
  },
  root: {path: "rootfs", readonly: false},
  hostname: "berth",
  mounts: [
    {destination: "/proc", type: "proc", source: "proc"},
    {destination: "/dev", type: "tmpfs", source: "tmpfs",
     options: ["nosuid","strictatime","mode=755","size=65536k"]},
    {destination: "/dev/pts", type: "devpts", source: "devpts",
     options: ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
    {destination: "/dev/shm", type: "tmpfs", source: "shm",
     options: ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
    {destination: "/dev/mqueue", type: "mqueue", source: "mqueue",
     options: ["nosuid","noexec","nodev"]},
    {destination: "/sys", type: "sysfs", source: "sysfs",
     options: ["nosuid","noexec","nodev","ro"]},
    {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
     options: ["nosuid","noexec","nodev","relatime","ro"]}
  ],
  linux: {
    resources: {devices: [{allow: false, access: "rwm"}]},
    namespaces: [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}],
    maskedPaths: ["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats",
                  "/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware",
                  "/proc/scsi"],
    readonlyPaths: ["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]
  }
}' > "$DIR/config.json.tmp"
mv -f "$DIR/config.json.tmp" "$DIR/config.json"
