"""Every control has passing and failing cases under tests/controls/<id>/, run through the real CEL evaluation.

A case overrides fields of a base subject (tests/controls/_base/<subject type>.yaml); the merged subject is
validated against the subject's pydantic model first, so a case cannot drift from the facts schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evidence.controls import load_catalogue
from evidence.evaluate import evaluate_subject, scope_variables
from evidence.facts import SUBJECT_TYPES
from evidence.scope import Scope

CASES = Path(__file__).parent / "controls"
CATALOGUE = load_catalogue()
CONTROLS = {c.id: c for c in CATALOGUE.controls}


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return override


def _cases() -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(CASES.glob("*/*.yaml")) if p.parent.name != "_base"]


@pytest.mark.parametrize("control_id", sorted(CONTROLS))
def test_control_has_pass_and_fail_case(control_id: str) -> None:
    folder = CASES / control_id
    assert folder.is_dir(), f"control {control_id} has no tests/controls/{control_id}/"
    expects = {yaml.safe_load(p.read_text())["expect"] for p in folder.glob("*.yaml")}
    assert {"pass", "fail"} <= expects, f"{control_id} needs at least one passing and one failing case"


@pytest.mark.parametrize(("control_id", "case"), _cases(), ids=lambda v: v if isinstance(v, str) else v.stem)
def test_control_case(control_id: str, case: Path) -> None:
    assert control_id in CONTROLS, f"{case} belongs to no control"
    control = CONTROLS[control_id]
    spec = yaml.safe_load(case.read_text())
    base = yaml.safe_load((CASES / "_base" / f"{control.spec.subject}.yaml").read_text())
    merged = _merge(base, spec.get("subject") or {})
    subject = SUBJECT_TYPES[control.spec.subject].model_validate(merged).model_dump(mode="json")
    scope = Scope.model_validate(spec.get("scope") or {})
    finding = evaluate_subject(control, subject, scope_variables(scope))
    assert finding.status == spec["expect"], f"{case.name}: {spec['description']}: got {finding.status} " \
                                             f"({finding.message})"
    if finding.status == "fail":
        assert finding.message and "could not be rendered" not in finding.message
    if spec.get("message_contains"):  # the finding (or a pass's note) says what the case is about
        assert spec["message_contains"] in (finding.message or ""), f"{case.name}: {finding.message}"
