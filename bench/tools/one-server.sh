# Sourced by bench/idle-memory.sh, bench/login-cpu.sh and bench/login-profile.sh: one xmppd measured on its own, with
# the settings of bench/compare.sh's start_xmppd (limits that would throttle the load generator lifted).
#   one_server_setup NAME   WORK=/tmp/NAME.XXXXXX (removed on exit, the server stopped by its PID first), the server
#                           and the generator built (Release) and copied into it, so a rebuild meanwhile changes
#                           nothing; B runs the generator
#   start_ours DIR [VAR=VALUE...]   one xmppd (data and certificates under DIR, log DIR/server.log, the environment
#                           given) on two free loopback ports C2S and TLS; sets PID and returns once C2S answers
#   stop                    stops that xmppd by its PID

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop() { [ -n "${PID:-}" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=; }

one_server_setup() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    PID=
    trap 'stop; rm -rf "$WORK"' EXIT
    dotnet build "$ROOT/Xmpp.Server" -c Release -v quiet -nologo >&2
    dotnet build "$ROOT/bench/Xmpp.Bench" -c Release -v quiet -nologo >&2
    cp -r "$ROOT/Xmpp.Server/bin/Release/net10.0" "$WORK/xmppd"; cp -r "$ROOT/bench/Xmpp.Bench/bin/Release/net10.0" "$WORK/bench"
    B=(dotnet "$WORK/bench/xmpp-bench.dll")
}

start_ours() {
    local dir=$1; shift
    C2S=$(port); TLS=$(port)
    env "$@" dotnet "$WORK/xmppd/xmppd.dll" run --domain bench.localhost --data-dir "$dir/data" --cert-dir "$dir/certs" \
        --c2s-port "$C2S" --c2s-tls-port "$TLS" --listen 127.0.0.1 --log-level Warning --allow-registration true \
        --Xmpp:Registration:MinSecondsBetweenPerIp=0 --Xmpp:Limits:MaxConnectionsPerIp=1000000 \
        --Xmpp:Limits:ReadBytesPerSecond=1073741824 --Xmpp:Limits:ReadBurstBytes=1073741824 --Xmpp:Limits:MaxResourcesPerAccount=1000 \
        --Xmpp:RateLimits:MessagesPerSecond=0 --Xmpp:RateLimits:PresencePerSecond=0 --Xmpp:RateLimits:IqPerSecond=0 \
        --Xmpp:Mam:DefaultMode=never --http-port 0 --Xmpp:S2s:Enabled=false --Xmpp:S2s:Port=0 --Xmpp:Proxy65:Port=0 \
        > "$dir/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$C2S") 2>/dev/null && break; sleep 0.3; done
}
