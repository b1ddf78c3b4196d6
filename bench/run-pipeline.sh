#!/usr/bin/env bash
# User-space pipeline throughput (decode+enrich, JSON encode) on records recorded from a
# real exec storm on this kernel. Needs root (it loads the process sensor to record).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
mkdir -p artifacts/bench
gcc -O2 -Wall -o artifacts/bench/execstorm tests/Palisade.IntegrationTests/helpers/execstorm.c
export PALISADE_EXECSTORM=$PWD/artifacts/bench/execstorm
dotnet run -c Release --project bench/Palisade.Bench -- --filter '*PipelineBenchmarks*' --artifacts artifacts/bench "$@"
