#!/usr/bin/env bash
# Fuzzes one harness with afl-fuzz for a bounded time: fuzz/run.sh HARNESS SECONDS
# Builds fuzz/Xmpp.Fuzz, instruments copies of Xmpp.Protocol.dll and xmppd.dll with SharpFuzz in a temporary folder,
# runs afl-fuzz from fuzz/corpus/HARNESS, and prints its speed and coverage. Exits 1 when a crash or a hang was found,
# after copying the inputs to fuzz/findings/HARNESS-TIME/ (replay them with the command it prints).
# FUZZ_BUILT=DIR reuses an instrumented build made by an earlier run (run-all.sh builds once).
set -euo pipefail
cd "$(dirname "$0")"

harness=${1:?usage: fuzz/run.sh HARNESS SECONDS}
seconds=${2:?usage: fuzz/run.sh HARNESS SECONDS}
corpus="corpus/$harness"
[ "$harness" = selftest ] && corpus=selftest
[ -d "$corpus" ] || { echo "no $corpus: unknown harness" >&2; exit 2; }
command -v afl-fuzz >/dev/null || { echo "afl-fuzz is missing: apt-get install afl++" >&2; exit 2; }

work=$(mktemp -d)
trap '[ -n "${FUZZ_KEEP:-}" ] || rm -rf "$work"' EXIT

bin=${FUZZ_BUILT:-}
if [ -z "$bin" ]; then
  bin="$work/bin"
  ./build.sh "$bin" >&2
fi

# afl-fuzz checks the target for its own instrumentation (SharpFuzz's is in the .NET assemblies, not in dotnet),
# and warns about core dumps and CPU frequency settings that only matter to native targets: these switches say so.
# The CPU is shared, so afl-fuzz must not pin itself to a core.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_QUIET=1
out="$work/out"
# -t: milliseconds per input; generous because the first inputs include .NET's JIT compiling the code they reach.
# -m none: the .NET runtime reserves far more address space than it uses.
dict=()
[ -f "dict/$harness.dict" ] && dict=(-x "dict/$harness.dict")
status=0
timeout --kill-after=30 $((seconds + 120)) \
  afl-fuzz -i "$corpus" -o "$out" -V "$seconds" -t 5000 -m none "${dict[@]}" -- dotnet "$bin/Xmpp.Fuzz.dll" "$harness" \
  >"$work/afl.log" 2>&1 || status=$?

stats="$out/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  echo "fuzz $harness: afl-fuzz did not run (exit $status):" >&2
  tail -n 30 "$work/afl.log" >&2
  exit 2
fi
field() { grep "^$1 " "$stats" | sed 's/.*: //'; }
if [ "$status" -ne 0 ] || [ "$(field execs_done)" = 0 ]; then
  echo "fuzz $harness: afl-fuzz failed (exit $status, $(field execs_done) execs):" >&2
  tail -n 30 "$work/afl.log" >&2
  exit 2
fi
findings=$(find "$out/default/crashes" "$out/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "fuzz $harness: $(field execs_done) execs in $(field run_time)s ($(field execs_per_sec)/s), corpus $(field corpus_count), edges $(field edges_found) ($(field bitmap_cvg)), crashes $(field saved_crashes), hangs $(field saved_hangs)"
if [ "$findings" -gt 0 ]; then
  dest="findings/$harness-$(date -u +%Y%m%dT%H%M%S)"
  mkdir -p "$dest"
  for f in "$out"/default/crashes/id:* "$out"/default/hangs/id:*; do
    [ -f "$f" ] || continue
    kind=$(basename "$(dirname "$f")")
    name="$kind-$(basename "$f" | cut -d, -f1 | tr ':' '-')"
    cp "$f" "$dest/$name"
    # Also in the log, since a CI run's work tree is thrown away: `base64 -d` gives the input back.
    if [ "$(stat -c %s "$f")" -le 4096 ]; then echo "fuzz $harness: $name (base64): $(base64 -w0 "$f")"; fi
  done
  echo "fuzz $harness: $findings finding(s) copied to fuzz/$dest; replay: dotnet run --project fuzz/Xmpp.Fuzz -c Release -- $harness fuzz/$dest/*"
  exit 1
fi
