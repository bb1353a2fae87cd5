"""oauth2-proxy's effective settings from one container: flags > OAUTH2_PROXY_* env > the --config TOML file
(cluster-facts.md B.2; oauth2-proxy pkg/apis/options/load.go). List options are plural in env and config
(`--email-domain` is OAUTH2_PROXY_EMAIL_DOMAINS and `email_domains`); env lists are comma-separated."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import yaml

from evidence.collectors.toplevel import mounted_configmap
from evidence.collectors.workloads import expand_env
from evidence.inventory import Inventory, Obj
from evidence.redact import is_redacted

# flag -> (config/env name, default). Booleans, strings, lists.
BOOLS: dict[str, tuple[str, bool]] = {
    "set-authorization-header": ("set_authorization_header", False),
    "set-xauthrequest": ("set_xauthrequest", False),
    "pass-access-token": ("pass_access_token", False),
    "cookie-secure": ("cookie_secure", True),
    "skip-auth-preflight": ("skip_auth_preflight", False),
    "skip-jwt-bearer-tokens": ("skip_jwt_bearer_tokens", False),
    "reverse-proxy": ("reverse_proxy", False),
    "skip-auth-strip-headers": ("skip_auth_strip_headers", True),
    "ssl-insecure-skip-verify": ("ssl_insecure_skip_verify", False),
    "ssl-upstream-insecure-skip-verify": ("ssl_upstream_insecure_skip_verify", False),
    "insecure-oidc-allow-unverified-email": ("insecure_oidc_allow_unverified_email", False),
    "insecure-oidc-skip-issuer-verification": ("insecure_oidc_skip_issuer_verification", False),
}
STRINGS: dict[str, tuple[str, str]] = {
    "provider": ("provider", "google"),
    "cookie-expire": ("cookie_expire", "168h"),
    "cookie-refresh": ("cookie_refresh", "0"),
    "authenticated-emails-file": ("authenticated_emails_file", ""),
    "oidc-issuer-url": ("oidc_issuer_url", ""),
}
LISTS: dict[str, str] = {
    "email-domain": "email_domains",
    "allowed-group": "allowed_groups",
    "skip-auth-route": "skip_auth_routes",
    "skip-auth-regex": "skip_auth_regex",
    "trusted-ip": "trusted_ips",
    "trusted-proxy-ip": "trusted_proxy_ips",
    "upstream": "upstreams",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration_seconds(value: str) -> int | None:
    """'168h0m0s', '12h', '10m', '1h30m', '0' -> seconds; None if it is not a Go duration."""
    text = value.strip()
    if text in ("0", ""):
        return 0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        return None
    return int(sum(float(n) * _UNIT[u] for n, u in parts))


@dataclass
class Settings:
    """Resolved settings: value and where it came from, plus what could not be read."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)  # flag -> reason
    config_file: str | None = None
    objects: list[Obj] = field(default_factory=list)

    def get(self, flag: str) -> Any:
        if flag in self.values:
            return self.values[flag]
        if flag in BOOLS:
            return BOOLS[flag][1]
        if flag in STRINGS:
            return STRINGS[flag][1]
        return []

    def source(self, flag: str) -> str:
        return self.sources.get(flag, "default")


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t", "yes"):
        return True
    if text in ("false", "0", "f", "no"):
        return False
    return None


def _args(args: list[str]) -> dict[str, Any]:
    """pflag semantics: '--flag=v', '--flag v' (non-bool), bare '--flag' (bool true); lists accumulate."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if not a.startswith("-"):
            continue
        name, eq, value = a.lstrip("-").partition("=")
        if not eq:
            if name in BOOLS:
                value = "true"
            elif i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            else:
                continue
        if name in LISTS:
            out.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
        else:
            out[name] = value
    return out


def settings(inv: Inventory, workload: Obj, container: dict[str, Any], spec: dict[str, Any]) -> Settings:
    ns = str((workload.get("metadata") or {}).get("namespace") or "")
    s = Settings()
    raw_args = [expand_env(str(a), container, ns) for a in (container.get("command") or []) +
                (container.get("args") or [])]
    flags = _args(raw_args)
    # Lowest precedence first: config file, then env, then flags.
    config_path = flags.get("config")
    if isinstance(config_path, str):
        _config_file(inv, s, ns, container, spec, config_path)
    _env(inv, s, ns, container)
    for name, value in flags.items():
        _set(s, name, value, "flag")
    alpha = flags.get("alpha-config")
    if isinstance(alpha, str):
        _alpha_config(inv, s, ns, container, spec, alpha)
    return s


def _set(s: Settings, name: str, value: Any, source: str) -> None:
    if name in BOOLS:
        b = _bool(value)
        if b is None:
            s.unknown[name] = f"{source} value is not a boolean"
            return
        s.values[name] = b
    elif name in STRINGS:
        s.values[name] = str(value)
    elif name in LISTS:
        items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",") if v.strip()]
        s.values[name] = [str(v) for v in items]
    else:
        return
    s.sources[name] = source
    s.unknown.pop(name, None)


def _env(inv: Inventory, s: Settings, ns: str, container: dict[str, Any]) -> None:
    by_env = {f"OAUTH2_PROXY_{cfg.upper()}": flag for flag, (cfg, _) in {**BOOLS, **STRINGS}.items()}
    by_env.update({f"OAUTH2_PROXY_{cfg.upper()}": flag for flag, cfg in LISTS.items()})
    for e in container.get("env") or []:
        if not isinstance(e, dict):
            continue
        name = str(e.get("name") or "")
        flag = by_env.get(name)
        if flag is None:
            continue
        if "value" in e:
            if is_redacted(e["value"]):
                s.unknown[flag] = f"env {name} was masked on collection"
                continue
            _set(s, flag, e["value"], f"env {name}")
            continue
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef") or {}
        if ref:
            cm = inv.get("ConfigMap", ns, str(ref.get("name")), group="")
            value = ((cm or {}).get("data") or {}).get(str(ref.get("key")))
            if cm is not None:
                s.objects.append(cm)
            if value is not None and not is_redacted(value):
                _set(s, flag, value, f"env {name} from ConfigMap {ref.get('name')}")
                continue
        s.unknown[flag] = f"env {name} comes from a Secret or a missing key, which auditpack does not read"


def _config_file(inv: Inventory, s: Settings, ns: str, container: dict[str, Any], spec: dict[str, Any],
                 path: str) -> None:
    cm, key, problem = mounted_configmap(inv, ns, container, spec, path)
    text = ((cm or {}).get("data") or {}).get(key) if cm else None
    if cm is not None:
        s.objects.append(cm)
    if problem or not isinstance(text, str) or is_redacted(text):
        reason = problem or f"ConfigMap {ns}/{(cm or {}).get('metadata', {}).get('name')} has no readable key {key}"
        for flag in (*BOOLS, *STRINGS, *LISTS):
            s.unknown[flag] = f"--config {path}: {reason}"
        return
    s.config_file = f"ConfigMap {ns}/{cm['metadata']['name']} key {key}"  # type: ignore[index]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        for flag in (*BOOLS, *STRINGS, *LISTS):
            s.unknown[flag] = f"{s.config_file}: not valid TOML ({exc})"
        return
    by_cfg = {cfg: flag for flag, (cfg, _) in {**BOOLS, **STRINGS}.items()}
    by_cfg.update({cfg: flag for flag, cfg in LISTS.items()})
    for k, v in doc.items():
        if k in by_cfg:
            _set(s, by_cfg[k], v, f"config file {key}")


def _alpha_config(inv: Inventory, s: Settings, ns: str, container: dict[str, Any], spec: dict[str, Any],
                  path: str) -> None:
    """The YAML --alpha-config replaces header options: injectResponseHeaders Authorization = the ID token."""
    cm, key, problem = mounted_configmap(inv, ns, container, spec, path)
    text = ((cm or {}).get("data") or {}).get(key) if cm else None
    if problem or not isinstance(text, str) or is_redacted(text):
        s.unknown["set-authorization-header"] = f"--alpha-config {path}: {problem or 'not readable'}"
        return
    s.objects.append(cm)  # type: ignore[arg-type]
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        s.unknown["set-authorization-header"] = f"--alpha-config {path}: not valid YAML"
        return
    headers = doc.get("injectResponseHeaders") if isinstance(doc, dict) else None
    if isinstance(headers, list) and any(str(h.get("name", "")).lower() == "authorization"
                                         for h in headers if isinstance(h, dict)):
        _set(s, "set-authorization-header", True, f"alpha config {key} injectResponseHeaders")
