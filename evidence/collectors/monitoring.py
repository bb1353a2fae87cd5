"""Monitoring and logging: Prometheus and Alertmanager present, alert rules, log shippers covering every node
(PCI DSS 10.2.1, 10.3.3, 10.4.1.1, 10.7.2; cluster-facts.md E.3, E.5)."""

from __future__ import annotations

import re
from datetime import datetime

from evidence.collectors import detection
from evidence.collectors.workloads import containers_of, daemonset_coverage, daemonset_pods
from evidence.facts import LogShipper, MonitoringFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.scope import Scope

SHIPPER_IMAGES = {
    "fluent-bit": re.compile(r"fluent-bit|fluentbit"),
    "fluentd": re.compile(r"fluentd"),
    "vector": re.compile(r"timberio/vector|/vector:|^vector:"),
    "promtail": re.compile(r"promtail"),
    "alloy": re.compile(r"grafana/alloy"),
    "filebeat": re.compile(r"filebeat"),
    "otel-collector": re.compile(r"opentelemetry-collector"),
}
OUTPUT_MARKERS = {
    "fluent-bit": ("[OUTPUT]", "outputs:"),
    "fluentd": ("<match",),
    "vector": ("sinks:", "[sinks"),
    "promtail": ("clients:",),
    "alloy": ("loki.write", "otelcol.exporter"),
    "filebeat": ("output.",),
    "otel-collector": ("exporters:",),
}


def _images(obj: Obj) -> list[str]:
    return [str(c.get("image", "")) for c in containers_of(obj)]


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[MonitoringFacts]:
    del as_of
    subject = MonitoringFacts(id="monitoring", name="cluster monitoring and logging", prometheus=[],
                              prometheus_retention=None, alertmanager=[], alert_rules=0, log_shippers=[],
                              nodes=[], nodes_without_log_shipper=[])
    nodes = sorted(str(n["metadata"]["name"]) for n in inv.objects("Node", ""))
    subject.nodes = nodes
    node_why = inv.status("Node", "").reason("nodes")
    if node_why is not None:  # "0 of 0 nodes covered" is not coverage: without Nodes there is nothing to count
        subject.mark_unknown("nodes", node_why)
        subject.mark_unknown("nodes_without_log_shipper", node_why)
    # Prometheus / Alertmanager: operator CRs, else their workloads by image.
    for kind, field, image_re in (("Prometheus", "prometheus", r"prometheus/prometheus|prom/prometheus"),
                                  ("Alertmanager", "alertmanager", r"prometheus/alertmanager|prom/alertmanager")):
        found = inv.objects(kind, "monitoring.coreos.com")
        names = [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in found]
        if not found:
            for wk in ("StatefulSet", "Deployment"):
                for w in inv.objects(wk, "apps"):
                    if any(re.search(image_re, i) for i in _images(w)):
                        found.append(w)
                        names.append(f"{w['metadata'].get('namespace')}/{w['metadata']['name']}")
        setattr(subject, field, names)
        subject.evidence += [ObjectRef.of(o) for o in found]
        if kind == "Prometheus" and found and found[0].get("kind") == "Prometheus":
            subject.prometheus_retention = (found[0].get("spec") or {}).get("retention") or "24h (operator default)"
    # Only rules a running Prometheus selects are evaluated: a PrometheusRule no ruleSelector matches alerts nobody.
    selected = detection.selected_rules(inv)
    subject.alert_rules = len(selected)
    subject.evidence += list(dict.fromkeys(ObjectRef.of(r) for r, _, _ in selected))
    if subject.prometheus and not inv.objects("Prometheus", "monitoring.coreos.com"):
        subject.mark_unknown("alert_rules", "Prometheus runs without the operator: its rule files are configuration "
                             "files, not PrometheusRule objects, and are not read")
    if inv.status("PrometheusRule", "monitoring.coreos.com").status in ("forbidden", "error"):
        subject.mark_unknown("alert_rules", "prometheusrules could not be read")
    if inv.status("Prometheus", "monitoring.coreos.com").status in ("forbidden", "error"):
        subject.mark_unknown("prometheus", "permission denied or error listing prometheuses")
    _log_shippers(inv, subject, nodes)
    if inv.status("DaemonSet", "apps").status != "ok":
        subject.mark_unknown("log_shippers", "daemonsets could not be read")
        subject.mark_unknown("nodes_without_log_shipper", "daemonsets could not be read")
    detection.extend(inv, subject, scope)  # retention, alert routing, security alerts, IDS, audit shipping
    if node_why is not None and subject.ids:  # an IDS "missing on no node" of an unread node list covers nothing
        subject.mark_unknown("ids", node_why)
    return [subject]


def _log_shippers(inv: Inventory, subject: MonitoringFacts, nodes: list[str]) -> None:
    index = daemonset_pods(inv)
    covered_all: set[str] = set()
    for ds in inv.objects("DaemonSet", "apps"):
        images = _images(ds)
        product = next((p for p, rx in SHIPPER_IMAGES.items() if any(rx.search(i) for i in images)), None)
        if product is None:
            continue
        ns, name = str(ds["metadata"].get("namespace")), str(ds["metadata"]["name"])
        status = ds.get("status") or {}
        running, covered, from_status = daemonset_coverage(inv, ds, nodes, index)
        if from_status:
            subject.mark_unknown("nodes_without_log_shipper", "Pods not collected; coverage from DaemonSet status")
        subject.evidence.append(ObjectRef.of(ds))
        subject.evidence += [ObjectRef.of(p) for p in running]
        covered_all.update(covered)
        subject.log_shippers.append(LogShipper(
            name=f"{ns}/{name}", product=product, desired=int(status.get("desiredNumberScheduled") or 0),
            ready=int(status.get("numberReady") or 0), nodes_covered=covered,
            nodes_missing=[n for n in nodes if n not in covered],
            output_configured=_output_configured(inv, ds, product, subject)))
    subject.nodes_without_log_shipper = [n for n in nodes if n not in covered_all]


def _output_configured(inv: Inventory, ds: Obj, product: str, subject: MonitoringFacts) -> bool | None:
    """Look for an output section in the ConfigMaps the shipper mounts; None when none is readable."""
    ns = ds["metadata"].get("namespace")
    volumes = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
    names = [v["configMap"]["name"] for v in volumes if isinstance(v.get("configMap"), dict)]
    seen = False
    for n in names:
        cm = inv.get("ConfigMap", ns, n, group="")
        if cm is None:
            continue
        seen = True
        subject.evidence.append(ObjectRef.of(cm))
        text = "\n".join(str(v) for v in (cm.get("data") or {}).values())
        if any(m in text for m in OUTPUT_MARKERS.get(product, ())):
            return True
    return False if seen else None
