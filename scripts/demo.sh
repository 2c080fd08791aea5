#!/usr/bin/env bash
# Berth's main job on its built-in default, as far as what has landed allows: start berthd,
# load a busybox image built offline from Debian's busybox-static, and drive it with the
# real docker CLI and with berth: a one-shot container, then a web server (busybox httpd) with
# a health check, published on a host port and fetched from the host, then removed. The demo's
# berthd has its own bridge and nftables table, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --static-swift-stdlib --product berth-runtime
swift build -c release --product berthd
swift build -c release --product berth
BIN=$PWD/.build/release
scripts/build-c.sh "$BIN"
DOCKER=${DOCKER:-/usr/local/bin/docker}
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
SOCK=$WORK/berth.sock
DAEMON_PID=
cleanup() {
  [ -S "$SOCK" ] && "$DOCKER" -H "unix://$SOCK" rm -f demo-web >/dev/null 2>&1 || true
  if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null || true; fi
  ip link del berth-demo0 2>/dev/null || true
  nft delete table ip berthdemo 2>/dev/null || true
  { grep -o " $WORK[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/berthd" --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --bridge berth-demo0 --firewall-table berthdemo 2>"$WORK/berthd.log" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
export DOCKER_HOST=unix://$SOCK
echo "== docker version against berthd"
"$DOCKER" version --format 'client {{.Client.Version}} -> Berth {{.Server.Version}}, API {{.Server.APIVersion}}'

echo "== docker load (busybox:latest, built offline from busybox-static)"
scripts/mkimage-busybox.sh "$WORK/busybox.tar" >/dev/null
"$DOCKER" load -i "$WORK/busybox.tar"

echo "== docker run --rm busybox"
"$DOCKER" run --rm busybox sh -c 'echo "hello from $(hostname), pid $$ in its own namespaces"'

echo "== berth run -d -p: busybox httpd with a health check, published on a host port"
BERTH="$BIN/berth"
"$BERTH" run -d --name demo-web --restart unless-stopped -p 127.0.0.1::8080 \
  --health-cmd 'wget -qO- http://127.0.0.1:8080/ >/dev/null' --health-interval 500ms busybox sh -c \
  'mkdir -p /www && echo "served by busybox httpd in a Berth container" > /www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
for _ in $(seq 50); do
  [ "$("$BERTH" inspect --format '{{.State.Health.Status}}' demo-web)" = healthy ] && break
  sleep 0.2
done
"$BERTH" ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}'
ADDR=$("$DOCKER" port demo-web 8080/tcp)
out=$(busybox wget -qO- "http://$ADDR/" 2>/dev/null) || out=
echo "GET http://$ADDR/ from the host: ${out:-<no answer>}"
"$BERTH" rm -f demo-web >/dev/null
[ -n "$out" ] || { echo "demo: the published port did not answer" >&2; cat "$WORK/berthd.log" >&2; exit 1; }
echo "== done"
