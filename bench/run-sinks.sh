#!/usr/bin/env bash
# Events/s each export sink sustains on one core (JSON file, Elasticsearch _bulk to a loopback
# server, gRPC GetEvents stream) and bytes per exported event. The benchmark process is pinned
# to CPU 0; the sink's peer (the _bulk server, the stream reader) runs on CPU 1. Needs root
# (it records real kernel events first) and two CPUs.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [ "$(nproc)" -lt 2 ]; then
  echo "run-sinks.sh needs two CPUs: the sink on one, its peer on the other" >&2
  exit 1
fi
mkdir -p artifacts/bench
gcc -O2 -Wall -o artifacts/bench/execstorm tests/Palisade.IntegrationTests/helpers/execstorm.c
dotnet build -c Release -o artifacts/bench/bin bench/Palisade.Bench >/dev/null
export PALISADE_EXECSTORM=$PWD/artifacts/bench/execstorm
export PALISADE_BENCH_PEER=$PWD/artifacts/bench/bin/Palisade.Bench
dotnet run -c Release --project bench/Palisade.Bench -- --filter '*SinkBenchmarks*' --artifacts artifacts/bench "$@"
