"""Renders a fleet summary (fleet-summary.json, written by evidence/fleet.py) as a one-page PDF and a workbook.

Like the pack renderers it only presents the data it is given: one row per cluster with its pack, control
counts per status, exit code and failure reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

from evidence.render.pdf import format_datetime
from evidence.resources import data_dir

TEMPLATE = "fleet-summary.html.j2"
OUTCOME = {0: "ok", 1: "controls failed", 2: "bad input or usage", 3: "collection incomplete", 4: "internal error"}
COUNTED = ("pass", "fail", "inconclusive")
FILL = {0: "C6EFCE", 1: "FFC7CE", 2: "FFEB9C", 3: "FFEB9C", 4: "FFEB9C"}
COLUMNS = (("Cluster (context)", 28), ("Outcome", 22), ("Exit code", 10), ("Pass", 8), ("Fail", 8),
           ("Inconclusive", 13), ("Other", 8), ("Pack", 70), ("Previous pack", 70), ("Reason", 80),
           ("Seconds", 10))


def outcome(code: int) -> str:
    return OUTCOME.get(code, f"exit {code}")


def other_count(cluster: dict[str, Any]) -> int:
    return sum(n for s, n in (cluster.get("controls") or {}).items() if s not in COUNTED)


def html(summary: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(data_dir("report_templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(datetime=format_datetime, outcome=outcome, other_count=other_count)
    return env.get_template(TEMPLATE).render(f=summary)


def pdf(summary: dict[str, Any], out: Path) -> None:
    from weasyprint import HTML  # loading WeasyPrint costs about a second; only fleets need this module

    HTML(string=html(summary), base_url=f"{data_dir('report_templates').as_uri()}/").write_pdf(out)


def xlsx(summary: dict[str, Any], out: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Clusters"
    ws.append([name for name, _ in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="D9E1F2")
    for i, (_, width) in enumerate(COLUMNS):
        ws.column_dimensions[chr(ord("A") + i)].width = width
    for c in summary["clusters"]:
        counts = c.get("controls") or {}
        has_pack = c.get("pack") is not None
        ws.append([c["context"], outcome(c["exit_code"]), c["exit_code"],
                   counts.get("pass", 0) if has_pack else None, counts.get("fail", 0) if has_pack else None,
                   counts.get("inconclusive", 0) if has_pack else None, other_count(c) if has_pack else None,
                   c.get("pack"), c.get("previous"), c.get("reason"), c.get("seconds")])
        ws.cell(ws.max_row, 2).fill = PatternFill("solid", fgColor=FILL.get(c["exit_code"], "FFEB9C"))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    meta = wb.create_sheet("Run")
    for key, value in (("Exit code", summary["exit_code"]), ("Outcome", outcome(summary["exit_code"])),
                       ("Clusters", len(summary["clusters"])),
                       ("Without a complete pack", ", ".join(summary["failed"]) or "none"),
                       ("Started", summary["started_at"]), ("Finished", summary["finished_at"]),
                       ("Packs under", summary["out_root"]), ("auditpack", summary["tool"]["version"])):
        meta.append([key, value])
        meta.cell(meta.max_row, 1).font = Font(bold=True)
    meta.column_dimensions["A"].width = 26
    meta.column_dimensions["B"].width = 80
    wb.save(out)
