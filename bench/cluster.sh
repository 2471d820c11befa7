#!/usr/bin/env bash
# Cluster benchmark (issue 17, point 7): our server as one cluster node against three cluster nodes, on one private
# PostgreSQL and one private Redis, each behind HAProxy in TCP mode, on this machine. Run by `bench/compare.sh --cluster`.
#
#   bench/cluster.sh --quick     300 accounts, a few thousand idle sessions: ~5 minutes
#   bench/cluster.sh             medium: 1,000 accounts and logins, 10,000 idle sessions
#   bench/cluster.sh --full      10,000 accounts, 50,000 idle sessions spread over three nodes
#   options: --keep (leave the temp dir)   --out FILE (results markdown)   --idle N (idle sessions)
#            --idle-only (three nodes and the idle sessions only: no one-node run, no login or throughput figures)
#
# Login rate, 1:1 throughput and latency are measured through one HAProxy for one node and for three (users are spread
# by HAProxy's leastconn, so most 1:1 messages cross nodes over Redis). This machine has two cores: three nodes share
# them, so expect no speed-up; the table reports what the cluster costs. The idle scenario holds N sessions over the
# three nodes; one process may hold at most `ulimit -Hn` descriptors (20,000 here), which is why one server cannot hold
# 50,000 here at all: the sessions are spread over several generator processes and several HAProxy processes (each
# HAProxy holds two descriptors per session), every one below the limit, and resident memory is summed over the nodes.
set -euo pipefail

main() {
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=medium
KEEP=0
IDLE_ONLY=0
OUT=""
IDLE=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) SIZE=quick; shift ;;
        --medium) SIZE=medium; shift ;;
        --full) SIZE=full; shift ;;
        --keep) KEEP=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --idle-only) IDLE_ONLY=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

DOMAIN=bench.localhost
PASSWORD=bench-password
case $SIZE in
    quick)  USERS=300;   LOGINS=300;   IDLE_N=${IDLE:-3000};  ONLINE=60;  FIXED_RATE=200;  FIXED_S=5;  STEP_S=2; START_RATE=500;  MAX_S=180; CONC=50 ;;
    medium) USERS=1000;  LOGINS=1000;  IDLE_N=${IDLE:-10000}; ONLINE=300; FIXED_RATE=500;  FIXED_S=10; STEP_S=3; START_RATE=500;  MAX_S=300; CONC=100 ;;
    full)   USERS=10000; LOGINS=5000;  IDLE_N=${IDLE:-50000}; ONLINE=600; FIXED_RATE=1000; FIXED_S=10; STEP_S=5; START_RATE=1000; MAX_S=900; CONC=200 ;;
esac
# One generator (and one HAProxy) per this many idle sessions: 2 descriptors per session in HAProxy, 1 in the generator.
PER_PROCESS=8000
FD_LIMIT=$(ulimit -Hn)
ulimit -n "$FD_LIMIT" 2>/dev/null || true

for p in haproxy redis-server; do command -v "$p" >/dev/null || missing_pkg=1; done
if [ -n "${missing_pkg:-}" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends haproxy redis-server >&2
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        for s in haproxy redis-server; do $SUDO systemctl disable --now "$s" >&2 2>/dev/null || true; done
    fi
fi

WORK=$(mktemp -d /tmp/xmpp-cluster-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
: > "$RESULTS"
STARTED_PIDS=()
pgdir=""
cleanup() {
    # Stop only what this script started, by PID (the nodes are children of the shell that started them).
    [ -n "${NODES_PID:-}" ] && stop_nodes
    for pid in "${STARTED_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
        local postmaster; postmaster=$(head -n 1 "$pgdir/data/postmaster.pid")
        kill -INT "$postmaster" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$postmaster" 2>/dev/null || break; sleep 0.5; done
    fi
    [ "$KEEP" = 1 ] || rm -rf "$WORK" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

log "building xmppd (published Release) and the load generator"
dotnet publish "$ROOT/Xmpp.Server" -c Release -o "$WORK/xmppd" -v quiet -nologo >&2
dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -o "$WORK/bench" -v quiet -nologo >&2
BENCH=(dotnet "$WORK/bench/xmpp-bench.dll")

mkdir -p "$WORK/certs/$DOMAIN"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN" -keyout "$WORK/certs/$DOMAIN/privkey.pem" -out "$WORK/certs/$DOMAIN/fullchain.pem" 2>/dev/null

# A free loopback TCP port (the kernel picks one, then it is released), so the run never collides with other programs.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() {
    local port=$1 pid=$2
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

# ---- a private PostgreSQL (as bench/compare.sh --storage postgresql) and a private Redis ----
PG_PORT=$(free_port)
start_postgres() {
    local bin as=()
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] || { log "PostgreSQL binaries not found (apt-get install postgresql)"; exit 1; }
    pgdir=$(mktemp -d /tmp/xmpp-cluster-bench-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        id -u xmpptest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin xmpptest
        chown xmpptest "$pgdir"; as=(runuser -u xmpptest --)
    fi
    "${as[@]}" "$bin/initdb" -D "$pgdir/data" -U postgres --auth trust -E UTF8 --no-locale --no-sync > "$pgdir/initdb.log" 2>&1 \
        || { log "initdb failed"; cat "$pgdir/initdb.log" >&2; exit 1; }
    ("${as[@]}" "$bin/postgres" -D "$pgdir/data" -p "$PG_PORT" -k "$pgdir" -c listen_addresses=127.0.0.1 -c fsync=on \
        -c shared_buffers=256MB -c max_connections=300 > "$pgdir/postgres.log" 2>&1) &
    STARTED_PIDS+=("$!")
    wait_port "$PG_PORT" "$!" || { log "PostgreSQL did not start"; tail -n 20 "$pgdir/postgres.log" >&2; exit 1; }
    sleep 1
    "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE xmpp_cluster" postgres >&2
    log "PostgreSQL started on port $PG_PORT"
}
REDIS_PORT=$(free_port)
REDIS_PASSWORD=$(openssl rand -hex 12)
start_redis() {
    mkdir -p "$WORK/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --requirepass "$REDIS_PASSWORD" --save "" \
        --appendonly no --daemonize no --logfile "$WORK/redis/redis.log" &
    REDIS_PID=$!; STARTED_PIDS+=("$REDIS_PID")
    wait_port "$REDIS_PORT" "$REDIS_PID" || { log "redis-server did not start"; exit 1; }
    log "Redis started, PID $REDIS_PID, port $REDIS_PORT"
}
start_postgres
start_redis

# ---- nodes: node i has a c2s port, a direct-TLS port and an HTTPS port (GET /ready for HAProxy's checks) ----
declare -A NODE_C2S NODE_TLS NODE_HTTP
for i in 1 2 3; do NODE_C2S[$i]=$(free_port); NODE_TLS[$i]=$(free_port); NODE_HTTP[$i]=$(free_port); done
# All nodes of one configuration are children of one shell, so the generator's --server-pid (which sums a process and
# its descendants) reads the whole cluster's memory and CPU.
start_nodes() {
    local count=$1 i
    (
        for i in $(seq 1 "$count"); do
            local d=$WORK/node$i; mkdir -p "$d"
            (cd "$d" && exec "$WORK/xmppd/xmppd" run --domain "$DOMAIN" --data-dir "$d/data" --cert-dir "$WORK/certs" \
                --c2s-port "${NODE_C2S[$i]}" --c2s-tls-port "${NODE_TLS[$i]}" --http-port "${NODE_HTTP[$i]}" --listen 127.0.0.1 --log-level Warning \
                --allow-registration true --storage postgresql \
                "--Xmpp:Storage:ConnectionString=Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=xmpp_cluster;Maximum Pool Size=40" \
                --Xmpp:Cluster:Enabled=true "--Xmpp:Cluster:Redis=127.0.0.1:$REDIS_PORT,password=$REDIS_PASSWORD" \
                --Xmpp:Cluster:NodeId="node$i" \
                --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
                --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 \
                --Xmpp:Limits:MaxResourcesPerAccount=1000 --Xmpp:Offline:MaxMessagesPerAccount=1000000 \
                --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
                --Xmpp:Mam:DefaultMode=never --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 --Xmpp:Upload:Enabled=false \
                > "$d/server.log" 2>&1) &
        done
        wait
    ) &
    NODES_PID=$!; STARTED_PIDS+=("$NODES_PID")
    for i in $(seq 1 "$count"); do
        wait_port "${NODE_C2S[$i]}" "$NODES_PID" || { log "node$i did not start"; tail -n 30 "$WORK/node$i/server.log" >&2; exit 1; }
    done
    log "$count node(s) started under PID $NODES_PID"
}
stop_nodes() {
    local pids; pids=$(cat "/proc/$NODES_PID/task/$NODES_PID/children" 2>/dev/null || true)
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 60); do kill -0 "$NODES_PID" 2>/dev/null || break; sleep 0.5; done
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    NODES_PID=""
}

# ---- HAProxy in TCP mode: one frontend pair (STARTTLS, direct TLS) over the nodes, leastconn, health on /ready ----
# Several instances for the idle scenario, each on its own ports and source address (its descriptors stay below the
# per-process limit, and the ephemeral ports towards each node are per source address).
start_haproxy() {
    local name=$1 count=$3 source=$4
    local port=($2 $(($2 + 1)))
    local d=$WORK/haproxy-$name; mkdir -p "$d"
    {
        echo "global"
        echo "    maxconn $((PER_PROCESS + 500))"
        echo "    pidfile $d/haproxy.pid"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 5s"
        echo "    timeout client 1h"
        echo "    timeout server 1h"
        # A saturated two-core machine answers /ready slowly: a run at load 84 had HAProxy take the only node out
        # (every login then failed with an immediate close). The benchmark measures the nodes, not the checks.
        echo "    timeout check 10s"
        echo "    maxconn $((PER_PROCESS + 500))"
        for kind in c2s tls; do
            local off=0; [ $kind = tls ] && off=1
            echo "frontend $kind"
            echo "    bind 127.0.0.1:${port[$off]}"
            echo "    default_backend nodes_$kind"
            echo "backend nodes_$kind"
            echo "    balance leastconn"
            echo "    source $source"
            echo "    option httpchk GET /ready"
            local i
            for i in $(seq 1 "$count"); do
                local np=${NODE_C2S[$i]}; [ $kind = tls ] && np=${NODE_TLS[$i]}
                echo "    server node$i 127.0.0.1:$np check port ${NODE_HTTP[$i]} check-ssl verify none inter 2s fall 10 rise 1"
            done
        done
    } > "$d/haproxy.cfg"
    haproxy -f "$d/haproxy.cfg" -db > "$d/haproxy.log" 2>&1 &
    local pid=$!; STARTED_PIDS+=("$pid"); HAPROXY_PIDS+=("$pid")
    wait_port "${port[0]}" "$pid" || { log "haproxy $name did not start"; cat "$d/haproxy.log" >&2; exit 1; }
}
stop_haproxies() {
    for p in "${HAPROXY_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    HAPROXY_PIDS=()
}

run_bench() {
    local label=$1 port=$2; shift 2
    local line
    log "$label: $*"
    line=$("${BENCH[@]}" "$@" --server "$label" --port "$port" --tls-port $((port + 1)) --domain "$DOMAIN" \
        --password "$PASSWORD" --concurrency "$CONC" --max-seconds "$MAX_S" | tail -n 1) || true
    [ -n "$line" ] || line="{\"scenario\":\"$1\",\"server\":\"$label\",\"error\":\"no result\"}"
    echo "$line" >&2
    echo "$line" >> "$RESULTS"
}

# ---- one node, then three: login, 1:1 throughput and latency through HAProxy ----
# HAProxy frontends: a pair of consecutive free ports (STARTTLS, direct TLS) per instance.
free_pair() {
    python3 -c '
import socket
for base in range(41000, 60000, 2):
    try:
        a = socket.socket(); a.bind(("127.0.0.1", base)); b = socket.socket(); b.bind(("127.0.0.1", base + 1))
        a.close(); b.close(); print(base); break
    except OSError:
        pass'
}
LB_PORT=$(free_pair)
HAPROXY_PIDS=()
COUNTS="1 3"; [ "$IDLE_ONLY" = 1 ] && COUNTS=3
for count in $COUNTS; do
    label="$count-node"; [ "$count" -gt 1 ] && label="$count-nodes"
    start_nodes "$count"
    start_haproxy "lb$count" "$LB_PORT" "$count" 127.0.0.1
    sleep 3   # HAProxy's first health checks
    [ "$count" = 1 ] || [ "$IDLE_ONLY" = 1 ] && run_bench "$label" "$LB_PORT" register --users "$USERS" >/dev/null
    sed -i '/"scenario": *"register"/d' "$RESULTS"
    log "$label: warm-up, $USERS logins (not measured)"
    "${BENCH[@]}" login --server "$label" --port "$LB_PORT" --tls-port $((LB_PORT + 1)) --domain "$DOMAIN" --password "$PASSWORD" \
        --users "$USERS" --sessions "$USERS" --concurrency "$CONC" --max-seconds "$MAX_S" > /dev/null 2>&1 || true
    [ "$IDLE_ONLY" = 1 ] || run_bench "$label" "$LB_PORT" login --users "$USERS" --sessions "$LOGINS" --server-pid "$NODES_PID"
    [ "$IDLE_ONLY" = 1 ] || run_bench "$label" "$LB_PORT" throughput --users "$USERS" --online "$ONLINE" --fixed-rate "$FIXED_RATE" \
        --fixed-seconds "$FIXED_S" --start-rate "$START_RATE" --step-seconds "$STEP_S"
    if [ "$count" = 3 ]; then
        # Idle sessions over several HAProxy processes and generators, all at once; memory summed over the nodes.
        stop_haproxies
        procs=$(( (IDLE_N + PER_PROCESS - 1) / PER_PROCESS ))
        per=$(( IDLE_N / procs ))
        # The generators share the logins in flight that one generator has in the other phases: with CONC each, a
        # 50,000-session run had 1,400 handshakes in flight on two cores, and most timed out or were closed by the
        # nodes' negotiation deadline before they were bound.
        idle_conc=$(( CONC / procs )); [ "$idle_conc" -ge 20 ] || idle_conc=20
        rss_before=$(python3 "$ROOT/bench/tools/rss.py" "$NODES_PID" 2>/dev/null || echo 0)
        gen_pids=()
        declare -A IDLE_PORT
        for k in $(seq 1 "$procs"); do
            IDLE_PORT[$k]=$(free_pair)
            start_haproxy "idle$k" "${IDLE_PORT[$k]}" 3 "127.0.9.$k"
        done
        sleep 3
        for k in $(seq 1 "$procs"); do
            "${BENCH[@]}" idle --server "3-nodes" --port "${IDLE_PORT[$k]}" --tls-port $((IDLE_PORT[$k] + 1)) \
                --domain "$DOMAIN" --password "$PASSWORD" --users "$USERS" --sessions "$per" --user-prefix u --resource-prefix "idle$k-" \
                --concurrency "$idle_conc" --max-seconds "$MAX_S" --idle-seconds 40 > "$WORK/idle$k.json" 2> "$WORK/idle$k.log" &
            gen_pids+=("$!"); STARTED_PIDS+=("$!")
        done
        # All generators have their sessions open (each logs "N sessions open"): let the broadcasts settle, then read.
        for _ in $(seq 1 $((MAX_S * 2))); do
            n=$( (grep -l "sessions open" "$WORK"/idle*.log 2>/dev/null || true) | wc -l)
            [ "$n" -ge "$procs" ] && break
            sleep 0.5
        done
        sleep 8
        rss_after=$(python3 "$ROOT/bench/tools/rss.py" "$NODES_PID" 2>/dev/null || echo 0)
        per_node=$(for i in 1 2 3; do ss -Htn state established "( sport = :${NODE_C2S[$i]} or sport = :${NODE_TLS[$i]} )" | wc -l; done | paste -sd/)
        for p in "${gen_pids[@]}"; do wait "$p" || true; done
        open=0; failures=0
        for k in $(seq 1 "$procs"); do
            o=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(r.get("sessions",0), r.get("failures",0))' "$WORK/idle$k.json" 2>/dev/null || echo "0 0")
            open=$((open + ${o% *})); failures=$((failures + ${o#* }))
        done
        python3 - "$RESULTS" "$IDLE_N" "$open" "$failures" "$rss_before" "$rss_after" "$procs" "$per_node" "$FD_LIMIT" <<'EOF'
import json, sys
path, requested, open_, failures, before, after, procs, per_node, fd = sys.argv[1:]
open_ = int(open_); before = int(before); after = int(after)
# What the nodes hold when their memory is read (established c2s sockets), not what the generators once opened: a
# run whose sessions were dropped before the reading would otherwise divide the memory by sessions no longer there.
held = sum(int(n) for n in per_node.split("/") if n.strip().isdigit())
line = {"scenario": "idle", "server": "3-nodes", "requested": int(requested), "sessions": held, "opened": open_, "failures": int(failures),
        "rss_before_mb": before / 1048576, "rss_after_mb": after / 1048576,
        "rss_per_session_kb": (after - before) / 1024 / held if held else None,
        "haproxy_processes": int(procs), "sessions_per_node": per_node, "fd_limit_per_process": fd}
open(path, "a").write(json.dumps(line) + "\n")
print(json.dumps(line), file=sys.stderr)
EOF
    fi
    stop_haproxies
    stop_nodes
    # The next configuration starts with an empty directory (no leases or sessions of the stopped nodes).
    redis-cli -p "$REDIS_PORT" -a "$REDIS_PASSWORD" --no-auth-warning FLUSHALL >/dev/null
done

[ -n "$OUT" ] || OUT="$ROOT/bench/results/$(date -u +%Y-%m-%d)-cluster-$SIZE.md"
mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$SIZE" "$OUT" <<'EOF'
import json, sys, platform, os
path, size, out = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
def get(server, scen, key):
    for r in rows:
        if r.get("server") == server and r.get("scenario") == scen and key in r:
            return r[key]
    return None
def fmt(v):
    if v is None: return "–"
    if isinstance(v, float): return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)
metrics = [("login", "sessions_per_s", "logins/s through HAProxy"), ("login", "login_p99_ms", "login p99 ms"),
           ("login", "server_cpu_ms_per_login", "server CPU ms per login (all nodes)"),
           ("throughput", "max_sustained_rate", "1:1 msgs/s sustained (p99<100 ms)"),
           ("throughput", "p50_ms", "p50 ms at fixed rate"), ("throughput", "p99_ms", "p99 ms at fixed rate"),
           ("throughput", "fixed_lost", "lost at fixed rate")]
lines = [f"# Cluster benchmark ({size}), {platform.node()}, {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[:3]}", "",
         "| metric | 1 node | 3 nodes | 3 / 1 |", "|---|---|---|---|"]
for scen, key, label in metrics:
    a, b = get("1-node", scen, key), get("3-nodes", scen, key)
    ratio = f"{b / a:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "–"
    lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {ratio} |")
idle = [r for r in rows if r.get("scenario") == "idle"]
if idle:
    r = idle[-1]
    lines += ["", f"Idle: {r['sessions']:,} of {r['requested']:,} sessions held over three nodes (per node, established c2s "
              f"sockets: {r['sessions_per_node']}), through {r['haproxy_processes']} HAProxy processes (one process may hold "
              f"{r['fd_limit_per_process']} descriptors here); {r['failures']} failed; resident memory of the three nodes "
              f"{r['rss_before_mb']:.0f} → {r['rss_after_mb']:.0f} MiB: **{fmt(r['rss_per_session_kb'])} KiB per idle session**."]
lines += ["", "Raw result lines:", "", "```"] + [json.dumps(r) for r in rows] + ["```"]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines[:14]))
EOF
log "results written to $OUT"
}

main "$@"
