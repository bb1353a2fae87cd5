"""The one declarative list of resource types auditpack reads, and which collector uses each.

Sources use it to know what to list (live) or what a snapshot should contain; `auditpack rbac` will
generate the least-privilege ClusterRole from it. Keep it the single source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]  # preferred first
    kind: str
    plural: str
    namespaced: bool
    used_by: tuple[str, ...]
    field_selector: str | None = None

    @property
    def label(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _t(group: str, versions: str, kind: str, plural: str, namespaced: bool, *used_by: str,
       field_selector: str | None = None) -> ResourceType:
    return ResourceType(group, tuple(versions.split(",")), kind, plural, namespaced, used_by, field_selector)


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    # core
    _t("", "v1", "Namespace", "namespaces", False, "namespaces", "cluster"),
    _t("", "v1", "Node", "nodes", False, "cluster"),
    _t("", "v1", "Pod", "pods", True, "namespaces", "cluster", "monitoring"),
    _t("", "v1", "Service", "services", True, "ingress"),
    _t("", "v1", "ConfigMap", "configmaps", True, "ingress", "cluster", "monitoring", "authentication", "credentials"),
    # Secrets are listed only with this field selector: auditpack reads TLS certificates, nothing else.
    _t("", "v1", "Secret", "secrets", True, "ingress", field_selector="type=kubernetes.io/tls"),
    _t("", "v1", "ServiceAccount", "serviceaccounts", True, "rbac", "workload-identity"),
    # workloads
    _t("apps", "v1", "Deployment", "deployments", True, "ingress", "cluster", "monitoring"),
    _t("apps", "v1", "DaemonSet", "daemonsets", True, "cluster", "monitoring"),
    _t("apps", "v1", "StatefulSet", "statefulsets", True, "monitoring"),
    _t("apps", "v1", "ReplicaSet", "replicasets", True, "namespaces"),
    _t("batch", "v1", "Job", "jobs", True, "namespaces"),
    _t("batch", "v1", "CronJob", "cronjobs", True, "namespaces"),
    # networking
    _t("networking.k8s.io", "v1", "Ingress", "ingresses", True, "ingress"),
    _t("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, "ingress"),
    _t("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, "namespaces"),
    # Sidecar injectors (Istio, Linkerd): whether a namespace label injects a proxy when no Pod shows one.
    _t("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False,
       "cluster"),
    # RBAC
    _t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, "rbac"),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, "rbac"),
    _t("rbac.authorization.k8s.io", "v1", "Role", "roles", True, "rbac"),
    _t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, "rbac"),
    # Gateway API
    _t("gateway.networking.k8s.io", "v1,v1beta1", "Gateway", "gateways", True, "ingress"),
    _t("gateway.networking.k8s.io", "v1,v1beta1", "GatewayClass", "gatewayclasses", False, "ingress"),
    _t("gateway.networking.k8s.io", "v1,v1beta1", "HTTPRoute", "httproutes", True, "ingress"),
    # cert-manager
    _t("cert-manager.io", "v1", "Certificate", "certificates", True, "ingress"),
    _t("cert-manager.io", "v1", "Issuer", "issuers", True, "ingress"),
    _t("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", False, "ingress"),
    # CNIs
    _t("crd.projectcalico.org", "v1", "FelixConfiguration", "felixconfigurations", False, "cluster"),
    _t("projectcalico.org", "v3", "FelixConfiguration", "felixconfigurations", False, "cluster"),
    _t("crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False, "namespaces"),
    _t("crd.projectcalico.org", "v1", "NetworkPolicy", "networkpolicies", True, "namespaces"),
    _t("cilium.io", "v2", "CiliumNode", "ciliumnodes", False, "cluster"),
    _t("cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", True, "namespaces"),
    _t("cilium.io", "v2", "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", False,
       "namespaces"),
    _t("policy.networking.k8s.io", "v1alpha2", "ClusterNetworkPolicy", "clusternetworkpolicies", False,
       "namespaces"),
    # meshes
    _t("security.istio.io", "v1,v1beta1", "PeerAuthentication", "peerauthentications", True, "cluster"),
    _t("security.istio.io", "v1,v1beta1", "AuthorizationPolicy", "authorizationpolicies", True, "ingress"),
    _t("security.istio.io", "v1,v1beta1", "RequestAuthentication", "requestauthentications", True, "ingress",
       "authentication"),
    _t("networking.istio.io", "v1,v1beta1", "Gateway", "gateways", True, "ingress"),
    _t("networking.istio.io", "v1,v1beta1", "DestinationRule", "destinationrules", True, "cluster"),
    _t("policy.linkerd.io", "v1beta3,v1beta1", "Server", "servers", True, "cluster"),
    # other ingress controllers
    _t("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes", True, "ingress"),
    _t("traefik.io", "v1alpha1", "TLSOption", "tlsoptions", True, "ingress"),
    _t("traefik.io", "v1alpha1", "Middleware", "middlewares", True, "ingress", "authentication"),
    _t("projectcontour.io", "v1", "HTTPProxy", "httpproxies", True, "ingress"),
    # GKE Ingress: Google-managed certificates, frontend redirect and SSL policy, backend response headers and IAP.
    _t("networking.gke.io", "v1", "ManagedCertificate", "managedcertificates", True, "ingress"),
    _t("networking.gke.io", "v1beta1", "FrontendConfig", "frontendconfigs", True, "ingress"),
    _t("cloud.google.com", "v1,v1beta1", "BackendConfig", "backendconfigs", True, "ingress", "authentication"),
    # monitoring and detection
    _t("monitoring.coreos.com", "v1", "Prometheus", "prometheuses", True, "monitoring"),
    _t("monitoring.coreos.com", "v1", "Alertmanager", "alertmanagers", True, "monitoring"),
    # Alertmanager routing as a resource (spec.alertmanagerConfiguration); the config Secret is never read.
    _t("monitoring.coreos.com", "v1beta1,v1alpha1", "AlertmanagerConfig", "alertmanagerconfigs", True, "monitoring"),
    _t("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", True, "monitoring"),
    # Operator resources whose pods exist even when no Pod is in the input (collectors/workloads.py _operator_pods).
    _t("monitoring.coreos.com", "v1alpha1", "PrometheusAgent", "prometheusagents", True, "namespaces"),
    _t("monitoring.coreos.com", "v1", "ThanosRuler", "thanosrulers", True, "namespaces"),
    _t("aquasecurity.github.io", "v1alpha1", "VulnerabilityReport", "vulnerabilityreports", True, "vulnerabilities"),
    _t("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports", True, "posture"),
)


def find(kind: str, group: str) -> ResourceType | None:
    for t in RESOURCE_TYPES:
        if t.kind == kind and t.group == group:
            return t
    return None
