#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with CTest, then every
# fuzz target for a bounded time (scripts/fuzz.sh).
#   scripts/test.sh                 all tests, then the fuzzers
#   scripts/test.sh -L unit         only tests that need no privileges (no fuzzing)
# The tests run on a build with AddressSanitizer + UndefinedBehaviorSanitizer (clang,
# ${BUILD_DIR:-build-test}): unit, kernel and lab tests alike, so the agent and the
# controller are checked under real traffic too. WEFT_SANITIZE=0 tests a plain build.
# With CI=true a kernel test that cannot run (no root, no BPF) fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export BUILD_DIR=${BUILD_DIR:-build-test}
export WEFT_SANITIZE=${WEFT_SANITIZE:-1}
scripts/build.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Kernel tests share the machine's cgroups and bpffs: they are RUN_SERIAL.
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 "$@"
if [ $# -eq 0 ] && [ "$WEFT_SANITIZE" = 1 ]; then exec scripts/fuzz.sh; fi
