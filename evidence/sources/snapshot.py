"""Reads an offline snapshot: a directory (recursively) or a .tar.gz of YAML/JSON Kubernetes objects.

Accepted: single objects, multi-document YAML, `kind: List` and typed `*List` documents (as `kubectl get
-A -o yaml` and the raw API write them). A `snapshot.json` (written by `auditpack snapshot`) gives the
collection time and cluster identity; a `collection.json` gives the collection log.
"""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from evidence import yamlfile
from evidence.errors import SnapshotError
from evidence.inventory import (
    ClusterIdentity,
    CollectionEntry,
    Duplicate,
    Inventory,
    ObjectRef,
    Shared,
    SourceInfo,
    check,
    describe,
    group_of,
    key_of,
    record_problems,
)
from evidence.kinds import RESOURCE_TYPES
from evidence.redact import Redactor

SUFFIXES = (".yaml", ".yml", ".json")
META_FILES = ("snapshot.json", "collection.json")
SNAPSHOT_FORMAT = "auditpack-snapshot/v1"

# Bounds on what a snapshot may make us read (issue 11: tar bombs). A 10,000-pod `kubectl get -o json` is about
# 150 MB; a whole cluster's snapshot a few hundred MB.
MAX_FILE_BYTES = 512 * 2**20
MAX_TOTAL_BYTES = 2**30  # decompressed, all members or files together
MAX_MEMBERS = 50_000  # archive members or directory entries
# Control-plane configuration files (an audit Policy, an EncryptionConfiguration) are files on the nodes, not API
# objects: copied into a snapshot as they are, they carry no metadata, and take the file's name instead.
CONFIG_FILE_GROUPS = ("audit.k8s.io", "apiserver.config.k8s.io", "apiserver.k8s.io", "kubelet.config.k8s.io")
_LIMIT_HINT = "this is far beyond a real cluster's snapshot; split it, or check where it came from"


@dataclass
class _Read:
    """What reading the files found besides objects: files skipped, and objects left out per type."""

    skipped: list[str] = field(default_factory=list)
    problems: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def problem(self, obj: dict[str, Any], text: str) -> None:
        self.problems.setdefault((group_of(str(obj["apiVersion"])), str(obj["kind"])), []).append(text)


def load(path: Path, cluster_name: str | None = None) -> Inventory:
    """Read a snapshot into a redacted Inventory. Raises SnapshotError naming the file and line.

    Files that hold no Kubernetes object (a README.json, a Helm values file) are skipped and listed in
    `inventory.notes`; an object of the wrong shape is left out and recorded as an `error` of its type."""
    if not path.exists():
        raise SnapshotError(f"snapshot {path} does not exist", "pass a directory or a .tar.gz of YAML/JSON files")
    found = _Read()
    files = _tar_files(path) if path.is_file() else _dir_files(path, found)
    if path.is_file() and not files and not _is_tar(path):
        raise SnapshotError(f"{path} is neither a directory nor a .tar.gz archive",
                            "pass the snapshot directory, or an archive made with tar czf")
    meta: dict[str, Any] = {}
    log_entries: list[dict[str, Any]] | None = None
    redactor = Redactor()
    shared = Shared()  # the parts replicas repeat, kept once (issue 16)
    seen: dict[tuple[str, str, str, str], list[str]] = {}
    objects: list[dict[str, Any]] = []
    files.reverse()
    data = b""
    while files:  # each file's bytes are released once parsed: at 50,000 pods they are 740 MB on top of the objects
        name, source = files.pop()
        # A directory's files are read one at a time, here, not all at once when listed (their sizes were capped then).
        data = source if isinstance(source, bytes) else source.read_bytes()
        del source
        base = Path(name).name
        if base in META_FILES and Path(name).parent == Path():
            parsed = _parse_json(name, data)
            if base == "snapshot.json":
                meta = parsed if isinstance(parsed, dict) else {}
            else:
                log_entries = parsed if isinstance(parsed, list) else (parsed or {}).get("entries", [])
            continue
        for obj, line in _documents(name, data, found):
            problem = check(obj)
            if problem is None:
                try:
                    obj = shared(redactor.redact(obj))
                except Exception as exc:  # a redaction bug must name the object and never let it through
                    problem = f"{describe(obj)}: could not be redacted ({type(exc).__name__}); left out"
            if problem is not None:
                found.problem(obj, f"{problem} ({name}:{line})")
                continue
            seen.setdefault(key_of(obj), []).append(f"{name}:{line}")
            objects.append(obj)
    del data
    if not objects and not found.problems:
        skipped = f" (skipped, not Kubernetes objects: {', '.join(found.skipped)})" if found.skipped else ""
        raise SnapshotError(f"snapshot {path} holds no Kubernetes objects{skipped}",
                            "point --snapshot at files written by `kubectl get -A -o yaml` or `auditpack snapshot`")

    inventory = Inventory(source=_source_info(path, meta, cluster_name))
    for obj in objects:
        inventory.add(obj)
    for key, places in seen.items():
        if len(places) > 1:
            kept = inventory.get(key[1], key[2] or None, key[3], group=key[0])
            inventory.duplicates.append(Duplicate(object=ObjectRef.of(kept or {}), occurrences=places))
    inventory.log = _collection_log(inventory, log_entries)
    record_problems(inventory.log, found.problems, inventory)
    if found.skipped:
        inventory.skipped = found.skipped
        inventory.notes.append(f"skipped {len(found.skipped)} file(s) that hold no Kubernetes object: "
                               + ", ".join(found.skipped))
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


def _dir_files(root: Path, found: _Read) -> list[tuple[str, bytes | Path]]:
    """The snapshot's YAML/JSON files (paths, read by the caller one at a time), size-capped; symlinks that lead
    outside the snapshot are not followed."""
    top = root.resolve()
    out: list[tuple[str, bytes | Path]] = []
    total = entries = 0
    for p in sorted(root.rglob("*")):
        entries += 1
        if entries > MAX_MEMBERS:
            raise SnapshotError(f"snapshot {root} holds more than {MAX_MEMBERS:,} files and directories",
                                _LIMIT_HINT)
        if p.suffix.lower() not in SUFFIXES or not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.is_symlink() and not p.resolve().is_relative_to(top):
            found.skipped.append(f"{rel} (a symlink to outside the snapshot)")
            continue
        size = p.stat().st_size
        total += size
        _check_size(rel, size, total, root)
        out.append((rel, p))
    return out


def _check_size(name: str, size: int, total: int, where: Path) -> None:
    if size > MAX_FILE_BYTES:
        raise SnapshotError(f"{where}: {name} is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for one file",
                            _LIMIT_HINT)
    if total > MAX_TOTAL_BYTES:
        raise SnapshotError(f"{where}: the snapshot exceeds {MAX_TOTAL_BYTES:,} bytes (at {name})", _LIMIT_HINT)


def _tar_files(path: Path) -> list[tuple[str, bytes | Path]]:
    """Members in one streaming pass (a compressed archive cannot seek back cheaply), every member's declared
    size counted against the caps before it is read."""
    if not _is_tar(path):
        return []
    out: list[tuple[str, bytes | Path]] = []
    roots: set[str] = set()
    dirs: set[str] = set()
    total = members = 0
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                members += 1
                if members > MAX_MEMBERS:
                    raise SnapshotError(f"{path}: the archive holds more than {MAX_MEMBERS:,} members",
                                        _LIMIT_HINT)
                name = member.name.removeprefix("./")
                if name.strip("/."):
                    roots.add(name.split("/", 1)[0])
                if member.isdir():
                    dirs.add(name.rstrip("/"))
                total += max(member.size, 0)
                if member.isfile() and name.lower().endswith(SUFFIXES):
                    _check_size(member.name, member.size, total, path)
                    fh = tar.extractfile(member)
                    if fh is not None:
                        out.append((member.name, fh.read(MAX_FILE_BYTES + 1)))
                elif total > MAX_TOTAL_BYTES:
                    _check_size(member.name, 0, total, path)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SnapshotError(f"{path}: cannot read archive: {exc}", "recreate it with `tar czf`") from None
    # Strip a single top-level directory so metadata files are found either way.
    if len(roots) == 1 and roots <= dirs:
        out = [(str(Path(*Path(n).parts[1:])) if len(Path(n).parts) > 1 else n, d) for n, d in out]
    return sorted(out, key=lambda item: item[0])


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "recursion" in exc.msg.lower() or "depth limit" in exc.msg.lower():
            raise SnapshotError(f"{name}: nested too deeply to read (over 1,000 levels)",
                                "no Kubernetes object nests this deep; check where the file came from") from None
        raise SnapshotError(f"{name}: line {exc.lineno}: invalid JSON: {exc.msg}",
                            "fix or remove the file; JSON must be one object or list") from None


def _documents(name: str, data: bytes, found: _Read) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield (object, line) for every Kubernetes object in a file, unpacking List documents. A file none of whose
    documents looks like a Kubernetes object (see _looks_like_object) is listed in `found.skipped`."""
    if name.lower().endswith(".json"):
        split = _split_list(data)
        if split is not None:  # a JSON List: its items are parsed one at a time (issue 16)
            yield from _streamed(name, data, found, *split)
            return
        parsed = _parse_json(name, data)
        docs: list[tuple[Any, int]] = [(parsed, 1)]
    else:
        docs = list(_yaml_documents(name, data))
    objects = [(doc, line) for doc, line in docs if _looks_like_object(doc)]
    if not objects and any(doc is not None for doc, _ in docs):
        found.skipped.append(name)
    for doc, line in objects:
        yield from _unpack(name, doc, line, found)


# --- a large JSON List, one item at a time (issue 16) ---------------------------------------------------------------
# orjson.loads of a 10,000-pod `kubectl get -o json` builds all 10,000 pods before the first is redacted: the bytes, the
# whole parsed list and the redacted objects existed together (994 MB at the peak for a 117 MB file). Instead the
# top-level object is scanned for its `items` array, each item's byte range is found, and each item is parsed, redacted
# and kept (or dropped) before the next one is built. Nothing here decides what the file means: every byte range is
# parsed by orjson in strict mode, the top-level object without its items too, so a range that is not exactly one
# JSON value fails to parse and the whole file goes through orjson.loads as before, with the same error (line and
# message). The scanner only has to be right for valid JSON to take the fast path; it never has to be right about
# invalid JSON, which always ends in the old path.

_BLANK = re.compile(rb"[ \t\n\r]*+")
_KEY = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_TRAILING = "unexpected content after document"  # orjson: a complete value, followed by more than whitespace
_FIRST_WINDOW = 4096  # bytes first given to orjson to find where a value ends, when no item size is known yet


def _blanks(data: bytes, pos: int) -> int:
    """The offset of the first non-blank byte from `pos` (JSON's blanks: space, tab, CR, LF)."""
    found = _BLANK.match(data, pos)
    return found.end() if found else pos


def _split_list(data: bytes) -> tuple[dict[str, Any], list[tuple[int, int]]] | None:
    """(the top-level object with `"items": []`, the byte range of each item) when `data` is a JSON object whose
    `items` is an array; None for anything else, or anything the scanner is unsure of (a repeated `items` key,
    malformed JSON): the caller then parses the whole file as before."""
    pos = _blanks(data, 0)
    if data[pos:pos + 1] != b"{":
        return None
    pos = _blanks(data, pos + 1)
    items: tuple[int, int, list[tuple[int, int]]] | None = None
    while True:
        key = _KEY.match(data, pos)
        if key is None:
            return None
        try:
            name = orjson.loads(key.group())
        except orjson.JSONDecodeError:
            return None
        pos = _blanks(data, key.end())
        if data[pos:pos + 1] != b":":
            return None
        pos = _blanks(data, pos + 1)
        if name == "items":
            if items is not None or data[pos:pos + 1] != b"[":  # orjson keeps the last of repeated keys
                return None
            found = _array_items(data, pos)
            if found is None:
                return None
            end, spans = found
            items = (pos, end, spans)
            pos = _blanks(data, end)
        else:
            end_of_value = _value_end(data, pos, _FIRST_WINDOW)
            if end_of_value is None:
                return None
            pos = end_of_value
        if data[pos:pos + 1] == b",":
            pos = _blanks(data, pos + 1)
            continue
        if data[pos:pos + 1] != b"}" or items is None:
            return None
        break
    start, end, spans = items
    try:  # everything but the items, strictly (trailing bytes after the object included)
        top = orjson.loads(data[:start] + b"[]" + data[end:])
    except orjson.JSONDecodeError:
        return None
    return (top, spans) if isinstance(top, dict) and top.get("items") == [] else None


def _array_items(data: bytes, pos: int) -> tuple[int, list[tuple[int, int]]] | None:
    """For the array opening at `pos`: the offset after its `]` and each element's byte range."""
    spans: list[tuple[int, int]] = []
    pos = _blanks(data, pos + 1)
    if data[pos:pos + 1] == b"]":
        return pos + 1, spans
    hint = _FIRST_WINDOW
    while True:
        end = _value_end(data, pos, hint)
        if end is None:
            return None
        spans.append((pos, end))
        hint = 2 * (end - pos) + 512
        after = data[end:end + 1]
        if after == b"]":
            return end + 1, spans
        if after != b",":
            return None
        pos = _blanks(data, end + 1)


def _value_end(data: bytes, pos: int, hint: int) -> int | None:
    """Where the JSON value starting at `pos` ends: the offset of the first non-blank byte after it. orjson finds
    it at C speed: given a window that holds the value and more, it reports where the rest starts (in characters) as
    "unexpected content after document". The window starts at `hint` bytes (about twice the previous item: orjson
    checks the whole window's UTF-8, so a window far larger than the items would make small items slow) and grows
    fourfold while it is too short. None when no window gives that answer (malformed, or no content after it)."""
    view = memoryview(data)
    size, total = max(hint, 256), len(data)
    while True:
        end = min(pos + size, total)
        while end < total and 0x80 <= data[end] < 0xC0:  # never cut a UTF-8 sequence (orjson checks the whole input)
            end -= 1
        try:
            orjson.loads(view[pos:end])
        except orjson.JSONDecodeError as exc:
            if exc.msg == _TRAILING and exc.pos > 0:
                if data[pos:pos + exc.pos].isascii():  # then characters are bytes
                    return pos + exc.pos
                try:
                    return pos + len(str(view[pos:end], "utf-8")[:exc.pos].encode("utf-8"))
                except UnicodeError:
                    return None
        # Another error, or a window holding the value and blanks only: a longer window tells more.
        if end == total:
            return None
        size *= 4


def _streamed(name: str, data: bytes, found: _Read, top: dict[str, Any],
              spans: list[tuple[int, int]]) -> Iterator[tuple[dict[str, Any], int]]:
    """_documents for a JSON file split by _split_list: the same objects, errors and order as parsing it whole."""
    if not _looks_like_object(top):
        found.skipped.append(name)
        return
    kind = top.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List")):
        top = _parse_json(name, data)  # an object that merely has an `items` field: read whole, as before
        yield from _unpack(name, top, 1, found)
        return
    try:
        yield from _unpack(name, top, 1, found, _parsed_items(name, data, spans))
    except SnapshotError:
        _parse_json(name, data)  # a file that is not JSON says so first, as when the whole file was parsed first
        raise


def _parsed_items(name: str, data: bytes, spans: list[tuple[int, int]]) -> Iterator[Any]:
    """Each item, parsed when the previous one has been dealt with."""
    for i, (start, end) in enumerate(spans):
        try:
            # Inside `[[...]]` an item sits as deep as in the file ({"items": [item]}): the same depth limit applies.
            item = orjson.loads(b"[[" + data[start:end] + b"]]")[0][0]
        except orjson.JSONDecodeError:
            whole = _parse_json(name, data)  # raises the whole file's error, line and message as before
            rest = whole.get("items") if isinstance(whole, dict) else None
            yield from (rest[i:] if isinstance(rest, list) else [])
            return
        yield item


def _looks_like_object(doc: Any) -> bool:
    """apiVersion, or kind with metadata or items. A Helm values file may well have a top-level `kind:`
    (a chart's "Deployment or DaemonSet" switch) and is still not an object."""
    return isinstance(doc, dict) and ("apiVersion" in doc or ("kind" in doc and ("metadata" in doc or "items" in doc)))


def _yaml_documents(name: str, data: bytes) -> Iterator[tuple[Any, int]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{name}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    try:
        yield from yamlfile.documents(text)
    except yamlfile.YAMLBoundError as exc:
        raise SnapshotError(f"{name}: line {exc.line}: {exc.message}",
                            "no Kubernetes object needs this; check where the file came from") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        if "maximum nesting depth" in problem:
            raise SnapshotError(f"{name}: {where}: nested deeper than libyaml reads (1,000 levels)",
                                "no Kubernetes object nests this deep; check where the file came from") from None
        raise SnapshotError(f"{name}: {where}: malformed YAML: {problem}",
                            "fix the YAML syntax at that position (indentation, quotes, tabs)") from None
    except yaml.YAMLError as exc:
        raise SnapshotError(f"{name}: malformed YAML: {exc}", "fix the YAML syntax") from None


def _unpack(name: str, doc: dict[str, Any], line: int, found: _Read,
            items: Iterable[Any] | None = None) -> Iterator[tuple[dict[str, Any], int]]:
    """The objects of one document; `items`, when given, are the List's items parsed one at a time."""
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        # Typed lists from the raw API (PodList) omit kind/apiVersion on their items.
        item_kind = kind[: -len("List")] if kind != "List" else None
        for item in doc["items"] if items is None else items:
            if isinstance(item, dict):
                if item_kind and "kind" not in item:
                    item = {"kind": item_kind, "apiVersion": doc.get("apiVersion", ""), **item}
                checked = _checked(name, item, line, found)
                if checked is not None:
                    yield checked, line
            else:
                raise SnapshotError(f"{name}: line {line}: a List item is not an object", "remove the item")
        return
    checked = _checked(name, doc, line, found)
    if checked is not None:
        yield checked, line


def _checked(name: str, obj: dict[str, Any], line: int, found: _Read) -> dict[str, Any] | None:
    """The object, or None when it has apiVersion and kind but no usable metadata (recorded as a problem).
    Without apiVersion or kind nothing says which type it is: that file is rejected."""
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    if missing:
        label = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
        raise SnapshotError(f"{name}: line {line}: {label} without {', '.join(missing)}",
                            "every object needs apiVersion, kind and metadata.name, as kubectl writes them")
    meta = obj.get("metadata")
    if group_of(obj["apiVersion"]) in CONFIG_FILE_GROUPS and (meta is None or isinstance(meta, dict)) \
            and not (meta or {}).get("name"):
        obj = {**obj, "metadata": {**(meta or {}), "name": Path(name).stem}}
        meta = obj["metadata"]
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        found.problem(obj, f"{obj['kind']} without metadata.name; left out ({name}:{line})")
        return None
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
