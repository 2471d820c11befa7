#!/usr/bin/env bash
# Runs the load generator (bench/Xmpp.Bench) against our server, Prosody and ejabberd, one after the other, on
# loopback, with the same domain, accounts and TLS certificate, and prints one table. See bench/README.md.
#
#   bench/compare.sh --quick            tiny numbers, a few minutes in all
#   bench/compare.sh                    medium: 1,000 accounts and logins, 2,000 idle sessions, 500 users exchanging messages
#   bench/compare.sh --full             the issue's numbers: 10,000 and 50,000 idle sessions, 1,000 users, 100,000 offline messages
#   options: --servers "ours prosody ejabberd"   --scenarios "login idle" (a subset; accounts are always registered)
#            scenario federation: each server as a pair of instances with two domains federating over loopback (s2s on
#                     their own ports; ours through Xmpp:S2s:Peers, Prosody and ejabberd through SRV records of a private
#                     dnsmasq that only they see, in a mount namespace whose /etc/resolv.conf names it; self-signed
#                     certificates, so the links authenticate with dialback over TLS); users of the first instance
#                     send to users of the second, fixed rate then a throughput search as in throughput
#            --keep (leave the temp dir)   --out FILE (results markdown)
#            --storage postgresql   also our server on a private PostgreSQL (initdb in the temp dir, its own port): the
#                     offline spool, 1:1 throughput with archiving off and on (clients with XEP-0198 acks), and the
#                     newest-50 MAM page of one user with ARCHIVED messages (default 1,000,000; seeded through the
#                     storage API before the servers start), each beside the embedded store's figure
#            --archived N   size of that archive
#            --cluster      instead of the comparison: one cluster node against three (PostgreSQL, Redis, HAProxy), login
#                     rate, 1:1 throughput and latency, and idle sessions spread over the three nodes (bench/cluster.sh)
set -euo pipefail

main() {
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=medium
SERVERS="ours prosody ejabberd"
SCENARIOS="register login idle throughput receipts offline federation"
KEEP=0
OUT=""
STORAGE=embedded
ARCHIVED=1000000
CLUSTER=0
while [ $# -gt 0 ]; do
    case $1 in
        --quick) SIZE=quick; shift ;;
        --medium) SIZE=medium; shift ;;
        --full) SIZE=full; shift ;;
        --servers) SERVERS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --storage) STORAGE=$2; shift 2 ;;
        --archived) ARCHIVED=$2; shift 2 ;;
        --cluster) CLUSTER=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$CLUSTER" = 1 ]; then
    exec "$ROOT/bench/cluster.sh" "--$SIZE" ${OUT:+--out "$OUT"} $([ "$KEEP" = 1 ] && echo --keep)
fi

DOMAIN=bench.localhost
PASSWORD=bench-password
case $SIZE in
    quick)  USERS=200;   LOGINS=300;   IDLE="500";         ONLINE=50;   FIXED_RATE=200; FIXED_S=3;  STEP_S=2; START_RATE=500
            MESSAGES=2000;   RECEIVERS=40;   SENDERS=10;  MAX_S=120; CONC=50 ;;
    medium) USERS=1000;  LOGINS=1000;  IDLE="2000";        ONLINE=500;  FIXED_RATE=500; FIXED_S=10; STEP_S=3; START_RATE=500
            MESSAGES=20000;  RECEIVERS=200;  SENDERS=50;  MAX_S=300; CONC=100 ;;
    full)   USERS=10000; LOGINS=10000; IDLE="10000 50000"; ONLINE=1000; FIXED_RATE=1000; FIXED_S=10; STEP_S=5; START_RATE=1000
            MESSAGES=100000; RECEIVERS=1000; SENDERS=100; MAX_S=900; CONC=200 ;;
esac

case $STORAGE in
    embedded) ;;
    postgresql) case " $SERVERS " in *" ours "*) SERVERS="$SERVERS ours-pg ours-arch ours-pg-arch" ;; esac ;;
    *) echo "--storage is embedded or postgresql" >&2; exit 2 ;;
esac

WORK=$(mktemp -d /tmp/xmpp-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
: > "$RESULTS"
STARTED_PIDS=()
cleanup() {
    # Stop only what this script started, by PID.
    for pid in "${STARTED_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    # postgres itself (not the runuser above it) gets a fast shutdown, by the PID it wrote, before its folder goes.
    if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
        local postmaster; postmaster=$(head -n 1 "$pgdir/data/postmaster.pid")
        kill -INT "$postmaster" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$postmaster" 2>/dev/null || break; sleep 0.5; done
    fi
    [ "$KEEP" = 1 ] || rm -rf "$WORK" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# Enough file descriptors for tens of thousands of sockets on both ends. Raising the hard limit needs
# CAP_SYS_RESOURCE (root outside a restricted container); where that fails, idle runs that cannot fit are skipped
# with a result line saying so instead of failing half-way.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)

# ---- anchors from Debian packages, never left running as services ----
install_anchors() {
    local need=()
    case " $SERVERS " in *" prosody "*) command -v prosody >/dev/null || need+=(prosody) ;; esac
    case " $SERVERS " in *" ejabberd "*) [ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd) ;; esac
    # The federation pairs of the anchors find each other through a private DNS server (dnsmasq's binary only).
    case " $SCENARIOS " in *" federation "*)
        case " $SERVERS " in *" prosody "*|*" ejabberd "*) command -v dnsmasq >/dev/null || need+=(dnsmasq-base) ;; esac ;;
    esac
    [ ${#need[@]} -eq 0 ] && return
    log "installing ${need[*]} from Debian packages"
    local SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    # The packages come with system services; this benchmark starts its own instances instead.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        for s in "${need[@]}"; do $SUDO systemctl disable --now "$s" >&2 2>/dev/null || true; done
    fi
}
install_anchors

# ---- build ----
log "building xmppd (published Release) and the load generator"
dotnet publish "$ROOT/Xmpp.Server" -c Release -o "$WORK/xmppd" -v quiet -nologo >&2
dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -o "$WORK/bench" -v quiet -nologo >&2
BENCH=(dotnet "$WORK/bench/xmpp-bench.dll")
if [ "$STORAGE" = postgresql ]; then
    dotnet build "$ROOT/bench/Xmpp.MicroBench" -c Release -o "$WORK/micro" -v quiet -nologo >&2
fi

# ---- one self-signed certificate for all three (and one per federation domain) ----
make_cert() {
    local domain=$1
    mkdir -p "$WORK/certs/$domain"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=$domain" \
        -addext "subjectAltName=DNS:$domain" -keyout "$WORK/certs/$domain/privkey.pem" -out "$WORK/certs/$domain/fullchain.pem" 2>/dev/null
}
make_cert "$DOMAIN"
CERT=$WORK/certs/$DOMAIN/fullchain.pem
KEY=$WORK/certs/$DOMAIN/privkey.pem
cat "$CERT" "$KEY" > "$WORK/certs/combined.pem"

wait_port() {
    local port=$1 pid=$2
    for _ in $(seq 1 120); do
        if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    return 1
}

# ---- a private PostgreSQL for --storage postgresql: Debian's binaries, initdb in the temp dir, fsync on ----
PG_PORT=45432
pgdir=""
start_postgres() {
    local bin as=()
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] || { log "PostgreSQL binaries not found (apt-get install postgresql)"; exit 1; }
    # A folder of its own, not inside $WORK (owner-only, it holds the certificate's key): as root PostgreSQL must run
    # as another user (it refuses root), the unprivileged one the tests use, which needs to reach its folder.
    pgdir=$(mktemp -d /tmp/xmpp-bench-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        id -u xmpptest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin xmpptest
        chown xmpptest "$pgdir"; as=(runuser -u xmpptest --)
    fi
    "${as[@]}" "$bin/initdb" -D "$pgdir/data" -U postgres --auth trust -E UTF8 --no-locale --no-sync > "$pgdir/initdb.log" 2>&1 \
        || { log "initdb failed"; cat "$pgdir/initdb.log" >&2; exit 1; }
    ("${as[@]}" "$bin/postgres" -D "$pgdir/data" -p "$PG_PORT" -k "$pgdir" -c listen_addresses=127.0.0.1 -c fsync=on \
        -c shared_buffers=256MB -c max_connections=200 > "$pgdir/postgres.log" 2>&1) &
    PG_PID=$!
    STARTED_PIDS+=("$PG_PID")
    wait_port "$PG_PORT" "$PG_PID" || { log "PostgreSQL did not start"; tail -n 20 "$pgdir/postgres.log" >&2; exit 1; }
    sleep 1
    for db in xmpp_pg xmpp_pg_arch; do
        "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $db" postgres >&2
    done
    log "PostgreSQL started, PID $PG_PID, port $PG_PORT"
}
pg_connection() { echo "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$1;Maximum Pool Size=50"; }

# ---- each server: start on loopback with its own config, data dir and ports, as the current user ----
# Stanza rates off: the throughput search drives each user far past what a person sends (docs/security.md).
# Archiving off: the anchors run without mod_mam, so all of them do the same work per message; federation off (its
# port would be shared by the instances). What archiving costs
# us is measured on its own (bench/results/2026-12-02-archiving-cost.md) and, with --storage postgresql, by the
# ours-arch and ours-pg-arch variants.
start_xmppd() {
    local name=$1 port=$2 mode=$3; shift 3
    local d=$WORK/$name; mkdir -p "$d"
    (cd "$d" && exec "$WORK/xmppd/xmppd" run --domain "${XD_DOMAIN:-$DOMAIN}" --data-dir "$d/data" --cert-dir "$WORK/certs" \
        --c2s-port "$port" --c2s-tls-port $((port + 1)) --listen 127.0.0.1 --log-level Warning --allow-registration true \
        --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
        --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 \
        --Xmpp:Limits:MaxResourcesPerAccount=1000 --Xmpp:Offline:MaxMessagesPerAccount=1000000 \
        --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
        --Xmpp:Mam:DefaultMode="$mode" --http-port 0 --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 "$@" \
        > "$d/server.log" 2>&1) &
    SERVER_PID=$!; PORT=$port; TLS_PORT=$((port + 1))
}
start_ours() { start_xmppd ours 15222 never; }
start_ours-pg() { start_xmppd ours-pg 16222 never --storage postgresql "--Xmpp:Storage:ConnectionString=$(pg_connection xmpp_pg)"; }
start_ours-arch() { start_xmppd ours-arch 17222 always; }
start_ours-pg-arch() { start_xmppd ours-pg-arch 18222 always --storage postgresql "--Xmpp:Storage:ConnectionString=$(pg_connection xmpp_pg_arch)"; }

start_prosody() {
    local d=$WORK/prosody; mkdir -p "$d/data"
    cat > "$d/prosody.cfg.lua" <<EOF
-- Generated by bench/compare.sh: loopback only, no s2s, registration open, limits off.
run_as_root = true
daemonize = false
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { { levels = { min = "warn" }, to = "file", filename = "$d/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { 25222 }
c2s_direct_tls_ports = { 25223 }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "register", "offline", "posix" }
modules_disabled = { "s2s" }
c2s_require_encryption = true
allow_registration = true
-- Same PBKDF2 work per login as the other two servers (their default is 4096).
default_iteration_count = 4096
c2s_stanza_size_limit = 262144
ssl = { certificate = "$CERT"; key = "$KEY" }
VirtualHost "$DOMAIN"
    ssl = { certificate = "$CERT"; key = "$KEY" }
EOF
    (cd "$d" && exec prosody -F --config "$d/prosody.cfg.lua" > "$d/stdout.log" 2>&1) &
    SERVER_PID=$!; PORT=25222; TLS_PORT=25223
}

start_ejabberd() {
    local d=$WORK/ejabberd; mkdir -p "$d/spool"
    cat > "$d/ejabberd.yml" <<EOF
# Generated by bench/compare.sh: loopback only, no s2s, registration open, shapers off.
hosts: ["$DOMAIN"]
loglevel: warning
certfiles: ["$WORK/certs/combined.pem"]
define_macro: {}
listen:
  - {port: 35222, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: true, shaper: none, max_stanza_size: 262144, access: c2s}
  - {port: 35223, ip: "127.0.0.1", module: ejabberd_c2s, tls: true, shaper: none, max_stanza_size: 262144, access: c2s}
auth_method: internal
auth_password_format: scram
registration_timeout: infinity
s2s_access: none
acl:
  local: {user_regexp: ""}
access_rules:
  c2s: {allow: all}
  register: {allow: all}
shaper_rules:
  max_user_sessions: 100000
  max_user_offline_messages: 10000000
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_offline: {access_max_user_messages: max_user_offline_messages}
  mod_register: {access: register, ip_access: all, password_strength: 0, welcome_message: {subject: "", body: ""}}
EOF
    # Started without ejabberdctl, which would switch to the ejabberd system user; no Erlang distribution, so no epmd.
    (cd "$d" && EJABBERD_CONFIG_PATH="$d/ejabberd.yml" EJABBERD_LOG_PATH="$d/ejabberd.log" ERL_LIBS=/usr/lib/x86_64-linux-gnu \
        ERL_CRASH_DUMP="$d/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 \
        exec erl +P 2000000 +Q 1048576 -noinput -mnesia dir "\"$d/spool\"" -s ejabberd > "$d/stdout.log" 2>&1) &
    SERVER_PID=$!; PORT=35222; TLS_PORT=35223
}

run_bench() {
    local server=$1; shift
    local line
    log "$server: $*"
    local extra=()
    # The archiving variants' clients ask for an XEP-0198 ack after every write, which waits for the archive's commit.
    case $server in *-arch) extra=(--sm) ;; esac
    line=$("${BENCH[@]}" "$@" --server "$server" --port "${PORTS[$server]}" --tls-port "${TLS_PORTS[$server]}" --domain "$DOMAIN" \
        --password "$PASSWORD" --concurrency "$CONC" --max-seconds "$MAX_S" "${extra[@]}" | tail -n 1) || true
    [ -n "$line" ] || line="{\"scenario\":\"$1\",\"server\":\"$server\",\"error\":\"no result\"}"
    echo "$line" >&2
    echo "$line" >> "$RESULTS"
}

# All servers run side by side, each idle while another is measured, and every scenario runs against each server
# in turn: load from other processes on the machine then hits all three alike instead of whichever ran last.
declare -A PORTS TLS_PORTS PIDS
LIVE=()
if [ "$STORAGE" = postgresql ]; then
    start_postgres
    # User 0's archive, seeded before the servers start (the embedded data folder belongs to its server once it runs).
    for target in "embedded $WORK/ours/data" "postgresql $(pg_connection xmpp_pg)"; do
        # shellcheck disable=SC2086
        set -- $target
        log "seeding $ARCHIVED archived messages of u0 ($1)"
        dotnet "$WORK/micro/Xmpp.MicroBench.dll" archive-seed "$1" "${target#* }" "u0@$DOMAIN" "$ARCHIVED" >&2
    done
    set --
fi
# Only the federation scenario asked for: the single servers are not started (the pairs below are).
main_wanted() {
    [ "$STORAGE" = postgresql ] && return 0
    local x; for x in register login idle throughput receipts offline; do wants "$x" && return 0; done
    return 1
}
wants() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for server in $SERVERS; do
    main_wanted || break
    "start_$server"
    STARTED_PIDS+=("$SERVER_PID")
    if wait_port "$PORT" "$SERVER_PID"; then
        PORTS[$server]=$PORT; TLS_PORTS[$server]=$TLS_PORT; PIDS[$server]=$SERVER_PID; LIVE+=("$server")
        log "$server started, PID $SERVER_PID"
    else
        log "$server did not start; see $WORK/$server"; tail -n 20 "$WORK/$server"/*.log >&2 || true
        echo "{\"scenario\":\"start\",\"server\":\"$server\",\"error\":\"did not start\"}" >> "$RESULTS"
    fi
done
sleep 1


# Accounts are needed by every scenario, so registration always runs (its rate is only reported when asked for).
for s in "${LIVE[@]}"; do run_bench "$s" register --users "$USERS"; done
wants register || sed -i '/"scenario": *"register"/d' "$RESULTS"
# Warm-up, not measured: one login per account on every server, so the login figures are a running server's (our
# JIT has compiled the login path; every server has its caches and pools filled) rather than a cold start's.
# The storage variants are measured on the storage scenarios only.
CORE=(); for s in "${LIVE[@]}"; do case $s in ours-*) ;; *) CORE+=("$s") ;; esac; done
for s in "${CORE[@]}"; do
    log "$s: warm-up, $USERS logins (not measured)"
    "${BENCH[@]}" login --server "$s" --port "${PORTS[$s]}" --tls-port "${TLS_PORTS[$s]}" --domain "$DOMAIN" --password "$PASSWORD" \
        --users "$USERS" --sessions "$USERS" --concurrency "$CONC" --max-seconds "$MAX_S" > /dev/null 2>&1 || true
done
if wants login; then
    for s in "${CORE[@]}"; do run_bench "$s" login --users "$USERS" --sessions "$LOGINS" --server-pid "${PIDS[$s]}"; done
fi
if wants idle; then
    for n in $IDLE; do
        # The server holds n sockets and the generator n more, each in one process: both need n + headroom.
        if [ "$FD_LIMIT" != unlimited ] && [ $((n + 1024)) -gt "$FD_LIMIT" ]; then
            # Issue 18 asks for the per-session figure at the most the limit allows as well: that size, in thousands,
            # unless that size is in the list already.
            fit=$(( (FD_LIMIT - 1024) / 1000 * 1000 ))
            log "idle $n does not fit the file-descriptor limit $FD_LIMIT (ulimit -Hn; see bench/README.md): $fit instead"
            for s in "${LIVE[@]}"; do
                echo "{\"scenario\":\"idle\",\"server\":\"$s\",\"requested\":$n,\"error\":\"skipped: file-descriptor limit $FD_LIMIT is below $n sessions + 1024; measured at $fit instead\"}" >> "$RESULTS"
            done
            case " $IDLE " in *" $fit "*) continue ;; esac
            [ "$fit" -gt 0 ] || continue
            n=$fit
        fi
        for s in "${CORE[@]}"; do run_bench "$s" idle --users "$USERS" --sessions "$n" --server-pid "${PIDS[$s]}"; done
    done
fi
for scenario in throughput receipts; do
    wants "$scenario" || continue
    for s in "${LIVE[@]}"; do
        [ "$scenario" = receipts ] && case $s in ours-*) continue ;; esac
        run_bench "$s" "$scenario" --users "$USERS" --online "$ONLINE" --fixed-rate "$FIXED_RATE" --fixed-seconds "$FIXED_S" \
            --start-rate "$START_RATE" --step-seconds "$STEP_S"
    done
done
if wants offline; then
    for s in "${LIVE[@]}"; do
        case $s in ours-arch|ours-pg-arch) continue ;; esac
        run_bench "$s" offline --users "$USERS" --messages "$MESSAGES" --receivers "$RECEIVERS" --senders "$SENDERS"
    done
fi
if [ "$STORAGE" = postgresql ]; then
    for s in ours ours-pg; do
        if [ -n "${PIDS[$s]:-}" ]; then run_bench "$s" mam-page --users "$USERS" --queries 200; fi
    done
fi

for s in "${LIVE[@]}"; do kill "${PIDS[$s]}" 2>/dev/null || true; done
for s in "${LIVE[@]}"; do
    for _ in $(seq 1 40); do kill -0 "${PIDS[$s]}" 2>/dev/null || break; sleep 0.5; done
    kill -9 "${PIDS[$s]}" 2>/dev/null || true
done

# ---- federation: each server as two instances with two domains, messages from users of one to users of the other ----
# Ports: c2s P, direct TLS P+1, s2s P+27 for the first instance; P+10, P+11, P+37 for the second. Ours finds its peer
# through the static Xmpp:S2s:Peers map; Prosody and ejabberd have no static route option (Prosody 0.12, ejabberd
# 23.01), so they resolve the SRV records _xmpp-server._tcp.DOMAIN of a private dnsmasq on 127.54.77.1:53, named in a
# resolv.conf bind-mounted over /etc/resolv.conf in a mount namespace only they see (unshare). The certificates are
# self-signed, so every link authenticates with Server Dialback (XEP-0220) over TLS. Limits off as for c2s above.
FED_DNS=127.54.77.1
fed_domain() { echo "$1-$2.bench.test"; }
fed_base() { case $1 in ours) echo 15242 ;; prosody) echo 25242 ;; ejabberd) echo 35242 ;; esac; }
start_dnsmasq() {
    local args=() s side base
    for s in "${FED_PAIRS[@]}"; do
        case $s in ours) continue ;; esac
        base=$(fed_base "$s")
        for side in a b; do
            local off=27; [ "$side" = b ] && off=37
            args+=("--srv-host=_xmpp-server._tcp.$(fed_domain "$s" "$side"),s2s.bench.test,$((base + off))")
        done
    done
    [ ${#args[@]} -gt 0 ] || return 0
    printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$FED_DNS" > "$WORK/resolv.conf"
    dnsmasq --keep-in-foreground --port=53 --listen-address="$FED_DNS" --bind-interfaces --no-resolv --no-hosts \
        --pid-file= --user=root --local=/bench.test/ --host-record=s2s.bench.test,127.0.0.1 "${args[@]}" \
        --log-facility="$WORK/dnsmasq.log" &
    STARTED_PIDS+=("$!"); DNS_PID=$!
    sleep 0.5
    kill -0 "$DNS_PID" 2>/dev/null || { log "dnsmasq did not start"; cat "$WORK/dnsmasq.log" >&2; return 1; }
    log "dnsmasq started, PID $DNS_PID, $FED_DNS:53"
}
# Prosody and ejabberd below run as: unshare --mount (a private mount namespace) sh -c 'mount --bind RESOLV
# /etc/resolv.conf; exec SERVER': unshare and sh exec into the server, so $! is the server's own PID.

start_fed_ours() {
    local side=$1 base peer; base=$(fed_base ours)
    local port=$base s2s=$((base + 27)) peer_s2s=$((base + 37)) other=b
    [ "$side" = b ] && { port=$((base + 10)); s2s=$((base + 37)); peer_s2s=$((base + 27)); other=a; }
    peer=$(fed_domain ours "$other")
    XD_DOMAIN=$(fed_domain ours "$side") start_xmppd "ours-fed-$side" "$port" never \
        --Xmpp:S2s:Enabled=true --Xmpp:S2s:Port="$s2s" "--Xmpp:S2s:Peers:$peer=127.0.0.1:$peer_s2s" \
        --Xmpp:S2s:ReadBytesPerSecond=1073741824 --Xmpp:S2s:ReadBurstBytes=1073741824 --Xmpp:S2s:StanzasPerSecondPerDomain=0
}
start_fed_prosody() {
    local side=$1 base; base=$(fed_base prosody)
    local port=$base s2s=$((base + 27)); [ "$side" = b ] && { port=$((base + 10)); s2s=$((base + 37)); }
    local domain; domain=$(fed_domain prosody "$side")
    local d=$WORK/prosody-fed-$side; mkdir -p "$d/data" "$d/certs"  # certs: where Prosody looks for more; none here
    local cert=$WORK/certs/$domain/fullchain.pem key=$WORK/certs/$domain/privkey.pem
    cat > "$d/prosody.cfg.lua" <<EOF
-- Generated by bench/compare.sh (federation): loopback only, registration open, no limits module; dialback over TLS.
run_as_root = true
daemonize = false
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { { levels = { min = "warn" }, to = "file", filename = "$d/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $port }
c2s_direct_tls_ports = { $((port + 1)) }
s2s_ports = { $s2s }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "register", "offline", "posix" }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
allow_registration = true
min_seconds_between_registrations = 0
default_iteration_count = 4096
c2s_stanza_size_limit = 262144
ssl = { certificate = "$cert"; key = "$key" }
VirtualHost "$domain"
    ssl = { certificate = "$cert"; key = "$key" }
EOF
    (cd "$d" && exec unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' \
        "$WORK/resolv.conf" prosody -F --config "$d/prosody.cfg.lua" > "$d/stdout.log" 2>&1) &
    SERVER_PID=$!; PORT=$port; TLS_PORT=$((port + 1))
}
start_fed_ejabberd() {
    local side=$1 base; base=$(fed_base ejabberd)
    local port=$base s2s=$((base + 27)); [ "$side" = b ] && { port=$((base + 10)); s2s=$((base + 37)); }
    local domain; domain=$(fed_domain ejabberd "$side")
    local d=$WORK/ejabberd-fed-$side; mkdir -p "$d/spool"
    cat "$WORK/certs/$domain/fullchain.pem" "$WORK/certs/$domain/privkey.pem" > "$d/combined.pem"
    cat > "$d/ejabberd.yml" <<EOF
# Generated by bench/compare.sh (federation): loopback only, registration open, shapers off; dialback over TLS.
hosts: ["$domain"]
loglevel: warning
certfiles: ["$d/combined.pem"]
define_macro: {}
listen:
  - {port: $port, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: true, shaper: none, max_stanza_size: 262144, access: c2s}
  - {port: $((port + 1)), ip: "127.0.0.1", module: ejabberd_c2s, tls: true, shaper: none, max_stanza_size: 262144, access: c2s}
  - {port: $s2s, ip: "127.0.0.1", module: ejabberd_s2s_in, shaper: none, max_stanza_size: 262144}
s2s_use_starttls: required
s2s_access: s2s
auth_method: internal
auth_password_format: scram
registration_timeout: infinity
acl:
  local: {user_regexp: ""}
access_rules:
  c2s: {allow: all}
  s2s: {allow: all}
  register: {allow: all}
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
  mod_register: {access: register, ip_access: all, password_strength: 0, welcome_message: {subject: "", body: ""}}
EOF
    (cd "$d" && EJABBERD_CONFIG_PATH="$d/ejabberd.yml" EJABBERD_LOG_PATH="$d/ejabberd.log" ERL_LIBS=/usr/lib/x86_64-linux-gnu \
        ERL_CRASH_DUMP="$d/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 \
        exec unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$WORK/resolv.conf" \
        erl +P 2000000 +Q 1048576 -noinput -mnesia dir "\"$d/spool\"" -s ejabberd > "$d/stdout.log" 2>&1) &
    SERVER_PID=$!; PORT=$port; TLS_PORT=$((port + 1))
}

if wants federation; then
    FED_PAIRS=(); for s in $SERVERS; do case $s in ours|prosody|ejabberd) FED_PAIRS+=("$s") ;; esac; done
    LOAD_FED_START=$(cut -d' ' -f1-3 /proc/loadavg)
    start_dnsmasq || FED_PAIRS=(ours)
    declare -A FED_LIVE
    for s in "${FED_PAIRS[@]}"; do
        ok=1
        for side in a b; do
            make_cert "$(fed_domain "$s" "$side")"
            "start_fed_$s" "$side"
            STARTED_PIDS+=("$SERVER_PID")
            if wait_port "$PORT" "$SERVER_PID"; then
                PORTS[$s-$side]=$PORT; TLS_PORTS[$s-$side]=$TLS_PORT; PIDS[$s-$side]=$SERVER_PID
                log "$s-$side ($(fed_domain "$s" "$side")) started, PID $SERVER_PID"
            else
                ok=0; log "$s-$side did not start"; tail -n 20 "$WORK/$s-fed-$side"/*.log >&2 || true
            fi
        done
        if [ $ok = 1 ]; then FED_LIVE[$s]=1
        else echo "{\"scenario\":\"federation\",\"server\":\"$s\",\"error\":\"a pair instance did not start\"}" >> "$RESULTS"; fi
    done
    sleep 1
    FED_ONLINE=$(( ONLINE < 100 ? ONLINE : 100 ))
    for s in "${FED_PAIRS[@]}"; do
        [ -n "${FED_LIVE[$s]:-}" ] || continue
        for side in a b; do
            "${BENCH[@]}" register --server "$s-$side" --port "${PORTS[$s-$side]}" --tls-port "${TLS_PORTS[$s-$side]}" \
                --domain "$(fed_domain "$s" "$side")" --password "$PASSWORD" --users "$FED_ONLINE" --concurrency "$CONC" \
                --max-seconds "$MAX_S" > /dev/null 2>&1 || true
        done
    done
    for s in "${FED_PAIRS[@]}"; do
        [ -n "${FED_LIVE[$s]:-}" ] || continue
        log "$s: federation $(fed_domain "$s" a) -> $(fed_domain "$s" b)"
        line=$("${BENCH[@]}" federation --server "$s" --port "${PORTS[$s-a]}" --tls-port "${TLS_PORTS[$s-a]}" \
            --domain "$(fed_domain "$s" a)" --peer-port "${PORTS[$s-b]}" --peer-tls-port "${TLS_PORTS[$s-b]}" \
            --peer-domain "$(fed_domain "$s" b)" --password "$PASSWORD" --users "$FED_ONLINE" --online "$FED_ONLINE" \
            --fixed-rate "$FIXED_RATE" --fixed-seconds "$FIXED_S" --start-rate "$START_RATE" --step-seconds "$STEP_S" \
            --concurrency "$CONC" --max-seconds "$MAX_S" | tail -n 1) || true
        [ -n "$line" ] || line="{\"scenario\":\"federation\",\"server\":\"$s\",\"error\":\"no result\"}"
        echo "$line" >&2
        echo "$line" >> "$RESULTS"
    done
    echo "{\"scenario\":\"loadavg\",\"server\":\"-\",\"federation_start\":\"$LOAD_FED_START\",\"federation_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$RESULTS"
    for s in "${FED_PAIRS[@]}"; do
        for side in a b; do [ -n "${PIDS[$s-$side]:-}" ] && kill "${PIDS[$s-$side]}" 2>/dev/null || true; done
    done
    for s in "${FED_PAIRS[@]}"; do
        for side in a b; do
            pid=${PIDS[$s-$side]:-}; [ -n "$pid" ] || continue
            for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null || true
        done
    done
    [ -n "${DNS_PID:-}" ] && kill "$DNS_PID" 2>/dev/null || true
fi

[ -n "$OUT" ] || OUT="$ROOT/bench/results/$(date -u +%Y-%m-%d)-$SIZE.md"
mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/bench/report.py" "$RESULTS" --size "$SIZE$([ "$STORAGE" = postgresql ] && echo ", storage embedded and postgresql, $ARCHIVED archived")" --markdown "$OUT"
log "results written to $OUT"
}

main "$@"
