"""Collectors against small inventories: effective values, defaults, and unknowns when evidence is missing."""

from __future__ import annotations

import base64
import json
import subprocess

import yaml
from helpers import NOW, certificate, deployment, inventory, netpol, node, obj, pod, tls_secret

from evidence.collectors import cluster, ingress, monitoring, namespaces, x509
from evidence.collectors.workloads import pods
from evidence.scope import Scope, Site

NGINX_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.11.3"
NGINX_ARGS = ["/nginx-ingress-controller", "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
              "--controller-class=k8s.io/ingress-nginx"]
POD_NS_ENV = [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]


def nginx(cm_data: dict | None = None) -> list[dict]:
    objs = [deployment("ingress-nginx-controller", "ingress-nginx", NGINX_IMAGE, NGINX_ARGS, POD_NS_ENV),
            obj("networking.k8s.io/v1", "IngressClass", "nginx", spec={"controller": "k8s.io/ingress-nginx"})]
    if cm_data is not None:
        objs.append(obj("v1", "ConfigMap", "ingress-nginx-controller", "ingress-nginx", data=cm_data))
    return objs


def an_ingress(hosts: list[str], tls_hosts: list[str] | None = None, secret: str = "web-tls",
               annotations: dict | None = None, ns: str = "shop") -> dict:
    spec: dict = {"ingressClassName": "nginx", "rules": [
        {"host": h, "http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
        for h in hosts]}
    if tls_hosts is not None:
        spec["tls"] = [{"hosts": tls_hosts, "secretName": secret}]
    return obj("networking.k8s.io/v1", "Ingress", "web", ns, annotations=annotations, spec=spec)


def by_host(subjects):
    return {s.host: s for s in subjects}


# --- x509 ---------------------------------------------------------------------------------------------

def test_host_matching_rfc6125() -> None:
    assert x509.host_matches("a.example.com", ["*.example.com"])
    assert not x509.host_matches("a.b.example.com", ["*.example.com"])
    assert not x509.host_matches("example.com", ["*.example.com"])
    assert x509.host_matches("Shop.Example.com.", ["shop.example.com"])


def test_sha1_signature_is_weak(tmp_path) -> None:
    # cryptography refuses to sign with SHA-1, so the openssl CLI makes this legacy certificate.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha1", "-nodes", "-keyout",
                    str(tmp_path / "k"), "-out", str(tmp_path / "c"), "-days", "30", "-subj", "/CN=old"],
                   check=True, capture_output=True)
    (tmp_path / "k").unlink()
    f = x509.facts(x509.parse_chain(base64.b64encode((tmp_path / "c").read_bytes()).decode()), NOW)
    assert f.weak and f.signature_algorithm == "sha1WithRSAEncryption" and f.key_size == 2048


def test_certificate_facts() -> None:
    chain = x509.parse_chain(certificate("shop.example.com", ["shop.example.com"], days=(-80, 10)))
    f = x509.facts(chain, NOW)
    assert f.days_left == 10 and not f.expired and f.key_type == "RSA" and f.key_size == 2048
    assert f.chain_length == 2 and f.chain_complete and not f.self_signed and not f.weak
    weak = x509.facts(x509.parse_chain(certificate("x", ["x"], rsa_bits=1024, self_signed=True)), NOW)
    assert weak.weak and weak.self_signed and weak.key_size == 1024 and weak.chain_complete
    staging = x509.facts(x509.parse_chain(certificate("s", ["s"], issuer_cn="(STAGING) Fake R1")), NOW)
    assert staging.staging_issuer
    expired = x509.facts(x509.parse_chain(certificate("e", ["e"], days=(-100, -5))), NOW)
    assert expired.expired and expired.days_left == -5


# --- ingress ------------------------------------------------------------------------------------------

def test_ingress_hosts_tls_coverage_and_certificates() -> None:
    crt = certificate("a.example.com", ["a.example.com"])
    inv = inventory(*nginx({"ssl-protocols": "TLSv1 TLSv1.2"}),
                    an_ingress(["a.example.com", "b.example.com"], ["a.example.com"]),
                    tls_secret("web-tls", "shop", crt))
    hosts = by_host(ingress.collect(inv, Scope(), NOW))
    a, b = hosts["a.example.com"], hosts["b.example.com"]
    assert a.tls and a.port == 443 and a.secret_found and a.san_covers_host and a.controller == "ingress-nginx"
    assert a.tls_policy.weak_protocols == ["TLSv1"]
    assert "ConfigMap ingress-nginx/ingress-nginx-controller" in a.tls_policy.protocols_source  # $(POD_NAMESPACE)
    assert not b.tls and b.port == 80 and b.certificate is None and not b.tls_policy.https_redirect
    assert {r.kind for r in a.evidence} >= {"Ingress", "Secret", "Deployment", "ConfigMap", "IngressClass"}


def test_ingress_defaults_when_configmap_has_no_keys() -> None:
    inv = inventory(*nginx({}), an_ingress(["a.example.com"], ["a.example.com"]),
                    tls_secret("web-tls", "shop", certificate("a.example.com", ["a.example.com"])))
    a = ingress.collect(inv, Scope(), NOW)[0]
    assert a.tls_policy.protocols == ["TLSv1.2", "TLSv1.3"] and a.tls_policy.weak_protocols == []
    assert a.tls_policy.https_redirect and a.tls_policy.hsts


def test_ssl_redirect_annotation_and_force() -> None:
    off = an_ingress(["a.example.com"], ["a.example.com"],
                     annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "false"})
    inv = inventory(*nginx({}), off, tls_secret("web-tls", "shop", certificate("a.example.com", ["a.example.com"])))
    assert not ingress.collect(inv, Scope(), NOW)[0].tls_policy.https_redirect
    forced = an_ingress(["b.example.com"], None, annotations={"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"})
    inv = inventory(*nginx({}), forced)
    assert ingress.collect(inv, Scope(), NOW)[0].tls_policy.https_redirect


def test_missing_secret_and_denied_secrets() -> None:
    inv = inventory(*nginx({}), an_ingress(["a.example.com"], ["a.example.com"]))
    a = ingress.collect(inv, Scope(), NOW)[0]
    assert a.secret_found is False and a.certificate is None and not a.unknown
    denied = inventory(*nginx({}), an_ingress(["a.example.com"], ["a.example.com"]), denied=("Secret",))
    d = ingress.collect(denied, Scope(), NOW)[0]
    assert d.secret_found is None
    assert {u.field: u.reason for u in d.unknown}["certificate"] == "permission denied: list secrets"


def test_traefik_claiming_the_nginx_class_is_not_ingress_nginx() -> None:
    traefik = deployment("traefik", "traefik", "docker.io/traefik:v3.3")
    inv = inventory(traefik, nginx()[1], an_ingress(["a.example.com"], None))
    a = ingress.collect(inv, Scope(), NOW)[0]
    assert a.controller == "traefik"
    # Traefik's own policy applies (TLSOption default VersionTLS12), not ingress-nginx's ConfigMap.
    assert a.tls_policy.controller == "traefik" and a.tls_policy.protocols == ["TLSv1.2", "TLSv1.3"]


def test_no_controller_makes_policy_unknown() -> None:
    inv = inventory(nginx()[1], an_ingress(["a.example.com"], None))
    a = ingress.collect(inv, Scope(), NOW)[0]
    assert a.controller is None and "tls_policy" in {u.field for u in a.unknown}


# --- namespaces ---------------------------------------------------------------------------------------

def ns_obj(name: str, scope: str | None = None) -> dict:
    labels = {"kubernetes.io/metadata.name": name}
    if scope:
        labels["pci.auditpack.io/scope"] = scope
    return obj("v1", "Namespace", name, labels=labels)


def test_default_deny_detection_and_policy_type_inference() -> None:
    inv = inventory(
        ns_obj("cde", "cde"), ns_obj("web", "connected"), ns_obj("other"),
        netpol("deny-all", "cde", types=["Ingress", "Egress"]),
        # No policyTypes and no egress rules: the API infers Ingress only.
        netpol("deny-in", "web"),
        netpol("allow-all-in", "web", selector={}, ingress=[{}]),
        pod("api-1", "cde", {"app": "api"}), pod("web-1", "web", {"app": "web"}))
    got = {s.name: s for s in namespaces.collect(inv, Scope(), NOW)}
    assert got["cde"].default_deny_ingress and got["cde"].default_deny_egress and got["cde"].in_scope
    assert not got["web"].default_deny_ingress  # the allow-all rule undoes the deny
    assert got["web"].allow_all_ingress_policies == ["allow-all-in"]
    assert not got["web"].default_deny_egress
    assert got["other"].scope_class == "unclassified" and not got["other"].in_scope  # scope was declared by labels


def test_pods_not_selected_by_owner() -> None:
    rs = obj("apps/v1", "ReplicaSet", "cart-abc", "shop")
    rs["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "cart", "controller": True}]
    inv = inventory(
        ns_obj("shop", "connected"),
        rs,
        obj("apps/v1", "Deployment", "cart", "shop"),
        netpol("web-only", "shop", selector={"matchLabels": {"app": "web"}}),
        pod("web-1", "shop", {"app": "web"}), pod("cart-abc-1", "shop", {"app": "cart"}, owner=("ReplicaSet", "cart-abc")),
        pod("done", "shop", {"app": "job"}, phase="Succeeded"))
    s = namespaces.collect(inv, Scope(), NOW)[0]
    assert s.pods_not_selected == ["Deployment/cart"] and s.pods == 2


def test_pods_derived_from_templates_when_snapshot_has_none() -> None:
    inv = inventory(ns_obj("shop", "connected"), deployment("cart", "shop", "x"), absent=("Pod",))
    s = namespaces.collect(inv, Scope(), NOW)[0]
    assert s.pods == 1 and s.pods_not_selected == ["Deployment/cart"]
    assert "derived from workload templates" in s.scope_reason


def test_no_scope_declared_means_everything_in_scope_and_denied_policies_unknown() -> None:
    inv = inventory(ns_obj("a"), ns_obj("kube-system"), denied=("NetworkPolicy",))
    got = {s.name: s for s in namespaces.collect(inv, Scope(), NOW)}
    assert got["a"].in_scope and got["kube-system"].scope_class == "system"
    assert {u.field for u in got["a"].unknown} >= {"default_deny_ingress", "default_deny_egress"}


# Operator-managed pods of PrometheusAgent and ThanosRuler, from the resource alone. Names and labels as
# prometheus-operator sets them: pkg/prometheus/common.go (Prefix: "prom-agent", prometheusNameByShard: "-shard-<n>"),
# pkg/prometheus/agent/operator.go makeSelectorLabels (app.kubernetes.io/name=prometheus-agent, managed-by,
# instance, operator.prometheus.io/name), agent/statefulset.go (operator.prometheus.io/shard, port 9090 unless
# listenLocal) and agent/daemonset.go (spec.mode DaemonSet: DaemonSet prom-agent-<name>, no shard label);
# pkg/thanos/statefulset.go (StatefulSet thanos-ruler-<name>, ports grpc 10901 and web 10902) and
# pkg/thanos/operator.go makeSelectorLabels (app.kubernetes.io/name=thanos-ruler, thanos-ruler=<name>).
# https://github.com/prometheus-operator/prometheus-operator
AGENT_LABELS = {"app.kubernetes.io/component": "prometheus-agent", "team": "observability"}


def _workload(inv, ns: str, name: str):
    facts = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace" and s.name == ns)
    return facts, next(w for w in facts.workloads if w.name == name)


def test_prometheus_agent_pods_exist_with_only_the_custom_resource() -> None:
    agent = obj("monitoring.coreos.com/v1alpha1", "PrometheusAgent", "agent", "monitoring",
                spec={"replicas": 2, "podMetadata": {"labels": AGENT_LABELS}, "remoteWrite": [{"url": "http://x"}]})
    # A policy that selects the agent's pods only by a podMetadata label, and one by the operator's own.
    by_team = netpol("agent-egress", "monitoring", selector={"matchLabels": {"team": "observability"}},
                     types=["Egress"], egress=[{}])
    by_name = netpol("agent-ingress", "monitoring",
                     selector={"matchLabels": {"app.kubernetes.io/name": "prometheus-agent"}}, types=["Ingress"])
    inv = inventory(ns_obj("monitoring"), agent, by_team, by_name, absent=("Pod",))
    facts, w = _workload(inv, "monitoring", "PrometheusAgent/agent")
    # Derived like every workload without observed pods: one pod per StatefulSet template (replicas are not
    # multiplied, as for a Deployment or a Prometheus), selected by both policies.
    assert w.derived and w.pods == 1 and w.ingress_isolated and w.egress_isolated
    assert facts.pods == 1 and facts.pods_not_selected == [] and facts.policies_selecting_nothing == []
    view = next(v for v in pods(inv)[0] if v.owner == "PrometheusAgent/agent")
    assert view.name == "prom-agent-agent-<PrometheusAgent template>"
    assert view.labels == {**AGENT_LABELS, "app.kubernetes.io/name": "prometheus-agent",
                           "app.kubernetes.io/managed-by": "prometheus-operator",
                           "app.kubernetes.io/instance": "agent", "operator.prometheus.io/name": "agent",
                           "operator.prometheus.io/shard": "0"}
    assert view.containers == [{"name": "prometheus", "ports": [{"name": "web", "containerPort": 9090,
                                                                  "protocol": "TCP"}]}]

    # Two shards: two StatefulSets, prom-agent-<name> and prom-agent-<name>-shard-1; DaemonSet mode: one DaemonSet.
    sharded = obj("monitoring.coreos.com/v1alpha1", "PrometheusAgent", "wide", "monitoring",
                  spec={"replicas": 2, "shards": 2, "listenLocal": True})
    daemon = obj("monitoring.coreos.com/v1alpha1", "PrometheusAgent", "node", "monitoring", spec={"mode": "DaemonSet"})
    views = pods(inventory(ns_obj("monitoring"), sharded, daemon, absent=("Pod",)))[0]
    wide = sorted((v.name, v.labels["operator.prometheus.io/shard"], v.containers[0]["ports"])
                  for v in views if v.owner == "PrometheusAgent/wide")
    assert wide == [("prom-agent-wide-<PrometheusAgent template>", "0", []),
                    ("prom-agent-wide-shard-1-<PrometheusAgent template>", "1", [])]
    node_view = next(v for v in views if v.owner == "PrometheusAgent/node")
    assert node_view.name == "prom-agent-node-<DaemonSet template>"
    assert "operator.prometheus.io/shard" not in node_view.labels


def test_prometheus_agent_pods_observed_through_their_statefulset_are_its_own() -> None:
    """Real pods prom-agent-agent-0/1 owned by StatefulSet prom-agent-agent, which is not in the input: they are the
    PrometheusAgent's 2 pods (the operator's StatefulSet name), counted once, not a second workload."""
    agent = obj("monitoring.coreos.com/v1alpha1", "PrometheusAgent", "agent", "monitoring",
                spec={"replicas": 2, "podMetadata": {"labels": AGENT_LABELS}})
    running = [pod(f"prom-agent-agent-{i}", "monitoring", {**AGENT_LABELS, "app.kubernetes.io/name": "prometheus-agent"},
                   owner=("StatefulSet", "prom-agent-agent")) for i in (0, 1)]
    _, w = _workload(inventory(ns_obj("monitoring"), agent, *running), "monitoring", "PrometheusAgent/agent")
    assert w.pods == 2 and not w.derived


def test_thanos_ruler_pods_exist_with_only_the_custom_resource() -> None:
    ruler = obj("monitoring.coreos.com/v1", "ThanosRuler", "ruler", "monitoring",
                spec={"replicas": 2, "podMetadata": {"labels": {"team": "observability"}},
                      "queryEndpoints": ["dnssrv+_http._tcp.thanos-query.monitoring.svc"]})
    only_team = netpol("ruler", "monitoring", selector={"matchLabels": {"team": "observability"}},
                       types=["Ingress"], ingress=[{"ports": [{"port": 10901, "protocol": "TCP"}]}])
    inv = inventory(ns_obj("monitoring"), ruler, only_team, absent=("Pod",))
    facts, w = _workload(inv, "monitoring", "ThanosRuler/ruler")
    assert w.derived and w.pods == 1 and w.ingress_isolated and facts.policies_selecting_nothing == []
    view = next(v for v in pods(inv)[0] if v.owner == "ThanosRuler/ruler")
    assert view.name == "thanos-ruler-ruler-<ThanosRuler template>"
    assert view.labels == {"team": "observability", "app.kubernetes.io/name": "thanos-ruler",
                           "app.kubernetes.io/managed-by": "prometheus-operator",
                           "app.kubernetes.io/instance": "ruler", "thanos-ruler": "ruler"}
    assert [(p["name"], p["containerPort"]) for p in view.containers[0]["ports"]] == [("grpc", 10901), ("web", 10902)]
    # Its real pods, owned by StatefulSet thanos-ruler-ruler (not in the input), belong to the resource.
    running = pod("thanos-ruler-ruler-0", "monitoring", {"team": "observability"},
                  owner=("StatefulSet", "thanos-ruler-ruler"))
    _, w = _workload(inventory(ns_obj("monitoring"), ruler, running), "monitoring", "ThanosRuler/ruler")
    assert w.pods == 1 and not w.derived


def test_operator_resources_read_from_a_snapshot_keep_their_pod_labels(tmp_path) -> None:
    """Through the real snapshot source, redactor included: the podMetadata labels, portName and PrometheusAgent's
    mode survive redaction (redact.CR_KEEP), so the derived pods carry them and policies select them."""
    from evidence.sources import snapshot

    docs = [{"apiVersion": f"monitoring.coreos.com/{api}", "kind": kind, "metadata": {"name": "x", "namespace": "mon"},
             "spec": {"replicas": 2, "portName": "http", "podMetadata": {"labels": {"team": "observability"}}, **extra}}
            for api, kind, extra in (("v1alpha1", "PrometheusAgent", {"mode": "DaemonSet"}), ("v1", "ThanosRuler", {}),
                                     ("v1", "Prometheus", {}), ("v1", "Alertmanager", {}))]
    (tmp_path / "operator.yaml").write_text(yaml.safe_dump_all(docs))
    views = {v.owner: v for v in pods(snapshot.load(tmp_path))[0]}
    assert set(views) == {"PrometheusAgent/x", "ThanosRuler/x", "Prometheus/x", "Alertmanager/x"}
    assert all(v.labels["team"] == "observability" and v.derived for v in views.values())
    assert views["PrometheusAgent/x"].name == "prom-agent-x-<DaemonSet template>"
    assert [p["name"] for p in views["ThanosRuler/x"].containers[0]["ports"]] == ["grpc", "http"]


# --- cluster ------------------------------------------------------------------------------------------

def ds(name: str, ns: str = "kube-system", containers: list | None = None, env: list | None = None) -> dict:
    cs = containers or [{"name": name, "image": f"example/{name}:1", "env": env or []}]
    return obj("apps/v1", "DaemonSet", name, ns, spec={"template": {"spec": {"containers": cs}}})


def test_calico_wireguard_per_node_and_links() -> None:
    wg = {"projectcalico.org/WireguardPublicKey": "k"}
    inv = inventory(ds("calico-node"), node("a1", "r1", wg), node("a2", "r1", wg), node("b1", "r2"),
                    obj("crd.projectcalico.org/v1", "FelixConfiguration", "default", spec={"wireguardEnabled": True}))
    c = cluster.collect(inv, Scope(), NOW)[0]
    assert c.cni.name == "calico" and c.cni.enforces_network_policy
    assert c.node_encryption.configured and c.node_encryption.nodes_inactive == ["b1"]
    assert c.untrusted_links == 1 and c.untrusted_links_unencrypted == 1
    assert c.links[0].unencrypted_nodes == ["b1"]


def test_calico_env_override_and_scope_sites() -> None:
    wg = {"projectcalico.org/WireguardPublicKey": "k"}
    inv = inventory(ds("calico-node", env=[{"name": "FELIX_WIREGUARDENABLED", "value": "false"}]),
                    node("a1", "r1", wg), node("b1", "r1", wg),
                    obj("crd.projectcalico.org/v1", "FelixConfiguration", "default", spec={"wireguardEnabled": True}))
    scope = Scope(sites=[Site(name="x", node_selector={"kubernetes.io/hostname": "a1"}),
                         Site(name="y", node_selector={"kubernetes.io/hostname": "b1"})],
                  untrusted_links=[("x", "y")])
    c = cluster.collect(inv, scope, NOW)[0]
    assert not c.node_encryption.configured and "FELIX_WIREGUARDENABLED" in c.node_encryption.configured_source
    assert c.untrusted_links_unencrypted == 1 and c.sites_spanned == 2


def test_cni_enforcement_variants() -> None:
    def cni(*objs: dict):
        return cluster.collect(inventory(*objs), Scope(), NOW)[0].cni

    audit = obj("v1", "ConfigMap", "cilium-config", "kube-system", data={"policy-audit-mode": "true"})
    assert not cni(ds("cilium"), audit).enforces_network_policy
    assert cni(ds("cilium"), obj("v1", "ConfigMap", "cilium-config", "kube-system", data={})).enforces_network_policy
    assert not cni(ds("kube-flannel-ds", "kube-flannel")).enforces_network_policy
    netpols = ds("kube-flannel-ds", "kube-flannel", containers=[{"name": "kube-flannel"},
                                                                 {"name": "kube-network-policies"}])
    assert cni(netpols).enforces_network_policy
    assert not cni(ds("aws-node")).enforces_network_policy


def test_flannel_backend_encryption() -> None:
    cfg = obj("v1", "ConfigMap", "kube-flannel-cfg", "kube-flannel",
              data={"net-conf.json": json.dumps({"Network": "10.244.0.0/16", "Backend": {"Type": "wireguard"}})})
    inv = inventory(ds("kube-flannel-ds", "kube-flannel"), cfg,
                    node("a", "r1", {"flannel.alpha.coreos.com/backend-type": "wireguard"}), node("b", "r2"))
    c = cluster.collect(inv, Scope(), NOW)[0]
    assert c.node_encryption.mechanism == "wireguard" and c.node_encryption.nodes_inactive == ["b"]


def test_apiserver_flags_or_unknown() -> None:
    api = pod("kube-apiserver-a", "kube-system", {"component": "kube-apiserver"})
    api["spec"]["containers"][0]["command"] = ["kube-apiserver", "--audit-policy-file=/p.yaml",
                                               "--audit-log-path=/var/log/a.log"]
    c = cluster.collect(inventory(api), Scope(), NOW)[0]
    assert c.audit_logging and c.apiserver_flags["audit-log-path"] == "/var/log/a.log"
    managed = cluster.collect(inventory(), Scope(), NOW)[0]
    assert managed.audit_logging is None and "audit_logging" in {u.field for u in managed.unknown}


# --- monitoring ---------------------------------------------------------------------------------------

def test_log_shipper_coverage_and_output() -> None:
    fb = ds("fluent-bit", "logging", containers=[{"name": "fb", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1"}])
    fb["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "fluent-bit"}}]
    cm = obj("v1", "ConfigMap", "fluent-bit", "logging", data={"fluent-bit.conf": "[OUTPUT]\n  Name loki\n"})
    inv = inventory(fb, cm, node("a"), node("b"),
                    pod("fb-1", "logging", {}, node="a", owner=("DaemonSet", "fluent-bit")),
                    obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring", spec={}))
    m = monitoring.collect(inv, Scope(), NOW)[0]
    assert m.nodes_without_log_shipper == ["b"] and m.log_shippers[0].output_configured
    assert m.prometheus == ["monitoring/k8s"] and m.prometheus_retention == "24h (operator default)"
    assert m.alertmanager == []


def test_no_node_read_makes_shipper_coverage_inconclusive_not_zero_of_zero() -> None:
    """Fluent Bit as its Helm chart deploys it (fluent/helm-charts charts/fluent-bit: a DaemonSet mounting the
    `fluent-bit` ConfigMap with an [OUTPUT] section), in a snapshot that holds no Node: "every one of 0 nodes runs
    a shipper" is not evidence, so coverage is unknown and the control is inconclusive, not a pass."""
    from evidence.controls import load_catalogue
    from evidence.evaluate import evaluate_subject, scope_variables

    fb = ds("fluent-bit", "logging", containers=[{"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9"}])
    fb["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "fluent-bit"}}]
    cm = obj("v1", "ConfigMap", "fluent-bit", "logging", data={
        "fluent-bit.conf": "[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n"
                           "[OUTPUT]\n    Name es\n    Match kube.*\n    Host elasticsearch-master\n"})
    inv = inventory(fb, cm, absent=("Node",))
    m = monitoring.collect(inv, Scope(), NOW)[0]
    assert m.nodes == [] and "nodes_without_log_shipper" in m.unknown_fields()
    control = next(c for c in load_catalogue().controls if c.id == "logging.shipper-coverage")
    finding = evaluate_subject(control, m.model_dump(mode="json"), scope_variables(Scope()))
    assert finding.status == "inconclusive"
