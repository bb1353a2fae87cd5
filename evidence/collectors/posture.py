"""Per-namespace hardening posture: Pod Security Admission and policy-engine reports (PCI DSS 2.2.1, 2.2.6;
GDPR 32(1)(d); cluster-facts.md E.8, E.9).

PSA: only `pod-security.kubernetes.io/enforce` blocks (audit and warn do not). Without the label the cluster-wide
default applies; it lives in the PodSecurity plugin configuration of `--admission-control-config-file`, which the
API does not show. With the kube-apiserver flags visible and no such file, the built-in default applies:
`privileged`, no restriction. PolicyReports (wgpolicyk8s.io/v1alpha2, written by Kyverno and others) carry a
`summary` of pass/fail/warn/error/skip and the failing results.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from evidence.collectors.apiserver import MANAGED, apiserver_config, platform
from evidence.collectors.scoping import Scopes, why
from evidence.facts import NamespacePosture
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.scope import Scope

PSA = "pod-security.kubernetes.io"
LEVELS = ("privileged", "baseline", "restricted")


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[NamespacePosture]:
    del as_of
    scopes = Scopes(inv, scope)
    config = apiserver_config(inv)
    plat, _ = platform(inv, config)
    default, default_source = _cluster_default(config.flags if config.source else None, config.source, plat)
    reports: dict[str, list[Obj]] = defaultdict(list)
    for r in inv.objects("PolicyReport", "wgpolicyk8s.io"):
        reports[str(r["metadata"].get("namespace") or "")].append(r)
    report_problem = why(inv, "PolicyReport", "wgpolicyk8s.io", "policyreports")
    out = []
    for n in inv.objects("Namespace", ""):
        name = str(n["metadata"]["name"])
        labels = dict(n["metadata"].get("labels") or {})
        sc = scopes.of(name)
        label = labels.get(f"{PSA}/enforce")
        s = NamespacePosture(
            id=name, name=name, namespace=name, namespace_class=sc.cls, in_scope=sc.in_scope,
            enforce=label if label in LEVELS else default,
            enforce_source=f"namespace label {PSA}/enforce={label}" if label in LEVELS else (
                f"namespace label {PSA}/enforce={label!r} is not a level" if label else default_source),
            enforce_version=labels.get(f"{PSA}/enforce-version"), audit=labels.get(f"{PSA}/audit"),
            warn=labels.get(f"{PSA}/warn"))
        s.evidence = [ObjectRef.of(n)]
        if label not in LEVELS and default is None:
            s.mark_unknown("enforce", f"no {PSA}/enforce label, and {default_source}")
        _reports(s, reports.get(name, []))
        if report_problem and "not served" not in report_problem and not reports.get(name):
            for f in ("policy_reports", "policy_fail", "policy_error", "failing_policies"):
                s.mark_unknown(f, report_problem)
        out.append(s)
    return out


def _cluster_default(flags: dict[str, str] | None, source: str | None, plat: str) -> tuple[str | None, str]:
    if flags is not None:
        file = flags.get("admission-control-config-file")
        if file:
            return None, (f"the cluster-wide PodSecurity defaults are in {file} (kube-apiserver "
                          "--admission-control-config-file), which the API does not show")
        return "privileged", (f"no namespace label and no --admission-control-config-file on the kube-apiserver "
                              f"({source}): the built-in default enforce=privileged applies")
    if plat in MANAGED:
        return None, f"the {plat.upper()} control plane's PodSecurity defaults are not visible through the API"
    return None, "the kube-apiserver flags are not visible, so the cluster-wide default cannot be read"


def _reports(s: NamespacePosture, reports: list[Obj]) -> None:
    s.policy_reports = len(reports)
    for r in reports:
        s.evidence.append(ObjectRef.of(r))
        summary: dict[str, Any] = r.get("summary") or {}
        for key in ("pass", "fail", "warn", "error", "skip"):
            setattr(s, f"policy_{key}", getattr(s, f"policy_{key}") + int(summary.get(key) or 0))
        for res in r.get("results") or []:
            if not isinstance(res, dict) or res.get("result") not in ("fail", "error"):
                continue
            objs = ", ".join(f"{x.get('kind')}/{x.get('name')}" for x in res.get("resources") or []
                             if isinstance(x, dict)) or (
                f"{(r.get('scope') or {}).get('kind')}/{(r.get('scope') or {}).get('name')}" if r.get("scope") else "")
            sev = f" ({res.get('severity')})" if res.get("severity") else ""
            s.failing_policies.append(f"{res.get('policy')}/{res.get('rule')}: {objs or '?'}{sev}"
                                      + (" [error]" if res.get("result") == "error" else ""))
    s.failing_policies = sorted(set(s.failing_policies))
