"""Probe pods (Engine(probes=True)): they answer baseline()/exposure() and never show in any other output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_cases import CASES

from evidence.netpol.engine import Engine
from evidence.netpol.model import ConnSet, NamedPort, Namespace, Pod


def _inputs(case: dict) -> tuple[list[Namespace], list[Pod], list[dict]]:
    """The case's cluster, as test_cases._engine builds it."""
    namespaces = [Namespace(n["name"], {str(k): str(v) for k, v in (n.get("labels") or {}).items()})
                  for n in case.get("namespaces") or []]
    pods = [Pod(p["namespace"], p["name"], {str(k): str(v) for k, v in (p.get("labels") or {}).items()},
                tuple(NamedPort(x["name"], int(x["containerPort"]), x.get("protocol", "TCP"))
                      for x in p.get("ports") or []), p.get("workload", ""))
            for p in case.get("pods") or []]
    return namespaces, pods, case.get("policies") or []


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_probes_change_no_other_output(path: Path) -> None:
    namespaces, pods, policies = _inputs(yaml.safe_load(path.read_text()))
    plain = Engine(namespaces, pods, policies)
    probed = Engine(namespaces, pods, policies, probes=True)
    assert probed.workload_connectivity() == plain.workload_connectivity()
    assert probed.namespace_facts() == plain.namespace_facts()
    assert probed.stats()["pods"] == plain.stats()["pods"] and probed.workloads.keys() == plain.workloads.keys()
    assert probed.warnings == plain.warnings


def _np(name: str, ns: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def test_baseline_and_exposure() -> None:
    """Default deny plus an allow-all on one workload (Online Boutique's frontend policy, `ingress: [{}]`), and a
    namespace whose every pod admits every namespace (`namespaceSelector: {}`)."""
    pods = [Pod("shop", "web-1", {"app": "web"}, workload="shop/web[Deployment]"),
            Pod("shop", "db-1", {"app": "db"}, workload="shop/db[StatefulSet]"),
            Pod("open", "api-1", {"app": "api"}, workload="open/api[Deployment]")]
    policies = [_np("deny-all", "shop", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                _np("web", "shop", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                                    "ingress": [{}]}),
                _np("all-ns", "open", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
                _np("typo", "shop", {"podSelector": {"matchLabels": {"app": "wbe"}}, "ingress": []}),
                _np("empty-ns-deny", "staging", {"podSelector": {}})]
    e = Engine([Namespace("shop"), Namespace("open")], pods, policies, probes=True)
    shop = e.baseline("shop")
    assert shop["ingress_isolated"] and shop["egress_isolated"] and shop["ingress_from_any_pod"].is_empty()
    assert shop["ingress_from_external"] == []
    web = e.exposure("shop/web[Deployment]")
    assert web["ingress_from_any_pod"] == ConnSet.all() and web["ingress_any_pod_policies"] == ["shop/web"]
    assert [c for ips, c in web["ingress_from_external"]] == [ConnSet.all()]
    assert e.exposure("shop/db[StatefulSet]")["ingress_from_any_pod"].is_empty()
    opened = e.baseline("open")
    assert opened["ingress_isolated"] and opened["ingress_from_any_pod"] == ConnSet.all()
    assert opened["ingress_any_pod_policies"] == ["open/all-ns"] and opened["ingress_from_external"] == []
    assert e.policies_selecting_nothing() == ["shop/typo", "staging/empty-ns-deny"]
    assert e.baseline("staging")["ingress_isolated"]  # a namespace known only from its policy
    assert e.baseline_policies("shop") == [("deny-all", ("Ingress", "Egress"))]
    with pytest.raises(ValueError):
        Engine([], pods, []).exposure("shop/web[Deployment]")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_workload_namespaces_agree_with_pointwise_allowed(path: Path) -> None:
    """The per-workload namespace lists equal what allowed() says pair by pair."""
    e = Engine(*_inputs(yaml.safe_load(path.read_text())), probes=True)
    got = e.workload_namespaces(e.workloads)
    ns_of = {w: w.split("/", 1)[0] for w in e.workloads}
    for w in e.workloads:
        srcs = sorted({ns_of[v] for v in e.workloads if ns_of[v] != ns_of[w] and not e.allowed(v, w).is_empty()})
        dsts = sorted({ns_of[v] for v in e.workloads if ns_of[v] != ns_of[w] and not e.allowed(w, v).is_empty()})
        assert got[w] == (srcs, dsts), w
