"""Loads a pack's data files into one read-only view shared by the renderers (grouping and sorting only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from evidence.evaluate import ControlResult, Finding, RequirementResult, Results

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
STATUS_LABEL = {"pass": "Pass", "fail": "Fail", "inconclusive": "Inconclusive", "not_applicable": "Not applicable",
                "manual": "Manual", "waived": "Waived"}
STATUS_ORDER = ("fail", "inconclusive", "waived", "pass", "not_applicable", "manual")
# Requirement statuses (evaluate.RequirementStatus) have their own badges: a requirement's "pass" means more than a
# control's, and automated_pass / not_applicable need the assessor. The full wording is REQUIREMENT_LABELS.
REQUIREMENT_BADGE = {"pass": "Pass", "automated_pass": "Automated pass", "fail": "Fail", "inconclusive": "Inconclusive",
                     "waived": "Waived", "not_applicable": "N/A: to confirm", "manual": "Manual"}
# Column order of requirement counts: in place, then what needs the assessor, then what is not in place.
REQUIREMENT_ORDER = ("pass", "automated_pass", "fail", "inconclusive", "waived", "not_applicable", "manual")


@dataclass
class ReportData:
    root: Path
    evidence: dict[str, Any]  # the manifest's evidence section (identity + file hashes)
    digest: str
    results: Results
    facts: dict[str, Any]
    collection: dict[str, Any]
    index: list[dict[str, Any]]
    changes: dict[str, Any] | None = None  # changes.json, when the run compared with a previous pack
    scope: dict[str, Any] | None = None  # scope.json: CDE namespaces, sites, approved flows, waivers
    matrix: dict[str, Any] | None = None  # matrix.json: entries carried over from the previous control matrix

    @classmethod
    def load(cls, root: Path, evidence: dict[str, Any], digest: str) -> ReportData:
        def read(rel: str) -> Any:
            return orjson.loads((root / rel).read_bytes())

        def optional(rel: str) -> Any:
            return read(rel) if (root / rel).is_file() else None

        return cls(root, evidence, digest, Results.model_validate(read("results.json")), read("facts.json"),
                   read("collection.json"), read("inventory/index.json"), optional("changes.json"),
                   optional("scope.json"), optional("matrix.json"))

    @property
    def cluster(self) -> dict[str, Any]:
        return dict(self.evidence.get("cluster") or {})

    def control(self, cid: str) -> ControlResult:
        return next(c for c in self.results.controls if c.id == cid)

    def findings_for(self, cid: str) -> list[Finding]:
        return [f for f in self.results.findings if f.control == cid]

    def requirements_of(self, framework: str) -> list[RequirementResult]:
        return [r for r in self.results.requirements if r.framework == framework]

    def problems(self) -> list[Finding]:
        """Failures, inconclusive and waived findings, most severe first."""
        sev = {c.id: SEVERITY_RANK.get(c.severity, 9) for c in self.results.controls}
        keep = [f for f in self.results.findings if f.status in ("fail", "inconclusive", "waived")]
        return sorted(keep, key=lambda f: (STATUS_ORDER.index(f.status), sev.get(f.control, 9), f.control,
                                           f.subject_id))

    def evidence_files(self) -> list[tuple[str, str, int]]:
        files = self.evidence.get("files") or {}
        return [(k, v["sha256"], v["bytes"]) for k, v in sorted(files.items())]
