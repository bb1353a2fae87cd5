"""Requirement statuses (issue 12) as every output shows them: PDF, workbook, `controls list`, quarter over quarter.

The roll-up itself is tested in test_evaluate.py and OSCAL in test_oscal.py; these read the demo pack's real PDF
text (pypdf) and workbook cells (openpyxl), and run the real command line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from conftest import run_cli
from pypdf import PdfReader

from evidence.controls import load_catalogue
from evidence.diff import compare, text
from evidence.evaluate import (
    REQUIREMENT_DEFINITIONS,
    REQUIREMENT_LABELS,
    REQUIREMENT_QSA_TERMS,
    REQUIREMENT_STATUSES,
    STATUS_DEFINITIONS,
    STATUSES,
)


@pytest.fixture(scope="module")
def results(demo_pack: Path) -> dict[str, Any]:
    return json.loads((demo_pack / "results.json").read_text())


@pytest.fixture(scope="module")
def pdf_text(demo_pack: Path) -> str:
    return " ".join(p.extract_text() or "" for p in PdfReader(demo_pack / "report.pdf").pages)


def _flat(s: str) -> str:
    return re.sub(r"\s+", " ", s.replace("\u2010", "-")).strip()


def test_pdf_shows_evidence_to_attach_for_every_status_but_a_full_pass(results: dict[str, Any], pdf_text: str) -> None:
    reqs = results["requirements"]
    attach = [q for q in reqs if q["evidence_to_attach"]]
    assert {q["status"] for q in attach} >= {"automated_pass", "fail", "manual"}
    assert all(q["status"] != "pass" for q in attach)
    assert pdf_text.count("Evidence to attach:") == len(attach)
    flat = _flat(pdf_text)
    automated = [q for q in reqs if q["status"] == "automated_pass"]
    assert automated and flat.count("Automated checks pass: assessor evidence required.") >= len(automated)
    assert "Not applicable per cluster evidence, assessor to confirm" in flat
    # An attestation beside a failed automated part says what it covers (the demo attests PCI DSS 8.4.2).
    attested_fail = [q for q in reqs if q["attested"] and q["status"] == "fail"]
    assert attested_fail
    for q in attested_fail:
        assert q["status_text"].endswith("A current attestation covers the manual part; the automated part failed")
        assert _flat(q["status_text"]) + "." in flat


def test_pdf_method_chapter_defines_each_requirement_state_once_in_qsa_words(pdf_text: str) -> None:
    flat = _flat(pdf_text)
    method = flat[flat.index("What the statuses mean"):]
    for s in REQUIREMENT_STATUSES:
        assert _flat(f"{REQUIREMENT_LABELS[s]}. Report on Compliance: {REQUIREMENT_QSA_TERMS[s]}.") in method, s
        assert flat.count(_flat(REQUIREMENT_DEFINITIONS[s])) == 1, s
    for s in STATUSES:
        assert _flat(STATUS_DEFINITIONS[s]) in method, s


def test_workbook_legend_defines_every_status_and_requirements_carry_the_new_states(
        demo_pack: Path, results: dict[str, Any]) -> None:
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    legend = [r for r in wb["Legend"].iter_rows(values_only=True)]
    assert legend[0] == ("Applies to", "Status", "Label", "Report on Compliance", "Meaning")
    defined = {(r[0], r[1]): r for r in legend[1:]}
    for s in REQUIREMENT_STATUSES:
        assert defined[("Requirement", s)][2:] == (REQUIREMENT_LABELS[s], REQUIREMENT_QSA_TERMS[s],
                                                   REQUIREMENT_DEFINITIONS[s])
    for s in STATUSES:
        assert defined[("Control and finding", s)][4] == STATUS_DEFINITIONS[s]
    ws = wb["Requirements"]
    header = [c.value for c in ws[1]]
    col = {h: header.index(h) for h in ("Framework", "Requirement", "Status", "Status meaning")}
    rows = {(r[col["Framework"]], r[col["Requirement"]]): r for r in ws.iter_rows(min_row=2, values_only=True)}
    for q in results["requirements"]:
        row = rows[(q["framework"], q["id"])]
        assert (row[col["Status"]], row[col["Status meaning"]]) == (q["status"], q["status_text"])
    assert "automated_pass" in {r[col["Status"]] for r in rows.values()}
    assert ws.protection.sheet and ws.cell(row=2, column=col["Status meaning"] + 1).protection.locked
    summary = [c.value for row in wb["Summary"].iter_rows() for c in row]
    assert "automated_pass" in summary


def test_controls_list_prints_requirement_rows_with_their_states(demo_pack: Path, results: dict[str, Any]) -> None:
    catalogue = load_catalogue()
    gdpr = catalogue.framework("gdpr")
    r = run_cli("controls", "list", "--framework", "gdpr")
    assert r.code == 0, r.err
    rows = dict(re.findall(r"^(\S+)\s+(pass|automated_pass|manual)\s+(?:full|partial|manual)\s", r.out, re.M))
    assert set(rows) == {q.id for q in gdpr.requirements}
    mapped = {rid for c in catalogue.controls for rid in c.spec.requirements.get("gdpr", [])}
    for q in gdpr.requirements:  # the best a requirement can reach: never pass unless full with nothing manual
        assert rows[q.id] == ("manual" if q.id not in mapped else "automated_pass"
                              if q.automatable != "full" or q.manual_evidence.strip().lower() != "none" else "pass")
    assert "Automated checks pass: assessor evidence required; controls: " in r.out
    r = run_cli("controls", "list", "--framework", "pci-dss", "--pack", demo_pack)
    assert r.code == 0, r.err
    listed = dict(re.findall(r"^(\S+)\s+([a-z_]+)\s+(?:full|partial|manual)\s", r.out, re.M))
    assert listed == {q["id"]: q["status"] for q in results["requirements"] if q["framework"] == "pci-dss"}
    assert "automated_pass" in listed.values()
    r = run_cli("controls", "list", "--pack", demo_pack)
    assert r.code == 2 and "--pack needs --framework" in r.err


def _pack(requirements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"path": "p", "manifest": {"evidence": {"as_of": "2026-08-21", "cluster": {"kube_system_uid": "u"}}},
            "results": {"findings": [], "requirements": requirements, "controls": [], "expired_waivers": []},
            "facts": {"subjects": {}}, "scope": {}}


def test_diff_names_requirement_state_changes_and_the_old_roll_up() -> None:
    req = {"framework": "pci-dss", "id": "10.4.1", "title": "Daily review of security logs"}
    before = _pack([{**req, "status": "pass"}])  # a pack written before issue 12: no status_text
    after = _pack([{**req, "status": "automated_pass", "status_text": REQUIREMENT_LABELS["automated_pass"]}])
    (change,) = compare(before, after).requirements_changed
    assert (change.before, change.after) == ("pass", "automated_pass")
    assert change.note and "now passes only when its controls cover all of it" in change.note
    assert "pci-dss 10.4.1 Daily review of security logs: pass -> automated pass  (the earlier pack" in text(
        compare(before, after))
    now = _pack([{**req, "status": "fail", "status_text": REQUIREMENT_LABELS["fail"]}])
    (change,) = compare(after, now).requirements_changed
    assert (change.before, change.after, change.note) == ("automated_pass", "fail", None)
    assert compare(after, after).requirements_changed == []
