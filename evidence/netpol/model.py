"""Data model of the NetworkPolicy reachability engine: pods, namespaces, connection sets and external address sets.

Everything here is immutable and pure. `ConnSet` is "which protocols and ports" (the L4 half of a flow), `IPSet` is
"which addresses outside the cluster" (what ipBlock peers describe); the engine combines them per pod class.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evidence.inventory import Inventory

# NetworkPolicy is defined for TCP, UDP and SCTP (networking.k8s.io/v1 NetworkPolicyPort.protocol); TCP is the default.
PROTOCOLS: tuple[str, ...] = ("SCTP", "TCP", "UDP")  # sorted: to_json() orders by protocol
MIN_PORT, MAX_PORT = 1, 65535

Ranges = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------------------------------------------------------------
# Interval helpers (shared by ConnSet port ranges and IPSet address ranges)


def _normalise(intervals: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint, non-adjacent closed intervals (adjacent ones are merged: [1,5]+[6,9] = [1,9])."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _subtract(a: Ranges, b: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _contains(ranges: Ranges, value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


# ---------------------------------------------------------------------------------------------------------------------
# Pods and namespaces


@dataclass(frozen=True, order=True)
class NamedPort:
    """A declared container port. Only named ones matter to NetworkPolicy (numeric policy ports need no declaration)."""

    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=True)

    def effective_labels(self) -> dict[str, str]:
        """Labels as selectors see them: the API server sets `kubernetes.io/metadata.name` on every namespace
        (NamespaceDefaultLabelName, GA in 1.22), so a snapshot without it still selects by name."""
        return {**self.labels, "kubernetes.io/metadata.name": self.name}


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=True)
    ports: tuple[NamedPort, ...] = ()
    workload: str = ""  # "ns/name[Kind]"; "" means the pod itself, "ns/pod[Pod]"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def workload_id(self) -> str:
        return self.workload or f"{self.namespace}/{self.name}[Pod]"


def ports_of_containers(containers: Sequence[Mapping[str, Any]]) -> tuple[NamedPort, ...]:
    """Named container ports of a pod spec (unnamed ones cannot be referenced by name, so they don't matter)."""
    out: list[NamedPort] = []
    for c in containers:
        for p in c.get("ports") or []:
            name, number = p.get("name"), p.get("containerPort")
            if name and isinstance(number, int):
                out.append(NamedPort(str(name), number, str(p.get("protocol") or "TCP")))
    return tuple(sorted(set(out), key=lambda n: (n.name, n.protocol, n.port)))


def pods_from_inventory(inv: Inventory) -> list[Pod]:
    """Pods of an inventory (real ones, or derived from workload templates when the snapshot has none)."""
    from evidence.collectors.workloads import pods

    views, _derived = pods(inv)
    out: list[Pod] = []
    # Replicas share their container objects (Inventory.shared): their named ports are read once. Keyed by the
    # containers' identities, which is safe while `views` (and the inventory) hold every one alive.
    named: dict[tuple[int, ...], tuple[NamedPort, ...]] = {}
    for v in views:
        kind, _, owner = v.owner.partition("/")
        key = tuple(map(id, v.containers))
        ports = named.get(key)
        if ports is None:
            ports = named[key] = ports_of_containers(v.containers)
        out.append(Pod(v.namespace, v.name, dict(v.labels), ports, f"{v.namespace}/{owner}[{kind}]"))
    return out


def namespaces_from_inventory(inv: Inventory) -> list[Namespace]:
    out: list[Namespace] = []
    for o in inv.objects("Namespace", ""):
        meta = o.get("metadata") or {}
        out.append(Namespace(str(meta.get("name")), dict(meta.get("labels") or {})))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Connection sets


class ConnSet:
    """A set of connections: either "all" (every protocol, every port, including non-port protocols such as ICMP:
    what a rule without `ports` allows) or, per protocol (TCP/UDP/SCTP), sorted disjoint inclusive port ranges.

    Immutable and hashable; union/intersection results are memoised because a cluster has few distinct sets.
    """

    __slots__ = ("_hash", "is_all", "ranges")
    is_all: bool
    ranges: tuple[tuple[str, Ranges], ...]  # sorted by protocol; only protocols with at least one range
    _hash: int

    def __init__(self, ranges: Mapping[str, Iterable[tuple[int, int]]] | None = None, *, is_all: bool = False) -> None:
        norm: list[tuple[str, Ranges]] = []
        if not is_all:
            for proto in sorted(ranges or {}):
                clipped = [(max(lo, MIN_PORT), min(hi, MAX_PORT)) for lo, hi in (ranges or {})[proto]]
                r = _normalise(clipped)
                if r:
                    norm.append((proto, r))
        object.__setattr__(self, "is_all", is_all)
        object.__setattr__(self, "ranges", tuple(norm))
        object.__setattr__(self, "_hash", hash((is_all, self.ranges)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ConnSet is immutable")

    # constructors
    @staticmethod
    def all() -> ConnSet:
        return ALL

    @staticmethod
    def empty() -> ConnSet:
        return EMPTY

    @staticmethod
    def of(protocol: str, lo: int = MIN_PORT, hi: int | None = None) -> ConnSet:
        return ConnSet({protocol: [(lo, lo if hi is None else hi)]})

    @staticmethod
    def from_json(value: Any) -> ConnSet:
        """Inverse of to_json(): "all", or [{"protocol": "TCP", "ports": [[lo, hi], ...]}, ...]."""
        if value == "all":
            return ALL
        acc: dict[str, list[tuple[int, int]]] = {}
        for entry in value or []:
            acc.setdefault(str(entry["protocol"]), []).extend((int(a), int(b)) for a, b in entry["ports"])
        return ConnSet(acc)

    # algebra
    def is_empty(self) -> bool:
        return not self.is_all and not self.ranges

    def union(self, other: ConnSet) -> ConnSet:
        return _union(self, other)

    def intersection(self, other: ConnSet) -> ConnSet:
        return _intersection(self, other)

    __or__ = union
    __and__ = intersection

    def contains(self, protocol: str, port: int | None) -> bool:
        """Whether a connection is in the set; port None stands for a protocol without ports (e.g. ICMP)."""
        if self.is_all:
            return True
        if port is None:
            return False
        return any(p == protocol and _contains(r, port) for p, r in self.ranges)

    def to_json(self) -> str | list[dict[str, Any]]:
        if self.is_all:
            return "all"
        return [{"protocol": p, "ports": [[lo, hi] for lo, hi in r]} for p, r in self.ranges]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnSet) and self.is_all == other.is_all and self.ranges == other.ranges

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if self.is_all:
            return "ConnSet(all)"
        body = ", ".join(f"{p}:" + ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in r)
                         for p, r in self.ranges)
        return f"ConnSet({body})"


ALL = ConnSet(is_all=True)
EMPTY = ConnSet()


@lru_cache(maxsize=65536)
def _union(a: ConnSet, b: ConnSet) -> ConnSet:
    if a.is_all or b.is_empty():
        return a
    if b.is_all or a.is_empty():
        return b
    acc: dict[str, list[tuple[int, int]]] = {}
    for p, r in (*a.ranges, *b.ranges):
        acc.setdefault(p, []).extend(r)
    return ConnSet(acc)


@lru_cache(maxsize=65536)
def _intersection(a: ConnSet, b: ConnSet) -> ConnSet:
    if a.is_all:
        return b
    if b.is_all:
        return a
    other = dict(b.ranges)
    return ConnSet({p: _intersect(r, other[p]) for p, r in a.ranges if p in other})


def union_all(sets: Iterable[ConnSet]) -> ConnSet:
    out = EMPTY
    for s in sets:
        out = _union(out, s)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# External address sets

_V4_MAX, _V6_MAX = 2**32 - 1, 2**128 - 1


class IPSet:
    """A set of IPv4 and IPv6 addresses as sorted disjoint integer ranges per family (what ipBlock cidr minus except
    describes). Immutable and hashable; `cidrs()` gives the minimal CIDR list."""

    __slots__ = ("_hash", "v4", "v6")
    v4: Ranges
    v6: Ranges
    _hash: int

    def __init__(self, v4: Iterable[tuple[int, int]] = (), v6: Iterable[tuple[int, int]] = ()) -> None:
        object.__setattr__(self, "v4", _normalise(v4))
        object.__setattr__(self, "v6", _normalise(v6))
        object.__setattr__(self, "_hash", hash((self.v4, self.v6)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("IPSet is immutable")

    @staticmethod
    def all() -> IPSet:
        return ALL_IPS

    @staticmethod
    def empty() -> IPSet:
        return NO_IPS

    @staticmethod
    def from_cidr(cidr: str) -> IPSet:
        """One CIDR; host bits are ignored ("10.1.2.3/8" is 10.0.0.0/8), as the API's sloppy parser accepts them.
        Raises ValueError for a string that is not a CIDR."""
        net = ipaddress.ip_network(cidr.strip(), strict=False)
        span = (int(net.network_address), int(net.broadcast_address))
        return IPSet(v4=[span]) if net.version == 4 else IPSet(v6=[span])

    @staticmethod
    def from_cidrs(cidrs: Iterable[str]) -> IPSet:
        out = NO_IPS
        for c in cidrs:
            out = out | IPSet.from_cidr(c)
        return out

    def union(self, other: IPSet) -> IPSet:
        return IPSet(self.v4 + other.v4, self.v6 + other.v6)

    def intersection(self, other: IPSet) -> IPSet:
        return IPSet(_intersect(self.v4, other.v4), _intersect(self.v6, other.v6))

    def difference(self, other: IPSet) -> IPSet:
        return IPSet(_subtract(self.v4, other.v4), _subtract(self.v6, other.v6))

    __or__ = union
    __and__ = intersection
    __sub__ = difference

    def is_empty(self) -> bool:
        return not self.v4 and not self.v6

    def contains(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return _contains(self.v4 if ip.version == 4 else self.v6, int(ip))

    def cidrs(self) -> list[str]:
        """Minimal CIDR cover, IPv4 first, each family in address order ("0.0.0.0/0", "::/0" when complete)."""
        out: list[str] = []
        for lo, hi in self.v4:
            out.extend(str(n) for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(lo),
                                                                          ipaddress.IPv4Address(hi)))
        for lo, hi in self.v6:
            out.extend(str(n) for n in ipaddress.summarize_address_range(ipaddress.IPv6Address(lo),
                                                                          ipaddress.IPv6Address(hi)))
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPSet) and self.v4 == other.v4 and self.v6 == other.v6

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPSet({', '.join(self.cidrs())})"


ALL_IPS = IPSet(v4=[(0, _V4_MAX)], v6=[(0, _V6_MAX)])
NO_IPS = IPSet()


def partition_ips(entries: Iterable[tuple[IPSet, ConnSet]]) -> list[tuple[IPSet, ConnSet]]:
    """Split the address space into maximal sets treated identically: each address gets the union of the ConnSets of
    the entries containing it; addresses with the same resulting ConnSet are grouped; empty results are dropped.
    Sorted by the first address of each group (IPv4 before IPv6)."""
    items = [(s, c) for s, c in entries if not s.is_empty() and not c.is_empty()]
    if not items:
        return []
    groups: dict[ConnSet, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
    for fam in (0, 1):
        fam_items = [((s.v4 if fam == 0 else s.v6), c) for s, c in items]
        cuts: set[int] = set()
        for ranges, _ in fam_items:
            for lo, hi in ranges:
                cuts.add(lo)
                cuts.add(hi + 1)
        points = sorted(cuts)
        for k in range(len(points) - 1):
            lo, hi = points[k], points[k + 1] - 1
            conn = EMPTY
            for ranges, c in fam_items:
                if _contains(ranges, lo):
                    conn = _union(conn, c)
            if not conn.is_empty():
                groups.setdefault(conn, ([], []))[fam].append((lo, hi))
    out = [(IPSet(v4, v6), c) for c, (v4, v6) in groups.items()]
    out.sort(key=lambda e: (0, e[0].v4[0][0]) if e[0].v4 else (1, e[0].v6[0][0]))
    return out
