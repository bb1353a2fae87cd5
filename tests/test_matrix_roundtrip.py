"""The spreadsheet round trip: the compliance team fills the Requirements sheet, the next pack carries it."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLE, SCOPE
from pypdf import PdfReader


def rows_by_requirement(ws) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    header = [c.value for c in ws[1]]
    fw, req = header.index("Framework"), header.index("Requirement")
    return {(r[fw].value, str(r[req].value)): r[0].row for r in ws.iter_rows(min_row=2) if r[fw].value}


def fill(src: Path, dst: Path, edits: dict[tuple[str, str], dict[str, str]]) -> Path:
    wb = openpyxl.load_workbook(src)
    ws = wb["Requirements"]
    header = [c.value for c in ws[1]]
    rows = rows_by_requirement(ws)
    for key, values in edits.items():
        for name, value in values.items():
            ws.cell(row=rows[key], column=header.index(name) + 1, value=value)
    wb.save(dst)
    return dst


def test_requirements_sheet_is_protected_except_people_columns(demo_pack: Path) -> None:
    ws = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")["Requirements"]
    header = [c.value for c in ws[1]]
    assert ws.protection.sheet
    assert not ws.cell(row=2, column=header.index("Owner") + 1).protection.locked
    assert ws.cell(row=2, column=header.index("Status") + 1).protection.locked
    assert ws.column_dimensions[openpyxl.utils.get_column_letter(header.index("Key") + 1)].hidden


def _pdf_text(pack: Path) -> str:
    return " ".join(p.extract_text() or "" for p in PdfReader(pack / "report.pdf").pages)


def _requirement(pack: Path, framework: str, rid: str) -> dict:  # type: ignore[type-arg]
    results = json.loads((pack / "results.json").read_text())
    return next(q for q in results["requirements"] if q["framework"] == framework and q["id"] == rid)


def _cell(pack: Path, key: tuple[str, str], column: str):  # type: ignore[no-untyped-def]
    ws = openpyxl.load_workbook(pack / "control-matrix.xlsx")["Requirements"]
    header = [c.value for c in ws[1]]
    return ws.cell(row=rows_by_requirement(ws)[key], column=header.index(column) + 1).value


def test_filled_matrix_carries_into_the_next_pack(cli, demo_pack: Path, tmp_path: Path) -> None:
    """Typed dates, a dropdown value and a pasted multi-line statement, as a person fills them in."""
    edited = fill(demo_pack / "control-matrix.xlsx", tmp_path / "matrix.xlsx", {
        ("pci-dss", "12.5.2"): {"Owner": "Maria Svensson, CISO", "Attestation": "attested",
                                "Statement": "Scope confirmed in the annual scoping workshop.\nMinutes signed by the "
                                             "CISO and the payments product owner.",
                                "Attested on": dt.datetime(2026, 10, 15), "Valid until": dt.date(2027, 10, 15),
                                "Evidence link": "https://wiki.example.com/pci/scope-2026"},
        ("pci-dss", "1.2.7"): {"Owner": "Network team", "Attestation": "in progress"},
    })
    out = tmp_path / "next"
    # A copy filled outside its pack: the quarter's previous pack (--previous) supplies the carried attachments.
    r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none",
            "--attestations", edited, "--previous", demo_pack)
    assert r.code == 0, r.err
    (att,) = _requirement(out, "pci-dss", "12.5.2")["attestations"]
    assert att["by"] == "Maria Svensson, CISO" and att["on"] == "2026-10-15" and att["valid_until"] == "2027-10-15"
    assert "Minutes signed by the CISO" in att["statement"] and "wiki.example.com" in att["statement"]
    carried = json.loads((out / "matrix.json").read_text())["entries"]
    assert {("pci-dss", "12.5.2"), ("pci-dss", "1.2.7")} <= {(e["framework"], e["requirement"]) for e in carried}
    assert _cell(out, ("pci-dss", "1.2.7"), "Owner") == "Network team"
    assert _cell(out, ("pci-dss", "1.2.7"), "Attestation") == "in progress"
    assert _cell(out, ("pci-dss", "12.5.2"), "Evidence link") == "https://wiki.example.com/pci/scope-2026"
    assert _cell(out, ("pci-dss", "12.5.2"), "Valid until") == dt.datetime(2027, 10, 15)  # a date cell again
    assert "Maria Svensson" in _pdf_text(out)


def test_auditor_comment_is_never_an_attestation_and_is_carried_forward(cli, demo_pack: Path, tmp_path: Path) -> None:
    comment = "QSA: need the signed scoping document"
    edited = fill(demo_pack / "control-matrix.xlsx", tmp_path / "matrix.xlsx",
                  {("pci-dss", "12.5.2"): {"Auditor comment": comment}})
    out = tmp_path / "next"
    r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none",
            "--attestations", edited, "--previous", demo_pack)
    assert r.code == 0, r.err
    assert _requirement(out, "pci-dss", "12.5.2")["attestations"] == []
    assert _cell(out, ("pci-dss", "12.5.2"), "Auditor comment") == comment
    assert _cell(out, ("pci-dss", "12.5.2"), "Statement") is None
    assert "need the signed scoping document" not in _pdf_text(out).replace("\n", " ")


def test_unchanged_yaml_attestation_keeps_statement_date_and_attachment(cli, demo_pack: Path, tmp_path: Path) -> None:
    before = _requirement(demo_pack, "pci-dss", "8.4.2")["attestations"][0]
    assert before["attachment"]  # the sample attests 8.4.2 with an attached policy export
    out = tmp_path / "next"
    # The workbook inside its own pack, passed back untouched.
    r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none", "--report", "summary",
            "--attestations", demo_pack / "control-matrix.xlsx")
    assert r.code == 0, r.err
    (after,) = _requirement(out, "pci-dss", "8.4.2")["attestations"]
    for field in ("statement", "by", "on", "valid_until", "attachment", "attachment_name", "attachment_sha256"):
        assert after[field] == before[field], field
    assert (out / after["attachment"]).read_bytes() == (demo_pack / before["attachment"]).read_bytes()
    # A copy of the workbook outside the pack finds the attachment through --previous.
    copy = tmp_path / "filled.xlsx"
    shutil.copy(demo_pack / "control-matrix.xlsx", copy)
    lost = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", tmp_path / "x", "--attestations", copy)
    assert lost.code == 2 and "--previous" in lost.err and "Traceback" not in lost.err
    found = cli("collect", "--report", "summary",
                "--snapshot", SAMPLE, "--scope", SCOPE, "--out", tmp_path / "y", "--fail-on", "none",
                "--attestations", copy, "--previous", demo_pack)
    assert found.code == 0, found.err
    assert _requirement(tmp_path / "y", "pci-dss", "8.4.2")["attestations"][0]["attachment"] == before["attachment"]


@pytest.mark.parametrize(("edits", "column", "text"), [
    ({"Attestation": "bogus value"}, "Attestation", "choose one of: attested, not attested"),
    ({"Attestation": "attested", "Owner": "Jane Doe, CISO", "Statement": "The policy was approved by the board.",
      "Attested on": dt.date(2026, 10, 1)}, "Valid until", "without Valid until"),
    ({"Attestation": "attested", "Owner": "Jane Doe, CISO", "Valid until": dt.date(2027, 1, 1),
      "Attested on": dt.date(2026, 10, 1)}, "Statement", "without Statement"),
    ({"Attestation": "attested", "Owner": "Jane Doe, CISO", "Statement": "The policy was approved by the board.",
      "Attested on": "last week", "Valid until": dt.date(2027, 1, 1)}, "Attested on", "'last week' is not a date"),
])
def test_every_invalid_cell_is_an_error_naming_the_cell(cli, demo_pack: Path, tmp_path: Path, edits, column,
                                                        text) -> None:
    edited = fill(demo_pack / "control-matrix.xlsx", tmp_path / "bad.xlsx", {("pci-dss", "12.5.2"): edits})
    ws = openpyxl.load_workbook(edited)["Requirements"]
    header = [c.value for c in ws[1]]
    cell = f"Requirements!{openpyxl.utils.get_column_letter(header.index(column) + 1)}" \
           f"{rows_by_requirement(ws)[('pci-dss', '12.5.2')]}"
    r = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--attestations", edited, "--previous", demo_pack)
    assert r.code == 2, r.err
    assert cell in r.err and text in r.err and "Traceback" not in r.err
    assert not (tmp_path / "p").exists()


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_round_trip_through_libreoffice(cli, demo_pack: Path, tmp_path: Path) -> None:
    """Filled, then saved by LibreOffice (as a compliance officer's Calc would), then fed back."""
    filled = fill(demo_pack / "control-matrix.xlsx", tmp_path / "filled.xlsx", {
        ("pci-dss", "12.5.2"): {"Owner": "Maria Svensson, CISO", "Attestation": "attested",
                                "Statement": "Scope confirmed in the annual scoping workshop.\nSecond line.",
                                "Attested on": dt.date(2026, 10, 15), "Valid until": dt.date(2027, 10, 15)},
        ("pci-dss", "1.2.7"): {"Auditor comment": "QSA: show the six-monthly rule review"}})
    saved = tmp_path / "lo"
    saved.mkdir()
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
                    "xlsx:Calc MS Excel 2007 XML", "--outdir", str(saved), str(filled)], check=True,
                   capture_output=True, timeout=300)
    out = tmp_path / "next"
    r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none",
            "--attestations", saved / "filled.xlsx", "--previous", demo_pack)
    assert r.code == 0, r.err
    (att,) = _requirement(out, "pci-dss", "12.5.2")["attestations"]
    assert (att["on"], att["valid_until"]) == ("2026-10-15", "2027-10-15") and "Second line." in att["statement"]
    assert _requirement(out, "pci-dss", "1.2.7")["attestations"] == []
    assert _requirement(out, "pci-dss", "8.4.2")["attestations"][0]["attachment"]  # the YAML one, unchanged
    recorded = json.loads((out / "attestations.json").read_text())
    assert {e["requirement"] for e in recorded["entries"]} >= {"12.5.2", "8.4.2"}
    assert "Maria Svensson" in _pdf_text(out)


def test_workbook_of_another_cluster_is_refused(cli, demo_pack: Path, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    for prop in wb.custom_doc_props.props:
        if prop.name == "auditpack.kube_system_uid":
            prop.value = "00000000-other-cluster"
    wb.save(tmp_path / "other.xlsx")
    r = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--attestations", tmp_path / "other.xlsx")
    assert r.code == 2 and "belongs to another cluster" in r.err and "auditpack.kube_system_uid" in r.err
    assert not (tmp_path / "p").exists()


def test_unknown_requirement_names_the_cell(cli, demo_pack: Path, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    ws = wb["Requirements"]
    header = [c.value for c in ws[1]]
    key_col = header.index("Key") + 1
    ws.cell(row=7, column=key_col, value="abc|pci-dss|99.9.9")
    ws.cell(row=7, column=header.index("Owner") + 1, value="Someone")
    wb.save(tmp_path / "bad.xlsx")
    r = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--attestations", tmp_path / "bad.xlsx")
    letter = openpyxl.utils.get_column_letter(key_col)
    assert r.code == 2 and f"Requirements!{letter}7" in r.err and "99.9.9" in r.err


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_reads_the_workbook(demo_pack: Path, tmp_path: Path) -> None:
    src = tmp_path / "matrix.xlsx"
    shutil.copy(demo_pack / "control-matrix.xlsx", src)
    # LibreOffice's CSV filter takes the (1-based) sheet number after the options.
    number = openpyxl.load_workbook(src, read_only=True).sheetnames.index("Requirements") + 1
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to",
                    f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,{number}",
                    "--outdir", str(tmp_path), str(src)], check=True, capture_output=True, timeout=180)
    produced = list(tmp_path.glob("matrix*.csv"))
    assert produced, "LibreOffice wrote no CSV"
    with produced[0].open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["Framework", "Requirement", "Family", "Title", "Status"]
    results = json.loads((demo_pack / "results.json").read_text())
    expected = {(q["framework"], q["id"]): q["status"] for q in results["requirements"]}
    got = {(r[0], r[1]): r[4] for r in rows[1:] if r and r[0]}
    assert got == expected
