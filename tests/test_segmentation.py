"""Segmentation end to end: flows into the CDE from the engine, approvals, enforcement, and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml
from conftest import SAMPLE, SCOPE

from evidence.collectors import collect_all
from evidence.controls import load_catalogue
from evidence.evaluate import evaluate
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
