"""Attestations: strict validation with fixes in the message, statuses unchanged, expiry, appending, and the pack."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import yaml
from test_access_end_to_end import pdf_text

from evidence import attest
from evidence.controls import load_catalogue
from evidence.evaluate import evaluate
from evidence.facts import Facts
from evidence.inventory import CollectionEntry
from evidence.scope import Scope

CATALOGUE = load_catalogue()


def write(tmp_path: Path, *entries: dict) -> Path:
    p = tmp_path / "attestations.yaml"
    p.write_text(yaml.safe_dump({"attestations": list(entries)}, sort_keys=False))
    return p


def entry(**over: object) -> dict:
    base = {"framework": "pci-dss", "requirement": "8.4.2", "statement": "MFA is enforced by the IdP for the portal.",
            "by": "Jane Doe, CISO", "date": date(2026, 11, 1), "valid_until": date(2027, 5, 1)}
    return {**base, **over}


@pytest.mark.parametrize(("over", "message", "hint"), [
    ({"requirement": "8.4.9"}, "entry 1 (pci-dss 8.4.9): pci-dss has no requirement '8.4.9'", "did you mean 8.4.3"),
    ({"framework": "iso27001"}, "entry 1 (iso27001 8.4.2): unknown framework 'iso27001'", "pci-dss, gdpr"),
    ({"colour": "red"}, "entry 1 (pci-dss 8.4.2): field 'colour': unknown field", "fields: framework"),
    ({"valid_until": date(2026, 1, 1)}, "valid_until 2026-01-01 is before date 2026-11-01", "next review"),
    ({"attachment": "missing.pdf"}, "attachment missing.pdf does not exist", "relative to the attestations file"),
    ({"requirement": 10.4}, "field 'requirement': Input should be a valid string", 'quote requirement ids'),
])
def test_invalid_entries_name_the_entry_and_the_fix(tmp_path: Path, over: dict, message: str, hint: str) -> None:
    p = write(tmp_path, entry(**over))
    with pytest.raises(attest.AttestationError) as exc:
        attest.load(p, CATALOGUE)
    assert str(p) in exc.value.message and message in exc.value.message
    assert exc.value.hint and hint in exc.value.hint and exc.value.code == "AP105"


def test_apply_keeps_statuses_and_expires(tmp_path: Path) -> None:
    (tmp_path / "mfa.txt").write_text("IdP export")
    p = write(tmp_path, entry(attachment="mfa.txt"),
              entry(framework="gdpr", requirement="32(1)(d)", valid_until=date(2026, 11, 20)))
    loaded = attest.load(p, CATALOGUE)
    assert loaded[0].pack_path == f"attachments/{loaded[0].sha256[:12]}-mfa.txt"
    results = evaluate(CATALOGUE, Facts(as_of="2026-11-21T06:00:00Z", subjects={}), Scope(),
                       [CollectionEntry(group="", kind="Namespace", status="ok")])
    out = attest.apply(results, loaded, date(2026, 11, 21))
    req = {(r.framework, r.id): r for r in out.requirements}
    before = {(r.framework, r.id): r.status for r in results.requirements}
    assert all(r.status == before[k] for k, r in req.items())  # an attestation never changes a status
    mfa, dpia = req[("pci-dss", "8.4.2")], req[("gdpr", "32(1)(d)")]
    assert mfa.attested and mfa.attestations[0].attachment_sha256 == loaded[0].sha256
    assert not dpia.attested and dpia.attestations[0].expired  # expired: listed, open again
    assert next(f for f in out.frameworks if f.id == "pci-dss").attested == 1
    assert not results.requirements[0].attestations  # pure: the input is untouched


def test_append_keeps_comments_and_quotes_ids(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("# our attestations\nattestations:\n  - " + yaml.safe_dump(entry(), sort_keys=False)
                 .replace("\n", "\n    ").rstrip() + "\n")
    attest.append(p, attest.entry(framework="pci-dss", requirement="10.4.1", statement="Daily log review by SOC.",
                                  by="SOC lead", date=date(2026, 11, 2), valid_until=date(2027, 11, 2)), CATALOGUE)
    text = p.read_text()
    assert text.startswith("# our attestations\n") and 'requirement: "10.4.1"' in text
    assert [a.entry.requirement for a in attest.load(p, CATALOGUE)] == ["8.4.2", "10.4.1"]
    with pytest.raises(attest.AttestationError, match=r"no requirement '99\.9'"):
        attest.append(p, attest.entry(**{**entry(), "requirement": "99.9"}), CATALOGUE)  # type: ignore[arg-type]
    assert len(attest.load(p, CATALOGUE)) == 2  # a refused entry leaves the file as it was


def test_cli_attest_then_list(cli, tmp_path: Path) -> None:
    (tmp_path / "review.txt").write_text("signed access review")
    f = tmp_path / "att.yaml"
    r = cli("attest", "--file", f, "--framework", "pci-dss", "--requirement", "7.2.4", "--statement",
            "Access review done and signed off.", "--by", "Head of Platform", "--valid-until", "2027-04-01",
            "--attach", tmp_path / "review.txt")
    assert r.code == 0, r.err
    assert "attested pci-dss 7.2.4 until 2027-04-01, attachment sha256" in r.out
    assert 'attachment: "review.txt"' in f.read_text()  # relative to the attestations file
    listed = cli("attest", "--file", f)
    assert listed.code == 0 and "pci-dss 7.2.4:" in listed.out and "1 attestation(s), valid" in listed.out
    bad = cli("attest", "--file", f, "--framework", "pci-dss", "--requirement", "7.2.9", "--statement",
              "Access review done and signed off.", "--by", "x y", "--valid-until", "2027-04-01")
    assert bad.code == 2 and "error[AP105]" in bad.err and "7.2.9" in bad.err and "Traceback" not in bad.err


def test_demo_pack_carries_the_attestations(demo_pack: Path) -> None:
    manifest = json.loads((demo_pack / "manifest.json").read_text())
    files = manifest["evidence"]["files"]
    attachments = [k for k in files if k.startswith("attachments/")]
    assert len(attachments) == 2 and "attestations.json" in files
    record = json.loads((demo_pack / "attestations.json").read_text())
    assert {e["attachment_sha256"] for e in record["entries"] if e["attachment_sha256"]} == {
        files[a]["sha256"] for a in attachments}
    results = json.loads((demo_pack / "results.json").read_text())
    req = {(r["framework"], r["id"]): r for r in results["requirements"]}
    assert req[("pci-dss", "7.2.4")]["status"] == "manual" and req[("pci-dss", "7.2.4")]["attested"]
    hslf = req[("hslf-fs-2016-40", "3 kap. 15 § p. 2")]
    assert hslf["attestations"][0]["expired"] and not hslf["attested"]
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx", read_only=True)
    rows = list(wb["Attestations"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[1], r[8]) for r in rows if r[0]} == {("pci-dss", "8.4.2", "no"), ("pci-dss", "7.2.4", "no"),
                                                          ("hslf-fs-2016-40", "3 kap. 15 § p. 2", "yes")}
    text = pdf_text(demo_pack / "report.pdf")
    assert "Attested, valid until 2027-04-02" in text and "expired 2026-06-01" in text
