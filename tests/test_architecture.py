"""Architecture rules from DESIGN.md, enforced: the core never imports kubernetes; generated docs are current."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

from evidence.facts import schema_markdown

CORE = ["evidence/collectors", "evidence/netpol", "evidence/evaluate.py", "evidence/render", "evidence/facts.py",
        "evidence/controls.py", "evidence/pack.py", "evidence/redact.py", "evidence/inventory.py"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_kubernetes() -> None:
    files = [p for c in CORE for p in ((ROOT / c).rglob("*.py") if (ROOT / c).is_dir() else [ROOT / c])]
    assert len(files) > 10
    offenders = [str(p.relative_to(ROOT)) for p in files if "kubernetes" in _imports(p)]
    assert not offenders


def test_collectors_do_no_io() -> None:
    forbidden = {"socket", "subprocess", "requests", "urllib", "http", "kubernetes", "ssl"}
    for p in (ROOT / "evidence" / "collectors").rglob("*.py"):
        assert not (_imports(p) & forbidden), p
        assert "open(" not in p.read_text(), f"{p} opens files; collectors are pure"


def test_subject_reference_doc_is_current() -> None:
    doc = ROOT / "docs" / "subjects.md"
    assert doc.read_text() == schema_markdown(), "regenerate: auditpack controls schema --format markdown > docs/subjects.md"
