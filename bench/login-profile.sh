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
. "$ROOT/bench/tools/one-server.sh"
one_server_setup xmpp-login-prof
start_ours "$WORK" DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
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
