#!/usr/bin/env bash
# Configures and builds Weft into ${BUILD_DIR:-build}. Used by test.sh and demo.sh.
#   WEFT_SANITIZE=1: clang with AddressSanitizer + UndefinedBehaviorSanitizer and
#   libFuzzer's instrumentation, plus the fuzz targets (what scripts/test.sh builds,
#   into its own directory; the demo and the benchmarks use the plain build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
if [ "${WEFT_SANITIZE:-0}" = 1 ]; then
  export CC=${SAN_CC:-clang} CXX=${SAN_CXX:-clang++}
  args+=(-DWEFT_SANITIZE=ON -DWEFT_FUZZ=ON
         -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only"
         -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only")
fi
cmake -S . -B "$BUILD_DIR" -G Ninja "${args[@]}" >/dev/null
ninja -C "$BUILD_DIR" -j "$JOBS"
