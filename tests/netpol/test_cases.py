"""NetworkPolicy semantics cases: one YAML file per case (cluster, policies and expected flows), run by one test.

Case file keys:
- `namespaces`: [{name, labels}], `pods`: [{namespace, name, labels, ports: [{name, containerPort, protocol}],
  workload}], `policies`: raw NetworkPolicy manifests.
- `expect`: [{src, dst, conns}]: conns is "all" or [{protocol, ports: [[from, to], ...]}]. An end is a workload
  ("ns/name[Kind]"), a pod ("ns/name"), an IP address (checked pointwise) or a CIDR (must be an exact entry of the
  workload connectivity output).
- `deny`: [[src, dst], ...] pairs with no allowed connection at all.
- `exact: true`: the workload connectivity output holds exactly the `expect` entries whose ends are workloads/CIDRs.
- `explain`: [{src, dst, ingress: [policy ids], egress: [policy ids]}] checked against `rules_allowing` (null for the
  side outside the cluster).
- `warnings`: number of warnings the engine must report (invalid objects); 0 when absent.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from evidence.netpol.engine import Engine
from evidence.netpol.model import ConnSet, NamedPort, Namespace, Pod

CASES = sorted(Path(__file__).parent.glob("*.yaml"))


def _kind(ep: str) -> str:
    if "[" in ep:
        return "workload"
    try:
        ipaddress.ip_address(ep)
        return "ip"
    except ValueError:
        pass
    try:
        ipaddress.ip_network(ep)
        return "cidr"
    except ValueError:
        return "pod"


def _engine(case: dict[str, Any]) -> Engine:
    namespaces = [Namespace(n["name"], {str(k): str(v) for k, v in (n.get("labels") or {}).items()})
                  for n in case.get("namespaces") or []]
    pods = [Pod(p["namespace"], p["name"], {str(k): str(v) for k, v in (p.get("labels") or {}).items()},
                tuple(NamedPort(x["name"], int(x["containerPort"]), x.get("protocol", "TCP")) for x in p.get("ports") or []),
                p.get("workload", ""))
            for p in case.get("pods") or []]
    return Engine(namespaces, pods, case.get("policies") or [])


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    engine = _engine(case)
    assert len(engine.warnings) == case.get("warnings", 0), engine.warnings
    output = {(e["src"], e["dst"]): e["conns"] for e in engine.workload_connectivity()}

    for exp in case.get("expect") or []:
        src, dst, want = exp["src"], exp["dst"], ConnSet.from_json(exp["conns"])
        kinds = {_kind(src), _kind(dst)}
        if "cidr" in kinds:
            assert (src, dst) in output, f"no output entry {src} -> {dst}; have {sorted(output)}"
            assert ConnSet.from_json(output[(src, dst)]) == want, (src, dst, output[(src, dst)])
            continue
        got = engine.allowed(src, dst)
        assert got == want, f"{src} -> {dst}: got {got}, want {want}"
        if kinds == {"workload"}:
            assert ConnSet.from_json(output.get((src, dst), [])) == want, f"workload output {src} -> {dst}"

    for src, dst in case.get("deny") or []:
        if "cidr" not in {_kind(src), _kind(dst)}:
            got = engine.allowed(src, dst)
            assert got.is_empty(), f"{src} -> {dst} should be denied, got {got}"
        if {_kind(src), _kind(dst)} <= {"workload", "cidr"}:
            assert (src, dst) not in output, f"{src} -> {dst} in output: {output[(src, dst)]}"

    if case.get("exact"):
        want_keys = {(e["src"], e["dst"]) for e in case["expect"]
                     if {_kind(e["src"]), _kind(e["dst"])} <= {"workload", "cidr"}}
        extra, missing = sorted(set(output) - want_keys), sorted(want_keys - set(output))
        assert not extra and not missing, f"extra: {extra}; missing: {missing}"

    for exp in case.get("explain") or []:
        got_explain = engine.rules_allowing(exp["src"], exp["dst"])
        for side in ("ingress", "egress"):
            if side in exp:
                actual = None if got_explain[side] is None else got_explain[side]["policies"]
                assert actual == exp[side], (side, got_explain)
