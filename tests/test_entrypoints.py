"""Entry points beyond Ingress (Gateway API, Istio, Traefik, Contour, exposed Services) and controller TLS policy:
effective values, real defaults, and `unknown` (never pass) when evidence is missing."""

from __future__ import annotations

from helpers import NOW, certificate, deployment, inventory, obj, tls_secret

from evidence.collectors import auth, ingress
from evidence.collectors.entrypoints import is_public, weak_ciphers
from evidence.scope import Scope

NGINX_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.11.3"
POD_NS_ENV = [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
GW = "gateway.networking.k8s.io/v1"


def hosts(*objs: dict, scope: Scope | None = None, **kw) -> dict[str, object]:
    return {s.id: s for s in ingress.collect(inventory(*objs, **kw), scope or Scope(), NOW)}


def unknown(s) -> dict[str, str]:
    return {u.field: u.reason for u in s.unknown}


def nginx(cm: dict | None = None, extra_args: list[str] | None = None) -> list[dict]:
    args = ["/nginx-ingress-controller", "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
            *(extra_args or [])]
    objs = [deployment("ingress-nginx-controller", "ingress-nginx", NGINX_IMAGE, args, POD_NS_ENV),
            obj("networking.k8s.io/v1", "IngressClass", "nginx", spec={"controller": "k8s.io/ingress-nginx"})]
    if cm is not None:
        objs.append(obj("v1", "ConfigMap", "ingress-nginx-controller", "ingress-nginx", data=cm))
    return objs


def an_ingress(host: str, secret: str | None = "web-tls", annotations: dict | None = None) -> dict:
    spec: dict = {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    if secret is not None:
        spec["tls"] = [{"hosts": [host], "secretName": secret}]
    return obj("networking.k8s.io/v1", "Ingress", "web", "shop", annotations=annotations, spec=spec,
               status={"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}})


# --- ingress-nginx policy --------------------------------------------------------------------------------

def test_nginx_weak_ciphers_hsts_off_and_fake_certificate() -> None:
    got = hosts(*nginx({"ssl-ciphers": "ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA:AES128-SHA", "hsts": "false"}),
                an_ingress("a.example.com"))
    a = got["shop/web/a.example.com:443"]
    assert a.weak_ciphers == ["DES-CBC3-SHA", "AES128-SHA"] and "ConfigMap" in a.tls_policy.ciphers_source
    assert a.hsts is False and "hsts" in a.hsts_source
    # The Secret does not exist: ingress-nginx serves its self-signed fake certificate.
    assert a.secret_found is False and "Fake Certificate" in a.fallback_certificate
    assert a.addresses == ["203.0.113.20"] and a.public


def test_nginx_defaults_and_default_ssl_certificate() -> None:
    got = hosts(*nginx({}, ["--default-ssl-certificate=$(POD_NAMESPACE)/wildcard"]), an_ingress("a.example.com"))
    a = got["shop/web/a.example.com:443"]
    assert a.weak_ciphers == [] and a.weak_protocols == [] and a.hsts and a.https_redirect
    assert a.fallback_certificate == "the --default-ssl-certificate ingress-nginx/wildcard"


def test_weak_cipher_names_in_both_notations() -> None:
    assert weak_ciphers("HIGH:!aNULL:!MD5:RC4-SHA:ECDHE-RSA-AES128-GCM-SHA256") == ["RC4-SHA"]
    assert weak_ciphers(["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]) == \
        ["TLS_RSA_WITH_AES_128_CBC_SHA"]


def test_public_hosts() -> None:
    scope = Scope(internal_hosts=["*.corp.example.com"])
    assert is_public("shop.example.com", scope) and is_public("203.0.113.20", scope)
    assert not is_public("intranet.corp.example.com", scope)
    assert not is_public("api.payments.svc.cluster.local", scope) and not is_public("10.1.2.3", scope)


# --- Gateway API ---------------------------------------------------------------------------------------

def gateway(listeners: list[dict], status_listeners: list[dict] | None = None) -> dict:
    return obj(GW, "Gateway", "public", "edge", spec={"gatewayClassName": "istio", "listeners": listeners},
               status={"addresses": [{"value": "198.51.100.40"}], "listeners": status_listeners or []})


def httproute(name: str, section: str, hosts_: list[str], redirect: bool = False, hsts: bool = False) -> dict:
    rule: dict = {"backendRefs": [{"name": "web", "port": 8080}]}
    if redirect:
        rule = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
    if hsts:
        rule["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [
            {"name": "Strict-Transport-Security", "value": "max-age=31536000"}]}}]
    return obj(GW, "HTTPRoute", name, "shop", spec={
        "parentRefs": [{"name": "public", "namespace": "edge", "sectionName": section}],
        "hostnames": hosts_, "rules": [rule]})


ISTIO_CLASS = obj(GW, "GatewayClass", "istio", spec={"controllerName": "istio.io/gateway-controller"})
LISTENERS = [
    {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "shop.example.com",
     "tls": {"certificateRefs": [{"name": "shop-tls"}]}},
    {"name": "http", "protocol": "HTTP", "port": 80},
]


def test_gateway_https_listener_and_http_route_without_redirect() -> None:
    crt = certificate("shop.example.com", ["shop.example.com"])
    got = hosts(ISTIO_CLASS, gateway(LISTENERS), httproute("web", "https", ["shop.example.com"], hsts=True),
                httproute("web-http", "http", ["shop.example.com"]), httproute("api", "http", ["api.example.com"]),
                tls_secret("shop-tls", "edge", crt))
    s = got["edge/Gateway/public/shop.example.com:443"]
    assert s.kind == "Gateway" and s.controller == "istio" and s.tls and s.tls_mode == "terminate"
    assert s.secret_namespace == "edge" and s.secret_found and s.certificate_id == "edge/shop-tls"
    assert s.https_redirect is False and "HTTPRoute shop/web-http serves shop.example.com" in s.https_redirect_source
    assert s.hsts is True and s.weak_protocols == [] and s.addresses == ["198.51.100.40"]
    # A host served only on the HTTP listener is its own plain-HTTP entry point.
    plain = got["edge/Gateway/public/api.example.com:80"]
    assert not plain.tls and plain.https_redirect is False


def test_gateway_redirect_route_and_other_implementation() -> None:
    envoy = obj(GW, "GatewayClass", "eg", spec={"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"})
    gw = gateway(LISTENERS)
    gw["spec"]["gatewayClassName"] = "eg"
    got = hosts(envoy, gw, httproute("redir", "http", ["shop.example.com"], redirect=True))
    s = got["edge/Gateway/public/shop.example.com:443"]
    assert s.https_redirect is True and "only redirects" in s.https_redirect_source
    assert not any(k.endswith(":80") for k in got)  # a redirect-only listener is not an entry point of its own
    # No portable minimum TLS version: Envoy Gateway's is not evaluated, so never a pass.
    assert "implementation-specific" in unknown(s)["weak_protocols"]


def test_gateway_unresolved_certificate_ref_and_denied_secrets() -> None:
    status = [{"name": "https", "conditions": [{"type": "ResolvedRefs", "status": "False",
                                                "reason": "RefNotPermitted"}]}]
    gw = gateway([{**LISTENERS[0], "tls": {"certificateRefs": [{"name": "shop-tls", "namespace": "certs"}]}}], status)
    s = hosts(ISTIO_CLASS, gw, denied=("Secret",))["edge/Gateway/public/shop.example.com:443"]
    assert s.secret_namespace == "certs" and "RefNotPermitted" in s.fallback_certificate
    assert unknown(s)["secret_found"] == "permission denied: list secrets"


# --- Istio Gateway ---------------------------------------------------------------------------------------

def istio_gateway(servers: list[dict]) -> dict:
    return obj("networking.istio.io/v1", "Gateway", "public", "shop", spec={"selector": {"istio": "ingressgateway"},
                                                                          "servers": servers})


def test_istio_omitted_mode_is_passthrough_and_min_version() -> None:
    gw_deploy = deployment("istio-ingressgateway", "istio-system", "docker.io/istio/proxyv2:1.24.2",
                           labels={"istio": "ingressgateway"})
    got = hosts(gw_deploy, istio_gateway([
        {"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["shop/pass.example.com"], "tls": {}},
        {"port": {"number": 8443, "protocol": "HTTPS"}, "hosts": ["old.example.com"],
         "tls": {"mode": "SIMPLE", "credentialName": "old-tls", "minProtocolVersion": "TLSV1_0"}},
        {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["old.example.com"], "tls": {"httpsRedirect": True}},
    ]))
    passthrough = got["shop/IstioGateway/public/pass.example.com:443"]
    assert passthrough.tls_mode == "passthrough"
    assert "omitted, which means PASSTHROUGH" in unknown(passthrough)["secret_found"]
    old = got["shop/IstioGateway/public/old.example.com:8443"]
    assert old.secret_namespace == "istio-system"  # credentialName is read in the gateway workload's namespace
    assert old.weak_protocols == ["TLSv1", "TLSv1.1"] and "minProtocolVersion=TLSV1_0" in old.protocols_source
    assert old.https_redirect is True and "httpsRedirect" in old.https_redirect_source
    assert "hsts" in unknown(old)  # Istio adds HSTS only through VirtualServices, which are not read


# --- Traefik and Contour ---------------------------------------------------------------------------------

TRAEFIK = deployment("traefik", "traefik", "docker.io/traefik:v3.3",
                     args=["--entryPoints.web.address=:8000", "--entryPoints.websecure.address=:8443"])


def ingress_route(name: str, host: str, tls: dict | None, entry: str, middlewares: list | None = None) -> dict:
    spec: dict = {"entryPoints": [entry], "routes": [{"match": f"Host(`{host}`) && PathPrefix(`/`)", "kind": "Rule",
                                                    "services": [{"name": "web", "port": 80}],
                                                    "middlewares": middlewares or []}]}
    if tls is not None:
        spec["tls"] = tls
    return obj("traefik.io/v1alpha1", "IngressRoute", name, "shop", spec=spec)


def test_traefik_tlsoption_default_and_explicit_minversion() -> None:
    weak = obj("traefik.io/v1alpha1", "TLSOption", "legacy", "shop", spec={"minVersion": "VersionTLS10"})
    got = hosts(TRAEFIK, weak,
                ingress_route("a", "a.example.com", {"secretName": "a-tls"}, "websecure"),
                ingress_route("b", "b.example.com", {"secretName": "b-tls", "options": {"name": "legacy"}},
                              "websecure"),
                ingress_route("c", "c.example.com", {"certResolver": "le"}, "websecure"),
                ingress_route("a-http", "a.example.com", None, "web"))
    a = got["shop/IngressRoute/a/a.example.com:8443"]
    # The CRD comment says VersionTLS10, but Traefik's effective default is VersionTLS12.
    assert a.tls_policy.protocols == ["TLSv1.2", "TLSv1.3"] and a.weak_protocols == []
    assert a.https_redirect is False and "without redirectScheme" in a.https_redirect_source
    assert a.hsts is False
    b = got["shop/IngressRoute/b/b.example.com:8443"]
    assert b.weak_protocols == ["TLSv1", "TLSv1.1"] and "TLSOption shop/legacy" in b.protocols_source
    c = got["shop/IngressRoute/c/c.example.com:8443"]
    assert "certResolver le" in unknown(c)["secret_found"]


def test_traefik_static_redirect() -> None:
    redirecting = deployment("traefik", "traefik", "docker.io/traefik:v3.3",
                             args=["--entryPoints.web.http.redirections.entryPoint.to=websecure"])
    got = hosts(redirecting, ingress_route("a", "a.example.com", {"secretName": "a-tls"}, "websecure"),
                ingress_route("a-http", "a.example.com", None, "web"))
    assert got["shop/IngressRoute/a/a.example.com:443"].https_redirect is True
    assert not any(k.endswith(":80") for k in got)


def test_contour_httpproxy_versions_and_permit_insecure() -> None:
    good = obj("projectcontour.io/v1", "HTTPProxy", "good", "shop", spec={
        "virtualhost": {"fqdn": "good.example.com", "tls": {"secretName": "good-tls"}},
        "routes": [{"services": [{"name": "web", "port": 80}]}]})
    insecure = obj("projectcontour.io/v1", "HTTPProxy", "insecure", "shop", spec={
        "virtualhost": {"fqdn": "insecure.example.com", "tls": {"secretName": "certs/shared",
                                                                "minimumProtocolVersion": "1.3"}},
        "routes": [{"permitInsecure": True, "services": [{"name": "web", "port": 80}]}]})
    plain = obj("projectcontour.io/v1", "HTTPProxy", "plain", "shop", spec={"virtualhost": {"fqdn": "p.example.com"}})
    got = hosts(good, insecure, plain)
    g = got["shop/HTTPProxy/good/good.example.com:443"]
    assert g.https_redirect and g.tls_policy.protocols == ["TLSv1.2", "TLSv1.3"] and g.hsts is False
    i = got["shop/HTTPProxy/insecure/insecure.example.com:443"]
    assert i.secret_namespace == "certs" and i.tls_policy.protocols == ["TLSv1.3"] and i.https_redirect is False
    assert not got["shop/HTTPProxy/plain/p.example.com:80"].tls


# --- exposed Services ------------------------------------------------------------------------------------

def service(name: str, stype: str, ports: list[dict], selector: dict, lb_ip: str | None = None) -> dict:
    status = {"loadBalancer": {"ingress": [{"ip": lb_ip}]}} if lb_ip else {}
    return obj("v1", "Service", name, "apps", spec={"type": stype, "selector": selector, "ports": ports},
               status=status)


def test_exposed_services_listed_for_review_and_controller_services_skipped() -> None:
    controller = deployment("ingress-nginx-controller", "apps", NGINX_IMAGE, labels={"app": "nginx"})
    got = hosts(controller,
                service("nginx", "LoadBalancer", [{"name": "https", "port": 443}], {"app": "nginx"}, "203.0.113.5"),
                service("db", "LoadBalancer", [{"name": "postgres", "port": 5432}], {"app": "db"}, "203.0.113.6"),
                service("metrics", "NodePort", [{"name": "http", "port": 8080, "nodePort": 30080}], {"app": "m"}),
                service("internal", "ClusterIP", [{"port": 80}], {"app": "x"}))
    assert set(got) == {"apps/Service/db/203.0.113.6:5432", "apps/Service/metrics/(every node address):30080"}
    db = got["apps/Service/db/203.0.113.6:5432"]
    assert db.public and db.app_tls is None and "review it, or run --probe-tls" in unknown(db)["app_tls"]
    metrics = got["apps/Service/metrics/(every node address):30080"]
    assert metrics.app_tls is False and not metrics.public and "declared plain HTTP" in metrics.app_tls_source


def test_traefik_serving_an_ingress_with_a_cert_resolver() -> None:
    ing = an_ingress("a.example.com", secret=None, annotations={
        "traefik.ingress.kubernetes.io/router.tls": "true", "traefik.ingress.kubernetes.io/router.tls.certresolver": "le"})
    a = hosts(TRAEFIK, nginx()[1], ing)["shop/web/a.example.com:443"]
    assert a.controller == "traefik" and a.tls and a.secret_found is None
    assert "certResolver le" in unknown(a)["secret_found"]


# --- issue 13: entry points read as the products read them --------------------------------------------------

def test_nginx_merges_ingresses_per_host_so_tls_and_redirect_cover_every_path() -> None:
    # ingress-nginx builds one server per host from all Ingresses of its class; the certificate of a host listed
    # under spec.tls in one Ingress serves the paths of the others too, and ssl-redirect (default true "if TLS is
    # enabled for the host") applies to them (kubernetes/ingress-nginx docs/user-guide/nginx-configuration/
    # annotations.md, "Server-side HTTPS enforcement through redirect"; docs/user-guide/multiple-ingress.md).
    crt = certificate("shop.example.com", ["shop.example.com"])
    web = an_ingress("shop.example.com", secret="shop-tls")
    web["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    api = obj("networking.k8s.io/v1", "Ingress", "api", "shop", spec={"ingressClassName": "nginx", "rules": [
        {"host": "shop.example.com", "http": {"paths": [
            {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}},
        {"host": "plain.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}}]})
    got = hosts(*nginx({}), web, api, tls_secret("shop-tls", "shop", crt),
                obj("v1", "Service", "web", "shop"), obj("v1", "Service", "api", "shop"))
    merged = got["shop/api/shop.example.com:443"]
    assert merged.tls and merged.secret_name == "shop-tls" and merged.secret_found is True
    assert "Ingress shop/web lists shop.example.com under spec.tls" in merged.tls_source
    assert merged.https_redirect is True and "default ssl-redirect=true" in merged.https_redirect_source
    assert "shop/api/shop.example.com:80" not in got
    # A host no Ingress of the class lists under spec.tls stays plain HTTP, and the reason names the class.
    plain = got["shop/api/plain.example.com:80"]
    assert not plain.tls and plain.tls_source == "no Ingress of class nginx lists plain.example.com under spec.tls"


def gke_ingress(annotations: dict, tls: list | None = None) -> dict:
    # Shaped like GKE's "Using Google-managed SSL certificates" and "Configuring Ingress features" examples.
    spec: dict = {"defaultBackend": {"service": {"name": "web", "port": {"number": 8080}}}, "rules": [
        {"host": "shop.example.com", "http": {"paths": [
            {"path": "/*", "pathType": "ImplementationSpecific",
             "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}
    if tls:
        spec["tls"] = tls
    return obj("networking.k8s.io/v1", "Ingress", "web", "shop", annotations=annotations, spec=spec,
               status={"loadBalancer": {"ingress": [{"ip": "203.0.113.80"}]}})


def test_gke_ingress_managed_certificate_frontendconfig_and_cloud_ssl_policy() -> None:
    mc = obj("networking.gke.io/v1", "ManagedCertificate", "shop-cert", "shop", spec={"domains": ["shop.example.com"]},
             status={"certificateStatus": "Active", "domainStatus": [{"domain": "shop.example.com",
                                                                      "status": "Active"}]})
    fc = obj("networking.gke.io/v1beta1", "FrontendConfig", "shop-frontend", "shop",
             spec={"redirectToHttps": {"enabled": True}, "sslPolicy": "shop-tls12"})
    ing = gke_ingress({"kubernetes.io/ingress.class": "gce", "networking.gke.io/managed-certificates": "shop-cert",
                       "networking.gke.io/v1beta1.FrontendConfig": "shop-frontend",
                       "kubernetes.io/ingress.global-static-ip-name": "shop-ip"})
    got = hosts(ing, mc, fc, obj("v1", "Service", "web", "shop"))
    s = got["shop/web/shop.example.com:443"]
    assert s.controller == "gce" and s.tls and s.cloud_certificate_ready is True and s.secret_found is None
    assert s.https_redirect is True and "redirectToHttps" in s.https_redirect_source
    # The SSL policy is a Google Cloud object: unknown, and the reason names it and how to attach it.
    assert "gcloud compute ssl-policies describe shop-tls12" in unknown(s)["weak_protocols"]
    assert s.backends_missing == []
    # Domains that redaction kept only as a fingerprint cannot show the host: unknown, never "not active".
    mc["spec"]["domains"] = ["<fingerprint: 16 chars>"]
    s = hosts(ing, mc, fc, obj("v1", "Service", "web", "shop"))["shop/web/shop.example.com:443"]
    assert s.cloud_certificate_ready is None and "redacted" in unknown(s)["cloud_certificate_ready"]


def test_gke_ingress_defaults_serve_http_and_tls_1_0() -> None:
    # No FrontendConfig: the load balancer keeps its HTTP frontend (kubernetes.io/ingress.allow-http defaults to
    # true) and Google Cloud's default SSL policy (COMPATIBLE, minimum TLS 1.0; cloud.google.com/load-balancing/
    # docs/ssl-policies-concepts). A pre-shared certificate lives in Google Cloud, so it is unknown.
    ing = gke_ingress({"ingress.gcp.kubernetes.io/pre-shared-cert": "shop-example-com"})
    s = hosts(ing, obj("v1", "Service", "web", "shop"))["shop/web/shop.example.com:443"]
    assert s.controller == "gce" and s.https_redirect is False and "allow-http" in s.https_redirect_source
    assert s.weak_protocols == ["TLSv1", "TLSv1.1"] and "COMPATIBLE" in s.protocols_source
    assert "gcloud compute ssl-certificates describe shop-example-com" in unknown(s)["cloud_certificate_ready"]
    assert s.hsts is False and "nginx" not in s.model_dump_json()


def test_aws_alb_certificate_arn_listen_ports_redirect_and_default_policy() -> None:
    # kubernetes-sigs/aws-load-balancer-controller docs/guide/ingress/annotations.md: listen-ports, ssl-redirect,
    # certificate-arn (ACM), ssl-policy default ELBSecurityPolicy-2016-08 (TLS 1.0-1.2).
    arn = "arn:aws:acm:eu-north-1:111122223333:certificate/0b9c2f3e-7a1d-4c55-9d1e-3f6a2b7c8d90"
    cls = obj("networking.k8s.io/v1", "IngressClass", "alb", spec={"controller": "ingress.k8s.aws/alb"})
    ing = obj("networking.k8s.io/v1", "Ingress", "checkout", "shop", annotations={
        "alb.ingress.kubernetes.io/scheme": "internet-facing", "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/certificate-arn": arn,
        "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
        "alb.ingress.kubernetes.io/ssl-redirect": "443"},
        spec={"ingressClassName": "alb", "rules": [{"host": "checkout.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "checkout", "port": {"number": 80}}}}]}}]})
    s = hosts(cls, ing)["shop/checkout/checkout.example.com:443"]
    assert s.controller == "aws-alb" and s.tls and s.https_redirect is True and "ssl-redirect" in s.https_redirect_source
    assert s.weak_protocols == ["TLSv1", "TLSv1.1"] and "ELBSecurityPolicy-2016-08" in s.protocols_source
    assert arn in unknown(s)["cloud_certificate_ready"] and "aws acm describe-certificate" in \
        unknown(s)["cloud_certificate_ready"]
    # The backend Service "checkout" does not exist: the route leads nowhere (or to whoever creates it).
    assert s.backends_missing == ["checkout:80"]
    # A modern predefined policy is judged from its name; without ssl-redirect the HTTP listener serves plain text.
    ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/ssl-policy"] = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    del ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/ssl-redirect"]
    s = hosts(cls, ing, obj("v1", "Service", "checkout", "shop"))["shop/checkout/checkout.example.com:443"]
    assert s.weak_protocols == [] and s.weak_ciphers == [] and s.https_redirect is False and s.backends_missing == []
    # Listener attributes (which can add Strict-Transport-Security) kept only as a fingerprint: HSTS is unknown.
    ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/listener-attributes.HTTPS-443"] = \
        "<fingerprint: 90 chars, sha256:" + "0" * 64 + ">"
    s = hosts(cls, ing, obj("v1", "Service", "checkout", "shop"))["shop/checkout/checkout.example.com:443"]
    assert s.hsts is None and "listener-attributes could not be read" in unknown(s)["hsts"]


def test_azure_application_gateway_policy_held_in_azure() -> None:
    # Azure/application-gateway-kubernetes-ingress docs/annotations.md: ssl-redirect (default false),
    # appgw-ssl-certificate (a certificate installed on the gateway), appgw-ssl-profile.
    ing = obj("networking.k8s.io/v1", "Ingress", "portal", "care", annotations={
        "kubernetes.io/ingress.class": "azure/application-gateway",
        "appgw.ingress.kubernetes.io/appgw-ssl-certificate": "portal-cert",
        "appgw.ingress.kubernetes.io/ssl-redirect": "true"},
        spec={"rules": [{"host": "portal.example.se", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "portal", "port": {"number": 80}}}}]}}]})
    s = hosts(ing, obj("v1", "Service", "portal", "care"))["care/portal/portal.example.se:443"]
    assert s.controller == "azure-application-gateway" and s.https_redirect is True
    assert "az network application-gateway ssl-policy show" in unknown(s)["weak_protocols"]
    assert "portal-cert" in unknown(s)["cloud_certificate_ready"]


def test_gateway_proxy_services_are_not_listed_as_exposed_without_tls() -> None:
    # Istio's gateway Helm chart deploys `image: auto` with the `gateway` injection template (manifests/charts/
    # gateway/templates/deployment.yaml); Envoy Gateway labels the Services it creates with
    # gateway.envoyproxy.io/owning-gateway-name. Both are the proxy: their TLS is that of the Gateway resources.
    gw_deploy = deployment("istio-ingressgateway", "istio-ingress", "auto", labels={"istio": "ingressgateway"})
    gw_deploy["spec"]["template"]["metadata"]["annotations"] = {"inject.istio.io/templates": "gateway"}
    istio_svc = obj("v1", "Service", "istio-ingressgateway", "istio-ingress", spec={
        "type": "LoadBalancer", "selector": {"istio": "ingressgateway"},
        "ports": [{"name": "http2", "port": 80}, {"name": "https", "port": 443}]},
        status={"loadBalancer": {"ingress": [{"ip": "203.0.113.90"}]}})
    envoy_svc = obj("v1", "Service", "envoy-edge-public-3c1f0a2b", "envoy-gateway-system",
                    labels={"gateway.envoyproxy.io/owning-gateway-name": "public",
                            "gateway.envoyproxy.io/owning-gateway-namespace": "edge"},
                    spec={"type": "LoadBalancer", "selector": {"app.kubernetes.io/name": "envoy"},
                          "ports": [{"name": "http-80", "port": 80}]})
    got = hosts(gw_deploy, istio_svc, envoy_svc, istio_gateway([
        {"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["shop.example.com"],
         "tls": {"mode": "SIMPLE", "credentialName": "shop-tls"}}]))
    assert not any(s.kind == "Service" for s in got.values())
    s = got["shop/IstioGateway/public/shop.example.com:443"]
    assert s.addresses == ["203.0.113.90"] and s.secret_namespace == "istio-ingress"


def test_reasons_are_written_for_the_controller_serving_the_entry_point() -> None:
    # No text written for ingress-nginx (its annotations, its fake certificate, its ConfigMap) on an entry point
    # another product serves.
    gke = gke_ingress({"kubernetes.io/ingress.class": "gce"})
    traefik_route = ingress_route("a", "a.example.com", None, "web")
    gw_deploy = deployment("istio-ingressgateway", "istio-system", "docker.io/istio/proxyv2:1.24.2",
                           labels={"istio": "ingressgateway"})
    got = hosts(*nginx({}), gke, TRAEFIK, traefik_route, gw_deploy, istio_gateway([
        {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["i.example.com"]}]))
    others = [s for s in got.values() if s.controller in ("gce", "traefik", "istio")]
    assert {s.controller for s in others} == {"gce", "traefik", "istio"}
    for s in others:
        text = s.model_dump_json().lower()
        assert "nginx" not in text and "fake certificate" not in text, s.id
    # The authentication gaps of those entry points speak of their own products too (auth.required's message).
    inv = inventory(*nginx({}), gke, TRAEFIK, traefik_route, gw_deploy, istio_gateway([
        {"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["i.example.com"]}]))
    auth_hosts = {a.id: a for a in auth.collect(inv, Scope(), NOW) if a.TYPE == "host_auth"}
    gke_auth = auth_hosts["shop/web/shop.example.com:80"]
    assert gke_auth.auth_gaps == ["no BackendConfig enables Identity-Aware Proxy (spec.iap.enabled) on the host's "
                                  "backends"]
    assert not any("nginx" in g for a in auth_hosts.values() if a.controller != "ingress-nginx" for g in a.auth_gaps)


def test_gke_backendconfig_headers_and_iap_or_unknown_when_not_read() -> None:
    # GKE BackendConfig (cloud.google.com/v1): customResponseHeaders and iap.enabled, referenced from the Service
    # by cloud.google.com/backend-config '{"default": "<name>"}' (GKE "Configuring Ingress features").
    svc = obj("v1", "Service", "web", "shop", annotations={"cloud.google.com/backend-config": '{"default": "web-bc"}'})
    bc = obj("cloud.google.com/v1", "BackendConfig", "web-bc", "shop", spec={
        "customResponseHeaders": {"headers": ["Strict-Transport-Security: max-age=31536000; includeSubDomains"]},
        "iap": {"enabled": True, "oauthclientCredentials": {"secretName": "iap-oauth"}}})
    ing = gke_ingress({"kubernetes.io/ingress.class": "gce", "ingress.gcp.kubernetes.io/pre-shared-cert": "shop"})
    s = hosts(ing, svc, bc)["shop/web/shop.example.com:443"]
    assert s.hsts is True and "BackendConfig shop/web-bc" in s.hsts_source
    a = {x.id: x for x in auth.collect(inventory(ing, svc, bc), Scope(), NOW) if x.TYPE == "host_auth"}
    assert a["shop/web/shop.example.com:443"].auth_gaps == []
    # BackendConfigs not read (a live run without the type, or a snapshot without them): unknown, never a fail.
    s = hosts(ing, svc, absent=("BackendConfig",))["shop/web/shop.example.com:443"]
    assert s.hsts is None and "BackendConfig shop/web-bc" in unknown(s)["hsts"]
    a = {x.id: x for x in auth.collect(inventory(ing, svc, absent=("BackendConfig",)), Scope(), NOW)
         if x.TYPE == "host_auth"}
    assert "may enable Identity-Aware Proxy" in unknown(a["shop/web/shop.example.com:443"])["authenticated"]
