"""`auditpack rbac`: the generated ClusterRole grants exactly what collection uses, proven against the loopback API
server enforcing that role, and deploy/base/clusterrole.yaml is that output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, SAMPLE
from fakeapi import FakeAPIServer, Request

from evidence.clusterrole import NON_RESOURCE_URLS, cluster_role, render
from evidence.errors import InputError
from evidence.kinds import RESOURCE_TYPES
from evidence.sources import live

FULL = cluster_role()
CERT_MANAGER = next(r for r in FULL["rules"] if r.get("apiGroups") == ["cert-manager.io"])
ROLES = {
    "full": FULL,
    "no-cert-manager": {**FULL, "rules": [r for r in FULL["rules"] if r is not CERT_MANAGER]},
    "no-secrets": cluster_role(secrets=False),
    "no-identity": {**FULL, "rules": [r for r in FULL["rules"] if "resourceNames" not in r]},
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAPIServer]:
    # Every catalogue type is served (empty where the sample has none), so every rule is exercised.
    tokens = {name: f"system:serviceaccount:auditpack:{name}" for name in ROLES}
    with FakeAPIServer(SAMPLE, tokens=tokens, allow=ROLES, extra_types=RESOURCE_TYPES) as srv:
        yield srv


def load(srv: FakeAPIServer, tmp_path: Path, token: str) -> Any:
    srv.clear_requests()
    kubeconfig = srv.write_kubeconfig(tmp_path / f"kc-{token}", token=token)
    return live.LiveSource(live.connect(kubeconfig), sleep=lambda _s: None).load()


def rbac_allows(role: dict[str, Any], req: Request) -> bool:
    """Kubernetes RBAC's rule matching, including resourceNames and nonResourceURLs (the fake ignores both)."""
    for rule in role["rules"]:
        if req.resource is None:
            urls = rule.get("nonResourceURLs") or []
            if req.method == "GET" and "get" in rule["verbs"] and any(
                    u == req.path or (u.endswith("*") and req.path.startswith(u[:-1])) for u in urls):
                return True
        elif req.group in (rule.get("apiGroups") or []) and req.resource in (rule.get("resources") or []) \
                and req.verb in rule["verbs"] and (not rule.get("resourceNames") or req.name in rule["resourceNames"]):
            return True
    return False


def test_role_is_the_catalogue_read_only() -> None:
    listed = {(g, r) for rule in FULL["rules"] if "list" in rule["verbs"] for g in rule["apiGroups"]
              for r in rule["resources"]}
    assert listed == {(t.group, t.plural) for t in RESOURCE_TYPES}
    assert {v for rule in FULL["rules"] for v in rule["verbs"]} == {"list", "get"}
    gets = [rule for rule in FULL["rules"] if rule["verbs"] == ["get"] and "resources" in rule]
    assert gets == [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["kube-system"],
                     "verbs": ["get"]}]
    assert FULL["rules"][-1] == {"nonResourceURLs": list(NON_RESOURCE_URLS), "verbs": ["get"]}
    text = json.dumps(FULL)
    assert '"*"' not in text and "watch" not in text
    groups = [rule["apiGroups"][0] for rule in FULL["rules"] if "list" in rule["verbs"]]
    assert len(groups) == len(set(groups)), "one rule per API group"
    assert ("", "secrets") not in {(g, r) for rule in ROLES["no-secrets"]["rules"] for g in rule.get("apiGroups", [])
                                   for r in rule["resources"]}


def test_exactly_the_role_collects_everything_and_uses_every_grant(server: FakeAPIServer, tmp_path: Path) -> None:
    inv = load(server, tmp_path, "full")
    assert [e for e in inv.log if e.status in ("forbidden", "error")] == []
    assert {(e.group, e.kind) for e in inv.log if e.status == "ok"} == {(t.group, t.kind) for t in RESOURCE_TYPES}
    assert inv.source.cluster.kube_system_uid
    requests = server.requests
    # Every request the collector made is allowed by the role under full RBAC semantics, except the one
    # SelfSubjectReview (who is collecting) that Kubernetes' default ClusterRole system:basic-user allows every
    # authenticated user (create selfsubjectreviews.authentication.k8s.io, bound to system:authenticated in the
    # bootstrap policy; `kubectl get clusterrole system:basic-user` lists it)...
    review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    assert [r.path for r in requests if not rbac_allows(FULL, r) and r.path != review] == []
    assert [r.method for r in requests if r.path == review] == ["POST"]
    assert all(r.status in (200, 201) for r in requests)
    # ...and every grant is used: nothing in the role is there for nothing.
    granted = {(g, res, v) for rule in FULL["rules"] for g in rule.get("apiGroups", []) for res in rule["resources"]
               for v in rule["verbs"]}
    used = {(r.group, r.resource, r.verb) for r in requests if r.resource is not None}
    assert used == granted
    for url in NON_RESOURCE_URLS:
        assert any(r.path == url or (url.endswith("*") and r.path.startswith(url[:-1]))
                   for r in requests if r.resource is None), url


@pytest.mark.parametrize(("token", "denied"), [
    ("no-cert-manager", {("cert-manager.io", "Certificate"), ("cert-manager.io", "Issuer"),
                         ("cert-manager.io", "ClusterIssuer")}),
    ("no-secrets", {("", "Secret")}),
])
def test_removing_a_grant_forbids_exactly_its_types(server: FakeAPIServer, tmp_path: Path, token: str,
                                                    denied: set[tuple[str, str]]) -> None:
    inv = load(server, tmp_path, token)
    assert {(e.group, e.kind) for e in inv.log if e.status == "forbidden"} == denied
    assert {(e.group, e.kind) for e in inv.log if e.status == "ok"} == \
        {(t.group, t.kind) for t in RESOURCE_TYPES} - denied
    assert not [e for e in inv.log if e.status == "error"]


def test_without_the_identity_rule_the_cluster_uid_is_missing(server: FakeAPIServer, tmp_path: Path) -> None:
    inv = load(server, tmp_path, "no-identity")
    assert inv.source.cluster.kube_system_uid is None
    assert not [e for e in inv.log if e.status != "ok"]
    assert [r.status for r in server.requests if r.verb == "get"] == [403]


def test_rbac_command_formats(cli) -> None:
    text = cli("rbac")
    assert text.code == 0 and yaml.safe_load(text.out) == FULL
    assert "RBAC cannot restrict `list` by field selector" in text.out and "--no-secrets" in text.out
    assert "allowed to every authenticated user by default" in text.out
    js = cli("rbac", "--format", "json", "--name", "audit-reader", "--no-secrets")
    assert js.code == 0 and json.loads(js.out) == cluster_role("audit-reader", secrets=False)
    assert yaml.safe_load(render(secrets=False)) == cluster_role(secrets=False)


def test_deploy_holds_the_generated_role() -> None:
    assert (ROOT / "deploy" / "base" / "clusterrole.yaml").read_text() == render(), \
        "deploy/base/clusterrole.yaml is stale: regenerate it with `make rbac`"


def test_cluster_name_is_known_before_connecting(server: FakeAPIServer, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """--out-root needs the cluster's directory (and its lock) before the first request."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kc", context="prod-se")
    assert live.context_name(kubeconfig) == "prod-se"
    with pytest.raises(InputError, match="no context 'prod-no'"):
        live.context_name(kubeconfig, "prod-no")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert live.context_name() == "in-cluster"
