#!/usr/bin/env bash
# Fuzzes one parser with AFL++ through SharpFuzz for a fixed time, then reports execs and findings.
#   tests/Palisade.Fuzz/fuzz.sh TARGET SECONDS      TARGET: policy | settings | filters | events | cni | network-policy | node | identity | flows | observe | getevents | explain | services
# Installs what it needs (Debian afl++, the dotnet tool SharpFuzz.CommandLine) and is safe to run
# again; as root for apt-get. Work goes to artifacts/fuzz/TARGET: the instrumented build (bin), the
# seeds (in) and AFL's output (out, with crashes/ and hangs/). Every finding must become a test
# in tests/Palisade.Tests/FuzzFindings and be fixed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

TARGET=${1:-}
SECONDS_TO_RUN=${2:-}
SHARPFUZZ_VERSION=2.3.0
if [[ ! $TARGET =~ ^(policy|settings|filters|events|cni|network-policy|node|identity|flows|observe|getevents|explain|services)$ || ! $SECONDS_TO_RUN =~ ^[0-9]+$ ]]; then
    echo "usage: $0 policy|settings|filters|events|cni|network-policy|node|identity|flows|observe|getevents|explain|services SECONDS" >&2
    exit 2
fi
log() { printf '==> %s\n' "$*" >&2; }

# The assemblies whose code the target runs: coverage comes from instrumenting them. YamlDotNet
# is instrumented too, since the crash that started this harness was in its scanner.
case $TARGET in
    policy|network-policy|services) INSTRUMENT=(Palisade.Policies.dll YamlDotNet.dll) ;;
    # Palisade.Exporters: the Cloud ID decoder (elasticsearch-cloud-id).
    settings) INSTRUMENT=(Palisade.Agent.dll Palisade.Policies.dll Palisade.Exporters.dll YamlDotNet.dll) ;;
    filters) INSTRUMENT=(Palisade.Exporters.dll) ;;
    events) INSTRUMENT=(Palisade.Runtime.dll) ;;
    cni) INSTRUMENT=(palisade-cni.dll) ;;
    # The decoder, then the exporter and the CLI reader each flow goes through.
    flows) INSTRUMENT=(Palisade.Datapath.dll Palisade.Exporters.dll palisade.dll) ;;
    observe) INSTRUMENT=(palisade.dll Palisade.Datapath.dll) ;;
    getevents) INSTRUMENT=(palisade.dll Palisade.Exporters.dll) ;;
    explain) INSTRUMENT=(Palisade.Agent.dll Palisade.Policies.dll) ;;
esac

if ! command -v afl-fuzz >/dev/null; then
    log "installing afl++"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi
TOOLS=artifacts/fuzz/tools
if [[ ! -x $TOOLS/sharpfuzz ]]; then
    log "installing SharpFuzz.CommandLine $SHARPFUZZ_VERSION"
    dotnet tool install SharpFuzz.CommandLine --version "$SHARPFUZZ_VERSION" --tool-path "$TOOLS" >/dev/null
fi

log "building tests/Palisade.Fuzz"
dotnet build tests/Palisade.Fuzz -c Release -nologo -v quiet -clp:NoSummary >&2
WORK=artifacts/fuzz/$TARGET
# Instrumented code writes to AFL's coverage map, which only exists under afl-fuzz: seeds and
# replays run on the plain build.
PLAIN=artifacts/bin/Palisade.Fuzz/release/Palisade.Fuzz
rm -rf "$WORK/bin" "$WORK/in" "$WORK/out"
mkdir -p "$WORK"
"$PLAIN" "$TARGET" --seeds "$WORK/in" >&2
# A fresh copy each run: instrumenting twice is an error, and the plain build stays plain.
cp -r artifacts/bin/Palisade.Fuzz/release "$WORK/bin"
for dll in "${INSTRUMENT[@]}"; do
    "$TOOLS/sharpfuzz" "$WORK/bin/$dll" >/dev/null
done

log "fuzzing $TARGET for $SECONDS_TO_RUN s (instrumented: ${INSTRUMENT[*]})"
# -t: a .NET input can pause for a GC; 5 s is a hang, not a slow input. -m none: the runtime
# reserves far more virtual memory than AFL's default limit.
AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
    afl-fuzz -V "$SECONDS_TO_RUN" -t 5000 -m none -i "$WORK/in" -o "$WORK/out" -- "$WORK/bin/Palisade.Fuzz" "$TARGET" \
    >"$WORK/afl.log" 2>&1 || { tail -30 "$WORK/afl.log" >&2; exit 1; }

stats=$WORK/out/default/fuzzer_stats
stat() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(find "$WORK/out/default/crashes" -type f -name 'id:*' | wc -l)
hangs=$(find "$WORK/out/default/hangs" -type f -name 'id:*' | wc -l)
echo "target=$TARGET seconds=$(stat run_time) execs=$(stat execs_done) execs_per_sec=$(stat execs_per_sec) corpus=$(stat corpus_count) crashes=$crashes hangs=$hangs"
# Each crash replayed outside AFL, so the report shows the exception, not just a file name.
for f in "$WORK"/out/default/crashes/id:*; do
    [[ -e $f ]] || continue
    echo "--- $f"
    "$PLAIN" "$TARGET" --replay "$f" 2>&1 | head -8 || true
done
for f in "$WORK"/out/default/hangs/id:*; do
    [[ -e $f ]] && echo "--- hang: $f"
done
exit 0
