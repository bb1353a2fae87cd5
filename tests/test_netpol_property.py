"""Property test: the class-based NetworkPolicy engine against a literal pod-by-pod, port-by-port evaluator.

The brute-force evaluator below is written straight from the API reference text (NetworkPolicySpec, ...IngressRule,
...EgressRule, ...Peer, ...Port, IPBlock), sharing nothing with the engine except `selectors.matches`. Every port and
address used by the generated policies is probed together with its neighbours, so agreement at the probes means
agreement on the whole port range and address space.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.netpol.engine import Engine
from evidence.netpol.labelindex import LabelIndex
from evidence.netpol.model import ConnSet, IPSet, NamedPort, Namespace, Pod
from evidence.netpol.selectors import matches

NS_NAMES = ["ns0", "ns1", "ns2"]
LABEL_KEYS = ["app", "tier"]
LABEL_VALUES = ["a", "b"]
PORT_NUMBERS = [53, 80, 443, 8080]
PORT_NAMES = ["http", "dns"]
PROTOCOLS = ["TCP", "UDP", "SCTP"]
CIDRS = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "::/0", "2001:db8::/32", "2001:db8:1::/48"]
PROBE_PORTS = sorted({1, 65535} | {p + d for p in [*PORT_NUMBERS, 9090] for d in (-1, 0, 1)})
PROBES: list[tuple[str, int | None]] = [(proto, port) for proto in PROTOCOLS for port in PROBE_PORTS] + [("ICMP", None)]
PROBE_IPS = ["0.0.0.0", "8.8.8.8", "10.0.0.1", "10.1.2.3", "10.255.255.255", "11.0.0.0", "192.168.1.1",
             "255.255.255.255", "::", "2001:db8::1", "2001:db8:1::1", "2001:db9::", "fe80::1"]


# ------------------------------------------------------------------------------------------------ brute force


def ns_labels(namespaces: dict[str, dict[str, str]], ns: str) -> dict[str, str]:
    return {**namespaces.get(ns, {}), "kubernetes.io/metadata.name": ns}


def types_of(spec: dict[str, Any]) -> set[str]:
    # policyTypes: "If this field is not specified, it will default based on the existence of ingress or egress rules"
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if len(spec.get("egress") or []) > 0 else {"Ingress"}


def policy_selects(policy: dict[str, Any], pod: Pod) -> bool:
    return policy["metadata"]["namespace"] == pod.namespace and matches(policy["spec"].get("podSelector") or {},
                                                                        dict(pod.labels))


def peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | str, namespaces: dict[str, dict[str, str]]) -> bool:
    if isinstance(other, str):  # an IP address outside the cluster: only ipBlocks match
        block = peer.get("ipBlock")
        if block is None:
            return False
        ip = ipaddress.ip_address(other)
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
    if peer.get("ipBlock") is not None:
        return False  # ipBlocks describe cluster-external addresses (engine assumption)
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_sel is None:
        return other.namespace == policy_ns and matches(pod_sel, dict(other.labels))
    if not matches(ns_sel, ns_labels(namespaces, other.namespace)):
        return False
    return pod_sel is None or matches(pod_sel, dict(other.labels))


def port_matches(ports: list[dict[str, Any]] | None, proto: str, port: int | None, dst: Pod | str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if (entry.get("protocol") or "TCP") != proto or port is None:
            continue
        p = entry.get("port")
        if p is None:
            return True
        if isinstance(p, int):
            end = entry.get("endPort")
            if (end is None and port == p) or (end is not None and p <= port <= end):
                return True
        elif isinstance(dst, Pod) and any(n.name == p and n.protocol == proto and n.port == port for n in dst.ports):
            return True
    return False


def direction_allows(policies: list[dict[str, Any]], direction: str, subject: Pod, peer: Pod | str,
                     dst: Pod | str, proto: str, port: int | None, namespaces: dict[str, dict[str, str]]) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if direction in types_of(p["spec"]) and policy_selects(p, subject)]
    if not selecting:
        return True
    for p in selecting:
        for rule in p["spec"].get(rules_key) or []:
            if not port_matches(rule.get("ports"), proto, port, dst):
                continue
            peers = rule.get(peers_key)
            if not peers or any(peer_matches(x, p["metadata"]["namespace"], peer, namespaces) for x in peers):
                return True
    return False


def brute(policies: list[dict[str, Any]], namespaces: dict[str, dict[str, str]], src: Pod | str, dst: Pod | str,
          proto: str, port: int | None) -> bool:
    ok = True
    if isinstance(src, Pod):
        ok = direction_allows(policies, "Egress", src, dst, dst, proto, port, namespaces)
    if ok and isinstance(dst, Pod):
        ok = direction_allows(policies, "Ingress", dst, src, dst, proto, port, namespaces)
    return ok


# ------------------------------------------------------------------------------------------------ strategies

labels_st = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=2)
expr_st = st.one_of(
    st.builds(lambda k, vs, op: {"key": k, "operator": op, "values": vs}, st.sampled_from([*LABEL_KEYS, "team"]),
              st.lists(st.sampled_from([*LABEL_VALUES, "x"]), min_size=1, max_size=2, unique=True),
              st.sampled_from(["In", "NotIn"])),
    st.builds(lambda k, op: {"key": k, "operator": op}, st.sampled_from([*LABEL_KEYS, "team"]),
              st.sampled_from(["Exists", "DoesNotExist"])),
)
selector_st = st.one_of(
    st.just({}),
    st.builds(lambda m: {"matchLabels": m}, st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES),
                                                             min_size=1, max_size=2)),
    st.builds(lambda e: {"matchExpressions": e}, st.lists(expr_st, min_size=1, max_size=2)),
)
ns_selector_st = st.one_of(
    st.just({}),
    st.builds(lambda n: {"matchLabels": {"kubernetes.io/metadata.name": n}}, st.sampled_from(NS_NAMES)),
    st.builds(lambda v: {"matchLabels": {"team": v}}, st.sampled_from(["x", "y"])),
    st.builds(lambda e: {"matchExpressions": e}, st.lists(expr_st, min_size=1, max_size=1)),
)


@st.composite
def ip_block_st(draw: st.DrawFn) -> dict[str, Any]:
    cidr = draw(st.sampled_from(CIDRS))
    net = ipaddress.ip_network(cidr)
    inside = [c for c in CIDRS if c != cidr and ipaddress.ip_network(c).version == net.version
              and ipaddress.ip_network(c).subnet_of(net)]  # type: ignore[arg-type]
    block: dict[str, Any] = {"cidr": cidr}
    with_except: bool = draw(st.booleans())
    if inside and with_except:
        block["except"] = draw(st.lists(st.sampled_from(inside), min_size=1, max_size=2, unique=True))
    return block


peer_st = st.one_of(
    st.builds(lambda s: {"podSelector": s}, selector_st),
    st.builds(lambda s: {"namespaceSelector": s}, ns_selector_st),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, selector_st, ns_selector_st),
    st.builds(lambda b: {"ipBlock": b}, ip_block_st()),
)


@st.composite
def port_entry_st(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["protocol"] = draw(st.sampled_from(PROTOCOLS))
    kind = draw(st.sampled_from(["number", "range", "name", "none"]))
    if kind == "number":
        entry["port"] = draw(st.sampled_from(PORT_NUMBERS))
    elif kind == "range":
        lo = draw(st.sampled_from(PORT_NUMBERS))
        entry["port"] = lo
        entry["endPort"] = draw(st.sampled_from([p for p in [*PORT_NUMBERS, 9090] if p >= lo]))
    elif kind == "name":
        entry["port"] = draw(st.sampled_from(PORT_NAMES))
    return entry


@st.composite
def rule_st(draw: st.DrawFn, peers_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    form = draw(st.sampled_from(["absent", "empty", "peers", "peers", "peers"]))
    if form == "empty":
        rule[peers_key] = []
    elif form == "peers":
        rule[peers_key] = draw(st.lists(peer_st, min_size=1, max_size=2))
    ports = draw(st.sampled_from(["absent", "empty", "entries", "entries", "entries", "entries"]))
    if ports == "empty":
        rule["ports"] = []
    elif ports == "entries":
        rule["ports"] = draw(st.lists(port_entry_st(), min_size=1, max_size=2))
    return rule


@st.composite
def policy_st(draw: st.DrawFn, index: int, namespaces: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 4)):
        spec["podSelector"] = draw(selector_st)
    types = draw(st.sampled_from([None, [], ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    for key, peers_key in (("ingress", "from"), ("egress", "to")):
        form = draw(st.sampled_from(["absent", "empty", "rules", "rules", "rules", "rules"]))
        if form == "empty":
            spec[key] = []
        elif form == "rules":
            spec[key] = draw(st.lists(rule_st(peers_key), min_size=1, max_size=2))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(namespaces))}, "spec": spec}


named_port_st = st.builds(NamedPort, st.sampled_from(PORT_NAMES), st.sampled_from([*PORT_NUMBERS, 9090]),
                          st.sampled_from(["TCP", "UDP"]))


@st.composite
def cluster_st(draw: st.DrawFn) -> tuple[dict[str, dict[str, str]], list[Pod], list[dict[str, Any]]]:
    namespaces = {n: draw(st.dictionaries(st.just("team"), st.sampled_from(["x", "y"]), max_size=1))
                  for n in NS_NAMES[:draw(st.integers(1, 3))]}
    pods = []
    for i in range(draw(st.sampled_from([1, 2, 3, 4, 5, 6, 6]))):
        ns = draw(st.sampled_from(sorted(namespaces)))
        ports = tuple(draw(st.lists(named_port_st, max_size=2, unique_by=lambda p: (p.name, p.protocol))))
        wl = draw(st.sampled_from(["w0", "w1", None]))
        pods.append(Pod(ns, f"pod{i}", draw(labels_st), ports, f"{ns}/{wl}[Deployment]" if wl else ""))
    policies = [draw(policy_st(i, sorted(namespaces))) for i in range(draw(st.sampled_from([0, 1, 2, 3, 3, 4, 4])))]
    return namespaces, pods, policies


# ------------------------------------------------------------------------------------------------ properties


def _conn_at(conns: Any, proto: str, port: int | None) -> bool:
    return ConnSet.from_json(conns).contains(proto, port)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_st())
def test_engine_matches_brute_force(cluster: tuple[dict[str, dict[str, str]], list[Pod], list[dict[str, Any]]]) -> None:
    namespaces, pods, policies = cluster
    engine = Engine([Namespace(n, lbl) for n, lbl in namespaces.items()], pods, policies)
    assert not engine.warnings

    # 1. pod pairs, pointwise API
    for src in pods:
        for dst in pods:
            got = engine.allowed(src, dst)
            for proto, port in PROBES:
                want = brute(policies, namespaces, src, dst, proto, port)
                assert got.contains(proto, port) == want, (src.key, dst.key, proto, port, got)
            # the explanation accounts for exactly the allowed set on each isolated side
            why = engine.rules_allowing(src, dst)
            for side in ("egress", "ingress"):
                listed = ConnSet.empty()
                for rule in why[side]["rules"]:
                    listed = listed | ConnSet.from_json(rule["conns"])
                assert listed == (got if why[side]["isolated"] else ConnSet.empty()), (side, why)

    # 2. external addresses, pointwise API
    for pod in pods:
        for ip in PROBE_IPS:
            got_in, got_out = engine.allowed(ip, pod), engine.allowed(pod, ip)
            for proto, port in PROBES:
                assert got_in.contains(proto, port) == brute(policies, namespaces, ip, pod, proto, port), (ip, pod.key)
                assert got_out.contains(proto, port) == brute(policies, namespaces, pod, ip, proto, port), (pod.key, ip)

    # 3. the bulk workload view agrees with the brute force union over the workloads' pods
    by_wl: dict[str, list[Pod]] = {}
    for p in pods:
        by_wl.setdefault(p.workload_id, []).append(p)
    entries = engine.workload_connectivity()
    pairs: dict[tuple[str, str], Any] = {}
    external: dict[tuple[str, str], list[tuple[IPSet, Any]]] = {}
    for e in entries:
        assert (e["src"], e["dst"]) not in pairs, e
        pairs[(e["src"], e["dst"])] = e["conns"]
        if e["src"] not in by_wl:
            external.setdefault(("in", e["dst"]), []).append((IPSet.from_cidr(e["src"]), e["conns"]))
        elif e["dst"] not in by_wl:
            external.setdefault(("out", e["src"]), []).append((IPSet.from_cidr(e["dst"]), e["conns"]))
    for ws, sp in by_wl.items():
        for wd, dp in by_wl.items():
            conns = pairs.get((ws, wd))
            any_allowed = False
            for proto, port in PROBES:
                want = any(brute(policies, namespaces, s, d, proto, port) for s in sp for d in dp)
                any_allowed |= want
                assert (conns is not None and _conn_at(conns, proto, port)) == want, (ws, wd, proto, port, conns)
            assert (conns is not None) == any_allowed
        for direction in ("in", "out"):
            groups = external.get((direction, ws), [])
            for ip in PROBE_IPS:
                hits = [c for ips, c in groups if ips.contains(ip)]
                assert len(hits) <= 1, (ws, ip, hits)  # one CIDR per address
                for proto, port in PROBES:
                    want = any(brute(policies, namespaces, ip, p, proto, port) if direction == "in"
                               else brute(policies, namespaces, p, ip, proto, port) for p in sp)
                    assert (bool(hits) and _conn_at(hits[0], proto, port)) == want, (direction, ws, ip, proto, port)

    # 4. namespace facts: which other namespaces can reach each namespace
    facts = {f["namespace"]: f for f in engine.namespace_facts()}
    for ns in {p.namespace for p in pods}:
        reached_from = sorted({s.namespace for s in pods for d in pods if d.namespace == ns and s.namespace != ns
                       and any(brute(policies, namespaces, s, d, proto, port) for proto, port in PROBES)})
        assert facts[ns]["ingress_from_namespaces"] == reached_from


@settings(max_examples=300, deadline=None)
@given(st.lists(labels_st, min_size=1, max_size=6), selector_st)
def test_label_index_agrees_with_selectors(items: list[dict[str, str]], selector: dict[str, Any]) -> None:
    mask = LabelIndex(items).select(selector)
    assert [bool((mask >> i) & 1) for i in range(len(items))] == [matches(selector, lbl) for lbl in items]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CIDRS), st.lists(st.sampled_from(CIDRS), max_size=2)), max_size=3))
def test_ipset_except_and_cidrs(blocks: list[tuple[str, list[str]]]) -> None:
    total = IPSet.empty()
    for cidr, excepts in blocks:
        s = IPSet.from_cidr(cidr)
        for e in excepts:
            s = s - IPSet.from_cidr(e)
        total = total | s
    # the minimal CIDR list describes exactly the same addresses
    assert IPSet.from_cidrs(total.cidrs()) == total
    for ip in PROBE_IPS:
        addr = ipaddress.ip_address(ip)
        want = any(addr in ipaddress.ip_network(c) and not any(addr in ipaddress.ip_network(e) for e in ex)
                   for c, ex in blocks)
        assert total.contains(ip) == want
