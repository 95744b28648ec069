#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with CTest.
#   scripts/test.sh                 all tests
#   scripts/test.sh -L unit         only tests that need no privileges
# With CI=true a kernel test that cannot run (no root, no BPF) fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# Kernel tests share the machine's cgroups and bpffs: run them one at a time.
exec ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 "$@"
