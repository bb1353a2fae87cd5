"""Facts: typed subjects derived from the inventory. Their JSON schema is the language controls are written in.

Every subject cites the inventory objects it came from (`evidence`) and lists what could not be
established (`unknown`, by top-level field name and reason). A rule that reads an unknown field makes
the result `inconclusive`, never `pass` or `fail`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from evidence.inventory import ObjectRef
from evidence.scope import NamespaceClass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Unknown(_Model):
    """A fact that could not be established, and why (e.g. 'permission denied: list secrets')."""

    field: str
    reason: str


class Subject(_Model):
    """Common shape of every subject."""

    TYPE: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""

    id: str = Field(description="stable identifier, unique within its subject type")
    name: str = Field(description="what the report calls this subject")
    namespace: str | None = None
    evidence: list[ObjectRef] = Field(default_factory=list)
    unknown: list[Unknown] = Field(default_factory=list)

    def mark_unknown(self, field: str, reason: str) -> None:
        if not any(u.field == field and u.reason == reason for u in self.unknown):
            self.unknown.append(Unknown(field=field, reason=reason))

    def unknown_fields(self) -> set[str]:
        return {u.field for u in self.unknown}


# --- ingress hosts -------------------------------------------------------------------------------------

class CertificateFacts(_Model):
    """A parsed X.509 leaf certificate (from the public part of a kubernetes.io/tls Secret)."""

    subject: str
    issuer: str
    serial: str
    sans: list[str]
    not_before: datetime
    not_after: datetime
    days_left: int = Field(description="whole days from the evaluation time to notAfter (negative if expired)")
    expired: bool
    key_type: Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "other"]
    key_size: int
    signature_algorithm: str
    weak: bool = Field(description="RSA < 2048, EC < 256, DSA, or a SHA-1/MD5 signature")
    self_signed: bool = Field(description="issuer DN equals subject DN")
    chain_length: int = Field(description="certificates in tls.crt, leaf included")
    chain_complete: bool = Field(description="every certificate in the chain is signed by the next one")
    staging_issuer: bool = Field(description="issued by a known staging/test CA (e.g. Let's Encrypt staging)")
    fake_certificate: bool = Field(description="the ingress-nginx 'Kubernetes Ingress Controller Fake Certificate'")
    fingerprint_sha256: str
    chain_fingerprints: list[str] = Field(default_factory=list,
                                          description="SHA-256 of every certificate in tls.crt, leaf first")


class TLSPolicy(_Model):
    """The controller's TLS settings for a host as configured (annotation > ConfigMap/CRD > built-in default)."""

    controller: str
    protocols: list[str]
    protocols_source: str
    weak_protocols: list[str]
    ciphers: str | None = None
    ciphers_source: str = ""
    weak_ciphers: list[str] = Field(default_factory=list,
                                    description="configured suites that are RC4, 3DES, NULL, EXPORT, MD5 or CBC-SHA1")
    hsts: bool | None = None
    hsts_source: str = ""
    https_redirect: bool = Field(description="plain-HTTP requests are redirected to HTTPS (or not served)")
    https_redirect_source: str


class TLSProbeFacts(_Model):
    """What a live TLS handshake showed (auditpack collect --probe-tls); stored as a TLSProbe evidence object."""

    address: str | None = Field(description="IP or name connected to, and how it was chosen")
    address_source: str = ""
    connect_port: int = Field(description="port connected to (the entry point's, unless an address mapping moved it)")
    reachable: bool
    error: str | None = None
    protocol: str | None = Field(default=None, description="negotiated protocol version, e.g. TLSv1.3")
    cipher: str | None = None
    versions_accepted: list[str] = Field(default_factory=list)
    versions_refused: list[str] = Field(default_factory=list)
    versions_untested: list[str] = Field(default_factory=list,
                                         description="versions the local OpenSSL could not offer")
    weak_versions_accepted: list[str] = Field(default_factory=list, description="TLSv1 or TLSv1.1 accepted")
    served_fingerprint_sha256: str | None = None
    served_subject: str | None = None
    served_issuer: str | None = None
    served_not_after: datetime | None = None
    served_chain_length: int | None = Field(default=None, description="None when the local Python cannot see it")
    served_chain_fingerprints: list[str] = Field(default_factory=list)
    compared_with_secret: bool = Field(default=False, description="the host's Secret was read, so the served "
                                       "certificate could be compared with it")
    served_matches_secret: bool | None = Field(default=None,
                                               description="the served leaf is the leaf in the Secret's tls.crt")
    served_chain_matches_secret: bool | None = None
    hsts: str | None = Field(default=None, description="Strict-Transport-Security header of an HTTPS response")
    http_status: int | None = Field(default=None, description="status of a plain-HTTP request on port 80")
    http_location: str | None = None
    http_redirects_to_https: bool | None = None


EntryKind = Literal["Ingress", "Gateway", "IstioGateway", "IngressRoute", "HTTPProxy", "Service"]


class IngressHost(Subject):
    TYPE: ClassVar[str] = "ingress_host"
    DESCRIPTION: ClassVar[str] = (
        "One (entry point, host, port) into the cluster: an Ingress rule host, a Gateway API listener, an Istio "
        "Gateway server, a Traefik IngressRoute, a Contour HTTPProxy, or a port of a LoadBalancer/NodePort Service "
        "with no TLS-terminating proxy in front. Effective fields (https_redirect, hsts, weak_protocols, "
        "weak_ciphers) prefer what the live probe observed over what is configured.")

    kind: EntryKind = Field(default="Ingress", description="kind of the object that defines the entry point")
    host: str
    port: int
    ingress: str = Field(description="name of the object that defines the entry point (Ingress, Gateway, ...)")
    ingress_class: str | None = Field(description="IngressClass, GatewayClass or controller selector")
    controller: str | None = Field(description="ingress-nginx, traefik, istio, ... as identified from class and image")
    namespace_class: NamespaceClass
    personal_data: bool
    public: bool = Field(default=True, description="reachable from outside the organisation: not an internal name "
                         "(.local, .internal, .svc, private IP, or scope internal_hosts)")
    addresses: list[str] = Field(default_factory=list, description="load-balancer addresses from the object status")
    tls: bool = Field(description="the entry point terminates or passes through TLS for this host")
    tls_mode: str | None = Field(default=None, description="terminate, passthrough or mutual")
    secret_name: str | None
    secret_namespace: str | None = None
    secret_found: bool | None = Field(description="the named kubernetes.io/tls Secret exists")
    fallback_certificate: str | None = Field(default=None,
                                             description="what the controller serves when the Secret is missing")
    certificate_id: str | None = Field(default=None, description="id of the certificate subject this host uses")
    certificate: CertificateFacts | None = None
    san_covers_host: bool | None = None
    tls_policy: TLSPolicy | None = None
    https_redirect: bool | None = Field(default=None, description="effective: plain HTTP is redirected or not "
                                        "served (probe observation, else configuration)")
    https_redirect_source: str = ""
    hsts: bool | None = Field(default=None, description="effective: HSTS is sent (probe, else configuration)")
    hsts_source: str = ""
    weak_protocols: list[str] = Field(default_factory=list,
                                      description="effective: SSLv3/TLSv1/TLSv1.1 accepted (probe, else configuration)")
    protocols_source: str = ""
    weak_ciphers: list[str] = Field(default_factory=list)
    service_type: str | None = Field(default=None, description="LoadBalancer or NodePort (kind Service only)")
    app_tls: bool | None = Field(default=None, description="kind Service: the port was observed to speak TLS")
    app_tls_source: str = ""
    probe: TLSProbeFacts | None = None
    backends: list[str] = Field(default_factory=list, description="'service:port' the host routes to")
    backends_missing: list[str] = Field(default_factory=list,
                                        description="'service:port' backends whose Service does not exist")
    tls_source: str = Field(default="", description="what gives this host TLS, or why it has none (its own tls "
                            "section, another Ingress of the same host, a cloud certificate)")
    cloud_certificate: str | None = Field(default=None, description="certificate held by a cloud load balancer "
                                          "(ACM ARN, GKE ManagedCertificate or pre-shared certificate, Application "
                                          "Gateway certificate) instead of a Secret")
    cloud_certificate_ready: bool | None = Field(default=None, description="that cloud certificate is shown active "
                                                 "for this host by an in-cluster object (GKE ManagedCertificate)")
    cert_manager_issuer: str | None = None


# --- certificates --------------------------------------------------------------------------------------

class IssuerFacts(_Model):
    name: str
    kind: str = Field(description="Issuer or ClusterIssuer")
    found: bool
    type: Literal["acme-production", "acme-staging", "acme", "self-signed", "ca", "vault", "venafi", "other",
                  "unknown"]
    acme_server: str | None = None
    ready: bool | None = None


class CertManagerFacts(_Model):
    """The cert-manager Certificate that issues the Secret."""

    name: str
    ready: bool | None
    ready_reason: str | None = None
    ready_message: str | None = None
    not_after: datetime | None = None
    renewal_time: datetime | None = None
    renewal_overdue: bool = Field(description="renewalTime has passed and the certificate was not renewed")
    failed_issuance_attempts: int = 0
    last_failure_time: datetime | None = None
    issuing_failure: str | None = None
    dns_names: list[str] = Field(default_factory=list)
    issuer: IssuerFacts | None = None


class CertificateSubject(Subject):
    TYPE: ClassVar[str] = "certificate"
    DESCRIPTION: ClassVar[str] = (
        "One TLS certificate, keyed by its Secret: a kubernetes.io/tls Secret, the cert-manager Certificate that "
        "issues it and its Issuer, and the entry points that serve it (the PCI DSS 4.2.1.1 inventory).")

    secret_name: str
    secret_found: bool | None = Field(description="the kubernetes.io/tls Secret exists")
    x509: CertificateFacts | None = None
    cert_manager: CertManagerFacts | None = None
    managed: bool = Field(description="issued by a cert-manager Certificate")
    untrusted_issuer: bool | None = Field(description="self-signed, from a staging/test CA or a selfSigned issuer, "
                                          "or the controller's fake certificate")
    untrusted_reason: str = ""
    hosts: list[str] = Field(default_factory=list, description="'host:port (Kind namespace/name)' serving it")
    host_names: list[str] = Field(default_factory=list)
    public_hosts: list[str] = Field(default_factory=list)
    hosts_not_covered: list[str] = Field(default_factory=list, description="host names its SANs do not cover")
    in_use: bool = Field(description="served by at least one entry point")
    inventoried: bool | None = Field(default=None, description=(
        "the inventory holds its issuer, key and validity: the Secret exists and its tls.crt parses as X.509"))
    inventory_gap: str = Field(default="", description="why it is not inventoried")


# --- encryption inside the cluster ---------------------------------------------------------------------

class WorkloadTransit(_Model):
    workload: str = Field(description="Kind/name of the top owner")
    pods: int
    nodes: list[str]
    dataplane: Literal["sidecar", "ambient", "linkerd", "none"]
    enrolment_source: str
    mtls_mode: str = Field(description="Istio STRICT/PERMISSIVE/DISABLE or Linkerd default inbound policy")
    mtls_source: str
    strict: bool = Field(description="enrolled and only mutually authenticated TLS is accepted, on every port")
    port_exceptions: list[str] = Field(default_factory=list)


class NamespaceTransit(Subject):
    TYPE: ClassVar[str] = "namespace_transit"
    DESCRIPTION: ClassVar[str] = (
        "How the traffic of one namespace is protected inside the cluster: node-to-node encryption on the untrusted "
        "links its pods use, or mesh mTLS (Istio PeerAuthentication, Linkerd) on all its workloads.")

    scope_class: NamespaceClass
    card_data: bool = Field(description="cde or connected")
    personal_data: bool
    sensitive: bool = Field(description="holds card data or personal/health data")
    pods: int
    placement_known: bool = Field(description="Pods with nodeName were read (else every node is assumed)")
    nodes: list[str]
    sites: list[str]
    untrusted_links: list[str] = Field(description="untrusted site links its traffic can cross, 'a <-> b'")
    nodes_unencrypted: list[str] = Field(description="nodes at either end of those links without active encryption")
    node_encryption_mechanism: str | None = None
    node_encryption_covers: bool = Field(description="every node at both ends of those links encrypts (or there are "
                                         "no such links)")
    node_encryption_reason: str
    mesh: str | None = Field(default=None, description="istio, linkerd or both, when any workload here is enrolled")
    workloads: list[WorkloadTransit] = Field(default_factory=list)
    workloads_not_strict: list[str] = Field(default_factory=list)
    destination_rules_disable: list[str] = Field(default_factory=list,
                                                 description="DestinationRules with tls.mode DISABLE for hosts here")
    strict_mtls_all: bool = Field(description="every workload is enrolled with STRICT mTLS and no DestinationRule "
                                  "disables TLS to it")
    mesh_installed: bool = Field(default=False, description="a service mesh (Istio or Linkerd control plane, "
                                 "injector webhook, proxies or mesh policies) is present in the cluster")
    plaintext_paths: list[str] = Field(default_factory=list, description="workloads here that accept plain text "
                                       "(PERMISSIVE or a port exception) while workloads outside the mesh exist "
                                       "that can send to them")
    peer_authentications_unmatched: list[str] = Field(default_factory=list, description="workload-selector "
                                                      "PeerAuthentications here that select no pod")
    sites_assumption: str | None = Field(default=None, description="how sites were inferred when the scope "
                                         "declares none; a verdict on node encryption rests on it")
    mtls_reason: str
    protected: bool = Field(description="node encryption covers its links or STRICT mTLS covers every workload")
    protected_by: str = Field(description="'no untrusted links', 'node encryption', 'mTLS', both, or 'none'")
    reason: str


# --- namespaces ----------------------------------------------------------------------------------------

class WorkloadSegmentation(_Model):
    """One workload's isolation and what it admits, from the reachability engine (not from policy shape)."""

    name: str = Field(description="'Deployment/web', 'Pod/name' for a bare pod, 'Prometheus/k8s' for an operator's")
    pods: int
    derived: bool = Field(description="its pods were not observed; they come from its template (or its operator)")
    ingress_isolated: bool = Field(description="every pod of it is selected by an Ingress policy")
    egress_isolated: bool = Field(description="every pod of it is selected by an Egress policy")
    admits_any_pod: list[str] = Field(description="ports every pod of the cluster (any namespace, any labels) may "
                                      "connect to ('all', 'TCP 8080'); empty: none")
    admits_internet: list[str] = Field(description="ports every public address may connect to")
    reaches_any_pod: list[str] = Field(description="ports it may connect to on every pod of the cluster")
    reaches_internet: list[str] = Field(description="ports it may connect to on every public address")
    open_policies: list[str] = Field(description="policies whose rules admit every pod or every address to it, or "
                                     "let it reach them")
    ingress_from_namespaces: list[str] = Field(description="other namespaces with a pod that can connect to it")
    ingress_from_external: list[str] = Field(description="external CIDRs that can connect to it")
    host_network: bool = Field(description="spec.hostNetwork: most CNIs do not apply pod NetworkPolicies to it")
    host_ports: list[str] = Field(description="ports bound on the node ('TCP 8080'): hostPort, or any container "
                                  "port of a hostNetwork pod")


class NamespaceFacts(Subject):
    TYPE: ClassVar[str] = "namespace"
    DESCRIPTION: ClassVar[str] = "A namespace with its scope class and NetworkPolicy coverage."

    scope_class: NamespaceClass
    scope_reason: str
    in_scope: bool = Field(description="cde or connected (or unclassified when no scope was declared)")
    personal_data: bool
    labels: dict[str, str]
    pod_security_enforce: str | None
    network_policies: int
    default_deny_ingress: bool
    default_deny_egress: bool
    default_deny_policies: list[str]
    pods: int
    pods_not_selected: list[str] = Field(description="pods selected by no NetworkPolicy, as Kind/name of owner")
    allow_all_ingress_policies: list[str]
    allow_all_egress_policies: list[str]
    policies_enforced: bool | None = Field(default=None, description="the CNI enforces NetworkPolicy")
    enforcement_reason: str = ""
    ingress_from_namespaces: list[str] = Field(default_factory=list,
                                               description="other namespaces with some pod that can reach a pod here")
    egress_to_namespaces: list[str] = Field(default_factory=list)
    ingress_from_external: list[str] = Field(default_factory=list, description="external CIDRs that can connect in")
    egress_to_internet: list[str] = Field(default_factory=list,
                                          description="public CIDRs some pod here may connect to (private ranges removed)")
    egress_to_internet_unrestricted: bool = Field(default=False,
                                                  description="some pod here may connect to every public address")
    # What the namespace does by default, from the engine: a new pod here whose labels no policy names specifically.
    # default_deny_* hold when that pod is isolated and admits (reaches) neither every pod of the cluster nor every
    # public address on every port.
    baseline_ingress_isolated: bool = Field(default=False, description="a new pod here is isolated for ingress")
    baseline_egress_isolated: bool = Field(default=False, description="a new pod here is isolated for egress")
    baseline_ingress_admits: list[str] = Field(default_factory=list, description="what a new pod here admits on "
                                               "every port: 'every pod in the cluster', 'every public address'")
    baseline_egress_reaches: list[str] = Field(default_factory=list, description="what a new pod here may reach on "
                                               "every port: 'every pod in the cluster', 'every public address'")
    baseline_ingress_policies: list[str] = Field(default_factory=list, description="the policies whose ingress "
                                                 "rules open the default to everyone")
    baseline_egress_policies: list[str] = Field(default_factory=list, description="the policies whose egress rules "
                                                "open the default to everyone")
    open_ingress_workloads: list[str] = Field(default_factory=list, description="workloads admitting every pod or "
                                              "every public address on every port, with the policies doing it")
    open_egress_workloads: list[str] = Field(default_factory=list, description="workloads that may reach every pod "
                                             "or every public address on every port, with the policies doing it")
    policies_selecting_nothing: list[str] = Field(default_factory=list, description="NetworkPolicies here whose "
                                                  "podSelector selects no pod (usually a label typo)")
    host_network_workloads: list[str] = Field(default_factory=list, description="workloads with hostNetwork pods")
    host_port_workloads: list[str] = Field(default_factory=list, description="workloads binding node ports, as "
                                           "'Kind/name (TCP 8080)'")
    workloads: list[WorkloadSegmentation] = Field(default_factory=list,
                                                  description="per workload, for in-scope namespaces")


class PolicyWriter(_Model):
    subject: str = Field(description="'Group oidc:network', 'User alice', 'ServiceAccount ns/name'")
    binding: str
    role: str
    scope: str = Field(description="'cluster-wide' or 'namespace <ns>'")
    verbs: list[str]
    approved: bool = Field(description="a group listed in scope.network_admin_groups")
    system: bool = Field(description="a Kubernetes built-in (bootstrap binding or system:masters): reported, "
                                     "not counted against the control")


class NetworkPolicyAccess(Subject):
    TYPE: ClassVar[str] = "network_policy_access"
    DESCRIPTION: ClassVar[str] = ("Who can create, update, patch or delete NetworkPolicies (RBAC with aggregation and "
                                  "wildcards), against the network team's groups in the scope file.")

    admin_groups: list[str] = Field(description="scope.network_admin_groups")
    writers: list[PolicyWriter]
    unapproved: list[str] = Field(description="non-system writers outside the network team, with their binding")


class CdeFlow(Subject):
    TYPE: ClassVar[str] = "cde_flow"
    DESCRIPTION: ClassVar[str] = ("A connection allowed into a CDE workload from outside the CDE (another namespace's "
                                  "workload or an external address range), computed from the NetworkPolicies.")

    src: str = Field(description="'ns/name[Kind]' or a CIDR")
    dst: str
    src_namespace: str | None
    dst_namespace: str
    external: bool
    src_scope_class: str
    ports: list[str] = Field(description="allowed protocol/port ranges, e.g. 'TCP 8080', or 'all'")
    approved: bool = Field(description="an approved flow in the scope file covers every allowed port")
    approval: str | None = Field(description="the business reason of the approved flow")
    unapproved_ports: list[str]
    policies: list[str] = Field(description="NetworkPolicies (ns/name) whose ingress rules admit the flow")
    rules: list[str] = Field(default_factory=list,
                             description="each admitting rule: 'ns/name ingress[i]: ports' (i counts from 0)")
    unjustified_policies: list[str] = Field(description="of those, the ones without a justification annotation")
    destination_isolated: bool = Field(description="some policy selects the destination for ingress")
    policies_enforced: bool | None = None
    enforcement_reason: str = ""


# --- cluster -------------------------------------------------------------------------------------------

class CNIFacts(_Model):
    name: str
    enforces_network_policy: bool
    reason: str


class NodeEncryptionState(_Model):
    """Whether one node encrypts its pod traffic, and the object field that shows it."""

    node: str
    site: str | None = None
    active: bool
    proof: str = Field(description="e.g. 'Node annotation projectcalico.org/WireguardPublicKey present'")


class NodeEncryption(_Model):
    mechanism: str | None = Field(description="wireguard, ipsec, or None when not configured")
    configured: bool
    configured_source: str
    nodes_active: list[str]
    nodes_inactive: list[str]
    nodes: list[NodeEncryptionState] = Field(default_factory=list, description="per-node state and its proof")
    host_traffic: bool | None = Field(default=None,
                                      description="host-network traffic is encrypted too (Cilium encrypt-node)")


class SiteFacts(_Model):
    name: str
    nodes: list[str]


class LinkFacts(_Model):
    a: str
    b: str
    untrusted: bool
    encrypted: bool
    unencrypted_nodes: list[str]
    nodes_a: list[str] = Field(default_factory=list)
    nodes_b: list[str] = Field(default_factory=list)
    node_pairs: int = Field(default=0, description="node pairs that talk across this link")
    unencrypted_pairs: int = Field(default=0, description="pairs where at least one end does not encrypt")


class AuditConfig(_Model):
    """kube-apiserver audit flags (cluster-facts.md E.1)."""

    policy_file: str | None = None
    log_path: str | None = Field(default=None, description="'-' means stdout")
    log_maxage_days: int | None = Field(default=None, description="days rotated files are kept; 0 or unset: no limit")
    log_maxbackup: int | None = None
    log_maxsize_mb: int | None = None
    webhook_config: str | None = None


class ClusterFacts(Subject):
    TYPE: ClassVar[str] = "cluster"
    DESCRIPTION: ClassVar[str] = "The cluster as a whole: CNI, node-to-node encryption, sites and links."

    kubernetes_version: str | None
    nodes: list[str]
    cni: CNIFacts | None = None
    node_encryption: NodeEncryption | None = None
    sites: list[SiteFacts]
    sites_spanned: int
    links: list[LinkFacts]
    untrusted_links: int
    untrusted_links_unencrypted: int
    apiserver_visible: bool
    apiserver_flags: dict[str, str] = Field(default_factory=dict)
    audit_logging: bool | None = None
    secrets_encryption_configured: bool | None = None
    platform: Literal["self-managed", "eks", "gke", "aks", "unknown"] = Field(
        default="unknown", description="who runs the control plane, from node labels, provider IDs and the "
        "kube-apiserver Pod")
    platform_source: str = ""
    apiserver_flags_source: str | None = Field(default=None, description="the kube-apiserver Pod (what runs) or the "
                                               "kubeadm-config ConfigMap (what kubeadm renders)")
    audit: AuditConfig | None = None
    secrets_encryption_source: str = ""
    audit_policy_source: str | None = Field(default=None, description="where the audit policy was read (the "
                                            "snapshot, or a ConfigMap the scope names)")
    audit_policy_gaps: list[str] = Field(default_factory=list, description="what the audit policy does not record "
                                         "(Secrets, RBAC changes, exec/attach, ServiceAccount tokens); unknown when "
                                         "the policy is not visible")
    encryption_config_source: str | None = Field(default=None, description="where the EncryptionConfiguration was "
                                                 "read; None when it is not visible")
    secrets_first_provider: str | None = Field(default=None, description="the provider that encrypts new Secrets "
                                               "(identity = plain text); None when the configuration is not visible")
    encryption_config_unseen: bool = Field(default=False, description="--encryption-provider-config is set but the "
                                           "file is not visible, so its providers cannot be judged")


# --- monitoring ----------------------------------------------------------------------------------------

class LogOutput(_Model):
    """Where a log shipper sends logs, and how (from its configuration)."""

    plugin: str = Field(description="e.g. es, loki, http, forward, elasticsearch, s3")
    destination: str | None = Field(default=None, description="host or URL host the logs go to")
    tls: bool | None = Field(default=None, description="TLS on the connection (None: not determinable)")
    authenticated: bool | None = Field(default=None, description="credentials are configured for the destination")
    in_cluster: bool | None = Field(default=None, description="the destination is a Service of this cluster")


class LogShipper(_Model):
    name: str
    product: str
    desired: int
    ready: int
    nodes_covered: list[str]
    nodes_missing: list[str]
    output_configured: bool | None
    outputs: list[LogOutput] = Field(default_factory=list, description="remote outputs read from the configuration")


class LogStore(_Model):
    """A central log store and its retention (cluster-facts.md E.4)."""

    name: str
    product: str
    config_source: str | None = None
    retention_known: bool = Field(description="the retention settings could be read")
    retention_enabled: bool | None = None
    retention_days: float | None = Field(default=None, description="None with retention_known: kept forever")
    immediately_available_days: float | None = Field(default=None, description="days that can be queried at once")
    retention_source: str = ""
    durable_storage: bool | None = Field(default=None, description="the store's data survives its pods: object "
                                         "storage or a PersistentVolumeClaim (false: emptyDir, hostPath or the "
                                         "container's own filesystem; None: not read)")
    storage_source: str = ""


class AlertRouting(_Model):
    """Where Alertmanager sends alerts, when its configuration is visible (AlertmanagerConfig resources)."""

    alertmanager: str
    source: str
    root_receiver: str | None = None
    receivers: list[str] = Field(default_factory=list)
    receivers_without_integrations: list[str] = Field(default_factory=list,
                                                      description="receivers with no email, chat, pager or webhook")
    root_delivers: bool = Field(description="the receiver that catches every alert sends it somewhere")


class ComponentAlerts(_Model):
    component: str = Field(description="cni, log-shipper, ids or certificate-expiry")
    deployed: str | None = Field(default=None, description="what was found (e.g. calico, fluent-bit, falco)")
    alerts: list[str] = Field(default_factory=list, description="alerting rules, evaluated by a Prometheus, that watch it")


class IDSFacts(_Model):
    """A runtime intrusion-detection DaemonSet (cluster-facts.md E.6)."""

    name: str
    product: str
    desired: int
    ready: int
    nodes_covered: list[str]
    nodes_missing: list[str]
    outputs: list[str] = Field(default_factory=list, description="enabled outputs (stdout, syslog, http, ...)")
    output_beyond_stdout: bool | None = Field(default=None, description="alerts leave the node: http, program or gRPC "
                                              "output, or Falcosidekick")


class MonitoringFacts(Subject):
    TYPE: ClassVar[str] = "monitoring"
    DESCRIPTION: ClassVar[str] = "Cluster monitoring and logging: Prometheus, Alertmanager, log shippers."

    prometheus: list[str]
    prometheus_retention: str | None
    alertmanager: list[str]
    alert_rules: int
    log_shippers: list[LogShipper]
    nodes: list[str]
    nodes_without_log_shipper: list[str]
    prometheus_retention_days: float | None = Field(default=None, description="metrics retention, in days")
    log_stores: list[LogStore] = Field(default_factory=list, description="central log stores found in the cluster")
    alert_routing: AlertRouting | None = None
    security_alerts: list[ComponentAlerts] = Field(default_factory=list)
    components_without_alerts: list[str] = Field(default_factory=list, description="deployed security components "
                                                 "no evaluated alerting rule watches")
    ids: list[IDSFacts] = Field(default_factory=list, description="runtime intrusion detection DaemonSets (Falco, ...)")
    audit_log_path: str | None = Field(default=None, description="kube-apiserver --audit-log-path, when a file")
    audit_log_shipped_by: list[str] = Field(default_factory=list, description="log shippers on the control-plane "
                                            "nodes that mount the audit log's directory")
    audit_webhook: bool | None = Field(default=None, description="--audit-webhook-config-file is set")
    plaintext_log_outputs: list[str] = Field(default_factory=list, description="shipper outputs that send logs "
                                             "without TLS to a destination outside the cluster")
    health_data_in_scope: bool = Field(default=False, description="the scope declares health-data namespaces "
                                       "(HSLF-FS 2016:40 applies)")


# --- access and authentication (PCI DSS 7.2, 8.2.8, 8.3.1, 8.5.1; HSLF-FS 2016:40 3 kap. 15 § p. 2) -----------

class HostAuth(Subject):
    TYPE: ClassVar[str] = "host_auth"
    DESCRIPTION: ClassVar[str] = (
        "Authentication in front of one entry point (same id as its ingress_host): ingress-nginx external auth "
        "(annotation or the controller's global-auth-url), Traefik ForwardAuth, Istio RequestAuthentication with an "
        "AuthorizationPolicy that requires a token, and other routes that reach the same backend without it.")

    host: str
    port: int
    kind: str = Field(description="kind of the object that defines the entry point (Ingress, IngressRoute, ...)")
    entry: str = Field(description="'Kind namespace/name' of that object")
    controller: str | None = None
    namespace_class: NamespaceClass
    personal_data: bool
    in_scope: bool = Field(description="cde, connected or personal data (or unclassified when no scope was declared)")
    declared_public: str | None = Field(default=None, description="business reason from the annotation "
                                        "compliance.auditpack.io/public-access: meant to be reachable without login")
    auth_provider: bool = Field(default=False, description="the host serves the authentication service itself "
                                "(its backend is an oauth2-proxy), so it must be reachable without a session")
    backends: list[str] = Field(default_factory=list, description="'namespace/service:port' the host routes to")
    authenticated: bool = Field(description="an enforced authentication layer sits in front of every request")
    mechanisms: list[str] = Field(default_factory=list, description="e.g. 'ingress-nginx auth-url', "
                                  "'traefik forwardAuth ns/name', 'istio jwt', 'basic auth'")
    auth_url: str | None = None
    auth_signin: str | None = None
    auth_source: str = Field(default="", description="where the auth URL was set (annotation, ConfigMap ...)")
    basic_auth: bool = Field(default=False, description="HTTP basic/digest auth (a single, static factor)")
    response_headers: list[str] = Field(default_factory=list,
                                        description="headers copied from the auth response to the upstream")
    authorization_forwarded: bool | None = Field(default=None, description="the application receives the "
                                                 "identity token: the auth service sets Authorization and the "
                                                 "proxy forwards it (auth-response-headers / authResponseHeaders)")
    proxy: str | None = Field(default=None, description="id of the auth_proxy behind the auth URL")
    mfa_claim_required: str | None = Field(default=None, description="an enforced Istio AuthorizationPolicy admits "
                                           "only tokens whose amr/acr claim shows a second factor (the claim and "
                                           "values)")
    mfa_network_declared: str | None = Field(default=None, description="the scope's statement that MFA is "
                                             "enforced at network level before these hosts (scope mfa.network_level)")
    auth_gaps: list[str] = Field(default_factory=list, description="why authentication is missing or not enforced")
    bypass_routes: list[str] = Field(default_factory=list, description="other routes or exposed Services that reach "
                                     "the same backend without authentication")


class AuthProxy(Subject):
    TYPE: ClassVar[str] = "auth_proxy"
    DESCRIPTION: ClassVar[str] = (
        "An oauth2-proxy Deployment with its effective settings (flags > OAUTH2_PROXY_* env > config file; lists are "
        "plural in env and config: OAUTH2_PROXY_EMAIL_DOMAINS, email_domains), and the hosts it protects.")

    workload: str
    version: str | None = None
    provider: str | None = None
    hosts: list[str] = Field(default_factory=list, description="host_auth names whose auth URL leads here")
    config_file: str | None = Field(default=None, description="'ConfigMap ns/name key' read for --config")
    set_authorization_header: bool = Field(description="Authorization: Bearer <ID token> set on the auth response")
    set_xauthrequest: bool
    pass_access_token: bool
    cookie_secure: bool
    cookie_expire: str
    cookie_expire_seconds: int = Field(description="session lifetime; 0 means a browser-session cookie")
    cookie_refresh: str
    cookie_refresh_seconds: int = Field(description="session revalidated with the IdP after this; 0 = never")
    email_domains: list[str] = Field(default_factory=list)
    any_email_domain: bool = Field(description="email domain '*': any user the IdP authenticates is let in")
    allowed_groups: list[str] = Field(default_factory=list)
    restricted_users: bool = Field(description="allowed groups, an authenticated-emails file, or specific "
                                   "email domains restrict who gets in")
    skip_auth_routes: list[str] = Field(default_factory=list, description="--skip-auth-route and --skip-auth-regex")
    skip_auth_preflight: bool = False
    skip_jwt_bearer_tokens: bool = False
    trusted_ips: list[str] = Field(default_factory=list, description="source IPs that skip authentication")
    reverse_proxy: bool = False
    trusted_proxy_ips: list[str] = Field(default_factory=list)
    forwarded_headers_from_anyone: bool = Field(description="--reverse-proxy without --trusted-proxy-ip: "
                                                "X-Forwarded-* are trusted from every source")
    skip_auth_strip_headers: bool = True
    ssl_insecure_skip_verify: bool = False
    insecure_oidc: list[str] = Field(default_factory=list, description="insecure-oidc-* options set to true")
    settings: dict[str, str] = Field(default_factory=dict, description="setting -> 'value (source)'")


class GrantFacts(_Model):
    """What one binding grants a subject (directly, or through a group it is always in)."""

    binding: str
    role: str
    scope: str = Field(description="'cluster-wide' or 'namespace <name>'")
    via: str | None = Field(default=None, description="the group it comes through (e.g. system:serviceaccounts)")
    bootstrap: bool = Field(description="a default binding the API server maintains (kubernetes.io/bootstrapping)")
    role_found: bool = True
    rules: list[str] = Field(default_factory=list, description="'verbs resources' per rule")


class RBACSubject(Subject):
    TYPE: ClassVar[str] = "rbac_subject"
    DESCRIPTION: ClassVar[str] = (
        "A User, Group or ServiceAccount named in a RoleBinding or ClusterRoleBinding (plus the groups every request "
        "carries), with its effective permissions: ClusterRole aggregation, wildcards, and for ServiceAccounts the "
        "grants to system:serviceaccounts[:<ns>] and system:authenticated.")

    kind: Literal["User", "Group", "ServiceAccount"]
    principal: str = Field(description="the user, group or ServiceAccount name")
    builtin: bool = Field(description="a Kubernetes component identity: system:* users and groups, or granted only "
                          "through the API server's default bindings")
    public: bool = Field(description="system:anonymous, system:unauthenticated, system:authenticated or "
                         "system:serviceaccounts: whatever is granted here is granted to everyone (or every SA)")
    grants: list[GrantFacts] = Field(default_factory=list)
    non_default_grants: list[str] = Field(default_factory=list,
                                          description="direct grants not made by the API server's default bindings")
    cluster_admin: bool = Field(description="every verb on every resource in every namespace (cluster-admin or equal)")
    cluster_admin_via: list[str] = Field(default_factory=list)
    full_access_namespaces: list[str] = Field(default_factory=list, description="namespaces with every verb on every "
                                              "resource (e.g. cluster-admin or admin bound by a RoleBinding)")
    cde_namespaces: list[str] = Field(default_factory=list, description="the CDE namespaces checked below")
    cde_secret_read: list[str] = Field(default_factory=list, description="CDE namespaces where it can get, list or "
                                       "watch Secrets, with the binding")
    cde_exec: list[str] = Field(default_factory=list, description="CDE namespaces where it can exec into pods "
                                "(pods/exec create, or get for WebSocket clients)")
    escalate: list[str] = Field(default_factory=list, description="escalate on roles/clusterroles")
    bind: list[str] = Field(default_factory=list, description="bind on roles/clusterroles")
    impersonate: list[str] = Field(default_factory=list, description="impersonate users, groups or ServiceAccounts")
    workloads: list[str] = Field(default_factory=list, description="ServiceAccounts: workloads that run as it")
    collector: bool = Field(default=False, description="the identity this pack was collected as (live runs)")
    collector_secret_read: list[str] = Field(
        default_factory=list, description="the collector's own CDE Secret access through roles no broader than "
        "`auditpack rbac` generates (list TLS Secrets, or get named ones): explained here, not in cde_secret_read; "
        "a broader role stays in cde_secret_read")


class WorkloadIdentity(Subject):
    TYPE: ClassVar[str] = "workload_identity"
    DESCRIPTION: ClassVar[str] = (
        "The ServiceAccount one workload runs as, whether its API token is mounted into the pods (pod spec "
        "automountServiceAccountToken, else the ServiceAccount's, else true), and what that token may do.")

    workload: str = Field(description="Kind/name of the top owner")
    namespace_class: NamespaceClass
    service_account: str
    service_account_found: bool | None = None
    automount: bool
    automount_source: str
    token_permissions: list[str] = Field(default_factory=list, description="rules granted to the ServiceAccount by "
                                         "non-default bindings: 'rule (scope, binding)'")
    token_cluster_admin: bool = False


# --- data at rest (PCI DSS 8.3.2, 8.6.2; GDPR 32(1)(a)) -----------------------------------------------

class NamespaceCredentials(Subject):
    TYPE: ClassVar[str] = "namespace_credentials"
    DESCRIPTION: ClassVar[str] = (
        "Credentials written as plain values in one namespace: container env values, container arguments and "
        "ConfigMap keys that the redactor masked on collection (by name or by shape). Only where they are is kept; "
        "the values never enter the pack.")

    namespace_class: NamespaceClass
    in_scope: bool
    env_values: list[str] = Field(default_factory=list, description="'Kind/name container c env NAME'")
    arguments: list[str] = Field(default_factory=list, description="'Kind/name container c argument --flag'")
    configmap_keys: list[str] = Field(default_factory=list, description="'ConfigMap/name key KEY'")
    total: int = 0


# --- posture (PCI DSS 2.2, 6.3.3, 11.3.1) --------------------------------------------------------------

class NamespacePosture(Subject):
    TYPE: ClassVar[str] = "namespace_posture"
    DESCRIPTION: ClassVar[str] = (
        "Pod Security Admission for one namespace (the enforce label, else the cluster default when it can be "
        "seen) and the summary of its policy-engine reports (wgpolicyk8s.io PolicyReport, e.g. Kyverno).")

    namespace_class: NamespaceClass
    in_scope: bool
    enforce: str | None = Field(description="effective enforce level: privileged, baseline or restricted")
    enforce_source: str
    enforce_version: str | None = None
    audit: str | None = None
    warn: str | None = None
    policy_reports: int = 0
    policy_pass: int = 0
    policy_fail: int = 0
    policy_warn: int = 0
    policy_error: int = 0
    policy_skip: int = 0
    failing_policies: list[str] = Field(default_factory=list, description="'policy/rule: Kind/name (severity)'")


class ContainerScan(_Model):
    container: str
    image: str
    report: str | None = Field(default=None, description="VulnerabilityReport name")
    scanned_at: datetime | None = None
    age_days: int | None = None
    critical: int = 0
    high: int = 0
    critical_fixable: int = 0


class ImageScan(Subject):
    TYPE: ClassVar[str] = "image_scan"
    DESCRIPTION: ClassVar[str] = (
        "One workload's container images and their trivy-operator VulnerabilityReports: when each was scanned, and "
        "critical vulnerabilities that have a fixed version.")

    workload: str
    namespace_class: NamespaceClass
    scan_required: bool = Field(description="in scope (cde, connected, system, or unclassified when no scope was "
                                "declared)")
    scanner: str | None = Field(description="the in-cluster scanner found (trivy-operator), or None")
    containers: list[ContainerScan] = Field(default_factory=list)
    unscanned: list[str] = Field(default_factory=list, description="containers without a report")
    oldest_scan_days: int | None = None
    critical: int = 0
    critical_fixable_overdue: list[str] = Field(default_factory=list, description="critical, fixed version "
                                                "available, published more than 30 days ago")
    critical_fixable_recent: list[str] = Field(default_factory=list)


# --- registry ------------------------------------------------------------------------------------------
# Every subject type, by its TYPE. Add a new subject class above and list it here.
SUBJECT_TYPES: dict[str, type[Subject]] = {
    cls.TYPE: cls for cls in (
        ClusterFacts,
        NamespaceFacts,
        CdeFlow,
        NetworkPolicyAccess,
        IngressHost,
        CertificateSubject,
        NamespaceTransit,
        MonitoringFacts,
        HostAuth,
        AuthProxy,
        RBACSubject,
        WorkloadIdentity,
        NamespaceCredentials,
        NamespacePosture,
        ImageScan,
    )
}


class Facts(_Model):
    """All subjects of a run, by type (facts.json)."""

    as_of: datetime
    subjects: dict[str, list[dict[str, Any]]]

    def of_type(self, subject_type: str) -> list[dict[str, Any]]:
        return self.subjects.get(subject_type, [])


def schema_document() -> dict[str, Any]:
    """JSON schema of every subject type: the reference for control authors (docs/subjects.md)."""
    return {t: cls.model_json_schema() for t, cls in sorted(SUBJECT_TYPES.items())}


def _type_name(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        return str(node["$ref"]).split("/")[-1]
    if "anyOf" in node:
        parts = [_type_name(n, defs) for n in node["anyOf"]]
        return " | ".join(p for p in parts if p != "null") + (" | null" if "null" in parts else "")
    t = node.get("type")
    if t == "array":
        return f"list[{_type_name(node.get('items') or {}, defs)}]"
    if t == "object":
        return "map[string, string]" if node.get("additionalProperties") else "object"
    if "enum" in node:
        return " | ".join(repr(v) for v in node["enum"])
    if node.get("format") == "date-time":
        return "timestamp (RFC 3339 string)"
    return {"string": "string", "integer": "int", "boolean": "bool", "number": "double"}.get(str(t), str(t))


def _field_table(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, node in (schema.get("properties") or {}).items():
        desc = (node.get("description") or "").replace("|", "\\|")
        type_name = _type_name(node, defs).replace("|", "\\|")
        rows.append(f"| `{name}` | {type_name} | {desc} |")
    return rows


def schema_markdown() -> str:
    """docs/subjects.md: the fields each subject type offers to CEL rules (generated; a test keeps it current)."""
    lines = ["# Subjects: the fields controls can use", "",
             "Generated by `auditpack controls schema --format markdown`; do not edit by hand.", "",
             "A control names one subject type; its CEL `rule`, `applies_if` and `message` read `subject.<field>`",
             "and `scope.certificate_expiry_days` / `scope.network_admin_groups`. A field listed in a subject's",
             "`unknown` could not be established; a rule that reads it is `inconclusive`. `evidence` (the objects a",
             "subject was derived from) is for people and is not visible to rules.", ""]
    for t, cls in sorted(SUBJECT_TYPES.items()):
        schema = cls.model_json_schema()
        defs = schema.get("$defs", {})
        lines += [f"## `{t}`", "", cls.DESCRIPTION, "", *_field_table(schema, defs), ""]
        for name, sub in sorted(defs.items()):
            if name in ("ObjectRef", "Unknown"):
                continue
            lines += [f"### `{name}` (in `{t}`)", "", *_field_table(sub, defs), ""]
    return "\n".join(lines).rstrip() + "\n"
