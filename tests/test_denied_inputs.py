"""Unknown by construction (issue 14): a denied read never turns into pass, not_applicable or manual.

Generic over the whole catalogue, so a new control or collector is covered without a line here. The input kinds of
a control are measured, not declared: the collectors run once over the demo snapshot with the inventory's
accessors recorded, and every kind the control's collector reads is then denied in turn (its objects removed and
a `forbidden` collection entry logged, as a live source records a 403). A result that the denial changed into pass,
not_applicable or manual is a false verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evidence import scope as scope_mod
from evidence.collectors import collect_all, registry
from evidence.controls import load_catalogue
from evidence.evaluate import SUBJECT_SOURCES, Results, evaluate
from evidence.facts import SUBJECT_TYPES
from evidence.inventory import CollectionEntry, Inventory, key_of
from evidence.kinds import RESOURCE_TYPES
from evidence.sources import snapshot

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "demo-cluster"
SCOPE = ROOT / "samples" / "scope.yaml"
VERDICTS_A_DENIAL_CANNOT_GIVE = ("pass", "not_applicable", "manual")


@contextmanager
def _recorded(reads: set[tuple[str | None, str]]) -> Iterator[None]:
    """Record every (group, kind) a collector asks the inventory for (group None: any group)."""
    objects, get, status = Inventory.objects, Inventory.get, Inventory.status

    def spy_objects(self: Inventory, kind: str, group: str | None = None, namespace: str | None = None) -> Any:
        reads.add((group, kind))
        return objects(self, kind, group, namespace)

    def spy_get(self: Inventory, kind: str, namespace: str | None, name: str, group: str | None = None) -> Any:
        reads.add((group, kind))
        return get(self, kind, namespace, name, group)

    def spy_status(self: Inventory, kind: str, group: str, namespace: str | None = None) -> Any:
        reads.add((group, kind))
        return status(self, kind, group, namespace)

    Inventory.objects, Inventory.get, Inventory.status = spy_objects, spy_get, spy_status  # type: ignore[method-assign]
    try:
        yield
    finally:
        Inventory.objects, Inventory.get, Inventory.status = objects, get, status  # type: ignore[method-assign]


def _kinds(reads: set[tuple[str | None, str]]) -> set[tuple[str, str]]:
    """As (group, kind) of the resource types auditpack lists (a kind read in any group: each of its groups)."""
    out = set()
    for group, kind in reads:
        out |= {(t.group, t.kind) for t in RESOURCE_TYPES if t.kind == kind and group in (None, t.group)}
    return out


def _denied(inv: Inventory, group: str, kind: str) -> Inventory:
    """The same inventory as a source denied `list` on one kind would give: no objects of it, a forbidden entry."""
    out = Inventory(source=inv.source)
    for o in inv.all_objects():
        if key_of(o)[:2] != (group, kind):
            out.add(o)
    out.log = [e for e in inv.log if (e.group, e.kind) != (group, kind)]
    out.log.append(CollectionEntry(group=group, kind=kind, status="forbidden", message=None))
    return out


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    inv = snapshot.load(SAMPLE)
    scope = scope_mod.load(SCOPE)
    catalogue = load_catalogue()
    inputs: dict[str, set[tuple[str, str]]] = {}  # subject type -> kinds its collector reads
    for c in registry():
        reads: set[tuple[str | None, str]] = set()
        with _recorded(reads):
            c.collect(inv, scope, inv.source.collected_at)
        for t in c.subject_types:
            inputs[t] = _kinds(reads)
    baseline = evaluate(catalogue, collect_all(inv, scope, inv.source.collected_at), scope, inv.log)
    return {"inv": inv, "scope": scope, "catalogue": catalogue, "inputs": inputs, "baseline": baseline}


def _false_verdicts(baseline: Results, denied: Results, controls: set[str], why: str) -> list[str]:
    before = {(f.control, f.subject_id): f.status for f in baseline.findings}
    out = []
    for f in denied.findings:
        if f.control in controls and f.status in VERDICTS_A_DENIAL_CANNOT_GIVE \
                and before.get((f.control, f.subject_id)) != f.status:
            out.append(f"{f.control} on {f.subject_id}: {before.get((f.control, f.subject_id))} -> {f.status} "
                       f"with {why}")
    was = {c.id: c.status for c in baseline.controls}
    for c in denied.controls:
        if c.id in controls and c.status in VERDICTS_A_DENIAL_CANNOT_GIVE and was[c.id] != c.status:
            out.append(f"control {c.id}: {was[c.id]} -> {c.status} with {why}")
    return out


def test_every_subject_type_declares_its_sources() -> None:
    assert set(SUBJECT_SOURCES) == set(SUBJECT_TYPES)
    for t, sources in SUBJECT_SOURCES.items():
        assert sources, f"subject type {t} names no kind it is derived from"
        for s in sources:
            assert any(r.group == s.group and r.kind == s.kind and r.plural == s.plural for r in RESOURCE_TYPES), \
                f"{t}: {s.kind}.{s.group} is not a resource type auditpack lists (evidence/kinds.py)"
            unknown_fields = set(s.fields) - set(SUBJECT_TYPES[t].model_fields)
            assert not unknown_fields, f"{t}: {s.kind} names fields the subject does not have: {unknown_fields}"


def test_the_demo_exercises_the_check(demo: dict[str, Any]) -> None:
    """The generic test below means something only if the demo's controls reach real verdicts from real reads."""
    statuses = {f.status for f in demo["baseline"].findings}
    assert {"pass", "fail", "not_applicable"} <= statuses
    assert sum(len(k) for k in demo["inputs"].values()) > 100
    assert ("rbac.authorization.k8s.io", "RoleBinding") in demo["inputs"]["rbac_subject"]


def test_denying_any_input_kind_never_yields_pass_not_applicable_or_manual(demo: dict[str, Any]) -> None:
    catalogue, baseline = demo["catalogue"], demo["baseline"]
    controls_reading: dict[tuple[str, str], set[str]] = {}
    for c in catalogue.controls:
        for kind in demo["inputs"][c.spec.subject]:
            controls_reading.setdefault(kind, set()).add(c.id)
    problems: list[str] = []
    for (group, kind), controls in sorted(controls_reading.items()):
        inv = _denied(demo["inv"], group, kind)
        facts = collect_all(inv, demo["scope"], inv.source.collected_at)
        denied = evaluate(catalogue, facts, demo["scope"], inv.log)
        problems += _false_verdicts(baseline, denied, controls, f"list {kind}.{group or 'core'} denied")
    assert len(controls_reading) > 30
    assert not problems, f"{len(problems)} false verdicts:\n" + "\n".join(problems)


def test_a_user_allowed_nothing_gets_no_verdict_at_all(demo: dict[str, Any]) -> None:
    """Issue 14's run as a user allowed nothing: access.cluster-admin, monitoring.alert-routing and logging.retention
    came out not_applicable or manual. With every kind denied, every control is inconclusive."""
    inv = demo["inv"]
    for t in RESOURCE_TYPES:
        inv = _denied(inv, t.group, t.kind)
    assert len(inv) == 0
    results = evaluate(demo["catalogue"], collect_all(inv, demo["scope"], inv.source.collected_at), demo["scope"],
                       inv.log)
    verdicts = [f"{f.control} on {f.subject_id}: {f.status}" for f in results.findings
                if f.status in VERDICTS_A_DENIAL_CANNOT_GIVE]
    assert verdicts == []
    assert {c.status for c in results.controls} == {"inconclusive"}
    retention = next(c for c in results.controls if c.id == "logging.retention")
    assert "permission denied: list" in (retention.note or "") + "".join(
        f.message or "" for f in results.findings if f.control == "logging.retention")
