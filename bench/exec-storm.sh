#!/usr/bin/env bash
# Exec-storm throughput with the agent running vs not running, same machine, same run,
# alternating rounds so drift hits both sides alike. Prints execs/s and the ratio.
# usage: bench/exec-storm.sh [EXECS_PER_ROUND] [ROUNDS]   (root; after ./build.sh)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
N=${1:-20000}
ROUNDS=${2:-3}
mkdir -p artifacts/bench
gcc -O2 -Wall -o artifacts/bench/execstorm tests/Palisade.IntegrationTests/helpers/execstorm.c
storm() { local s e; s=$(date +%s%N); artifacts/bench/execstorm "$N" 2 /bin/true >/dev/null; e=$(date +%s%N); echo $(( N * 1000000000 / (e - s) )); }
agent_start() {
    ./artifacts/palisade agent --export-filename artifacts/bench/events.json --health-server-address 127.0.0.1:6788 --log-level warn >/dev/null 2>artifacts/bench/agent.err &
    AGENT=$!
    for _ in $(seq 100); do curl -sf 127.0.0.1:6788/readyz >/dev/null && return; sleep 0.2; done
    echo "agent did not become ready" >&2; exit 1
}
agent_stop() { kill -TERM "$AGENT"; wait "$AGENT" || true; }
without=(); with=(); rss=()
for r in $(seq "$ROUNDS"); do
    without+=("$(storm)")
    rm -f artifacts/bench/events.json
    agent_start
    idle=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
    # Warm-up: the first seconds of a fresh agent include JIT tiering, a one-time cost.
    artifacts/bench/execstorm 3000 2 /bin/true >/dev/null
    with+=("$(storm)")
    sleep 1
    after=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
    status=$(curl -s 127.0.0.1:6788/v1/status)
    agent_stop
    rss+=("$idle/$after")
    echo "round $r: without agent ${without[-1]} execs/s, with agent ${with[-1]} execs/s, agent RSS idle/after ${idle}/${after} KiB, lost $(python3 -c 'import json,sys; d=json.loads(sys.argv[1])["process_sensor"]; print(d["kernel_lost_exec"]+d["kernel_lost_exit"]+d["kernel_lost_fork"])' "$status")"
done
python3 - "${without[*]}" "${with[*]}" <<'PY'
import sys, statistics
wo = [int(x) for x in sys.argv[1].split()]
wi = [int(x) for x in sys.argv[2].split()]
print(f"median without agent: {statistics.median(wo)} execs/s; with agent: {statistics.median(wi)} execs/s; ratio {statistics.median(wi)/statistics.median(wo):.3f}")
PY
