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
    # Who signs this pack (signing.signer_info), known before manifest.sig exists; None: the pack is unsigned.
    signer: dict[str, Any] | None = None
    report: str = "full"  # "summary": cover, summary, scope, requirement table and failures only (--report)

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


# The scope chapter (PDF) and the Scope sheet (workbook) ------------------------------------------------------
# Workload kinds counted per namespace: the top-level controllers (a ReplicaSet, Job or Pod belongs to one of them).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
SCOPE_CLASSES = (("cde", "Cardholder data environment (CDE)"), ("connected", "Connected to or affecting the CDE"),
                 ("unclassified", "Unclassified"), ("out_of_scope", "Out of scope"), ("system", "Kubernetes system"))


@dataclass
class ScopeNamespace:
    name: str
    scope_class: str
    reason: str  # how the class was reached: the scope file, a namespace label, or neither
    inferred: bool  # True when the scope file is silent and auditpack decided (a label, or nothing)
    workloads: int
    pods: int
    personal_data: bool
    health_data: bool


@dataclass
class ScopeView:
    """What the assessed scope was, from scope.json and the namespace facts; nothing here is a verdict."""

    origin: str  # the scope file's path, or "inferred" when none was given
    entity: dict[str, Any] | None
    namespaces: list[ScopeNamespace]
    sites: list[dict[str, Any]]  # name, how a node is placed there, the nodes placed
    untrusted_links: list[tuple[str, str]]
    approved_flows: list[dict[str, Any]]
    waivers: list[dict[str, Any]]
    certificate_expiry_days: int
    not_seen: list[dict[str, Any]]  # collection log entries that are not ok: kind, status, message
    inferences: list[str]  # what auditpack inferred where the scope file is silent

    def by_class(self, cls: str) -> list[ScopeNamespace]:
        return [n for n in self.namespaces if n.scope_class == cls]

    def not_seen_groups(self) -> list[tuple[str, str, list[str]]]:
        """(status, message, kinds): one row per reason, so 20 absent kinds take one row, not twenty."""
        groups: dict[tuple[str, str], list[str]] = {}
        for e in self.not_seen:
            kind = str(e.get("kind")) + (f".{e['group']}" if e.get("group") else "")
            if e.get("namespace"):
                kind += f" in {e['namespace']}"
            groups.setdefault((str(e.get("status")), str(e.get("message") or "")), []).append(kind)
        return [(status, msg, kinds) for (status, msg), kinds in groups.items()]


def scope_view(data: ReportData) -> ScopeView:
    scope = data.scope or {}
    declared = scope.get("origin") not in (None, "inferred")
    subjects = data.facts.get("subjects") or {}
    health = set((scope.get("data") or {}).get("health_data") or [])
    workloads: dict[str, int] = {}
    for row in data.index:
        ref = row.get("ref") or {}
        if ref.get("kind") in WORKLOAD_KINDS and ref.get("namespace"):
            workloads[ref["namespace"]] = workloads.get(ref["namespace"], 0) + 1
    namespaces = []
    for ns in subjects.get("namespace") or []:
        reason = str(ns.get("scope_reason") or "")
        namespaces.append(ScopeNamespace(
            name=str(ns.get("name")), scope_class=str(ns.get("scope_class")), reason=reason,
            inferred="scope file" not in reason, workloads=workloads.get(str(ns.get("name")), 0),
            pods=int(ns.get("pods") or 0), personal_data=bool(ns.get("personal_data")),
            health_data=str(ns.get("name")) in health))
    rank = {c: i for i, (c, _) in enumerate(SCOPE_CLASSES)}
    namespaces.sort(key=lambda n: (rank.get(n.scope_class, len(rank)), n.name))
    cluster: dict[str, Any] = next(iter(subjects.get("cluster") or []), {})
    placed = {s.get("name"): s.get("nodes") or [] for s in cluster.get("sites") or []}
    sites = [{"name": s["name"], "selector": ", ".join(f"{k}={v}" for k, v in (s.get("node_selector") or {}).items()),
              "nodes": placed.get(s["name"], [])} for s in scope.get("sites") or []]
    links = [(str(a), str(b)) for a, b in scope.get("untrusted_links") or []]
    inferences = [f"namespace {n.name}: {n.reason}" for n in namespaces
                  if n.inferred and n.scope_class in ("cde", "connected", "out_of_scope")]
    if not scope.get("sites"):
        assumption = next((t.get("sites_assumption") for t in subjects.get("namespace_transit") or []
                           if t.get("sites_assumption")), None)
        if assumption:
            inferences.append(f"sites: {assumption}")
        for s in cluster.get("sites") or []:
            sites.append({"name": s.get("name"), "selector": "inferred from node labels", "nodes": s.get("nodes") or []})
        links += [(str(k.get("a")), str(k.get("b"))) for k in cluster.get("links") or [] if k.get("untrusted")]
    not_seen = [e for e in data.collection.get("log") or [] if e.get("status") != "ok"]
    return ScopeView(origin=str(scope.get("origin") or "inferred") if declared else "inferred",
                     entity=scope.get("entity"), namespaces=namespaces, sites=sites, untrusted_links=links,
                     approved_flows=list(scope.get("approved_flows") or []), waivers=list(scope.get("waivers") or []),
                     certificate_expiry_days=int(scope.get("certificate_expiry_days", 30)), not_seen=not_seen,
                     inferences=inferences)
