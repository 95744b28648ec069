#!/usr/bin/env bash
# Weft demo: a 2-node lab (a weft-controller, a weft-agent per node) running
# bookinfo; 300 calls to `reviews` spread over its three pods; Istio's
# destination-rule-all + virtual-service-all-v1 applied with `weftctl apply`
# send all 300 to reviews-v1; then traffic that survives `kill -9` of a node's
# agent and of the controller.
# Everything lives in network namespaces with no default route; the lab is
# torn down on every exit path (trap on EXIT).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(dirname "$REPO")/shared"
BOOKINFO="$SHARED/istio-samples/bookinfo/platform/bookinfo.yaml"
NETWORKING="$SHARED/istio-samples/bookinfo/networking"
BUILD="${WEFT_BUILD_DIR:-$REPO/build}"
LAB="demo$$"  # unique per run; lab names are [a-z][a-z0-9]{0,15}
CLIENT=productpage-v1-0

step() { printf '\n== %s\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
  echo "demo.sh: needs root (network namespaces, cgroups, BPF)" >&2
  exit 2
fi
if [[ -f "$REPO/scripts/install-deps.sh" ]]; then
  step "installing dependencies (scripts/install-deps.sh)"
  bash "$REPO/scripts/install-deps.sh"
fi

step "building into $BUILD"
cmake -S "$REPO" -B "$BUILD" -G Ninja >/dev/null
ninja -C "$BUILD" -j2 weftctl weft-echo weft-agent weft-controller weft-loadgen
W="$BUILD/cli/weftctl"
LOADGEN="$BUILD/tests/weft-loadgen"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "tearing down lab $LAB"
  "$W" lab down --name "$LAB" || rc=2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "lab up: 2 nodes, bookinfo"
"$W" lab up --name "$LAB" --nodes 2 -f "$BOOKINFO"
"$W" lab status --name "$LAB"
CTL=(--controller "unix:///run/weft/lab/$LAB/controller/admin.sock")
"$W" get svc "${CTL[@]}"

step "300 calls to http://reviews:9080/reviews/0 from $CLIENT"
"$W" lab exec --name "$LAB" "$CLIENT" -- "$LOADGEN" --text --target reviews:9080 --path /reviews/0 --count 300

step "weftctl apply: Istio's destination-rule-all + virtual-service-all-v1 (reviews -> subset v1)"
"$W" apply "${CTL[@]}" -f "$NETWORKING/destination-rule-all.yaml" -f "$NETWORKING/virtual-service-all-v1.yaml"
for _ in $(seq 50); do
  "$W" status "${CTL[@]}" | awk 'NR > 2 && $2 != "SYNCED" { bad = 1 } END { exit bad }' && break
  sleep 0.2
done
"$W" status "${CTL[@]}"
step "300 calls to reviews again: all answered by reviews-v1 (socket-LB picks only v1 backends)"
"$W" lab exec --name "$LAB" "$CLIENT" -- "$LOADGEN" --text --target reviews:9080 --path /reviews/0 --count 300

NODE="$("$W" lab status --name "$LAB" | awk -v p="$CLIENT" '$1 == p { print $3 }')"
step "10 s of traffic (200 new connections/s + 50 long-lived connections every 10 ms);"
echo "   after 3 s the weft-agent of $NODE (the client's node) gets kill -9, stays down 2 s, and is restarted"
LOG="$(mktemp /tmp/weft-demo-load.XXXXXX)"
"$W" lab exec --name "$LAB" "$CLIENT" -- "$LOADGEN" --text --target reviews:9080 --path /reviews/0 \
  --duration 10 --rate 200 --long 50 --interval-ms 10 >"$LOG" 2>&1 &
LOAD_PID=$!
sleep 3
"$W" lab restart-agent --name "$LAB" --kill --down-for 2 "$NODE"
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
cat "$LOG"
rm -f "$LOG"
grep -h -i "adopt" "/run/weft/lab/$LAB/$NODE/agent.log" | tail -n 2 || true
if [[ $LOAD_RC -ne 0 ]]; then
  echo "demo.sh: FAILED: calls failed while the agent was down" >&2
  exit 1
fi
step "zero failed calls, zero broken connections while the agent was down"

step "6 s of traffic while the controller gets kill -9, stays down 2 s and restarts on its data dir"
"$W" lab exec --name "$LAB" "$CLIENT" -- "$LOADGEN" --text --target reviews:9080 --path /reviews/0 \
  --duration 6 --rate 200 >"$LOG" 2>&1 &
LOAD_PID=$!
sleep 1
"$W" lab restart-controller --name "$LAB" --kill --down-for 2
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
cat "$LOG"
rm -f "$LOG"
if [[ $LOAD_RC -ne 0 ]]; then
  echo "demo.sh: FAILED: calls failed while the controller was down" >&2
  exit 1
fi
"$W" get vs "${CTL[@]}"
step "zero failed calls while the controller was down; the store kept every object"
