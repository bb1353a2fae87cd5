"""Where the kube-apiserver's flags can be read, and which platform runs the control plane (cluster-facts.md E.1, E.2).

The flags come from the mirror Pod `kube-system/kube-apiserver-<node>` (what runs), else from the kubeadm-config
ConfigMap's ClusterConfiguration `apiServer.extraArgs` (what kubeadm renders: a map in kubeadm.k8s.io/v1beta3, a
list of {name, value} in v1beta4). Managed platforms (EKS, GKE, AKS) are recognised from node labels and provider
IDs: their control plane is not visible through the API, so its settings have to be attached by people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from evidence.collectors.workloads import containers_of, flags
from evidence.inventory import Inventory, Obj

# Node labels each managed platform sets on its nodes.
PLATFORM_LABELS = (
    ("eks", ("eks.amazonaws.com/nodegroup", "eks.amazonaws.com/compute-type", "eks.amazonaws.com/capacityType")),
    ("gke", ("cloud.google.com/gke-nodepool", "cloud.google.com/gke-os-distribution")),
    ("aks", ("kubernetes.azure.com/cluster", "kubernetes.azure.com/agentpool", "kubernetes.azure.com/role")),
)
PROVIDER_PREFIXES = (("aws://", "eks"), ("gce://", "gke"), ("azure://", "aks"))
MANAGED = ("eks", "gke", "aks")


@dataclass
class ApiServerConfig:
    flags: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # "Pod kube-system/kube-apiserver-x" or "ConfigMap kube-system/kubeadm-config ..."
    objects: list[Obj] = field(default_factory=list)
    problem: str | None = None  # why the kubeadm-config could not be used


def apiserver_config(inv: Inventory) -> ApiServerConfig:
    """The running kube-apiserver's flags, else kubeadm's intended flags, else nothing (with the reason)."""
    pods = [p for p in inv.objects("Pod", "", namespace="kube-system")
            if ((p.get("metadata") or {}).get("labels") or {}).get("component") == "kube-apiserver"]
    if pods:
        pod = pods[0]
        c = (containers_of(pod) or [{}])[0]
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        return ApiServerConfig(flags(args), f"Pod kube-system/{pod['metadata']['name']}", [pod])
    cm = inv.get("ConfigMap", "kube-system", "kubeadm-config", group="")
    if cm is None:
        return ApiServerConfig()
    raw = (cm.get("data") or {}).get("ClusterConfiguration")
    try:
        doc = yaml.safe_load(raw) if isinstance(raw, str) else None
    except yaml.YAMLError:
        doc = None
    if not isinstance(doc, dict):
        return ApiServerConfig(objects=[cm], problem="ConfigMap kube-system/kubeadm-config has no readable "
                                                     "ClusterConfiguration")
    extra = (doc.get("apiServer") or {}).get("extraArgs")
    return ApiServerConfig(_extra_args(extra), f"ConfigMap kube-system/kubeadm-config ({doc.get('apiVersion')}) "
                                               "apiServer.extraArgs: the flags kubeadm renders", [cm])


def not_visible_reason(inv: Inventory) -> str:
    """Why the kube-apiserver flags are not visible, in terms of what was read: "not collected" only when Pods or
    ConfigMaps really were not read (issue 13: an empty list that was read means none in the cluster)."""
    pods, cms = inv.status("Pod", "", "kube-system"), inv.status("ConfigMap", "", "kube-system")
    pod_part = ("no kube-apiserver Pod in kube-system (a managed control plane, or static Pods the API server does "
                "not mirror)" if pods.status == "ok" else f"kube-apiserver Pod not visible: {pods.reason('pods')}")
    cm_part = ("no kubeadm-config ConfigMap" if cms.status == "ok"
               else f"kubeadm-config not visible: {cms.reason('configmaps')}")
    return f"{pod_part}; {cm_part}"


def _extra_args(extra: Any) -> dict[str, str]:
    if isinstance(extra, dict):  # kubeadm.k8s.io/v1beta3
        return {str(k): str(v) for k, v in extra.items()}
    if isinstance(extra, list):  # kubeadm.k8s.io/v1beta4: [{name, value}]; a repeated name: the last one wins
        return {str(e.get("name")): str(e.get("value", "")) for e in extra if isinstance(e, dict) and e.get("name")}
    return {}


def platform(inv: Inventory, config: ApiServerConfig) -> tuple[str, str]:
    """('eks'|'gke'|'aks'|'self-managed'|'unknown', how it was decided). Node labels of a managed platform win;
    a visible kube-apiserver Pod or a kubeadm-config means self-managed."""
    nodes = inv.objects("Node", "")
    for p, keys in PLATFORM_LABELS:
        for n in nodes:
            labels = (n.get("metadata") or {}).get("labels") or {}
            hit = next((k for k in keys if k in labels), None)
            if hit:
                return p, f"Node {n['metadata']['name']} label {hit}"
    if config.source:
        return "self-managed", f"kube-apiserver flags visible in {config.source.split(' (')[0]}"
    for n in nodes:
        pid = str((n.get("spec") or {}).get("providerID") or "")
        for prefix, p in PROVIDER_PREFIXES:
            if pid.startswith(prefix):
                return p, f"Node {n['metadata']['name']} providerID {prefix}... and no kube-apiserver Pod visible"
    return "unknown", "no managed-platform node labels or provider IDs, and no kube-apiserver Pod visible"
