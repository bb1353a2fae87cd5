"""The audit scope: CDE / connected / out-of-scope namespaces, sites and untrusted links, approved flows, waivers.

Read from an optional scope.yaml; where it is silent, inferred from namespace labels
(`pci.auditpack.io/scope: cde|connected|out`) and node topology labels. The resolved scope records how
each decision was reached, so the report can say it.
"""

from __future__ import annotations

import fnmatch
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evidence import yamlfile
from evidence.errors import ScopeError

SCOPE_LABEL = "pci.auditpack.io/scope"
REGION_LABEL = "topology.kubernetes.io/region"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

NamespaceClass = Literal["cde", "connected", "out_of_scope", "unclassified", "system"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NamespaceScope(_Strict):
    cde: list[str] = Field(default_factory=list)
    connected: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)


class DataScope(_Strict):
    personal_data: list[str] = Field(default_factory=list)
    health_data: list[str] = Field(default_factory=list)


class Site(_Strict):
    name: str
    node_selector: dict[str, str]


class ApprovedFlow(_Strict):
    from_: str = Field(alias="from")
    to: str
    ports: list[str] = Field(default_factory=list)
    reason: str


class Waiver(_Strict):
    control: str
    subject: str = Field(description="glob over subject ids or names, e.g. 'storefront/*'")
    reason: str
    approver: str
    ticket: str
    expires: date

    def matches(self, control_id: str, subject_id: str, subject_name: str) -> bool:
        return fnmatch.fnmatchcase(control_id, self.control) and (
            fnmatch.fnmatchcase(subject_id, self.subject) or fnmatch.fnmatchcase(subject_name, self.subject)
        )


class Mfa(_Strict):
    """How multi-factor authentication shows, where the cluster alone cannot tell (PCI DSS 8.4.2, 8.4.3)."""

    # acr values of your identity provider that mean "a second factor was used" (acr values are provider-defined;
    # amr values mfa, otp, hwk and sc are recognised without this).
    acr_values: list[str] = Field(default_factory=list)
    # MFA enforced at network level before any access to these hosts (e.g. "VPN with Entra ID MFA"): 8.4.2 allows
    # MFA at network or application level; the assessor examines the statement's evidence.
    network_level: str | None = None


class ControlPlaneFiles(_Strict):
    """ConfigMaps ("namespace/name" or "namespace/name#key") holding copies of the API server's audit policy and
    EncryptionConfiguration, for clusters whose snapshot does not include the files themselves."""

    audit_policy: str | None = None
    encryption_config: str | None = None


class Entity(_Strict):
    """Who is assessed (PCI DSS applicability): a merchant or a service provider, and whether it hosts other
    entities' environments (Appendix A1 binds multi-tenant service providers only)."""

    type: Literal["merchant", "service_provider"]
    multi_tenant: bool = False
    # The rarer PCI DSS appendices and requirements, each binding only an entity that says so.
    early_tls_poi: bool = False  # A2: POS POI terminals still on SSL or early TLS
    designated_entity: bool = False  # A3: designated by an acquirer or payment brand for additional validation
    issuer: bool = False  # issuers and those supporting issuing services (e.g. 3.3.2, 3.3.3)

    def excludes(self, applies_to: str | None) -> str | None:
        """Why a requirement with this catalogue `applies_to` does not bind the declared entity; None if it does."""
        kind = "a service provider" if self.type == "service_provider" else "a merchant"
        provider = self.type == "service_provider"
        rules = {
            "service-providers": (provider, "binds service providers only"),
            "multi-tenant-providers": (provider and self.multi_tenant,
                                       "Appendix A1 binds multi-tenant service providers only"),
            "early-tls-poi": (self.early_tls_poi, "Appendix A2 binds entities whose POS POI terminals use SSL or "
                                                  "early TLS"),
            "early-tls-poi-service-providers": (provider and self.early_tls_poi,
                                                "Appendix A2 binds service providers serving such terminals"),
            "designated-entities": (self.designated_entity, "Appendix A3 binds designated entities only"),
            "issuers": (self.issuer, "binds issuers and those supporting issuing services only"),
        }
        if applies_to not in rules or rules[applies_to][0]:
            return None
        detail = {"multi-tenant-providers": " that is not multi-tenant" if provider else "",
                  "early-tls-poi": " without early-TLS POS terminals",
                  "early-tls-poi-service-providers": "" if not provider else " without early-TLS POS terminals",
                  "designated-entities": " not designated for additional validation",
                  "issuers": " that is not an issuer"}.get(applies_to, "")
        return f"Not applicable by scope: {rules[applies_to][1]}; the scope file declares {kind}{detail}."


class Scope(_Strict):
    cluster_name: str | None = None
    # None: applicability was not declared, and the report says so (no requirement is dropped on a guess).
    entity: Entity | None = None
    namespaces: NamespaceScope = Field(default_factory=NamespaceScope)
    data: DataScope = Field(default_factory=DataScope)
    sites: list[Site] = Field(default_factory=list)
    untrusted_links: list[tuple[str, str]] = Field(default_factory=list)
    certificate_expiry_days: int = Field(default=30, ge=0, le=3650)
    # Encryption in transit: where `--probe-tls` connects for a host ("IP" or "IP:port"), and host globs that
    # only internal clients reach (their certificates may come from a private or self-signed CA).
    host_addresses: dict[str, str] = Field(default_factory=dict)
    internal_hosts: list[str] = Field(default_factory=list)
    approved_flows: list[ApprovedFlow] = Field(default_factory=list)
    network_admin_groups: list[str] = Field(default_factory=list)
    mfa: Mfa = Field(default_factory=Mfa)
    control_plane_files: ControlPlaneFiles = Field(default_factory=ControlPlaneFiles)
    waivers: list[Waiver] = Field(default_factory=list)
    # Where this scope came from: a file path, or "inferred" when no file was given.
    origin: str = Field(default="inferred", exclude=True)

    def classify(self, namespace: str, labels: dict[str, str]) -> tuple[NamespaceClass, str]:
        """Classify a namespace and say why (scope file beats label beats default)."""
        classes: tuple[NamespaceClass, ...] = ("cde", "connected", "out_of_scope")
        for cls in classes:
            if namespace in getattr(self.namespaces, cls):
                return cls, f"listed as {cls} in the scope file"
        label = labels.get(SCOPE_LABEL)
        mapped = {"cde": "cde", "connected": "connected", "out": "out_of_scope", "out-of-scope": "out_of_scope"}
        if label in mapped:
            return mapped[label], f"namespace label {SCOPE_LABEL}={label}"  # type: ignore[return-value]
        return "unclassified", "not classified by the scope file or a label"

    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def digest_source(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", by_alias=True)
        if out.get("entity") is None:
            out.pop("entity", None)  # an undeclared entity keeps the digest of scope files written before the field
        return out


def load(path: Path | None) -> Scope:
    """Load and validate a scope file; None gives the inferred default scope."""
    if path is None:
        return Scope()
    raw = yamlfile.read(path, ScopeError, "scope file", "check the --scope path")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScopeError(f"scope file {path}: expected a mapping at the top level",
                         "see samples/scope.yaml for the layout")
    try:
        scope = Scope.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ScopeError(f"scope file {path}: field {field!r}: {err['msg']}",
                         "see samples/scope.yaml for the accepted fields and their types") from None
    names = [s.name for s in scope.sites]
    for a, b in scope.untrusted_links:
        for site in (a, b):
            if site not in names:
                raise ScopeError(f"scope file {path}: untrusted_links names unknown site {site!r}",
                                 f"declare it under sites (known: {', '.join(names) or 'none'})")
    scope.origin = str(path)
    return scope
