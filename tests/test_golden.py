"""Golden files for the report HTML and the workbook cells of the demo pack (timestamps and digests stripped).

A change to a template or to the data shows up here as a diff to review. After an intended change, regenerate:
AUDITPACK_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
PDF bytes are not compared (font subsets differ on every render).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import openpyxl
import orjson

from evidence.render import pdf
from evidence.render.data import ReportData

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("AUDITPACK_UPDATE_GOLDEN"))
_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),  # evidence digest, file hashes that embed run times
    (re.compile(r"\b[0-9a-f]{12}(?=\|)"), "<digest12>"),  # the Key column's pack prefix
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?( UTC)?"), "<timestamp>"),
    (re.compile(r"\b\d+\.\d+ ?s\b"), "<seconds>"),
    # Sizes of pack files that record paths (scope.json, attestations.json) depend on where the checkout is.
    (re.compile(r'<td class="num">[\d\u2009\u202f\u00a0 ,]+</td>(?=<td class="code sha">)'), '<td class="num"><bytes></td>'),
    (re.compile(r"/[^\s\"'<>]*/(?=samples/)"), "<checkout>/"),  # where the repository was cloned
    (re.compile(r"/tmp/[^\s\"'<]*"), "<tmp>"),
]


def normalise(text: str) -> str:
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(actual)
    expected = path.read_text()
    if actual != expected:
        a, e = actual.splitlines(), expected.splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, e, strict=False)) if x != y), min(len(a), len(e)))
        raise AssertionError(f"{name} differs at line {first + 1}:\n  golden: {e[first] if first < len(e) else '<eof>'}"
                             f"\n  actual: {a[first] if first < len(a) else '<eof>'}\n"
                             "regenerate with AUDITPACK_UPDATE_GOLDEN=1 if the change is intended")


def test_report_html(demo_pack: Path) -> None:
    m = orjson.loads((demo_pack / "manifest.json").read_bytes())
    html = pdf.html(ReportData.load(demo_pack, m["evidence"], m["evidence_digest"]))
    check("report.html", normalise(html))


def _cell(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return "<date>"
    return normalise(value) if isinstance(value, str) else value


def test_workbook_cells(demo_pack: Path) -> None:
    wb = openpyxl.load_workbook(demo_pack / "control-matrix.xlsx")
    cells = {ws.title: [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
             for ws in wb.worksheets if ws.title not in ("Files",)}  # Files lists hashes of run-specific files
    check("workbook.json", json.dumps(cells, indent=1, ensure_ascii=False, default=str) + "\n")
