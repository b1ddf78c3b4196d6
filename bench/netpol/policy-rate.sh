#!/usr/bin/env bash
# What a large network policy costs, against the iptables rules it replaces, same run:
#   palisade        new TCP connections/s, one client pod -> one server pod (tcpbench crr), no policy
#   palisade-1000   the same with a 1 000-rule CiliumNetworkPolicy on the server: 999 rules
#                   allowing other /32 sources on other ports (999 CIDR identities), then the
#                   rule that allows the client (last, so nothing finds it early)
#   ptp             Debian's ptp + host-local (pods routed through the host's FORWARD chain), no rules
#   ptp-iptables    the same with those 1 000 rules as iptables filter rules in FORWARD, an
#                   ESTABLISHED,RELATED accept first (as policy controllers write them), a DROP last
# and, with the agent: the time from a policy file change to the first connection with the new
# verdict, for two kinds of change (policy_change_to_enforcement, below), and the server's policy map
# entries and their bytes. Prints JSON lines and the ratios; results in
# artifacts/bench-netpol/run-STAMP.
#   bench/netpol/policy-rate.sh [SECONDS=10] [RULES=1000]      (root, after ./build.sh)
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_EACH=${1:-10}
RULES=${2:-1000}
[[ $SECONDS_EACH =~ ^[0-9]+$ && $SECONDS_EACH -ge 1 && $SECONDS_EACH -le 120 ]] || { echo "SECONDS must be 1..120" >&2; exit 2; }
[[ $RULES =~ ^[0-9]+$ && $RULES -ge 2 && $RULES -le 60000 ]] || { echo "RULES must be 2..60000" >&2; exit 2; }
command -v iptables >/dev/null || { echo "iptables is missing: apt-get install iptables" >&2; exit 1; }
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/artifacts/bench-netpol/run-$STAMP
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
PORT=7100
CHAIN=PALBENCH
AGENT=
AGENT_DIR=

machine() {
    python3 -c 'import json,os,platform,sys; print(json.dumps({"date":sys.argv[1],"host":platform.node(),"kernel":platform.release(),"cpus":os.cpu_count(),"cpu":sys.argv[2]}))' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
}
MACHINE=$(machine)
record() { # record NAME JSON: one line of results, with the machine and the load
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r.update({"bench":sys.argv[1],"run":sys.argv[2],"machine":json.loads(sys.argv[4]),"load1":float(open("/proc/loadavg").read().split()[0])}); print(json.dumps(r))' \
        "$1" "$2" "$3" "$MACHINE" | tee -a "$RESULTS"
}

stop_agent() {
    if [[ -n $AGENT ]]; then kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; AGENT=; fi
    ip link del palbench1 2>/dev/null || true
    rm -rf /sys/fs/bpf/palisade-bench-np ${AGENT_DIR:+"$AGENT_DIR"}
    AGENT_DIR=
}
drop_iptables() {
    iptables -D FORWARD -j "$CHAIN" 2>/dev/null || true
    iptables -F "$CHAIN" 2>/dev/null || true
    iptables -X "$CHAIN" 2>/dev/null || true
}
all_cleanup() { cleanup; stop_agent; drop_iptables; rm -rf "${WORK:-/nonexistent}"; }

# The 999 other sources: 10.99.0.0/16 hosts, each on its own port 8000+i.
other() { printf '10.99.%d.%d' $(( $1 / 250 )) $(( $1 % 250 + 1 )); }

policy_yaml() { # policy_yaml CLIENT_ADDR CLIENT_PORT: the server's policy, the client's rule last
    local i
    printf 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: server-%s-rules\n  namespace: bench\nspec:\n  endpointSelector:\n    matchLabels:\n      app: server\n  ingress:\n' "$RULES"
    for ((i = 0; i < RULES - 1; i++)); do
        printf '  - fromCIDR: ["%s/32"]\n    toPorts: [{ports: [{port: "%d", protocol: TCP}]}]\n' "$(other "$i")" $((8000 + i))
    done
    printf '  - fromEndpoints: [{matchLabels: {app: client}}]\n    toPorts: [{ports: [{port: "%d", protocol: TCP}]}]\n' "$2"
}

crr() { # crr RUN CLIENT_NS SERVER_ADDR: one tcp_crr run, recorded
    local json
    json=$(ip netns exec "$2" "$WORK/bin/tcpbench" crr "$3" "$PORT" "$SECONDS_EACH")
    record tcp_crr "$1" "$json" >/dev/null
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-20s %10.1f connections/s  (errors %d)" % (sys.argv[2], r["per_second"], r["errors"]))' "$json" "$1" >&2
}

# ---- palisade: the agent, two pods through palisade-cni, no policy, then RULES rules.
WORK=$(mktemp -d /tmp/pal-np-bench.XXXXXX)
AGENT_DIR=$(mktemp -d /tmp/pal-np-agent.XXXXXX)
mkdir -p "$AGENT_DIR/plugins" "$AGENT_DIR/policies"
ln -s "$ROOT/artifacts/palisade-cni" "$AGENT_DIR/plugins/palisade-cni"
POD_CIDR=10.218.0.0/16
echo "==> palisade: the agent with --network-policy-dir" >&2
"$ROOT/artifacts/palisade" agent --pod-cidr "$POD_CIDR" \
    --ipam-state-dir "$AGENT_DIR/ipam" --endpoint-state-dir "$AGENT_DIR/endpoints" \
    --endpoint-socket "$AGENT_DIR/endpoint.sock" --cni-del-queue-dir "$AGENT_DIR/delq" --cni-conf-dir "$AGENT_DIR/net.d" \
    --datapath-host-device palbench1 --bpf-dir /sys/fs/bpf/palisade-bench-np --network-policy-dir "$AGENT_DIR/policies" \
    --export-filename "$AGENT_DIR/events.json" --health-server-address 127.0.0.1:6791 \
    --server-address "unix://$AGENT_DIR/api.sock" --log-level warn >"$AGENT_DIR/agent.out" 2>"$AGENT_DIR/agent.err" &
AGENT=$!
for _ in $(seq 150); do [[ -f $AGENT_DIR/net.d/05-palisade.conflist ]] && break; sleep 0.2; done
[[ -f $AGENT_DIR/net.d/05-palisade.conflist ]] || { echo "the agent wrote no conflist:" >&2; cat "$AGENT_DIR/agent.err" >&2; exit 1; }
PLUGIN_DIR=$AGENT_DIR/plugins CONFLIST=$AGENT_DIR/net.d/05-palisade.conflist
source "$ROOT/bench/cni/lib.sh"
bench_setup
trap all_cleanup EXIT
sleep 3
export CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=client;PALISADE_LABELS=app=client"
make_pod "palnp-$$-c"
CLIENT=$POD_ADDR
export CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=server;PALISADE_LABELS=app=server"
make_pod "palnp-$$-s"
SERVER=$POD_ADDR
unset CNI_ARGS
ip netns exec "palnp-$$-s" "$WORK/bin/tcpbench" server "$PORT" $((SECONDS_EACH * 6 + 120)) &
CLEANUP_PIDS+=($!)
sleep 0.5
status() { curl -s --max-time 5 "http://127.0.0.1:6791$1"; }
policy_state() { # the server policy's state and map entries, "" until it is listed
    status /v1/network-policies | python3 -c 'import json,sys
d=json.load(sys.stdin)["network_policy"]
p=[x for x in d["policies"] if x["name"]==sys.argv[1]]
print("%s %d" % (p[0]["state"], p[0]["map_entries"]) if p else "")' "server-$RULES-rules" 2>/dev/null || true
}

echo "==> tcp_crr, $SECONDS_EACH s each (load $(load1))" >&2
crr palisade "palnp-$$-c" "$SERVER"

policy_yaml "$CLIENT" "$PORT" >"$WORK/policy.yaml"
mv "$WORK/policy.yaml" "$AGENT_DIR/policies/server.yaml"
for _ in $(seq 600); do [[ $(policy_state) == validated* ]] && break; sleep 0.1; done
state=$(policy_state)
[[ $state == validated* ]] || { echo "the $RULES-rule policy was not applied: $state" >&2; cat "$AGENT_DIR/agent.err" >&2; exit 1; }
ENTRIES=${state#* }
crr palisade-$RULES "palnp-$$-c" "$SERVER"
record policy_map "palisade-$RULES" "$(python3 -c 'import json,sys; e=int(sys.argv[1]); print(json.dumps({"rules":int(sys.argv[2]),"map_entries":e,"key_value_bytes":e*20}))' "$ENTRIES" "$RULES")" >/dev/null
echo "  server's policy map: $ENTRIES entries, $((ENTRIES * 20)) bytes of keys and values (12 + 8 each; the trie's nodes come on top)" >&2

# Change to enforcement, five times each way, two kinds of change (renamed into place, as
# editors, kubectl and ConfigMap volumes replace files):
#   rewrite   the 1 000-rule file again with the client's rule on another port: the whole file
#             is parsed and the server compiled with its 1 000 identities
#   deny      a one-rule file added beside it (ingressDeny from the client to the server), then
#             deleted: the small file is parsed, the server compiled with the 1 000 identities
# Each is timed from the rename (or delete) to the start of the first connection attempt with
# the new verdict: a refused attempt's SYN was dropped when it was sent, so enforcement was in
# place when it began; the attempt before it (allowed, done in well under a millisecond) began
# before; attempts are ~2 ms apart, so the figure is at most ~2 ms late. Then the change is
# undone and the time until connections are accepted again is kept too.
policy_yaml "$CLIENT" $((PORT + 1)) >"$WORK/moved.yaml"
policy_yaml "$CLIENT" "$PORT" >"$WORK/allow.yaml"
cat >"$WORK/deny.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: deny-client
  namespace: bench
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: client
YAML
CHANGES=$(ip netns exec "palnp-$$-c" python3 - "$SERVER" "$PORT" "$WORK" "$AGENT_DIR/policies" "/proc/$$/ns/net" <<'PY'
import json, os, shutil, socket, statistics, subprocess, sys, time
server, port, work, policies, host_netns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def last_change():
    # The agent's own account of the change (status last_change), read from the host's namespace.
    out = subprocess.run(["nsenter", "--net=" + host_netns, "curl", "-s", "--max-time", "5", "http://127.0.0.1:6791/v1/network-policies"],
                         capture_output=True, text=True).stdout
    try:
        return json.loads(out)["network_policy"].get("last_change")
    except (ValueError, KeyError):
        return None
def refused():
    s = socket.socket()
    s.settimeout(0.05)
    try:
        s.connect((server, port))
        return False
    except OSError:
        return True
    finally:
        s.close()
def place(name, target):
    shutil.copy(os.path.join(work, name), os.path.join(work, "next.yaml"))
    return lambda: os.rename(os.path.join(work, "next.yaml"), os.path.join(policies, target))
def timed(act, want_refused, agent=None):
    start = time.monotonic()
    act()
    while True:
        began = time.monotonic()
        if refused() == want_refused:
            time.sleep(0.3)
            if agent is not None:
                agent.append(last_change())
            return round((began - start) * 1000, 1)
        if began - start > 30:
            return None
        time.sleep(0.002)  # a probe every ~2 ms: resolution enough, and the probes' own flows do not load the agent
assert not refused(), "the client is refused before the changes"
result = {}
for kind, apply, undo in [
        ("rewrite", lambda: place("moved.yaml", "server.yaml"), lambda: place("allow.yaml", "server.yaml")),
        ("deny", lambda: place("deny.yaml", "deny.yaml"), lambda: (lambda: os.unlink(os.path.join(policies, "deny.yaml"))))]:
    applied, undone, agent = [], [], []
    for _ in range(5):
        applied.append(timed(apply(), True, agent))
        undone.append(timed(undo(), False))
    ok = [x for x in applied if x is not None]
    result[kind] = {"ms": applied, "undo_ms": undone, "median_ms": statistics.median(ok) if ok else None, "max_ms": max(ok) if ok else None, "agent": agent}
print(json.dumps(result))
PY
)
record policy_change_to_enforcement "palisade-$RULES" "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["rules"]=int(sys.argv[2]); print(json.dumps(r))' "$CHANGES" "$RULES")" >/dev/null
echo "  policy change to enforcement: $CHANGES" >&2
cleanup
stop_agent

# ---- ptp + host-local, then the same rules in iptables.
echo "==> ptp + host-local (routed through FORWARD)" >&2
PLUGIN_DIR=/usr/lib/cni CONFLIST=$HERE/ptp.conflist POD_CIDR=
bench_setup
trap all_cleanup EXIT
sysctl -qw net.ipv4.ip_forward=1
make_pod "palnp-$$-pc"
CLIENT=$POD_ADDR
make_pod "palnp-$$-ps"
SERVER=$POD_ADDR
ip netns exec "palnp-$$-ps" "$WORK/bin/tcpbench" server "$PORT" $((SECONDS_EACH * 3 + 60)) &
CLEANUP_PIDS+=($!)
sleep 0.5
crr ptp "palnp-$$-pc" "$SERVER"
{
    echo "*filter"
    echo ":$CHAIN - [0:0]"
    echo "-A $CHAIN -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
    for ((i = 0; i < RULES - 1; i++)); do
        echo "-A $CHAIN -s $(other "$i")/32 -d $SERVER/32 -p tcp --dport $((8000 + i)) -j ACCEPT"
    done
    echo "-A $CHAIN -s $CLIENT/32 -d $SERVER/32 -p tcp --dport $PORT -j ACCEPT"
    echo "-A $CHAIN -d $SERVER/32 -j DROP"
    echo "COMMIT"
} >"$WORK/rules"
iptables-restore --noflush <"$WORK/rules"
iptables -I FORWARD -j "$CHAIN"
crr ptp-iptables-$RULES "palnp-$$-pc" "$SERVER"
record iptables "ptp-iptables-$RULES" "{\"rules\":$(iptables -S "$CHAIN" | grep -c '^-A')}" >/dev/null
drop_iptables

python3 - "$RESULTS" "$RULES" <<'PY' | tee "$OUT/ratios.txt"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
rules = sys.argv[2]
crr = {x["run"]: x["per_second"] for x in r if x["bench"] == "tcp_crr"}
m = r[0]["machine"]
print(f"network policy, {rules} rules: {m['date']}, {m['host']}, kernel {m['kernel']}, {m['cpus']} x {m['cpu']}")
for run, v in crr.items():
    print(f"  tcp_crr {run:<20} {v:>10.1f} /s")
p, p1, i0, i1 = crr["palisade"], crr[f"palisade-{rules}"], crr["ptp"], crr[f"ptp-iptables-{rules}"]
print(f"  palisade with policy / without: {p1 / p:.2f} (goal >= 0.95)")
print(f"  iptables with rules / without:  {i1 / i0:.2f}")
print(f"  palisade with policy / iptables with rules: {p1 / i1:.2f} (goal > 1)")
for x in r:
    if x["bench"] == "policy_change_to_enforcement":
        for kind in ("rewrite", "deny"):
            k = x[kind]
            print(f"  policy change to enforcement, {kind}: median {k['median_ms']} ms, max {k['max_ms']} ms of {len(k['ms'])} (goal < 50); undone: {k['undo_ms']} ms")
            parts = [a for a in k.get("agent", []) if a]
            if parts:
                med = lambda f: sorted(a[f] for a in parts)[len(parts) // 2]
                print(f"    the agent's share (median): parse {med('parse_ms')} ms, compile {med('compile_ms')} ms, write {med('apply_ms')} ms")
    if x["bench"] == "policy_map":
        print(f"  server's policy map: {x['map_entries']} entries, {x['key_value_bytes']} bytes of keys and values")
PY
echo "results: $OUT" >&2
