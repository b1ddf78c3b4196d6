#!/usr/bin/env bash
# Cost of an unrelated openat with 0, 1, 10 and 100 file policies loaded, as a ratio to the
# agent not running, next to the floor: an empty program on the same hook (bench/hookfloor.*). Each policy is an fd_install Prefix rule on its own directory (the
# shape of a file-integrity policy); the benchmark opens /etc/hostname, which none match, so
# every call pays the hook, the in-kernel path resolution and the lookups, never an event.
# Rounds alternate so drift hits every configuration alike; medians are reported.
# usage: bench/openat-policies.sh [OPENS_PER_RUN] [ROUNDS]   (root; after ./build.sh)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
N=${1:-300000}
ROUNDS=${2:-5}
mkdir -p artifacts/bench
gcc -O2 -Wall -o artifacts/bench/openbench bench/openbench.c
clang -O2 -g -target bpf -Iartifacts/bpf/include -c bench/hookfloor.bpf.c -o artifacts/bench/hookfloor.bpf.o
gcc -O2 -Wall -o artifacts/bench/hookfloor bench/hookfloor.c -lbpf
measure() { artifacts/bench/openbench "$N" /etc/hostname; }
floor() { artifacts/bench/hookfloor artifacts/bench/hookfloor.bpf.o artifacts/bench/openbench "$N" /etc/hostname; }

policies() { # $1: how many policy files to write into artifacts/bench/policies-$1
    local dir="artifacts/bench/policies-$1"
    rm -rf "$dir"; mkdir -p "$dir"
    for i in $(seq 1 "$1"); do
        cat > "$dir/p$i.yaml" <<YAML
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: bench-$i
spec:
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Prefix"
        values:
        - "/srv/palisade-bench-$i/"
      matchActions:
      - action: Post
YAML
    done
    echo "$dir"
}

agent_start() { # $1: policy count
    local dir; dir=$(policies "$1")
    ./artifacts/palisade agent --tracing-policy-dir "$PWD/$dir" --health-server-address 127.0.0.1:6789 --log-level warn >/dev/null 2>artifacts/bench/agent.err &
    AGENT=$!
    for _ in $(seq 150); do
        if [ "$(curl -sf 127.0.0.1:6789/v1/policies | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin) if p["state"]=="enabled"))' 2>/dev/null)" = "$1" ] \
            && curl -sf 127.0.0.1:6789/readyz >/dev/null; then
            return
        fi
        sleep 0.2
    done
    echo "agent did not load $1 policies" >&2; exit 1
}
agent_stop() { kill -TERM "$AGENT"; wait "$AGENT" || true; }

declare -A results
for r in $(seq "$ROUNDS"); do
    results[none]+="$(measure) "
    results[floor]+="$(floor) "
    for k in 0 1 10 100; do
        agent_start "$k"
        measure >/dev/null # warm-up
        results[$k]+="$(measure) "
        agent_stop
    done
    echo "round $r: none ${results[none]##* } ... (ns per openat+close; last values)" >&2
done
python3 - "${results[none]}" "${results[floor]}" "${results[0]}" "${results[1]}" "${results[10]}" "${results[100]}" <<'PY'
import sys, statistics
names = ["agent not running", "empty sys_exit prog", "agent, 0 policies", "1 policy", "10 policies", "100 policies"]
med = [statistics.median(float(x) for x in a.split()) for a in sys.argv[1:]]
for name, m in zip(names, med):
    print(f"{name:19}: {m:8.1f} ns per openat+close   ratio {m/med[0]:.3f}")
PY
