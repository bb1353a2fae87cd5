"""Administrative web interfaces and their own login: Kiali, Grafana and the Kubernetes Dashboard (issue 13).

Each can run with no login at all, which makes whoever reaches the host an administrator or viewer of the
cluster or its monitoring: Kiali with `auth.strategy: anonymous` (the default of Istio's samples/addons/kiali.yaml),
Grafana with anonymous access (`[auth.anonymous] enabled = true` or GF_AUTH_ANONYMOUS_ENABLED=true), and the
Dashboard with `--enable-skip-login`. Otherwise the application's own login is an authentication layer
(PCI DSS 8.2.1, 8.3.1; 2.2.7 for administrative access).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evidence.collectors.toplevel import Workload, mounted_configmap, mounted_yaml
from evidence.inventory import Inventory, Obj

KIALI = re.compile(r"(^|/)kiali/kiali(:|@|$)")
GRAFANA = re.compile(r"(^|/)grafana/grafana(-oss|-enterprise)?(:|@|$)")
DASHBOARD = re.compile(r"(^|/)kubernetesui/dashboard(-web|-api|-auth)?(:|@|$)")


@dataclass
class AdminUI:
    product: str
    anonymous: bool | None  # None: the login setting could not be read
    detail: str
    objects: list[Obj] = field(default_factory=list)


def detect(inv: Inventory, w: Workload) -> AdminUI | None:
    for c in w.containers(init=False):
        image = str(c.get("image", ""))
        if KIALI.search(image):
            return _kiali(inv, w, c)
        if GRAFANA.search(image):
            return _grafana(inv, w, c)
        if DASHBOARD.search(image):
            args = [str(a) for a in (c.get("args") or []) + (c.get("command") or [])]
            skip = any(a == "--enable-skip-login" or (a.startswith("--enable-skip-login=") and
                       a.split("=", 1)[1].lower() == "true") for a in args)
            return AdminUI("Kubernetes Dashboard", skip, "runs with --enable-skip-login" if skip
                           else "requires a bearer token or kubeconfig to sign in")
    return None


def _kiali(inv: Inventory, w: Workload, c: dict[str, Any]) -> AdminUI:
    crs = [k for k in inv.objects("Kiali", "kiali.io") if k["metadata"].get("namespace") == w.namespace]
    if crs:
        strategy = str(((crs[0].get("spec") or {}).get("auth") or {}).get("strategy") or "token")
        return _strategy(strategy, f"Kiali {crs[0]['metadata']['name']} spec.auth.strategy", [crs[0]])
    cm, config, problem = mounted_yaml(inv, w.namespace, c, w.spec, "/kiali-configuration/config.yaml")
    if config is None:
        return AdminUI("Kiali", None, f"its auth.strategy cannot be read ({problem or 'config.yaml not readable'})")
    # Kiali's default strategy is "token" on Kubernetes (kiali.io docs: Authentication strategies).
    strategy = str((config.get("auth") or {}).get("strategy") or "token")
    return _strategy(strategy, f"ConfigMap {w.namespace}/{cm['metadata']['name']} auth.strategy",  # type: ignore[index]
                     [cm] if cm is not None else [])


def _strategy(strategy: str, where: str, objects: list[Obj]) -> AdminUI:
    if strategy == "anonymous":
        return AdminUI("Kiali", True, f"runs with auth.strategy: anonymous ({where})", objects)
    return AdminUI("Kiali", False, f"auth.strategy: {strategy} ({where})", objects)


def _grafana(inv: Inventory, w: Workload, c: dict[str, Any]) -> AdminUI:
    env = {str(e.get("name")): e.get("value") for e in c.get("env") or [] if isinstance(e, dict)}
    value = env.get("GF_AUTH_ANONYMOUS_ENABLED")
    if isinstance(value, str) and value.lower() in ("true", "false"):  # the environment overrides grafana.ini
        anonymous = value.lower() == "true"
        return AdminUI("Grafana", anonymous, f"{'allows anonymous access' if anonymous else 'requires a login'} "
                       f"(GF_AUTH_ANONYMOUS_ENABLED={value.lower()} on {w.label})")
    cm, key, problem = mounted_configmap(inv, w.namespace, c, w.spec, "/etc/grafana/grafana.ini")
    text = ((cm or {}).get("data") or {}).get(key) if cm is not None else None
    if not isinstance(text, str):
        return AdminUI("Grafana", None, f"its [auth.anonymous] setting cannot be read ({problem or 'no grafana.ini'})")
    # Grafana's default: anonymous access disabled (conf/defaults.ini, [auth.anonymous] enabled = false).
    enabled = _ini_value(text, "auth.anonymous", "enabled").lower() == "true"
    where = f"ConfigMap {w.namespace}/{cm['metadata']['name']} grafana.ini"  # type: ignore[index]
    return AdminUI("Grafana", enabled, f"allows anonymous access ([auth.anonymous] enabled = true in {where})"
                   if enabled else f"requires a login ([auth.anonymous] not enabled in {where})",
                   [cm] if cm is not None else [])


def _ini_value(text: str, section: str, key: str) -> str:
    """A setting of an INI file, as Grafana reads grafana.ini (sections case-insensitive); also the form the
    redactor writes parsed sections back in ("key value" under "[SECTION]")."""
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip().lower()
            continue
        if current != section:
            continue
        name, _, value = line.partition("=") if "=" in line else line.partition(" ")
        if name.strip() == key:
            return value.strip().strip('"')
    return ""
