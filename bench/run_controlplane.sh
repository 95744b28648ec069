#!/usr/bin/env bash
# The control-plane benchmark: one command, see bench/README.md.
#
#   bench/run_controlplane.sh [--quick] [--services N] [--endpoints N] [--agents N] ...
#
# Builds nothing: it uses the binaries of a build directory (default
# /work/main/build-cpb): bench/weft-cpbench, controller/weft-controller,
# agent/weft-agent. Needs root (the real agent loads BPF programs).
#
# Safety: no data-plane traffic at all; gRPC only on 127.0.0.1; the agent's
# programs attach only to a cgroup this script creates (no process is ever put
# in it); pins live under /sys/fs/bpf/weft-cpbench-<id>; the controller's data
# dir is a fresh temp dir; everything is removed on every exit path (trap),
# Ctrl-C included; every wait is bounded.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-cpb}
OUT=${OUT:-$HERE/results}
SERVICES=10000
ENDPOINTS=100000
AGENTS=1000
FANOUT_REPS=5
KERNEL_REPS=100
RESET_REPS=3
UPDATE_REPS=20
DO_FANOUT=1
DO_KERNEL=1
DO_COMPILE=1

usage() {
  sed -n '2,14p' "$0"
  cat <<EOF
options:
  --quick              1,000 services / 10,000 endpoints, 100 agents, 2 fan-out reps, 20 kernel changes
  --services N         services (default $SERVICES)
  --endpoints N        WorkloadEntries, spread evenly (default $ENDPOINTS)
  --agents N           simulated agents (default $AGENTS)
  --fanout-reps N      one-endpoint changes pushed to all simulated agents (default $FANOUT_REPS)
  --kernel-reps N      one-endpoint changes timed into the real agent's maps (default $KERNEL_REPS)
  --no-compile | --no-fanout | --no-kernel
  --build DIR          build directory (default $BUILD)
  --out DIR            results directory (default $OUT)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) SERVICES=1000; ENDPOINTS=10000; AGENTS=100; FANOUT_REPS=2; KERNEL_REPS=20; RESET_REPS=2; UPDATE_REPS=10 ;;
    --services) SERVICES=$2; shift ;;
    --endpoints) ENDPOINTS=$2; shift ;;
    --agents) AGENTS=$2; shift ;;
    --fanout-reps) FANOUT_REPS=$2; shift ;;
    --kernel-reps) KERNEL_REPS=$2; shift ;;
    --no-compile) DO_COMPILE=0 ;;
    --no-fanout) DO_FANOUT=0 ;;
    --no-kernel) DO_KERNEL=0 ;;
    --build) BUILD=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_controlplane.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for v in SERVICES ENDPOINTS AGENTS FANOUT_REPS KERNEL_REPS; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || { echo "run_controlplane.sh: bad $v" >&2; exit 2; }
done
((AGENTS <= 5000 && KERNEL_REPS <= 1000 && FANOUT_REPS <= 50)) || { echo "run_controlplane.sh: too large" >&2; exit 2; }

BENCH=${WEFT_CPBENCH:-$BUILD/bench/weft-cpbench}
CONTROLLER=${WEFT_CONTROLLER:-$BUILD/controller/weft-controller}
AGENT=${WEFT_AGENT:-$BUILD/agent/weft-agent}
for b in "$BENCH" "$CONTROLLER"; do
  [[ -x $b ]] || { echo "run_controlplane.sh: $b not built (ninja -C $BUILD weft-cpbench weft-controller weft-agent)" >&2; exit 1; }
done
if [[ $DO_KERNEL == 1 && ! -x $AGENT ]]; then
  echo "run_controlplane.sh: $AGENT not built: kernel phase skipped" >&2
  DO_KERNEL=0
fi
[[ $DO_KERNEL == 0 || $(id -u) == 0 ]] || { echo "run_controlplane.sh: the kernel phase needs root (or --no-kernel)" >&2; exit 1; }

# ---- unique names ---------------------------------------------------------------
ID=$(printf '%d%02d' $(($$ % 100000)) $((RANDOM % 100)))
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR=$OUT/cp-$STAMP-$ID
RESULTS=$RUN_DIR/results.jsonl
mkdir -p "$RUN_DIR"
DATA=$(mktemp -d /tmp/weft-cpbench-$ID-XXXXXX)
CG=
PIN=/sys/fs/bpf/weft-cpbench-$ID
NODE=cpb-agent-$ID
CTL_PID=
AGENT_PID=

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

stop_pid() {  # stop_pid PID NAME: only a process we started, checked by its command line
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
  stop_pid "$AGENT_PID" weft-agent
  stop_pid "$CTL_PID" weft-controller
  if [[ -x $AGENT && -d $PIN ]]; then
    "$AGENT" cleanup --node "$NODE" --pin-root "$PIN" >>"$RUN_DIR/agent.log" 2>&1
  fi
  [[ -d $PIN ]] && rm -rf "$PIN"
  [[ -n $CG && -d $CG ]] && rmdir "$CG"
  rm -rf "$DATA"
  if [[ -d $PIN || -d $DATA || (-n $CG && -d $CG) ]]; then
    echo "run_controlplane.sh: cleanup left $PIN, $DATA or $CG behind" >&2
    rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss() {  # rss PID -> "VmRSS_kib VmHWM_kib"
  awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%d %d", r, h }' "/proc/$1/status"
}
record_rss() {  # record_rss LABEL
  local r h
  read -r r h <<<"$(rss "$CTL_PID")"
  log "controller RSS ($1): VmRSS $((r / 1024)) MiB, VmHWM $((h / 1024)) MiB"
  printf '{"phase":"controller_rss","at":"%s","vmrss_kib":%d,"vmhwm_kib":%d}\n' "$1" "$r" "$h" >>"$RESULTS"
}

{
  echo "date: $(date -u)"
  echo "kernel: $(uname -r)"
  echo "cpus: $(nproc) x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "args: services=$SERVICES endpoints=$ENDPOINTS agents=$AGENTS fanout_reps=$FANOUT_REPS kernel_reps=$KERNEL_REPS"
} | tee "$RUN_DIR/machine.txt" >&2
SCALE=(--services "$SERVICES" --endpoints "$ENDPOINTS")

# ---- (1) compile, in process ------------------------------------------------------
if [[ $DO_COMPILE == 1 ]]; then
  log "compile: Compiler::Reset x$RESET_REPS, Update(one endpoint) x$UPDATE_REPS"
  "$BENCH" compile "${SCALE[@]}" --reset-reps "$RESET_REPS" --update-reps "$UPDATE_REPS" >>"$RESULTS"
fi

# ---- controller + apply -----------------------------------------------------------
PORT=$(free_port)
ADDR=127.0.0.1:$PORT
log "weft-controller on $ADDR, data dir $DATA"
# --init: a new store. The VIPs (10.96.0.1 + i) pass 10.96.0.0/16 at 100,000 services: a /14.
"$CONTROLLER" --data-dir "$DATA/data" --init --service-cidr 10.96.0.0/14 --listen "$ADDR" \
  --admin-socket "$DATA/controller.sock" \
  >>"$RUN_DIR/controller.log" 2>&1 &
CTL_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ -S $DATA/controller.sock ]] && break
  kill -0 "$CTL_PID" 2>/dev/null || { echo "weft-controller exited (see $RUN_DIR/controller.log)" >&2; exit 1; }
  sleep 0.1
done
record_rss empty
log "apply: $SERVICES Services + $ENDPOINTS WorkloadEntries"
"$BENCH" apply --controller "$ADDR" "${SCALE[@]}" >>"$RESULTS"
record_rss after_apply

# ---- (2) one real agent: apply -> visible in its BPF maps --------------------------
if [[ $DO_KERNEL == 1 ]]; then
  if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q bpf; then
    log "mounting bpffs at /sys/fs/bpf (not mounted at boot here)"
    mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
  fi
  CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
  [[ -n $CG2 ]] || { echo "run_controlplane.sh: no cgroup2 mount in /proc/self/mounts" >&2; exit 1; }
  CG=$CG2/weft-cpbench-$ID
  mkdir "$CG"
  APORT=$(free_port)
  log "weft-agent --node $NODE --cgroup $CG --pin-root $PIN"
  "$AGENT" run --node "$NODE" --cgroup "$CG" --controller "$ADDR" --pin-root "$PIN" \
    --metrics "127.0.0.1:$APORT" --service-cidr 10.96.0.0/14 --state-dir "$DATA/agent" >>"$RUN_DIR/agent.log" 2>&1 &
  AGENT_PID=$!
  "$BENCH" kernel --controller "$ADDR" "${SCALE[@]}" --node "$NODE" --maps "$PIN/$NODE/maps" \
    --reps "$KERNEL_REPS" >>"$RESULTS" || log "kernel: some changes not visible (see results.jsonl)"
  record_rss after_kernel
fi

# ---- (3) fan-out to simulated agents (after the kernel phase: the real agent stays connected) ----------------------------------------------
if [[ $DO_FANOUT == 1 ]]; then
  log "fan-out: $AGENTS simulated agents, $FANOUT_REPS changes"
  "$BENCH" fanout --controller "$ADDR" "${SCALE[@]}" --agents "$AGENTS" --reps "$FANOUT_REPS" --wave 25 >>"$RESULTS" ||
    log "fan-out: not every agent synced or converged (see results.jsonl)"
  record_rss after_fanout
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RUN_DIR/machine.txt" >&2

# ---- table + JSON -----------------------------------------------------------------
jq -s '{machine: $m, results: .}' --rawfile m "$RUN_DIR/machine.txt" "$RESULTS" >"$RUN_DIR/summary.json"
jq -r -s '
  def f: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
  (map(select(.phase == "compile"))[0]) as $c |
  (map(select(.phase == "apply"))[0]) as $a |
  (map(select(.phase == "fanout"))[0]) as $f |
  (map(select(.phase == "kernel"))[0]) as $k |
  (map(select(.phase == "controller_rss"))) as $r |
  "| measure | p50 / median | p99 | max |",
  "|---|---:|---:|---:|",
  (if $c then
    "| compile: full snapshot, Compiler::Reset (\($c.services) svc / \($c.endpoints) ep), ms | \($c.reset_ms.p50|f) | - | \($c.reset_ms.max|f) |",
    "| compile: one endpoint, Compiler::Update, ms | \($c.update_one_endpoint_ms.p50|f) | \($c.update_one_endpoint_ms.p99|f) | \($c.update_one_endpoint_ms.max|f) |",
    "| Snapshot(node) build, ms (\($c.snapshot_bytes) bytes) | \($c.snapshot_ms.p50|f) | - | \($c.snapshot_ms.max|f) |",
    (if $c.shared_snapshot_serialized_ms then
      "| shared snapshot part built + serialized (once per version), ms (\($c.shared_snapshot_bytes) bytes) | \($c.shared_snapshot_serialized_ms.p50|f) | - | \($c.shared_snapshot_serialized_ms.max|f) |",
      "| node part built + serialized (per hello), ms | \($c.node_snapshot_serialized_ms.p50|f) | - | \($c.node_snapshot_serialized_ms.max|f) |"
     else empty end),
    "| Delta(node) for one endpoint, ms (\($c.delta_bytes) bytes) | \($c.delta_ms.p50|f) | \($c.delta_ms.p99|f) | \($c.delta_ms.max|f) |"
   else empty end),
  (if $a then
    "| apply of all \($a.documents) documents (\($a.requests) Admin Apply requests), s | \($a.total_ms / 1000|f) | - | - |"
   else empty end),
  (if $f then
    "| fan-out: \($f.agents_synced // $f.agents) of \($f.agents) agents connected + ACKed the snapshot, s | \($f.connect_all_snapshots_acked_ms / 1000|f) | - | - |",
    "| fan-out: Admin Apply RPC of one change, ms | \($f.apply_rpc_ms.p50|f) | \($f.apply_rpc_ms.p99|f) | \($f.apply_rpc_ms.max|f) |",
    "| fan-out: per-agent apply -> delta ACKed, ms (all reps) | \($f.ack_ms_all_reps.p50|f) | \($f.ack_ms_all_reps.p99|f) | \($f.ack_ms_all_reps.max|f) |",
    "| fan-out: apply -> all \($f.agents) ACKed, ms (per rep) | \($f.all_converged_ms.p50|f) | \($f.all_converged_ms.p99|f) | \($f.all_converged_ms.max|f) |"
   else empty end),
  (if $k then
    "| real agent: first sync of the whole config, s | \($k.initial_sync_wait_ms / 1000|f) | - | - |",
    "| real agent: apply -> new backend in BPF maps, ms (\($k.visible_ms.n) changes, \($k.timeouts) timeouts) | \($k.visible_ms.p50|f) | \($k.visible_ms.p99|f) | \($k.visible_ms.max|f) |",
    "| real agent: Admin Apply RPC, ms | \($k.apply_rpc_ms.p50|f) | \($k.apply_rpc_ms.p99|f) | \($k.apply_rpc_ms.max|f) |"
   else empty end),
  ($r[] | "| controller RSS \(.at): VmRSS / VmHWM, MiB | \(.vmrss_kib / 1024 | f) | - | \(.vmhwm_kib / 1024 | f) |")
' "$RESULTS" | tee "$RUN_DIR/table.md"
log "results: $RUN_DIR/summary.json"
