"""Issue 13 classes that had no test of their own when the closing list was made (map13): the wording rules of the
report ("(not collected?)", "Ready None", Top failures, repeated reasons), sidecar injection by `istio.io/rev`, and a
Traefik LoadBalancer Service as the proxy. Each test asserts behaviour that exists; none changes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import yaml
from helpers import NOW, deployment, obj
from test_entrypoints import hosts
from test_transit import INJECTOR, app, ns, peer_auth, spaces

from evidence.collectors import collect_all
from evidence.controls import load_catalogue
from evidence.evaluate import evaluate, evaluate_subject, scope_variables
from evidence.kinds import RESOURCE_TYPES
from evidence.render import pdf
from evidence.render.data import ReportData
from evidence.scope import NamespaceScope, Scope
from evidence.sources import snapshot

# --- Wording: "(not collected?)" only when a kind really was not read ------------------------------------------------

SHOP = """apiVersion: v1
kind: Namespace
metadata: {name: shop, uid: ns-shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, uid: d-web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop, uid: i-web}
spec:
  tls: [{hosts: [shop.example.com], secretName: web-tls}]
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"""


def _texts(snap: Path) -> list[str]:
    """Every finding message and reason and every control note of a run over the snapshot."""
    inv = snapshot.load(snap)
    results = evaluate(load_catalogue(), collect_all(inv, Scope(), NOW), Scope(), inv.log)
    return [t for f in results.findings for t in (f.message or "", *f.reasons)] + \
        [c.note or "" for c in results.controls]


def test_not_collected_is_said_only_when_the_snapshot_has_no_collection_log(tmp_path: Path) -> None:
    # Without collection.json a kind absent from the files may not have been collected: the wording says so.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "shop.yaml").write_text(SHOP)
    assert any("(not collected" in t for t in _texts(bare))
    # The same objects with a collection log that lists every type as read (what `auditpack snapshot` and a live
    # run record): an empty list means none exist, and no message may ask whether it was collected.
    logged = tmp_path / "logged"
    logged.mkdir()
    (logged / "shop.yaml").write_text(SHOP)
    present = {("", "Namespace"): 1, ("apps", "Deployment"): 1, ("networking.k8s.io", "Ingress"): 1}
    log = [{"group": t.group, "kind": t.kind, "status": "ok", "count": present.get((t.group, t.kind), 0)}
           for t in RESOURCE_TYPES]
    (logged / "collection.json").write_text(json.dumps(log))
    texts = _texts(logged)
    # "not collected" is the wording of a type the source did not read (inventory.CollectionEntry.reason, the
    # collectors' "no X in the snapshot (not collected, ...)" and the kube-apiserver reasons of cluster.py and
    # detection.py, which now say what was read instead of guessing "or Pods not collected").
    assert texts and not [t for t in texts if "not collected" in t]
    assert any("no kube-apiserver Pod in kube-system" in t and "no kubeadm-config ConfigMap" in t for t in texts)
    assert any("Pod not visible: no pods in the snapshot (not collected?)" in t for t in _texts(bare))


# --- Wording: Top failures lists failures only; a certificate's Ready state is never "Ready None" -------------------

def _demo_data(demo_pack: Path) -> ReportData:
    m = orjson.loads((demo_pack / "manifest.json").read_bytes())
    return ReportData.load(demo_pack, m["evidence"], m["evidence_digest"])


def _top_failures_section(html: str) -> str:
    start = html.index("<h2>Top failures</h2>")
    return html[start:html.index("</section>", start)]


def test_top_failures_lists_failed_controls_and_failing_subjects_only(demo_pack: Path) -> None:
    data = _demo_data(demo_pack)
    failed = [c for c in data.results.controls if c.status == "fail"]
    passed = [c for c in data.results.controls if c.status == "pass"]
    assert failed and passed
    # One control made inconclusive and critical: were inconclusive controls listed, it would head the table.
    planted = passed[0].model_copy(update={"status": "inconclusive", "severity": "critical"})
    data.results.controls[data.results.controls.index(passed[0])] = planted
    # One failing control also gets an inconclusive subject: the "Affected subjects" cell names failing ones only.
    first = pdf.view(data).top_failures[0]
    fail = next(f for f in data.results.findings if f.control == first.id and f.status == "fail")
    data.results.findings.append(fail.model_copy(update={"status": "inconclusive", "subject_id": "zz-unseen",
                                                         "subject_name": "zz-unseen-subject"}))
    v = pdf.view(data)
    assert v.top_failures and {c.status for c in v.top_failures} == {"fail"}
    assert planted.id not in {c.id for c in v.top_failures} and v.inconclusive_controls == 1
    top = _top_failures_section(pdf.html(data))
    assert planted.id not in top and "zz-unseen-subject" not in top
    assert first.id in top and "1 control was inconclusive" in top


def test_certificate_ready_state_is_never_printed_as_ready_none(demo_pack: Path) -> None:
    data = _demo_data(demo_pack)
    managed = [c for c in data.facts["subjects"]["certificate"] if c.get("cert_manager")]
    assert managed
    managed[0]["cert_manager"]["ready"] = None  # cert-manager has not reported a Ready condition yet
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pdf.html(data)))
    assert "Ready None" not in text and "Ready state not reported" in text


# --- Wording: identical unknown reasons of one row are said once ----------------------------------------------------

def test_identical_unknown_reasons_of_one_finding_are_said_once() -> None:
    """monitoring.security-alerts reads `prometheus` and `components_without_alerts`; a denied list of Prometheus
    resources makes both unknown with the same reason."""
    control = next(c for c in load_catalogue().controls if c.id == "monitoring.security-alerts")
    subject = yaml.safe_load((Path(__file__).parent / "controls" / "_base" / "monitoring.yaml").read_text())
    why = "permission denied: list prometheuses.monitoring.coreos.com"
    subject.update(evidence=[], unknown=[{"field": "prometheus", "reason": why},
                                         {"field": "components_without_alerts", "reason": why}])
    f = evaluate_subject(control, subject, scope_variables(Scope()))
    assert f.status == "inconclusive"
    assert f.reasons == [why] and f.message == f"evidence missing: {why}"
    row = pdf.findings_table([f]).rows[0]
    assert row.reasons == []  # already in the message: the row says it once


# --- Meshes: injection by revision label --------------------------------------------------------------------------

def test_istio_rev_namespace_label_enrols_the_namespace_workloads() -> None:
    # Istio canary upgrades (istio.io/latest/docs/setup/upgrade/canary/): a namespace labelled istio.io/rev=<revision>
    # (and no istio-injection label) is injected by that revision's injector. A snapshot of manifests: no Pods.
    scope = Scope(namespaces=NamespaceScope(cde=["bookinfo"]))
    got = spaces(INJECTOR, ns("bookinfo", labels={"istio.io/rev": "canary"}), ns("legacy"),
                 peer_auth("default", "istio-system", "STRICT"), app("ratings", "bookinfo"), app("report", "legacy"),
                 scope=scope, absent=("Pod",))
    ratings = got["bookinfo"].workloads[0]
    assert ratings.dataplane == "sidecar" and "istio.io/rev=canary" in ratings.enrolment_source
    assert got["legacy"].workloads[0].dataplane == "none"
    assert not [u for u in got["bookinfo"].unknown if "confirmed" in u.reason]


# --- Entry points: a Traefik LoadBalancer Service is the proxy ------------------------------------------------------

def test_traefik_load_balancer_service_is_the_proxy_not_a_port_exposed_without_tls() -> None:
    # The Service the traefik/traefik-helm-chart chart renders (templates/service.yaml): type LoadBalancer, ports
    # web 80 and websecure 443, selecting app.kubernetes.io/name=traefik, app.kubernetes.io/instance=traefik-traefik.
    labels = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-traefik"}
    controller = deployment("traefik", "traefik", "docker.io/traefik:v3.3", labels=labels)
    lb = obj("v1", "Service", "traefik", "traefik", labels=labels, spec={
        "type": "LoadBalancer", "selector": labels,
        "ports": [{"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP"},
                  {"name": "websecure", "port": 443, "targetPort": "websecure", "protocol": "TCP"}]},
        status={"loadBalancer": {"ingress": [{"ip": "203.0.113.70"}]}})
    assert not any(s.kind == "Service" for s in hosts(controller, lb).values())
    # The same Service in front of an application that is not a proxy is listed (the test can fail).
    plain = deployment("traefik", "traefik", "docker.io/example/shop:1.0", labels=labels)
    exposed = [s for s in hosts(plain, lb).values() if s.kind == "Service"]
    assert sorted(s.id for s in exposed) == ["traefik/Service/traefik/203.0.113.70:443",
                                             "traefik/Service/traefik/203.0.113.70:80"]

