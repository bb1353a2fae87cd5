"""Generate the auditpack cloud sample: manifests of a GKE cluster as its owners applied them, no Pods.

Usage:
    python samples/generate_cloud.py [--out DIR] [--now 2026-11-21T06:00:00Z]

Writes the fictional cluster "gke-care" into samples/cloud-cluster/ (or --out), deleting and recreating it
first; samples/cloud-scope.yaml is its scope file. Where the demo and mesh samples are full snapshots, this one
is what `kubectl get -o yaml` of the applied manifests gives: Deployments, DaemonSets and custom resources, but no
Pods, ReplicaSets or Secrets. It is shaped after public upstream manifests:

- a GKE Ingress with a ManagedCertificate and a FrontendConfig (redirectToHttps, sslPolicy), and a second one with
  a pre-shared Google certificate, no FrontendConfig, and a path to a Service that was deleted;
- Istio's bookinfo (samples/bookinfo/platform/kube/bookinfo.yaml) with sidecar injection by namespace label and
  layered PeerAuthentications: mesh-wide STRICT, a PERMISSIVE workload policy for ratings, a port-level
  exception for details, and a reviews policy whose selector matches nothing; a legacy namespace outside the mesh;
- the Istio ingress gateway as its Helm chart deploys it (`image: auto`, gateway injection template) behind a
  LoadBalancer Service;
- kube-prometheus: the prometheus-operator and its Prometheus, Alertmanager and PrometheusRule resources;
- a Fluent Bit DaemonSet with its ConfigMap shipping to Elasticsearch.

Every uid, resourceVersion and timestamp comes from --now and stable hashes of the names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

DEFAULT_OUT = Path(__file__).resolve().parent / "cloud-cluster"
CLUSTER = "gke-care"
REGION = "europe-north1"
ISTIO = "1.24.2"
NS_UID = uuid.UUID("6a1b5e0c-0d4f-4c38-9a0e-2f5b3c1d7e90")

Obj = dict[str, Any]


class Gen:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def meta(self, name: str, ns: str | None = None, labels: dict | None = None, annotations: dict | None = None,
             days: int = 120) -> dict:
        key = f"{ns}/{name}/{days}"
        m: dict[str, Any] = {"name": name, "uid": str(uuid.uuid5(NS_UID, key)),
                             "resourceVersion": str(int(hashlib.sha256(key.encode()).hexdigest()[:6], 16)),
                             "creationTimestamp": (self.now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if ns:
            m["namespace"] = ns
        if labels:
            m["labels"] = labels
        if annotations:
            m["annotations"] = annotations
        return m

    def obj(self, api: str, kind: str, name: str, ns: str | None = None, labels: dict | None = None,
            annotations: dict | None = None, days: int = 120, **fields: Any) -> Obj:
        return {"apiVersion": api, "kind": kind, "metadata": self.meta(name, ns, labels, annotations, days), **fields}

    def deployment(self, name: str, ns: str, labels: dict, containers: list[dict], *, replicas: int = 1,
                   template_annotations: dict | None = None, sa: str | None = None, days: int = 120,
                   meta_labels: dict | None = None) -> Obj:
        tmeta: dict[str, Any] = {"labels": labels}
        if template_annotations:
            tmeta["annotations"] = template_annotations
        spec: dict[str, Any] = {"containers": containers}
        if sa:
            spec["serviceAccountName"] = sa
        return self.obj("apps/v1", "Deployment", name, ns, labels=meta_labels or labels, days=days, spec={
            "replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": tmeta, "spec": spec}},
            status={"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas})

    def service(self, name: str, ns: str, selector: dict, ports: list[dict], stype: str = "ClusterIP",
                labels: dict | None = None, annotations: dict | None = None, lb_ip: str | None = None) -> Obj:
        status = {"loadBalancer": {"ingress": [{"ip": lb_ip}]}} if lb_ip else {"loadBalancer": {}}
        return self.obj("v1", "Service", name, ns, labels=labels or {"app": name}, annotations=annotations,
                        spec={"type": stype, "selector": selector, "ports": ports}, status=status)


def container(name: str, image: str, port: int | None = None, **kw: Any) -> dict:
    c: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    if port:
        c["ports"] = [{"containerPort": port}]
    c.update(kw)
    return c


def cluster_scoped(g: Gen) -> list[Obj]:
    out: list[Obj] = []
    for i, zone in enumerate("abc"):
        name = f"gke-{CLUSTER}-default-pool-7f3a9c1e-{zone}{i}x2"
        out.append(g.obj("v1", "Node", name, labels={
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type":
            "e2-standard-4", "cloud.google.com/gke-nodepool": "default-pool", "cloud.google.com/gke-os-distribution":
            "cos", "topology.kubernetes.io/region": REGION, "topology.kubernetes.io/zone": f"{REGION}-{zone}"},
            days=40, spec={"podCIDR": f"10.52.{i}.0/24", "providerID": f"gce://gke-care-prod/{REGION}-{zone}/{name}"},
            status={"nodeInfo": {"kubeletVersion": "v1.31.5-gke.1233000", "osImage": "Container-Optimized OS from "
                                 "Google", "containerRuntimeVersion": "containerd://1.7.24"},
                    "addresses": [{"type": "InternalIP", "address": f"10.164.0.{10 + i}"}]}))
    namespaces = {
        "default": {}, "kube-system": {}, "kube-public": {}, "kube-node-lease": {}, "gke-managed-system": {},
        "istio-system": {}, "istio-ingress": {}, "monitoring": {}, "logging": {},
        "bookinfo": {"istio-injection": "enabled", "pci.auditpack.io/scope": "connected"},
        "payments": {"istio-injection": "enabled", "pci.auditpack.io/scope": "cde"},
        "legacy": {},
    }
    for name, labels in namespaces.items():
        out.append(g.obj("v1", "Namespace", name, labels={"kubernetes.io/metadata.name": name, **labels},
                         days=150, spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"}))
    # The webhook istioctl/Helm installs; its presence is what makes the namespace label inject sidecars.
    out.append(g.obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "istio-sidecar-injector",
                     labels={"app": "sidecar-injector", "istio.io/rev": "default"}, webhooks=[{
                         "name": "namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"],
                         "sideEffects": "None", "failurePolicy": "Fail",
                         "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system",
                                                      "path": "/inject", "port": 443}},
                         "namespaceSelector": {"matchExpressions": [
                             {"key": "istio-injection", "operator": "In", "values": ["enabled"]}]},
                         "objectSelector": {"matchExpressions": [
                             {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]},
                         "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                    "resources": ["pods"]}]}]))
    return out


def istio(g: Gen) -> list[Obj]:
    mesh = ("rootNamespace: istio-system\nenableAutoMtls: true\n"
            "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n")
    out = [
        g.obj("v1", "ConfigMap", "istio", "istio-system", labels={"istio.io/rev": "default"},
              data={"mesh": mesh, "meshNetworks": "networks: {}"}),
        g.deployment("istiod", "istio-system", {"app": "istiod", "istio.io/rev": "default"},
                     [container("discovery", f"docker.io/istio/pilot:{ISTIO}", 15017,
                                args=["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info",
                                      "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"])],
                     sa="istiod", meta_labels={"app": "istiod", "istio": "pilot"}),
        g.service("istiod", "istio-system", {"app": "istiod", "istio.io/rev": "default"},
                  [{"name": "grpc-xds", "port": 15010}, {"name": "https-dns", "port": 15012},
                   {"name": "https-webhook", "port": 443, "targetPort": 15017}]),
        # Mesh-wide STRICT (root namespace, no selector).
        g.obj("security.istio.io/v1", "PeerAuthentication", "default", "istio-system",
              spec={"mtls": {"mode": "STRICT"}}),
        # The gateway chart: `image: auto` and the gateway injection template.
        g.deployment("istio-ingressgateway", "istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"},
                     [container("istio-proxy", "auto", securityContext={"runAsNonRoot": True},
                                ports=[{"containerPort": 15090, "name": "http-envoy-prom"}])],
                     replicas=2, template_annotations={"inject.istio.io/templates": "gateway",
                                                       "prometheus.io/scrape": "true"},
                     sa="istio-ingressgateway"),
        g.service("istio-ingressgateway", "istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"},
                  [{"name": "status-port", "port": 15021}, {"name": "http2", "port": 80, "targetPort": 80},
                   {"name": "https", "port": 443, "targetPort": 443}], stype="LoadBalancer",
                  labels={"app": "istio-ingressgateway", "istio": "ingressgateway"}, lb_ip="203.0.113.141"),
        g.obj("networking.istio.io/v1", "Gateway", "payments-gateway", "payments",
              spec={"selector": {"istio": "ingressgateway"}, "servers": [
                  {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["pay.example.com"],
                   "tls": {"mode": "SIMPLE", "credentialName": "pay-example-com"}},
                  {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["pay.example.com"],
                   "tls": {"httpsRedirect": True}}]}),
    ]
    return out


BOOKINFO = {  # app: (version list, port)
    "details": (["v1"], 9080), "ratings": (["v1"], 9080), "reviews": (["v1", "v2", "v3"], 9080),
    "productpage": (["v1"], 9080),
}


def bookinfo(g: Gen) -> list[Obj]:
    out: list[Obj] = []
    for app, (versions, port) in BOOKINFO.items():
        out.append(g.service(app, "bookinfo", {"app": app}, [{"name": "http", "port": port}],
                             labels={"app": app, "service": app}))
        out.append(g.obj("v1", "ServiceAccount", f"bookinfo-{app}", "bookinfo", labels={"account": app}))
        for v in versions:
            labels = {"app": app, "version": v}
            out.append(g.deployment(f"{app}-{v}", "bookinfo", labels, [container(
                app, f"docker.io/istio/examples-bookinfo-{app}-{v}:1.20.2", port)], sa=f"bookinfo-{app}"))
    out += [
        # Layered PeerAuthentications: ratings relaxed for a migration, details keeps a plaintext metrics port,
        # and the reviews policy was written for "app: review" (no such label).
        g.obj("security.istio.io/v1", "PeerAuthentication", "ratings-permissive", "bookinfo",
              spec={"selector": {"matchLabels": {"app": "ratings"}}, "mtls": {"mode": "PERMISSIVE"}}),
        g.obj("security.istio.io/v1", "PeerAuthentication", "details-metrics", "bookinfo",
              spec={"selector": {"matchLabels": {"app": "details"}}, "mtls": {"mode": "STRICT"},
                    "portLevelMtls": {9080: {"mode": "PERMISSIVE"}}}),
        g.obj("security.istio.io/v1", "PeerAuthentication", "reviews-strict", "bookinfo",
              spec={"selector": {"matchLabels": {"app": "review"}}, "mtls": {"mode": "STRICT"}}),
        # The GKE Ingress in front of productpage (Google-managed certificate, FrontendConfig).
        g.obj("networking.gke.io/v1", "ManagedCertificate", "bookinfo-cert", "bookinfo",
              spec={"domains": ["bookinfo.example.com"]},
              status={"certificateName": "mcrt-5b6c1f7e-0a2d-4e55-9c1b-7f3e2d1a0b9c", "certificateStatus": "Active",
                      "domainStatus": [{"domain": "bookinfo.example.com", "status": "Active"}],
                      "expireTime": "2027-01-19T10:12:44.000-08:00"}),
        g.obj("networking.gke.io/v1beta1", "FrontendConfig", "bookinfo-frontend", "bookinfo",
              spec={"redirectToHttps": {"enabled": True, "responseCodeName": "MOVED_PERMANENTLY_DEFAULT"},
                    "sslPolicy": "care-modern-tls12"}),
        g.obj("networking.k8s.io/v1", "Ingress", "bookinfo", "bookinfo", annotations={
            "kubernetes.io/ingress.class": "gce", "kubernetes.io/ingress.global-static-ip-name": "bookinfo-ip",
            "networking.gke.io/managed-certificates": "bookinfo-cert",
            "networking.gke.io/v1beta1.FrontendConfig": "bookinfo-frontend"},
            spec={"defaultBackend": {"service": {"name": "productpage", "port": {"number": 9080}}}, "rules": [
                {"host": "bookinfo.example.com", "http": {"paths": [
                    {"path": "/*", "pathType": "ImplementationSpecific",
                     "backend": {"service": {"name": "productpage", "port": {"number": 9080}}}}]}}]},
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.140"}]}}),
    ]
    return out


def payments(g: Gen) -> list[Obj]:
    labels = {"app": "payment-api"}
    return [
        g.obj("security.istio.io/v1", "PeerAuthentication", "default", "payments", spec={"mtls": {"mode": "STRICT"}}),
        g.deployment("payment-api", "payments", labels, [container(
            "payment-api", "europe-north1-docker.pkg.dev/gke-care-prod/apps/payment-api:3.8.1", 8443)], replicas=2),
        g.service("payment-api", "payments", labels, [{"name": "https", "port": 8443}]),
    ]


def legacy(g: Gen) -> list[Obj]:
    """Outside the mesh: a nightly export job that reads ratings, and the old shop front with a GKE Ingress."""
    return [
        g.obj("batch/v1", "CronJob", "ratings-export", "legacy", spec={"schedule": "15 2 * * *", "jobTemplate": {
            "spec": {"template": {"metadata": {"labels": {"app": "ratings-export"}}, "spec": {
                "restartPolicy": "OnFailure", "containers": [container(
                    "export", "europe-north1-docker.pkg.dev/gke-care-prod/apps/ratings-export:1.4.0",
                    args=["--source=http://ratings.bookinfo.svc.cluster.local:9080"])]}}}}}),
        g.deployment("shop-web", "legacy", {"app": "shop-web"}, [container(
            "web", "europe-north1-docker.pkg.dev/gke-care-prod/apps/shop-web:2.2.0", 8080)]),
        g.service("shop-web", "legacy", {"app": "shop-web"}, [{"name": "http", "port": 80, "targetPort": 8080}],
                  stype="NodePort"),
        g.obj("networking.k8s.io/v1", "Ingress", "shop", "legacy", annotations={
            "ingress.gcp.kubernetes.io/pre-shared-cert": "shop-example-com-2026"},
            spec={"rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/*", "pathType": "ImplementationSpecific",
                 "backend": {"service": {"name": "shop-web", "port": {"number": 80}}}},
                {"path": "/old-checkout/*", "pathType": "ImplementationSpecific",
                 "backend": {"service": {"name": "checkout-v1", "port": {"number": 80}}}}]}}]},
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.142"}]}}),
    ]


RULES = """\
groups:
- name: general.rules
  rules:
  - alert: Watchdog
    expr: vector(1)
    labels: {severity: none}
    annotations: {summary: An alert that should always be firing to certify that Alertmanager is working properly.}
  - alert: TargetDown
    expr: 100 * (count(up == 0) BY (job, namespace, service) / count(up) BY (job, namespace, service)) > 10
    for: 10m
    labels: {severity: warning}
"""


def monitoring(g: Gen) -> list[Obj]:
    """kube-prometheus (manifests/prometheus-prometheus.yaml, alertmanager-alertmanager.yaml, the operator)."""
    groups = yaml.safe_load(RULES)["groups"]
    return [
        g.deployment("prometheus-operator", "monitoring", {"app.kubernetes.io/component": "controller",
                                                           "app.kubernetes.io/name": "prometheus-operator"},
                     [container("prometheus-operator", "quay.io/prometheus-operator/prometheus-operator:v0.79.2",
                                8080, args=["--kubelet-service=kube-system/kubelet",
                                            "--prometheus-config-reloader=quay.io/prometheus-operator/"
                                            "prometheus-config-reloader:v0.79.2"])],
                     sa="prometheus-operator"),
        g.obj("monitoring.coreos.com/v1", "Prometheus", "k8s", "monitoring",
              labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "kube-prometheus"},
              spec={"replicas": 2, "version": "3.1.0", "image": "quay.io/prometheus/prometheus:v3.1.0",
                    "serviceAccountName": "prometheus-k8s", "retention": "15d",
                    "podMetadata": {"labels": {"app.kubernetes.io/name": "prometheus",
                                               "app.kubernetes.io/instance": "k8s"}},
                    "alerting": {"alertmanagers": [{"namespace": "monitoring", "name": "alertmanager-main",
                                                    "port": "web", "apiVersion": "v2"}]},
                    "ruleSelector": {}, "ruleNamespaceSelector": {}, "serviceMonitorSelector": {},
                    "serviceMonitorNamespaceSelector": {}}),
        g.obj("monitoring.coreos.com/v1", "Alertmanager", "main", "monitoring",
              labels={"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/part-of": "kube-prometheus"},
              spec={"replicas": 3, "version": "0.28.0", "image": "quay.io/prometheus/alertmanager:v0.28.0",
                    "serviceAccountName": "alertmanager-main",
                    "podMetadata": {"labels": {"app.kubernetes.io/name": "alertmanager"}}}),
        g.obj("monitoring.coreos.com/v1", "PrometheusRule", "kube-prometheus-rules", "monitoring",
              labels={"app.kubernetes.io/part-of": "kube-prometheus", "prometheus": "k8s", "role": "alert-rules"},
              spec={"groups": groups}),
    ]


FLUENT_BIT_CONF = """\
[SERVICE]
    Flush         1
    Log_Level     info
    Parsers_File  parsers.conf

[INPUT]
    Name              tail
    Tag               kube.*
    Path              /var/log/containers/*.log
    multiline.parser  docker, cri
    Mem_Buf_Limit     5MB

[FILTER]
    Name                kubernetes
    Match               kube.*
    Merge_Log           On

[OUTPUT]
    Name            es
    Match           *
    Host            elasticsearch.logging.svc
    Port            9200
    Logstash_Format On
    Replace_Dots    On
    Retry_Limit     False
"""


def logging(g: Gen) -> list[Obj]:
    """Fluent Bit as its Helm chart installs it (fluent/helm-charts, charts/fluent-bit)."""
    labels = {"app.kubernetes.io/name": "fluent-bit", "app.kubernetes.io/instance": "fluent-bit"}
    return [
        g.obj("v1", "ConfigMap", "fluent-bit", "logging", labels=labels,
              data={"fluent-bit.conf": FLUENT_BIT_CONF, "custom_parsers.conf": "[PARSER]\n    Name docker_no_time\n"
                    "    Format json\n"}),
        g.obj("apps/v1", "DaemonSet", "fluent-bit", "logging", labels=labels, spec={
            "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": "fluent-bit",
                "containers": [container("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.2.4", 2020,
                                         volumeMounts=[{"name": "config", "mountPath": "/fluent-bit/etc/conf"},
                                                       {"name": "varlog", "mountPath": "/var/log"}])],
                "volumes": [{"name": "config", "configMap": {"name": "fluent-bit"}},
                            {"name": "varlog", "hostPath": {"path": "/var/log"}}]}}},
              status={"desiredNumberScheduled": 3, "numberReady": 3}),
    ]


FILES = {"cluster-scoped.yaml": cluster_scoped, "istio.yaml": istio, "bookinfo.yaml": bookinfo,
         "payments.yaml": payments, "legacy.yaml": legacy, "monitoring/kube-prometheus.yaml": monitoring,
         "logging/fluent-bit.yaml": logging}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--now", default="2026-11-21T06:00:00Z")
    args = ap.parse_args()
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")).astimezone(UTC)
    out: Path = args.out
    if out.exists():
        if any(out.iterdir()) and not (out / "snapshot.json").exists():
            raise SystemExit(f"{out} is not empty and holds no snapshot.json: refusing to delete it")
        shutil.rmtree(out)
    g = Gen(now)
    for rel, build in FILES.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(build(g), sort_keys=False, width=120))
    meta = {"format": "auditpack-snapshot/v1", "collected_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cluster": {"name": CLUSTER, "server": "https://203.0.113.130", "version": "v1.31.5-gke.1233000",
                        "kube_system_uid": str(uuid.uuid5(NS_UID, "kube-system")), "context": f"gke_{CLUSTER}"}}
    (out / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {sum(1 for _ in out.rglob('*.yaml'))} files to {out}")


if __name__ == "__main__":
    main()
