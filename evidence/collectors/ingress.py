"""Entry points into the cluster: one `ingress_host` subject per (entry point, host, port), with TLS coverage,
certificate, controller TLS policy and, when `--probe-tls` ran, what a live handshake showed (PCI DSS 4.2.1).

Ingress settings are resolved as ingress-nginx does: per-Ingress annotation, then the controller's ConfigMap
(found from its --configmap argument), then the built-in default (cluster-facts.md A.1, A.3). The other kinds
(Gateway API, Istio, Traefik, Contour, exposed Services) are built in `entrypoints`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from evidence.collectors import x509
from evidence.collectors.entrypoints import (
    ALL_PROTOCOLS,
    ANNOTATION_PREFIX,
    NGINX_CLASS_CONTROLLER,
    WEAK_PROTOCOLS,
    Controller,
    Env,
    cloud_ingress,
    collect_other,
    traefik_policy,
    traefik_static_redirect,
    weak_ciphers,
)
from evidence.facts import IngressHost, TLSPolicy, TLSProbeFacts
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.scope import Scope

DEFAULT_SSL_PROTOCOLS = "TLSv1.2 TLSv1.3"  # ingress-nginx default since v0.34.0
# ingress-nginx NewDefault() ssl-ciphers (all ECDHE/DHE AEAD suites).
DEFAULT_SSL_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                       "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                       "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256")
FAKE_CERTIFICATE = "the ingress-nginx self-signed 'Kubernetes Ingress Controller Fake Certificate'"
PROBE_GROUP, PROBE_KIND = "probe.auditpack.io", "TLSProbe"

# Kept importable from here: other modules and tests know these names.
__all__ = ["ANNOTATION_PREFIX", "NGINX_CLASS_CONTROLLER", "WEAK_PROTOCOLS", "Controller", "collect", "entry_points",
           "why_secrets"]


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[IngressHost]:
    subjects = entry_points(inv, scope)
    probes = {(str((p.get("spec") or {}).get("host")), int((p.get("spec") or {}).get("port") or 0)): p
              for p in inv.objects(PROBE_KIND, PROBE_GROUP)}
    probe_ran = inv.status(PROBE_KIND, PROBE_GROUP).status == "ok"
    for s in subjects:
        if s.tls and s.secret_name:
            ns = s.secret_namespace or s.namespace or ""
            s.secret_namespace = ns
            s.certificate_id = f"{ns}/{s.secret_name}"
            _certificate(inv, s, as_of)
        if probe_ran:
            _probe(s, probes.get((s.host, s.port)))
        _effective(s)
    return subjects


def entry_points(inv: Inventory, scope: Scope) -> list[IngressHost]:
    """Every entry point with what its objects configure; no certificate parsing (cheap, pure)."""
    env = Env.build(inv, scope)
    return _ingresses(env) + collect_other(env)


# --- Ingress -------------------------------------------------------------------------------------------

def _ingresses(env: Env) -> list[IngressHost]:
    inv = env.inv
    classes = {str(c["metadata"]["name"]): c for c in inv.objects("IngressClass", "networking.k8s.io")}
    default_class = next((n for n, c in classes.items() if (c["metadata"].get("annotations") or {})
                          .get("ingressclass.kubernetes.io/is-default-class") == "true"), None)
    resolved = []
    for ing in inv.objects("Ingress", "networking.k8s.io"):
        meta, spec = ing["metadata"], ing.get("spec") or {}
        annotations: dict[str, str] = dict(meta.get("annotations") or {})
        cls_name = spec.get("ingressClassName") or annotations.get("kubernetes.io/ingress.class") or default_class
        ing_class = classes.get(str(cls_name)) if cls_name else None
        class_controller = ((ing_class or {}).get("spec") or {}).get("controller")
        controller = _match_controller(env.controllers, class_controller, cls_name)
        resolved.append((ing, annotations, cls_name, ing_class, class_controller, controller))
    # ingress-nginx builds one server per host from every Ingress of its class: a host listed under spec.tls of
    # one Ingress (that also has a rule for it) is served with that certificate for the paths of all of them.
    merged = _nginx_tls_hosts(resolved)
    subjects: list[IngressHost] = []
    for ing, annotations, cls_name, ing_class, class_controller, controller in resolved:
        spec = ing.get("spec") or {}
        if controller is None:
            cloud = cloud_ingress(env, ing, annotations, str(cls_name) if cls_name else None, class_controller)
            if cloud is not None:
                for subject in cloud:
                    if ing_class:
                        subject.evidence.append(ObjectRef.of(ing_class))
                    _backends_exist(env, ing, subject)
                subjects += cloud
                continue
        tls_entries = spec.get("tls") or []
        traefik_tls = controller is not None and controller.product == "traefik" and \
            annotations.get("traefik.ingress.kubernetes.io/router.tls") == "true"
        for host, backends in _hosts(spec):
            tls_entry = next((t for t in tls_entries if host in (t.get("hosts") or [])), None)
            tls_source = f"Ingress lists {host} under spec.tls" if tls_entry is not None else \
                "Traefik router.tls annotation" if traefik_tls else ""
            sibling = None
            if tls_entry is None and not traefik_tls and controller is not None and \
                    controller.product == "ingress-nginx":
                sibling = merged.get((_controller_key(controller), host))
                if sibling is not None:
                    tls_entry = sibling[1]
                    tls_source = (f"Ingress {_name(sibling[0])} lists {host} under spec.tls, and ingress-nginx "
                                  "serves every Ingress of that host and class from one TLS server")
            covered = tls_entry is not None or traefik_tls
            if not covered:
                tls_source = (f"no Ingress of class {cls_name or '(none)'} lists {host} under spec.tls"
                              if controller is not None and controller.product == "ingress-nginx"
                              else f"{host} is not listed under spec.tls")
            subject = env.subject(
                "Ingress", ing, host, 443 if covered else 80, covered,
                ingress_class=str(cls_name) if cls_name else None,
                controller=controller.product if controller else None,
                tls_mode="terminate" if covered else None,
                secret_name=(tls_entry or {}).get("secretName"), secret_found=None, backends=backends,
                cert_manager_issuer=annotations.get("cert-manager.io/cluster-issuer")
                or annotations.get("cert-manager.io/issuer"), tls_source=tls_source)
            if sibling is not None:
                subject.secret_namespace = str(sibling[0]["metadata"].get("namespace") or "")
                subject.evidence.append(ObjectRef.of(sibling[0]))
            if ing_class:
                subject.evidence.append(ObjectRef.of(ing_class))
            if covered:
                subject.fallback_certificate = _fallback(controller)
                resolver = annotations.get("traefik.ingress.kubernetes.io/router.tls.certresolver")
                if not subject.secret_name and resolver and traefik_tls:
                    subject.mark_unknown("secret_found", f"certificate from Traefik certResolver {resolver} is kept in "
                                         "Traefik's ACME storage, not in a Secret; verify it with --probe-tls")
                elif not subject.secret_name:
                    subject.secret_found = False
            _tls_policy(env, subject, controller, annotations, class_controller)
            _backends_exist(env, ing, subject)
            subjects.append(subject)
    return subjects


def _controller_key(controller: Controller) -> tuple[str, str]:
    meta = controller.workload["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def _name(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def _nginx_tls_hosts(resolved: list[Any]) -> dict[tuple[tuple[str, str], str], tuple[Obj, dict[str, Any]]]:
    """(controller, host) -> (Ingress, tls entry) for every host an ingress-nginx Ingress serves with TLS.

    ingress-nginx takes a server's certificate from the oldest Ingress that has both a rule and a tls entry for
    the host; the other Ingresses of the host only add locations to that server (and its ssl-redirect).
    """
    out: dict[tuple[tuple[str, str], str], tuple[Obj, dict[str, Any]]] = {}
    ordered = sorted(resolved, key=lambda r: (str(r[0]["metadata"].get("creationTimestamp") or ""), _name(r[0])))
    for ing, _, _, _, _, controller in ordered:
        if controller is None or controller.product != "ingress-nginx":
            continue
        spec = ing.get("spec") or {}
        rule_hosts = {str(r.get("host")) for r in spec.get("rules") or [] if r.get("host")}
        for t in spec.get("tls") or []:
            for h in t.get("hosts") or []:
                if str(h) in rule_hosts:
                    out.setdefault((_controller_key(controller), str(h)), (ing, t))
    return out


def _backends_exist(env: Env, ing: Obj, subject: IngressHost) -> None:
    """Backends naming a Service that does not exist: the route answers 503, or whoever later creates a Service
    of that name in the namespace receives the host's traffic."""
    ns = str(ing["metadata"].get("namespace") or "default")
    st = env.inv.status("Service", "", ns)
    if st.status in ("forbidden", "error", "absent"):
        subject.mark_unknown("backends_missing", f"Services of namespace {ns} were not read ({st.status})")
        return
    annotations = dict(ing["metadata"].get("annotations") or {})
    missing = []
    for b in subject.backends:
        name, _, port = b.rpartition(":")
        if port == "use-annotation" and f"alb.ingress.kubernetes.io/actions.{name}" in annotations:
            continue  # an AWS Load Balancer Controller action (redirect, fixed response), not a Service
        if name and name != "None" and env.inv.get("Service", ns, name, group="") is None:
            missing.append(b)
    subject.backends_missing = sorted(set(missing))


def _hosts(spec: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(host, backends) per rule; a rule without host matches every host ('*')."""
    by_host: dict[str, list[str]] = {}
    for rule in spec.get("rules") or []:
        host = str(rule.get("host") or "*")
        backends = by_host.setdefault(host, [])
        for path in ((rule.get("http") or {}).get("paths")) or []:
            svc = ((path.get("backend") or {}).get("service")) or {}
            port = svc.get("port") or {}
            backends.append(f"{svc.get('name')}:{port.get('number') or port.get('name')}")
    default = ((spec.get("defaultBackend") or {}).get("service")) or {}
    if not by_host and default:
        by_host["*"] = [f"{default.get('name')}:{(default.get('port') or {}).get('number')}"]
    return sorted(by_host.items())


def _fallback(controller: Controller | None) -> str:
    if controller is None:
        return "the controller's default certificate"
    if controller.product == "ingress-nginx":
        return (f"the --default-ssl-certificate {controller.default_ssl_certificate}"
                if controller.default_ssl_certificate else FAKE_CERTIFICATE)
    return "Traefik default certificate (self-signed TRAEFIK DEFAULT CERT unless a TLSStore sets one)"


def why_secrets(inv: Inventory, ns: str) -> str | None:
    """Why the Secrets of a namespace cannot be read (the source's own message first), or None."""
    st = inv.status("Secret", "", ns)
    if st.status == "absent":
        return "no Secrets in the snapshot (not collected?)"
    if st.status in ("forbidden", "error"):
        return st.message or ("permission denied: list secrets" if st.status == "forbidden"
                              else "could not list secrets")
    return None


def _certificate(inv: Inventory, subject: IngressHost, as_of: datetime) -> None:
    ns, name = subject.secret_namespace or "", subject.secret_name or ""
    secret = inv.get("Secret", ns, name, group="")
    why = why_secrets(inv, ns) if secret is None else None
    if why:
        for f in ("secret_found", "certificate", "san_covers_host"):
            subject.mark_unknown(f, why)
        return
    subject.secret_found = secret is not None and secret.get("type") == "kubernetes.io/tls"
    if secret is None:
        # ingress-nginx then serves --default-ssl-certificate or its self-signed Fake Certificate.
        subject.fallback_certificate = subject.fallback_certificate or (
            FAKE_CERTIFICATE if subject.controller == "ingress-nginx" else "the controller's default certificate")
        return
    subject.evidence.append(ObjectRef.of(secret))
    crt = (secret.get("data") or {}).get("tls.crt")
    if not crt:
        subject.mark_unknown("certificate", f"Secret {ns}/{name} has no tls.crt")
        subject.mark_unknown("san_covers_host", f"Secret {ns}/{name} has no tls.crt")
        return
    try:
        chain = x509.parse_chain(crt)
    except x509.CertificateParseError as exc:
        subject.mark_unknown("certificate", f"Secret {ns}/{name}: {exc}")
        subject.mark_unknown("san_covers_host", f"Secret {ns}/{name}: {exc}")
        return
    subject.certificate = x509.facts(chain, as_of)
    subject.san_covers_host = subject.host == "*" or x509.host_matches(subject.host, subject.certificate.sans) or (
        not subject.certificate.sans and subject.host in subject.certificate.subject)


def _tls_policy(env: Env, subject: IngressHost, controller: Controller | None,
                annotations: dict[str, str], class_controller: str | None) -> None:
    inv = env.inv
    if controller is None:
        subject.mark_unknown("tls_policy", f"no running ingress controller found for class "
                             f"{subject.ingress_class or '(none)'} ({class_controller or 'no IngressClass'})")
        return
    subject.evidence.append(ObjectRef.of(controller.workload))
    if controller.product == "traefik":
        subject.tls_policy = _traefik_ingress_policy(env, subject, annotations)
        return
    cm_data: dict[str, str] = {}
    cm_label = ""
    if controller.configmap:
        cm_ns, cm_name = controller.configmap
        cm_status = inv.status("ConfigMap", "", cm_ns)
        cm = inv.get("ConfigMap", cm_ns, cm_name, group="")
        if cm is not None:
            cm_data = dict(cm.get("data") or {})
            cm_label = f"ConfigMap {cm_ns}/{cm_name}"
            subject.evidence.append(ObjectRef.of(cm))
        elif cm_status.status != "ok":
            subject.mark_unknown("tls_policy", f"controller ConfigMap {cm_ns}/{cm_name} could not be read "
                                 f"({cm_status.status})")
            return

    def source(key: str, default: str) -> str:
        return f"{cm_label} {key}" if key in cm_data and cm_label else default

    prefix = controller.annotation_prefix
    protocols = (cm_data.get("ssl-protocols") or DEFAULT_SSL_PROTOCOLS).split()
    ciphers_ann = annotations.get(f"{prefix}/ssl-ciphers")
    ciphers = ciphers_ann or cm_data.get("ssl-ciphers") or DEFAULT_SSL_CIPHERS
    redirect, redirect_source = _redirect(subject.tls, annotations, cm_data, prefix)
    hsts = _bool(cm_data.get("hsts"), True)
    subject.tls_policy = TLSPolicy(
        controller="ingress-nginx",
        protocols=protocols,
        protocols_source=source("ssl-protocols", "ingress-nginx built-in default"),
        weak_protocols=[p for p in protocols if p in WEAK_PROTOCOLS],
        ciphers=ciphers,
        ciphers_source=f"annotation {prefix}/ssl-ciphers" if ciphers_ann
        else source("ssl-ciphers", "ingress-nginx built-in default ssl-ciphers"),
        weak_ciphers=weak_ciphers(ciphers),
        hsts=hsts,
        hsts_source=source("hsts", "ingress-nginx default hsts=true") + ("" if hsts else " (off)"),
        https_redirect=redirect,
        https_redirect_source=redirect_source,
    )


def _traefik_ingress_policy(env: Env, subject: IngressHost, annotations: dict[str, str]) -> TLSPolicy:
    """Traefik serving an Ingress: TLSOption from router.tls.options, middlewares from router.middlewares."""
    ns = subject.namespace or ""
    options = None
    ref = annotations.get("traefik.ingress.kubernetes.io/router.tls.options")
    if ref:
        name = ref.split("@", 1)[0]
        opt_ns, opt_name = name.split("-", 1) if "-" in name and env.inv.get("TLSOption", ns, name) is None \
            else (ns, name)
        options = {"name": opt_name, "namespace": opt_ns}
    mws = [m for m in (env.middleware(ns, r.strip()) for r in
                       annotations.get("traefik.ingress.kubernetes.io/router.middlewares", "").split(",") if r.strip())
           if m is not None]
    for m in mws:
        subject.evidence.append(ObjectRef.of(m))
    static = traefik_static_redirect(env)
    forced = [k for k in (f"{ANNOTATION_PREFIX}/ssl-redirect", f"{ANNOTATION_PREFIX}/force-ssl-redirect")
              if annotations.get(k) == "true"]
    if static:
        redirect = (True, f"Traefik argument --entryPoints.web.http.redirections.entryPoint.to={static}")
    elif forced:
        redirect = (True, f"annotation {forced[0]}=true (Traefik ingress-nginx provider)")
    elif any(((m.get("spec") or {}).get("redirectScheme") or {}).get("scheme") == "https" for m in mws):
        redirect = (True, "a redirectScheme Middleware on router.middlewares")
    else:
        redirect = (False, "Traefik redirects only with an entry-point redirection or a redirectScheme Middleware, "
                           "and neither is configured")
    return traefik_policy(env, ns, options, mws, redirect)



def _redirect(tls: bool, annotations: dict[str, str], cm: dict[str, str], prefix: str) -> tuple[bool, str]:
    """ingress-nginx: ssl-redirect (default true) applies only with a tls section; force-ssl-redirect always."""
    force_ann = annotations.get(f"{prefix}/force-ssl-redirect")
    if force_ann is not None:
        return _bool(force_ann, False), f"annotation {prefix}/force-ssl-redirect={force_ann}"
    if _bool(cm.get("force-ssl-redirect"), False):
        return True, "ConfigMap force-ssl-redirect=true"
    if not tls:
        return False, "no tls section on the Ingress, so ingress-nginx does not redirect"
    ann = annotations.get(f"{prefix}/ssl-redirect")
    if ann is not None:
        return _bool(ann, True), f"annotation {prefix}/ssl-redirect={ann}"
    if "ssl-redirect" in cm:
        return _bool(cm["ssl-redirect"], True), f"ConfigMap ssl-redirect={cm['ssl-redirect']}"
    return True, "ingress-nginx default ssl-redirect=true"


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return str(value).strip().lower() == "true"


def _match_controller(controllers: list[Controller], class_controller: str | None,
                      class_name: str | None) -> Controller | None:
    """The controller serving a class: by IngressClass.spec.controller, confirmed by the controller's image.

    Another product (Traefik's ingress-nginx provider) can claim the nginx class, so the image decides.
    """
    if class_controller:
        for c in controllers:
            if c.controller_class == class_controller:
                return c
        if class_controller == NGINX_CLASS_CONTROLLER:
            return next((c for c in controllers if c.product == "traefik"), None)
    for c in controllers:
        if class_name and c.ingress_class == class_name:
            return c
    return None


# --- live probe observations and effective values ------------------------------------------------------

def _probe(s: IngressHost, found: Obj | None) -> None:
    """Attach the TLSProbe evidence object for (host, port); compare the served leaf with the Secret's."""
    if found is None:
        s.mark_unknown("probe", f"--probe-tls ran but {s.host}:{s.port} was not probed")
        return
    s.evidence.append(ObjectRef.of(found))
    status = dict(found.get("status") or {})
    try:
        facts = TLSProbeFacts.model_validate({k: v for k, v in status.items() if k in TLSProbeFacts.model_fields})
    except ValidationError as exc:
        s.mark_unknown("probe", f"TLSProbe {s.host}:{s.port} is not a valid probe record: {exc.errors()[0]['msg']}")
        return
    s.probe = facts
    if not facts.reachable:
        s.mark_unknown("probe", f"{s.host}:{s.port} unreachable from the probe: {facts.error or 'no answer'}")
        return
    if s.kind == "Service":
        s.app_tls = facts.protocol is not None
        s.app_tls_source = (f"probe: TLS handshake negotiated {facts.protocol}" if facts.protocol else
                            f"probe: the port accepted TCP but no TLS handshake ({facts.error or 'no TLS'})")
        return
    if not s.tls:
        return
    if facts.protocol is None:
        s.mark_unknown("probe", f"TLS handshake with {s.host}:{s.port} failed: {facts.error or 'no answer'}")
        return
    if s.secret_found and s.certificate is not None and facts.served_fingerprint_sha256:
        facts.compared_with_secret = True
        facts.served_matches_secret = facts.served_fingerprint_sha256 == s.certificate.fingerprint_sha256
        if facts.served_chain_length is not None and status.get("served_chain_fingerprints"):
            facts.served_chain_matches_secret = list(status["served_chain_fingerprints"]) == \
                s.certificate.chain_fingerprints


def _effective(s: IngressHost) -> None:
    """The values controls read: what the probe observed when it could, else what is configured."""
    policy, probe = s.tls_policy, s.probe
    live = probe is not None and probe.reachable and probe.protocol is not None
    policy_why = next((u.reason for u in s.unknown if u.field == "tls_policy"), None)
    # Plain-HTTP redirect.
    if s.https_redirect is None:
        if live and probe is not None and probe.http_status is not None:
            s.https_redirect = bool(probe.http_redirects_to_https)
            s.https_redirect_source = (f"probe: GET http://{s.host}/ answered {probe.http_status}"
                                       + (f" to {probe.http_location}" if probe.http_location else ""))
        elif policy is not None:
            s.https_redirect, s.https_redirect_source = policy.https_redirect, policy.https_redirect_source
        elif policy_why:
            s.mark_unknown("https_redirect", policy_why)
    # HSTS.
    if live and probe is not None:
        s.hsts = bool(probe.hsts) and "max-age=0" not in (probe.hsts or "").replace(" ", "").lower()
        s.hsts_source = f"probe: Strict-Transport-Security: {probe.hsts}" if probe.hsts else \
            f"probe: no Strict-Transport-Security header on GET https://{s.host}/"
        s.unknown = [u for u in s.unknown if u.field != "hsts"]
    elif policy is not None and "hsts" not in s.unknown_fields():
        s.hsts, s.hsts_source = policy.hsts, policy.hsts_source
    elif policy_why and s.hsts is None:  # a builder that knows HSTS without the TLS policy has set it
        s.mark_unknown("hsts", policy_why)
    # Protocol versions: observed ones, plus configured weak versions the local OpenSSL could not test.
    configured = set(policy.weak_protocols) if policy else set()
    if live and probe is not None and (probe.versions_accepted or probe.versions_refused):
        untested = configured & set(probe.versions_untested)
        s.weak_protocols = sorted(set(probe.weak_versions_accepted) | untested, key=_version_order)
        s.protocols_source = ("probe: accepted " + (", ".join(probe.versions_accepted) or "none")
                              + ("; refused " + ", ".join(probe.versions_refused) if probe.versions_refused else "")
                              + ("; not testable here: " + ", ".join(probe.versions_untested)
                                 if probe.versions_untested else ""))
    elif policy is not None:
        s.weak_protocols, s.protocols_source = list(policy.weak_protocols), policy.protocols_source
    elif policy_why:
        s.mark_unknown("weak_protocols", policy_why)
    if policy is not None:
        s.weak_ciphers = list(policy.weak_ciphers)
    elif policy_why:
        s.mark_unknown("weak_ciphers", policy_why)


def _version_order(v: str) -> int:
    return ALL_PROTOCOLS.index(v) if v in ALL_PROTOCOLS else -1
