"""Redaction on the way in, as an allow-list: the inventory keeps what a control reads; every other free-text
value is reduced to a fingerprint, and credential-looking values are masked.

Every source calls `Redactor.redact` on each object before it is stored, so nothing downstream (facts, pack,
logs, error messages) can ever see what was removed.

What counts as free text, and what happens to it:
- ConfigMap `data` values: a value that parses as a structured config (JSON, YAML, TOML, Fluent Bit/INI
  sections, Fluentd directives) keeps its structure, its keys and the settings on CONFIG_KEEP (the ones collectors
  parse); other string settings become fingerprints. A value that does not parse is a fingerprint. Flat keys on
  FLAT_KEYS (ingress-nginx, Cilium, kube-router, oauth2-proxy settings) keep their value. All of `binaryData`
  is fingerprinted.
- annotation values (at every depth: pod templates too) unless the key is on ANNOTATION_KEYS / NGINX_ANNOTATIONS;
- container `command`/`args`: flag names are kept, a flag's value only when the flag is on FLAGS (whether written
  `--flag=v` or `--flag v`); positional words and shell scripts are fingerprints (program names on PROGRAMS kept);
- env values unless the name is on ENV_NAMES (or is referenced as $(NAME) by an allow-listed flag value);
- probe and lifecycle `httpHeaders` values and `exec` commands;
- strings of custom resources: kinds in CR_KEEP keep the listed paths; any other kind keeps only its metadata.
Secrets of any apiVersion lose `data`/`stringData`, except the CERTIFICATE blocks of tls.crt/ca.crt of
kubernetes.io/tls Secrets. `managedFields` and the last-applied-configuration annotation are dropped everywhere.

Allow-listed values are still masked (MASK, no length, no hash) when they look like a credential: by shape (PEM
and PGP private keys, JWTs anywhere in a string, URLs with a password, AWS/GitHub/GitLab/Slack/Stripe/Google
keys, Slack webhooks, `Bearer`/`Basic` values, `password=...` assignments) or by the name they are given
(DB_PASSWORD, --client-secret, STRIPE_KEY). A free-text value that looks like a credential is masked too rather
than fingerprinted: the credentials collector reports where MASK sits.

Fingerprints: `<fingerprint: N chars, sha256:HEX>` for values of at least FINGERPRINT_HASH_MIN (64) characters,
`<fingerprint: N chars>` below. A SHA-256 of a short value would let anyone holding the pack confirm a guessed
password offline (dictionary attack on an unsalted hash); 64 characters is beyond what people type as a password
and still gives change detection for configs, scripts and certificates. Masked values carry neither.

Matching is linear-time: every pattern starts with a literal or uses bounded repetition, and the few
unbounded runs are anchored at a token boundary, so a 1 MiB hostile value costs milliseconds
(benchmarks/redact_worst.py). Structured parsing is capped at PARSE_MAX bytes and YAML aliases are refused
(a billion-laughs document is fingerprinted, never expanded).

Redaction is idempotent: MASK and fingerprints pass through unchanged, so a snapshot written by `auditpack
snapshot` reads back to the same inventory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import yaml

Obj = dict[str, Any]

MASK = "<redacted by auditpack>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Keys of a kubernetes.io/tls Secret that hold public certificates only (tls.key is never kept).
PUBLIC_TLS_KEYS = ("tls.crt", "ca.crt")
FINGERPRINT_HASH_MIN = 64
PARSE_MAX = 128 * 1024  # structured parsing of one ConfigMap value; larger values are fingerprinted
PARSE_MAX_SCALARS = 5000  # settings in one parsed config (falco.yaml has ~300); more: fingerprinted whole
_MAX_DEPTH = 64  # deeper subtrees of free text are fingerprinted as one JSON value

# --- allow-lists: what collectors read (grep evidence/collectors; tests/test_redact.py checks they agree) ---------

# Flags whose values collectors read (kube-apiserver, kube-router, k3s, Loki, ingress-nginx, oauth2-proxy) plus
# well-known settings of the same programs that hold no secret. Traefik's static flags are matched by FLAG_PATTERNS.
FLAGS = frozenset({
    # kube-apiserver (cluster.py _apiserver, detection.py _audit_shipping) and its common hardening settings
    "audit-policy-file", "audit-log-path", "audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize",
    "audit-webhook-config-file", "audit-log-format", "encryption-provider-config", "authorization-mode",
    "anonymous-auth", "enable-admission-plugins", "disable-admission-plugins", "tls-min-version",
    "tls-cipher-suites", "profiling", "secure-port", "insecure-port", "client-ca-file", "kubelet-certificate-authority",
    "oidc-issuer-url", "oidc-client-id", "oidc-username-claim", "oidc-groups-claim", "service-account-issuer",
    "service-account-lookup", "enable-bootstrap-token-auth", "requestheader-client-ca-file", "allow-privileged",
    "advertise-address", "bind-address", "etcd-servers", "service-cluster-ip-range", "kubelet-preferred-address-types",
    "requestheader-allowed-names", "requestheader-group-headers", "requestheader-username-headers",
    "requestheader-extra-headers-prefix", "oidc-username-prefix", "oidc-groups-prefix", "kubelet-client-certificate",
    "kubelet-client-key", "etcd-certfile", "etcd-keyfile", "etcd-cafile", "runtime-config", "feature-gates",
    "v", "service-node-port-range", "event-ttl", "request-timeout", "max-requests-inflight",
    # kube-router (cluster.py), k3s server (cluster.py, from the k3s.io/node-args annotation)
    "run-firewall", "flannel-backend", "disable-network-policy",
    # Loki (detection.py)
    "config.file",
    # ingress-nginx controller (entrypoints.py controllers)
    "configmap", "controller-class", "ingress-class", "annotations-prefix", "default-ssl-certificate",
    "publish-service", "election-id", "watch-ingress-without-class", "enable-ssl-passthrough",
    # oauth2-proxy (oauth2proxy.py BOOLS, STRINGS, LISTS, --config, --alpha-config)
    "config", "alpha-config", "set-authorization-header", "set-xauthrequest", "pass-access-token", "cookie-secure",
    "skip-auth-preflight", "skip-jwt-bearer-tokens", "reverse-proxy", "skip-auth-strip-headers",
    "ssl-insecure-skip-verify", "ssl-upstream-insecure-skip-verify", "insecure-oidc-allow-unverified-email",
    "insecure-oidc-skip-issuer-verification", "provider", "cookie-expire", "cookie-refresh",
    "authenticated-emails-file", "email-domain", "allowed-group", "skip-auth-route",
    "skip-auth-regex", "trusted-ip", "trusted-proxy-ip", "upstream", "http-address", "https-address",
    # Falco
    "disable-source", "enable-source",
})
FLAG_PATTERNS = (re.compile(r"entrypoints\.[A-Za-z0-9_-]{1,64}\.(address|http\.redirections\.[A-Za-z0-9_.-]{1,64})",
                            re.IGNORECASE),
                 # a file or directory path names where a credential is, it does not hold one
                 re.compile(r"[a-z0-9.-]{0,64}(-file|-dir|-path|certfile|keyfile|cafile)"))
# First words of a command line that collectors look for ("nginx-ingress-controller" in the arguments, k3s
# "server"); other positional words are fingerprinted.
PROGRAMS = frozenset({
    "/nginx-ingress-controller", "nginx-ingress-controller", "/usr/bin/dumb-init", "/usr/local/bin/dumb-init",
    "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "server", "agent", "traefik",
    "/bin/oauth2-proxy", "oauth2-proxy", "/bin/oauth2_proxy", "falco", "/usr/bin/falco", "/usr/bin/loki", "loki",
    "/fluent-bit/bin/fluent-bit", "fluent-bit", "sh", "/bin/sh", "bash", "/bin/bash", "--",
})
# Env names whose values collectors read: oauth2-proxy settings (OAUTH2_PROXY_ + config name, upper case),
# Calico's FELIX_WIREGUARDENABLED (cluster.py), the namespace/host references ingress-nginx flags expand.
ENV_NAMES = frozenset({
    "FELIX_WIREGUARDENABLED", "POD_NAMESPACE", "POD_NAME", "GF_AUTH_ANONYMOUS_ENABLED",  # adminui.py
    # The destination settings of the fluent/fluentd-kubernetes-daemonset images' fluent.conf, which reads them as
    # "#{ENV['FLUENT_ELASTICSEARCH_HOST']}" (monitoring.py resolves them; the _USER/_PASSWORD ones stay masked).
    *(f"FLUENT_{out}_{s}" for out in ("ELASTICSEARCH", "OPENSEARCH") for s in ("HOST", "PORT", "SCHEME", "SSL_VERIFY")),
    "FLUENT_FOWARD_HOST", "FLUENT_FOWARD_PORT", "FLUENT_FORWARD_HOST", "FLUENT_FORWARD_PORT",
    *(f"OAUTH2_PROXY_{n.upper()}" for n in (
        "set_authorization_header", "set_xauthrequest", "pass_access_token", "cookie_secure", "skip_auth_preflight",
        "skip_jwt_bearer_tokens", "reverse_proxy", "skip_auth_strip_headers", "ssl_insecure_skip_verify",
        "ssl_upstream_insecure_skip_verify", "insecure_oidc_allow_unverified_email",
        "insecure_oidc_skip_issuer_verification", "provider", "cookie_expire", "cookie_refresh",
        "authenticated_emails_file", "oidc_issuer_url", "email_domains", "allowed_groups", "skip_auth_routes",
        "skip_auth_regex", "trusted_ips", "trusted_proxy_ips", "upstreams")),
})
# Annotation keys whose values collectors read (ingress.py, auth.py, entrypoints.py, transit.py, cluster.py,
# namespaces.py), plus the cloud load-balancer TLS settings of GKE and the AWS Load Balancer Controller.
ANNOTATION_KEYS = frozenset({
    "compliance.auditpack.io/public-access", "compliance.auditpack.io/justification",
    "kubernetes.io/ingress.class", "ingressclass.kubernetes.io/is-default-class",
    "cert-manager.io/cluster-issuer", "cert-manager.io/issuer", "cert-manager.io/issuer-kind",
    "traefik.ingress.kubernetes.io/router.middlewares", "traefik.ingress.kubernetes.io/router.tls",
    "traefik.ingress.kubernetes.io/router.tls.certresolver", "traefik.ingress.kubernetes.io/router.tls.options",
    "traefik.ingress.kubernetes.io/router.entrypoints",
    "istio.io/dry-run", "sidecar.istio.io/inject", "ambient.istio.io/redirection", "istio.io/rev",
    "config.linkerd.io/default-inbound-policy", "linkerd.io/inject", "linkerd.io/proxy-version",
    "projectcalico.org/WireguardPublicKey", "network.cilium.io/wg-pub-key", "flannel.alpha.coreos.com/backend-type",
    "node.antrea.io/wireguard-public-key",
    "kubernetes.io/ingress.allow-http", "ingress.gcp.kubernetes.io/pre-shared-cert",
    "networking.gke.io/managed-certificates", "networking.gke.io/v1beta1.FrontendConfig",
    "alb.ingress.kubernetes.io/ssl-policy", "alb.ingress.kubernetes.io/certificate-arn",
    "alb.ingress.kubernetes.io/listen-ports", "alb.ingress.kubernetes.io/ssl-redirect",
    "alb.ingress.kubernetes.io/scheme", "service.beta.kubernetes.io/aws-load-balancer-ssl-cert",
    "service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy",
    # entrypoints.py: Istio gateway template, GKE BackendConfig reference, Azure Application Gateway TLS settings.
    "inject.istio.io/templates", "cloud.google.com/backend-config", "beta.cloud.google.com/backend-config",
    "appgw.ingress.kubernetes.io/ssl-redirect", "appgw.ingress.kubernetes.io/appgw-ssl-certificate",
    "appgw.ingress.kubernetes.io/appgw-ssl-profile", "appgw.ingress.kubernetes.io/rewrite-rule-set",
    # auth.py: authentication the AWS load balancer performs.
    "alb.ingress.kubernetes.io/auth-type", "alb.ingress.kubernetes.io/auth-on-unauthenticated-request",
})
# ingress-nginx annotations, under nginx.ingress.kubernetes.io or the controller's --annotations-prefix.
NGINX_ANNOTATIONS = frozenset({
    "auth-url", "auth-signin", "auth-response-headers", "enable-global-auth", "auth-type", "auth-secret",
    "auth-secret-type", "auth-tls-verify-client", "auth-tls-secret", "auth-tls-verify-depth", "ssl-ciphers",
    "ssl-redirect", "force-ssl-redirect", "ssl-passthrough", "backend-protocol", "ssl-prefer-server-ciphers",
    "whitelist-source-range", "allowlist-source-range", "hsts", "hsts-max-age",
})
# Annotations parsed as a JSON list of command-line arguments (cluster.py _k3s_args).
ARGS_ANNOTATIONS = frozenset({"k3s.io/node-args"})
# Flat ConfigMap keys collectors read: ingress-nginx controller ConfigMap (ingress.py, auth.py), cilium-config,
# kube-router (cluster.py); the oauth2-proxy settings as env-style names (configMapKeyRef) are added below.
FLAT_KEYS = frozenset({
    "ssl-protocols", "ssl-ciphers", "hsts", "hsts-max-age", "hsts-include-subdomains", "ssl-redirect",
    "force-ssl-redirect", "global-auth-url", "global-auth-signin", "global-auth-response-headers",
    "enable-global-auth", "use-forwarded-headers", "allow-snippet-annotations", "annotations-risk-level",
    "policy-audit-mode", "enable-policy", "enable-k8s-networkpolicy", "enable-wireguard", "enable-ipsec",
    "encrypt-node", "enable-network-policy-controller", "tunnel", "routing-mode",
    *ENV_NAMES,
})
# Paths (dot-separated, * = any key or list index) of parsed ConfigMap configs whose values collectors read:
# kubeadm ClusterConfiguration, Istio mesh, Linkerd values, Antrea, flannel net-conf.json, Loki, Falco,
# oauth2-proxy TOML (config names) and alpha config, Alertmanager and audit-policy structure.
CONFIG_KEEP: tuple[str, ...] = (
    "apiVersion", "kind", "rootNamespace", "proxy.defaultInboundPolicy", "trafficEncryptionMode",
    "enableIPSecTunnel", "Backend.Type", "Network", "compactor.retention_enabled", "limits_config.retention_period",
    "*_output.enabled", "grpc.enabled", "injectResponseHeaders.*.name", "route.receiver", "route.routes",
    "receivers.*.name", "rules.*.level", "rules.*.resources", "rules.*.namespaces", "rules.*.verbs",
    "rules.*.users", "rules.*.userGroups", "omitStages", "rules.*.omitStages",
    "provider", "cookie_expire", "cookie_refresh", "authenticated_emails_file", "oidc_issuer_url", "email_domains",
    "allowed_groups", "skip_auth_routes", "skip_auth_regex", "trusted_ips", "trusted_proxy_ips", "upstreams",
    "resources.*.resources", "auth.strategy", "common.path_prefix", "common.storage.filesystem.chunks_directory",
    "storage_config.filesystem.directory",
    # Log shipper outputs (monitoring.py _outputs): plugin, destination, TLS; credentials stay fingerprinted.
    "[OUTPUT].*.Host", "[OUTPUT].*.Port", "[OUTPUT].*.tls", "[OUTPUT].*.URI", "pipeline.outputs.*.host",
    "pipeline.outputs.*.port", "pipeline.outputs.*.tls", "sinks.*.type", "sinks.*.endpoint", "sinks.*.endpoints",
    "sinks.*.tls.enabled", "clients.*.url", "*ANONYMOUS].*.enabled",
    "apiServer.extraArgs.*.name", "[OUTPUT].*.Name", "[INPUT].*.Name", "[FILTER].*.Name", "pipeline.outputs.*.name",
)
# Fluentd outputs (monitoring.py _fluentd_outputs): the plugin, destination and TLS settings of every <match>, top
# level or inside a <label> or <worker>, of the <store>s of `@type copy` and of a <secondary>, and the <server> hosts of
# `@type forward`. Credentials (password, shared_key, hec_token, aws_sec_key) are not on it: their keys show that
# they are set, their values stay fingerprinted.
FLUENTD_OUTPUT_KEYS = ("@type", "type", "host", "hosts", "port", "scheme", "ssl_verify", "url", "endpoint",
                       "transport", "protocol", "hec_host", "hec_port", "full_url", "s3_endpoint", "s3_region",
                       "region", "use_ssl", "brokers", "ssl_ca_certs_from_system")
_FLUENTD_OUTPUT_BLOCKS = tuple(f"{match}.*.{inner}"
                               for match in ("<match>", "<label>.*.<match>", "<worker>.*.<match>")
                               for inner in ("", "<store>.*.", "<secondary>.*.", "<store>.*.<store>.*."))
CONFIG_KEEP += tuple(f"{block}{key}" for block in _FLUENTD_OUTPUT_BLOCKS
                     for key in (*FLUENTD_OUTPUT_KEYS, "<server>.*.host", "<server>.*.port"))
# Custom resources collectors read: (group, kind) -> (kept paths, fingerprinted paths inside kept ones).
# A string is kept when the longest matching pattern is a kept one. Kinds not listed keep only their metadata.
_SPEC_STATUS = (("spec", "status"), ())
# What the pods prometheus-operator runs for a resource look like (collectors/workloads.py _operator_pods): the labels
# it merges its own over, and the web port's name.
_OPERATOR_POD = ("spec.podMetadata.labels", "spec.portName")
CR_KEEP: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("cert-manager.io", "Certificate"): _SPEC_STATUS,
    ("cert-manager.io", "Issuer"): (("spec.acme.server", "spec.ca.secretName", "status"), ()),
    ("cert-manager.io", "ClusterIssuer"): (("spec.acme.server", "spec.ca.secretName", "status"), ()),
    ("gateway.networking.k8s.io", "Gateway"): _SPEC_STATUS,
    ("gateway.networking.k8s.io", "GatewayClass"): _SPEC_STATUS,
    ("gateway.networking.k8s.io", "HTTPRoute"): (("spec", "status"), ("spec.rules.*.filters.*.requestHeaderModifier",)),
    ("crd.projectcalico.org", "FelixConfiguration"): _SPEC_STATUS,
    ("projectcalico.org", "FelixConfiguration"): _SPEC_STATUS,
    ("crd.projectcalico.org", "GlobalNetworkPolicy"): _SPEC_STATUS,
    ("crd.projectcalico.org", "NetworkPolicy"): _SPEC_STATUS,
    ("cilium.io", "CiliumNode"): _SPEC_STATUS,
    ("cilium.io", "CiliumNetworkPolicy"): _SPEC_STATUS,
    ("cilium.io", "CiliumClusterwideNetworkPolicy"): _SPEC_STATUS,
    ("policy.networking.k8s.io", "ClusterNetworkPolicy"): _SPEC_STATUS,
    ("security.istio.io", "PeerAuthentication"): _SPEC_STATUS,
    ("security.istio.io", "AuthorizationPolicy"): (("spec", "status"), ("spec.rules.*.when",)),
    ("security.istio.io", "RequestAuthentication"): _SPEC_STATUS,
    ("networking.istio.io", "Gateway"): _SPEC_STATUS,
    ("networking.istio.io", "DestinationRule"): _SPEC_STATUS,
    ("policy.linkerd.io", "Server"): _SPEC_STATUS,
    ("traefik.io", "IngressRoute"): _SPEC_STATUS,
    ("traefik.io", "TLSOption"): _SPEC_STATUS,
    ("traefik.io", "Middleware"): (("spec", "status"), (
        "spec.headers.customRequestHeaders", "spec.headers.customResponseHeaders", "spec.basicAuth.users",
        "spec.digestAuth.users", "spec.plugin")),
    ("projectcontour.io", "HTTPProxy"): (("spec", "status"), ("spec.routes.*.requestHeadersPolicy",)),
    ("monitoring.coreos.com", "Prometheus"): (("spec.retention", "spec.ruleSelector", "spec.ruleNamespaceSelector",
                                               "spec.serviceMonitorSelector", "spec.alerting.alertmanagers.*.name",
                                               *_OPERATOR_POD, "status"), ()),
    ("monitoring.coreos.com", "Alertmanager"): (("spec.alertmanagerConfiguration", "spec.configSecret", *_OPERATOR_POD,
                                                 "status"), ()),
    ("monitoring.coreos.com", "PrometheusAgent"): ((*_OPERATOR_POD, "spec.mode"), ()),
    ("monitoring.coreos.com", "ThanosRuler"): (_OPERATOR_POD, ()),
    ("monitoring.coreos.com", "AlertmanagerConfig"): (("spec.route", "spec.receivers.*.name"), ()),
    ("monitoring.coreos.com", "PrometheusRule"): (("spec.groups.*.name", "spec.groups.*.rules.*.alert",
                                                   "spec.groups.*.rules.*.record", "spec.groups.*.rules.*.expr",
                                                   "spec.groups.*.rules.*.for", "spec.groups.*.rules.*.labels"), ()),
    ("aquasecurity.github.io", "VulnerabilityReport"): (("report", "status"), ()),
    ("wgpolicyk8s.io", "PolicyReport"): (("results", "summary", "scope", "status"), ()),
    ("probe.auditpack.io", "TLSProbe"): _SPEC_STATUS,
    ("kiali.io", "Kiali"): (("spec.auth.strategy",), ()),  # adminui.py: anonymous or a login
    # The API server's own files copied into a snapshot (collectors/controlplane.py): the audit policy's rules, and
    # which resources an EncryptionConfiguration covers (provider names are keys, kept; their key material is not).
    ("audit.k8s.io", "Policy"): (("rules", "omitStages"), ()),
    ("apiserver.config.k8s.io", "EncryptionConfiguration"): (("resources.*.resources",), ()),
    # GKE Ingress: the certificate's domains and state, the frontend's redirect and SSL policy name, and the
    # response headers a BackendConfig adds (Strict-Transport-Security).
    ("networking.gke.io", "ManagedCertificate"): (("spec.domains", "status"), ()),
    ("networking.gke.io", "FrontendConfig"): (("spec.redirectToHttps", "spec.sslPolicy"), ()),
    ("cloud.google.com", "BackendConfig"): (("spec.customResponseHeaders", "spec.iap.enabled"), ()),
}
# Kubernetes' own API groups: their fields are structure, not free text (except the fields handled below).
BUILTIN_GROUPS = frozenset({"", "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "policy",
                            "storage.k8s.io", "scheduling.k8s.io", "node.k8s.io", "discovery.k8s.io",
                            "coordination.k8s.io", "admissionregistration.k8s.io", "autoscaling"})
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_SKIP_WALK = frozenset({*_CONTAINER_LISTS, "data", "binaryData", "status", "managedFields"})
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

# --- credential detection (linear-time patterns) ---------------------------------------------------------------

_CRED_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth[-_]?key"
    r"|client[-_]?secret|cookie[-_]?secret|signing[-_]?key|encryption[-_]?key|dsn|conn(ection)?[-_]?str"
    r"|(^|[-_.])[a-z0-9]{0,32}key$|key[-_]?data|webhook[-_]?url|authorization|^auth$)",
    re.IGNORECASE,
)
# Names that refer to a credential rather than hold one: --ca-secret-name, TOKEN_FILE, SECRET_NAMESPACE.
_REFERENCE_NAME = re.compile(r"[-_.]?(name|names|ref|file|path|dir|namespace|endpoint|header|headers|id|enabled"
                             r"|type|kind|length|ttl|expiry|expire|duration|mode|size)$", re.IGNORECASE)
# Values that are credentials whatever their name: (literal trigger, pattern, match the lower-cased text). A
# pattern runs only when its trigger occurs (a C-speed substring test) and starts with that literal, so the regex
# engine jumps from candidate to candidate; every repetition after it is bounded or stops at a delimiter.
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str], bool], ...] = tuple(
    (triggers, re.compile(pattern), lower) for triggers, pattern, lower in (
        (("-----BEGIN",), r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY", False),  # RSA/EC/DSA/OPENSSH/ENCRYPTED/PGP
        (("eyJ",), r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{6,}\.eyJ", False),  # a JWT anywhere in the string
        (("://",), r"://[^/\s:@]{0,256}:[^/\s@]{1,256}@", False),  # URL with a password, also redis://:pw@host
        (("AKIA", "ASIA"), r"(?:AKIA|ASIA)[0-9A-Z]{16}", False),  # AWS access key id
        (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-"),
         r"gh[pousr]_[A-Za-z0-9]{20}|github_pat_[A-Za-z0-9_]{20}|glpat-[A-Za-z0-9_-]{20}", False),
        (("xox",), r"xox[abposr]-[A-Za-z0-9-]{10}", False),  # Slack tokens
        (("hooks.slack.com/",), r"hooks\.slack\.com/(?:services|workflows)/", False),  # Slack webhooks
        (("k_live_", "k_test_"), r"[sr]k_(?:live|test)_[A-Za-z0-9]{10}", False),  # Stripe
        (("AIza",), r"AIza[0-9A-Za-z_-]{35}", False),  # Google API key
        (("bearer", "basic"), r"(?:bearer|basic)[ \t]{1,8}[a-z0-9._~+/=-]{12}", True),  # Authorization values
        (('"auth"',), r'"auth"[ \t]{0,8}:[ \t]{0,8}"[A-Za-z0-9+/=]{8}', False),  # dockercfg / config.json
        (("key-data", "certificate-data"), r"(?:client-key-data|client-certificate-data)[ \t]{0,8}:", True),
        (("sha256~",), r"sha256~[A-Za-z0-9_-]{20}", False),  # OpenShift access tokens
    ))
# `password = x`, `password: x`, `"client_secret": "x"`: a credential name followed by a literal value.
_MAX_ASSIGNMENTS = 1000
_ASSIGNMENT_TRIGGERS = ("pass", "pwd", "secret", "token", "key", "credential", "authorization")
_ASSIGNMENT = re.compile(
    r"(pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credentials?"
    r"|client[-_]?secret|cookie[-_]?secret|signing[-_]?key|encryption[-_]?key|authorization|[-_]key)"
    r"([a-z0-9_.-]{0,40})[\"']?[ \t]{0,8}[:=][ \t]{0,8}[\"']?([^\s\"'#,;]{1,64})"
)
_PASSWORD_NAME = re.compile(r"pass(word|wd|phrase)?$|pwd$|pin$|secret$", re.IGNORECASE)
_FINGERPRINT = re.compile(r"<fingerprint: [0-9]{1,12} (chars|bytes)(, sha256:[0-9a-f]{64})?>")
_NON_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "nil", "~", "[]", "{}",
                                "0", "1", "-", "|", ">", "|-", ">-", "required", "optional", "disabled", "enabled"})


def is_redacted(value: object) -> bool:
    """True for MASK and fingerprints: what a collector must treat as 'not readable', never as a setting."""
    return isinstance(value, str) and (value == MASK or _FINGERPRINT.fullmatch(value) is not None)


def fingerprint(value: str | bytes) -> str:
    """Length, plus the SHA-256 when the value is long enough that the hash cannot confirm a guessed password."""
    unit = "bytes" if isinstance(value, bytes) else "chars"
    if len(value) < FINGERPRINT_HASH_MIN:
        return f"<fingerprint: {len(value)} {unit}>"
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return f"<fingerprint: {len(value)} {unit}, sha256:{hashlib.sha256(data).hexdigest()}>"


def _reference_value(value: str) -> bool:
    """Values that name a credential instead of holding one: paths, $(VAR)/${VAR}, plain URLs, booleans."""
    v = value.strip().strip("\"'")
    if v.lower() in _NON_SECRET_VALUES or not v:
        return True
    if v.startswith(("http://", "https://")):
        return "@" not in v.split("/", 3)[2] if v.count("/") >= 2 else True
    return v.startswith(("/", "$(", "${", "$", "file://", "<", "./", "vault:", "secret:", "env:"))


def contains_credential(value: str) -> bool:
    """A credential by shape, or a `name: literal` assignment of one, anywhere in the text. Linear time."""
    lower: str | None = None
    for triggers, pattern, use_lower in _SHAPES:
        if use_lower:
            lower = value.lower() if lower is None else lower
            text = lower
        else:
            text = value
        if any(t in text for t in triggers) and pattern.search(text):
            return True
    lower = value.lower() if lower is None else lower
    if not any(t in lower for t in _ASSIGNMENT_TRIGGERS):
        return False
    for n, m in enumerate(_ASSIGNMENT.finditer(lower)):
        if n >= _MAX_ASSIGNMENTS:
            return True  # thousands of credential-named settings: masking is the safe verdict, and it bounds work
        literal = m.group(3)
        if _REFERENCE_NAME.search(m.group(1) + m.group(2)) or _reference_value(literal) or (
                literal.isdigit() and len(literal) < 6):
            continue
        return True
    return False


def looks_like_credential(name: str, value: str) -> bool:
    """True when a literal value would leak a credential: by its name, or by its shape."""
    if len(value) <= 4096:
        return _looks_like_credential(name, value)
    return _judge(name, value)


@lru_cache(maxsize=1 << 16)  # replicas share their env: the same (name, value) pairs come back many times
def _looks_like_credential(name: str, value: str) -> bool:
    return _judge(name, value)


def _judge(name: str, value: str) -> bool:
    if not value or is_redacted(value):
        return False
    if contains_credential(value):
        return True
    # A name such as DB_PASSWORD, STRIPE_KEY or OAUTH2_PROXY_CLIENT_SECRET with a literal value.
    if _REFERENCE_NAME.search(name):
        return False
    return bool(_CRED_NAME.search(name)) and not _reference_value(value)


def certificates_only(pem: str) -> str:
    """Keep only CERTIFICATE blocks of a PEM bundle (people do put keys into tls.crt). Linear: str.find only."""
    blocks: list[str] = []
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    pos = 0
    while True:
        start = pem.find(begin, pos)
        if start < 0:
            break
        stop = pem.find(end, start + len(begin))
        if stop < 0:
            break
        body = pem[start:stop + len(end)]
        if "-----BEGIN" not in body[len(begin):]:  # a key block opened inside: not a clean certificate
            blocks.append(body)
        pos = stop + len(end)
    return "\n".join(blocks) + ("\n" if blocks else "")


# --- parsed configs ----------------------------------------------------------------------------------------------

# libyaml when present (about 50x faster than PyYAML's pure-Python loader on a 128 KiB config).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _load_yaml(text: str) -> Any:
    """One YAML document, refusing aliases: a billion-laughs document is rejected before anything is built."""
    scalars = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not accepted in a config auditpack parses")
        scalars += isinstance(event, yaml.ScalarEvent)
        if scalars > 2 * PARSE_MAX_SCALARS:  # keys and values
            raise yaml.YAMLError("too many settings to parse")
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a SafeLoader (C or Python)


Patterns = dict[int, tuple[tuple[str, ...], ...]]


def _compile(patterns: Iterable[str]) -> Patterns:
    """Dotted patterns by length (a path only meets patterns of its own length)."""
    out: dict[int, list[tuple[str, ...]]] = {}
    for p in patterns:
        segs = tuple(p.split("."))
        out.setdefault(len(segs), []).append(segs)
    return {n: tuple(v) for n, v in out.items()}


def _seg_match(pattern: str, segment: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return segment.endswith(pattern[1:])
    return pattern == segment


def _matches(patterns: Patterns, path: tuple[str, ...]) -> bool:
    candidates = patterns.get(len(path))
    if not candidates:
        return False
    if path in candidates:
        return True
    return any(all(_seg_match(a, b) for a, b in zip(p, path, strict=True)) for p in candidates
               if any(a.startswith("*") for a in p))


_FLUENTD_ROOTS = (("<match>",), ("<label>",), ("<worker>",))
# Fluentd's output paths are matched only under a <match>, <label> or <worker>: as ~250 more wildcard patterns they
# slowed every other parsed config by a quarter.
_CONFIG_KEEP = _compile(p for p in CONFIG_KEEP if not p.startswith(("<match>.", "<label>.", "<worker>.")))
_FLUENTD_KEEP = _compile(p for p in CONFIG_KEEP if p.startswith(("<match>.", "<label>.", "<worker>.")))


def _free(name: str, value: str) -> tuple[str, str]:
    """(what a free-text value becomes, the count it adds to: '' when it was already redacted)."""
    if is_redacted(value):
        return value, ""
    if looks_like_credential(name, value):
        return MASK, "credential masked"
    return fingerprint(value), "fingerprinted"


# Replicas repeat their env and arguments: one verdict per distinct (name, value).
_free_cached = lru_cache(maxsize=1 << 16)(_free)


class Redactor:
    """Redacts objects in place and counts what it removed (the counts go into the collection log)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    # -- values ---------------------------------------------------------------------------------------------------

    def free(self, value: str, what: str, name: str = "") -> str:
        """A free-text value: MASK if it looks like a credential, else its fingerprint."""
        out, verdict = _free_cached(name, value) if len(value) <= 4096 else _free(name, value)
        if verdict:
            self.counts[f"{what} ({verdict})"] += 1
        return out

    def kept(self, value: str, what: str, name: str = "") -> str:
        """An allow-listed value: kept unless it looks like a credential."""
        if looks_like_credential(name, value):
            self.counts[f"{what} (credential masked)"] += 1
            return MASK
        return value

    # -- objects --------------------------------------------------------------------------------------------------

    def redact(self, obj: Obj) -> Obj:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        kind = str(obj.get("kind", ""))
        if kind == "Secret":  # any apiVersion: a snapshot may say v1beta1, or nothing at all
            self._secret(obj)
        if group in BUILTIN_GROUPS:
            if kind == "ConfigMap":
                self._configmap(obj)
            self._builtin(obj, 0)
        else:
            self._custom(obj, CR_KEEP.get((group, kind)))
        return obj

    def _metadata(self, meta: Obj) -> None:
        if meta.pop("managedFields", None) is not None:
            self.counts["managedFields"] += 1
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            return
        if annotations.pop(LAST_APPLIED, None) is not None:
            self.counts["last-applied-configuration"] += 1
        for key, value in list(annotations.items()):
            if not isinstance(value, str):
                annotations[key] = self.free(json.dumps(value, sort_keys=True, default=str), "annotations", key)
            elif key in ARGS_ANNOTATIONS:
                annotations[key] = self._args_json(value)
            elif key in ANNOTATION_KEYS or key.rsplit("/", 1)[-1] in NGINX_ANNOTATIONS:
                annotations[key] = self.kept(value, "annotations", key)
            else:
                annotations[key] = self.free(value, "annotations", key)

    def _builtin(self, node: Any, depth: int) -> None:
        """Kubernetes' own kinds: metadata at every depth (pod templates too) and containers wherever they sit."""
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict):
                self._metadata(meta)
            for list_name in _CONTAINER_LISTS:
                containers = node.get(list_name)
                if isinstance(containers, list):
                    for c in containers:
                        if isinstance(c, dict):
                            self._container(c)
            for key, value in node.items():
                # status holds no metadata or containers; data is the ConfigMap's (done) or the Secret's (dropped)
                if isinstance(value, (dict, list)) and key not in _SKIP_WALK:
                    self._builtin(value, depth + 1)
        elif isinstance(node, list):
            for item in node:
                self._builtin(item, depth + 1)

    def _secret(self, obj: Obj) -> None:
        data = obj.pop("data", None)
        if obj.pop("stringData", None) is not None:
            self.counts["secret values"] += 1
        if not isinstance(data, dict):
            return
        kept: dict[str, str] = {}
        if obj.get("type") == "kubernetes.io/tls":
            for key in PUBLIC_TLS_KEYS:
                if isinstance(data.get(key), str):
                    cleaned = _public_pem(data[key])
                    if cleaned:
                        kept[key] = cleaned
        self.counts["secret values"] += len(data) - len(kept)
        if kept:
            obj["data"] = kept

    def _configmap(self, obj: Obj) -> None:
        data = obj.get("data")
        if isinstance(data, dict):
            for key, value in list(data.items()):
                if not isinstance(value, str):
                    data[key] = self.free(json.dumps(value, default=str), "configmap values", str(key))
                elif is_redacted(value):
                    continue
                elif key in FLAT_KEYS and "\n" not in value:
                    data[key] = self.kept(value, "configmap values", str(key))
                else:
                    data[key] = self._config_text(str(key), value)
        binary = obj.get("binaryData")
        if isinstance(binary, dict):
            for key, value in list(binary.items()):
                if is_redacted(value):
                    continue
                raw = _b64(value) if isinstance(value, str) else None
                text = raw.decode("latin-1") if raw is not None else str(value)
                if contains_credential(text) or contains_credential(str(value)):
                    binary[key] = MASK
                    self.counts["configmap values (credential masked)"] += 1
                else:
                    binary[key] = fingerprint(raw) if raw is not None else fingerprint(str(value))
                    self.counts["configmap values (fingerprinted)"] += 1

    def _config_text(self, key: str, text: str) -> str:
        """A ConfigMap value: a parsed config keeps its structure and allow-listed settings; else a fingerprint."""
        if len(text) <= PARSE_MAX and ("\n" in text or text.lstrip()[:1] in ("{", "[")):
            parsed = _parse_config(text)
            if parsed is not None and _leaves(parsed[1]) <= PARSE_MAX_SCALARS:
                fmt, doc = parsed
                clean = self._config_tree(doc, ())
                self.counts["configmap values (parsed, settings kept)"] += 1
                return _dump_config(fmt, clean)
        # Multi-line values are files: judged by their content, not by the key's name.
        return self.free(text, "configmap values", "" if "\n" in text else key)

    def _config_tree(self, node: Any, path: tuple[str, ...], keep: bool = False) -> Any:
        keep = keep or _matches(_CONFIG_KEEP, path) or (  # a kept setting keeps its whole value (lists, tables)
            path[:1] in _FLUENTD_ROOTS and _matches(_FLUENTD_KEEP, path))
        if len(path) > _MAX_DEPTH:
            return self.free(json.dumps(node, default=str), "configmap values")
        if isinstance(node, dict):
            if path[-2:] == ("extraArgs", "*") and isinstance(node.get("name"), str) and _flag_kept(node["name"]) \
                    and isinstance(node.get("value"), str):  # kubeadm v1beta4: [{name, value}]
                return {**node, "value": self.kept(node["value"], "configmap values", node["name"])}
            out: dict[Any, Any] = {}
            for k, v in node.items():
                key = str(k)
                if contains_credential(key):
                    key = fingerprint(key)
                out[key if isinstance(k, str) else k] = self._config_tree(v, (*path, key), keep)
            return out
        if isinstance(node, list):
            return [self._config_tree(v, (*path, "*"), keep) for v in node]
        name = path[-1] if path else ""
        if isinstance(node, str):
            if is_redacted(node):
                return node
            if keep or (len(path) >= 2 and path[-2] == "extraArgs" and _flag_kept(name)):
                return self.kept(node, "configmap values", name)
            return self.free(node, "configmap values", name)
        if isinstance(node, (int, float)) and not isinstance(node, bool) and _PASSWORD_NAME.search(name):
            self.counts["configmap values (credential masked)"] += 1
            return MASK  # `password: 123456`
        return node  # booleans, numbers, null: settings, not free text

    def _custom(self, obj: Obj, keep: tuple[tuple[str, ...], tuple[str, ...]] | None) -> None:
        """Custom resources: metadata is kept (annotations filtered); strings elsewhere only on CR_KEEP paths."""
        kept, fingerprinted = (_compile(keep[0]), _compile(keep[1])) if keep else ({}, {})
        for key, value in list(obj.items()):
            if key in ("apiVersion", "kind"):
                continue
            if key == "metadata" and isinstance(value, dict):
                self._metadata(value)
                continue
            obj[key] = self._cr_tree(value, (key,), False, kept, fingerprinted)

    def _cr_tree(self, node: Any, path: tuple[str, ...], keep: bool, kept: Patterns, fingerprinted: Patterns) -> Any:
        if _matches(kept, path):
            keep = True
        if _matches(fingerprinted, path):
            keep = False
        if len(path) > _MAX_DEPTH:
            return self.free(json.dumps(node, default=str), "custom-resource strings")
        if isinstance(node, dict):
            if isinstance(node.get("metadata"), dict):
                self._metadata(node["metadata"])  # a pod template inside a CR: drop managedFields, last-applied
            return {k: self._cr_tree(v, (*path, str(k)), keep, kept, fingerprinted) for k, v in node.items()}
        if isinstance(node, list):
            return [self._cr_tree(v, (*path, "*"), keep, kept, fingerprinted) for v in node]
        if isinstance(node, str):
            name = path[-1] if path else ""
            if keep:
                return self.kept(node, "custom-resource strings", name)
            return self.free(node, "custom-resource strings", name)
        return node

    # -- containers -----------------------------------------------------------------------------------------------

    def _container(self, c: Obj) -> None:
        cmd = c.get("command") if isinstance(c.get("command"), list) else []
        args = c.get("args") if isinstance(c.get("args"), list) else []
        referenced: set[str] = set()
        if cmd:
            c["command"] = self.argv(cmd, referenced)
        if args:
            c["args"] = self.argv(args, referenced)
        tally: Counter[str] = Counter()  # the hot loop of a live run (pods carry dozens of env entries)
        for env in c.get("env") or []:
            value = env.get("value") if isinstance(env, dict) else None
            if not isinstance(value, str):
                continue
            name = str(env.get("name", ""))
            if name in ENV_NAMES or name in referenced:
                env["value"] = self.kept(value, "env values", name)
                continue
            env["value"], verdict = _free_cached(name, value) if len(value) <= 4096 else _free(name, value)
            if verdict:
                tally[f"env values ({verdict})"] += 1
        self.counts.update(tally)
        for where in (*_PROBES, "lifecycle"):
            handlers = c.get(where)
            if not isinstance(handlers, dict):
                continue
            for handler in [handlers] if where != "lifecycle" else list(handlers.values()):
                if isinstance(handler, dict):
                    self._handler(handler)

    def _handler(self, handler: Obj) -> None:
        http = handler.get("httpGet")
        if isinstance(http, dict):
            for h in http.get("httpHeaders") or []:
                if isinstance(h, dict) and isinstance(h.get("value"), str):
                    h["value"] = self.free(h["value"], "probe headers", str(h.get("name", "")))
        exe = handler.get("exec")
        if isinstance(exe, dict) and isinstance(exe.get("command"), list):
            exe["command"] = [self.free(a, "command-line values") if isinstance(a, str) else a
                              for a in exe["command"]]

    def argv(self, items: list[Any], referenced: set[str] | None = None) -> list[Any]:
        """Flag names stay; a value stays only for an allow-listed flag; positional words are fingerprinted."""
        out: list[Any] = []
        pending: str | None = None  # the flag a split-form value belongs to (`--db-password X`)
        for a in items:
            if not isinstance(a, str):
                out.append(a)
                continue
            if a.startswith("-") and a != "--" and not is_redacted(a):
                pending = None
                name, eq, value = a.lstrip("-").partition("=")
                if not _FLAG_NAME.fullmatch(name) or (a[1:2] != "-" and len(name) > 1 and not _flag_kept(name)):
                    out.append(self.free(a, "command-line values"))  # `-pX`: a value glued to a short flag
                    continue
                if eq:
                    out.append(f"{a[:len(a) - len(value)]}{self._flag_value(name, value, referenced)}")
                else:
                    out.append(a)
                    pending = name
                continue
            if pending is not None:
                out.append(self._flag_value(pending, a, referenced))
                pending = None
            elif a in PROGRAMS:
                out.append(a)
            else:
                out.append(self.free(a, "command-line values"))
        return out

    def _flag_value(self, name: str, value: str, referenced: set[str] | None) -> str:
        if is_redacted(value):
            return value
        if _flag_kept(name):
            if referenced is not None:
                referenced.update(_ENV_REF.findall(value))
            return self.kept(value, "command-line values", name)
        return self.free(value, "command-line values", name)

    def _args_json(self, raw: str) -> str:
        """An annotation holding a JSON list of arguments (k3s.io/node-args): redacted like container args."""
        try:
            args = json.loads(raw)
        except ValueError:
            return self.free(raw, "annotations")
        if not isinstance(args, list):
            return self.free(raw, "annotations")
        return json.dumps(self.argv([str(a) for a in args]))


_FLAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]{0,127})\)")


def _flag_kept(name: str) -> bool:
    return name in FLAGS or any(p.fullmatch(name) for p in FLAG_PATTERNS)


def _leaves(doc: Any) -> int:
    """Scalar values in a parsed document (iterative: a parsed document can be deep)."""
    count, stack = 0, [doc]
    while stack and count <= PARSE_MAX_SCALARS:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            count += 1
    return count


def parse_config(text: str) -> tuple[str, Any] | None:
    """The config parser the redactor uses, for collectors that read the settings it kept."""
    return _parse_config(text)


def _parse_config(text: str) -> tuple[str, Any] | None:
    """(format, document) for JSON, YAML, TOML, Fluent Bit/INI or Fluentd text holding settings; else None."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, (dict, list)):
            return "json", doc
    try:
        doc = _load_yaml(text)
    except (yaml.YAMLError, ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict) and doc:
        return "yaml", doc
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict) and doc:
        return "toml", doc
    sections = _sections(text)
    if sections is not None:
        return "sections", sections
    return None


_SECTION = re.compile(r"[ \t]{0,16}\[([A-Za-z0-9_. -]{1,64})\][ \t]{0,16}")
# A Fluentd directive line: `<match kube.**>`, `</match>`, `<label @OUTPUT>`, optionally followed by a comment. Its
# argument may be a redaction marker (the redactor fingerprints a tag pattern it does not keep), which holds a `>`.
_DIRECTIVE = re.compile(r"[ \t]{0,16}<(/?[A-Za-z_]{1,32})((?:[ \t]{1,16}(?:<fingerprint: [0-9]{1,12} (?:chars|bytes)"
                        r"(?:, sha256:[0-9a-f]{64})?>|<redacted by auditpack>))|[^<>\n]{0,256})>[ \t]{0,16}"
                        r"(?:#[^\n]{0,1024})?")
_SETTING = re.compile(r"[ \t]{0,16}([A-Za-z0-9_.@-]{1,128})(?:[ \t]{0,16}=[ \t]{0,16}|[ \t]{1,16})(.{0,65536})")
_MAX_NESTING = 16  # Fluentd nests a few levels (<label> <match> <store> <server>); deeper text stays flat


def _sections(text: str) -> dict[str, Any] | None:
    """Fluent Bit classic / INI ([SECTION] + `key value`) as {"[SECTION]": [{key: value}, ...]}, or Fluentd
    directives as nested blocks: {"<match>": [{"@args": "**", "@type": "copy", "<store>": [{...}]}]} (a directive
    inside another is a key of its parent's block, so `<buffer>` stays in its `<match>` and `<match>` in its
    `<label>`). Lines that are no setting are kept in order under "@lines"; settings before any section under
    "@top". None when the text has no section or directive at all."""
    out: dict[str, Any] = {}
    current: dict[str, Any] | None = None  # the [SECTION] being read (Fluent Bit), or None
    stack: list[tuple[str, dict[str, Any]]] = []  # open Fluentd directives, innermost last
    found = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if is_redacted(stripped):  # a fingerprinted line is a line, not a directive (MASK looks like one)
            target = stack[-1][1] if stack else current if current is not None else out.setdefault("@top", [{}])[0]
            target.setdefault("@lines", []).append(stripped)
            continue
        m = _SECTION.fullmatch(line)
        d = _DIRECTIVE.fullmatch(line) if m is None else None
        if m:
            found = True
            stack.clear()
            current = {}
            out.setdefault(f"[{m.group(1).strip().upper()}]", []).append(current)
            continue
        if d:
            found = True
            name = d.group(1)
            if name.startswith("/"):  # close the innermost open directive of that name (and any left open in it)
                names = [n for n, _ in stack]
                if name[1:] in names:
                    del stack[len(names) - 1 - names[::-1].index(name[1:]):]
                continue
            block: dict[str, Any] = {}
            if d.group(2).strip():
                block["@args"] = d.group(2).strip()
            parent = stack[-1][1] if stack and len(stack) < _MAX_NESTING else out
            parent.setdefault(f"<{name}>", []).append(block)
            if len(stack) < _MAX_NESTING:
                stack.append((name, block))
            current = None
            continue
        s = _SETTING.fullmatch(line)
        target = stack[-1][1] if stack else current if current is not None else out.setdefault("@top", [{}])[0]
        if s:
            target.setdefault(s.group(1), s.group(2).strip())
        else:
            target.setdefault("@lines", []).append(stripped)
    return out if found else None


def _dump_config(fmt: str, doc: Any) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=False)
    if fmt == "yaml":
        return str(yaml.dump(doc, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True))
    if fmt == "toml":
        return _toml(doc)
    lines: list[str] = []
    for header, blocks in doc.items():
        for block in blocks if isinstance(blocks, list) else []:
            if header == "@top":
                _dump_block(block, "", lines)
            elif header.startswith("<"):
                _dump_directive(header, block, "", lines)
            else:
                lines.append(header)
                _dump_block(block, "    ", lines)
    return "\n".join(lines) + "\n"


def _dump_directive(header: str, block: Any, indent: str, lines: list[str]) -> None:
    """A Fluentd directive with its settings and the directives nested in it, closed: parses back to `block`."""
    name = header[1:-1]
    args = block.get("@args") if isinstance(block, dict) else None
    lines.append(f"{indent}<{name} {args}>" if args else f"{indent}<{name}>")
    _dump_block(block, indent + "  ", lines)
    lines.append(f"{indent}</{name}>")


def _dump_block(block: Any, indent: str, lines: list[str]) -> None:
    if not isinstance(block, dict):
        return
    for k, v in block.items():
        if k == "@args":
            continue
        if k.startswith("<") and k.endswith(">") and isinstance(v, list):
            for inner in v:
                _dump_directive(k, inner, indent, lines)
            continue
        for item in v if isinstance(v, list) else [v]:
            lines.append(f"{indent}{item}" if k == "@lines" else f"{indent}{k} {item}")


def _toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the parsed, redacted oauth2-proxy / Vector configs (scalars, arrays, tables)."""
    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {scalar(x)}" for k, x in v.items()) + "}"
        return json.dumps(str(v))
    lines = [f"{json.dumps(str(k))} = {scalar(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            name = f"{prefix}.{json.dumps(str(k))}" if prefix else json.dumps(str(k))
            lines.append(f"\n[{name}]")
            lines.append(_toml(v, name))
    return "\n".join(lines) + "\n"


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def _public_pem(b64: str) -> str | None:
    """Base64 PEM -> base64 of its CERTIFICATE blocks only; None if it held no certificate."""
    raw = _b64(b64)
    if raw is None:
        return None
    certs = certificates_only(raw.decode("ascii", errors="replace"))
    return base64.b64encode(certs.encode()).decode() if certs else None


def redact_all(objs: Iterable[Obj], redactor: Redactor | None = None) -> list[Obj]:
    """Convenience for tests and tools: redact many objects with one Redactor."""
    r = redactor or Redactor()
    return [r.redact(o) for o in objs]


__all__ = ["MASK", "Redactor", "certificates_only", "contains_credential", "fingerprint", "is_redacted",
           "looks_like_credential", "redact_all"]
