"""Top-level workloads (not owned by another controller) with their pod spec, shared by the access collectors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from evidence.collectors.workloads import pod_template_spec
from evidence.inventory import Inventory, Obj

KINDS = (("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"),
         ("batch", "CronJob"), ("batch", "Job"))


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str
    obj: Obj
    spec: dict[str, Any]  # the pod spec (template spec, or the Pod's own)

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"

    def containers(self, init: bool = True) -> list[dict[str, Any]]:
        lists = ("initContainers", "containers") if init else ("containers",)
        return [c for n in lists for c in self.spec.get(n) or [] if isinstance(c, dict)]


def _owned(obj: Obj) -> bool:
    return any(r.get("controller") for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


def workloads(inv: Inventory) -> Iterator[Workload]:
    """Deployments, StatefulSets, DaemonSets, CronJobs and unowned ReplicaSets, Jobs and Pods (mirror Pods of static
    control-plane pods are owned by their Node and skipped)."""
    for group, kind in KINDS:
        for w in inv.objects(kind, group):
            if _owned(w):
                continue
            tpl = pod_template_spec(w)
            spec = (tpl or {}).get("spec")
            meta = w.get("metadata") or {}
            yield Workload(kind, str(meta.get("name")), str(meta.get("namespace") or ""), w,
                           spec if isinstance(spec, dict) else {})
    for p in inv.objects("Pod", ""):
        if _owned(p):
            continue
        meta = p.get("metadata") or {}
        spec = p.get("spec")
        yield Workload("Pod", str(meta.get("name")), str(meta.get("namespace") or ""), p,
                       spec if isinstance(spec, dict) else {})


def mounted_configmap(inv: Inventory, ns: str, container: dict[str, Any], spec: dict[str, Any],
                      path: str) -> tuple[Obj | None, str, str | None]:
    """(ConfigMap, key, problem) for a file path inside a container: its volume mount and configMap volume.

    The most specific mount wins, as in the container's filesystem: a file mounted by subPath over a directory
    mounted from another volume (the Falco chart mounts an emptyDir at /etc/falco and falco.yaml from its
    ConfigMap at /etc/falco/falco.yaml by subPath) is read from the subPath's ConfigMap."""
    p = PurePosixPath(path)
    best: tuple[int, dict[str, Any], str] | None = None
    for m in container.get("volumeMounts") or []:
        if not isinstance(m, dict):
            continue
        mount = PurePosixPath(str(m.get("mountPath") or ""))
        if mount == p:
            rank, key_hint = len(p.parts) + 1, str(m.get("subPath") or p.name)
        elif mount in p.parents:
            rank, key_hint = len(mount.parts), p.relative_to(mount).as_posix()
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, m, key_hint)
    if best is not None:
        _, m, key_hint = best
        mount = PurePosixPath(str(m.get("mountPath") or ""))
        vol = next((v for v in spec.get("volumes") or [] if v.get("name") == m.get("name")), None)
        source = (vol or {}).get("configMap")
        if not isinstance(source, dict):
            kind = next((k for k in (vol or {}) if k != "name"), "unknown")
            return None, key_hint, f"{path} is mounted from a {kind} volume, which auditpack does not read"
        key = next((str(i.get("key")) for i in source.get("items") or [] if i.get("path") == key_hint), key_hint)
        name = str(source.get("name"))
        cm = inv.get("ConfigMap", ns, name, group="")
        if cm is None:
            problem = f"ConfigMap {ns}/{name} (mounted at {mount}) was not found"
            return None, key, problem
        return cm, key, None
    return None, p.name, f"{path} is not on a mounted ConfigMap volume"


def mounted_yaml(inv: Inventory, ns: str, container: dict[str, Any], spec: dict[str, Any],
                 path: str) -> tuple[Obj | None, dict[str, Any] | None, str | None]:
    """(ConfigMap, parsed YAML mapping, problem) for a YAML file mounted from a ConfigMap (mounted_configmap)."""
    cm, key, problem = mounted_configmap(inv, ns, container, spec, path)
    text = ((cm or {}).get("data") or {}).get(key) if cm is not None else None
    try:
        config = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        config, problem = None, f"{path}: not valid YAML"
    return cm, config if isinstance(config, dict) else None, problem
