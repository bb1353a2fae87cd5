"""The certificate inventory (PCI DSS 4.2.1.1): one `certificate` subject per TLS Secret, cert-manager Certificate,
or Secret an entry point names, with its X.509 facts, its issuer, its renewal state and the hosts serving it.

Certificate defects (expired, expiring, weak, untrusted issuer, names not covering a host) are judged here,
once per certificate, whatever number of hosts serve it (cluster-facts.md A.2, A.9).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evidence.collectors import ingress, x509
from evidence.facts import CertificateFacts, CertificateSubject, CertManagerFacts, IngressHost, IssuerFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.scope import Scope

TLS_TYPE = "kubernetes.io/tls"
# ACME directories of public CAs browsers trust; anything else with "staging" in it is a test CA.
PRODUCTION_ACME = ("acme-v02.api.letsencrypt.org", "acme.zerossl.com", "dv.acme-v02.api.pki.goog",
                   "api.buypass.com", "acme.ssl.com", "acme.digicert.com", "acme.sectigo.com")


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[CertificateSubject]:
    refs: dict[tuple[str, str], list[IngressHost]] = {}
    for ep in ingress.entry_points(inv, scope):
        if ep.tls and ep.secret_name:
            refs.setdefault((ep.secret_namespace or ep.namespace or "", ep.secret_name), []).append(ep)
    managed: dict[tuple[str, str], Obj] = {}
    for c in inv.objects("Certificate", "cert-manager.io"):
        secret = (c.get("spec") or {}).get("secretName")
        if secret:
            managed[(str(c["metadata"].get("namespace")), str(secret))] = c
    secrets = {(str(s["metadata"].get("namespace")), str(s["metadata"]["name"])): s
               for s in inv.objects("Secret", "") if s.get("type") == TLS_TYPE}
    keys = set(secrets) | set(managed)
    for key in refs:
        # A named Secret that is missing and unmanaged is transit.ingress-tls's finding, not a certificate.
        if key not in keys and ingress.why_secrets(inv, key[0]) is not None:
            keys.add(key)
    return [_subject(inv, ns, name, secrets.get((ns, name)), managed.get((ns, name)), refs.get((ns, name), []), as_of)
            for ns, name in sorted(keys)]


def _subject(inv: Inventory, ns: str, name: str, secret: Obj | None, cert: Obj | None, hosts: list[IngressHost],
             as_of: datetime) -> CertificateSubject:
    s = CertificateSubject(id=f"{ns}/{name}", name=f"{ns}/{name}", namespace=ns, secret_name=name,
                           secret_found=None, managed=cert is not None, untrusted_issuer=None, in_use=bool(hosts))
    if secret is not None:
        s.evidence.append(ObjectRef.of(secret))
    if cert is not None:
        s.evidence.append(ObjectRef.of(cert))
        s.cert_manager = _cert_manager(inv, s, cert, as_of)
    for ep in hosts:
        s.evidence.extend(r for r in ep.evidence[:1] if r not in s.evidence)
        s.hosts.append(f"{ep.host}:{ep.port} ({ep.kind} {ep.namespace}/{ep.ingress})")
        if ep.host not in s.host_names:
            s.host_names.append(ep.host)
        if ep.public and ep.host not in s.public_hosts:
            s.public_hosts.append(ep.host)
    # The X.509 facts, or why they are missing.
    why = ingress.why_secrets(inv, ns) if secret is None else None
    if why:
        s.mark_unknown("secret_found", why)
        s.mark_unknown("inventoried", why)
        _unknown_x509(s, why)
    elif secret is None:
        s.secret_found = False
        reason = f"Secret {ns}/{name} does not exist"
        if s.cert_manager is not None:
            reason += (f" (Certificate {s.cert_manager.name} Ready={_tri(s.cert_manager.ready)}"
                       + (f", {s.cert_manager.ready_reason}" if s.cert_manager.ready_reason else "") + ")")
        s.inventoried, s.inventory_gap = False, reason
        _unknown_x509(s, reason)
    else:
        s.secret_found = True
        crt = (secret.get("data") or {}).get("tls.crt")
        try:
            if not crt:
                raise x509.CertificateParseError("no tls.crt")
            s.x509 = x509.facts(x509.parse_chain(crt), as_of)
            s.inventoried = True
        except x509.CertificateParseError as exc:
            s.inventoried, s.inventory_gap = False, f"Secret {ns}/{name}: {exc}"
            _unknown_x509(s, s.inventory_gap)
    if s.x509 is not None:
        s.hosts_not_covered = [h for h in s.host_names if h != "*" and not _covers(s.x509, h)]
    _trust(s)
    return s


def _covers(cert: CertificateFacts, host: str) -> bool:
    return x509.host_matches(host, cert.sans) or (not cert.sans and host in cert.subject)


def _unknown_x509(s: CertificateSubject, reason: str) -> None:
    s.mark_unknown("x509", reason)
    if s.host_names:
        s.mark_unknown("hosts_not_covered", reason)


def _tri(value: bool | None) -> str:
    return "Unknown" if value is None else str(value)


def _condition(obj: Obj, ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _cert_manager(inv: Inventory, s: CertificateSubject, cert: Obj, as_of: datetime) -> CertManagerFacts:
    status, spec = cert.get("status") or {}, cert.get("spec") or {}
    ready = _condition(cert, "Ready")
    issuing = _condition(cert, "Issuing")
    renewal = _time(status.get("renewalTime"))
    facts = CertManagerFacts(
        name=str(cert["metadata"]["name"]),
        ready=None if ready is None else ready.get("status") == "True",
        ready_reason=(ready or {}).get("reason"), ready_message=(ready or {}).get("message"),
        not_after=_time(status.get("notAfter")), renewal_time=renewal,
        renewal_overdue=renewal is not None and renewal < as_of,
        failed_issuance_attempts=int(status.get("failedIssuanceAttempts") or 0),
        last_failure_time=_time(status.get("lastFailureTime")),
        issuing_failure=(issuing or {}).get("message") if (issuing or {}).get("reason") == "Failed" else None,
        dns_names=[str(d) for d in spec.get("dnsNames") or []])
    ref = spec.get("issuerRef") or {}
    if ref.get("name") and (ref.get("group") or "cert-manager.io") == "cert-manager.io":
        kind = str(ref.get("kind") or "Issuer")
        obj = inv.get(kind, None if kind == "ClusterIssuer" else s.namespace, str(ref["name"]), group="cert-manager.io")
        facts.issuer = _issuer(str(ref["name"]), kind, obj)
        if obj is not None:
            s.evidence.append(ObjectRef.of(obj))
    elif ref.get("name"):
        facts.issuer = IssuerFacts(name=str(ref["name"]), kind=f"{ref.get('kind')}.{ref.get('group')}", found=False,
                                   type="other")
    return facts


def _issuer(name: str, kind: str, obj: Obj | None) -> IssuerFacts:
    if obj is None:
        return IssuerFacts(name=name, kind=kind, found=False, type="unknown")
    spec = obj.get("spec") or {}
    ready = _condition(obj, "Ready")
    acme_server = str((spec.get("acme") or {}).get("server") or "") or None
    if acme_server:
        kind_of = "acme-staging" if "staging" in acme_server.lower() else \
            "acme-production" if any(p in acme_server for p in PRODUCTION_ACME) else "acme"
    elif "selfSigned" in spec:
        kind_of = "self-signed"
    else:
        kind_of = next((t for t in ("ca", "vault", "venafi") if t in spec), "other")
    return IssuerFacts(name=name, kind=kind, found=True, type=kind_of, acme_server=acme_server,  # type: ignore[arg-type]
                       ready=None if ready is None else ready.get("status") == "True")


def _trust(s: CertificateSubject) -> None:
    """Untrusted: self-signed leaf, staging/test CA, selfSigned or staging issuer, or the fake certificate."""
    reasons = []
    c = s.x509
    issuer = s.cert_manager.issuer if s.cert_manager else None
    if c is not None:
        if c.fake_certificate:
            reasons.append("it is the ingress controller's fake certificate")
        elif c.self_signed:
            reasons.append(f"it is self-signed (issuer equals subject: {c.issuer})")
        if c.staging_issuer:
            reasons.append(f"it comes from a staging/test CA that browsers do not trust ({c.issuer})")
    if issuer is not None and issuer.type == "acme-staging":
        reasons.append(f"cert-manager {issuer.kind} {issuer.name} uses the ACME staging server {issuer.acme_server}")
    elif issuer is not None and issuer.type == "self-signed":
        reasons.append(f"cert-manager {issuer.kind} {issuer.name} is a selfSigned issuer")
    if reasons:
        s.untrusted_issuer, s.untrusted_reason = True, "; ".join(reasons)
    elif c is not None:
        s.untrusted_issuer, s.untrusted_reason = False, f"issued by {c.issuer}"
    else:
        s.mark_unknown("untrusted_issuer", next(u.reason for u in s.unknown if u.field == "x509"))
