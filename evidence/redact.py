"""Redaction on the way in: secret values, private keys and credential-looking literals never enter the inventory.

Every source calls `Redactor.redact` on each object before it is stored, so nothing downstream (facts,
pack, logs, error messages) can ever see what was removed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from functools import lru_cache
from typing import Any

Obj = dict[str, Any]

MASK = "<redacted by auditpack>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Keys of a kubernetes.io/tls Secret that hold public certificates only (tls.key is never kept).
PUBLIC_TLS_KEYS = ("tls.crt", "ca.crt")

_CRED_NAME = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth[-_]?key"
    r"|client[-_]?secret|cookie[-_]?secret|signing[-_]?key|dsn|conn(ection)?[-_]?str)",
    re.IGNORECASE,
)
# Values that are credentials whatever their name: PEM private keys, JWTs, AWS access keys, URLs with
# a password, GitHub/GitLab/Slack tokens.
_CRED_VALUE = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----|^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|AKIA[0-9A-Z]{16}"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|gh[pousr]_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,})"
)
# Names that refer to a credential rather than hold one: --ca-secret-name, TOKEN_FILE, SECRET_NAMESPACE.
_REFERENCE_NAME = re.compile(r"[-_.]?(name|names|ref|file|path|dir|namespace|url|endpoint|header|id|enabled)$",
                             re.IGNORECASE)
_ARG_WITH_VALUE = re.compile(r"^(--?[A-Za-z0-9_.-]+)=(.*)$", re.DOTALL)
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----\s*", re.DOTALL)
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@lru_cache(maxsize=1 << 16)  # replicas share their env: the same (name, value) pairs come back many times
def looks_like_credential(name: str, value: str) -> bool:
    """True when a literal value would leak a credential: by its name, or by its shape."""
    if not value or value == MASK:
        return False
    if _CRED_VALUE.search(value):
        return True
    # A name such as DB_PASSWORD or OAUTH2_PROXY_CLIENT_SECRET with a literal value.
    if _REFERENCE_NAME.search(name):
        return False
    return bool(_CRED_NAME.search(name)) and not _is_reference_like(value)


def _is_reference_like(value: str) -> bool:
    """Values that name a credential instead of containing it: file paths and $(VAR) references."""
    if value.startswith(("http://", "https://")):
        return "@" not in value.split("/", 3)[2]  # a plain URL names an endpoint; user:pass@ is caught above
    return value.startswith(("/", "$(", "file://")) or value in ("true", "false")


def certificates_only(pem: str) -> str:
    """Keep only CERTIFICATE blocks of a PEM bundle (people do put keys into tls.crt)."""
    blocks = [m.group(0).strip() for m in _PEM_BLOCK.finditer(pem) if m.group(1) == "CERTIFICATE"]
    return "\n".join(blocks) + ("\n" if blocks else "")


class Redactor:
    """Redacts objects in place and counts what it removed (the counts go into the collection log)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def redact(self, obj: Obj) -> Obj:
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            if meta.pop("managedFields", None) is not None:
                self.counts["managedFields"] += 1
            annotations = meta.get("annotations")
            if isinstance(annotations, dict) and annotations.pop(LAST_APPLIED, None) is not None:
                self.counts["last-applied-configuration"] += 1
        kind = obj.get("kind")
        if kind == "Secret" and obj.get("apiVersion") == "v1":
            self._secret(obj)
        elif kind == "ConfigMap" and obj.get("apiVersion") == "v1":
            self._configmap(obj)
        spec = _pod_spec(obj)
        if spec is not None:
            self._pod_spec(spec)
        else:
            self._walk_for_containers(obj)  # custom resources: pod specs can sit anywhere
        return obj

    def _pod_spec(self, spec: Obj) -> None:
        for list_name in _CONTAINER_LISTS:
            for c in spec.get(list_name) or []:
                if isinstance(c, dict):
                    self._container(c)

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
        for section in ("data", "binaryData"):
            values = obj.get(section)
            if not isinstance(values, dict):
                continue
            for key, value in values.items():
                if not isinstance(value, str):
                    continue
                # Multi-line values are config files: judged by their content, not by the key's name.
                if _CRED_VALUE.search(value) or ("\n" not in value and looks_like_credential(key, value)):
                    values[key] = MASK
                    self.counts["configmap values"] += 1

    def _walk_for_containers(self, node: Any) -> None:
        """Find pod specs anywhere (Pods, workload templates, CronJobs, CRDs) and mask their literals."""
        if isinstance(node, dict):
            for list_name in _CONTAINER_LISTS:
                containers = node.get(list_name)
                if isinstance(containers, list):
                    for c in containers:
                        if isinstance(c, dict):
                            self._container(c)
            for value in node.values():
                if isinstance(value, (dict, list)):
                    self._walk_for_containers(value)
        elif isinstance(node, list):
            for item in node:
                self._walk_for_containers(item)

    def _container(self, c: Obj) -> None:
        for env in c.get("env") or []:
            if isinstance(env, dict) and isinstance(env.get("value"), str) and \
                    looks_like_credential(str(env.get("name", "")), env["value"]):
                env["value"] = MASK
                self.counts["env values"] += 1
        for list_name in ("args", "command"):
            items = c.get(list_name)
            if isinstance(items, list):
                c[list_name] = [self._arg(a) if isinstance(a, str) else a for a in items]

    def _arg(self, arg: str) -> str:
        m = _ARG_WITH_VALUE.match(arg)
        if m and looks_like_credential(m.group(1), m.group(2)):
            self.counts["command-line values"] += 1
            return f"{m.group(1)}={MASK}"
        if _CRED_VALUE.search(arg):
            self.counts["command-line values"] += 1
            return MASK
        return arg


_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"})


def _pod_spec(obj: Obj) -> Obj | None:
    """Where built-in kinds keep their pod spec; None for other kinds (searched generically)."""
    kind, spec = obj.get("kind"), obj.get("spec")
    if not isinstance(spec, dict):
        return {} if kind in _TEMPLATE_KINDS or kind in ("Pod", "CronJob") else None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        kind = "Job"
    if kind in _TEMPLATE_KINDS:
        tpl = spec.get("template")
        return (tpl.get("spec") or {}) if isinstance(tpl, dict) else {}
    return None


def _public_pem(b64: str) -> str | None:
    """Base64 PEM -> base64 of its CERTIFICATE blocks only; None if it held no certificate."""
    try:
        pem = base64.b64decode(b64, validate=False).decode("ascii", errors="replace")
    except (binascii.Error, ValueError):
        return None
    certs = certificates_only(pem)
    return base64.b64encode(certs.encode()).decode() if certs else None
