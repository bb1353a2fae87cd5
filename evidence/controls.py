"""Controls and framework catalogues as data: strict pydantic models, CEL compiled at load.

A control file is controls/<id>.yaml (file name == id); a framework is controls/frameworks/<id>.yaml.
Any problem names the file, the field and, for CEL, the line and column, and says how to fix it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evidence import yamlfile
from evidence.cel import CelCompileError, Program, compile_expr
from evidence.errors import ControlError
from evidence.facts import SUBJECT_TYPES
from evidence.resources import data_dir

Severity = Literal["critical", "high", "medium", "low", "info"]
# Display order of the built-in frameworks in every output; others follow alphabetically.
FRAMEWORK_ORDER = ("pci-dss", "gdpr", "hslf-fs-2016-40", "nis2")
SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_ID = re.compile(r"^[a-z0-9]+(?:[-][a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlSpec(_Strict):
    id: str
    title: str
    subject: str
    applies_if: str | None = None
    # Where the evidence lives outside the cluster (a managed control plane, an external log store): when
    # manual_if is true the result is `manual` and manual_message says what to attach. Checked after applies_if.
    manual_if: str | None = None
    manual_message: str | None = None
    rule: str
    message: str
    # Optional note on a pass (a string expression, '' for none): what the pass rests on, such as an assumption.
    pass_message: str | None = None
    severity: Severity
    requirements: dict[str, list[str]] = Field(min_length=1)
    rationale: str = Field(min_length=20)
    remediation: str = Field(min_length=20)

    @field_validator("id")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("must be a dotted lower-case name such as transit.ingress-tls")
        return v

    @field_validator("subject")
    @classmethod
    def _known_subject(cls, v: str) -> str:
        if v not in SUBJECT_TYPES:
            raise ValueError(f"unknown subject type {v!r}; known: {', '.join(sorted(SUBJECT_TYPES))}")
        return v


class Family(_Strict):
    id: str
    title: str


# Who a requirement binds. PCI DSS marks some requirements "service providers only", Appendix A1 binds
# multi-tenant service providers, A2 entities with SSL/early-TLS POS POI terminals, A3 designated entities
# (DESV, only when an acquirer or payment brand requires it), 3.3.3 issuers.
Applicability = Literal["all", "service-providers", "multi-tenant-providers", "issuers", "early-tls-poi",
                        "early-tls-poi-service-providers", "designated-entities"]
# The date PCI DSS v4.0's future-dated requirements became mandatory (and 6.4.1, 8.3.10, 10.7.1 were superseded).
PCI_V4_EFFECTIVE = date(2025, 3, 31)


class Requirement(_Strict):
    id: str
    family: str
    title: str
    summary: str
    frequency: str | None = None
    automatable: Literal["full", "partial", "manual"]
    # PCI DSS: new in v4.0 and future-dated (best practice until 31 March 2025, mandatory since).
    future_dated: bool | None = None
    # ... when only one element (bullet) of an older requirement was future-dated: which one.
    future_dated_part: str | None = None
    # A requirement replaced by another from a date (PCI DSS 10.7.1 by 10.7.2): kept for completeness.
    superseded_by: str | None = None
    superseded_since: date | None = None
    applies_to: Applicability | None = None
    # Swedish provisions: the consolidated version the paraphrase follows, and whether the paraphrase was
    # checked against a published text of that version (False: from secondary sources only; see notes).
    consolidation: str | None = None
    verified: bool | None = None
    manual_evidence: str
    notes: str | None = None

    @property
    def new_in_v4(self) -> str | None:
        """The wording every output uses for a future-dated PCI DSS requirement (never a bare "future-dated")."""
        if not self.future_dated:
            return None
        when = f"mandatory since {PCI_V4_EFFECTIVE.day} {PCI_V4_EFFECTIVE:%B %Y}"
        if self.future_dated_part:
            return f"new in v4.0 ({self.future_dated_part}), {when}"
        return f"new in v4.0, {when}"

    @property
    def superseded(self) -> str | None:
        if self.superseded_by is None:
            return None
        since = f" since {self.superseded_since.day} {self.superseded_since:%B %Y}" if self.superseded_since else ""
        return f"superseded by {self.superseded_by}{since}"


class Framework(_Strict):
    id: str
    title: str
    version: str
    publisher: str
    source: str
    families: list[Family]
    requirements: list[Requirement]

    def requirement(self, req_id: str) -> Requirement | None:
        return next((r for r in self.requirements if r.id == req_id), None)


@dataclass
class Control:
    spec: ControlSpec
    path: Path
    rule: Program
    message: Program
    applies_if: Program | None
    rule_fields: set[str] = field(default_factory=set)  # top-level subject fields the rule reads
    applies_fields: set[str] = field(default_factory=set)  # ... and those applies_if reads
    manual_if: Program | None = None
    manual_message: Program | None = None
    manual_fields: set[str] = field(default_factory=set)  # ... and those manual_if reads
    pass_message: Program | None = None

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class Catalogue:
    controls: list[Control]
    frameworks: list[Framework]
    digest: str
    sources: list[str]

    def framework(self, fid: str) -> Framework | None:
        return next((f for f in self.frameworks if f.id == fid), None)


def _read_yaml(path: Path) -> Any:
    return yamlfile.read(path, ControlError, "control file", "check the file")


def _validation_message(path: Path, exc: ValidationError) -> ControlError:
    err = exc.errors()[0]
    fld = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (not part of the schema)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    return ControlError(f"{path}: field {fld!r}: {msg}",
                        "see README 'Writing a control' for the fields and their types")


def load_framework(path: Path) -> Framework:
    raw = _read_yaml(path)
    try:
        fw = Framework.model_validate(raw)
    except ValidationError as exc:
        raise _validation_message(path, exc) from None
    if fw.id != path.stem:
        raise ControlError(f"{path}: id {fw.id!r} does not match the file name", f"rename the file to {fw.id}.yaml")
    families = {f.id for f in fw.families}
    seen: set[str] = set()
    for r in fw.requirements:
        if r.family not in families:
            raise ControlError(f"{path}: requirement {r.id}: unknown family {r.family!r}", "add it under families")
        if r.id in seen:
            raise ControlError(f"{path}: requirement {r.id} is listed twice", "remove the duplicate")
        seen.add(r.id)
        if r.future_dated_part and not r.future_dated:
            raise ControlError(f"{path}: requirement {r.id}: future_dated_part without future_dated: true",
                               "set future_dated: true or remove future_dated_part")
    for r in fw.requirements:
        if r.superseded_by is not None and (r.superseded_by == r.id or fw.requirement(r.superseded_by) is None):
            raise ControlError(f"{path}: requirement {r.id}: superseded_by {r.superseded_by!r} is not another "
                               "requirement of this framework", "name the id of the requirement that replaces it")
    return fw


def load_control(path: Path) -> Control:
    raw = _read_yaml(path)
    try:
        spec = ControlSpec.model_validate(raw)
    except ValidationError as exc:
        raise _validation_message(path, exc) from None
    if spec.id != path.stem:
        raise ControlError(f"{path}: id {spec.id!r} does not match the file name {path.name!r}",
                           f"rename the file to {spec.id}.yaml or change the id")
    if (spec.manual_if is None) != (spec.manual_message is None):
        raise ControlError(f"{path}: control {spec.id}: manual_if and manual_message go together",
                           "set both (when the evidence is outside the cluster, and what to attach) or neither")
    schema = _subject_schema(spec.subject)
    programs: dict[str, Program | None] = {}
    for fld, expect in (("rule", "bool"), ("message", "string"), ("applies_if", "bool"), ("manual_if", "bool"),
                        ("manual_message", "string"), ("pass_message", "string")):
        source = getattr(spec, fld)
        if source is None:
            programs[fld] = None
            continue
        try:
            programs[fld] = compile_expr(source, expect, schema)
        except CelCompileError as exc:
            where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
            raise ControlError(f"{path}: control {spec.id}: field {fld!r}: {where}CEL error: {exc.message}",
                               "fix the expression; `auditpack controls schema` lists the subject fields") from None
    rule, message = programs["rule"], programs["message"]
    assert rule is not None and message is not None
    for fld in ("rule", "message", "applies_if", "manual_if", "manual_message", "pass_message"):
        if "evidence" in _top_fields(getattr(spec, fld) or ""):
            raise ControlError(f"{path}: control {spec.id}: field {fld!r}: subject.evidence is not visible to rules",
                               "evidence references are for people; write the rule over the subject's facts")
    return Control(spec, path, rule, message, programs["applies_if"], _top_fields(spec.rule),
                   _top_fields(spec.applies_if or ""), programs["manual_if"], programs["manual_message"],
                   _top_fields(spec.manual_if or ""), programs["pass_message"])


@functools.cache
def _subject_schema(subject: str) -> dict[str, Any]:
    """A subject type's JSON schema, which CEL compiles against: built once per type, not once per control (59
    controls over 14 types: pydantic built the same schemas for 0.5 s of every run)."""
    return SUBJECT_TYPES[subject].model_json_schema()


def _top_fields(source: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"\bsubject\.([A-Za-z_][A-Za-z0-9_]*)", source)}


def load_catalogue(extra_dirs: list[Path] | None = None) -> Catalogue:
    """Built-in controls and frameworks, plus user controls from `extra_dirs`."""
    base = data_dir("controls")
    frameworks = sorted((load_framework(p) for p in sorted((base / "frameworks").glob("*.yaml"))),
                        key=lambda f: (FRAMEWORK_ORDER.index(f.id) if f.id in FRAMEWORK_ORDER else 99, f.id))
    paths = sorted(base.glob("*.yaml"))
    for d in extra_dirs or []:
        if not d.is_dir():
            raise ControlError(f"controls directory {d} does not exist", "pass a directory of <id>.yaml files")
        paths += sorted(d.glob("*.yaml"))
    controls: list[Control] = []
    by_id: dict[str, Path] = {}
    for p in paths:
        c = load_control(p)
        if c.id in by_id:
            raise ControlError(f"{p}: control id {c.id} is already defined in {by_id[c.id]}",
                               "give your control a different id")
        by_id[c.id] = p
        _check_requirements(c, frameworks)
        controls.append(c)
    h = hashlib.sha256()
    for p in sorted((base / "frameworks").glob("*.yaml")) + paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return Catalogue(controls, frameworks, h.hexdigest(), [str(p) for p in paths])


def _check_requirements(c: Control, frameworks: list[Framework]) -> None:
    known = {f.id: f for f in frameworks}
    for fid, ids in c.spec.requirements.items():
        fw = known.get(fid)
        if fw is None:
            raise ControlError(f"{c.path}: field 'requirements': unknown framework {fid!r}",
                               f"use one of: {', '.join(sorted(known))}")
        for rid in ids:
            if fw.requirement(rid) is None:
                raise ControlError(f"{c.path}: field 'requirements.{fid}': {fid} has no requirement {rid!r}",
                                   f"check the id against controls/frameworks/{fid}.yaml")
