"""The third sample (samples/cloud-cluster/, issue 13): a GKE cluster as manifests (no Pods, no Secrets) with a GKE
Ingress, Istio's bookinfo with layered PeerAuthentications, kube-prometheus and Fluent Bit, through the real CLI;
verdicts from results.json and the report's own text (pypdf)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from pypdf import PdfReader

SAMPLE = ROOT / "samples" / "cloud-cluster"
SCOPE = ROOT / "samples" / "cloud-scope.yaml"


@pytest.fixture(scope="module")
def cloud_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("packs") / "cloud"
    result = run_cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none")
    assert result.code in (0, 3), result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out
    return out, result.err


def findings(pack: Path) -> dict[tuple[str, str], dict]:
    return {(f["control"], f["subject_id"]): f for f in json.loads((pack / "results.json").read_text())["findings"]}


def pdf_text(pack: Path) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(pack / "report.pdf").pages).split())


def test_cloud_ingress_verdicts(cloud_pack: tuple[Path, str]) -> None:
    f = findings(cloud_pack[0])
    book, shop = "bookinfo/bookinfo/bookinfo.example.com:443", "legacy/shop/shop.example.com:443"
    # Google-managed certificate Active for the host, FrontendConfig redirectToHttps: TLS and redirect pass.
    assert f[("transit.ingress-tls", book)]["status"] == "pass"
    assert f[("transit.https-redirect", book)]["status"] == "pass"
    # The SSL policy lives in Google Cloud: inconclusive, naming what to attach.
    protocols = f[("transit.ingress-tls-protocols", book)]
    assert protocols["status"] == "inconclusive" and "gcloud compute ssl-policies describe care-modern-tls12" in \
        protocols["message"]
    # The old shop: pre-shared Google certificate (unknown), HTTP still served, default SSL policy (TLS 1.0).
    assert f[("transit.ingress-tls", shop)]["status"] == "inconclusive"
    assert f[("transit.https-redirect", shop)]["status"] == "fail"
    assert f[("transit.ingress-tls-protocols", shop)]["status"] == "fail"
    assert "checkout-v1:80" in f[("transit.ingress-backends", shop)]["message"]
    # The Istio ingress gateway's LoadBalancer Service is the proxy, not a port exposed without TLS.
    assert not any(c == "transit.exposed-services" and "istio-ingressgateway" in s for c, s in f)
    assert f[("transit.https-redirect", "payments/IstioGateway/payments-gateway/pay.example.com:443")]["status"] \
        == "pass"


def test_cloud_mesh_verdicts(cloud_pack: tuple[Path, str]) -> None:
    f = findings(cloud_pack[0])
    mesh = f[("transit.mesh-mtls-strict", "bookinfo")]
    assert mesh["status"] == "fail"
    assert "Deployment/ratings-v1: PERMISSIVE (workload PeerAuthentication bookinfo/ratings-permissive)" in \
        mesh["message"]
    assert "port 9080: PERMISSIVE (PeerAuthentication bookinfo/details-metrics portLevelMtls)" in mesh["message"]
    assert "legacy/ratings-export (CronJob)" in mesh["message"]
    assert f[("transit.mesh-mtls-strict", "payments")]["status"] == "pass"
    assert f[("transit.mesh-policy-targets", "bookinfo")]["status"] == "fail"
    # Sidecars were inferred from the namespace label and the injector webhook, not left "cannot be confirmed".
    facts = json.loads((cloud_pack[0] / "facts.json").read_text())["subjects"]["namespace_transit"]
    bookinfo = next(s for s in facts if s["name"] == "bookinfo")
    assert {w["dataplane"] for w in bookinfo["workloads"]} == {"sidecar"}
    assert not any("confirmed" in u["reason"] for s in facts for u in s["unknown"])
    # No sites declared: the pass says which assumption it rests on.
    enc = f[("transit.namespace-encryption", "bookinfo")]
    assert enc["status"] == "pass" and "resting on an assumption" in enc["message"]


def test_cloud_report_text(cloud_pack: tuple[Path, str]) -> None:
    text = pdf_text(cloud_pack[0])
    assert "gke-care" in text and "Encryption in transit" in text
    for phrase in ("checkout-v1:80", "selects no pod", "care-modern-tls12", "assumed: no sites in the scope",
                   "accepts plain text from non-mesh workloads"):
        assert phrase in text, phrase
