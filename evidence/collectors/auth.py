"""Authentication in front of every entry point (`host_auth`, same ids as `ingress_host`) and the oauth2-proxy
Deployments behind the auth URLs (`auth_proxy`) (PCI DSS 8.2.8, 8.3.1, 8.5.1; HSLF-FS 2016:40 3 kap. 15 § p. 2;
cluster-facts.md B.1-B.4).

Entry points come from the ingress collector (`entry_points`), so the ids match. Per kind:
- Ingress (ingress-nginx): annotation `auth-url` (and `auth-signin`, `auth-response-headers`), else the controller
  ConfigMap's `global-auth-url` unless `enable-global-auth: "false"`; `auth-type` basic/digest; client certificates
  (`auth-tls-verify-client: on`). Ingress served by Traefik: `router.middlewares` annotation.
- Traefik IngressRoute: the route's Middlewares (forwardAuth, basicAuth, chains).
- Contour HTTPProxy: `virtualhost.authorization` (ext-auth), `authPolicy.disabled` routes.
- Any kind: Istio RequestAuthentication + an enforced AuthorizationPolicy that requires a request principal (or a
  CUSTOM ext-authz policy) on the backend workloads. RequestAuthentication alone admits requests without a
  token; `istio.io/dry-run: "true"` policies are not enforced.
A second route, or an exposed Service, reaching the same backend without authentication is a bypass (8.5.1).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from evidence.collectors import adminui, ingress, oauth2proxy
from evidence.collectors.entrypoints import Controller, controllers
from evidence.collectors.scoping import Scopes, why
from evidence.collectors.toplevel import Workload, workloads
from evidence.facts import AuthProxy, HostAuth, IngressHost
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.selectors import matches
from evidence.scope import Scope

PUBLIC_ACCESS_ANNOTATION = "compliance.auditpack.io/public-access"
TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
DRY_RUN = "istio.io/dry-run"
IDP_IMAGES = ("keycloak", "dexidp/dex", "/dex:", "authelia", "authentik", "zitadel", "ory/hydra")
PROXY_IMAGE = "oauth2-proxy"
KIND_GROUPS = {"Ingress": "networking.k8s.io", "IngressRoute": "traefik.io", "HTTPProxy": "projectcontour.io",
               "Gateway": "gateway.networking.k8s.io", "IstioGateway": "networking.istio.io", "Service": ""}
_HOST_MATCHER = re.compile(r"Host\(([^)]*)\)")
_BACKTICKED = re.compile(r"[`\"]([^`\"]+)[`\"]")
MAX_FORWARD_AUTH_DEPTH = 4  # Traefik chains of chains


@dataclass
class _Layer:
    """What one authentication mechanism contributes to a host."""

    mechanism: str
    url: str | None = None
    signin: str | None = None
    source: str = ""
    response_headers: list[str] = field(default_factory=list)
    forwards_authorization: bool | None = None  # None: not a forward-auth mechanism
    basic: bool = False
    objects: list[Obj] = field(default_factory=list)


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[HostAuth | AuthProxy]:
    del as_of
    scopes = Scopes(inv, scope)
    hosts = ingress.entry_points(inv, scope)
    ctx = _Context.build(inv, scope, hosts)
    proxies = _proxies(inv, ctx)
    subjects = [_host(ctx, scopes, h, proxies) for h in hosts]
    _bypasses(ctx, subjects)
    for p in proxies.values():
        p.hosts = sorted({s.name for s in subjects if s.proxy == p.id})
    out: list[HostAuth | AuthProxy] = []
    out.extend(subjects)
    out.extend(sorted(proxies.values(), key=lambda p: p.id))
    return out


@dataclass
class _Context:
    inv: Inventory
    scope: Scope
    controllers: list[Controller]
    workloads: list[Workload]
    entry_hosts: dict[str, list[IngressHost]]  # host name -> entry points serving it
    istio_present: bool
    istio_problem: str | None
    root_namespace: str
    mesh: dict[str, Any]
    # Workloads by namespace, built on first use: a scan of every workload per entry point grew with
    # namespaces x workloads (16.8x the time for 5x the pods, 10,000 -> 50,000).
    by_namespace: dict[str, list[Workload]] | None = None

    @classmethod
    def build(cls, inv: Inventory, scope: Scope, hosts: list[IngressHost]) -> _Context:
        wls = list(workloads(inv))
        istiod = any("istio/pilot" in str(c.get("image", "")) or "pilot-discovery" in str(c.get("image", ""))
                     for w in wls for c in w.containers())
        sec_objs = inv.objects("RequestAuthentication") + inv.objects("AuthorizationPolicy", "security.istio.io")
        problem = None
        for kind, plural in (("RequestAuthentication", "requestauthentications"),
                             ("AuthorizationPolicy", "authorizationpolicies")):
            p = why(inv, kind, "security.istio.io", plural)
            if p and "not served" not in p:
                problem = problem or p
        mesh: dict[str, Any] = {}
        cm = inv.get("ConfigMap", "istio-system", "istio", group="")
        try:
            loaded = yaml.safe_load(((cm or {}).get("data") or {}).get("mesh") or "") if cm else None
            mesh = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            mesh = {}
        entry_hosts: dict[str, list[IngressHost]] = defaultdict(list)
        for h in hosts:
            entry_hosts[h.host].append(h)
        return cls(inv, scope, controllers(inv), wls, entry_hosts, istiod or bool(sec_objs), problem,
                   str(mesh.get("rootNamespace") or "istio-system"), mesh)

    def source_object(self, h: IngressHost) -> Obj | None:
        kind = "Gateway" if h.kind == "IstioGateway" else h.kind
        return self.inv.get(kind, h.namespace, h.ingress, group=KIND_GROUPS.get(h.kind))

    def service(self, ns: str, name: str) -> Obj | None:
        return self.inv.get("Service", ns, name, group="")

    def selected(self, ns: str, selector: dict[str, str]) -> list[Workload]:
        if not selector:
            return []
        if self.by_namespace is None:
            self.by_namespace = {}
            for w in self.workloads:
                self.by_namespace.setdefault(w.namespace, []).append(w)
        return [w for w in self.by_namespace.get(ns, []) if matches({"matchLabels": selector}, _labels(w))]

    def backend_workloads(self, ns: str, backend: str) -> tuple[Obj | None, list[Workload]]:
        svc = self.service(ns, backend.split(":", 1)[0])
        if svc is None:
            return None, []
        return svc, self.selected(ns, dict((svc.get("spec") or {}).get("selector") or {}))

    def resolve_url(self, url: str, default_ns: str) -> tuple[Obj | None, list[Workload]]:
        """The Service and workloads an auth URL points at: cluster DNS ('svc.ns.svc...') or an entry-point host."""
        host = _url_host(url)
        parts = host.split(".")
        if host.endswith((".svc", ".svc.cluster.local")) or (len(parts) == 2 and parts[1] in
                                                              {str(n["metadata"]["name"]) for n in
                                                               self.inv.objects("Namespace", "")}):
            ns = parts[1] if len(parts) > 1 else default_ns
            svc = self.service(ns, parts[0])
            return svc, self.selected(ns, dict(((svc or {}).get("spec") or {}).get("selector") or {}))
        if len(parts) == 1 and host:
            svc = self.service(default_ns, host)
            return svc, self.selected(default_ns, dict(((svc or {}).get("spec") or {}).get("selector") or {}))
        for entry in self.entry_hosts.get(host, []):
            for b in entry.backends:
                svc, wls = self.backend_workloads(entry.namespace or "", b)
                if any(_is_proxy(w) for w in wls):
                    return svc, wls
        return None, []


def _url_host(url: str) -> str:
    """The host name of a URL ('https://a.b:443/x' -> 'a.b'); collectors parse, they never fetch."""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return authority.rsplit(":", 1)[0].strip("[]").lower() if ":" in authority and not authority.endswith("]") \
        else authority.strip("[]").lower()


def _is_proxy(w: Workload) -> bool:
    return any(PROXY_IMAGE in str(c.get("image", "")) for c in w.containers(init=False))


def _is_idp(w: Workload) -> bool:
    return any(p in str(c.get("image", "")) for c in w.containers(init=False) for p in IDP_IMAGES)


def _proxy_id(w: Workload) -> str:
    return f"{w.namespace}/{w.label}"


# --- oauth2-proxy ----------------------------------------------------------------------------------------

def _proxies(inv: Inventory, ctx: _Context) -> dict[str, AuthProxy]:
    out: dict[str, AuthProxy] = {}
    for w in ctx.workloads:
        container = next((c for c in w.containers(init=False) if PROXY_IMAGE in str(c.get("image", ""))), None)
        if container is None:
            continue
        st = oauth2proxy.settings(inv, w.obj, container, w.spec)
        image = str(container.get("image", ""))
        expire = str(st.get("cookie-expire"))
        refresh = str(st.get("cookie-refresh"))
        domains = [str(d) for d in st.get("email-domain")]
        groups = [str(g) for g in st.get("allowed-group")]
        proxy = AuthProxy(
            id=_proxy_id(w), name=_proxy_id(w), namespace=w.namespace, workload=w.label,
            version=image.split("@")[0].rsplit(":", 1)[1] if ":" in image.split("@")[0].split("/")[-1] else None,
            provider=str(st.get("provider")), config_file=st.config_file,
            set_authorization_header=bool(st.get("set-authorization-header")),
            set_xauthrequest=bool(st.get("set-xauthrequest")), pass_access_token=bool(st.get("pass-access-token")),
            cookie_secure=bool(st.get("cookie-secure")), cookie_expire=expire,
            cookie_expire_seconds=oauth2proxy.go_duration_seconds(expire) or 0, cookie_refresh=refresh,
            cookie_refresh_seconds=oauth2proxy.go_duration_seconds(refresh) or 0, email_domains=domains,
            any_email_domain="*" in domains, allowed_groups=groups,
            restricted_users=bool(groups) or bool(st.get("authenticated-emails-file")) or bool(
                domains and "*" not in domains),
            skip_auth_routes=[str(r) for r in st.get("skip-auth-route")] + [str(r) for r in st.get("skip-auth-regex")],
            skip_auth_preflight=bool(st.get("skip-auth-preflight")),
            skip_jwt_bearer_tokens=bool(st.get("skip-jwt-bearer-tokens")),
            trusted_ips=[str(i) for i in st.get("trusted-ip")], reverse_proxy=bool(st.get("reverse-proxy")),
            trusted_proxy_ips=[str(i) for i in st.get("trusted-proxy-ip")],
            forwarded_headers_from_anyone=bool(st.get("reverse-proxy")) and not st.get("trusted-proxy-ip"),
            skip_auth_strip_headers=bool(st.get("skip-auth-strip-headers")),
            ssl_insecure_skip_verify=bool(st.get("ssl-insecure-skip-verify")),
            insecure_oidc=[f for f in ("insecure-oidc-allow-unverified-email",
                                       "insecure-oidc-skip-issuer-verification") if st.get(f)],
            settings={k: f"{_text(st.get(k))} ({st.source(k)})" for k in
                      (*oauth2proxy.BOOLS, *oauth2proxy.STRINGS, *oauth2proxy.LISTS)
                      if k in st.values or k in ("cookie-secure", "cookie-expire", "cookie-refresh")})
        for bad, what in (("cookie-expire", expire), ("cookie-refresh", refresh)):
            if bad not in st.unknown and oauth2proxy.go_duration_seconds(what) is None:
                st.unknown[bad] = f"{bad}={what!r} is not a Go duration"
        proxy.evidence = [ObjectRef.of(w.obj)] + [ObjectRef.of(o) for o in st.objects]
        fields = {"set-authorization-header": ["set_authorization_header"], "set-xauthrequest": ["set_xauthrequest"],
                  "cookie-secure": ["cookie_secure"], "cookie-expire": ["cookie_expire", "cookie_expire_seconds"],
                  "cookie-refresh": ["cookie_refresh", "cookie_refresh_seconds"],
                  "email-domain": ["email_domains", "any_email_domain", "restricted_users"],
                  "allowed-group": ["allowed_groups", "restricted_users"],
                  "authenticated-emails-file": ["restricted_users"],
                  "skip-auth-route": ["skip_auth_routes"], "skip-auth-regex": ["skip_auth_routes"],
                  "skip-auth-preflight": ["skip_auth_preflight"], "skip-jwt-bearer-tokens": ["skip_jwt_bearer_tokens"],
                  "trusted-ip": ["trusted_ips"], "reverse-proxy": ["reverse_proxy", "forwarded_headers_from_anyone"],
                  "trusted-proxy-ip": ["trusted_proxy_ips", "forwarded_headers_from_anyone"],
                  "skip-auth-strip-headers": ["skip_auth_strip_headers"],
                  "ssl-insecure-skip-verify": ["ssl_insecure_skip_verify"],
                  "insecure-oidc-allow-unverified-email": ["insecure_oidc"],
                  "insecure-oidc-skip-issuer-verification": ["insecure_oidc"]}
        for flag, reason in st.unknown.items():
            for f in fields.get(flag, []):
                proxy.mark_unknown(f, reason)
        out[proxy.id] = proxy
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


# --- per host ----------------------------------------------------------------------------------------------

def _host(ctx: _Context, scopes: Scopes, h: IngressHost, proxies: dict[str, AuthProxy]) -> HostAuth:
    ns = h.namespace or ""
    sc = scopes.of(ns)
    obj = ctx.source_object(h)
    annotations = dict(((obj or {}).get("metadata") or {}).get("annotations") or {})
    subject = HostAuth(
        id=h.id, name=h.name, namespace=h.namespace, host=h.host, port=h.port, kind=h.kind,
        entry=f"{h.kind} {ns}/{h.ingress}", controller=h.controller, namespace_class=sc.cls,
        personal_data=sc.personal_data, in_scope=sc.in_scope or sc.personal_data,
        declared_public=annotations.get(PUBLIC_ACCESS_ANNOTATION) or None,
        backends=[b if "/" in b else f"{ns}/{b}" for b in h.backends], authenticated=False,
        mfa_network_declared=ctx.scope.mfa.network_level)
    if obj is not None:
        subject.evidence.append(ObjectRef.of(obj))
    backend_wls = [w for b in h.backends for w in ctx.backend_workloads(ns, b)[1]]
    subject.auth_provider = any(_is_proxy(w) or _is_idp(w) for w in backend_wls)
    layers: list[_Layer] = []
    if h.kind == "Service":
        gap = (f"{h.name} is a {h.service_type or 'exposed'} Service with no proxy in front: authentication, if "
               "any, happens in the application protocol, which the API cannot show")
        if subject.in_scope:
            subject.mark_unknown("authenticated", gap)
        subject.auth_gaps.append(gap)
    elif obj is None:
        subject.mark_unknown("authenticated", f"{h.kind} {ns}/{h.ingress} could not be read back")
    elif h.kind == "Ingress":
        layers += _ingress_layers(ctx, subject, h, obj, annotations)
    elif h.kind == "IngressRoute":
        layers += _ingressroute_layers(ctx, subject, h, obj)
    elif h.kind == "HTTPProxy":
        layers += _contour_layers(subject, obj)
    layers += _istio_layers(ctx, subject, ns, backend_wls)
    if not layers:
        layers += _admin_ui_layers(ctx, subject, backend_wls)
    if not layers and h.kind == "Gateway" and "authenticated" not in subject.unknown_fields():
        subject.mark_unknown("authenticated", "authentication on Gateway API routes (Envoy Gateway SecurityPolicy, "
                             "implementation ext-authz filters) is not read yet; attach its configuration")
    _apply(ctx, subject, layers, proxies)
    return subject


def _admin_ui_layers(ctx: _Context, s: HostAuth, backend_wls: list[Workload]) -> list[_Layer]:
    """An administrative UI behind no other layer: its own login counts; anonymous access is a gap (adminui.py)."""
    out = []
    for w in backend_wls:
        ui = adminui.detect(ctx.inv, w)
        if ui is None:
            continue
        if ui.anonymous is True:
            s.auth_gaps.append(f"{w.label} is {ui.product}, an administrative interface, and {ui.detail}: anyone "
                               "who reaches the host uses it without signing in")
            s.evidence += [ObjectRef.of(o) for o in ui.objects]
        elif ui.anonymous is False:
            out.append(_Layer(f"{ui.product} login on {w.label}", objects=ui.objects))
        elif s.in_scope:
            s.mark_unknown("authenticated", f"{w.label} is {ui.product}: {ui.detail}")
    return out


def _apply(ctx: _Context, s: HostAuth, layers: list[_Layer], proxies: dict[str, AuthProxy]) -> None:
    s.authenticated = bool(layers)
    s.mechanisms = [layer.mechanism for layer in layers]
    forward = next((layer for layer in layers if layer.forwards_authorization is not None), None)
    s.basic_auth = bool(layers) and all(layer.basic for layer in layers)
    for layer in layers:
        s.evidence += [ObjectRef.of(o) for o in layer.objects]
    if forward is None:
        return  # no forward-auth: Istio JWT layers set authorization_forwarded themselves
    s.auth_url, s.auth_signin, s.auth_source = forward.url, forward.signin, forward.source
    s.response_headers = forward.response_headers
    headers_ok = any(x.lower() == "authorization" for x in forward.response_headers)
    svc, wls = ctx.resolve_url(forward.url or "", s.namespace or "")
    proxy = next((proxies[_proxy_id(w)] for w in wls if _proxy_id(w) in proxies), None)
    if svc is not None:
        s.evidence.append(ObjectRef.of(svc))
    if proxy is not None:
        s.proxy = proxy.id
        if "set_authorization_header" in proxy.unknown_fields() and headers_ok:
            s.mark_unknown("authorization_forwarded", next(u.reason for u in proxy.unknown
                                                           if u.field == "set_authorization_header"))
        s.authorization_forwarded = headers_ok and proxy.set_authorization_header
        if headers_ok and not proxy.set_authorization_header:
            s.auth_gaps.append(f"the auth response forwards Authorization, but {proxy.id} does not set it "
                               "(--set-authorization-header is false)")
    elif not headers_ok:
        s.authorization_forwarded = False
    else:
        s.mark_unknown("authorization_forwarded", f"the service behind {forward.url} is not a recognised "
                       "oauth2-proxy, so whether it returns an Authorization header cannot be read")
    if not headers_ok:
        s.auth_gaps.append("the Authorization header of the auth response is not forwarded to the application")


def _ingress_layers(ctx: _Context, s: HostAuth, h: IngressHost, obj: Obj,
                    annotations: dict[str, str]) -> list[_Layer]:
    if h.controller == "traefik":
        return _middleware_layers(ctx, s, h.namespace or "", [
            r.strip() for r in annotations.get(TRAEFIK_MIDDLEWARES, "").split(",") if r.strip()])
    if h.controller in ("gce", "aws-alb", "azure-application-gateway"):
        return _cloud_layers(ctx, s, h, annotations)
    controller = _nginx_controller(ctx, h)
    prefix = controller.annotation_prefix if controller else ingress.ANNOTATION_PREFIX

    def ann(key: str) -> str | None:
        value = annotations.get(f"{prefix}/{key}")
        return value.strip() if isinstance(value, str) else None

    layers: list[_Layer] = []
    if ann("auth-url"):
        layers.append(_Layer("ingress-nginx auth-url", ann("auth-url"), ann("auth-signin"),
                             f"annotation {prefix}/auth-url", _split(ann("auth-response-headers")), True))
    elif (ann("enable-global-auth") or "true").lower() != "false" and controller is not None:
        layers += _global_auth(ctx, s, controller)
    if (ann("auth-type") or "").lower() in ("basic", "digest"):
        layers.append(_Layer(f"{ann('auth-type')} auth ({prefix}/auth-secret {ann('auth-secret')})", basic=True))
    if (ann("auth-tls-verify-client") or "").lower() == "on" and ann("auth-tls-secret"):
        layers.append(_Layer(f"client certificate ({prefix}/auth-tls-secret {ann('auth-tls-secret')})"))
    if not layers:
        s.auth_gaps.append(f"no {prefix}/auth-url, no global-auth-url on the controller, no auth-type and no "
                           "client-certificate verification")
    return layers


def _cloud_layers(ctx: _Context, s: HostAuth, h: IngressHost, annotations: dict[str, str]) -> list[_Layer]:
    """Authentication a cloud load balancer performs: ALB `auth-type` oidc/cognito (AWS Load Balancer Controller
    annotations), Identity-Aware Proxy on every backend's GKE BackendConfig; Application Gateway has none."""
    if h.controller == "aws-alb":
        kind = annotations.get("alb.ingress.kubernetes.io/auth-type", "none").strip().lower()
        unauth = annotations.get("alb.ingress.kubernetes.io/auth-on-unauthenticated-request", "authenticate")
        if kind in ("oidc", "cognito") and unauth.strip().lower() == "authenticate":
            return [_Layer(f"ALB {kind} authentication", source="annotation alb.ingress.kubernetes.io/auth-type")]
        s.auth_gaps.append("no alb.ingress.kubernetes.io/auth-type oidc or cognito that authenticates every request")
        return []
    if h.controller == "gce":
        ns = h.namespace or ""
        configs = []
        for b in h.backends:
            svc = ctx.inv.get("Service", ns, b.rpartition(":")[0], group="")
            ann = dict(((svc or {}).get("metadata") or {}).get("annotations") or {})
            ref = ann.get("cloud.google.com/backend-config") or ann.get("beta.cloud.google.com/backend-config") or ""
            names = [n for n in (x.strip(' "{}') for x in ref.replace(":", ",").split(",")) if n and
                     ctx.inv.get("BackendConfig", ns, n, group="cloud.google.com") is not None]
            st = ctx.inv.status("BackendConfig", "cloud.google.com", ns)
            if ref and not names and st.status != "ok":
                s.mark_unknown("authenticated", f"Service {ns}/{b.rpartition(':')[0]} names a BackendConfig, which "
                               f"was not read ({st.status}); it may enable Identity-Aware Proxy")
                return []
            bcs = [ctx.inv.get("BackendConfig", ns, n, group="cloud.google.com") for n in names]
            configs.append(any((((bc or {}).get("spec") or {}).get("iap") or {}).get("enabled") is True for bc in bcs))
        if configs and all(configs):
            return [_Layer("Identity-Aware Proxy", source="BackendConfig spec.iap.enabled on every backend")]
        s.auth_gaps.append("no BackendConfig enables Identity-Aware Proxy (spec.iap.enabled) on the host's backends")
        return []
    s.auth_gaps.append("Application Gateway does not authenticate users; nothing in front of the host does")
    return []


def _nginx_controller(ctx: _Context, h: IngressHost) -> Controller | None:
    nginx = [c for c in ctx.controllers if c.product == "ingress-nginx"]
    cls = ctx.inv.get("IngressClass", None, h.ingress_class or "", group="networking.k8s.io")
    wanted = ((cls or {}).get("spec") or {}).get("controller")
    return next((c for c in nginx if wanted and c.controller_class == wanted), None) or next(
        (c for c in nginx if h.ingress_class and c.ingress_class == h.ingress_class), None) or (
        nginx[0] if len(nginx) == 1 else None)


def _global_auth(ctx: _Context, s: HostAuth, c: Controller) -> list[_Layer]:
    if c.configmap is None:
        return []
    cm_ns, cm_name = c.configmap
    cm = ctx.inv.get("ConfigMap", cm_ns, cm_name, group="")
    if cm is None:
        problem = why(ctx.inv, "ConfigMap", "", "configmaps", cm_ns)
        if problem:
            s.mark_unknown("authenticated", f"controller ConfigMap {cm_ns}/{cm_name} (global-auth-url) could not be "
                           f"read: {problem}")
        return []
    data = cm.get("data") or {}
    url = str(data.get("global-auth-url") or "").strip()
    if not url:
        return []
    return [_Layer("ingress-nginx global-auth-url", url, str(data.get("global-auth-signin") or "") or None,
                   f"ConfigMap {cm_ns}/{cm_name} global-auth-url",
                   _split(str(data.get("global-auth-response-headers") or "")), True, objects=[cm])]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _middleware_layers(ctx: _Context, s: HostAuth, ns: str, refs: list[str], depth: int = 0) -> list[_Layer]:
    if refs and why(ctx.inv, "Middleware", "traefik.io", "middlewares"):
        s.mark_unknown("authenticated", f"Traefik Middlewares {', '.join(refs)} could not be read: "
                       f"{why(ctx.inv, 'Middleware', 'traefik.io', 'middlewares')}")
        return []
    layers: list[_Layer] = []
    for ref in refs:
        name = ref.split("@", 1)[0]
        mw = ctx.inv.get("Middleware", ns, name) or (
            ctx.inv.get("Middleware", *name.split("-", 1)) if "@" in ref and "-" in name else None)
        if mw is None:
            s.auth_gaps.append(f"Middleware {ref} is referenced but does not exist")
            continue
        spec = mw.get("spec") or {}
        mw_name = f"{mw['metadata'].get('namespace')}/{mw['metadata']['name']}"
        fa = spec.get("forwardAuth")
        if isinstance(fa, dict) and fa.get("address"):
            headers = [str(x) for x in fa.get("authResponseHeaders") or []]
            regex = str(fa.get("authResponseHeadersRegex") or "")
            if regex and re.search(regex, "Authorization", re.IGNORECASE):
                headers.append("Authorization")
            layer = _Layer(f"traefik forwardAuth {mw_name}", str(fa["address"]), None,
                           f"Middleware {mw_name} forwardAuth.address", headers, True, objects=[mw])
            if fa.get("trustForwardHeader"):
                s.auth_gaps.append(f"Middleware {mw_name} trusts X-Forwarded-* from any client (trustForwardHeader)")
            if (fa.get("tls") or {}).get("insecureSkipVerify"):
                s.auth_gaps.append(f"Middleware {mw_name} does not verify the auth service's TLS certificate")
            layers.append(layer)
        for kind in ("basicAuth", "digestAuth"):
            if isinstance(spec.get(kind), dict):
                layers.append(_Layer(f"traefik {kind} {mw_name}", basic=True, objects=[mw]))
        chain = (spec.get("chain") or {}).get("middlewares")
        if isinstance(chain, list) and depth < MAX_FORWARD_AUTH_DEPTH:
            layers += _middleware_layers(ctx, s, str(mw["metadata"].get("namespace")),
                                         [str(m.get("name")) for m in chain if isinstance(m, dict)], depth + 1)
    if not layers and depth == 0:
        s.auth_gaps.append("no forwardAuth, basicAuth or digestAuth Middleware on the route")
    return layers


def _ingressroute_layers(ctx: _Context, s: HostAuth, h: IngressHost, obj: Obj) -> list[_Layer]:
    refs: list[str] = []
    for r in (obj.get("spec") or {}).get("routes") or []:
        hosts = [x for m in _HOST_MATCHER.finditer(str(r.get("match") or "")) for x in _BACKTICKED.findall(m.group(1))]
        if h.host in hosts:
            refs += [f"{m.get('name')}@kubernetescrd" if not m.get("namespace") else
                     f"{m.get('namespace')}-{m.get('name')}@kubernetescrd" for m in r.get("middlewares") or []]
    return _middleware_layers(ctx, s, h.namespace or "", refs)


def _contour_layers(s: HostAuth, obj: Obj) -> list[_Layer]:
    spec = obj.get("spec") or {}
    vh = spec.get("virtualhost") or {}
    layers = []
    auth = vh.get("authorization")
    if isinstance(auth, dict) and auth.get("extensionRef"):
        ref = auth["extensionRef"]
        layers.append(_Layer(f"contour ext-auth {ref.get('namespace', '')}/{ref.get('name')}", objects=[]))
        open_routes = [str((r.get("conditions") or [{}])[0].get("prefix", "/")) for r in spec.get("routes") or []
                       if (r.get("authPolicy") or {}).get("disabled")]
        if open_routes:
            s.bypass_routes += [f"route {p} of HTTPProxy {obj['metadata']['name']} has authPolicy.disabled"
                                for p in open_routes]
    if any(p.get("default") for p in vh.get("jwtProviders") or [] if isinstance(p, dict)):
        layers.append(_Layer("contour jwt (default provider)"))
    if not layers:
        s.auth_gaps.append("no virtualhost.authorization (ext-auth) and no default jwtProvider on the HTTPProxy")
    return layers


# --- Istio -----------------------------------------------------------------------------------------------

def _labels(w: Workload) -> dict[str, str]:
    if w.kind == "Pod":
        return dict((w.obj.get("metadata") or {}).get("labels") or {})
    tpl = (w.obj.get("spec") or {}).get("template") or {}
    if w.kind == "CronJob":
        tpl = ((((w.obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {})
    return dict((tpl.get("metadata") or {}).get("labels") or {})


def _applies(ctx: _Context, policy: Obj, ns: str, labels: dict[str, str]) -> bool:
    pns = str(policy["metadata"].get("namespace") or "")
    spec = policy.get("spec") or {}
    if spec.get("targetRef") or spec.get("targetRefs"):
        return False  # gateway / waypoint attachment: not the workload's sidecar
    selector = (spec.get("selector") or {}).get("matchLabels")
    if pns == ctx.root_namespace:
        return not selector or matches({"matchLabels": selector}, labels)
    return pns == ns and (not selector or matches({"matchLabels": selector}, labels))


AMR_SECOND_FACTOR = frozenset({"mfa", "otp", "hwk", "sc"})  # RFC 8176 values that show more than a password


def _second_factor(ctx: _Context, when: dict[str, Any]) -> bool:
    values = when.get("values")
    if not isinstance(values, list) or not values:
        return False
    key = str(when.get("key", ""))
    if key == "request.auth.claims[amr]":
        return all(str(v) in AMR_SECOND_FACTOR for v in values)
    if key == "request.auth.claims[acr]":
        return all(str(v) in ctx.scope.mfa.acr_values for v in values)
    return False


def _requires_principal(rule: dict[str, Any]) -> bool:
    sources = [f.get("source") or {} for f in rule.get("from") or [] if isinstance(f, dict)]
    whens = [str(w.get("key", "")) for w in rule.get("when") or [] if isinstance(w, dict)]
    if any(k.startswith("request.auth.") for k in whens):
        return True
    return bool(sources) and all(src.get("requestPrincipals") for src in sources)


def _istio_layers(ctx: _Context, s: HostAuth, ns: str, backend_wls: list[Workload]) -> list[_Layer]:
    if not ctx.istio_present or not backend_wls:
        return []
    if ctx.istio_problem:
        s.mark_unknown("authenticated", f"Istio security policies could not be read: {ctx.istio_problem}")
        return []
    layers: list[_Layer] = []
    all_ok: list[bool] = []
    for w in backend_wls:
        labels = _labels(w)
        ras = [p for p in ctx.inv.objects("RequestAuthentication") if _applies(ctx, p, w.namespace, labels)]
        aps = [p for p in ctx.inv.objects("AuthorizationPolicy", "security.istio.io")
               if _applies(ctx, p, w.namespace, labels)]
        dry = [p for p in aps if ((p["metadata"].get("annotations") or {}).get(DRY_RUN) == "true")]
        for p in dry:
            s.auth_gaps.append(f"AuthorizationPolicy {p['metadata'].get('namespace')}/{p['metadata']['name']} is "
                               f"{DRY_RUN}: logged, not enforced")
        enforced = [p for p in aps if p not in dry]
        action = {id(p): str((p.get("spec") or {}).get("action") or "ALLOW").upper() for p in enforced}
        custom = [p for p in enforced if action[id(p)] == "CUSTOM"]
        deny_tokenless = [p for p in enforced if action[id(p)] == "DENY" and any(
            "*" in ((f.get("source") or {}).get("notRequestPrincipals") or [])
            for r in (p.get("spec") or {}).get("rules") or [] for f in r.get("from") or [] if isinstance(f, dict))]
        allows = [p for p in enforced if action[id(p)] == "ALLOW"]
        allow_requires = bool(allows) and all(
            (p.get("spec") or {}).get("rules") is not None and all(
                _requires_principal(r) for r in (p.get("spec") or {}).get("rules") or [] if isinstance(r, dict))
            for p in allows)
        ok = False
        names = ", ".join(f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in ras + enforced)
        if custom:
            provider = str(((custom[0].get("spec") or {}).get("provider") or {}).get("name") or "")
            layers.append(_Layer(f"istio ext-authz ({provider}) on {w.label}", objects=custom))
            ok = True
        # A `when` admits a token whose claim matches ANY listed value, so every value must denote a second factor:
        # amr per RFC 8176 (mfa, otp, hwk, sc), acr only as the scope declares for its identity provider.
        mfa = [f"{w.get('key')} in {w.get('values')}" for p in allows
               for r in (p.get("spec") or {}).get("rules") or [] if isinstance(r, dict)
               for w in r.get("when") or [] if isinstance(w, dict) and _second_factor(ctx, w)]
        if ras and allow_requires and mfa and len(mfa) >= len(allows):
            s.mfa_claim_required = "; ".join(sorted(set(mfa)))
        if ras and (deny_tokenless or allow_requires):
            jwt = [r for p in ras for r in (p.get("spec") or {}).get("jwtRules") or [] if isinstance(r, dict)]
            forwarded = any(r.get("forwardOriginalToken") or r.get("outputPayloadToHeader") for r in jwt)
            layers.append(_Layer(f"istio jwt on {w.label} ({names})", objects=ras + enforced))
            if not forwarded:
                s.auth_gaps.append(f"RequestAuthentication on {w.label} strips the token before the application "
                                   "(forwardOriginalToken is false and no outputPayloadToHeader)")
            s.authorization_forwarded = forwarded
            ok = True
        elif ras:
            s.auth_gaps.append(f"RequestAuthentication on {w.label} validates tokens when present but admits "
                               "requests without one: no enforced AuthorizationPolicy requires a request principal")
        all_ok.append(ok)
    if layers and not all(all_ok):
        s.auth_gaps.append("not every backend workload requires authentication")
        return []
    return layers


# --- bypasses --------------------------------------------------------------------------------------------

def _bypasses(ctx: _Context, subjects: list[HostAuth]) -> None:
    """Routes to the same backend pods: one without authentication bypasses the others (PCI DSS 8.5.1)."""
    by_backend: dict[tuple[str, frozenset[tuple[str, str]]], list[HostAuth]] = defaultdict(list)
    for s in subjects:
        for b in s.backends:
            ns, _, rest = b.partition("/")
            svc = ctx.service(ns, rest.split(":", 1)[0])
            selector = frozenset(((svc or {}).get("spec") or {}).get("selector", {}).items()) if svc else None
            key = (ns, selector) if selector else (ns, frozenset({("service", rest.split(":", 1)[0])}))
            by_backend[key].append(s)
    for group in by_backend.values():
        open_routes = [s for s in group if not s.authenticated and "authenticated" not in s.unknown_fields()
                       and not s.auth_provider]
        for s in group:
            if s.authenticated:
                s.bypass_routes += sorted({f"{o.name} ({o.entry}) reaches the same backend without "
                                           "authentication" for o in open_routes if o.id != s.id})
