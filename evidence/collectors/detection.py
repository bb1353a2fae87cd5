"""Logging and monitoring facts added to the `monitoring` subject: log retention, Alertmanager routing, alert rules
for the security components, runtime intrusion detection and shipping of the API audit log (PCI DSS 10.2.1,
10.4.1, 10.5.1, 10.7.2, 11.5.1; cluster-facts.md E.1, E.3-E.6).

What cannot be seen is marked unknown with the reason, never guessed: the Alertmanager configuration in its
Secret (auditpack does not read Secrets; `spec.alertmanagerConfiguration` with AlertmanagerConfig resources can be
shown), a Loki configuration kept in a Secret, Falco outputs when its configuration is not mounted from a ConfigMap.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import yaml

from evidence.collectors.apiserver import apiserver_config, not_visible_reason
from evidence.collectors.toplevel import Workload, mounted_configmap, mounted_yaml, workloads
from evidence.collectors.workloads import containers_of, daemonset_coverage, daemonset_pods, flags
from evidence.facts import AlertRouting, ComponentAlerts, IDSFacts, LogStore, MonitoringFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import Scope

MONITORING = "monitoring.coreos.com"
_PROM_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_PROM_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
CNI_DAEMONSETS = ("calico-node", "cilium", "kube-flannel-ds", "kube-flannel", "canal", "antrea-agent", "weave-net",
                  "kube-router", "aws-node", "kindnet")
IDS_IMAGES = {"falco": re.compile(r"falcosecurity/falco(:|@|$)"), "tetragon": re.compile(r"cilium/tetragon(:|@|$)")}
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def prometheus_duration_days(value: str) -> float | None:
    """Prometheus/Loki durations ('15d', '1y', '8760h', '30d12h') in days; None if unparseable."""
    text = str(value).strip()
    if text in ("0", "0s"):
        return 0.0
    parts = _PROM_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * _PROM_UNIT[u] for n, u in parts) / 86400


def extend(inv: Inventory, subject: MonitoringFacts, scope: Scope) -> None:
    wls = list(workloads(inv))
    subject.health_data_in_scope = bool(scope.data.health_data)
    if subject.prometheus_retention:
        subject.prometheus_retention_days = prometheus_duration_days(subject.prometheus_retention.split(" ")[0])
    _log_stores(inv, subject, wls)
    _alert_routing(inv, subject)
    _ids(inv, subject, wls)
    _audit_shipping(inv, subject)
    _security_alerts(inv, subject)


# --- log retention (10.5.1) --------------------------------------------------------------------------------

def _log_stores(inv: Inventory, subject: MonitoringFacts, wls: list[Workload]) -> None:
    for w in wls:
        c = next((c for c in w.containers(init=False) if re.search(r"grafana/loki(:|@|$)", str(c.get("image", "")))),
                 None)
        if c is None:
            continue
        args = flags([str(a) for a in (c.get("command") or []) + (c.get("args") or [])])
        path = args.get("config.file") or "/etc/loki/config/config.yaml"
        cm, key, problem = mounted_configmap(inv, w.namespace, c, w.spec, path)
        store = LogStore(name=f"{w.namespace}/{w.label}", product="loki", retention_known=False)
        subject.evidence.append(ObjectRef.of(w.obj))
        text = ((cm or {}).get("data") or {}).get(key) if cm is not None else None
        if cm is not None:
            subject.evidence.append(ObjectRef.of(cm))
            store.config_source = f"ConfigMap {w.namespace}/{cm['metadata']['name']} key {key}"
        try:
            config = yaml.safe_load(text) if isinstance(text, str) else None
        except yaml.YAMLError:
            config, problem = None, f"{store.config_source}: not valid YAML"
        if not isinstance(config, dict):
            reason = problem or f"{store.config_source or path}: no readable Loki configuration"
            subject.mark_unknown("log_stores", f"Loki {store.name}: {reason}")
            store.retention_source = reason
            subject.log_stores.append(store)
            continue
        store.retention_known = True
        store.durable_storage, store.storage_source = _loki_storage(w, c, config)
        enabled = bool((config.get("compactor") or {}).get("retention_enabled"))
        period = str((config.get("limits_config") or {}).get("retention_period") or "0s")
        days = prometheus_duration_days(period)
        store.retention_enabled = enabled
        if not enabled:
            store.retention_source = "compactor.retention_enabled is not true: Loki never deletes (kept forever)"
        elif days is None:
            store.retention_known = False
            subject.mark_unknown("log_stores", f"Loki {store.name}: retention_period {period!r} is not a duration")
        elif days == 0:
            store.retention_source = "limits_config.retention_period is 0: no deletion (kept forever)"
        else:
            store.retention_days = store.immediately_available_days = days
            store.retention_source = f"compactor.retention_enabled: true, limits_config.retention_period: {period}" \
                                     " (every retained entry can be queried at once)"
        subject.log_stores.append(store)


OBJECT_STORES = ("s3", "aws", "gcs", "azure", "swift", "bos", "cos", "alibabacloud")


def _loki_storage(w: Workload, c: dict[str, Any], config: dict[str, Any]) -> tuple[bool | None, str]:
    """Where Loki keeps its data: object storage, else the volume under its filesystem directories (Loki's default
    path_prefix is /var/loki in the grafana/loki chart). Retention on an emptyDir ends with the pod."""
    def section(parent: dict[str, Any], key: str) -> dict[str, Any]:
        value = parent.get(key)
        return value if isinstance(value, dict) else {}

    common = section(config, "common")
    storage = section(common, "storage")
    sc = section(config, "storage_config")
    for key in OBJECT_STORES:
        if key in storage or key in sc:
            return True, f"object storage ({key})"
    dirs = [d for d in (common.get("path_prefix"), section(storage, "filesystem").get("chunks_directory"),
                        section(sc, "filesystem").get("directory")) if isinstance(d, str) and d.startswith("/")]
    target = PurePosixPath(dirs[0] if dirs else "/var/loki")
    mounts = [m for m in c.get("volumeMounts") or [] if isinstance(m, dict)
              and (PurePosixPath(str(m.get("mountPath"))) == target or PurePosixPath(str(m.get("mountPath"))) in
                   target.parents)]
    if not mounts:
        return False, f"{target} is on the container's own filesystem: lost when the container restarts"
    mount = max(mounts, key=lambda m: len(str(m.get("mountPath"))))
    name = str(mount.get("name"))
    vol = next((v for v in w.spec.get("volumes") or [] if isinstance(v, dict) and v.get("name") == name), None)
    claims = {str((t.get("metadata") or {}).get("name")) for t in
              ((w.obj.get("spec") or {}).get("volumeClaimTemplates") or []) if isinstance(t, dict)}
    where = f"{target} on volume {name}"
    if vol is None and name in claims:
        return True, f"{where} (a PersistentVolumeClaim of the StatefulSet)"
    if vol is not None and "persistentVolumeClaim" in vol:
        return True, f"{where} (PersistentVolumeClaim {vol['persistentVolumeClaim'].get('claimName')})"
    if vol is not None and "emptyDir" in vol:
        return False, f"{where}, an emptyDir: deleted with the pod, so nothing is retained"
    if vol is not None and "hostPath" in vol:
        return False, f"{where}, a hostPath: kept only on one node and lost with it"
    return None, f"{where}: storage kind not recognised"


# --- Alertmanager routing (10.7.2, GDPR 33) -----------------------------------------------------------------

def _integrations(receiver: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in receiver.items() if k.endswith("Configs") and isinstance(v, list) and v)


def _alert_routing(inv: Inventory, subject: MonitoringFacts) -> None:
    ams = inv.objects("Alertmanager", MONITORING)
    if not ams:
        if subject.alertmanager:
            subject.mark_unknown("alert_routing", f"Alertmanager {subject.alertmanager[0]} runs without the "
                                 "operator: its configuration file is not visible through the API")
        return
    am = ams[0]
    ns, name = str(am["metadata"].get("namespace")), str(am["metadata"]["name"])
    ref = ((am.get("spec") or {}).get("alertmanagerConfiguration") or {}).get("name")
    if not ref:
        secret = (am.get("spec") or {}).get("configSecret") or f"alertmanager-{name}"
        subject.mark_unknown("alert_routing", f"Alertmanager {ns}/{name} takes its routing from Secret {ns}/{secret}, "
                             "which auditpack does not read; set spec.alertmanagerConfiguration to an "
                             "AlertmanagerConfig, or attest the receivers")
        return
    cfg = inv.get("AlertmanagerConfig", ns, str(ref), group=MONITORING)
    if cfg is None:
        subject.mark_unknown("alert_routing", f"Alertmanager {ns}/{name} spec.alertmanagerConfiguration names "
                             f"AlertmanagerConfig {ns}/{ref}, which was not found or not collected")
        return
    subject.evidence += [ObjectRef.of(am), ObjectRef.of(cfg)]
    spec = cfg.get("spec") or {}
    receivers = {str(r.get("name")): r for r in spec.get("receivers") or [] if isinstance(r, dict)}
    root = (spec.get("route") or {}).get("receiver")
    subject.alert_routing = AlertRouting(
        alertmanager=f"{ns}/{name}", source=f"AlertmanagerConfig {ns}/{ref} (spec.alertmanagerConfiguration)",
        root_receiver=str(root) if root else None, receivers=sorted(receivers),
        receivers_without_integrations=sorted(n for n, r in receivers.items() if not _integrations(r)),
        root_delivers=bool(root) and bool(_integrations(receivers.get(str(root), {}))))


# --- runtime intrusion detection (11.5.1) ----------------------------------------------------------------

def _ids(inv: Inventory, subject: MonitoringFacts, wls: list[Workload]) -> None:
    index = daemonset_pods(inv)
    for ds in inv.objects("DaemonSet", "apps"):
        product = next((p for p, rx in IDS_IMAGES.items() for c in containers_of(ds)
                        if rx.search(str(c.get("image", "")))), None)
        if product is None:
            continue
        ns, name = str(ds["metadata"].get("namespace")), str(ds["metadata"]["name"])
        status = ds.get("status") or {}
        _, covered, _ = daemonset_coverage(inv, ds, subject.nodes, index)
        facts = IDSFacts(name=f"{ns}/{name}", product=product, desired=int(status.get("desiredNumberScheduled") or 0),
                         ready=int(status.get("numberReady") or 0), nodes_covered=covered,
                         nodes_missing=[n for n in subject.nodes if n not in covered])
        subject.evidence.append(ObjectRef.of(ds))
        if product == "falco":
            _falco_outputs(inv, subject, ds, facts)
        else:
            subject.mark_unknown("ids", f"{product} {ns}/{name}: where its events go is not read yet")
        subject.ids.append(facts)
    ds_st = inv.status("DaemonSet", "apps")
    if ds_st.status != "ok":
        subject.mark_unknown("ids", ds_st.reason("daemonsets") or "daemonsets could not be read")


def _falco_outputs(inv: Inventory, subject: MonitoringFacts, ds: Obj, facts: IDSFacts) -> None:
    ns = str(ds["metadata"].get("namespace"))
    tpl_spec = (((ds.get("spec") or {}).get("template") or {}).get("spec")) or {}
    falco = next((c for c in containers_of(ds) if IDS_IMAGES["falco"].search(str(c.get("image", "")))), {})
    cm, config, problem = mounted_yaml(inv, ns, falco, tpl_spec, "/etc/falco/falco.yaml")
    if config is None:
        subject.mark_unknown("ids", f"Falco {facts.name}: {problem or 'falco.yaml is not readable'}, so its outputs "
                             "cannot be read")
        return
    subject.evidence.append(ObjectRef.of(cm))  # type: ignore[arg-type]
    defaults = {"stdout_output": True, "syslog_output": True}  # falco.yaml defaults (chart 9.x)
    for out in ("stdout_output", "syslog_output", "file_output", "http_output", "program_output", "grpc_output"):
        section = config.get(out)
        enabled = section.get("enabled") if isinstance(section, dict) else None
        if enabled if enabled is not None else defaults.get(out, False):
            facts.outputs.append(out.removesuffix("_output"))
    grpc_on = bool((config.get("grpc") or {}).get("enabled")) if isinstance(config.get("grpc"), dict) else False
    if "grpc" in facts.outputs and not grpc_on:
        facts.outputs.remove("grpc")
    facts.output_beyond_stdout = any(o in facts.outputs for o in ("http", "program", "grpc"))


# --- alert rules for the security components (10.7.2) -----------------------------------------------------

def selected_rules(inv: Inventory) -> list[tuple[Obj, str, str]]:
    """(PrometheusRule, alert name, expr) for every alerting rule a Prometheus selects (ruleSelector and
    ruleNamespaceSelector; a null namespace selector means the Prometheus's own namespace only)."""
    namespaces = {str(n["metadata"]["name"]): dict(n["metadata"].get("labels") or {})
                  for n in inv.objects("Namespace", "")}
    out: list[tuple[Obj, str, str]] = []
    rules = inv.objects("PrometheusRule", MONITORING)
    seen: set[tuple[str, str, str]] = set()
    for prom in inv.objects("Prometheus", MONITORING):
        spec = prom.get("spec") or {}
        if spec.get("ruleSelector") is None or spec.get("replicas") == 0:
            continue  # the operator selects no rules without a ruleSelector; 0 replicas evaluate nothing
        pns = str(prom["metadata"].get("namespace"))
        ns_sel = spec.get("ruleNamespaceSelector")
        for r in rules:
            rns = str(r["metadata"].get("namespace"))
            in_ns = rns == pns if ns_sel is None else matches(ns_sel, namespaces.get(rns, {}))
            if not in_ns or not matches(spec.get("ruleSelector"), dict(r["metadata"].get("labels") or {})):
                continue
            for g in (r.get("spec") or {}).get("groups") or []:
                for rule in g.get("rules") or []:
                    key = (rns, str(r["metadata"]["name"]), str(rule.get("alert")))
                    if rule.get("alert") and key not in seen:
                        seen.add(key)
                        out.append((r, str(rule["alert"]), str(rule.get("expr") or "")))
    return out


# What watches each security component, as whole tokens of a rule (issue 13: substrings matched `vector(1)` in
# Watchdog and `aws-node` in aws-node-termination-handler). Metric names are matched in full against the regex;
# label values (daemonset="calico-node", job=~"falco|falcosidekick") and the words of the alert's name against the
# component's names. Metric names come from the products' exporters (cluster-facts.md E.3): kube-state-metrics
# kube_daemonset_*, Falco's falcosecurity_* / falco_*, Fluent Bit's fluentbit_*, trivy-operator's trivy_*, the
# API server's apiserver_audit_* and apiserver_admission_webhook_*, cert-manager's certmanager_certificate_*.
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cni": (r"(calico|felix|cilium|flannel|antrea|weave|kube_router|kuberouter)_\w+",
            ("calico", "calico-node", "felix", "cilium", "cilium-agent", "flannel", "kube-flannel", "kube-flannel-ds",
             "canal", "antrea", "antrea-agent", "weave", "weave-net", "kube-router", "aws-node", "kindnet")),
    "log-shipper": (r"(fluentbit|fluentd|vector|promtail|loki_write|filebeat|otelcol_exporter)_\w+",
                    ("fluent-bit", "fluentbit", "fluentd", "vector", "promtail", "alloy", "filebeat",
                     "otel-collector", "opentelemetry-collector")),
    "ids": (r"(falco|falcosecurity|falcosidekick|tetragon)_\w+", ("falco", "falcosidekick", "tetragon")),
    "vulnerability-scanner": (r"trivy_\w+", ("trivy", "trivy-operator")),
    "audit-log-delivery": (r"apiserver_audit_\w+", ()),
    "admission-webhooks": (r"apiserver_admission_webhook_\w+", ()),
    "certificate-expiry": (r"(certmanager_certificate_(expiration|renewal|ready)\w*|x509_cert_\w+|"
                           r"probe_ssl_earliest_cert_expiry|ssl_certificate_\w+)", ()),
}
_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                           "unless", "offset", "inf", "nan"})
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def rule_tokens(alert: str, expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, positive label values, lower-case words of the alert name) of one alerting rule."""
    values: set[str] = set()
    for _, op, value in _MATCHER.findall(expr):
        if op == "=":
            values.add(value)
        elif op == "=~":  # a regex of alternatives: its literal branches
            values.update(v.strip("^$").replace(".*", "") for v in value.split("|"))
    bare = re.sub(r"\{[^}]*\}", " ", re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr))
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    metrics = {m.group(0) for m in _IDENT.finditer(bare)
               if m.group(0).lower() not in _PROMQL_WORDS and not bare[m.end():].lstrip().startswith("(")}
    words = {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", alert)}
    return metrics, values, words


def _watches(component: str, deployed_names: set[str], tokens: tuple[set[str], set[str], set[str]]) -> bool:
    metric_re, names = COMPONENTS[component]
    metrics, values, words = tokens
    known = set(names) | deployed_names
    if any(re.fullmatch(metric_re, m) for m in metrics) or values & known:
        return True
    # Alert names: "CalicoNodeDown" -> {calico, node, down}; a product named by one word ("falco") or by all its words.
    return any(all(part in words for part in re.split(r"[-_]", n.lower())) for n in known if n)


def _security_alerts(inv: Inventory, subject: MonitoringFacts) -> None:
    """Which security components an evaluated alerting rule watches (PCI DSS 10.7.2: failures of critical security
    controls are detected and alerted). Without a Prometheus nothing is evaluated, and a missing IDS or scanner is
    listed as not deployed: both are findings, never skipped."""
    rules = selected_rules(inv)
    tokens = [(name, rule_tokens(name, expr)) for _, name, expr in rules]
    cni = [str(d["metadata"]["name"]) for d in inv.objects("DaemonSet", "apps") if d["metadata"]["name"] in CNI_DAEMONSETS]
    shippers = [s.name.split("/")[-1] for s in subject.log_shippers]
    ids = [i.name.split("/")[-1] for i in subject.ids]
    scanners = [str(d["metadata"]["name"]) for d in inv.objects("Deployment", "apps")
                if re.search(r"aquasec/trivy-operator|trivy-operator", " ".join(
                    str(c.get("image", "")) for c in containers_of(d)))]
    audit = "API audit log" if subject.audit_log_path or subject.audit_webhook else None
    webhooks = [str(w["metadata"]["name"]) for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
                for w in inv.objects(kind, "admissionregistration.k8s.io")]
    certs = "TLS certificates" if inv.objects("Secret", "") or inv.objects("Certificate", "cert-manager.io") else None
    found: dict[str, tuple[str | None, set[str]]] = {
        "cni": (", ".join(cni) or None, set(cni)),
        "log-shipper": (", ".join(shippers) or None, set(shippers)),
        # Required whether deployed or not: a missing IDS (11.5.1) or scanner (11.3.1) is itself the finding.
        "ids": (", ".join(ids) or "not deployed", set(ids)),
        "vulnerability-scanner": (", ".join(scanners) or "not deployed", set(scanners)),
        "audit-log-delivery": (audit, set()),
        "admission-webhooks": (f"{len(webhooks)} admission webhooks" if webhooks else None, set()),
        "certificate-expiry": (certs, set()),
    }
    for component, (deployed, names) in found.items():
        alerts = sorted({name for name, t in tokens if _watches(component, names, t)})
        subject.security_alerts.append(ComponentAlerts(component=component, deployed=deployed, alerts=alerts))
    subject.components_without_alerts = [c.component for c in subject.security_alerts if c.deployed and not c.alerts]
    rules_st = inv.status("PrometheusRule", MONITORING)
    if rules_st.status in ("forbidden", "error"):
        for f in ("security_alerts", "components_without_alerts"):
            subject.mark_unknown(f, rules_st.reason("prometheusrules") or "prometheusrules could not be read")


# --- API audit log shipping (10.3.3) -----------------------------------------------------------------------

def _audit_shipping(inv: Inventory, subject: MonitoringFacts) -> None:
    config = apiserver_config(inv)
    if not config.source:
        for f in ("audit_log_path", "audit_log_shipped_by", "audit_webhook"):
            subject.mark_unknown(f, "the kube-apiserver flags are not visible: " + not_visible_reason(inv))
        return
    subject.audit_webhook = bool(config.flags.get("audit-webhook-config-file"))
    path = config.flags.get("audit-log-path")
    if not path or path == "-":
        return
    subject.audit_log_path = path
    control_plane = {str(n["metadata"]["name"]) for n in inv.objects("Node", "")
                     if any(k in (n["metadata"].get("labels") or {}) for k in CONTROL_PLANE_LABELS)}
    directory = PurePosixPath(path).parent
    for shipper in subject.log_shippers:
        ns, name = shipper.name.split("/", 1)
        ds = inv.get("DaemonSet", ns, name, group="apps")
        volumes = ((((ds or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
        mounts = [PurePosixPath(str((v.get("hostPath") or {}).get("path"))) for v in volumes if v.get("hostPath")]
        if any(directory == m or m in directory.parents for m in mounts) and (
                not control_plane or control_plane <= set(shipper.nodes_covered)):
            subject.audit_log_shipped_by.append(shipper.name)
