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
    # Sidecar injectors: Istio (webhook or istiod) and Linkerd (webhook or proxy-injector). None: not readable.
    istio_injector: str | None = None
    linkerd_injector: str | None = None
    injector_why: str | None = None  # why the absence of an injector cannot be established
    linkerd: bool = False
    installed: bool = False
    installed_why: str | None = None  # why "no mesh installed" cannot be established
    non_mesh: dict[str, list[str]] = field(default_factory=dict)  # namespace -> workload ids outside any mesh
    engine: Any = None  # the NetworkPolicy engine, built once when a plaintext path has to be checked
    non_mesh_ids: list[str] | None = None  # every non_mesh workload id, flattened once (not per namespace)


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[NamespaceTransit]:
    cluster = cluster_collector.collect(inv, scope, as_of)[0]
    all_pods, derived = pods(inv)
    pod_status = inv.status("Pod", "")
    by_ns: dict[str, list[PodView]] = defaultdict(list)
    for p in all_pods:
        by_ns[p.namespace].append(p)
    mesh = _mesh(inv, all_pods)
    out = []
    # Workloads outside any mesh: the sources of plaintext paths into PERMISSIVE workloads.
    ns_meta = {str(n["metadata"]["name"]): n["metadata"] for n in inv.objects("Namespace", "")}
    for p in all_pods:
        annotations, containers = _pod_metadata(inv, p)
        meta = ns_meta.get(p.namespace) or {}
        plane, _, plane_why = _dataplane(p, annotations, containers, dict(meta.get("labels") or {}),
                                         dict(meta.get("annotations") or {}), mesh)
        if plane == "none" and plane_why is None:  # an unknown enrolment is not claimed as a plaintext source
            kind, _, name = p.owner.partition("/")
            ids = mesh.non_mesh.setdefault(p.namespace, [])
            if f"{p.namespace}/{name}[{kind}]" not in ids:
                ids.append(f"{p.namespace}/{name}[{kind}]")
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
        _node_coverage(s, cluster, ns_pods, _sites_assumption(inv, scope, cluster))
        _mtls(inv, s, ns_obj, ns_pods, mesh)
        _verdict(s)
        out.append(s)
    return out


# --- node encryption on the links this namespace uses ---------------------------------------------------

REGION_LABEL, ZONE_LABEL = "topology.kubernetes.io/region", "topology.kubernetes.io/zone"


def _sites_assumption(inv: Inventory, scope: Scope, cluster: ClusterFacts) -> str | None:
    """How sites were inferred when the scope declares none (the cluster subject groups nodes by region and treats
    links between regions as untrusted); None when the scope declares them."""
    if scope.sites:
        return None
    labels = [dict(n["metadata"].get("labels") or {}) for n in inv.objects("Node", "")]
    if not labels:
        return None
    regions = sorted({lb[REGION_LABEL] for lb in labels if lb.get(REGION_LABEL)})
    zones = sorted({lb[ZONE_LABEL] for lb in labels if lb.get(ZONE_LABEL)})
    if not regions and not zones:
        return ("assumed: no sites in the scope and no topology.kubernetes.io/region or zone labels on the nodes, so "
                "every node is taken to be at one site with no untrusted link")
    text = (f"assumed: no sites in the scope, so sites are the nodes' regions ({', '.join(regions) or 'none labelled'}) "
            "and links between regions are untrusted")
    if len(zones) > 1:
        text += (f"; the zones {', '.join(zones)} within a region are taken to be joined by the provider's network "
                 "(declare sites and untrusted_links in the scope if they are not)")
    if any(not lb.get(REGION_LABEL) for lb in labels):
        text += "; nodes without a region label form one more site"
    return text


def _node_coverage(s: NamespaceTransit, cluster: ClusterFacts, ns_pods: list[PodView],
                   assumption: str | None = None) -> None:
    s.sites_assumption = assumption
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
        if assumption:
            s.node_encryption_reason += f" ({assumption})"
    elif not unenc:
        s.node_encryption_covers = True
        s.node_encryption_reason = (f"{enc.mechanism if enc else 'encryption'} is active on every node at both ends "
                                    f"of {', '.join(s.untrusted_links)}")
    else:
        s.node_encryption_reason = (f"traffic crosses {', '.join(s.untrusted_links)} but encryption is not active on "
                                    f"{_some_nodes(s.nodes_unencrypted, site_nodes)}"
                                    + (f" ({enc.configured_source})" if enc and not enc.configured else ""))
    if assumption and s.untrusted_links:
        s.node_encryption_reason += f" ({assumption})"


NODES_NAMED = 5  # nodes named in a reason; the full list is the fact `nodes_unencrypted` and the workbook's Links sheet


def _some_nodes(nodes: list[str], site_nodes: dict[str, set[str]]) -> str:
    """The unencrypted nodes in a reason: all of them when few, else counted per site with a few names. Each namespace
    repeats this reason, so at 50,000 pods listing every node of the remote site filled half the report."""
    if len(nodes) <= NODES_NAMED:
        return ", ".join(nodes)
    parts = []
    for site, members in sorted(site_nodes.items()):
        here = [n for n in nodes if n in members]
        if here:
            named = ", ".join(here[:3]) + (f" and {len(here) - 3} more" if len(here) > 3 else "")
            parts.append(f"{len(here)} nodes at {site} ({named})")
    unplaced = [n for n in nodes if not any(n in m for m in site_nodes.values())]
    if unplaced:
        parts.append(f"{len(unplaced)} nodes at no site ({', '.join(unplaced[:3])}"
                     f"{f' and {len(unplaced) - 3} more' if len(unplaced) > 3 else ''})")
    return ", ".join(parts) + " (the Links sheet of the control matrix lists each node)"


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
    webhooks = [str(w["metadata"]["name"]) for w in inv.objects("MutatingWebhookConfiguration",
                                                                   "admissionregistration.k8s.io")]
    hooks_read = inv.status("MutatingWebhookConfiguration", "admissionregistration.k8s.io").status == "ok"
    istio_hook = next((w for w in webhooks if w.startswith(("istio-sidecar-injector", "istio-revision-tag"))), None)
    linkerd_hook = next((w for w in webhooks if w.startswith("linkerd-proxy-injector")), None)
    linkerd_injector_deploy = [d for d in inv.objects("Deployment", "apps")
                               if str(d["metadata"]["name"]) == "linkerd-proxy-injector"]
    istio_injector = (f"MutatingWebhookConfiguration {istio_hook}" if istio_hook else
                      f"Deployment {istiod[0]['metadata'].get('namespace')}/{istiod[0]['metadata']['name']} "
                      "(istiod injects sidecars)" if istiod else None)
    linkerd_injector = (f"MutatingWebhookConfiguration {linkerd_hook}" if linkerd_hook else
                        "Deployment linkerd/linkerd-proxy-injector" if linkerd_injector_deploy else None)
    deploy_st = inv.status("Deployment", "apps")
    # No injector seen is a fact only when the webhooks were read: a managed control plane (Cloud Service Mesh,
    # for one) runs istiod outside the cluster, so only its webhook is here.
    injector_why = None
    if not hooks_read:
        hooks_st = inv.status("MutatingWebhookConfiguration", "admissionregistration.k8s.io").status
        injector_why = f"the injector webhooks (MutatingWebhookConfigurations) were not read ({hooks_st})"
    linkerd_sidecars = any(c.get("name") == "linkerd-proxy" for p in all_pods for c in p.containers)
    linkerd = bool(linkerd_cm is not None or linkerd_injector or linkerd_sidecars)
    installed = bool(istio or linkerd or istio_hook or ztunnel_present(inv))
    installed_why = None
    if not installed and deploy_st.status != "ok":
        installed_why = f"whether a service mesh is installed is unknown: Deployments were not read ({deploy_st.status})"
    return Mesh(istio=istio, root=root, root_source=root_source,
                peer_auth=[p for p in peer_auth_all if f"{p['metadata'].get('namespace')}/{p['metadata']['name']}"
                           not in dry],
                peer_auth_why=why, dry_run=dry,
                destination_rules=inv.objects("DestinationRule", "networking.istio.io"),
                ztunnel=any(str(d["metadata"]["name"]) == "ztunnel" for d in inv.objects("DaemonSet", "apps")),
                linkerd_default=linkerd_default, linkerd_source=linkerd_source, evidence=evidence,
                istio_injector=istio_injector, linkerd_injector=linkerd_injector, injector_why=injector_why,
                linkerd=linkerd, installed=installed, installed_why=installed_why)


def ztunnel_present(inv: Inventory) -> bool:
    return any(str(d["metadata"]["name"]) == "ztunnel" for d in inv.objects("DaemonSet", "apps"))


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
               ns_labels: dict[str, str], ns_annotations: dict[str, str], mesh: Mesh) -> tuple[str, str, str | None]:
    """(dataplane, how it is known, why it cannot be known). A real Pod shows its proxy; a workload template does
    not (the proxy is added at admission), so its enrolment is decided as the injectors decide."""
    names = {str(c.get("name")) for c in containers}
    if "sidecar.istio.io/status" in annotations or "istio-proxy" in names:
        return "sidecar", "Pod annotation sidecar.istio.io/status (istio-proxy injected)", None
    if annotations.get("ambient.istio.io/redirection") == "enabled":
        return "ambient", "Pod annotation ambient.istio.io/redirection=enabled", None
    if ns_labels.get("istio.io/dataplane-mode") == "ambient" and p.labels.get("istio.io/dataplane-mode") != "none" \
            and mesh.ztunnel:
        return "ambient", "Namespace label istio.io/dataplane-mode=ambient with the ztunnel DaemonSet running", None
    if "linkerd.io/proxy-version" in annotations or "linkerd-proxy" in names:
        return "linkerd", "Pod annotation linkerd.io/proxy-version (linkerd-proxy injected)", None
    if not p.derived:
        return "none", "no mesh proxy in the Pod (no sidecar.istio.io/status, ambient redirection or linkerd-proxy)", \
            None
    if getattr(p, "host_network", False):
        return "none", "hostNetwork pods are never injected", None
    for plane, wants, injector in (("sidecar", _istio_wants(p.labels, annotations, ns_labels), mesh.istio_injector),
                                   ("linkerd", _linkerd_wants(annotations, ns_annotations), mesh.linkerd_injector)):
        if wants is None:
            continue
        if injector:
            return plane, f"no Pod read for this workload; {wants} and {injector} is installed, so the proxy is " \
                          "injected", None
        if mesh.injector_why:
            return "none", wants, f"{wants}, but whether an injector runs cannot be confirmed: {mesh.injector_why}"
        return "none", f"{wants}, but no injector is installed, so no proxy is added", None
    return "none", "no injection label or annotation on the namespace or the pod template", None


def _istio_wants(labels: dict[str, str], annotations: dict[str, str], ns_labels: dict[str, str]) -> str | None:
    """Why Istio's injector would inject a pod, or None (istio.io: sidecar injection, "Controlling the injection
    policy": a pod label or annotation "false" or namespace istio-injection=disabled wins; then istio-injection,
    then istio.io/rev on the namespace; a pod label sidecar.istio.io/inject=true or istio.io/rev also injects)."""
    key = "sidecar.istio.io/inject"
    if labels.get(key) == "false" or annotations.get(key) == "false" or ns_labels.get("istio-injection") == "disabled":
        return None
    if ns_labels.get("istio-injection") == "enabled":
        return "Namespace label istio-injection=enabled"
    if ns_labels.get("istio.io/rev"):
        return f"Namespace label istio.io/rev={ns_labels['istio.io/rev']}"
    if labels.get(key) == "true":
        return f"pod-template label {key}=true"
    if labels.get("istio.io/rev"):
        return f"pod-template label istio.io/rev={labels['istio.io/rev']}"
    return None


def _linkerd_wants(annotations: dict[str, str], ns_annotations: dict[str, str]) -> str | None:
    """Linkerd injects when linkerd.io/inject is enabled (or ingress) on the pod template or its namespace, unless
    the pod template says disabled (linkerd.io: automatic proxy injection)."""
    key = "linkerd.io/inject"
    if annotations.get(key) == "disabled":
        return None
    if annotations.get(key) in ("enabled", "ingress"):
        return f"pod-template annotation {key}={annotations[key]}"
    if ns_annotations.get(key) in ("enabled", "ingress"):
        return f"Namespace annotation {key}={ns_annotations[key]}"
    return None


def _oldest(policies: list[Obj]) -> Obj | None:
    return min(policies, key=lambda o: (str(o["metadata"].get("creationTimestamp") or ""), str(o["metadata"]["name"])),
               default=None)


def _mode(pa: Obj | None) -> str:
    return str((((pa or {}).get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET").upper()


def _istio_mode(mesh: Mesh, ns: str, labels: dict[str, str]) -> tuple[str, str, list[str], list[Obj]]:
    """Effective PeerAuthentication mode for a workload, its source, port exceptions and the policies used."""
    here = [p for p in mesh.peer_auth if p["metadata"].get("namespace") == ns]
    # A selector policy applies to the workloads it selects in its own namespace; in the root namespace Istio ignores
    # it (PeerAuthentication reference: "policies with workload selectors are ignored when deployed in the root
    # namespace").
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


def _mtls(inv: Inventory, s: NamespaceTransit, ns_obj: Obj, ns_pods: list[PodView], mesh: Mesh) -> None:
    ns = s.name
    ns_labels = dict(ns_obj["metadata"].get("labels") or {})
    ns_annotations = dict(ns_obj["metadata"].get("annotations") or {})
    grouped: dict[str, list[PodView]] = defaultdict(list)
    for p in ns_pods:
        grouped[p.owner].append(p)
    used: dict[ObjectRef, None] = {}
    meshes: set[str] = set()
    enrolment_unknown: list[str] = []
    for owner, members in sorted(grouped.items()):
        modes = []
        for p in members:
            annotations, containers = _pod_metadata(inv, p)
            plane, plane_source, plane_why = _dataplane(p, annotations, containers, ns_labels, ns_annotations, mesh)
            if plane_why:
                enrolment_unknown.append(f"{owner}: {plane_why}")
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
    s.mesh_installed = mesh.installed
    if mesh.installed_why:
        s.mark_unknown("mesh_installed", mesh.installed_why)
    _unmatched_peer_authentications(s, mesh, ns_pods)
    _plaintext_paths(inv, s, mesh)
    # Why the mTLS facts cannot be trusted, if they cannot.
    why = None
    if enrolment_unknown:
        why = "; ".join(dict.fromkeys(enrolment_unknown))
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
    if s.plaintext_paths:
        s.mtls_reason += "; plain text reaches meshed workloads: " + "; ".join(s.plaintext_paths)
    if mesh.dry_run and s.mesh and "istio" in s.mesh:
        s.mtls_reason += f" (dry-run PeerAuthentications ignored: {', '.join(mesh.dry_run)})"


def _unmatched_peer_authentications(s: NamespaceTransit, mesh: Mesh, ns_pods: list[PodView]) -> None:
    """Workload-selector PeerAuthentications of this namespace that select no pod (usually a typo in a label)."""
    for pa in mesh.peer_auth:
        selector = (pa.get("spec") or {}).get("selector")
        if pa["metadata"].get("namespace") != s.name or not selector:
            continue
        if s.name == mesh.root:
            s.peer_authentications_unmatched.append(
                f"PeerAuthentication {s.name}/{pa['metadata']['name']} has a workload selector in the mesh root "
                f"namespace ({mesh.root_source}), where Istio ignores it")
            s.evidence.append(ObjectRef.of(pa))
        elif not any(matches(selector, p.labels) for p in ns_pods):
            labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
            s.peer_authentications_unmatched.append(
                f"PeerAuthentication {s.name}/{pa['metadata']['name']} (selector {labels or 'matchExpressions'}, "
                f"mode {_mode(pa)}) selects no pod")
            s.evidence.append(ObjectRef.of(pa))


def _plaintext_paths(inv: Inventory, s: NamespaceTransit, mesh: Mesh) -> None:
    """Workloads here that accept plain text and that a workload outside the mesh may reach (NetworkPolicy engine):
    the sidecar of a PERMISSIVE workload accepts the plaintext connection and passes it on."""
    open_ = [w for w in s.workloads if w.dataplane != "none" and not w.strict]
    if not open_:
        return
    if mesh.non_mesh_ids is None:
        mesh.non_mesh_ids = [wid for ids in mesh.non_mesh.values() for wid in ids]
    sources = mesh.non_mesh_ids
    if not sources:
        return
    if mesh.engine is None:
        from evidence.netpol.engine import engine_from_inventory
        mesh.engine = engine_from_inventory(inv)
    engine = mesh.engine
    for w in open_:
        kind, _, name = w.workload.partition("/")
        dst = f"{s.name}/{name}[{kind}]"
        if dst not in engine.workloads:
            continue
        reaching = [src for src in sources if src in engine.workloads and src != dst
                    and not engine.allowed(src, dst).is_empty()]
        if reaching:
            shown = ", ".join(r.replace("[", " (").replace("]", ")") for r in reaching[:3])
            more = f" and {len(reaching) - 3} more" if len(reaching) > 3 else ""
            how = "; ".join(w.port_exceptions) if w.mtls_mode == "STRICT" and w.port_exceptions else w.mtls_mode
            s.plaintext_paths.append(f"{w.workload} ({how}) accepts plain text from non-mesh workloads "
                                     f"{shown}{more}, which NetworkPolicies allow to reach it")


def _verdict(s: NamespaceTransit) -> None:
    unknown = s.unknown_fields()
    covers = None if "node_encryption_covers" in unknown else s.node_encryption_covers
    strict = None if "strict_mtls_all" in unknown else s.strict_mtls_all
    if covers and strict:
        s.protected = True
        s.protected_by = "no untrusted links and mTLS" if not s.untrusted_links else "node encryption and mTLS"
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
