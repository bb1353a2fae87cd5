"""The cluster subject: CNI and whether it enforces NetworkPolicy, node-to-node encryption, sites and links,
and the kube-apiserver flags when its mirror pod is visible (cluster-facts.md C, D.1, E.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from itertools import combinations

import yaml

from evidence.collectors import controlplane
from evidence.collectors.apiserver import MANAGED, apiserver_config, not_visible_reason, platform
from evidence.collectors.workloads import containers_of, flags
from evidence.facts import AuditConfig, ClusterFacts, CNIFacts, LinkFacts, NodeEncryption, NodeEncryptionState, SiteFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import REGION_LABEL, Scope

CALICO_WG_ANNOTATION = "projectcalico.org/WireguardPublicKey"
CILIUM_WG_ANNOTATION = "network.cilium.io/wg-pub-key"
FLANNEL_BACKEND_ANNOTATION = "flannel.alpha.coreos.com/backend-type"
ANTREA_WG_ANNOTATION = "node.antrea.io/wireguard-public-key"
K3S_ARGS_ANNOTATION = "k3s.io/node-args"


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
    _apiserver(inv, subject, scope)
    return [subject]


def _why(inv: Inventory, kind: str, group: str, plural: str) -> str:
    return inv.status(kind, group).reason(plural) or f"{plural} were read"


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
        _cilium, _calico, _canal, _antrea, _weave, _kube_router, _flannel, _aws_vpc, _kindnet, _k3s]
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


def _k3s(inv: Inventory, subject: ClusterFacts) -> CNIFacts | None:
    """k3s embeds flannel (no DaemonSet) and kube-router's policy controller; its server arguments are on the
    Node annotation k3s.io/node-args (cluster-facts.md C.3)."""
    args = _k3s_args(inv)
    if not args or flags(args).get("flannel-backend") == "none":
        return None
    subject.evidence.extend(ObjectRef.of(n) for n in inv.objects("Node", "")
                            if K3S_ARGS_ANNOTATION in (n["metadata"].get("annotations") or {})
                            and ObjectRef.of(n) not in subject.evidence)
    off = "--disable-network-policy" in args or flags(args).get("disable-network-policy") == "true"
    return CNIFacts(name="k3s-flannel", enforces_network_policy=not off,
                    reason="k3s server runs with --disable-network-policy" if off
                    else "k3s embeds the kube-router network policy controller")


def _node_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str]) -> NodeEncryption | None:
    """Per-node proof that encryption is active, not just configured (cluster-facts.md C.1-C.6)."""
    cni = subject.cni.name if subject.cni else None
    nodes = {str(n["metadata"]["name"]): n for n in inv.objects("Node", "")}

    def annotation(node: str, key: str) -> str | None:
        value = (nodes[node]["metadata"].get("annotations") or {}).get(key)
        return str(value) if value else None

    if cni == "canal":
        backend, source = _flannel_backend(inv, subject, "canal-config", ("kube-system",))
        if backend in ("wireguard", "ipsec"):
            return _flannel_encryption(node_names, annotation, backend, source)
    if cni in ("calico", "canal"):
        return _calico_encryption(inv, subject, node_names, annotation)
    if cni == "cilium":
        return _cilium_encryption(inv, subject, node_names)
    if cni == "flannel":
        backend, source = _flannel_backend(inv, subject, "kube-flannel-cfg", ("kube-flannel", "kube-system"))
        return _flannel_encryption(node_names, annotation, backend, source)
    if cni == "k3s-flannel":
        backend, source = _k3s_backend(inv)
        return _flannel_encryption(node_names, annotation, backend, source)
    if cni == "antrea":
        return _antrea_encryption(inv, subject, node_names, annotation)
    if cni == "weave":
        return _weave_encryption(inv, subject, node_names)
    return None


def _result(mechanism: str | None, source: str, states: list[NodeEncryptionState],
            host_traffic: bool | None = None) -> NodeEncryption:
    return NodeEncryption(mechanism=mechanism, configured=mechanism is not None, configured_source=source,
                          nodes_active=[s.node for s in states if s.active],
                          nodes_inactive=[s.node for s in states if not s.active], nodes=states,
                          host_traffic=host_traffic)


def _calico_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str],
                       annotation: Callable[[str, str], str | None]) -> NodeEncryption:
    """Felix precedence: env FELIX_WIREGUARDENABLED > per-node FelixConfiguration node.<name> > global `default`
    (both API groups, crd.projectcalico.org/v1 and projectcalico.org/v3, are read)."""
    felix = {str(f["metadata"]["name"]): f for f in inv.objects("FelixConfiguration")}
    default = felix.get("default")
    enabled, source = False, "Calico default (wireguardEnabled=false)"
    if default is not None:
        subject.evidence.append(ObjectRef.of(default))
        enabled = bool((default.get("spec") or {}).get("wireguardEnabled", False))
        source = f"FelixConfiguration default wireguardEnabled={str(enabled).lower()}"
    elif inv.status("FelixConfiguration", "crd.projectcalico.org").status != "ok" and \
            inv.status("FelixConfiguration", "projectcalico.org").status != "ok":
        subject.mark_unknown("node_encryption", "FelixConfiguration could not be read (not in the inventory)")
    env_value = None
    for c in containers_of(_daemonset(inv, "calico-node", "canal") or {}):
        for e in c.get("env") or []:
            if e.get("name") == "FELIX_WIREGUARDENABLED" and "value" in e:
                env_value = str(e["value"]).lower() == "true"
                source = f"calico-node env FELIX_WIREGUARDENABLED={e['value']}"
    states = []
    for n in node_names:
        override = felix.get(f"node.{n}")
        on, why = enabled, source
        if override is not None and "wireguardEnabled" in (override.get("spec") or {}):
            subject.evidence.append(ObjectRef.of(override))
            on = bool(override["spec"]["wireguardEnabled"])
            why = f"FelixConfiguration node.{n} wireguardEnabled={str(on).lower()}"
        if env_value is not None:
            on, why = env_value, source
        if not on:
            states.append(NodeEncryptionState(node=n, active=False, proof=f"WireGuard not enabled ({why})"))
        elif annotation(n, CALICO_WG_ANNOTATION):
            states.append(NodeEncryptionState(node=n, active=True, proof=f"Node annotation {CALICO_WG_ANNOTATION} "
                                              "present (Felix brought WireGuard up)"))
        else:
            states.append(NodeEncryptionState(node=n, active=False, proof=f"WireGuard enabled ({why}) but the Node "
                                              f"has no {CALICO_WG_ANNOTATION} annotation: Felix could not bring it "
                                              "up (kernel module?)"))
    configured = any(not s.proof.startswith("WireGuard not enabled") for s in states) or (enabled and not states)
    return _result("wireguard" if configured else None, source, states)


def _cilium_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str]) -> NodeEncryption | None:
    cm = _configmap(inv, "cilium-config", "kube-system")
    if cm is None:
        subject.mark_unknown("node_encryption", "ConfigMap cilium-config not found: encryption settings unknown")
        return None
    data = cm.get("data") or {}
    mech = "wireguard" if data.get("enable-wireguard") == "true" else (
        "ipsec" if data.get("enable-ipsec") == "true" else None)
    source = f"ConfigMap cilium-config enable-{mech}=true" if mech else \
        "ConfigMap cilium-config: enable-wireguard and enable-ipsec not set (Cilium default: no encryption)"
    host = data.get("encrypt-node") == "true" if mech else None
    if mech and inv.status("CiliumNode", "cilium.io").status != "ok":
        subject.mark_unknown("node_encryption", _why(inv, "CiliumNode", "cilium.io", "ciliumnodes"))
    cnodes = {str(c["metadata"]["name"]): c for c in inv.objects("CiliumNode", "cilium.io")}
    states = []
    for n in node_names:
        cn = cnodes.get(n)
        if mech is None:
            states.append(NodeEncryptionState(node=n, active=False, proof=source))
        elif cn is None:
            states.append(NodeEncryptionState(node=n, active=False, proof="no CiliumNode object for this node"))
        else:
            subject.evidence.append(ObjectRef.of(cn))
            key = int(((cn.get("spec") or {}).get("encryption") or {}).get("key") or 0)
            wg = (cn["metadata"].get("annotations") or {}).get(CILIUM_WG_ANNOTATION)
            if mech == "wireguard":
                states.append(NodeEncryptionState(
                    node=n, active=bool(wg), proof=f"CiliumNode annotation {CILIUM_WG_ANNOTATION} "
                    + ("present" if wg else "missing: the node has not published a WireGuard key and is not peered")))
            else:
                states.append(NodeEncryptionState(
                    node=n, active=key > 0, proof=f"CiliumNode spec.encryption.key={key}"
                    + ("" if key > 0 else " (0 means IPsec is off on this node)")))
    return _result(mech, source, states, host)


def _flannel_backend(inv: Inventory, subject: ClusterFacts, name: str, namespaces: tuple[str, ...]) -> tuple[str, str]:
    cm = _configmap(inv, name, *namespaces)
    if cm is None:
        subject.mark_unknown("node_encryption", f"ConfigMap {name} not found: flannel backend unknown")
        return "unknown", f"ConfigMap {name} not found"
    subject.evidence.append(ObjectRef.of(cm))
    try:
        conf = json.loads((cm.get("data") or {}).get("net-conf.json", "{}"))
        backend = str((conf.get("Backend") or {}).get("Type", "vxlan"))
    except (ValueError, AttributeError):
        subject.mark_unknown("node_encryption", f"ConfigMap {name} net-conf.json is not valid JSON")
        return "unknown", f"ConfigMap {name} net-conf.json is not valid JSON"
    return backend, f"ConfigMap {name} net-conf.json Backend.Type={backend}"


def _k3s_args(inv: Inventory) -> list[str]:
    """The k3s server arguments from the k3s.io/node-args Node annotation (a JSON list)."""
    out: list[str] = []
    for n in inv.objects("Node", ""):
        raw = (n["metadata"].get("annotations") or {}).get(K3S_ARGS_ANNOTATION)
        try:
            args = json.loads(raw) if raw else []
        except ValueError:
            continue
        if isinstance(args, list) and args and str(args[0]) == "server":
            out += [str(a) for a in args]
    return out


def _k3s_backend(inv: Inventory) -> tuple[str, str]:
    f = flags(_k3s_args(inv))
    value = f.get("flannel-backend", "vxlan")
    backend = {"wireguard-native": "wireguard", "wireguard": "wireguard", "ipsec": "ipsec"}.get(value, value)
    return backend, f"k3s server argument --flannel-backend={value}" if "flannel-backend" in f else \
        "k3s default --flannel-backend=vxlan (Node annotation k3s.io/node-args)"


def _flannel_encryption(node_names: list[str], annotation: Callable[[str, str], str | None], backend: str,
                        source: str) -> NodeEncryption | None:
    if backend == "unknown":
        return None
    mech = backend if backend in ("wireguard", "ipsec") else None
    states = []
    for n in node_names:
        seen = annotation(n, FLANNEL_BACKEND_ANNOTATION)
        on = mech is not None and seen == mech
        states.append(NodeEncryptionState(node=n, active=on, proof=f"Node annotation {FLANNEL_BACKEND_ANNOTATION}="
                                          f"{seen or '(missing)'}" + ("" if mech else f" ({source})")))
    return _result(mech, source, states)


def _antrea_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str],
                       annotation: Callable[[str, str], str | None]) -> NodeEncryption | None:
    cm = next((c for c in inv.objects("ConfigMap", "", namespace="kube-system")
               if str(c["metadata"]["name"]).startswith("antrea-config")), None)
    if cm is None:
        subject.mark_unknown("node_encryption", "ConfigMap antrea-config not found: trafficEncryptionMode unknown")
        return None
    subject.evidence.append(ObjectRef.of(cm))
    try:
        conf = yaml.safe_load((cm.get("data") or {}).get("antrea-agent.conf") or "") or {}
    except yaml.YAMLError:
        subject.mark_unknown("node_encryption", "antrea-config antrea-agent.conf is not valid YAML")
        return None
    mode = str(conf.get("trafficEncryptionMode") or ("ipsec" if conf.get("enableIPSecTunnel") else "none")).lower()
    mech = {"wireguard": "wireguard", "ipsec": "ipsec"}.get(mode)
    source = f"ConfigMap {cm['metadata']['name']} antrea-agent.conf trafficEncryptionMode={mode}"
    agents = _agent_nodes(inv, "antrea-agent")
    if mech == "ipsec" and agents is None:
        subject.mark_unknown("node_encryption", "Pods could not be read: which nodes run antrea-agent is unknown")
    states = []
    for n in node_names:
        if mech == "wireguard":
            key = annotation(n, ANTREA_WG_ANNOTATION)
            states.append(NodeEncryptionState(node=n, active=bool(key), proof=f"Node annotation {ANTREA_WG_ANNOTATION} "
                                              + ("present" if key else "missing")))
        elif mech == "ipsec":
            on = n in (agents or set())
            states.append(NodeEncryptionState(node=n, active=on, proof="antrea-agent Pod " + (
                "running here with IPsec configured (Antrea publishes no per-node IPsec state)" if on
                else "not running on this node")))
        else:
            states.append(NodeEncryptionState(node=n, active=False, proof=source))
    return _result(mech, source, states)


def _weave_encryption(inv: Inventory, subject: ClusterFacts, node_names: list[str]) -> NodeEncryption:
    ds = _daemonset(inv, "weave-net")
    password = any(e.get("name") == "WEAVE_PASSWORD" for c in containers_of(ds or {}) if c.get("name") == "weave"
                   for e in c.get("env") or [])
    source = "weave-net container weave sets WEAVE_PASSWORD" if password else \
        "weave-net container weave has no WEAVE_PASSWORD: Weave does not encrypt"
    agents = _agent_nodes(inv, "weave-net")
    if password and agents is None:
        subject.mark_unknown("node_encryption", "Pods could not be read: which nodes run weave-net is unknown")
    states = []
    for n in node_names:
        on = password and n in (agents or set())
        states.append(NodeEncryptionState(node=n, active=on, proof=(
            "weave-net Pod running here with WEAVE_PASSWORD (Weave publishes no per-node encryption state)" if on
            else source if not password else "weave-net Pod not running on this node")))
    return _result("weave-encryption" if password else None, source, states)


def _agent_nodes(inv: Inventory, daemonset: str) -> set[str] | None:
    """Nodes running a Pod of the named DaemonSet (None when Pods could not be read)."""
    if inv.status("Pod", "").status in ("forbidden", "error", "absent"):
        return None
    return {str((p.get("spec") or {}).get("nodeName")) for p in inv.objects("Pod", "")
            if any(r.get("kind") == "DaemonSet" and r.get("name") == daemonset
                   for r in p["metadata"].get("ownerReferences") or [])
            and (p.get("status") or {}).get("phase") == "Running"}


def _sites_and_links(subject: ClusterFacts, nodes: list[Obj], scope: Scope) -> None:
    """Sites from the scope (node selectors) or else from topology.kubernetes.io/region; links between them.
    Every node pair across an untrusted link must encrypt at both ends (PCI DSS 4.2.1)."""
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
    enc = subject.node_encryption
    known = enc is not None and "node_encryption" not in subject.unknown_fields()
    inactive = set(enc.nodes_inactive) if enc is not None and known else None
    if enc is not None:
        site_of = {n: name for name, members in sites.items() for n in members}
        for state in enc.nodes:
            state.site = site_of.get(state.node)
    for a, b in combinations(sites, 2):
        is_untrusted = frozenset((a, b)) in untrusted
        members = sites[a] + sites[b]
        unenc = sorted(n for n in members if inactive is None or n in inactive)
        on_a = sum(1 for n in sites[a] if inactive is not None and n not in inactive)
        on_b = sum(1 for n in sites[b] if inactive is not None and n not in inactive)
        pairs = len(sites[a]) * len(sites[b])
        subject.links.append(LinkFacts(a=a, b=b, untrusted=is_untrusted, encrypted=not unenc,
                                       unencrypted_nodes=unenc, nodes_a=sorted(sites[a]), nodes_b=sorted(sites[b]),
                                       node_pairs=pairs, unencrypted_pairs=pairs - on_a * on_b))
    subject.untrusted_links = sum(1 for link in subject.links if link.untrusted)
    subject.untrusted_links_unencrypted = sum(1 for link in subject.links if link.untrusted and not link.encrypted)
    if inactive is None and subject.untrusted_links:
        why = next((u.reason for u in subject.unknown if u.field == "node_encryption"), "node encryption state unknown")
        subject.mark_unknown("links", why)
        subject.mark_unknown("untrusted_links_unencrypted", why)


def _apiserver(inv: Inventory, subject: ClusterFacts, scope: Scope) -> None:
    """kube-apiserver flags from its mirror Pod, else kubeadm-config (apiserver.py); the platform decides what a
    missing control plane means (managed: attach the provider's settings, cluster-facts.md E.2)."""
    config = apiserver_config(inv)
    subject.platform, subject.platform_source = platform(inv, config)  # type: ignore[assignment]
    subject.evidence += [ObjectRef.of(o) for o in config.objects]
    if not config.source:
        reason = config.problem or (
            f"{subject.platform.upper()} runs the control plane: kube-apiserver flags are not visible through the API"
            if subject.platform in MANAGED else
            not_visible_reason(inv))
        for name in ("apiserver_flags", "audit_logging", "secrets_encryption_configured", "audit",
                     "audit_policy_gaps"):
            subject.mark_unknown(name, reason)
        return
    f = config.flags
    subject.apiserver_visible = config.source.startswith("Pod ")
    subject.apiserver_flags = f
    subject.apiserver_flags_source = config.source
    subject.audit_logging = bool(f.get("audit-policy-file")) and bool(
        f.get("audit-log-path") or f.get("audit-webhook-config-file"))
    subject.audit = AuditConfig(policy_file=f.get("audit-policy-file"), log_path=f.get("audit-log-path"),
                                log_maxage_days=_int(f.get("audit-log-maxage")),
                                log_maxbackup=_int(f.get("audit-log-maxbackup")),
                                log_maxsize_mb=_int(f.get("audit-log-maxsize")),
                                webhook_config=f.get("audit-webhook-config-file"))
    subject.secrets_encryption_configured = bool(f.get("encryption-provider-config"))
    subject.secrets_encryption_source = (
        f"--encryption-provider-config={f['encryption-provider-config']} ({config.source})"
        if f.get("encryption-provider-config") else f"no --encryption-provider-config ({config.source})")
    _control_plane_files(inv, subject, scope)


def _control_plane_files(inv: Inventory, subject: ClusterFacts, scope: Scope) -> None:
    """The audit policy and EncryptionConfiguration by content, where visible (controlplane.py)."""
    files = scope.control_plane_files
    if not subject.audit_logging:
        subject.audit_policy_gaps = ["every request: audit logging is off"]
    else:
        policy = controlplane.find(inv, "Policy", "audit.k8s.io", files.audit_policy)
        subject.evidence += [ObjectRef.of(o) for o in policy.objects if o.get("metadata", {}).get("name")]
        if policy.document is None:
            subject.mark_unknown("audit_policy_gaps", policy.problem or (
                f"the audit policy {subject.audit.policy_file if subject.audit else ''} is a file on the control-plane "
                "nodes: add it to the snapshot, or name a ConfigMap copy in the scope (control_plane_files."
                "audit_policy)"))
        else:
            subject.audit_policy_source = policy.source
            subject.audit_policy_gaps = controlplane.audit_gaps(policy.document)
    if subject.secrets_encryption_configured:
        enc = controlplane.find(inv, "EncryptionConfiguration", "apiserver.config.k8s.io", files.encryption_config)
        subject.evidence += [ObjectRef.of(o) for o in enc.objects if o.get("metadata", {}).get("name")]
        if enc.document is not None:
            subject.encryption_config_source = enc.source
            subject.secrets_first_provider = controlplane.first_secret_provider(enc.document)
        else:
            subject.encryption_config_unseen = True


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


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
