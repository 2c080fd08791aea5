#!/usr/bin/env bash
# port-throughput.sh: TCP throughput through a published port, berthd against Debian's dockerd,
# in ONE run. Each daemon runs a busybox container on its default bridge whose server,
# `nc -l -p 5001 > /dev/null` (busybox nc, restarted in a loop, stdin held open by a fifo so
# it never half-closes early), is published with `-p HOSTPORT:5001` (a different host port per
# daemon). A python3 client sends SIZE_MB MiB of zeros, half-closes and waits for the server to
# close, i.e. until the server has read every byte; MB/s = 10^6 bytes per second of that wall
# time, median of REPS transfers, the daemons alternating transfer by transfer. Two paths:
#   loopback  host -> 127.0.0.1:HOSTPORT. dockerd: docker-proxy (userland, its default);
#             berthd: kernel DNAT (route_localnet + masquerade).
#   external  from a network namespace standing in for another machine, joined to the host by
#             a veth pair ($PEER_NET: host .1, namespace .2) -> host .1:HOSTPORT. Both DNAT.
# SINK=splice replaces the server by `nc -ll -p 5001 -e sh -c 'cat >/dev/null'` (busybox cat
# splices to /dev/null), for when nc's small read loop rather than the path is the bottleneck.
# It is with the default sink here: nc is syscall-bound, and on it dockerd's default seccomp
# profile alone costs 25-30 % (measured against --security-opt seccomp=unconfined), so the nc
# numbers compare the containers' syscall cost more than the published-port paths.
# This VM drifts between batches: compare the ratios, not absolute numbers of different runs.
#
# berthd comes from a release build in $BUILD (default /work/release-build; built with
# `swift build -c release --build-path $BUILD` if a binary is missing, or with REBUILD=1) and
# runs with its own data/exec root, socket, default bridge berth-bench0 (10.204.0.1/24) and
# nftables table berthbench, so it collides neither with docker0 nor a development berthd.
# dockerd is the one of /work/shared/bench/anchor-services.sh (/tmp/anchor-docker.sock),
# started if needed and then stopped again at exit. Exit (also on failure or ^C) removes the
# containers, stops berthd, deletes berth-bench0, the nftables tables ip/bridge berthbench, the
# namespace and its veth pair.
#
# Run as root:  bench/port-throughput.sh            (SINK=splice bench/port-throughput.sh)
# Env: SIZE_MB (MiB per transfer, default 2048), REPS (5), SINK (nc|splice), BPORT (15001),
#      DPORT (15002), PEER_NET (10.203.0.0/30), BUILD, REBUILD, DOCKER (/usr/local/bin/docker).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${ANCHOR:-/work/shared/bench/anchor-services.sh}
BUILD=${BUILD:-/work/release-build}
BIN=$BUILD/release
SIZE_MB=${SIZE_MB:-2048}; REPS=${REPS:-5}; SINK=${SINK:-nc}
BPORT=${BPORT:-15001}; DPORT=${DPORT:-15002}
PEER_NET=${PEER_NET:-10.203.0.0/30}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BRIDGE=berth-bench0; BIP=10.204.0.1/24; TABLE=berthbench
NS=berth-bench-peer; VETH_HOST=bbench-host; VETH_PEER=bbench-peer
DSOCK=/tmp/anchor-docker.sock
net=${PEER_NET%/*}; HOST_IP=${net%.*}.$(( ${net##*.} + 1 )); PEER_IP=${net%.*}.$(( ${net##*.} + 2 ))
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in jq nft ip python3 bc "$DOCKER"; do command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }; done
[ -x "$ANCHOR" ] && command -v dockerd >/dev/null || { echo "need dockerd (docker.io) and $ANCHOR" >&2; exit 1; }
case $SINK in
  nc) SERVER='mkfifo /hold && exec 3<>/hold && while :; do nc -l -p 5001 <&3 >/dev/null; done' ;;
  splice) SERVER="exec nc -ll -p 5001 -e sh -c 'cat >/dev/null'" ;;
  *) echo "SINK is nc or splice" >&2; exit 2 ;;
esac
for l in "$BRIDGE" "$VETH_HOST"; do
  ! ip link show "$l" >/dev/null 2>&1 || { echo "$l exists already (another run?): not touching it" >&2; exit 1; }
done
! nft list table ip "$TABLE" >/dev/null 2>&1 || { echo "nftables table ip $TABLE exists already: not touching it" >&2; exit 1; }
! [ -e "/run/netns/$NS" ] || { echo "netns $NS exists already: not touching it" >&2; exit 1; }
for p in "$BPORT" "$DPORT"; do
  ! python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $p), 0.5)" 2>/dev/null ||
    { echo "something listens on 127.0.0.1:$p already: set BPORT/DPORT" >&2; exit 1; }
done

# --- release build (reused when present) ---------------------------------------------------
. "$REPO/bench/release.sh"
ensure_release_build

WORK=$(mktemp -d /tmp/berth-bench-portput.XXXX)
BSOCK=$WORK/berth.sock
STARTED_DOCKERD=0
BPID=
cleanup() {
  local rc=$? h ids
  set +e
  for h in "unix://$BSOCK" "unix://$DSOCK"; do
    [ -S "${h#unix://}" ] || continue
    ids=$("$DOCKER" -H "$h" ps -aq --filter label=berth-bench-portput 2>/dev/null)
    [ -n "$ids" ] && "$DOCKER" -H "$h" rm -f $ids >/dev/null 2>&1
  done
  if [ -n "$BPID" ]; then kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; fi
  if [ $rc != 0 ] && [ -f "$WORK/berthd.log" ]; then echo "# berthd.log (tail):" >&2; tail -20 "$WORK/berthd.log" >&2; fi
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null          # takes the veth pair with it
  ip link del "$VETH_HOST" 2>/dev/null
  ip link del "$BRIDGE" 2>/dev/null
  nft delete table ip "$TABLE" 2>/dev/null
  nft delete table bridge "$TABLE" 2>/dev/null
  rm -rf "$WORK"
  [ $STARTED_DOCKERD = 1 ] && "$ANCHOR" stop dockerd >/dev/null 2>&1
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the client: one transfer, MB/s on stdout -----------------------------------------------
cat > "$WORK/client.py" <<'EOF'
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) << 20
chunk = memoryview(bytes(1 << 20))
for attempt in range(50):      # the server loop may be between two listens: retry
    try:
        s = socket.create_connection((host, port), timeout=30)
        t0 = time.monotonic()
        sent = 0
        while sent < size:
            s.sendall(chunk); sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            raise OSError("server sent data")
        t1 = time.monotonic()
        s.close()
        print("%.1f" % (size / (t1 - t0) / 1e6))
        sys.exit(0)
    except OSError as e:
        err = e
        try: s.close()
        except Exception: pass
        time.sleep(0.1)
sys.exit("transfer to %s:%d failed: %s" % (host, port, err))
EOF
# probe.py HOST PORT: a one-byte transfer gets through the published port to the server
cat > "$WORK/probe.py" <<'EOF'
import socket, sys, time
for _ in range(200):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        s.sendall(b"x"); s.shutdown(socket.SHUT_WR)
        if s.recv(1) == b"": sys.exit(0)
    except OSError: pass
    time.sleep(0.05)
sys.exit("no server behind %s:%s" % (sys.argv[1], sys.argv[2]))
EOF

# --- the other machine: a namespace on a veth pair ------------------------------------------
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_PEER" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VETH_HOST"; ip link set "$VETH_HOST" up
ip -n "$NS" addr add "$PEER_IP/30" dev "$VETH_PEER"; ip -n "$NS" link set "$VETH_PEER" up; ip -n "$NS" link set lo up

# --- daemons, image, servers ---------------------------------------------------------------
"$BIN/berthd" --host "unix://$BSOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --bridge "$BRIDGE" --bip "$BIP" --firewall-table "$TABLE" 2>"$WORK/berthd.log" &
BPID=$!
for _ in $(seq 200); do [ -S "$BSOCK" ] && break; kill -0 "$BPID" 2>/dev/null || break; sleep 0.05; done
"$DOCKER" -H "unix://$BSOCK" version >/dev/null 2>&1 || { echo "berthd did not come up" >&2; exit 1; }
if ! "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1; then
  "$ANCHOR" start dockerd >&2 && STARTED_DOCKERD=1
  "$DOCKER" -H "unix://$DSOCK" version >/dev/null 2>&1 || { echo "dockerd did not come up" >&2; exit 1; }
fi
"$REPO/scripts/mkimage-busybox.sh" "$WORK/busybox.tar" >/dev/null
declare -A HOST=([berthd]="unix://$BSOCK" [dockerd]="unix://$DSOCK") PORT=([berthd]=$BPORT [dockerd]=$DPORT)
ENGINES=(berthd dockerd)
for e in "${ENGINES[@]}"; do
  "$DOCKER" -H "${HOST[$e]}" load -q -i "$WORK/busybox.tar" >/dev/null
  for try in 1 2 3; do  # a rare failed start (seen with berthd) is retried, and said
    "$DOCKER" -H "${HOST[$e]}" run -d --label berth-bench-portput=1 -p "${PORT[$e]}:5001" busybox sh -c "$SERVER" >/dev/null && break
    [ $try = 3 ] && exit 1
    echo "# $e: starting the server failed, retrying" >&2
    ids=$("$DOCKER" -H "${HOST[$e]}" ps -aq --filter label=berth-bench-portput)
    [ -z "$ids" ] || "$DOCKER" -H "${HOST[$e]}" rm -f $ids >/dev/null
  done
  python3 "$WORK/probe.py" 127.0.0.1 "${PORT[$e]}"
  ip netns exec "$NS" python3 "$WORK/probe.py" "$HOST_IP" "${PORT[$e]}"
done
proxies=$(pgrep -f "docker-proxy .*-host-port $DPORT" | wc -l)
echo "# $SIZE_MB MiB per transfer, median of $REPS, sink $SINK; $(nproc) CPUs; $("$DOCKER" -H "unix://$DSOCK" version -f 'dockerd {{.Server.Version}}'), docker-proxy processes for $DPORT: $proxies" >&2

# --- measure: daemons alternate transfer by transfer --------------------------------------------
declare -A RES
for path in loopback external; do
  for e in "${ENGINES[@]}"; do RES[$path/$e]=""; done
  for i in $(seq "$REPS"); do
    for e in "${ENGINES[@]}"; do
      if [ $path = loopback ]; then
        r=$(python3 "$WORK/client.py" 127.0.0.1 "${PORT[$e]}" "$SIZE_MB")
      else
        r=$(ip netns exec "$NS" python3 "$WORK/client.py" "$HOST_IP" "${PORT[$e]}" "$SIZE_MB")
      fi
      RES[$path/$e]+="$r "
      sleep 0.3
    done
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (a[int((NR+1)/2)] + a[int(NR/2)+1]) / 2}'; }
echo "| path | berthd MB/s | dockerd MB/s | berthd/dockerd |"
echo "|---|---|---|---|"
for path in loopback external; do
  b=$(echo "${RES[$path/berthd]}" | median); d=$(echo "${RES[$path/dockerd]}" | median)
  case $path in
    loopback) label="127.0.0.1:port (berthd DNAT, dockerd docker-proxy)" ;;
    external) label="other netns -> $HOST_IP:port (both DNAT)" ;;
  esac
  printf '| %s | %.0f | %.0f | %.2f |\n' "$label" "$b" "$d" "$(echo "$b / $d" | bc -l)"
done
echo
for path in loopback external; do
  for e in "${ENGINES[@]}"; do echo "all $path $e MB/s: ${RES[$path/$e]}"; done
done
