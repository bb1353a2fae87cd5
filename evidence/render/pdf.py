"""PDF renderer: presents a pack's results to auditors as a summary report (Jinja2 HTML, then WeasyPrint)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup, escape

from evidence.evaluate import (
    REQUIREMENT_DEFINITIONS,
    REQUIREMENT_LABELS,
    REQUIREMENT_QSA_TERMS,
    STATUS_DEFINITIONS,
    ControlResult,
    FamilySummary,
    Finding,
    FrameworkSummary,
    RequirementResult,
    WaiverInfo,
)
from evidence.inventory import ObjectRef
from evidence.render.data import (
    REQUIREMENT_BADGE,
    REQUIREMENT_ORDER,
    SCOPE_CLASSES,
    SEVERITY_RANK,
    STATUS_LABEL,
    STATUS_ORDER,
    ReportData,
    ScopeView,
    scope_view,
)
from evidence.resources import data_dir

TEMPLATE = "report.html.j2"
# The PDF is a summary: long evidence lists are cut here and point to the workbook (DESIGN.md: Figures).
EVIDENCE_SHOWN = 8
FINDINGS_SHOWN = 20  # per control: at 10,000 pods 50 rows a control made 70 pages; the rest are counted per namespace
NAMESPACES_COUNTED = 20  # namespaces named in that count; the workbook's Findings sheet lists every subject
# Issue 13: findings of one control that say the same of this many subjects or more are one row, the subjects listed
# by namespace (names capped per row); the workbook keeps one row per subject.
GROUP_MIN = 3
GROUP_NAMES_SHOWN = 20
CLUSTER_WIDE = "cluster-wide"
# What stands for each grouped subject's own name and namespace in the shared message (a flow has two ends).
SUBJECT, NAMESPACE = "\u2039subject\u203a", "\u2039namespace\u203a"  # single angle quotation marks
FLOW_FROM, FLOW_TO = "\u2039from\u203a", "\u2039to\u203a"
TOP_FAILURES = 10
# Column order of the status tables (the order the auditor reads: good, bad, then the rest).
SUMMARY_STATUSES = ("pass", "fail", "inconclusive", "waived", "not_applicable", "manual")
# Chapter order; frameworks not named here follow in catalogue order.
FRAMEWORK_ORDER = ("pci-dss", "gdpr", "hslf-fs-2016-40")


# Findings rows (issue 13) -------------------------------------------------------------------------------------------

def _token(text: str) -> re.Pattern[str]:
    # Whole identifiers only: namespace `pay` is not the start of `payments`, nor of `pay-api`.
    return re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w-])")


def abstract(text: str, f: Finding) -> str:
    """`text` with the finding's own subject name and namespace replaced by placeholders (SUBJECT, NAMESPACE; for a
    flow 'a -> b' only its two ends, FLOW_FROM and FLOW_TO). Putting a member's own name and namespace back gives its
    text exactly, so one shared message stands for every member of a group."""
    ends = f.subject_name.split(" -> ")
    if len(ends) == 2:  # a flow: its ends name their namespaces; the policies it cites keep theirs
        tokens = [(ends[0], FLOW_FROM), (ends[1], FLOW_TO)]
    elif f.namespace and f.subject_name == f.namespace:
        tokens = [(f.subject_name, NAMESPACE)]
    else:
        tokens = [(f.subject_name, SUBJECT)]
        if f.namespace:
            tokens.append((f.namespace, NAMESPACE))
    for name, placeholder in sorted(tokens, key=lambda t: -len(t[0])):  # the longest first: a name holds its namespace
        if name:
            text = _token(name).sub(placeholder, text)
    return text


def _waiver_key(w: WaiverInfo | None) -> tuple[str, ...] | None:
    return None if w is None else (w.reason, w.approver, w.ticket, w.expires.isoformat(), str(w.original_status))


def _group_key(f: Finding) -> tuple[object, ...]:
    """Findings with equal keys say the same thing of different subjects: status, message and reasons (each with the
    subject's own name and namespace abstracted) and the waiver, word for word."""
    return (f.status, None if f.message is None else abstract(f.message, f),
            tuple(abstract(r, f) for r in f.reasons), _waiver_key(f.waiver))


def _short_name(f: Finding) -> str:
    """The subject's name as listed under its namespace: without a leading '<namespace>/' it already shows."""
    if f.namespace and f.subject_name.startswith(f"{f.namespace}/"):
        return f.subject_name[len(f.namespace) + 1:]
    return f.subject_name


@dataclass
class FindingRow:
    """One row of the Findings chapter: one finding, or a group of a control's findings that say the same thing of
    GROUP_MIN or more subjects (`message` and `reasons` then carry the placeholders of `abstract`)."""

    findings: list[Finding]
    message: str | None
    reasons: list[str]  # those not already part of the message
    # A group's subjects by namespace (first appearance order), at most GROUP_NAMES_SHOWN names; a namespace whose
    # only subject is the namespace itself has no names. `unlisted`: members beyond the cap.
    listed: list[tuple[str, list[str]]] = field(default_factory=list)
    unlisted: int = 0

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def grouped(self) -> bool:
        return len(self.findings) > 1

    @property
    def status(self) -> str:
        return self.first.status

    @property
    def waiver(self) -> WaiverInfo | None:
        return self.first.waiver

    @property
    def namespaces(self) -> int:
        return len({f.namespace or CLUSTER_WIDE for f in self.findings})

    @property
    def evidence(self) -> list[ObjectRef]:
        """A finding's own refs as they are; a group's: every object its members cite, once each, in member order
        (the first members' refs come first, so the ones printed are theirs)."""
        if not self.grouped:
            return self.first.evidence
        return list(dict.fromkeys(ref for f in self.findings for ref in f.evidence))


def _row(findings: list[Finding]) -> FindingRow:
    f = findings[0]
    if len(findings) == 1:
        message, reasons = f.message, list(f.reasons)
    else:
        message = None if f.message is None else abstract(f.message, f)
        reasons = [abstract(r, f) for r in f.reasons]
    row = FindingRow(findings, message, [r for r in reasons if r not in (message or "")])
    if len(findings) > 1:
        by_ns: dict[str, list[str]] = {}
        for m in findings[:GROUP_NAMES_SHOWN]:
            names = by_ns.setdefault(m.namespace or CLUSTER_WIDE, [])
            if m.subject_name != m.namespace:
                names.append(_short_name(m))
        row.listed = list(by_ns.items())
        row.unlisted = max(0, len(findings) - GROUP_NAMES_SHOWN)
    return row


@dataclass
class FindingsTable:
    """The findings of one control as the PDF shows them: rows (grouped), the first `shown` of them printed, and the
    subjects of the rows beyond counted exactly, per namespace."""

    rows: list[FindingRow]
    shown: list[FindingRow]
    total: int  # failing, inconclusive and waived subjects
    hidden: int  # subjects of the rows not shown
    hidden_by_namespace: list[tuple[str, int]]  # most first, then by name


def findings_table(problems: list[Finding], shown: int = FINDINGS_SHOWN) -> FindingsTable:
    """Group one control's findings (in report order: failing first) into rows. A group of GROUP_MIN or more sits
    where its first member would; smaller groups stay one row per finding, in their own places."""
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for f in problems:
        groups.setdefault(_group_key(f), []).append(f)
    rows: list[FindingRow] = []
    placed: set[tuple[object, ...]] = set()
    for f in problems:
        key = _group_key(f)
        members = groups[key]
        if len(members) < GROUP_MIN:
            rows.append(_row([f]))
        elif key not in placed:
            placed.add(key)
            rows.append(_row(members))
    rest = [f for r in rows[shown:] for f in r.findings]
    counts: dict[str, int] = {}
    for f in rest:
        ns = f.namespace or CLUSTER_WIDE
        counts[ns] = counts.get(ns, 0) + 1
    ranked = sorted(sorted(counts.items(), key=lambda kv: kv[0].lower()), key=lambda kv: kv[1], reverse=True)
    return FindingsTable(rows, rows[:shown], len(problems), len(rest), ranked)



@dataclass
class FamilyView:
    summary: FamilySummary
    requirements: list[RequirementResult]

    @property
    def heading(self) -> str:
        # PCI DSS and HSLF-FS family ids are meaningful ("10", "4 kap."); GDPR's are slugs ("breaches").
        fid, title = self.summary.id, self.summary.title
        return f"{fid} {title}" if any(ch.isdigit() for ch in fid) else title


@dataclass
class FrameworkView:
    summary: FrameworkSummary
    families: list[FamilyView]
    # Requirements the scope file's declared entity is not bound by: one compact table, not rows in the families.
    not_applicable_by_scope: list[RequirementResult] = field(default_factory=list)


@dataclass
class LogView:
    ok: list[dict[str, Any]] = field(default_factory=list)
    absent: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)


# Chapters of the fact families, between the framework chapters and the findings (id, title).
FACT_CHAPTERS: tuple[tuple[str, str], ...] = (
    ("segmentation", "Segmentation"),
    ("transit", "Encryption in transit"),
    ("access", "Access and authentication"),
    ("logging", "Logging and monitoring"),
    ("attestations", "Attestations"),
)
EVIDENCE_ROWS = 400  # evidence objects listed in the PDF appendix; all of them are in the workbook


@dataclass
class View:
    """What the templates need, grouped and sorted; every value comes from the pack as it is."""

    data: ReportData
    frameworks: list[FrameworkView]
    framework_titles: dict[str, str]
    controls: list[ControlResult]
    controls_by_id: dict[str, ControlResult]
    top_failures: list[ControlResult]
    inconclusive_controls: int
    problems: dict[str, list[Finding]]
    findings: dict[str, FindingsTable]  # the Findings chapter's rows per control (grouped, issue 13)
    log: LogView
    statuses: tuple[str, ...] = SUMMARY_STATUSES
    requirement_statuses: tuple[str, ...] = REQUIREMENT_ORDER
    # Each status defined once, in the method chapter (evaluate.py holds the words).
    requirement_definitions: tuple[tuple[str, str, str, str], ...] = tuple(
        (s, REQUIREMENT_LABELS[s], REQUIREMENT_QSA_TERMS[s], REQUIREMENT_DEFINITIONS[s]) for s in REQUIREMENT_ORDER)
    status_definitions: tuple[tuple[str, str], ...] = tuple((s, STATUS_DEFINITIONS[s]) for s in SUMMARY_STATUSES)
    evidence_shown: int = EVIDENCE_SHOWN
    findings_shown: int = FINDINGS_SHOWN
    group_min: int = GROUP_MIN
    namespaces_counted: int = NAMESPACES_COUNTED
    top_shown: int = TOP_FAILURES
    evidence_rows: int = EVIDENCE_ROWS

    @property
    def evidence(self) -> dict[str, Any]:
        return self.data.evidence

    @property
    def scope(self) -> ScopeView:
        return scope_view(self.data)

    @property
    def summary_only(self) -> bool:
        return self.data.report == "summary"

    @property
    def toc(self) -> list[tuple[str, str]]:
        """(section id, title) of every chapter, in report order."""
        out = [("summary", "Executive summary"), ("scope", "Assessed scope")]
        if self.summary_only:
            out += [(f"fw-{f.summary.id}", f"{f.summary.title} {f.summary.version}") for f in self.frameworks]
            return [*out, ("failures", "Failures")]
        if self.data.changes:
            out.append(("changes", f"Changes since {format_date(self.data.changes.get('previous_as_of'))}"))
        out += [(f"fw-{f.summary.id}", f"{f.summary.title} {f.summary.version}") for f in self.frameworks]
        out += list(FACT_CHAPTERS)
        return [*out, ("findings", "Findings"), ("method", "Methodology and limitations"),
                ("certificate-appendix", "Appendix: certificate inventory"),
                ("evidence-appendix", "Appendix: evidence objects"), ("sign-off", "Assessor sign-off")]


def _severity_key(c: ControlResult) -> tuple[int, int, str]:
    return (SEVERITY_RANK.get(c.severity, 9), STATUS_ORDER.index(c.status), c.id)


def _frameworks(data: ReportData) -> list[FrameworkView]:
    rank = {fid: i for i, fid in enumerate(FRAMEWORK_ORDER)}
    summaries = sorted(enumerate(data.results.frameworks),
                       key=lambda p: (rank.get(p[1].id, len(rank)), p[0]))
    out = []
    for _, fw in summaries:
        by_family: dict[str, list[RequirementResult]] = {}
        excluded = []
        for r in data.requirements_of(fw.id):
            if r.not_applicable_by_scope:
                excluded.append(r)
                continue
            by_family.setdefault(r.family, []).append(r)
        families = [FamilyView(f, by_family.pop(f.id)) for f in fw.families if f.id in by_family]
        for fid, reqs in by_family.items():  # requirements naming a family the catalogue does not list
            families.append(FamilyView(FamilySummary(id=fid, title=fid, counts={}), reqs))
        out.append(FrameworkView(fw, families, excluded))
    return out


def _log(collection: dict[str, Any]) -> LogView:
    view = LogView()
    for e in collection.get("log") or []:
        status = e.get("status")
        (view.ok if status == "ok" else view.absent if status == "absent" else view.other).append(e)
    return view


def view(data: ReportData) -> View:
    controls = sorted(data.results.controls,
                      key=lambda c: (STATUS_ORDER.index(c.status), SEVERITY_RANK.get(c.severity, 9), c.id))
    problems: dict[str, list[Finding]] = {}
    for f in data.problems():
        problems.setdefault(f.control, []).append(f)
    return View(
        data=data,
        frameworks=_frameworks(data),
        framework_titles={f.id: f.title for f in data.results.frameworks},
        controls=controls,
        controls_by_id={c.id: c for c in data.results.controls},
        top_failures=sorted((c for c in data.results.controls if c.status == "fail"), key=_severity_key),
        inconclusive_controls=sum(1 for c in data.results.controls if c.status == "inconclusive"),
        problems=problems,
        findings={cid: findings_table(fs) for cid, fs in problems.items()},
        log=_log(data.collection),
    )


# Filters ---------------------------------------------------------------------------------------------

def status_label(status: str) -> str:
    return STATUS_LABEL.get(status, status)


def requirement_label(status: str) -> str:
    return REQUIREMENT_BADGE.get(status, status)


def _parse(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def format_datetime(value: datetime | str | None) -> str:
    """ISO-like, in UTC: '2026-11-21 06:00:00 UTC' (a naive time is printed as it is)."""
    ts = _parse(value)
    if ts is None:
        return "—"
    if ts.tzinfo is None:
        return ts.strftime("%Y-%m-%d %H:%M")
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_date(value: datetime | str | None) -> str:
    ts = _parse(value)
    if ts is None:
        return "—"
    return (ts.astimezone(UTC) if ts.tzinfo else ts).strftime("%Y-%m-%d")


def format_time(value: datetime | str | None) -> str:
    """The time part of `format_datetime`: '06:00:00 UTC'."""
    return format_datetime(value).partition(" ")[2]


def short(value: str | None, n: int = 12) -> str:
    return "—" if not value else value[:n]


def thousands(value: int | None) -> str:
    return "—" if value is None else f"{value:,}".replace(",", "\u2009")  # thin space, as ISO 80000 writes it


def status_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Non-zero counts in reading order; a status this renderer does not know is still shown, last."""
    known = [(s, counts[s]) for s in SUMMARY_STATUSES if counts.get(s)]
    return known + sorted((s, n) for s, n in counts.items() if s not in SUMMARY_STATUSES and n)


def requirement_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Requirement status counts in reading order (in place first), unknown statuses last."""
    known = [(s, counts[s]) for s in REQUIREMENT_ORDER if counts.get(s)]
    return known + sorted((s, n) for s, n in counts.items() if s not in REQUIREMENT_ORDER and n)


def plural(n: int, noun: str) -> str:
    """'1 flow', '7 flows', '2 policies': the count and its noun, never 'flow(s)' (the last word is inflected)."""
    if n == 1:
        return f"1 {noun}"
    head, _, word = noun.rpartition(" ")
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        word = word[:-1] + "ies"
    elif word.endswith(("s", "x", "ch", "sh")):
        word += "es"
    else:
        word += "s"
    return f"{thousands(n)} {head + ' ' if head else ''}{word}"


def ident(value: object) -> Markup:
    """An identifier that may wrap only after / . - [ ] : , = (a break opportunity, <wbr>), never mid-word."""
    text = str(value)
    out = []
    for ch in text:
        out.append(escape(ch))
        if ch in "/.-[":
            out.append(Markup("<wbr>"))
    return Markup("").join(out)


_SIGALG = re.compile(r"^(sha|SHA)(\d+)[Ww]ith(RSA|ECDSA|DSA)(Encryption)?$")


def signature_algorithm(value: str | None) -> str:
    """'sha256WithRSAEncryption' as 'SHA-256 with RSA': words a narrow column can wrap between (OpenSSL's
    names have no break point, so they were split mid-word). Names of other shapes are printed as they are."""
    if not value:
        return "—"
    m = _SIGALG.match(value)
    return f"SHA-{m.group(2)} with {m.group(3)}" if m else value


def scope_class_label(value: str) -> str:
    return dict(SCOPE_CLASSES).get(value, value)


def severity_label(value: str) -> str:
    return value.capitalize()


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir("report_templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(status_label=status_label, status_counts=status_counts, severity=severity_label,
                       requirement_label=requirement_label, requirement_counts=requirement_counts,
                       datetime=format_datetime, date=format_date, time=format_time, short=short,
                       thousands=thousands, plural=plural, ident=ident, scope_class=scope_class_label,
                       sigalg=signature_algorithm)
    return env


def html(data: ReportData) -> str:
    """The report as one HTML document (stylesheet linked as report.css, resolved next to the templates)."""
    return environment().get_template(TEMPLATE).render(v=view(data), data=data, results=data.results)


def page_strings(data: ReportData) -> str:
    """The running header's strings (cluster, evaluation date, digest) as the cover sets them, in a box that is never
    drawn: for a part of the report laid out without the cover (render/parts.py)."""
    name = data.cluster.get("name") or "unknown cluster"
    return (f'<div class="page-strings"><span class="set-cluster">{escape(name)}</span>'
            f'<span class="set-asof">{escape(format_date(data.results.as_of))}</span>'
            f'<span class="set-digest">{escape(data.digest)}</span></div>')


def attachments(root: Path, evidence: dict[str, Any], digest: str) -> list[dict[str, str]]:
    """What the PDF/A-3b carries (WeasyPrint Attachment arguments): the evidence section of the manifest with its
    digest, and results.json. The full manifest also hashes this PDF, so it cannot be inside it."""
    manifest = orjson.dumps({"format": "auditpack-pack/v1", "evidence": evidence, "evidence_digest": digest,
                             "renders": "not included: this PDF is one of the renders the full manifest hashes"},
                            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return [
        {"string": manifest.decode(), "name": "manifest.json", "relationship": "Data",
         "description": "Evidence section of the pack manifest (identity, file hashes) and its digest"},
        {"string": (root / "results.json").read_text(encoding="utf-8"), "name": "results.json",
         "relationship": "Data", "description": "Control results and requirement roll-up"},
    ]


def base_url() -> str:
    """The only resource the HTML names is report.css next to the templates; pack data is escaped text."""
    return f"{data_dir('report_templates').as_uri()}/"


def load(root: Path, evidence: dict[str, Any], digest: str, signer: dict[str, Any] | None = None,
         report: str = "full") -> ReportData:
    data = ReportData.load(root, evidence, digest)
    data.signer, data.report = signer, report
    return data


def render(root: Path, evidence: dict[str, Any], digest: str, out: Path, signer: dict[str, Any] | None = None,
           report: str = "full") -> None:
    """Write report.pdf as one document, in this process. `signer` is signing.signer_info of the key that will sign
    the pack (the PDF is rendered before manifest.sig exists); `report` is "full" or "summary" (--report). A large
    report is laid out in two processes instead (render/parts.py, called by pipeline.render_all)."""
    write(html(load(root, evidence, digest, signer, report)), attachments(root, evidence, digest), out)


def write(text: str, files: list[dict[str, str]], out: Path) -> None:
    """Lay out and write one HTML document as the PDF/A-3b report."""
    from weasyprint import (
        HTML,  # imported here: loading WeasyPrint costs ~1 s, and only `collect` needs it
        Attachment,
    )

    HTML(string=text, base_url=base_url()).write_pdf(out, pdf_variant="pdf/a-3b",
                                                     attachments=[Attachment(**a) for a in files],
                                                     finisher=_pdfa_finisher)


def _pdfa_finisher(_document: Any, pdf: Any) -> None:
    """Tidy what WeasyPrint 70 writes before the file is saved, so a PDF/A-3b validator approves it:
    - the catalogue's /AF lists each attachment twice (once from the EmbeddedFiles name tree, once from scanning
      the file specifications): keep each once;
    - page resources carry empty /Pattern and /Shading dictionaries, which validators cannot approve: drop them."""
    import pydyf

    af = pdf.catalog.get("AF")
    if af is not None:
        pdf.catalog["AF"] = pydyf.Array(dict.fromkeys(af))
    for obj in pdf.objects:
        if isinstance(obj, dict):
            for key in ("Pattern", "Shading"):
                if isinstance(obj.get(key), dict) and not obj[key]:
                    del obj[key]
