"""A loopback Kubernetes API server for tests and benchmarks: read-only, HTTPS, bearer tokens, RBAC-like denials,
pagination with continue tokens, field/label selectors and deterministic fault injection.

It plays a real cluster to the real `kubernetes` client and kubectl: discovery, list and get responses are shaped
like the kube-apiserver's (list items without kind/apiVersion for built-in types, Status bodies for errors).
Objects are served unredacted, exactly as given. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import datetime as dt
import ipaddress
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:  # the resource catalogue names plurals; the server still works without auditpack installed
    from evidence.kinds import RESOURCE_TYPES
except ImportError:  # pragma: no cover
    RESOURCE_TYPES = ()

DEFAULT_VERSION = "v1.31.4"
DEFAULT_USER = "system:serviceaccount:auditpack:auditpack"
META_FILES = ("snapshot.json", "collection.json")
SUFFIXES = (".yaml", ".yml", ".json")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_JSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
SELF_SUBJECT_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")

# Groups compiled into kube-apiserver. Their list items carry no kind/apiVersion; custom resources' items do.
BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "apiextensions.k8s.io", "admissionregistration.k8s.io", "coordination.k8s.io",
    "discovery.k8s.io", "events.k8s.io", "node.k8s.io", "scheduling.k8s.io", "certificates.k8s.io",
    "authentication.k8s.io", "authorization.k8s.io", "flowcontrol.apiserver.k8s.io", "apiregistration.k8s.io",
    "resource.k8s.io", "storagemigration.k8s.io", "internal.apiserver.k8s.io"})

# Common types outside auditpack's catalogue: (group, kind) -> (plural, namespaced).
_KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Endpoints"): ("endpoints", True), ("", "Event"): ("events", True),
    ("", "PersistentVolume"): ("persistentvolumes", False), ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "LimitRange"): ("limitranges", True), ("", "ResourceQuota"): ("resourcequotas", True),
    ("", "ReplicationController"): ("replicationcontrollers", True), ("", "PodTemplate"): ("podtemplates", True),
    ("storage.k8s.io", "StorageClass"): ("storageclasses", False), ("storage.k8s.io", "CSIDriver"): ("csidrivers", False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("autoscaling", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("scheduling.k8s.io", "PriorityClass"): ("priorityclasses", False),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): ("validatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): ("mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): ("validatingadmissionpolicies", False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): ("validatingadmissionpolicybindings", False),
    ("coordination.k8s.io", "Lease"): ("leases", True), ("discovery.k8s.io", "EndpointSlice"): ("endpointslices", True),
    ("apiregistration.k8s.io", "APIService"): ("apiservices", False),
}
_SHORT_NAMES = {
    "pods": ["po"], "services": ["svc"], "namespaces": ["ns"], "nodes": ["no"], "configmaps": ["cm"],
    "serviceaccounts": ["sa"], "deployments": ["deploy"], "daemonsets": ["ds"], "statefulsets": ["sts"],
    "replicasets": ["rs"], "cronjobs": ["cj"], "ingresses": ["ing"], "networkpolicies": ["netpol"],
    "persistentvolumes": ["pv"], "persistentvolumeclaims": ["pvc"], "endpoints": ["ep"], "events": ["ev"],
}
# Field selectors the real server accepts (beyond metadata.name / metadata.namespace), by (group, plural).
_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "pods"): frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}),
    ("", "secrets"): frozenset({"type"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "nodes"): frozenset({"spec.unschedulable"}),
    ("", "services"): frozenset({"spec.clusterIP", "spec.type"}),
    ("", "events"): frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
    ("apps", "replicasets"): frozenset({"status.replicas"}),
    ("batch", "jobs"): frozenset({"status.successful"}),
}


# --------------------------------------------------------------------------------------------------------- types

def guess_plural(kind: str) -> str:
    """kube's UnsafeGuessKindToResource: lowercase, -s → -ses, -y → -ies, else + s."""
    lower = kind.lower()
    if lower == "endpoints":
        return lower
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


@dataclass(frozen=True)
class ServedType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


def describe_type(group: str, version: str, kind: str, namespaced: bool | None = None,
                  plural: str | None = None) -> ServedType:
    """A ServedType named from the auditpack catalogue, then a table of common types, then kube's guess."""
    for t in RESOURCE_TYPES:
        if t.group == group and t.kind == kind:
            return ServedType(group, version, kind, plural or t.plural, t.namespaced if namespaced is None else namespaced)
    if (group, kind) in _KNOWN:
        p, ns = _KNOWN[(group, kind)]
        return ServedType(group, version, kind, plural or p, ns if namespaced is None else namespaced)
    return ServedType(group, version, kind, plural or guess_plural(kind), True if namespaced is None else namespaced)


def _catalogue_by_label(label: str) -> Any:
    for t in RESOURCE_TYPES:
        if t.label == label:
            return t
    return None


def _extra_types(spec: Any) -> list[ServedType]:
    """extra_types entries: ServedType, a catalogue ResourceType (all its versions), a catalogue label
    ("gateways.gateway.networking.k8s.io"), or a tuple (group, version, kind[, plural[, namespaced]])."""
    if isinstance(spec, ServedType):
        return [spec]
    if isinstance(spec, str):
        t = _catalogue_by_label(spec)
        if t is None:
            raise ValueError(f"extra type {spec!r} is not a catalogue label (plural.group)")
        spec = t
    if hasattr(spec, "versions") and hasattr(spec, "plural"):
        return [ServedType(spec.group, v, spec.kind, spec.plural, spec.namespaced) for v in spec.versions]
    if isinstance(spec, (tuple, list)) and 3 <= len(spec) <= 5:
        group, version, kind = spec[:3]
        plural = spec[3] if len(spec) > 3 else None
        namespaced = spec[4] if len(spec) > 4 else None
        return [describe_type(group, version, kind, namespaced, plural)]
    raise ValueError(f"cannot read extra type {spec!r}")


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering as a sort key (smaller sorts first): GA > beta > alpha, higher numbers first."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), "")


# ------------------------------------------------------------------------------------------------- loading

def load_snapshot(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every object in a snapshot directory (recursively) and its snapshot.json metadata (or {})."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"snapshot {root} is not a directory")
    meta: dict[str, Any] = {}
    objects: list[dict[str, Any]] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in SUFFIXES:
            continue
        if p.parent == root and p.name in META_FILES:
            if p.name == "snapshot.json":
                parsed = orjson.loads(p.read_bytes())
                meta = parsed if isinstance(parsed, dict) else {}
            continue
        rel = p.relative_to(root)
        if p.suffix.lower() == ".json":
            docs: Iterable[Any] = [orjson.loads(p.read_bytes())]
        else:
            docs = yaml.load_all(p.read_text(encoding="utf-8"), Loader=_Loader)
        for doc in docs:
            if doc is not None:
                objects.extend(_unpack(str(rel), doc))
    return objects, meta


def _unpack(name: str, doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: a document is not a Kubernetes object")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for item in doc["items"]:
            if not isinstance(item, dict):
                raise ValueError(f"{name}: a List item is not an object")
            if item_kind and "kind" not in item:
                item = {"apiVersion": doc.get("apiVersion", ""), "kind": item_kind, **item}
            yield item
        return
    yield doc


# ------------------------------------------------------------------------------------------------- storage

@dataclass(frozen=True)
class _Item:
    key: tuple[str, str]  # (namespace, name)
    obj: dict[str, Any]
    body: bytes  # the list-item JSON


class _Resource:
    def __init__(self, t: ServedType, items: list[_Item], type_meta_in_items: bool) -> None:
        self.type = t
        self.items = sorted(items, key=lambda i: i.key)
        self.keys = [i.key for i in self.items]
        self.typed_items = type_meta_in_items
        self.prefix = (b'{"kind":' + orjson.dumps(t.kind) + b',"apiVersion":' + orjson.dumps(t.group_version) + b",")
        self.list_head = (b'{"kind":' + orjson.dumps(t.kind + "List") + b',"apiVersion":'
                          + orjson.dumps(t.group_version) + b',"metadata":')
        self.allowed_fields = {"metadata.name", "metadata.namespace"} | _FIELDS.get((t.group, t.plural), frozenset())

    def ns_bounds(self, namespace: str | None) -> tuple[int, int]:
        if namespace is None:
            return 0, len(self.keys)
        return (bisect.bisect_left(self.keys, (namespace,)), bisect.bisect_left(self.keys, (namespace + "\x00",)))

    def object_body(self, item: _Item) -> bytes:
        if self.typed_items or item.body == b"{}":
            return orjson.dumps({"kind": self.type.kind, "apiVersion": self.type.group_version,
                                 **{k: v for k, v in item.obj.items() if k not in ("kind", "apiVersion")}},
                                option=_JSON_OPTS, default=_json_default)
        return self.prefix + item.body[1:]


def _encode(obj: Any) -> bytes:
    """orjson stops at 255 levels; the real API server serves custom resources nested far deeper (its JSON
    limit is 10,000 levels), so deeper bodies fall back to the standard encoder."""
    try:
        return orjson.dumps(obj, option=_JSON_OPTS, default=_json_default)
    except orjson.JSONEncodeError as exc:
        if "recursion" not in str(exc).lower():
            raise
        import json

        return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


# ------------------------------------------------------------------------------------------------- requests

@dataclass(frozen=True)
class Request:
    """One request as the server understood it; the request log holds these with `status` filled in."""
    method: str
    path: str
    query: dict[str, str]
    user: str | None = None
    verb: str | None = None  # get / list / watch for resource requests, None for discovery and others
    group: str | None = None
    version: str | None = None
    resource: str | None = None  # the plural
    namespace: str | None = None
    name: str | None = None
    status: int = 0
    duration: float = 0.0

    @property
    def is_resource(self) -> bool:
        return self.resource is not None

    @property
    def label(self) -> str | None:
        if self.resource is None:
            return None
        return f"{self.resource}.{self.group}" if self.group else self.resource


def _resource_matcher(spec: str) -> Callable[[Request], bool]:
    """"*" any request; "/path" exactly that path ("/prefix*" a prefix); "pods" that plural in any group;
    "networkpolicies.networking.k8s.io" a plural in one group (core: "pods" or "pods." alike)."""
    if spec == "*":
        return lambda r: True
    if spec.startswith("/"):
        if spec.endswith("*"):
            prefix = spec[:-1]
            return lambda r: r.path.startswith(prefix)
        return lambda r: r.path == spec
    plural, dot, group = spec.partition(".")
    if not dot:
        return lambda r: r.resource == plural
    return lambda r: r.resource == plural and r.group == group


def _matcher(target: str | Callable[[Request], bool]) -> Callable[[Request], bool]:
    return target if callable(target) else _resource_matcher(target)


# --------------------------------------------------------------------------------------------------- faults

@dataclass
class Fault:
    """One programmed fault. `seen` counts matching requests, `fired` how many got the fault."""
    action: Literal["status", "delay", "expire", "hang", "die"]
    target: Any
    match: Callable[[Request], bool]
    times: int | None = 1  # None: every matching request after `skip`
    skip: int = 0
    status: int = 0
    retry_after: int | None = None
    seconds: float = 0.0
    message: str = ""
    with_token: bool = True
    seen: int = 0
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def _eligible(self) -> bool:
        return self.seen > self.skip and not self.exhausted


class FaultPlan:
    """Deterministic, thread-safe fault injection. Each method returns the Fault (inspect .seen/.fired).

    target: "*", a plural ("pods", any group), "plural.group", a path ("/api/v1/pods", or "/apis/*" as a
    prefix), or a callable(Request) -> bool. A fault lets the first `skip` matching requests through, then
    acts on the next `times` ones (times=None: forever). Delays apply before 429/5xx; status faults are
    checked after authentication and before authorization; at most one status fault answers a request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def throttle(self, target: str | Callable[[Request], bool] = "*", times: int | None = 1, *,
                 retry_after: int | None = 1, skip: int = 0) -> Fault:
        """429 TooManyRequests with `Retry-After: retry_after` (None: no header), as API priority and fairness does."""
        return self._add(Fault("status", target, _matcher(target), times, skip, status=429, retry_after=retry_after))

    def fail(self, target: str | Callable[[Request], bool] = "*", times: int | None = 1, *, status: int = 500,
             skip: int = 0, message: str = "injected fault", retry_after: int | None = None) -> Fault:
        """An error Status: 500 InternalError by default, or 503/504/any code."""
        return self._add(Fault("status", target, _matcher(target), times, skip, status=status,
                               retry_after=retry_after, message=message))

    def delay(self, target: str | Callable[[Request], bool] = "*", seconds: float = 1.0, times: int | None = 1, *,
              skip: int = 0) -> Fault:
        """Sleep `seconds` before answering (slow responses)."""
        return self._add(Fault("delay", target, _matcher(target), times, skip, seconds=seconds))

    def hang(self, target: str | Callable[[Request], bool] = "*", times: int | None = 1, *, skip: int = 0,
             seconds: float = 3600.0) -> Fault:
        """Accept the request and never answer (until `seconds` pass or the server stops), then drop the
        connection: a hung connection, as behind a stalled load balancer."""
        return self._add(Fault("hang", target, _matcher(target), times, skip, seconds=seconds))

    def die(self, target: str | Callable[[Request], bool] = "*", *, skip: int = 0) -> Fault:
        """The server dies at the matching request: that request is dropped unanswered and the server stops
        listening, so later connections are refused (a control plane that goes away mid-run)."""
        return self._add(Fault("die", target, _matcher(target), 1, skip))

    def expire_continue(self, target: str | Callable[[Request], bool] = "*", nth: int = 1, *, times: int | None = 1,
                        with_token: bool = True) -> Fault:
        """410 Expired for the `nth` list request carrying a continue token (counting only those), once.

        Like etcd compaction: the Status body carries metadata.continue, a token to continue inconsistently
        (as kube-apiserver does); with_token=False leaves metadata empty."""
        return self._add(Fault("expire", target, _matcher(target), times, nth - 1, status=410, with_token=with_token))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take(self, req: Request, action: str) -> list[Fault]:
        """Count the request against every matching fault of `action`; return those that fire."""
        fired: list[Fault] = []
        with self._lock:
            for f in self._faults:
                if f.action != action or not f.match(req):
                    continue
                f.seen += 1
                if f._eligible() and not (action != "delay" and fired):
                    f.fired += 1
                    fired.append(f)
        return fired


# ------------------------------------------------------------------------------------------------ authorization

Authorize = Callable[..., bool]  # (user, verb, group, plural, namespace or None) -> bool


AllowRule = tuple[frozenset[str], frozenset[str], frozenset[str], "str | None", "frozenset[str] | None"]


def _normalise_allow(rules: Any, namespace: str | None = None) -> list[AllowRule]:
    """Allow rules: (group, plural, verb[, namespace]) tuples, RBAC rule dicts, a ClusterRole or Role dict
    (a Role's rules hold in its namespace only), or a list mixing them. RBAC resourceNames are honoured."""
    if isinstance(rules, Mapping):
        if rules.get("kind") == "Role":
            namespace = (rules.get("metadata") or {}).get("namespace")
        rules = rules.get("rules") or []
    out: list[AllowRule] = []
    for rule in rules:
        if isinstance(rule, Mapping) and "rules" in rule:
            out.extend(_normalise_allow(rule))
        elif isinstance(rule, Mapping):
            if rule.get("nonResourceURLs") and not rule.get("resources"):
                continue  # discovery paths are always served here
            names = frozenset(rule["resourceNames"]) if rule.get("resourceNames") else None
            out.append((frozenset(rule.get("apiGroups") or []), frozenset(rule.get("resources") or []),
                        frozenset(rule.get("verbs") or []), namespace, names))
        else:
            group, plural, verb, *rest = rule
            out.append((frozenset([group]), frozenset([plural]), frozenset([verb]), rest[0] if rest else None, None))
    return out


def _normalise_deny(rules: Any) -> list[tuple[Callable[[Request], bool], str | None, str | None]]:
    """Deny rules: (plural-or-"plural.group", namespace or None[, verb]). A namespace deny also denies the
    all-namespaces request for that resource (it would include the namespace), as RBAC would."""
    out = []
    for rule in rules:
        if isinstance(rule, str):
            rule = (rule, None)
        spec, ns, *rest = rule
        out.append((_resource_matcher(spec), ns, rest[0] if rest else None))
    return out


# ------------------------------------------------------------------------------------------------- TLS

def _make_tls(tmp: Path) -> tuple[ssl.SSLContext, bytes]:
    """A fresh CA and a server certificate for 127.0.0.1/localhost. Keys are written to `tmp` only to load them."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fakeapi-ca-{uuid.uuid4().hex[:8]}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp / "server.crt", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    cert_file.unlink()
    key_file.unlink()
    return ctx, ca_pem


# ------------------------------------------------------------------------------------------------- HTTP plumbing

class _Hangup(Exception):
    """The request is dropped without an answer (hang and die faults)."""


class _HTTPError(Exception):
    def __init__(self, code: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(code)
        self.code, self.body, self.headers = code, body, list(headers)


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                metadata: dict[str, Any] | None = None) -> bytes:
    """A metav1.Status failure in kube-apiserver's field order."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {}, "status": "Failure",
                            "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return orjson.dumps(body)


def _error(code: int, reason: str, message: str, details: dict[str, Any] | None = None,
           metadata: dict[str, Any] | None = None, headers: Sequence[tuple[str, str]] = ()) -> _HTTPError:
    return _HTTPError(code, status_body(code, reason, message, details, metadata), headers)


_NOT_FOUND_PATH = "the server could not find the requested resource"
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}


def _not_found() -> _HTTPError:
    return _error(404, "NotFound", _NOT_FOUND_PATH, {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300
    server: _TLSServer

    def do_GET(self) -> None:
        self.server.app._handle(self)

    def _unsupported(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.app._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _unsupported

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.verbose:
            sys.stderr.write(f"fakeapi: {self.address_string()} {format % args}\n")

    def send_raw(self, code: int, body: bytes, content_type: str, headers: Sequence[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", f"Date: {self.date_time_string()}", f"Audit-Id: {uuid.uuid4()}",
                 "Cache-Control: no-cache, private"]
        lines += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command == "HEAD":
            body = b""
        self.wfile.write(head + body)
        if self.server.app.verbose:
            self.log_request(code, len(body))


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    address_family = socket.AF_INET

    def __init__(self, port: int, app: FakeAPIServer, ctx: ssl.SSLContext) -> None:
        self.app, self.ssl_context = app, ctx
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:  # no reverse DNS lookup (HTTPServer.server_bind calls getfqdn)
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, not in the accept loop.
        try:
            request.settimeout(30)
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            request.close()
            return
        with self._conns_lock:
            self._conns.add(conn)
        try:
            _Handler(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, (OSError, ssl.SSLError)):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(c, socket.SHUT_RDWR)  # bypass SSLSocket.shutdown: just wake the reader


# ------------------------------------------------------------------------------------------------- the server

@dataclass
class _Token:
    start: tuple[str, str] | None
    rv: int


class FakeAPIServer:
    """A read-only kube-apiserver on https://127.0.0.1:<port>. Use as a context manager, or start()/stop().

    snapshot: a directory of YAML/JSON objects (recursively); objects: dicts to serve as well (benchmarks).
    tokens: bearer token -> user name. deny: token (or user) -> [(plural or "plural.group", namespace or None
    [, verb])]. allow: token (or user) -> allow-list, everything else denied for that token: [(group, plural,
    verb[, namespace])], RBAC rule dicts, or a ClusterRole dict. authorize: callable(user, verb, group, plural,
    namespace or None) -> bool, consulted for every resource request. faults: a FaultPlan (one is made if None).
    extra_types: served-but-empty types (catalogue labels, ResourceTypes, ServedTypes or
    (group, version, kind[, plural[, namespaced]])). unserved_groups: groups ("cert-manager.io") or
    group/versions dropped from discovery and serving. version: gitVersion ("v1.30.2") or a full version dict.
    self_subject_review: answer POST /apis/authentication.k8s.io/v1/selfsubjectreviews with the caller's user
    (False: as a server before 1.27 does not).
    item_type_meta: "real" (list items of built-in groups omit kind/apiVersion, custom resources keep them, as
    kube-apiserver does), "omit" (always omit) or "keep".
    """

    def __init__(self, snapshot: str | Path | None = None, *, objects: Iterable[Mapping[str, Any]] = (),
                 tokens: Mapping[str, str] | None = None,
                 deny: Mapping[str, Iterable[Any]] | None = None,
                 allow: Mapping[str, Any] | None = None,
                 authorize: Authorize | None = None,
                 faults: FaultPlan | None = None,
                 extra_types: Iterable[Any] = (),
                 unserved_groups: Iterable[str] = (),
                 version: str | Mapping[str, str] | None = None,
                 item_type_meta: Literal["real", "omit", "keep"] = "real",
                 port: int = 0,
                 self_subject_review: bool = True,
                 verbose: bool = False) -> None:
        if item_type_meta not in ("real", "omit", "keep"):
            raise ValueError("item_type_meta must be real, omit or keep")
        self.tokens = dict(tokens if tokens is not None else {"good": DEFAULT_USER})
        self._deny = {k: _normalise_deny(v) for k, v in (deny or {}).items()}
        self._allow = {k: _normalise_allow(v) for k, v in (allow or {}).items()}
        self._authorize = authorize
        self.faults = faults if faults is not None else FaultPlan()
        self.verbose = verbose
        self.self_subject_review = self_subject_review  # False: a server before 1.27 (the POST is 404)
        self._stopping = threading.Event()  # set by stop(): releases hung requests
        self._port = port
        self._log: list[Request] = []
        self._log_lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], tuple[list[_Item], list[tuple[str, str]]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._httpd: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_pem = b""
        self.port = 0
        self.url = ""

        meta: dict[str, Any] = {}
        all_objects: list[Mapping[str, Any]] = []
        if snapshot is not None:
            loaded, meta = load_snapshot(Path(snapshot))
            all_objects.extend(loaded)
        all_objects.extend(objects)
        self._version_info = self._make_version(version, meta)
        self._build(all_objects, extra_types, set(unserved_groups), item_type_meta)

    # ---------------------------------------------------------------- data

    @staticmethod
    def _make_version(version: str | Mapping[str, str] | None, meta: Mapping[str, Any]) -> dict[str, str]:
        if isinstance(version, Mapping):
            return dict(version)
        git = version or (meta.get("cluster") or {}).get("version") or DEFAULT_VERSION
        m = re.match(r"^v?(\d+)\.(\d+)", str(git))
        major, minor = (m.group(1), m.group(2)) if m else ("1", "31")
        return {"major": major, "minor": minor, "gitVersion": str(git),
                "gitCommit": "5864a4677267e6adeae276ad85882a8714d69d9d", "gitTreeState": "clean",
                "buildDate": "2024-12-10T11:36:28Z", "goVersion": "go1.22.9", "compiler": "gc",
                "platform": "linux/amd64"}

    def _build(self, objects: Iterable[Mapping[str, Any]], extra_types: Iterable[Any], unserved: set[str],
               type_meta: str) -> None:
        def unserved_gv(group: str, version: str) -> bool:
            return group in unserved or f"{group}/{version}" in unserved

        by_gvk: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        has_ns: dict[tuple[str, str, str], bool] = {}
        for obj in objects:
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            meta = obj.get("metadata")
            if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(meta, Mapping) \
                    or not meta.get("name"):
                raise ValueError(f"object without apiVersion, kind or metadata.name: {str(obj)[:200]}")
            group, version = _split_api_version(api_version)
            gvk = (group, version, kind)
            ns = meta.get("namespace") or ""
            has_ns[gvk] = has_ns.get(gvk, False) or bool(ns)
            by_gvk.setdefault(gvk, {})[(ns, str(meta["name"]))] = dict(obj)  # a later duplicate replaces one before

        types: dict[tuple[str, str, str], ServedType] = {}
        for spec in extra_types:
            for t in _extra_types(spec):
                types[(t.group, t.version, t.plural)] = t
        self._resources: dict[tuple[str, str, str], _Resource] = {}
        max_rv = 0
        for (group, version, kind), objs in by_gvk.items():
            if unserved_gv(group, version):
                continue
            t = describe_type(group, version, kind)
            if not any(c.group == group and c.kind == kind for c in RESOURCE_TYPES) and (group, kind) not in _KNOWN:
                t = replace(t, namespaced=has_ns[(group, version, kind)])  # unknown kind: as the objects say
            types[(group, version, t.plural)] = t
            keep = type_meta == "keep" or (type_meta == "real" and group not in BUILTIN_GROUPS)
            items = []
            for (ns, name), obj in objs.items():
                if t.namespaced and not ns:
                    obj = {**obj, "metadata": {**obj["metadata"], "namespace": "default"}}
                    ns = "default"
                key = (ns if t.namespaced else "", name)
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if rv.isdigit():
                    max_rv = max(max_rv, int(rv))
                if keep:
                    body_obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}
                else:
                    body_obj = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
                items.append(_Item(key, obj, _encode(body_obj)))
            self._resources[(group, version, t.plural)] = _Resource(t, items, keep)
        for type_key, t in types.items():
            if type_key not in self._resources and not unserved_gv(t.group, t.version):
                self._resources[type_key] = _Resource(t, [], type_meta == "keep" or (
                    type_meta == "real" and t.group not in BUILTIN_GROUPS))
        self._rv = max_rv + 1
        self._compacted_rv = 0
        self._discovery = self._make_discovery()

    @property
    def types(self) -> list[ServedType]:
        return sorted((r.type for r in self._resources.values()), key=lambda t: (t.group, t.version, t.plural))

    def objects(self, plural: str, group: str = "", version: str | None = None) -> list[dict[str, Any]]:
        """The objects served for a resource, in list order (as given, with kind/apiVersion)."""
        out: list[dict[str, Any]] = []
        for (g, v, p), res in sorted(self._resources.items()):
            if g == group and p == plural and (version is None or v == version):
                out.extend(i.obj for i in res.items)
        return out

    def _make_discovery(self) -> dict[str, bytes]:
        gvs: dict[tuple[str, str], list[ServedType]] = {}
        for (g, v, _), res in self._resources.items():
            gvs.setdefault((g, v), []).append(res.type)
        gvs.setdefault(("", "v1"), [])

        def resource_list(g: str, v: str) -> bytes:
            resources = []
            for t in sorted(gvs[(g, v)], key=lambda t: t.plural):
                entry: dict[str, Any] = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                                         "kind": t.kind, "verbs": ["get", "list", "watch"]}
                if t.plural in _SHORT_NAMES and g in BUILTIN_GROUPS:
                    entry["shortNames"] = _SHORT_NAMES[t.plural]
                resources.append(entry)
            return orjson.dumps({"kind": "APIResourceList", "apiVersion": "v1",
                                 "groupVersion": f"{g}/{v}" if g else v, "resources": resources})

        docs: dict[str, bytes] = {"/api/v1": resource_list("", "v1")}
        groups: dict[str, list[str]] = {}
        for g, v in gvs:
            if g:
                groups.setdefault(g, []).append(v)
                docs[f"/apis/{g}/{v}"] = resource_list(g, v)
        group_docs = []
        for g in sorted(groups, key=lambda g: (g not in BUILTIN_GROUPS, g)):
            versions = sorted(groups[g], key=version_priority)
            catalogue = next((t.versions for t in RESOURCE_TYPES if t.group == g), ())
            preferred = next((v for v in catalogue if v in versions), versions[0])
            doc = {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in versions],
                   "preferredVersion": {"groupVersion": f"{g}/{preferred}", "version": preferred}}
            group_docs.append(doc)
            docs[f"/apis/{g}"] = orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **doc})
        docs["/apis"] = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_docs})
        docs["/version"] = orjson.dumps(self._version_info)
        return docs

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeAPIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        with tempfile.TemporaryDirectory(prefix="fakeapi-") as tmp:  # deleted once the keys are loaded
            ctx, self.ca_pem = _make_tls(Path(tmp))
        self._httpd = _TLSServer(self._port, self, ctx)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._discovery["/api"] = orjson.dumps({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fakeapi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until KeyboardInterrupt/SystemExit, then stop."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    # ---------------------------------------------------------------- client configuration

    def kubeconfig(self, token: str = "good", context: str = "fake", namespace: str | None = None) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("start the server first")
        ctx: dict[str, Any] = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        return {"apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": context, "cluster": {
                    "server": self.url, "certificate-authority-data": base64.b64encode(self.ca_pem).decode()}}],
                "users": [{"name": context, "user": {"token": token}}],
                "contexts": [{"name": context, "context": ctx}], "current-context": context}

    def write_kubeconfig(self, path: str | Path, token: str = "good", context: str = "fake",
                         namespace: str | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(self.kubeconfig(token, context, namespace), sort_keys=False))
        return path

    # ---------------------------------------------------------------- request log

    @property
    def requests(self) -> list[Request]:
        with self._log_lock:
            return list(self._log)

    def requests_for(self, resource: str, group: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.resource == resource and (group is None or r.group == group)]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def expire_continue_tokens(self) -> None:
        """Compact: every continue token issued so far becomes stale (410 Expired)."""
        self._compacted_rv = self._rv
        self._rv += 1

    # ---------------------------------------------------------------- request handling

    def _handle(self, h: _Handler) -> None:
        started = time.perf_counter()
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        state = [Request(method=h.command, path=path, query=query)]  # _dispatch appends what it learns
        content_type = "application/json"
        headers: list[tuple[str, str]] = []
        try:
            code, body, content_type = self._dispatch(h, state)
        except _Hangup:  # drop the connection without an answer
            h.close_connection = True
            with self._log_lock:
                self._log.append(replace(state[-1], status=0, duration=time.perf_counter() - started))
            return
        except _HTTPError as err:
            code, body, headers = err.code, err.body, err.headers
        except Exception as exc:  # a bug in the fake: answer 500 and say so on stderr
            traceback.print_exc()
            code, body = 500, status_body(500, "InternalError", f"fakeapi: {type(exc).__name__}: {exc}", {})
        with self._log_lock:
            self._log.append(replace(state[-1], status=code, duration=time.perf_counter() - started))
        h.send_raw(code, body, content_type, headers)

    def _dispatch(self, h: _Handler, state: list[Request]) -> tuple[int, bytes, str]:
        req = state[-1]
        if req.path in HEALTH_PATHS:
            return 200, b"ok", "text/plain; charset=utf-8"
        token = self._bearer(h.headers.get("Authorization"))
        user = self.tokens.get(token) if token is not None else None
        if user is None:
            raise _error(401, "Unauthorized", "Unauthorized")
        req = replace(req, user=user)
        state.append(req)
        target: _Resource | bytes | _HTTPError
        try:
            req, target = self._route(req)
            state.append(req)
        except _HTTPError as err:  # unknown paths still meet the faults (a path target can match them)
            target = err
        for f in self.faults._take(req, "delay"):
            time.sleep(f.seconds)
        for f in self.faults._take(req, "hang"):
            self._stopping.wait(f.seconds)
            raise _Hangup()
        if self.faults._take(req, "die"):
            threading.Thread(target=self.stop, name="fakeapi-die", daemon=True).start()
            raise _Hangup()
        for f in self.faults._take(req, "status"):
            headers = [("Retry-After", str(f.retry_after))] if f.retry_after is not None else []
            if f.status == 429:
                details: dict[str, Any] = {"retryAfterSeconds": f.retry_after} if f.retry_after is not None else {}
                raise _error(429, "TooManyRequests", "Too many requests, please try again later.", details,
                             headers=headers)
            reason = _REASONS.get(f.status, "InternalError")
            message = f"Internal error occurred: {f.message}" if f.status == 500 else f.message
            raise _error(f.status, reason, message, {"causes": [{"message": f.message}]}, headers=headers)
        if req.method == "POST" and req.path == SELF_SUBJECT_REVIEW and self.self_subject_review:
            return 201, self._review(user), "application/json"
        if isinstance(target, _HTTPError):
            raise target
        if req.method != "GET" and req.method != "HEAD":
            raise _error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                         {})
        if isinstance(target, bytes):
            return 200, target, "application/json"
        assert req.verb is not None and req.resource is not None and req.group is not None
        if not self._allowed(token or "", user, req):
            raise self._forbidden(user, req)
        if req.verb == "get":
            return 200, self._get(target, req), "application/json"
        if req.verb == "watch":
            return 200, self._watch(target, req), "application/json"
        return 200, self._list(target, req), "application/json"

    @staticmethod
    def _review(user: str) -> bytes:
        """SelfSubjectReview (authentication.k8s.io/v1, GA in 1.28): the user as the authenticator saw it, with the
        groups kube-apiserver adds (a ServiceAccount's system:serviceaccounts[:<ns>], system:authenticated)."""
        groups = ["system:authenticated"]
        parts = user.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"]
        info = {"username": user, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, user)), "groups": groups}
        return orjson.dumps({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                             "metadata": {"creationTimestamp": None}, "status": {"userInfo": info}})

    @staticmethod
    def _bearer(header: str | None) -> str | None:
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def _route(self, req: Request) -> tuple[Request, _Resource | bytes]:
        path = req.path
        doc = self._discovery.get(path)
        if doc is not None:
            return req, doc
        if path == "/":
            paths = sorted(["/api", "/api/v1", "/apis", "/version", *HEALTH_PATHS,
                            *(p for p in self._discovery if p.startswith("/apis/"))])
            return req, orjson.dumps({"paths": paths})
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts[0] == "api" and len(parts) > 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found()
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2:
            raise _not_found()  # subresources are not served
        plural, name = rest[0], (rest[1] if len(rest) == 2 else None)
        res = self._resources.get((group, version, plural))
        if res is None or (namespace is not None and not res.type.namespaced) \
                or (namespace is None and name is not None and res.type.namespaced):
            raise _not_found()
        watch = req.query.get("watch", "").lower() in ("1", "true")
        verb = "get" if name is not None else ("watch" if watch else "list")
        authz_ns = namespace if namespace is not None else (name if plural == "namespaces" and not group else None)
        return replace(req, verb=verb, group=group, version=version, resource=plural, namespace=authz_ns,
                       name=name), res

    # ---------------------------------------------------------------- authorization

    def _rules_for(self, table: Mapping[str, Any], token: str, user: str) -> Any:
        return table.get(token, table.get(user))

    def _allowed(self, token: str, user: str, req: Request) -> bool:
        verb, group, plural, ns = req.verb or "", req.group or "", req.resource or "", req.namespace
        for match, deny_ns, deny_verb in self._rules_for(self._deny, token, user) or ():
            if match(req) and (deny_ns is None or ns is None or ns == deny_ns) and deny_verb in (None, verb):
                return False
        allow = self._rules_for(self._allow, token, user)
        if allow is not None and not any(
                (group in groups or "*" in groups) and (plural in plurals or "*" in plurals)
                and (verb in verbs or "*" in verbs) and (rule_ns is None or rule_ns == ns)
                and (names is None or (req.name is not None and req.name in names))
                for groups, plurals, verbs, rule_ns, names in allow):
            return False
        return self._authorize is None or bool(self._authorize(user, verb, group, plural, ns))

    @staticmethod
    def _forbidden(user: str, req: Request) -> _HTTPError:
        group, plural = req.group or "", req.resource or ""
        qualified = f"{plural}.{group}" if group else plural
        subject = f'{qualified} "{req.name}"' if req.name else qualified
        scope = f'in the namespace "{req.namespace}"' if req.namespace else "at the cluster scope"
        message = (f'{subject} is forbidden: User "{user}" cannot {req.verb} resource "{plural}" '
                   f'in API group "{group}" {scope}')
        details: dict[str, Any] = {}
        if req.name:
            details["name"] = req.name
        if group:
            details["group"] = group
        details["kind"] = plural
        return _error(403, "Forbidden", message, details)

    # ---------------------------------------------------------------- reads

    def _get(self, res: _Resource, req: Request) -> bytes:
        key = ((req.namespace or "") if res.type.namespaced else "", req.name or "")
        i = bisect.bisect_left(res.keys, key)
        if i == len(res.keys) or res.keys[i] != key:
            qualified = res.type.label
            details = {"name": req.name, **({"group": res.type.group} if res.type.group else {}),
                       "kind": res.type.plural}
            raise _error(404, "NotFound", f'{qualified} "{req.name}" not found', details)
        return res.object_body(res.items[i])

    def _view(self, res: _Resource, req: Request) -> tuple[list[_Item], list[tuple[str, str]], int, int, bool]:
        """(items, keys, lo, hi, filtered) for the request's namespace and selectors."""
        ns = req.namespace if res.type.namespaced else None
        lo, hi = res.ns_bounds(ns)
        fs, ls = req.query.get("fieldSelector", ""), req.query.get("labelSelector", "")
        if not fs and not ls:
            return res.items, res.keys, lo, hi, False
        cache_key = (res.type, ns, fs, ls)
        with self._cache_lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return hit[0], hit[1], 0, len(hit[0]), True
        preds = _field_predicates(fs, res.allowed_fields) + _label_predicates(ls)
        items = [i for i in res.items[lo:hi] if all(p(i.obj) for p in preds)]
        keys = [i.key for i in items]
        with self._cache_lock:
            self._cache[cache_key] = (items, keys)
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return items, keys, 0, len(items), True

    def _list(self, res: _Resource, req: Request) -> bytes:
        items, keys, lo, hi, filtered = self._view(res, req)
        start = lo
        cont = req.query.get("continue", "")
        if cont:
            token = _decode_continue(cont)
            fired = self.faults._take(req, "expire")
            if fired or (token.rv != -1 and token.rv <= self._compacted_rv):
                metadata = {}
                if not fired or fired[0].with_token:
                    metadata = {"continue": _encode_continue(token.start, -1)}
                raise _error(410, "Expired", EXPIRED_CONTINUE, None, metadata)
            if token.start is not None:
                start = max(lo, bisect.bisect_right(keys, token.start, lo, hi))
        limit_s = req.query.get("limit", "")
        try:
            limit = int(limit_s) if limit_s else 0
        except ValueError:
            raise _error(400, "BadRequest", f"invalid limit {limit_s!r}", {}) from None
        end = hi if limit <= 0 else min(hi, start + limit)
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if end < hi:
            meta["continue"] = _encode_continue(items[end - 1].key, self._rv)
            if not filtered:
                meta["remainingItemCount"] = hi - end
        return b"".join((res.list_head, orjson.dumps(meta), b',"items":[',
                         b",".join([i.body for i in items[start:end]]), b"]}"))

    def _watch(self, res: _Resource, req: Request) -> bytes:
        """ADDED events for the current objects, then the stream ends (as if timeoutSeconds elapsed)."""
        items, _, lo, hi, _ = self._view(res, req)
        return b"".join(b'{"type":"ADDED","object":' + res.object_body(i) + b"}\n" for i in items[lo:hi])


# ------------------------------------------------------------------------------------------------- selectors

def _encode_continue(start: tuple[str, str] | None, rv: int) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start) if start else None})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> _Token:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = data["start"]
        if start is not None and not (isinstance(start, list) and len(start) == 2
                                      and all(isinstance(s, str) for s in start)):
            raise ValueError(start)
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data["rv"], int):
            raise ValueError(data)
        return _Token((start[0], start[1]) if start else None, data["rv"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _error(400, "BadRequest", "The provided continue parameter is invalid", {}) from None


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


Predicate = Callable[[Mapping[str, Any]], bool]


def _field_predicate(key: str, negate: bool, value: str) -> Predicate:
    def pred(obj: Mapping[str, Any]) -> bool:
        return (_field_value(obj, key) == value) != negate
    return pred


def _field_predicates(selector: str, allowed: set[str]) -> list[Predicate]:
    preds: list[Predicate] = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise _error(400, "BadRequest", f"invalid field selector: {term!r}", {})
        key, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if key not in allowed:
            raise _error(400, "BadRequest", f"field label not supported: {key}", {})
        preds.append(_field_predicate(key, op == "!=", value))
    return preds


def _split_selector(selector: str) -> list[str]:
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t.strip() for t in terms if t.strip()]


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _label_predicate(key: str, op: str, values: frozenset[str]) -> Predicate:
    def pred(obj: Mapping[str, Any]) -> bool:
        labels = _labels(obj)
        if op == "exists":
            return key in labels
        if op == "!exists":
            return key not in labels
        if op in ("=", "==", "in"):
            return labels.get(key) in values
        return labels.get(key) not in values  # != and notin (also true when the label is absent)
    return pred


def _label_predicates(selector: str) -> list[Predicate]:
    preds: list[Predicate] = []
    key_re = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
    for term in _split_selector(selector):
        if m := re.fullmatch(rf"(!?)\s*({key_re})", term):
            preds.append(_label_predicate(m.group(2), "!exists" if m.group(1) else "exists", frozenset()))
        elif m := re.fullmatch(rf"({key_re})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)", term):
            preds.append(_label_predicate(m.group(1), m.group(2), frozenset([m.group(3)])))
        elif m := re.fullmatch(rf"({key_re})\s+(in|notin)\s*\(([^)]*)\)", term):
            preds.append(_label_predicate(m.group(1), m.group(2), frozenset(v.strip() for v in m.group(3).split(","))))
        else:
            raise _error(400, "BadRequest", f"unable to parse requirement: {term!r}", {})
    return preds


# ------------------------------------------------------------------------------------------------- generators

def synthetic_pods(n: int, size: int = 12_000, namespaces: int = 20, apps: int = 50,
                   seed: str = "bench") -> list[dict[str, Any]]:
    """`n` deterministic Pods of about `size` bytes of JSON each, over `namespaces` namespaces and `apps` apps.

    Padding is a container env list, shared (one list object) by the pods of one app as replicas of a Deployment
    would be: cheap to build; treat the objects as read-only."""
    envs: dict[int, list[dict[str, str]]] = {}
    pods = []
    for i in range(n):
        app = i % apps
        pod: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{app:02d}-{i:06d}-{seed}", "namespace": f"ns-{i % namespaces:03d}",
                         "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{i}")),
                         "resourceVersion": str(1000 + i), "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app": f"app-{app}", "tier": "web" if i % 2 else "worker"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{app}-rs",
                                              "uid": f"rs-{app}", "controller": True}]},
            "spec": {"serviceAccountName": "default", "nodeName": f"node-{i % 30}",
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "app", "image": f"registry.example.com/app-{app}:1.{app % 7}.0",
                                     "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                   "limits": {"memory": "256Mi"}},
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]},
                                                         "readOnlyRootFilesystem": True},
                                     "env": []}]},
            "status": {"phase": "Running", "podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                       "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}
                                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]},
        }
        if app not in envs:
            per_entry = len(orjson.dumps({"name": "SETTING_000", "value": f"value-{app}-000-" + "x" * 40})) + 1
            envs[app] = [{"name": f"SETTING_{j:03d}", "value": f"value-{app}-{j:03d}-" + "x" * 40}
                         for j in range(max(0, (size - len(orjson.dumps(pod))) // per_entry))]
        pod["spec"]["containers"][0]["env"] = envs[app]
        pods.append(pod)
    return pods


__all__ = ["DEFAULT_USER", "DEFAULT_VERSION", "EXPIRED_CONTINUE", "FakeAPIServer", "Fault", "FaultPlan", "Request",
           "ServedType", "describe_type", "guess_plural", "load_snapshot", "status_body", "synthetic_pods"]
