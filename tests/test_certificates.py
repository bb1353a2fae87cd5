"""The certificate inventory: TLS Secrets and cert-manager Certificates/Issuers, the hosts serving each certificate,
and unknowns (never a pass) when Secrets cannot be read."""

from __future__ import annotations

from helpers import NOW, certificate, deployment, inventory, obj, tls_secret

from evidence.collectors import certificates
from evidence.scope import Scope

NGINX = [deployment("ingress-nginx-controller", "ingress-nginx", "registry.k8s.io/ingress-nginx/controller:v1.11.3",
                    ["/nginx-ingress-controller"]),
         obj("networking.k8s.io/v1", "IngressClass", "nginx", spec={"controller": "k8s.io/ingress-nginx"})]
PROD = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def ingress(name: str, hosts: list[str], secret: str, ns: str = "shop") -> dict:
    return obj("networking.k8s.io/v1", "Ingress", name, ns, spec={
        "ingressClassName": "nginx", "tls": [{"hosts": hosts, "secretName": secret}],
        "rules": [{"host": h} for h in hosts]})


def issuer(name: str, spec: dict, kind: str = "ClusterIssuer", ns: str | None = None) -> dict:
    return obj("cert-manager.io/v1", kind, name, ns, spec=spec,
               status={"conditions": [{"type": "Ready", "status": "True"}]})


def cm_certificate(name: str, issuer_name: str, ns: str = "shop", kind: str = "ClusterIssuer", ready: bool = True,
                   renewal: str = "2026-12-20T00:00:00Z", failed: int = 0) -> dict:
    status: dict = {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "reason": "Ready" if ready else "DoesNotMatch"}],
                    "notAfter": "2027-01-20T00:00:00Z", "renewalTime": renewal}
    if failed:
        status["failedIssuanceAttempts"] = failed
        status["conditions"].append({"type": "Issuing", "status": "False", "reason": "Failed",
                                     "message": "order is invalid"})
    return obj("cert-manager.io/v1", "Certificate", name, ns, status=status, spec={
        "secretName": name, "dnsNames": ["a.example.com"], "issuerRef": {"name": issuer_name, "kind": kind}})


def by_id(*objs: dict, scope: Scope | None = None, **kw) -> dict:
    return {c.id: c for c in certificates.collect(inventory(*objs, **kw), scope or Scope(), NOW)}


def test_inventory_joins_secret_certificate_issuer_and_hosts() -> None:
    crt = certificate("a.example.com", ["a.example.com"], days=(-20, 70))
    got = by_id(*NGINX, ingress("web", ["a.example.com", "b.example.com"], "a-tls"), tls_secret("a-tls", "shop", crt),
                cm_certificate("a-tls", "letsencrypt-prod", renewal="2026-11-01T00:00:00Z", failed=2),
                issuer("letsencrypt-prod", {"acme": {"server": PROD}}))
    c = got["shop/a-tls"]
    assert c.in_use and c.managed and c.secret_found and c.x509.days_left == 70
    assert c.cert_manager.issuer.type == "acme-production" and c.cert_manager.ready
    assert c.cert_manager.renewal_overdue and c.cert_manager.failed_issuance_attempts == 2
    assert c.cert_manager.issuing_failure == "order is invalid"
    assert c.hosts == ["a.example.com:443 (Ingress shop/web)", "b.example.com:443 (Ingress shop/web)"]
    assert c.hosts_not_covered == ["b.example.com"] and c.public_hosts == ["a.example.com", "b.example.com"]
    assert c.untrusted_issuer is False
    assert {r.kind for r in c.evidence} >= {"Secret", "Certificate", "ClusterIssuer", "Ingress"}


def test_staging_and_self_signed_issuers_are_untrusted() -> None:
    staging_crt = certificate("s.example.com", ["s.example.com"], issuer_cn="(STAGING) Fake R1")
    self_crt = certificate("x.example.com", ["x.example.com"], self_signed=True)
    got = by_id(tls_secret("s-tls", "shop", staging_crt), cm_certificate("s-tls", "le-staging"),
                issuer("le-staging", {"acme": {"server": STAGING}}),
                tls_secret("x-tls", "shop", self_crt), cm_certificate("x-tls", "bootstrap", kind="Issuer"),
                issuer("bootstrap", {"selfSigned": {}}, kind="Issuer", ns="shop"))
    s = got["shop/s-tls"]
    assert s.untrusted_issuer and "staging" in s.untrusted_reason and s.cert_manager.issuer.type == "acme-staging"
    x = got["shop/x-tls"]
    assert x.untrusted_issuer and "self-signed" in x.untrusted_reason and "selfSigned issuer" in x.untrusted_reason
    assert not x.in_use  # listed in the inventory even though no entry point serves it


def test_denied_secrets_make_x509_unknown_but_the_reference_is_listed() -> None:
    got = by_id(*NGINX, ingress("web", ["a.example.com"], "a-tls"), denied=("Secret",))
    c = got["shop/a-tls"]
    reasons = {u.field: u.reason for u in c.unknown}
    assert c.x509 is None and c.secret_found is None and c.untrusted_issuer is None
    assert reasons["x509"] == reasons["hosts_not_covered"] == "permission denied: list secrets"


def test_managed_certificate_whose_secret_is_missing() -> None:
    got = by_id(cm_certificate("a-tls", "missing-issuer", ready=False))
    c = got["shop/a-tls"]
    assert c.secret_found is False and c.cert_manager.issuer.found is False
    assert "does not exist (Certificate a-tls Ready=False, DoesNotMatch)" in {u.field: u.reason for u in c.unknown}["x509"]


def test_missing_unmanaged_secret_is_not_a_certificate() -> None:
    # The host's defect (Secret missing, fake certificate served) is transit.ingress-tls's, reported once.
    assert by_id(*NGINX, ingress("web", ["a.example.com"], "nope")) == {}


def test_unparseable_tls_crt() -> None:
    broken = obj("v1", "Secret", "bad-tls", "shop", type="kubernetes.io/tls", data={"tls.crt": "bm90IGEgY2VydA=="})
    c = by_id(broken)["shop/bad-tls"]
    assert "tls.crt holds no PEM certificate" in {u.field: u.reason for u in c.unknown}["x509"]
