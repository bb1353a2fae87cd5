"""The spreadsheet round trip: the compliance team fills the Requirements sheet, the next pack carries it."""

from __future__ import annotations

import csv
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


def test_filled_matrix_carries_into_the_next_pack(cli, demo_pack: Path, tmp_path: Path) -> None:
    edited = fill(demo_pack / "control-matrix.xlsx", tmp_path / "matrix.xlsx", {
        ("pci-dss", "12.5.2"): {"Owner": "Maria Svensson, CISO", "Attestation": "attested",
                                "Auditor comment": "Scope confirmed in the annual scoping workshop",
                                "Evidence link": "https://wiki.example.com/pci/scope-2026"},
        ("pci-dss", "1.2.7"): {"Owner": "Network team", "Attestation": "in progress"},
    })
    out = tmp_path / "next"
    r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none",
            "--attestations", edited)
    assert r.code == 0, r.err
    results = json.loads((out / "results.json").read_text())
    req = next(q for q in results["requirements"] if q["framework"] == "pci-dss" and q["id"] == "12.5.2")
    assert req["attestations"] and req["attestations"][0]["by"] == "Maria Svensson, CISO"
    assert "annual scoping workshop" in req["attestations"][0]["statement"]
    carried = json.loads((out / "matrix.json").read_text())["entries"]
    # Our two rows, plus the rows the previous pack pre-filled from its recorded attestations.
    assert {("pci-dss", "12.5.2"), ("pci-dss", "1.2.7")} <= {(e["framework"], e["requirement"]) for e in carried}
    ws = openpyxl.load_workbook(out / "control-matrix.xlsx")["Requirements"]
    header = [c.value for c in ws[1]]
    row = rows_by_requirement(ws)[("pci-dss", "1.2.7")]
    assert ws.cell(row=row, column=header.index("Owner") + 1).value == "Network team"
    assert ws.cell(row=row, column=header.index("Attestation") + 1).value == "in progress"
    row = rows_by_requirement(ws)[("pci-dss", "12.5.2")]
    assert ws.cell(row=row, column=header.index("Evidence link") + 1).value == "https://wiki.example.com/pci/scope-2026"
    text = " ".join(p.extract_text() or "" for p in PdfReader(out / "report.pdf").pages)
    assert "Maria Svensson" in text


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
    # Sheet 2 is Requirements; LibreOffice's CSV filter takes the sheet number after the options.
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,2",
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
