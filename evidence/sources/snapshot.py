"""Reads an offline snapshot: a directory (recursively) or a .tar.gz of YAML/JSON Kubernetes objects.

Accepted: single objects, multi-document YAML, `kind: List` and typed `*List` documents (as `kubectl get
-A -o yaml` and the raw API write them). A `snapshot.json` (written by `auditpack snapshot`) gives the
collection time and cluster identity; a `collection.json` gives the collection log.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from evidence.errors import SnapshotError
from evidence.inventory import (
    ClusterIdentity,
    CollectionEntry,
    Duplicate,
    Inventory,
    ObjectRef,
    SourceInfo,
    group_of,
    key_of,
)
from evidence.kinds import RESOURCE_TYPES
from evidence.redact import Redactor

SUFFIXES = (".yaml", ".yml", ".json")
META_FILES = ("snapshot.json", "collection.json")
SNAPSHOT_FORMAT = "auditpack-snapshot/v1"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: Path, cluster_name: str | None = None) -> Inventory:
    """Read a snapshot into a redacted Inventory. Raises SnapshotError naming the file and line."""
    if not path.exists():
        raise SnapshotError(f"snapshot {path} does not exist", "pass a directory or a .tar.gz of YAML/JSON files")
    files = list(_tar_files(path) if path.is_file() else _dir_files(path))
    if path.is_file() and not files and not _is_tar(path):
        raise SnapshotError(f"{path} is neither a directory nor a .tar.gz archive",
                            "pass the snapshot directory, or an archive made with tar czf")
    meta: dict[str, Any] = {}
    log_entries: list[dict[str, Any]] | None = None
    redactor = Redactor()
    seen: dict[tuple[str, str, str, str], list[str]] = {}
    objects: list[dict[str, Any]] = []
    for name, data in files:
        base = Path(name).name
        if base in META_FILES and Path(name).parent in (Path(), Path()):
            parsed = _parse_json(name, data)
            if base == "snapshot.json":
                meta = parsed if isinstance(parsed, dict) else {}
            else:
                log_entries = parsed if isinstance(parsed, list) else (parsed or {}).get("entries", [])
            continue
        for obj, line in _documents(name, data):
            obj = redactor.redact(obj)
            seen.setdefault(key_of(obj), []).append(f"{name}:{line}")
            objects.append(obj)
    if not objects:
        raise SnapshotError(f"snapshot {path} holds no Kubernetes objects",
                            "point --snapshot at files written by `kubectl get -A -o yaml` or `auditpack snapshot`")

    inventory = Inventory(source=_source_info(path, meta, cluster_name))
    for obj in objects:
        inventory.add(obj)
    for key, places in seen.items():
        if len(places) > 1:
            kept = inventory.get(key[1], key[2] or None, key[3], group=key[0])
            inventory.duplicates.append(Duplicate(object=ObjectRef.of(kept or {}), occurrences=places))
    inventory.log = _collection_log(inventory, log_entries)
    if inventory.source.cluster.kube_system_uid is None:
        ks = inventory.get("Namespace", None, "kube-system", group="")
        if ks:
            inventory.source.cluster.kube_system_uid = (ks.get("metadata") or {}).get("uid")
    inventory.redactions = dict(redactor.counts)
    return inventory


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _dir_files(root: Path) -> Iterator[tuple[str, bytes]]:
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in SUFFIXES:
            yield str(p.relative_to(root)), p.read_bytes()


def _tar_files(path: Path) -> Iterator[tuple[str, bytes]]:
    if not _is_tar(path):
        return
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile() and Path(member.name).suffix.lower() in SUFFIXES:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        # Strip a single top-level directory so metadata files are found either way.
                        parts = Path(member.name).parts
                        rel = str(Path(*parts[1:])) if len(parts) > 1 and _single_root(tar) else member.name
                        yield rel, fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(f"{path}: cannot read archive: {exc}", "recreate it with `tar czf`") from None


def _single_root(tar: tarfile.TarFile) -> bool:
    roots = {Path(m.name).parts[0] for m in tar.getmembers() if Path(m.name).parts}
    return len(roots) == 1 and any(m.isdir() and m.name.rstrip("/") in roots for m in tar.getmembers())


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{name}: line {exc.lineno}: invalid JSON: {exc.msg}",
                            "fix or remove the file; JSON must be one object or list") from None


def _documents(name: str, data: bytes) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield (object, line) for every Kubernetes object in a file, unpacking List documents."""
    if name.lower().endswith(".json"):
        parsed = _parse_json(name, data)
        docs: list[tuple[Any, int]] = [(parsed, 1)]
    else:
        docs = list(_yaml_documents(name, data))
    for doc, line in docs:
        if doc is None:
            continue
        yield from _unpack(name, doc, line)


def _yaml_documents(name: str, data: bytes) -> Iterator[tuple[Any, int]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{name}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield loader.construct_document(node), node.start_mark.line + 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        raise SnapshotError(f"{name}: {where}: malformed YAML: {problem}",
                            "fix the YAML syntax at that position (indentation, quotes, tabs)") from None
    except yaml.YAMLError as exc:
        raise SnapshotError(f"{name}: malformed YAML: {exc}", "fix the YAML syntax") from None
    finally:
        loader.dispose()


def _unpack(name: str, doc: Any, line: int) -> Iterator[tuple[dict[str, Any], int]]:
    if not isinstance(doc, dict):
        raise SnapshotError(f"{name}: line {line}: expected a Kubernetes object (a mapping), found "
                            f"{type(doc).__name__}", "each YAML document must be one object or a List")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        # Typed lists from the raw API (PodList) omit kind/apiVersion on their items.
        item_kind = kind[: -len("List")] if kind != "List" else None
        for item in doc["items"]:
            if isinstance(item, dict):
                if item_kind and "kind" not in item:
                    item = {"kind": item_kind, "apiVersion": doc.get("apiVersion", ""), **item}
                yield _checked(name, item, line), line
            else:
                raise SnapshotError(f"{name}: line {line}: a List item is not an object", "remove the item")
        return
    yield _checked(name, doc, line), line


def _checked(name: str, obj: dict[str, Any], line: int) -> dict[str, Any]:
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        missing.append("metadata.name")
    if missing:
        label = obj.get("kind") or "object"
        raise SnapshotError(f"{name}: line {line}: {label} without {', '.join(missing)}",
                            "every object needs apiVersion, kind and metadata.name, as kubectl writes them")
    return obj


def _source_info(path: Path, meta: dict[str, Any], cluster_name: str | None) -> SourceInfo:
    collected_at = datetime.now(UTC)
    if meta.get("collected_at"):
        try:
            collected_at = datetime.fromisoformat(str(meta["collected_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise SnapshotError(f"{path}/snapshot.json: collected_at {meta['collected_at']!r} is not an "
                                "RFC 3339 timestamp", "write it as 2026-01-31T12:00:00Z") from None
    try:
        cluster = ClusterIdentity.model_validate(meta.get("cluster") or {})
    except ValidationError as exc:
        raise SnapshotError(f"{path}/snapshot.json: invalid cluster identity: {exc.errors()[0]['msg']}",
                            "see the README section on snapshots") from None
    if cluster_name:
        cluster.name = cluster_name
    elif cluster.name == "unknown":
        cluster.name = path.name.removesuffix(".tar.gz").removesuffix(".tgz")
    return SourceInfo(type="snapshot", location=str(path), collected_at=collected_at, cluster=cluster)


def _collection_log(inv: Inventory, entries: list[dict[str, Any]] | None) -> list[CollectionEntry]:
    if entries is not None:
        try:
            return [CollectionEntry.model_validate(e) for e in entries]
        except ValidationError as exc:
            raise SnapshotError(f"collection.json: invalid entry: {exc.errors()[0]['msg']}",
                                "regenerate the snapshot with `auditpack snapshot`") from None
    # Without a log: a kind present in the files was read; a catalogue kind absent is unknown ("absent").
    log = [CollectionEntry(group=g, kind=k, status="ok", count=len(inv.objects(k, g))) for g, k in inv.kinds()]
    present = set(inv.kinds())
    for t in RESOURCE_TYPES:
        if (t.group, t.kind) not in present:
            log.append(CollectionEntry(group=t.group, kind=t.kind, status="absent",
                                       message="not in the snapshot: not collected, or none exist"))
    return log


def write(out: Path, inv: Inventory) -> int:
    """Write a (redacted) inventory as a snapshot this module reads back: <group>/<Kind>.json as `kind: List`,
    plus snapshot.json (time, cluster identity) and collection.json (the collection log). Returns files written."""
    files = 0
    for group, kind in inv.kinds():
        path = out / (group or "core") / f"{kind}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                                       "items": inv.objects(kind, group)}))
        files += 1
    meta = {"format": SNAPSHOT_FORMAT, "collected_at": inv.source.collected_at.isoformat(),
            "cluster": inv.source.cluster.model_dump(), "source": inv.source.location}
    (out / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "collection.json").write_text(json.dumps([e.model_dump() for e in inv.log], indent=2) + "\n")
    return files + 2


__all__ = ["group_of", "load", "write"]
