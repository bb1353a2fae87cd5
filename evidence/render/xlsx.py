"""Writes control-matrix.xlsx, the workbook the compliance team keeps and works in, from a pack's data files.

Sheets: Summary, Legend (every control, finding and requirement status defined), Requirements (one row per
framework requirement, with columns people fill in and a hidden Key that ties each row to this pack), Controls,
Findings, Evidence (every inventory object), Files (every pack data file), Collection (what was read from the
cluster). Statuses are written exactly as results.json holds them (plain lower-case values, so filters and
formulas work); colour only repeats the label.

Like every renderer this only presents what the pack holds: no status, count or verdict is computed here.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from evidence.evaluate import (
    REQUIREMENT_DEFINITIONS,
    REQUIREMENT_LABELS,
    REQUIREMENT_QSA_TERMS,
    STATUS_DEFINITIONS,
)
from evidence.render.data import REQUIREMENT_ORDER, SCOPE_CLASSES, STATUS_LABEL, ReportData, scope_view

# Status columns in the order the summary tables show them; values are results.json's own.
STATUSES = ("pass", "fail", "inconclusive", "waived", "not_applicable", "manual")
# Requirement statuses (evaluate.RequirementStatus) are counted in their own columns: automated_pass is not a pass.
REQUIREMENT_STATUSES = REQUIREMENT_ORDER
STATUS_FILL = {"pass": "C6EFCE", "automated_pass": "E2EFDA", "fail": "FFC7CE", "inconclusive": "FFEB9C",
               "waived": "DDEBF7", "not_applicable": "EDEDED", "manual": "E4DFEC"}
ATTESTATION = ("attested", "not attested", "not applicable", "in progress")
HEADER_FILL = "D9E1F2"
YOURS_FILL = "FFF2CC"  # header of the columns people fill in
# Above this many Evidence + Findings rows the workbook is streamed (write_only): openpyxl's normal mode
# holds every cell in memory (about 476 MB per 100,000 rows x 12 columns, against 83 MB streamed).
STREAM_ROWS = 20_000
MAX_CELL = 32_767  # characters Excel keeps in one cell; longer text makes Excel "repair" the file
MAX_ROWS = 1_048_576  # rows in an Excel sheet; a longer table continues on "<name> (2)"
WIDTH_SAMPLE = 2_000  # rows read to size columns (the rest are streamed)
WRAP_WIDTH = 60
PLAIN_WIDTH = 70  # fits a SHA-256 on one line
# Row heights are written, not left to the viewer: Excel fits wrapped rows on load, but LibreOffice and most
# previewers do not, and show one line of each wrapped cell. Estimated for Calibri 11 (the default font).
LINE_HEIGHT = 15.0  # points per line
MAX_HEIGHT = 409.0  # Excel's largest row height; longer cells scroll in the formula bar
CHARS_PER_WIDTH = 1.15  # characters of prose per unit of column width (Calibri fits about 1.25)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"


@dataclass(frozen=True)
class Col:
    header: str
    kind: str = "text"  # text | wrap | status | number | datetime | date
    width: int | None = None  # fixed width; None sizes it from the content
    hidden: bool = False
    yours: bool = False  # filled in by people, never by auditpack


def render(root: Path, evidence: dict[str, Any], digest: str, out: Path) -> None:
    data = ReportData.load(root, evidence, digest)
    stream = len(data.index) + len(data.results.findings) > STREAM_ROWS
    wb = Workbook(write_only=stream)
    if not stream:
        wb.remove(wb.active)
    book = _Book(wb, styled_data=not stream)
    _properties(wb, data)
    _summary(book, data)
    _scope(book, data)
    _legend(book)
    _requirements(book, data)
    _controls(book, data)
    _findings(book, data)
    _access_review(book, data)
    _attestations(book, data)
    _changes(book, data)
    _cde_flows(book, data)
    _segmentation_matrix(book, data)
    _certificates(book, data)
    _links(book, data)
    _evidence(book, data)
    _files(book, data)
    _collection(book, data)
    wb.save(out)


def _properties(wb: Any, data: ReportData) -> None:
    cluster = data.cluster.get("name") or "unknown cluster"
    p = wb.properties
    p.title = f"Control matrix: {cluster}"
    p.subject = "PCI DSS v4.0.1, GDPR and HSLF-FS 2016:40 control matrix"
    p.creator = "auditpack"
    p.lastModifiedBy = "auditpack"
    p.created = _naive_utc(data.results.as_of)
    p.identifier = data.digest
    p.keywords = f"auditpack; evidence digest {data.digest}"
    p.description = (f"Evaluated {data.results.as_of.isoformat()} from the audit pack whose evidence "
                     f"digest is {data.digest}.")
    # Read back by `collect --attestations control-matrix.xlsx` to refuse a workbook of another cluster.
    from openpyxl.packaging.custom import StringProperty

    from evidence.matrix import CLUSTER_PROPERTY, DIGEST_PROPERTY

    wb.custom_doc_props.append(StringProperty(name=CLUSTER_PROPERTY, value=str(data.cluster.get("kube_system_uid"))))
    wb.custom_doc_props.append(StringProperty(name=DIGEST_PROPERTY, value=data.digest))


# -- cells and styles ---------------------------------------------------------------------------------------

class _Book:
    """The workbook plus the few styles it uses, built once (openpyxl hashes a style on every assignment)."""

    def __init__(self, wb: Any, styled_data: bool) -> None:
        self.wb = wb
        # With many rows, every styled cell costs time and memory; the big sheets then keep to the
        # styles that carry meaning (status colours, wrapping, dates).
        self.styled_data = styled_data
        thin = Side(style="thin", color="8EA9DB")
        self.top = Alignment(vertical="top")
        self.wrap = Alignment(vertical="top", wrap_text=True)
        self.left_wrap = Alignment(horizontal="left", vertical="top", wrap_text=True)
        # The font is named: a bold font without a name renders in the viewer's default (a serif in LibreOffice).
        self.header_font = Font(name="Calibri", size=11, bold=True)
        self.header_border = Border(bottom=thin)
        self.header_align = Alignment(vertical="top", wrap_text=True)
        self.title_font = Font(name="Calibri", size=14, bold=True)
        self.section_font = Font(name="Calibri", size=12, bold=True)
        self.fills = {k: PatternFill("solid", fgColor=v) for k, v in STATUS_FILL.items()}
        self.header_fill = PatternFill("solid", fgColor=HEADER_FILL)
        self.yours_fill = PatternFill("solid", fgColor=YOURS_FILL)
        self._styles: dict[tuple[str | None, str | None, str | None], Any] = {}

    def sheet(self, title: str) -> Any:
        return self.wb.create_sheet(title)

    def cell(self, ws: Any, value: Any, *, kind: str = "text", styled: bool = True) -> Any:
        """A cell for `value`: text cleaned, never read as a formula; dates as dates; statuses coloured."""
        if value is None or value == "":
            return None
        fmt = None
        if isinstance(value, datetime):
            value, fmt = _naive_utc(value), DATETIME_FORMAT
        elif isinstance(value, date):
            fmt = DATE_FORMAT
        elif isinstance(value, str):
            value = _clean(value)
        fill = value if kind == "status" and value in STATUS_FILL else None
        align = "wrap" if kind == "wrap" else "top" if styled else None
        formula_like = isinstance(value, str) and value.startswith("=")
        if fmt is None and fill is None and align is None and not formula_like:
            return value
        c = WriteOnlyCell(ws, value)
        if isinstance(value, str):
            # Text from the cluster or the scope file must never become a formula ("=HYPERLINK(...)").
            c.data_type = "s"
        if fmt or fill or align:
            # Copying a prepared style is much cheaper than assigning font, fill and alignment objects,
            # which openpyxl hashes and looks up on every assignment (most of the time on large sheets).
            c._style = copy(self._style(ws, fmt, fill, align))
        return c

    def _style(self, ws: Any, fmt: str | None, fill: str | None, align: str | None) -> Any:
        key = (fmt, fill, align)
        style = self._styles.get(key)
        if style is None:
            t = WriteOnlyCell(ws)
            if fmt:
                t.number_format = fmt
            if fill:
                t.fill = self.fills[fill]
            if align:
                t.alignment = self.wrap if align == "wrap" else self.top
            style = self._styles[key] = t._style
        return style

    def header(self, ws: Any, cols: Sequence[Col]) -> list[Any]:
        out = []
        for col in cols:
            c = WriteOnlyCell(ws, col.header)
            c.data_type = "s"
            c.font = self.header_font
            c.fill = self.yours_fill if col.yours else self.header_fill
            c.border = self.header_border
            c.alignment = self.header_align
            out.append(c)
        return out

    def table(self, title: str, cols: Sequence[Col], rows: Iterable[Sequence[Any]], *, freeze: str = "A2",
              styled: bool = True, print_cols: str | None = None) -> list[tuple[Any, int]]:
        """Write a table with a frozen header and an autofilter; returns (sheet, data rows) per sheet used.
        `print_cols` ("A:B"): a wide sheet printed across pages, these key columns repeated on each page."""
        it = iter(rows)
        head = list(itertools.islice(it, WIDTH_SAMPLE))
        widths = [_width(col, [r[i] for r in head]) for i, col in enumerate(cols)]
        rest: Iterator[Sequence[Any]] = itertools.chain(head, it)
        last = get_column_letter(len(cols))
        wrapped = [(i, w) for i, (col, w) in enumerate(zip(cols, widths, strict=True)) if col.kind == "wrap"]
        written: list[tuple[Any, int]] = []
        while True:
            ws = self.sheet(title if not written else f"{title} ({len(written) + 1})")
            # Widths, hidden columns and panes must be set before the first row when streaming.
            for i, (col, w) in enumerate(zip(cols, widths, strict=True), start=1):
                dim = ws.column_dimensions[get_column_letter(i)]
                dim.width = w
                if col.hidden:
                    dim.hidden = True
            ws.freeze_panes = freeze
            ws.print_title_rows = "1:1"
            _fit_width(ws)
            if print_cols:
                _print_across(ws, print_cols)
            ws.append(self.header(ws, cols))
            n = 0
            for row in itertools.islice(rest, MAX_ROWS - 1):
                n += 1
                height = _height(max((_text_lines(row[i], w) for i, w in wrapped), default=1))
                if height:
                    ws.row_dimensions[n + 1].height = height
                ws.append([self.cell(ws, v, kind=col.kind, styled=styled)
                           for col, v in zip(cols, row, strict=True)])
                if height and self.wb.write_only:
                    del ws.row_dimensions[n + 1]  # already written; keep memory flat
            ws.auto_filter.ref = f"A1:{last}{n + 1}"
            written.append((ws, n))
            nxt = next(rest, None)
            if nxt is None:
                return written
            rest = itertools.chain([nxt], rest)


def _fit_width(ws: Any) -> None:
    """Print landscape, one page wide (someone will print the matrix for the auditor)."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def _clean(text: str) -> str:
    # Control characters are invalid in the file format (openpyxl refuses them); show them, don't fail.
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if len(text) > MAX_CELL:
        keep = MAX_CELL - 100  # room for the note
        cut = text.rfind("\n", 0, keep)
        if cut > keep // 2:
            keep = cut  # whole lines (object references) only
        text = f"{text[:keep]}\n… {len(text) - keep:,} more characters in the pack's JSON files"
    return text


def _text_lines(value: Any, width: float) -> int:
    if not isinstance(value, str) or not value:
        return 1
    per_line = max(1.0, width * CHARS_PER_WIDTH - 2)  # less the partial word carried to the next line
    return sum(max(1, math.ceil(len(p) / per_line)) for p in value.split("\n"))


def _height(lines: int) -> float | None:
    """The row height for `lines` lines of text, or None for one line (the default height)."""
    return min(MAX_HEIGHT, LINE_HEIGHT * lines + 2) if lines > 1 else None


def _width(col: Col, values: list[Any]) -> float:
    if col.width is not None:
        return col.width
    longest = len(col.header) + 4  # bold text and the filter button
    for v in values:
        if v is None:
            continue
        if isinstance(v, datetime):
            n = 19
        elif isinstance(v, date):
            n = 10
        else:
            n = max((len(line) for line in str(v).splitlines()), default=0)
        longest = max(longest, n + 2)
    return min(longest, WRAP_WIDTH if col.kind == "wrap" else PLAIN_WIDTH)


def _naive_utc(ts: datetime) -> datetime:
    """openpyxl cannot store a time zone: every time in the workbook is UTC, and its label says so."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _naive_utc(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


def _lines(items: Iterable[str]) -> str:
    return "\n".join(items)


# -- sheets -------------------------------------------------------------------------------------------------

def _print_across(ws: Any, key_cols: str) -> None:
    """A wide sheet (the Requirements: over 20 columns) printed readable: landscape A4 at its own width, one page
    tall per page, the header row and the key columns repeated on every page, instead of squeezed to one page wide."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4  # a class constant: a write-only sheet does not carry it
    ws.sheet_properties.pageSetUpPr.fitToPage = False
    ws.page_setup.scale = 70
    ws.print_title_cols = key_cols
    ws.print_options.gridLines = True


def _scope(book: _Book, data: ReportData) -> None:
    """The assessed scope, as the PDF's scope chapter shows it: one table, a section per row group."""
    sc = scope_view(data)
    classes = dict(SCOPE_CLASSES)
    cols = [Col("Section", width=22), Col("Item", "wrap", width=44), Col("Detail", "wrap", width=WRAP_WIDTH),
            Col("Workloads", "number"), Col("Pods", "number"), Col("How decided", "wrap", width=48)]
    entity = sc.entity
    rows: list[list[Any]] = [["Scope file", sc.origin, None, None, None,
                              "none given: everything below was inferred" if sc.origin == "inferred" else None]]
    if entity:
        kind = "service provider" if entity.get("type") == "service_provider" else "merchant"
        rows.append(["Assessed entity", kind, "multi-tenant" if entity.get("multi_tenant") else "not multi-tenant",
                     None, None, "declared in the scope file"])
    else:
        rows.append(["Assessed entity", "not declared", "applicability was not declared: requirements for service "
                     "providers or multi-tenant providers keep their evaluated status", None, None,
                     "declare entity: {type: merchant | service_provider, multi_tenant: true | false}"])
    for n in sc.namespaces:
        data_kinds = ", ".join(k for k, on in (("personal data", n.personal_data), ("health data", n.health_data))
                               if on)
        rows.append(["Namespace", n.name, "; ".join(t for t in (classes.get(n.scope_class, n.scope_class), data_kinds)
                                                    if t), n.workloads, n.pods,
                     n.reason + (" (inferred)" if n.inferred and n.scope_class in ("cde", "connected", "out_of_scope")
                                 else "")])
    for s in sc.sites:
        rows.append(["Site", s["name"], ", ".join(s["nodes"]) or "no nodes", None, None, s["selector"]])
    rows += [["Untrusted link", f"{a} <-> {b}", "traffic across it must be encrypted", None, None, None]
             for a, b in sc.untrusted_links]
    rows += [["Approved flow", f"{f.get('from')} -> {f.get('to')}", f"{', '.join(f.get('ports') or ['all ports'])}: "
              f"{f.get('reason')}", None, None, "scope file"] for f in sc.approved_flows]
    rows += [["Waiver", f"{w.get('control')} on {w.get('subject')}", f"{w.get('reason')} (approver {w.get('approver')},"
              f" ticket {w.get('ticket')}, expires {w.get('expires')})", None, None, "scope file"] for w in sc.waivers]
    if not sc.waivers:
        rows.append(["Waiver", "none declared", "every gap is reported as found", None, None, "scope file"])
    rows.append(["Certificate warning period", f"{sc.certificate_expiry_days} days", "a certificate expiring within "
                 "this period of the evaluation time is reported as expiring soon", None, None, None])
    for status, message, kinds in sc.not_seen_groups():
        rows.append(["Not seen", status.replace("_", " "), ", ".join(kinds), None, None, message])
    rows += [["Inferred", i, None, None, None, "the scope file is silent here"] for i in sc.inferences]
    book.table("Scope", cols, rows)


def _summary(book: _Book, data: ReportData) -> None:
    r = data.results
    ev = data.evidence
    cluster = data.cluster
    catalogue = ev.get("catalogue") or {}
    source = ev.get("source") or {}
    ws = book.sheet("Summary")
    ws.freeze_panes = "A2"  # the title row stays in view, as the header row does on the other sheets
    value_width = 66  # a SHA-256 digest on one line
    for letter, width in zip("ABCDEFGHIJK", (32, value_width, 34, 10, 10, 15, 10, 17, 10, 10, 13), strict=True):
        ws.column_dimensions[letter].width = width
    _fit_width(ws)
    rows: list[list[Any]] = []

    def text(value: Any, **kw: Any) -> Any:
        return book.cell(ws, value, **kw)

    def bold(value: str, font: Any = None) -> Any:
        c = WriteOnlyCell(ws, value)
        c.data_type = "s"
        c.font = font or book.header_font
        c.alignment = book.top
        return c

    def head(cells: Sequence[Any], status_from: int = 99) -> list[Any]:
        out: list[Any] = []
        for i, v in enumerate(cells):
            if v is None:
                out.append(None)
                continue
            c = bold(v)
            c.fill = book.fills[v] if i >= status_from and v in book.fills else book.header_fill
            c.border = book.header_border
            c.alignment = book.header_align
            out.append(c)
        return out

    problems = r.collection_problems
    redactions = data.collection.get("redactions") or {}
    identity: list[tuple[str, Any]] = [
        ("Cluster", cluster.get("name")),
        ("API server", cluster.get("server")),
        ("Kubernetes version", cluster.get("version")),
        ("kube-system namespace UID", cluster.get("kube_system_uid")),
        ("Context", cluster.get("context")),
        ("Evaluated as of (UTC)", r.as_of),
        ("Collected at (UTC)", _time(source.get("collected_at"))),
        ("Source", " ".join(str(s) for s in (source.get("type"), source.get("location")) if s) or None),
        ("Run started (UTC)", _time(ev.get("started_at"))),
        ("Run finished (UTC)", _time(ev.get("finished_at"))),
        ("auditpack version", catalogue.get("version")),
        ("Catalogue digest", catalogue.get("digest")),
        ("Controls in catalogue", catalogue.get("controls")),
        ("Scope digest", ev.get("scope_digest")),
        ("Evidence digest (SHA-256)", data.digest),
        ("Objects collected", data.collection.get("objects")),
        ("Redacted on collection", ", ".join(f"{k}: {v}" for k, v in redactions.items()) or "none"),
        ("Collection problems", _lines(problems) if problems else "none"),
        ("Your columns", "Requirements sheet: Owner, Attestation, Statement, Attested on, Valid until, Evidence "
                         "link and Auditor comment (yellow headers) are yours to fill in. Pass the filled workbook "
                         "back with `auditpack collect --attestations control-matrix.xlsx`: rows marked 'attested' "
                         "become attestations (Owner, Statement, Attested on and Valid until required); the "
                         "auditor's comment is carried forward, never read as an attestation. Keep the hidden Key "
                         "and Recorded columns: they tie each row to this pack."),
    ]
    rows.append([bold(f"Control matrix: {cluster.get('name') or 'unknown cluster'}", book.title_font)])
    rows.append([])
    for label, value in identity:
        height = _height(_text_lines(value, value_width))
        if height:
            ws.row_dimensions[len(rows) + 1].height = height
        cell = text(value, kind="wrap")
        if cell is not None:
            cell.alignment = book.left_wrap  # dates and numbers too, under the text above them
        rows.append([bold(label), cell])
        if label == "Collection problems" and problems:
            rows[-1][1].fill = book.fills["inconclusive"]

    rows += [[], [bold("Requirements by framework", book.section_font)]]
    rows.append(head(["Framework", "Title", "Version", *REQUIREMENT_STATUSES, "Total", "Automated"], status_from=3))
    for fw in r.frameworks:
        counts = [text(fw.counts.get(s, 0)) for s in REQUIREMENT_STATUSES]
        rows.append([text(fw.id), text(fw.title), text(fw.version), *counts, text(fw.requirements),
                     text(fw.automated)])

    rows += [[], [bold("Controls and findings by status", book.section_font)]]
    rows.append(head(["Status counts", None, None, *STATUSES, "Total"], status_from=3))
    rows.append([bold("Controls"), None, None, *[text(r.control_counts.get(s, 0)) for s in STATUSES],
                 text(len(r.controls))])
    rows.append([bold("Findings (control x subject)"), None, None,
                 *[text(r.finding_counts.get(s, 0)) for s in STATUSES], text(len(r.findings))])

    rows += [[], [bold("Expired waivers (no longer applied)", book.section_font)]]
    if r.expired_waivers:
        rows.append(head(["Control", "Subject", "Ticket", "Expired on", "Matched findings"]))
        for w in r.expired_waivers:
            rows.append([text(w.control), text(w.subject), text(w.ticket), text(w.expired_on),
                         text(w.matched)])
    else:
        rows.append([text("none")])

    # Last, so that its autofilter (one per sheet) hides nothing above it.
    rows += [[], [bold("Requirements by family", book.section_font)]]
    first = len(rows) + 1
    rows.append(head(["Framework", "Family", "Family id", *REQUIREMENT_STATUSES], status_from=3))
    for fw in r.frameworks:
        for fam in fw.families:
            rows.append([text(fw.id), text(fam.title), text(fam.id),
                         *[text(fam.counts.get(s, 0)) for s in REQUIREMENT_STATUSES]])
    for row in rows:
        ws.append(row)
    ws.auto_filter.ref = f"A{first}:{get_column_letter(3 + len(REQUIREMENT_STATUSES))}{len(rows)}"


def _legend(book: _Book) -> None:
    """Every status the workbook uses, defined once: requirement statuses (with the Report on Compliance finding
    they correspond to) and control and finding statuses. The words are evaluate.py's, as in the PDF."""
    cols = [Col("Applies to"), Col("Status", "status"), Col("Label", "wrap", width=36),
            Col("Report on Compliance", "wrap", width=30), Col("Meaning", "wrap", width=WRAP_WIDTH)]
    rows: list[list[Any]] = [["Requirement", s, REQUIREMENT_LABELS[s], REQUIREMENT_QSA_TERMS[s],
                              REQUIREMENT_DEFINITIONS[s]] for s in REQUIREMENT_STATUSES]
    rows += [["Control and finding", s, STATUS_LABEL[s], None, STATUS_DEFINITIONS[s]] for s in STATUSES]
    book.table("Legend", cols, rows)


def _requirements(book: _Book, data: ReportData) -> None:
    r = data.results
    family = {(fw.id, f.id): f.title for fw in r.frameworks for f in fw.families}
    control_status = {c.id: c.status for c in r.controls}
    short = data.digest[:12]
    cols = [
        Col("Framework"), Col("Requirement"), Col("Family", "wrap", width=32), Col("Title", "wrap"),
        Col("Status", "status"), Col("Status meaning", "wrap", width=36), Col("Automated"), Col("Automatable"),
        Col("Frequency", "wrap", width=26),
        # PCI DSS: "new in v4.0, mandatory since 31 March 2025" or "superseded by ..."; who the requirement binds.
        Col("New in v4.0", "wrap", width=30), Col("Applies to", width=18),
        Col("Controls", "wrap"), Col("Control statuses", "wrap"),
        Col("What to attach", "wrap", width=WRAP_WIDTH),
        # The people columns (matrix.py reads them back with `collect --attestations control-matrix.xlsx`).
        Col("Owner", width=18, yours=True), Col("Attestation", width=16, yours=True),
        Col("Statement", "wrap", width=48, yours=True), Col("Attested on", "date", yours=True),
        Col("Valid until", "date", yours=True), Col("Evidence link", "wrap", width=40, yours=True),
        Col("Auditor comment", "wrap", width=40, yours=True),
        # `<evidence digest short>|<framework>|<requirement id>`: how attestations are imported back.
        Col("Key", width=40, hidden=True),
        # The attestations recorded in this pack, as JSON: an attestation left unchanged in the sheet is carried
        # into the next pack whole (statement, date, attachment), not rebuilt from the cells.
        Col("Recorded", width=10, hidden=True),
    ]
    # What people wrote in the previous quarter's workbook (collect --attestations control-matrix.xlsx) comes back.
    carried = {(e["framework"], e["requirement"]): e for e in (data.matrix or {}).get("entries", [])}
    rows = []
    for q in r.requirements:
        recorded = [a.model_dump(mode="json") for a in q.attestations if not a.expired]
        cells = prefill(recorded) if recorded else {}
        prev = carried.get((q.framework, q.id), {})
        people = [cells.get(k) or prev.get(k) for k in ("owner", "attestation", "statement")] + \
            [_day(cells.get(k) or prev.get(k)) for k in ("on", "valid_until")] + \
            [cells.get("evidence_link") or prev.get("evidence_link"), prev.get("comment")]
        rows.append([q.framework, q.id, family.get((q.framework, q.family), q.family), q.title, q.status,
                     q.status_text, "automated" if q.controls else "manual", q.automatable, q.frequency,
                     _lines(t for t in (q.new_in_v4, q.superseded) if t) or None, q.applies_to, ", ".join(q.controls),
                     _lines(f"{c}: {control_status.get(c, 'unknown')}" for c in q.controls), q.manual_evidence,
                     *people, f"{short}|{q.framework}|{q.id}",
                     json.dumps(recorded, sort_keys=True) if recorded else None])
    ((ws, n),) = book.table("Requirements", cols, rows, freeze="C2", print_cols="A:B")
    _protect(ws, cols, n)
    last = max(n + 1, 2)

    def column(header: str) -> str:
        return str(get_column_letter(cols.index(next(c for c in cols if c.header == header)) + 1))

    attest = column("Attestation")
    dv = DataValidation(type="list", formula1='"' + ",".join(ATTESTATION) + '"', allow_blank=True,
                        showErrorMessage=True, errorTitle="Attestation",
                        error="Choose one of: " + ", ".join(ATTESTATION), showInputMessage=True,
                        promptTitle="Attestation", prompt=", ".join(ATTESTATION))
    dv.add(f"{attest}2:{attest}{last}")
    ws.data_validations.append(dv)
    for header in ("Attested on", "Valid until"):
        letter = column(header)
        dates = DataValidation(type="date", operator="between", formula1="DATE(2000,1,1)", formula2="DATE(2100,12,31)",
                               allow_blank=True, showErrorMessage=True, errorTitle=header,
                               error="Enter a date, e.g. 2027-03-31", showInputMessage=True, promptTitle=header,
                               prompt="A date (YYYY-MM-DD)")
        dates.add(f"{letter}2:{letter}{last}")
        ws.data_validations.append(dates)


def prefill(recorded: list[dict[str, Any]]) -> dict[str, str]:
    """The people columns for a requirement's current attestations (matrix.py compares a row with this to tell an
    unchanged attestation from an edited one): owners, "attested", the statements, the latest statement date, the
    earliest expiry, the attachments' names."""
    return {"owner": _lines(dict.fromkeys(a["by"] for a in recorded)), "attestation": "attested",
            "statement": "\n\n".join(a["statement"] for a in recorded),
            "on": max(a["on"] for a in recorded), "valid_until": min(a["valid_until"] for a in recorded),
            "evidence_link": _lines(a["attachment"] for a in recorded if a.get("attachment"))}


def _day(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else value


def _protect(ws: Any, cols: Sequence[Col], rows: int) -> None:
    """Lock the sheet except the columns people fill in; filtering and sorting stay allowed. No password: the
    protection prevents accidents, the hidden Key column and the pack's hashes prevent the rest."""
    from openpyxl.styles import Protection

    if ws.parent.write_only:
        return  # streamed sheets cannot be protected cell by cell
    for i, col in enumerate(cols, start=1):
        if col.yours:
            letter = get_column_letter(i)
            for r in range(2, rows + 2):
                ws[f"{letter}{r}"].protection = Protection(locked=False)
    ws.protection.sheet = True
    ws.protection.autoFilter = False
    ws.protection.sort = False
    ws.protection.formatColumns = False
    ws.protection.formatRows = False


def _controls(book: _Book, data: ReportData) -> None:
    counted = ("pass", "fail", "inconclusive", "waived", "not_applicable", "manual")  # manual: evidence to attach
    cols = [Col("Control"), Col("Title", "wrap"), Col("Severity"), Col("Subject type"),
            Col("Status", "status"), *[Col(s, "number") for s in counted], Col("Requirements", "wrap"),
            Col("Rationale", "wrap", width=WRAP_WIDTH), Col("Remediation", "wrap", width=WRAP_WIDTH),
            Col("Note", "wrap")]
    rows = [[c.id, c.title, c.severity, c.subject_type, c.status, *[c.counts.get(s, 0) for s in counted],
             _lines(f"{fw}: {', '.join(ids)}" for fw, ids in c.requirements.items()), c.rationale,
             c.remediation, c.note] for c in data.results.controls]
    book.table("Controls", cols, rows)


def _findings(book: _Book, data: ReportData) -> None:
    severity = {c.id: c.severity for c in data.results.controls}
    cols = [Col("Control"), Col("Severity"), Col("Status", "status"), Col("Subject type"),
            Col("Subject", "wrap"), Col("Subject id", "wrap"), Col("Namespace"),
            Col("Message", "wrap", width=WRAP_WIDTH), Col("Reasons", "wrap"), Col("Waiver ticket"),
            Col("Waiver approver"), Col("Waiver expires", "date"), Col("Waiver reason", "wrap"),
            Col("Status before waiver", "status"), Col("Evidence", "wrap")]

    def rows() -> Iterator[list[Any]]:
        for f in data.results.findings:
            w = f.waiver
            yield [f.control, severity.get(f.control), f.status, f.subject_type, f.subject_name, f.subject_id,
                   f.namespace, f.message, _lines(f.reasons),
                   w.ticket if w else None, w.approver if w else None, w.expires if w else None,
                   w.reason if w else None, w.original_status if w else None,
                   _lines(e.display() for e in f.evidence)]

    book.table("Findings", cols, rows(), styled=book.styled_data)


def _evidence(book: _Book, data: ReportData) -> None:
    cols = [Col("apiVersion"), Col("Kind"), Col("Namespace"), Col("Name"), Col("UID"), Col("resourceVersion"),
            Col("File"), Col("SHA-256 (canonical JSON)")]

    def rows() -> Iterator[list[Any]]:
        for entry in data.index:
            ref = entry.get("ref") or {}
            yield [ref.get("apiVersion"), ref.get("kind"), ref.get("namespace"), ref.get("name"),
                   ref.get("uid"), ref.get("resourceVersion"), entry.get("file"), entry.get("sha256")]

    book.table("Evidence", cols, rows(), styled=False)


def _changes(book: _Book, data: ReportData) -> None:
    """Quarter over quarter (changes.json), only when the run compared with a previous pack."""
    if not data.changes:
        return
    ch = data.changes
    rows: list[list[Any]] = []
    for kind in ("new_failures", "fixed", "still_failing", "other_changes"):
        rows += [[kind.replace("_", " "), i["control"], i["subject_name"], i["before"], i["after"], i.get("message")]
                 for i in ch.get(kind, [])]
    for kind in ("subjects_added", "subjects_removed", "waivers_expired", "scope_changes"):
        rows += [[kind.replace("_", " "), None, entry, None, None, None] for entry in ch.get(kind, [])]
    rows += [["requirement changed", f"{r['framework']} {r['id']}", r["title"], r["before"], r["after"], r.get("note")]
             for r in ch.get("requirements_changed", [])]
    cols = [Col("Change"), Col("Control / requirement"), Col("Subject", "wrap"), Col("Before", "status"),
            Col("Now", "status"), Col("Message", "wrap")]
    book.table(f"Changes since {str(ch.get('previous_as_of', ''))[:10]}", cols, rows)


def _cde_flows(book: _Book, data: ReportData) -> None:
    """Every connection allowed into a CDE workload from outside the CDE, unapproved first (PCI DSS 1.2.5, 1.3.1)."""
    status = {f.subject_id: f.status for f in data.results.findings if f.control == "segmentation.cde-inbound-approved"}
    flows = sorted(data.facts.get("subjects", {}).get("cde_flow", []), key=lambda f: (f["approved"], f["id"]))
    cols = [Col("Status", "status"), Col("From"), Col("To"), Col("External"), Col("From scope"), Col("Ports", "wrap"),
            Col("Not approved", "wrap"), Col("Approval", "wrap"), Col("Allowed by", "wrap"),
            Col("Without justification", "wrap"), Col("Review comment", yours=True)]
    book.table("Flows into CDE", cols, [[status.get(f["id"], "inconclusive"), f["src"], f["dst"],
                                         "yes" if f["external"] else "no", f["src_scope_class"], ", ".join(f["ports"]),
                                         ", ".join(f["unapproved_ports"]), f.get("approval"),
                                         _lines(f.get("rules") or f["policies"]), _lines(f["unjustified_policies"]),
                                         None]
                                        for f in flows])


def _segmentation_matrix(book: _Book, data: ReportData) -> None:
    """Namespace x namespace reachability as a sparse list (one row per reachable ordered pair)."""
    namespaces = data.facts.get("subjects", {}).get("namespace", [])
    cls = {n["name"]: n["scope_class"] for n in namespaces}
    rows = [[src, cls.get(src), n["name"], n["scope_class"],
             "yes" if n["scope_class"] == "cde" and cls.get(src) != "cde" else "no"]
            for n in namespaces for src in n.get("ingress_from_namespaces", [])]
    rows += [[cidr, "external", n["name"], n["scope_class"], "yes" if n["scope_class"] == "cde" else "no"]
             for n in namespaces for cidr in n.get("ingress_from_external", [])]
    cols = [Col("From namespace"), Col("From scope"), Col("To namespace"), Col("To scope"), Col("Into the CDE")]
    book.table("Segmentation matrix", cols, sorted(rows, key=lambda r: (r[4] != "yes", str(r[2]), str(r[0]))))


def _worst(data: ReportData, subject_type: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Per subject id: the most severe status of its findings, and 'control: status' for the failing ones."""
    order = ("fail", "inconclusive", "waived", "pass", "not_applicable")
    worst: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for f in data.results.findings:
        if f.subject_type != subject_type:
            continue
        if f.subject_id not in worst or order.index(f.status) < order.index(worst[f.subject_id]):
            worst[f.subject_id] = f.status
        if f.status in ("fail", "inconclusive", "waived"):
            problems.setdefault(f.subject_id, []).append(f"{f.control}: {f.status}")
    return worst, problems


def _certificates(book: _Book, data: ReportData) -> None:
    """The certificate inventory of PCI DSS 4.2.1.1: one row per certificate subject."""
    worst, problems = _worst(data, "certificate")
    cols = [Col("Status", "status"), Col("Certificate"), Col("Secret found"), Col("Subject", "wrap"),
            Col("SANs", "wrap"), Col("Issuer", "wrap"), Col("Serial"), Col("Key type"), Col("Key size", "number"),
            Col("Signature algorithm"), Col("Not before (UTC)", "datetime"), Col("Not after (UTC)", "datetime"),
            Col("Days left", "number"), Col("Expired"), Col("Chain length", "number"), Col("Chain complete"),
            Col("Self-signed"), Col("Weak"), Col("Untrusted issuer", "wrap"), Col("cert-manager Certificate"),
            Col("Ready"), Col("Renewal time (UTC)", "datetime"), Col("Failed issuance attempts", "number"),
            Col("Issuer (cert-manager)", "wrap"), Col("Served for", "wrap"), Col("Hosts not covered", "wrap"),
            Col("SHA-256 fingerprint"), Col("Findings", "wrap"), Col("Not established", "wrap"),
            Col("Owner", width=18, yours=True), Col("Review comment", "wrap", width=40, yours=True)]

    def yes(value: Any) -> str | None:
        return None if value is None else ("yes" if value else "no")

    rows = []
    for c in sorted(data.facts.get("subjects", {}).get("certificate", []), key=lambda c: str(c["id"])):
        x, cm = c.get("x509") or {}, c.get("cert_manager") or {}
        issuer = cm.get("issuer") or {}
        rows.append([
            worst.get(c["id"], "not_applicable"), c["id"], yes(c.get("secret_found")), x.get("subject"),
            _lines(x.get("sans") or []), x.get("issuer"), x.get("serial"), x.get("key_type"), x.get("key_size"),
            x.get("signature_algorithm"), _time(x.get("not_before")), _time(x.get("not_after")), x.get("days_left"),
            yes(x.get("expired")), x.get("chain_length"), yes(x.get("chain_complete")), yes(x.get("self_signed")),
            yes(x.get("weak")), c.get("untrusted_reason") if c.get("untrusted_issuer") else yes(c.get("untrusted_issuer")),
            cm.get("name"), yes(cm.get("ready")) if cm else None, _time(cm.get("renewal_time")),
            cm.get("failed_issuance_attempts") if cm else None,
            f"{issuer.get('kind')} {issuer.get('name')} ({issuer.get('type')})" if issuer else None,
            _lines(c.get("hosts") or []), _lines(c.get("hosts_not_covered") or []), x.get("fingerprint_sha256"),
            _lines(problems.get(c["id"], [])), _lines(f"{u['field']}: {u['reason']}" for u in c.get("unknown") or []),
            None, None])
    book.table("Certificates", cols, rows, freeze="C2")


def _links(book: _Book, data: ReportData) -> None:
    """Sites, the links between them and each node's encryption state with its proof (PCI DSS 4.2.1)."""
    cluster = (data.facts.get("subjects", {}).get("cluster") or [{}])[0]
    enc = cluster.get("node_encryption") or {}
    states = {n["node"]: n for n in enc.get("nodes") or []}
    status = next((f.status for f in data.results.findings if f.control == "transit.node-encryption"), None)
    cols = [Col("Link"), Col("Untrusted"), Col("Link encrypted"), Col("Node pairs", "number"),
            Col("Unencrypted pairs", "number"), Col("Node"), Col("Site"), Col("Encryption active"), Col("Mechanism"),
            Col("Proof", "wrap", width=WRAP_WIDTH), Col("Configured by", "wrap"), Col("Control status", "status")]

    def node_row(link: list[Any], node: str, site: str | None) -> list[Any]:
        st = states.get(node) or {}
        active = st.get("active")
        return [*link, node, site, None if active is None else ("yes" if active else "no"), enc.get("mechanism"),
                st.get("proof") or "encryption state not established", enc.get("configured_source")]

    rows = []
    for link in cluster.get("links") or []:
        head = [f"{link['a']} <-> {link['b']}", "yes" if link["untrusted"] else "no",
                "yes" if link["encrypted"] else "no", link.get("node_pairs"), link.get("unencrypted_pairs")]
        for side in ("a", "b"):
            for node in link.get(f"nodes_{side}") or []:
                rows.append([*node_row(head, node, link[side]), status if link["untrusted"] else "not_applicable"])
    if not rows:  # one site: still list every node's state
        site_of = {n: s["name"] for s in cluster.get("sites") or [] for n in s.get("nodes") or []}
        rows = [[*node_row([None, None, None, None, None], n, site_of.get(n)), status or "not_applicable"]
                for n in cluster.get("nodes") or []]
    book.table("Links", cols, rows)


def _access_review(book: _Book, data: ReportData) -> None:
    """The six-monthly access review of PCI DSS 7.2.4: one row per subject, permission, scope and the binding that
    grants it (direct grants; what a ServiceAccount gets through its groups is on the group's own rows)."""
    cols = [Col("Subject kind"), Col("Subject"), Col("Namespace"), Col("Permission", "wrap", width=WRAP_WIDTH),
            Col("Scope"), Col("Binding"), Col("Role"), Col("Default binding"), Col("Built-in identity"),
            Col("Cluster admin"), Col("Used by workloads", "wrap"),
            Col("Decision", width=14, yours=True), Col("Reviewer", width=18, yours=True),
            Col("Review comment", "wrap", width=40, yours=True)]
    subjects = data.facts.get("subjects", {}).get("rbac_subject", [])

    def rows() -> Iterator[list[Any]]:
        for s in sorted(subjects, key=lambda s: (bool(s.get("builtin")), str(s.get("kind")), str(s.get("id")))):
            for g in s.get("grants") or []:
                if g.get("via"):
                    continue
                rules = g.get("rules") or ["(role not found: grants nothing until it is created)"
                                           if not g.get("role_found", True) else "(no rules)"]
                for rule in rules:
                    yield [s.get("kind"), s.get("principal"), s.get("namespace"), rule, g.get("scope"),
                           g.get("binding"), g.get("role"), "yes" if g.get("bootstrap") else "no",
                           "yes" if s.get("builtin") else "no", "yes" if s.get("cluster_admin") else "no",
                           _lines(s.get("workloads") or []), None, None, None]

    ((ws, n),) = book.table("Access review", cols, rows(), freeze="C2")
    decision = get_column_letter(cols.index(next(c for c in cols if c.header == "Decision")) + 1)
    dv = DataValidation(type="list", formula1='"keep,remove,change"', allow_blank=True, showErrorMessage=True,
                        errorTitle="Decision", error="Choose keep, remove or change")
    dv.add(f"{decision}2:{decision}{max(n + 1, 2)}")
    ws.data_validations.append(dv)


def _attestations(book: _Book, data: ReportData) -> None:
    """Attestations recorded for this pack (auditpack attest), with their expiry and the attachment's hash."""
    cols = [Col("Framework"), Col("Requirement"), Col("Title", "wrap"), Col("Requirement status", "status"),
            Col("Statement", "wrap", width=WRAP_WIDTH), Col("By"), Col("Date", "date"), Col("Valid until", "date"),
            Col("Expired"), Col("Attachment in pack"), Col("Attachment SHA-256"), Col("Entry", "wrap")]
    rows = [[q.framework, q.id, q.title, q.status, a.statement, a.by, a.on, a.valid_until,
             "yes" if a.expired else "no", a.attachment, a.attachment_sha256, a.entry]
            for q in data.results.requirements for a in q.attestations]
    book.table("Attestations", cols, rows)


def _files(book: _Book, data: ReportData) -> None:
    cols = [Col("File"), Col("Bytes", "number"), Col("SHA-256")]
    book.table("Files", cols, ([path, size, sha] for path, sha, size in data.evidence_files()), styled=False)


def _collection(book: _Book, data: ReportData) -> None:
    cols = [Col("Group"), Col("Kind"), Col("Namespace"), Col("Status", "status"), Col("Objects", "number"),
            Col("Seconds", "number"), Col("Message", "wrap")]
    log = data.collection.get("log") or []
    book.table("Collection", cols, [[e.get("group") or "core", e.get("kind"), e.get("namespace"),
                                     e.get("status"), e.get("count"), e.get("duration_s"), e.get("message")]
                                    for e in log])
