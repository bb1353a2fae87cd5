"""Issue 16: what keeps a large cluster's pack bounded: capped PDF tables that say where the rest is, node lists
summarised per site in transit reasons, and the streamed (write-only) workbook used above STREAM_ROWS rows."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from openpyxl import load_workbook

from evidence.collectors.transit import _some_nodes
from evidence.render import pdf, xlsx
from evidence.render.data import ReportData


def _data(pack: Path) -> ReportData:
    manifest = orjson.loads((pack / "manifest.json").read_bytes())
    return ReportData.load(pack, manifest["evidence"], manifest["evidence_digest"])


def _text(html: str, start: str, end: str) -> str:
    part = html[html.index(start):html.index(end, html.index(start))]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))


def test_few_unencrypted_nodes_are_all_named() -> None:
    sites = {"sto": {"s1", "s2"}, "got": {"g1"}}
    assert _some_nodes(["g1", "s1", "s2"], sites) == "g1, s1, s2"


def test_many_unencrypted_nodes_are_counted_per_site_with_a_few_names() -> None:
    got = [f"got-{i:02d}" for i in range(50)]
    sto = [f"sto-{i:02d}" for i in range(2)]
    text = _some_nodes(sorted(got + sto + ["loose-1"]), {"gothenburg": set(got), "stockholm": set(sto)})
    assert text.startswith("50 nodes at gothenburg (got-00, got-01, got-02 and 47 more), "
                           "2 nodes at stockholm (sto-00, sto-01), 1 nodes at no site (loose-1)")
    assert "got-03" not in text and "Links sheet" in text


def test_pdf_lists_the_first_flows_and_namespaces_and_counts_all(demo_pack: Path) -> None:
    data = _data(demo_pack)
    subjects = data.facts["subjects"]
    flows, spaces = subjects["cde_flow"], subjects["namespace_transit"]
    assert flows and spaces
    # 30 copies of the demo's flows and namespaces, each copy with its own id and its own findings.
    subjects["cde_flow"] = [{**f, "id": f"{f['id']}#{i}", "src": f"copy{i:02d}-{f['src']}"}
                            for i in range(30) for f in flows]
    subjects["namespace_transit"] = [{**s, "id": f"{s['id']}#{i}", "name": f"{s['name']}-{i:02d}"}
                                     for i in range(30) for s in spaces]
    transit = [f for f in data.results.findings if f.subject_type == "namespace_transit"]
    data.results.findings += [f.model_copy(update={"subject_id": f"{f.subject_id}#{i}"})
                              for i in range(30) for f in transit]
    html = pdf.html(data)

    seg = _text(html, "<h2>Flows into the CDE</h2>", "<h2>Namespace reachability matrix</h2>")
    total = 30 * len(flows)
    assert f"The first 40 are listed; all {total} are in the control matrix" in seg
    assert 'sheet "Flows into CDE"' in seg
    table = html[html.index('<table class="flows">'):html.index("</table>", html.index('<table class="flows">'))]
    assert table.count("<tr>") == 1 + 40  # the header and the first 40 flows
    summary = seg[seg.index("By source namespace:"):seg.index("Status From To")]
    sources = {f["src"].split("/")[0] for f in subjects["cde_flow"]}
    counted = [int(n) for n in re.findall(r"copy\d\d-\S+ (\d+) flows?", summary)]
    assert len(counted) == min(30, len(sources))  # the 30 largest sources are named, the rest counted
    assert (f"; {len(sources) - 30} more source namespaces." in summary) == (len(sources) > 30)
    per_source = {ns: sum(1 for f in subjects["cde_flow"] if f["src"].split("/")[0] == ns) for ns in sources}
    assert sorted(counted, reverse=True) == sorted(per_source.values(), reverse=True)[:len(counted)]

    tr = _text(html, "Inside the cluster", "</section>")
    sensitive = [s for s in subjects["namespace_transit"] if s["sensitive"]]
    assert f"Of {len(sensitive)} namespaces:" in tr and "The first 40 are listed" in tr
    body = html[html.index('<table class="transit spaces">'):]
    body = body[:body.index("</table>")]
    assert body.count("<tr>") == 1 + 40
    # Failing and inconclusive namespaces come first: no passing row before the last failing one.
    badges = re.findall(r'badge s-(\w+)', body)
    assert badges and "fail" in badges
    assert all(b != "pass" for b in badges[:badges.count("fail")])


def test_streamed_workbook_keeps_the_printable_requirements_sheet(demo_pack: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Above STREAM_ROWS the workbook is written in openpyxl's write-only mode (a 10,000-pod pack); the
    Requirements sheet's page setup must survive it (a write-only sheet has no PAPERSIZE_A4 attribute)."""
    manifest = orjson.loads((demo_pack / "manifest.json").read_bytes())
    monkeypatch.setattr(xlsx, "STREAM_ROWS", 0)
    out = tmp_path / "control-matrix.xlsx"
    xlsx.render(demo_pack, manifest["evidence"], manifest["evidence_digest"], out)
    wb = load_workbook(out)
    ws = wb["Requirements"]
    assert int(ws.page_setup.paperSize) == 9 and ws.page_setup.orientation == "landscape"  # 9: A4 (ECMA-376)
    assert wb["Findings"].max_row == len(_data(demo_pack).results.findings) + 1


def test_pdf_lists_the_first_findings_of_a_control_and_counts_the_rest_per_namespace(demo_pack: Path) -> None:
    data = _data(demo_pack)
    first = next(f for f in data.results.findings if f.status == "fail")
    # Each copy says something of its own: findings that say the same are one row (issue 13).
    copies = [first.model_copy(update={"subject_id": f"{first.subject_id}#{i}", "subject_name": f"copy-{i:02d}",
                                       "namespace": f"ns-{i % 7}", "message": f"{first.message} (copy {i})"})
              for i in range(45)]
    data.results.findings += copies
    html = pdf.html(data)
    start = html.index(f'data-bookmark="{first.control} (')
    part = html[start:html.index('<div class="control">', start)]
    shown = pdf.FINDINGS_SHOWN
    table = part[part.index('<table class="findings">'):part.index("</table>", part.index('<table class="findings">'))]
    assert table.count("<tr>") == 1 + shown
    problems = [f for f in data.results.findings
                if f.control == first.control and f.status in ("fail", "inconclusive", "waived")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))
    assert f"+{len(problems) - shown} more failing, inconclusive or waived subjects" in text
    listed = re.findall(r"Not listed, by namespace: (.*?)\.", text)[0]
    counts = {ns: int(n) for ns, n in re.findall(r"(\S+) (\d+)", listed)}
    assert sum(counts.values()) == len(problems) - shown
    assert list(counts.values()) == sorted(counts.values(), reverse=True)  # most first


def test_pdf_scope_lists_every_namespace_in_or_out_of_scope_and_counts_the_others(demo_pack: Path) -> None:
    data = _data(demo_pack)
    spaces = data.facts["subjects"]["namespace"]
    extra = [{**spaces[0], "id": f"team-{i:03d}", "name": f"team-{i:03d}", "scope_class": "unclassified",
              "scope_reason": "no label, not in the scope file", "pods": 50} for i in range(60)]
    data.facts["subjects"]["namespace"] = spaces + extra
    others = [s for s in spaces + extra if s["scope_class"] in ("unclassified", "system")]
    html = pdf.html(data)
    table = html[html.index('<table class="scope-ns">'):]
    table = table[:table.index("</table>")]
    for s in spaces + extra:  # every CDE, connected and out-of-scope namespace is a row
        if s["scope_class"] in ("cde", "connected", "out_of_scope"):
            assert f">{s['name']}<" in table.replace("<wbr>", "")
    assert table.count("<tr>") == 1 + (len(spaces) + len(extra) - len(others)) + 30
    text = _text(html, '<table class="scope-ns">', "<h2>Sites and links</h2>")
    assert f"+{len(others) - 30} more namespaces (" in text and "Scope sheet of the control matrix" in text


def test_pdf_certificate_appendix_lists_failing_first_and_counts_all(demo_pack: Path) -> None:
    data = _data(demo_pack)
    certs = data.facts["subjects"]["certificate"]
    data.facts["subjects"]["certificate"] = [{**c, "id": f"{c['id']}-{i:02d}"} for i in range(30) for c in certs]
    found = [f for f in data.results.findings if f.subject_type == "certificate"]
    data.results.findings += [f.model_copy(update={"subject_id": f"{f.subject_id}-{i:02d}"})
                              for i in range(30) for f in found]
    html = pdf.html(data)
    text = _text(html, '<section class="chapter" id="certificate-appendix">', "</section>")
    assert f"Of {30 * len(certs)} certificates:" in text and "The first 60 are listed" in text
    body = html[html.index('<table class="transit certs">'):]
    body = body[:body.index("</table>")]
    assert body.count("<tr>") == 1 + 60
    badges = re.findall(r'badge s-(\w+)', body)
    assert "fail" in badges and "pass" not in badges[:badges.count("fail")]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 6, 7, 10])
def test_inventory_file_written_in_chunks_is_byte_identical_to_one_dump(n: int, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The evidence digest covers these bytes: writing a kind's list in chunks (memory) must not change them."""
    from evidence import pack

    monkeypatch.setattr(pack, "WRITE_CHUNK", 3)
    objs = [{"kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"a": "b" * i}}, "spec": {"containers": [{}]}}
            if i % 3 else {} for i in range(n)]
    pack._write_list(tmp_path / "Pod.json", objs)
    assert (tmp_path / "Pod.json").read_bytes() == pack.dumps(objs)
    assert orjson.loads((tmp_path / "Pod.json").read_bytes()) == objs
