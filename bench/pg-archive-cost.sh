#!/usr/bin/env bash
# What archiving every 1:1 message costs our server on PostgreSQL (issue 16, point 4: at most 30 % of peak 1:1
# throughput). The pair compare.sh --quick --storage postgresql runs as ours-pg and ours-pg-arch, on its own: one
# private PostgreSQL (initdb in a temp folder, fsync and synchronous_commit on), and per run a fresh database and a
# fresh xmppd with archiving "never" (clients without SM) or "always" (every message archived in both accounts'
# archives, clients with XEP-0198 and an ack asked after every write, which waits for the archive's commit).
# Interleaved, ROUNDS times each. Prints one JSON line per run (max sustained rate, CPU seconds of xmppd and of all
# PostgreSQL processes during the throughput run, archived rows, load average) to stdout, progress to stderr.
# MODES (default "never always") may add "never-sm": archiving off with the same XEP-0198 clients as "always", which
# separates what the acks cost from what archiving costs.
# TRACE=FILE also records a thread-time sampling dotnet-trace of xmppd (FILE-MODE-ROUND.nettrace, 20 s from 10 s into the
# throughput run): for finding the cost, not for the figures, which it disturbs.
# PERF=DIR records `perf record -g` of xmppd (JIT frames named through DOTNET_PerfMapEnabled) and of every PostgreSQL
# process for 15 s from 10 s into the throughput run: DIR/MODE-ROUND-{xmppd,postgres}.{data,txt} (self time by symbol).
# RATE=N offers N msgs/s for 15 s and one step instead of the ramp: CPU per message of every mode at one rate, which
# separates what archiving costs per message from what a lower rate costs (fewer stanzas per wake-up and per write).
# Each line also gives the database's commits (pg_stat_database.xact_commit) and its WAL (pg_stat_wal: records,
# full-page images, bytes) during the throughput run.
# Build first: dotnet build XmppServer.sln -c Release (XMPPD=PATH runs another build of the server, e.g. a copy of the one before a change)
#   bench/pg-archive-cost.sh [rounds] [modes]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-2}
MODES=${2:-never always}
XMPPD=${XMPPD:-$ROOT/Xmpp.Server/bin/Release/net10.0/xmppd}
BENCH=$ROOT/bench/Xmpp.Bench/bin/Release/net10.0/xmpp-bench
DOMAIN=bench.localhost
PASSWORD=bench-password
WORK=$(mktemp -d /tmp/xmpp-pg-archive-cost.XXXXXX)
SERVER_PID=
PG_PID=
pgdir=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
        local postmaster; postmaster=$(head -n 1 "$pgdir/data/postmaster.pid")
        kill -INT "$postmaster" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$postmaster" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -rf "$WORK" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$WORK/certs/$DOMAIN"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN" -keyout "$WORK/certs/$DOMAIN/privkey.pem" -out "$WORK/certs/$DOMAIN/fullchain.pem" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# ---- the private PostgreSQL (as compare.sh starts it) ----
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { log "PostgreSQL binaries not found (apt-get install postgresql)"; exit 1; }
pgdir=$(mktemp -d /tmp/xmpp-pg-archive-cost-pg.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then
    id -u xmpptest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin xmpptest
    chown xmpptest "$pgdir"; as=(runuser -u xmpptest --)
fi
PG_PORT=$(free_port)
"${as[@]}" "$bin/initdb" -D "$pgdir/data" -U postgres --auth trust -E UTF8 --no-locale --no-sync > "$pgdir/initdb.log" 2>&1
("${as[@]}" "$bin/postgres" -D "$pgdir/data" -p "$PG_PORT" -k "$pgdir" -c listen_addresses=127.0.0.1 -c fsync=on \
    -c shared_buffers=256MB -c max_connections=200 > "$pgdir/postgres.log" 2>&1) &
PG_PID=$!
for _ in $(seq 1 120); do (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null && break; sleep 0.5; done
sleep 1
psql_() { "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
postmaster=$(head -n 1 "$pgdir/data/postmaster.pid")
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $PG_PORT, postmaster $postmaster"

# CPU seconds (user + system) of a process and, with "tree", of every process whose parent is it (PostgreSQL's backends).
cpu_of() {
    local pid=$1 tree=${2:-} total=0 p
    local pids=("$pid")
    [ -n "$tree" ] && pids+=($(ps -o pid= --ppid "$pid" 2>/dev/null || true))
    for p in "${pids[@]}"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$total"
}

run() {
    local mode=$1 round=$2 d=$WORK/$1-$2 port tls db sm=
    [ "$mode" = never-sm ] && { mode=never; sm=1; }
    [ "$mode" = always ] && sm=1
    port=$(free_port); tls=$(free_port); db="arch_${mode}${sm:+_sm}_$round"
    psql_ -c "CREATE DATABASE $db" postgres
    mkdir -p "$d"
    (cd "$d" && exec ${PERF:+env DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0} "$XMPPD" run --domain "$DOMAIN" --data-dir "$d/data" --cert-dir "$WORK/certs" \
        --c2s-port "$port" --c2s-tls-port "$tls" --listen 127.0.0.1 --log-level Warning --allow-registration true \
        --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
        --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 \
        --Xmpp:Limits:MaxResourcesPerAccount=1000 --Xmpp:Offline:MaxMessagesPerAccount=1000000 \
        --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
        --Xmpp:Mam:DefaultMode="$mode" --http-port 0 --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 \
        --storage postgresql "--Xmpp:Storage:ConnectionString=Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$db;Maximum Pool Size=50" \
        > "$d/server.log" 2>&1) &
    SERVER_PID=$!
    for _ in $(seq 1 120); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.5; done
    local common=(--server ours --port "$port" --tls-port "$tls" --domain "$DOMAIN" --password "$PASSWORD" --concurrency 50 --max-seconds 120)
    [ -n "$sm" ] && common+=(--sm)
    log "round $round, archiving $mode${sm:+, XEP-0198 acks}"
    "$BENCH" register --users 200 "${common[@]}" | tail -n 1 >/dev/null
    local load0 x0 p0 line x1 p1 rows
    local c0 w0 c1 w1 perf_pid=
    c0=$(psql_ -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'" postgres)
    w0=$(psql_ -F ' ' -c "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal" postgres)
    load0=$(cut -d' ' -f1 /proc/loadavg); x0=$(cpu_of "$SERVER_PID"); p0=$(cpu_of "$postmaster" tree)
    if [ -n "${PERF:-}" ]; then
        mkdir -p "$PERF"
        local out=$PERF/$mode${sm:+-sm}-$round pgpids
        pgpids=$(ps -o pid= --ppid "$postmaster" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
        (sleep 10
         perf record -F 999 -g -p "$SERVER_PID" -o "$out-xmppd.data" -- sleep 15 >/dev/null 2>&1 &
         perf record -F 999 -g -p "$postmaster,$pgpids" -o "$out-postgres.data" -- sleep 15 >/dev/null 2>&1 &
         wait
         for w in xmppd postgres; do
             perf report -i "$out-$w.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -120 > "$out-$w.txt" || true
             perf report -i "$out-$w.data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -200 > "$out-$w-inclusive.txt" || true
         done) &
        perf_pid=$!
    fi
    if [ -n "${TRACE:-}" ]; then
        (sleep 10; "${DOTNET_TRACE:-$HOME/.dotnet/tools/dotnet-trace}" collect -p "$SERVER_PID" --profile dotnet-sampled-thread-time \
            --duration 00:00:00:20 -o "$TRACE-$mode${sm:+-sm}-$round.nettrace" > "$TRACE-$mode${sm:+-sm}-$round.log" 2>&1) &
    fi
    local rates=(--fixed-rate 200 --fixed-seconds 3 --start-rate 500 --step-seconds 2)
    [ -n "${RATE:-}" ] && rates=(--fixed-rate "$RATE" --fixed-seconds 15 --start-rate "$RATE" --max-rate "$RATE" --step-seconds 2)
    line=$("$BENCH" throughput --users 200 --online 50 "${rates[@]}" "${common[@]}" | tail -n 1) || line='{"error":"no result"}'
    x1=$(cpu_of "$SERVER_PID"); p1=$(cpu_of "$postmaster" tree)
    if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
    c1=$(psql_ -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'" postgres)
    w1=$(psql_ -F ' ' -c "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal" postgres)
    rows=$(psql_ -c "SELECT count(*) FROM archive_mam" "$db" 2>/dev/null || echo 0)
    local wal; wal=$(echo "$w0 $w1" | awk '{printf "\"wal_records\":%d,\"wal_fpi\":%d,\"wal_bytes\":%d", $4-$1, $5-$2, $6-$3}')
    echo "{\"archiving\":\"$mode\",\"sm\":${sm:-0},\"round\":$round,\"load_start\":$load0,\"load_end\":$(cut -d' ' -f1 /proc/loadavg),\"xmppd_cpu_s\":$(( (x1 - x0) ))e-2,\"postgres_cpu_s\":$(( (p1 - p0) ))e-2,\"archived_rows\":$rows,\"commits\":$((c1 - c0)),$wal,\"result\":$line}"
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    psql_ -c "DROP DATABASE $db" postgres || true
}

for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do run "$mode" "$round"; done
done
