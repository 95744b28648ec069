#!/usr/bin/env bash
# Runs every fuzz target of a sanitized build for a bounded time on its seed
# corpus (tests/fuzz/README.md). scripts/test.sh runs it last.
#   BUILD_DIR=build-test WEFT_FUZZ_SECONDS=600 scripts/fuzz.sh
# A finding is written to $BUILD_DIR/fuzz-artifacts/<target>/; once fixed, add it
# to tests/fuzz/corpus/<target>/ so the replay test keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-test}
SECONDS_PER_TARGET=${WEFT_FUZZ_SECONDS:-45}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
shopt -s nullglob
fuzzers=("$BUILD_DIR"/tests/fuzz/*_fuzzer)
if [ ${#fuzzers[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets in $BUILD_DIR (build it with WEFT_SANITIZE=1 scripts/build.sh)" >&2
  exit 1
fi
status=0
for fuzzer in "${fuzzers[@]}"; do
  name=$(basename "$fuzzer" _fuzzer)
  work="$BUILD_DIR/fuzz-work/$name"
  artifacts="$BUILD_DIR/fuzz-artifacts/$name/"
  log="$BUILD_DIR/fuzz-$name.log"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  mapfile -t seeds < "$BUILD_DIR/tests/fuzz/$name.seeds"
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s"
  if "$fuzzer" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "${seeds[@]}" >"$log" 2>&1; then
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" | awk '{printf "  %s %s", $1, $2} END {print ""}'
  else
    echo "fuzz: $name FAILED; the input is in $artifacts, the log in $log:" >&2
    grep -v '^#' "$log" | tail -40 >&2
    status=1
  fi
done
exit $status
