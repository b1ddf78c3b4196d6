#!/usr/bin/env bash
# Palisade's pod networking against the baseline it replaces, same run, same machine:
# Debian's bridge + host-local (bench/cni/bridge-gateway.conflist) first, then palisade-cni
# with an agent started here (IPv4 pod CIDR, its own state, pins and conflist under a temp
# dir), each through bench/cni/run.sh; prints both summaries and the ratios.
#   bench/cni/compare.sh            (root, after ./build.sh; N and SECONDS_EACH as for run.sh)
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(cd "$HERE/../.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/artifacts/bench-cni/compare-$STAMP
mkdir -p "$OUT"
POD_CIDR=${POD_CIDR:-10.217.0.0/16}
WORK=$(mktemp -d /tmp/pal-cni-compare.XXXXXX)
AGENT=
stop_agent() {
    if [[ -n $AGENT ]]; then kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; AGENT=; fi
    ip link del palbench0 2>/dev/null || true
    rm -rf /sys/fs/bpf/palisade-bench "$WORK"
}
trap stop_agent EXIT

echo "==> baseline: bridge + host-local" >&2
OUT_DIR=$OUT/bridge "$HERE/run.sh" /usr/lib/cni "$HERE/bridge-gateway.conflist" >/dev/null

echo "==> palisade-cni with the agent" >&2
mkdir -p "$WORK/plugins"
ln -s "$ROOT/artifacts/palisade-cni" "$WORK/plugins/palisade-cni"
"$ROOT/artifacts/palisade" agent --pod-cidr "$POD_CIDR" \
    --ipam-state-dir "$WORK/ipam" --endpoint-state-dir "$WORK/endpoints" \
    --endpoint-socket "$WORK/endpoint.sock" --cni-del-queue-dir "$WORK/delq" --cni-conf-dir "$WORK/net.d" \
    --datapath-host-device palbench0 --bpf-dir /sys/fs/bpf/palisade-bench \
    --export-filename "$WORK/events.json" --health-server-address 127.0.0.1:6790 \
    --server-address "unix://$WORK/api.sock" --log-level warn >"$WORK/agent.out" 2>"$WORK/agent.err" &
AGENT=$!
for _ in $(seq 150); do [[ -f $WORK/net.d/05-palisade.conflist ]] && break; sleep 0.2; done
[[ -f $WORK/net.d/05-palisade.conflist ]] || { echo "the agent wrote no conflist:" >&2; cat "$WORK/agent.err" >&2; exit 1; }
AGENT_PID=$AGENT POD_CIDR=$POD_CIDR OUT_DIR=$OUT/palisade "$HERE/run.sh" "$WORK/plugins" "$WORK/net.d/05-palisade.conflist" >/dev/null
stop_agent

python3 - "$OUT/bridge/results.jsonl" "$OUT/palisade/results.jsonl" <<'PY' | tee "$OUT/ratios.txt"
import json, sys
def load(p):
    d = {}
    for l in open(p):
        r = json.loads(l)
        key = r["bench"] + (":" + r["command"] if r["bench"] == "cni" else "")
        d[key] = r
    return d
b, p = load(sys.argv[1]), load(sys.argv[2])
m = next(iter(p.values()))["machine"]
print(f"Palisade vs bridge + host-local, {m['date']}, {m['host']}, kernel {m['kernel']}, {m['cpus']} x {m['cpu']}")
for key, field, better in [("cni:ADD", "p50_ms", "lower"), ("cni:ADD", "p99_ms", "lower"), ("cni:DEL", "p50_ms", "lower"), ("cni:DEL", "p99_ms", "lower"),
                           ("tcp_crr", "per_second", "higher"), ("tcp_crr_20pods", "per_second", "higher"), ("tcp_rr", "per_second", "higher"),
                           ("iperf3", "gbit_per_second", "higher")]:
    if key in b and key in p and field in b[key] and field in p[key]:
        print(f"  {key:<16} {field:<16} bridge {b[key][field]:>10.2f}  palisade {p[key][field]:>10.2f}  ratio {p[key][field] / b[key][field]:.2f} ({better} is better; load {b[key].get('load1','?')}/{p[key].get('load1','?')})")
if "agent_memory" in p:
    print(f"  agent memory per endpoint: {p['agent_memory'].get('kib_per_endpoint', p['agent_memory'].get('skipped'))} KiB")
PY
