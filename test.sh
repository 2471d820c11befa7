#!/usr/bin/env bash
# Runs every test: unit, in-process protocol tests over real sockets, and interop with real clients.
# Installs what the tests need (Debian packages of the real XMPP clients, Chromium for the web pages, afl++ for fuzzing,
# and PostgreSQL, Redis, HAProxy, Prosody and ejabberd, whose binaries the tests use to start private servers of their own: never the
# system services) when it is missing. Then fuzzes each harness in fuzz/ for FUZZ_SECONDS (default 20, 0 to skip); a crash or hang found
# fails the run.
set -euo pipefail
cd "$(dirname "$0")"

packages=(python3-slixmpp python3-aiohttp python3-nbxmpp go-sendxmpp nagios-check-xmppng openssl systemd chromium afl++ postgresql redis-server haproxy pebble prosody ejabberd iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing test dependencies: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Prosody, ejabberd, Redis and HAProxy come with system services that a package install may start; the tests run
  # their own instances on free loopback ports instead (as bench/compare.sh does).
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for s in prosody ejabberd redis-server haproxy; do
      case " ${missing[*]} " in *" $s "*) $sudo systemctl disable --now "$s" >/dev/null 2>&1 || true ;; esac
    done
  fi
fi

# xmpp.js (the browser library) for its interop tests, pinned by its lockfile; installed again when the lockfile is
# newer than the installed tree (npm writes node_modules/.package-lock.json), so a kept work tree does not test an old one.
xmppjs=Xmpp.Tests/Interop/xmppjs
if [ ! -f $xmppjs/node_modules/.package-lock.json ] || [ $xmppjs/package-lock.json -nt $xmppjs/node_modules/.package-lock.json ]; then
  echo "installing xmpp.js (npm ci)"
  (cd $xmppjs && npm ci --no-audit --no-fund >/dev/null)
fi

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
status=0
dotnet test XmppServer.sln -c Release --logger "trx;LogFileName=results.trx" --logger "console;verbosity=minimal" \
  --results-directory "$results" "$@" || status=$?

# The protocol tests again with every server they start on PostgreSQL (XMPP_TEST_STORAGE=postgresql, a private
# instance; issue 16: the protocol tests pass on both stores). The Modules folder only, to keep CI within its time:
# it took 6.5 and 11.6 min in two runs on the 2 shared cores at load 30-50 (2026-12-07), which an unshared CI runner
# should beat. Server, and Scenarios with Interop, took 14 min
# each there (515 and 87 tests), too long for CI: they are run by hand with the same variable and a --filter (the
# Scenarios folder starts real xmppd processes, which the variable does not change; CrashRecoveryTests and the
# Postgres* scenarios choose PostgreSQL themselves in the first pass).
# PG_PASS=0 skips it; it is skipped too when arguments narrow the first pass.
if [ "${PG_PASS:-1}" = 1 ] && [ $# -eq 0 ]; then
  XMPP_TEST_STORAGE=postgresql dotnet test Xmpp.Tests -c Release --no-build --logger "trx;LogFileName=postgresql.trx" \
    --logger "console;verbosity=minimal" --results-directory "$results/postgresql" \
    --filter "FullyQualifiedName~Xmpp.Tests.Modules" || status=$?
fi

# Fuzzing after the tests (fuzz/README.md): about 3 minutes on 2 cores at the default bound.
fuzz_seconds=${FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" -gt 0 ]; then
  fuzz/run-all.sh "$fuzz_seconds" || { fuzz_status=$?; echo "fuzzing failed (exit $fuzz_status)"; [ $status -ne 0 ] || status=$fuzz_status; }
fi

# One plain summary line for CI, read from the test results file.
for trx in $(find "$results" -name results.trx | head -n 1) $(find "$results" -name postgresql.trx | head -n 1); do
  passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -n 1 | tr -dc 0-9)
  failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -n 1 | tr -dc 0-9)
  case $trx in */postgresql.trx) label=" (protocol tests on PostgreSQL)" ;; *) label="" ;; esac
  echo "${passed:-0} passed, ${failed:-0} failed$label"
done
exit $status
