#!/usr/bin/env bash
# Berth's main job on its built-in default, as far as what has landed allows: start berthd
# and ask it for its version with the docker CLI; build
# berth-runtime, make a busybox bundle from Debian's busybox-static, and run it, first to
# completion, then as a detached web server (busybox httpd) that is queried and torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --static-swift-stdlib --product berth-runtime
swift build -c release --product berthd
RT=$PWD/.build/release/berth-runtime
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
ROOT=$WORK/state
DAEMON_PID=
cleanup() {
  "$RT" --root "$ROOT" delete --force demo-web >/dev/null 2>&1 || true
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# The daemon so far answers the Docker API's system routes: the docker CLI sees an engine.
.build/release/berthd --host "unix://$WORK/berth.sock" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  2>"$WORK/berthd.log" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$WORK/berth.sock" ] && break; sleep 0.05; done
if [ -x /usr/local/bin/docker ]; then
  echo "== docker version against berthd"
  /usr/local/bin/docker -H "unix://$WORK/berth.sock" version --format \
    'client {{.Client.Version}} -> server {{.Server.Version}}, API {{.Server.APIVersion}} (min {{.Server.MinAPIVersion}})'
fi

scripts/mkbundle.sh "$WORK/bundle" sh -c 'echo "hello from $(hostname), pid $$ in its own namespace"' >/dev/null
echo "== berth-runtime run (busybox bundle)"
"$RT" --root "$ROOT" run --bundle "$WORK/bundle" demo-hello

# A server in a container, reached through a network namespace we own.
scripts/mkbundle.sh "$WORK/web" httpd -f -p 8080 -h /www >/dev/null
mkdir -p "$WORK/web/rootfs/www"
echo "served by busybox httpd inside a Berth container" > "$WORK/web/rootfs/www/index.html"
echo "== berth-runtime create + start (busybox httpd)"
"$RT" --root "$ROOT" create --bundle "$WORK/web" demo-web </dev/null >/dev/null 2>&1
"$RT" --root "$ROOT" start demo-web
PID=$(jq -r .pid < <("$RT" --root "$ROOT" state demo-web))
echo "state: $("$RT" --root "$ROOT" state demo-web | jq -c '{id, status, pid}')"
nsenter -t "$PID" -n ip link set lo up
for _ in $(seq 50); do
  if out=$(nsenter -t "$PID" -n /bin/busybox wget -qO- http://127.0.0.1:8080/ 2>/dev/null); then break; fi
  sleep 0.1
done
echo "GET http://127.0.0.1:8080/ in the container's network: ${out:-<no answer>}"
"$RT" --root "$ROOT" kill demo-web KILL
"$RT" --root "$ROOT" delete --force demo-web
echo "== done"
