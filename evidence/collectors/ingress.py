"""Ingress entry points: one subject per (Ingress, host, port) with TLS coverage, certificate and controller policy.

Effective settings are resolved as ingress-nginx does: per-Ingress annotation, then the controller's
ConfigMap (found from its --configmap argument), then the built-in default (cluster-facts.md A.1, A.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evidence.collectors import x509
from evidence.collectors.workloads import containers_of, expand_env, flags
from evidence.facts import IngressHost, TLSPolicy
from evidence.inventory import CollectionEntry, Inventory, Obj, ObjectRef
from evidence.scope import SYSTEM_NAMESPACES, Scope

NGINX_CLASS_CONTROLLER = "k8s.io/ingress-nginx"
ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io"
DEFAULT_SSL_PROTOCOLS = "TLSv1.2 TLSv1.3"  # ingress-nginx default since v0.34.0
WEAK_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")


@dataclass
class Controller:
    """An ingress controller found from its workload (image + arguments)."""

    product: str  # "ingress-nginx" or "traefik"
    workload: Obj
    controller_class: str
    ingress_class: str | None
    configmap: tuple[str, str] | None  # (namespace, name)
    annotation_prefix: str
    default_ssl_certificate: str | None


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[IngressHost]:
    controllers = _controllers(inv)
    classes = {str(c["metadata"]["name"]): c for c in inv.objects("IngressClass", "networking.k8s.io")}
    default_class = next((n for n, c in classes.items() if (c["metadata"].get("annotations") or {})
                          .get("ingressclass.kubernetes.io/is-default-class") == "true"), None)
    secret_status: dict[str, CollectionEntry] = {}
    subjects: list[IngressHost] = []
    for ing in inv.objects("Ingress", "networking.k8s.io"):
        meta, spec = ing["metadata"], ing.get("spec") or {}
        ns, name = str(meta.get("namespace")), str(meta["name"])
        annotations: dict[str, str] = dict(meta.get("annotations") or {})
        cls_name = spec.get("ingressClassName") or annotations.get("kubernetes.io/ingress.class") or default_class
        ing_class = classes.get(str(cls_name)) if cls_name else None
        class_controller = ((ing_class or {}).get("spec") or {}).get("controller")
        controller = _match_controller(controllers, class_controller, cls_name)
        ns_obj = inv.get("Namespace", None, ns, group="")
        ns_labels = dict(((ns_obj or {}).get("metadata") or {}).get("labels") or {})
        ns_class, _ = scope.classify(ns, ns_labels)
        if ns in SYSTEM_NAMESPACES and ns_class == "unclassified":
            ns_class = "system"
        tls_entries = spec.get("tls") or []
        status = secret_status.setdefault(ns, inv.status("Secret", "", ns))
        for host, backends in _hosts(spec):
            tls_entry = next((t for t in tls_entries if host in (t.get("hosts") or [])), None)
            covered = tls_entry is not None
            subject = IngressHost(
                id=f"{ns}/{name}/{host}:{443 if covered else 80}",
                name=f"{host}:{443 if covered else 80}",
                namespace=ns,
                host=host,
                port=443 if covered else 80,
                ingress=name,
                ingress_class=str(cls_name) if cls_name else None,
                controller=controller.product if controller else None,
                namespace_class=ns_class,
                personal_data=ns in scope.data.personal_data or ns in scope.data.health_data,
                tls=covered,
                secret_name=(tls_entry or {}).get("secretName"),
                secret_found=None,
                backends=backends,
                cert_manager_issuer=annotations.get("cert-manager.io/cluster-issuer")
                or annotations.get("cert-manager.io/issuer"),
            )
            subject.evidence.append(ObjectRef.of(ing))
            if ing_class:
                subject.evidence.append(ObjectRef.of(ing_class))
            if covered:
                _certificate(inv, subject, status.status, status.message, as_of, controller)
            _tls_policy(inv, subject, controller, annotations, class_controller)
            subjects.append(subject)
    return subjects


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


def _certificate(inv: Inventory, subject: IngressHost, secret_status: str, message: str | None,
                 as_of: datetime, controller: Controller | None) -> None:
    if secret_status in ("forbidden", "error", "absent"):
        reason = message or {"forbidden": "permission denied: list secrets",
                             "absent": "no Secrets in the snapshot (not collected?)"}.get(secret_status, "error")
        subject.mark_unknown("secret_found", reason)
        subject.mark_unknown("certificate", reason)
        subject.mark_unknown("san_covers_host", reason)
        return
    secret = inv.get("Secret", subject.namespace, subject.secret_name or "", group="")
    subject.secret_found = secret is not None and secret.get("type") == "kubernetes.io/tls"
    if secret is None:
        # ingress-nginx then serves --default-ssl-certificate or its self-signed Fake Certificate.
        return
    subject.evidence.append(ObjectRef.of(secret))
    crt = (secret.get("data") or {}).get("tls.crt")
    if not crt:
        subject.mark_unknown("certificate", f"Secret {subject.secret_name} has no tls.crt")
        subject.mark_unknown("san_covers_host", f"Secret {subject.secret_name} has no tls.crt")
        return
    try:
        chain = x509.parse_chain(crt)
    except x509.CertificateParseError as exc:
        subject.mark_unknown("certificate", f"Secret {subject.secret_name}: {exc}")
        subject.mark_unknown("san_covers_host", f"Secret {subject.secret_name}: {exc}")
        return
    subject.certificate = x509.facts(chain, as_of)
    subject.san_covers_host = x509.host_matches(subject.host, subject.certificate.sans) or (
        not subject.certificate.sans and subject.host in subject.certificate.subject)


def _tls_policy(inv: Inventory, subject: IngressHost, controller: Controller | None,
                annotations: dict[str, str], class_controller: str | None) -> None:
    if controller is None:
        subject.mark_unknown("tls_policy", f"no running ingress controller found for class "
                             f"{subject.ingress_class or '(none)'} ({class_controller or 'no IngressClass'})")
        return
    subject.evidence.append(ObjectRef.of(controller.workload))
    if controller.product != "ingress-nginx":
        subject.mark_unknown("tls_policy", f"TLS policy of {controller.product} is not evaluated yet")
        return
    cm_data: dict[str, str] = {}
    source = "ingress-nginx built-in default"
    if controller.configmap:
        cm_ns, cm_name = controller.configmap
        cm_status = inv.status("ConfigMap", "", cm_ns)
        cm = inv.get("ConfigMap", cm_ns, cm_name, group="")
        if cm is not None:
            cm_data = dict(cm.get("data") or {})
            subject.evidence.append(ObjectRef.of(cm))
        elif cm_status.status != "ok":
            subject.mark_unknown("tls_policy", f"controller ConfigMap {cm_ns}/{cm_name} could not be read "
                                 f"({cm_status.status})")
            return
    prefix = controller.annotation_prefix
    protocols_raw = cm_data.get("ssl-protocols")
    protocols = (protocols_raw or DEFAULT_SSL_PROTOCOLS).split()
    protocols_source = f"ConfigMap {controller.configmap[0]}/{controller.configmap[1]} ssl-protocols" \
        if protocols_raw and controller.configmap else source
    redirect, redirect_source = _redirect(subject.tls, annotations, cm_data, prefix)
    subject.tls_policy = TLSPolicy(
        controller="ingress-nginx",
        protocols=protocols,
        protocols_source=protocols_source,
        weak_protocols=[p for p in protocols if p in WEAK_PROTOCOLS],
        ciphers=annotations.get(f"{prefix}/ssl-ciphers") or cm_data.get("ssl-ciphers"),
        hsts=_bool(cm_data.get("hsts"), True),
        https_redirect=redirect,
        https_redirect_source=redirect_source,
    )


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


def _controllers(inv: Inventory) -> list[Controller]:
    out = []
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        for w in inv.objects(kind, "apps"):
            ns = w["metadata"].get("namespace")
            for c in containers_of(w):
                image = str(c.get("image", ""))
                args = [str(a) for a in (c.get("args") or []) + (c.get("command") or [])]
                f = flags(args)
                if "ingress-nginx/controller" in image or "nginx-ingress-controller" in " ".join(args):
                    cm_ref = expand_env(f.get("configmap", ""), c, ns)
                    cm = tuple(cm_ref.split("/", 1)) if "/" in cm_ref else None
                    out.append(Controller(
                        product="ingress-nginx", workload=w,
                        controller_class=f.get("controller-class", NGINX_CLASS_CONTROLLER),
                        ingress_class=f.get("ingress-class"),
                        configmap=cm,  # type: ignore[arg-type]
                        annotation_prefix=f.get("annotations-prefix", ANNOTATION_PREFIX),
                        default_ssl_certificate=f.get("default-ssl-certificate")))
                elif image.split("/")[-1].startswith("traefik:") or "/traefik:" in image:
                    out.append(Controller("traefik", w, "traefik.io/ingress-controller", None, None,
                                          ANNOTATION_PREFIX, None))
    return out


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
