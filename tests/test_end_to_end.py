"""End to end through the CLI on the demo sample: pack layout, verify, PDF text, workbook cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
from conftest import SAMPLE, SCOPE
from pypdf import PdfReader

PACK_FILES = {"manifest.json", "collection.json", "scope.json", "facts.json", "results.json", "report.pdf",
              "control-matrix.xlsx", "inventory/index.json"}


def test_pack_layout_and_manifest(demo_pack: Path) -> None:
    files = {p.relative_to(demo_pack).as_posix() for p in demo_pack.rglob("*") if p.is_file()}
    assert files >= PACK_FILES
    assert any(f.startswith("inventory/networking.k8s.io/") for f in files)
    m = json.loads((demo_pack / "manifest.json").read_text())
    ev = m["evidence"]
    assert ev["cluster"]["name"] == "demo-payments" and ev["cluster"]["kube_system_uid"]
    assert ev["catalogue"]["digest"] and ev["scope_digest"] and ev["started_at"] and ev["finished_at"]
    listed = set(ev["files"]) | set(m["renders"])
    assert listed == files - {"manifest.json"}
    assert all(len(v["sha256"]) == 64 for v in ev["files"].values())


def test_verify_intact_then_one_changed_byte_is_named(cli, demo_pack: Path, tmp_path: Path) -> None:
    pack = tmp_path / "copy"
    shutil.copytree(demo_pack, pack)
    ok = cli("verify", pack)
    assert ok.code == 7 and "intact" in ok.out  # 7: intact, but unsigned (authenticity not established)
    target = pack / "facts.json"
    data = bytearray(target.read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    target.write_bytes(bytes(data))
    (pack / "inventory" / "core" / "Node.json").unlink()
    (pack / "notes.txt").write_text("added later")
    bad = cli("verify", pack)
    assert bad.code == 1
    assert "changed: facts.json" in bad.out
    assert "missing: inventory/core/Node.json" in bad.out
    assert "extra: notes.txt" in bad.out


def test_verify_detects_edited_manifest(cli, demo_pack: Path, tmp_path: Path) -> None:
    pack = tmp_path / "copy"
    shutil.copytree(demo_pack, pack)
    m = json.loads((pack / "manifest.json").read_text())
    m["evidence"]["cluster"]["name"] = "production"
    (pack / "manifest.json").write_text(json.dumps(m))
    bad = cli("verify", pack)
    assert bad.code == 1 and "evidence section edited" in bad.out


def test_pdf_text(demo_pack: Path) -> None:
    reader = PdfReader(demo_pack / "report.pdf")
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    m = json.loads((demo_pack / "manifest.json").read_text())
    assert "4.2.1" in text
    assert "legacy.shop.example.com" in text  # the host without TLS
    assert "grafana.example.com" in text  # the expired certificate
    assert m["evidence_digest"] in text.replace("\n", "").replace(" ", "")
    assert "demo-payments" in text
    assert len(reader.outline) > 0  # bookmarks from headings


def test_workbook_statuses_match_results(demo_pack: Path) -> None:
    results = json.loads((demo_pack / "results.json").read_text())
    expected = {(r["framework"], r["id"]): r["status"] for r in results["requirements"]}
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    assert {"Summary", "Requirements", "Findings", "Evidence"} <= set(wb.sheetnames)
    ws = wb["Requirements"]
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    seen = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[col["Framework"]] is None:
            continue
        seen[(row[col["Framework"]], str(row[col["Requirement"]]))] = row[col["Status"]]
    assert len(seen) == len(expected) >= 150
    fw_ids = {"PCI DSS": "pci-dss", "GDPR": "gdpr"}
    normalised = {(fw_ids.get(k[0], k[0]), k[1]): v for k, v in seen.items()}
    mismatched = {k: (normalised.get(k), v) for k, v in expected.items() if normalised.get(k) != v}
    assert not mismatched
    assert normalised[("pci-dss", "4.2.1")] == "fail"
    assert ws.freeze_panes is not None and ws.auto_filter.ref


def test_demo_results_show_the_deliberate_gaps(demo_pack: Path) -> None:
    r = json.loads((demo_pack / "results.json").read_text())
    status = {(f["control"], f["subject_id"]): f["status"] for f in r["findings"]}
    assert status[("transit.ingress-tls", "storefront/shop-legacy/legacy.shop.example.com:80")] == "fail"
    # Certificate defects are judged once per certificate (subject id: the Secret), not per host.
    assert status[("transit.certificate-valid", "monitoring/grafana-example-tls")] == "fail"
    assert status[("transit.certificate-expiry", "storefront/shop-example-tls")] == "fail"
    assert status[("transit.certificate-valid", "payments/pay-example-tls")] == "pass"
    assert status[("segmentation.default-deny-ingress", "storefront")] == "fail"
    assert status[("segmentation.default-deny-ingress", "payments")] == "pass"
    assert status[("transit.node-encryption", "cluster")] == "fail"
    counts = r["control_counts"]
    assert counts.get("pass", 0) >= 4 and counts.get("fail", 0) >= 4


def test_existing_pack_is_never_overwritten(cli, demo_pack: Path) -> None:
    before = (demo_pack / "manifest.json").read_bytes()
    result = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", demo_pack)
    assert result.code == 2 and "never overwrites" in result.err
    assert (demo_pack / "manifest.json").read_bytes() == before


def test_json_summary_and_fail_on(cli, tmp_path: Path) -> None:
    result = cli("collect", "--report", "summary", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", tmp_path / "p", "--json",
                 "--fail-on", "none")
    assert result.code == 0, result.err
    line = json.loads(result.out.strip().splitlines()[-1])
    assert line["pack"].endswith("p") and line["controls"]["fail"] >= 1 and line["collection_complete"]


def test_usage_errors_exit_2(cli, tmp_path: Path) -> None:
    assert cli("collect", "--out", tmp_path / "x", "--bogus").code == 2
    r = cli("collect", "--snapshot", SAMPLE, "--scope", tmp_path / "missing.yaml", "--out", tmp_path / "y")
    assert r.code == 2 and "missing.yaml" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "y").exists()


def test_pdf_is_archival_with_attachments_and_contents(demo_pack: Path) -> None:
    import pikepdf

    with pikepdf.open(demo_pack / "report.pdf") as pdf:
        meta = pdf.open_metadata()
        assert meta.get("pdfaid:part") == "3" and meta.get("pdfaid:conformance") == "B"
        attached = {name: json.loads(f.get_file().read_bytes()) for name, f in pdf.attachments.items()}
    manifest = json.loads((demo_pack / "manifest.json").read_text())
    assert attached["manifest.json"]["evidence"] == manifest["evidence"]
    assert attached["manifest.json"]["evidence_digest"] == manifest["evidence_digest"]
    assert attached["results.json"] == json.loads((demo_pack / "results.json").read_text())
    reader = PdfReader(demo_pack / "report.pdf")
    contents = reader.pages[1].extract_text()
    assert "Contents" in contents and "Assessor sign-off" in contents
    last = reader.pages[-1].extract_text()
    assert "Assessor sign-off" in last and "Signature" in last
    fonts = {str(f.get("/BaseFont")) for page in reader.pages[:3]
             for f in (page.get("/Resources", {}).get("/Font", {}) or {}).values() if hasattr(f, "get")}
    assert all("DejaVu" in f for f in fonts if f != "None")
