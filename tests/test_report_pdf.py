"""The report as a QSA reads it (issue 15): scope chapter, signature statement, a PDF signature poppler verifies with
the default key, PDF/A-3b, `--report summary`, and the workbook's Scope sheet and print settings.

Everything is read back from real files: PDF text and outline with pypdf, the signature with poppler's pdfsig,
PDF/A with pikepdf's allow-list validator (built from veraPDF's rules), workbook cells with openpyxl."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest

from evidence import signing
from evidence.render import pdf as pdf_render
from evidence.render.data import ReportData
from tests.conftest import ATTESTATIONS, SAMPLE, SCOPE, run_cli


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    # The default algorithm, exactly as a user gets it.
    r = run_cli("keys", "generate", "--out", out / "default")
    assert r.code == 0, r.err
    return out / "default"


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Path:
    """One signed, summary-only demo pack (the full report is built by the end-to-end tests)."""
    out = tmp_path_factory.mktemp("report") / "pack"
    r = run_cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--attestations", ATTESTATIONS, "--out", out,
                "--fail-on", "none", "--sign-key", keys / "auditpack-signing.key", "--report", "summary")
    assert r.code == 0, r.err
    return out


def _text(path: Path) -> str:
    return "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(path).pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _outline(path: Path) -> list[tuple[str, int]]:
    reader = pypdf.PdfReader(path)
    out = []
    for item in reader.outline:
        if isinstance(item, list):
            continue
        out.append((str(item.title), reader.get_destination_page_number(item)))
    return out


# The PDF signature -----------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils (pdfsig) not installed; .ci/run installs it")
def test_default_key_gives_a_pdf_signature_pdfsig_verifies(pack: Path, keys: Path, tmp_path: Path) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["signer"]["algorithm"] == "ECDSA-P256-SHA256"
    out = subprocess.run(["pdfsig", str(pack / "report.pdf")], capture_output=True, text=True, check=False).stdout
    assert "Signature Field Name: AuditpackSignature" in out
    assert "Signature Validation: Signature is Valid." in out, out
    # Why the default is ECDSA: poppler does not verify an Ed25519 PDF signature (the same small PDF, signed with each).
    ed = tmp_path / "ed"
    signing.generate(ed, algorithm="ed25519")
    verdicts = {}
    for name, key in (("default", keys / "auditpack-signing.key"), ("ed25519", ed / "auditpack-signing.key")):
        doc = tmp_path / f"{name}.pdf"
        blank = pypdf.PdfWriter()
        blank.add_blank_page(width=595, height=842)
        blank.write(doc)
        signing.sign_pdf(doc, signing.load_signer(key), "test")
        verdicts[name] = subprocess.run(["pdfsig", str(doc)], capture_output=True, text=True, check=False).stdout
    assert "Signature is Valid." in verdicts["default"], verdicts
    assert "Signature Validation:" in verdicts["ed25519"] and "Signature is Valid." not in verdicts["ed25519"]


def test_signature_statement_names_algorithm_key_and_certificate(pack: Path) -> None:
    signer = json.loads((pack / "manifest.json").read_text())["signer"]
    text = _text(pack / "report.pdf")
    flat = _flat(text)
    assert "Signed pack" in text
    assert "ECDSA-P256-SHA256" in flat
    assert _flat(signer["key_fingerprint"]) in flat
    assert signer["certificate_sha256"] in flat
    assert "auditpackverifyPACK--public-keyKEY.pub" in flat
    assert "unsigned" not in text.lower()


def test_unsigned_pack_says_so_and_inferred_scope_is_named(pack: Path) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    data = ReportData.load(pack, manifest["evidence"], manifest["evidence_digest"])
    assert data.signer is None  # nothing but the pipeline says who signs
    # No scope file: the chapter says every decision was inferred; no sites declared: those inferred from node labels.
    data.scope = {"origin": "inferred", "certificate_expiry_days": 30}
    page = pdf_render.html(data)
    assert "This pack is <strong>unsigned</strong>" in page and "Signed pack" not in page
    assert "No scope file was given" in page
    assert "inferred from node labels" in page or "treated as one site" in page
    assert "Applicability was not declared" in page


def test_declared_entity_expired_waiver_and_plurals(pack: Path) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    data = ReportData.load(pack, manifest["evidence"], manifest["evidence_digest"])
    assert data.scope is not None
    data.scope = {**data.scope, "entity": {"type": "service_provider", "multi_tenant": True},
                  "waivers": [{"control": "transit.certificate-expiry", "subject": "storefront/*", "reason": "DNS move",
                               "approver": "CISO", "ticket": "SEC-1234", "expires": "2020-01-31"},
                              {"control": "net.*", "subject": "*", "reason": "Migration window", "approver": "CTO",
                               "ticket": "SEC-9", "expires": "2099-12-31"}]}
    page = pdf_render.html(data)
    assert "Service provider,\n    multi-tenant" in page or "Service provider, multi-tenant" in re.sub(r"\s+", " ", page)
    assert "2 waivers declared, 1 in force" in page
    assert "2020-01-31 <strong>(expired)</strong>" in page and "2099-12-31 <strong>(expired)" not in page
    assert "SEC-1234" in page and "CISO" in page
    assert "(s)" not in page.split('id="scope"')[1].split("</section>")[0]


def test_plural_and_identifier_filters() -> None:
    assert pdf_render.plural(1, "flow") == "1 flow"
    assert pdf_render.plural(7, "flow") == "7 flows"
    assert pdf_render.plural(0, "approved flow") == "0 approved flows"
    assert pdf_render.plural(2, "policy") == "2 policies"
    assert pdf_render.plural(3, "day") == "3 days"
    assert pdf_render.plural(2, "resource kind") == "2 resource kinds"
    # Identifiers may wrap only after / . - [ ; never inside a word, and their text is escaped.
    out = str(pdf_render.ident("controller[Deployment]/ingress-nginx.example<b>"))
    assert out == "controller[<wbr>Deployment]/<wbr>ingress-<wbr>nginx.<wbr>example&lt;b&gt;"
    assert "<wbr>" not in str(pdf_render.ident("sha256WithRSAEncryption"))


# The scope chapter and the summary-only report ------------------------------------------------------------------

def test_summary_report_has_cover_summary_scope_requirements_and_failures_only(pack: Path) -> None:
    titles = [t for t, _ in _outline(pack / "report.pdf")]
    pages = dict(_outline(pack / "report.pdf"))
    assert titles.index("Executive summary") + 1 == titles.index("Assessed scope"), titles  # right after the summary
    assert pages["Executive summary"] <= pages["Assessed scope"]
    assert any(t.startswith("PCI DSS") for t in titles[titles.index("Assessed scope"):])
    assert titles[-1] == "Failures"
    # The failures table: every failing or inconclusive control of results.json, and where the rest of the subjects are.
    reader = pypdf.PdfReader(pack / "report.pdf")
    failures = _flat("".join(reader.pages[i].extract_text() or "" for i in range(pages["Failures"], len(reader.pages))))
    results = json.loads((pack / "results.json").read_text())
    bad = [c["id"] for c in results["controls"] if c["status"] in ("fail", "inconclusive")]
    assert bad and all(_flat(cid) in failures for cid in bad), [cid for cid in bad if _flat(cid) not in failures]
    assert _flat("in the Findings sheet of the control matrix (control-matrix.xlsx in this pack)") in failures
    for absent in ("Findings", "Methodology and limitations", "Appendix: evidence objects", "Assessor sign-off",
                   "Segmentation"):
        assert absent not in titles, titles


def test_scope_chapter_lists_namespaces_sites_flows_and_what_was_not_seen(pack: Path) -> None:
    reader = pypdf.PdfReader(pack / "report.pdf")
    start = dict(_outline(pack / "report.pdf"))["Assessed scope"]
    text = "\n".join(reader.pages[i].extract_text() or "" for i in range(start, start + 3))
    chapter = text.split("Assessed scope", 1)[1]
    facts: dict[str, Any] = json.loads((pack / "facts.json").read_text())
    pods = {n["name"]: n["pods"] for n in facts["subjects"]["namespace"]}
    # The CDE namespace with its class, its counts from the facts, and why it is in scope.
    # pypdf gives a table row as it wraps: "payments Cardholder data environment\n(CDE) 3 4 personal ..."
    row = re.search(r"^payments Cardholder data environment\s+\(CDE\)\s+(\d+)\s+(\d+)\s+personal", chapter, re.M)
    assert row, chapter[:1500]
    assert int(row.group(2)) == pods["payments"]
    assert "listed as cde in the scope file" in chapter
    assert "Connected to or affecting the" in chapter and "Out of scope" in chapter
    assert "7 namespaces unclassified" in chapter
    assert "stockholm" in chapter and "gothenburg" in chapter and "Untrusted links" in chapter
    assert "1 approved flow." in chapter
    assert _flat("Public card API served through the ingress controller") in _flat(chapter)
    assert "No waivers are declared" in chapter
    assert "within 30 days" in chapter
    assert "What auditpack could not see" in chapter and "Job.batch" in _flat(chapter)
    assert "Applicability was not declared" in chapter


def test_report_refers_to_the_control_matrix_by_name(pack: Path) -> None:
    text = _text(pack / "report.pdf").lower()
    assert "this workbook" not in text
    assert "flow(s)" not in text and "entry point(s)" not in text


# PDF/A -----------------------------------------------------------------------------------------------------------

def test_pdfa_3b_validates_and_each_attachment_is_listed_once(pack: Path, tmp_path: Path) -> None:
    """pikepdf.pdfa is an allow-list validator built from veraPDF's PDF/A rules (veraPDF itself is neither a Debian
    nor a PyPI package). The report as WeasyPrint wrote it must pass clean; the PAdES signature appended to it may
    only add what the allow-list does not cover (the signature form and, through it, the attachments), never a
    violation such as a PDF 2.0 version on a PDF/A-3 (PDF 1.7) file."""
    import pikepdf
    import pikepdf.pdfa

    signed = (pack / "report.pdf").read_bytes()
    assert signed.count(b"%%EOF") == 2  # WeasyPrint's file and pyHanko's incremental update
    original = tmp_path / "unsigned.pdf"
    original.write_bytes(signed[:signed.index(b"%%EOF") + 5] + b"\n")
    with pikepdf.open(original) as doc:
        af = [str(f.get("/F")) for f in doc.Root.AF]
        assert sorted(af) == ["manifest.json", "results.json"], af
        report = pikepdf.pdfa.check(doc, "3b")
    assert not report.findings, report.findings
    with pikepdf.open(pack / "report.pdf") as doc:
        assert "/Version" not in doc.Root or str(doc.Root.Version).startswith("/1.")
        findings = pikepdf.pdfa.check(doc, "3b").findings
    assert [f for f in findings if f.kind != "unsupported"] == []
    assert {f.rule for f in findings} <= {"pikepdf:schema-Catalog", "pikepdf:embedded-file"}, findings


# The workbook ----------------------------------------------------------------------------------------------------

def test_workbook_scope_sheet_and_print_settings(pack: Path) -> None:
    wb = openpyxl.load_workbook(pack / "control-matrix.xlsx")
    assert wb.sheetnames[:2] == ["Summary", "Scope"]
    rows = list(wb["Scope"].iter_rows(values_only=True))
    assert rows[0] == ("Section", "Item", "Detail", "Workloads", "Pods", "How decided")
    ns = {r[1]: r for r in rows if r[0] == "Namespace"}
    assert ns["payments"][2].startswith("Cardholder data environment") and "personal data" in ns["payments"][2]
    assert ns["kube-public"][2] == "Out of scope"
    assert {r[1] for r in rows if r[0] == "Site"} == {"stockholm", "gothenburg"}
    assert rows[[r[0] for r in rows].index("Untrusted link")][:2] == ("Untrusted link", "stockholm <-> gothenburg")
    assert any(r[0] == "Approved flow" and r[1] == "ingress-nginx/ingress-nginx-controller -> payments/payment-api"
               for r in rows)
    assert any(r[0] == "Not seen" and "Job.batch" in r[2] for r in rows)
    assert any(r[0] == "Certificate warning period" and r[1] == "30 days" for r in rows)
    req = wb["Requirements"]
    assert req.page_setup.orientation == "landscape"
    assert req.print_title_cols == "$A:$B" and req.print_title_rows == "$1:$1"
    assert not req.sheet_properties.pageSetUpPr.fitToPage  # printed at its width, not squeezed onto one page
    assert wb["Summary"].freeze_panes == "A2"


# Applicability by entity type ------------------------------------------------------------------------------------

def test_declared_entity_makes_requirements_for_others_not_applicable_by_scope(tmp_path: Path) -> None:
    from evidence import scope as scope_mod
    from evidence.controls import load_catalogue
    from evidence.evaluate import _roll_up

    catalogue = load_catalogue()
    binds = {r.id: r.applies_to for fw in catalogue.frameworks if fw.id == "pci-dss" for r in fw.requirements}
    merchant = tmp_path / "merchant.yaml"
    merchant.write_text("entity: {type: merchant}\n")
    reqs, summaries = _roll_up(catalogue, [], scope_mod.load(merchant))
    pci = {r.id: r for r in reqs if r.framework == "pci-dss"}
    a1 = [rid for rid, a in binds.items() if a == "multi-tenant-providers"]
    sp = [rid for rid, a in binds.items() if a == "service-providers"]
    assert a1 and sp
    for rid in a1 + sp:
        assert pci[rid].status == "not_applicable" and pci[rid].not_applicable_by_scope, rid
    assert "Appendix A1 binds multi-tenant service providers only" in pci[a1[0]].status_text
    assert "declares a merchant" in pci[sp[0]].status_text
    everyone = next(rid for rid, a in binds.items() if a == "all")
    assert pci[everyone].status == "manual" and pci[everyone].not_applicable_by_scope is None
    pci_counts = next(s for s in summaries if s.id == "pci-dss").counts
    assert pci_counts["not_applicable"] >= len(a1) + len(sp)

    # A multi-tenant service provider is bound by both; nothing is excluded without a declaration.
    provider = tmp_path / "provider.yaml"
    provider.write_text("entity: {type: service_provider, multi_tenant: true}\n")
    reqs, _ = _roll_up(catalogue, [], scope_mod.load(provider))
    assert all(r.not_applicable_by_scope is None for r in reqs if r.id in a1 + sp and r.framework == "pci-dss")
    reqs, _ = _roll_up(catalogue, [], scope_mod.load(None))
    assert all(r.not_applicable_by_scope is None for r in reqs)
    # A typo in the declaration is one clear error naming the field.
    bad = tmp_path / "bad.yaml"
    bad.write_text("entity: {type: retailer}\n")
    with pytest.raises(Exception, match=r"entity\.type"):
        scope_mod.load(bad)
