"""Pods grouped by their top owner, shared by collectors. Derives pods from templates when a snapshot has none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evidence.inventory import Inventory, Obj

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    owner: str  # "Deployment/web", or "Pod/name" for a bare pod
    labels: dict[str, str]
    node: str | None
    containers: list[dict[str, Any]] = field(hash=False, compare=False)
    derived: bool = False  # built from a workload template, not a real Pod


def _meta(o: Obj) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def top_owner(inv: Inventory, obj: Obj) -> str:
    """Follow controller ownerReferences up (Pod -> ReplicaSet -> Deployment, Job -> CronJob)."""
    ns = _meta(obj).get("namespace")
    current, label = obj, f"{obj.get('kind')}/{_meta(obj).get('name')}"
    for _ in range(5):
        owners = [r for r in _meta(current).get("ownerReferences") or [] if r.get("controller", True)]
        if not owners:
            break
        ref = owners[0]
        label = f"{ref.get('kind')}/{ref.get('name')}"
        parent = inv.get(str(ref.get("kind")), ns, str(ref.get("name")))
        if parent is None:
            break
        current = parent
    return label


def pod_template_spec(obj: Obj) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    tpl = spec.get("template")
    return tpl if isinstance(tpl, dict) else None


def pods(inv: Inventory) -> tuple[list[PodView], bool]:
    """All pods, and whether they were derived from workload templates (snapshot without Pods)."""
    real = inv.objects("Pod", "")
    if real or inv.status("Pod", "").status != "absent":
        out = []
        for p in real:
            m = _meta(p)
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            out.append(PodView(str(m.get("namespace")), str(m.get("name")), top_owner(inv, p),
                               dict(m.get("labels") or {}), (p.get("spec") or {}).get("nodeName"),
                               list((p.get("spec") or {}).get("containers") or [])))
        return out, False
    derived = []
    for kind in WORKLOAD_KINDS:
        for w in inv.objects(kind):
            if any(r.get("controller") for r in _meta(w).get("ownerReferences") or []):
                continue  # ReplicaSets of Deployments, Jobs of CronJobs: the owner stands for them
            tpl = pod_template_spec(w)
            if tpl is None:
                continue
            m = _meta(w)
            derived.append(PodView(str(m.get("namespace")), f"{m.get('name')}-<template>",
                                   f"{kind}/{m.get('name')}", dict(_meta(tpl).get("labels") or {}), None,
                                   list((tpl.get("spec") or {}).get("containers") or []), derived=True))
    return derived, True


def containers_of(obj: Obj) -> list[dict[str, Any]]:
    """Containers of a Pod or of a workload's pod template."""
    if obj.get("kind") == "Pod":
        return list((obj.get("spec") or {}).get("containers") or [])
    tpl = pod_template_spec(obj)
    return list(((tpl or {}).get("spec") or {}).get("containers") or [])


def expand_env(value: str, container: dict[str, Any], namespace: str | None) -> str:
    """Expand $(VAR) references the way the kubelet does, from literal env and metadata.namespace refs."""
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[str(e.get("name"))] = str(e.get("value"))
        elif ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == "metadata.namespace":
            env[str(e.get("name"))] = namespace or ""
    for name, val in env.items():
        value = value.replace(f"$({name})", val)
    return value


def flags(args: list[str]) -> dict[str, str]:
    """'--a=b' and '--a b' style arguments as a dict (a bare '--flag' maps to 'true')."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("-"):
            name = a.lstrip("-")
            if "=" in name:
                k, v = name.split("=", 1)
                out[k] = v
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("-"):
                out[name] = str(args[i + 1])
                i += 1
            else:
                out[name] = "true"
        i += 1
    return out


def daemonset_pods(inv: Inventory) -> dict[str, list[Obj]]:
    """Running pods per DaemonSet ('ns/name'), for node-coverage questions (log shippers, IDS, CNI agents)."""
    out: dict[str, list[Obj]] = {}
    for p in inv.objects("Pod", ""):
        if (p.get("status") or {}).get("phase") != "Running":
            continue
        for ref in _meta(p).get("ownerReferences") or []:
            if ref.get("kind") == "DaemonSet":
                out.setdefault(f"{_meta(p).get('namespace')}/{ref.get('name')}", []).append(p)
    return out


def daemonset_coverage(inv: Inventory, ds: Obj, nodes: list[str],
                       index: dict[str, list[Obj]]) -> tuple[list[Obj], list[str], bool]:
    """(running pods, nodes covered, from_status): the nodes where the DaemonSet runs a pod. Without Pods in the
    inventory, its status is trusted only when it is ready on as many nodes as exist (from_status=True)."""
    running = index.get(f"{_meta(ds).get('namespace')}/{_meta(ds).get('name')}", [])
    if inv.status("Pod", "").status == "ok":
        return running, sorted({str((p.get("spec") or {}).get("nodeName")) for p in running} & set(nodes)), False
    ready = int((ds.get("status") or {}).get("numberReady") or 0)
    return [], (list(nodes) if ready >= len(nodes) else []), True
