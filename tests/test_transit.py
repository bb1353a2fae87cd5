"""Encryption between nodes (per CNI, per node, with proof) and inside namespaces (Istio PeerAuthentication,
DestinationRules, Linkerd), and the namespace verdict: node encryption OR STRICT mTLS, never a pass without evidence."""

from __future__ import annotations

import json

from helpers import NOW, inventory, node, obj, pod

from evidence.collectors import cluster, transit
from evidence.scope import DataScope, NamespaceScope, Scope

SCOPE = Scope(namespaces=NamespaceScope(cde=["pay"], connected=["shop"]), data=DataScope(personal_data=["shop"]))
WG = {"projectcalico.org/WireguardPublicKey": "k"}


def ds(name: str, ns: str = "kube-system", containers: list | None = None) -> dict:
    return obj("apps/v1", "DaemonSet", name, ns, spec={"template": {"spec": {
        "containers": containers or [{"name": name, "image": f"example/{name}:1"}]}}})


def felix(name: str, enabled: bool, group: str = "crd.projectcalico.org/v1") -> dict:
    return obj(group, "FelixConfiguration", name, spec={"wireguardEnabled": enabled})


def enc(*objs: dict, scope: Scope | None = None, **kw):
    return cluster.collect(inventory(*objs, **kw), scope or Scope(), NOW)[0]


# --- node encryption per CNI ---------------------------------------------------------------------------

def test_calico_per_node_override_in_the_v3_group() -> None:
    c = enc(ds("calico-node"), felix("default", True, "projectcalico.org/v3"), felix("node.b1", False),
            node("a1", "r1", WG), node("b1", "r2", WG))
    states = {s.node: s for s in c.node_encryption.nodes}
    assert states["a1"].active and "WireguardPublicKey present" in states["a1"].proof and states["a1"].site == "r1"
    # The per-node override wins over the global default even though the node still has a key.
    assert not states["b1"].active and "node.b1 wireguardEnabled=false" in states["b1"].proof
    link = c.links[0]
    assert link.untrusted and not link.encrypted and link.unencrypted_pairs == 1 and link.node_pairs == 1


def test_calico_per_node_enable_with_global_off() -> None:
    c = enc(ds("calico-node"), felix("default", False), felix("node.a1", True), node("a1", "r1", WG), node("b1", "r1"))
    assert c.node_encryption.nodes_active == ["a1"] and c.node_encryption.configured


def test_cilium_wireguard_ipsec_and_missing_ciliumnodes() -> None:
    cfg = obj("v1", "ConfigMap", "cilium-config", "kube-system",
              data={"enable-wireguard": "true", "encrypt-node": "true"})
    cn = obj("cilium.io/v2", "CiliumNode", "a1", annotations={"network.cilium.io/wg-pub-key": "k"})
    c = enc(ds("cilium"), cfg, cn, obj("cilium.io/v2", "CiliumNode", "b1"), node("a1", "r1"), node("b1", "r2"))
    ne = c.node_encryption
    assert ne.mechanism == "wireguard" and ne.host_traffic and ne.nodes_active == ["a1"]
    assert "missing" in {s.node: s.proof for s in ne.nodes}["b1"]
    ipsec = obj("v1", "ConfigMap", "cilium-config", "kube-system", data={"enable-ipsec": "true"})
    keyed = obj("cilium.io/v2", "CiliumNode", "a1", spec={"encryption": {"key": 3}})
    assert enc(ds("cilium"), ipsec, keyed, node("a1", "r1")).node_encryption.nodes_active == ["a1"]
    # CiliumNodes not collected: the links are unknown, so transit.node-encryption is inconclusive, not failed.
    absent = enc(ds("cilium"), cfg, node("a1", "r1"), node("b1", "r2"), absent=("CiliumNode",))
    reasons = {u.field: u.reason for u in absent.unknown}
    assert "ciliumnodes" in reasons["untrusted_links_unencrypted"] and "ciliumnodes" in reasons["links"]


def test_flannel_and_k3s_backends() -> None:
    cfg = obj("v1", "ConfigMap", "kube-flannel-cfg", "kube-flannel",
              data={"net-conf.json": json.dumps({"Backend": {"Type": "vxlan"}})})
    c = enc(ds("kube-flannel-ds", "kube-flannel"), cfg, node("a", "r1"), node("b", "r2"))
    assert not c.node_encryption.configured and c.untrusted_links_unencrypted == 1
    args = {"k3s.io/node-args": json.dumps(["server", "--flannel-backend", "wireguard-native"]),
            "flannel.alpha.coreos.com/backend-type": "wireguard"}
    agent = {"k3s.io/node-args": json.dumps(["agent"])}
    k3s = enc(node("s1", "r1", args), node("a1", "r2", agent))
    assert k3s.cni.name == "k3s-flannel" and k3s.cni.enforces_network_policy
    assert k3s.node_encryption.mechanism == "wireguard" and "--flannel-backend=wireguard-native" in \
        k3s.node_encryption.configured_source
    assert k3s.node_encryption.nodes_inactive == ["a1"]  # the agent never published its backend


def test_antrea_and_weave() -> None:
    conf = obj("v1", "ConfigMap", "antrea-config", "kube-system",
               data={"antrea-agent.conf": "trafficEncryptionMode: wireGuard\n"})
    c = enc(ds("antrea-agent"), conf, node("a", "r1", {"node.antrea.io/wireguard-public-key": "k"}), node("b", "r2"))
    assert c.node_encryption.mechanism == "wireguard" and c.node_encryption.nodes_active == ["a"]
    off = obj("v1", "ConfigMap", "antrea-config", "kube-system", data={"antrea-agent.conf": "featureGates: {}\n"})
    assert not enc(ds("antrea-agent"), off, node("a")).node_encryption.configured  # default trafficEncryptionMode none
    weave = ds("weave-net", containers=[{"name": "weave", "env": [{"name": "WEAVE_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "weave-passwd", "key": "p"}}}]}, {"name": "weave-npc"}])
    w = enc(weave, node("a", "r1"), node("b", "r2"),
            pod("weave-net-1", "kube-system", {}, node="a", owner=("DaemonSet", "weave-net")))
    assert w.node_encryption.configured and w.node_encryption.nodes_active == ["a"]
    assert "no weave-net" not in w.node_encryption.nodes[0].proof


# --- namespaces: node encryption or mesh mTLS ----------------------------------------------------------

def ns(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return obj("v1", "Namespace", name, labels=labels, annotations=annotations)


def meshed_pod(name: str, namespace: str, labels: dict, node_name: str, plane: str = "sidecar") -> dict:
    p = pod(name, namespace, labels, node=node_name)
    if plane == "sidecar":
        p["metadata"]["annotations"] = {"sidecar.istio.io/status": "{}"}
        p["spec"]["containers"].append({"name": "istio-proxy"})
    elif plane == "linkerd":
        p["metadata"]["annotations"] = {"linkerd.io/proxy-version": "edge-26.8.3"}
    return p


def peer_auth(name: str, namespace: str, mode: str | None, selector: dict | None = None,
              ports: dict | None = None, created: str = "2026-01-01T00:00:00Z", dry_run: bool = False) -> dict:
    spec: dict = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = ports
    o = obj("security.istio.io/v1", "PeerAuthentication", name, namespace, spec=spec,
            annotations={"istio.io/dry-run": "true"} if dry_run else None)
    o["metadata"]["creationTimestamp"] = created
    return o


BASE = [ds("calico-node"), felix("default", True), node("a1", "r1", WG), node("b1", "r2"),
        obj("apps/v1", "Deployment", "istiod", "istio-system"), ns("istio-system")]


def spaces(*objs: dict, scope: Scope = SCOPE, **kw) -> dict:
    return {s.name: s for s in transit.collect(inventory(*BASE, *objs, **kw), scope, NOW)}


def test_istio_mesh_strict_namespace_permissive_and_workload_override() -> None:
    got = spaces(ns("pay"), ns("shop"),
                 peer_auth("default", "istio-system", "STRICT"),
                 peer_auth("default", "shop", "PERMISSIVE"),
                 peer_auth("api-strict", "shop", "STRICT", selector={"app": "api"}, ports={"9090": {"mode": "DISABLE"}}),
                 peer_auth("ignored", "istio-system", "DISABLE", selector={"app": "db"}),  # selector in root: ignored
                 meshed_pod("db-0", "pay", {"app": "db"}, "a1"), meshed_pod("api-1", "shop", {"app": "api"}, "b1"),
                 meshed_pod("web-1", "shop", {"app": "web"}, "a1"))
    pay, shop = got["pay"], got["shop"]
    # b1 has no WireGuard key, so node encryption does not cover the link; STRICT mTLS does for pay.
    assert not pay.node_encryption_covers and pay.nodes_unencrypted == ["b1"]
    assert pay.strict_mtls_all and pay.protected and pay.protected_by == "mTLS"
    assert "mesh-wide PeerAuthentication istio-system/default" in pay.workloads[0].mtls_source
    modes = {w.workload: w for w in shop.workloads}
    assert modes["Pod/web-1"].mtls_mode == "PERMISSIVE" and "namespace PeerAuthentication shop/default" in \
        modes["Pod/web-1"].mtls_source
    assert modes["Pod/api-1"].mtls_mode == "STRICT" and modes["Pod/api-1"].port_exceptions == [
        "port 9090: DISABLE (PeerAuthentication shop/api-strict portLevelMtls)"]
    assert not shop.protected and shop.protected_by == "none" and "encryption is not active on b1" in shop.reason
    assert "Pod/web-1: PERMISSIVE" in shop.reason


def test_unset_inherits_nothing_means_permissive_and_dry_run_is_ignored() -> None:
    got = spaces(ns("pay"), peer_auth("default", "istio-system", "STRICT"), peer_auth("inherit", "pay", None),
                 meshed_pod("db-0", "pay", {"app": "db"}, "a1"))
    assert got["pay"].workloads[0].mtls_mode == "STRICT"
    none = spaces(ns("pay"), peer_auth("soon", "istio-system", "STRICT", dry_run=True),
                  meshed_pod("db-0", "pay", {"app": "db"}, "a1"))["pay"]
    assert none.workloads[0].mtls_mode == "PERMISSIVE" and "Istio default PERMISSIVE" in none.workloads[0].mtls_source
    assert "dry-run PeerAuthentications ignored: istio-system/soon" in none.mtls_reason


def test_destination_rule_disable_and_unenrolled_workloads() -> None:
    dr = obj("networking.istio.io/v1", "DestinationRule", "legacy", "shop",
             spec={"host": "db.pay.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}})
    got = spaces(ns("pay"), peer_auth("default", "istio-system", "STRICT"), dr,
                 meshed_pod("db-0", "pay", {"app": "db"}, "a1"), pod("batch-1", "pay", {"app": "batch"}, node="a1"))
    pay = got["pay"]
    assert pay.destination_rules_disable == [
        "DestinationRule shop/legacy host db.pay.svc.cluster.local: tls.mode DISABLE (trafficPolicy.tls)"]
    assert "Pod/batch-1: not enrolled in a mesh" in pay.workloads_not_strict and not pay.strict_mtls_all


def test_ambient_and_linkerd() -> None:
    ztunnel = ds("ztunnel", "istio-system")
    got = spaces(ztunnel, ns("pay", labels={"istio.io/dataplane-mode": "ambient"}),
                 ns("shop", annotations={"config.linkerd.io/default-inbound-policy": "all-authenticated"}),
                 peer_auth("default", "istio-system", "STRICT"),
                 pod("db-0", "pay", {"app": "db"}, node="a1"),
                 meshed_pod("web-1", "shop", {"app": "web"}, "a1", plane="linkerd"))
    assert got["pay"].workloads[0].dataplane == "ambient" and got["pay"].strict_mtls_all
    shop = got["shop"]
    assert shop.mesh == "linkerd" and shop.workloads[0].mtls_mode == "all-authenticated" and shop.strict_mtls_all
    cm = obj("v1", "ConfigMap", "linkerd-config", "linkerd",
             data={"values": "proxy:\n  defaultInboundPolicy: all-unauthenticated\n"})
    default = spaces(ns("shop"), cm, meshed_pod("web-1", "shop", {"app": "web"}, "a1", plane="linkerd"))["shop"]
    assert default.workloads[0].mtls_mode == "all-unauthenticated" and not default.strict_mtls_all
    assert "linkerd-config" in default.workloads[0].mtls_source


def test_single_site_namespace_needs_neither() -> None:
    got = spaces(ns("pay"), pod("db-0", "pay", {"app": "db"}, node="a1"),
                 scope=Scope(namespaces=NamespaceScope(cde=["pay"])))
    pay = got["pay"]
    # a1 is at r1; the link r1 <-> r2 reaches r1, so b1 (unencrypted) at the far end still matters.
    assert pay.untrusted_links == ["r1 <-> r2"] and pay.nodes_unencrypted == ["b1"] and not pay.protected
    one_site = {s.name: s for s in transit.collect(inventory(ds("calico-node"), node("a1", "r1"), node("a2", "r1"),
                                                                ns("pay"), pod("db-0", "pay", {}, node="a1")),
                                                      Scope(namespaces=NamespaceScope(cde=["pay"])), NOW)}["pay"]
    assert one_site.protected and one_site.protected_by == "no untrusted links"


def test_missing_evidence_is_unknown_never_protected() -> None:
    # PeerAuthentications not in the snapshot while Istio runs: mTLS unknown; node encryption does not cover.
    got = spaces(ns("pay"), meshed_pod("db-0", "pay", {"app": "db"}, "b1"), absent=("PeerAuthentication",))
    pay = got["pay"]
    reasons = {u.field: u.reason for u in pay.unknown}
    assert "no PeerAuthentications in the snapshot" in reasons["strict_mtls_all"]
    assert "protected" in reasons and pay.protected_by == "unknown"
    denied = spaces(ns("pay"), pod("db-0", "pay", {}, node="a1"), denied=("Pod",))["pay"]
    assert "could not list pods" in {u.field: u.reason for u in denied.unknown}["protected"]


# --- issue 13: meshes read as the injectors and Istio read them ---------------------------------------------

def app(name: str, namespace: str, labels: dict | None = None, annotations: dict | None = None,
        template_labels: dict | None = None) -> dict:
    """A Deployment as bookinfo's manifests write it (samples/bookinfo/platform/kube/bookinfo.yaml)."""
    tpl_labels = {"app": name, "version": "v1", **(template_labels or {})}
    meta: dict = {"labels": tpl_labels}
    if annotations:
        meta["annotations"] = annotations
    return obj("apps/v1", "Deployment", f"{name}-v1", namespace, labels=labels, spec={
        "selector": {"matchLabels": {"app": name, "version": "v1"}},
        "template": {"metadata": meta, "spec": {"containers": [
            {"name": name, "image": f"docker.io/istio/examples-bookinfo-{name}-v1:1.20.2",
             "ports": [{"containerPort": 9080}]}]}}})


INJECTOR = obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-sidecar-injector")


def test_sidecar_injection_inferred_from_labels_annotations_and_the_webhook() -> None:
    # Istio "Controlling the injection policy" (istio.io/latest/docs/setup/additional-setup/sidecar-injection/):
    # namespace istio-injection=enabled injects unless the pod says sidecar.istio.io/inject "false"; a pod label
    # sidecar.istio.io/inject=true injects in an unlabelled namespace. A snapshot of manifests: no Pods at all.
    scope = Scope(namespaces=NamespaceScope(cde=["bookinfo", "legacy"]))
    got = spaces(INJECTOR, ns("bookinfo", labels={"istio-injection": "enabled"}), ns("legacy"),
                 peer_auth("default", "istio-system", "STRICT"),
                 app("productpage", "bookinfo"), app("ratings", "bookinfo"),
                 app("details", "bookinfo", annotations={"sidecar.istio.io/inject": "false"}),
                 app("batch", "legacy", template_labels={"sidecar.istio.io/inject": "true"}),
                 app("report", "legacy"), scope=scope, absent=("Pod",))
    book = {w.workload: w for w in got["bookinfo"].workloads}
    assert book["Deployment/productpage-v1"].dataplane == "sidecar"
    assert "istio-injection=enabled" in book["Deployment/productpage-v1"].enrolment_source
    assert "MutatingWebhookConfiguration istio-sidecar-injector" in book["Deployment/productpage-v1"].enrolment_source
    assert book["Deployment/details-v1"].dataplane == "none"
    legacy = {w.workload: w for w in got["legacy"].workloads}
    assert legacy["Deployment/batch-v1"].dataplane == "sidecar" and legacy["Deployment/report-v1"].dataplane == "none"
    # Every enrolment is established, so nothing "cannot be confirmed".
    assert not [u for u in got["bookinfo"].unknown if "confirmed" in u.reason]


def test_injection_cannot_be_confirmed_only_when_no_injector_evidence_was_read() -> None:
    sts = obj("apps/v1", "StatefulSet", "db", "pay", spec={"selector": {"matchLabels": {"app": "db"}}, "template": {
        "metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}})
    labelled = ns("pay", labels={"istio-injection": "enabled"})
    unknown_case = {s.name: s for s in transit.collect(inventory(node("a1", "r1"), labelled, sts,
                                                                 denied=("Deployment",),
                                                                 absent=("Pod", "MutatingWebhookConfiguration")),
                                                       SCOPE, NOW)}["pay"]
    reasons = {u.field: u.reason for u in unknown_case.unknown}
    assert "cannot be confirmed" in reasons["strict_mtls_all"]
    # Deployments read, no istiod, webhooks not collected: a managed control plane (istiod outside the cluster)
    # would still inject, so this is unknown too, not "no sidecar".
    managed = {s.name: s for s in transit.collect(inventory(node("a1", "r1"), labelled, sts,
                                                            absent=("Pod", "MutatingWebhookConfiguration")),
                                                  SCOPE, NOW)}["pay"]
    assert "MutatingWebhookConfigurations) were not read" in {u.field: u.reason for u in managed.unknown}[
        "strict_mtls_all"]
    # The webhook was read and is absent, istiod too: the label injects nothing, and that is a fact.
    no_injector = {s.name: s for s in transit.collect(inventory(ds("calico-node"), felix("default", True),
                                                                node("a1", "r1", WG), labelled, sts,
                                                                obj("admissionregistration.k8s.io/v1",
                                                                    "MutatingWebhookConfiguration", "cert-manager"),
                                                                absent=("Pod",)), SCOPE, NOW)}["pay"]
    assert no_injector.workloads[0].dataplane == "none" and "no injector is installed" in \
        no_injector.workloads[0].enrolment_source
    assert "strict_mtls_all" not in {u.field for u in no_injector.unknown}


def test_no_mesh_installed_is_a_fact_when_the_inputs_were_read() -> None:
    objs = [ds("calico-node"), felix("default", True), node("a1", "r1", WG), ns("pay"),
            pod("db-0", "pay", {"app": "db"}, node="a1")]
    none = {s.name: s for s in transit.collect(inventory(*objs), SCOPE, NOW)}["pay"]
    assert none.mesh_installed is False and "mesh_installed" not in none.unknown_fields() and none.mesh is None
    unread = {s.name: s for s in transit.collect(inventory(*objs, denied=("Deployment",)), SCOPE, NOW)}["pay"]
    assert "Deployments were not read" in {u.field: u.reason for u in unread.unknown}["mesh_installed"]


def test_peer_authentication_precedence_unmatched_selector_and_plaintext_path() -> None:
    # Istio PeerAuthentication reference: mesh-wide (root namespace, no selector) < namespace < workload selector <
    # portLevelMtls. bookinfo-like: mesh STRICT, ratings relaxed to PERMISSIVE, reviews has a selector typo.
    got = spaces(ns("bookinfo"), ns("legacy"), ns("shop"),
                 peer_auth("default", "istio-system", "STRICT"),
                 peer_auth("default", "bookinfo", "STRICT"),
                 peer_auth("ratings-permissive", "bookinfo", "PERMISSIVE", selector={"app": "ratings"}),
                 peer_auth("details-port", "bookinfo", None, selector={"app": "details"},
                           ports={"9080": {"mode": "PERMISSIVE"}}),
                 peer_auth("reviews-strict", "bookinfo", "STRICT", selector={"app": "review"}),
                 meshed_pod("ratings-1", "bookinfo", {"app": "ratings"}, "a1"),
                 meshed_pod("details-1", "bookinfo", {"app": "details"}, "a1"),
                 meshed_pod("reviews-1", "bookinfo", {"app": "reviews"}, "a1"),
                 pod("batch-1", "legacy", {"app": "batch"}, node="a1"),
                 scope=Scope(namespaces=NamespaceScope(cde=["bookinfo"])))
    book = got["bookinfo"]
    modes = {w.workload: w for w in book.workloads}
    assert modes["Pod/ratings-1"].mtls_mode == "PERMISSIVE" and "workload PeerAuthentication" in \
        modes["Pod/ratings-1"].mtls_source
    assert modes["Pod/details-1"].mtls_mode == "STRICT" and modes["Pod/details-1"].port_exceptions == [
        "port 9080: PERMISSIVE (PeerAuthentication bookinfo/details-port portLevelMtls)"]
    assert modes["Pod/reviews-1"].strict
    assert book.peer_authentications_unmatched == [
        "PeerAuthentication bookinfo/reviews-strict (selector app=review, mode STRICT) selects no pod"]
    # Istio ignores selector policies in the root namespace (PeerAuthentication reference, istio/api#3604): the
    # policy changes nothing, and the root namespace's subject says so.
    root = spaces(ns("bookinfo"), peer_auth("default", "istio-system", "STRICT"),
                  peer_auth("ratings-off", "istio-system", "DISABLE", selector={"app": "ratings"}),
                  meshed_pod("ratings-1", "bookinfo", {"app": "ratings"}, "a1"))
    assert root["bookinfo"].workloads[0].mtls_mode == "STRICT"
    assert "where Istio ignores it" in root["istio-system"].peer_authentications_unmatched[0]
    # legacy/batch is outside the mesh and no NetworkPolicy stops it: it reaches ratings and details in plain text.
    assert any(p.startswith("Pod/ratings-1 (PERMISSIVE) accepts plain text from non-mesh workloads legacy/batch-1")
               for p in book.plaintext_paths)
    assert "plain text reaches meshed workloads" in book.mtls_reason
    # A default-deny ingress policy in bookinfo closes the path: no plaintext path is claimed.
    deny = obj("networking.k8s.io/v1", "NetworkPolicy", "deny", "bookinfo", spec={"podSelector": {},
                                                                                "policyTypes": ["Ingress"]})
    closed = spaces(ns("bookinfo"), ns("legacy"), deny, peer_auth("default", "bookinfo", "PERMISSIVE"),
                    meshed_pod("ratings-1", "bookinfo", {"app": "ratings"}, "a1"),
                    pod("batch-1", "legacy", {"app": "batch"}, node="a1"))["bookinfo"]
    assert closed.plaintext_paths == []


def test_undeclared_sites_are_inferred_and_the_assumption_is_stated() -> None:
    zoned = [obj("v1", "Node", f"n{i}", labels={"topology.kubernetes.io/region": "europe-north1",
                                               "topology.kubernetes.io/zone": f"europe-north1-{z}"})
             for i, z in enumerate("abc")]
    scope = Scope(namespaces=NamespaceScope(cde=["pay"]))
    got = {s.name: s for s in transit.collect(inventory(ds("calico-node"), *zoned, ns("pay"),
                                                        pod("db-0", "pay", {}, node="n0")), scope, NOW)}["pay"]
    assert got.protected and got.sites_assumption is not None
    assert "europe-north1-a, europe-north1-b, europe-north1-c" in got.sites_assumption
    assert "assumed" in got.reason
    bare = {s.name: s for s in transit.collect(inventory(ds("calico-node"), obj("v1", "Node", "n0"), ns("pay"),
                                                         pod("db-0", "pay", {}, node="n0")), scope, NOW)}["pay"]
    assert "every node is taken to be at one site" in bare.sites_assumption
    declared = Scope(namespaces=NamespaceScope(cde=["pay"]), sites=[{"name": "dc1", "node_selector": {}}])
    assert {s.name: s for s in transit.collect(inventory(ds("calico-node"), *zoned, ns("pay")), declared,
                                               NOW)}["pay"].sites_assumption is None


def test_linkerd_injection_inferred_from_the_namespace_annotation_and_the_injector() -> None:
    # Linkerd "Automatic proxy injection": linkerd.io/inject enabled on the namespace (or pod template) makes the
    # proxy-injector add linkerd-proxy; "disabled" on the pod template opts a workload out.
    injector = obj("apps/v1", "Deployment", "linkerd-proxy-injector", "linkerd")
    sts = [obj("apps/v1", "StatefulSet", name, "shop", spec={"selector": {"matchLabels": {"app": name}}, "template": {
        "metadata": {"labels": {"app": name}, "annotations": annotations},
        "spec": {"containers": [{"name": name, "image": "example/app:1"}]}}})
        for name, annotations in (("web", {}), ("cache", {"linkerd.io/inject": "disabled"}))]
    got = {s.name: s for s in transit.collect(inventory(ds("calico-node"), felix("default", True), node("a1", "r1", WG),
                                                        injector, ns("shop", annotations={"linkerd.io/inject": "enabled"}),
                                                        *sts, absent=("Pod",)), SCOPE, NOW)}["shop"]
    planes = {w.workload: w for w in got.workloads}
    assert planes["StatefulSet/web"].dataplane == "linkerd"
    assert "Namespace annotation linkerd.io/inject=enabled" in planes["StatefulSet/web"].enrolment_source
    assert planes["StatefulSet/cache"].dataplane == "none" and got.mesh_installed
