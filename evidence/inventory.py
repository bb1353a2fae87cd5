"""The Inventory: every (redacted) object a source read, indexed by kind, plus the collection log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict

from evidence import shapes

Obj = dict[str, Any]
T = TypeVar("T")

# Outcome of reading one resource type (DESIGN.md: ok, forbidden, not_served, error). `absent` is for
# snapshots without a collection log: nothing of that type is in the files, so we cannot tell
# "none exist" from "not collected".
CollectStatus = Literal["ok", "forbidden", "not_served", "error", "absent"]


class ObjectRef(BaseModel):
    """Names one inventory object precisely enough for an auditor to find it again."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    apiVersion: str
    kind: str
    namespace: str | None = None
    name: str
    uid: str | None = None
    resourceVersion: str | None = None

    def display(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        rv = f"@{self.resourceVersion}" if self.resourceVersion else ""
        return f"{self.kind}/{where}{rv}"

    @classmethod
    def of(cls, obj: Obj) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            apiVersion=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=meta.get("namespace") or None,
            name=str(meta.get("name", "")),
            uid=meta.get("uid"),
            resourceVersion=meta.get("resourceVersion"),
        )


class CollectionEntry(BaseModel):
    """One resource type attempted by a source (optionally for one namespace)."""

    group: str
    kind: str
    namespace: str | None = None
    status: CollectStatus
    count: int = 0
    duration_s: float = 0.0
    message: str | None = None

    def label(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def reason(self, plural: str, namespace: str | None = None) -> str | None:
        """None when the type was read; else why not, in the words every output uses
        (e.g. "permission denied: list secrets")."""
        if self.status == "ok":
            return None
        where = f" in namespace {namespace}" if namespace and self.namespace == namespace else ""
        if self.group and not plural.endswith(f".{self.group}"):
            plural = f"{plural}.{self.group}"  # "networkpolicies" alone is ambiguous (Calico has one too)
        if self.status == "forbidden":
            return f"permission denied: list {plural}{where}"
        if self.status == "absent":
            return f"no {plural} in the snapshot (not collected?)"
        if self.status == "not_served":
            return f"{plural} are not served by this cluster"
        return f"could not list {plural}{where}: {self.message or self.status}"


class Duplicate(BaseModel):
    """An object that appeared more than once in the source; one copy was kept."""

    object: ObjectRef
    occurrences: list[str]


class CollectorIdentity(BaseModel):
    """Who read the cluster: the user the API server saw, its groups, and how auditpack knows (live runs)."""

    username: str
    uid: str | None = None
    groups: list[str] = []
    source: str = ""


class ClusterIdentity(BaseModel):
    name: str = "unknown"
    server: str | None = None
    version: str | None = None
    kube_system_uid: str | None = None
    context: str | None = None
    collector: CollectorIdentity | None = None  # live runs: who collected (kept in snapshots too)


class SourceInfo(BaseModel):
    type: Literal["snapshot", "live"]
    location: str
    collected_at: datetime
    cluster: ClusterIdentity


def group_of(api_version: str) -> str:
    """'networking.k8s.io/v1' -> 'networking.k8s.io'; 'v1' (the core group) -> ''."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


Key = tuple[str, str, str, str]  # group, kind, namespace ("" when cluster-scoped), name


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (
        group_of(str(obj.get("apiVersion", ""))),
        str(obj.get("kind", "")),
        str(meta.get("namespace") or ""),
        str(meta.get("name", "")),
    )


@dataclass
class Inventory:
    """Objects by (group, kind), the collection log and the source's identity. Read-only for collectors."""

    source: SourceInfo
    log: list[CollectionEntry] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # live: "group/version" whose discovery failed -> why
    # Snapshot files read but holding no Kubernetes object (README.json, a Helm values file), and the one-line
    # warnings the run prints about what it read (the CLI shows them; collection.json records them).
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # every object left out at the boundary, named, and why
    _by_kind: dict[tuple[str, str], dict[tuple[str, str], Obj]] = field(default_factory=dict)
    # objects() answers, sorted once: collectors ask for the same kind (often per namespace) many times, and
    # sorting the whole kind on every call made them grow faster than the cluster (issue 16). Cleared by add().
    _sorted: dict[tuple[str, str | None, str | None], list[Obj]] = field(default_factory=dict)
    # kind -> its (group, bucket) pairs: get() looked at every kind's bucket on each call (issue 16).
    _groups_of: dict[str, list[tuple[str, dict[tuple[str, str], Obj]]]] = field(default_factory=dict)
    # Values several collectors derive from the same objects (the pod views): computed once. Cleared by add().
    _derived: dict[str, Any] = field(default_factory=dict)
    # The parts replicas repeat, shared between the objects a live source admits (see Shared).
    shared: Shared = field(default_factory=lambda: Shared(), repr=False, compare=False)

    def add(self, obj: Obj) -> Obj | None:
        """Add an object; return the object already stored under the same key, if any."""
        self._sorted.clear()
        self._derived.clear()
        group, kind, ns, name = key_of(obj)
        bucket = self._by_kind.get((group, kind))
        if bucket is None:
            bucket = self._by_kind[(group, kind)] = {}
            self._groups_of.setdefault(kind, []).append((group, bucket))
        previous = bucket.get((ns, name))
        if previous is None or _newer(obj, previous):
            bucket[(ns, name)] = obj
        return previous

    def objects(self, kind: str, group: str | None = None, namespace: str | None = None) -> list[Obj]:
        """All objects of a kind (in every group serving that kind unless `group` is given), sorted; a new list
        each call (callers may extend it)."""
        cached = self._sorted.get((kind, group, namespace))
        if cached is None:
            if namespace is not None:  # per namespace: one pass over the kind fills every namespace's list
                by_ns: dict[str, list[Obj]] = {}
                for o in self.objects(kind, group):
                    by_ns.setdefault(str((o.get("metadata") or {}).get("namespace") or ""), []).append(o)
                for ns, objs in by_ns.items():
                    self._sorted[(kind, group, ns)] = objs
                cached = self._sorted.setdefault((kind, group, namespace), [])
            else:
                cached = []
                for (g, k), bucket in self._by_kind.items():
                    if k == kind and (group is None or g == group):
                        cached.extend(bucket.values())
                cached.sort(key=key_of)
                self._sorted[(kind, group, None)] = cached
        return list(cached)

    def derived(self, key: str, compute: Callable[[], T]) -> T:
        """A value derived from the objects (and nothing else), computed on first use: several collectors ask
        for the same derivation, which at 50,000 pods costs seconds each time (issue 16)."""
        if key not in self._derived:
            self._derived[key] = compute()
        value: T = self._derived[key]
        return value

    def get(self, kind: str, namespace: str | None, name: str, group: str | None = None) -> Obj | None:
        for g, bucket in self._groups_of.get(kind, ()):
            if group is None or g == group:
                found = bucket.get((namespace or "", name))
                if found is not None:
                    return found
        return None

    def all_objects(self) -> Iterator[Obj]:
        for _, bucket in sorted(self._by_kind.items()):
            yield from (bucket[k] for k in sorted(bucket))

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._by_kind)

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_kind.values())

    def status(self, kind: str, group: str, namespace: str | None = None) -> CollectionEntry:
        """How reading this type went. A namespace-specific denial wins over a cluster-wide success."""
        matches = [e for e in self.log if e.kind == kind and e.group == group]
        if namespace is not None:
            scoped = [e for e in matches if e.namespace == namespace]
            if scoped:
                return scoped[0]
        cluster_wide = [e for e in matches if e.namespace is None]
        if cluster_wide:
            return cluster_wide[0]
        count = len(self.objects(kind, group))
        return CollectionEntry(group=group, kind=kind, status="ok" if count else "absent", count=count)

    def problems(self) -> list[CollectionEntry]:
        return [e for e in self.log if e.status in ("forbidden", "error")]


def _newer(candidate: Obj, current: Obj) -> bool:
    """Of two copies of one object keep the higher resourceVersion (numeric when both are numbers)."""
    a = str((candidate.get("metadata") or {}).get("resourceVersion") or "")
    b = str((current.get("metadata") or {}).get("resourceVersion") or "")
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return False


def refs(objs: Iterable[Obj | None]) -> list[ObjectRef]:
    """ObjectRefs of the given objects, skipping None, without duplicates, in input order."""
    seen: dict[ObjectRef, None] = {}
    for o in objs:
        if o is not None:
            seen.setdefault(ObjectRef.of(o), None)
    return list(seen)


def describe(obj: Obj) -> str:
    """"Pod ns1/web" for messages, safe on objects of any shape."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    ns, name = meta.get("namespace"), meta.get("name")
    where = f"{ns}/{name}" if isinstance(ns, str) and ns else str(name)
    return f"{obj.get('kind')} {where[:200]}"


def check(obj: Obj) -> str | None:
    """The inventory boundary: None when `obj` (a decoded object with string apiVersion and kind) may enter
    the inventory, else the one recorded problem naming it, the field and what was expected. Sources call
    this before redaction, so nothing downstream meets an object deeper or other-shaped than modelled."""
    found = shapes.problem(obj)
    return None if found is None else f"{describe(obj)}: {found}; left out"


def problem_message(problems: list[str], shown: int = 5) -> str:
    """One collection-log message for the objects of one type left out (count, then the first few)."""
    head = "; ".join(problems[:shown])
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    noun = "object" if len(problems) == 1 else "objects"
    return f"{len(problems)} {noun} unreadable: {head}{more}"


def record_problems(log: list[CollectionEntry], problems: dict[tuple[str, str], list[str]],
                    inv: Inventory) -> None:
    """Mark each type with left-out objects as `error` in the log: controls over it become inconclusive."""
    for (group, kind), found in sorted(problems.items()):
        inv.left_out.extend(found)
        entry = next((e for e in log if e.group == group and e.kind == kind and e.namespace is None), None)
        if entry is None:
            entry = CollectionEntry(group=group, kind=kind, status="error", count=len(inv.objects(kind, group)))
            log.append(entry)
        entry.status = "error"
        entry.message = problem_message(found)


def admit(inv: Inventory, obj: Any, redact: Callable[[Obj], Obj]) -> str | None:
    """Check, redact and add one object a live source read; the recorded problem if it was left out instead.
    An object redaction cannot handle is left out too (named), so nothing unredacted is ever kept."""
    kept = prepare(inv, obj, redact)
    if isinstance(kept, str):
        inv.left_out.append(kept)
        return kept
    inv.add(kept)
    return None


def prepare(inv: Inventory, obj: Any, redact: Callable[[Obj], Obj]) -> Obj | str:
    """`admit` without adding or recording: the checked, redacted and shared object, or why it is left out. The
    live source prepares each page as it arrives (the raw page is then dropped) and adds a list's objects, and
    records its problems, once the whole list is read."""
    if not isinstance(obj, dict):
        return f"a list item that is {type(obj).__name__}, not an object; left out"
    problem = check(obj)
    if problem is None:
        try:
            return inv.shared(redact(obj))
        except Exception as exc:  # a bug in redaction must name the object, not end the run
            problem = f"{describe(obj)}: could not be redacted ({type(exc).__name__}); left out"
    return problem


# --- sharing what replicas repeat (issue 16) -------------------------------------------------------------------------
# The pods of one ReplicaSet carry the same containers, env, volumes and tolerations, and after redaction (env values
# are fingerprints) they are equal: at 10,000 pods the containers were nine tenths of each pod's memory. Objects are
# read-only once admitted (collectors never write into them; tests/test_snapshot_memory.py runs the collectors over
# frozen objects), so an equal part is replaced by the one already kept: the same value, stored once.

# Keys of a pod spec (a Pod's spec, or a template's: Deployment, ReplicaSet, Job, CronJob, DaemonSet, StatefulSet)
_SPEC_KEYS = ("containers", "initContainers", "ephemeralContainers", "volumes", "tolerations", "affinity",
              "topologySpreadConstraints", "securityContext", "nodeSelector", "imagePullSecrets")
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
# and of a Pod's metadata: the same for the replicas of one ReplicaSet (the pod-template-hash label included).
_POD_META_KEYS = ("labels", "annotations", "ownerReferences")
SHARED_MAX = 1 << 17  # parts remembered (about 100 bytes each); past it the table starts again (bounded for live runs)


class Shared:
    """Replaces a part of an object by an equal part already seen. Applied to redacted objects, before they are
    added: a part is the same Python value afterwards (same JSON, same types), so nothing that reads it can tell."""

    def __init__(self) -> None:
        self._seen: dict[bytes, Any] = {}

    def __call__(self, obj: Obj) -> Obj:
        meta = obj.get("metadata")
        if obj.get("kind") == "Pod" and isinstance(meta, dict):
            for key in _POD_META_KEYS:
                if meta.get(key):
                    meta[key] = self.part(meta[key])
        spec = obj.get("spec")
        for _ in range(4):  # Pod: spec; workloads: spec.template.spec; CronJob: spec.jobTemplate.spec.template.spec
            if not isinstance(spec, dict):
                break
            if isinstance(spec.get("containers"), list):
                for key in _SPEC_KEYS:
                    if spec.get(key):
                        spec[key] = self.part(spec[key], each=key in _CONTAINER_LISTS)
                break
            template = spec.get("template")
            template = spec.get("jobTemplate") if template is None else template
            spec = template.get("spec") if isinstance(template, dict) else None
        return obj

    def part(self, value: Any, each: bool = False) -> Any:
        """The part already seen equal to `value`, else `value` (remembered). `each`: when the list as a whole is
        new, its elements are still shared one by one (the same sidecar in different workloads)."""
        if not isinstance(value, (dict, list)):
            return value
        try:
            # The key is the exact JSON, order of keys included (1, 1.0 and true differ). SHA-256, as the pack's
            # manifest relies on; `==` below also tells apart what JSON does not (NaN and null, a date and its text).
            key = hashlib.sha256(orjson.dumps(value)).digest()
        except orjson.JSONEncodeError:  # not JSON-shaped (a YAML mapping with integer keys): kept as it is
            return value
        seen = self._seen.get(key)
        if seen is not None:
            return seen if seen == value else value
        if each and isinstance(value, list):
            value = [self.part(v) for v in value]
        if len(self._seen) >= SHARED_MAX:
            self._seen.clear()
        self._seen[key] = value
        return value
