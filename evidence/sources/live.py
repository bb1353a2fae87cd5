"""Reads a live cluster through the official `kubernetes` client: the only module that talks to a cluster.

Kubeconfig (--kubeconfig, --context, KUBECONFIG, ~/.kube/config) or in-cluster ServiceAccount config;
TLS verification always on. API discovery decides which catalogued types are served; a group whose discovery
fails (an aggregated API with no endpoints answers 503) is recorded as unavailable, with the reason, and the
run goes on. Each type is listed in pages (limit/continue), decoded from raw JSON with orjson (never the
client's model deserialisation), redacted, and added to the inventory type by type. 410 restarts a list; 429,
5xx and timeouts are retried with backoff, within a per-request timeout and a per-run deadline; 403 is
recorded as `forbidden`. Only a cluster that cannot be identified at all ends the run (CollectionError,
exit 3); once it is identified, whatever cannot be read (deadline, a server that stops answering, a token
that expires) is recorded per type and the pack is still written.
"""

from __future__ import annotations

import base64
import gc
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from evidence.clusterrole import tls_secret_refs
from evidence.errors import CollectionError, InputError
from evidence.inventory import (
    ClusterIdentity,
    CollectionEntry,
    CollectorIdentity,
    CollectStatus,
    Inventory,
    Obj,
    SourceInfo,
    admit,
    prepare,
    problem_message,
)
from evidence.kinds import RESOURCE_TYPES, ResourceType
from evidence.redact import Redactor
from evidence.sources.limits import DEFAULT_RUN_TIMEOUT_S, REQUEST_TIMEOUT_S

__all__ = ["DEFAULT_RUN_TIMEOUT_S", "REQUEST_TIMEOUT_S", "Connection", "LiveSource", "Progress", "connect",
           "context_name", "contexts"]

PAGE_SIZE = 500
MAX_ATTEMPTS = 6  # per request, for 429 / 5xx / timeouts
DISCOVERY_ATTEMPTS = 2  # an aggregated API with no endpoints does not come back within seconds
MAX_RESTARTS = 3  # per list, for 410 Gone
CONNECT_ATTEMPTS = 3  # per request, for refused connections
BACKOFF_CAP_S = 20.0
CONNECT_TIMEOUT_S = 10.0
# After this many resource types in a row ended in server errors (etcd down), later types get a single attempt:
# six attempts each, times the API server's 60 s timeout, would take hours for ~50 types.
SERVER_ERROR_STREAK = 3

SecretsMode = Literal["list", "by-name", "none"]


class _Retryable(Exception):
    """A response worth retrying (429, 5xx); `wait` is the server's Retry-After if any."""

    def __init__(self, message: str, wait: float | None = None, status: int = 0) -> None:
        super().__init__(message)
        self.wait = wait
        self.status = status


class _Gone(Exception):
    """410: the continue token expired; the list restarts from the beginning."""


class _DeadlineReached(Exception):
    """The run's deadline (--timeout) came before this request could be answered."""


class _Stopped(Exception):
    """The API server stopped answering, or stopped accepting the credentials, after the run began."""


@dataclass
class Connection:
    api: client.ApiClient
    server: str
    context: str | None
    user: str | None = None  # the kubeconfig user entry, or "in-cluster"

    def close(self) -> None:
        """Close the pooled TLS connections and the client's thread pool now, not whenever the garbage collector
        finds them (an unclosed socket is a ResourceWarning in whatever runs next)."""
        pool = getattr(getattr(self.api, "rest_client", None), "pool_manager", None)
        if pool is not None:
            pool.clear()
        self.api.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(kubeconfig: Path | None = None, context: str | None = None, allow_http: bool = False) -> Connection:
    """Build an API client from kubeconfig or in-cluster config. Bad configuration is an InputError (exit 2),
    and so is a plain http:// server unless `allow_http` (--allow-insecure-http): the bearer token and every
    object read would cross the network unencrypted."""
    cfg = client.Configuration()
    path = str(kubeconfig) if kubeconfig else None
    user: str | None = None
    try:
        if _in_cluster(path):
            config.load_incluster_config(client_configuration=cfg)
            ctx_name: str | None = "in-cluster"
            user = "in-cluster"
        else:
            if path is not None and not Path(path).is_file():
                raise InputError(f"kubeconfig {path} does not exist", "pass --kubeconfig with an existing file")
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                    persist_config=False)
            all_contexts, active = config.list_kube_config_contexts(config_file=path)
            ctx_name = context or (active or {}).get("name")
            chosen = next((c for c in all_contexts or [] if c.get("name") == ctx_name), active) or {}
            user = (chosen.get("context") or {}).get("user")
    except ConfigException as exc:
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise InputError(f"kubeconfig {where}: {exc}",
                         "check --kubeconfig and --context (kubectl config get-contexts lists them)") from None
    if str(cfg.host).lower().startswith("http://") and not allow_http:
        raise InputError(f"the API server {cfg.host} is plain http://: the credentials would be sent unencrypted",
                         "use the https:// address, or pass --allow-insecure-http for a local test cluster")
    # TLS verification is always on: a kubeconfig's insecure-skip-tls-verify is not honoured.
    cfg.verify_ssl = True
    cfg.retries = False  # auditpack does its own retries (429, 5xx, timeouts), with backoff and a cap
    return Connection(client.ApiClient(cfg), str(cfg.host), ctx_name, user)


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
            t = next((t for t in RESOURCE_TYPES if t.kind == entry.kind and t.group == entry.group), None)
            label = t.label if t else entry.label()
            self._emit({"event": "list", "resource": label, "status": entry.status, "count": entry.count,
                        "seconds": round(entry.duration_s, 3), **({"message": entry.message} if entry.message else {})})

    def retry(self, what: str, reason: str, wait: float) -> None:
        if self._emit is not None:
            self._emit({"event": "retry", "resource": what, "reason": reason, "wait_seconds": round(wait, 2)})

    def note(self, message: str, level: str = "warning") -> None:
        """One line for the operator that is not about a single list (unavailable groups, the collector)."""
        if self._emit is not None:
            self._emit({"event": "note", "level": level, "message": message})


class LiveSource:
    """One collection run. `timeout` is the run's deadline in seconds (None: no deadline); `request_timeout`
    bounds the wait for each response. `secrets`: "list" (list TLS Secrets, per namespace if the cluster-wide list
    is denied), "by-name" (get only the TLS Secrets that Ingresses, Gateways and Certificates reference, never
    list: the Roles of `auditpack rbac --tls-secrets-from-cluster`) or "none" (no Secret request at all).
    `in_scope`: the namespaces in scope (given the inventory read so far), the only ones tried one by one when a
    cluster-wide list is denied."""

    def __init__(self, conn: Connection, progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
                 page_size: int = PAGE_SIZE, timeout: float | None = None,
                 request_timeout: float = REQUEST_TIMEOUT_S, secrets: SecretsMode = "list",
                 in_scope: Callable[[Inventory], Iterable[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conn = conn
        self.progress = progress or Progress()
        self.sleep = sleep
        self.page_size = page_size
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.secrets = secrets
        self.in_scope = in_scope
        self.clock = clock
        self._deadline: float | None = None
        self._stopped: str | None = None  # why nothing more can be read (server gone, credentials rejected)
        self._error_streak = 0
        self.unavailable: dict[str, str] = {}  # "group/version" -> why its discovery failed

    # --- HTTP ---------------------------------------------------------------------------------------

    def _remaining(self) -> float:
        return float("inf") if self._deadline is None else self._deadline - self.clock()

    def _get(self, path: str, query: list[tuple[str, Any]] | None = None, attempts: int = MAX_ATTEMPTS,
             body: dict[str, Any] | None = None) -> Any:
        """GET (or, with a body, POST) a path and decode JSON, retrying 429/5xx/timeouts within the deadline.

        Raises ApiException for other statuses, _Retryable when the attempts are used up (its message names the
        status), _DeadlineReached when the run's deadline comes first."""
        send = _sender(self.conn.api, path, query or [], body)
        delay = 0.5
        reason = ""
        for attempt in range(1, attempts + 1):
            remaining = self._remaining()
            if remaining <= 0:
                raise _DeadlineReached(reason)
            timeout = (min(CONNECT_TIMEOUT_S, remaining), min(self.request_timeout, remaining))
            try:
                status, reason_phrase, data, header = send(timeout)
                if status == 429 or status >= 500:
                    raise _Retryable(_answer(status, data), _retry_after(header("Retry-After")), status)
                if status == 410:
                    raise _Gone()
                if not 200 <= status < 300:
                    failure = ApiException(status=status, reason=reason_phrase)
                    failure.body = data  # (a keyword only from kubernetes 37 on)
                    raise failure
                gc.disable()  # decoding allocates many small objects; the collector would only slow it down
                try:
                    return orjson.loads(data)
                finally:
                    gc.enable()
            except _Retryable as exc:
                if attempt == attempts:
                    raise
                wait = min(exc.wait if exc.wait is not None else delay, BACKOFF_CAP_S)
                reason = str(exc)
            except urllib3.exceptions.SSLError:
                raise  # a certificate problem does not heal by retrying
            except urllib3.exceptions.NewConnectionError as exc:
                if attempt >= CONNECT_ATTEMPTS:
                    raise  # refused or unresolvable: the run ends with one clear line
                wait, reason = delay, _reason(exc)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                if self._remaining() <= 0:
                    raise _DeadlineReached(_reason(exc)) from None
                if attempt == attempts:
                    raise
                wait, reason = delay, _reason(exc)
            if wait >= self._remaining():
                raise _DeadlineReached(reason)
            self.progress.retry(path, f"{reason} (attempt {attempt} of {attempts})", wait)
            self.sleep(wait)
            delay = min(delay * 2, BACKOFF_CAP_S)
        raise AssertionError("unreachable")

    # --- the run ------------------------------------------------------------------------------------

    def identity(self) -> ClusterIdentity:
        """The cluster's identity (/version, the kube-system UID) and who is collecting. Failing to get /version
        ends the run: without it nothing identifies the cluster the pack would describe."""
        try:
            version = self._get("/version")
        except ApiException as exc:
            raise _fatal(self.conn.server, exc) from None
        except _Retryable as exc:
            raise CollectionError(f"{self.conn.server}: {exc}", _SERVER_HINT) from None
        except _DeadlineReached:
            raise CollectionError(f"{self.conn.server}: the run's deadline (--timeout) came before /version "
                                  "answered", "raise --timeout, or check the API server health") from None
        except urllib3.exceptions.HTTPError as exc:
            raise CollectionError(f"cannot reach the API server {self.conn.server}: {_reason(exc)}",
                                  "check the server address, VPN/firewall, and that the cluster is up") from None
        try:
            ks = self._get("/api/v1/namespaces/kube-system", attempts=2)
        except ApiException as exc:
            if exc.status == 401 or not exc.status:
                raise _fatal(self.conn.server, exc) from None
            ks = {}  # identity without the kube-system UID; the manifest says so by leaving it empty
        except (_Retryable, _DeadlineReached, urllib3.exceptions.HTTPError) as exc:
            # The API server answers but cannot read (etcd down): go on, every read will say so, and the pack
            # records the outage instead of leaving nothing.
            self.progress.note(f"kube-system namespace not read: {_reason(exc)}")
            ks = {}
        return ClusterIdentity(name=self.conn.context or self.conn.server, server=self.conn.server,
                               version=version.get("gitVersion"), kube_system_uid=(ks.get("metadata") or {}).get("uid"),
                               context=self.conn.context, collector=self.whoami())

    def whoami(self) -> CollectorIdentity:
        """Who is collecting: the API server's own answer (SelfSubjectReview, GA in Kubernetes 1.28 and allowed
        to every authenticated user by the default ClusterRole system:basic-user), else what the credentials
        say (the ServiceAccount token's claims, a client certificate's subject), else the kubeconfig user name."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            answer = self._get("/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review, attempts=2)
            info = (answer.get("status") or {}).get("userInfo") or {}
            if info.get("username"):
                return CollectorIdentity(username=str(info["username"]), uid=info.get("uid"),
                                         groups=[str(g) for g in info.get("groups") or []],
                                         source="SelfSubjectReview (the API server's answer)")
        except (ApiException, _Retryable, _DeadlineReached, urllib3.exceptions.HTTPError):
            pass  # not served (before 1.27), or denied: fall back to what the credentials say
        cfg = self.conn.api.configuration
        token = _bearer_token(cfg)
        claims = _jwt_claims(token) if token else {}
        where = "the pod's ServiceAccount token" if self.conn.user == "in-cluster" else \
            f"kubeconfig user {self.conn.user!r}"
        if isinstance(claims.get("sub"), str):
            return CollectorIdentity(username=claims["sub"], source=f"{where}: the bearer token's claims "
                                     "(SelfSubjectReview not available)")
        cert_user = _client_cert_user(cfg.cert_file)
        if cert_user is not None:
            name, groups = cert_user
            return CollectorIdentity(username=name, groups=groups, source=f"{where}: the client certificate's "
                                     "subject (SelfSubjectReview not available)")
        return CollectorIdentity(username=self.conn.user or "unknown",
                                 source=f"{where}: name only (the API server did not say who this is)")

    def discover(self) -> dict[tuple[str, str], set[str]]:
        """(group, version) -> served resource plurals, for the groups the catalogue needs (core group as "").

        A group/version whose discovery fails is recorded in `self.unavailable` with the reason (an aggregated
        API whose backend is down answers 503) and left out; the run goes on."""
        versions: dict[str, list[str]] = {}
        for path, read in (("/api", lambda d: {"": [str(v) for v in d.get("versions") or []]}),
                           ("/apis", lambda d: {str(g.get("name")): [str(v.get("version")) for v in
                                                                     g.get("versions") or []]
                                                for g in d.get("groups") or []})):
            try:
                versions.update(read(self._get(path)))
            except (ApiException, _Retryable, _DeadlineReached, urllib3.exceptions.HTTPError) as exc:
                self._check_stopped(exc)
                self.unavailable["" if path == "/api" else "*"] = f"discovery of {path} failed: {_reason(exc)}"
        wanted = {(t.group, v) for t in RESOURCE_TYPES for v in t.versions if v in versions.get(t.group, [])}
        served: dict[tuple[str, str], set[str]] = {}
        for group, version in sorted(wanted):
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                resources = self._get(path, attempts=DISCOVERY_ATTEMPTS).get("resources") or []
            except ApiException as exc:
                if exc.status == 404:  # removed between the two discovery reads
                    continue
                if exc.status == 401:
                    raise _fatal(self.conn.server, exc) from None
                self.unavailable[_gv(group, version)] = _api_reason(exc, f"get {path}")
                continue
            except (_Retryable, _DeadlineReached, urllib3.exceptions.HTTPError) as exc:
                self._check_stopped(exc)
                self.unavailable[_gv(group, version)] = f"discovery of {path} failed: {_reason(exc)}"
                continue
            served[(group, version)] = {str(r.get("name")) for r in resources if "/" not in str(r.get("name"))}
        for gv, why in sorted(self.unavailable.items()):
            self.progress.note(f"API {gv if gv not in ('', '*') else ('core' if gv == '' else 'groups')} "
                               f"unavailable: {why}; its types are recorded as not read")
        return served

    def load(self, cluster_name: str | None = None, types: Iterable[ResourceType] = RESOURCE_TYPES) -> Inventory:
        try:
            return self._load(cluster_name, types)
        finally:
            # Close the pooled connections on every path (a run that stopped on a rejected token, or at
            # identification, left a socket open until the collector found it).
            self.conn.close()

    def _load(self, cluster_name: str | None, types: Iterable[ResourceType]) -> Inventory:
        started = datetime.now(UTC)
        self._deadline = None if self.timeout is None else self.clock() + self.timeout
        ident = self.identity()
        if ident.collector is not None:
            self.progress.note(f"collecting as {ident.collector.username}, known from {ident.collector.source}",
                               level="info")
        if cluster_name:
            ident.name = cluster_name
        inv = Inventory(source=SourceInfo(type="live", location=self.conn.server, collected_at=started,
                                          cluster=ident))
        served = self.discover()
        inv.unavailable = dict(self.unavailable)
        redactor = Redactor()
        todo = list(types)
        # Secrets by name need the Ingresses, Gateways and Certificates that reference them: read them last.
        todo.sort(key=lambda t: t.kind == "Secret" and t.group == "" and self.secrets == "by-name")
        for t in todo:
            self.progress.started(t.label)
            entry = self._read_type(inv, t, served, redactor)
            inv.log.append(entry)
            self.progress.listed(entry)
        inv.redactions = dict(redactor.counts)
        return inv

    def _read_type(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                   redactor: Redactor) -> CollectionEntry:
        if self._stopped is not None:
            return CollectionEntry(group=t.group, kind=t.kind, status="error", message=f"not read: {self._stopped}")
        if self._remaining() <= 0:
            return CollectionEntry(group=t.group, kind=t.kind, status="error", message=self._deadline_message())
        if t.kind == "Secret" and t.group == "" and self.secrets != "list":
            if self.secrets == "none":
                return CollectionEntry(group="", kind="Secret", status="error",
                                       message="not read (--no-secrets): certificates come from cert-manager "
                                               "Certificate status and --probe-tls")
            return self._secrets_by_name(inv, t, served, redactor)
        entry = self._collect_type(inv, t, served, redactor)
        if entry.status == "forbidden" and t.namespaced:
            entry = self._per_namespace(inv, t, served, redactor, entry)
        # A run of server errors means the storage behind the API server is down: stop retrying every request.
        if entry.status == "error" and "answered 5" in str(entry.message):
            self._error_streak += 1
        elif entry.status == "ok":
            self._error_streak = 0  # the storage answers again
        return entry

    def _deadline_message(self) -> str:
        return f"not read: the run's deadline (--timeout {self.timeout:g} s) was reached"

    def _check_stopped(self, exc: BaseException) -> None:
        """A refused connection after the run began: the server went away; stop trying (one line, no hours)."""
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            self._stopped = f"the API server stopped answering ({_reason(exc)})"

    def _per_namespace(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                       redactor: Redactor, denied: CollectionEntry) -> CollectionEntry:
        """A cluster-wide list was denied: least-privilege setups grant per namespace (RoleBindings), so try each
        namespace in scope once and record every namespace still denied. When all are denied, one entry says so."""
        known = [str(n["metadata"]["name"]) for n in inv.objects("Namespace", "")]
        wanted = set(self.in_scope(inv)) if self.in_scope is not None else set(known)
        namespaces = [ns for ns in known if ns in wanted]
        if not namespaces:
            return denied
        ok, refused, entries, count = [], [], [], 0
        for ns in namespaces:
            e = self._collect_type(inv, t, served, redactor, namespace=ns)
            e.namespace = ns
            if e.status == "ok":
                ok.append(ns)
                count += e.count
            else:
                refused.append(ns)
                entries.append(e)
            if self._stopped is not None or self._remaining() <= 0:
                break
        untried = [ns for ns in namespaces if ns not in ok and ns not in refused]
        if untried:  # stopped or out of time part-way: what was not tried was not read
            why = self._stopped or self._deadline_message().removeprefix("not read: ")
            entries += [CollectionEntry(group=t.group, kind=t.kind, namespace=ns, status="error",
                                        message=f"{t.label} in namespace {ns} not read: {why}") for ns in untried]
        if not ok:
            where = "in scope" if self.in_scope is not None else ""
            listed = ", ".join(refused[:8]) + (f" and {len(refused) - 8} more" if len(refused) > 8 else "")
            message = f"permission denied: list {t.label} cluster-wide and in each of the {len(refused)} " \
                      f"namespaces {where} tried ({listed})".replace("  ", " ")
            return denied.model_copy(update={"message": message})
        inv.log.extend(entries)
        # Namespaces not tried (out of scope) were not read either: say so, without sending a request.
        inv.log.extend(CollectionEntry(group=t.group, kind=t.kind, namespace=ns, status="forbidden",
                                       message=f"permission denied: list {t.label} cluster-wide; namespace {ns} "
                                               "is out of scope and was not tried")
                       for ns in known if ns not in wanted)
        msg = f"cluster-wide list denied; listed per namespace, denied in: {', '.join(refused) or 'none'}"
        return CollectionEntry(group=t.group, kind=t.kind, status="ok", count=count, message=msg,
                               duration_s=denied.duration_s)

    def _secrets_by_name(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                         redactor: Redactor) -> CollectionEntry:
        """GET each TLS Secret an Ingress, Gateway or Certificate references: the access `auditpack rbac
        --tls-secrets-from-cluster` grants (get with resourceNames), never a list."""
        version = next((v for v in t.versions if t.plural in served.get(("", v), set())), None)
        if version is None:
            return CollectionEntry(group="", kind="Secret", status="error", message="secrets are not served")
        start = time.monotonic()
        refs = tls_secret_refs(inv)
        count, denied, failed = 0, list[str](), list[str]()
        for ns, name in sorted(refs):
            try:
                obj = self._get(f"/api/{version}/namespaces/{ns}/secrets/{name}")
            except ApiException as exc:
                if exc.status == 404:
                    continue  # referenced but missing: the collectors report the missing Secret
                if exc.status == 401:
                    self._stopped = "the API server rejected the credentials (401 Unauthorized)"
                    failed.append(f"{ns}/{name}")
                    break
                (denied if exc.status == 403 else failed).append(f"{ns}/{name}")
                if exc.status == 403:
                    inv.log.append(CollectionEntry(group="", kind="Secret", namespace=ns, status="forbidden",
                                                   message=f"permission denied: get secrets {ns}/{name}"))
                continue
            except (_Retryable, _DeadlineReached, _Gone, urllib3.exceptions.HTTPError) as exc:
                self._check_stopped(exc)
                failed.append(f"{ns}/{name}: {_reason(exc)}")
                continue
            if obj.get("type") != "kubernetes.io/tls":
                continue  # the list mode would not have returned it either
            obj.setdefault("apiVersion", version)
            obj.setdefault("kind", "Secret")
            problem = admit(inv, obj, redactor.redact)
            if problem is not None:
                failed.append(problem)
                continue
            count += 1
        if failed:
            return CollectionEntry(group="", kind="Secret", status="error", count=count,
                                   duration_s=time.monotonic() - start,
                                   message=f"could not get secrets {', '.join(failed[:8])}")
        return CollectionEntry(group="", kind="Secret", status="ok", count=count, duration_s=time.monotonic() - start,
                               message=f"read by name (no list): {count} of the {len(refs)} TLS Secrets that "
                                       f"Ingresses, Gateways and Certificates reference"
                                       + (f"; denied: {', '.join(denied)}" if denied else ""))

    def _collect_type(self, inv: Inventory, t: ResourceType, served: dict[tuple[str, str], set[str]],
                      redactor: Redactor, namespace: str | None = None) -> CollectionEntry:
        version = next((v for v in t.versions if t.plural in served.get((t.group, v), set())), None)
        if version is None:
            down = [self.unavailable[k] for k in ([_gv(t.group, v) for v in t.versions] + ["" if not t.group
                                                                                            else "*"])
                    if k in self.unavailable]
            if down:
                return CollectionEntry(group=t.group, kind=t.kind, status="error",
                                       message=f"{t.label} not read: API group {t.group or 'core'} is unavailable: "
                                               f"{down[0]}")
            return CollectionEntry(group=t.group, kind=t.kind, status="not_served",
                                   message=f"{t.label} is not served by this cluster")
        api_version = f"{t.group}/{version}" if t.group else version
        base = f"/apis/{t.group}/{version}" if t.group else f"/api/{version}"
        path = f"{base}/namespaces/{namespace}/{t.plural}" if namespace else f"{base}/{t.plural}"
        start = time.monotonic()

        def page_items(raw: list[Any], kept: list[Obj], problems: list[str]) -> None:
            """One page's items checked, redacted and shared as they arrive: the raw page is not kept (at 10,000
            pods, every page held until the list ended was 670 MB). They join the inventory when the list is
            complete, so a list that fails half-way adds nothing."""
            for item in raw:
                if isinstance(item, dict):
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", t.kind)
                obj = prepare(inv, item, redactor.redact)
                if isinstance(obj, str):
                    problems.append(obj)
                else:
                    kept.append(obj)

        try:
            items, problems = self._list_all(path, t, page_items)
        except ApiException as exc:
            if exc.status == 401:  # the token expired mid-run: nothing more can be read; the pack says so
                self._stopped = "the API server rejected the credentials (401 Unauthorized) during the run"
                return CollectionEntry(group=t.group, kind=t.kind, status="error",
                                       message=f"not read: {self._stopped}", duration_s=time.monotonic() - start)
            status: CollectStatus = "forbidden" if exc.status == 403 else "error"
            where = f" in namespace {namespace}" if namespace else ""
            message = f"permission denied: list {t.label}{where}" if exc.status == 403 else \
                f"{t.label}: {_status_message(exc)}"
            return CollectionEntry(group=t.group, kind=t.kind, status=status, message=message,
                                   duration_s=time.monotonic() - start)
        except _DeadlineReached as exc:
            after = f", after: {exc}" if str(exc) else ""
            return CollectionEntry(group=t.group, kind=t.kind, status="error",
                                   message=f"{self._deadline_message()} while listing {t.label}{after}",
                                   duration_s=time.monotonic() - start)
        except (_Retryable, _Gone, urllib3.exceptions.HTTPError) as exc:
            self._check_stopped(exc)
            return CollectionEntry(group=t.group, kind=t.kind, status="error",
                                   message=f"{t.label}: gave up: {_reason(exc)}", duration_s=time.monotonic() - start)
        except orjson.JSONDecodeError as exc:  # e.g. a custom resource nested past the decoder's 1,024 levels
            return CollectionEntry(group=t.group, kind=t.kind, status="error",
                                   message=f"{t.label}: the response could not be decoded: {exc.msg}",
                                   duration_s=time.monotonic() - start)
        for obj in items:
            inv.add(obj)
        inv.left_out.extend(problems)  # objects of a shape collectors cannot read (issue 11): named, left out
        return CollectionEntry(group=t.group, kind=t.kind, status="error" if problems else "ok",
                               count=len(items), duration_s=time.monotonic() - start,
                               message=problem_message(problems) if problems else None)

    def _list_all(self, path: str, t: ResourceType, prepare_page: Callable[[list[Any], list[Obj], list[str]], None],
                  ) -> tuple[list[Obj], list[str]]:
        """All items of a list, page by page, each page through `prepare_page` as it arrives (into the objects kept
        and the problems of the items left out); a 410 (expired continue token) restarts the list afresh."""
        attempts = 1 if self._error_streak >= SERVER_ERROR_STREAK else MAX_ATTEMPTS
        for _restart in range(MAX_RESTARTS + 1):
            items: list[Obj] = []
            problems: list[str] = []
            token: str | None = None
            try:
                while True:
                    query: list[tuple[str, Any]] = [("limit", self.page_size)]
                    if t.field_selector:
                        query.append(("fieldSelector", t.field_selector))
                    if token:
                        query.append(("continue", token))
                    page = self._get(path, query, attempts=attempts)
                    prepare_page(page.pop("items", None) or [], items, problems)
                    # Decoded objects live until the run ends and hold no reference cycles: move them out of
                    # the collector's reach so each later collection does not rescan the whole inventory.
                    gc.freeze()
                    token = (page.get("metadata") or {}).get("continue") or None
                    if not token:
                        return items, problems
            except _Gone:
                self.progress.retry(path, "HTTP 410 Expired: the continue token expired (storage compacted); "
                                          "restarting the list", 0)
                continue
        raise _Gone()


_Answer = tuple[int, str, bytes, Callable[[str], "str | None"]]  # status, reason phrase, body, header getter


def _sender(api: client.ApiClient, path: str, query: list[tuple[str, Any]],
            body: dict[str, Any] | None) -> Callable[[tuple[float, float]], _Answer]:
    """One raw request (no model deserialisation) through the client, whatever its generation: kubernetes >= 37
    (OpenAPI generator 7: param_serialize + call_api returning the response) or older releases (call_api with
    _preload_content=False, raising ApiException for every non-2xx answer). Every status comes back as data, so
    the retry policy above is the same for both."""
    method = "POST" if body is not None else "GET"
    headers_in = {"Accept": "application/json"}
    if body is not None:
        headers_in["Content-Type"] = "application/json"
    if hasattr(api, "param_serialize"):
        verb, url, headers, payload, _ = api.param_serialize(
            method=method, resource_path=path, query_params=query, header_params=headers_in, body=body,
            auth_settings=["BearerToken"])

        def send_new(timeout: tuple[float, float]) -> _Answer:
            resp = api.call_api(verb, url, header_params=headers, body=payload, _request_timeout=timeout)
            data = resp.read()
            return int(resp.status), str(resp.reason or ""), data, resp.getheader

        return send_new

    def send_old(timeout: tuple[float, float]) -> _Answer:
        # ApiClient.request, not call_api: the older call_api fails on its own TLS errors (it decodes a None body).
        headers, params = dict(headers_in), list(query)
        api.update_params_for_auth(headers, params, ["BearerToken"])
        try:
            resp = api.request(method, api.configuration.host + path, query_params=params, headers=headers,
                               body=body, _preload_content=False, _request_timeout=timeout)
        except ApiException as exc:
            if not exc.status:
                raise  # TLS or connection failure: status 0, handled by the callers
            data = exc.body.encode() if isinstance(exc.body, str) else (exc.body or b"")
            got = exc.headers or {}
            return int(exc.status), str(exc.reason or ""), data, lambda name: got.get(name)
        return int(resp.status), str(resp.reason or ""), resp.data, resp.getheader

    return send_old


_SERVER_HINT = "the API server is up but cannot serve reads: check etcd and the aggregated APIs " \
               "(kubectl get apiservices; kubectl get --raw /readyz?verbose)"


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _answer(status: int, data: bytes) -> str:
    """What a 429/5xx answer means, in words: 503/504 are the API server saying its storage or an aggregated API
    behind it failed (it answered, so it is reachable)."""
    try:
        message = str(orjson.loads(data).get("message") or "")[:200]
    except (orjson.JSONDecodeError, AttributeError):
        message = ""
    detail = f" ({message})" if message else ""
    if status in (503, 504):
        return f"the API server answered {status}: its storage or an aggregated API is failing{detail}"
    if status == 429:
        return f"the API server answered 429 Too Many Requests (throttled by API Priority and Fairness){detail}"
    return f"the API server answered {status}{detail}"


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


def _api_reason(exc: ApiException, what: str) -> str:
    if exc.status == 403:
        return f"permission denied: {what}"
    return f"{what}: {_status_message(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _Retryable):
        return str(exc)
    if isinstance(exc, _DeadlineReached):
        return "the run's deadline (--timeout) was reached"
    if isinstance(exc, _Gone):
        return "HTTP 410 Expired: the list kept expiring (storage compacted) after restarts"
    if isinstance(exc, ApiException):
        return _status_message(exc)
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate verification failed (auditpack always verifies; fix the CA in the kubeconfig)"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "the server name does not resolve"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"no answer within the per-request timeout ({type(exc).__name__})"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"the connection broke ({type(exc).__name__}: {text.split(': ', 1)[-1][:120]})"
    return f"{type(exc).__name__}: {text.split(': ', 1)[-1][:200]}"


def _fatal(server: str, exc: ApiException) -> CollectionError:
    if not exc.status:  # the client reports TLS and connection failures as status 0
        return CollectionError(f"cannot reach the API server {server}: {_reason(Exception(exc.reason))}",
                               "check the server address and the CA in the kubeconfig")
    if exc.status == 401:
        return CollectionError(f"the API server {server} rejected the credentials (401 Unauthorized)",
                               "refresh the kubeconfig credentials (expired token or certificate?)")
    if exc.status == 403:
        return CollectionError(f"{server}: {_status_message(exc)}",
                               "auditpack needs get on /version and namespaces/kube-system; see `auditpack rbac`")
    return CollectionError(f"{server}: {_status_message(exc)}", "check the API server health")


def _bearer_token(cfg: client.Configuration) -> str | None:
    value = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if not value:
        return None
    return str(value).removeprefix("Bearer ").strip() or None


def _jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (a ServiceAccount token), unverified: they only name who collected, the API server
    checks the token itself. Not a JWT: {}."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _client_cert_user(cert_file: str | None) -> tuple[str, list[str]] | None:
    """A client certificate's user (CN) and groups (O), as the API server's x509 authenticator reads them."""
    if not cert_file or not Path(cert_file).is_file():
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except ValueError:
        return None
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    groups = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (cn[0], groups) if cn else None
