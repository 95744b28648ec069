#!/usr/bin/env bash
# The policy benchmark (issue 4 §6): one command, see bench/README.md.
#
#   bench/run_policy.sh [--quick] [--reps N] [--seconds S] [--sizes 10,10000] [--identities M]
#
# Request/response and short-connection rate between two pods that a node
# forwards between, side by side in one run, for:
#   none            no programs, no rules (the baseline)
#   weft            Weft's TC policy (the agent's PolicyDatapath, programmed by
#                   bench/weft-policybench; every pod's way out is source-validated,
#                   the client's too): the server pod enforces ingress with
#                   S policy entries (S-1 other identities, then the client's) and
#                   the identity cache holds M (default 100,000) more addresses
#   iptables-chain  the same allow-list as a plain chain: S rules `-s IP -p tcp
#                   --dport 8080 -j ACCEPT`, the client's last, then DROP
#   none-again      the baseline again, on its own pods (an A/A control: its
#                   ratio to none is the noise of the machine in this run)
#   iptables-set    one rule `-m set --match-set` over a hash:ip set of the
#                   allowed addresses (the M + 1 addresses of the allowed
#                   identities), then DROP
# Both iptables variants accept ESTABLISHED first (conntrack), like every
# iptables-based network policy. Each variant has its own client and server
# pods (no shared TIME_WAIT); none and weft share one node netns, the iptables
# variants another (conntrack, once loaded, taxes every flow of its netns).
#
# weft's per-packet costs (weft-policybench costs: BPF_PROG_TEST_RUN of the
# pinned programs) are logged and kept in costs.jsonl for each size.
#
# Uses the binaries of a build directory (default build-bench):
# bench/weft-l4bench (load, serve, report) and bench/weft-policybench.
#
# Safety: all traffic stays inside network namespaces this script creates (no
# default route anywhere); tcx links only on veths it creates; pins under a
# per-run bpffs directory; everything removed on every exit path (trap).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
OUT=${OUT:-$HERE/results}
REPS=5
SECONDS_CELL=3
WARMUP=1
SIZES=10,10000
IDENTITIES=100000
CONC=16
NICE=-10
NOISE_MAX=0.15
RETRIES=2
RETRY_BUDGET=20
VARIANTS=(none weft iptables-chain iptables-set none-again)

usage() {
  sed -n '2,30p' "$0"
  cat <<EOF
options:
  --quick            1 repetition, 2 s cells (smoke test)
  --reps N           repetitions (default $REPS)
  --seconds S        measured seconds per cell (default $SECONDS_CELL)
  --sizes LIST       policy entries / iptables rules (default $SIZES)
  --identities M     extra identity-cache entries and ipset members (default $IDENTITIES)
  --concurrency N    connections in flight (default $CONC)
  --noise-max C      retry a cell when other work used more than C cores (default $NOISE_MAX)
  --variants LIST    variants to run, none first (default: $(IFS=,; echo "${VARIANTS[*]}"))
  --build DIR        build directory (default $BUILD)
  --out DIR          results directory (default $OUT)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) REPS=1; SECONDS_CELL=2; WARMUP=0.5 ;;
    --reps) REPS=$2; shift ;;
    --seconds) SECONDS_CELL=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --identities) IDENTITIES=$2; shift ;;
    --concurrency) CONC=$2; shift ;;
    --noise-max) NOISE_MAX=$2; shift ;;
    --variants) IFS=, read -ra VARIANTS <<<"$2"; shift ;;
    --build) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_policy.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 20 ]] || { echo "--reps must be 1..20" >&2; exit 2; }
[[ $IDENTITIES =~ ^[0-9]+$ && $IDENTITIES -le 1000000 ]] || { echo "--identities must be 0..1000000" >&2; exit 2; }
[[ ${VARIANTS[0]:-} == none ]] || { echo "--variants must start with none (the baseline)" >&2; exit 2; }
for v in "${VARIANTS[@]:1}"; do
  [[ $v == weft || $v == iptables-chain || $v == iptables-set || $v == none-again ]] ||
    { echo "--variants: unknown variant '$v' (none, weft, iptables-chain, iptables-set, none-again)" >&2; exit 2; }
done

BENCH=${WEFT_L4BENCH:-$BUILD/bench/weft-l4bench}
PBENCH=${WEFT_POLICYBENCH:-$BUILD/bench/weft-policybench}
for b in "$BENCH" "$PBENCH"; do
  [[ -x $b ]] || { echo "run_policy.sh: $b not built (ninja -C $BUILD weft-l4bench weft-policybench)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run_policy.sh: needs root (netns, tc, bpf, iptables)" >&2; exit 1; }
command -v ipset >/dev/null || { echo "run_policy.sh: ipset missing (scripts/install-deps.sh)" >&2; exit 1; }

ID=$(printf '%d%02d' $(($$ % 100000)) $((RANDOM % 100)))
NS_W=wp${ID}w   # node for none, weft, none-again
NS_I=wp${ID}i   # node for the iptables variants
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[[ -n $CG2 ]] || { echo "run_policy.sh: no cgroup2 mount in /proc/self/mounts" >&2; exit 1; }
CG=$CG2/weft-pbench-$ID
PIN=/sys/fs/bpf/weft-pbench-$ID
NODE=pbench
IPSET=wpb$ID
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR=$OUT/policy-$STAMP-$ID
CELLS=$RUN_DIR/cells.jsonl
mkdir -p "$RUN_DIR"

SERVER_PIDS=()
CREATED_NS=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
nsx() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

stop_pid() {  # only a process we started, checked by its command line
  local pid=$1 name=$2 i
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  for p in "${SERVER_PIDS[@]}"; do stop_pid "$p" weft-l4bench; done
  if [[ -d $PIN ]]; then
    nsx "$NS_W" "$PBENCH" cleanup --pin-root "$PIN" --node "$NODE" >>"$RUN_DIR/policybench.log" 2>&1
    rm -rf "$PIN"
  fi
  if [[ -d $CG ]]; then
    for d in "$CG"/*/ "$CG"/; do [[ -e $d/cgroup.kill ]] && echo 1 >"$d/cgroup.kill"; done 2>/dev/null
    for ((i = 0; i < 50; i++)); do grep -q 'populated 0' "$CG/cgroup.events" && break; sleep 0.1; done
    find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
  fi
  # ipsets live in the netns: deleting the netns frees them.
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -f "$RUN_DIR"/*.ipt "$RUN_DIR"/*.ipset
  [[ -d $CG || -d $PIN ]] && { echo "run_policy.sh: cleanup left $CG or $PIN behind" >&2; rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- topology ---------------------------------------------------------------------
# Pair k (variant k): client pod 10.240.(2k).2, server pod 10.240.(2k+1).2, each a
# netns with eth0 to a host-side veth in its node netns (10.240.x.1).
client_ip() { echo "10.240.$((2 * $1)).2"; }
server_ip() { echo "10.240.$((2 * $1 + 1)).2"; }
index_of() {  # index_of VARIANT: its pair number, or nothing when not run
  local k
  for ((k = 0; k < ${#VARIANTS[@]}; k++)); do [[ ${VARIANTS[$k]} == "$1" ]] && { echo "$k"; return 0; }; done
  return 0
}
has_variant() { [[ -n $(index_of "$1") ]]; }
node_of() { [[ ${VARIANTS[$1]} == iptables-* ]] && echo "$NS_I" || echo "$NS_W"; }

add_pod() {  # add_pod NODE_NS POD_NS HOSTIF SUBNET3 (e.g. 10.240.3)
  local node=$1 pod=$2 hostif=$3 net=$4
  ip netns add "$pod"
  CREATED_NS+=("$pod")
  nsx "$pod" ip link set lo up
  ip link add "$hostif" netns "$node" type veth peer name eth0 netns "$pod"
  nsx "$node" ip addr add "$net.1/24" dev "$hostif"
  nsx "$node" ip link set "$hostif" up
  nsx "$pod" ip addr add "$net.2/24" dev eth0
  nsx "$pod" ip link set eth0 up
  nsx "$pod" ip route add 10.240.0.0/16 via "$net.1"
}

setup_topology() {
  local ns k
  for ns in $NS_W $NS_I; do
    ip netns add "$ns"
    CREATED_NS+=("$ns")
    nsx "$ns" ip link set lo up
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
  done
  for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
    add_pod "$(node_of $k)" "wp${ID}c$k" "wp${ID}c${k}h" "10.240.$((2 * k))"
    add_pod "$(node_of $k)" "wp${ID}s$k" "wp${ID}s${k}h" "10.240.$((2 * k + 1))"
    # crr: the client closes first, so TIME_WAIT piles up on the client.
    nsx "wp${ID}c$k" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
  done
  # Conntrack's table is machine-wide: keep TIME_WAIT short in the iptables node.
  mkdir -p "$CG/load" "$CG/srv"
  log "topology: nodes $NS_W (none, weft, none-again) $NS_I (iptables); ${#VARIANTS[@]} client/server pod pairs"
}

start_servers() {
  local k
  for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
    "$BENCH" serve --netns "wp${ID}s$k" --cgroup "$CG/srv" --cpu 1 --nice "$NICE" --port 8080 --max-seconds 3600 \
      >>"$RUN_DIR/server.log" 2>&1 &
    SERVER_PIDS+=($!)
  done
  sleep 0.3
  for p in "${SERVER_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { cat "$RUN_DIR/server.log" >&2; exit 1; }; done
}

# ---- programming ---------------------------------------------------------------------
program_weft() {  # program_weft S
  local k line
  k=$(index_of weft)
  line=$(nsx "$NS_W" "$PBENCH" program --pin-root "$PIN" --node "$NODE" --client "$(client_ip $k)" \
    --server "$(server_ip $k)" --entries "$1" --identities "$IDENTITIES" 2>>"$RUN_DIR/policybench.log") ||
    { log "weft-policybench program failed: see $RUN_DIR/policybench.log"; exit 1; }
  echo "$line" >>"$CELLS"
  log "size $1: weft programmed: $line"
  # The same datapath's cost per packet (BPF_PROG_TEST_RUN): not noisy.
  line=$(nsx "$NS_W" "$PBENCH" costs --pin-root "$PIN" --node "$NODE" --client "$(client_ip $k)" \
    --server "$(server_ip $k)" 2>>"$RUN_DIR/policybench.log") ||
    { log "weft-policybench costs failed: see $RUN_DIR/policybench.log"; exit 1; }
  echo "{\"entries\":$1,${line#\{}" >>"$RUN_DIR/costs.jsonl"
  log "size $1: weft per-packet costs: $line"
}

# The allowed sources of the iptables variants: the client plus synthetic peers
# 100.64.0.0 + i (as weft-policybench's identity cache), generated with awk.

# The ipset does not depend on the size: created once.
program_ipset() {
  local i set=$RUN_DIR/set.ipset
  {
    echo "create $IPSET hash:ip family inet hashsize 65536 maxelem $((IDENTITIES + 16))"
    awk -v n="$IDENTITIES" -v set="$IPSET" 'BEGIN { for (i = 0; i < n; i++)
      printf "add %s 100.%d.%d.%d\n", set, 64 + int(i / 65536), int(i / 256) % 256, i % 256 }'
    echo "add $IPSET $(client_ip "$(index_of iptables-set)")"
  } >"$set"
  nsx "$NS_I" ipset restore <"$set"
  rm -f "$set"
}

program_iptables() {  # program_iptables S: the filter table, replaced as a whole
  local s=$1 i ck sk ipt t0=$SECONDS
  ck=$(index_of iptables-chain) sk=$(index_of iptables-set)
  [[ -n $ck || -n $sk ]] || return 0
  ipt=$RUN_DIR/filter-$s.ipt
  {
    echo "*filter"
    echo ":FORWARD ACCEPT [0:0]"
    echo ":WEFT-CHAIN - [0:0]"
    echo ":WEFT-SET - [0:0]"
    echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
    if [[ -n $ck ]]; then
      echo "-A FORWARD -d $(server_ip "$ck")/32 -j WEFT-CHAIN"
      awk -v n="$((s - 1))" 'BEGIN { for (i = 0; i < n; i++)
        printf "-A WEFT-CHAIN -s 100.%d.%d.%d/32 -p tcp --dport 8080 -j ACCEPT\n", 64 + int(i / 65536), int(i / 256) % 256, i % 256 }'
      echo "-A WEFT-CHAIN -s $(client_ip "$ck")/32 -p tcp --dport 8080 -j ACCEPT"
      echo "-A WEFT-CHAIN -j DROP"
    fi
    if [[ -n $sk ]]; then
      echo "-A FORWARD -d $(server_ip "$sk")/32 -j WEFT-SET"
      echo "-A WEFT-SET -m set --match-set $IPSET src -p tcp --dport 8080 -j ACCEPT"
      echo "-A WEFT-SET -j DROP"
    fi
    echo "COMMIT"
  } >"$ipt"
  nsx "$NS_I" iptables-restore <"$ipt"
  nsx "$NS_I" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=2
  rm -f "$ipt"
  log "size $s: iptables programmed in $((SECONDS - t0)) s ($s chain rules; ipset of $((IDENTITIES + 1)))"
}

# ---- cells ----------------------------------------------------------------------------
run_cell() {  # run_cell VARIANT_INDEX SIZE MODE REP [SECONDS WARMUP]
  local k=$1 size=$2 mode=$3 rep=$4 secs=${5:-$SECONDS_CELL} warm=${6:-$WARMUP}
  "$BENCH" load --netns "wp${ID}c$k" --cgroup "$CG/load" --cpu 0 --nice "$NICE" --mode "$mode" \
    --dst "$(server_ip "$k"):8080" --concurrency "$CONC" --seconds "$secs" --warmup "$warm" \
    --label "${VARIANTS[$k]}/$size/$mode/$rep" --account-cgroup "$CG" 2>>"$RUN_DIR/load.log"
}

CELL_LINE=
measure_cell() {
  local best= best_other=999 attempt line other
  for ((attempt = 0; attempt <= RETRIES; attempt++)); do
    line=$(run_cell "$@") || log "cell ${VARIANTS[$1]}/$2/$3/$4 exited non-zero"
    other=$(jq -r '.other_cores' <<<"$line" 2>/dev/null) || other=999
    [[ -n $other ]] || other=999
    if awk -v a="$other" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then best=$line best_other=$other; fi
    awk -v a="$other" -v m="$NOISE_MAX" 'BEGIN { exit !(a <= m) }' && break
    ((RETRY_BUDGET > 0)) || { log "retry budget spent: keeping a noisy cell"; break; }
    RETRY_BUDGET=$((RETRY_BUDGET - 1))
    log "cell ${VARIANTS[$1]}/$2/$3/$4: other work used $other cores, retrying"
  done
  CELL_LINE=$best
}

# The policy must really be in force (not bypassed): a port no allow-list
# names must not connect (weft: default deny answers with a RST; iptables:
# DROP, so the connect times out).
check_denied() {  # check_denied VARIANT_INDEX: port 9 must not connect
  local k=$1
  if nsx "wp${ID}c$k" timeout 3 bash -c "exec 3<>/dev/tcp/$(server_ip "$k")/9" 2>/dev/null; then
    log "${VARIANTS[$k]}: a connect to port 9 succeeded: the policy is not in force"; exit 1
  fi
}

datapath() {
  local size rep mode i n=${#VARIANTS[@]} line
  IFS=, read -ra size_list <<<"$SIZES"
  for size in "${size_list[@]}"; do
    has_variant weft && program_weft "$size"
    program_iptables "$size"
    for ((i = 1; i < n; i++)); do [[ ${VARIANTS[$i]} == none-again ]] || check_denied "$i"; done
    for ((i = 0; i < n; i++)); do
      line=$(run_cell "$i" "$size" crr check 0.3 0)
      [[ $(jq -r 'select(.errors == 0 and .requests > 0) | "ok"' <<<"$line") == ok ]] ||
        { log "size $size: ${VARIANTS[$i]} fails its sanity check: $line"; exit 1; }
    done
    for ((rep = 1; rep <= REPS; rep++)); do
      for mode in crr rr; do
        for ((i = 0; i < n; i++)); do  # rotated every repetition
          measure_cell $(((i + rep - 1) % n)) "$size" "$mode" "$rep"
          [[ -n $CELL_LINE ]] && echo "$CELL_LINE" >>"$CELLS"
          jq -r '"  \(.label): \(.rate|floor)/s, \(.cpu_us_per_req*100|round/100) us machine CPU/req, other \(.other_cores*100|round/100) cores, errors \(.errors)"' <<<"$CELL_LINE" >&2 || true
        done
      done
    done
  done
}

{
  echo "date: $(date)"
  echo "kernel: $(uname -r)"
  echo "cpus: $(nproc) x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "iptables: $(iptables -V); ipset: $(ipset -v 2>&1 | head -1)"
  echo "args: nice=$NICE reps=$REPS seconds=$SECONDS_CELL warmup=$WARMUP sizes=$SIZES identities=$IDENTITIES concurrency=$CONC"
} | tee "$RUN_DIR/machine.txt" >&2

if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q bpf; then
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi
setup_topology
start_servers
has_variant iptables-set && program_ipset
datapath
"$BENCH" report --in "$CELLS" --json "$RUN_DIR/summary.json" --baseline none \
  --variants "$(IFS=,; echo "${VARIANTS[*]}")" --size-name entries
log "results: $RUN_DIR/summary.json (cells: $CELLS; weft per-packet costs: $RUN_DIR/costs.jsonl)"
