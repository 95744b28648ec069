#!/usr/bin/env bash
# Runs after every kernel test (CTest FIXTURES_CLEANUP): fails if any test left
# network namespaces, cgroups, bpffs pins, /etc/netns entries or processes behind.
set -u
fail=0
report() { echo "leak-check: $*" >&2; fail=1; }

ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^weft' || true)
[ -n "$ns" ] && report "network namespaces left: $(echo $ns)"

cg2=$(awk '$3=="cgroup2"{print $2; exit}' /proc/self/mounts)
if [ -n "$cg2" ]; then
  cgs=$(find "$cg2" -maxdepth 1 -mindepth 1 -type d -name 'weft*' 2>/dev/null)
  [ -n "$cgs" ] && report "cgroups left: $(echo $cgs)"
fi

if [ -d /sys/fs/bpf ]; then
  pins=$(find /sys/fs/bpf -maxdepth 1 -mindepth 1 -name 'weft*' 2>/dev/null)
  [ -n "$pins" ] && report "bpffs pins left: $(echo $pins)"
fi

etc=$(find /etc/netns -maxdepth 1 -mindepth 1 -name 'weft*' 2>/dev/null)
[ -n "$etc" ] && report "/etc/netns entries left: $(echo $etc)"

links=$(ip -o link show 2>/dev/null | awk -F": " '{print $2}' | grep -E '^weft' || true)
[ -n "$links" ] && report "interfaces left in the host namespace: $(echo $links)"

procs=$(pgrep -a -f '(^|/)weft-(agent|controller|echo|loadgen|l4bench)( |$)' 2>/dev/null || true)
[ -n "$procs" ] && report "processes left: $(echo "$procs" | tr '\n' ';')"

[ $fail -eq 0 ] && echo "leak-check: nothing left behind"
exit $fail
