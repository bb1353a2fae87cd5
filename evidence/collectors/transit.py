"""Encryption inside the cluster, per namespace: node-to-node encryption on the untrusted links its pods use, or
mesh mTLS on all its workloads (Istio PeerAuthentication, Linkerd), whichever the cluster relies on
(PCI DSS 4.2.1, GDPR Art. 32(1)(a), HSLF-FS 2016:40 3 kap. 15 §; cluster-facts.md C.7-C.9).

Istio's effective mode per workload: a workload-selector PeerAuthentication in its namespace, else the
namespace-wide one, else the mesh-wide one in the root namespace; UNSET inherits; nothing means PERMISSIVE.
`portLevelMtls` only counts with a selector; selector policies in the root namespace are ignored; policies
annotated istio.io/dry-run are not enforced. Linkerd: pod annotation, else namespace annotation, else the
linkerd-config default inbound policy, else all-unauthenticated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from evidence.collectors import cluster as cluster_collector
from evidence.collectors.workloads import PodView, pod_template_spec, pods
from evidence.facts import ClusterFacts, NamespaceTransit, WorkloadTransit
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import SYSTEM_NAMESPACES, Scope

ISTIO_ROOT_DEFAULT = "istio-system"
LINKERD_DEFAULT_POLICY = "all-unauthenticated"
LINKERD_AUTHENTICATED = ("all-authenticated", "cluster-authenticated")
CLUSTER_DOMAIN = "svc.cluster.local"


@dataclass
class Mesh:
    """Mesh configuration read once for all namespaces."""

    istio: bool
    root: str
    root_source: str
    peer_auth: list[Obj]
    peer_auth_why: str | None  # why PeerAuthentications could not be read, if they could not
    dry_run: list[str]
    destination_rules: list[Obj]
    ztunnel: bool
    linkerd_default: str
    linkerd_source: str
    evidence: list[ObjectRef] = field(default_factory=list)


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[NamespaceTransit]:
    cluster = cluster_collector.collect(inv, scope, as_of)[0]
    all_pods, derived = pods(inv)
    pod_status = inv.status("Pod", "")
    by_ns: dict[str, list[PodView]] = defaultdict(list)
    for p in all_pods:
        by_ns[p.namespace].append(p)
    mesh = _mesh(inv, all_pods)
    out = []
    for ns_obj in inv.objects("Namespace", ""):
        meta = ns_obj["metadata"]
        ns = str(meta["name"])
        cls, _ = scope.classify(ns, dict(meta.get("labels") or {}))
        if cls == "unclassified" and ns in SYSTEM_NAMESPACES:
            cls = "system"
        personal = ns in scope.data.personal_data or ns in scope.data.health_data
        ns_pods = by_ns.get(ns, [])
        s = NamespaceTransit(
            id=ns, name=ns, namespace=ns, scope_class=cls, card_data=cls in ("cde", "connected"),
            personal_data=personal, sensitive=cls in ("cde", "connected") or personal, pods=len(ns_pods),
            placement_known=not derived and pod_status.status == "ok", nodes=[], sites=[], untrusted_links=[],
            nodes_unencrypted=[], node_encryption_covers=False, node_encryption_reason="", strict_mtls_all=False,
            mtls_reason="", protected=False, protected_by="none", reason="")
        s.evidence.append(ObjectRef.of(ns_obj))
        if pod_status.status in ("forbidden", "error"):
            why = f"could not list pods ({pod_status.message or pod_status.status})"
            for f in ("pods", "nodes", "workloads", "strict_mtls_all", "node_encryption_covers", "protected"):
                s.mark_unknown(f, why)
        _node_coverage(s, cluster, ns_pods)
        _mtls(inv, s, ns_obj, ns_pods, derived, mesh)
        _verdict(s)
        out.append(s)
    return out


# --- node encryption on the links this namespace uses ---------------------------------------------------

def _node_coverage(s: NamespaceTransit, cluster: ClusterFacts, ns_pods: list[PodView]) -> None:
    site_nodes = {site.name: set(site.nodes) for site in cluster.sites}
    placed = {p.node for p in ns_pods if p.node}
    nodes = placed if s.placement_known else set(cluster.nodes)
    s.nodes = sorted(nodes)
    s.sites = sorted(name for name, members in site_nodes.items() if members & nodes)
    enc = cluster.node_encryption
    s.node_encryption_mechanism = enc.mechanism if enc else None
    inactive = set(enc.nodes_inactive) if enc else set()
    unenc: set[str] = set()
    for link in cluster.links:
        if not link.untrusted or not ({link.a, link.b} & set(s.sites)):
            continue
        s.untrusted_links.append(f"{link.a} <-> {link.b}")
        for here, there in ((link.a, link.b), (link.b, link.a)):
            if here in s.sites:
                # Traffic between this namespace's pods at `here` and any pod at `there` crosses the link.
                unenc |= ((site_nodes[here] & nodes) | site_nodes[there]) & inactive
    s.nodes_unencrypted = sorted(unenc)
    unknown = {u.field: u.reason for u in cluster.unknown}
    why = unknown.get("nodes") or (unknown.get("links") or unknown.get("node_encryption") if s.untrusted_links
                                   else None)
    if why:
        s.mark_unknown("node_encryption_covers", why)
        s.mark_unknown("nodes_unencrypted", why)
        s.node_encryption_reason = f"node encryption could not be established: {why}"
        return
    where = "its pods" if s.placement_known else "pods (no Pods read, so every node is assumed)"
    if not s.untrusted_links:
        s.node_encryption_covers = True
        s.node_encryption_reason = (f"{where} run only at {', '.join(s.sites) or 'no site'}, which no untrusted "
                                    "link reaches" if s.sites else f"{where} cross no untrusted link")
    elif not unenc:
        s.node_encryption_covers = True
        s.node_encryption_reason = (f"{enc.mechanism if enc else 'encryption'} is active on every node at both ends "
                                    f"of {', '.join(s.untrusted_links)}")
    else:
        s.node_encryption_reason = (f"traffic crosses {', '.join(s.untrusted_links)} but encryption is not active on "
                                    f"{', '.join(s.nodes_unencrypted)}"
                                    + (f" ({enc.configured_source})" if enc and not enc.configured else ""))


# --- mesh mTLS -----------------------------------------------------------------------------------------

def _mesh(inv: Inventory, all_pods: list[PodView]) -> Mesh:
    istiod = [d for d in inv.objects("Deployment", "apps") if str(d["metadata"]["name"]).startswith("istiod")]
    sidecars = any(c.get("name") == "istio-proxy" for p in all_pods for c in p.containers)
    peer_auth_all = inv.objects("PeerAuthentication", "security.istio.io")
    istio = bool(istiod or sidecars or peer_auth_all)
    root, root_source = ISTIO_ROOT_DEFAULT, "Istio default root namespace istio-system"
    evidence = [ObjectRef.of(d) for d in istiod]
    for cm in inv.objects("ConfigMap", "", namespace=ISTIO_ROOT_DEFAULT):
        name = str(cm["metadata"]["name"])
        if name == "istio" or (name.startswith("istio-") and "mesh" in (cm.get("data") or {})):
            try:
                mesh_cfg = yaml.safe_load((cm.get("data") or {}).get("mesh") or "") or {}
            except yaml.YAMLError:
                continue
            evidence.append(ObjectRef.of(cm))
            if isinstance(mesh_cfg, dict) and mesh_cfg.get("rootNamespace"):
                root, root_source = str(mesh_cfg["rootNamespace"]), f"ConfigMap {ISTIO_ROOT_DEFAULT}/{name} rootNamespace"
            break
    st = inv.status("PeerAuthentication", "security.istio.io")
    why = None
    if istio and st.status in ("forbidden", "error", "absent"):
        why = {"forbidden": "permission denied: list peerauthentications",
               "absent": "no PeerAuthentications in the snapshot (not collected, or none exist)"}.get(
            st.status, f"could not list peerauthentications: {st.message}")
    dry = [f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in peer_auth_all
           if (p["metadata"].get("annotations") or {}).get("istio.io/dry-run") == "true"]
    linkerd_default, linkerd_source = LINKERD_DEFAULT_POLICY, "Linkerd default proxy.defaultInboundPolicy"
    linkerd_cm = inv.get("ConfigMap", "linkerd", "linkerd-config", group="")
    if linkerd_cm is not None:
        try:
            values = yaml.safe_load((linkerd_cm.get("data") or {}).get("values") or "") or {}
        except yaml.YAMLError:
            values = {}
        policy = ((values.get("proxy") or {}) if isinstance(values, dict) else {}).get("defaultInboundPolicy")
        if policy:
            linkerd_default = str(policy)
            linkerd_source = "ConfigMap linkerd/linkerd-config values proxy.defaultInboundPolicy"
        evidence.append(ObjectRef.of(linkerd_cm))
    return Mesh(istio=istio, root=root, root_source=root_source,
                peer_auth=[p for p in peer_auth_all if f"{p['metadata'].get('namespace')}/{p['metadata']['name']}"
                           not in dry],
                peer_auth_why=why, dry_run=dry,
                destination_rules=inv.objects("DestinationRule", "networking.istio.io"),
                ztunnel=any(str(d["metadata"]["name"]) == "ztunnel" for d in inv.objects("DaemonSet", "apps")),
                linkerd_default=linkerd_default, linkerd_source=linkerd_source, evidence=evidence)


def _pod_metadata(inv: Inventory, p: PodView) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Annotations and all containers (init containers too: native sidecars) of a Pod or its template."""
    if p.derived:
        kind, _, name = p.owner.partition("/")
        owner = inv.get(kind, p.namespace, name)
        tpl = pod_template_spec(owner or {}) or {}
        spec = tpl.get("spec") or {}
        return dict((tpl.get("metadata") or {}).get("annotations") or {}), \
            list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    obj = inv.get("Pod", p.namespace, p.name, group="") or {}
    spec = obj.get("spec") or {}
    return dict((obj.get("metadata") or {}).get("annotations") or {}), \
        list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


def _dataplane(p: PodView, annotations: dict[str, str], containers: list[dict[str, Any]],
               ns_labels: dict[str, str], mesh: Mesh) -> tuple[str, str]:
    names = {str(c.get("name")) for c in containers}
    if "sidecar.istio.io/status" in annotations or "istio-proxy" in names:
        return "sidecar", "Pod annotation sidecar.istio.io/status (istio-proxy injected)"
    if annotations.get("ambient.istio.io/redirection") == "enabled":
        return "ambient", "Pod annotation ambient.istio.io/redirection=enabled"
    if ns_labels.get("istio.io/dataplane-mode") == "ambient" and p.labels.get("istio.io/dataplane-mode") != "none" \
            and mesh.ztunnel:
        return "ambient", "Namespace label istio.io/dataplane-mode=ambient with the ztunnel DaemonSet running"
    if "linkerd.io/proxy-version" in annotations or "linkerd-proxy" in names:
        return "linkerd", "Pod annotation linkerd.io/proxy-version (linkerd-proxy injected)"
    return "none", "no mesh proxy in the Pod (no sidecar.istio.io/status, ambient redirection or linkerd-proxy)"


def _oldest(policies: list[Obj]) -> Obj | None:
    return min(policies, key=lambda o: (str(o["metadata"].get("creationTimestamp") or ""), str(o["metadata"]["name"])),
               default=None)


def _mode(pa: Obj | None) -> str:
    return str((((pa or {}).get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET").upper()


def _istio_mode(mesh: Mesh, ns: str, labels: dict[str, str]) -> tuple[str, str, list[str], list[Obj]]:
    """Effective PeerAuthentication mode for a workload, its source, port exceptions and the policies used."""
    here = [p for p in mesh.peer_auth if p["metadata"].get("namespace") == ns]
    workload = [p for p in here if (p.get("spec") or {}).get("selector") and ns != mesh.root
                and matches(p["spec"]["selector"], labels)]
    wl = _oldest(workload)
    ns_pa = _oldest([p for p in here if not (p.get("spec") or {}).get("selector")])
    mesh_pa = _oldest([p for p in mesh.peer_auth if p["metadata"].get("namespace") == mesh.root
                       and not (p.get("spec") or {}).get("selector")])
    used = [p for p in (wl, ns_pa, mesh_pa) if p is not None]
    mode, source = "PERMISSIVE", "no PeerAuthentication sets a mode: Istio default PERMISSIVE"
    for pa, level in ((wl, "workload"), (ns_pa, "namespace"), (mesh_pa, "mesh-wide")):
        if pa is not None and _mode(pa) != "UNSET":
            mode = _mode(pa)
            source = f"{level} PeerAuthentication {pa['metadata'].get('namespace')}/{pa['metadata']['name']}"
            break
    exceptions = []
    for port, setting in sorted((((wl or {}).get("spec") or {}).get("portLevelMtls") or {}).items()):
        port_mode = str((setting or {}).get("mode") or "UNSET").upper()
        if port_mode not in ("UNSET", "STRICT") and mode == "STRICT":
            exceptions.append(f"port {port}: {port_mode} (PeerAuthentication {ns}/{(wl or {})['metadata']['name']} "
                              "portLevelMtls)")
    return mode, source, exceptions, used


def _linkerd_mode(mesh: Mesh, annotations: dict[str, str], ns_annotations: dict[str, str]) -> tuple[str, str, list[str]]:
    key = "config.linkerd.io/default-inbound-policy"
    if annotations.get(key):
        mode, source = annotations[key], f"Pod annotation {key}"
    elif ns_annotations.get(key):
        mode, source = ns_annotations[key], f"Namespace annotation {key}"
    else:
        mode, source = mesh.linkerd_default, mesh.linkerd_source
    skipped = annotations.get("config.linkerd.io/skip-inbound-ports")
    return mode, source, [f"ports {skipped}: config.linkerd.io/skip-inbound-ports (not proxied, plain text)"] \
        if skipped else []


def _dr_disable(mesh: Mesh, ns: str) -> tuple[list[str], list[Obj]]:
    """DestinationRules whose host resolves to this namespace and whose TLS mode is DISABLE."""
    out, used = [], []
    for dr in mesh.destination_rules:
        dr_ns = str(dr["metadata"].get("namespace"))
        spec = dr.get("spec") or {}
        host = str(spec.get("host") or "")
        if not _host_in(host, dr_ns, ns):
            continue
        policy = spec.get("trafficPolicy") or {}
        where = []
        if str((policy.get("tls") or {}).get("mode") or "").upper() == "DISABLE":
            where.append("trafficPolicy.tls")
        for pls in policy.get("portLevelSettings") or []:
            if str((pls.get("tls") or {}).get("mode") or "").upper() == "DISABLE":
                where.append(f"port {(pls.get('port') or {}).get('number')}")
        if where:
            out.append(f"DestinationRule {dr_ns}/{dr['metadata']['name']} host {host}: tls.mode DISABLE "
                       f"({', '.join(where)})")
            used.append(dr)
    return out, used


def _host_in(host: str, dr_ns: str, ns: str) -> bool:
    if host == "*":
        return True
    if "." not in host:
        return dr_ns == ns  # a short name is relative to the DestinationRule's namespace
    parts = host.split(".")
    # name.ns, name.ns.svc, name.ns.svc.cluster.local and *.ns.svc.cluster.local; anything else is external.
    return (len(parts) == 2 or host.endswith((".svc", f".{CLUSTER_DOMAIN}"))) and parts[1] == ns


def _mtls(inv: Inventory, s: NamespaceTransit, ns_obj: Obj, ns_pods: list[PodView], derived: bool, mesh: Mesh) -> None:
    ns = s.name
    ns_labels = dict(ns_obj["metadata"].get("labels") or {})
    ns_annotations = dict(ns_obj["metadata"].get("annotations") or {})
    grouped: dict[str, list[PodView]] = defaultdict(list)
    for p in ns_pods:
        grouped[p.owner].append(p)
    used: dict[ObjectRef, None] = {}
    meshes: set[str] = set()
    for owner, members in sorted(grouped.items()):
        modes = []
        for p in members:
            annotations, containers = _pod_metadata(inv, p)
            plane, plane_source = _dataplane(p, annotations, containers, ns_labels, mesh)
            if plane in ("sidecar", "ambient"):
                meshes.add("istio")
                mode, source, exceptions, pas = _istio_mode(mesh, ns, p.labels)
                for pa in pas:
                    used[ObjectRef.of(pa)] = None
                strict = mode == "STRICT" and not exceptions
            elif plane == "linkerd":
                meshes.add("linkerd")
                mode, source, exceptions = _linkerd_mode(mesh, annotations, ns_annotations)
                strict = mode in LINKERD_AUTHENTICATED and not exceptions
            else:
                mode, source, exceptions, strict = "none", "not enrolled in a mesh", [], False
            modes.append(WorkloadTransit(workload=owner, pods=1, nodes=[p.node] if p.node else [], dataplane=plane,  # type: ignore[arg-type]
                                         enrolment_source=plane_source, mtls_mode=mode, mtls_source=source,
                                         strict=strict, port_exceptions=exceptions))
        first = next((m for m in modes if not m.strict), modes[0])
        s.workloads.append(WorkloadTransit(
            workload=owner, pods=len(members), nodes=sorted({n for m in modes for n in m.nodes}),
            dataplane=first.dataplane, enrolment_source=first.enrolment_source, mtls_mode=first.mtls_mode,
            mtls_source=first.mtls_source, strict=all(m.strict for m in modes),
            port_exceptions=sorted({e for m in modes for e in m.port_exceptions})))
    s.mesh = "+".join(sorted(meshes)) or None
    s.destination_rules_disable, drs = _dr_disable(mesh, ns) if mesh.istio else ([], [])
    for dr in drs:
        used[ObjectRef.of(dr)] = None
    if s.mesh:
        s.evidence.extend(mesh.evidence)
    s.evidence.extend(used)
    for w in s.workloads:
        if not w.strict:
            detail = "not enrolled in a mesh" if w.dataplane == "none" else f"{w.mtls_mode} ({w.mtls_source})"
            if w.port_exceptions:
                detail += "; " + "; ".join(w.port_exceptions)
            s.workloads_not_strict.append(f"{w.workload}: {detail}")
    s.strict_mtls_all = bool(s.workloads) and not s.workloads_not_strict and not s.destination_rules_disable
    # Why the mTLS facts cannot be trusted, if they cannot.
    why = None
    if derived and s.workloads:
        why = "no Pods in the snapshot: sidecar injection cannot be confirmed from workload templates"
    elif "istio" in meshes and mesh.peer_auth_why:
        why = mesh.peer_auth_why
    elif "istio" in meshes and inv.status("DestinationRule", "networking.istio.io").status in ("forbidden", "error"):
        why = "could not list destinationrules"
    if why:
        for f in ("strict_mtls_all", "workloads_not_strict", "workloads"):
            s.mark_unknown(f, why)
        s.mtls_reason = f"mTLS could not be established: {why}"
    elif not s.workloads:
        s.mtls_reason = "no workloads"
    elif s.strict_mtls_all:
        s.mtls_reason = f"STRICT mTLS ({s.mesh}) covers all {len(s.workloads)} workload(s)"
    elif not s.mesh:
        s.mtls_reason = "no workload here is enrolled in a service mesh"
    else:
        gaps = s.workloads_not_strict + s.destination_rules_disable
        s.mtls_reason = f"mTLS is not STRICT everywhere: {'; '.join(gaps)}"
    if mesh.dry_run and s.mesh and "istio" in s.mesh:
        s.mtls_reason += f" (dry-run PeerAuthentications ignored: {', '.join(mesh.dry_run)})"


def _verdict(s: NamespaceTransit) -> None:
    unknown = s.unknown_fields()
    covers = None if "node_encryption_covers" in unknown else s.node_encryption_covers
    strict = None if "strict_mtls_all" in unknown else s.strict_mtls_all
    if covers and strict:
        s.protected, s.protected_by = True, "node encryption and mTLS"
    elif covers:
        s.protected = True
        s.protected_by = "no untrusted links" if not s.untrusted_links else "node encryption"
    elif strict:
        s.protected, s.protected_by = True, "mTLS"
    elif covers is False and strict is False:
        s.protected, s.protected_by = False, "none"
    else:
        reasons = [u.reason for u in s.unknown if u.field in ("node_encryption_covers", "strict_mtls_all")]
        s.mark_unknown("protected", "; ".join(dict.fromkeys(reasons)))
        s.protected_by = "unknown"
    parts = [s.node_encryption_reason] if s.node_encryption_reason else []
    if s.mtls_reason and s.mtls_reason != "no workloads":
        parts.append(s.mtls_reason)
    s.reason = "; ".join(parts)
