"""RBAC as the API server's authorizer sees it: roles (with ClusterRole aggregation), bindings, subjects.

Pure: built from Role, ClusterRole, RoleBinding and ClusterRoleBinding objects, never from a cluster.
Matching follows kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go: `*` matches every verb, group and
resource (subresources included), `*/scale` matches the scale subresource of any resource, `pods/*` matches
only a subresource literally named `*`. A RoleBinding grants its role's rules in its own namespace only; a
ClusterRoleBinding grants them in every namespace and at cluster scope (non-resource URLs included).

`who_can(verb, group, resource, namespace)` answers "which subjects may do this, through which binding and
role" (PCI DSS 7.2.2: who holds a privilege; the lead's "only the network team may change NetworkPolicies").
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from evidence.inventory import Inventory, Obj
from evidence.netpol.selectors import matches

RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"  # "rbac-defaults" on the roles and bindings the API server creates
SA_USER_PREFIX = "system:serviceaccount:"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
MASTERS = "system:masters"
# Identities every request, or every ServiceAccount, carries: whatever is granted to them is granted widely.
PUBLIC_GROUPS = frozenset({AUTHENTICATED, UNAUTHENTICATED, ALL_SERVICE_ACCOUNTS})


@dataclass(frozen=True, order=True)
class SubjectRef:
    """A User, Group or ServiceAccount as named in a binding (a User 'system:serviceaccount:ns:n' is the SA)."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def from_binding(cls, subject: dict[str, Any], binding_namespace: str | None) -> SubjectRef | None:
        kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
        if not name or kind not in ("User", "Group", "ServiceAccount"):
            return None
        if kind == "ServiceAccount":
            # The authorizer defaults an empty namespace to the RoleBinding's own (rbac.go appliesToUser).
            return cls("ServiceAccount", name, str(subject.get("namespace") or binding_namespace or ""))
        if kind == "User" and name.startswith(SA_USER_PREFIX) and name.count(":") == 3:
            _, _, ns, sa = name.split(":")
            return cls("ServiceAccount", sa, ns)
        return cls(kind, name)

    def display(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.kind == "ServiceAccount" else f"{self.kind} {self.name}"

    @property
    def username(self) -> str:
        """The name the API server authenticates (what an audit log's user.username shows)."""
        return f"{SA_USER_PREFIX}{self.namespace}:{self.name}" if self.kind == "ServiceAccount" else self.name

    def implicit_groups(self) -> tuple[SubjectRef, ...]:
        """Groups the authenticator always adds: every ServiceAccount is in system:serviceaccounts[:<ns>]."""
        if self.kind == "ServiceAccount":
            return (SubjectRef("Group", ALL_SERVICE_ACCOUNTS),
                    SubjectRef("Group", f"{ALL_SERVICE_ACCOUNTS}:{self.namespace}"), SubjectRef("Group", AUTHENTICATED))
        if self.kind == "User" and self.name != ANONYMOUS:
            return (SubjectRef("Group", AUTHENTICATED),)
        if self.kind == "User":
            return (SubjectRef("Group", UNAUTHENTICATED),)
        return ()


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True)
class Rule:
    """One PolicyRule."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Rule:
        return cls(_tuple(raw.get("verbs")), _tuple(raw.get("apiGroups")), _tuple(raw.get("resources")),
                   _tuple(raw.get("resourceNames")), _tuple(raw.get("nonResourceURLs")))

    def allows(self, verb: str, group: str, resource: str) -> bool:
        """`resource` may carry a subresource: 'pods/exec'. Resource names are not checked (any name counts)."""
        if self.non_resource_urls and not self.resources:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        sub = resource.split("/", 1)[1] if "/" in resource else ""
        return any(r in ("*", resource) or (sub and r == f"*/{sub}") for r in self.resources)

    @property
    def full_access(self) -> bool:
        return "*" in self.verbs and "*" in self.api_groups and "*" in self.resources and not self.resource_names

    def text(self) -> str:
        """'get, list secrets', 'create pods/exec', '* *.*' (every resource of every group),
        'get non-resource URLs /metrics', 'get secrets [db, api]'."""
        verbs = ", ".join(self.verbs)
        if self.non_resource_urls and not self.resources:
            return f"{verbs} non-resource URLs {', '.join(self.non_resource_urls)}"
        groups = [g for g in self.api_groups if g != ""]
        names = []
        for r in self.resources:
            if groups:
                names += [f"{r}.{g}" for g in groups]
            if "" in self.api_groups or not self.api_groups:
                names.append(r)
        text = f"{verbs} {', '.join(names) or '(no resources)'}"
        if self.resource_names:
            text += f" [{', '.join(self.resource_names)}]"
        return text


@dataclass(frozen=True)
class Grant:
    """What one binding grants to one of its subjects: a role's rules, cluster-wide or in one namespace."""

    subject: SubjectRef
    binding: str  # "ClusterRoleBinding/name" or "RoleBinding/ns/name"
    role: str  # "ClusterRole/name" or "Role/ns/name"
    namespace: str | None  # None: cluster-wide (ClusterRoleBinding)
    rules: tuple[Rule, ...]
    bootstrap: bool = False  # a default binding the API server maintains (label kubernetes.io/bootstrapping)
    role_found: bool = True

    @property
    def scope(self) -> str:
        return "cluster-wide" if self.namespace is None else f"namespace {self.namespace}"

    def applies_in(self, namespace: str | None) -> bool:
        """Cluster-wide grants apply everywhere; namespaced ones only in their namespace (never cluster-wide)."""
        return self.namespace is None or self.namespace == namespace

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        return self.applies_in(namespace) and any(r.allows(verb, group, resource) for r in self.rules)

    @property
    def full_access(self) -> bool:
        return any(r.full_access for r in self.rules)


class Access(NamedTuple):
    """One answer of `who_can`: a subject, and the binding and role that let it."""

    subject: SubjectRef
    binding: str
    role: str


@dataclass
class RBAC:
    """Roles, bindings and the grants they make; built once per inventory (see `rbac_for`)."""

    grants: list[Grant] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)  # bindings whose role does not exist
    role_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # "ClusterRole/x" -> effective rules
    _by_subject: dict[SubjectRef, list[Grant]] | None = field(default=None, repr=False)
    _indexed: int = field(default=0, repr=False)

    @classmethod
    def from_objects(cls, cluster_roles: Iterable[Obj], roles: Iterable[Obj], cluster_role_bindings: Iterable[Obj],
                     role_bindings: Iterable[Obj]) -> RBAC:
        engine = cls()
        engine.role_rules = _aggregate(list(cluster_roles))
        for r in roles:
            meta = r.get("metadata") or {}
            engine.role_rules[f"Role/{meta.get('namespace')}/{meta.get('name')}"] = tuple(
                Rule.of(x) for x in r.get("rules") or [] if isinstance(x, dict))
        for b in cluster_role_bindings:
            engine._bind(b, None)
        for b in role_bindings:
            engine._bind(b, str((b.get("metadata") or {}).get("namespace") or ""))
        return engine

    @classmethod
    def from_inventory(cls, inv: Inventory) -> RBAC:
        return cls.from_objects(inv.objects("ClusterRole", RBAC_GROUP), inv.objects("Role", RBAC_GROUP),
                                inv.objects("ClusterRoleBinding", RBAC_GROUP), inv.objects("RoleBinding", RBAC_GROUP))

    def _bind(self, b: Obj, namespace: str | None) -> None:
        meta = b.get("metadata") or {}
        ref = b.get("roleRef") or {}
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        binding = f"RoleBinding/{namespace}/{meta.get('name')}" if namespace is not None \
            else f"ClusterRoleBinding/{meta.get('name')}"
        role = f"ClusterRole/{name}" if kind == "ClusterRole" else f"Role/{namespace}/{name}"
        rules = self.role_rules.get(role)
        if rules is None:
            self.dangling.append(f"{binding} -> {role}")
        if namespace is not None and rules:
            # A ClusterRole bound in a namespace grants nothing on non-resource URLs (cluster-scoped only).
            rules = tuple(r for r in rules if r.resources)
        bootstrap = (meta.get("labels") or {}).get(BOOTSTRAP_LABEL) == "rbac-defaults"
        for s in b.get("subjects") or []:
            subject = SubjectRef.from_binding(s, namespace) if isinstance(s, dict) else None
            if subject is not None:
                self.grants.append(Grant(subject, binding, role, namespace, rules or (), bootstrap, rules is not None))

    # --- queries ------------------------------------------------------------------------------------------

    def who_can(self, verb: str, group: str, resource: str, namespace: str | None = None) -> list[Access]:
        """Subjects bound to do `verb` on `group`/`resource` ('pods/exec' for a subresource) in `namespace`
        (None: cluster-wide, i.e. through a ClusterRoleBinding). Groups are returned as groups, not expanded."""
        seen: dict[Access, None] = {}
        for g in self.grants:
            if (g.namespace is None or g.namespace == namespace) and any(
                    r.allows(verb, group, resource) for r in g.rules):
                seen.setdefault(Access(g.subject, g.binding, g.role), None)
        return sorted(seen)

    def subjects(self) -> list[SubjectRef]:
        return sorted(self._index())

    def _index(self) -> dict[SubjectRef, list[Grant]]:
        if self._by_subject is None or self._indexed != len(self.grants):
            self._by_subject = {}
            for g in self.grants:
                self._by_subject.setdefault(g.subject, []).append(g)
            self._indexed = len(self.grants)
        return self._by_subject

    def direct(self, subject: SubjectRef) -> list[Grant]:
        return list(self._index().get(subject, []))

    def effective(self, subject: SubjectRef) -> list[Grant]:
        """Grants to the subject and to the groups it is always in (ServiceAccounts: system:serviceaccounts...)."""
        index = self._index()
        return [g for who in (subject, *subject.implicit_groups()) for g in index.get(who, [])]

    def can(self, subject: SubjectRef, verb: str, group: str, resource: str, namespace: str | None) -> list[Grant]:
        return [g for g in self.effective(subject) if g.allows(verb, group, resource, namespace)]


def _aggregate(cluster_roles: list[Obj]) -> dict[str, tuple[Rule, ...]]:
    """Effective rules of every ClusterRole: its own, plus (for an aggregationRule) those of every ClusterRole
    whose labels match one of its clusterRoleSelectors, to a fixed point (aggregated roles can be aggregated)."""
    own: dict[str, tuple[Rule, ...]] = {}
    labels: dict[str, dict[str, str]] = {}
    selectors: dict[str, list[dict[str, Any]]] = {}
    for cr in cluster_roles:
        meta = cr.get("metadata") or {}
        name = str(meta.get("name"))
        own[name] = tuple(Rule.of(x) for x in cr.get("rules") or [] if isinstance(x, dict))
        labels[name] = dict(meta.get("labels") or {})
        sel = (cr.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if isinstance(sel, list):
            selectors[name] = [s for s in sel if isinstance(s, dict)]
    rules = {n: list(r) for n, r in own.items()}
    members = {n: [m for m in own if m != n and any(matches(s, labels[m]) for s in sel)]
               for n, sel in selectors.items()}
    changed = True
    while changed:
        changed = False
        for n, ms in members.items():
            for m in ms:
                for r in rules[m]:
                    if r not in rules[n]:
                        rules[n].append(r)
                        changed = True
    return {f"ClusterRole/{n}": tuple(r) for n, r in rules.items()}


_ENGINES: dict[int, tuple[weakref.ref[Inventory], RBAC]] = {}


def rbac_for(inv: Inventory) -> RBAC:
    """The RBAC engine of an inventory, built once and shared by every collector that asks."""
    cached = _ENGINES.get(id(inv))
    if cached is not None and cached[0]() is inv:
        return cached[1]
    engine = RBAC.from_inventory(inv)
    key = id(inv)
    _ENGINES[key] = (weakref.ref(inv, lambda _ref: _ENGINES.pop(key, None)), engine)
    return engine
