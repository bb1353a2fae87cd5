"""The RBAC engine against the authorizer's rules: wildcards, subresources, aggregation, binding scope, implicit groups."""

from __future__ import annotations

from helpers import inventory, obj

from evidence.rbac import RBAC, Access, SubjectRef, rbac_for

API = "rbac.authorization.k8s.io/v1"


def role(name: str, rules: list[dict], ns: str | None = None, labels: dict | None = None,
         aggregate: list[dict] | None = None) -> dict:
    o = obj(API, "Role" if ns else "ClusterRole", name, ns, labels=labels, rules=rules)
    if aggregate is not None:
        o["aggregationRule"] = {"clusterRoleSelectors": aggregate}
    return o


def bind(name: str, role_kind: str, role_name: str, subjects: list[dict], ns: str | None = None,
         labels: dict | None = None) -> dict:
    return obj(API, "RoleBinding" if ns else "ClusterRoleBinding", name, ns, labels=labels,
               roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
               subjects=subjects)


def group(name: str) -> dict:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def sa(ns: str | None, name: str) -> dict:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": ns} if ns else {})}


def engine(*objects: dict) -> RBAC:
    return RBAC.from_objects([o for o in objects if o["kind"] == "ClusterRole"],
                             [o for o in objects if o["kind"] == "Role"],
                             [o for o in objects if o["kind"] == "ClusterRoleBinding"],
                             [o for o in objects if o["kind"] == "RoleBinding"])


def test_wildcards_and_subresources() -> None:
    e = engine(
        role("all", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        role("scaler", [{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}]),
        role("pod-star", [{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}]),
        bind("admins", "ClusterRole", "all", [group("admins")]),
        bind("scalers", "ClusterRole", "scaler", [group("scalers")]),
        bind("odd", "ClusterRole", "pod-star", [group("odd")]))
    exec_ = e.who_can("create", "", "pods/exec", "payments")
    assert [a.subject.name for a in exec_] == ["admins"]  # `pods/*` is a literal subresource named `*`
    assert [a.subject.name for a in e.who_can("update", "apps", "deployments/scale")] == ["admins", "scalers"]
    assert [a.subject.name for a in e.who_can("update", "apps", "deployments")] == ["admins"]
    assert exec_[0] == Access(SubjectRef("Group", "admins"), "ClusterRoleBinding/admins", "ClusterRole/all")


def test_rolebinding_to_clusterrole_grants_only_in_its_namespace() -> None:
    e = engine(role("secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                                      {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
               bind("devs", "ClusterRole", "secret-reader", [group("devs")], ns="payments"))
    assert [a.subject.name for a in e.who_can("get", "", "secrets", "payments")] == ["devs"]
    assert e.who_can("get", "", "secrets", "storefront") == []
    assert e.who_can("get", "", "secrets") == []  # never cluster-wide
    assert all(not r.non_resource_urls for g in e.grants for r in g.rules)  # non-resource URLs drop in a namespace


def test_aggregation_follows_label_selectors_to_a_fixed_point() -> None:
    e = engine(
        role("view", [], labels={"team": "platform"},
             aggregate=[{"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}]),
        role("monitoring-view", [{"apiGroups": ["monitoring.coreos.com"], "resources": ["prometheuses"],
                                  "verbs": ["get"]}], labels={"rbac.example.com/aggregate-to-view": "true"}),
        role("super-view", [], aggregate=[{"matchExpressions": [{"key": "team", "operator": "In",
                                                                   "values": ["platform"]}]}]),
        role("unrelated", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        bind("auditors", "ClusterRole", "super-view", [group("auditors")]))
    assert [a.subject.name for a in e.who_can("get", "monitoring.coreos.com", "prometheuses")] == ["auditors"]
    assert e.who_can("get", "", "secrets") == []


def test_service_accounts_inherit_their_groups_and_users_can_name_them() -> None:
    e = engine(role("reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
               role("lister", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
               bind("all-sas", "ClusterRole", "reader", [group("system:serviceaccounts")]),
               bind("as-user", "ClusterRole", "lister", [{"kind": "User", "name": "system:serviceaccount:ci:bot"}]),
               bind("ns-default", "Role", "missing", [sa(None, "app")], ns="shop"))
    bot = SubjectRef("ServiceAccount", "bot", "ci")
    assert [g.binding for g in e.direct(bot)] == ["ClusterRoleBinding/as-user"]
    assert {g.binding for g in e.effective(bot)} == {"ClusterRoleBinding/as-user", "ClusterRoleBinding/all-sas"}
    assert e.can(bot, "list", "", "configmaps", "anywhere")
    # A RoleBinding's ServiceAccount without a namespace is the binding's own; a missing role grants nothing.
    assert e.direct(SubjectRef("ServiceAccount", "app", "shop"))[0].role_found is False
    assert e.dangling == ["RoleBinding/shop/ns-default -> Role/shop/missing"]


def test_rbac_for_builds_once_per_inventory() -> None:
    inv = inventory(role("r", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
                    bind("b", "ClusterRole", "r", [group("g")]))
    assert rbac_for(inv) is rbac_for(inv)
    assert rbac_for(inventory()) is not rbac_for(inv)
    assert [a.subject.display() for a in rbac_for(inv).who_can("get", "", "pods", "x")] == ["Group g"]
