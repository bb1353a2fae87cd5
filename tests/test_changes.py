"""Quarter over quarter (diff, collect --previous) and re-rendering a stored pack (render)."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
import yaml
from conftest import SAMPLE, SCOPE, run_cli
from pypdf import PdfReader


@pytest.fixture(scope="module")
def quarters(demo_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Next quarter: the plain-HTTP legacy host is gone, payments lost its default deny, the warning period is 14 days."""
    import shutil

    root = tmp_path_factory.mktemp("q2")
    sample = root / "cluster"
    shutil.copytree(SAMPLE, sample)
    docs = list(yaml.safe_load_all((sample / "storefront.yaml").read_text()))
    docs = [d for d in docs if not (d and d["kind"] == "Ingress" and d["metadata"]["name"] == "shop-legacy")]
    (sample / "storefront.yaml").write_text(yaml.safe_dump_all(docs))
    docs = list(yaml.safe_load_all((sample / "payments.yaml").read_text()))
    docs = [d for d in docs if not (d and d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny")]
    (sample / "payments.yaml").write_text(yaml.safe_dump_all(docs))
    scope = yaml.safe_load(SCOPE.read_text())
    scope["certificate_expiry_days"] = 14
    (root / "scope.yaml").write_text(yaml.safe_dump(scope))
    new = root / "pack"
    r = run_cli("collect", "--snapshot", sample, "--scope", root / "scope.yaml", "--out", new, "--fail-on", "none",
                "--previous", demo_pack)
    assert r.code == 0, r.err
    return demo_pack, new


def test_changes_recorded_in_the_pack(quarters: tuple[Path, Path]) -> None:
    old, new = quarters
    ch = json.loads((new / "changes.json").read_text())
    assert ch["same_cluster"] and ch["previous_pack"] == str(old)
    fixed = {(i["control"], i["subject_id"]) for i in ch["fixed"]}
    assert ("transit.ingress-tls", "storefront/shop-legacy/legacy.shop.example.com:80") in fixed
    new_fail = {(i["control"], i["subject_id"]) for i in ch["new_failures"]}
    assert ("segmentation.default-deny-ingress", "payments") in new_fail
    assert "ingress_host: storefront/shop-legacy/legacy.shop.example.com:80" in ch["subjects_removed"]
    assert any(s.startswith("certificate_expiry_days: 30 -> 14") for s in ch["scope_changes"])
    still = {i["control"] for i in ch["still_failing"]}
    assert "transit.node-encryption" in still
    m = json.loads((new / "manifest.json").read_text())
    assert "changes.json" in m["evidence"]["files"] and m["evidence"]["previous"]["pack"] == str(old)


def test_changes_in_pdf_and_workbook(quarters: tuple[Path, Path]) -> None:
    _, new = quarters
    text = " ".join(p.extract_text() or "" for p in PdfReader(new / "report.pdf").pages)
    assert "Changes since" in text and "New failures" in text
    wb = openpyxl.load_workbook(new / "control-matrix.xlsx")
    sheet = next(n for n in wb.sheetnames if n.startswith("Changes since"))
    rows = list(wb[sheet].iter_rows(min_row=2, values_only=True))
    assert ("new failures", "segmentation.default-deny-ingress", "payments", "pass", "fail") in [r[:5] for r in rows]


def test_diff_command_text_and_json(cli, quarters: tuple[Path, Path]) -> None:
    old, new = quarters
    js = cli("diff", old, new, "--format", "json")
    assert js.code == 0
    stored = json.loads((new / "changes.json").read_text())
    assert {k: v for k, v in json.loads(js.out).items() if k != "previous_pack"} == \
        {k: v for k, v in stored.items() if k != "previous_pack"}
    text = cli("diff", old, new)
    assert "new failures: " in text.out and "segmentation.default-deny-ingress" in text.out
    assert cli("diff", old, new.parent / "nope").code == 2


def test_render_reproduces_a_pack_without_touching_it(cli, demo_pack: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in demo_pack.rglob("*") if p.is_file()}
    out = tmp_path / "rendered"
    r = cli("render", demo_pack, "--out", out)
    assert r.code == 0, r.err
    assert {p: p.read_bytes() for p in demo_pack.rglob("*") if p.is_file()} == before
    assert cli("verify", out).code == 7  # intact; unsigned, so authenticity is not established
    old_m, new_m = (json.loads((p / "manifest.json").read_text()) for p in (demo_pack, out))
    assert new_m["evidence_digest"] == old_m["evidence_digest"] and new_m["rendered"]["from"] == str(demo_pack)
    assert old_m["evidence_digest"] in " ".join(p.extract_text() or "" for p in PdfReader(out / "report.pdf").pages
                                                 ).replace("\n", "").replace(" ", "")
    again = cli("render", demo_pack, "--out", out)
    assert again.code == 2 and "never overwrites" in again.err


def test_render_refuses_a_modified_pack(cli, demo_pack: Path, tmp_path: Path) -> None:
    import shutil

    pack = tmp_path / "copy"
    shutil.copytree(demo_pack, pack)
    (pack / "results.json").write_text((pack / "results.json").read_text().replace('"fail"', '"pass"'))
    r = cli("render", pack, "--out", tmp_path / "out")
    assert r.code == 1 and "does not verify: changed: results.json" in r.err and not (tmp_path / "out").exists()
    assert len(r.err.strip().splitlines()) == 2  # one line and its hint


def test_render_summary_report_is_shorter_says_so_and_keeps_the_evidence(cli, demo_pack: Path, tmp_path: Path) -> None:
    """`render PACK --report summary` (issue 15 remainder: no CLI test): the same evidence digest, fewer pages, a
    report that says it is the summary and how to get the full one, and a pack that verifies."""
    out = tmp_path / "summary"
    r = cli("render", demo_pack, "--out", out, "--report", "summary")
    assert r.code == 0, r.err
    full, short = PdfReader(demo_pack / "report.pdf"), PdfReader(out / "report.pdf")
    assert 1 < len(short.pages) < len(full.pages)
    text = " ".join(" ".join(p.extract_text() or "" for p in short.pages).split())
    assert "This is the summary report (--report summary)" in text and "auditpack render PACK --out DIR" in text
    assert "Controls overview" not in text and "Appendix: evidence objects" not in text  # full report only
    assert cli("verify", out).code == 7
    old_m, new_m = (json.loads((p / "manifest.json").read_text()) for p in (demo_pack, out))
    assert new_m["evidence_digest"] == old_m["evidence_digest"]
