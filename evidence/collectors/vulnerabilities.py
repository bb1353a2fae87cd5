"""Vulnerability scans per workload from trivy-operator VulnerabilityReports (PCI DSS 11.3.1 quarterly scans, 6.3.3
critical patches within a month; cluster-facts.md E.7).

Reports are linked to workloads by their labels `trivy-operator.resource.kind/name/namespace` and
`trivy-operator.container.name`; a Deployment is scanned through its current ReplicaSet, a CronJob directly.
Freshness is `report.updateTimestamp` (reports are regenerated, scannerReportTTL 24h by default). A critical
finding with a `fixedVersion` whose CVE was published more than 30 days ago counts as an overdue patch: the fix's
own release date is not in the report, so the CVE's publication date stands in for it (never later than the fix).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from evidence.collectors.scoping import Scopes
from evidence.collectors.toplevel import workloads
from evidence.facts import ContainerScan, ImageScan
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.scope import Scope

GROUP = "aquasecurity.github.io"
LABEL = "trivy-operator.resource."
CONTAINER_LABEL = "trivy-operator.container.name"
PATCH_DAYS = 30  # PCI DSS 6.3.3: critical patches within one month of release
SCANNER_IMAGES = ("aquasec/trivy-operator", "aquasecurity/trivy-operator")


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _owner_key(inv: Inventory, kind: str, name: str, ns: str) -> tuple[str, str, str]:
    """A ReplicaSet owned by a Deployment (or a Job owned by a CronJob) stands for its owner."""
    if kind in ("ReplicaSet", "Job"):
        obj = inv.get(kind, ns, name)
        for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") in ("Deployment", "CronJob"):
                return str(ref.get("kind")), str(ref.get("name")), ns
        if obj is None and kind == "ReplicaSet" and "-" in name:
            return "Deployment", name.rsplit("-", 1)[0], ns  # RS gone since: its Deployment is the pod-template hash
    return kind, name, ns


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[ImageScan]:
    scopes = Scopes(inv, scope)
    status = inv.status("VulnerabilityReport", GROUP)
    reports: dict[tuple[str, str, str], list[Obj]] = defaultdict(list)
    for r in inv.objects("VulnerabilityReport", GROUP):
        labels = r["metadata"].get("labels") or {}
        kind, name = labels.get(f"{LABEL}kind"), labels.get(f"{LABEL}name")
        ns = labels.get(f"{LABEL}namespace") or r["metadata"].get("namespace")
        if kind and name:
            reports[_owner_key(inv, str(kind), str(name), str(ns))].append(r)
    operator = any(s in str(c.get("image", "")) for w in workloads(inv) for c in w.containers() for s in SCANNER_IMAGES)
    scanner = "trivy-operator" if (operator or reports) else None
    problem = None
    if status.status == "absent":
        problem = "no VulnerabilityReports in the snapshot (not collected, or trivy-operator not installed)"
    elif status.status in ("forbidden", "error"):
        problem = status.message or f"could not list vulnerabilityreports ({status.status})"
    out = []
    for w in workloads(inv):
        sc = scopes.of(w.namespace)
        found = reports.get((w.kind, w.name, w.namespace), [])
        s = ImageScan(id=f"{w.namespace}/{w.label}", name=f"{w.namespace}/{w.label}", namespace=w.namespace,
                      workload=w.label, namespace_class=sc.cls, scan_required=sc.in_scope or sc.cls == "system",
                      scanner=scanner)
        s.evidence = [ObjectRef.of(w.obj)] + [ObjectRef.of(r) for r in found]
        by_container = {str((r["metadata"].get("labels") or {}).get(CONTAINER_LABEL)): r for r in found}
        ages = []
        for c in w.containers():
            cname = str(c.get("name"))
            rep = by_container.get(cname)
            scan = ContainerScan(container=cname, image=str(c.get("image", "")))
            if rep is None:
                s.unscanned.append(cname)
                s.containers.append(scan)
                continue
            report = rep.get("report") or {}
            at = _time(report.get("updateTimestamp")) or _time(rep["metadata"].get("creationTimestamp"))
            summary = report.get("summary") or {}
            scan.report, scan.scanned_at = str(rep["metadata"]["name"]), at
            scan.age_days = (as_of - at).days if at else None
            scan.critical, scan.high = int(summary.get("criticalCount") or 0), int(summary.get("highCount") or 0)
            if scan.age_days is not None:
                ages.append(scan.age_days)
            for v in report.get("vulnerabilities") or []:
                if not isinstance(v, dict) or str(v.get("severity")).upper() != "CRITICAL" or not v.get("fixedVersion"):
                    continue
                scan.critical_fixable += 1
                published = _time(v.get("publishedDate"))
                line = (f"{v.get('vulnerabilityID')} in {cname} ({v.get('resource')} {v.get('installedVersion')}, "
                        f"fixed in {v.get('fixedVersion')}")
                if published is None:
                    s.critical_fixable_recent.append(line + ", publication date unknown)")
                    s.mark_unknown("critical_fixable_overdue", f"{v.get('vulnerabilityID')} in {cname} has a fix but "
                                   "no publishedDate, so its age cannot be judged")
                elif (as_of - published).days > PATCH_DAYS:
                    s.critical_fixable_overdue.append(line + f", published {(as_of - published).days} days ago)")
                else:
                    s.critical_fixable_recent.append(line + f", published {(as_of - published).days} days ago)")
            s.containers.append(scan)
        s.critical = sum(c.critical for c in s.containers)
        s.oldest_scan_days = max(ages) if ages else None
        if problem:
            for f in ("scanner", "unscanned", "oldest_scan_days", "critical_fixable_overdue", "containers"):
                s.mark_unknown(f, problem)
        out.append(s)
    return out
