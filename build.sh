#!/usr/bin/env bash
# The README's two commands, runnable as root on a fresh clone:
#   ./build.sh run   build, then run the agent standalone in the foreground (Ctrl-C stops it)
#   ./build.sh test  build, then run every test (unit and privileged kernel tests)
# Both install what is missing first (Debian packages, NuGet restore); running again is cheap.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

# Build: clang/llvm/libbpf-dev/bpftool compile the BPF objects and generate vmlinux.h.
# Run: libbpf1 (loaded by the agent), iproute2. Tests: iputils-ping for traffic between test namespaces,
# prometheus (a real server scrapes the agent in the metrics test). Pod networking tests and
# bench/cni: podman + runc (a real runtime), containernetworking-plugins (the reference CNI plugins,
# the baseline), busybox-static (the containers' rootfs), iperf3 and netcat-openbsd (pod-to-pod traffic).
APT_PACKAGES=(clang llvm libbpf-dev libbpf1 bpftool libelf-dev zlib1g-dev iproute2 iputils-ping gcc libc6-dev prometheus
    podman runc containernetworking-plugins busybox-static iperf3 netcat-openbsd)
CONFIGURATION=${CONFIGURATION:-Release}

log() { printf '==> %s\n' "$*" >&2; }

install_prerequisites() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            log "missing Debian packages: ${missing[*]}; run as root (or apt-get install them) and try again"
            exit 1
        fi
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v dotnet >/dev/null; then
        log "the .NET 10 SDK is missing: install it (https://dot.net) and try again"
        exit 1
    fi
}

# Runs a restore until it succeeds, at most four times: a NuGet feed that is briefly unreachable
# (a DNS hiccup, a 503) must cost a retry, not a failed run. A real error (a package the feed does
# not serve) fails the same way every time and is reported after the last try.
restore() {
    local attempt delay=10
    for attempt in 1 2 3 4; do
        if dotnet restore "$@" -nologo -v quiet 1>&2; then
            return 0
        fi
        ((attempt < 4)) || break
        log "restore of $1 failed (attempt $attempt of 4); retrying in ${delay}s"
        sleep "$delay"
        delay=$((delay * 2))
    done
    log "restore of $1 failed 4 times; is the NuGet feed reachable (dotnet nuget list source)?"
    return 1
}

build() {
    log "restoring NuGet packages"
    restore Palisade.sln
    log "building ($CONFIGURATION)"
    # Build output goes to stderr: the agent's stdout is reserved for events.
    dotnet build Palisade.sln -c "$CONFIGURATION" --no-restore -nologo -v quiet -clp:NoSummary 1>&2
    publish_cni
}

# The CNI plugin, NativeAOT, to ./artifacts/palisade-cni (a runtime starts it per pod, so it must
# start in milliseconds; tests run this very file). A no-op `dotnet publish` still costs tens of
# seconds of ILC checks, so it is skipped when the binary is newer than everything it is built from.
CNI_BINARY=artifacts/palisade-cni
publish_cni() {
    local inputs=(agent/Palisade.Cni agent/Palisade.Cni.Api Directory.Build.props Directory.Packages.props global.json)
    if [[ -x $CNI_BINARY ]] && [[ -z $(find "${inputs[@]}" -newer "$CNI_BINARY" -type f -print -quit) ]]; then
        return
    fi
    log "publishing palisade-cni (NativeAOT)"
    local out=artifacts/publish/palisade-cni
    restore agent/Palisade.Cni -r linux-x64 -p:PublishAot=true
    dotnet publish agent/Palisade.Cni -c "$CONFIGURATION" -r linux-x64 -p:PublishAot=true --no-restore -o "$out" -nologo -v quiet -clp:NoSummary 1>&2
    # Replaced in one rename, so a runtime or a test never executes a half-copied file.
    cp "$out/palisade-cni" "$CNI_BINARY.tmp"
    mv -f "$CNI_BINARY.tmp" "$CNI_BINARY"
}

run_tests() {
    local results=artifacts/test-results
    rm -rf "$results"
    log "running tests"
    local rc=0
    dotnet test Palisade.sln -c "$CONFIGURATION" --no-build -nologo \
        --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" || rc=$?
    summarize "$results"
    return "$rc"
}

# Adds up the TRX counters of every test assembly and names each skipped test with its reason.
summarize() {
    local dir=$1 passed=0 failed=0 skipped=0 trx counters
    shopt -s nullglob
    for trx in "$dir"/*.trx; do
        counters=$(grep -o '<Counters [^>]*>' "$trx")
        passed=$((passed + $(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")))
        failed=$((failed + $(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters")))
        skipped=$((skipped + $(sed -E 's/.* notExecuted="([0-9]+)".*/\1/' <<<"$counters")))
    done
    if ((failed)); then
        # The console log scrolls; CI keeps only its tail, so the failures are named again here.
        echo "Failed tests (first lines of the message):"
        for trx in "$dir"/*.trx; do
            python3 - "$trx" <<'PY' 2>/dev/null || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") == "Failed":
        msg = r.find(".//t:Output/t:ErrorInfo/t:Message", ns)
        stack = r.find(".//t:Output/t:ErrorInfo/t:StackTrace", ns)
        print(f"  {r.get('testName')}")
        for line in ((msg.text if msg is not None else "") or "").strip().splitlines()[:12]:
            print(f"      {line}")
        for line in ((stack.text if stack is not None else "") or "").strip().splitlines()[:4]:
            print(f"      {line}")
PY
        done
    fi
    if ((skipped)); then
        echo "Skipped tests (reason):"
        for trx in "$dir"/*.trx; do
            python3 - "$trx" <<'PY' 2>/dev/null || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") == "NotExecuted":
        msg = r.find(".//t:Output/t:ErrorInfo/t:Message", ns)
        text = r.find(".//t:Output/t:StdOut", ns)
        reason = (msg.text if msg is not None else (text.text if text is not None else "")) or ""
        print(f"  {r.get('testName')}: {reason.strip()}")
PY
        done
    fi
    echo "tests: $passed passed, $failed failed, $skipped skipped"
}

case "${1:-}" in
    run)
        shift
        install_prerequisites
        build
        # Standalone defaults: events on stdout (compact) and as JSON lines in a file, and the
        # safe default selection of policies/examples (edits there apply live).
        set -- --export-stdout compact --export-filename /var/log/palisade/events.json \
            --tracing-policy-dir "$PWD/policies/examples" --tracing-policy-selector palisade.io/default=true "$@"
        log "starting the agent: ./artifacts/palisade agent $* (Ctrl-C to stop)"
        exec ./artifacts/palisade agent "$@"
        ;;
    test)
        install_prerequisites
        build
        run_tests
        ;;
    *)
        echo "usage: $0 run [agent flags...] | test" >&2
        exit 2
        ;;
esac
