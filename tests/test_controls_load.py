"""Control and framework files are validated strictly; every error names the file, field and position."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evidence.controls import load_catalogue, load_control
from evidence.errors import ControlError

GOOD = {
    "id": "custom.example",
    "title": "Example control",
    "subject": "namespace",
    "rule": "subject.default_deny_ingress",
    "message": "'no default deny in ' + subject.name",
    "severity": "low",
    "requirements": {"pci-dss": ["1.3.1"]},
    "rationale": "Because segmentation matters for this example.",
    "remediation": "Add a default-deny policy to the namespace.",
}


def write_control(tmp_path: Path, **changes: object) -> Path:
    data = {**GOOD, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    p = tmp_path / f"{data.get('id', 'custom.example')}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_good_control_loads(tmp_path: Path) -> None:
    c = load_control(write_control(tmp_path))
    assert c.id == "custom.example" and c.rule_fields == {"default_deny_ingress"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"rule": "subject.default_deny_ingress &&"}, r"field 'rule': line 1, column 32: CEL error: Syntax error"),
    ({"rule": "subject.pods + 'x' == 1"}, r"field 'rule': line 1, column 20: CEL error: found no matching overload"),
    ({"rule": "subject.default_deny_ingres"}, r"field 'rule': line 1, column 9: CEL error: subject has no field "
                                              r"'default_deny_ingres'"),
    ({"rule": "nosuch.thing"}, r"field 'rule': line 1, column 7: CEL error: undeclared reference"),
    ({"message": "1 + 2"}, r"field 'message': .*returns int, expected string"),
    ({"applies_if": "subject.in_scope ||"}, r"field 'applies_if': line 1, column 20"),
])
def test_cel_errors_name_control_field_and_position(tmp_path: Path, changes: dict, expected: str) -> None:
    path = write_control(tmp_path, **changes)
    with pytest.raises(ControlError, match=expected) as exc:
        load_control(path)
    assert str(path) in exc.value.message and "custom.example" in exc.value.message


@pytest.mark.parametrize(("changes", "expected"), [
    ({"colour": "red"}, r"field 'colour': unknown field"),
    ({"severity": "urgent"}, r"field 'severity'"),
    ({"subject": "pod"}, r"field 'subject': .*unknown subject type 'pod'"),
    ({"id": "Bad_ID"}, r"field 'id'"),
    ({"rationale": None}, r"field 'rationale': required field is missing"),
])
def test_schema_errors(tmp_path: Path, changes: dict, expected: str) -> None:
    with pytest.raises(ControlError, match=expected):
        load_control(write_control(tmp_path, **changes))


def test_id_must_match_file_name(tmp_path: Path) -> None:
    p = write_control(tmp_path)
    p.rename(tmp_path / "other.name.yaml")
    with pytest.raises(ControlError, match="does not match the file name"):
        load_control(tmp_path / "other.name.yaml")


def test_unknown_requirement_and_framework(tmp_path: Path) -> None:
    write_control(tmp_path, requirements={"pci-dss": ["99.9.9"]})
    with pytest.raises(ControlError, match=r"pci-dss has no requirement '99\.9\.9'"):
        load_catalogue([tmp_path])
    write_control(tmp_path, requirements={"sox": ["1"]})
    with pytest.raises(ControlError, match="unknown framework 'sox'"):
        load_catalogue([tmp_path])


def test_duplicate_control_id_across_directories(tmp_path: Path) -> None:
    builtin = next(p for p in (Path(__file__).parent.parent / "controls").glob("*.yaml"))
    (tmp_path / builtin.name).write_text(builtin.read_text())
    with pytest.raises(ControlError, match="already defined"):
        load_catalogue([tmp_path])


def test_builtin_catalogue_cites_only_known_requirements() -> None:
    cat = load_catalogue()
    assert len(cat.controls) >= 12
    for c in cat.controls:
        for fid, ids in c.spec.requirements.items():
            fw = cat.framework(fid)
            assert fw is not None
            assert all(fw.requirement(r) for r in ids), (c.id, fid, ids)
    assert [f.id for f in cat.frameworks] == ["pci-dss", "gdpr", "hslf-fs-2016-40", "nis2"]


def test_cli_reports_cel_error_in_one_line(cli, tmp_path: Path) -> None:
    write_control(tmp_path, rule="subject.default_deny_ingress &&")
    result = cli("controls", "check", "--controls", tmp_path)
    assert result.code == 2
    assert "custom.example" in result.err and "line 1, column 32" in result.err
    assert "Traceback" not in result.err
