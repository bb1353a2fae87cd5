"""Encryption in transit end to end: the demo sample (ingress-nginx, cert-manager, Calico WireGuard with a gap) and the
mesh sample (Gateway API, Istio STRICT with a PERMISSIVE namespace, Cilium WireGuard) through the CLI, with the PDF's
"Encryption in transit" chapter and certificate appendix, and the workbook's Certificates and Links sheets."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, run_cli
from pypdf import PdfReader

MESH = ROOT / "samples" / "mesh-cluster"
MESH_SCOPE = ROOT / "samples" / "mesh-scope.yaml"


@pytest.fixture(scope="module")
def mesh_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "mesh"
    result = run_cli("collect", "--snapshot", MESH, "--scope", MESH_SCOPE, "--out", out, "--fail-on", "none")
    assert result.code in (0, 3), result.err
    assert "Traceback" not in result.err + result.out
    return out


def findings(pack: Path) -> dict[tuple[str, str], dict]:
    return {(f["control"], f["subject_id"]): f for f in json.loads((pack / "results.json").read_text())["findings"]}


def controls(pack: Path) -> dict[str, str]:
    return {c["id"]: c["status"] for c in json.loads((pack / "results.json").read_text())["controls"]}


def pdf_text(pack: Path) -> str:
    """The PDF's text with line breaks and hyphenless wraps folded into single spaces."""
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(pack / "report.pdf").pages).split())


def sheet(pack: Path, name: str) -> list[dict]:
    ws = openpyxl.load_workbook(pack / "control-matrix.xlsx")[name]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_mesh_sample_shows_both_gaps_and_what_passes(mesh_pack: Path) -> None:
    f = findings(mesh_pack)
    assert f[("transit.mesh-mtls-strict", "shop")]["status"] == "fail"
    assert "PERMISSIVE (namespace PeerAuthentication shop/default)" in f[("transit.mesh-mtls-strict", "shop")]["message"]
    assert f[("transit.mesh-mtls-strict", "payments")]["status"] == "pass"
    redirect = f[("transit.https-redirect", "edge/Gateway/public/shop.example.com:443")]
    assert redirect["status"] == "fail" and "HTTPRoute shop/web-http" in redirect["message"]
    assert f[("transit.https-redirect", "edge/Gateway/public/pay.example.com:443")]["status"] == "pass"
    for ns in ("payments", "shop", "edge"):  # WireGuard covers the untrusted link for every namespace
        assert f[("transit.namespace-encryption", ns)]["status"] == "pass"
    c = controls(mesh_pack)
    assert c["transit.node-encryption"] == "pass" and c["transit.ingress-tls"] == "pass"
    assert all(c[k] == "pass" for k in c if k.startswith("transit.certificate-"))
    facts = json.loads((mesh_pack / "facts.json").read_text())["subjects"]
    payments = next(s for s in facts["namespace_transit"] if s["name"] == "payments")
    assert payments["protected_by"] == "node encryption and mTLS"


def test_mesh_pdf_and_workbook(mesh_pack: Path) -> None:
    text = pdf_text(mesh_pack)
    assert "Encryption in transit" in text and "Appendix: certificate inventory" in text
    assert "shop.example.com:443" in text and "mesh-ams-1" in text and "network.cilium.io/wg-pub-key" in text
    assert "node encryption and mTLS" in text
    certs = {r["Certificate"]: r for r in sheet(mesh_pack, "Certificates")}
    assert set(certs) == {"edge/pay-example-tls", "edge/shop-example-tls"}
    assert certs["edge/shop-example-tls"]["Key type"] == "EC" and certs["edge/shop-example-tls"]["Days left"] == 70
    assert certs["edge/pay-example-tls"]["Issuer (cert-manager)"] == "ClusterIssuer letsencrypt-prod (acme-production)"
    links = sheet(mesh_pack, "Links")
    assert {r["Node"] for r in links} == {"mesh-sto-1", "mesh-sto-2", "mesh-ams-1"}
    assert all(r["Encryption active"] == "yes" and r["Control status"] == "pass" for r in links)


def test_demo_pdf_and_workbook(demo_pack: Path) -> None:
    text = pdf_text(demo_pack)
    assert "Encryption in transit" in text and "Appendix: certificate inventory" in text
    assert "(STAGING) Demo Staging R1" in text and "grafana-oncall" in text
    certs = {r["Certificate"]: r for r in sheet(demo_pack, "Certificates")}
    grafana = certs["monitoring/grafana-example-tls"]
    assert grafana["Status"] == "fail" and grafana["Expired"] == "yes" and grafana["Days left"] == -5
    assert "transit.certificate-valid: fail" in grafana["Findings"] and "staging" in grafana["Untrusted issuer"]
    assert certs["storefront/shop-example-tls"]["Days left"] == 10
    links = {r["Node"]: r for r in sheet(demo_pack, "Links")}
    assert links["got-node-1"]["Encryption active"] == "no" and links["got-node-1"]["Control status"] == "fail"
    assert "no projectcalico.org/WireguardPublicKey annotation" in links["got-node-1"]["Proof"]
    assert links["sto-node-1"]["Encryption active"] == "yes" and links["sto-node-1"]["Unencrypted pairs"] == 2
    f = findings(demo_pack)
    assert f[("transit.exposed-services", "monitoring/Service/grafana-oncall/(every node address):31300")][
        "status"] == "fail"
    assert f[("transit.namespace-encryption", "payments")]["status"] == "fail"
