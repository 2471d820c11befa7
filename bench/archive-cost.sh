#!/usr/bin/env bash
# What archiving every 1:1 message (XEP-0313) together with stream management (XEP-0198) costs our server, as #4 asks:
# "off" runs the core server (no archiving, clients without SM), "on" archives every message and its clients enable SM
# and ask for an ack after every write (SM=0 leaves SM off in the "on" runs too). Interleaved, ROUNDS times each,
# with the quick sizes of compare.sh. Each run gets a fresh data folder and free loopback ports; results go to stdout as
# JSON lines (one per scenario), progress to stderr. Build first: dotnet build XmppServer.sln -c Release
#   bench/archive-cost.sh [rounds]
# FIXED_RATE and FIXED_SECONDS (default 200 and 3, as compare.sh quick) set the fixed-rate phase whose p50/p99 are
# reported; START_RATE (500) where the ramp to the maximum sustained rate starts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-2}
XMPPD=$ROOT/Xmpp.Server/bin/Release/net10.0/xmppd
BENCH=$ROOT/bench/Xmpp.Bench/bin/Release/net10.0/xmpp-bench
DOMAIN=bench.localhost
PASSWORD=bench-password
WORK=$(mktemp -d /tmp/xmpp-archive-cost.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$WORK/certs/$DOMAIN"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
    -keyout "$WORK/certs/$DOMAIN/privkey.pem" -out "$WORK/certs/$DOMAIN/fullchain.pem" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

run() {
    local mode=$1 round=$2 d=$WORK/$1-$2 port tls
    port=$(free_port); tls=$(free_port)
    mkdir -p "$d"
    (cd "$d" && exec "$XMPPD" run --domain "$DOMAIN" --data-dir "$d/data" --cert-dir "$WORK/certs" \
        --c2s-port "$port" --c2s-tls-port "$tls" --listen 127.0.0.1 --log-level Warning --allow-registration true \
        --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
        --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 \
        --Xmpp:Limits:MaxResourcesPerAccount=1000 --Xmpp:Offline:MaxMessagesPerAccount=1000000 \
        --Xmpp:Mam:DefaultMode="$mode" --http-port 0 > "$d/server.log" 2>&1) &
    SERVER_PID=$!
    for _ in $(seq 1 120); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.5; done
    local common=(--server ours --port "$port" --tls-port "$tls" --domain "$DOMAIN" --password "$PASSWORD" --concurrency 50 --max-seconds 120)
    [ "$mode" = always ] && [ "${SM:-1}" = 1 ] && common+=(--sm)
    log "round $round, archiving $mode"
    "$BENCH" register --users 200 "${common[@]}" | tail -n 1 >/dev/null
    for scenario in "throughput --users 200 --online 50 --fixed-rate ${FIXED_RATE:-200} --fixed-seconds ${FIXED_SECONDS:-3} --start-rate ${START_RATE:-500} --step-seconds 2" \
                    "offline --users 60 --messages 2000 --receivers 40 --senders 10"; do
        # shellcheck disable=SC2086
        line=$("$BENCH" $scenario "${common[@]}" | tail -n 1) || line='{"error":"no result"}'
        echo "{\"archiving\":\"$mode\",\"sm\":$([[ " ${common[*]} " == *" --sm "* ]] && echo true || echo false),\"round\":$round,\"result\":$line}"
    done
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    du -sh "$d/data" >&2 || true
    SERVER_PID=
}

for round in $(seq 1 "$ROUNDS"); do
    run never "$round"
    run always "$round"
done
