#!/usr/bin/env bash
# Palisade's pod networking against the baseline it replaces, same run, same machine:
# Debian's bridge + host-local (bench/cni/bridge-gateway.conflist) first, then palisade-cni
# with an agent started here (IPv4 pod CIDR, its own state, pins and conflist under a temp
# dir), each through bench/cni/run.sh, then palisade-cni again with --enable-flows=false (what the
# flow records cost; WITHOUT_FLOWS=0 skips it); prints the ratios and the agent's CPU per run
# (BPF_STATS=1 adds the programs' ns per run, from kernel.bpf_stats_enabled, which costs a little).
#   bench/cni/compare.sh            (root, after ./build.sh; N and SECONDS_EACH as for run.sh)
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(cd "$HERE/../.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/artifacts/bench-cni/compare-$STAMP
mkdir -p "$OUT"
POD_CIDR=${POD_CIDR:-10.217.0.0/16}
WORK=
AGENT=
stop_agent() {
    if [[ -n $AGENT ]]; then kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; AGENT=; fi
    ip link del palbench0 2>/dev/null || true
    rm -rf /sys/fs/bpf/palisade-bench ${WORK:+"$WORK"}
}
trap stop_agent EXIT

echo "==> baseline: bridge + host-local" >&2
OUT_DIR=$OUT/bridge "$HERE/run.sh" /usr/lib/cni "$HERE/bridge-gateway.conflist" >/dev/null

# run_palisade NAME [AGENT FLAGS...]: the agent started here with its own state, then run.sh.
run_palisade() {
    local name=$1
    shift
    echo "==> palisade-cni with the agent ($name)" >&2
    WORK=$(mktemp -d /tmp/pal-cni-compare.XXXXXX)
    mkdir -p "$WORK/plugins"
    ln -s "$ROOT/artifacts/palisade-cni" "$WORK/plugins/palisade-cni"
    "$ROOT/artifacts/palisade" agent --pod-cidr "$POD_CIDR" \
        --ipam-state-dir "$WORK/ipam" --endpoint-state-dir "$WORK/endpoints" \
        --endpoint-socket "$WORK/endpoint.sock" --cni-del-queue-dir "$WORK/delq" --cni-conf-dir "$WORK/net.d" \
        --datapath-host-device palbench0 --bpf-dir /sys/fs/bpf/palisade-bench \
        --export-filename "$WORK/events.json" --health-server-address 127.0.0.1:6790 \
        --server-address "unix://$WORK/api.sock" --log-level warn "$@" >"$WORK/agent.out" 2>"$WORK/agent.err" &
    AGENT=$!
    for _ in $(seq 150); do [[ -f $WORK/net.d/05-palisade.conflist ]] && break; sleep 0.2; done
    [[ -f $WORK/net.d/05-palisade.conflist ]] || { echo "the agent wrote no conflist:" >&2; cat "$WORK/agent.err" >&2; exit 1; }
    # Let start-up work (JIT, first policy loads) finish before the first ADD is timed.
    sleep 3
    AGENT_PID=$AGENT POD_CIDR=$POD_CIDR OUT_DIR=$OUT/$name "$HERE/run.sh" "$WORK/plugins" "$WORK/net.d/05-palisade.conflist" >/dev/null
    stop_agent
}
run_palisade palisade
# The same with flow records off: what the flows cost, apart from the datapath.
[[ ${WITHOUT_FLOWS:-1} == 1 ]] && run_palisade palisade-noflows --enable-flows=false

python3 - "$OUT/bridge/results.jsonl" "$OUT"/palisade*/results.jsonl <<'PY' | tee "$OUT/ratios.txt"
import json, sys
def load(p):
    d = {}
    for l in open(p):
        r = json.loads(l)
        key = r["bench"] + (":" + r["command"] if r["bench"] == "cni" else "")
        d[key] = r
    return d
b = load(sys.argv[1])
for path in sys.argv[2:]:
    name = path.split("/")[-2]
    p = load(path)
    m = next(iter(p.values()))["machine"]
    print(f"{name} vs bridge + host-local, {m['date']}, {m['host']}, kernel {m['kernel']}, {m['cpus']} x {m['cpu']}")
    for key, field, better in [("cni:ADD", "p50_ms", "lower"), ("cni:ADD", "p99_ms", "lower"), ("cni:DEL", "p50_ms", "lower"), ("cni:DEL", "p99_ms", "lower"),
                               ("tcp_crr", "per_second", "higher"), ("tcp_crr_20pods", "per_second", "higher"), ("tcp_rr", "per_second", "higher"),
                               ("iperf3", "gbit_per_second", "higher")]:
        if key in b and key in p and field in b[key] and field in p[key]:
            print(f"  {key:<16} {field:<16} bridge {b[key][field]:>10.2f}  {name} {p[key][field]:>10.2f}  ratio {p[key][field] / b[key][field]:.2f} ({better} is better; load {b[key].get('load1','?')}/{p[key].get('load1','?')})")
    for key in ("tcp_crr", "tcp_crr_20pods", "tcp_rr", "iperf3"):
        c = p.get("cost_" + key)
        if c:
            print(f"  {key:<16} agent CPU {c['agent_cpu_s']:.2f} s over the run" + (f", BPF {c['bpf_ns_per_run']} ns per program run" if c.get("bpf_ns_per_run") else ""))
    if "agent_memory" in p:
        print(f"  agent memory per endpoint: {p['agent_memory'].get('kib_per_endpoint', p['agent_memory'].get('skipped'))} KiB")
PY
