"""Monitoring and logging: Prometheus and Alertmanager present, alert rules, log shippers covering every node
(PCI DSS 10.2.1, 10.3.3, 10.4.1.1, 10.7.2; cluster-facts.md E.3, E.5)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

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
    # Fluentd without a <match> in its ConfigMaps still sends logs: the images' own fluent.conf has the outputs.
    unread = [f"{s.name} ({s.product})" for s in subject.log_shippers
              if s.output_configured is None or s.product not in ("fluent-bit", "fluentd", "vector", "promtail")
              or (s.product == "fluentd" and s.output_configured is not True)
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
    names += [src["configMap"]["name"] for v in volumes if isinstance(v.get("projected"), dict)
              for src in v["projected"].get("sources") or [] if isinstance(src.get("configMap"), dict)]
    # Config that may hold the outputs where auditpack cannot read it: a Secret (fluent-operator renders Fluent
    # Bit's configuration into one) or a file the mounted config includes. Host paths are the logs being read.
    elsewhere = any(isinstance(v.get("secret"), dict)
                    or any(isinstance(src.get("secret"), dict)
                           for src in ((v.get("projected") or {}).get("sources") or []))
                    for v in volumes if isinstance(v, dict))
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
        if any(re.search(r"(?im)^\s*@include\b", v) for v in values):
            elsewhere = True
        if outputs is not None:
            env = _literal_env(ds, product)
            for text in values:
                outputs.extend(shipper_outputs(product, text, env))
    # No output in what was read is "none configured" only when nothing else could hold one.
    return True if found else False if seen and not elsewhere else None


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


def shipper_outputs(product: str, text: str, env: dict[str, str] | None = None) -> list[LogOutput]:
    """Remote outputs of a Fluent Bit (classic or YAML), Fluentd, Vector or Promtail configuration. Fluent Bit's
    `tls` defaults to off (docs: Transport Security); Vector and Promtail use TLS when the endpoint is https;
    Fluentd per output plugin (_fluentd_output). `env`: the shipper container's literal env values, for Fluentd's
    "#{ENV['NAME']}" substitutions."""
    parsed = parse_config(text)
    if parsed is None:
        if product == "fluentd" and "<match" in text:  # outputs that do not parse are not absent ones
            return [LogOutput(plugin="unparsed configuration")]
        return []
    fmt, doc = parsed
    if product == "fluentd":
        if fmt != "sections" or not isinstance(doc, dict):
            return [LogOutput(plugin="unparsed configuration")] if "<match" in text else []
        return _fluentd_outputs(doc, env or {})
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


# --- Fluentd ---------------------------------------------------------------------------------------------------

# Plugins that keep logs on the node or hand them back to Fluentd's own routing (relabel, rewrite_tag_filter). Not
# exec / exec_filter: the command they run may send the logs anywhere.
_FLUENTD_LOCAL = frozenset({"stdout", "null", "file", "secondary_file", "relabel", "rewrite_tag_filter",
                            "prometheus", "route", "flowcounter", "record_reformer", "buffered_stdout"})
_FLUENTD_ES = frozenset({"elasticsearch", "elasticsearch_data_stream", "elasticsearch_dynamic", "opensearch",
                         "opensearch_data_stream"})
_FLUENTD_KAFKA = frozenset({"kafka", "kafka2", "kafka_buffered"})
_ENV_SUB = re.compile(r"#\{ENV\[(['\"])([A-Za-z_][A-Za-z0-9_]{0,127})\1\](?:[ \t]{0,8}\|\|[ \t]{0,8}"
                      r"(?:'[^'\n]{0,256}'|use_default|use_nil))?\}")


def _literal_env(ds: Obj, product: str) -> dict[str, str]:
    """The shipper container's env values written as literals (a valueFrom, an envFrom or a redacted value is not
    one: a setting that reads it stays unknown)."""
    containers = containers_of(ds)
    rx = SHIPPER_IMAGES.get(product)
    own = [c for c in containers if rx is not None and rx.search(str(c.get("image", "")))] or containers
    env: dict[str, str] = {}
    for c in own:
        for e in c.get("env") or []:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                continue
            value = e.get("value")
            if isinstance(value, str) and "valueFrom" not in e and not is_redacted(value):
                env[e["name"]] = value
            else:  # a later entry overrides an earlier one, also with an unknown value
                env.pop(e["name"], None)
    return env


def _fluentd_value(raw: object, env: dict[str, str]) -> str | None:
    """A Fluentd setting as the plugin receives it; None when that cannot be known: redacted, Ruby code other than
    an "#{ENV['NAME']}" whose variable is a literal of the container (an unset variable may be set by the image,
    whose ENV is not in the manifest), or a quoting this reader does not follow."""
    if raw is None:
        return None
    text = str(raw).strip()
    if is_redacted(text):
        return None
    if text[:1] not in ('"', "'"):
        text = re.split(r"[ \t]#", text, maxsplit=1)[0].strip()  # `value  # comment`
        return None if "#{" in text else text
    quote, end = text[0], text.find(text[0], 1)
    rest = text[end + 1:].strip() if end > 0 else "x"
    if end < 0 or (rest and not rest.startswith("#")) or "\\" in text[1:end]:
        return None
    inner = text[1:end]
    if quote == "'":  # single quotes: no embedded Ruby
        return inner
    unknown = False

    def sub(m: re.Match[str]) -> str:
        nonlocal unknown
        if m.group(2) in env:
            return env[m.group(2)]
        unknown = True
        return ""
    resolved = _ENV_SUB.sub(sub, inner)
    return None if unknown or "#{" in resolved else resolved


def _fluentd_outputs(doc: dict[str, Any], env: dict[str, str], depth: int = 0) -> list[LogOutput]:
    """Every <match> of a parsed Fluentd configuration, in order, as its remote outputs: top level, inside a
    <label>, a <worker> or any other directive (one whose settings the redactor did not keep reads as unknown)."""
    out: list[LogOutput] = []
    for key, blocks in doc.items():
        if not (key.startswith("<") and isinstance(blocks, list)):
            continue
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if key == "<match>":
                out += _fluentd_output(block, env, 0)
            elif depth < 8:
                out += _fluentd_outputs(block, env, depth + 1)
    return out


def _fluentd_output(o: dict[str, Any], env: dict[str, str], depth: int) -> list[LogOutput]:
    """One output block (a <match>, a <store> of copy, a <secondary>), from the plugins' documented settings and
    defaults (cited in tests/test_logging_collectors.py): destination, TLS, whether credentials are set."""
    def val(key: str) -> str | None:
        return _fluentd_value(o.get(key), env) if key in o else None

    raw_type = o.get("@type", o.get("type"))
    plugin = _fluentd_value(raw_type, env)
    if plugin is None:  # a plugin that cannot be named cannot be judged
        return [LogOutput(plugin="unreadable @type" if raw_type is not None else "no @type")]
    plugin = plugin.lower()
    found: list[LogOutput] = []
    if plugin in ("copy", "roundrobin") and depth < 4:
        for store in o.get("<store>") or []:
            if isinstance(store, dict):
                found += _fluentd_output(store, env, depth + 1)
    elif plugin in _FLUENTD_ES:
        found += _fluentd_es(o, plugin, val)
    elif plugin == "forward":
        # transport: tcp (default) or tls; <security> shared_key / user auth is authentication, not encryption.
        transport = val("transport") if "transport" in o else "tcp"
        tls = None if transport is None else transport.lower() == "tls"
        servers = [s for s in o.get("<server>") or [] if isinstance(s, dict)]
        if "host" in o:  # the obsolete top-level form, still accepted
            servers.append({"host": o["host"]})
        for s in servers or [{}]:  # no <server> (a <service_discovery>): destination unknown
            host = _fluentd_value(s.get("host"), env)
            found.append(LogOutput(plugin=plugin, destination=host, tls=tls, authenticated="<security>" in o,
                                   in_cluster=_in_cluster(host)))
    elif plugin == "http":
        host, tls = _url(val("endpoint"))
        found.append(LogOutput(plugin=plugin, destination=host, tls=tls, in_cluster=_in_cluster(host),
                               authenticated="<auth>" in o or "headers" in o))
    elif plugin == "loki":
        # url defaults to Grafana Cloud over https; a url whose value cannot be read is unknown
        host, tls = _url(val("url")) if "url" in o else (None, True)
        found.append(LogOutput(plugin=plugin, destination=host, tls=tls, in_cluster=_in_cluster(host),
                               authenticated=any(k in o for k in ("username", "password", "bearer_token_file"))))
    elif plugin == "splunk_hec":
        if "full_url" in o:
            host, tls = _url(val("full_url"))
        else:
            host, protocol = val("hec_host"), val("protocol") if "protocol" in o else "https"
            tls = None if protocol is None else protocol.lower() == "https"
        found.append(LogOutput(plugin=plugin, destination=host, tls=tls, in_cluster=_in_cluster(host),
                               authenticated="hec_token" in o))
    elif plugin in ("s3", "cloudwatch_logs"):
        found.append(_fluentd_aws(o, plugin, val))
    elif plugin in _FLUENTD_KAFKA:
        # ruby-kafka connects in plain text unless an SSL context is configured (fluent-plugin-kafka ssl_* settings)
        brokers = val("brokers") if "brokers" in o else None
        system_ca = val("ssl_ca_certs_from_system") if "ssl_ca_certs_from_system" in o else "false"
        tls = True if ("ssl_ca_cert" in o or "ssl_client_cert" in o) else (
            None if system_ca is None else system_ca.lower() == "true")
        sasl = any(k in o for k in ("username", "password", "sasl_over_ssl", "principal", "ssl_client_cert"))
        for broker in (brokers.split(",") if brokers else [None]):
            host = broker.strip().rsplit(":", 1)[0] if broker and broker.strip() else None
            found.append(LogOutput(plugin=plugin, destination=host, tls=tls, authenticated=sasl,
                                   in_cluster=_in_cluster(host)))
    elif plugin not in _FLUENTD_LOCAL:  # a plugin this reader does not know: unknown, not plain text
        found.append(LogOutput(plugin=plugin))
    for secondary in o.get("<secondary>") or []:
        if isinstance(secondary, dict) and depth < 4:
            found += _fluentd_output(secondary, env, depth + 1)
    return found


def _fluentd_es(o: dict[str, Any], plugin: str, val: Any) -> list[LogOutput]:
    """fluent-plugin-elasticsearch / -opensearch: `hosts` (host:port or URLs, comma-separated) wins over `host`
    (default localhost); `scheme` defaults to http and applies to host:port entries; a URL carries its own."""
    auth = any(k in o for k in ("user", "password", "api_key", "cloud_auth"))
    if "cloud_id" in o:  # the destination is encoded in the (unkept) cloud id
        return [LogOutput(plugin=plugin, authenticated=auth)]
    scheme = val("scheme") if "scheme" in o else "http"
    scheme_tls = None if scheme is None else True if scheme.lower() == "https" else (
        False if scheme.lower() == "http" else None)
    if "hosts" in o:
        hosts = val("hosts")
        entries = [h.strip() for h in hosts.split(",") if h.strip()] if hosts is not None else []
        if not entries:
            return [LogOutput(plugin=plugin, authenticated=auth)]
    else:
        host = val("host") if "host" in o else "localhost"
        entries = [host] if host else []
        if not entries:
            return [LogOutput(plugin=plugin, tls=scheme_tls, authenticated=auth)]
    found: list[LogOutput] = []
    for entry in entries:
        if "://" in entry:
            host, tls = _url(entry)
        else:
            host, tls = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry, scheme_tls
        found.append(LogOutput(plugin=plugin, destination=host, tls=tls, authenticated=auth,
                               in_cluster=_in_cluster(host)))
    return found


def _fluentd_aws(o: dict[str, Any], plugin: str, val: Any) -> LogOutput:
    """fluent-plugin-s3 / -cloudwatch-logs: without an endpoint the AWS SDK talks to the region's https endpoint;
    an endpoint (S3-compatible store, VPC endpoint) carries its own scheme; s3's old `use_ssl false` turns TLS off."""
    endpoint_key = "s3_endpoint" if plugin == "s3" else "endpoint"
    auth = any(k in o for k in ("aws_key_id", "aws_sec_key", "<assume_role_credentials>",
                                "<web_identity_credentials>", "<instance_profile_credentials>"))
    if endpoint_key in o:
        host, tls = _url(val(endpoint_key))
        return LogOutput(plugin=plugin, destination=host, tls=tls, authenticated=auth, in_cluster=_in_cluster(host))
    use_ssl = val("use_ssl") if "use_ssl" in o else "true"
    region = val("s3_region" if plugin == "s3" else "region")
    service = "s3" if plugin == "s3" else "logs"
    return LogOutput(plugin=plugin, destination=f"{service}.{region}.amazonaws.com" if region else f"{service} (AWS)",
                     tls=None if use_ssl is None else use_ssl.lower() != "false", authenticated=auth,
                     in_cluster=False)
