"""NetworkPolicyPort parsing and resolution: numbers, endPort ranges, protocol-only entries and named ports.

A rule's `ports` list is parsed once into a `PortSpec`; named ports are resolved per destination pod, because one name
can mean different numbers on different pods (NetworkPolicyPort.port: "a numerical or named port on a pod").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evidence.netpol.model import ALL, MAX_PORT, MIN_PORT, PROTOCOLS, ConnSet, NamedPort


@dataclass(frozen=True)
class PortEntry:
    protocol: str
    port: int | str | None  # None: every port of the protocol; str: a named container port
    end_port: int | None = None


# None means "all ports and protocols" (a rule whose `ports` is absent or empty). An empty tuple matches nothing
# (every entry was invalid).
PortSpec = tuple[PortEntry, ...] | None


def parse_ports(raw: Any, warn: Callable[[str], None]) -> PortSpec:
    """Parse `ingress[].ports` / `egress[].ports`. Entries the API server would reject match nothing (and warn)."""
    # "If this field is empty or missing, this rule matches all ports (traffic not restricted by port)."
    if not raw:
        return None
    if not isinstance(raw, list):
        warn(f"ports is not a list: {raw!r}; treated as matching nothing")
        return ()
    out: list[PortEntry] = []
    for e in raw:
        if not isinstance(e, dict):
            warn(f"port entry is not an object: {e!r}; ignored")
            continue
        # protocol defaults to TCP (SetDefaults_NetworkPolicyPort).
        proto = e.get("protocol") or "TCP"
        if proto not in PROTOCOLS:
            warn(f"unsupported protocol {proto!r}; port entry ignored")
            continue
        port, end = e.get("port"), e.get("endPort")
        if end is not None and not (isinstance(end, int) and not isinstance(end, bool)):
            warn(f"endPort {end!r} is not a number; ignored")
            end = None
        if port is None:
            if end is not None:
                warn("endPort without port is invalid; endPort ignored")
            out.append(PortEntry(str(proto), None))
        elif isinstance(port, bool):
            warn(f"port {port!r} is not a number or name; entry ignored")
        elif isinstance(port, int):
            # endPort: "the range of ports from port to endPort, inclusive"; endPort < port is rejected by the API,
            # so such an entry matches nothing here.
            if end is not None and end < port:
                warn(f"endPort {end} < port {port}; entry matches nothing")
            out.append(PortEntry(str(proto), port, end))
        else:
            if end is not None:
                warn(f"endPort with named port {port!r} is invalid; endPort ignored")
            out.append(PortEntry(str(proto), str(port)))
    return tuple(out)


def is_static(spec: PortSpec) -> bool:
    """True when the spec has no named ports, so it means the same on every pod."""
    return spec is None or not any(isinstance(e.port, str) for e in spec)


@lru_cache(maxsize=65536)
def resolve(spec: PortSpec, named: tuple[NamedPort, ...] | None) -> ConnSet:
    """The connections `spec` allows to a destination with these named container ports.

    `named` is None for destinations outside the cluster: a named port cannot be resolved there, so it matches nothing
    (it "refers to a port on a pod"). A name matches a container port with that name AND the entry's protocol, as the
    reference implementation (kube-network-policies) does.
    """
    if spec is None:
        return ALL
    acc: dict[str, list[tuple[int, int]]] = {}
    for e in spec:
        if e.port is None:
            acc.setdefault(e.protocol, []).append((MIN_PORT, MAX_PORT))
        elif isinstance(e.port, int):
            acc.setdefault(e.protocol, []).append((e.port, e.port if e.end_port is None else e.end_port))
        else:
            for np in named or ():
                if np.name == e.port and np.protocol == e.protocol:
                    acc.setdefault(e.protocol, []).append((np.port, np.port))
    return ConnSet(acc)
