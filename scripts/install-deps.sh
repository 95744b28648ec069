#!/usr/bin/env bash
# Installs what Weft needs to build, test, run the demo and the benchmarks.
# Debian 12 packages only; idempotent: installs only what is missing.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libclang-rt-14-dev libfuzzer-14-dev python3 libbpf-dev bpftool libelf-dev zlib1g-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev libsqlite3-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  iproute2 iptables ipset curl wrk procps
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install packages: ${missing[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Kernel facilities the agent and the tests need (not packages).
if [ "$(id -u)" -eq 0 ]; then
  if ! awk '$3=="bpf"{found=1} END{exit !found}' /proc/self/mounts; then
    mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
  fi
  mkdir -p /run/netns
fi
