#!/usr/bin/env python3
"""kube-proxy's rules for N ClusterIP services, programmed into this network namespace, and
the time kube-proxy's updates take. Written for bench/service-scale.sh; our own generator of
the layout kube-proxy writes (pkg/proxy/iptables/proxier.go and pkg/proxy/nftables/proxier.go,
Kubernetes 1.29-1.33), not its code.

  kubeproxy_rules.py iptables|nftables --services N --real A:P,B:P [options]
      programs N services (the initial sync, timed), then times the updates kube-proxy makes
      when one service's endpoints change and when one service is added, prints one JSON
      line, and leaves the N services programmed (the caller measures traffic, then deletes
      the namespace).
  kubeproxy_rules.py render iptables-full|iptables-partial|nftables-full|nftables-change --services N ...
      prints the input that would be given to iptables-restore or nft (to look at it).

Services: namespace "bench", service svc-I, port "http" 80/TCP, ClusterIP VIP_BASE + I + 1.
Service N-1 is the service under test: its two endpoints are --real; it is the LAST rule of
KUBE-SERVICES (iptables matches them one by one: the worst place, where the users' traffic
ends up for most services). Every other service has two endpoints from --fake-base, which
nothing ever connects to.

iptables layout (nat table): OUTPUT/PREROUTING -> KUBE-SERVICES (added with `iptables -I` as
kube-proxy's EnsureRule does), one `-d VIP -p tcp --dport 80 -j KUBE-SVC-<16 base32 chars of
sha256>` per service, then the KUBE-NODEPORTS jump last; KUBE-SVC-*: a KUBE-MARK-MASQ rule
for sources outside the cluster CIDR, then `-m statistic --mode random --probability 1/k` per
endpoint; KUBE-SEP-*: hairpin KUBE-MARK-MASQ, DNAT. The filter table's top-level chains
kube-proxy also writes each sync (KUBE-SERVICES, KUBE-FORWARD, KUBE-FIREWALL, ...) with the
jumps to them. Comments are dropped above 1000 endpoints, as kube-proxy's large-cluster mode.

Updates timed (each one iptables-restore --noflush --counters reading stdin, as kube-proxy):
  full      kube-proxy's full sync: every chain and rule of both tables rewritten (at start, on
            iptables-restore failure, when its canary chain disappears; older kube-proxy did
            this on every change). bench/service-scale.sh's iptables_update_ms.
  partial   kube-proxy's partial sync (MinimizeIPTablesRestore, default since 1.27): the
            top-level chains in full (KUBE-SERVICES with all N rules) plus the changed
            service's chains.
  minimal   only the changed service's chains (KUBE-SVC and the new KUBE-SEP): not what
            kube-proxy writes; the floor of one iptables-restore with N services in the table.
  save      iptables-save -t nat (kube-proxy runs it to find stale chains: every sync below
            1000 endpoints, once per sync period above).
nftables layout: table ip kube-proxy, `ip daddr . meta l4proto . th dport vmap @service-ips`,
service chains `numgen random mod K vmap { 0 : goto endpoint-..., ... }`, endpoint chains
with the hairpin mark and `dnat to`; updates are one `nft -f -` transaction, as kube-proxy's
partial sync writes it (the changed chains flushed and refilled, the stale endpoint chain
flushed; it is deleted by a later transaction, untimed here as kube-proxy does it a second
later).

Two tools here are quadratic in the size of ONE input, so above --batch-services the first
programming (kube-proxy: one restore / one transaction) is split into batches and says so
(program_restores, program_transactions):
  iptables-nft-restore 1.8.9: 64% of its time in strcmp, a name lookup over the chains declared
            in the same input for every rule (3 000 services: 4 s; 10 000: 2.5-4 min in one
            restore, 6 s in batches of 1 000; iptables-legacy-restore: 2 s). The full-sync
            update is one such restore: timed once above --full-once-above.
  nf_tables (kernel 6.18): binding each rule's anonymous vmap walks the whole transaction
            (__nft_set_trans_bind): 4 000 services in one transaction 10-16 s, 10 000 ~1 min.
            The full-resync transaction is timed only up to --nft-resync-max services.
"""
import argparse
import base64
import hashlib
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time

MARK = "0x4000"
NS = "bench"
PORT_NAME = "http"
PROTO = "tcp"


class Service:
    def __init__(self, index, vip, port, endpoints):
        self.index = index
        self.name = f"svc-{index}"
        self.vip = vip
        self.port = port
        self.endpoints = endpoints  # [(ip, port)]

    @property
    def port_name(self):  # proxy.ServicePortName.String()
        return f"{NS}/{self.name}:{PORT_NAME}"

    def with_endpoints(self, endpoints):
        return Service(self.index, self.vip, self.port, endpoints)


def b32sha(text, n):
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:n]


# ---- iptables names (portProtoHash, servicePortEndpointChainName)
def svc_chain(s):
    return "KUBE-SVC-" + b32sha(s.port_name + PROTO, 16)


def sep_chain(s, ep):
    return "KUBE-SEP-" + b32sha(s.port_name + PROTO + f"{ep[0]}:{ep[1]}", 16)


# ---- nftables names (hashAndTruncate of ns/name/proto/port[__ip/port])
def nft_hash(name):
    name = b32sha(name, 8) + "-" + name
    return name if len(name) <= 112 else name[:109] + "..."


def nft_svc_chain(s):
    return "service-" + nft_hash(f"{NS}/{s.name}/{PROTO}/{PORT_NAME}")


def nft_ep_chain(s, ep):
    return "endpoint-" + nft_hash(f"{NS}/{s.name}/{PROTO}/{PORT_NAME}__{ep[0]}/{ep[1]}")


def make_services(n, vip_base, port, real, fake_base):
    vip0 = int(ipaddress.IPv4Address(vip_base))
    fake0 = int(ipaddress.IPv4Address(fake_base))
    out = []
    for i in range(n):
        if i == n - 1:
            eps = real
        else:
            eps = [(str(ipaddress.IPv4Address(fake0 + 2 * i + k + 1)), 8080) for k in range(2)]
        out.append(Service(i, str(ipaddress.IPv4Address(vip0 + i + 1)), port, eps))
    return out


# ---------------------------------------------------------------- iptables
def q(text):
    return f'"{text}"' if " " in text else text


class Iptables:
    """The restore input of one kube-proxy sync (syncProxyRules), for the services given."""

    def __init__(self, cluster_cidr):
        self.cidr = cluster_cidr

    def restore(self, services, write_chains_of=None, stale=(), large=None, top_level=True):
        """write_chains_of: None = every service's chains (full sync), else the set of service
        indices whose chains are written (partial sync). top_level=False: only those chains
        (the 'minimal' restore, not something kube-proxy writes)."""
        if large is None:
            large = sum(len(s.endpoints) for s in services) > 1000

        def comment(text):
            return [] if large else ["-m", "comment", "--comment", q(text)]

        fchains, frules, nchains, nrules = [], [], [], []
        if top_level:
            for c in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"):
                fchains.append(c)
            for c in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"):
                nchains.append(c)
            nrules += [
                f"-A KUBE-POSTROUTING -m mark ! --mark {MARK}/{MARK} -j RETURN",
                f"-A KUBE-POSTROUTING -j MARK --xor-mark {MARK}",
                '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
                f"-A KUBE-MARK-MASQ -j MARK --or-mark {MARK}",
            ]
            # localhostNodePorts (the default): the anti-martian rule kubelet also writes.
            fchains.append("KUBE-FIREWALL")
            frules.append('-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 '
                          "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
        for s in services:
            args = ["-m", "comment", "--comment", f'"{s.port_name} cluster IP"', "-m", PROTO, "-p", PROTO, "-d", s.vip, "--dport", str(s.port)]
            if top_level:
                nrules.append(" ".join(["-A", "KUBE-SERVICES"] + args + ["-j", svc_chain(s)]))
            if write_chains_of is not None and s.index not in write_chains_of:
                continue
            sc = svc_chain(s)
            nchains.append(sc)
            nrules.append(" ".join(["-A", sc] + args + ["!", "-s", self.cidr, "-j", "KUBE-MARK-MASQ"]))
            k = len(s.endpoints)
            for i, ep in enumerate(s.endpoints):
                a = ["-A", sc] + comment(f"{s.port_name} -> {ep[0]}:{ep[1]}")
                if i < k - 1:
                    a += ["-m", "statistic", "--mode", "random", "--probability", "%0.10f" % (1.0 / (k - i))]
                nrules.append(" ".join(a + ["-j", sep_chain(s, ep)]))
            for ep in s.endpoints:
                ec = sep_chain(s, ep)
                nchains.append(ec)
                nrules.append(" ".join(["-A", ec] + comment(s.port_name) + ["-s", ep[0], "-j", "KUBE-MARK-MASQ"]))
                nrules.append(" ".join(["-A", ec] + comment(s.port_name) + ["-m", PROTO, "-p", PROTO, "-j", "DNAT", "--to-destination", f"{ep[0]}:{ep[1]}"]))
        for c in stale:
            nchains.append(c)
            nrules.append(f"-X {c}")
        if top_level:
            nrules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" '
                          "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
            frules += [
                "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
                f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MARK}/{MARK} -j ACCEPT',
                '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
            ]
        out = []
        if top_level:
            out.append("*filter")
            out += [f":{c} - [0:0]" for c in fchains]
            out += frules
            out.append("COMMIT")
        out.append("*nat")
        out += [f":{c} - [0:0]" for c in nchains]
        out += nrules
        out.append("COMMIT")
        return "\n".join(out) + "\n"

    # kube-proxy's iptablesJumpChains, written with EnsureChain/EnsureRule (iptables -N / -C / -I).
    JUMPS = [
        ("filter", "KUBE-EXTERNAL-SERVICES", "INPUT", "kubernetes externally-visible service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-EXTERNAL-SERVICES", "FORWARD", "kubernetes externally-visible service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-NODEPORTS", "INPUT", "kubernetes health check service ports", []),
        ("filter", "KUBE-SERVICES", "FORWARD", "kubernetes service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-FORWARD", "FORWARD", "kubernetes forwarding rules", []),
        ("filter", "KUBE-PROXY-FIREWALL", "INPUT", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-PROXY-FIREWALL", "OUTPUT", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("filter", "KUBE-PROXY-FIREWALL", "FORWARD", "kubernetes load balancer firewall", ["-m", "conntrack", "--ctstate", "NEW"]),
        ("nat", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", []),
        ("nat", "KUBE-SERVICES", "PREROUTING", "kubernetes service portals", []),
        ("nat", "KUBE-POSTROUTING", "POSTROUTING", "kubernetes postrouting rules", []),
        ("filter", "KUBE-FIREWALL", "INPUT", "", []),
        ("filter", "KUBE-FIREWALL", "OUTPUT", "", []),
    ]

    def ensure_jumps(self, iptables):
        for table, dst, src, text, extra in self.JUMPS:
            subprocess.run([iptables, "-w", "5", "-t", table, "-N", dst], stderr=subprocess.DEVNULL)
            rule = extra + (["-m", "comment", "--comment", text] if text else []) + ["-j", dst]
            if subprocess.run([iptables, "-w", "5", "-t", table, "-C", src] + rule, stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run([iptables, "-w", "5", "-t", table, "-I", src] + rule, check=True)


# ---------------------------------------------------------------- nftables
class Nftables:
    def __init__(self, cluster_cidr, service_cidr, node_ip):
        self.cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.node_ip = node_ip

    def base(self, resync):
        t = "ip kube-proxy"
        out = [f'add table {t} {{ comment "rules for kube-proxy" ; }}']
        sets = [
            ("set", "cluster-ips", "ipv4_addr", "Active ClusterIPs"),
            ("set", "nodeport-ips", "ipv4_addr", "IPs that accept NodePort traffic"),
            ("map", "firewall-ips", "ipv4_addr . inet_proto . inet_service : verdict", "destinations that are subject to LoadBalancerSourceRanges"),
            ("map", "no-endpoint-nodeports", "inet_proto . inet_service : verdict", "vmap to drop or reject packets to service nodeports with no endpoints"),
            ("map", "no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict", "vmap to drop or reject packets to services with no endpoints"),
            ("map", "service-ips", "ipv4_addr . inet_proto . inet_service : verdict", "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
            ("map", "service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic"),
        ]
        for kind, name, typ, text in sets:
            out.append(f'add {kind} {t} {name} {{ type {typ} ; comment "{text}" ; }}')
            if resync:
                out.append(f"flush {kind} {t} {name}")
        chains = [
            ("cluster-ips-check", None), ("filter-prerouting-pre-dnat", "filter hook prerouting priority -110"),
            ("filter-output-pre-dnat", "filter hook output priority -110"), ("filter-forward", "filter hook forward priority 0"),
            ("filter-input", "filter hook input priority 0"), ("filter-output", "filter hook output priority 0"),
            ("firewall-check", None), ("mark-for-masquerade", None), ("masquerading", None),
            ("nat-output", "nat hook output priority -100"), ("nat-postrouting", "nat hook postrouting priority 100"),
            ("nat-prerouting", "nat hook prerouting priority -100"), ("nodeport-endpoints-check", None),
            ("reject-chain", None), ("services", None), ("service-endpoints-check", None),
        ]
        for name, hook in chains:
            spec = f" {{ type {hook} ; }}" if hook else (' { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }' if name == "reject-chain" else "")
            out.append(f"add chain {t} {name}{spec}")
            if resync:
                out.append(f"flush chain {t} {name}")
        out += [
            f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
            f'add rule {t} cluster-ips-check ip daddr {{ {self.service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"',
            f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check",
            f"add rule {t} filter-forward ct state new jump service-endpoints-check",
            f"add rule {t} filter-forward ct state new jump cluster-ips-check",
            f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
            f"add rule {t} filter-input ct state new jump service-endpoints-check",
            f"add rule {t} filter-output ct state new jump service-endpoints-check",
            f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check",
            f"add rule {t} filter-output ct state new jump cluster-ips-check",
            f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
            f"add rule {t} mark-for-masquerade mark set mark or {MARK}",
            f"add rule {t} masquerading mark and {MARK} == 0 return",
            f"add rule {t} masquerading mark set mark xor {MARK}",
            f"add rule {t} masquerading masquerade fully-random",
            f"add rule {t} nat-output jump services",
            f"add rule {t} nat-postrouting jump masquerading",
            f"add rule {t} nat-prerouting jump services",
            f"add rule {t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
            f"add rule {t} reject-chain reject",
            f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
            f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
            f"add element {t} nodeport-ips {{ {self.node_ip} }}",
            f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        ]
        return out

    def service(self, s, elements=True):
        """One service as kube-proxy's sync writes it (ensureChain: add + flush, then the rules)."""
        t = "ip kube-proxy"
        sc = nft_svc_chain(s)
        out = []
        for ep in s.endpoints:
            ec = nft_ep_chain(s, ep)
            out += [f"add chain {t} {ec}", f"flush chain {t} {ec}"]
        out += [f"add chain {t} {sc}", f"flush chain {t} {sc}"]
        out.append(f"add rule {t} {sc} ip daddr {s.vip} ip saddr != {self.cidr} jump mark-for-masquerade")
        vmap = " , ".join(f"{i} : goto {nft_ep_chain(s, ep)}" for i, ep in enumerate(s.endpoints))
        out.append(f"add rule {t} {sc} numgen random mod {len(s.endpoints)} vmap {{ {vmap} }}")
        for ep in s.endpoints:
            ec = nft_ep_chain(s, ep)
            out.append(f"add rule {t} {ec} ip saddr {ep[0]} jump mark-for-masquerade")
            out.append(f"add rule {t} {ec} meta l4proto {PROTO} dnat to {ep[0]}:{ep[1]}")
        if elements:
            out.append(f"add element {t} cluster-ips {{ {s.vip} }}")
            out.append(f"add element {t} service-ips {{ {s.vip} . {PROTO} . {s.port} : goto {sc} }}")
        return out

    def full(self, services, resync=False):
        out = self.base(resync)
        for s in services:
            out += self.service(s)
        return "\n".join(out) + "\n"

    def change(self, new, stale_chains):
        """Partial sync after one service's endpoints changed: its chains rewritten (the map
        element is unchanged: same service chain), the endpoint chain no longer used flushed."""
        out = self.service(new, elements=False)
        out += [f"flush chain ip kube-proxy {c}" for c in stale_chains]
        return "\n".join(out) + "\n"

    def delete_chains(self, chains):
        return "\n".join(f"delete chain ip kube-proxy {c}" for c in chains) + "\n"

    def add(self, s):
        return "\n".join(self.service(s)) + "\n"

    def remove(self, s):
        t = "ip kube-proxy"
        out = [f"delete element {t} service-ips {{ {s.vip} . {PROTO} . {s.port} }}", f"delete element {t} cluster-ips {{ {s.vip} }}"]
        chains = [nft_svc_chain(s)] + [nft_ep_chain(s, ep) for ep in s.endpoints]
        out += [f"flush chain {t} {c}" for c in chains]
        out += [f"delete chain {t} {c}" for c in chains]
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- timing
def run(cmd, data):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, input=data.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        sys.stderr.write(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[:2000]}\n")
        lines = data.splitlines()
        sys.stderr.write("input head: " + "\n".join(lines[:12]) + "\n")
        sys.exit(1)
    return dt


def summary(samples):
    s = sorted(samples)
    return {"median_ms": round(statistics.median(s), 2), "min_ms": round(s[0], 2), "max_ms": round(s[-1], 2), "n": len(s)}


class Budget:
    """Repetitions: at least MIN, at most MAX, stop after SECONDS once MIN are done."""

    def __init__(self, lo, hi, seconds):
        self.lo, self.hi, self.seconds = lo, hi, seconds

    def __call__(self, fn):
        samples, t0 = [], time.monotonic()
        while len(samples) < self.hi and (len(samples) < self.lo or time.monotonic() - t0 < self.seconds):
            samples.append(fn(len(samples)))
        return samples


def churn_pair(services, alt_endpoint):
    """The service whose endpoints change (service 0: the first in KUBE-SERVICES; with N=1 it
    is the service under test) and its two states: its second endpoint replaced, and back."""
    s = services[0]
    other = s.with_endpoints([s.endpoints[0], alt_endpoint])
    return s, other


def bench_iptables(a, services):
    ipt = Iptables(a.cluster_cidr)
    restore = [a.iptables + "-restore", "-w", "5", "--noflush", "--counters"]
    large = sum(len(s.endpoints) for s in services) > 1000
    res = {"mode": "iptables", "services": len(services), "rules_backend": subprocess.run([a.iptables, "-V"], capture_output=True, text=True).stdout.strip(),
           "large_cluster_mode": large}
    t0 = time.perf_counter()
    ipt.ensure_jumps(a.iptables)
    res["ensure_jumps_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    data = ipt.restore(services)
    res["restore_bytes"] = len(data)
    res["rules"] = sum(1 for line in data.splitlines() if line.startswith("-A "))
    if len(services) <= a.batch_services:
        res["program_ms"] = round(run(restore, data), 2)
        res["program_restores"] = 1
    else:
        # One restore of everything is kube-proxy's first sync, but iptables-nft-restore 1.8.9
        # is quadratic in the chains of one input (10 000 services: ~3 min; see update_full):
        # here the chains go in batches, then the top-level chains.
        t = run(restore, ipt.restore([], large=large))
        chunks = 1
        for i in range(0, len(services), a.batch_services):
            part = services[i:i + a.batch_services]
            t += run(restore, ipt.restore(part, write_chains_of={s.index for s in part}, large=large, top_level=False))
            chunks += 1
        t += run(restore, ipt.restore(services, write_chains_of=set(), large=large))
        res["program_ms"] = round(t, 2)
        res["program_restores"] = chunks + 1
    del data

    base, other = churn_pair(services, a.alt)
    budget = Budget(a.min_repeats, a.max_repeats, a.seconds)
    state = {"cur": base}

    def change_full(i):
        new = other if state["cur"] is base else base
        old = state["cur"]
        cur_list = [new if s.index == new.index else s for s in services]
        stale = [sep_chain(old, ep) for ep in old.endpoints if ep not in new.endpoints]
        dt = run(restore, ipt.restore(cur_list, stale=stale))
        state["cur"] = new
        return dt

    def change_partial(i):
        new = other if state["cur"] is base else base
        old = state["cur"]
        cur_list = [new if s.index == new.index else s for s in services]
        # Below 1000 endpoints kube-proxy deletes stale chains in the same restore; above,
        # once per sync period (they are harmless; here the next change reuses them anyway).
        stale = [] if large else [sep_chain(old, ep) for ep in old.endpoints if ep not in new.endpoints]
        dt = run(restore, ipt.restore(cur_list, write_chains_of={new.index}, stale=stale, large=large))
        state["cur"] = new
        return dt

    def change_minimal(i):
        new = other if state["cur"] is base else base
        dt = run(restore, ipt.restore([new], write_chains_of={new.index}, large=large, top_level=False))
        state["cur"] = new
        return dt

    def back_to_base():
        if state["cur"] is not base:
            run(restore, ipt.restore(services, write_chains_of={base.index}, large=large))
            state["cur"] = base

    # A full restore of a large table takes minutes with iptables-nft: once is enough there.
    full_budget = Budget(1, a.max_repeats, a.seconds) if len(services) > a.full_once_above else budget
    res["update_full"] = summary(full_budget(change_full))
    back_to_base()
    res["update_partial"] = summary(budget(change_partial))
    back_to_base()
    res["update_minimal"] = summary(budget(change_minimal))
    back_to_base()

    # Adding one service (then removing it, untimed), partial sync.
    extra = make_services(len(services) + 1, a.vip_base, a.port, a.real, a.fake_base)[-1]
    extra = extra.with_endpoints([a.alt, (a.alt[0], a.alt[1] + 1)])
    with_extra = services[:-1] + [extra, services[-1]]  # the service under test stays last

    def add(i):
        dt = run(restore, ipt.restore(with_extra, write_chains_of={extra.index}, large=large))
        gone = [svc_chain(extra)] + [sep_chain(extra, ep) for ep in extra.endpoints]
        run(restore, ipt.restore(services, write_chains_of=set(), stale=gone, large=large))
        return dt

    res["add_partial"] = summary(budget(add))

    def save(i):
        t0 = time.perf_counter()
        subprocess.run([a.iptables + "-save", "-t", "nat"], stdout=subprocess.DEVNULL, check=True)
        return (time.perf_counter() - t0) * 1000

    res["save_nat"] = summary(budget(save))
    return res


def bench_nftables(a, services):
    nft = Nftables(a.cluster_cidr, a.service_cidr, a.node_ip)
    cmd = ["nft", "-f", "-"]
    res = {"mode": "nftables", "services": len(services), "nft": subprocess.run(["nft", "-v"], capture_output=True, text=True).stdout.strip()}
    if len(services) <= a.batch_services:
        data = nft.full(services)
        res["program_bytes"] = len(data)
        res["program_ms"] = round(run(cmd, data), 2)
        res["program_transactions"] = 1
    else:
        # kube-proxy's first sync is one transaction, but binding each service chain's
        # anonymous vmap walks the whole transaction in the kernel (__nft_set_trans_bind):
        # quadratic (10 000 services: ~1 min). Here: batches of services, one transaction each.
        t = run(cmd, "\n".join(nft.base(False)) + "\n")
        chunks = 1
        for i in range(0, len(services), a.batch_services):
            t += run(cmd, "\n".join(line for x in services[i:i + a.batch_services] for line in nft.service(x)) + "\n")
            chunks += 1
        res["program_ms"] = round(t, 2)
        res["program_transactions"] = chunks

    base, other = churn_pair(services, a.alt)
    budget = Budget(a.min_repeats, a.max_repeats, a.seconds)
    state = {"cur": base}

    def change(i):
        new = other if state["cur"] is base else base
        old = state["cur"]
        stale = [nft_ep_chain(old, ep) for ep in old.endpoints if ep not in new.endpoints]
        dt = run(cmd, nft.change(new, stale))
        run(cmd, nft.delete_chains(stale))  # kube-proxy: a separate transaction, >= 1 s later
        state["cur"] = new
        return dt

    res["update_change"] = summary(budget(change))
    if state["cur"] is not base:
        change(0)

    extra = make_services(len(services) + 1, a.vip_base, a.port, a.real, a.fake_base)[-1]
    extra = extra.with_endpoints([a.alt, (a.alt[0], a.alt[1] + 1)])

    def add(i):
        dt = run(cmd, nft.add(extra))
        run(cmd, nft.remove(extra))
        return dt

    res["add"] = summary(budget(add))

    def resync(i):
        return run(cmd, nft.full(services, resync=True))

    if len(services) <= a.nft_resync_max:
        res["full_resync"] = summary(Budget(min(3, a.min_repeats), max(3, a.min_repeats), a.seconds)(resync))
    else:
        res["full_resync"] = {"skipped": f"more than --nft-resync-max {a.nft_resync_max} services (one transaction is quadratic)"}
    return res


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return (str(ipaddress.IPv4Address(host)), int(port))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="+", help="iptables | nftables | render KIND")
    p.add_argument("--services", type=int, required=True)
    p.add_argument("--real", default="10.231.2.1:7200,10.231.2.2:7200", help="the endpoints of the service under test")
    p.add_argument("--vip-base", default="10.240.0.0")
    p.add_argument("--service-cidr", default="10.240.0.0/12")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--fake-base", default="10.232.0.0", help="endpoints of the other services (never connected to)")
    p.add_argument("--alt", default="10.233.0.1:8080", help="the endpoint the changed service switches to")
    p.add_argument("--cluster-cidr", default="10.231.0.0/16")
    p.add_argument("--node-ip", default="10.231.3.2")
    p.add_argument("--iptables", default="iptables", help="iptables, iptables-nft or iptables-legacy (-restore/-save appended)")
    p.add_argument("--min-repeats", type=int, default=5)
    p.add_argument("--max-repeats", type=int, default=41)
    p.add_argument("--seconds", type=float, default=20, help="time budget per update kind once min-repeats are done")
    p.add_argument("--batch-services", type=int, default=2000, help="above this, the first programming is split into batches of this many services")
    p.add_argument("--full-once-above", type=int, default=5000, help="above this many services, the iptables full restore is timed once")
    p.add_argument("--nft-resync-max", type=int, default=5000, help="above this many services, the nft full-resync transaction is not timed")
    a = p.parse_args()
    a.real = [endpoint(x) for x in a.real.split(",")]
    a.alt = endpoint(a.alt)
    if a.services < 1:
        p.error("--services must be >= 1")
    services = make_services(a.services, a.vip_base, a.port, a.real, a.fake_base)
    kind = a.what[0]
    if kind == "render":
        r = a.what[1] if len(a.what) > 1 else ""
        if r == "iptables-full":
            sys.stdout.write(Iptables(a.cluster_cidr).restore(services))
        elif r == "iptables-partial":
            sys.stdout.write(Iptables(a.cluster_cidr).restore(services, write_chains_of={0}))
        elif r == "nftables-full":
            sys.stdout.write(Nftables(a.cluster_cidr, a.service_cidr, a.node_ip).full(services))
        elif r == "nftables-change":
            base, other = churn_pair(services, a.alt)
            sys.stdout.write(Nftables(a.cluster_cidr, a.service_cidr, a.node_ip).change(other, [nft_ep_chain(base, base.endpoints[1])]))
        else:
            p.error("render iptables-full|iptables-partial|nftables-full|nftables-change")
        return
    if os.geteuid() != 0:
        sys.exit("needs root (run it inside the benchmark's client network namespace)")
    if kind == "iptables":
        res = bench_iptables(a, services)
    elif kind == "nftables":
        res = bench_nftables(a, services)
    else:
        p.error("iptables | nftables | render")
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
