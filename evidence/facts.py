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


class TLSPolicy(_Model):
    """The controller's effective TLS settings for a host (annotation > ConfigMap > built-in default)."""

    controller: str
    protocols: list[str]
    protocols_source: str
    weak_protocols: list[str]
    ciphers: str | None = None
    hsts: bool | None = None
    https_redirect: bool = Field(description="plain-HTTP requests are redirected to HTTPS")
    https_redirect_source: str


class IngressHost(Subject):
    TYPE: ClassVar[str] = "ingress_host"
    DESCRIPTION: ClassVar[str] = "One (Ingress, host, port) entry point into the cluster."

    host: str
    port: int
    ingress: str
    ingress_class: str | None
    controller: str | None = Field(description="ingress-nginx, traefik, ... as identified from class and image")
    namespace_class: NamespaceClass
    personal_data: bool
    tls: bool = Field(description="host listed under spec.tls[].hosts")
    secret_name: str | None
    secret_found: bool | None = Field(description="the named kubernetes.io/tls Secret exists")
    certificate: CertificateFacts | None = None
    san_covers_host: bool | None = None
    tls_policy: TLSPolicy | None = None
    backends: list[str] = Field(default_factory=list, description="'service:port' the host routes to")
    cert_manager_issuer: str | None = None


# --- namespaces ----------------------------------------------------------------------------------------

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
    unjustified_policies: list[str] = Field(description="of those, the ones without a justification annotation")
    destination_isolated: bool = Field(description="some policy selects the destination for ingress")
    policies_enforced: bool | None = None
    enforcement_reason: str = ""


# --- cluster -------------------------------------------------------------------------------------------

class CNIFacts(_Model):
    name: str
    enforces_network_policy: bool
    reason: str


class NodeEncryption(_Model):
    mechanism: str | None = Field(description="wireguard, ipsec, or None when not configured")
    configured: bool
    configured_source: str
    nodes_active: list[str]
    nodes_inactive: list[str]


class SiteFacts(_Model):
    name: str
    nodes: list[str]


class LinkFacts(_Model):
    a: str
    b: str
    untrusted: bool
    encrypted: bool
    unencrypted_nodes: list[str]


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


# --- monitoring ----------------------------------------------------------------------------------------

class LogShipper(_Model):
    name: str
    product: str
    desired: int
    ready: int
    nodes_covered: list[str]
    nodes_missing: list[str]
    output_configured: bool | None


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


# --- registry ------------------------------------------------------------------------------------------
# Every subject type, by its TYPE. Add a new subject class above and list it here.
SUBJECT_TYPES: dict[str, type[Subject]] = {
    cls.TYPE: cls for cls in (
        ClusterFacts,
        NamespaceFacts,
        CdeFlow,
        IngressHost,
        MonitoringFacts,
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
