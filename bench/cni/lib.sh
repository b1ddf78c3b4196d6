# Shared by the bench/cni scripts (sourced): builds the C helpers, renders the chain, guards
# the pod CIDR with a blackhole route, makes pods (a netns + CNI ADD through cnidriver) and
# removes everything it made on exit, also after a failure or Ctrl-C.
# Needs: PLUGIN_DIR, CONFLIST, WORK (a scratch folder the caller owns).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/cni: %s\n' "$*" >&2; exit 1; }

declare -a CLEANUP_NETNS=() CLEANUP_PIDS=() CLEANUP_PODS=() CLEANUP_LINKS=()
CLEANUP_BLACKHOLE=""
IP_FORWARD_BEFORE=""

cleanup() {
    local pid pod link ns
    for pid in "${CLEANUP_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${CLEANUP_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for pod in "${CLEANUP_PODS[@]}"; do
        "$WORK/bin/cnidriver" del "$WORK/chain" "$pod" "/run/netns/$pod" "$WORK/pods/$pod.json" 2>/dev/null || true
    done
    for ns in "${CLEANUP_NETNS[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
    for link in "${CLEANUP_LINKS[@]}"; do ip link delete dev "$link" 2>/dev/null || true; done
    [[ -n $CLEANUP_BLACKHOLE ]] && ip route del blackhole "$CLEANUP_BLACKHOLE" 2>/dev/null
    # A plugin may turn forwarding on (bridge with isGateway does): put back what the machine had.
    [[ -n $IP_FORWARD_BEFORE ]] && sysctl -qw net.ipv4.ip_forward="$IP_FORWARD_BEFORE"
    CLEANUP_PIDS=() CLEANUP_PODS=() CLEANUP_NETNS=() CLEANUP_LINKS=() CLEANUP_BLACKHOLE=""
}

bench_setup() {
    [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, CNI plugins)"
    [[ -d $PLUGIN_DIR ]] || die "PLUGIN_DIR $PLUGIN_DIR is not a folder (e.g. /usr/lib/cni)"
    [[ -f $CONFLIST ]] || die "CONFLIST $CONFLIST does not exist (e.g. bench/cni/bridge.conflist)"
    command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$WORK/bin" "$WORK/pods" "$WORK/ipam"
    gcc -O2 -Wall -Werror -o "$WORK/bin/cnidriver" "$BENCH_DIR/cnidriver.c"
    gcc -O2 -Wall -Werror -o "$WORK/bin/tcpbench" "$BENCH_DIR/tcpbench.c"
    # The plugin dir first, then the reference plugins (for chains that add loopback, tuning, ...).
    export CNI_PATH="$PLUGIN_DIR${CNI_PATH_EXTRA:+:$CNI_PATH_EXTRA}"
    local notes subnet bridge
    notes=$(python3 "$BENCH_DIR/render-chain.py" "$CONFLIST" "$WORK/chain" --host-local-data "$WORK/ipam")
    while read -r kind value; do
        case $kind in
            bridge) ip link show dev "$value" >/dev/null 2>&1 || CLEANUP_LINKS+=("$value") ;;
            subnet) subnet=${subnet:-$value} ;;
        esac
    done <<<"$notes"
    # The blackhole covers the pod CIDR (POD_CIDR when the plugin's IPAM is not in the conflist).
    POD_CIDR=${POD_CIDR:-$subnet}
    [[ -n $POD_CIDR ]] || die "the conflist names no IPAM subnet: set POD_CIDR to the range the plugin allocates from"
    if ! ip route show type blackhole | grep -q "^blackhole $POD_CIDR\b"; then
        ip route add blackhole "$POD_CIDR"
        CLEANUP_BLACKHOLE=$POD_CIDR
    fi
    IP_FORWARD_BEFORE=$(sysctl -n net.ipv4.ip_forward)
}

# Makes N netns named PREFIX-0.. and prints their paths; they are deleted on exit.
make_netns() {
    local prefix=$1 n=$2 i batch=""
    for ((i = 0; i < n; i++)); do
        batch+="netns add $prefix-$i"$'\n'
        CLEANUP_NETNS+=("$prefix-$i")
    done
    ip -batch - <<<"$batch"
    for ((i = 0; i < n; i++)); do
        ip -n "$prefix-$i" link set lo up
        echo "/run/netns/$prefix-$i"
    done
}

# A pod: netns NAME with the plugin's interface (CNI ADD); its IPv4 address goes to POD_ADDR.
# Not for $(...): the cleanup lists must be filled in this shell, not a subshell.
make_pod() {
    local name=$1
    ip netns add "$name"
    CLEANUP_NETNS+=("$name")
    ip -n "$name" link set lo up
    "$WORK/bin/cnidriver" add "$WORK/chain" "$name" "/run/netns/$name" "$WORK/pods/$name.json" || die "CNI ADD for pod $name failed"
    CLEANUP_PODS+=("$name")
    POD_ADDR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"].split("/")[0])' "$WORK/pods/$name.json")
}

# Load average over the last minute, for the record next to every figure.
load1() { cut -d' ' -f1 /proc/loadavg; }
