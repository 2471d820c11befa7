#!/usr/bin/env bash
# Managed bytes the server allocates per routed 1:1 message, and the p99 at a fixed rate, from one xmppd:
#   bench/alloc-per-message.sh [RATE] [SECONDS]      (default 1000 msgs/s for 10 s, 100 online users)
# The count is the runtime's own (dotnet.gc.heap.total_allocated on /metrics) read before and after the measured
# run, so it covers every allocation on the path (socket, TLS, parser, router, writer), not a sample.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:-1000}; SECS=${2:-10}
WORK=$(mktemp -d /tmp/xmpp-alloc.XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; tail -3 "$WORK/server.log" >&2; rm -rf "$WORK"' EXIT
dotnet build "$ROOT/Xmpp.Server" -c Release -v quiet -nologo >&2
dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -v quiet -nologo >&2
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
C2S=$(port); TLS=$(port); HTTP=$(port)
dotnet "$ROOT/Xmpp.Server/bin/Release/net10.0/xmppd.dll" run --domain bench.localhost --data-dir "$WORK/data" --cert-dir "$WORK/certs" \
    --c2s-port "$C2S" --c2s-tls-port "$TLS" --http-port "$HTTP" --listen 127.0.0.1 --log-level Warning --allow-registration true \
    --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=100000 \
    --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 --Xmpp:Mam:DefaultMode=never --Xmpp:Proxy65:Port=0 --Xmpp:S2s:Enabled=false \
    > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$C2S) 2>/dev/null && break; sleep 0.3; done
B=(dotnet "$ROOT/bench/Xmpp.Bench/bin/Release/net10.0/xmpp-bench.dll")
C=(--port "$C2S" --tls-port "$TLS" --domain bench.localhost --server ours --users 100 --max-seconds 120)
"${B[@]}" register "${C[@]}" >/dev/null
allocated() { curl -sk "https://127.0.0.1:$HTTP/metrics" | awk '/^dotnet_gc_heap_total_allocated_bytes_total/ {print $2}'; }
# warm-up: compile the message path
"${B[@]}" throughput "${C[@]}" --online 100 --fixed-rate "$RATE" --fixed-seconds 3 --max-rate 1 --start-rate 1000000 >/dev/null 2>&1 || true
# Two runs that differ only in length: the logins and the run's start and end cancel out in the difference.
run() { "${B[@]}" throughput "${C[@]}" --online 100 --fixed-rate "$RATE" --warmup-seconds 1 --fixed-seconds "$1" --max-rate 1 --start-rate 1000000 2>/dev/null | tail -n 1; }
a0=$(allocated); short=$(run 2); a1=$(allocated)
# TRACE=FILE.nettrace: also an allocation trace of the long run, for bench/tools/alloc-by-type
if [ -n "${TRACE:-}" ]; then
    "$HOME/.dotnet/tools/dotnet-trace" collect -p "$PID" --profile gc-verbose --duration "00:00:00:$(printf %02d "$SECS")" -o "$TRACE" >/dev/null 2>&1 &
    TPID=$!; sleep 2
fi
line=$(run "$((SECS + 2))"); a2=$(allocated)
[ -n "${TRACE:-}" ] && wait "$TPID" || true
echo "$line"
python3 - "$a0" "$a1" "$a2" "$RATE" "$SECS" "$line" <<'PY'
import json, sys
a0, a1, a2, rate, secs = (float(x) for x in sys.argv[1:6])
r = json.loads(sys.argv[6])
per = ((a2 - a1) - (a1 - a0)) / (rate * secs)
print(f"{per:.0f} B allocated per routed message ({rate:.0f} msgs/s, {secs:.0f} s more in the second run); "
      f"p50 {r.get('p50_ms')} ms, p99 {r.get('p99_ms')} ms, p99.9 {r.get('p999_ms')} ms; load average {open('/proc/loadavg').read().split()[0]}")
PY
