"""Benchmark: the NetworkPolicy reachability engine on a large synthetic cluster.

Generates a deterministic cluster (default 50,000 pods in 2,000 namespaces with 10,000 NetworkPolicies) with a
realistic mix: default-deny per namespace (most in both directions, some ingress only, a few namespaces with no
policy at all), allow-DNS egress to kube-system, allow-same-namespace, allow-from-ingress-nginx on a named port,
Prometheus scraping from the monitoring namespace on a named port, team-wide access through namespaceSelector,
ipBlock egress to the internet (0.0.0.0/0 except RFC 1918) and to a database network, and ipBlock ingress to the
ingress controller. Then it builds the engine, computes the full workload connectivity and the per-namespace facts,
and prints the figures (times, classes, output entries, peak RSS).

Usage: python benchmarks/netpol_scale.py [--pods 50000] [--namespaces 2000] [--policies 10000] [--seed 1]
                                         [--stream] [--json OUT]
  --stream   count the connectivity entries from the iterator instead of materialising the list
  --json     also write the connectivity as JSON lines to OUT (time reported separately)
  --probes   build the engine as the segmentation collector does (probe pods), then also time the default of every
             namespace (baseline) and the exposure of every workload
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence.netpol.engine import Engine  # noqa: E402
from evidence.netpol.model import NamedPort, Namespace, Pod  # noqa: E402

TEAMS = 50
RFC1918 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _np(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _ns_peer(name: str, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": pod_labels}
    return peer


def generate(n_pods: int, n_ns: int, n_pol: int, seed: int, open_every: int = 33,
             ingress_only_every: int = 10) -> tuple[list[Namespace], list[Pod], list[dict[str, Any]]]:
    rnd = random.Random(seed)
    namespaces: list[Namespace] = [
        Namespace("kube-system", {}), Namespace("ingress-nginx", {"role": "edge"}),
        Namespace("monitoring", {"role": "observability"}),
    ]
    pods: list[Pod] = []
    policies: list[dict[str, Any]] = []

    def add_workload(ns: str, name: str, kind: str, replicas: int, labels: dict[str, str],
                     ports: tuple[NamedPort, ...]) -> None:
        h = f"{rnd.getrandbits(32):08x}"[:8]
        for i in range(replicas):
            pod_labels = dict(labels)
            if kind == "Deployment":
                pod_labels["pod-template-hash"] = h
            pods.append(Pod(ns, f"{name}-{h}-{i}", pod_labels, ports, f"{ns}/{name}[{kind}]"))

    # platform namespaces
    add_workload("kube-system", "coredns", "Deployment", 2, {"k8s-app": "kube-dns"},
                 (NamedPort("dns", 53, "UDP"), NamedPort("dns-tcp", 53, "TCP"), NamedPort("metrics", 9153)))
    add_workload("ingress-nginx", "ingress-nginx-controller", "Deployment", 3,
                 {"app.kubernetes.io/name": "ingress-nginx"}, (NamedPort("http", 80), NamedPort("https", 443)))
    add_workload("monitoring", "prometheus", "StatefulSet", 2, {"app": "prometheus"}, (NamedPort("web", 9090),))
    policies.append(_np("public", "ingress-nginx", {
        "podSelector": {}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
                     "ports": [{"port": 80}, {"port": 443}]}]}))
    policies.append(_np("dns", "kube-system", {
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}, "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"port": "dns", "protocol": "UDP"}, {"port": "dns-tcp"}]},
                    {"from": [_ns_peer("monitoring")], "ports": [{"port": "metrics"}]}]}))

    app_ns = n_ns - len(namespaces)
    pods_left = n_pods - len(pods)
    per_ns_policies = max(0, n_pol - len(policies))
    envs = ["prod", "staging", "dev"]
    for k in range(app_ns):
        team = f"t{k % TEAMS}"
        ns = f"{team}-app{k // TEAMS}"
        env = envs[k % 3]
        namespaces.append(Namespace(ns, {"team": team, "env": env, **({"pci": "true"} if k % 7 == 0 else {})}))
        # pods: spread what is left evenly over the remaining namespaces
        quota = pods_left // (app_ns - k)
        pods_left -= quota
        n_wl = max(1, min(quota, rnd.randint(3, 8)))
        sizes = [quota // n_wl + (1 if i < quota % n_wl else 0) for i in range(n_wl)]
        for i, size in enumerate(sizes):
            tier = ["frontend", "backend", "backend", "db", "worker"][i % 5]
            http = rnd.choice([8080, 8000, 3000, *range(8081, 8121)])  # many distinct port layouts, as in real clusters
            ports: tuple[NamedPort, ...] = (NamedPort("http", http),
                                            NamedPort("metrics", rnd.choice([9090, 9102, *range(9200, 9220)])))
            if tier == "db":
                ports = (NamedPort("postgres", 5432), NamedPort("metrics", 9187))
            kind = "StatefulSet" if tier == "db" else "Deployment"
            add_workload(ns, f"{tier}-{i}", kind, size, {"app": f"{tier}-{i}", "tier": tier, "team": team}, ports)

        # policies: a quota per namespace, most important first
        mean = per_ns_policies / (app_ns - k)
        quota_pol = per_ns_policies if k == app_ns - 1 else min(per_ns_policies, max(0, round(mean + rnd.uniform(-2, 2))))
        per_ns_policies -= quota_pol
        mode = "none" if k % open_every == 5 % open_every else ("ingress" if k % ingress_only_every == 3 else "both")
        cands: list[dict[str, Any]] = []
        if mode == "both":
            cands.append(_np("default-deny", ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
            cands.append(_np("allow-dns", ns, {
                "podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": [_ns_peer("kube-system", {"k8s-app": "kube-dns"})],
                            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}]}))
        elif mode == "ingress":
            cands.append(_np("default-deny-ingress", ns, {"podSelector": {}, "policyTypes": ["Ingress"]}))
        if mode != "none":
            cands.append(_np("allow-same-namespace", ns, {
                "podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}],
                **({"egress": [{"to": [{"podSelector": {}}]}], "policyTypes": ["Ingress", "Egress"]}
                   if mode == "both" else {})}))
            cands.append(_np("allow-ingress-controller", ns, {
                "podSelector": {"matchLabels": {"tier": "frontend"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [_ns_peer("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})],
                             "ports": [{"port": "http"}]}]}))
            cands.append(_np("allow-scrape", ns, {
                "podSelector": {}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [_ns_peer("monitoring", {"app": "prometheus"})], "ports": [{"port": "metrics"}]}]}))
            cands.append(_np("allow-team", ns, {
                "podSelector": {"matchLabels": {"tier": "backend"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": team, "env": env}}}],
                             "ports": [{"port": "http"}]}]}))
        if mode == "both":
            cands.append(_np("frontend-egress", ns, {
                "podSelector": {"matchLabels": {"tier": "frontend"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": team}},
                                    "podSelector": {"matchLabels": {"tier": "backend"}}}],
                            "ports": [{"port": "http"}]},
                           {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": RFC1918}}],
                            "ports": [{"port": 443}]}]}))
            cands.append(_np("db-egress", ns, {
                "podSelector": {"matchLabels": {"tier": "db"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": f"10.{k % 250}.0.0/16"}}],
                            "ports": [{"port": 5432, "endPort": 5439}]}]}))
        if mode != "none":
            cands.append(_np("allow-pci-partners", ns, {
                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend", "db"]}]},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"pci": "true"}},
                                       "podSelector": {"matchExpressions": [
                                           {"key": "tier", "operator": "NotIn", "values": ["db", "worker"]}]}}],
                             "ports": [{"port": "postgres"}, {"port": "http"}]}]}))
        # the essentials (default deny, DNS) always; then a random selection of the other patterns
        essential = 2 if mode == "both" else 1 if mode == "ingress" else 0
        rest = cands[essential:]
        rnd.shuffle(rest)
        cands = cands[:essential] + rest
        extra = 0
        while len(cands) < quota_pol:  # pad with harmless per-workload policies to reach the requested count
            cands.append(_np(f"extra-{extra}", ns, {
                "podSelector": {"matchLabels": {"app": f"worker-{4 + 5 * extra}"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "backend"}}}], "ports": [{"port": 9000}]}]}))
            extra += 1
        taken = cands[:quota_pol] if mode != "none" else []  # an open namespace stays without any policy
        per_ns_policies += quota_pol - len(taken)
        policies.extend(taken)
    return namespaces, pods, policies


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=50_000)
    ap.add_argument("--namespaces", type=int, default=2_000)
    ap.add_argument("--policies", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--open-every", type=int, default=33, help="every Nth namespace has no policy at all")
    ap.add_argument("--ingress-only-every", type=int, default=10, help="every Nth namespace: default deny ingress only")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--probes", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    namespaces, pods, policies = generate(args.pods, args.namespaces, args.policies, args.seed, args.open_every,
                                           args.ingress_only_every)
    t_gen = time.perf_counter() - t0
    print(f"generated      {len(pods):,} pods, {len(namespaces):,} namespaces, {len(policies):,} policies "
          f"in {t_gen:.2f} s (not counted); RSS {rss_mb():,.0f} MB")
    mix: dict[str, int] = {}
    for p in policies:
        name = "extra-*" if p["metadata"]["name"].startswith("extra-") else p["metadata"]["name"]
        mix[name] = mix.get(name, 0) + 1
    print("policy mix     " + ", ".join(f"{k} {v:,}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])))

    gc.collect()
    gc.freeze()  # the inputs live for the whole run; keep the collector from rescanning them
    t_start = time.perf_counter()
    t0 = time.perf_counter()
    engine = Engine(namespaces, pods, policies, probes=args.probes)
    t_build = time.perf_counter() - t0
    st = engine.stats()
    print(f"build          {t_build:6.2f} s  classes {st['classes']:,}  workloads {st['workloads']:,}  "
          f"ingress source groups {st['ingress_source_groups']:,}  warnings {len(engine.warnings)}")

    t0 = time.perf_counter()
    if args.stream:
        n_entries = sum(1 for _ in engine.iter_workload_connectivity())
    else:
        conn = engine.workload_connectivity()
        n_entries = len(conn)
    t_conn = time.perf_counter() - t0
    st = engine.stats()
    print(f"connectivity   {t_conn:6.2f} s  entries {n_entries:,}  region signatures {st['region_signatures']:,}  "
          f"RSS {rss_mb():,.0f} MB")

    t0 = time.perf_counter()
    facts = engine.namespace_facts()
    t_facts = time.perf_counter() - t0
    open_ns = sum(1 for f in facts if f["ingress_isolated_pods"] == 0)
    print(f"namespace facts{t_facts:6.2f} s  namespaces {len(facts):,} (no ingress isolation: {open_ns:,})")
    if args.probes:
        t0 = time.perf_counter()
        deny = sum(1 for f in facts if engine.baseline(f["namespace"])["ingress_isolated"])
        open_wl = sum(1 for w in engine.workloads if engine.exposure(w)["ingress_from_any_pod"].is_all)
        print(f"exposure       {time.perf_counter() - t0:6.2f} s  namespaces isolating a new pod {deny:,}, "
              f"workloads admitting every pod on every port {open_wl:,}")
        t0 = time.perf_counter()
        sources = engine.workload_namespaces(engine.workloads)
        print(f"per workload   {time.perf_counter() - t0:6.2f} s  (source namespace, workload) pairs "
              f"{sum(len(s) for s, _ in sources.values()):,}")
    total = time.perf_counter() - t_start
    print(f"TOTAL          {total:6.2f} s  peak RSS {rss_mb():,.0f} MB")

    if args.json is not None:
        import orjson

        t0 = time.perf_counter()
        with args.json.open("wb") as fh:
            for e in (engine.iter_workload_connectivity() if args.stream else conn):
                fh.write(orjson.dumps(e))
                fh.write(b"\n")
        print(f"json           {time.perf_counter() - t0:6.2f} s  {args.json.stat().st_size / 2**20:,.0f} MiB")

    if not args.stream:
        kinds = {"workload->workload": 0, "workload->external": 0, "external->workload": 0}
        for e in conn:
            s_ext, d_ext = "[" not in e["src"], "[" not in e["dst"]
            kinds["external->workload" if s_ext else "workload->external" if d_ext else "workload->workload"] += 1
        print("entries by kind " + ", ".join(f"{k} {v:,}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
