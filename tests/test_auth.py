"""Authentication in front of entry points and oauth2-proxy settings, on small inventories."""

from __future__ import annotations

from helpers import NOW, deployment, inventory, obj
from test_collectors import nginx

from evidence.collectors import auth, oauth2proxy
from evidence.controls import load_catalogue
from evidence.evaluate import evaluate_subject, scope_variables
from evidence.redact import MASK
from evidence.scope import NamespaceScope, Scope

SCOPE = Scope(namespaces=NamespaceScope(cde=["pay"], connected=["auth", "shop"]))
AUTH_URL = "https://auth.example.com/oauth2/auth"
NGX = "nginx.ingress.kubernetes.io"


def ingress(name: str, ns: str, host: str, service: str, annotations: dict | None = None) -> dict:
    return obj("networking.k8s.io/v1", "Ingress", name, ns, annotations=annotations, spec={
        "ingressClassName": "nginx", "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
        "rules": [{"host": host, "http": {"paths": [{"path": "/", "backend": {
            "service": {"name": service, "port": {"name": "http"}}}}]}}]})


def service(name: str, ns: str, selector: dict, type_: str = "ClusterIP") -> dict:
    return obj("v1", "Service", name, ns, spec={"type": type_, "selector": selector,
                                                  "ports": [{"name": "http", "port": 80, "nodePort": 30080}]})


def proxy(args: list[str] | None = None, env: list | None = None, volumes: list | None = None,
          mounts: list | None = None) -> list[dict]:
    d = deployment("oauth2-proxy", "auth", "quay.io/oauth2-proxy/oauth2-proxy:v7.7.1",
                   args=args if args is not None else ["--set-authorization-header=true", "--email-domain=example.com"],
                   env=env, labels={"app": "oauth2-proxy"})
    if volumes:
        d["spec"]["template"]["spec"]["volumes"] = volumes
        d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = mounts
    return [d, service("oauth2-proxy", "auth", {"app": "oauth2-proxy"}),
            ingress("oauth2-proxy", "auth", "auth.example.com", "oauth2-proxy")]


def app(ns: str = "pay", name: str = "api") -> list[dict]:
    return [deployment(name, ns, f"registry.example.com/{name}:1", labels={"app": name}),
            service(name, ns, {"app": name})]


def protected(headers: str = "Authorization,X-Auth-Request-Email") -> dict:
    return ingress("api", "pay", "pay.example.com", "api", {f"{NGX}/auth-url": AUTH_URL,
                                                            f"{NGX}/auth-signin": "https://auth.example.com/oauth2/start",
                                                            f"{NGX}/auth-response-headers": headers})


def collect(*objs: dict) -> dict:
    return {s.id: s for s in auth.collect(inventory(*objs), SCOPE, NOW)}


def test_go_durations() -> None:
    assert oauth2proxy.go_duration_seconds("168h0m0s") == 604800
    assert oauth2proxy.go_duration_seconds("1h30m") == 5400 and oauth2proxy.go_duration_seconds("0") == 0
    assert oauth2proxy.go_duration_seconds("15 minutes") is None


def test_oauth2_proxy_settings_precedence_flags_env_config_file() -> None:
    cfg = obj("v1", "ConfigMap", "oauth2-proxy", "auth", data={"oauth2_proxy.cfg": (
        'email_domains = ["*"]\ncookie_expire = "12h"\ncookie_secure = false\nskip_auth_routes = ["GET=^/health"]\n'
        'set_authorization_header = true\n')})
    objs = proxy(args=["--config=/etc/oauth2_proxy/oauth2_proxy.cfg", "--cookie-secure", "--reverse-proxy"],
                 env=[{"name": "OAUTH2_PROXY_ALLOWED_GROUPS", "value": "portal-users,support"},
                      {"name": "OAUTH2_PROXY_COOKIE_EXPIRE", "value": "30m"},
                      {"name": "OAUTH2_PROXY_COOKIE_REFRESH", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                      {"name": "OAUTH2_PROXY_TRUSTED_IPS", "value": MASK}],
                 volumes=[{"name": "cfg", "configMap": {"name": "oauth2-proxy"}}],
                 mounts=[{"name": "cfg", "mountPath": "/etc/oauth2_proxy"}])
    p = collect(cfg, *objs)["auth/Deployment/oauth2-proxy"]
    assert p.cookie_secure  # flag beats the file
    assert p.cookie_expire == "30m" and p.cookie_expire_seconds == 1800  # env beats the file
    assert p.email_domains == ["*"] and p.any_email_domain and p.restricted_users  # groups restrict it
    assert p.allowed_groups == ["portal-users", "support"]  # plural env name, comma list
    assert p.skip_auth_routes == ["GET=^/health"] and p.set_authorization_header
    assert p.forwarded_headers_from_anyone and p.config_file == "ConfigMap auth/oauth2-proxy key oauth2_proxy.cfg"
    unknown = {u.field: u.reason for u in p.unknown}
    assert "Secret" in unknown["cookie_refresh_seconds"] and "masked" in unknown["trusted_ips"]
    assert p.settings["cookie-expire"] == "30m (env OAUTH2_PROXY_COOKIE_EXPIRE)"


def test_config_file_in_a_secret_volume_is_unknown() -> None:
    objs = proxy(args=["--config=/etc/oauth2_proxy/oauth2_proxy.cfg", "--set-authorization-header"],
                 volumes=[{"name": "cfg", "secret": {"secretName": "oauth2-proxy"}}],
                 mounts=[{"name": "cfg", "mountPath": "/etc/oauth2_proxy"}])
    p = collect(*objs)["auth/Deployment/oauth2-proxy"]
    fields = p.unknown_fields()
    assert {"cookie_expire_seconds", "email_domains", "skip_auth_routes"} <= fields
    assert "set_authorization_header" not in fields  # the flag settles it


def test_nginx_auth_url_to_oauth2_proxy_forwards_the_token() -> None:
    got = collect(*nginx({}), *proxy(), *app(), protected())
    h = got["pay/api/pay.example.com:443"]
    assert h.authenticated and h.mechanisms == ["ingress-nginx auth-url"] and h.auth_url == AUTH_URL
    assert h.proxy == "auth/Deployment/oauth2-proxy" and h.authorization_forwarded is True and not h.bypass_routes
    assert got["auth/oauth2-proxy/auth.example.com:443"].auth_provider
    assert got["auth/Deployment/oauth2-proxy"].hosts == ["pay.example.com:443"]
    no_header = collect(*nginx({}), *proxy(), *app(), protected(headers="X-Auth-Request-Email"))
    assert no_header["pay/api/pay.example.com:443"].authorization_forwarded is False
    not_set = collect(*nginx({}), *proxy(args=["--email-domain=example.com"]), *app(), protected())
    h = not_set["pay/api/pay.example.com:443"]
    assert h.authorization_forwarded is False and any("--set-authorization-header" in g for g in h.auth_gaps)


def test_global_auth_url_and_opt_out() -> None:
    cm = {"global-auth-url": "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth",
          "global-auth-response-headers": "Authorization"}
    plain = ingress("api", "pay", "pay.example.com", "api")
    h = collect(*nginx(cm), *proxy(), *app(), plain)["pay/api/pay.example.com:443"]
    assert h.authenticated and h.auth_source == "ConfigMap ingress-nginx/ingress-nginx-controller global-auth-url"
    assert h.proxy == "auth/Deployment/oauth2-proxy" and h.authorization_forwarded
    opted_out = ingress("api", "pay", "pay.example.com", "api", {f"{NGX}/enable-global-auth": "false"})
    h = collect(*nginx(cm), *proxy(), *app(), opted_out)["pay/api/pay.example.com:443"]
    assert not h.authenticated and h.auth_gaps


def test_second_route_and_exposed_service_are_bypasses() -> None:
    internal = ingress("api-internal", "pay", "pay-internal.example.com", "api")
    node_port = service("api-np", "pay", {"app": "api"}, "NodePort")
    got = collect(*nginx({}), *proxy(), *app(), protected(), internal, node_port)
    bypass = got["pay/api/pay.example.com:443"].bypass_routes
    assert any(b.startswith("pay-internal.example.com:443 (Ingress pay/api-internal)") for b in bypass)
    assert not got["pay/api-internal/pay-internal.example.com:443"].authenticated
    np = next(s for s in got.values() if getattr(s, "kind", "") == "Service")
    assert "authenticated" in np.unknown_fields()  # in scope, auth in the application protocol: unknown


def test_declared_public_and_basic_auth() -> None:
    public = ingress("shop", "shop", "shop.example.com", "web",
                     {"compliance.auditpack.io/public-access": "Public shop front"})
    basic = ingress("admin", "shop", "admin.example.com", "web", {f"{NGX}/auth-type": "basic",
                                                                  f"{NGX}/auth-secret": "admin-users"})
    got = collect(*nginx({}), *app("shop", "web"), public, basic)
    assert got["shop/shop/shop.example.com:443"].declared_public == "Public shop front"
    b = got["shop/admin/admin.example.com:443"]
    assert b.authenticated and b.basic_auth and b.authorization_forwarded is None


def test_traefik_forward_auth_middleware() -> None:
    traefik = deployment("traefik", "traefik", "docker.io/traefik:v3.3")
    mw = obj("traefik.io/v1alpha1", "Middleware", "sso", "auth", spec={"forwardAuth": {
        "address": "http://oauth2-proxy.auth.svc:80/oauth2/auth", "authResponseHeaders": ["Authorization"],
        "trustForwardHeader": True}})
    route = obj("traefik.io/v1alpha1", "IngressRoute", "api", "pay", spec={
        "entryPoints": ["websecure"], "tls": {"secretName": "api-tls"},
        "routes": [{"match": "Host(`pay.example.com`)", "services": [{"name": "api", "port": 80}],
                    "middlewares": [{"name": "sso", "namespace": "auth"}]}]})
    got = collect(traefik, *proxy(), *app(), mw, route)
    h = next(s for s in got.values() if getattr(s, "host", "") == "pay.example.com")
    assert h.authenticated and h.mechanisms == ["traefik forwardAuth auth/sso"] and h.authorization_forwarded
    assert any("trustForwardHeader" in g for g in h.auth_gaps)


def _istio(*extra: dict) -> list[dict]:
    istiod = deployment("istiod", "istio-system", "docker.io/istio/pilot:1.24.0")
    ra = obj("security.istio.io/v1", "RequestAuthentication", "jwt", "pay", spec={
        "selector": {"matchLabels": {"app": "api"}},
        "jwtRules": [{"issuer": "https://idp.example.com", "forwardOriginalToken": True}]})
    exposed = ingress("api", "pay", "pay.example.com", "api")
    return [*nginx({}), istiod, *app(), ra, exposed, *extra]


def test_istio_request_authentication_needs_a_policy_that_requires_a_token() -> None:
    alone = collect(*_istio())["pay/api/pay.example.com:443"]
    assert not alone.authenticated
    assert any("admits requests without one" in g for g in alone.auth_gaps)
    require = obj("security.istio.io/v1", "AuthorizationPolicy", "require-jwt", "pay", spec={
        "selector": {"matchLabels": {"app": "api"}},
        "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}],
                   "when": [{"key": "request.auth.claims[amr]", "values": ["mfa"]}]}]})
    h = collect(*_istio(require))["pay/api/pay.example.com:443"]
    assert h.authenticated and h.mechanisms[0].startswith("istio jwt on Deployment/api")
    assert h.authorization_forwarded and h.mfa_claim_required == "request.auth.claims[amr] in ['mfa']"
    require["metadata"]["annotations"] = {"istio.io/dry-run": "true"}
    dry = collect(*_istio(require))["pay/api/pay.example.com:443"]
    assert not dry.authenticated and any("dry-run" in g for g in dry.auth_gaps)
    deny = obj("security.istio.io/v1", "AuthorizationPolicy", "deny-anonymous", "istio-system", spec={
        "action": "DENY", "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]})
    assert collect(*_istio(deny))["pay/api/pay.example.com:443"].authenticated  # mesh-wide, root namespace


def test_istio_policies_unreadable_are_unknown() -> None:
    objs = _istio()
    inv = inventory(*objs, denied=("AuthorizationPolicy",))
    h = {s.id: s for s in auth.collect(inv, SCOPE, NOW)}["pay/api/pay.example.com:443"]
    assert "authenticated" in h.unknown_fields()



def test_mfa_claim_counts_only_values_that_show_a_second_factor() -> None:
    """Istio admits a token whose claim matches ANY listed value (AuthorizationPolicy `when`), so ['pwd', 'mfa']
    admits a password-only token; amr values per RFC 8176 section 2 (mfa, otp, hwk, sc show a second factor)."""
    def policy(key: str, values: list[str]) -> dict:
        return obj("security.istio.io/v1", "AuthorizationPolicy", "require-jwt", "pay", spec={
            "selector": {"matchLabels": {"app": "api"}},
            "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}], "when": [{"key": key, "values": values}]}]})

    host = "pay/api/pay.example.com:443"
    weak = collect(*_istio(policy("request.auth.claims[amr]", ["pwd", "mfa"])))[host]
    assert weak.authenticated and weak.mfa_claim_required is None
    strong = collect(*_istio(policy("request.auth.claims[amr]", ["otp", "hwk"])))[host]
    assert strong.mfa_claim_required == "request.auth.claims[amr] in ['otp', 'hwk']"
    acr = policy("request.auth.claims[acr]", ["urn:example:loa:3"])
    assert collect(*_istio(acr))[host].mfa_claim_required is None  # acr values are the provider's: not assumed
    declared = Scope.model_validate({"mfa": {"acr_values": ["urn:example:loa:3"],
                                             "network_level": "GlobalProtect VPN with Entra ID MFA"}})
    subjects = {s.id: s for s in auth.collect(inventory(*_istio(acr)), declared, NOW)}
    assert subjects[host].mfa_claim_required == "request.auth.claims[acr] in ['urn:example:loa:3']"
    assert subjects[host].mfa_network_declared == "GlobalProtect VPN with Entra ID MFA"


def _redacted(*objs: dict) -> list[dict]:
    """Objects as a pack would hold them: through the allow-list redactor first."""
    import copy

    from evidence.redact import Redactor

    r = Redactor()
    return [r.redact(copy.deepcopy(o)) for o in objs]


def test_admin_uis_without_login_are_unauthenticated_and_their_own_login_counts() -> None:
    """Kiali as Istio's samples/addons/kiali.yaml ships it (ConfigMap `kiali`, config.yaml `auth: strategy:
    anonymous`, mounted at /kiali-configuration); Grafana's Helm chart (ConfigMap grafana.ini at
    /etc/grafana/grafana.ini by subPath); the Kubernetes Dashboard (recommended.yaml, kubernetesui/dashboard) with
    --enable-skip-login added to its args."""
    scope = Scope(namespaces=NamespaceScope(connected=["istio-system", "monitoring", "kubernetes-dashboard"]))

    def kiali(strategy: str) -> list[dict]:
        d = deployment("kiali", "istio-system", "quay.io/kiali/kiali:v2.1", labels={"app": "kiali"})
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["volumeMounts"] = [{"name": "kiali-configuration", "mountPath": "/kiali-configuration"}]
        d["spec"]["template"]["spec"]["volumes"] = [{"name": "kiali-configuration", "configMap": {"name": "kiali"}}]
        cm = obj("v1", "ConfigMap", "kiali", "istio-system",
                 data={"config.yaml": f"auth:\n  strategy: {strategy}\nserver:\n  port: 20001\n"})
        return [d, cm, service("kiali", "istio-system", {"app": "kiali"}),
                ingress("kiali", "istio-system", "kiali.example.com", "kiali")]

    def grafana(ini: str) -> list[dict]:
        d = deployment("grafana", "monitoring", "docker.io/grafana/grafana:11.3.0", labels={"app": "grafana"})
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["volumeMounts"] = [{"name": "config", "mountPath": "/etc/grafana/grafana.ini", "subPath": "grafana.ini"}]
        d["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "grafana"}}]
        cm = obj("v1", "ConfigMap", "grafana", "monitoring", data={"grafana.ini": ini})
        return [d, cm, service("grafana", "monitoring", {"app": "grafana"}),
                ingress("grafana", "monitoring", "grafana.example.com", "grafana")]

    def dashboard(args: list[str]) -> list[dict]:
        d = deployment("kubernetes-dashboard", "kubernetes-dashboard", "docker.io/kubernetesui/dashboard:v2.7.0",
                       args=args, labels={"k8s-app": "kubernetes-dashboard"})
        return [d, service("kubernetes-dashboard", "kubernetes-dashboard", {"k8s-app": "kubernetes-dashboard"}),
                ingress("dashboard", "kubernetes-dashboard", "dash.example.com", "kubernetes-dashboard")]

    def host(objs: list[dict], name: str):  # type: ignore[no-untyped-def]
        subjects = auth.collect(inventory(*_redacted(*nginx({}), *objs)), scope, NOW)
        return next(s for s in subjects if getattr(s, "host", "") == name)

    open_kiali = host(kiali("anonymous"), "kiali.example.com")
    assert not open_kiali.authenticated and any("auth.strategy: anonymous" in g for g in open_kiali.auth_gaps)
    assert host(kiali("token"), "kiali.example.com").mechanisms == ["Kiali login on Deployment/kiali"]
    ini = "[server]\nroot_url = https://grafana.example.com\n[auth.anonymous]\nenabled = true\norg_role = Admin\n"
    open_grafana = host(grafana(ini), "grafana.example.com")
    assert not open_grafana.authenticated and any("anonymous access" in g for g in open_grafana.auth_gaps)
    assert host(grafana("[server]\nhttp_port = 3000\n"), "grafana.example.com").authenticated  # default: login
    skip = host(dashboard(["--auto-generate-certificates", "--enable-skip-login"]), "dash.example.com")
    assert not skip.authenticated and any("--enable-skip-login" in g for g in skip.auth_gaps)
    assert host(dashboard(["--auto-generate-certificates"]), "dash.example.com").authenticated
    # The verdict: auth.required fails each of the three, naming the admin UI's own setting.
    required = next(c for c in load_catalogue().controls if c.id == "auth.required")
    for subject, setting in ((open_kiali, "auth.strategy: anonymous"), (open_grafana, "anonymous access"),
                             (skip, "--enable-skip-login")):
        f = evaluate_subject(required, subject.model_dump(mode="json"), scope_variables(scope))
        assert f.status == "fail" and setting in (f.message or ""), f
