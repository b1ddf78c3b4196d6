#!/usr/bin/env bash
# Every CNI benchmark for one plugin, in one go, into one results folder:
#   bench/cni/run.sh PLUGIN_DIR CONFLIST
#   e.g. bench/cni/run.sh /usr/lib/cni bench/cni/bridge.conflist          (the baseline)
#        AGENT_PID=$(pidof palisade) POD_CIDR=10.216.0.0/16 \
#            bench/cni/run.sh artifacts bench/cni/palisade.conflist       (ours)
# Settings (environment): N (ADD/DEL namespaces, 100), SECONDS_EACH (per traffic run, 10),
# OUT_DIR (artifacts/bench-cni/<time>-<network>), POD_CIDR (blackholed range when the conflist
# has no IPAM subnet), CNI_PATH_EXTRA (more plugin folders), AGENT_PID (agent memory hook).
# Writes OUT_DIR/results.jsonl (one JSON object per figure, with the machine and load),
# OUT_DIR/cni-add-del.tsv (every call) and OUT_DIR/summary.txt (for people).
set -euo pipefail
usage="usage: bench/cni/run.sh PLUGIN_DIR CONFLIST"
PLUGIN_DIR=$(readlink -f "${1:?$usage}")
CONFLIST=$(readlink -f "${2:?$usage}")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(cd "$HERE/../.." && pwd)
network=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$CONFLIST")
OUT=${OUT_DIR:-$ROOT/artifacts/bench-cni/$(date -u +%Y%m%dT%H%M%SZ)-$network}
mkdir -p "$OUT"
results=$OUT/results.jsonl
: >"$results"

machine=$(python3 - "$PLUGIN_DIR" "$CONFLIST" <<'PY'
import json, os, platform, sys, time
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
    "kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(), "plugin_dir": sys.argv[1], "conflist": sys.argv[2]}))
PY
)
tag() { python3 -c 'import json,sys; m=json.loads(sys.argv[1]); [print(json.dumps({**json.loads(l), "machine": m})) for l in sys.stdin if l.startswith("{")]' "$machine"; }

echo "==> CNI benchmarks for $network ($PLUGIN_DIR), load $(cut -d' ' -f1-3 /proc/loadavg), results in $OUT" >&2
"$HERE/cni-add-del.sh" "$PLUGIN_DIR" "$CONFLIST" "${N:-100}" "$OUT" | tag >>"$results"
"$HERE/cni-traffic.sh" "$PLUGIN_DIR" "$CONFLIST" "${SECONDS_EACH:-10}" "$OUT" | tag >>"$results"
"$HERE/cni-agent-memory.sh" "$PLUGIN_DIR" "$CONFLIST" | tag >>"$results"

python3 - "$results" >"$OUT/summary.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m = rows[0]["machine"]
print(f"CNI benchmarks: {m['conflist']} with {m['plugin_dir']}")
print(f"{m['date']}, {m['host']}, kernel {m['kernel']}, {m['cpus']} x {m['cpu']}")
for r in rows:
    b, load = r["bench"], r.get("load1", "?")
    if b == "cni":
        print(f"  CNI {r['command']:<4} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  (n={r['n']}, load {load})")
    elif b in ("tcp_crr", "tcp_rr"):
        print(f"  {b:<15} {r['per_second']:9.0f} /s  p50 {r['p50_us']:.0f} us  p99 {r['p99_us']:.0f} us  errors {r['errors']}  (load {load})")
    elif b == "tcp_crr_20pods":
        print(f"  {b:<15} {r['per_second']:9.0f} /s  ({r['clients']} clients, errors {r['errors']}, load {load})")
    elif b == "iperf3":
        print(f"  iperf3          {r['gbit_per_second']:9.2f} Gbit/s  (1 stream, retransmits {r['retransmits']}, load {load})")
    elif b == "agent_memory":
        print(f"  agent memory    {r.get('kib_per_endpoint', '-')} KiB/endpoint {r.get('skipped', '')}")
PY
cat "$OUT/summary.txt"
