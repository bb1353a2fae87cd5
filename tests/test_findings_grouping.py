"""Issue 13: the PDF's Findings chapter groups findings of a control that say the same thing of many subjects into one
row (subjects listed by namespace); the workbook keeps one row per subject.

The grouping is unit-tested on evidence.evaluate.Finding objects as the pack stores them; the end-to-end test collects
a snapshot in which 12 namespaces share one finding and reads the rendered PDF back with pypdf and the workbook with
openpyxl."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import orjson
import pypdf
import pytest
import yaml

from evidence.evaluate import ControlResult, Finding, WaiverInfo
from evidence.inventory import ObjectRef
from evidence.render import pdf
from evidence.render.data import ReportData
from tests.conftest import run_cli

CONTROL = "segmentation.default-deny-egress"


def _ns_finding(ns: str, status: str = "fail", cls: str = "connected", waiver: WaiverInfo | None = None) -> Finding:
    """A namespace subject's finding, message worded as the control writes it (the namespace's own name inside)."""
    return Finding(control=CONTROL, subject_type="namespace", subject_id=ns, subject_name=ns, namespace=ns,
                   status=status, message=f"namespace {ns} ({cls}) has no default-deny egress policy: a pod that no "
                   "policy names may connect anywhere", reasons=[],
                   evidence=[ObjectRef(apiVersion="v1", kind="Namespace", name=ns, resourceVersion="1")],
                   waiver=waiver)


def _workload_finding(ns: str, name: str) -> Finding:
    sid = f"{ns}/Deployment/{name}"
    why = "no VulnerabilityReports in the snapshot (not collected, or trivy-operator not installed)"
    return Finding(control="vulnerability.scan-recent", subject_type="image_scan", subject_id=sid, subject_name=sid,
                   namespace=ns, status="inconclusive", message=f"evidence missing: {why}", reasons=[why],
                   evidence=[ObjectRef(apiVersion="apps/v1", kind="Deployment", namespace=ns, name=name,
                                       resourceVersion="7")])


def _restore(text: str, f: Finding) -> str:
    """Put a member's own name and namespace back into a group's shared text (what the reader does)."""
    ends = f.subject_name.split(" -> ")
    if len(ends) == 2:
        return text.replace(pdf.FLOW_FROM, ends[0]).replace(pdf.FLOW_TO, ends[1])
    return text.replace(pdf.SUBJECT, f.subject_name).replace(pdf.NAMESPACE, f.namespace or "")


def test_identical_findings_become_one_row_where_the_first_would_be() -> None:
    problems = [_ns_finding("alpha", cls="cde"), *(_ns_finding(f"team-{i}") for i in range(1, 6)),
                _ns_finding("beta", cls="cde"), _ns_finding("gamma", status="inconclusive"),
                _ns_finding("delta", status="inconclusive")]
    t = pdf.findings_table(problems)
    # alpha and beta (cde) say the same as each other but are only two: they stay rows of their own, in place.
    assert [[f.subject_name for f in r.findings] for r in t.rows] == [
        ["alpha"], [f"team-{i}" for i in range(1, 6)], ["beta"], ["gamma"], ["delta"]]
    group = t.rows[1]
    assert group.grouped and group.status == "fail" and group.namespaces == 5
    assert group.message == ("namespace \u2039namespace\u203a (connected) has no default-deny egress policy: a pod that "
                             "no policy names may connect anywhere")
    assert all(_restore(group.message, f) == f.message for f in group.findings)  # the shared text is exact
    # Namespace subjects are listed by their namespace alone; every object the members cite, once.
    assert group.listed == [(f"team-{i}", []) for i in range(1, 6)] and group.unlisted == 0
    assert [r.name for r in group.evidence] == [f"team-{i}" for i in range(1, 6)]
    # A single row keeps its own words.
    assert not t.rows[0].grouped and t.rows[0].message == problems[0].message
    assert t.total == 9 and t.hidden == 0 and t.hidden_by_namespace == []


def test_workloads_are_listed_by_namespace_and_names_are_capped() -> None:
    problems = [_workload_finding(f"ns-{i % 3}", f"app-{i:02d}") for i in range(25)]
    problems.sort(key=lambda f: f.subject_id)  # report order (data.problems sorts by subject id within a control)
    t = pdf.findings_table(problems)
    assert len(t.rows) == 1
    row = t.rows[0]
    assert row.message == problems[0].message  # nothing of the subject's own in it: unchanged
    assert row.reasons == []  # the reason is already part of the message
    # The first GROUP_NAMES_SHOWN members, by namespace, without the namespace prefix; the rest counted.
    listed = [(ns, names) for ns, names in row.listed]
    assert sum(len(n) for _, n in listed) == pdf.GROUP_NAMES_SHOWN == 20 and row.unlisted == 5
    assert listed[0] == ("ns-0", [f"Deployment/app-{i:02d}" for i in range(0, 25, 3)][:len(listed[0][1])])
    assert {ns for ns, _ in listed} == {"ns-0", "ns-1", "ns-2"}
    html = _render_table(problems)
    assert "Subjects by namespace:" in html and "; and 5 more, all in the Findings sheet" in html
    assert html.count('class="msg"') == 1 and "25 subjects" in html and "in 3 namespaces" in html


def test_the_cap_counts_rows_and_the_more_line_counts_subjects_exactly() -> None:
    # 22 distinct findings (each its own row), then one group of 30 subjects: 23 rows, 20 shown.
    singles = [_ns_finding(f"solo-{i:02d}", cls=f"class-{i:02d}") for i in range(22)]
    group = [_workload_finding(f"team-{i % 4}", f"svc-{i:02d}") for i in range(30)]
    t = pdf.findings_table(singles + group)
    assert len(t.rows) == 23 and len(t.shown) == pdf.FINDINGS_SHOWN == 20
    # Not shown anywhere: solo-20, solo-21 and the 30 members of the group in the last row.
    assert t.hidden == 2 + 30 and t.total == 52
    counts = dict(t.hidden_by_namespace)
    assert counts == {"team-0": 8, "team-1": 8, "team-2": 7, "team-3": 7, "solo-20": 1, "solo-21": 1}
    assert [n for _, n in t.hidden_by_namespace] == sorted(counts.values(), reverse=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _render_table(singles + group)))
    assert "+32 more failing, inconclusive or waived subjects of this control; all 52 are in the Findings sheet" in text


def test_findings_with_different_waivers_or_statuses_are_not_grouped() -> None:
    w1 = WaiverInfo(reason="Migration", approver="CISO", ticket="SEC-1", expires=date(2099, 1, 31), original_status="fail")
    w2 = WaiverInfo(reason="Migration", approver="CISO", ticket="SEC-2", expires=date(2099, 1, 31), original_status="fail")
    waived = [_ns_finding(f"a-{i}", status="waived", waiver=w1) for i in range(3)] + \
             [_ns_finding(f"b-{i}", status="waived", waiver=w2) for i in range(2)]
    t = pdf.findings_table(waived + [_ns_finding(f"c-{i}", status="inconclusive") for i in range(2)])
    assert [len(r.findings) for r in t.rows] == [3, 1, 1, 1, 1]
    assert t.rows[0].waiver == w1 and all(f.waiver == w1 for f in t.rows[0].findings)
    html = _render_table(waived)
    assert html.count("ticket SEC-1") == 1 and html.count("ticket SEC-2") == 2  # the group's waiver, then each other


def test_abstraction_takes_whole_names_and_a_flows_two_ends() -> None:
    f = _ns_finding("pay")
    f = f.model_copy(update={"message": "namespace pay has no policy; payments and pay-api are other names"})
    assert pdf.abstract(f.message or "", f) == \
        "namespace \u2039namespace\u203a has no policy; payments and pay-api are other names"
    flow = Finding(control="segmentation.cde-inbound-approved", subject_type="cde_flow",
                   subject_id="x", subject_name="monitoring/grafana[Deployment] -> payments/api[Deployment]",
                   namespace="payments", status="fail",
                   message="monitoring/grafana[Deployment] can reach payments/api[Deployment] on TCP 9090; allowed by "
                           "payments/allow-scrape")
    # The ends are abstracted; the policy's namespace is not the subject's name and stays.
    assert pdf.abstract(flow.message or "", flow) == \
        "\u2039from\u203a can reach \u2039to\u203a on TCP 9090; allowed by payments/allow-scrape"
    workload = _workload_finding("shop", "cart").model_copy(update={"message": "shop/Deployment/cart in shop fails"})
    assert pdf.abstract(workload.message or "", workload) == "\u2039subject\u203a in \u2039namespace\u203a fails"


def _render_table(problems: list[Finding]) -> str:
    """The Findings chapter of one control, rendered by the real template from the real view objects."""
    control = ControlResult(id=problems[0].control, title="t", severity="high", subject_type=problems[0].subject_type,
                            status="fail", counts={"fail": len(problems)}, requirements={}, rationale="r",
                            remediation="r")
    v = SimpleNamespace(controls=[control], findings={control.id: pdf.findings_table(problems)}, framework_titles={},
                        findings_shown=pdf.FINDINGS_SHOWN, evidence_shown=pdf.EVIDENCE_SHOWN, group_min=pdf.GROUP_MIN,
                        namespaces_counted=pdf.NAMESPACES_COUNTED)
    html = pdf.environment().get_template("_findings.html.j2").render(v=v)
    return html[html.index('<div class="control">'):]


# End to end: a real pack, its PDF and its workbook ----------------------------------------------------------------

NAMESPACES = [f"team-{i:02d}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def shared_finding_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 namespaces, one Deployment each, no VulnerabilityReport collected: vulnerability.scan-recent is
    inconclusive for every workload with the same reason (the issue's example)."""
    root = tmp_path_factory.mktemp("grouping")
    snap = root / "snapshot"
    snap.mkdir()
    docs: list[dict[str, object]] = []
    for i, ns in enumerate(NAMESPACES):
        docs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "uid": f"uid-ns-{i}", "resourceVersion": str(100 + i)}})
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "api", "namespace": ns, "uid": f"uid-api-{i}", "resourceVersion": str(200 + i)},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                              "template": {"metadata": {"labels": {"app": "api"}},
                                           "spec": {"containers": [{"name": "api", "image": "example/api:1.0"}]}}}})
    (snap / "cluster.yaml").write_text(yaml.safe_dump_all(docs))
    scope = root / "scope.yaml"
    scope.write_text(yaml.safe_dump({"namespaces": {"connected": NAMESPACES}}))
    out = root / "pack"
    r = run_cli("collect", "--snapshot", snap, "--scope", scope, "--out", out, "--fail-on", "none")
    assert r.code == 0, r.err
    return out


def test_pdf_groups_a_finding_shared_by_twelve_namespaces_and_the_workbook_keeps_every_row(
        shared_finding_pack: Path) -> None:
    control, reason = "vulnerability.scan-recent", "no VulnerabilityReports in the snapshot"
    manifest = orjson.loads((shared_finding_pack / "manifest.json").read_bytes())
    data = ReportData.load(shared_finding_pack, manifest["evidence"], manifest["evidence_digest"])
    mine = [f for f in data.results.findings if f.control == control]
    assert len(mine) == len(NAMESPACES) and {f.status for f in mine} == {"inconclusive"}

    reader = pypdf.PdfReader(shared_finding_pack / "report.pdf")
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    chapter = text[text.index("Findings of a control that say the same"):text.index("Methodology and limitations\n")]
    start = chapter.index(f"{control}\nInconclusive")
    after_rationale = chapter.index("Rationale.", start) + 1
    section = chapter[start:chapter.index("Rationale.", after_rationale)]  # up to the next control's rationale
    flat = re.sub(r"\s+", "", section)
    assert flat.count(re.sub(r"\s+", "", reason)) == 1, section  # one row, not twelve
    assert "12subjects" in flat and "in12namespaces" in flat and "Subjectsbynamespace:" in flat
    for i, ns in enumerate(NAMESPACES):
        assert f"{ns}:Deployment/api" in flat, ns  # every namespace named, with its workload
        if i < pdf.EVIDENCE_SHOWN:
            assert f"Deployment/{ns}/api@{200 + i}" in flat  # the first members' evidence
    assert "+4more;all12areintheEvidencesheet" in flat
    assert "morefailing,inconclusiveorwaivedsubjects" not in flat  # one row: nothing left uncounted

    wb = openpyxl.load_workbook(shared_finding_pack / "control-matrix.xlsx")
    rows = list(wb["Findings"].iter_rows(values_only=True))
    header = rows[0]
    col = {name: header.index(name) for name in ("Control", "Subject", "Namespace", "Message")}
    sheet = [r for r in rows[1:] if r[col["Control"]] == control]
    assert sorted(r[col["Subject"]] for r in sheet) == sorted(f"{ns}/Deployment/api" for ns in NAMESPACES)
    assert sorted(r[col["Namespace"]] for r in sheet) == NAMESPACES
    assert all(reason in str(r[col["Message"]]) for r in sheet)
