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
    host_network: bool = False  # spec.hostNetwork: the pod shares its node's network namespace


# Operator custom resources whose pods exist even when only the resource is in the input (prometheus-operator builds
# a StatefulSet per resource, or a DaemonSet for a PrometheusAgent in DaemonSet mode; see _operator_pods for their
# names and labels).
OPERATOR_KINDS = (("Prometheus", "monitoring.coreos.com"), ("Alertmanager", "monitoring.coreos.com"),
                  ("PrometheusAgent", "monitoring.coreos.com"), ("ThanosRuler", "monitoring.coreos.com"))
# The operator's StatefulSet (and DaemonSet) name prefixes, per resource kind; Prometheus and PrometheusAgent add
# '-shard-<n>' for shards after the first (prometheus-operator pkg/prometheus/common.go Prefix, prometheusNameByShard;
# pkg/thanos/statefulset.go prefixedName; pkg/alertmanager/statefulset.go).
OPERATOR_PREFIXES = (("prometheus-", "Prometheus"), ("prom-agent-", "PrometheusAgent"), ("alertmanager-", "Alertmanager"),
                     ("thanos-ruler-", "ThanosRuler"))
_SHARDED = ("Prometheus", "PrometheusAgent")


def _meta(o: Obj) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def namespace_of(o: Obj) -> str:
    """The namespace of a namespaced object; a manifest without one lands in `default`, as kubectl applies it."""
    return str(_meta(o).get("namespace") or "default")


def _parent(inv: Inventory, obj: Obj, ref: dict[str, Any]) -> tuple[str, str, Obj | None]:
    """(kind, name, object) of a controller owner. When the owner itself was not collected (a snapshot holding Pods
    and Deployments but no ReplicaSets), infer it from the names its controller gives: ReplicaSet
    '<deployment>-<pod-template-hash>', Job '<cronjob>-<scheduled minute>', StatefulSet 'prometheus-<name>',
    'prom-agent-<name>' (either with '-shard-<n>'), 'alertmanager-<name>' or 'thanos-ruler-<name>', DaemonSet
    'prom-agent-<name>'."""
    ns = _meta(obj).get("namespace")
    kind, name = str(ref.get("kind")), str(ref.get("name"))
    found = inv.get(kind, ns, name)
    if found is not None:
        return kind, name, found
    guesses: list[tuple[str, str]] = []
    if kind == "ReplicaSet":
        h = (_meta(obj).get("labels") or {}).get("pod-template-hash")
        if h and name.endswith(f"-{h}"):
            guesses.append(("Deployment", name[: -len(h) - 1]))
    elif kind == "Job" and "-" in name and name.rsplit("-", 1)[1].isdigit():
        guesses.append(("CronJob", name.rsplit("-", 1)[0]))
    elif kind in ("StatefulSet", "DaemonSet"):
        for prefix, cr in OPERATOR_PREFIXES:
            if name.startswith(prefix) and (kind == "StatefulSet" or cr == "PrometheusAgent"):
                base = name[len(prefix):]
                if cr in _SHARDED and "-shard-" in base:
                    base = base.rsplit("-shard-", 1)[0]
                guesses.append((cr, base))
    for gk, gn in guesses:
        g = inv.get(gk, ns, gn)
        if g is not None:
            return gk, gn, g
    return kind, name, None


def _controller_refs(obj: Obj) -> list[dict[str, Any]]:
    return [r for r in _meta(obj).get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller", True)]


def top_owner(inv: Inventory, obj: Obj) -> str:
    """Follow controller ownerReferences up (Pod -> ReplicaSet -> Deployment, Job -> CronJob, StatefulSet ->
    Prometheus), through owners missing from the input where their name tells who owns them."""
    current, label = obj, f"{obj.get('kind')}/{_meta(obj).get('name')}"
    for _ in range(5):
        owners = _controller_refs(current)
        if not owners:
            break
        kind, name, parent = _parent(inv, current, owners[0])
        label = f"{kind}/{name}"
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


def _operator_pods(obj: Obj) -> list[PodView]:
    """Pods prometheus-operator runs for a Prometheus, PrometheusAgent, Alertmanager or ThanosRuler resource, from
    the resource alone: one per StatefulSet (or DaemonSet) the operator creates, as for any workload template.

    Names and labels as the operator sets them (prometheus-operator pkg/prometheus/server/statefulset.go,
    pkg/prometheus/agent/statefulset.go, daemonset.go and operator.go makeSelectorLabels, pkg/prometheus/common.go,
    pkg/alertmanager/statefulset.go, pkg/thanos/statefulset.go and operator.go makeSelectorLabels): StatefulSet
    `prometheus-<name>` / `prom-agent-<name>` (`-shard-<n>` for further shards; a PrometheusAgent with spec.mode
    DaemonSet runs DaemonSet `prom-agent-<name>` instead), `alertmanager-<name>` or `thanos-ruler-<name>`; pod labels
    app.kubernetes.io/name (prometheus, prometheus-agent, alertmanager, thanos-ruler), app.kubernetes.io/managed-by=
    prometheus-operator, app.kubernetes.io/instance=<name>, and `prometheus`/`alertmanager`/`thanos-ruler`=<name>
    (Prometheus and PrometheusAgent also operator.prometheus.io/name, and operator.prometheus.io/shard for a
    StatefulSet), merged over `spec.podMetadata.labels`; container ports `web` 9090 (Prometheus, PrometheusAgent),
    `web` 9093 and `mesh-tcp`/`mesh-udp` 9094 (Alertmanager), `grpc` 10901 and `web` 10902 (ThanosRuler); the web
    port only without listenLocal."""
    kind, name, ns = str(obj.get("kind")), str(_meta(obj).get("name")), namespace_of(obj)
    raw_spec = obj.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    pod_meta = spec.get("podMetadata")
    raw_labels = pod_meta.get("labels") if isinstance(pod_meta, dict) else None
    user_labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    port_name = str(spec.get("portName") or "web")
    host_network = bool(spec.get("hostNetwork"))
    out: list[PodView] = []
    if kind in _SHARDED:
        agent = kind == "PrometheusAgent"
        prefix, app = ("prom-agent", "prometheus-agent") if agent else ("prometheus", "prometheus")
        raw_shards = spec.get("shards")
        shards = raw_shards if isinstance(raw_shards, int) and raw_shards > 0 else 1
        daemonset = agent and spec.get("mode") == "DaemonSet"
        ports = [] if spec.get("listenLocal") else [{"name": port_name, "containerPort": 9090, "protocol": "TCP"}]
        for shard in range(1 if daemonset else shards):
            owner_set = f"{prefix}-{name}" + (f"-shard-{shard}" if shard else "")
            labels = {**user_labels, "app.kubernetes.io/name": app,
                      "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/instance": name,
                      "operator.prometheus.io/name": name}
            if not agent:
                labels["prometheus"] = name
            if not daemonset:
                labels["operator.prometheus.io/shard"] = str(shard)
            template = "DaemonSet template" if daemonset else f"{kind} template"
            out.append(PodView(ns, f"{owner_set}-<{template}>", f"{kind}/{name}", labels, None,
                               [{"name": "prometheus", "ports": ports}], derived=True, host_network=host_network))
    elif kind == "ThanosRuler":
        ports = [{"name": "grpc", "containerPort": 10901, "protocol": "TCP"}]
        if not spec.get("listenLocal"):
            ports.append({"name": port_name, "containerPort": 10902, "protocol": "TCP"})
        labels = {**user_labels, "app.kubernetes.io/name": "thanos-ruler",
                  "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/instance": name,
                  "thanos-ruler": name}
        out.append(PodView(ns, f"thanos-ruler-{name}-<ThanosRuler template>", f"ThanosRuler/{name}", labels, None,
                           [{"name": "thanos-ruler", "ports": ports}], derived=True, host_network=host_network))
    else:
        ports = [{"name": "mesh-tcp", "containerPort": 9094, "protocol": "TCP"},
                 {"name": "mesh-udp", "containerPort": 9094, "protocol": "UDP"}]
        if not spec.get("listenLocal"):
            ports.insert(0, {"name": port_name, "containerPort": 9093, "protocol": "TCP"})
        labels = {**user_labels, "app.kubernetes.io/name": "alertmanager",
                  "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/instance": name,
                  "alertmanager": name}
        out.append(PodView(ns, f"alertmanager-{name}-<Alertmanager template>", f"Alertmanager/{name}", labels, None,
                           [{"name": "alertmanager", "ports": ports}], derived=True, host_network=host_network))
    return out


def pods(inv: Inventory) -> tuple[list[PodView], bool]:
    """All pods: the running ones observed, plus, for every workload with none observed, the pods its template (or
    its operator) would run; and whether any pod was derived that way.

    Derivation is per workload, not per cluster: one real Pod in the input (a Helm test pod) must not hide every
    workload whose pods were not collected. Pods that completed (Succeeded/Failed) are not running, but their Job
    or CronJob is still derived from its template: it runs again. Computed once per inventory (three collectors
    ask; PodView is frozen); each caller gets its own list."""
    views, derived = inv.derived("workloads.pods", lambda: _pods(inv))
    return list(views), derived


def _pods(inv: Inventory) -> tuple[list[PodView], bool]:
    out: list[PodView] = []
    observed: set[tuple[str, str]] = set()
    for p in inv.objects("Pod", ""):
        m = _meta(p)
        spec = p.get("spec") or {}
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        owner = top_owner(inv, p)
        ns = namespace_of(p)
        observed.add((ns, owner))
        out.append(PodView(ns, str(m.get("name")), owner, dict(m.get("labels") or {}), spec.get("nodeName"),
                           list(spec.get("containers") or []), host_network=bool(spec.get("hostNetwork"))))
    derived = False
    covered: set[tuple[str, str]] = set()
    operator_kinds = {k for k, _ in OPERATOR_KINDS}
    for kind in WORKLOAD_KINDS:
        for w in inv.objects(kind):
            m = _meta(w)
            ns, owner = namespace_of(w), f"{kind}/{m.get('name')}"
            parents = [p for p in (_parent(inv, w, r) for r in _controller_refs(w)) if p[2] is not None]
            if parents:
                if parents[0][0] not in operator_kinds:
                    continue  # ReplicaSets of Deployments, Jobs of CronJobs: the owner stands for them
                owner = f"{parents[0][0]}/{parents[0][1]}"  # the operator's StatefulSet: its pods, its resource
            tpl = pod_template_spec(w)
            if tpl is None or (ns, owner) in observed:
                continue
            tspec = tpl.get("spec") or {}
            derived = True
            covered.add((ns, owner))
            out.append(PodView(ns, f"{m.get('name')}-<{kind} template>", owner, dict(_meta(tpl).get("labels") or {}),
                               None, list(tspec.get("containers") or []), derived=True,
                               host_network=bool(tspec.get("hostNetwork"))))
    for kind, group in OPERATOR_KINDS:
        for cr in inv.objects(kind, group):
            key = (namespace_of(cr), f"{kind}/{_meta(cr).get('name')}")
            if key in observed or key in covered:
                continue
            derived = True
            out.extend(_operator_pods(cr))
    return out, derived


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
                out.setdefault(f"{namespace_of(p)}/{ref.get('name')}", []).append(p)
    return out


def daemonset_coverage(inv: Inventory, ds: Obj, nodes: list[str],
                       index: dict[str, list[Obj]]) -> tuple[list[Obj], list[str], bool]:
    """(running pods, nodes covered, from_status): the nodes where the DaemonSet runs a pod. Without Pods in the
    inventory, its status is trusted only when it is ready on as many nodes as exist (from_status=True)."""
    running = index.get(f"{namespace_of(ds)}/{_meta(ds).get('name')}", [])
    if inv.status("Pod", "").status == "ok":
        return running, sorted({str((p.get("spec") or {}).get("nodeName")) for p in running} & set(nodes)), False
    ready = int((ds.get("status") or {}).get("numberReady") or 0)
    return [], (list(nodes) if ready >= len(nodes) else []), True
