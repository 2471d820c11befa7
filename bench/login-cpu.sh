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
. "$ROOT/bench/tools/one-server.sh"
one_server_setup xmpp-login
for case in $CASES; do
    d=$WORK/$case; mkdir -p "$d"
    env=(); extra=()
    case $case in
        per-connection) env=(XMPP_TLS_CONTEXT_PER_CONNECTION=1); extra=(--no-tls-resume) ;;
        shared-full) extra=(--no-tls-resume) ;;
    esac
    # shellcheck disable=SC2086
    start_ours "$d" "${env[@]}" ${XMPPD_ENV:-}
    C=(--port "$C2S" --tls-port "$TLS" --domain bench.localhost --server ours --users 500 --max-seconds 300 --client "$CLIENT" "${extra[@]}")
    "${B[@]}" register "${C[@]}" --concurrency 20 >/dev/null
    for _ in $(seq "$WARMUP"); do "${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 >/dev/null 2>&1; done
    for run in $(seq "$RUNS"); do
        line=$("${B[@]}" login "${C[@]}" --sessions "$LOGINS" --concurrency 50 --server-pid "$PID" 2>/dev/null | tail -n 1)
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(json.dumps({"case": sys.argv[2], "client": sys.argv[4], "run": int(sys.argv[3]), "logins": r["sessions"], "failures": r["failures"], "server_cpu_ms_per_login": r["server_cpu_ms_per_login"], "logins_per_s": round(r["sessions_per_s"], 1), "load": float(open("/proc/loadavg").read().split()[0])}))' "$line" "$case" "$run" "$CLIENT"
    done
    stop
done
