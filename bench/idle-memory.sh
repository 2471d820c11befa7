#!/usr/bin/env bash
# Resident memory per idle TLS session of one xmppd, for each kind of client, on a fresh server each:
#   bench/idle-memory.sh [SESSIONS] [CLIENTS]        (default 2000 sessions, clients "basic messenger")
#   GCDUMP=DIR bench/idle-memory.sh ...              also a heap dump (dotnet-gcdump) before and with the sessions open
#   ACCOUNTS=N bench/idle-memory.sh ...               N accounts and N warm-up logins instead of 1,000
#   BENCH_ARGS="--no-tls-resume" ...                 more generator options (here: every handshake a full one)
#   XMPPD_ENV="DOTNET_GCgen0size=0x400000 ..." ...   environment for the server (GC settings under test)
# Per kind: start xmppd as bench/compare.sh does, register 1,000 accounts, warm up with 1,000 logins of the same kind,
# then the generator's idle scenario (RSS from /proc/PID/status 3 s after the last login, minus RSS before). A second
# figure, rss_per_session_kb_after_gc, is read the same way but each time 2 s after a full GC the script induces
# through EventPipe (dotnet-trace, GCHeapCollect keyword, no rundown): the logins' garbage still in gen 0 is then
# not counted. Each result line gets the load average.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SESSIONS=${1:-2000}; CLIENTS=${2:-"basic messenger"}
. "$ROOT/bench/tools/one-server.sh"
# The server and generator are copies of the build, so a rebuild while this runs does not change the server between
# the kinds of client.
one_server_setup xmpp-idle
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
GCDUMP_TOOL=$HOME/.dotnet/tools/dotnet-gcdump
TRACE_TOOL=$HOME/.dotnet/tools/dotnet-trace
# A full blocking GC in the server, then 2 s for the GC to give back what it frees; prints VmRSS in KiB.
gc_rss() {
    if [ -x "$TRACE_TOOL" ]; then
        timeout 30 "$TRACE_TOOL" collect -p "$1" --providers Microsoft-Windows-DotNETRuntime:0x800001:4 --rundown false \
            --buffersize 1 --duration 00:00:00:01 -o "$WORK/gc.nettrace" >/dev/null 2>&1 || true
    fi
    sleep 2; rss_kb "$1"
}
for client in $CLIENTS; do
    d=$WORK/$client; mkdir -p "$d"
    # shellcheck disable=SC2086
    start_ours "$d" ${XMPPD_ENV:-}
    C=(--port "$C2S" --tls-port "$TLS" --domain bench.localhost --server ours --users "${ACCOUNTS:-1000}" --max-seconds 300 --client "$client" ${BENCH_ARGS:-})
    "${B[@]}" register "${C[@]}" --concurrency 20 >/dev/null
    "${B[@]}" login "${C[@]}" --sessions "${ACCOUNTS:-1000}" --concurrency 50 >/dev/null 2>&1
    sleep 5
    if [ -n "${GCDUMP:-}" ]; then mkdir -p "$GCDUMP"; "$GCDUMP_TOOL" collect -p "$PID" -o "$GCDUMP/$client-before.gcdump" >/dev/null; fi
    gc_before=$(gc_rss "$PID")
    "${B[@]}" idle "${C[@]}" --sessions "$SESSIONS" --concurrency 50 --idle-seconds 15 --server-pid "$PID" > "$d/idle.json" 2> "$d/idle.err" &
    BPID=$!
    # The generator settles 3 s after its last login, reads RSS, then holds the sessions for --idle-seconds.
    for _ in $(seq 600); do grep -q "sessions open" "$d/idle.err" && break; sleep 0.5; done
    sleep 4
    gc_after=$(gc_rss "$PID")
    [ -n "${GCDUMP:-}" ] && "$GCDUMP_TOOL" collect -p "$PID" -o "$GCDUMP/$client-open.gcdump" >/dev/null
    wait "$BPID"
    python3 - "$(tail -n 1 "$d/idle.json")" "$gc_before" "$gc_after" "$(cut -d' ' -f1 /proc/loadavg)" "${XMPPD_ENV:-}" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
before, after = int(sys.argv[2]), int(sys.argv[3])
r["rss_before_gc_mb"], r["rss_after_gc_mb"] = round(before / 1024, 1), round(after / 1024, 1)
r["rss_per_session_kb_after_gc"] = round((after - before) / r["sessions"], 1)
r["load"] = float(sys.argv[4])
if sys.argv[5]: r["env"] = sys.argv[5]
r.pop("first_start_iq_error", None)
print(json.dumps(r))
PY
    stop
done
