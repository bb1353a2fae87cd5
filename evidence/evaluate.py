"""Evaluate: controls x subjects -> results, pure. Also rolls results up to framework requirements.

Control and finding statuses: pass, fail, inconclusive (evidence missing, denied or unparseable: never a pass),
not_applicable, manual (the evidence lives outside the cluster), waived (an active waiver from the scope file).
Requirement statuses are a separate type (RequirementStatus): a requirement says pass only when the catalogue
rates it `automatable: full`, nothing manual remains and every control behind it passed; with every control
passing otherwise it is automated_pass (assessor evidence still required).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from evidence.cel import MAX_RESULT_CHARS, env, memory_guard
from evidence.controls import Catalogue, Control
from evidence.facts import SUBJECT_TYPES, Facts
from evidence.inventory import CollectionEntry, ObjectRef
from evidence.kinds import find
from evidence.scope import Scope, Waiver

Status = Literal["pass", "fail", "inconclusive", "not_applicable", "manual", "waived"]
STATUSES: tuple[Status, ...] = ("fail", "inconclusive", "pass", "waived", "not_applicable", "manual")
# What a framework requirement can say. Kept apart from Status so no renderer shows a control's "pass" as a
# requirement's (issue 12): an automated check that passes shows the cluster's part, not the requirement.
RequirementStatus = Literal["pass", "automated_pass", "fail", "inconclusive", "waived", "not_applicable", "manual"]
# Worst first: the order a requirement's status is decided in and the order tables show them.
REQUIREMENT_STATUSES: tuple[RequirementStatus, ...] = (
    "fail", "inconclusive", "waived", "manual", "automated_pass", "not_applicable", "pass")
# One line per requirement status, as every output prints it (PDF, workbook, OSCAL remarks, controls list).
REQUIREMENT_LABELS: dict[str, str] = {
    "pass": "In place: automated checks cover all of it and pass",
    "automated_pass": "Automated checks pass: assessor evidence required",
    "fail": "Not in place: an automated check failed",
    "inconclusive": "Not tested: evidence missing, denied or unreadable",
    "waived": "Not in place: failures accepted under a waiver",
    "not_applicable": "Not applicable per cluster evidence, assessor to confirm",
    "manual": "Not tested by auditpack: assessor evidence required",
}
# What each means, and the Report on Compliance finding it corresponds to (in place, not in place, not tested,
# not applicable); shown once in the PDF's method chapter and in the workbook's Legend sheet.
REQUIREMENT_QSA_TERMS: dict[str, str] = {
    "pass": "in place",
    "automated_pass": "not yet in place: the cluster's part is shown, the rest needs the assessor",
    "fail": "not in place",
    "inconclusive": "not tested",
    "waived": "not in place (exception accepted by the organisation)",
    "not_applicable": "not applicable, once the assessor has confirmed and documented why",
    "manual": "not tested by auditpack",
}
REQUIREMENT_DEFINITIONS: dict[str, str] = {
    "pass": "The catalogue rates the requirement fully automatable for the cluster, nothing manual remains, and "
            "every control behind it passed on the evidence in this pack.",
    "automated_pass": "Every automated control behind the requirement passed, but they cover only part of it. The "
                      "assessor examines the evidence listed under Evidence to attach before concluding.",
    "fail": "At least one automated control behind the requirement failed. An attestation may cover the manual "
            "part; it does not cover the failed automated part.",
    "inconclusive": "No control failed, but at least one could not reach a verdict: evidence was missing, denied or "
                    "could not be interpreted. Never counted as in place.",
    "waived": "Failures behind the requirement are accepted by a documented, unexpired waiver (reason, approver, "
              "ticket, expiry); the assessor judges whether the exception is acceptable.",
    "not_applicable": "Every control behind the requirement found nothing in the cluster it applies to. PCI DSS asks "
                      "the assessor to document why a requirement does not apply.",
    "manual": "No automated control covers the requirement, or its evidence lives outside the cluster. The "
              "compliance team attaches the evidence named; an attestation is shown beside the status and never "
              "changes it.",
}
# Control and finding statuses, defined in the same words (PDF method chapter, workbook legend).
STATUS_DEFINITIONS: dict[str, str] = {
    "pass": "The control's rule held for the subject, on the evidence in this pack.",
    "fail": "The rule did not hold; the message says what was found.",
    "inconclusive": "Evidence was missing, denied or could not be interpreted, or the rule could not be "
                    "evaluated. Never counted as a pass.",
    "waived": "A failure or inconclusive result accepted by a waiver in the scope file (reason, approver, ticket, "
              "expiry). Expired waivers do not apply.",
    "not_applicable": "The control does not apply to the subject (for example, a namespace outside the scope it "
                      "targets), or the cluster, fully read, had nothing for it to judge.",
    "manual": "The evidence lives outside the cluster (a managed control plane, an identity provider, an external "
              "log store); the finding says what to attach.",
}
# manual_evidence that says nothing remains for people to supply.
_NOTHING_MANUAL = {"", "none", "none.", "-", "n/a"}


def manual_remains(manual_evidence: str) -> bool:
    """Whether the catalogue asks for evidence people supply (empty or "none" means it does not)."""
    return manual_evidence.strip().lower() not in _NOTHING_MANUAL


def requirement_status(automatable: str, manual_evidence: str, control_statuses: list[str]) -> RequirementStatus:
    """A requirement's status from its catalogue rating and its controls' statuses (issue 12)."""
    if not control_statuses:
        return "manual"
    for s in ("fail", "inconclusive", "waived", "manual"):
        if s in control_statuses:
            return s
    if "pass" not in control_statuses:
        return "not_applicable"  # never a pass on its own: the assessor confirms and documents it
    if automatable == "full" and not manual_remains(manual_evidence):
        return "pass"
    return "automated_pass"


# Which kinds each subject type is derived from (issue 14, DESIGN.md "Every fact knows its sources"). A kind whose
# read was denied or failed makes the listed facts of every subject of that type unknown, with the reason, so any
# rule, applies_if or manual_if that reads them is inconclusive; no fields listed: every fact of the subject.
# `primary` kinds are those the subjects are built from: when one was not read, "no subjects" proves nothing.
# `local` kinds feed a subject only from its own namespace (a certificate's Secret, a namespace's PolicyReports):
# a denial in one namespace leaves the subjects of the others known. Every other kind can cross namespaces (the
# reachability engine, RBAC), so a denial anywhere makes the facts of every subject of the type unknown.
# tests/test_denied_inputs.py denies every kind each collector reads, in turn, and fails on a verdict it changes
# into pass, not_applicable or manual: a new collector or control that reads more must declare it here.
@dataclass(frozen=True)
class Source:
    group: str
    kind: str
    plural: str
    fields: tuple[str, ...] = ()  # the facts derived from it; empty: all of the subject's facts
    primary: bool = False
    local: bool = False


def _src(group: str, kind: str, *fields: str, primary: bool = False, local: bool = False) -> Source:
    t = find(kind, group)
    if t is None:  # a programming error, caught by the first import in any test run
        raise ValueError(f"{kind}.{group} is not in evidence/kinds.py")
    return Source(group, kind, t.plural, tuple(fields), primary, local)


_CORE, _APPS, _BATCH, _RBAC, _NET = "", "apps", "batch", "rbac.authorization.k8s.io", "networking.k8s.io"
_MON = "monitoring.coreos.com"
# Workloads and their owners: who runs a pod, what a Deployment runs (names, images, settings).
_OWNERS = ((_APPS, "Deployment"), (_APPS, "DaemonSet"), (_APPS, "StatefulSet"), (_APPS, "ReplicaSet"),
           (_BATCH, "Job"), (_BATCH, "CronJob"))
# NetworkPolicy and the CNI policy kinds the reachability engine reads.
_POLICIES = ((_NET, "NetworkPolicy"), ("crd.projectcalico.org", "GlobalNetworkPolicy"),
             ("crd.projectcalico.org", "NetworkPolicy"), ("cilium.io", "CiliumNetworkPolicy"),
             ("cilium.io", "CiliumClusterwideNetworkPolicy"), ("policy.networking.k8s.io", "ClusterNetworkPolicy"))
_ROLES = ((_RBAC, "ClusterRole"), (_RBAC, "ClusterRoleBinding"), (_RBAC, "Role"), (_RBAC, "RoleBinding"))
# Every kind that defines an entry point, and what configures the controllers behind them.
_ENTRY = ((_NET, "Ingress"), (_NET, "IngressClass"), (_CORE, "Service"), ("gateway.networking.k8s.io", "Gateway"),
          ("gateway.networking.k8s.io", "GatewayClass"), ("gateway.networking.k8s.io", "HTTPRoute"),
          ("networking.istio.io", "Gateway"), ("traefik.io", "IngressRoute"), ("traefik.io", "TLSOption"),
          ("traefik.io", "Middleware"), ("projectcontour.io", "HTTPProxy"), (_CORE, "ConfigMap"))
_CNI = ((_APPS, "DaemonSet"), (_CORE, "ConfigMap"), ("crd.projectcalico.org", "FelixConfiguration"),
        ("projectcalico.org", "FelixConfiguration"), ("cilium.io", "CiliumNode"))


def _all(pairs: tuple[tuple[str, str], ...], *fields: str) -> list[Source]:
    return [_src(g, k, *fields) for g, k in pairs]


_CERT_FIELDS = ("secret_found", "x509", "untrusted_issuer", "untrusted_reason", "hosts_not_covered")
_HOST_CERT_FIELDS = ("secret_found", "certificate", "certificate_id", "san_covers_host", "fallback_certificate")
SUBJECT_SOURCES: dict[str, list[Source]] = {
    "cluster": [_src(_CORE, "Node", primary=True), _src(_CORE, "Pod"), *_all(_CNI)],
    "namespace": [_src(_CORE, "Namespace", primary=True), _src(_CORE, "Pod"), *_all(_POLICIES),
                  *_all(_CNI, "policies_enforced", "enforcement_reason"), *_all(_OWNERS, "pods_not_selected")],
    "cde_flow": [_src(_CORE, "Namespace", primary=True), _src(_NET, "NetworkPolicy", primary=True),
                 _src(_CORE, "Pod", primary=True), _src(_CORE, "Node"), *_all(_POLICIES), *_all(_CNI),
                 *_all(_OWNERS), _src(_MON, "Prometheus"), _src(_MON, "Alertmanager")],
    "network_policy_access": [*[_src(g, k, primary=True) for g, k in _ROLES]],
    "ingress_host": [_src(_NET, "Ingress", primary=True), *_all(_ENTRY), _src(_CORE, "Namespace"),
                     *_all(_OWNERS[:3]), _src(_CORE, "Secret", *_HOST_CERT_FIELDS, local=True)],
    "certificate": [_src(_CORE, "Secret", *_CERT_FIELDS, primary=True, local=True),
                    _src("cert-manager.io", "Certificate"),
                    _src("cert-manager.io", "Issuer"), _src("cert-manager.io", "ClusterIssuer"),
                    *_all(_ENTRY, "hosts", "host_names", "public_hosts", "hosts_not_covered", "in_use"),
                    _src(_CORE, "Namespace", "hosts", "public_hosts", "in_use"),
                    *_all(_OWNERS[:3], "hosts", "host_names", "public_hosts", "hosts_not_covered", "in_use")],
    "namespace_transit": [_src(_CORE, "Namespace", primary=True), _src(_CORE, "Pod"), _src(_CORE, "Node"),
                          *_all(_CNI), *_all(_OWNERS), _src("security.istio.io", "PeerAuthentication"),
                          _src("networking.istio.io", "DestinationRule"), _src("policy.linkerd.io", "Server"),
                          _src(_MON, "Prometheus"), _src(_MON, "Alertmanager")],
    "monitoring": [_src(_MON, "Prometheus", primary=True), _src(_CORE, "Node"), _src(_CORE, "Pod"),
                   _src(_CORE, "Namespace"), _src(_CORE, "ConfigMap"), *_all(_OWNERS), _src(_MON, "Alertmanager"),
                   _src(_MON, "AlertmanagerConfig", "alert_routing"),
                   _src(_MON, "PrometheusRule", "alert_rules", "security_alerts", "components_without_alerts"),
                   _src(_CORE, "Secret", "security_alerts", "components_without_alerts"),
                   _src("cert-manager.io", "Certificate", "security_alerts", "components_without_alerts")],
    "host_auth": [_src(_NET, "Ingress", primary=True), *_all(_ENTRY), _src(_CORE, "Namespace"), _src(_CORE, "Pod"),
                  *_all(_OWNERS), _src("security.istio.io", "AuthorizationPolicy"),
                  _src("security.istio.io", "RequestAuthentication")],
    "auth_proxy": [_src(_APPS, "Deployment", primary=True), _src(_CORE, "ConfigMap"), _src(_CORE, "Pod"),
                   *_all(_OWNERS), *_all(_ENTRY, "hosts")],
    "rbac_subject": [*[_src(g, k, primary=k.endswith("Binding")) for g, k in _ROLES], _src(_CORE, "Namespace"),
                     _src(_CORE, "Pod", "workloads"), *_all(_OWNERS, "workloads")],
    "workload_identity": [*[_src(g, k, primary=True) for g, k in _OWNERS[:3]], *_all(_OWNERS[3:]),
                          _src(_CORE, "Pod"), _src(_CORE, "Namespace"), _src(_CORE, "ServiceAccount"),
                          *_all(_ROLES, "token_permissions", "token_cluster_admin")],
    "namespace_credentials": [_src(_CORE, "Namespace", primary=True), _src(_CORE, "Pod"),
                              _src(_CORE, "ConfigMap", local=True),
                              *_all(_OWNERS)],
    "namespace_posture": [_src(_CORE, "Namespace", primary=True), _src(_CORE, "Pod"), _src(_CORE, "Node"),
                          _src(_CORE, "ConfigMap", "enforce", "enforce_source", "enforce_version"),
                          _src("wgpolicyk8s.io", "PolicyReport", "policy_reports", "policy_pass", "policy_fail",
                               "policy_warn", "policy_error", "policy_skip", "failing_policies", local=True)],
    "image_scan": [*[_src(g, k, primary=True) for g, k in _OWNERS[:3]], *_all(_OWNERS[3:]), _src(_CORE, "Pod"),
                   _src(_CORE, "Namespace"), _src("aquasecurity.github.io", "VulnerabilityReport", local=True)],
}


class WaiverInfo(BaseModel):
    reason: str
    approver: str
    ticket: str
    expires: date
    original_status: Status | None = None


class Finding(BaseModel):
    control: str
    subject_type: str
    subject_id: str
    subject_name: str
    namespace: str | None = None
    status: Status
    message: str | None = None
    reasons: list[str] = Field(default_factory=list)
    evidence: list[ObjectRef] = Field(default_factory=list)
    waiver: WaiverInfo | None = None


class ControlResult(BaseModel):
    id: str
    title: str
    severity: str
    subject_type: str
    status: Status
    counts: dict[str, int]
    requirements: dict[str, list[str]]
    rationale: str
    remediation: str
    note: str | None = None


class AttestationInfo(BaseModel):
    """A person's statement about a requirement no cluster can show (auditpack attest / collect --attestations)."""

    statement: str
    by: str
    on: date
    valid_until: date
    attachment: str | None = Field(default=None, description="path inside the pack (attachments/...)")
    attachment_name: str | None = None
    attachment_sha256: str | None = None
    expired: bool = Field(description="valid_until is before the evaluation date: the requirement is open again")
    entry: str = Field(description="'<file>: entry <n>' it came from")


class RequirementResult(BaseModel):
    framework: str
    id: str
    family: str
    title: str
    summary: str
    frequency: str | None
    automatable: str
    future_dated: bool | None = None
    # From the catalogue, for the outputs (issue 12): "new in v4.0, mandatory since 31 March 2025" (PCI DSS),
    # "superseded by 10.7.2 since 31 March 2025", who the requirement binds, and for Swedish provisions the
    # consolidation the paraphrase follows and whether it was verified against the provision's wording.
    new_in_v4: str | None = None
    superseded: str | None = None
    applies_to: str | None = None
    consolidation: str | None = None
    verified: bool | None = None
    notes: str | None = None
    status: RequirementStatus
    controls: list[str]
    manual_evidence: str
    counts: dict[str, int] = Field(default_factory=dict)
    # Attestations never change the status: a manual requirement stays manual (the assessor examines what
    # was attached); `attested` says a current one exists, an expired one is listed but no longer counts.
    attestations: list[AttestationInfo] = Field(default_factory=list)
    attested: bool = False
    # Set when the scope file's declared entity is not one this requirement binds (its status is then
    # not_applicable): the reason, e.g. "Appendix A1 binds multi-tenant service providers only; ...".
    not_applicable_by_scope: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_text(self) -> str:
        """The status in words, with what a current attestation does and does not cover."""
        if self.not_applicable_by_scope:
            return self.not_applicable_by_scope
        text = REQUIREMENT_LABELS.get(self.status, self.status)
        if not self.attested:
            return text
        if self.status in ("fail", "inconclusive", "waived"):
            part = {"fail": "failed", "inconclusive": "could not be tested", "waived": "failed (waived)"}[self.status]
            return f"{text}. A current attestation covers the manual part; the automated part {part}"
        return f"{text}. A current attestation is recorded: the assessor examines it"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def evidence_to_attach(self) -> bool:
        """manual_evidence is shown for every status except a full pass."""
        return self.status != "pass" and manual_remains(self.manual_evidence)


class FamilySummary(BaseModel):
    id: str
    title: str
    counts: dict[str, int]


class FrameworkSummary(BaseModel):
    id: str
    title: str
    version: str
    requirements: int
    automated: int
    counts: dict[str, int]
    families: list[FamilySummary]
    attested: int = Field(default=0, description="requirements with a current attestation")


class ExpiredWaiver(BaseModel):
    control: str
    subject: str
    ticket: str
    expired_on: date
    matched: int


class Results(BaseModel):
    as_of: datetime
    controls: list[ControlResult]
    findings: list[Finding]
    requirements: list[RequirementResult]
    frameworks: list[FrameworkSummary]
    control_counts: dict[str, int]
    finding_counts: dict[str, int]
    expired_waivers: list[ExpiredWaiver]
    collection_problems: list[str]


def _aggregate(statuses: list[str]) -> Status:
    # manual (evidence to attach) outranks pass: a control is not passed while part of it awaits people. A waived
    # subject outranks both: an accepted failure is still a failure, never hidden behind the subjects that pass.
    order: tuple[Status, ...] = ("fail", "inconclusive", "waived", "manual", "pass")
    for s in order:
        if s in statuses:
            return s
    return "not_applicable"


def _problem(entry: CollectionEntry, plural: str) -> str:
    return entry.reason(plural) or f"{plural} were read"


def collection_problems(log: list[CollectionEntry]) -> list[str]:
    """One line per denied or failed read, e.g. "permission denied: list secrets"; the same problem in several
    namespaces is one line naming them ("... in 3 namespaces (a, b, c)"), where it first appeared."""
    out: list[str] = []
    grouped: dict[str, list[str]] = {}  # line with the namespace as "\0" -> its namespaces, in log order
    for e in log:
        if e.status in ("forbidden", "error"):
            t = find(e.kind, e.group)
            line = e.message or _problem(e, t.label if t else e.label())
            if e.namespace and e.namespace not in line:
                line += f" in namespace {e.namespace}"
            # The namespace as a whole word: namespace "pay" is not the start of "payments".
            template = re.sub(rf"namespace {re.escape(e.namespace)}(?![\w.-])", "namespace \0", line) \
                if e.namespace else line
            if e.namespace and template != line:
                if template not in grouped:
                    grouped[template] = []
                    out.append(template)
                grouped[template].append(e.namespace)
            else:
                out.append(line)
    return [_namespaces_line(x, grouped[x]) if x in grouped else x for x in out]


def _namespaces_line(template: str, namespaces: list[str]) -> str:
    if len(namespaces) == 1:
        return template.replace("namespace \0", f"namespace {namespaces[0]}")
    listed = ", ".join(namespaces[:10]) + (f" and {len(namespaces) - 10} more" if len(namespaces) > 10 else "")
    plural = template.replace("namespace \0 is out of scope and was not tried",
                              "namespace \0 are out of scope and were not tried")
    return plural.replace("namespace \0", f"{len(namespaces)} namespaces ({listed})")


def evaluate(catalogue: Catalogue, facts: Facts, scope: Scope, log: list[CollectionEntry]) -> Results:
    as_of = facts.as_of
    today = as_of.date()
    scope_vars = scope_variables(scope)
    findings: list[Finding] = []
    control_results: list[ControlResult] = []
    waiver_hits: Counter[int] = Counter()
    cel_env = env()
    by_type: dict[str, list[Control]] = {}
    for c in catalogue.controls:
        by_type.setdefault(c.spec.subject, []).append(c)
    per_control: dict[str, list[Finding]] = {c.id: [] for c in catalogue.controls}
    for stype, controls in by_type.items():
        denied = [e for e in log if e.status in ("forbidden", "error")]
        for subject in facts.of_type(stype):
            activation = cel_env.Activation({"subject": cel_view(subject), "scope": scope_vars})
            unread = unread_facts(stype, denied, subject) if denied else {}
            unknown = {**unread, **{u["field"]: u["reason"] for u in subject.get("unknown") or []}}
            with memory_guard():  # one address-space cap for all controls on this subject (cel.py)
                found = [_evaluate_one(c, subject, activation, unknown) for c in controls]
            for c, f in zip(controls, found, strict=True):
                _apply_waivers(f, scope.waivers, today, waiver_hits)
                per_control[c.id].append(f)
    for c in catalogue.controls:
        fs = per_control[c.id]
        status = _aggregate([f.status for f in fs])
        note = None
        if not fs:
            # "No subjects" is evidence only when every kind they could come from was read.
            missing = sorted({_problem(_status(log, s.group, s.kind), s.plural)
                              for s in SUBJECT_SOURCES.get(c.spec.subject, [])
                              if s.primary and _status(log, s.group, s.kind).status != "ok"}
                             | set(unread_facts(c.spec.subject, log).values()))
            if missing:
                status = "inconclusive"
                note = "; ".join(missing)
            else:
                note = f"no {c.spec.subject} subjects in this cluster"
        findings.extend(fs)
        control_results.append(ControlResult(
            id=c.id, title=c.spec.title, severity=c.spec.severity, subject_type=c.spec.subject, status=status,
            counts=_counts(f.status for f in fs), requirements=c.spec.requirements, rationale=c.spec.rationale.strip(),
            remediation=c.spec.remediation.strip(), note=note))
    requirements, frameworks = _roll_up(catalogue, control_results, scope)
    expired = [ExpiredWaiver(control=w.control, subject=w.subject, ticket=w.ticket, expired_on=w.expires,
                             matched=waiver_hits[i]) for i, w in enumerate(scope.waivers) if w.expires < today]
    return Results(
        as_of=as_of, controls=control_results, findings=findings, requirements=requirements,
        frameworks=frameworks, control_counts=dict(Counter(c.status for c in control_results)),
        finding_counts=dict(Counter(f.status for f in findings)), expired_waivers=expired,
        collection_problems=collection_problems(log))


def unread_facts(subject_type: str, log: list[CollectionEntry], subject: dict[str, Any] | None = None) -> dict[str, str]:
    """Facts of a subject of this type (any subject, when None) that are unknown because a kind they derive from was
    denied or failed, by field. A denial in one namespace counts for every subject, except for `local` kinds: then
    only for subjects in that namespace (or whose Secret lives there) and for subjects of no namespace."""
    model = SUBJECT_TYPES.get(subject_type)
    if model is None:
        return {}
    facts = [f for f in model.model_fields if f not in _IDENTITY]
    where = None if subject is None or subject.get("namespace") is None else \
        {subject.get("namespace"), subject.get("secret_namespace") or subject.get("namespace")}
    out: dict[str, str] = {}
    for s in SUBJECT_SOURCES.get(subject_type, []):
        for e in log:
            if s.local and e.namespace is not None and where is not None and e.namespace not in where:
                continue
            if e.group == s.group and e.kind == s.kind and e.status in ("forbidden", "error"):
                reason = e.reason(s.plural, e.namespace) or f"{s.plural} could not be read"
                for f in s.fields or facts:
                    out.setdefault(f, reason)
    return out


# What names a subject rather than describes it: known from the object itself, never "unknown".
_IDENTITY = ("id", "name", "namespace", "evidence", "unknown")


def _status(log: list[CollectionEntry], group: str, kind: str) -> CollectionEntry:
    for e in log:
        if e.group == group and e.kind == kind and e.namespace is None:
            return e
    return CollectionEntry(group=group, kind=kind, status="absent")


def evaluate_subject(c: Control, subject: dict[str, Any], scope_vars: dict[str, Any]) -> Finding:
    """One control on one subject (as in facts.json); used by the control test cases."""
    activation = env().Activation({"subject": cel_view(subject), "scope": scope_vars})
    unknown = {u["field"]: u["reason"] for u in subject.get("unknown") or []}
    return _evaluate_one(c, subject, activation, unknown)


def cel_view(subject: dict[str, Any]) -> dict[str, Any]:
    """What rules see: the subject without its evidence references (they are for people, and converting
    them into CEL values would be most of the cost of an evaluation)."""
    return {k: v for k, v in subject.items() if k != "evidence"}


def scope_variables(scope: Scope) -> dict[str, Any]:
    """The `scope` variable controls see."""
    return {"certificate_expiry_days": scope.certificate_expiry_days,
            "network_admin_groups": scope.network_admin_groups}


def _evaluate_one(c: Control, subject: dict[str, Any], activation: Any, unknown: dict[str, str]) -> Finding:
    f = Finding(control=c.id, subject_type=c.spec.subject, subject_id=str(subject["id"]),
                subject_name=str(subject["name"]), namespace=subject.get("namespace"), status="inconclusive",
                evidence=[ObjectRef.model_validate(e) for e in subject.get("evidence") or []])
    # Evidence that could not be read makes any verdict on it inconclusive (never a pass, never a fail).
    if c.applies_if is not None:
        if _missing(f, c.applies_fields, unknown):
            return f
        applies, err = c.applies_if.run(activation)
        if err is not None or not isinstance(applies, bool):
            f.reasons = [f"applies_if could not be evaluated: {err or f'returned {applies!r}'}"]
            f.message = f.reasons[0]
            return f
        if not applies:
            f.status = "not_applicable"
            return f
    if c.manual_if is not None and c.manual_message is not None:
        if _missing(f, c.manual_fields, unknown):
            return f
        manual, err = c.manual_if.run(activation)
        if err is not None or not isinstance(manual, bool):
            f.reasons = [f"manual_if could not be evaluated: {err or f'returned {manual!r}'}"]
            f.message = f.reasons[0]
            return f
        if manual:
            text, err = c.manual_message.run(activation)
            f.status = "manual"
            f.message = _text(text) if err is None else f"{c.spec.title}: attach the evidence (message error: {err})"
            return f
    if _missing(f, c.rule_fields, unknown):
        return f
    verdict, err = c.rule.run(activation)
    if err is not None or not isinstance(verdict, bool):
        f.reasons = [f"rule could not be evaluated: {err or f'returned {verdict!r}, not a bool'}"]
        f.message = f.reasons[0]
        return f
    f.status = "pass" if verdict else "fail"
    if verdict and c.pass_message is not None:
        note, err = c.pass_message.run(activation)
        f.message = (_text(note) or None) if err is None else None
    if not verdict:
        text, err = c.message.run(activation)
        f.message = _text(text) if err is None else f"{c.spec.title} (message could not be rendered: {err})"
    return f


def _text(value: Any) -> str:
    """A rule's message as shown to people: cut at MAX_RESULT_CHARS (a rule can build any length)."""
    text = str(value)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + f"... ({len(text):,} characters)"


def _missing(f: Finding, fields: set[str], unknown: dict[str, str]) -> bool:
    missing = sorted({unknown[name] for name in fields if name in unknown})
    if missing:
        f.reasons = missing
        f.message = "evidence missing: " + "; ".join(missing)
    return bool(missing)


def _apply_waivers(f: Finding, waivers: list[Waiver], today: date, hits: Counter[int]) -> None:
    if f.status not in ("fail", "inconclusive"):
        return
    for i, w in enumerate(waivers):
        if w.matches(f.control, f.subject_id, f.subject_name):
            hits[i] += 1
            if w.expires < today:
                f.reasons.append(f"waiver {w.ticket} expired on {w.expires.isoformat()} and no longer applies")
                continue
            f.waiver = WaiverInfo(reason=w.reason, approver=w.approver, ticket=w.ticket, expires=w.expires,
                                  original_status=f.status)
            f.status = "waived"
            return


def _roll_up(catalogue: Catalogue, controls: list[ControlResult], scope: Scope | None = None
             ) -> tuple[list[RequirementResult], list[FrameworkSummary]]:
    by_req: dict[tuple[str, str], list[ControlResult]] = {}
    for c in controls:
        for fid, ids in c.requirements.items():
            for rid in ids:
                by_req.setdefault((fid, rid), []).append(c)
    reqs: list[RequirementResult] = []
    summaries: list[FrameworkSummary] = []
    for fw in catalogue.frameworks:
        fam_counts: dict[str, Counter[str]] = {f.id: Counter() for f in fw.families}
        fw_reqs = []
        for r in fw.requirements:
            cs = by_req.get((fw.id, r.id), [])
            status = requirement_status(r.automatable, r.manual_evidence, [c.status for c in cs])
            # The scope file's declared entity (merchant or service provider, multi-tenant, ...) may exclude a
            # requirement the catalogue says binds others only: not applicable by scope, with the reason.
            excluded = scope.entity.excludes(r.applies_to) if scope is not None and scope.entity else None
            if excluded:
                status = "not_applicable"
            fw_reqs.append(RequirementResult(
                framework=fw.id, id=r.id, family=r.family, title=r.title, summary=r.summary.strip(),
                frequency=r.frequency, automatable=r.automatable, future_dated=r.future_dated, status=status,
                new_in_v4=r.new_in_v4, superseded=r.superseded, applies_to=r.applies_to,
                consolidation=r.consolidation, verified=r.verified, notes=(r.notes or "").strip() or None,
                controls=[c.id for c in cs], manual_evidence=r.manual_evidence.strip(),
                counts=_counts(c.status for c in cs), not_applicable_by_scope=excluded))
            fam_counts[r.family][status] += 1
        reqs.extend(fw_reqs)
        summaries.append(FrameworkSummary(
            id=fw.id, title=fw.title, version=fw.version, requirements=len(fw_reqs),
            automated=sum(1 for r in fw_reqs if r.controls),
            counts=dict(Counter(r.status for r in fw_reqs)),
            families=[FamilySummary(id=f.id, title=f.title, counts=dict(fam_counts[f.id])) for f in fw.families]))
    return reqs, summaries


def _counts(statuses: Iterable[str]) -> dict[str, int]:
    return dict(Counter(statuses))


def subject_types() -> list[str]:
    return sorted(SUBJECT_TYPES)
