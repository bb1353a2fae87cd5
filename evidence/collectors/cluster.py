"""The cluster subject: CNI and whether it enforces NetworkPolicy, node-to-node encryption, sites and links,
and the kube-apiserver flags when its mirror pod is visible (cluster-facts.md C, D.1, E.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from itertools import combinations

from evidence.collectors.workloads import containers_of, flags
from evidence.facts import ClusterFacts, CNIFacts, LinkFacts, NodeEncryption, SiteFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import REGION_LABEL, Scope

CALICO_WG_ANNOTATION = "projectcalico.org/WireguardPublicKey"
CILIUM_WG_ANNOTATION = "network.cilium.io/wg-pub-key"
FLANNEL_BACKEND_ANNOTATION = "flannel.alpha.coreos.com/backend-type"


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[ClusterFacts]:
    del as_of
    nodes = inv.objects("Node", "")
    node_names = [str(n["metadata"]["name"]) for n in nodes]
    versions = sorted({str(((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""))
                       for n in nodes} - {""})
    subject = ClusterFacts(
        id="cluster", name=inv.source.cluster.name, kubernetes_version=inv.source.cluster.version
        or (versions[-1] if versions else None), nodes=node_names, sites=[], sites_spanned=0, links=[],
        untrusted_links=0, untrusted_links_unencrypted=0, apiserver_visible=False)
    subject.evidence = [ObjectRef.of(n) for n in nodes]
    if inv.status("Node", "").status != "ok":
        for f in ("nodes", "sites", "links", "node_encryption"):
            subject.mark_unknown(f, _why(inv, "Node", "", "nodes"))
    ds_status = inv.status("DaemonSet", "apps")
    subject.cni = _cni(inv, subject)
    if subject.cni is None:
        subject.mark_unknown("cni", _why(inv, "DaemonSet", "apps", "daemonsets") if ds_status.status != "ok"
                             else "no known CNI DaemonSet found (Calico, Cilium, Flannel, Canal, Antrea, Weave, "
                                  "kube-router, kindnet, AWS VPC CNI)")
    subject.node_encryption = _node_encryption(inv, subject, node_names)
    if subject.node_encryption is None:
        subject.mark_unknown("node_encryption", "node encryption cannot be read for this CNI")
    _sites_and_links(subject, nodes, scope)
    _apiserver(inv, subject)
    return [subject]


def _why(inv: Inventory, kind: str, group: str, plural: str) -> str:
    st = inv.status(kind, group)
    if st.status == "forbidden":
        return f"permission denied: list {plural}"
    if st.status == "absent":
        return f"no {plural} in the snapshot (not collected?)"
    return f"could not list {plural}: {st.message or st.status}"


def _daemonset(inv: Inventory, *names: str) -> Obj | None:
    for ds in inv.objects("DaemonSet", "apps"):
        if ds["metadata"]["name"] in names:
            return ds
    return None


def _configmap(inv: Inventory, name: str, *namespaces: str) -> Obj | None:
    for ns in namespaces:
        cm = inv.get("ConfigMap", ns, name, group="")
        if cm is not None:
            return cm
    return None


def _cni(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    """Which CNI runs, and whether it enforces networking.k8s.io/v1 NetworkPolicy (cluster-facts.md D.1)."""
    detectors: list[Callable[[Inventory, ClusterFacts], CNIFacts | None]] = [
        _cilium, _calico, _canal, _antrea, _weave, _kube_router, _flannel, _aws_vpc, _kindnet]
    for detect in detectors:
        found = detect(inv, subject)
        if found is not None:
            return found
    return None


def _calico(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "calico-node")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    return CNIFacts(name="calico", enforces_network_policy=True, reason="calico-node (Felix) enforces NetworkPolicy")


def _canal(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "canal")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    return CNIFacts(name="canal", enforces_network_policy=True, reason="Canal runs Calico Felix for policy")


def _cilium(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "cilium")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    cm = _configmap(inv, "cilium-config", "kube-system", str(ds["metadata"].get("namespace")))
    if cm is None:
        subject.mark_unknown("cni", "ConfigMap cilium-config not found: policy mode unknown")
        return None
    subject.evidence.append(ObjectRef.of(cm))
    data = cm.get("data") or {}
    if data.get("policy-audit-mode") == "true":
        return CNIFacts(name="cilium", enforces_network_policy=False,
                        reason="cilium-config policy-audit-mode=true: policies are logged, not enforced")
    if data.get("enable-policy") == "never":
        return CNIFacts(name="cilium", enforces_network_policy=False, reason="cilium-config enable-policy=never")
    if data.get("enable-k8s-networkpolicy") == "false":
        return CNIFacts(name="cilium", enforces_network_policy=False,
                        reason="cilium-config enable-k8s-networkpolicy=false: NetworkPolicy is ignored")
    return CNIFacts(name="cilium", enforces_network_policy=True,
                    reason=f"cilium-config enable-policy={data.get('enable-policy', 'default')}")


def _flannel(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "kube-flannel-ds", "kube-flannel")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    if any(c.get("name") == "kube-network-policies" for c in containers_of(ds)):
        return CNIFacts(name="flannel", enforces_network_policy=True,
                        reason="flannel with the kube-network-policies container")
    return CNIFacts(name="flannel", enforces_network_policy=False,
                    reason="flannel alone does not enforce NetworkPolicy")


def _antrea(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "antrea-agent")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    return CNIFacts(name="antrea", enforces_network_policy=True, reason="antrea-agent enforces NetworkPolicy")


def _weave(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "weave-net")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    npc = any(c.get("name") == "weave-npc" for c in containers_of(ds))
    return CNIFacts(name="weave", enforces_network_policy=npc,
                    reason="weave-npc container enforces policy" if npc else "weave-net without weave-npc")


def _kube_router(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "kube-router")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    args = flags([str(a) for c in containers_of(ds) for a in c.get("args") or []])
    on = args.get("run-firewall", "true") != "false"
    return CNIFacts(name="kube-router", enforces_network_policy=on, reason=f"kube-router --run-firewall={on}")


def _aws_vpc(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "aws-node")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    cm = _configmap(inv, "amazon-vpc-cni", "kube-system")
    on = bool(cm and (cm.get("data") or {}).get("enable-network-policy-controller") == "true")
    if cm:
        subject.evidence.append(ObjectRef.of(cm))
    return CNIFacts(name="aws-vpc-cni", enforces_network_policy=on,
                    reason="amazon-vpc-cni enable-network-policy-controller="
                           + ("true" if on else "not true: policies are accepted but not enforced"))


def _kindnet(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    ds = _daemonset(inv, "kindnet")
    if ds is None:
        return None
    subject.evidence.append(ObjectRef.of(ds))
    return CNIFacts(name="kindnet", enforces_network_policy=True,
                    reason="kindnet embeds kube-network-policies since kind v0.24 (check the image date)")


def _node_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str]) -> NodeEncryption | None:
    cni = subject.cni.name if subject.cni else None
    nodes = {str(n["metadata"]["name"]): n for n in inv.objects("Node", "")}

    def annotated(annotation: str) -> tuple[list[str], list[str]]:
        on = [n for n in node_names if ((nodes[n]["metadata"].get("annotations") or {}).get(annotation))]
        return on, [n for n in node_names if n not in on]

    if cni in ("calico", "canal"):
        return _calico_encryption(inv, subject, node_names, annotated)
    if cni == "cilium":
        cm = _configmap(inv, "cilium-config", "kube-system")
        data = (cm or {}).get("data") or {}
        mech = "wireguard" if data.get("enable-wireguard") == "true" else (
            "ipsec" if data.get("enable-ipsec") == "true" else None)
        active: list[str] = []
        for cn in inv.objects("CiliumNode", "cilium.io"):
            name = str(cn["metadata"]["name"])
            if (cn["metadata"].get("annotations") or {}).get(CILIUM_WG_ANNOTATION) or \
                    int(((cn.get("spec") or {}).get("encryption") or {}).get("key") or 0) > 0:
                active.append(name)
                subject.evidence.append(ObjectRef.of(cn))
        if inv.status("CiliumNode", "cilium.io").status != "ok" and mech:
            subject.mark_unknown("node_encryption", _why(inv, "CiliumNode", "cilium.io", "ciliumnodes"))
        return NodeEncryption(mechanism=mech, configured=mech is not None,
                              configured_source="ConfigMap cilium-config", nodes_active=active if mech else [],
                              nodes_inactive=[n for n in node_names if n not in active or not mech])
    if cni == "flannel":
        cm = _configmap(inv, "kube-flannel-cfg", "kube-flannel", "kube-system")
        backend = None
        if cm:
            subject.evidence.append(ObjectRef.of(cm))
            try:
                backend = (json.loads((cm.get("data") or {}).get("net-conf.json", "{}")).get("Backend") or {}).get(
                    "Type", "vxlan")
            except (ValueError, AttributeError):
                subject.mark_unknown("node_encryption", "kube-flannel-cfg net-conf.json is not valid JSON")
        encrypted = backend in ("wireguard", "ipsec")
        on = [n for n in node_names if (nodes[n]["metadata"].get("annotations") or {}).get(
            FLANNEL_BACKEND_ANNOTATION) in ("wireguard", "ipsec")]
        return NodeEncryption(mechanism=backend if encrypted else None, configured=encrypted,
                              configured_source=f"kube-flannel-cfg Backend.Type={backend}",
                              nodes_active=on, nodes_inactive=[n for n in node_names if n not in on])
    return None


def _calico_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str],
                       annotated: Callable[[str], tuple[list[str], list[str]]]) -> NodeEncryption:
    """Felix precedence: env FELIX_WIREGUARDENABLED > per-node FelixConfiguration > global `default`."""
    felix = {str(f["metadata"]["name"]): f for f in inv.objects("FelixConfiguration")}
    default = felix.get("default")
    configured, source = False, "Calico default (wireguardEnabled=false)"
    if default is not None:
        subject.evidence.append(ObjectRef.of(default))
        configured = bool((default.get("spec") or {}).get("wireguardEnabled", False))
        source = f"FelixConfiguration default wireguardEnabled={str(configured).lower()}"
    elif inv.status("FelixConfiguration", "crd.projectcalico.org").status != "ok" and \
            inv.status("FelixConfiguration", "projectcalico.org").status != "ok":
        subject.mark_unknown("node_encryption", "FelixConfiguration could not be read (not in the inventory)")
    ds = _daemonset(inv, "calico-node", "canal")
    for c in containers_of(ds or {}):
        for e in c.get("env") or []:
            if e.get("name") == "FELIX_WIREGUARDENABLED" and "value" in e:
                configured = str(e["value"]).lower() == "true"
                source = f"calico-node env FELIX_WIREGUARDENABLED={e['value']}"
    active, inactive = annotated(CALICO_WG_ANNOTATION)
    overrides_off = [n for n in node_names if (felix.get(f"node.{n}", {}).get("spec") or {}).get(
        "wireguardEnabled") is False]
    if not configured:
        active, inactive = [], list(node_names)
    else:
        active = [n for n in active if n not in overrides_off]
        inactive = [n for n in node_names if n not in active]
    return NodeEncryption(mechanism="wireguard" if configured else None, configured=configured,
                          configured_source=source, nodes_active=active, nodes_inactive=inactive)


def _sites_and_links(subject: ClusterFacts, nodes: list[Obj], scope: Scope) -> None:
    """Sites from the scope (node selectors) or else from topology.kubernetes.io/region; links between them."""
    sites: dict[str, list[str]] = {}
    if scope.sites:
        for site in scope.sites:
            sites[site.name] = [str(n["metadata"]["name"]) for n in nodes
                                if matches({"matchLabels": site.node_selector}, n["metadata"].get("labels") or {})]
        untrusted = {frozenset(p) for p in scope.untrusted_links}
    else:
        for n in nodes:
            region = (n["metadata"].get("labels") or {}).get(REGION_LABEL, "(no region label)")
            sites.setdefault(region, []).append(str(n["metadata"]["name"]))
        untrusted = {frozenset(p) for p in combinations(sites, 2)}  # different regions: untrusted by default
    subject.sites = [SiteFacts(name=k, nodes=sorted(v)) for k, v in sites.items()]
    subject.sites_spanned = sum(1 for v in sites.values() if v)
    inactive = set(subject.node_encryption.nodes_inactive) if subject.node_encryption else None
    for a, b in combinations(sites, 2):
        is_untrusted = frozenset((a, b)) in untrusted
        members = sites[a] + sites[b]
        unenc = sorted(n for n in members if inactive is None or n in inactive)
        subject.links.append(LinkFacts(a=a, b=b, untrusted=is_untrusted, encrypted=not unenc,
                                       unencrypted_nodes=unenc))
    subject.untrusted_links = sum(1 for link in subject.links if link.untrusted)
    subject.untrusted_links_unencrypted = sum(1 for link in subject.links if link.untrusted and not link.encrypted)
    if inactive is None and subject.untrusted_links:
        subject.mark_unknown("links", "node encryption state unknown")
        subject.mark_unknown("untrusted_links_unencrypted", "node encryption state unknown")


def _apiserver(inv: Inventory, subject: ClusterFacts) -> None:
    pods = [p for p in inv.objects("Pod", "", namespace="kube-system")
            if (p["metadata"].get("labels") or {}).get("component") == "kube-apiserver"]
    if not pods:
        reason = "kube-apiserver pod not visible (managed control plane, or Pods not collected)"
        for name in ("apiserver_flags", "audit_logging", "secrets_encryption_configured"):
            subject.mark_unknown(name, reason)
        return
    pod = pods[0]
    subject.evidence.append(ObjectRef.of(pod))
    c = (containers_of(pod) or [{}])[0]
    f = flags([str(a) for a in (c.get("command") or []) + (c.get("args") or [])])
    subject.apiserver_visible = True
    subject.apiserver_flags = f
    subject.audit_logging = bool(f.get("audit-policy-file")) and bool(
        f.get("audit-log-path") or f.get("audit-webhook-config-file"))
    subject.secrets_encryption_configured = bool(f.get("encryption-provider-config"))


def detect_cni(inv: Inventory) -> tuple[CNIFacts | None, list[ObjectRef], str | None]:
    """The CNI and whether it enforces NetworkPolicy, with the objects that show it and, if it cannot be told,
    why (for collectors other than this one, e.g. segmentation)."""
    holder = ClusterFacts.model_construct(id="cluster", name="", evidence=[], unknown=[])
    found = _cni(inv, holder)
    reason = next((u.reason for u in holder.unknown if u.field == "cni"), None)
    if found is None and reason is None:
        reason = (_why(inv, "DaemonSet", "apps", "daemonsets") if inv.status("DaemonSet", "apps").status != "ok"
                  else "no known CNI DaemonSet found")
    return found, list(holder.evidence), reason
