#!/usr/bin/env bash
# Server CPU per login of one xmppd with and without TLS session resumption:
#   bench/login-cpu.sh [LOGINS] [CLIENT]      (default 1000 logins, client basic; RUNS=2 measured runs per case)
# Cases (CASES="per-connection shared-full shared-resumed" by default), each on a fresh server after WARMUP (default 3)
# unmeasured rounds of the same logins: one round was not enough, the tiered JIT was still recompiling hot code in the
# first measured run (a quarter of the server's samples in a perf profile; rounds of 2,000 logins on one server cost
# 2.78, 1.26, 1.04, 0.99 ms each):
#   per-connection  the fallback (XMPP_TLS_CONTEXT_PER_CONNECTION=1): an OpenSSL context per connection, full handshakes
#   shared-full     shared contexts, the generator offers no earlier session (--no-tls-resume): full handshakes
#   shared-resumed  shared contexts, the generator offers its earlier session (.NET's default): resumed handshakes
# CPU is the server's user+system time over the run (/proc/PID/stat) divided by the logins; load average per line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGINS=${1:-1000}; CLIENT=${2:-basic}; RUNS=${RUNS:-2}; WARMUP=${WARMUP:-3}
CASES=${CASES:-per-connection shared-full shared-resumed}
WORK=$(mktemp -d /tmp/xmpp-login.XXXXXX)
PID=
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=; }
trap 'stop; rm -rf "$WORK"' EXIT
dotnet build "$ROOT/Xmpp.Server" -c Release -v quiet -nologo >&2
dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -v quiet -nologo >&2
cp -r "$ROOT/Xmpp.Server/bin/Release/net10.0" "$WORK/xmppd"; cp -r "$ROOT/bench/Xmpp.Bench/bin/Release/net10.0" "$WORK/bench"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
B=(dotnet "$WORK/bench/xmpp-bench.dll")
for case in $CASES; do
    d=$WORK/$case; mkdir -p "$d"
    C2S=$(port); TLS=$(port)
    env=(); extra=()
    case $case in
        per-connection) env=(XMPP_TLS_CONTEXT_PER_CONNECTION=1); extra=(--no-tls-resume) ;;
        shared-full) extra=(--no-tls-resume) ;;
    esac
    env "${env[@]}" dotnet "$WORK/xmppd/xmppd.dll" run --domain bench.localhost --data-dir "$d/data" --cert-dir "$d/certs" \
        --c2s-port "$C2S" --c2s-tls-port "$TLS" --listen 127.0.0.1 --log-level Warning --allow-registration true \
        --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
        --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 --Xmpp:Limits:MaxResourcesPerAccount=1000 \
        --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
        --Xmpp:Mam:DefaultMode=never --http-port 0 --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 --Xmpp:Proxy65:Port=0 \
        > "$d/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$C2S") 2>/dev/null && break; sleep 0.3; done
    C=(--port "$C2S" --tls-port "$TLS" --domain bench.localhost --server ours --users 500 --max-seconds 300 --client "$CLIENT" "${extra[@]}")
    "${B[@]}" register "${C[@]}" --concurrency 20 >/dev/null
    for _ in $(seq "$WARMUP"); do "${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 >/dev/null 2>&1; done
    for run in $(seq "$RUNS"); do
        line=$("${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 --server-pid "$PID" 2>/dev/null | tail -n 1)
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(json.dumps({"case": sys.argv[2], "client": sys.argv[4], "run": int(sys.argv[3]), "logins": r["sessions"], "failures": r["failures"], "server_cpu_ms_per_login": r["server_cpu_ms_per_login"], "logins_per_s": round(r["sessions_per_s"], 1), "load": float(open("/proc/loadavg").read().split()[0])}))' "$line" "$case" "$run" "$CLIENT"
    done
    stop
done
