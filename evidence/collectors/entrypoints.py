"""Entry points other than Ingress: Gateway API, Istio Gateway, Traefik IngressRoute, Contour HTTPProxy, and
LoadBalancer/NodePort Services with no TLS-terminating proxy in front (cluster-facts.md A.4, A.6-A.8).

Each builder returns `ingress_host` subjects with what the objects configure (TLS, Secret, controller policy,
plain-HTTP redirect); `ingress.collect` then attaches certificates and probe observations. Shared helpers
(namespace classification, public hosts, weak cipher suites, controller discovery) live here too.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from evidence.collectors.workloads import containers_of, expand_env, flags, pod_template_spec
from evidence.facts import EntryKind, IngressHost, TLSPolicy
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import SYSTEM_NAMESPACES, NamespaceClass, Scope

NGINX_CLASS_CONTROLLER = "k8s.io/ingress-nginx"
ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io"
WEAK_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
ALL_PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
INTERNAL_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
INTERNAL_SUFFIXES = (".local", ".internal", ".svc", ".lan", ".home.arpa", ".localhost", ".cluster.local")
# Gateway API implementations by GatewayClass.spec.controllerName prefix.
GATEWAY_CONTROLLERS = {"istio.io/": "istio", "gateway.envoyproxy.io/": "envoy-gateway", "io.cilium/": "cilium",
                       "projectcontour.io/": "contour", "traefik.io/": "traefik", "gateway.nginx.org/": "nginx-gateway",
                       "konghq.com/": "kong"}
# Images of proxies that terminate TLS in front of Services (their own Services are not "exposed without TLS").
PROXY_IMAGES = ("ingress-nginx/controller", "nginx-ingress-controller", "traefik", "istio/proxyv2", "envoyproxy/envoy",
                "projectcontour/contour", "nginx-gateway-fabric", "haproxytech/kubernetes-ingress", "kong/kong-gateway",
                "cilium/cilium-envoy")
ISTIO_PROTOCOLS = {"TLSV1_0": "TLSv1", "TLSV1_1": "TLSv1.1", "TLSV1_2": "TLSv1.2", "TLSV1_3": "TLSv1.3"}
TRAEFIK_PROTOCOLS = {"VersionTLS10": "TLSv1", "VersionTLS11": "TLSv1.1", "VersionTLS12": "TLSv1.2",
                     "VersionTLS13": "TLSv1.3"}
_HOST_MATCHER = re.compile(r"Host\(([^)]*)\)")
_BACKTICKED = re.compile(r"[`\"]([^`\"]+)[`\"]")


def weak_ciphers(spec: str | list[str] | None) -> list[str]:
    """Suites from an OpenSSL cipher string or a list of IANA/Go names that PCI DSS 4.2.1 rules out:
    RC4, (3)DES, NULL, EXPORT, MD5, and CBC suites with a SHA-1 MAC (cluster-facts.md A.3)."""
    if spec is None:
        return []
    tokens = spec if isinstance(spec, list) else re.split(r"[:,\s]+", spec)
    weak = []
    for raw in tokens:
        t = str(raw).strip()
        if not t or t[0] in "!-+@":
            continue  # exclusions and ordering directives
        u = t.upper()
        if any(m in u for m in ("RC4", "DES", "NULL", "EXP", "MD5")) or u.endswith(("_CBC_SHA", "-SHA")):
            weak.append(t)
    return weak


def protocols_between(low: str, high: str = "TLSv1.3") -> list[str]:
    lo, hi = ALL_PROTOCOLS.index(low), ALL_PROTOCOLS.index(high)
    return list(ALL_PROTOCOLS[lo:hi + 1])


def is_public(host: str, scope: Scope) -> bool:
    """False for hosts only internal clients reach: scope internal_hosts, internal suffixes, private addresses."""
    h = host.lower().rstrip(".")
    if any(fnmatch.fnmatchcase(h, p.lower()) for p in scope.internal_hosts):
        return False
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return h == "*" or ("." in h and not h.endswith(INTERNAL_SUFFIXES))
    # Private (RFC 1918, unique local), shared (CGNAT), loopback and link-local addresses are internal;
    # documentation ranges stand in for public addresses in examples and count as public.
    return not (any(ip in ipaddress.ip_network(n) for n in INTERNAL_NETWORKS) or ip.is_loopback or ip.is_link_local)


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).strip().lower() == "true"


def status_addresses(obj: Obj) -> list[str]:
    status = obj.get("status") or {}
    out = [str(i.get("ip") or i.get("hostname")) for i in ((status.get("loadBalancer") or {}).get("ingress") or [])
           if i.get("ip") or i.get("hostname")]
    out += [str(a.get("value")) for a in status.get("addresses") or [] if a.get("value")]
    return out


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
    args: dict[str, str] = field(default_factory=dict)


def controllers(inv: Inventory) -> list[Controller]:
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
                    ns_name = cm_ref.split("/", 1)
                    out.append(Controller(
                        product="ingress-nginx", workload=w,
                        controller_class=f.get("controller-class", NGINX_CLASS_CONTROLLER),
                        ingress_class=f.get("ingress-class"),
                        configmap=(ns_name[0], ns_name[1]) if len(ns_name) == 2 else None,
                        annotation_prefix=f.get("annotations-prefix", ANNOTATION_PREFIX),
                        default_ssl_certificate=expand_env(f["default-ssl-certificate"], c, ns)
                        if "default-ssl-certificate" in f else None, args=f))
                elif image.split("/")[-1].startswith("traefik:") or "/traefik:" in image:
                    out.append(Controller("traefik", w, "traefik.io/ingress-controller", None, None,
                                          ANNOTATION_PREFIX, None, {k.lower(): v for k, v in f.items()}))
    return out


@dataclass
class Env:
    """What every builder needs: the inventory, the scope, and lookups computed once."""

    inv: Inventory
    scope: Scope
    controllers: list[Controller]
    _ns_class: dict[str, NamespaceClass] = field(default_factory=dict)

    @classmethod
    def build(cls, inv: Inventory, scope: Scope) -> Env:
        return cls(inv, scope, controllers(inv))

    def ns_class(self, ns: str) -> NamespaceClass:
        if ns not in self._ns_class:
            ns_obj = self.inv.get("Namespace", None, ns, group="")
            cls, _ = self.scope.classify(ns, dict(((ns_obj or {}).get("metadata") or {}).get("labels") or {}))
            if ns in SYSTEM_NAMESPACES and cls == "unclassified":
                cls = "system"
            self._ns_class[ns] = cls
        return self._ns_class[ns]

    def subject(self, kind: EntryKind, obj: Obj, host: str, port: int, tls: bool, **kw: Any) -> IngressHost:
        ns, name = str(obj["metadata"].get("namespace") or ""), str(obj["metadata"]["name"])
        prefix = f"{ns}/{name}" if kind == "Ingress" else f"{ns}/{kind}/{name}"
        s = IngressHost(
            id=f"{prefix}/{host}:{port}", name=f"{host}:{port}", namespace=ns, kind=kind, host=host, port=port,
            ingress=name, namespace_class=self.ns_class(ns),
            personal_data=ns in self.scope.data.personal_data or ns in self.scope.data.health_data,
            public=is_public(host, self.scope), tls=tls, addresses=status_addresses(obj), **kw)
        s.evidence.append(ObjectRef.of(obj))
        return s

    def middleware(self, ns: str, ref: str) -> Obj | None:
        """A Traefik Middleware from 'name', 'ns-name@kubernetescrd' or a route's {name, namespace}."""
        name = ref.split("@", 1)[0]
        found = self.inv.get("Middleware", ns, name)
        if found is None and "@" in ref and "-" in name:
            mns, mname = name.split("-", 1)
            found = self.inv.get("Middleware", mns, mname)
        return found


# --- Gateway API ---------------------------------------------------------------------------------------

def gateway_api(env: Env) -> list[IngressHost]:
    inv = env.inv
    classes = {str(c["metadata"]["name"]): str((c.get("spec") or {}).get("controllerName") or "")
               for c in inv.objects("GatewayClass", "gateway.networking.k8s.io")}
    routes = inv.objects("HTTPRoute", "gateway.networking.k8s.io")
    out: list[IngressHost] = []
    for gw in inv.objects("Gateway", "gateway.networking.k8s.io"):
        meta, spec = gw["metadata"], gw.get("spec") or {}
        cls = str(spec.get("gatewayClassName") or "")
        controller_name = classes.get(cls)
        product = next((p for prefix, p in GATEWAY_CONTROLLERS.items() if (controller_name or "").startswith(prefix)),
                       controller_name or None)
        annotations = dict(meta.get("annotations") or {})
        issuer = annotations.get("cert-manager.io/cluster-issuer") or annotations.get("cert-manager.io/issuer")
        listeners = list(spec.get("listeners") or [])
        attached = {str(li.get("name")): _attached_routes(gw, li, routes) for li in listeners}
        tls_hosts: set[str] = set()
        for li in listeners:
            protocol = str(li.get("protocol") or "")
            if protocol not in ("HTTPS", "TLS"):
                continue
            tls = li.get("tls") or {}
            mode = str(tls.get("mode") or "Terminate")
            hosts = _listener_hosts(li, attached[str(li.get("name"))])
            for host in hosts:
                tls_hosts.add(host)
                s = env.subject("Gateway", gw, host, int(li.get("port") or 443), True, ingress_class=cls,
                                controller=product, tls_mode="passthrough" if mode == "Passthrough" else "terminate",
                                secret_name=None, secret_found=None, cert_manager_issuer=issuer,
                                backends=_route_backends(attached[str(li.get("name"))]))
                for r in attached[str(li.get("name"))]:
                    s.evidence.append(ObjectRef.of(r))
                if mode == "Passthrough":
                    s.mark_unknown("secret_found", f"listener {li.get('name')} passes TLS through to the backend, "
                                   "whose certificate is not in the API; verify it with --probe-tls")
                else:
                    _gateway_certificate(gw, li, s)
                _gateway_policy(env, s, product, gw, li, hosts, attached, listeners, host)
                out.append(s)
        # Plain-HTTP listeners for hosts with no TLS listener: clear text unless every route redirects.
        for li in listeners:
            if str(li.get("protocol") or "") != "HTTP":
                continue
            routes_here = attached[str(li.get("name"))]
            for host in _listener_hosts(li, routes_here):
                if host in tls_hosts or not routes_here:
                    continue
                serving = [r for r in routes_here if _route_covers(r, host) and not _redirects_https(r)]
                if not serving:
                    continue
                s = env.subject("Gateway", gw, host, int(li.get("port") or 80), False, ingress_class=cls,
                                controller=product, secret_name=None, secret_found=None,
                                backends=_route_backends(serving), https_redirect=False,
                                https_redirect_source=f"{_routes(serving)} {host} on HTTP listener "
                                                      f"'{li.get('name')}' without a RequestRedirect to https")
                for r in serving:
                    s.evidence.append(ObjectRef.of(r))
                out.append(s)
    return out


def _attached_routes(gw: Obj, listener: dict[str, Any], routes: list[Obj]) -> list[Obj]:
    gw_ns, gw_name = gw["metadata"].get("namespace"), gw["metadata"]["name"]
    out = []
    for r in routes:
        r_ns = r["metadata"].get("namespace")
        for ref in (r.get("spec") or {}).get("parentRefs") or []:
            if (ref.get("kind") or "Gateway") != "Gateway" or ref.get("name") != gw_name \
                    or (ref.get("namespace") or r_ns) != gw_ns:
                continue
            if ref.get("sectionName") and ref["sectionName"] != listener.get("name"):
                continue
            if ref.get("port") and int(ref["port"]) != int(listener.get("port") or 0):
                continue
            out.append(r)
            break
    return out


def _listener_hosts(listener: dict[str, Any], routes: list[Obj]) -> list[str]:
    if listener.get("hostname"):
        return [str(listener["hostname"])]
    names = sorted({str(h) for r in routes for h in (r.get("spec") or {}).get("hostnames") or []})
    return names or ["*"]


def _route_covers(route: Obj, host: str) -> bool:
    names = [str(h) for h in (route.get("spec") or {}).get("hostnames") or []]
    return not names or host == "*" or any(n == host or fnmatch.fnmatchcase(host, n) for n in names)


def _redirects_https(route: Obj) -> bool:
    """Every rule answers with a RequestRedirect to the https scheme."""
    rules = (route.get("spec") or {}).get("rules") or [{}]
    return all(any(f.get("type") == "RequestRedirect" and (f.get("requestRedirect") or {}).get("scheme") == "https"
                   for f in rule.get("filters") or []) for rule in rules)


def _sets_hsts(route: Obj) -> bool:
    for rule in (route.get("spec") or {}).get("rules") or []:
        for f in rule.get("filters") or []:
            if f.get("type") == "ResponseHeaderModifier":
                mod = f.get("responseHeaderModifier") or {}
                if any(str(h.get("name", "")).lower() == "strict-transport-security"
                       for h in (mod.get("set") or []) + (mod.get("add") or [])):
                    return True
    return False


def _route_backends(routes: list[Obj]) -> list[str]:
    return sorted({f"{b.get('name')}:{b.get('port')}" for r in routes for rule in (r.get("spec") or {}).get("rules") or []
                   for b in rule.get("backendRefs") or []})


def _routes(routes: list[Obj]) -> str:
    return f"HTTPRoute {_names(routes)} serves" if len(routes) == 1 else f"HTTPRoutes {_names(routes)} serve"


def _names(objs: list[Obj]) -> str:
    return ", ".join(f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in objs)


def _gateway_certificate(gw: Obj, listener: dict[str, Any], s: IngressHost) -> None:
    refs = ((listener.get("tls") or {}).get("certificateRefs")) or []
    if not refs:
        s.secret_found = False
        s.fallback_certificate = f"listener {listener.get('name')} names no certificateRefs"
        return
    ref = refs[0]
    if (ref.get("kind") or "Secret") != "Secret" or (ref.get("group") or "") != "":
        s.mark_unknown("secret_found", f"listener {listener.get('name')} references a {ref.get('kind')} "
                       f"({ref.get('group')}), not a Secret; verify the served certificate with --probe-tls")
        return
    s.secret_name = str(ref.get("name"))
    s.secret_namespace = str(ref.get("namespace") or gw["metadata"].get("namespace"))
    for ls in (gw.get("status") or {}).get("listeners") or []:
        if ls.get("name") != listener.get("name"):
            continue
        for cond in ls.get("conditions") or []:
            if cond.get("type") == "ResolvedRefs" and cond.get("status") == "False":
                s.fallback_certificate = (f"listener status ResolvedRefs=False ({cond.get('reason')}): the "
                                          f"certificate reference is not usable")


def _gateway_policy(env: Env, s: IngressHost, product: str | None, gw: Obj, li: dict[str, Any],
                    hosts: list[str], attached: dict[str, list[Obj]], listeners: list[dict[str, Any]],
                    host: str) -> None:
    del hosts
    routes_here = attached[str(li.get("name"))]
    redirect, source = True, f"no plain-HTTP listener of Gateway {gw['metadata']['name']} serves {host}"
    for other in listeners:
        if str(other.get("protocol") or "") != "HTTP":
            continue
        if other.get("hostname") and other["hostname"] != host and not fnmatch.fnmatchcase(host, str(other["hostname"])):
            continue
        serving = [r for r in attached[str(other.get("name"))] if _route_covers(r, host) and not _redirects_https(r)]
        if serving:
            redirect = False
            source = (f"{_routes(serving)} {host} on HTTP listener '{other.get('name')}' "
                      f"(port {other.get('port')}) without a RequestRedirect to https")
            for r in serving:
                s.evidence.append(ObjectRef.of(r))
            break
        if attached[str(other.get("name"))]:
            source = f"HTTP listener '{other.get('name')}' only redirects {host} to https (RequestRedirect)"
    hsts = any(_sets_hsts(r) for r in routes_here)
    hsts_source = ("an HTTPRoute ResponseHeaderModifier sets Strict-Transport-Security" if hsts else
                   "no HTTPRoute of this listener sets Strict-Transport-Security (Gateway API adds none by default)")
    if product != "istio":
        s.mark_unknown("tls_policy", f"TLS versions of {product or 'unknown'} Gateway listeners are implementation-"
                       "specific (Gateway API has no portable minimum version); verify with --probe-tls")
        s.https_redirect, s.https_redirect_source = redirect, source
        s.hsts, s.hsts_source = hsts, hsts_source
        return
    # Istio implements Gateway API with its gateway defaults: minimum TLS 1.2 (cluster-facts.md A.8).
    s.tls_policy = TLSPolicy(controller="istio", protocols=protocols_between("TLSv1.2"),
                             protocols_source="Istio gateway default minimum TLSv1.2 (no tls.options set)",
                             weak_protocols=[], ciphers=None, ciphers_source="Istio default cipher suites",
                             hsts=hsts, hsts_source=hsts_source, https_redirect=redirect,
                             https_redirect_source=source)


# --- Istio Gateway -------------------------------------------------------------------------------------

def istio_gateways(env: Env) -> list[IngressHost]:
    inv = env.inv
    out: list[IngressHost] = []
    for gw in inv.objects("Gateway", "networking.istio.io"):
        spec = gw.get("spec") or {}
        workloads = _selected_workloads(inv, dict(spec.get("selector") or {}), None)
        secret_ns = str(workloads[0]["metadata"].get("namespace")) if workloads else str(gw["metadata"].get("namespace"))
        addresses = [a for w in workloads for a in _service_addresses(inv, w)]
        servers = list(spec.get("servers") or [])
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
        tls_hosts: set[str] = set()
        for srv in servers:
            port = srv.get("port") or {}
            if str(port.get("protocol") or "").upper() not in ("HTTPS", "TLS"):
                continue
            tls = srv.get("tls") or {}
            mode = str(tls.get("mode") or "PASSTHROUGH")  # omitted means PASSTHROUGH (enum value 0)
            for host in _istio_hosts(srv):
                tls_hosts.add(host)
                s = env.subject("IstioGateway", gw, host, int(port.get("number") or 443), True,
                                ingress_class=selector or None, controller="istio",
                                tls_mode={"SIMPLE": "terminate", "MUTUAL": "mutual", "OPTIONAL_MUTUAL": "mutual",
                                          "ISTIO_MUTUAL": "mutual"}.get(mode, "passthrough"),
                                secret_name=None, secret_found=None)
                s.addresses = s.addresses or addresses
                for w in workloads:
                    s.evidence.append(ObjectRef.of(w))
                if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
                    how = "omitted, which means PASSTHROUGH" if "mode" not in tls else mode
                    s.mark_unknown("secret_found", f"server port {port.get('number')} tls.mode {how}: the backend "
                                   "serves the certificate, which is not in the API; verify with --probe-tls")
                elif mode == "ISTIO_MUTUAL":
                    s.mark_unknown("secret_found", "tls.mode ISTIO_MUTUAL serves the mesh workload certificate")
                elif tls.get("credentialName"):
                    s.secret_name, s.secret_namespace = str(tls["credentialName"]), secret_ns
                else:
                    s.mark_unknown("secret_found", "server uses file-mounted certificates (serverCertificate), "
                                   "which are not in the API; verify with --probe-tls")
                _istio_policy(s, tls, servers, host)
                out.append(s)
        for srv in servers:
            port = srv.get("port") or {}
            if str(port.get("protocol") or "").upper() not in ("HTTP", "HTTP2", "GRPC") \
                    or (srv.get("tls") or {}).get("httpsRedirect"):
                continue
            for host in _istio_hosts(srv):
                if host in tls_hosts:
                    continue
                s = env.subject("IstioGateway", gw, host, int(port.get("number") or 80), False,
                                ingress_class=selector or None, controller="istio", secret_name=None,
                                secret_found=None, https_redirect=False,
                                https_redirect_source=f"server port {port.get('number')} ({port.get('protocol')}) "
                                                      "has no tls.httpsRedirect")
                s.addresses = s.addresses or addresses
                out.append(s)
    return out


def _istio_hosts(server: dict[str, Any]) -> list[str]:
    """Server hosts may be written 'namespace/dnsName'; the namespace part only scopes VirtualServices."""
    return sorted({str(h).split("/", 1)[-1] for h in server.get("hosts") or []}) or ["*"]


def _istio_policy(s: IngressHost, tls: dict[str, Any], servers: list[dict[str, Any]], host: str) -> None:
    minimum = str(tls.get("minProtocolVersion") or "TLS_AUTO")
    maximum = str(tls.get("maxProtocolVersion") or "TLS_AUTO")
    low = ISTIO_PROTOCOLS.get(minimum, "TLSv1.2")  # TLS_AUTO and unset: Istio's default minimum TLSV1_2
    high = ISTIO_PROTOCOLS.get(maximum, "TLSv1.3")
    protocols = protocols_between(low, high) if ALL_PROTOCOLS.index(low) <= ALL_PROTOCOLS.index(high) else [low]
    source = (f"Gateway {s.namespace}/{s.ingress} tls.minProtocolVersion={minimum}" if "minProtocolVersion" in tls
              else "Istio default minProtocolVersion TLSV1_2")
    suites = [str(c) for c in tls.get("cipherSuites") or []]
    redirect, redirect_source = True, f"no plain-HTTP server of Gateway {s.ingress} serves {host}"
    for srv in servers:
        port = srv.get("port") or {}
        if str(port.get("protocol") or "").upper() not in ("HTTP", "HTTP2", "GRPC"):
            continue
        if host not in _istio_hosts(srv) and "*" not in _istio_hosts(srv):
            continue
        if (srv.get("tls") or {}).get("httpsRedirect"):
            redirect_source = f"server port {port.get('number')} sets tls.httpsRedirect: true (301)"
        else:
            redirect, redirect_source = False, (f"server port {port.get('number')} ({port.get('protocol')}) serves "
                                                f"{host} without tls.httpsRedirect")
            break
    s.tls_policy = TLSPolicy(controller="istio", protocols=protocols, protocols_source=source,
                             weak_protocols=[p for p in protocols if p in WEAK_PROTOCOLS],
                             ciphers=":".join(suites) or None,
                             ciphers_source="tls.cipherSuites" if suites else "Istio default cipher suites",
                             weak_ciphers=weak_ciphers(suites), hsts=None,
                             hsts_source="set by VirtualService response headers, which auditpack does not read",
                             https_redirect=redirect, https_redirect_source=redirect_source)
    s.mark_unknown("hsts", "Istio sends Strict-Transport-Security only when a VirtualService or EnvoyFilter adds it, "
                   "which auditpack does not read; run --probe-tls to observe it")


def _selected_workloads(inv: Inventory, selector: dict[str, str], namespace: str | None) -> list[Obj]:
    if not selector:
        return []
    out = []
    for kind in ("Deployment", "DaemonSet", "StatefulSet"):
        for w in inv.objects(kind, "apps", namespace=namespace):
            labels = dict(((pod_template_spec(w) or {}).get("metadata") or {}).get("labels") or {})
            if matches({"matchLabels": selector}, labels):
                out.append(w)
    return out


def _service_addresses(inv: Inventory, workload: Obj) -> list[str]:
    labels = dict(((pod_template_spec(workload) or {}).get("metadata") or {}).get("labels") or {})
    out = []
    for svc in inv.objects("Service", "", namespace=workload["metadata"].get("namespace")):
        sel = (svc.get("spec") or {}).get("selector")
        if sel and matches({"matchLabels": sel}, labels):
            out += status_addresses(svc)
    return out


# --- Traefik IngressRoute ------------------------------------------------------------------------------

def traefik_policy(env: Env, ns: str, options: dict[str, Any] | None, middlewares: list[Obj],
                   redirect: tuple[bool, str]) -> TLSPolicy:
    """Traefik's TLS policy: the named TLSOption, else the one `default` TLSOption, else built-in defaults
    (minVersion VersionTLS12 since v2.9; the CRD comment saying VersionTLS10 is stale: cluster-facts.md A.4)."""
    opt: Obj | None = None
    source = "Traefik built-in default minVersion VersionTLS12"
    if options and options.get("name"):
        opt = env.inv.get("TLSOption", str(options.get("namespace") or ns), str(options["name"]))
        source = f"TLSOption {options.get('namespace') or ns}/{options['name']}" if opt else \
            f"TLSOption {options.get('namespace') or ns}/{options['name']} not found: Traefik falls back to defaults"
    else:
        defaults = [o for o in env.inv.objects("TLSOption") if o["metadata"]["name"] == "default"]
        if len(defaults) == 1:
            opt = defaults[0]
            source = f"TLSOption {opt['metadata'].get('namespace')}/default"
        elif len(defaults) > 1:
            source = "several TLSOptions named default: Traefik ignores them all and uses VersionTLS12"
    spec = (opt or {}).get("spec") or {}
    low = TRAEFIK_PROTOCOLS.get(str(spec.get("minVersion") or "VersionTLS12"), "TLSv1.2")
    high = TRAEFIK_PROTOCOLS.get(str(spec.get("maxVersion") or "VersionTLS13"), "TLSv1.3")
    protocols = protocols_between(low, high) if ALL_PROTOCOLS.index(low) <= ALL_PROTOCOLS.index(high) else [low]
    if spec.get("minVersion"):
        source += f" minVersion={spec['minVersion']}"
    suites = [str(c) for c in spec.get("cipherSuites") or []]
    sts = next((m for m in middlewares if int(((m.get("spec") or {}).get("headers") or {}).get("stsSeconds") or 0) > 0),
               None)
    return TLSPolicy(controller="traefik", protocols=protocols, protocols_source=source,
                     weak_protocols=[p for p in protocols if p in WEAK_PROTOCOLS], ciphers=":".join(suites) or None,
                     ciphers_source=f"{source} cipherSuites" if suites else "Go crypto/tls default suites",
                     weak_ciphers=weak_ciphers(suites), hsts=sts is not None,
                     hsts_source=f"Middleware {sts['metadata'].get('namespace')}/{sts['metadata']['name']} sets "
                                 "headers.stsSeconds" if sts else "no headers Middleware with stsSeconds on the route",
                     https_redirect=redirect[0], https_redirect_source=redirect[1])


def traefik_static_redirect(env: Env, entrypoint: str = "web") -> str | None:
    """The entry point a Traefik instance redirects `entrypoint` to (static configuration arguments)."""
    for c in env.controllers:
        if c.product != "traefik":
            continue
        for key in (f"entrypoints.{entrypoint}.http.redirections.entrypoint.to",
                    f"entrypoints.{entrypoint}.http.redirections.to"):
            if c.args.get(key):
                return c.args[key]
    return None


def traefik_port(env: Env, entrypoint: str, default: int) -> int:
    for c in env.controllers:
        addr = c.args.get(f"entrypoints.{entrypoint.lower()}.address") if c.product == "traefik" else None
        if addr and addr.rsplit(":", 1)[-1].split("/")[0].isdigit():
            return int(addr.rsplit(":", 1)[-1].split("/")[0])
    return {"web": 80, "websecure": 443}.get(entrypoint, default)


def _route_hosts(route: Obj) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for r in (route.get("spec") or {}).get("routes") or []:
        for m in _HOST_MATCHER.finditer(str(r.get("match") or "")):
            out += [(h, r) for h in _BACKTICKED.findall(m.group(1))]
    return out


def traefik_routes(env: Env) -> list[IngressHost]:
    inv = env.inv
    all_routes = inv.objects("IngressRoute")
    controller = next((c for c in env.controllers if c.product == "traefik"), None)
    plain: dict[str, list[tuple[Obj, dict[str, Any]]]] = {}
    for ir in all_routes:
        if not (ir.get("spec") or {}).get("tls"):
            for host, rule in _route_hosts(ir):
                plain.setdefault(host, []).append((ir, rule))
    out: list[IngressHost] = []
    tls_hosts: set[str] = set()
    static = traefik_static_redirect(env)
    for ir in all_routes:
        spec = ir.get("spec") or {}
        tls = spec.get("tls")
        if not tls:
            continue
        ns = str(ir["metadata"].get("namespace"))
        entry = str((spec.get("entryPoints") or ["websecure"])[0])
        for host, rule in _route_hosts(ir):
            tls_hosts.add(host)
            mws = [m for m in (env.middleware(str(x.get("namespace") or ns), str(x.get("name")))
                               for x in rule.get("middlewares") or []) if m is not None]
            redirect = _traefik_redirect(env, host, plain.get(host, []), static)
            s = env.subject("IngressRoute", ir, host, traefik_port(env, entry, 443), True,
                            ingress_class=entry, controller="traefik", tls_mode="terminate",
                            secret_name=str(tls["secretName"]) if tls.get("secretName") else None, secret_found=None,
                            backends=sorted({f"{x.get('name')}:{x.get('port')}" for x in rule.get("services") or []}))
            if tls.get("secretName"):
                s.secret_namespace = ns
            elif tls.get("certResolver"):
                s.mark_unknown("secret_found", f"certificate from Traefik certResolver {tls['certResolver']} is kept "
                               "in Traefik's ACME storage, not in a Secret; verify it with --probe-tls")
            else:
                s.secret_found = False
                s.fallback_certificate = "Traefik default certificate (self-signed TRAEFIK DEFAULT CERT unless a " \
                                         "TLSStore sets one)"
            for m in mws:
                s.evidence.append(ObjectRef.of(m))
            if controller is not None:
                s.evidence.append(ObjectRef.of(controller.workload))
            s.tls_policy = traefik_policy(env, ns, tls.get("options"), mws, redirect)
            out.append(s)
    for host, entries in sorted(plain.items()):
        if host in tls_hosts or static:
            continue
        serving = [(ir, rule) for ir, rule in entries if not _redirect_middleware(env, ir, rule)]
        if not serving:
            continue
        ir, rule = serving[0]
        entry = str(((ir.get("spec") or {}).get("entryPoints") or ["web"])[0])
        s = env.subject("IngressRoute", ir, host, traefik_port(env, entry, 80), False, ingress_class=entry,
                        controller="traefik", secret_name=None, secret_found=None, https_redirect=False,
                        https_redirect_source="IngressRoute without tls and without a redirectScheme Middleware",
                        backends=sorted({f"{x.get('name')}:{x.get('port')}" for x in rule.get("services") or []}))
        out.append(s)
    return out


def _redirect_middleware(env: Env, ir: Obj, rule: dict[str, Any]) -> bool:
    ns = str(ir["metadata"].get("namespace"))
    for ref in rule.get("middlewares") or []:
        m = env.middleware(str(ref.get("namespace") or ns), str(ref.get("name")))
        if m and str(((m.get("spec") or {}).get("redirectScheme") or {}).get("scheme", "")).lower() == "https":
            return True
    return False


def _traefik_redirect(env: Env, host: str, plain: list[tuple[Obj, dict[str, Any]]],
                      static: str | None) -> tuple[bool, str]:
    if static:
        return True, f"Traefik argument --entryPoints.web.http.redirections.entryPoint.to={static}"
    serving = [ir for ir, rule in plain if not _redirect_middleware(env, ir, rule)]
    if serving:
        return False, f"IngressRoute {_names(serving)} serves {host} on a plain entry point without redirectScheme"
    if plain:
        return True, f"IngressRoute {_names([p[0] for p in plain])} redirects {host} with a redirectScheme Middleware"
    return True, f"no plain-HTTP IngressRoute serves {host}"


# --- Contour HTTPProxy ---------------------------------------------------------------------------------

def contour_proxies(env: Env) -> list[IngressHost]:
    out: list[IngressHost] = []
    for hp in env.inv.objects("HTTPProxy", "projectcontour.io"):
        spec = hp.get("spec") or {}
        vhost = spec.get("virtualhost") or {}
        if not vhost.get("fqdn"):
            continue  # an included (child) proxy; its root carries the virtual host
        host, ns = str(vhost["fqdn"]), str(hp["metadata"].get("namespace"))
        tls = vhost.get("tls")
        routes = list(spec.get("routes") or [])
        backends = sorted({f"{x.get('name')}:{x.get('port')}" for r in routes for x in r.get("services") or []})
        if not tls:
            out.append(env.subject("HTTPProxy", hp, host, 80, False, ingress_class=spec.get("ingressClassName"),
                                   controller="contour", secret_name=None, secret_found=None, backends=backends,
                                   https_redirect=False,
                                   https_redirect_source="virtualhost without tls: served over plain HTTP"))
            continue
        s = env.subject("HTTPProxy", hp, host, 443, True, ingress_class=spec.get("ingressClassName"),
                        controller="contour", tls_mode="passthrough" if tls.get("passthrough") else "terminate",
                        secret_name=None, secret_found=None, backends=backends)
        if tls.get("passthrough"):
            s.mark_unknown("secret_found", "tls.passthrough: the backend serves the certificate; verify with --probe-tls")
        elif tls.get("secretName"):
            ref = str(tls["secretName"])
            s.secret_namespace, s.secret_name = ref.split("/", 1) if "/" in ref else (ns, ref)
        minimum = str(tls.get("minimumProtocolVersion") or "1.2")
        low = "TLSv1.3" if minimum == "1.3" else "TLSv1.2"  # any other value falls back to 1.2 (A.6)
        insecure = [r for r in routes if r.get("permitInsecure")]
        sts = any(str(h.get("name", "")).lower() == "strict-transport-security"
                  for r in routes for h in ((r.get("responseHeadersPolicy") or {}).get("set") or []))
        s.tls_policy = TLSPolicy(
            controller="contour", protocols=protocols_between(low),
            protocols_source=f"HTTPProxy tls.minimumProtocolVersion={minimum}" if tls.get("minimumProtocolVersion")
            else "Contour default minimumProtocolVersion 1.2",
            weak_protocols=[], ciphers=None, ciphers_source="Contour default cipher suites", hsts=sts,
            hsts_source="a route's responseHeadersPolicy sets Strict-Transport-Security" if sts
            else "no route sets a Strict-Transport-Security response header",
            https_redirect=not insecure,
            https_redirect_source="a route sets permitInsecure: true, so plain HTTP is served" if insecure
            else "Contour answers plain HTTP to a TLS virtual host with a 301 to https")
        out.append(s)
    return out


# --- Services exposed without TLS in front -------------------------------------------------------------

def exposed_services(env: Env) -> list[IngressHost]:
    """LoadBalancer and NodePort Service ports, except those of TLS-terminating proxies (listed for review)."""
    proxies = [w for kind in ("Deployment", "DaemonSet", "StatefulSet") for w in env.inv.objects(kind, "apps")
               if _is_proxy(env, w)]
    out: list[IngressHost] = []
    for svc in env.inv.objects("Service", ""):
        spec = svc.get("spec") or {}
        stype = str(spec.get("type") or "ClusterIP")
        if stype not in ("LoadBalancer", "NodePort"):
            continue
        labels = dict(svc["metadata"].get("labels") or {})
        # Services the gateway controllers create for a Gateway: their TLS is the Gateway's listeners'.
        if any(k in labels for k in GATEWAY_SERVICE_LABELS):
            continue
        selector = spec.get("selector") or {}
        fronted = [w for w in proxies if w["metadata"].get("namespace") == svc["metadata"].get("namespace")
                   and selector and matches({"matchLabels": selector},
                                            dict(((pod_template_spec(w) or {}).get("metadata") or {}).get("labels") or {}))]
        if fronted:
            continue
        addresses = status_addresses(svc)
        for p in spec.get("ports") or []:
            port = int(p.get("port") or 0) if stype == "LoadBalancer" else int(p.get("nodePort") or 0)
            host = addresses[0] if stype == "LoadBalancer" and addresses else (
                "(load balancer address pending)" if stype == "LoadBalancer" else "(every node address)")
            if not port:  # a manifest before the API server assigned the nodePort
                port, host = int(p.get("port") or 0), "(every node address, nodePort not yet assigned)"
            s = env.subject("Service", svc, host, port, False, ingress_class=None, controller=None, secret_name=None,
                            secret_found=None, service_type=stype, backends=[f"{svc['metadata']['name']}:{p.get('port')}"])
            s.public = bool(addresses) and all(is_public(a, env.scope) for a in addresses) if stype == "LoadBalancer" \
                else False
            declared = " ".join(str(p.get(k) or "") for k in ("name", "appProtocol")).lower()
            if any(t in declared for t in ("https", "tls", "grpcs", "ssl")):
                s.mark_unknown("app_tls", f"port {p.get('port')} is declared TLS ({declared.strip()}) but the API "
                               "cannot show that it is; verify with --probe-tls")
            elif "http" in declared:
                s.app_tls, s.app_tls_source = False, f"port {p.get('port')} is declared plain HTTP ({declared.strip()})"
            else:
                s.mark_unknown("app_tls", f"{stype} port {p.get('port')}/{p.get('protocol', 'TCP')} has no TLS-"
                               "terminating proxy in front and the API cannot show whether the application encrypts; "
                               "review it, or run --probe-tls")
            out.append(s)
    return out


# Labels gateway controllers put on the Services they create for a Gateway (Gateway API, Istio, Envoy Gateway).
GATEWAY_SERVICE_LABELS = ("gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name",
                          "gateway.envoyproxy.io/owning-gateway-name", "gateway.envoyproxy.io/owning-gateway-class")


def _is_proxy(env: Env, w: Obj) -> bool:
    """A workload that is a TLS-terminating proxy: a known proxy image, an Istio gateway deployment (the gateway
    Helm chart uses `image: auto` and the `gateway` injection template), a workload an Istio Gateway selects, or
    an Envoy Gateway proxy."""
    if any(p in str(c.get("image", "")) for c in containers_of(w) for p in PROXY_IMAGES):
        return True
    tpl = pod_template_spec(w) or {}
    meta = tpl.get("metadata") or {}
    labels, annotations = dict(meta.get("labels") or {}), dict(meta.get("annotations") or {})
    if "gateway" in str(annotations.get("inject.istio.io/templates", "")).split(","):
        return True
    if any(k in labels for k in GATEWAY_SERVICE_LABELS) or labels.get("istio") in ("ingressgateway", "egressgateway"):
        return True
    # An Istio Gateway's selector picks gateway pods in any namespace (unless PILOT_SCOPE_GATEWAY_TO_NAMESPACE).
    return any(bool((gw.get("spec") or {}).get("selector")) and matches({"matchLabels": gw["spec"]["selector"]}, labels)
               for gw in env.inv.objects("Gateway", "networking.istio.io"))


def collect_other(env: Env) -> list[IngressHost]:
    """Every entry point that is not an Ingress."""
    return gateway_api(env) + istio_gateways(env) + traefik_routes(env) + contour_proxies(env) + exposed_services(env)


# --- cloud load-balancer Ingresses ---------------------------------------------------------------------
# The load balancer runs outside the cluster: TLS is judged from the Ingress, its annotations and the in-cluster
# objects the controller reads (GKE FrontendConfig and ManagedCertificate); a TLS policy or certificate held
# only in the cloud is unknown, and the reason names the cloud object to attach.

GKE_ANNOTATIONS = ("networking.gke.io/", "ingress.gcp.kubernetes.io/", "kubernetes.io/ingress.global-static-ip-name",
                   "kubernetes.io/ingress.regional-static-ip-name", "kubernetes.io/ingress.allow-http")
GKE_FRONTEND_CONFIG = "networking.gke.io/v1beta1.FrontendConfig"
# Google Cloud load balancers without an SSL policy use the COMPATIBLE profile with minimum TLS 1.0
# (cloud.google.com/load-balancing/docs/ssl-policies-concepts), which offers CBC suites with SHA-1.
GCP_DEFAULT_WEAK = ["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
                    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]
# AWS Load Balancer Controller: ssl-policy defaults to ELBSecurityPolicy-2016-08 (docs/guide/ingress/annotations.md).
ALB_DEFAULT_POLICY = "ELBSecurityPolicy-2016-08"
# Predefined ELB security policies: lowest protocol, and whether they offer CBC suites with SHA-1 (None: not in
# this table, so the cipher list is unknown here). Source: Elastic Load Balancing "Security policies" tables.
ALB_POLICIES: dict[str, tuple[str, bool | None]] = {
    "ELBSecurityPolicy-2016-08": ("TLSv1", True), "ELBSecurityPolicy-2015-05": ("TLSv1", True),
    "ELBSecurityPolicy-TLS-1-0-2015-04": ("TLSv1", True), "ELBSecurityPolicy-FS-2018-06": ("TLSv1", True),
    "ELBSecurityPolicy-TLS13-1-0-2021-06": ("TLSv1", True), "ELBSecurityPolicy-TLS-1-1-2017-01": ("TLSv1.1", True),
    "ELBSecurityPolicy-FS-1-1-2019-08": ("TLSv1.1", True), "ELBSecurityPolicy-TLS13-1-1-2021-06": ("TLSv1.1", True),
    "ELBSecurityPolicy-TLS-1-2-2017-01": ("TLSv1.2", True), "ELBSecurityPolicy-TLS-1-2-Ext-2018-06": ("TLSv1.2", True),
    "ELBSecurityPolicy-FS-1-2-2019-08": ("TLSv1.2", True), "ELBSecurityPolicy-FS-1-2-Res-2019-08": ("TLSv1.2", False),
    "ELBSecurityPolicy-FS-1-2-Res-2020-10": ("TLSv1.2", False),
    "ELBSecurityPolicy-TLS13-1-2-2021-06": ("TLSv1.2", False),
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06": ("TLSv1.2", False),
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06": ("TLSv1.2", True),
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06": ("TLSv1.2", True),
    "ELBSecurityPolicy-TLS13-1-3-2021-06": ("TLSv1.3", False),
}


def cloud_product(env: Env, annotations: dict[str, str], cls_name: str | None, class_controller: str | None,
                  ) -> str | None:
    """gce, aws-alb or azure-application-gateway when a cloud controller serves this Ingress."""
    if class_controller == "ingress.k8s.aws/alb" or (class_controller is None and cls_name == "alb"):
        return "aws-alb"
    if class_controller == "azure/application-gateway" or (
            class_controller is None and cls_name in ("azure/application-gateway", "azure-application-gateway")):
        return "azure-application-gateway"
    if cls_name in ("gce", "gce-internal") and class_controller in (None, "k8s.io/ingress-gce"):
        return "gce"
    if cls_name is None and class_controller is None:
        if any(k.startswith(GKE_ANNOTATIONS) for k in annotations):
            return "gce"
        # On GKE an Ingress without a class (and no default IngressClass) is served by the GCE controller.
        if any("cloud.google.com/gke-nodepool" in (n["metadata"].get("labels") or {})
               for n in env.inv.objects("Node", "")):
            return "gce"
    return None


def cloud_ingress(env: Env, ing: Obj, annotations: dict[str, str], cls_name: str | None,
                  class_controller: str | None) -> list[IngressHost] | None:
    """Entry points of an Ingress served by a cloud load balancer, or None when no cloud controller serves it."""
    product = cloud_product(env, annotations, cls_name, class_controller)
    if product == "gce":
        return _gce(env, ing, annotations, cls_name)
    if product == "aws-alb":
        return _alb(env, ing, annotations, cls_name)
    if product == "azure-application-gateway":
        return _agic(env, ing, annotations, cls_name)
    return None


def _rule_hosts(ing: Obj) -> list[tuple[str, list[str]]]:
    spec = ing.get("spec") or {}
    by_host: dict[str, list[str]] = {}
    for rule in spec.get("rules") or []:
        backends = by_host.setdefault(str(rule.get("host") or "*"), [])
        for path in ((rule.get("http") or {}).get("paths")) or []:
            svc = ((path.get("backend") or {}).get("service")) or {}
            port = svc.get("port") or {}
            backends.append(f"{svc.get('name')}:{port.get('number') or port.get('name')}")
    default = ((spec.get("defaultBackend") or {}).get("service")) or {}
    if default:
        port = default.get("port") or {}
        by_host.setdefault("*", []).append(f"{default.get('name')}:{port.get('number') or port.get('name')}")
    return sorted(by_host.items())


def _tls_secret_for(ing: Obj, host: str) -> str | None:
    entries = (ing.get("spec") or {}).get("tls") or []
    hit = next((t for t in entries if host in (t.get("hosts") or []) and t.get("secretName")), None)
    return str(hit["secretName"]) if hit else None


def _gce(env: Env, ing: Obj, annotations: dict[str, str], cls_name: str | None) -> list[IngressHost]:
    """GKE Ingress: certificates from spec.tls Secrets, ManagedCertificates or pre-shared Google certificates
    (served by SNI for every host); FrontendConfig redirectToHttps and sslPolicy; HTTP on port 80 unless
    kubernetes.io/ingress.allow-http is "false"."""
    ns = str(ing["metadata"].get("namespace") or "default")
    secrets = [str(t["secretName"]) for t in (ing.get("spec") or {}).get("tls") or [] if t.get("secretName")]
    managed = [m.strip() for m in annotations.get("networking.gke.io/managed-certificates", "").split(",") if m.strip()]
    pre_shared = [c.strip() for c in annotations.get("ingress.gcp.kubernetes.io/pre-shared-cert", "").split(",")
                  if c.strip()]
    has_tls = bool(secrets or managed or pre_shared)
    allow_http = annotations.get("kubernetes.io/ingress.allow-http", "true").strip().lower() != "false"
    fc_name = annotations.get(GKE_FRONTEND_CONFIG)
    fc = env.inv.get("FrontendConfig", ns, fc_name, group="networking.gke.io") if fc_name else None
    fc_why = None
    if fc_name and fc is None:
        st = env.inv.status("FrontendConfig", "networking.gke.io", ns)
        fc_why = (f"FrontendConfig {ns}/{fc_name} named by the Ingress was not read ({st.status})"
                  if st.status != "ok" else None)
    fc_spec = (fc or {}).get("spec") or {}
    redirect_cfg = fc_spec.get("redirectToHttps") or {}
    out: list[IngressHost] = []
    for host, backends in _rule_hosts(ing):
        if not has_tls:
            s = env.subject("Ingress", ing, host, 80, False, ingress_class=cls_name, controller="gce",
                            secret_name=None, secret_found=None, backends=backends, https_redirect=False,
                            https_redirect_source="the GKE load balancer has only an HTTP frontend",
                            tls_source="no spec.tls Secret, networking.gke.io/managed-certificates or "
                                       "ingress.gcp.kubernetes.io/pre-shared-cert on the Ingress")
            out.append(s)
            continue
        s = env.subject("Ingress", ing, host, 443, True, ingress_class=cls_name, controller="gce",
                        tls_mode="terminate", secret_name=None, secret_found=None, backends=backends)
        if fc is not None:
            s.evidence.append(ObjectRef.of(fc))
        _gce_certificate(env, s, ns, host, secrets, managed, pre_shared, ing)
        # Plain HTTP.
        if not allow_http:
            s.https_redirect, s.https_redirect_source = True, \
                'kubernetes.io/ingress.allow-http: "false": the load balancer has no HTTP frontend'
        elif fc_why:
            s.mark_unknown("https_redirect", fc_why)
        elif redirect_cfg.get("enabled") is True:
            s.https_redirect, s.https_redirect_source = True, \
                f"FrontendConfig {ns}/{fc_name} redirectToHttps.enabled: true"
        else:
            s.https_redirect = False
            s.https_redirect_source = ("the GKE load balancer also serves HTTP on port 80 (kubernetes.io/ingress."
                                       "allow-http is not \"false\") and no FrontendConfig sets redirectToHttps"
                                       + (f" (FrontendConfig {ns}/{fc_name} not found)" if fc_name and fc is None
                                          else ""))
        _cloud_hsts(env, s, ns, "the Google load balancer adds no Strict-Transport-Security header")
        # TLS versions and suites.
        if fc_why:
            s.mark_unknown("tls_policy", fc_why)
        elif fc_spec.get("sslPolicy"):
            policy = str(fc_spec["sslPolicy"])
            s.mark_unknown("tls_policy", f"TLS versions and suites come from the Google Cloud SSL policy '{policy}' "
                           f"(FrontendConfig {ns}/{fc_name} spec.sslPolicy), which is held in Google Cloud: attach "
                           f"`gcloud compute ssl-policies describe {policy}`, or run --probe-tls")
        else:
            s.tls_policy = TLSPolicy(
                controller="gce", protocols=list(ALL_PROTOCOLS[:]), weak_protocols=["TLSv1", "TLSv1.1"],
                protocols_source="no FrontendConfig sslPolicy: Google Cloud's default SSL policy (COMPATIBLE "
                                 "profile, minimum TLS 1.0)",
                ciphers=":".join(GCP_DEFAULT_WEAK), ciphers_source="Google Cloud default SSL policy (COMPATIBLE)",
                weak_ciphers=list(GCP_DEFAULT_WEAK), hsts=s.hsts, hsts_source=s.hsts_source,
                https_redirect=bool(s.https_redirect), https_redirect_source=s.https_redirect_source)
        out.append(s)
    return out


def _gce_certificate(env: Env, s: IngressHost, ns: str, host: str, secrets: list[str], managed: list[str],
                     pre_shared: list[str], ing: Obj) -> None:
    s.tls_source = "GKE Ingress certificates (served by SNI for every host of the load balancer)"
    for name in managed:
        mc = env.inv.get("ManagedCertificate", ns, name, group="networking.gke.io")
        if mc is None:
            continue
        domains = [str(d) for d in (mc.get("spec") or {}).get("domains") or []]
        if any(d.startswith("<fingerprint:") for d in domains):  # kept only as a fingerprint: not readable
            s.cloud_certificate = f"GKE ManagedCertificate {ns}/{name}"
            s.mark_unknown("cloud_certificate_ready", f"the domains of ManagedCertificate {ns}/{name} were not kept "
                           "(redacted), so whether it names the host cannot be read")
            return
        # A request without a matching name ('*': the default backend, reached by address) gets one of the
        # load balancer's certificates, so any of them stands for it.
        if host != "*" and not any(d == host or fnmatch.fnmatchcase(host, d) for d in domains):
            continue
        s.evidence.append(ObjectRef.of(mc))
        status = mc.get("status") or {}
        per_domain = {str(d.get("domain")): str(d.get("status")) for d in status.get("domainStatus") or []}
        state = per_domain.get(host) or str(status.get("certificateStatus") or "no status")
        if host == "*" and state != "Active":
            continue
        s.cloud_certificate = f"GKE ManagedCertificate {ns}/{name} ({state})"
        s.cloud_certificate_ready = state == "Active"
        s.tls_source = f"networking.gke.io/managed-certificates: ManagedCertificate {ns}/{name} names {host}"
        return
    secret = _tls_secret_for(ing, host) or (secrets[0] if secrets else None)
    if secret:
        s.secret_name, s.secret_namespace = secret, ns
        s.fallback_certificate = "another certificate of the load balancer (GKE picks one by SNI)"
        s.tls_source = f"spec.tls Secret {ns}/{secret} (uploaded to the load balancer by GKE)"
        return
    if pre_shared:
        s.cloud_certificate = f"Google Cloud SSL certificate(s) {', '.join(pre_shared)}"
        s.tls_source = f"ingress.gcp.kubernetes.io/pre-shared-cert: {', '.join(pre_shared)}"
        s.mark_unknown("cloud_certificate_ready", f"the certificate is the Google Cloud SSL certificate "
                       f"{', '.join(pre_shared)}, held in Google Cloud: attach `gcloud compute ssl-certificates "
                       f"describe {pre_shared[0]}`, or run --probe-tls")
        return
    missing = [m for m in managed if env.inv.get("ManagedCertificate", ns, m, group="networking.gke.io") is None]
    st = env.inv.status("ManagedCertificate", "networking.gke.io", ns)
    s.cloud_certificate = f"GKE ManagedCertificate {', '.join(managed)}"
    if missing and st.status != "ok":
        s.mark_unknown("cloud_certificate_ready", f"ManagedCertificate {ns}/{missing[0]} was not read ({st.status})")
    else:
        s.cloud_certificate_ready = False
        s.tls_source = (f"no ManagedCertificate named by networking.gke.io/managed-certificates "
                        f"({', '.join(managed)}) lists {host}")


def svc_name(backend: str) -> str:
    return backend.rpartition(":")[0]


def _cloud_hsts(env: Env, s: IngressHost, ns: str, default: str) -> None:
    """HSTS a GKE BackendConfig adds as a custom response header to the host's backend Services."""
    for b in s.backends:
        svc = env.inv.get("Service", ns, b.rpartition(":")[0], group="")
        ann = dict(((svc or {}).get("metadata") or {}).get("annotations") or {})
        ref = ann.get("cloud.google.com/backend-config") or ann.get("beta.cloud.google.com/backend-config")
        for name in re.findall(r'"([^"]+)"\s*[,}]', ref or ""):
            bc = env.inv.get("BackendConfig", ns, name, group="cloud.google.com")
            st = env.inv.status("BackendConfig", "cloud.google.com", ns)
            if bc is None and st.status != "ok":
                s.mark_unknown("hsts", f"BackendConfig {ns}/{name} (named by Service {svc_name(b)}) was not read "
                               f"({st.status}); it may add Strict-Transport-Security")
                return
            headers = (((bc or {}).get("spec") or {}).get("customResponseHeaders") or {}).get("headers") or []
            if any(str(h).lower().startswith("strict-transport-security:") for h in headers):
                s.hsts, s.hsts_source = True, f"BackendConfig {ns}/{name} customResponseHeaders sets " \
                                              "Strict-Transport-Security"
                if bc is not None:
                    s.evidence.append(ObjectRef.of(bc))
                return
    s.hsts, s.hsts_source = False, default + " and no BackendConfig customResponseHeaders sets one"


def _alb(env: Env, ing: Obj, annotations: dict[str, str], cls_name: str | None) -> list[IngressHost]:
    """AWS Load Balancer Controller: listen-ports (default HTTP 80, or HTTPS 443 with certificates), ACM
    certificates from certificate-arn or discovered from spec.tls hosts, ssl-redirect, ssl-policy
    (default ELBSecurityPolicy-2016-08)."""
    prefix = "alb.ingress.kubernetes.io"
    arns = [a.strip() for a in annotations.get(f"{prefix}/certificate-arn", "").split(",") if a.strip()]
    tls_hosts = {str(h) for t in (ing.get("spec") or {}).get("tls") or [] for h in t.get("hosts") or []}
    raw_ports = annotations.get(f"{prefix}/listen-ports")
    ports: list[tuple[str, int]] = []
    if raw_ports:
        try:
            parsed = json.loads(raw_ports)
            ports = [(str(k).upper(), int(v)) for entry in parsed for k, v in dict(entry).items()]
        except (ValueError, TypeError, AttributeError):
            ports = []
    if not ports:
        ports = [("HTTPS", 443)] if arns or tls_hosts else [("HTTP", 80)]
    https = [p for proto, p in ports if proto == "HTTPS"]
    http = [p for proto, p in ports if proto == "HTTP"]
    redirect_to = annotations.get(f"{prefix}/ssl-redirect")
    policy_name = annotations.get(f"{prefix}/ssl-policy", ALB_DEFAULT_POLICY)
    listener_attrs = [str(v) for k, v in annotations.items() if k.startswith(f"{prefix}/listener-attributes")]
    hsts_attr = any("strict_transport_security" in v for v in listener_attrs)
    # Listener attributes kept only as a fingerprint (redaction) cannot show whether they add HSTS.
    hsts_unreadable = not hsts_attr and any(v.startswith("<fingerprint:") for v in listener_attrs)
    out: list[IngressHost] = []
    for host, backends in _rule_hosts(ing):
        if not https:
            for port in http:
                out.append(env.subject("Ingress", ing, host, port, False, ingress_class=cls_name, controller="aws-alb",
                                       secret_name=None, secret_found=None, backends=backends, https_redirect=False,
                                       https_redirect_source=f"the ALB listens only on HTTP {port}",
                                       tls_source=f"{prefix}/listen-ports has no HTTPS listener"))
            continue
        for port in https:
            s = env.subject("Ingress", ing, host, port, True, ingress_class=cls_name, controller="aws-alb",
                            tls_mode="terminate", secret_name=None, secret_found=None, backends=backends)
            if arns:
                s.cloud_certificate = f"ACM certificate {', '.join(arns)}"
                s.tls_source = f"{prefix}/certificate-arn"
                s.mark_unknown("cloud_certificate_ready", f"the certificate is held in AWS Certificate Manager "
                               f"({arns[0]}): attach `aws acm describe-certificate --certificate-arn {arns[0]}`, "
                               "or run --probe-tls")
            else:
                s.cloud_certificate = f"ACM certificate discovered for {host}"
                s.tls_source = "spec.tls hosts (the controller discovers a matching ACM certificate; secretName " \
                               "is ignored)"
                s.mark_unknown("cloud_certificate_ready", f"the controller picks an ACM certificate for {host} by "
                               "name at reconcile time; attach `aws acm list-certificates` for it, or run --probe-tls")
            if not http:
                redirect, source = True, f"the ALB has no HTTP listener ({prefix}/listen-ports)"
            elif redirect_to:
                redirect, source = True, f"{prefix}/ssl-redirect: '{redirect_to}'"
            else:
                redirect, source = False, (f"the ALB also listens on HTTP {', '.join(map(str, http))} without "
                                           f"{prefix}/ssl-redirect")
            entry = ALB_POLICIES.get(policy_name)
            source_p = f"{prefix}/ssl-policy {policy_name}" if f"{prefix}/ssl-policy" in annotations else \
                f"no {prefix}/ssl-policy: the controller's default {ALB_DEFAULT_POLICY}"
            hsts_source = "an ALB listener attribute sets Strict-Transport-Security" if hsts_attr else \
                "the ALB adds no Strict-Transport-Security header (no listener attribute sets one)"
            if entry is None:
                s.mark_unknown("tls_policy", f"ELB security policy '{policy_name}' is not one auditpack knows (a "
                               "custom or newer policy): attach `aws elbv2 describe-ssl-policies --names "
                               f"{policy_name}`, or run --probe-tls")
                s.https_redirect, s.https_redirect_source = redirect, source
                s.hsts, s.hsts_source = hsts_attr, hsts_source
            else:
                low, weak_cbc = entry
                protocols = protocols_between(low)
                s.tls_policy = TLSPolicy(
                    controller="aws-alb", protocols=protocols, protocols_source=source_p,
                    weak_protocols=[p for p in protocols if p in WEAK_PROTOCOLS],
                    ciphers=None, ciphers_source=f"{policy_name} cipher list",
                    weak_ciphers=["ECDHE-RSA-AES128-SHA", "AES128-SHA"] if weak_cbc else [],
                    hsts=hsts_attr, hsts_source=hsts_source, https_redirect=redirect, https_redirect_source=source)
            if hsts_unreadable:
                s.mark_unknown("hsts", f"{prefix}/listener-attributes could not be read (kept as a fingerprint); "
                               "run --probe-tls to observe Strict-Transport-Security")
            out.append(s)
    return out


def _agic(env: Env, ing: Obj, annotations: dict[str, str], cls_name: str | None) -> list[IngressHost]:
    """Azure Application Gateway Ingress Controller: spec.tls Secrets or a certificate installed on the gateway
    (appgw-ssl-certificate); ssl-redirect (default false); the TLS policy lives on the gateway in Azure."""
    prefix = "appgw.ingress.kubernetes.io"
    ns = str(ing["metadata"].get("namespace") or "default")
    gw_cert = annotations.get(f"{prefix}/appgw-ssl-certificate")
    profile = annotations.get(f"{prefix}/appgw-ssl-profile")
    redirect = annotations.get(f"{prefix}/ssl-redirect", "false").strip().lower() == "true"
    out: list[IngressHost] = []
    for host, backends in _rule_hosts(ing):
        secret = _tls_secret_for(ing, host)
        if not secret and not gw_cert:
            out.append(env.subject("Ingress", ing, host, 80, False, ingress_class=cls_name,
                                   controller="azure-application-gateway", secret_name=None, secret_found=None,
                                   backends=backends, https_redirect=False,
                                   https_redirect_source="the Application Gateway listener for this host is HTTP",
                                   tls_source=f"{host} is not under spec.tls and no {prefix}/appgw-ssl-certificate"))
            continue
        s = env.subject("Ingress", ing, host, 443, True, ingress_class=cls_name, controller="azure-application-gateway",
                        tls_mode="terminate", secret_name=secret, secret_found=None, backends=backends)
        if secret:
            s.secret_namespace, s.tls_source = ns, f"spec.tls Secret {ns}/{secret}"
            s.fallback_certificate = "no certificate (the gateway listener is not created)"
        else:
            s.cloud_certificate = f"Application Gateway certificate {gw_cert}"
            s.tls_source = f"{prefix}/appgw-ssl-certificate: {gw_cert}"
            s.mark_unknown("cloud_certificate_ready", f"the certificate '{gw_cert}' is installed on the Application "
                           "Gateway in Azure: attach `az network application-gateway ssl-cert show`, or run "
                           "--probe-tls")
        where = f"SSL profile '{profile}' ({prefix}/appgw-ssl-profile)" if profile else "the gateway's SSL policy"
        s.mark_unknown("tls_policy", f"TLS versions and suites come from {where}, which is held on the Application "
                       "Gateway in Azure: attach `az network application-gateway ssl-policy show`, or run --probe-tls")
        s.https_redirect = redirect
        s.https_redirect_source = f"{prefix}/ssl-redirect: \"true\"" if redirect else \
            f"no {prefix}/ssl-redirect: the gateway also serves the host over HTTP"
        rewrite = annotations.get(f"{prefix}/rewrite-rule-set")
        if rewrite:
            s.mark_unknown("hsts", f"response headers may be set by rewrite rule set '{rewrite}' on the gateway "
                           "(held in Azure); run --probe-tls")
        else:
            s.hsts, s.hsts_source = False, "the Application Gateway adds no Strict-Transport-Security header " \
                                           "(no rewrite rule set is attached)"
        out.append(s)
    return out
