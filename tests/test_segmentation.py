"""Segmentation end to end: flows into the CDE from the engine, approvals, enforcement, and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml
from conftest import SAMPLE, SCOPE
from helpers import NOW, deployment, inventory, netpol, obj, pod

from evidence.collectors import collect_all, namespaces
from evidence.collectors.workloads import pods
from evidence.controls import load_catalogue
from evidence.evaluate import Finding, evaluate, evaluate_subject, scope_variables
from evidence.facts import NamespaceFacts
from evidence.netpol.engine import engine_from_inventory
from evidence.netpol.model import ConnSet
from evidence.scope import Scope
from evidence.scope import load as load_scope
from evidence.sources import snapshot

AS_OF = datetime(2026, 11, 21, 6, tzinfo=UTC)


def results(sample: Path):
    inv = snapshot.load(sample)
    scope = load_scope(SCOPE)
    return evaluate(load_catalogue(), collect_all(inv, scope, AS_OF), scope, inv.log)


def test_flows_into_cde_and_their_approval() -> None:
    r = results(SAMPLE)
    flows = {f.subject_id: f for f in r.findings if f.control == "segmentation.cde-inbound-approved"}
    approved = "ingress-nginx/ingress-nginx-controller[Deployment] -> payments/payment-api[Deployment]"
    scrape = "monitoring/k8s[Prometheus] -> payments/payment-api[Deployment]"
    assert flows[approved].status == "pass"
    assert flows[scrape].status == "fail"
    assert "TCP 9090" in flows[scrape].message and "payments/allow-monitoring-scrape" in flows[scrape].message
    assert any(e.kind == "NetworkPolicy" and e.name == "allow-monitoring-scrape" for e in flows[scrape].evidence)
    justified = {f.subject_id: f.status for f in r.findings if f.control == "segmentation.cde-rules-justified"}
    assert justified[approved] == "pass" and justified[scrape] == "fail"
    egress = {f.subject_id: f.status for f in r.findings if f.control == "segmentation.cde-egress-internet"}
    assert egress == {"payments": "pass", **{k: "not_applicable" for k in egress if k != "payments"}}


def test_unenforced_policies_fail_every_policy_control(sample_copy: Path) -> None:
    """Swap Calico for Flannel: the same policies now protect nothing."""
    path = sample_copy / "kube-system.yaml"
    doc = yaml.safe_load(path.read_text())
    for item in doc["items"]:
        if item["kind"] == "DaemonSet" and item["metadata"]["name"] == "calico-node":
            item["metadata"]["name"] = "kube-flannel-ds"
    path.write_text(yaml.safe_dump(doc))
    r = results(sample_copy)
    for control in ("segmentation.default-deny-ingress", "segmentation.cde-inbound-approved",
                    "segmentation.cde-egress-internet", "segmentation.policy-enforced"):
        failing = [f for f in r.findings if f.control == control and f.status == "fail"]
        assert failing, control
    payments = next(f for f in r.findings if f.control == "segmentation.default-deny-ingress"
                    and f.subject_id == "payments")
    assert payments.status == "fail" and payments.message.startswith("policies are not enforced: flannel")
    assert any(e.kind == "DaemonSet" for e in payments.evidence)


def test_segmentation_cli_json_and_text(cli) -> None:
    out = cli("segmentation", "--snapshot", SAMPLE, "--format", "json")
    assert out.code == 0, out.err
    flows = json.loads(out.out)
    assert {"src": "payments/payment-api[Deployment]", "dst": "payments/payments-db[StatefulSet]",
            "conns": [{"protocol": "TCP", "ports": [[5432, 5432]]}]} in flows
    # storefront has no default deny: the internet reaches its web front end on every port.
    assert any(f["dst"] == "storefront/cart[Deployment]" and f["src"] == "0.0.0.0/0" and f["conns"] == "all"
               for f in flows)
    text = cli("segmentation", "--snapshot", SAMPLE, "--namespace", "payments")
    assert text.code == 0 and "monitoring/k8s[Prometheus]" in text.out and "TCP 9090" in text.out
    assert "allowed flows" in text.err


def test_pdf_and_workbook_show_segmentation(demo_pack: Path) -> None:
    import openpyxl
    from pypdf import PdfReader

    text = " ".join((p.extract_text() or "") for p in PdfReader(demo_pack / "report.pdf").pages).replace("\n", " ")
    assert "Flows into the CDE" in text and "Namespace reachability matrix" in text
    assert "allow-monitoring-scrape" in text
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    flows = list(wb["Flows into CDE"].iter_rows(min_row=2, values_only=True))
    assert flows[0][0] == "fail" and flows[-1][0] == "pass"  # unapproved first
    matrix = list(wb["Segmentation matrix"].iter_rows(min_row=2, values_only=True))
    assert ("monitoring", "unclassified", "payments", "cde", "yes") in matrix


def test_policy_writers_from_rbac() -> None:
    r = results(SAMPLE)
    f = next(f for f in r.findings if f.control == "segmentation.policy-admins")
    assert f.status == "fail"
    assert "Group oidc:platform-admins (cluster-wide, ClusterRoleBinding/platform-admins -> ClusterRole/cluster-admin)" \
        in f.message
    assert "system:masters" not in f.message  # a built-in: listed in the facts, not counted
    assert any(e.kind == "ClusterRoleBinding" and e.name == "platform-admins" for e in f.evidence)


# --- issue 13: workloads and pods, segmentation from the engine ----------------------------------------------------
# Inventories below are built from realistic upstream-shaped manifests written for these tests; each cites the
# upstream source whose shape (names, labels, ports, policy form) it follows.

def _finding(control_id: str, subject: NamespaceFacts, scope: Scope | None = None) -> Finding:
    """The control's verdict on the subject, with the CNI taken as enforcing (these inventories hold no CNI)."""
    control = next(c for c in load_catalogue().controls if c.id == control_id)
    data = subject.model_dump(mode="json")
    data["policies_enforced"] = True
    data["unknown"] = [u for u in data["unknown"] if u["field"] != "policies_enforced"]
    return evaluate_subject(control, data, scope_variables(scope or Scope()))


def _boutique_deployment(name: str, port: int) -> dict:
    """An Online Boutique service as in GoogleCloudPlatform/microservices-demo release/kubernetes-manifests.yaml:
    label app=<name>, one container port, and no metadata.namespace (the manifests are applied to `default`)."""
    d = obj("apps/v1", "Deployment", name, spec={"selector": {"matchLabels": {"app": name}}, "template": {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "server", "image": f"us-central1-docker.pkg.dev/google-samples/"
                                 f"microservices-demo/{name}:v0.10.2", "ports": [{"containerPort": port}]}]}}})
    return d


def _boutique_policy(name: str, spec: dict) -> dict:
    """kustomize/components/network-policies/network-policy-<name>.yaml of microservices-demo, namespace left out."""
    return obj("networking.k8s.io/v1", "NetworkPolicy", name, spec=spec)


BOUTIQUE_POLICIES = [
    # network-policy-deny-all.yaml: every pod, both directions, no rules.
    _boutique_policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    # network-policy-frontend.yaml: `ingress: [{}]`, `egress: [{}]`: the frontend admits and reaches everything.
    _boutique_policy("frontend", {"podSelector": {"matchLabels": {"app": "frontend"}},
                                  "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}),
    # network-policy-checkoutservice.yaml / network-policy-paymentservice.yaml: one caller, one port.
    _boutique_policy("checkoutservice", {"podSelector": {"matchLabels": {"app": "checkoutservice"}},
                                         "policyTypes": ["Ingress", "Egress"], "egress": [{}], "ingress": [
                                             {"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                                              "ports": [{"port": 5050, "protocol": "TCP"}]}]}),
    _boutique_policy("paymentservice", {"podSelector": {"matchLabels": {"app": "paymentservice"}},
                                        "policyTypes": ["Ingress", "Egress"], "egress": [{}], "ingress": [
                                            {"from": [{"podSelector": {"matchLabels": {"app": "checkoutservice"}}}],
                                             "ports": [{"port": 50051, "protocol": "TCP"}]}]}),
]

# helm/helm pkg/chartutil/create.go (defaultTestConnection): the test pod `helm create` scaffolds, a bare Pod with the
# "helm.sh/hook: test" annotation. Rendered with `helm template`, it carries no namespace and no status.
HELM_TEST_POD = obj("v1", "Pod", "boutique-test-connection",
                    labels={"app.kubernetes.io/name": "boutique", "app.kubernetes.io/instance": "boutique"},
                    annotations={"helm.sh/hook": "test"},
                    spec={"containers": [{"name": "wget", "image": "busybox", "command": ["wget"],
                                          "args": ["boutique:80"]}], "restartPolicy": "Never"})


def _boutique() -> list[dict]:
    return [_boutique_deployment("frontend", 8080), _boutique_deployment("checkoutservice", 5050),
            _boutique_deployment("paymentservice", 50051), _boutique_deployment("cartservice", 7070),
            _boutique_deployment("redis-cart", 6379), *BOUTIQUE_POLICIES, HELM_TEST_POD]


def test_one_real_pod_does_not_switch_off_template_derivation() -> None:
    """A Helm test pod is the only Pod in the input: every workload still gets its pods from its template."""
    inv = inventory(*_boutique())
    views, derived = pods(inv)
    owners = sorted(v.owner for v in views)
    assert derived and owners == ["Deployment/cartservice", "Deployment/checkoutservice", "Deployment/frontend",
                                  "Deployment/paymentservice", "Deployment/redis-cart",
                                  "Pod/boutique-test-connection"]
    assert [v.derived for v in views if v.owner.startswith("Pod/")] == [False]
    ns = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace")
    assert ns.name == "default" and ns.pods == 6
    assert "derived from workload templates" in ns.scope_reason and "no Namespace object" in ns.scope_reason


def test_manifests_without_namespace_belong_to_default() -> None:
    """kubectl applies a manifest without metadata.namespace to `default`; flows and workloads say so."""
    inv = inventory(*_boutique())
    subjects = namespaces.collect(inv, Scope.model_validate({"namespaces": {"cde": ["default"]}}), NOW)
    flows = [s for s in subjects if s.TYPE == "cde_flow"]
    assert flows and not any("None" in f.id for f in flows)
    assert {f.dst for f in flows} == {"default/frontend[Deployment]"}  # only the frontend admits the outside
    assert all(f.dst_namespace == "default" for f in flows)
    # The admitting policy is found under its defaulted namespace: named, cited, and its annotation read.
    assert all(f.policies == ["default/frontend"] and f.unjustified_policies == ["default/frontend"] for f in flows)
    assert all(any(e.kind == "NetworkPolicy" and e.name == "frontend" for e in f.evidence) for f in flows)
    assert all(w.startswith("default/") for w in engine_from_inventory(inv).workloads)


def test_allow_all_on_one_pod_keeps_the_namespace_default_deny() -> None:
    """Online Boutique: deny-all plus a frontend policy with `ingress: [{}]`. The default deny still holds for every
    other workload; the frontend is reported as open, and nothing says the namespace has no default deny."""
    inv = inventory(obj("v1", "Namespace", "default"), *_boutique())
    ns = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace")
    assert ns.default_deny_ingress and ns.default_deny_egress  # was a false fail: "allow-all ingress in: frontend"
    assert ns.default_deny_policies == ["deny-all"]
    assert ns.open_ingress_workloads == [
        "Deployment/frontend (admits every pod in the cluster and every public address on every port: "
        "default/frontend)"]
    assert ns.allow_all_ingress_policies == ["frontend"] and ns.pods_not_selected == []
    payment = next(w for w in ns.workloads if w.name == "Deployment/paymentservice")
    assert payment.ingress_isolated and payment.admits_any_pod == [] and payment.admits_internet == []
    assert _finding("segmentation.default-deny-ingress", ns).status == "pass"


def test_namespace_selector_all_on_every_pod_is_not_default_deny() -> None:
    """`podSelector: {}` with `from: [{namespaceSelector: {}}]` (the form of kubernetes-network-policy-recipes
    05-allow-traffic-from-all-namespaces.md, applied to every pod) isolates every pod and admits every pod of every
    namespace: not a default deny, and the message says why. Recipe 04 (deny from other namespaces) still is one."""
    allow_all_ns = obj("networking.k8s.io/v1", "NetworkPolicy", "allow-all-namespaces", "shop", spec={
        "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]})
    same_ns = obj("networking.k8s.io/v1", "NetworkPolicy", "deny-from-other-namespaces", "books", spec={
        "podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    inv = inventory(obj("v1", "Namespace", "shop"), obj("v1", "Namespace", "books"),
                    deployment("web", "shop", "nginx:1.27"), deployment("web", "books", "nginx:1.27"),
                    allow_all_ns, same_ns)
    got = {s.name: s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace"}
    shop = got["shop"]
    assert not shop.default_deny_ingress  # was a false pass: the shape "podSelector {}" counted as default deny
    assert shop.baseline_ingress_isolated
    assert shop.baseline_ingress_admits == ["every pod in the cluster"]
    assert shop.baseline_ingress_policies == ["allow-all-namespaces"]
    f = _finding("segmentation.default-deny-ingress", shop)
    assert f.status == "fail"
    assert "admit every pod in the cluster on every port (allow-all-namespaces)" in (f.message or "")
    assert "has no default-deny" not in (f.message or "")
    assert got["books"].default_deny_ingress and got["books"].default_deny_policies == ["deny-from-other-namespaces"]


def test_policy_selecting_no_pod_is_reported() -> None:
    """A label typo in Online Boutique's paymentservice policy: it selects nothing, and is reported."""
    typo = _boutique_policy("paymentservice", {"podSelector": {"matchLabels": {"app": "paymentsevice"}},
                                               "policyTypes": ["Ingress"], "ingress": []})
    inv = inventory(*[o for o in _boutique() if o["metadata"]["name"] != "paymentservice"
                      or o["kind"] != "NetworkPolicy"], typo)
    ns = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace")
    assert ns.policies_selecting_nothing == ["paymentservice"]
    f = _finding("segmentation.policy-targets", ns)
    assert f.status == "fail" and "paymentservice" in (f.message or "")


# prometheus-operator/kube-prometheus manifests/prometheus-prometheus.yaml and alertmanager-alertmanager.yaml: the
# custom resources with spec.podMetadata labels; prometheus-networkPolicy.yaml selects the pods by those labels.
KP_PROM_LABELS = {"app.kubernetes.io/component": "prometheus", "app.kubernetes.io/instance": "k8s",
                  "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "kube-prometheus"}
KP_AM_LABELS = {"app.kubernetes.io/component": "alert-router", "app.kubernetes.io/instance": "main",
                "app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/part-of": "kube-prometheus"}


def _kube_prometheus() -> list[dict]:
    prom = obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring", labels=KP_PROM_LABELS,
               spec={"podMetadata": {"labels": {**KP_PROM_LABELS, "app.kubernetes.io/version": "2.54.1"}},
                     "replicas": 2, "serviceAccountName": "prometheus-k8s", "version": "2.54.1"})
    am = obj("monitoring.coreos.com/v1", "Alertmanager", "main", "monitoring", labels=KP_AM_LABELS,
             spec={"podMetadata": {"labels": KP_AM_LABELS}, "replicas": 3})
    grafana = deployment("grafana", "monitoring", "grafana/grafana:11.2.0",
                         labels={"app.kubernetes.io/component": "grafana", "app.kubernetes.io/name": "grafana",
                                 "app.kubernetes.io/part-of": "kube-prometheus"})
    prom_np = obj("networking.k8s.io/v1", "NetworkPolicy", "prometheus-k8s", "monitoring", spec={
        "podSelector": {"matchLabels": KP_PROM_LABELS}, "policyTypes": ["Egress", "Ingress"], "egress": [{}],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                     "ports": [{"port": 9090, "protocol": "TCP"}, {"port": 8080, "protocol": "TCP"}]},
                    {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}],
                     "ports": [{"port": 9090, "protocol": "TCP"}]}]})
    am_np = obj("networking.k8s.io/v1", "NetworkPolicy", "alertmanager-main", "monitoring", spec={
        "podSelector": {"matchLabels": KP_AM_LABELS}, "policyTypes": ["Egress", "Ingress"], "egress": [{}],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                     "ports": [{"port": 9093, "protocol": "TCP"}, {"port": 8080, "protocol": "TCP"}]},
                    {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}}],
                     "ports": [{"port": 9094, "protocol": "TCP"}, {"port": 9094, "protocol": "UDP"}]}]})
    return [obj("v1", "Namespace", "monitoring"), prom, am, grafana, prom_np, am_np]


def test_operator_managed_pods_exist_with_only_the_custom_resources() -> None:
    """Only the Prometheus and Alertmanager resources are in the input: their pods exist all the same, with the
    operator's labels merged over spec.podMetadata, so the policies select them and Grafana reaches Prometheus."""
    inv = inventory(*_kube_prometheus())
    engine = engine_from_inventory(inv)
    assert {"monitoring/k8s[Prometheus]", "monitoring/main[Alertmanager]"} <= set(engine.workloads)
    assert engine.allowed("monitoring/grafana[Deployment]", "monitoring/k8s[Prometheus]") == ConnSet.of("TCP", 9090)
    assert engine.allowed("monitoring/k8s[Prometheus]", "monitoring/main[Alertmanager]") \
        == ConnSet({"TCP": [(8080, 8080), (9093, 9093)]})
    assert engine.allowed("monitoring/grafana[Deployment]", "monitoring/main[Alertmanager]").is_empty()
    view = next(v for v in pods(inv)[0] if v.owner == "Prometheus/k8s")
    # The operator's own labels (prometheus-operator pkg/prometheus/server/statefulset.go, podSelectorLabels).
    assert view.labels["prometheus"] == "k8s" and view.labels["app.kubernetes.io/managed-by"] == "prometheus-operator"
    assert view.labels["operator.prometheus.io/shard"] == "0" and view.labels["app.kubernetes.io/part-of"] \
        == "kube-prometheus"
    ns = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace")
    assert ns.policies_selecting_nothing == [] and ns.pods == 3
    assert ns.pods_not_selected == ["Deployment/grafana"]


def test_operator_pods_observed_through_their_statefulset_are_not_doubled() -> None:
    """Real pods `prometheus-k8s-0/1` owned by StatefulSet prometheus-k8s, which is not in the input: they are the
    Prometheus resource's pods (the operator names the StatefulSet prometheus-<name>), not a second workload."""
    objs = _kube_prometheus()
    for i in (0, 1):
        p = pod(f"prometheus-k8s-{i}", "monitoring", {**KP_PROM_LABELS, "prometheus": "k8s"},
                owner=("StatefulSet", "prometheus-k8s"))
        objs.append(p)
    views, _ = pods(inventory(*objs))
    prom = [v for v in views if v.owner == "Prometheus/k8s"]
    assert [v.derived for v in prom] == [False, False]


def test_cronjob_stays_in_the_picture_after_its_pods_completed() -> None:
    """A CronJob whose last Job's pod Succeeded (kubernetes.io CronJob docs: the controller names each Job
    <cronjob>-<scheduled time>) still reaches what its template's pods would reach: it runs again. The Job object
    itself was not collected; the pod's owner name tells which CronJob it belongs to."""
    cron = obj("batch/v1", "CronJob", "settlement-export", "payments", spec={
        "schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"app": "settlement-export"}},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "export", "image": "example/export:1"}]}}}}})
    done = pod("settlement-export-29381520-x7k2p", "payments", {"app": "settlement-export"},
               owner=("Job", "settlement-export-29381520"), phase="Succeeded")
    web = pod("web-1", "payments", {"app": "web"})
    inv = inventory(obj("v1", "Namespace", "payments"), cron, done, web)
    views, derived = pods(inv)
    assert derived and sorted(v.owner for v in views) == ["CronJob/settlement-export", "Pod/web-1"]
    engine = engine_from_inventory(inv)
    assert "payments/settlement-export[CronJob]" in engine.workloads
    assert engine.allowed("payments/settlement-export[CronJob]", "8.8.8.8") == ConnSet.all()


def test_host_network_pods_in_the_cde_are_a_finding() -> None:
    """kube-prometheus' node-exporter DaemonSet (manifests/nodeExporter-daemonset.yaml: hostNetwork, hostPID, the
    kube-rbac-proxy sidecar on hostPort 9100) placed in a CDE namespace."""
    ds = obj("apps/v1", "DaemonSet", "node-exporter", "payments", spec={"template": {
        "metadata": {"labels": {"app.kubernetes.io/name": "node-exporter"}},
        "spec": {"hostNetwork": True, "hostPID": True, "containers": [
            {"name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.8.2",
             "args": ["--web.listen-address=127.0.0.1:9101"]},
            {"name": "kube-rbac-proxy", "image": "quay.io/brancz/kube-rbac-proxy:v0.18.1",
             "ports": [{"containerPort": 9100, "hostPort": 9100, "name": "https"}]}]}}})
    deny = netpol("default-deny", "payments", types=["Ingress", "Egress"])
    inv = inventory(obj("v1", "Namespace", "payments"), ds, deny, deployment("api", "payments", "example/api:1"))
    scope = Scope.model_validate({"namespaces": {"cde": ["payments"]}})
    ns = next(s for s in namespaces.collect(inv, scope, NOW) if s.TYPE == "namespace")
    assert ns.host_network_workloads == ["DaemonSet/node-exporter"]
    assert ns.host_port_workloads == ["DaemonSet/node-exporter (TCP 9100)"]
    f = _finding("segmentation.host-network", ns, scope)
    assert f.status == "fail" and "DaemonSet/node-exporter (TCP 9100)" in (f.message or "")
    ns.host_port_workloads = []
    f = _finding("segmentation.host-network", ns, scope)
    assert f.status == "fail" and "CDE namespace payments runs pods on the node network" in (f.message or "")


def test_unread_policies_make_reachability_unknown_not_open() -> None:
    """NetworkPolicies could not be listed: "the internet reaches the CDE" and "the CDE reaches the internet" are
    not known, so flows and egress are inconclusive instead of confident failures about policies nobody read."""
    inv = inventory(obj("v1", "Namespace", "payments"), obj("v1", "Namespace", "ingress-nginx"),
                    deployment("payment-api", "payments", "example/payment-api:1"),
                    deployment("ingress-nginx-controller", "ingress-nginx",
                               "registry.k8s.io/ingress-nginx/controller:v1.11.3"),
                    denied=("NetworkPolicy",))
    scope = Scope.model_validate({"namespaces": {"cde": ["payments"]}})
    subjects = namespaces.collect(inv, scope, NOW)
    payments = next(s for s in subjects if s.TYPE == "namespace" and s.name == "payments")
    assert {"egress_to_internet", "ingress_from_namespaces"} <= payments.unknown_fields()
    assert _finding("segmentation.cde-egress-internet", payments, scope).status == "inconclusive"
    flows = [s for s in subjects if s.TYPE == "cde_flow"]
    assert flows and all("approved" in f.unknown_fields() for f in flows)
    control = next(c for c in load_catalogue().controls if c.id == "segmentation.cde-inbound-approved")
    data = flows[0].model_dump(mode="json")
    data["policies_enforced"] = True
    data["unknown"] = [u for u in data["unknown"] if u["field"] != "policies_enforced"]
    assert evaluate_subject(control, data, scope_variables(scope)).status == "inconclusive"


def test_same_name_workloads_of_two_kinds_are_both_derived() -> None:
    """A Deployment and a CronJob both called `report` (a common pairing: the API and its nightly batch)."""
    cron = obj("batch/v1", "CronJob", "report", "shop", spec={"schedule": "@daily", "jobTemplate": {"spec": {
        "template": {"metadata": {"labels": {"app": "report-batch"}},
                     "spec": {"containers": [{"name": "batch", "image": "example/report:1"}]}}}}})
    engine = engine_from_inventory(inventory(deployment("report", "shop", "example/report:1"), cron, absent=("Pod",)))
    assert {"shop/report[Deployment]", "shop/report[CronJob]"} <= set(engine.workloads) and engine.warnings == []


def test_unreadable_workload_type_makes_policy_targets_unknown() -> None:
    """StatefulSets could not be listed and no Pod was collected: the database's policy may well select its pods,
    so "selects no pod" is not claimed."""
    db_policy = netpol("postgres", "payments", selector={"matchLabels": {"app.kubernetes.io/name": "postgresql"}},
                       types=["Ingress"], ingress=[])
    inv = inventory(obj("v1", "Namespace", "payments"), deployment("api", "payments", "example/api:1"), db_policy,
                    denied=("StatefulSet",), absent=("Pod",))
    ns = next(s for s in namespaces.collect(inv, Scope(), NOW) if s.TYPE == "namespace")
    assert "policies_selecting_nothing" in ns.unknown_fields()
    assert _finding("segmentation.policy-targets", ns).status == "inconclusive"


def test_operator_statefulset_template_stands_for_its_resource() -> None:
    """The operator's StatefulSet prometheus-k8s (ownerReference to Prometheus k8s, as makeStatefulSet sets it) is in
    the input but no pod is: the pods come from that template, once, as the Prometheus resource's."""
    sset = obj("apps/v1", "StatefulSet", "prometheus-k8s", "monitoring", spec={"template": {
        "metadata": {"labels": {**KP_PROM_LABELS, "prometheus": "k8s", "operator.prometheus.io/shard": "0"}},
        "spec": {"containers": [{"name": "prometheus", "ports": [{"name": "web", "containerPort": 9090}]}]}}})
    sset["metadata"]["ownerReferences"] = [{"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                                            "name": "k8s", "controller": True}]
    views, _ = pods(inventory(*_kube_prometheus(), sset, absent=("Pod",)))
    prom = [v for v in views if v.owner == "Prometheus/k8s"]
    assert len(prom) == 1 and prom[0].name == "prometheus-k8s-<StatefulSet template>"


def test_job_stays_in_the_picture_after_its_pods_completed() -> None:
    """A standalone Job (kubernetes.io Job docs: its pods carry the job-name label and an owner reference to the
    Job) whose pod Succeeded: its template's pods are still what the Job is allowed to reach (a Job is re-run by
    deleting and re-applying it, often by a pipeline), so it stays in the reachability picture."""
    job = obj("batch/v1", "Job", "db-migrate", "payments", spec={"template": {
        "metadata": {"labels": {"app": "db-migrate"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "example/migrate:1"}]}}})
    done = pod("db-migrate-4kq9z", "payments", {"app": "db-migrate", "job-name": "db-migrate"},
               owner=("Job", "db-migrate"), phase="Succeeded")
    web = pod("web-1", "payments", {"app": "web"})
    inv = inventory(obj("v1", "Namespace", "payments"), job, done, web)
    views, _ = pods(inv)
    assert sorted(v.owner for v in views) == ["Job/db-migrate", "Pod/web-1"]
    engine = engine_from_inventory(inv)
    assert "payments/db-migrate[Job]" in engine.workloads
    assert engine.allowed("payments/db-migrate[Job]", "8.8.8.8") == ConnSet.all()
