"""The PDF laid out in two processes and joined (issue 16, evidence/render/parts.py) is the same document as the one
laid out whole: every page's text (footers "Page n of N" and the contents page's numbers included), the bookmarks,
the named destinations and the links, read back with pypdf and pikepdf; and it is still PDF/A-3b."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pypdf
import pytest

from evidence import pipeline
from evidence.render import parts
from evidence.render import pdf as pdf_render
from tests.conftest import ATTESTATIONS, SAMPLE, SCOPE, run_cli


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo pack with its full report, as `make demo` builds it (the collect laid the PDF out in parts)."""
    out = tmp_path_factory.mktemp("parts") / "pack"
    r = run_cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--attestations", ATTESTATIONS, "--out", out,
                "--fail-on", "none")
    assert r.code == 0, r.err
    return out


@pytest.fixture(scope="module")
def whole(pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same pack's report laid out as one document, in a renderer process as the run's fallback does it."""
    manifest = json.loads((pack / "manifest.json").read_text())
    out = tmp_path_factory.mktemp("whole") / "report.pdf"
    with pipeline._pool() as pool:
        pool.submit(pipeline._render_pdf, pack, manifest["evidence"], manifest["evidence_digest"], out).result()
    return out


def _pages(path: Path) -> list[str]:
    return [p.extract_text() or "" for p in pypdf.PdfReader(path).pages]


def _structure(path: Path) -> tuple[list[tuple[int, str, int]], dict[str, int], list[tuple[int, str]]]:
    """(bookmarks as depth, title, page), named destinations as name -> page, links as (page, destination name)."""
    with pikepdf.open(path) as doc:
        index = {p.objgen: i for i, p in enumerate(doc.pages)}

        def page_of(dest: object) -> int:
            assert isinstance(dest, pikepdf.Array), dest
            return index[dest[0].objgen]

        marks: list[tuple[int, str, int]] = []
        with doc.open_outline() as outline:
            def walk(items: list[pikepdf.OutlineItem], depth: int) -> None:
                for item in items:
                    marks.append((depth, str(item.title), page_of(item.destination)))
                    walk(item.children, depth + 1)
            walk(outline.root, 0)
        dests = {str(k): page_of(v) for k, v in pikepdf.NameTree(doc.Root.Names.Dests).items()}
        links = [(i, str(a.Dest)) for i, p in enumerate(doc.pages) for a in p.get("/Annots", [])
                 if a.get("/Subtype") == "/Link" and "/Dest" in a]
    return marks, dests, links


def test_the_report_laid_out_in_parts_reads_as_the_report_laid_out_whole(pack: Path, whole: Path) -> None:
    joined = pack / "report.pdf"
    ours, theirs = _pages(joined), _pages(whole)
    assert len(ours) == len(theirs) > 40
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        assert a == b, f"page {n} differs"
    assert f"Page 1 of {len(ours)}" in ours[0] and f"Page {len(ours)} of {len(ours)}" in ours[-1]
    marks, dests, links = _structure(joined)
    # The contents page (page 2) gives each chapter the page its bookmark and link land on, in either part.
    for title, anchor in (("Executive summary", "summary"), ("Findings", "findings"),
                          ("Assessor sign-off", "sign-off")):
        found = re.search(rf"{title}\s*[.\s]*?(\d+)\s*$", ours[1], re.MULTILINE)
        assert found and int(found.group(1)) == dests[anchor] + 1, (title, ours[1])
    assert (marks, dests, links) == _structure(whole)
    assert len(marks) > 100 and len(links) >= 15
    assert len({dests[name] for _, name in links}) >= 15  # the contents' links land on as many different pages
    assert dests["findings"] > dests["fw-pci-dss"] > dests["summary"] == 2


def test_the_joined_report_is_pdfa_3b_with_the_first_part_s_attachments(pack: Path) -> None:
    with pikepdf.open(pack / "report.pdf") as doc:
        assert sorted(str(f.get("/F")) for f in doc.Root.AF) == ["manifest.json", "results.json"]
        assert not pikepdf.pdfa.check(doc, "3b").findings


def test_the_html_is_cut_where_chapters_begin_and_the_running_header_is_set_in_each_part(tmp_path: Path) -> None:
    head = '<html><head><link rel="stylesheet" href="report.css"></head><body>'
    chapters = [f'<section class="chapter" id="c{i}"><h1>C{i}</h1>{"<p>text</p>" * (2000 + 500 * i)}</section>'
                for i in range(6)]
    toc = '<section class="toc"><ul class="toc">' + "".join(
        f'<li><a href="#c{i}" data-toc="c{i}">C{i}</a></li>' for i in range(6)) + "</ul></section>"
    html = head + "<section class=\"cover\">cover</section>" + parts.PART_BREAK + toc + "".join(
        parts.PART_BREAK + c for c in chapters) + parts.PART_BREAK + "</body></html>"
    strings = '<div class="page-strings">S</div>'
    plan = parts.plan(html, tmp_path, strings)
    assert plan is not None and plan.toc_ids == [f"c{i}" for i in range(6)]
    first, second = (p.read_text() for p in plan.parts)
    assert first.count("<section class=\"chapter\"") + second.count("<section class=\"chapter\"") == 6
    assert "cover" in first and "cover" not in second
    # The strings box sits inside the second part's first section, never before it (that would be a blank page).
    assert second.index('<section class="chapter"') < second.index(strings) < second.index("<h1>")
    sizes = [len(first), len(second)]
    assert max(sizes) < 0.75 * sum(sizes)  # about equal halves
    contents = plan.contents.read_text()
    assert 'class="toc-numbers"' in contents and all(f'<span id="c{i}"></span>' in contents for i in range(6))
    # Too small to be worth two processes: laid out whole.
    assert parts.plan(head + "<p>x</p>" + parts.PART_BREAK * 5 + "</body></html>", tmp_path, strings) is None


def test_a_contents_page_longer_than_one_page_is_refused_so_the_report_is_laid_out_whole(tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    for name, value in (("pages-0", 5), ("pages-1", 5), ("anchors-0", {"c0": 1}), ("anchors-1", {"c1": 0})):
        (sync / name).write_text(json.dumps(value))
    toc = '<section class="toc"><ul class="toc">' + "".join(
        f'<li><a href="#c{i % 2}" data-toc="c{i % 2}">Chapter {i}</a></li>' for i in range(150)) + "</ul></section>"
    contents = tmp_path / "contents.html"
    contents.write_text(f'<html><body class="toc-numbers">{toc}</body></html>')
    plan = parts.Plan([tmp_path / "a.html", tmp_path / "b.html"], contents, ["c0", "c1"])
    with pytest.raises(parts.SplitFailed, match=r"contents took [2-9] pages"):
        parts.render_contents(plan, pdf_render.base_url(), tmp_path / "contents.pdf", sync)


def test_a_part_waiting_for_the_other_stops_when_the_other_failed(tmp_path: Path) -> None:
    (tmp_path / "abort").touch()
    with pytest.raises(parts.SplitFailed, match="other part"):
        parts._await(tmp_path, "pages-1")


def test_a_part_that_fails_stops_the_other_and_the_error_reaches_the_run(pack: Path, tmp_path: Path) -> None:
    """The first process fails before the HTML exists (results.json unreadable): the second stops waiting at once
    and the run gets the first's error, not a wait of WAIT_S; nothing is left in the temporary directory."""
    import tempfile
    import time

    root = tmp_path / "pack"
    shutil.copytree(pack, root)
    (root / "report.pdf").unlink()
    (root / "results.json").write_text("{}")
    manifest = json.loads((pack / "manifest.json").read_text())
    before = set(Path(tempfile.gettempdir()).glob("auditpack-pdf-*"))
    started = time.monotonic()
    with pytest.raises(Exception, match="validation error"):
        pipeline.render_all(root, manifest["evidence"], manifest["evidence_digest"])
    assert time.monotonic() - started < 60
    assert not (root / "report.pdf").exists()
    assert set(Path(tempfile.gettempdir()).glob("auditpack-pdf-*")) == before
