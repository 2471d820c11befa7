#!/usr/bin/env bash
# Fuzzes every harness for SECONDS_EACH seconds, one after the other: fuzz/run-all.sh SECONDS_EACH
# Builds and instruments once. Exits 1 when any harness found a crash or a hang (fuzz/run.sh prints where they went),
# 2 when a fuzzer could not run.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run-all.sh SECONDS_EACH}
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT
./build.sh "$built" >/dev/null || { echo "fuzz: build or instrumentation failed" >&2; exit 2; }
worst=0
for dir in corpus/*/; do
  harness=$(basename "$dir")
  FUZZ_BUILT="$built" ./run.sh "$harness" "$seconds"
  status=$?
  [ "$status" -gt "$worst" ] && worst=$status
done
echo "fuzz: $(ls -d corpus/*/ | wc -l) harnesses, ${seconds} s each, ${SECONDS} s in all including the build"
exit $worst
