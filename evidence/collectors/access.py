"""RBAC subjects with their effective permissions, and the ServiceAccount token each workload carries
(PCI DSS 7.2.1-7.2.5, 7.3.3, 8.2.2; cluster-facts regulations F11). The RBAC semantics live in evidence/rbac."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from evidence.clusterrole import NON_RESOURCE_URLS, cluster_role
from evidence.collectors.scoping import Scopes, why
from evidence.collectors.toplevel import Workload, workloads
from evidence.facts import GrantFacts, RBACSubject, WorkloadIdentity
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.rbac.engine import (
    ALL_SERVICE_ACCOUNTS,
    ANONYMOUS,
    AUTHENTICATED,
    PUBLIC_GROUPS,
    RBAC,
    RBAC_GROUP,
    UNAUTHENTICATED,
    Grant,
    Rule,
    SubjectRef,
    rbac_for,
)
from evidence.scope import Scope

READ_VERBS = ("get", "list", "watch")
# WebSocket clients (client libraries, newer kubectl) open exec with GET; clusters without the
# AuthorizePodWebsocketUpgradeCreatePermission check let `get` on pods/exec exec too.
EXEC_VERBS = ("create", "get")
PERMISSION_FIELDS = ("grants", "non_default_grants", "cluster_admin", "cluster_admin_via", "full_access_namespaces",
                     "cde_secret_read", "cde_exec", "escalate", "bind", "impersonate", "collector_secret_read")
ALWAYS_REPORTED = (SubjectRef("Group", AUTHENTICATED), SubjectRef("Group", UNAUTHENTICATED),
                   SubjectRef("User", ANONYMOUS))
# What `auditpack rbac` generates: the collector's grants within these are its own, explained access.
GENERATED_RULES = tuple(Rule.of(r) for r in cluster_role()["rules"])


def _problems(inv: Inventory) -> list[str]:
    return [p for p in (why(inv, "ClusterRoleBinding", RBAC_GROUP, "clusterrolebindings"),
                        why(inv, "RoleBinding", RBAC_GROUP, "rolebindings"),
                        why(inv, "ClusterRole", RBAC_GROUP, "clusterroles"),
                        why(inv, "Role", RBAC_GROUP, "roles")) if p]


def collect_subjects(inv: Inventory, scope: Scope, as_of: datetime) -> list[RBACSubject]:
    """One rbac_subject per User, Group and ServiceAccount named in a binding, plus the public identities."""
    del as_of
    engine = rbac_for(inv)
    scopes = Scopes(inv, scope)
    objects = _rbac_objects(inv)
    problems = _problems(inv)
    by_sa: dict[SubjectRef, list[str]] = defaultdict(list)
    for w in workloads(inv):
        by_sa[SubjectRef("ServiceAccount", _sa_name(w), w.namespace)].append(w.label)
    cde = scopes.cde()
    cde_problems = {ns: p for ns in cde if (p := why(inv, "RoleBinding", RBAC_GROUP, "rolebindings", ns))}
    collector = collector_ref(inv)
    out: list[RBACSubject] = []
    for s in sorted(set(engine.subjects()) | set(ALWAYS_REPORTED) | ({collector} if collector else set())):
        subject = _subject(engine, s, cde, objects, is_collector=s == collector)
        subject.workloads = sorted(by_sa.get(s, []))
        for p in problems:
            for f in PERMISSION_FIELDS:
                subject.mark_unknown(f, p)
        for p in cde_problems.values():
            subject.mark_unknown("cde_secret_read", p)
            subject.mark_unknown("cde_exec", p)
        out.append(subject)
    return out


def collect_workloads(inv: Inventory, scope: Scope, as_of: datetime) -> list[WorkloadIdentity]:
    """One workload_identity per top-level workload."""
    del as_of
    return _identities(inv, rbac_for(inv), Scopes(inv, scope), list(workloads(inv)), _rbac_objects(inv),
                       _problems(inv))


def _rbac_objects(inv: Inventory) -> dict[str, Obj]:
    """Bindings and roles by the names grants use ('ClusterRoleBinding/x', 'RoleBinding/ns/x', 'Role/ns/x')."""
    out: dict[str, Obj] = {}
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        for o in inv.objects(kind, RBAC_GROUP):
            meta = o.get("metadata") or {}
            key = f"{kind}/{meta.get('namespace')}/{meta.get('name')}" if kind in ("Role", "RoleBinding") \
                else f"{kind}/{meta.get('name')}"
            out[key] = o
    return out


def _is_public(s: SubjectRef) -> bool:
    return (s.kind == "Group" and s.name in PUBLIC_GROUPS) or (s.kind == "User" and s.name == ANONYMOUS)


def _is_builtin(s: SubjectRef, direct: list[Grant]) -> bool:
    if _is_public(s):
        return False
    if s.kind != "ServiceAccount" and s.name.startswith("system:") and not s.name.startswith(ALL_SERVICE_ACCOUNTS):
        return True
    return bool(direct) and all(g.bootstrap for g in direct)


def _where(g: Grant) -> str:
    return f"{g.scope} via {g.binding} ({g.role})"


def collector_ref(inv: Inventory) -> SubjectRef | None:
    """The identity the pack was collected as (live runs record it), as RBAC bindings name it."""
    who = inv.source.cluster.collector
    if who is None:
        return None
    parts = who.username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return SubjectRef("ServiceAccount", parts[3], parts[2])
    return SubjectRef("User", who.username)


def within_generated(g: Grant) -> bool:
    """Every rule of the grant's role is one `auditpack rbac` generates: list on catalogued types, get on the
    kube-system namespace, get on discovery URLs, or get on named Secrets (--tls-secrets-from-cluster)."""
    return all(_rule_within(r) for r in g.rules)


def _rule_within(r: Rule) -> bool:
    if r.non_resource_urls and not r.resources:
        return set(r.verbs) <= {"get"} and set(r.non_resource_urls) <= set(NON_RESOURCE_URLS)
    if set(r.verbs) == {"get"} and r.api_groups == ("",) and r.resources == ("secrets",) and r.resource_names:
        return True  # the per-namespace Roles of `auditpack rbac --tls-secrets-from-cluster`
    for verb in r.verbs:
        for group in r.api_groups:
            for res in r.resources:
                if "*" in (verb, group, res) or not any(
                        gen.allows(verb, group, res) and (not gen.resource_names or (
                            r.resource_names and set(r.resource_names) <= set(gen.resource_names)))
                        for gen in GENERATED_RULES):
                    return False
    return bool(r.verbs and r.api_groups and r.resources)


def _subject(engine: RBAC, s: SubjectRef, cde: list[str], objects: dict[str, Obj],
             is_collector: bool = False) -> RBACSubject:
    direct = engine.direct(s)
    eff = engine.effective(s)
    grants = [GrantFacts(binding=g.binding, role=g.role, scope=g.scope,
                         via=None if g.subject == s else g.subject.display(), bootstrap=g.bootstrap,
                         role_found=g.role_found, rules=[r.text() for r in g.rules]) for g in eff]
    admin = [g for g in eff if g.namespace is None and g.full_access]

    def granting(verbs: tuple[str, ...], group: str, resources: tuple[str, ...], ns: str | None = None,
                 cluster_too: bool = True) -> list[Grant]:
        return [g for g in eff if (cluster_too or g.namespace is not None) and (ns is None or g.applies_in(ns))
                and any(r.allows(v, group, res) for r in g.rules for v in verbs for res in resources)]

    subject = RBACSubject(
        id=f"{s.kind}/{s.namespace}/{s.name}" if s.namespace else f"{s.kind}/{s.name}",
        name=s.display(), namespace=s.namespace, kind=s.kind,  # type: ignore[arg-type]
        principal=s.name, builtin=_is_builtin(s, direct), public=_is_public(s), grants=grants,
        non_default_grants=[f"{g.binding} -> {g.role} ({g.scope})" for g in direct if not g.bootstrap],
        cluster_admin=bool(admin), cluster_admin_via=sorted({_where(g) for g in admin}),
        full_access_namespaces=sorted({str(g.namespace) for g in eff if g.namespace is not None and g.full_access}),
        cde_namespaces=cde, collector=is_collector)
    for ns in cde:
        for g in granting(READ_VERBS, "", ("secrets",), ns):
            verbs = sorted({v for r in g.rules for v in READ_VERBS if r.allows(v, "", "secrets")})
            text = f"{ns}: {', '.join(verbs)} secrets, {_where(g)}"
            if is_collector and within_generated(g):
                # The collector reading TLS certificates through the role auditpack generates: its own, explained
                # access, not a finding against it (the role is in deploy/ and in the pack's evidence).
                subject.collector_secret_read.append(f"{text}: auditpack's collector, the role `auditpack rbac` "
                                                     "generates")
            elif is_collector:
                subject.cde_secret_read.append(f"{text} (auditpack's collector, through a role broader than "
                                               "`auditpack rbac` generates)")
            else:
                subject.cde_secret_read.append(text)
        for g in granting(EXEC_VERBS, "", ("pods/exec",), ns):
            subject.cde_exec.append(f"{ns}: {_where(g)}")
    for verb, field in (("escalate", "escalate"), ("bind", "bind")):
        setattr(subject, field, sorted({_where(g) for g in granting((verb,), RBAC_GROUP, ("roles", "clusterroles"))}))
    subject.impersonate = sorted({_where(g) for g in granting(("impersonate",), "", ("users", "groups",
                                                                                     "serviceaccounts"))})
    refs = {g.binding for g in eff} | {g.role for g in eff}
    subject.evidence = [ObjectRef.of(objects[k]) for k in sorted(refs) if k in objects]
    return subject


def _sa_name(w: Workload) -> str:
    return str(w.spec.get("serviceAccountName") or w.spec.get("serviceAccount") or "default")


def _identities(inv: Inventory, engine: RBAC, scopes: Scopes, wls: list[Workload], objects: dict[str, Obj],
                problems: list[str]) -> list[WorkloadIdentity]:
    sa_problem = why(inv, "ServiceAccount", "", "serviceaccounts")
    out = []
    for w in wls:
        sa = _sa_name(w)
        sa_obj = inv.get("ServiceAccount", w.namespace, sa, group="")
        pod_setting = w.spec.get("automountServiceAccountToken")
        sa_setting = (sa_obj or {}).get("automountServiceAccountToken")
        if isinstance(pod_setting, bool):
            automount, source = pod_setting, f"pod spec automountServiceAccountToken={str(pod_setting).lower()}"
        elif isinstance(sa_setting, bool):
            automount, source = sa_setting, f"ServiceAccount {sa} automountServiceAccountToken={str(sa_setting).lower()}"
        else:
            automount, source = True, "default: neither the pod spec nor the ServiceAccount sets " \
                                      "automountServiceAccountToken"
        ref = SubjectRef("ServiceAccount", sa, w.namespace)
        eff = [g for g in engine.effective(ref) if not g.bootstrap]
        subject = WorkloadIdentity(
            id=f"{w.namespace}/{w.label}", name=f"{w.namespace}/{w.label}", namespace=w.namespace, workload=w.label,
            namespace_class=scopes.of(w.namespace).cls, service_account=sa,
            service_account_found=None if sa_problem else sa_obj is not None, automount=automount,
            automount_source=source,
            token_permissions=sorted({f"{r.text()} ({g.scope}, {g.binding})" for g in eff for r in g.rules}),
            token_cluster_admin=any(g.namespace is None and g.full_access for g in eff))
        subject.evidence = [ObjectRef.of(w.obj)] + ([ObjectRef.of(sa_obj)] if sa_obj else []) + [
            ObjectRef.of(objects[g.binding]) for g in eff if g.binding in objects]
        if sa_problem and not isinstance(pod_setting, bool):
            subject.mark_unknown("automount", sa_problem)
            subject.mark_unknown("automount_source", sa_problem)
        for p in problems:
            subject.mark_unknown("token_permissions", p)
            subject.mark_unknown("token_cluster_admin", p)
        out.append(subject)
    return out
