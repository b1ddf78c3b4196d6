#!/usr/bin/env bash
# Services in BPF against the kube-proxy modes they replace (issue 18), same run, same machine:
# for each number of ClusterIP services N, new TCP connections/s from one client to the LAST
# service (tcpbench crr: connect, 1-byte request, 1-byte reply, close; one connection at a
# time) and the time to change one service's endpoints when N exist:
#   direct    the client connects to a backend address: the limit (no service translation)
#   palisade  socket-LB: bpf/net/lb.bpf.c on cgroup connect4/sendmsg/recvmsg/getpeername of a
#             cgroup holding only the client (Palisade.Bench service-scale); update = the median
#             ServiceDatapath.Upsert of one service whose endpoints changed (of UPSERT_REPEATS)
#   iptables  kube-proxy's iptables mode, its nat/filter rules in the client's namespace
#             (OUTPUT -> KUBE-SERVICES: the client is a local process there); update = ONE
#             FULL-SYNC iptables-restore (every chain rewritten: kube-proxy's first sync, its
#             resync after a failure, and every sync before 1.27)
#   nftables  kube-proxy's nftables mode (table ip kube-proxy, service-ips verdict map);
#             update = one partial-sync `nft -f` transaction (the changed service's chains)
# The rules are written by bench/services/kubeproxy_rules.py (kube-proxy's layout, hash-named
# chains and all); its JSON (in the .jsonl) has the other update kinds: the iptables partial
# sync kube-proxy >= 1.27 writes (KUBE-SERVICES in full + the changed chains), the one-chain
# floor, iptables-save, nft add and full resync, and the first programming of all N.
# The service under test is the last of KUBE-SERVICES: iptables walks the rules one by one.
#
#   bench/service-scale.sh [SERVICES...]         (root; default 1 1000 10000 30000)
#   env: SECONDS_PER_POINT=5  ROUNDS=3 (crr runs per mode and size, modes interleaved; the
#        median is reported)  PALISADE=1 (0: skip the palisade column, "-")
#        IPTABLES=iptables (or iptables-legacy / iptables-nft)  PALISADE_BENCH=path of a built
#        Palisade.Bench (default: dotnet build -c Release)  UPSERT_REPEATS=200
#        RESULTS=bench/services/results
# Prints a header and one line per size, writes them to RESULTS/service-scale-STAMP.tsv (read
# by bench/services/plot.py) and the details (every JSON line: tcpbench's p50/p99 latency of a
# whole connect+request+reply+close transaction, TCP counters, machine, load) to
# ...-STAMP.jsonl. With 30 000 services a run takes about an hour: iptables-nft-restore needs
# tens of minutes for one full restore of that table (kubeproxy_rules.py says why).
# Network: a server namespace with both backends (10.231.2.1, 10.231.2.2, one tcpbench server
# on both), one client namespace per mode (all four at once, each its own address, reached
# over its own veth from the root namespace: plain routing). VIPs are in 10.240.0.0/12, the
# other services' endpoints in 10.232.0.0/15: both blackholed in the root namespace, as is
# 10.231.0.0/16 beyond the routes made here, so nothing leaves the machine. Everything is
# removed on exit, also after a failure or Ctrl-C.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if (($# == 0)); then set -- 1 1000 10000 30000; fi
SIZES=("$@")
SECONDS_PER_POINT=${SECONDS_PER_POINT:-5}
ROUNDS=${ROUNDS:-3}
PALISADE=${PALISADE:-1}
IPTABLES=${IPTABLES:-iptables}
UPSERT_REPEATS=${UPSERT_REPEATS:-200}
RESULTS=${RESULTS:-$HERE/services/results}
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 60000 ]] || { echo "SERVICES must be 1..60000, not '$n'" >&2; exit 2; }
done
[[ $SECONDS_PER_POINT =~ ^[0-9]+$ && $SECONDS_PER_POINT -ge 1 && $SECONDS_PER_POINT -le 120 ]] || { echo "SECONDS_PER_POINT must be 1..120" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 20 ]] || { echo "ROUNDS must be 1..20" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, iptables, BPF)" >&2; exit 1; }
for tool in gcc python3 "$IPTABLES" "$IPTABLES-restore" nft; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install gcc iptables nftables python3)" >&2; exit 1; }
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'service-scale: %s\n' "$*" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS"
TSV=$RESULTS/service-scale-$STAMP.tsv
DETAILS=$RESULTS/service-scale-$STAMP.jsonl
WORK=$(mktemp -d /tmp/pal-svc-bench.XXXXXX)
P=psv$$                 # names of everything made here (netns, veths, cgroup)
SRV=$P-srv
SRV_LINK=10.231.1       # root .1, server .2
BACKENDS=(10.231.2.1 10.231.2.2)
GW=10.231.3.1           # the root namespace's address on every client veth
CLI_NET=10.231.3        # clients .2 ..: a new address for every client namespace
BPORT=7200              # the backends' port
VPORT=80                # the services' port
VIP_BASE=10.240.0.0     # service i has VIP_BASE + i + 1; the one under test is the last
BLACKHOLES=(10.231.0.0/16 10.232.0.0/15 10.240.0.0/12)
MODES=(direct palisade nftables iptables)
[[ $PALISADE == 1 ]] || MODES=(direct nftables iptables)

declare -a ADDED_BLACKHOLES=() NETNS=() LINKS=() PIDS=()
IP_FORWARD_BEFORE=""
CGROUP=""
PAL_PID="" PAL_FD="" CHILD=""

cleanup() {
    set +e
    [[ -n $CHILD ]] && kill "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    if [[ -n $PAL_FD ]]; then eval "exec $PAL_FD>&-"; PAL_FD=""; fi
    if [[ -n $PAL_PID ]]; then
        for _ in $(seq 50); do kill -0 "$PAL_PID" 2>/dev/null || break; sleep 0.1; done
        kill "$PAL_PID" 2>/dev/null; wait "$PAL_PID" 2>/dev/null; PAL_PID=""
    fi
    local pid ns b l
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n $CGROUP && -d $CGROUP ]]; then
        # Only the clients this script put there can be in it.
        for pid in $(cat "$CGROUP/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
        sleep 0.2
        rmdir "$CGROUP" 2>/dev/null
    fi
    # The veths first: a namespace is torn down asynchronously, its veths (and routes) with it.
    for l in "${LINKS[@]}"; do ip link delete "$l" 2>/dev/null; done
    for ns in "${NETNS[@]}"; do ip netns delete "$ns" 2>/dev/null; done
    for b in "${ADDED_BLACKHOLES[@]}"; do ip route del blackhole "$b" 2>/dev/null; done
    [[ -n $IP_FORWARD_BEFORE ]] && sysctl -qw net.ipv4.ip_forward="$IP_FORWARD_BEFORE"
    rm -rf "$WORK"
    PIDS=() NETNS=() LINKS=() ADDED_BLACKHOLES=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A long command in the background, waited for: `wait` returns at once on a signal, so the
# trap runs (and stops it) without waiting for the command to end.
waited() { # waited OUTFILE CMD...
    local out=$1 rc=0
    shift
    "$@" >"$out" &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

machine() {
    python3 -c 'import json,os,platform,sys; print(json.dumps({"date":sys.argv[1],"host":platform.node(),"kernel":platform.release(),"cpus":os.cpu_count(),"cpu":sys.argv[2]}))' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
}
MACHINE=$(machine)
record() { # record MODE N JSON: one line of details, with the machine and the load
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r.update({"mode":sys.argv[1],"services":int(sys.argv[2]),"machine":json.loads(sys.argv[4]),"load1":float(open("/proc/loadavg").read().split()[0])}); print(json.dumps(r))' \
        "$1" "$2" "$3" "$MACHINE" >>"$DETAILS"
}
field() { python3 -c 'import json,sys; r=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): r=r.get(k, "-") if isinstance(r, dict) else "-"
print(r)' "$1" "$2"; }
vip_of() { python3 -c 'import ipaddress,sys; print(ipaddress.IPv4Address(sys.argv[1]) + int(sys.argv[2]))' "$VIP_BASE" "$1"; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x != "-"]; print(round(statistics.median(v)) if v else "-")' "$@"; }

# ---- the palisade helper (built first: a failing build should stop the run before the rest)
PAL_CMD=()
if [[ $PALISADE == 1 ]]; then
    if [[ -n ${PALISADE_BENCH:-} ]]; then
        PAL_CMD=("$PALISADE_BENCH")
    else
        log "building bench/Palisade.Bench (Release)"
        dotnet build "$ROOT/bench/Palisade.Bench" -c Release -nologo -v q >"$WORK/build.log" 2>&1 \
            || { tail -30 "$WORK/build.log" >&2; die "dotnet build bench/Palisade.Bench failed (PALISADE=0 skips the palisade column)"; }
        PAL_CMD=("$ROOT/artifacts/bin/Palisade.Bench/release/Palisade.Bench")
    fi
    [[ -x ${PAL_CMD[0]} ]] || die "${PAL_CMD[0]} is not an executable"
    CG2=$(awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo)
    [[ -n $CG2 ]] || die "no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)"
    CGROUP=$CG2/$P-client
fi

# ---- network: blackholes first, then the server namespace
for b in "${BLACKHOLES[@]}"; do
    if ip route show "$b" | grep -q .; then
        ip route show type blackhole "$b" | grep -q . || die "the root namespace already routes $b ($(ip route show "$b")): pick free ranges"
    else
        ip route add blackhole "$b"
        ADDED_BLACKHOLES+=("$b")
    fi
done
IP_FORWARD_BEFORE=$(sysctl -n net.ipv4.ip_forward)
sysctl -qw net.ipv4.ip_forward=1
gcc -O2 -Wall -Werror -o "$WORK/tcpbench" "$ROOT/bench/cni/tcpbench.c"

ip netns add "$SRV"; NETNS+=("$SRV")
ip link add "${P}s" type veth peer name eth0 netns "$SRV"; LINKS+=("${P}s")
ip addr add "$SRV_LINK.1/24" dev "${P}s"
ip link set "${P}s" up
ip -n "$SRV" link set lo up
ip -n "$SRV" addr add "$SRV_LINK.2/24" dev eth0
for a in "${BACKENDS[@]}"; do ip -n "$SRV" addr add "$a/32" dev eth0; done
ip -n "$SRV" link set eth0 up
ip -n "$SRV" route add 10.231.0.0/16 via "$SRV_LINK.1"
ip route add 10.231.2.0/24 via "$SRV_LINK.2"
# One server on both backend addresses (INADDR_ANY), for the whole run (bounded).
ip netns exec "$SRV" "$WORK/tcpbench" server "$BPORT" 14400 &
PIDS+=($!)

# Every client namespace has an address of its own, for all its rounds: the server keeps each
# connection's TIME_WAIT for 60 s with the client's TCP timestamps, and Linux offsets a
# connection's timestamps by a hash of its addresses as connect() saw them (the VIP through
# iptables/nftables, the backend directly or through socket-LB). Another mode from the same
# address would have its SYNs refused by PAWS (TcpExtPAWSTimewait) and wait 1 s for the
# retransmission: ~200 connections/s.
RUN=0
declare -A CLIENT_NS=() CLIENT_ADDR=()
client_up() { # client_up MODE: a client namespace routed through the root namespace
    local mode=$1 c=$P-${1:0:3} link=${P}${1:0:1} addr
    RUN=$((RUN + 1))
    ((RUN <= 252)) || die "out of client addresses (at most 63 sizes a run)"
    addr=$CLI_NET.$((RUN + 1))
    ip netns add "$c"; NETNS+=("$c")
    ip link add "$link" type veth peer name eth0 netns "$c"; LINKS+=("$link")
    ip addr add "$GW/32" dev "$link"
    ip link set "$link" up
    ip route add "$addr/32" dev "$link"
    ip -n "$c" link set lo up
    ip -n "$c" addr add "$addr/32" dev eth0
    ip -n "$c" link set eth0 up
    ip -n "$c" route add "$GW/32" dev eth0
    ip -n "$c" route add 10.231.0.0/16 via "$GW"
    # Routes to the VIPs (connect() needs one); what is not translated ends in the blackhole.
    ip -n "$c" route add 10.240.0.0/12 via "$GW"
    CLIENT_NS[$mode]=$c CLIENT_ADDR[$mode]=$addr
}
client_down() { # client_down MODE
    ip link delete "${P}${1:0:1}"
    ip netns delete "${CLIENT_NS[$1]}"
}

tcp_counters() { # tcp_counters NETNS: the TCP counters that tell a run went wrong, as JSON
    ip netns exec "$1" python3 -c 'import json
c = {}
for f in ("/proc/net/snmp", "/proc/net/netstat"):
    lines = open(f).read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        k, names = head.split(":", 1); _, values = vals.split(":", 1)
        c.update({k + n: int(v) for n, v in zip(names.split(), values.split())})
print(json.dumps({"syn_retrans": c.get("TcpExtTCPSynRetrans", 0), "retrans_segs": c.get("TcpRetransSegs", 0), "paws_timewait": c.get("TcpExtPAWSTimewait", 0), "out_rsts": c.get("TcpOutRsts", 0)}))'
}

crr() { # crr MODE N ROUND ADDRESS PORT [CGROUP]: per_second of one tcpbench crr run (details recorded)
    local ns=${CLIENT_NS[$1]} json c0 s0
    c0=$(tcp_counters "$ns"); s0=$(tcp_counters "$SRV")
    if [[ -n ${6:-} ]]; then
        # The client joins the cgroup before it execs: its first connect is already translated.
        json=$(sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$6" ip netns exec "$ns" "$WORK/tcpbench" crr "$4" "$5" "$SECONDS_PER_POINT")
    else
        json=$(ip netns exec "$ns" "$WORK/tcpbench" crr "$4" "$5" "$SECONDS_PER_POINT")
    fi
    # With the TCP counters' changes: SYN retransmissions or PAWS refusals mean the figure is not the datapath's.
    json=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); c0,c1,s0,s1=(json.loads(x) for x in sys.argv[2:6])
r["client_tcp"]={k: c1[k]-c0[k] for k in c0}; r["server_tcp"]={k: s1[k]-s0[k] for k in s0}; r["round"]=int(sys.argv[6]); print(json.dumps(r))' \
        "$json" "$c0" "$(tcp_counters "$ns")" "$s0" "$(tcp_counters "$SRV")" "$3")
    record "$1" "$2" "$json"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1])
print("  %-9s %6s services, round %s: %9.1f connections/s  p50 %6.1f us  p99 %7.1f us  errors %d  SYN retransmits %d" % (sys.argv[2], sys.argv[3], r["round"], r["per_second"], r["p50_us"], r["p99_us"], r["errors"], r["client_tcp"]["syn_retrans"]), file=sys.stderr)
print(round(r["per_second"]) if r["transactions"] > 0 else "-")' "$json" "$1" "$2"
}

RULES=(python3 "$HERE/services/kubeproxy_rules.py")
kube_program() { # kube_program iptables|nftables N: programs the mode's namespace, times the updates; sets KP_UPDATE
    local mode=$1 n=$2 json
    log "$mode: programming $n services, timing the updates"
    waited "$WORK/kp.json" ip netns exec "${CLIENT_NS[$mode]}" "${RULES[@]}" "$mode" --services "$n" \
        --real "${BACKENDS[0]}:$BPORT,${BACKENDS[1]}:$BPORT" --vip-base "$VIP_BASE" --port "$VPORT" \
        --fake-base 10.232.0.0 --alt 10.233.0.1:8080 --cluster-cidr 10.231.0.0/16 --service-cidr 10.240.0.0/12 \
        --node-ip "${CLIENT_ADDR[$mode]}" --iptables "$IPTABLES" || die "$mode: kubeproxy_rules.py failed"
    json=$(cat "$WORK/kp.json")
    record "$mode" "$n" "$json"
    if [[ $mode == iptables ]]; then
        KP_UPDATE=$(field "$json" update_full.median_ms)
        log "iptables: program $(field "$json" program_ms) ms ($(field "$json" program_restores) restores); update full $(field "$json" update_full.median_ms) ms, partial $(field "$json" update_partial.median_ms) ms, minimal $(field "$json" update_minimal.median_ms) ms; add (partial) $(field "$json" add_partial.median_ms) ms; iptables-save $(field "$json" save_nat.median_ms) ms"
    else
        KP_UPDATE=$(field "$json" update_change.median_ms)
        log "nftables: program $(field "$json" program_ms) ms ($(field "$json" program_transactions) transactions); change $(field "$json" update_change.median_ms) ms, add $(field "$json" add.median_ms) ms, full resync $(field "$json" full_resync.median_ms) ms"
    fi
}

palisade_start() { # palisade_start N: the helper programs N services and holds; sets PAL_UPDATE
    local n=$1 ready=""
    mkfifo "$WORK/pal.in"
    "${PAL_CMD[@]}" service-scale --services "$n" --cgroup "$CGROUP" --vip-base "$VIP_BASE" --port "$VPORT" \
        --backends "${BACKENDS[0]}:$BPORT,${BACKENDS[1]}:$BPORT" --fake-base 10.232.0.0 --alt 10.233.0.1:8080 \
        --repeats "$UPSERT_REPEATS" <"$WORK/pal.in" >"$WORK/pal.out" 2>"$WORK/pal.err" &
    PAL_PID=$!
    exec {PAL_FD}>"$WORK/pal.in"
    for _ in $(seq 1200); do
        ready=$(grep -m1 '"event":"ready"' "$WORK/pal.out" || true)
        [[ -n $ready ]] && break
        kill -0 "$PAL_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $ready ]] || { cat "$WORK/pal.err" >&2; die "Palisade.Bench service-scale did not get ready"; }
    record palisade "$n" "$ready"
    PAL_UPDATE=$(field "$ready" upsert_change.median_ms)
    log "palisade: apply $(field "$ready" apply_ms) ms; upsert (changed) median $(field "$ready" upsert_change.median_ms) ms, p99 $(field "$ready" upsert_change.p99_ms) ms; add $(field "$ready" upsert_add.median_ms) ms; map bytes $(field "$ready" map_bytes)"
}
palisade_stop() { # palisade_stop N
    local line
    eval "exec $PAL_FD>&-"; PAL_FD=""
    wait "$PAL_PID" || { cat "$WORK/pal.err" >&2; die "Palisade.Bench service-scale failed"; }
    PAL_PID=""
    line=$(grep -m1 '"event":"done"' "$WORK/pal.out" || true)
    [[ -n $line ]] && record palisade "$1" "$line"
    rm -f "$WORK/pal.in"
}

COLUMNS_=(services palisade_conn_per_s iptables_conn_per_s palisade_update_ms iptables_update_ms nftables_conn_per_s nftables_update_ms direct_conn_per_s)
(IFS=$'\t'; echo "${COLUMNS_[*]}") >"$TSV"
printf '%s\n' "${COLUMNS_[*]}"
log "services ${SIZES[*]}; $ROUNDS x $SECONDS_PER_POINT s per mode and size; $IPTABLES; details in $DETAILS (load $(cut -d' ' -f1 /proc/loadavg))"
for n in "${SIZES[@]}"; do
    for m in "${MODES[@]}"; do client_up "$m"; done
    PAL_UPDATE=- NFT_UPDATE=- IPT_UPDATE=-
    kube_program nftables "$n"; NFT_UPDATE=$KP_UPDATE
    kube_program iptables "$n"; IPT_UPDATE=$KP_UPDATE
    [[ $PALISADE == 1 ]] && palisade_start "$n"
    declare -A RATES=([direct]="" [palisade]="" [nftables]="" [iptables]="")
    vip=$(vip_of "$n")
    for ((r = 1; r <= ROUNDS; r++)); do
        # Each round starts with another mode, so that drift falls on all of them alike.
        for ((k = 0; k < ${#MODES[@]}; k++)); do
            m=${MODES[$(((k + r - 1) % ${#MODES[@]}))]}
            case $m in
                direct) rate=$(crr direct "$n" "$r" "${BACKENDS[0]}" "$BPORT") ;;
                palisade) rate=$(crr palisade "$n" "$r" "$vip" "$VPORT" "$CGROUP") ;;
                *) rate=$(crr "$m" "$n" "$r" "$vip" "$VPORT") ;;
            esac
            RATES[$m]+=" $rate"
        done
    done
    [[ $PALISADE == 1 ]] && palisade_stop "$n"
    for m in "${MODES[@]}"; do client_down "$m"; done
    # shellcheck disable=SC2086
    row=("$n" "$(median ${RATES[palisade]})" "$(median ${RATES[iptables]})" "$PAL_UPDATE" "$IPT_UPDATE"
        "$(median ${RATES[nftables]})" "$NFT_UPDATE" "$(median ${RATES[direct]})")
    (IFS=$'\t'; echo "${row[*]}") >>"$TSV"
    printf '%s\n' "${row[*]}"
done
log "results: $TSV (plot: python3 bench/services/plot.py $TSV)"
