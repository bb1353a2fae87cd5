"""The PDF laid out in parts, one process each, and joined into one file (issue 16: the demo pack in 8 s).

WeasyPrint lays a document out in one thread, at about 5 pages a second here; the report's chapters are independent
once their page numbers are known. So the HTML is cut where a chapter begins on a new page anyway (the template's
PART_BREAK markers), into two parts of about equal weight, and each part is laid out and drawn in its own process:

- part 0: the cover and the first chapters; part 1: the other chapters. Both stop after layout, before their margin
  boxes are made, to tell each other their page counts (files in a private directory), so that every footer reads
  "Page n of N" of the whole report;
- the contents page is laid out last, in part 0's process, with the page numbers the parts' anchors landed on
  (it is one page by construction; if it is not, the caller falls back to one document);
- `join` puts the pages in order (cover, contents, part 0, part 1) with pikepdf, and merges the parts' named
  destinations (the contents' links) and bookmarks. The PDF/A identity (metadata, output intent, attached
  manifest and results) is part 0's.

The text of every page is the same as when the report is laid out as one document (tests/test_pdf_parts.py).
A link from one part into another would be dropped by WeasyPrint: only the contents page links across parts.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import orjson

PART_BREAK = "<!--auditpack:part-->"
TOC_PAGES = 1  # the contents page: one page (about 20 lines), checked when it is laid out
WAIT_S = 1800.0  # how long a part waits for the other's page count before it gives up
MIN_SPLIT_BYTES = 120_000  # below this much HTML one process is faster than two (start-up, fonts twice, the join)


class SplitFailed(Exception):
    """The report cannot be laid out in parts as planned (the contents took more than one page): lay it out whole."""


@dataclass
class Plan:
    """Where the parts' HTML files are, and what the contents page needs."""

    parts: list[Path]  # part 0 (cover and first chapters), part 1
    contents: Path  # the contents page's HTML, page numbers still to write in
    toc_ids: list[str]


def plan(html: str, workdir: Path, strings: str) -> Plan | None:
    """Cut the report's HTML into the contents page and two parts of about equal size. `strings` is the hidden box that
    sets the running header's strings in a part without the cover. None: too small to be worth two processes."""
    head, sep, body = html.partition("<body>")
    chunks = body.split(PART_BREAK)
    if not sep or len(chunks) < 5 or len(html) < MIN_SPLIT_BYTES:
        return None
    cover, toc, chapters, tail = chunks[0], chunks[1], chunks[2:-1], chunks[-1]
    sizes = [len(c) for c in chapters]
    # Part 0 also lays out the contents page at the end: weigh it as a few chapters' worth of start-up.
    toc_weight = len(toc) + 20_000
    best, cut = None, 1
    for k in range(1, len(chapters)):
        cost = max(len(cover) + toc_weight + sum(sizes[:k]), sum(sizes[k:]))
        if best is None or cost < best:
            best, cut = cost, k
    workdir.mkdir(parents=True, exist_ok=True)
    docs = [head + sep + cover + "".join(chapters[:cut]) + tail,
            head + sep + _inside_first_section("".join(chapters[cut:]), strings) + tail]
    paths = []
    for i, doc in enumerate(docs):
        path = workdir / f"part-{i}.html"
        path.write_text(doc, encoding="utf-8")
        paths.append(path)
    ids = [i.split('"', 1)[0] for i in toc.split('data-toc="')[1:]]
    anchors = "".join(f'<span id="{escape(i)}"></span>' for i in ids)  # so WeasyPrint writes the links
    contents = workdir / "contents.html"
    contents.write_text(head + '<body class="toc-numbers">'
                        + _inside_first_section(toc, strings + f'<div class="toc-anchors">{anchors}</div>') + tail,
                        encoding="utf-8")
    return Plan(paths, contents, ids)


def _inside_first_section(html: str, box: str) -> str:
    """`box` as the first child of the first section: before it, even an empty box would be a first page of its own
    (the section breaks the page before itself)."""
    start = html.index("<section")
    end = html.index(">", start) + 1
    return html[:end] + box + html[end:]


# In a part's process ------------------------------------------------------------------------------------------------

_numbering: Any = None  # (first page's number, total) or a callable page index -> number, while a part is laid out


def _install_hook() -> None:
    """Number the margin boxes of a part as pages of the whole report. WeasyPrint makes them after the last page is
    laid out (layout_document), from each page's counter state; the hook replaces `page` and `pages` in a copy."""
    from weasyprint import layout

    if getattr(layout.make_margin_boxes, "auditpack_hook", False):
        return
    original = layout.make_margin_boxes

    def make_margin_boxes(context: Any, page: Any, state: Any) -> Any:
        if _numbering is not None:
            index = context.current_page - 1
            number, total = _numbering(index, state[1]["pages"][0])
            counters = {**state[1], "page": [number], "pages": [total]}
            state = (state[0], counters, *state[2:])
        return original(context, page, state)

    make_margin_boxes.auditpack_hook = True  # type: ignore[attr-defined]
    layout.make_margin_boxes = make_margin_boxes


def page_number(part: int, i: int, counts: list[int]) -> int:
    """Page `i` (from 0) of part `part` as a page of the joined report (`join`'s order): part 0's cover is page 1,
    the contents page follows, then the rest of part 0, then part 1."""
    if part == 0:
        return 1 if i == 0 else i + 1 + TOC_PAGES
    return counts[0] + TOC_PAGES + i + 1


def _publish(sync: Path, name: str, value: Any) -> None:
    tmp = sync / f".{name}.tmp"
    tmp.write_bytes(orjson.dumps(value))
    tmp.replace(sync / name)


def _await(sync: Path, name: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        if (sync / "abort").exists():
            raise SplitFailed("the other part of the report failed")
        with contextlib.suppress(FileNotFoundError):
            return orjson.loads((sync / name).read_bytes())
        if time.monotonic() > deadline:
            raise SplitFailed(f"waited {WAIT_S:.0f} s for the other part of the report")
        time.sleep(0.01)


def render_part(index: int, part: Path, base_url: str, out: Path, sync: Path,
                attachments: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Lay out and write one part (in its own process). Returns its page count and anchors (id -> page index)."""
    global _numbering
    from weasyprint import HTML, Attachment

    from evidence.render.pdf import _pdfa_finisher

    _install_hook()
    counts: list[int] = []

    def numbering(i: int, own: int) -> tuple[int, int]:
        if not counts:  # the first margin box: this part is laid out; trade page counts with the other part
            _publish(sync, f"pages-{index}", own)
            counts.extend([_await(sync, "pages-0"), _await(sync, "pages-1")])
        return page_number(index, i, counts), counts[0] + TOC_PAGES + counts[1]

    _numbering = numbering
    try:
        document = HTML(filename=str(part), base_url=base_url).render()
    finally:
        _numbering = None
    anchors: dict[str, int] = {}
    for i, page in enumerate(document.pages):  # a chapter split over pages is an anchor on each: the first counts
        for name in page.anchors:
            anchors.setdefault(name, i)
    _publish(sync, f"anchors-{index}", anchors)
    files = [Attachment(**a) for a in attachments or []]  # the PDF/A identity is part 0's
    document.write_pdf(out, pdf_variant="pdf/a-3b", attachments=files, finisher=_pdfa_finisher)
    return {"pages": len(document.pages), "anchors": anchors}


def render_contents(plan: Plan, base_url: str, out: Path, sync: Path) -> None:
    """The contents page, once both parts are laid out: each chapter's page number written in (part 0's process)."""
    global _numbering
    from weasyprint import HTML

    from evidence.render.pdf import _pdfa_finisher

    counts = [_await(sync, "pages-0"), _await(sync, "pages-1")]
    anchors = [_await(sync, "anchors-0"), _await(sync, "anchors-1")]
    total = counts[0] + TOC_PAGES + counts[1]
    pages = {name: page_number(part, i, counts) for part in (1, 0) for name, i in anchors[part].items()}
    html = plan.contents.read_text(encoding="utf-8")
    for name in plan.toc_ids:
        attr = f'data-toc="{escape(name)}"'
        html = html.replace(attr, f'{attr} data-page="{pages.get(name, "")}"', 1)
    _install_hook()
    _numbering = lambda i, _own: (2 + i, total)  # noqa: E731  (the page after the cover)
    try:
        document = HTML(string=html, base_url=base_url).render()
    finally:
        _numbering = None
    if len(document.pages) != TOC_PAGES:
        raise SplitFailed(f"the contents took {len(document.pages)} pages, not {TOC_PAGES}")
    document.write_pdf(out, pdf_variant="pdf/a-3b", finisher=_pdfa_finisher)


# The two processes ------------------------------------------------------------------------------------------------

def render_first(root: Path, evidence: dict[str, Any], digest: str, signer: dict[str, Any] | None, report: str,
                 sync: Path, out: Path) -> dict[str, Any]:
    """Process 1: build the HTML, cut it, publish the plan (process 2 starts on part 1), lay out part 0 and then the
    contents page. A report too small to cut is written whole to `out` (`{"whole": True}`)."""
    from evidence.render import pdf

    try:
        data = pdf.load(root, evidence, digest, signer, report)
        text, strings = pdf.html(data), pdf.page_strings(data)
        del data
        files = pdf.attachments(root, evidence, digest)
        cut = plan(text, sync / "html", strings)
        if cut is None:
            _publish(sync, "plan", {"whole": True})
            pdf.write(text, files, out)
            return {"whole": True}
        del text
        _publish(sync, "plan", {"whole": False, "part": str(cut.parts[1])})
        info = render_part(0, cut.parts[0], pdf.base_url(), sync / "part-0.pdf", sync, files)
        render_contents(cut, pdf.base_url(), sync / "contents.pdf", sync)
    except BaseException:
        _publish(sync, "abort", True)  # process 2 stops waiting
        raise
    return {"whole": False, **info}


def render_second(sync: Path) -> dict[str, Any] | None:
    """Process 2: wait for process 1's plan, then lay out part 1. None: the report is rendered whole."""
    from evidence.render import pdf

    cut = _await(sync, "plan")
    if cut.get("whole"):
        return None
    try:
        return render_part(1, Path(cut["part"]), pdf.base_url(), sync / "part-1.pdf", sync)
    except BaseException:
        _publish(sync, "abort", True)
        raise


# Joining ---------------------------------------------------------------------------------------------------------

def join(part0: Path, contents: Path, part1: Path, out: Path) -> int:
    """One PDF: part 0's cover, the contents page, the rest of part 0, then part 1; named destinations and bookmarks
    of both parts pointed at the joined pages. Returns the page count."""
    import pikepdf

    with pikepdf.open(part0) as base, pikepdf.open(contents) as toc, pikepdf.open(part1) as other:
        n0 = len(base.pages)
        for i, page in enumerate(toc.pages):
            base.pages.insert(1 + i, page)
        other_pages: dict[Any, int] = {p.objgen: i for i, p in enumerate(other.pages)}
        base.pages.extend(other.pages)
        first_other = n0 + len(toc.pages)

        def moved(dest: Any) -> Any:
            """A destination array of part 1 pointed at the same page of the joined document."""
            if not isinstance(dest, pikepdf.Array) or len(dest) == 0:
                return None
            index = other_pages.get(dest[0].objgen)
            if index is None:
                return None
            return pikepdf.Array([base.pages[first_other + index].obj, *list(dest)[1:]])

        names = other.Root.get("/Names")
        if names is not None and "/Dests" in names:
            if "/Names" not in base.Root:
                base.Root.Names = pikepdf.Dictionary()
            if "/Dests" not in base.Root.Names:
                base.Root.Names.Dests = base.make_indirect(pikepdf.Dictionary(Names=pikepdf.Array()))
            tree = pikepdf.NameTree(base.Root.Names.Dests)
            for name, dest in pikepdf.NameTree(names.Dests).items():
                new = moved(dest)
                if new is not None:
                    tree[name] = base.make_indirect(new)

        order: dict[Any, int] = {p.objgen: i for i, p in enumerate(base.pages)}

        def copy(item: Any) -> Any:
            new = pikepdf.OutlineItem(str(item.title), moved(item.destination))
            new.children.extend(copy(c) for c in item.children)
            return new

        def where(item: Any) -> int:
            target: Any = item.destination
            if isinstance(target, pikepdf.Array) and len(target) and target[0].objgen in order:
                return order[target[0].objgen]
            return len(order)

        with other.open_outline() as theirs, toc.open_outline() as contents_outline:
            extra = [copy(item) for item in theirs.root]
            toc_items = []
            for item in contents_outline.root:  # the contents page's own heading, on page 2
                here: Any = item.destination
                if isinstance(here, pikepdf.Array) and len(here):
                    toc_items.append(pikepdf.OutlineItem(str(item.title),
                                                         pikepdf.Array([base.pages[1].obj, *list(here)[1:]])))
            with base.open_outline() as ours:
                items = [*ours.root, *toc_items, *extra]
                ours.root[:] = sorted(items, key=where)
        base.save(out)
        return len(base.pages)
