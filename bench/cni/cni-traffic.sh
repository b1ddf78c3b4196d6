#!/usr/bin/env bash
# Pod-to-pod traffic on the plugin's network, every pod a netns given its interface by the
# plugin itself (CNI ADD, as a runtime calls it):
#   tcp_crr  new TCP connections/s (connect, 1-byte request, 1-byte reply, close), one client
#            pod to one server pod, one connection at a time;
#   tcp_crr_20pods  the same with 20 pods: 10 client pods, each to its own server pod, at once;
#   tcp_rr   request/response transactions/s on one connection;
#   iperf3   bulk TCP throughput, one stream, pod to pod.
#   bench/cni/cni-traffic.sh PLUGIN_DIR CONFLIST [SECONDS=10] [OUT_DIR]
# Prints JSON lines. Every server and client stops by itself (bounded run time).
set -euo pipefail
PLUGIN_DIR=$(readlink -f "${1:?usage: cni-traffic.sh PLUGIN_DIR CONFLIST [SECONDS] [OUT_DIR]}")
CONFLIST=$(readlink -f "${2:?usage: cni-traffic.sh PLUGIN_DIR CONFLIST [SECONDS] [OUT_DIR]}")
SECONDS_EACH=${3:-10}
OUT=${4:-$(mktemp -d /tmp/pal-cni-bench.XXXXXX)}
[[ $SECONDS_EACH =~ ^[0-9]+$ && $SECONDS_EACH -ge 1 && $SECONDS_EACH -le 120 ]] || { echo "SECONDS must be 1..120" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "iperf3 is missing: apt-get install iperf3" >&2; exit 1; }
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/pal-cni-traffic.XXXXXX)
source "$(dirname "$(readlink -f "$0")")/lib.sh"
bench_setup
trap 'cleanup; rm -rf "$WORK"; [[ -z ${BPF_STATS_WAS:-} ]] || sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_WAS"' EXIT
TCPBENCH=$WORK/bin/tcpbench
PORT=7100
# Servers outlive their clients by a margin, then end on their own.
SERVER_SECONDS=$((SECONDS_EACH * 3 + 30))

prefix="palpod-$$"
declare -a ADDR=()
log "making 20 pods"
for i in $(seq 0 19); do
    make_pod "$prefix-$i"
    ADDR[i]=$POD_ADDR
done

# What a run cost the agent (CPU seconds of AGENT_PID, when set) and, with BPF_STATS=1
# (kernel.bpf_stats_enabled, which itself adds two clock reads per program run), the
# datapath's programs: one JSON line "cost_NAME" after each run.
agent_cpu() { [[ -n ${AGENT_PID:-} && -r /proc/$AGENT_PID/stat ]] && awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$AGENT_PID/stat" || echo 0; }
bpf_ns() { # total run_time_ns and run_cnt of the pal_* tc programs
    [[ ${BPF_STATS:-0} == 1 ]] || { echo "0 0"; return; }
    bpftool -j prog show 2>/dev/null | python3 -c 'import json,sys; p=[x for x in json.load(sys.stdin) if x.get("type")=="sched_cls" and x.get("name","").startswith("pal_")]; print(sum(x.get("run_time_ns",0) for x in p), sum(x.get("run_cnt",0) for x in p))'
}
COST_CPU=0 COST_BPF="0 0"
cost_begin() { COST_CPU=$(agent_cpu); COST_BPF=$(bpf_ns); }
cost_end() { # cost_end NAME
    python3 -c 'import json,sys; c0,c1=float(sys.argv[2]),float(sys.argv[3]); b0,n0=map(int,sys.argv[4].split()); b1,n1=map(int,sys.argv[5].split()); r=n1-n0
print(json.dumps({"bench":"cost_"+sys.argv[1],"agent_cpu_s":round(c1-c0,2),"bpf_cpu_s":round((b1-b0)/1e9,3),"bpf_runs":r,"bpf_ns_per_run":round((b1-b0)/r,1) if r else None}))' \
        "$1" "$COST_CPU" "$(agent_cpu)" "$COST_BPF" "$(bpf_ns)"
}
if [[ ${BPF_STATS:-0} == 1 ]]; then
    BPF_STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -qw kernel.bpf_stats_enabled=1
fi

with_load() { python3 -c 'import json,sys; [print(json.dumps({**json.loads(l), **json.loads(sys.argv[1])})) for l in sys.stdin]' "$1"; }

serve() { # serve POD: a tcpbench server in that pod, stopped on exit
    ip netns exec "$1" "$TCPBENCH" server "$PORT" "$SERVER_SECONDS" &
    CLEANUP_PIDS+=($!)
}

serve "$prefix-1"
log "tcp_crr, one client pod -> one server pod (load $(load1))"
cost_begin
ip netns exec "$prefix-0" "$TCPBENCH" crr "${ADDR[1]}" "$PORT" "$SECONDS_EACH" | with_load "{\"pods\":2,\"clients\":1,\"load1\":$(load1)}"
cost_end tcp_crr

log "tcp_rr, one connection (load $(load1))"
cost_begin
ip netns exec "$prefix-0" "$TCPBENCH" rr "${ADDR[1]}" "$PORT" "$SECONDS_EACH" | with_load "{\"pods\":2,\"clients\":1,\"load1\":$(load1)}"
cost_end tcp_rr

log "tcp_crr with 20 pods: 10 clients, each to its own server, at once (load $(load1))"
for i in $(seq 10 19); do serve "$prefix-$i"; done
start=$(( $(date +%s%3N) + 3000 ))
cost_begin
declare -a clients=()
for i in $(seq 0 9); do
    ip netns exec "$prefix-$i" "$TCPBENCH" crr "${ADDR[i + 10]}" "$PORT" "$SECONDS_EACH" "$start" >"$WORK/crr-$i.json" &
    clients+=($!)
done
for pid in "${clients[@]}"; do wait "$pid"; done
cost_end tcp_crr_20pods
python3 - "$WORK" "$(load1)" <<'PY'
import glob, json, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/crr-*.json"))]
print(json.dumps({
    "bench": "tcp_crr_20pods", "pods": 20, "clients": len(runs),
    "transactions": sum(r["transactions"] for r in runs), "errors": sum(r["errors"] for r in runs),
    "per_second": round(sum(r["per_second"] for r in runs), 1),
    "p50_us_median_client": sorted(r["p50_us"] for r in runs)[len(runs) // 2],
    "p99_us_worst_client": max(r["p99_us"] for r in runs), "load1": float(sys.argv[2])}))
PY

log "iperf3, one stream pod -> pod (load $(load1))"
ip netns exec "$prefix-3" iperf3 --server --one-off --port 7200 >/dev/null 2>&1 &
CLEANUP_PIDS+=($!)
for _ in $(seq 100); do ip netns exec "$prefix-3" ss -ltn | grep -q ':7200 ' && break; sleep 0.1; done
cost_begin
ip netns exec "$prefix-2" iperf3 --client "${ADDR[3]}" --port 7200 --time "$SECONDS_EACH" --json >"$WORK/iperf3.json"
cost_end iperf3
python3 - "$WORK/iperf3.json" "$(load1)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
end = r["end"]
print(json.dumps({"bench": "iperf3", "pods": 2, "streams": 1,
    "gbit_per_second": round(end["sum_received"]["bits_per_second"] / 1e9, 2),
    "retransmits": end["sum_sent"].get("retransmits"), "load1": float(sys.argv[2])}))
PY
