"""Access collectors on small inventories: RBAC subjects, workload tokens, plaintext credentials, posture, scans."""

from __future__ import annotations

import datetime as dt
import json

from helpers import NOW, deployment, inventory, obj, pod
from test_rbac import bind, group, role, sa

from evidence.collectors import access, credentials, posture, vulnerabilities
from evidence.redact import MASK, Redactor
from evidence.scope import NamespaceScope, Scope

CDE = Scope(namespaces=NamespaceScope(cde=["payments"], connected=["shop"]))


def ns(name: str, labels: dict | None = None) -> dict:
    return obj("v1", "Namespace", name, labels={"kubernetes.io/metadata.name": name, **(labels or {})})


def by_id(subjects: list) -> dict:
    return {s.id: s for s in subjects}


def test_rbac_subjects_privileges_in_the_cde() -> None:
    inv = inventory(
        ns("payments"), ns("shop"),
        role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
             labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        role("debug", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                       {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}], ns="payments"),
        role("rbac-manager", [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                               "verbs": ["bind", "escalate"]},
                              {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
        bind("cluster-admin", "ClusterRole", "cluster-admin", [group("system:masters")],
             labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        bind("bot-admin", "ClusterRole", "cluster-admin", [sa("ci", "bot")]),
        bind("debug", "Role", "debug", [group("devs")], ns="payments"),
        bind("rbac", "ClusterRole", "rbac-manager", [group("operators")]),
        bind("everyone", "ClusterRole", "rbac-manager", [group("system:authenticated")]))
    got = by_id(access.collect_subjects(inv, CDE, NOW))
    masters, bot, devs = got["Group/system:masters"], got["ServiceAccount/ci/bot"], got["Group/devs"]
    assert masters.builtin and masters.cluster_admin and not bot.builtin and bot.cluster_admin
    assert devs.cde_namespaces == ["payments"] and not devs.cluster_admin
    assert devs.cde_secret_read == ["payments: get secrets, namespace payments via RoleBinding/payments/debug "
                                    "(Role/payments/debug)"]
    assert devs.cde_exec and "get" not in devs.cde_exec[0]  # exec by `get` (WebSocket) counts too
    ops = got["Group/operators"]
    assert ops.escalate and ops.bind and ops.impersonate
    everyone = got["Group/system:authenticated"]
    assert everyone.public and everyone.non_default_grants == [
        "ClusterRoleBinding/everyone -> ClusterRole/rbac-manager (cluster-wide)"]
    assert got["User/system:anonymous"].public and not got["User/system:anonymous"].non_default_grants
    # A ServiceAccount inherits what system:authenticated gets, and says through which group.
    assert any(g.via == "Group system:authenticated" for g in bot.grants)
    assert {r.kind for r in devs.evidence} == {"RoleBinding", "Role"}


def test_denied_bindings_make_permissions_unknown() -> None:
    inv = inventory(ns("payments"), denied=("RoleBinding",))
    got = by_id(access.collect_subjects(inv, CDE, NOW))
    unknown = {u.field: u.reason for u in got["Group/system:authenticated"].unknown}
    assert unknown["cluster_admin"] == "permission denied: list rolebindings.rbac.authorization.k8s.io"
    assert "cde_secret_read" in unknown and "non_default_grants" in unknown


def test_workload_token_automount_precedence() -> None:
    quiet = obj("v1", "ServiceAccount", "quiet", "payments", automountServiceAccountToken=False)
    loud = deployment("loud", "payments", "x")
    by_sa = deployment("by-sa", "payments", "x")
    by_sa["spec"]["template"]["spec"]["serviceAccountName"] = "quiet"
    override = deployment("override", "payments", "x")
    override["spec"]["template"]["spec"].update(serviceAccountName="quiet", automountServiceAccountToken=True)
    inv = inventory(ns("payments"), quiet, obj("v1", "ServiceAccount", "default", "payments"), loud, by_sa, override)
    got = by_id(access.collect_workloads(inv, CDE, NOW))
    assert got["payments/Deployment/loud"].automount and "default" in got["payments/Deployment/loud"].automount_source
    assert not got["payments/Deployment/by-sa"].automount
    assert got["payments/Deployment/by-sa"].automount_source == "ServiceAccount quiet automountServiceAccountToken=false"
    assert got["payments/Deployment/override"].automount
    assert got["payments/Deployment/loud"].namespace_class == "cde"
    denied = access.collect_workloads(inventory(ns("payments"), loud, denied=("ServiceAccount",)), CDE, NOW)
    assert "automount" in denied[0].unknown_fields()


def test_plaintext_credentials_are_located_never_copied() -> None:
    """The redactor masks on the way in; the collector reports where, by key name, and the value is gone."""
    value = "sk_live_51Hdemo-NOT-REAL-but-secret"
    leaky = deployment("cart", "shop", "x", env=[{"name": "PAYMENT_API_KEY", "value": value},
                                                 {"name": "LOG_LEVEL", "value": "info"}],
                       args=[f"--client-secret={value}", "--port=8080"])
    cm = obj("v1", "ConfigMap", "app", "shop", data={"DB_PASSWORD": value, "LOG_LEVEL": "info"})
    red = Redactor()
    inv = inventory(ns("shop"), ns("payments"), red.redact(leaky), red.redact(cm))
    got = by_id(credentials.collect(inv, CDE, NOW))
    shop = got["shop"]
    assert shop.env_values == ["Deployment/cart container cart env PAYMENT_API_KEY"]
    assert shop.arguments == ["Deployment/cart container cart argument --client-secret"]
    assert shop.configmap_keys == ["ConfigMap/app key DB_PASSWORD"] and shop.total == 3
    assert got["payments"].total == 0 and shop.in_scope
    dumped = json.dumps([s.model_dump(mode="json") for s in got.values()])
    assert value not in dumped and MASK not in dumped


def test_pod_security_effective_level_and_policy_reports() -> None:
    api = pod("kube-apiserver-a", "kube-system", {"component": "kube-apiserver"})
    api["spec"]["containers"][0]["command"] = ["kube-apiserver", "--authorization-mode=Node,RBAC"]
    report = obj("wgpolicyk8s.io/v1alpha2", "PolicyReport", "r1", "shop",
                 summary={"pass": 3, "fail": 1, "warn": 0, "error": 0, "skip": 0},
                 results=[{"policy": "require-run-as-nonroot", "rule": "run-as-non-root", "result": "fail",
                           "severity": "high", "resources": [{"kind": "Deployment", "name": "cart"}]},
                          {"policy": "disallow-latest-tag", "rule": "validate-image-tag", "result": "pass"}])
    inv = inventory(ns("payments", {"pod-security.kubernetes.io/enforce": "restricted"}),
                    ns("shop", {"pod-security.kubernetes.io/warn": "restricted"}), api, report)
    got = by_id(posture.collect(inv, CDE, NOW))
    assert got["payments"].enforce == "restricted" and got["payments"].policy_reports == 0
    shop = got["shop"]
    assert shop.enforce == "privileged" and "built-in default" in shop.enforce_source and shop.warn == "restricted"
    assert (shop.policy_pass, shop.policy_fail) == (3, 1)
    assert shop.failing_policies == ["require-run-as-nonroot/run-as-non-root: Deployment/cart (high)"]
    api["spec"]["containers"][0]["command"].append("--admission-control-config-file=/etc/k8s/admission.yaml")
    configured = by_id(posture.collect(inventory(ns("shop"), api), CDE, NOW))["shop"]
    assert configured.enforce is None and "/etc/k8s/admission.yaml" in configured.unknown[0].reason


def _report(name: str, kind: str, resource: str, container: str, age_days: int, vulns: list[dict]) -> dict:
    return obj("aquasecurity.github.io/v1alpha1", "VulnerabilityReport", name, "shop",
               labels={"trivy-operator.resource.kind": kind, "trivy-operator.resource.name": resource,
                       "trivy-operator.resource.namespace": "shop", "trivy-operator.container.name": container},
               report={"updateTimestamp": (NOW - dt.timedelta(days=age_days)).isoformat(),
                       "summary": {"criticalCount": sum(v["severity"] == "CRITICAL" for v in vulns)},
                       "vulnerabilities": vulns})


def _vuln(vid: str, days: int | None, fixed: str = "1.2.4") -> dict:
    v = {"vulnerabilityID": vid, "resource": "libssl3", "installedVersion": "1.2.3", "fixedVersion": fixed,
         "severity": "CRITICAL"}
    if days is not None:
        v["publishedDate"] = (NOW - dt.timedelta(days=days)).isoformat()
    return v


def test_vulnerability_reports_per_workload() -> None:
    web = deployment("web", "shop", "registry.example.com/web:1")
    rs = obj("apps/v1", "ReplicaSet", "web-7d9f", "shop")
    rs["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "web", "controller": True}]
    api = deployment("api", "shop", "registry.example.com/api:1")
    inv = inventory(ns("shop"), web, rs, api, _report("replicaset-web-7d9f-web", "ReplicaSet", "web-7d9f", "web", 3, [
        _vuln("CVE-OLD", 45), _vuln("CVE-NEW", 5), _vuln("CVE-NOFIX", 90, fixed="")]))
    got = by_id(vulnerabilities.collect(inv, CDE, NOW))
    w = got["shop/Deployment/web"]
    assert w.scanner == "trivy-operator" and w.oldest_scan_days == 3 and not w.unscanned
    assert [x.split(" ")[0] for x in w.critical_fixable_overdue] == ["CVE-OLD"]
    assert [x.split(" ")[0] for x in w.critical_fixable_recent] == ["CVE-NEW"] and w.critical == 3
    assert got["shop/Deployment/api"].unscanned == ["api"] and w.scan_required
    undated = inventory(ns("shop"), web, rs, _report("r", "ReplicaSet", "web-7d9f", "web", 1, [_vuln("CVE-X", None)]))
    assert "critical_fixable_overdue" in vulnerabilities.collect(undated, CDE, NOW)[0].unknown_fields()
    absent = vulnerabilities.collect(inventory(ns("shop"), web, absent=("VulnerabilityReport",)), CDE, NOW)[0]
    assert "scanner" in absent.unknown_fields()
    none = vulnerabilities.collect(inventory(ns("shop"), web), CDE, NOW)[0]
    assert none.scanner is None and not none.unknown  # listed fine, no scanner: manual, not unknown
