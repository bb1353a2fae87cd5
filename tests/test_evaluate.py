"""Evaluation semantics: inconclusive is never a pass, CEL runtime errors stay local, waivers, manual rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from evidence.controls import Catalogue, load_catalogue
from evidence.evaluate import RequirementResult, evaluate, manual_remains, requirement_status
from evidence.facts import Facts, NamespacePosture
from evidence.inventory import CollectionEntry
from evidence.scope import Scope, Waiver

AS_OF = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def ns(name: str, **over: object) -> dict:
    base = yaml.safe_load((Path(__file__).parent / "controls" / "_base" / "namespace.yaml").read_text())
    base.update(id=name, name=name, namespace=name, evidence=[], unknown=[])
    base.update(over)
    return base


def custom(tmp_path: Path, cid: str, rule: str) -> Path:
    (tmp_path / f"{cid}.yaml").write_text(yaml.safe_dump({
        "id": cid, "title": "t", "subject": "namespace", "rule": rule, "message": "'failed ' + subject.name",
        "severity": "low", "requirements": {"gdpr": ["25(1)"]},
        "rationale": "A rationale long enough to pass.", "remediation": "A remediation long enough."}))
    return tmp_path


def run(subjects: list[dict], scope: Scope | None = None, extra: Path | None = None,
        log: list[CollectionEntry] | None = None):
    cat = load_catalogue([extra] if extra else None)
    facts = Facts(as_of=AS_OF, subjects={"namespace": subjects})
    ok = [CollectionEntry(group="", kind="Namespace", status="ok", count=len(subjects))]
    return evaluate(cat, facts, scope or Scope(), ok if log is None else log)


def finding(results, control: str, subject: str):
    return next(f for f in results.findings if f.control == control and f.subject_id == subject)


def test_unknown_evidence_is_inconclusive_not_pass(tmp_path: Path) -> None:
    denied = ns("payments", unknown=[{"field": "default_deny_ingress", "reason": "permission denied: list networkpolicies"}])
    r = run([denied])
    f = finding(r, "segmentation.default-deny-ingress", "payments")
    assert f.status == "inconclusive"
    assert "permission denied: list networkpolicies" in f.message
    control = next(c for c in r.controls if c.id == "segmentation.default-deny-ingress")
    assert control.status == "inconclusive"


def test_cel_runtime_error_is_inconclusive_for_that_subject_only(tmp_path: Path) -> None:
    extra = custom(tmp_path, "custom.divide", "100 / subject.pods > 1")
    r = run([ns("a", pods=0), ns("b", pods=3)], extra=extra)
    a, b = finding(r, "custom.divide", "a"), finding(r, "custom.divide", "b")
    assert a.status == "inconclusive" and "divide by zero" in a.message
    assert b.status == "pass"


def test_non_bool_rule_is_inconclusive(tmp_path: Path) -> None:
    extra = custom(tmp_path, "custom.nonbool", "subject.name")
    r = run([ns("a")], extra=extra)
    assert finding(r, "custom.nonbool", "a").status == "inconclusive"


def test_no_subjects_with_unreadable_source_is_inconclusive() -> None:
    r = run([], log=[CollectionEntry(group="", kind="Namespace", status="forbidden")])
    control = next(c for c in r.controls if c.id == "segmentation.default-deny-ingress")
    assert control.status == "inconclusive"
    assert control.note == "permission denied: list namespaces"


def test_no_subjects_with_readable_source_is_not_applicable() -> None:
    r = run([])
    control = next(c for c in r.controls if c.id == "segmentation.default-deny-ingress")
    assert control.status == "not_applicable"


def test_waiver_applies_until_it_expires() -> None:
    def scope(expires: date) -> Scope:
        return Scope(waivers=[Waiver(control="segmentation.default-deny-*", subject="legacy", reason="migration",
                                     approver="CISO", ticket="SEC-42", expires=expires)])

    subject = ns("legacy", default_deny_ingress=False, default_deny_egress=False)
    active = run([subject], scope(date(2026, 12, 31)))
    f = finding(active, "segmentation.default-deny-ingress", "legacy")
    assert f.status == "waived" and f.waiver.ticket == "SEC-42" and f.waiver.original_status == "fail"
    assert not active.expired_waivers
    expired = run([subject], scope(date(2026, 11, 1)))
    f = finding(expired, "segmentation.default-deny-ingress", "legacy")
    assert f.status == "fail"
    assert any("SEC-42 expired on 2026-11-01" in r for r in f.reasons)
    assert expired.expired_waivers[0].ticket == "SEC-42" and expired.expired_waivers[0].matched == 2


def test_requirements_without_controls_are_manual_and_roll_up() -> None:
    r = run([ns("payments", default_deny_ingress=False)])
    by_id = {(q.framework, q.id): q for q in r.requirements}
    assert by_id[("pci-dss", "1.3.1")].status == "fail"
    assert "segmentation.default-deny-ingress" in by_id[("pci-dss", "1.3.1")].controls
    assert by_id[("pci-dss", "12.5.2")].status == "manual" and by_id[("pci-dss", "12.5.2")].manual_evidence
    pci = next(f for f in r.frameworks if f.id == "pci-dss")
    assert pci.requirements == sum(pci.counts.values())
    assert pci.automated == sum(1 for q in r.requirements if q.framework == "pci-dss" and q.controls)


def test_applies_if_over_a_fact_from_an_unread_kind_is_inconclusive_never_not_applicable(tmp_path: Path) -> None:
    (tmp_path / "custom.busy.yaml").write_text(yaml.safe_dump({
        "id": "custom.busy", "title": "t", "subject": "namespace", "applies_if": "subject.pods > 0",
        "rule": "subject.default_deny_ingress", "message": "'failed ' + subject.name", "severity": "low",
        "requirements": {"gdpr": ["25(1)"]}, "rationale": "A rationale long enough to pass.",
        "remediation": "A remediation long enough."}))
    quiet = ns("quiet", pods=0)  # as a collector that could not list Pods would build it: zero pods
    read = run([quiet], extra=tmp_path)
    assert finding(read, "custom.busy", "quiet").status == "not_applicable"
    log = [CollectionEntry(group="", kind="Namespace", status="ok", count=1),
           CollectionEntry(group="", kind="Pod", namespace="quiet", status="forbidden")]
    denied = run([quiet], extra=tmp_path, log=log)
    f = finding(denied, "custom.busy", "quiet")
    assert f.status == "inconclusive"
    assert f.message == "evidence missing: permission denied: list pods in namespace quiet"
    # Every control over namespaces is then inconclusive: none of their facts stands without the Pods.
    assert {x.status for x in denied.findings} == {"inconclusive"}


def test_a_denied_kind_makes_only_the_facts_derived_from_it_unknown() -> None:
    log = [CollectionEntry(group="", kind="Namespace", status="ok", count=1),
           CollectionEntry(group="", kind="ConfigMap", status="forbidden")]
    posture = NamespacePosture(id="a", name="a", namespace="a", namespace_class="cde", in_scope=True,
                               enforce="restricted", enforce_source="label", policy_reports=1, policy_pass=3)
    facts = Facts(as_of=AS_OF, subjects={"namespace_posture": [posture.model_dump(mode="json")]})
    r = evaluate(load_catalogue(), facts, Scope(), log)
    pss = finding(r, "hardening.pod-security", "a")
    assert pss.status == "inconclusive" and pss.reasons == ["permission denied: list configmaps"]
    assert finding(r, "hardening.policy-reports", "a").status != "inconclusive"  # from PolicyReports, read


@pytest.mark.parametrize(("automatable", "manual_evidence", "controls", "expected"), [
    ("full", "none", ["pass", "pass"], "pass"),
    ("full", "", ["pass", "not_applicable"], "pass"),
    ("full", "Retention settings of the archive outside the cluster", ["pass"], "automated_pass"),
    ("partial", "none", ["pass"], "automated_pass"),
    ("partial", "x", ["pass", "fail", "inconclusive"], "fail"),
    ("full", "none", ["pass", "inconclusive"], "inconclusive"),
    ("full", "none", ["pass", "waived"], "waived"),
    ("full", "none", ["pass", "manual"], "manual"),
    ("full", "none", ["not_applicable", "not_applicable"], "not_applicable"),
    ("full", "none", [], "manual"),
])
def test_requirement_status(automatable: str, manual_evidence: str, controls: list[str], expected: str) -> None:
    assert requirement_status(automatable, manual_evidence, controls) == expected


def _one_requirement(tmp_path: Path, automatable: str, manual_evidence: str, rule: str):
    """gdpr 25(1) rated as given, evidenced by one custom control only, over one namespace."""
    cat = load_catalogue([custom(tmp_path, "custom.one", rule)])
    gdpr = cat.framework("gdpr")
    req = gdpr.requirement("25(1)").model_copy(update={"automatable": automatable, "manual_evidence": manual_evidence})
    fw = gdpr.model_copy(update={"requirements": [req]})
    only = Catalogue([c for c in cat.controls if c.id == "custom.one"], [fw], cat.digest, [])
    facts = Facts(as_of=AS_OF, subjects={"namespace": [ns("a")]})
    r = evaluate(only, facts, Scope(), [CollectionEntry(group="", kind="Namespace", status="ok", count=1)])
    (q,) = r.requirements
    return q, r.frameworks[0]


def test_a_requirement_passes_only_when_full_nothing_manual_remains_and_every_control_passes(tmp_path: Path) -> None:
    q, fw = _one_requirement(tmp_path, "full", "none", "true")
    assert (q.status, q.evidence_to_attach, fw.counts) == ("pass", False, {"pass": 1})
    assert q.status_text == "In place: automated checks cover all of it and pass"
    q, fw = _one_requirement(tmp_path, "partial", "The access review minutes.", "true")
    assert (q.status, q.evidence_to_attach, fw.counts) == ("automated_pass", True, {"automated_pass": 1})
    assert q.status_text == "Automated checks pass: assessor evidence required"
    assert q.controls == ["custom.one"] and q.manual_evidence == "The access review minutes."
    q, _ = _one_requirement(tmp_path, "full", "The access review minutes.", "true")
    assert q.status == "automated_pass"
    q, _ = _one_requirement(tmp_path, "full", "none", "false")
    assert q.status == "fail" and q.status_text == "Not in place: an automated check failed"


def test_attestations_never_make_a_pass_and_say_what_they_cover(tmp_path: Path) -> None:
    q, _ = _one_requirement(tmp_path, "partial", "The access review minutes.", "false")
    attested = q.model_copy(update={"attested": True})
    assert attested.status == "fail"
    assert attested.status_text == ("Not in place: an automated check failed. A current attestation covers the "
                                    "manual part; the automated part failed")
    q, _ = _one_requirement(tmp_path, "partial", "The access review minutes.", "true")
    assert q.model_copy(update={"attested": True}).status == "automated_pass"
    dumped = q.model_dump(mode="json")  # results.json carries the words, and reads back
    assert dumped["status_text"] == "Automated checks pass: assessor evidence required"
    assert RequirementResult.model_validate(dumped).status == "automated_pass"


def test_no_requirement_of_the_catalogue_passes_without_full_rating(demo_pack: Path) -> None:
    """Issue 12, done when: the demo shows no requirement as pass unless it is `full` and all its controls pass."""
    results = json.loads((demo_pack / "results.json").read_text())
    control = {c["id"]: c["status"] for c in results["controls"]}
    cat = load_catalogue()
    for q in results["requirements"]:
        if q["status"] == "pass":
            rating = cat.framework(q["framework"]).requirement(q["id"])
            assert rating.automatable == "full" and not manual_remains(rating.manual_evidence), q["id"]
            assert {control[c] for c in q["controls"]} <= {"pass", "not_applicable"}, q["id"]
        if q["status"] == "automated_pass":
            assert {control[c] for c in q["controls"]} <= {"pass", "not_applicable"}, q["id"]
            assert q["evidence_to_attach"] and q["manual_evidence"]
    pci = {q["id"]: q["status"] for q in results["requirements"] if q["framework"] == "pci-dss"}
    # Read "Pass" before issue 12 from checks covering a sliver of them (10.4.1: Alertmanager has a receiver).
    assert all(pci.get(i, "manual") != "pass" for i in ("1.4.1", "7.2.1", "10.4.1", "10.7.2", "12.3.3"))


def test_a_denial_in_one_namespace_spares_other_namespaces_only_for_kinds_read_there() -> None:
    def posture(name: str) -> dict:
        return NamespacePosture(id=name, name=name, namespace=name, namespace_class="cde", in_scope=True,
                                enforce="restricted", enforce_source="label", policy_reports=1,
                                policy_pass=3).model_dump(mode="json")

    facts = Facts(as_of=AS_OF, subjects={"namespace_posture": [posture("a"), posture("b")]})
    ok = CollectionEntry(group="", kind="Namespace", status="ok", count=2)
    # PolicyReports of namespace a say nothing about namespace b.
    reports = CollectionEntry(group="wgpolicyk8s.io", kind="PolicyReport", namespace="a", status="forbidden")
    r = evaluate(load_catalogue(), facts, Scope(), [ok, reports])
    a, b = finding(r, "hardening.policy-reports", "a"), finding(r, "hardening.policy-reports", "b")
    assert a.status == "inconclusive"
    assert a.reasons == ["permission denied: list policyreports.wgpolicyk8s.io in namespace a"]
    assert b.status == "pass"
    # Pods are not declared local to a namespace's posture (the cluster default comes from kube-apiserver's Pod).
    pods = CollectionEntry(group="", kind="Pod", namespace="a", status="forbidden")
    r = evaluate(load_catalogue(), facts, Scope(), [ok, pods])
    assert {f.status for f in r.findings if f.subject_type == "namespace_posture"} == {"inconclusive"}


def test_the_same_denial_in_several_namespaces_is_one_problem_line() -> None:
    """A Secret list denied cluster-wide and in each namespace in scope printed a line per namespace (issue 14's
    remainder); the same problem is now one line naming the namespaces, where it first appeared."""
    from evidence.evaluate import collection_problems
    from evidence.inventory import CollectionEntry

    def denied(ns: str, message: str | None = None) -> CollectionEntry:
        return CollectionEntry(group="", kind="Secret", namespace=ns, status="forbidden",
                               message=message or f"permission denied: list secrets in namespace {ns}")

    log = [denied("auth"), CollectionEntry(group="", kind="Pod", status="error", message="could not list pods: 503"),
           denied("payments"), denied("storefront"),
           *(denied(ns, f"permission denied: list secrets cluster-wide; namespace {ns} is out of scope and was not "
                        "tried") for ns in ("dev", "lab")),
           CollectionEntry(group="", kind="ConfigMap", namespace="shop", status="forbidden",
                           message="permission denied: list configmaps in namespace shop")]
    assert collection_problems(log) == [
        "permission denied: list secrets in 3 namespaces (auth, payments, storefront)",
        "could not list pods: 503",
        "permission denied: list secrets cluster-wide; 2 namespaces (dev, lab) are out of scope and were not tried",
        "permission denied: list configmaps in namespace shop"]
