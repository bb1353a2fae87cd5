"""NetworkPolicy reachability engine: exact networking.k8s.io/v1 semantics over pods, computed on pod classes.

Semantics (kubernetes.io "Network Policies" and the NetworkPolicySpec API reference):

- A policy selects pods of its own namespace by `spec.podSelector` (empty = all of them).
- `policyTypes`, when absent or empty, defaults to ["Ingress"] plus "Egress" when `spec.egress` has at least one rule
  (SetDefaults_NetworkPolicy: `len(spec.Egress) != 0`). A policy only acts in the directions it declares; rules of
  the other direction are ignored.
- A pod is isolated in a direction when at least one policy of that type selects it; otherwise everything is allowed
  in that direction. For an isolated pod the allowed traffic is the union of all rules of all selecting policies.
- A rule without `from`/`to` (or with an empty list) matches every peer, in and outside the cluster; without `ports`
  (or empty) every port and protocol. `ingress: []` or an absent `ingress` allows nothing.
- Peers: `podSelector` alone = pods of the policy's namespace; `namespaceSelector` alone = all pods of the selected
  namespaces; both in one element = AND; separate elements = OR. Namespaces are matched on their labels, which always
  include `kubernetes.io/metadata.name`.
- ASSUMPTION: `ipBlock` peers describe traffic to/from outside the cluster only. Pod IPs are never matched by an
  ipBlock (the API reference says ipBlocks "should be cluster-external IPs, since Pod IPs are ephemeral and
  unpredictable"; whether a CNI matches pod IPs against ipBlocks is implementation-defined).
- Ports: numbers, `endPort` ranges, protocol-only entries (all ports of that protocol), and names resolved on the
  destination pod's container ports (for egress rules too; see `ports.py`).
- Pod to pod: allowed only if the source's egress AND the destination's ingress allow it (intersection). Outside to
  pod: the destination's ingress only. Pod to outside: the source's egress only.
- Traffic from a pod to itself is evaluated like any other pair (Kubernetes never blocks it; the engine does not model
  that loopback exception, and workload self-pairs describe traffic between replicas).

Scale: pods are grouped into classes (namespace, labels, named ports) that every selector and every named port treats
alike. Sets of classes are bitmasks (Python ints). For each source class the destinations are split into a few
regions with identical connections (`_regions`), so no pod pair and no class pair is ever enumerated except to write
output; workloads are expanded from classes only at the end.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from evidence.netpol.labelindex import LabelIndex, bits, mask_of
from evidence.netpol.model import (
    ALL,
    ALL_IPS,
    EMPTY,
    NO_IPS,
    ConnSet,
    IPSet,
    NamedPort,
    Namespace,
    Pod,
    partition_ips,
)
from evidence.netpol.ports import PortSpec, is_static, parse_ports, resolve
from evidence.netpol.selectors import matches

Endpoint = Pod | str  # a Pod, a workload id "ns/name[Kind]", a pod key "ns/name", or an IP address

INGRESS, EGRESS = "Ingress", "Egress"
# Probes (Engine(probes=True)): a pod without labels or named ports in every namespace, standing for "a pod no policy
# names specifically" (the namespace's default), and one in a namespace that does not exist yet, standing for "any pod
# of the cluster". Neither name is a valid Kubernetes name, so neither can collide with a real pod or namespace.
PROBE_POD = "<new pod>"
PROBE_NAMESPACE = "<new namespace>"


@dataclass
class _Rule:
    policy: int
    index: int
    pods: int  # pod classes matched by the rule's peers (all of them when the rule has no peers)
    ips: IPSet  # external addresses matched (everything when the rule has no peers)
    spec: PortSpec
    dst_entries: list[tuple[int, ConnSet]] = field(default_factory=list)  # (destination classes, connections)


@dataclass
class _Policy:
    namespace: str
    name: str
    selected: int
    types: tuple[str, ...]
    ingress: list[_Rule]
    egress: list[_Rule]

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


def _key(selector: Any) -> str:
    return json.dumps(selector, sort_keys=True, default=str)


def _merge(into: dict[ConnSet, int], conn: ConnSet, mask: int) -> None:
    if mask and not conn.is_empty():
        into[conn] = into.get(conn, 0) | mask


def _refine(regions: list[tuple[int, ConnSet]], entries: Mapping[ConnSet, int]) -> list[tuple[int, ConnSet]]:
    """Split disjoint regions so each one gets the union of the connections of the entries covering it."""
    for conn, m in entries.items():
        out: list[tuple[int, ConnSet]] = []
        for r, c in regions:
            a = r & m
            if a:
                out.append((a, c | conn))
                if a != r:
                    out.append((r ^ a, c))
            else:
                out.append((r, c))
        regions = out
    merged: dict[ConnSet, int] = {}
    for r, c in regions:
        merged[c] = merged.get(c, 0) | r
    return [(m, c) for c, m in merged.items()]


def _regions(egress: Mapping[ConnSet, int], ingress: Mapping[ConnSet, int]) -> list[tuple[int, ConnSet]]:
    """Destinations of one source as disjoint (classes, connections): egress union intersected with ingress union."""
    em = im = 0
    for m in egress.values():
        em |= m
    for m in ingress.values():
        im |= m
    cand = em & im
    if not cand:
        return []
    out: dict[ConnSet, int] = {}
    for r, ce in _refine([(cand, EMPTY)], egress):
        for r2, ci in _refine([(r, EMPTY)], ingress):
            f = ce & ci
            if not f.is_empty():
                out[f] = out.get(f, 0) | r2
    return [(m, c) for c, m in out.items()]


def _union_regions(parts: Iterable[list[tuple[int, ConnSet]]]) -> list[tuple[int, ConnSet]]:
    """Union of several region lists (a workload with pods in several classes)."""
    regions: list[tuple[int, ConnSet]] = []
    covered = 0
    for part in parts:
        for m, c in part:
            regions = _refine(regions, {c: m})
            new = m & ~covered
            if new:
                regions.append((new, c))
            covered |= m
    merged: dict[ConnSet, int] = {}
    for r, c in regions:
        merged[c] = merged.get(c, 0) | r
    return [(m, c) for c, m in merged.items()]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class Engine:
    """Reachability between pods, workloads and external addresses under a set of NetworkPolicies. Pure: no I/O."""

    def __init__(self, namespaces: Iterable[Namespace], pods: Iterable[Pod],
                 policies: Iterable[Mapping[str, Any]], *, probes: bool = False) -> None:
        """`probes`: also place the probe pods (see PROBE_POD), so `exposure()` can tell what a namespace admits by
        default and whether a workload admits every pod of the cluster. Probes never appear in any other output."""
        self.warnings: list[str] = []
        pod_list = list(pods)
        ns_by_name: dict[str, Namespace] = {n.name: n for n in namespaces}
        for p in pod_list:
            ns_by_name.setdefault(p.namespace, Namespace(p.namespace))
        policies = list(policies)
        for raw in policies:  # a policy's namespace exists even with no pod in it (and its default is asked for)
            meta = raw.get("metadata") if isinstance(raw, Mapping) else None
            ns_by_name.setdefault(str((meta or {}).get("namespace") or "default"),
                                  Namespace(str((meta or {}).get("namespace") or "default")))
        probe_pods: list[Pod] = []
        if probes:
            ns_by_name.setdefault(PROBE_NAMESPACE, Namespace(PROBE_NAMESPACE))
            probe_pods = [Pod(n, PROBE_POD) for n in sorted(ns_by_name)]
        self.namespaces: list[str] = sorted(ns_by_name)
        self._ns_index = {n: i for i, n in enumerate(self.namespaces)}
        self._ns_labels = LabelIndex([ns_by_name[n].effective_labels() for n in self.namespaces])

        # ---- pod classes: (namespace, labels, named ports); ids contiguous per namespace
        groups: dict[tuple[str, tuple[tuple[str, str], ...], tuple[NamedPort, ...], bool], list[Pod]] = {}
        seen: set[str] = set()
        for p in pod_list:
            if p.key in seen:
                self._warn(f"pod {p.key} listed twice; the first one is used")
                continue
            seen.add(p.key)
            labels = tuple(sorted((str(k), str(v)) for k, v in p.labels.items()))
            groups.setdefault((p.namespace, labels, tuple(sorted(set(p.ports))), False), []).append(p)
        for p in probe_pods:  # a class of its own even where a real pod has no labels either
            groups[(p.namespace, (), (), True)] = [p]
        ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], min(x.workload_id for x in kv[1]), kv[0][1:]))
        self.class_ns: list[int] = []
        self.class_labels: list[dict[str, str]] = []
        self.class_ports: list[tuple[NamedPort, ...]] = []
        self.class_pods: list[list[Pod]] = []
        self.class_workloads: list[list[str]] = []
        self._pod_class: dict[str, int] = {}
        self._probe_class: dict[str, int] = {}
        self._probe_mask = 0
        wl_classes: dict[str, set[int]] = {}
        for cid, ((ns, labels, ports, probe), members) in enumerate(ordered):
            self.class_ns.append(self._ns_index[ns])
            self.class_labels.append(dict(labels))
            self.class_ports.append(ports)
            if probe:
                self._probe_class[ns] = cid
                self._probe_mask |= 1 << cid
                self.class_pods.append([])
                self.class_workloads.append([])
                continue
            self.class_pods.append(members)
            wls = sorted({m.workload_id for m in members})
            self.class_workloads.append(wls)
            for m in members:
                self._pod_class[m.key] = cid
            for w in wls:
                wl_classes.setdefault(w, set()).add(cid)
        self.n = len(ordered)
        self.universe = (1 << self.n) - 1
        self._real = self.universe & ~self._probe_mask  # the classes of real (or derived) pods
        self.workloads: dict[str, list[int]] = {w: sorted(c) for w, c in sorted(wl_classes.items())}
        self._ns_start = [0] * len(self.namespaces)
        self._ns_end = [0] * len(self.namespaces)
        for cid in range(self.n - 1, -1, -1):
            self._ns_start[self.class_ns[cid]] = cid
        for cid in range(self.n):
            self._ns_end[self.class_ns[cid]] = cid + 1
        self._ns_classes = [((1 << e) - 1) ^ ((1 << s) - 1) for s, e in zip(self._ns_start, self._ns_end, strict=True)]
        self._class_index: LabelIndex | None = None
        self._named_group_cache: dict[frozenset[str], list[tuple[tuple[NamedPort, ...], int]]] = {}
        self._port_groups: dict[tuple[NamedPort, ...], int] = {}
        for cid, ports in enumerate(self.class_ports):
            self._port_groups[ports] = self._port_groups.get(ports, 0) | (1 << cid)

        # ---- policies
        self._sel_cache: dict[tuple[str, str], int] = {}
        self._nssel_cache: dict[str, int] = {}
        self.policies: list[_Policy] = [self._compile(pid, p) for pid, p in enumerate(policies)]
        self._in_isolated = self._out_isolated = 0
        self._in_pols: list[list[int]] = [[] for _ in range(self.n)]
        self._out_pols: list[list[int]] = [[] for _ in range(self.n)]
        for pid, pol in enumerate(self.policies):
            if INGRESS in pol.types:
                self._in_isolated |= pol.selected
            if EGRESS in pol.types:
                self._out_isolated |= pol.selected
            for c in bits(pol.selected):
                if INGRESS in pol.types:
                    self._in_pols[c].append(pid)
                if EGRESS in pol.types:
                    self._out_pols[c].append(pid)
        # Ingress rules indexed by the source classes they admit (the transpose needed to iterate by source).
        self._in_groups: list[dict[ConnSet, int]] = []
        self._in_global: dict[ConnSet, int] = {}
        not_isolated = self.universe & ~self._in_isolated
        _merge(self._in_global, ALL, not_isolated)  # non-isolated destinations admit everything
        by_src: dict[int, dict[ConnSet, int]] = {}
        for pol in self.policies:
            for r in pol.ingress:
                r.dst_entries = self._split(r.spec, pol.selected)
                if not r.pods:
                    continue
                target = self._in_global if r.pods == self.universe else by_src.setdefault(r.pods, {})
                for dmask, conn in r.dst_entries:
                    _merge(target, conn, dmask)
            for r in pol.egress:
                r.dst_entries = self._split(r.spec, r.pods)
        self._src_groups: list[list[int]] = [[] for _ in range(self.n)]
        for gid, (srcmask, entries) in enumerate(by_src.items()):
            self._in_groups.append(entries)
            for s in bits(srcmask):
                self._src_groups[s].append(gid)
        self._region_cache: dict[tuple[tuple[int, ...], tuple[int, ...] | None], list[tuple[int, ConnSet]]] = {}
        self._egress_cache: dict[tuple[int, ...], dict[ConnSet, int]] = {}
        self._ext_cache: dict[tuple[tuple[IPSet, ConnSet], ...], list[tuple[IPSet, ConnSet]]] = {}
        self._cidr_cache: dict[IPSet, list[str]] = {}
        self._json_cache: dict[ConnSet, Any] = {}
        self._out_ns_mask: list[int] | None = None
        self._sources: dict[int, set[int]] | None = None
        self._by_ns: dict[str, list[_Policy]] | None = None

    # ------------------------------------------------------------------------------------------------ compilation

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def _classes_in_ns(self, ns: str, selector: Any) -> int:
        """Classes of namespace `ns` whose pod labels match `selector` (empty selector: all of them)."""
        k = self._ns_index.get(ns)
        if k is None:
            return 0
        key = (ns, _key(selector))
        hit = self._sel_cache.get(key)
        if hit is None:
            if not selector:
                hit = self._ns_classes[k]
            else:
                hit = mask_of((c for c in range(self._ns_start[k], self._ns_end[k])
                               if matches(selector, self.class_labels[c])), self.n)
            self._sel_cache[key] = hit
        return hit

    def _classes_in_selected_ns(self, ns_selector: Any) -> int:
        key = _key(ns_selector)
        hit = self._nssel_cache.get(key)
        if hit is None:
            hit = 0
            for k in bits(self._ns_labels.select(ns_selector)):
                hit |= self._ns_classes[k]
            self._nssel_cache[key] = hit
        return hit

    def _peer(self, peer: Any, ns: str, where: str) -> tuple[int, IPSet]:
        """Pod classes and external addresses one NetworkPolicyPeer matches."""
        if not isinstance(peer, dict):
            self._warn(f"{where}: peer is not an object; matches nothing")
            return 0, NO_IPS
        ip_block = peer.get("ipBlock")
        pod_sel = self._selector(peer.get("podSelector"), f"{where} podSelector")
        ns_sel = self._selector(peer.get("namespaceSelector"), f"{where} namespaceSelector")
        if ip_block is not None:
            # "If this field is set then neither of the other fields can be."
            if pod_sel is not None or ns_sel is not None:
                self._warn(f"{where}: ipBlock combined with selectors is invalid; peer matches nothing")
                return 0, NO_IPS
            if not isinstance(ip_block, dict):
                self._warn(f"{where}: ipBlock is not an object; peer matches nothing")
                return 0, NO_IPS
            try:
                ips = IPSet.from_cidr(str(ip_block.get("cidr")))
                for ex in ip_block.get("except") or []:
                    ips = ips - IPSet.from_cidr(str(ex))  # except: CIDRs "not included within this rule"
            except ValueError as e:
                self._warn(f"{where}: invalid ipBlock {ip_block!r} ({e}); peer matches nothing")
                return 0, NO_IPS
            return 0, ips
        if pod_sel is None and ns_sel is None:
            self._warn(f"{where}: empty peer is invalid (the API requires one field); matches nothing")
            return 0, NO_IPS
        if ns_sel is None:
            return self._classes_in_ns(ns, pod_sel), NO_IPS  # podSelector alone: the policy's own namespace
        in_ns = self._classes_in_selected_ns(ns_sel)
        if not pod_sel:  # namespaceSelector alone (or with an empty podSelector): every pod of those namespaces
            return in_ns, NO_IPS
        if self._class_index is None:
            self._class_index = LabelIndex(self.class_labels)
        return in_ns & self._class_index.select(pod_sel), NO_IPS  # both in one element: AND

    def _rule(self, pid: int, idx: int, raw: Any, peer_key: str, ns: str, where: str) -> _Rule:
        if not isinstance(raw, dict):
            self._warn(f"{where}: rule is not an object; matches nothing")
            return _Rule(pid, idx, 0, NO_IPS, ())
        spec = parse_ports(raw.get("ports"), lambda m: self._warn(f"{where}: {m}"))
        peers = raw.get(peer_key)
        # "If this field is empty or missing, this rule matches all sources/destinations."
        if not peers:
            return _Rule(pid, idx, self.universe, ALL_IPS, spec)
        pods, ips = 0, NO_IPS
        for j, peer in enumerate(peers if isinstance(peers, list) else [peers]):
            m, i = self._peer(peer, ns, f"{where}.{peer_key}[{j}]")
            pods |= m
            ips = ips | i
        return _Rule(pid, idx, pods, ips, spec)

    def _compile(self, pid: int, obj: Mapping[str, Any]) -> _Policy:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or "default"), str(meta.get("name") or f"#{pid}")
        spec = obj.get("spec") or {}
        where = f"NetworkPolicy {ns}/{name}"
        declared = spec.get("policyTypes")
        if declared:
            types = tuple(t for t in (INGRESS, EGRESS) if t in declared)
            for t in declared:
                if t not in (INGRESS, EGRESS):
                    self._warn(f"{where}: unknown policyType {t!r} ignored")
        else:
            # SetDefaults_NetworkPolicy: Ingress always; Egress only if there is at least one egress rule.
            types = (INGRESS, EGRESS) if spec.get("egress") else (INGRESS,)
        selected = self._classes_in_ns(ns, self._selector(spec.get("podSelector"), f"{where} podSelector"))
        rules: dict[str, list[_Rule]] = {}
        for direction, key, peer_key in ((INGRESS, "ingress", "from"), (EGRESS, "egress", "to")):
            raw = spec.get(key) or []
            if not isinstance(raw, list):
                self._warn(f"{where}: {key} is not a list; treated as no rules")
                raw = []
            # A policy ignores its rules of a direction it does not declare.
            rules[direction] = [self._rule(pid, i, r, peer_key, ns, f"{where} {key}[{i}]")
                                for i, r in enumerate(raw)] if direction in types else []
        return _Policy(ns, name, selected, types, rules[INGRESS], rules[EGRESS])

    def _selector(self, selector: Any, where: str) -> Any:
        """A LabelSelector as given, or a selector matching nothing (with a warning) when it is malformed."""
        if selector is None or isinstance(selector, dict):
            return selector
        self._warn(f"{where}: selector {selector!r} is not an object; matches nothing")
        return {"matchExpressions": [{"key": "", "operator": "<invalid>"}]}  # unknown operator: never matches

    def _split(self, spec: PortSpec, mask: int) -> list[tuple[int, ConnSet]]:
        """(destination classes, connections) for a port spec over the destination classes in `mask`."""
        if not mask:
            return []
        if is_static(spec):
            conn = resolve(spec, None)
            return [] if conn.is_empty() else [(mask, conn)]
        out: dict[ConnSet, int] = {}
        groups = self._named_groups(frozenset(e.port for e in spec or () if isinstance(e.port, str)))
        if mask.bit_count() <= len(groups):
            for c in bits(mask):
                _merge(out, resolve(spec, self.class_ports[c]), 1 << c)
        else:
            for ports, gmask in groups:
                _merge(out, resolve(spec, ports), gmask & mask)
        return [(m, c) for c, m in out.items()]

    def _named_groups(self, names: frozenset[str]) -> list[tuple[tuple[NamedPort, ...], int]]:
        """All classes grouped by their container ports carrying one of `names` (the only ones a spec using those
        names can resolve), so resolving a spec costs one step per distinct group, not per class."""
        hit = self._named_group_cache.get(names)
        if hit is None:
            acc: dict[tuple[NamedPort, ...], int] = {}
            for ports, gmask in self._port_groups.items():
                key = tuple(p for p in ports if p.name in names)
                acc[key] = acc.get(key, 0) | gmask
            hit = self._named_group_cache[names] = list(acc.items())
        return hit

    # ------------------------------------------------------------------------------------------------ bulk evaluation

    def _egress_entries(self, s: int) -> tuple[tuple[int, ...] | None, dict[ConnSet, int]]:
        if not (self._out_isolated >> s) & 1:
            return None, {ALL: self.universe}
        key = tuple(self._out_pols[s])
        hit = self._egress_cache.get(key)
        if hit is None:
            hit = {}
            for pid in key:
                for r in self.policies[pid].egress:
                    for m, c in r.dst_entries:
                        _merge(hit, c, m)
            self._egress_cache[key] = hit
        return key, hit

    def class_regions(self, s: int) -> list[tuple[int, ConnSet]]:
        """Destination classes of source class `s` as disjoint (bitmask, connections) regions."""
        ekey, eentries = self._egress_entries(s)
        key = (tuple(self._src_groups[s]), ekey)
        hit = self._region_cache.get(key)
        if hit is None:
            ingress: dict[ConnSet, int] = dict(self._in_global)
            for gid in key[0]:
                for c, m in self._in_groups[gid].items():
                    _merge(ingress, c, m)
            hit = _regions(eentries, ingress)
            self._region_cache[key] = hit
        return hit

    def _workload_regions(self, w: str) -> list[tuple[int, ConnSet]]:
        cls = self.workloads[w]
        if len(cls) == 1:
            return self.class_regions(cls[0])
        return _union_regions(self.class_regions(c) for c in cls)

    def _json(self, conn: ConnSet) -> Any:
        hit = self._json_cache.get(conn)
        if hit is None:
            hit = self._json_cache[conn] = conn.to_json()
        return hit

    def _cidrs(self, ips: IPSet) -> list[str]:
        hit = self._cidr_cache.get(ips)
        if hit is None:
            hit = self._cidr_cache[ips] = ips.cidrs()
        return hit

    def iter_workload_connectivity(self) -> Iterator[dict[str, Any]]:
        """Like workload_connectivity(), lazily (the benchmark streams it). Per source workload, in sorted order:
        its workload destinations (sorted), then its external destinations, then the external sources reaching it.
        The `conns` values are shared between entries: treat them as read-only."""
        multi = {w for w, c in self.workloads.items() if len(c) > 1}
        for w in self.workloads:
            dests: list[tuple[str, ConnSet]] = []
            acc: dict[str, ConnSet] = {}
            for mask, conn in self._workload_regions(w):
                for d in bits(mask):
                    for wd in self.class_workloads[d]:
                        if wd in multi:
                            acc[wd] = acc.get(wd, EMPTY) | conn
                        else:
                            dests.append((wd, conn))
            dests.extend(acc.items())
            dests.sort(key=lambda e: e[0])
            for wd, conn in dests:
                yield {"src": w, "dst": wd, "conns": self._json(conn)}
            for ips, conn in self._external(w, EGRESS):
                for cidr in self._cidrs(ips):
                    yield {"src": w, "dst": cidr, "conns": self._json(conn)}
            for ips, conn in self._external(w, INGRESS):
                for cidr in self._cidrs(ips):
                    yield {"src": cidr, "dst": w, "conns": self._json(conn)}

    def workload_connectivity(self) -> list[dict[str, Any]]:
        """Every ordered pair of workloads, and of workloads and external CIDR ranges, with some allowed connection:
        `{"src", "dst", "conns"}`; workload pairs get the union over their pods; external addresses are grouped into
        maximal sets treated identically for that workload and written one entry per CIDR."""
        return list(self.iter_workload_connectivity())

    # ------------------------------------------------------------------------------------------------ external

    def _class_external(self, c: int, direction: str) -> list[tuple[IPSet, ConnSet]]:
        if direction == INGRESS:
            if not (self._in_isolated >> c) & 1:
                return [(ALL_IPS, ALL)]
            entries = tuple((r.ips, resolve(r.spec, self.class_ports[c]))
                            for pid in self._in_pols[c] for r in self.policies[pid].ingress if not r.ips.is_empty())
        else:
            if not (self._out_isolated >> c) & 1:
                return [(ALL_IPS, ALL)]
            # Named ports cannot be resolved on an address outside the cluster: they match nothing there.
            entries = tuple((r.ips, resolve(r.spec, None))
                            for pid in self._out_pols[c] for r in self.policies[pid].egress if not r.ips.is_empty())
        hit = self._ext_cache.get(entries)
        if hit is None:
            hit = self._ext_cache[entries] = partition_ips(entries)
        return hit

    def _external(self, w: str, direction: str) -> list[tuple[IPSet, ConnSet]]:
        cls = self.workloads[w]
        if len(cls) == 1:
            return self._class_external(cls[0], direction)
        return partition_ips(e for c in cls for e in self._class_external(c, direction))

    # ------------------------------------------------------------------------------------------------ pointwise API

    def _classes_of(self, ep: Endpoint) -> list[int]:
        if isinstance(ep, Pod):
            c = self._pod_class.get(ep.key)
            if c is None:
                raise KeyError(f"pod {ep.key} is not known to the engine")
            return [c]
        if ep in self.workloads:
            return self.workloads[ep]
        if ep in self._pod_class:
            return [self._pod_class[ep]]
        raise KeyError(f"{ep!r} is neither a known workload, a pod nor an IP address")

    def _in_rules(self, s: int | None, d: int, ip: str | None) -> list[tuple[_Rule, ConnSet]]:
        """Ingress rules of policies selecting class `d` that admit source class `s` (or address `ip`)."""
        out = []
        for pid in self._in_pols[d]:
            for r in self.policies[pid].ingress:
                hit = r.ips.contains(ip) if ip is not None else s is not None and bool((r.pods >> s) & 1)
                if hit:
                    conn = resolve(r.spec, self.class_ports[d])
                    if not conn.is_empty():
                        out.append((r, conn))
        return out

    def _out_rules(self, s: int, d: int | None, ip: str | None) -> list[tuple[_Rule, ConnSet]]:
        out = []
        for pid in self._out_pols[s]:
            for r in self.policies[pid].egress:
                hit = r.ips.contains(ip) if ip is not None else d is not None and bool((r.pods >> d) & 1)
                if hit:
                    conn = resolve(r.spec, None if d is None else self.class_ports[d])
                    if not conn.is_empty():
                        out.append((r, conn))
        return out

    def _side(self, isolated: bool, rules: list[tuple[_Rule, ConnSet]]) -> ConnSet:
        if not isolated:
            return ALL
        out = EMPTY
        for _, c in rules:
            out = out | c
        return out

    def _class_pair(self, s: int, d: int) -> ConnSet:
        eg = self._side(bool((self._out_isolated >> s) & 1), self._out_rules(s, d, None))
        ig = self._side(bool((self._in_isolated >> d) & 1), self._in_rules(s, d, None))
        return eg & ig

    def allowed(self, src: Endpoint, dst: Endpoint) -> ConnSet:
        """Connections allowed from `src` to `dst` (pods, workloads: union over their pods; or one IP address)."""
        sip = _ip(src) if isinstance(src, str) else None
        dip = _ip(dst) if isinstance(dst, str) else None
        if sip is not None and dip is not None:
            raise ValueError("at least one end of a flow must be a pod or workload")
        out = EMPTY
        if sip is not None:
            for d in self._classes_of(dst):
                out = out | self._side(bool((self._in_isolated >> d) & 1), self._in_rules(None, d, str(sip)))
            return out
        if dip is not None:
            for s in self._classes_of(src):
                out = out | self._side(bool((self._out_isolated >> s) & 1), self._out_rules(s, None, str(dip)))
            return out
        for s in self._classes_of(src):
            for d in self._classes_of(dst):
                out = out | self._class_pair(s, d)
        return out

    def ingress_from_external(self, dst: Endpoint) -> list[tuple[list[str], ConnSet]]:
        """External address groups allowed into `dst` (a pod or workload), each as (CIDRs, connections)."""
        parts = [e for c in self._classes_of(dst) for e in self._class_external(c, INGRESS)]
        return [(self._cidrs(ips), conn) for ips, conn in partition_ips(parts)]

    def egress_to_external(self, src: Endpoint) -> list[tuple[list[str], ConnSet]]:
        """External address groups `src` (a pod or workload) may connect to, each as (CIDRs, connections)."""
        parts = [e for c in self._classes_of(src) for e in self._class_external(c, EGRESS)]
        return [(self._cidrs(ips), conn) for ips, conn in partition_ips(parts)]

    def rules_allowing(self, src: Endpoint, dst: Endpoint) -> dict[str, Any]:
        """Why a flow is allowed: per direction whether the end is isolated, and which policy rules admit it.

        `ingress`/`egress` are None for the side outside the cluster. A rule is listed when it admits part of the
        final allowed set (so a rule whose ports the other side blocks entirely is not listed)."""
        total = self.allowed(src, dst)
        sip = _ip(src) if isinstance(src, str) else None
        dip = _ip(dst) if isinstance(dst, str) else None
        eg: dict[tuple[str, int], ConnSet] = {}
        ig: dict[tuple[str, int], ConnSet] = {}
        eg_iso = ig_iso = False
        src_classes: list[int | None] = [None] if sip is not None else list(self._classes_of(src))
        dst_classes: list[int | None] = [None] if dip is not None else list(self._classes_of(dst))
        for s in src_classes:
            for d in dst_classes:
                if s is not None:
                    eg_iso |= bool((self._out_isolated >> s) & 1)
                    for r, c in self._out_rules(s, d, str(dip) if dip is not None else None):
                        k = (self.policies[r.policy].id, r.index)
                        eg[k] = eg.get(k, EMPTY) | (c & total)
                if d is not None:
                    ig_iso |= bool((self._in_isolated >> d) & 1)
                    for r, c in self._in_rules(s, d, str(sip) if sip is not None else None):
                        k = (self.policies[r.policy].id, r.index)
                        ig[k] = ig.get(k, EMPTY) | (c & total)

        def side(iso: bool, rules: dict[tuple[str, int], ConnSet]) -> dict[str, Any]:
            listed = [{"policy": p, "rule": i, "conns": c.to_json()} for (p, i), c in sorted(rules.items())
                      if not c.is_empty()]
            return {"isolated": iso, "policies": sorted({r["policy"] for r in listed}), "rules": listed}

        return {
            "src": src.key if isinstance(src, Pod) else src,
            "dst": dst.key if isinstance(dst, Pod) else dst,
            "conns": total.to_json(),
            "egress": None if sip is not None else side(eg_iso, eg),
            "ingress": None if dip is not None else side(ig_iso, ig),
        }

    # ------------------------------------------------------------------------------------------------ exposure

    def _exposure(self, classes: list[int]) -> dict[str, Any]:
        foreign = self._probe_class.get(PROBE_NAMESPACE)
        if foreign is None:
            raise ValueError("exposure needs an Engine built with probes=True")
        from_any, to_any = EMPTY, EMPTY
        in_any: set[str] = set()
        out_any: set[str] = set()
        in_ext: dict[tuple[str, int], tuple[IPSet, ConnSet]] = {}
        out_ext: dict[tuple[str, int], tuple[IPSet, ConnSet]] = {}
        for c in classes:
            from_any = from_any | self._class_pair(foreign, c)
            to_any = to_any | self._class_pair(c, foreign)
            in_any.update(self.policies[r.policy].id for r, _ in self._in_rules(foreign, c, None))
            out_any.update(self.policies[r.policy].id for r, _ in self._out_rules(c, foreign, None))
            for pid in self._in_pols[c]:
                for r in self.policies[pid].ingress:
                    if not r.ips.is_empty():
                        conn = resolve(r.spec, self.class_ports[c])
                        prev = in_ext.get((self.policies[pid].id, r.index), (NO_IPS, EMPTY))
                        in_ext[(self.policies[pid].id, r.index)] = (r.ips, prev[1] | conn)
            for pid in self._out_pols[c]:
                for r in self.policies[pid].egress:
                    if not r.ips.is_empty():
                        out_ext[(self.policies[pid].id, r.index)] = (r.ips, resolve(r.spec, None))
        return {
            "ingress_isolated": all((self._in_isolated >> c) & 1 for c in classes),
            "egress_isolated": all((self._out_isolated >> c) & 1 for c in classes),
            "ingress_from_any_pod": from_any,
            "egress_to_any_pod": to_any,
            "ingress_from_external": partition_ips(e for c in classes for e in self._class_external(c, INGRESS)),
            "egress_to_external": partition_ips(e for c in classes for e in self._class_external(c, EGRESS)),
            "ingress_any_pod_policies": sorted(in_any),
            "egress_any_pod_policies": sorted(out_any),
            "ingress_external_rules": [(p, i, ips, conn) for (p, i), (ips, conn) in sorted(in_ext.items())],
            "egress_external_rules": [(p, i, ips, conn) for (p, i), (ips, conn) in sorted(out_ext.items())],
        }

    def exposure(self, workload: str) -> dict[str, Any]:
        """What a workload admits and may reach, as far as "everyone" goes (needs probes=True):

        - `ingress_isolated` / `egress_isolated`: every pod of it is selected by a policy of that type;
        - `ingress_from_any_pod` / `egress_to_any_pod`: connections allowed from / to a pod of a namespace that does
          not exist yet (so allowed for every pod of the cluster, whatever its labels and namespace), with the
          policies whose rules allow them (`*_any_pod_policies`);
        - `ingress_from_external` / `egress_to_external`: [(IPSet, ConnSet)] as ingress_from_external() gives them,
          and `*_external_rules`: (policy id, rule index, addresses, connections) of every ipBlock rule involved."""
        return self._exposure(self.workloads[workload])

    def baseline(self, namespace: str) -> dict[str, Any]:
        """exposure() of the namespace's default: a new pod there whose labels no policy names specifically. Its
        isolation and what it admits are the namespace's default deny, derived from the policies' effect."""
        c = self._probe_class.get(namespace)
        if c is None:
            raise KeyError(f"namespace {namespace!r} is not known to the engine (or probes are off)")
        return self._exposure([c])

    def baseline_policies(self, namespace: str) -> list[tuple[str, tuple[str, ...]]]:
        """(name, policy types) of the policies selecting the namespace's default (its probe pod, see baseline())."""
        c = self._probe_class.get(namespace)
        if c is None:
            return []
        return [(p.name, p.types) for p in self._policies_in(namespace) if (p.selected >> c) & 1]

    def _policies_in(self, namespace: str) -> list[_Policy]:
        """The policies of one namespace (only they can select its pods)."""
        if self._by_ns is None:
            self._by_ns = {}
            for p in self.policies:
                self._by_ns.setdefault(p.namespace, []).append(p)
        return self._by_ns.get(namespace, [])

    def selected(self, workload: str) -> bool:
        """Every pod of the workload is selected by some policy, of either type."""
        either = self._in_isolated | self._out_isolated
        return all((either >> c) & 1 for c in self.workloads[workload])

    def policies_selecting_nothing(self) -> list[str]:
        """Policies whose podSelector selects no pod at all (a probe does not count)."""
        return [p.id for p in self.policies if not p.selected & self._real]

    def workload_namespaces(self, workloads: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
        """Per workload: (other namespaces with a pod that can reach one of its pods, other namespaces it can reach).

        One pass over the (source namespace, reached namespace) pairs, looking only at the namespaces of the
        workloads asked for (classes are contiguous per namespace, so a namespace's slice of a mask is a shift)."""
        wanted = list(workloads)
        sources = self._class_sources()
        out: dict[str, tuple[list[str], list[str]]] = {}
        for w in wanted:
            cls = self.workloads[w]
            own = self.class_ns[cls[0]]
            reach = 0
            for c in cls:
                for m, _ in self.class_regions(c):
                    reach |= m & self._real
            srcs = sorted({self.namespaces[k] for c in cls for k in sources.get(c, ())})
            dsts = sorted(self.namespaces[k] for k in self._namespaces_in(reach) if k != own)
            out[w] = (srcs, dsts)
        return out

    def _class_sources(self) -> dict[int, set[int]]:
        """Per class: the other namespaces with a pod that can reach it (computed once)."""
        if self._sources is None:
            sources: dict[int, set[int]] = {}
            for k, m in enumerate(self._out_namespace_masks()):
                if not m:
                    continue
                for j in self._namespaces_in(m):
                    if j == k:
                        continue
                    start = self._ns_start[j]
                    for b in bits((m >> start) & ((1 << (self._ns_end[j] - start)) - 1)):
                        sources.setdefault(start + b, set()).add(k)
            self._sources = sources
        return self._sources

    def _out_namespace_masks(self) -> list[int]:
        """Per namespace: the classes some pod of it can reach (cached)."""
        if self._out_ns_mask is None:
            masks = [0] * len(self.namespaces)
            for c in bits(self._real):
                for m, _ in self.class_regions(c):
                    masks[self.class_ns[c]] |= m & self._real
            self._out_ns_mask = masks
        return self._out_ns_mask

    # ------------------------------------------------------------------------------------------------ namespace facts

    def _namespaces_in(self, mask: int) -> list[int]:
        """Namespaces having at least one class in `mask` (classes are contiguous per namespace)."""
        s = bin(mask)[:1:-1]
        out: list[int] = []
        i = s.find("1")
        while i >= 0:
            k = self.class_ns[i]
            out.append(k)
            i = s.find("1", self._ns_end[k])
        return out

    def namespace_facts(self) -> list[dict[str, Any]]:
        """Per namespace: pods, workloads, how many pods are isolated per direction, which other namespaces can reach
        it / it can reach, and the external CIDRs it accepts connections from / may connect to."""
        n_ns = len(self.namespaces)
        out_ns_mask = self._out_namespace_masks()
        ingress_from: list[set[int]] = [set() for _ in range(n_ns)]
        egress_to: list[set[int]] = [set() for _ in range(n_ns)]
        for k in range(n_ns):
            for j in self._namespaces_in(out_ns_mask[k]):
                if j != k:
                    egress_to[k].add(j)
                    ingress_from[j].add(k)
        facts: list[dict[str, Any]] = []
        for k, ns in enumerate(self.namespaces):
            if ns == PROBE_NAMESPACE and ns in self._probe_class:
                continue
            cls = [c for c in range(self._ns_start[k], self._ns_end[k]) if not (self._probe_mask >> c) & 1]
            pods = sum(len(self.class_pods[c]) for c in cls)
            ext_in, ext_out = NO_IPS, NO_IPS
            for c in cls:
                for ips, _ in self._class_external(c, INGRESS):
                    ext_in = ext_in | ips
                for ips, _ in self._class_external(c, EGRESS):
                    ext_out = ext_out | ips
            facts.append({
                "namespace": ns,
                "pods": pods,
                "workloads": len({w for c in cls for w in self.class_workloads[c]}),
                "ingress_isolated_pods": sum(len(self.class_pods[c]) for c in cls if (self._in_isolated >> c) & 1),
                "egress_isolated_pods": sum(len(self.class_pods[c]) for c in cls if (self._out_isolated >> c) & 1),
                "ingress_from_namespaces": sorted(self.namespaces[j] for j in ingress_from[k]),
                "egress_to_namespaces": sorted(self.namespaces[j] for j in egress_to[k]),
                "ingress_from_external": self._cidrs(ext_in),
                "egress_to_external": self._cidrs(ext_out),
            })
        return facts

    # ------------------------------------------------------------------------------------------------ introspection

    def stats(self) -> dict[str, int]:
        real_ns = len(self.namespaces) - (PROBE_NAMESPACE in self._probe_class)
        return {"namespaces": real_ns, "pods": len(self._pod_class), "classes": self.n,
                "workloads": len(self.workloads), "policies": len(self.policies),
                "ingress_source_groups": len(self._in_groups), "region_signatures": len(self._region_cache)}


def engine_from_inventory(inv: Any, *, probes: bool = False) -> Engine:
    """An Engine over an Inventory's namespaces, pods and networking.k8s.io NetworkPolicies."""
    from evidence.netpol.model import namespaces_from_inventory, pods_from_inventory

    return Engine(namespaces_from_inventory(inv), pods_from_inventory(inv),
                  inv.objects("NetworkPolicy", "networking.k8s.io"), probes=probes)


__all__ = ["Engine", "engine_from_inventory"]
