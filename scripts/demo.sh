#!/usr/bin/env bash
# Berth's main job on its built-in default, as far as what has landed allows: start berthd,
# load a busybox image built offline from Debian's busybox-static, and drive it with the
# real docker CLI and with berth: a one-shot container, then a web server (busybox httpd) with
# a health check in a container that is queried and removed. (Port publishing arrives with the
# networking issue: the server is reached inside the container's own network namespace.)
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
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/berthd" --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" 2>"$WORK/berthd.log" &
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

echo "== berth run -d: busybox httpd with a health check, restarted if it dies"
BERTH="$BIN/berth"
"$BERTH" run -d --name demo-web --restart unless-stopped \
  --health-cmd 'wget -qO- http://127.0.0.1:8080/ >/dev/null' --health-interval 500ms busybox sh -c \
  'mkdir -p /www && echo "served by busybox httpd in a Berth container" > /www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
for _ in $(seq 50); do
  [ "$("$BERTH" inspect --format '{{.State.Health.Status}}' demo-web)" = healthy ] && break
  sleep 0.2
done
"$BERTH" ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
PID=$("$BERTH" inspect --format '{{.State.Pid}}' demo-web)
out=$(nsenter -t "$PID" -n /bin/busybox wget -qO- http://127.0.0.1:8080/ 2>/dev/null) || out=
echo "GET http://127.0.0.1:8080/ in the container's network: ${out:-<no answer>}"
"$BERTH" rm -f demo-web >/dev/null
echo "== done"
