#!/usr/bin/env bash
# CNI ADD and DEL latency as a runtime sees it: N fresh network namespaces (made before, not
# timed, as a runtime makes the sandbox first), ADD into each in turn, then DEL each in turn;
# every call timed by cnidriver from spawning the plugin to reaping it (the plugin's start-up
# counts, this script's does not). One warm-up ADD+DEL first, not counted: it pays for the
# one-time setup (e.g. the bridge plugin creating its bridge) and the page cache.
#   bench/cni/cni-add-del.sh PLUGIN_DIR CONFLIST [N=100] [OUT_DIR]
# Prints JSON lines (one per command) and writes OUT_DIR/cni-add-del.tsv (every call).
set -euo pipefail
PLUGIN_DIR=$(readlink -f "${1:?usage: cni-add-del.sh PLUGIN_DIR CONFLIST [N] [OUT_DIR]}")
CONFLIST=$(readlink -f "${2:?usage: cni-add-del.sh PLUGIN_DIR CONFLIST [N] [OUT_DIR]}")
N=${3:-100}
OUT=${4:-$(mktemp -d /tmp/pal-cni-bench.XXXXXX)}
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 1000 ]] || { echo "N must be 1..1000, not $N" >&2; exit 2; }
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/pal-cni-add-del.XXXXXX)
source "$(dirname "$(readlink -f "$0")")/lib.sh"
trap 'cleanup; rm -rf "$WORK"' EXIT
bench_setup
trap 'cleanup; rm -rf "$WORK"' EXIT

prefix="palbench-$$"
make_netns "$prefix-warm" 1 >"$WORK/warm.list"
"$WORK/bin/cnidriver" bench "$WORK/chain" "$WORK/warm.list" "$WORK/warm.tsv" >/dev/null
make_netns "$prefix" "$N" >"$WORK/netns.list"
log "CNI ADD+DEL over $N namespaces (load $(load1))"
"$WORK/bin/cnidriver" bench "$WORK/chain" "$WORK/netns.list" "$OUT/cni-add-del.tsv" |
    python3 -c 'import json,sys; [print(json.dumps({**json.loads(l), "load1": float(sys.argv[1])})) for l in sys.stdin]' "$(load1)"
