#!/usr/bin/env bash
# Where one xmppd spends its CPU during logins: bench/login-profile.sh [LOGINS] [CLIENT] [OUT]
# WARMUP=N unmeasured rounds first (default 1). One server (shared TLS contexts, the generator offering no TLS session: full handshakes, as login-cpu.sh's
# shared-full), 500 accounts, a warm-up round, then LOGINS logins at concurrency 50 under `perf record -g` (JIT code
# named through DOTNET_PerfMapEnabled). Writes OUT/perf.data and three summaries: OUT/dso.txt (CPU by library: kernel,
# libcrypto, libssl, libcoreclr (GC, runtime), JIT'd code), OUT/symbols.txt (self time by function) and OUT/callers.txt
# (inclusive time by function, callers included). Needs perf (linux-tools) and permission to sample the process.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGINS=${1:-2000}; CLIENT=${2:-basic}; OUT=${3:-/tmp/login-profile}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/xmpp-login-prof.XXXXXX)
PID=
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=; }
trap 'stop; rm -rf "$WORK"' EXIT
dotnet build "$ROOT/Xmpp.Server" -c Release -v quiet -nologo >&2
dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -v quiet -nologo >&2
cp -r "$ROOT/Xmpp.Server/bin/Release/net10.0" "$WORK/xmppd"; cp -r "$ROOT/bench/Xmpp.Bench/bin/Release/net10.0" "$WORK/bench"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
B=(dotnet "$WORK/bench/xmpp-bench.dll")
C2S=$(port); TLS=$(port)
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 dotnet "$WORK/xmppd/xmppd.dll" run --domain bench.localhost --data-dir "$WORK/data" --cert-dir "$WORK/certs" \
    --c2s-port "$C2S" --c2s-tls-port "$TLS" --listen 127.0.0.1 --log-level Warning --allow-registration true \
    --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
    --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 --Xmpp:Limits:MaxResourcesPerAccount=1000 \
    --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
    --Xmpp:Mam:DefaultMode=never --http-port 0 --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 --Xmpp:Proxy65:Port=0 \
    > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$C2S") 2>/dev/null && break; sleep 0.3; done
C=(--port "$C2S" --tls-port "$TLS" --domain bench.localhost --server ours --users 500 --max-seconds 300 --client "$CLIENT" --no-tls-resume)
"${B[@]}" register "${C[@]}" --concurrency 20 >/dev/null
for _ in $(seq "${WARMUP:-1}"); do "${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 --server-pid "$PID" 2>/dev/null | tail -n 1 >&2; done
wc -l < "/tmp/perf-$PID.map" >&2
perf record -F 1999 -g -p "$PID" -o "$OUT/perf.data" >/dev/null 2>&1 &
PERF=$!
sleep 1
"${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 --server-pid "$PID" 2>/dev/null | tail -n 1
kill -INT "$PERF"; wait "$PERF" || true
wc -l < "/tmp/perf-$PID.map" >&2
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 > "$OUT/dso.txt" || true
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -150 > "$OUT/symbols.txt" || true
perf report -i "$OUT/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -250 > "$OUT/callers.txt" || true
cat "$OUT/dso.txt"
