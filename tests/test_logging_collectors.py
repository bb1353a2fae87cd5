"""API server flags, platforms, and the logging and monitoring facts on small inventories."""

from __future__ import annotations

import yaml
from helpers import NOW, inventory, node, obj, pod
from test_collectors import ds

from evidence.collectors import cluster, detection, monitoring
from evidence.collectors.apiserver import apiserver_config
from evidence.scope import DataScope, Scope


def kubeadm(extra_args: object, api_version: str) -> dict:
    doc = {"apiVersion": api_version, "kind": "ClusterConfiguration", "apiServer": {"extraArgs": extra_args}}
    return obj("v1", "ConfigMap", "kubeadm-config", "kube-system", data={"ClusterConfiguration": yaml.safe_dump(doc)})


def test_kubeadm_config_extra_args_map_and_list_forms() -> None:
    v3 = apiserver_config(inventory(kubeadm({"audit-log-path": "/var/log/a.log", "encryption-provider-config": "/e"},
                                            "kubeadm.k8s.io/v1beta3")))
    assert v3.flags == {"audit-log-path": "/var/log/a.log", "encryption-provider-config": "/e"}
    v4 = apiserver_config(inventory(kubeadm([{"name": "audit-policy-file", "value": "/p"},
                                             {"name": "audit-log-path", "value": "/l"}], "kubeadm.k8s.io/v1beta4")))
    assert v4.flags == {"audit-policy-file": "/p", "audit-log-path": "/l"} and "v1beta4" in str(v4.source)
    c = cluster.collect(inventory(kubeadm([{"name": "audit-policy-file", "value": "/p"},
                                           {"name": "audit-log-path", "value": "/l"},
                                           {"name": "audit-log-maxage", "value": "30"}], "kubeadm.k8s.io/v1beta4")),
                        Scope(), NOW)[0]
    assert c.audit_logging and not c.apiserver_visible and c.platform == "self-managed"
    assert c.audit is not None and c.audit.log_maxage_days == 30 and not c.secrets_encryption_configured
    assert "no --encryption-provider-config" in c.secrets_encryption_source


def test_managed_platforms_from_labels_and_provider_ids() -> None:
    eks = node("ip-10-0-1-1")
    eks["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] = "general"
    c = cluster.collect(inventory(eks), Scope(), NOW)[0]
    assert c.platform == "eks" and "eks.amazonaws.com/nodegroup" in c.platform_source
    assert "EKS runs the control plane" in {u.field: u.reason for u in c.unknown}["secrets_encryption_configured"]
    gke = node("gke-1")
    gke["spec"] = {"providerID": "gce://project/zone/gke-1"}
    assert cluster.collect(inventory(gke), Scope(), NOW)[0].platform == "gke"
    assert cluster.collect(inventory(node("bare")), Scope(), NOW)[0].platform == "unknown"


def loki(config: str | None, secret: bool = False) -> list[dict]:
    vol = {"name": "config", "secret": {"secretName": "loki"}} if secret else {"name": "config",
                                                                              "configMap": {"name": "loki"}}
    sts = obj("apps/v1", "StatefulSet", "loki", "logging", spec={"template": {"spec": {
        "containers": [{"name": "loki", "image": "docker.io/grafana/loki:3.3.2",
                        "args": ["-config.file=/etc/loki/config/config.yaml"],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/loki/config"}]}],
        "volumes": [vol]}}})
    objs = [sts]
    if config is not None:
        objs.append(obj("v1", "ConfigMap", "loki", "logging", data={"config.yaml": config}))
    return objs


def mon(*objs: dict, scope: Scope | None = None):
    return monitoring.collect(inventory(*objs), scope or Scope(), NOW)[0]


def test_loki_retention() -> None:
    kept = mon(*loki("compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 8760h\n"))
    assert kept.log_stores[0].retention_days == 365 and kept.log_stores[0].immediately_available_days == 365
    forever = mon(*loki("limits_config:\n  retention_period: 720h\n")).log_stores[0]
    assert forever.retention_known and forever.retention_days is None and "never deletes" in forever.retention_source
    hidden = mon(*loki(None, secret=True))
    assert "log_stores" in hidden.unknown_fields() and not hidden.log_stores[0].retention_known
    assert detection.prometheus_duration_days("1y") == 365 and detection.prometheus_duration_days("30d12h") == 30.5
    assert mon(scope=Scope(data=DataScope(health_data=["care"]))).health_data_in_scope


def alertmanager(configuration: str | None) -> dict:
    spec = {"alertmanagerConfiguration": {"name": configuration}} if configuration else {}
    return obj("monitoring.coreos.com/v1", "Alertmanager", "main", "monitoring", spec=spec)


def test_alertmanager_routing_visible_only_through_alertmanagerconfig() -> None:
    secret_only = mon(alertmanager(None))
    assert secret_only.alert_routing is None
    assert "Secret monitoring/alertmanager-main" in {u.field: u.reason for u in secret_only.unknown}["alert_routing"]
    null = obj("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "cfg", "monitoring",
               spec={"route": {"receiver": "null"}, "receivers": [{"name": "null"}]})
    r = mon(alertmanager("cfg"), null).alert_routing
    assert r is not None and r.root_receiver == "null" and not r.root_delivers and r.receivers_without_integrations
    ok = obj("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "cfg", "monitoring", spec={
        "route": {"receiver": "oncall"}, "receivers": [{"name": "oncall", "pagerdutyConfigs": [{"routingKey": {}}]}]})
    assert mon(alertmanager("cfg"), ok).alert_routing.root_delivers


def test_security_alerts_count_only_rules_a_prometheus_selects() -> None:
    prom = obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring",
               spec={"ruleSelector": {"matchLabels": {"role": "alert-rules"}}, "ruleNamespaceSelector": {}})
    rule = {"alert": "CalicoNodeDown", "expr": 'kube_daemonset_status_number_ready{daemonset="calico-node"} < 3'}
    selected = obj("monitoring.coreos.com/v1", "PrometheusRule", "r", "monitoring", labels={"role": "alert-rules"},
                   spec={"groups": [{"name": "g", "rules": [rule]}]})
    ignored = obj("monitoring.coreos.com/v1", "PrometheusRule", "x", "monitoring",
                  spec={"groups": [{"name": "g", "rules": [{"alert": "CertExpiry", "expr": "x509_cert_not_after"}]}]})
    m = mon(prom, selected, ignored, ds("calico-node"))
    found = {c.component: c for c in m.security_alerts}
    assert found["cni"].alerts == ["CalicoNodeDown"] and found["cni"].deployed == "calico-node"
    assert found["certificate-expiry"].alerts == []  # the rule exists but no Prometheus loads it
    assert "cni" not in m.components_without_alerts


def test_falco_coverage_and_outputs() -> None:
    falco = ds("falco", "falco", containers=[{"name": "falco", "image": "docker.io/falcosecurity/falco:0.39.2",
                                              "volumeMounts": [{"name": "cfg", "mountPath": "/etc/falco"}]}])
    falco["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "falco"}}]
    falco["status"] = {"desiredNumberScheduled": 2, "numberReady": 2}
    pods = [pod(f"falco-{n}", "falco", {}, node=n, owner=("DaemonSet", "falco")) for n in ("a", "b")]
    stdout = obj("v1", "ConfigMap", "falco", "falco", data={"falco.yaml": "http_output:\n  enabled: false\n"})
    m = mon(node("a"), node("b"), node("c"), falco, stdout, *pods)
    ids = m.ids[0]
    assert ids.nodes_missing == ["c"] and ids.outputs == ["stdout", "syslog"] and ids.output_beyond_stdout is False
    http = obj("v1", "ConfigMap", "falco", "falco", data={"falco.yaml": (
        "stdout_output:\n  enabled: false\nsyslog_output:\n  enabled: false\nhttp_output:\n  enabled: true\n"
        "  url: http://falcosidekick:2801\n")})
    assert mon(node("a"), falco, http, *pods).ids[0].outputs == ["http"]
    hidden = mon(node("a"), falco, *pods)
    assert "ids" in hidden.unknown_fields()


def test_audit_log_shipping_needs_a_shipper_on_the_control_plane_with_the_directory() -> None:
    api = pod("kube-apiserver-cp", "kube-system", {"component": "kube-apiserver"})
    api["spec"]["containers"][0]["command"] = ["kube-apiserver", "--audit-policy-file=/p",
                                               "--audit-log-path=/var/log/kubernetes/audit/audit.log"]
    cp = node("cp")
    cp["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
    shipper = ds("fluent-bit", "logging",
                 containers=[{"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3"}])
    pods = [pod(f"fb-{n}", "logging", {}, node=n, owner=("DaemonSet", "fluent-bit")) for n in ("cp", "w")]
    without = mon(api, cp, node("w"), shipper, *pods)
    assert without.audit_log_path == "/var/log/kubernetes/audit/audit.log" and without.audit_log_shipped_by == []
    shipper["spec"]["template"]["spec"]["volumes"] = [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
    assert mon(api, cp, node("w"), shipper, *pods).audit_log_shipped_by == ["logging/fluent-bit"]
    assert "audit_log_path" in mon(node("w")).unknown_fields()


def test_alert_rules_match_whole_tokens_not_substrings() -> None:
    """kube-prometheus ships Watchdog (`expr: vector(1)`, kube-prometheus/manifests/kubePrometheus-prometheusRule.yaml)
    and the aws-node-termination-handler is a different DaemonSet from the aws-node CNI: neither may count."""
    assert detection.rule_tokens("Watchdog", "vector(1)") == (set(), set(), {"watchdog"})
    metrics, values, _words = detection.rule_tokens(
        "KubeDaemonSetRolloutStuck",
        'kube_daemonset_status_number_ready{job="kube-state-metrics", daemonset=~"aws-node-termination-handler"} '
        '/ on (namespace, daemonset) kube_daemonset_status_desired_number_scheduled < 1')
    assert metrics == {"kube_daemonset_status_number_ready", "kube_daemonset_status_desired_number_scheduled"}
    assert "aws-node" not in values and "aws-node-termination-handler" in values
    prom = obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring",
               spec={"ruleSelector": {}, "ruleNamespaceSelector": {}})

    def rules(*pairs: tuple[str, str]) -> dict:
        return obj("monitoring.coreos.com/v1", "PrometheusRule", "r", "monitoring",
                   spec={"groups": [{"name": "g", "rules": [{"alert": a, "expr": e} for a, e in pairs]}]})

    watchdog = rules(("Watchdog", "vector(1)"),
                     ("NTHDown", 'kube_daemonset_status_number_ready{daemonset="aws-node-termination-handler"} == 0'))
    m = mon(prom, watchdog, ds("aws-node", "kube-system"), ds("fluent-bit", "logging", containers=[
        {"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9"}]))
    found = {c.component: c for c in m.security_alerts}
    assert found["cni"].alerts == [] and found["log-shipper"].alerts == []
    assert {"cni", "log-shipper", "ids", "vulnerability-scanner"} <= set(m.components_without_alerts)
    assert found["ids"].deployed == "not deployed"  # a missing IDS is a finding, not a skip
    good = rules(("FalcoDown", 'absent(up{job="falco"} == 1)'),
                 ("FluentBitOutputErrors", "rate(fluentbit_output_errors_total[5m]) > 0"),
                 ("AwsNodeNotReady", 'kube_daemonset_status_number_ready{daemonset="aws-node"} < 1'))
    found = {c.component: c for c in mon(prom, good, ds("aws-node", "kube-system")).security_alerts}
    assert found["ids"].alerts == ["FalcoDown"] and found["log-shipper"].alerts == ["FluentBitOutputErrors"]
    assert found["cni"].alerts == ["AwsNodeNotReady"]


def test_alert_rules_count_only_what_a_running_prometheus_selects() -> None:
    rule = obj("monitoring.coreos.com/v1", "PrometheusRule", "r", "monitoring",
               spec={"groups": [{"name": "g", "rules": [{"alert": "X", "expr": "up == 0"}]}]})
    assert mon(rule).alert_rules == 0  # no Prometheus: nothing evaluates it
    stopped = obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring",
                  spec={"replicas": 0, "ruleSelector": {}})
    assert mon(stopped, rule).alert_rules == 0
    running = obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring", spec={"ruleSelector": {}})
    assert mon(running, rule).alert_rules == 1


# The audit policy example of the Kubernetes documentation (tasks/debug/debug-cluster/audit, audit-policy.yaml).
DOCS_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: ""
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs: ["/api*", "/version"]
  - level: Request
    resources:
    - group: ""
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: ""
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
"""


def test_audit_policy_is_judged_by_its_rules() -> None:
    from evidence.collectors import controlplane

    assert controlplane.audit_gaps(yaml.safe_load(DOCS_POLICY)) == []
    nothing = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
    assert controlplane.audit_gaps(nothing)[0].startswith("every request: the policy logs nothing")
    # Secrets excluded first (a common way to keep payloads out of the log, which drops the record of access too),
    # and only pods themselves logged: exec/attach, RBAC and tokens are not recorded.
    narrow = {"rules": [{"level": "None", "resources": [{"group": "", "resources": ["secrets"]}]},
                        {"level": "Metadata", "resources": [{"group": "", "resources": ["pods"]}]}]}
    gaps = controlplane.audit_gaps(narrow)
    assert [g.split(" (")[0] for g in gaps] == ["Secrets", "RBAC changes", "exec/attach into pods",
                                                 "ServiceAccount tokens"]


def test_audit_policy_and_encryption_config_read_from_the_snapshot_or_a_scoped_configmap() -> None:
    apiserver = pod("kube-apiserver-cp-1", "kube-system", {"component": "kube-apiserver"}, node="cp-1")
    apiserver["spec"]["containers"] = [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.2",
                                        "command": ["kube-apiserver", "--audit-policy-file=/etc/kubernetes/audit.yaml",
                                                    "--audit-log-path=/var/log/kubernetes/audit.log",
                                                    "--encryption-provider-config=/etc/kubernetes/enc.yaml"]}]
    unseen = cluster.collect(inventory(apiserver), Scope(), NOW)[0]
    assert "audit_policy_gaps" in unseen.unknown_fields() and unseen.encryption_config_unseen
    policy = yaml.safe_load(DOCS_POLICY)
    # The EncryptionConfiguration example of the docs (tasks/administer-cluster/encrypt-data), identity first as
    # in its "decrypt all data" step.
    enc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
        {"resources": ["secrets"], "providers": [{"identity": {}}, {"aescbc": {"keys": [{"name": "key1"}]}}]}]}
    files = obj("v1", "ConfigMap", "apiserver-files", "kube-system",
                data={"audit.yaml": yaml.safe_dump(policy), "encryption.yaml": yaml.safe_dump(enc)})
    scope = Scope.model_validate({"control_plane_files": {"audit_policy": "kube-system/apiserver-files#audit.yaml",
                                                          "encryption_config": "kube-system/apiserver-files"}})
    seen = cluster.collect(inventory(apiserver, files), scope, NOW)[0]
    assert seen.audit_policy_gaps == [] and "ConfigMap kube-system/apiserver-files key audit.yaml" in str(
        seen.audit_policy_source)
    assert seen.secrets_first_provider == "identity" and not seen.encryption_config_unseen


def test_falco_config_mounted_by_subpath_over_an_emptydir_is_read() -> None:
    """The falcosecurity/falco chart (templates/pod-template.tpl): an emptyDir `rulesfiles-install-dir` at /etc/falco
    for falcoctl, and /etc/falco/falco.yaml from the `falco` ConfigMap by subPath (volume falco-yaml, items
    falco.yaml). The file is the ConfigMap's, not the emptyDir's."""
    falco = ds("falco", "falco", containers=[{
        "name": "falco", "image": "docker.io/falcosecurity/falco:0.40.0",
        "volumeMounts": [{"mountPath": "/etc/falco", "name": "rulesfiles-install-dir"},
                         {"mountPath": "/etc/falco/falco.yaml", "name": "falco-yaml", "subPath": "falco.yaml"}]}])
    falco["spec"]["template"]["spec"]["volumes"] = [
        {"name": "rulesfiles-install-dir", "emptyDir": {}},
        {"name": "falco-yaml", "configMap": {"name": "falco", "items": [{"key": "falco.yaml", "path": "falco.yaml"}]}}]
    falco["status"] = {"desiredNumberScheduled": 1, "numberReady": 1}
    cfg = obj("v1", "ConfigMap", "falco", "falco", data={"falco.yaml": (
        "json_output: true\nstdout_output:\n  enabled: true\nhttp_output:\n  enabled: true\n"
        "  url: http://falco-falcosidekick:2801\n")})
    pods = [pod("falco-a", "falco", {}, node="a", owner=("DaemonSet", "falco"))]
    ids = mon(node("a"), falco, cfg, *pods).ids[0]
    assert ids.outputs == ["stdout", "syslog", "http"] and ids.output_beyond_stdout is True  # syslog: default on


def test_loki_retention_on_an_emptydir_is_not_retention() -> None:
    """grafana/loki chart, single-binary: data at /var/loki (common.path_prefix) on the `storage` volume, a
    volumeClaimTemplate with persistence enabled and an emptyDir without it; with object storage (common.storage.s3)
    the local directory does not hold the retained logs."""
    cfg = ("common:\n  path_prefix: /var/loki\n  storage:\n    filesystem:\n      chunks_directory: /var/loki/chunks\n"
           "compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 8760h\n")

    def with_storage(config: str, volume: dict | None, claim: bool = False) -> list[dict]:
        objs = loki(config)
        spec = objs[0]["spec"]
        spec["template"]["spec"]["containers"][0]["volumeMounts"].append({"name": "storage", "mountPath": "/var/loki"})
        if volume is not None:
            spec["template"]["spec"]["volumes"].append({"name": "storage", **volume})
        if claim:
            spec["volumeClaimTemplates"] = [{"metadata": {"name": "storage"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]
        return objs

    empty = mon(*with_storage(cfg, {"emptyDir": {}})).log_stores[0]
    assert empty.durable_storage is False and "emptyDir" in empty.storage_source and empty.retention_days == 365
    claimed = mon(*with_storage(cfg, None, claim=True)).log_stores[0]
    assert claimed.durable_storage is True and "PersistentVolumeClaim" in claimed.storage_source
    s3 = cfg.replace("    filesystem:\n      chunks_directory: /var/loki/chunks\n",
                     "    s3:\n      bucketnames: loki-chunks\n      region: eu-north-1\n")
    assert mon(*with_storage(s3, {"emptyDir": {}})).log_stores[0].durable_storage is True


def test_log_shipper_outputs_destination_tls_and_auth_through_the_redactor() -> None:
    """Fluent Bit's es output (docs: pipeline/outputs/elasticsearch; `tls` defaults to Off), Vector's elasticsearch
    sink and Promtail's clients: destination, TLS and credentials read from the redacted configuration."""
    import copy

    from evidence.redact import Redactor

    fb = ("[SERVICE]\n    Flush 1\n[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n"
          "[OUTPUT]\n    Name es\n    Match kube.*\n    Host elasticsearch.example.com\n    Port 9200\n"
          "    HTTP_User elastic\n    HTTP_Passwd s3cr3t-canary\n"
          "[OUTPUT]\n    Name loki\n    Match *\n    Host loki-gateway.logging.svc.cluster.local\n    Port 80\n"
          "[OUTPUT]\n    Name stdout\n    Match *\n")
    shipper = ds("fluent-bit", "logging",
                 containers=[{"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9"}])
    shipper["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "fluent-bit"}}]
    cm = obj("v1", "ConfigMap", "fluent-bit", "logging", data={"fluent-bit.conf": fb})
    cm = Redactor().redact(copy.deepcopy(cm))
    assert "s3cr3t-canary" not in str(cm)
    m = mon(node("a"), shipper, cm)
    es, loki_out = m.log_shippers[0].outputs
    assert (es.plugin, es.destination, es.tls, es.authenticated, es.in_cluster) == \
        ("es", "elasticsearch.example.com", False, True, False)
    assert loki_out.in_cluster is True and loki_out.tls is False
    assert m.plaintext_log_outputs == ["logging/fluent-bit: es to elasticsearch.example.com without TLS"]
    vector = ("sinks:\n  es:\n    type: elasticsearch\n    inputs: [k8s]\n    endpoints: [https://es.example.com:9200]\n"
              "    auth:\n      strategy: basic\n      user: elastic\n      password: pw-canary\n")
    assert monitoring.shipper_outputs("vector", Redactor()._config_text("vector.yaml", vector))[0].tls is True
    promtail = "clients:\n  - url: http://loki.example.com:3100/loki/api/v1/push\n"
    (p,) = monitoring.shipper_outputs("promtail", promtail)
    assert p.tls is False and p.destination == "loki.example.com" and p.in_cluster is False


# --- Fluentd outputs (issue 13) -----------------------------------------------------------------------------------
# Defaults the reader relies on, looked up in the plugins' sources:
# - fluent-plugin-elasticsearch (uken/fluent-plugin-elasticsearch lib/fluent/plugin/out_elasticsearch.rb):
#   `host` defaults to localhost, `port` to 9200, `scheme` to http; `hosts` entries that are URLs
#   (https://logs2.foo.com) carry their own scheme, host:port entries take `scheme`.
# - out_forward (fluent/fluentd lib/fluent/plugin/out_forward.rb):
#   `config_param :transport, :enum, list: [:tcp, :tls], default: :tcp`; <security> shared_key authenticates.
# - fluent-plugin-grafana-loki (grafana/loki clients/cmd/fluentd/lib/fluent/plugin/out_loki.rb): `url` defaults to
#   https://logs-prod-us-central1.grafana.net, `use_ssl: uri.scheme == 'https'`; username/password, bearer_token_file.
# - fluent-plugin-s3 (fluent/fluent-plugin-s3 lib/fluent/plugin/out_s3.rb): `s3_endpoint` defaults to nil, so the AWS
#   SDK's regional endpoint, which is https; fluent-plugin-splunk-hec (splunk/fluent-plugin-splunk-hec
#   lib/fluent/plugin/out_splunk_hec.rb): `protocol` defaults to :https; fluent-plugin-kafka
#   (fluent/fluent-plugin-kafka lib/fluent/plugin/kafka_plugin_util.rb): ssl_ca_cert / ssl_client_cert default nil,
#   ssl_ca_certs_from_system false, so ruby-kafka connects in plain text.
# The manifests are shaped like the published ones: fluent/fluentd-kubernetes-daemonset
# docker-image/v1.12/debian-elasticsearch7/conf/fluent.conf (host "#{ENV['FLUENT_ELASTICSEARCH_HOST']}", scheme
# "#{ENV['FLUENT_ELASTICSEARCH_SCHEME'] || 'http'}", a <buffer> inside <match **>) and
# fluentd-daemonset-elasticsearch-rbac.yaml (the env values as literals); templates/Dockerfile.erb sets no
# FLUENT_ELASTICSEARCH_* ENV, but a custom image may, so an unset variable is unknown, not its `||` fallback.

FLUENT_CONF_ES = """# AUTOMATICALLY GENERATED
@include "#{ENV['FLUENTD_SYSTEMD_CONF'] || 'systemd'}.conf"
@include kubernetes.conf
@include conf.d/*.conf

<label @FLUENT_LOG>
  <match fluent.**>
    @type null
    @id ignore_fluent_logs
  </match>
</label>

<match **>
   @type elasticsearch
   @id out_es
   @log_level info
   include_tag_key true
   host "#{ENV['FLUENT_ELASTICSEARCH_HOST']}"
   port "#{ENV['FLUENT_ELASTICSEARCH_PORT']}"
   path "#{ENV['FLUENT_ELASTICSEARCH_PATH']}"
   scheme "#{ENV['FLUENT_ELASTICSEARCH_SCHEME'] || 'http'}"
   ssl_verify "#{ENV['FLUENT_ELASTICSEARCH_SSL_VERIFY'] || 'true'}"
   user "#{ENV['FLUENT_ELASTICSEARCH_USER'] || use_default}"
   password "#{ENV['FLUENT_ELASTICSEARCH_PASSWORD'] || use_default}"
   logstash_format true
   <buffer>
     flush_thread_count 8
     flush_interval 5s
     retry_forever true
   </buffer>
</match>
"""
ES_ENV = [{"name": "FLUENT_ELASTICSEARCH_HOST", "value": "elasticsearch.example.com"},
          {"name": "FLUENT_ELASTICSEARCH_PORT", "value": "9200"},
          {"name": "FLUENT_ELASTICSEARCH_SCHEME", "value": "http"},
          {"name": "FLUENT_ELASTICSEARCH_USER", "value": "elastic"},
          {"name": "FLUENT_ELASTICSEARCH_PASSWORD", "value": "Es-Canary-Pw-31"}]


def fluentd(conf: str, env: list[dict] | None = None) -> list[dict]:
    """The published Fluentd DaemonSet in `logging`, its fluent.conf from a ConfigMap, both through the redactor."""
    from evidence.redact import redact_all
    daemonset = ds("fluentd", "logging", containers=[{
        "name": "fluentd", "image": "fluent/fluentd-kubernetes-daemonset:v1.17-debian-elasticsearch8-1",
        "env": env if env is not None else ES_ENV,
        "volumeMounts": [{"name": "config", "mountPath": "/fluentd/etc/fluent.conf", "subPath": "fluent.conf"}]}])
    daemonset["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "fluentd-config"}}]
    cm = obj("v1", "ConfigMap", "fluentd-config", "logging", data={"fluent.conf": conf})
    return redact_all([daemonset, cm])


def transport_finding(m):
    from evidence.controls import load_catalogue
    from evidence.evaluate import evaluate_subject, scope_variables
    control = next(c for c in load_catalogue().controls if c.id == "logging.shipper-transport")
    return evaluate_subject(control, m.model_dump(mode="json"), scope_variables(Scope()))


def test_fluentd_plaintext_elasticsearch_outside_the_cluster_fails_naming_it() -> None:
    objs = fluentd(FLUENT_CONF_ES)
    assert "Es-Canary-Pw-31" not in str(objs)  # the env password is masked on the way in
    m = mon(node("a"), *objs)
    (es,) = m.log_shippers[0].outputs  # the <label @FLUENT_LOG> null output is local
    assert (es.plugin, es.destination, es.tls, es.authenticated, es.in_cluster) == \
        ("elasticsearch", "elasticsearch.example.com", False, True, False)
    assert m.plaintext_log_outputs == ["logging/fluentd: elasticsearch to elasticsearch.example.com without TLS"]
    assert "plaintext_log_outputs" not in m.unknown_fields()
    finding = transport_finding(m)
    assert finding.status == "fail" and "elasticsearch.example.com" in (finding.message or "")


def test_fluentd_elasticsearch_scheme_https_passes() -> None:
    https = fluentd(FLUENT_CONF_ES.replace("""scheme "#{ENV['FLUENT_ELASTICSEARCH_SCHEME'] || 'http'}\"""",
                                           "scheme https"))
    m = mon(node("a"), *https)
    assert [(o.destination, o.tls) for o in m.log_shippers[0].outputs] == [("elasticsearch.example.com", True)]
    assert m.plaintext_log_outputs == [] and transport_finding(m).status == "pass"
    # the same through the env variable, and a `hosts` URL list that carries its own scheme
    env = [e if e["name"] != "FLUENT_ELASTICSEARCH_SCHEME" else {**e, "value": "https"} for e in ES_ENV]
    assert transport_finding(mon(node("a"), *fluentd(FLUENT_CONF_ES, env))).status == "pass"
    hosts = FLUENT_CONF_ES.replace("   host \"#{ENV['FLUENT_ELASTICSEARCH_HOST']}\"\n",
                                   "   hosts https://es-1.example.com:9200,http://es-2.example.com:9200\n")
    outs = mon(node("a"), *fluentd(hosts)).log_shippers[0].outputs
    assert [(o.destination, o.tls) for o in outs] == [("es-1.example.com", True), ("es-2.example.com", False)]


def test_fluentd_env_substitution_unknown_unless_a_literal_of_the_container() -> None:
    from_secret = [e if e["name"] != "FLUENT_ELASTICSEARCH_HOST" else
                   {"name": e["name"], "valueFrom": {"secretKeyRef": {"name": "es", "key": "host"}}} for e in ES_ENV]
    for env in (from_secret, [e for e in ES_ENV if e["name"] != "FLUENT_ELASTICSEARCH_HOST"]):
        m = mon(node("a"), *fluentd(FLUENT_CONF_ES, env))
        (es,) = m.log_shippers[0].outputs
        assert es.destination is None and es.in_cluster is None and es.tls is False
        assert m.plaintext_log_outputs == ["logging/fluentd: elasticsearch to an unnamed destination without TLS"]
        assert "plaintext_log_outputs" in m.unknown_fields()
        assert transport_finding(m).status == "inconclusive"
    # an unset SCHEME is not its `|| 'http'` fallback (the image may set it): TLS unknown
    no_scheme = [e for e in ES_ENV if e["name"] != "FLUENT_ELASTICSEARCH_SCHEME"]
    (es,) = mon(node("a"), *fluentd(FLUENT_CONF_ES, no_scheme)).log_shippers[0].outputs
    assert es.destination == "elasticsearch.example.com" and es.tls is None


FLUENT_CONF_FORWARD = """<match kubernetes.**>
  @type forward
  @id out_fwd
  <server>
    name aggregator
    host fluentd-aggregator.logging.svc
    port 24224
  </server>
  <security>
    self_hostname "#{ENV['HOSTNAME']}"
    shared_key Fwd-Shared-Key-32
  </security>
  <buffer>
    flush_interval 5s
  </buffer>
</match>
"""


def test_fluentd_forward_to_an_in_cluster_aggregator_is_not_a_plaintext_finding() -> None:
    m = mon(node("a"), *fluentd(FLUENT_CONF_FORWARD, env=[]))
    (fwd,) = m.log_shippers[0].outputs
    assert (fwd.plugin, fwd.destination, fwd.tls, fwd.in_cluster, fwd.authenticated) == \
        ("forward", "fluentd-aggregator.logging.svc", False, True, True)
    assert m.plaintext_log_outputs == [] and "plaintext_log_outputs" not in m.unknown_fields()
    assert transport_finding(m).status == "pass"
    external = mon(node("a"), *fluentd(FLUENT_CONF_FORWARD.replace("fluentd-aggregator.logging.svc",
                                                                   "logs.example.net"), env=[]))
    assert external.plaintext_log_outputs == ["logging/fluentd: forward to logs.example.net without TLS"]
    tls = mon(node("a"), *fluentd(FLUENT_CONF_FORWARD.replace("@id out_fwd", "transport tls").replace(
        "fluentd-aggregator.logging.svc", "logs.example.net"), env=[]))
    assert tls.log_shippers[0].outputs[0].tls is True and tls.plaintext_log_outputs == []


FLUENT_CONF_COPY = """<match kube.**>
  @type copy
  <store>
    @type elasticsearch
    host es.example.com
    port 9243
    scheme https
    user fluentd
    password Copy-Canary-Pw-33
  </store>
  <store ignore_error>
    @type loki
    url "http://loki.example.com:3100"
    username tenant-1
    password Loki-Canary-Pw-34
  </store>
  <store>
    @type s3
    s3_bucket audit-logs
    s3_region eu-north-1
  </store>
  <store>
    @type stdout
  </store>
</match>
<match audit.**>
  @type kafka2
  brokers kafka-0.example.com:9092,kafka-1.example.com:9092
  <format>
    @type json
  </format>
</match>
"""


def test_fluentd_copy_stores_each_an_output() -> None:
    objs = fluentd(FLUENT_CONF_COPY, env=[])
    assert "Copy-Canary-Pw-33" not in str(objs) and "Loki-Canary-Pw-34" not in str(objs)
    m = mon(node("a"), *objs)
    got = [(o.plugin, o.destination, o.tls, o.authenticated, o.in_cluster) for o in m.log_shippers[0].outputs]
    assert got == [("elasticsearch", "es.example.com", True, True, False),
                   ("loki", "loki.example.com", False, True, False),
                   ("s3", "s3.eu-north-1.amazonaws.com", True, False, False),
                   ("kafka2", "kafka-0.example.com", False, False, False),
                   ("kafka2", "kafka-1.example.com", False, False, False)]
    assert m.plaintext_log_outputs == ["logging/fluentd: loki to loki.example.com without TLS",
                                       "logging/fluentd: kafka2 to kafka-0.example.com without TLS",
                                       "logging/fluentd: kafka2 to kafka-1.example.com without TLS"]
    assert transport_finding(m).status == "fail"


def test_fluentd_outputs_that_cannot_be_read_are_inconclusive() -> None:
    unknown_plugin = "<match **>\n  @type datadog\n  api_key Dd-Canary-35\n</match>\n"
    m = mon(node("a"), *fluentd(unknown_plugin, env=[]))
    assert [(o.plugin, o.tls) for o in m.log_shippers[0].outputs] == [("datadog", None)]
    assert transport_finding(m).status == "inconclusive"
    # exec runs a command that may send the logs anywhere: not local
    m = mon(node("a"), *fluentd("<match **>\n  @type exec\n  command /usr/local/bin/ship\n</match>\n", env=[]))
    assert [(o.plugin, o.tls) for o in m.log_shippers[0].outputs] == [("exec", None)]
    assert transport_finding(m).status == "inconclusive"
    # a <match> inside a <worker> (multi-process workers) is an output too
    worker = "<worker 0>\n  <match **>\n    @type forward\n    <server>\n      host logs.example.net\n" \
             "    </server>\n  </match>\n</worker>\n"
    m = mon(node("a"), *fluentd(worker, env=[]))
    assert m.plaintext_log_outputs == ["logging/fluentd: forward to logs.example.net without TLS"]
    # a ConfigMap without <match>: the image's own fluent.conf sends the logs, and it is not visible
    sources_only = "<source>\n  @type tail\n  path /var/log/containers/*.log\n</source>\n"
    m = mon(node("a"), *fluentd(sources_only, env=[]))
    assert m.log_shippers[0].output_configured is False and transport_finding(m).status == "inconclusive"


def test_output_held_in_a_secret_or_an_include_is_unknown_not_absent() -> None:
    """fluent-operator renders Fluent Bit's configuration into a Secret (fluent/fluent-operator, the FluentBit CR's
    `fluentBitConfigName` -> Secret mounted at /fluent-bit/config); a ConfigMap beside it may hold only parsers
    or Lua scripts. An @INCLUDE of a file auditpack cannot read is the same case. No [OUTPUT] in what was read is
    then unknown (the coverage control is inconclusive), not 'no output configured' (a false fail)."""
    from helpers import NOW, inventory, obj

    from evidence.collectors import monitoring
    from evidence.redact import Redactor
    from evidence.scope import Scope

    def shipper(volumes: list[dict], conf: str) -> bool | None:
        d = obj("apps/v1", "DaemonSet", "fluent-bit", "logging", spec={"template": {"spec": {
            "containers": [{"name": "fluent-bit", "image": "ghcr.io/fluent/fluent-operator/fluent-bit:3.1.8"}],
            "volumes": volumes}}})
        # Through the redactor, as every source stores it: the @INCLUDE key survives, its path is fingerprinted.
        cm = Redactor().redact(obj("v1", "ConfigMap", "fluent-bit-lua", "logging", data={"fluent-bit.conf": conf}))
        m = monitoring.collect(inventory(d, cm, obj("v1", "Node", "a")), Scope(), NOW)[0]
        return m.log_shippers[0].output_configured

    lua = {"name": "lua", "configMap": {"name": "fluent-bit-lua"}}
    varlog = {"name": "varlog", "hostPath": {"path": "/var/log"}}
    parsers = "[PARSER]\n    Name docker\n    Format json\n"
    assert shipper([lua, varlog], parsers) is False  # everything readable, and no output anywhere
    assert shipper([lua, varlog, {"name": "config", "secret": {"secretName": "fluent-bit-config"}}], parsers) is None
    assert shipper([lua, varlog], "@INCLUDE /fluent-bit/etc/outputs.conf\n" + parsers) is None
    assert shipper([lua, varlog], "[OUTPUT]\n    Name es\n    Host es.example.com\n") is True
