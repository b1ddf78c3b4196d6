#!/usr/bin/env bash
# Agent memory per endpoint (the hook for palisade-cni): the agent's RSS (VmRSS of AGENT_PID)
# before and after N pods are added through the plugin, divided by N. Without AGENT_PID (the
# reference plugins have no agent) it prints a skipped record and does nothing else.
#   AGENT_PID=PID bench/cni/cni-agent-memory.sh PLUGIN_DIR CONFLIST [N=50]
set -euo pipefail
PLUGIN_DIR=$(readlink -f "${1:?usage: cni-agent-memory.sh PLUGIN_DIR CONFLIST [N]}")
CONFLIST=$(readlink -f "${2:?usage: cni-agent-memory.sh PLUGIN_DIR CONFLIST [N]}")
N=${3:-50}
if [[ -z ${AGENT_PID:-} ]]; then
    echo '{"bench":"agent_memory","skipped":"no AGENT_PID: the plugin under test has no agent"}'
    exit 0
fi
[[ -r /proc/$AGENT_PID/status ]] || { echo "AGENT_PID $AGENT_PID is not a running process" >&2; exit 1; }
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 250 ]] || { echo "N must be 1..250" >&2; exit 2; }
WORK=$(mktemp -d /tmp/pal-cni-memory.XXXXXX)
source "$(dirname "$(readlink -f "$0")")/lib.sh"
bench_setup
trap 'cleanup; rm -rf "$WORK"' EXIT
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status"; }
# The agent settles (GC, lazy maps) after its first endpoint: measure from one pod on.
make_pod "palmem-$$-warm"
sleep 2
before=$(rss_kib)
for i in $(seq 1 "$N"); do make_pod "palmem-$$-$i"; done
sleep 2
after=$(rss_kib)
python3 -c 'import json,sys; b,a,n=map(int,sys.argv[1:4]); print(json.dumps({"bench":"agent_memory","endpoints":n,"rss_before_kib":b,"rss_after_kib":a,"kib_per_endpoint":round((a-b)/n,1)}))' "$before" "$after" "$N"
