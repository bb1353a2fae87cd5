"""Namespaces: scope class, default-deny NetworkPolicies per direction, and pods no policy selects (PCI 1.3.1/1.3.2)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from evidence.collectors.workloads import PodView, pods
from evidence.facts import NamespaceFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import is_empty, matches
from evidence.scope import SCOPE_LABEL, SYSTEM_NAMESPACES, Scope

ALL_V4, ALL_V6 = "0.0.0.0/0", "::/0"


def policy_types(policy: Obj) -> set[str]:
    """spec.policyTypes, or as the API infers it: Ingress always, Egress when egress rules exist."""
    spec = policy.get("spec") or {}
    declared = spec.get("policyTypes")
    if declared:
        return {str(t) for t in declared}
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _allow_all(rules: list[dict[str, Any]] | None, peer_key: str) -> bool:
    """A rule admitting every peer on every port: no peers (or 0.0.0.0/0, ::/0, or {} peers) and no ports."""
    for rule in rules or []:
        if rule.get("ports"):
            continue
        peers = rule.get(peer_key)
        if not peers:
            return True
        for peer in peers:
            cidr = (peer.get("ipBlock") or {}).get("cidr")
            if cidr in (ALL_V4, ALL_V6) and not (peer.get("ipBlock") or {}).get("except"):
                return True
            if "podSelector" in peer and "namespaceSelector" in peer and is_empty(peer["podSelector"]) \
                    and is_empty(peer["namespaceSelector"]):
                return True
    return False


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[NamespaceFacts]:
    del as_of  # namespace facts do not depend on time
    policies_by_ns: dict[str, list[Obj]] = defaultdict(list)
    for p in inv.objects("NetworkPolicy", "networking.k8s.io"):
        policies_by_ns[str(p["metadata"].get("namespace"))].append(p)
    all_pods, derived = pods(inv)
    pods_by_ns: dict[str, list[PodView]] = defaultdict(list)
    for pod in all_pods:
        pods_by_ns[pod.namespace].append(pod)
    namespaces = inv.objects("Namespace", "")
    declared = bool(scope.namespaces.cde or scope.namespaces.connected) or any(
        SCOPE_LABEL in ((n["metadata"].get("labels")) or {}) for n in namespaces)
    out = []
    for ns_obj in namespaces:
        meta = ns_obj["metadata"]
        name = str(meta["name"])
        labels = dict(meta.get("labels") or {})
        cls, reason = scope.classify(name, labels)
        if cls == "unclassified" and name in SYSTEM_NAMESPACES:
            cls, reason = "system", "Kubernetes system namespace"
        in_scope = cls in ("cde", "connected") or (cls == "unclassified" and not declared)
        if cls == "unclassified" and not declared:
            reason += "; no scope declared, so treated as in scope"
        policies = policies_by_ns.get(name, [])
        ns_pods = pods_by_ns.get(name, [])
        deny_in = [p for p in policies if is_empty((p.get("spec") or {}).get("podSelector"))
                   and "Ingress" in policy_types(p)]
        deny_out = [p for p in policies if is_empty((p.get("spec") or {}).get("podSelector"))
                    and "Egress" in policy_types(p)]
        allow_all_in = [p for p in policies if "Ingress" in policy_types(p)
                        and _allow_all((p.get("spec") or {}).get("ingress"), "from")]
        allow_all_out = [p for p in policies if "Egress" in policy_types(p)
                         and _allow_all((p.get("spec") or {}).get("egress"), "to")]
        not_selected = sorted({pod.owner for pod in ns_pods if not any(
            matches((p.get("spec") or {}).get("podSelector"), pod.labels) for p in policies)})
        subject = NamespaceFacts(
            id=name, name=name, namespace=name, scope_class=cls, scope_reason=reason, in_scope=in_scope,
            personal_data=name in scope.data.personal_data or name in scope.data.health_data,
            labels=labels,
            pod_security_enforce=labels.get("pod-security.kubernetes.io/enforce"),
            network_policies=len(policies),
            default_deny_ingress=bool(deny_in) and not allow_all_in,
            default_deny_egress=bool(deny_out) and not allow_all_out,
            default_deny_policies=sorted({str(p["metadata"]["name"]) for p in deny_in + deny_out}),
            pods=len(ns_pods),
            pods_not_selected=not_selected,
            allow_all_ingress_policies=[str(p["metadata"]["name"]) for p in allow_all_in],
            allow_all_egress_policies=[str(p["metadata"]["name"]) for p in allow_all_out],
        )
        subject.evidence = [ObjectRef.of(ns_obj)] + [ObjectRef.of(p) for p in policies]
        pol_status = inv.status("NetworkPolicy", "networking.k8s.io", name)
        pod_status = inv.status("Pod", "", name)
        if pol_status.status != "ok":
            why = _why(pol_status.status, "networkpolicies", pol_status.message)
            for f in ("network_policies", "default_deny_ingress", "default_deny_egress", "pods_not_selected",
                      "allow_all_ingress_policies", "allow_all_egress_policies"):
                subject.mark_unknown(f, why)
        if pod_status.status in ("forbidden", "error"):
            subject.mark_unknown("pods_not_selected", _why(pod_status.status, "pods", pod_status.message))
            subject.mark_unknown("pods", _why(pod_status.status, "pods", pod_status.message))
        elif derived:
            subject.scope_reason += "; pods derived from workload templates (no Pods in the snapshot)"
        out.append(subject)
    return out


def _why(status: str, resource: str, message: str | None) -> str:
    if status == "forbidden":
        return f"permission denied: list {resource}"
    if status == "absent":
        return f"no {resource} in the snapshot (not collected?)"
    return f"could not list {resource}: {message or status}"
