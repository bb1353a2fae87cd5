"""Reads a live cluster through the official `kubernetes` client: the only module that talks to a cluster.

Kubeconfig (--kubeconfig, --context, KUBECONFIG, ~/.kube/config) or in-cluster ServiceAccount config;
TLS verification always on. API discovery decides which catalogued types are served; each type is
listed in pages (limit/continue), decoded from raw JSON with orjson (never the client's model
deserialisation), redacted, and added to the inventory type by type. 410 restarts a list; 429, 5xx and
timeouts are retried with backoff; 403 is recorded as `forbidden`; an unreachable server or rejected
credentials end the run (CollectionError, exit 3).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from evidence.errors import CollectionError, InputError
from evidence.inventory import ClusterIdentity, CollectionEntry, CollectStatus, Inventory, SourceInfo
from evidence.kinds import RESOURCE_TYPES, ResourceType
from evidence.redact import Redactor

PAGE_SIZE = 500
MAX_ATTEMPTS = 6  # per request, for 429 / 5xx / timeouts
MAX_RESTARTS = 3  # per list, for 410 Gone
CONNECT_ATTEMPTS = 3  # per request, for refused connections
BACKOFF_CAP_S = 20.0
TIMEOUT = (10.0, 120.0)  # connect, read


class _Retryable(Exception):
    """A response worth retrying (429, 5xx, timeout); `wait` is the server's Retry-After if any."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class _Gone(Exception):
    """410: the continue token expired; the list restarts from the beginning."""


@dataclass
class Connection:
    api: client.ApiClient
    server: str
    context: str | None


def connect(kubeconfig: Path | None = None, context: str | None = None) -> Connection:
    """Build an API client from kubeconfig or in-cluster config. Bad configuration is an InputError (exit 2)."""
    cfg = client.Configuration()
    path = str(kubeconfig) if kubeconfig else None
    try:
        if _in_cluster(path):
            config.load_incluster_config(client_configuration=cfg)
            ctx_name: str | None = "in-cluster"
        else:
            if path is not None and not Path(path).is_file():
                raise InputError(f"kubeconfig {path} does not exist", "pass --kubeconfig with an existing file")
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                    persist_config=False)
            _, active = config.list_kube_config_contexts(config_file=path)
            ctx_name = context or (active or {}).get("name")
    except ConfigException as exc:
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise InputError(f"kubeconfig {where}: {exc}",
                         "check --kubeconfig and --context (kubectl config get-contexts lists them)") from None
    # TLS verification is always on: a kubeconfig's insecure-skip-tls-verify is not honoured.
    cfg.verify_ssl = True
    cfg.retries = False  # auditpack does its own retries (429, 5xx, timeouts), with backoff and a cap
    return Connection(client.ApiClient(cfg), str(cfg.host), ctx_name)


def _in_cluster(path: str | None) -> bool:
    """No kubeconfig anywhere and running in a pod: use the pod's ServiceAccount (the CronJob)."""
    return path is None and not os.environ.get("KUBECONFIG") and not Path("~/.kube/config").expanduser().exists() \
        and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def contexts(kubeconfig: Path | None = None) -> tuple[list[str], str | None]:
    """The kubeconfig's context names and its current context, without connecting (fleets, pack paths)."""
    path = str(kubeconfig) if kubeconfig else None
    if path is not None and not Path(path).is_file():
        raise InputError(f"kubeconfig {path} does not exist", "pass --kubeconfig with an existing file")
    try:
        all_contexts, active = config.list_kube_config_contexts(config_file=path)
    except ConfigException as exc:
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise InputError(f"kubeconfig {where}: {exc}", "check --kubeconfig (kubectl config get-contexts lists them)"
                         ) from None
    return [str(c["name"]) for c in all_contexts or []], (active or {}).get("name")


def context_name(kubeconfig: Path | None = None, context: str | None = None) -> str:
    """The name `connect` gives the cluster (the context, or "in-cluster"), known before connecting."""
    if _in_cluster(str(kubeconfig) if kubeconfig else None):
        return "in-cluster"
    names, current = contexts(kubeconfig)
    if context is not None and context not in names:
        raise InputError(f"kubeconfig has no context {context!r}",
                         f"use one of: {', '.join(names) or 'none'} (kubectl config get-contexts)")
    return context or current or "default"


class Progress:
    """Reports per-type progress: a rich display on a TTY, structured log lines otherwise."""

    def __init__(self, emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._emit = emit

    def started(self, label: str) -> None:
        if self._emit is not None:
            self._emit({"event": "start", "resource": label})

    def listed(self, entry: CollectionEntry) -> None:
        if self._emit is not None:
            label = next((t.label for t in RESOURCE_TYPES if t.kind == entry.kind and t.group == entry.group),
                         entry.label())
            self._emit({"event": "list", "resource": label, "status": entry.status, "count": entry.count,
                        "seconds": round(entry.duration_s, 3), **({"message": entry.message} if entry.message else {})})

    def retry(self, what: str, reason: str, wait: float) -> None:
        if self._emit is not None:
            self._emit({"event": "retry", "resource": what, "reason": reason, "wait_seconds": round(wait, 2)})


class LiveSource:
    def __init__(self, conn: Connection, progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
                 page_size: int = PAGE_SIZE) -> None:
        self.conn = conn
        self.progress = progress or Progress()
        self.sleep = sleep
        self.page_size = page_size

    # --- HTTP ---------------------------------------------------------------------------------------

    def _get(self, path: str, query: list[tuple[str, Any]] | None = None) -> Any:
        """GET a path and decode JSON, retrying 429/5xx/timeouts. Raises ApiException for other statuses."""
        api = self.conn.api
        method, url, headers, _, _ = api.param_serialize(
            method="GET", resource_path=path, query_params=query or [],
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        delay = 0.5
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                resp = api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT)
                data = resp.read()
                if resp.status == 429 or resp.status >= 500:
                    retry_after = _retry_after(resp.getheader("Retry-After"))
                    raise _Retryable(f"HTTP {resp.status}", retry_after)
                if resp.status == 410:
                    raise _Gone()
                if not 200 <= resp.status < 300:
                    raise ApiException(status=resp.status, reason=resp.reason, body=data)
                gc.disable()  # decoding allocates many small objects; the collector would only slow it down
                try:
                    return orjson.loads(data)
                finally:
                    gc.enable()
            except _Retryable as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                wait = min(exc.wait if exc.wait is not None else delay, BACKOFF_CAP_S)
            except urllib3.exceptions.SSLError:
                raise  # a certificate problem does not heal by retrying
            except urllib3.exceptions.NewConnectionError:
                if attempt >= CONNECT_ATTEMPTS:
                    raise  # refused or unresolvable: the run ends with one clear line
                wait = delay
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError):
                if attempt == MAX_ATTEMPTS:
                    raise
                wait = delay
            self.progress.retry(path, "retrying", wait)
            self.sleep(wait)
            delay = min(delay * 2, BACKOFF_CAP_S)
        raise AssertionError("unreachable")

    # --- the run ------------------------------------------------------------------------------------

    def identity(self) -> ClusterIdentity:
        try:
            version = self._get("/version")
            try:
                ks = self._get("/api/v1/namespaces/kube-system")
            except ApiException as exc:
                if exc.status != 403:
                    raise
                ks = {}  # identity without the kube-system UID; the manifest says so by leaving it empty
        except ApiException as exc:
            raise _fatal(self.conn.server, exc) from None
        except (urllib3.exceptions.HTTPError, _Retryable) as exc:
            raise CollectionError(f"cannot reach the API server {self.conn.server}: {_reason(exc)}",
                                  "check the server address, VPN/firewall, and that the cluster is up") from None
        return ClusterIdentity(name=self.conn.context or self.conn.server, server=self.conn.server,
                               version=version.get("gitVersion"), kube_system_uid=(ks.get("metadata") or {}).get("uid"),
                               context=self.conn.context)

    def discover(self) -> dict[tuple[str, str], set[str]]:
        """(group, version) -> served resource plurals, for the groups the catalogue needs (core group as "")."""
        versions: dict[str, list[str]] = {"": [str(v) for v in self._get("/api").get("versions") or []]}
        for g in self._get("/apis").get("groups") or []:
            versions[str(g.get("name"))] = [str(v.get("version")) for v in g.get("versions") or []]
        wanted = {(t.group, v) for t in RESOURCE_TYPES for v in t.versions if v in versions.get(t.group, [])}
        served: dict[tuple[str, str], set[str]] = {}
        for group, version in sorted(wanted):
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                resources = self._get(path).get("resources") or []
            except ApiException as exc:
                if exc.status in (403, 404, 503):  # an aggregated API that is down, or hidden
                    continue
                raise
            served[(group, version)] = {str(r.get("name")) for r in resources if "/" not in str(r.get("name"))}
        return served

    def load(self, cluster_name: str | None = None) -> Inventory:
        started = datetime.now(UTC)
        ident = self.identity()
        if cluster_name:
            ident.name = cluster_name
        inv = Inventory(source=SourceInfo(type="live", location=self.conn.server, collected_at=started,
                                          cluster=ident))
        served = self.discover()
        redactor = Redactor()
        for t in RESOURCE_TYPES:
            self.progress.started(t.label)
            entry = self._collect_type(inv, t, served, redactor)
            if entry.status == "forbidden" and t.namespaced:
                entry = self._per_namespace(inv, t, served, redactor, entry)
            inv.log.append(entry)
            self.progress.listed(entry)
        inv.redactions = dict(redactor.counts)
        return inv

    def _per_namespace(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                       redactor: Redactor,
                       denied: CollectionEntry) -> CollectionEntry:
        """A cluster-wide list was denied: least-privilege setups grant per namespace (RoleBindings), so try each
        namespace and record every namespace still denied."""
        namespaces = [str(n["metadata"]["name"]) for n in inv.objects("Namespace", "")]
        if not namespaces:
            return denied
        ok, refused, count = [], [], 0
        for ns in namespaces:
            e = self._collect_type(inv, t, served, redactor, namespace=ns)
            e.namespace = ns
            if e.status == "ok":
                ok.append(ns)
                count += e.count
            else:
                refused.append(ns)
                inv.log.append(e)
        if not ok:
            return denied
        msg = f"cluster-wide list denied; listed per namespace, denied in: {', '.join(refused) or 'none'}"
        return CollectionEntry(group=t.group, kind=t.kind, status="ok", count=count, message=msg,
                               duration_s=denied.duration_s)

    def _collect_type(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                      redactor: Redactor, namespace: str | None = None) -> CollectionEntry:
        version = next((v for v in t.versions if t.plural in served.get((t.group, v), set())), None)
        if version is None:
            return CollectionEntry(group=t.group, kind=t.kind, status="not_served",
                                   message=f"{t.label} is not served by this cluster")
        api_version = f"{t.group}/{version}" if t.group else version
        base = f"/apis/{t.group}/{version}" if t.group else f"/api/{version}"
        path = f"{base}/namespaces/{namespace}/{t.plural}" if namespace else f"{base}/{t.plural}"
        start = time.monotonic()
        try:
            items = self._list_all(path, t)
        except ApiException as exc:
            status: CollectStatus = "forbidden" if exc.status == 403 else "error"
            where = f" in namespace {namespace}" if namespace else ""
            message = f"permission denied: list {t.plural}{where}" if exc.status == 403 else _status_message(exc)
            if exc.status == 401:
                raise _fatal(self.conn.server, exc) from None
            return CollectionEntry(group=t.group, kind=t.kind, status=status, message=message,
                                   duration_s=time.monotonic() - start)
        except (_Retryable, _Gone, urllib3.exceptions.HTTPError) as exc:
            return CollectionEntry(group=t.group, kind=t.kind, status="error", message=f"gave up: {_reason(exc)}",
                                   duration_s=time.monotonic() - start)
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", t.kind)
            inv.add(redactor.redact(item))
        return CollectionEntry(group=t.group, kind=t.kind, status="ok", count=len(items),
                               duration_s=time.monotonic() - start)

    def _list_all(self, path: str, t: ResourceType) -> list[dict[str, Any]]:
        """All items of a list, page by page; a 410 (expired continue token) restarts the list."""
        for _restart in range(MAX_RESTARTS + 1):
            items: list[dict[str, Any]] = []
            token: str | None = None
            try:
                while True:
                    query: list[tuple[str, Any]] = [("limit", self.page_size)]
                    if t.field_selector:
                        query.append(("fieldSelector", t.field_selector))
                    if token:
                        query.append(("continue", token))
                    page = self._get(path, query)
                    items.extend(page.get("items") or [])
                    # Decoded objects live until the run ends and hold no reference cycles: move them out of
                    # the collector's reach so each later collection does not rescan the whole inventory.
                    gc.freeze()
                    token = (page.get("metadata") or {}).get("continue") or None
                    if not token:
                        return items
            except _Gone:
                self.progress.retry(path, "continue token expired (410); restarting the list", 0)
                continue
        raise _Gone()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _status_message(exc: ApiException) -> str:
    try:
        body = orjson.loads(exc.body or b"{}")
        return f"HTTP {exc.status}: {body.get('message') or exc.reason}"
    except orjson.JSONDecodeError:
        return f"HTTP {exc.status}: {exc.reason}"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate verification failed (auditpack always verifies; fix the CA in the kubeconfig)"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "the server name does not resolve"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    return text.split(": ", 1)[-1][:200]


def _fatal(server: str, exc: ApiException) -> CollectionError:
    if not exc.status:  # the client reports TLS and connection failures as status 0
        return CollectionError(f"cannot reach the API server {server}: {_reason(exc)}",
                               "check the server address and the CA in the kubeconfig")
    if exc.status == 401:
        return CollectionError(f"the API server {server} rejected the credentials (401 Unauthorized)",
                               "refresh the kubeconfig credentials (expired token or certificate?)")
    if exc.status == 403:
        return CollectionError(f"{server}: {_status_message(exc)}",
                               "auditpack needs get on /version and namespaces/kube-system; see `auditpack rbac`")
    return CollectionError(f"{server}: {_status_message(exc)}", "check the API server health")
