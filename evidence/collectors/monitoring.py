"""Monitoring and logging: Prometheus and Alertmanager present, alert rules, log shippers covering every node
(PCI DSS 10.2.1, 10.3.3, 10.4.1.1, 10.7.2; cluster-facts.md E.3, E.5)."""

from __future__ import annotations

import re
from datetime import datetime

from evidence.collectors import detection
from evidence.collectors.workloads import containers_of, daemonset_coverage, daemonset_pods
from evidence.facts import LogOutput, LogShipper, MonitoringFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.redact import is_redacted, parse_config
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
    # The source's own words (permission denied, or the API group is unavailable: 503 ...), never a paraphrase.
    rules_st = inv.status("PrometheusRule", "monitoring.coreos.com")
    if rules_st.status in ("forbidden", "error"):
        subject.mark_unknown("alert_rules", rules_st.reason("prometheusrules") or "prometheusrules could not be read")
    prom_st = inv.status("Prometheus", "monitoring.coreos.com")
    if prom_st.status in ("forbidden", "error"):
        subject.mark_unknown("prometheus", prom_st.reason("prometheuses") or "prometheuses could not be read")
    _log_shippers(inv, subject, nodes)
    ds_st = inv.status("DaemonSet", "apps")
    if ds_st.status != "ok":
        why = ds_st.reason("daemonsets") or "daemonsets could not be read"
        subject.mark_unknown("log_shippers", why)
        subject.mark_unknown("nodes_without_log_shipper", why)
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
        outputs: list[LogOutput] = []
        subject.log_shippers.append(LogShipper(
            name=f"{ns}/{name}", product=product, desired=int(status.get("desiredNumberScheduled") or 0),
            ready=int(status.get("numberReady") or 0), nodes_covered=covered,
            nodes_missing=[n for n in nodes if n not in covered],
            output_configured=_output_configured(inv, ds, product, subject, outputs), outputs=outputs))
    subject.nodes_without_log_shipper = [n for n in nodes if n not in covered_all]
    subject.plaintext_log_outputs = [
        f"{s.name}: {o.plugin} to {o.destination or 'an unnamed destination'} without TLS"
        for s in subject.log_shippers for o in s.outputs if o.tls is False and o.in_cluster is not True]
    unread = [f"{s.name} ({s.product})" for s in subject.log_shippers
              if s.output_configured is None or s.product not in ("fluent-bit", "vector", "promtail")
              or any(o.tls is None or (o.tls is False and o.in_cluster is None) for o in s.outputs)]
    if unread:  # an output that cannot be read is not an encrypted one
        subject.mark_unknown("plaintext_log_outputs", "the outputs of " + ", ".join(unread) + " cannot be read "
                             "(configuration not in a ConfigMap, a product whose outputs are not read yet, or a "
                             "destination or TLS setting that is not visible)")


def _output_configured(inv: Inventory, ds: Obj, product: str, subject: MonitoringFacts,
                       outputs: list[LogOutput] | None = None) -> bool | None:
    """Look for an output section in the ConfigMaps the shipper mounts, and read its remote outputs into
    `outputs`; None when none is readable."""
    ns = ds["metadata"].get("namespace")
    volumes = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
    names = [v["configMap"]["name"] for v in volumes if isinstance(v.get("configMap"), dict)]
    seen = found = False
    for n in names:
        cm = inv.get("ConfigMap", ns, n, group="")
        if cm is None:
            continue
        seen = True
        subject.evidence.append(ObjectRef.of(cm))
        values = [str(v) for v in (cm.get("data") or {}).values()]
        if any(m in "\n".join(values) for m in OUTPUT_MARKERS.get(product, ())):
            found = True
        if outputs is not None:
            for text in values:
                outputs.extend(shipper_outputs(product, text))
    return True if found else False if seen else None


_IN_CLUSTER = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)?(\.svc(\.cluster\.local)?)?\.?$")


def _in_cluster(host: str | None) -> bool | None:
    """A Service name as pods resolve it (name, name.ns, name.ns.svc[.cluster.local]); None when unknown."""
    if not host or is_redacted(host):
        return None
    h = host.lower()
    return h.endswith((".svc", ".svc.cluster.local")) or ("." not in h) or bool(
        _IN_CLUSTER.match(h) and h.count(".") == 1 and not re.search(r"\.(com|net|org|io|se|eu|cloud)$", h))


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,15})://(?:[^@/?#]{0,256}@)?(\[[0-9A-Fa-f:.]{1,64}\]|[^:/?#\s]{1,253})")


def _url(value: object) -> tuple[str | None, bool | None]:
    """(host, TLS) of an endpoint URL; (None, None) when it is not a readable URL."""
    text = str(value or "")
    m = _URL.match(text) if not is_redacted(text) else None
    if m is None:
        return None, None
    return m.group(2).strip("[]").lower(), m.group(1).lower() in ("https", "tls", "grpcs")


def _on(value: object) -> bool | None:
    text = str(value).strip().lower() if value is not None else ""
    if not text:
        return False
    if is_redacted(text):
        return None
    return text in ("on", "true", "yes", "1")


def shipper_outputs(product: str, text: str) -> list[LogOutput]:
    """Remote outputs of a Fluent Bit (classic or YAML), Vector or Promtail configuration. Fluent Bit's `tls`
    defaults to off (docs: Transport Security); Vector and Promtail use TLS when the endpoint is https."""
    parsed = parse_config(text)
    if parsed is None:
        return []
    fmt, doc = parsed
    out: list[LogOutput] = []
    local = {"stdout", "null", "counter", "file", "exit", "flowcounter"}
    if product == "fluent-bit" and fmt == "sections":
        for o in doc.get("[OUTPUT]") or []:
            plugin = str(o.get("Name", "")).lower()
            if plugin in local or not plugin:
                continue
            host = o.get("Host")
            host = None if host is None or is_redacted(str(host)) else str(host)
            auth = any(k in o for k in ("HTTP_User", "HTTP_Passwd", "Cloud_Auth", "AWS_Auth", "tenant_id", "Bearer_Token"))
            out.append(LogOutput(plugin=plugin, destination=host, tls=_on(o.get("tls")), authenticated=auth,
                                 in_cluster=_in_cluster(host)))
    elif product == "fluent-bit" and isinstance(doc, dict):
        for o in ((doc.get("pipeline") or {}).get("outputs") or []):
            if not isinstance(o, dict) or str(o.get("name", "")).lower() in local:
                continue
            host = o.get("host")
            host = None if host is None or is_redacted(str(host)) else str(host)
            auth = any(k in o for k in ("http_user", "http_passwd", "cloud_auth", "aws_auth", "bearer_token"))
            out.append(LogOutput(plugin=str(o.get("name", "")), destination=host, tls=_on(o.get("tls")),
                                 authenticated=auth, in_cluster=_in_cluster(host)))
    elif product == "vector" and isinstance(doc, dict):
        for sink in (doc.get("sinks") or {}).values() if isinstance(doc.get("sinks"), dict) else []:
            if not isinstance(sink, dict) or str(sink.get("type", "")) in ("console", "blackhole", "file"):
                continue
            endpoints = sink.get("endpoints") or [sink.get("endpoint")]
            host, tls = _url(endpoints[0] if isinstance(endpoints, list) and endpoints else None)
            tls_cfg = sink.get("tls")
            if isinstance(tls_cfg, dict) and tls_cfg.get("enabled") is True:
                tls = True
            out.append(LogOutput(plugin=str(sink.get("type", "")), destination=host, tls=tls,
                                 authenticated="auth" in sink, in_cluster=_in_cluster(host)))
    elif product == "promtail" and isinstance(doc, dict):
        for client in doc.get("clients") or []:
            if not isinstance(client, dict):
                continue
            host, tls = _url(client.get("url"))
            auth = any(k in client for k in ("basic_auth", "bearer_token", "bearer_token_file", "oauth2"))
            out.append(LogOutput(plugin="loki", destination=host, tls=tls, authenticated=auth,
                                 in_cluster=_in_cluster(host)))
    return out
