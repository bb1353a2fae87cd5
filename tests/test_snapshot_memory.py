"""Memory of loading a large snapshot (issue 16): a JSON List is parsed one item at a time, with the same objects and
the same errors as parsing the whole file; redacted parts replicas repeat are kept once; nothing writes into an
inventory object once admitted (what makes that sharing safe)."""

from __future__ import annotations

import copy
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence import inventory
from evidence.collectors import collect_all
from evidence.errors import SnapshotError
from evidence.inventory import Inventory, Shared, SourceInfo, admit
from evidence.redact import Redactor
from evidence.scope import load as load_scope
from evidence.sources import snapshot

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "samples" / "demo-cluster"

# --- strategies ------------------------------------------------------------------------------------------------------

# Strings rich in what a scanner could trip over: brackets, quotes, backslashes, escapes, multi-byte characters.
TRICKY = st.text(alphabet=st.sampled_from([*'[]{}",:\\/ \n\t\x00\x1f', "é", "€", "😀", "\u2028", "a", "0"])
                 | st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | TRICKY)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
                      max_leaves=25)


def pod_like(name: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name or "x", "namespace": "ns"}, "spec": spec}


ITEMS = st.lists(st.builds(pod_like, TRICKY, VALUES) | VALUES, max_size=6)


def serialise(doc: Any, style: int) -> bytes:
    """The forms a List comes in: orjson compact (auditpack snapshot), kubectl's indented JSON, ASCII escapes."""
    if style == 0:
        return orjson.dumps(doc)
    if style == 1:
        return json.dumps(doc, indent=4, ensure_ascii=False).encode()
    if style == 2:
        return json.dumps(doc, ensure_ascii=True, separators=(" , ", " :\t")).encode()
    return ("\r\n " + json.dumps(doc, indent="\t", ensure_ascii=False) + " \n").encode()


def streamed(data: bytes) -> tuple[dict[str, Any], list[Any]] | None:
    split = snapshot._split_list(data)
    if split is None:
        return None
    top, spans = split
    return top, list(snapshot._parsed_items("x.json", data, spans))


def outcome(docs: Any) -> tuple[str, Any]:
    """What _documents gives: the objects and skipped files, or the error message."""
    found = snapshot._Read()
    try:
        objects = list(docs(found))
    except SnapshotError as exc:
        return "error", (exc.message, exc.hint)
    return "ok", (orjson.dumps(objects), found.skipped, found.problems)


def whole_file(name: str, data: bytes) -> Any:
    """The reference: _documents as it was, parsing the whole file first."""
    def docs(found: snapshot._Read) -> Any:
        doc = snapshot._parse_json(name, data)
        if not snapshot._looks_like_object(doc):
            if doc is not None:
                found.skipped.append(name)
            return
        yield from snapshot._unpack(name, doc, 1, found)
    return docs


# --- the split is exact for valid JSON -------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, extra=st.dictionaries(TRICKY, VALUES, max_size=3), first=st.booleans(),
       style=st.integers(min_value=0, max_value=3))
def test_items_split_out_of_any_valid_list_are_the_items_orjson_reads(items: list[Any], extra: dict[str, Any],
                                                                      first: bool, style: int) -> None:
    extra = {k: v for k, v in extra.items() if k != "items"}
    members = {"items": items, "kind": "List", **extra} if first else {"apiVersion": "v1", **extra, "kind": "List",
                                                                       "items": items}
    data = serialise(members, style)
    whole = orjson.loads(data)
    got = streamed(data)
    assert got is not None, "a valid List must take the item-by-item path"
    top, parsed = got
    assert parsed == whole["items"] and orjson.dumps(parsed) == orjson.dumps(whole["items"])
    assert orjson.dumps(top) == orjson.dumps({**whole, "items": []})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, style=st.integers(min_value=0, max_value=3), data=st.data())
def test_a_damaged_list_gives_what_parsing_the_whole_file_gave(items: list[Any], style: int, data: Any) -> None:
    """Truncated, a byte lost, a bracket or quote inserted: the same error (line and message), or the same objects."""
    raw = serialise({"apiVersion": "v1", "kind": "List", "items": items}, style)
    at = data.draw(st.integers(min_value=0, max_value=len(raw)))
    how = data.draw(st.sampled_from(["cut", "drop", "insert"]))
    if how == "cut":
        damaged = raw[:at]
    elif how == "drop":
        damaged = raw[:at] + raw[at + 1:]
    else:
        damaged = raw[:at] + data.draw(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b",", b"\\", b":", b"\xe2"])) \
            + raw[at:]
    assert outcome(lambda found: snapshot._documents("x.json", damaged, found)) == \
        outcome(whole_file("x.json", damaged))


def test_a_syntax_error_deep_in_a_kubectl_list_names_its_line(tmp_path: Path) -> None:
    pods = [pod_like(f"p{i}", {"containers": [{"name": "c", "image": "nginx"}]}) for i in range(5)]
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=4)
    broken = text.replace('"name": "p3"', '"name": "p3",,', 1)
    (tmp_path / "pods.json").write_text(broken)
    with pytest.raises(orjson.JSONDecodeError) as parsed:
        orjson.loads(broken)
    with pytest.raises(SnapshotError) as exc:
        snapshot.load(tmp_path)
    assert exc.value.message == f"pods.json: line {parsed.value.lineno}: invalid JSON: {parsed.value.msg}"
    assert parsed.value.lineno > 40  # inside the fourth item, not the line of the List


def test_depth_limit_is_the_whole_files(tmp_path: Path) -> None:
    """An item is parsed as deep as it sits in the file: one level past orjson's limit is the same clear error."""
    def file_with(levels: int) -> bytes:
        item = b'{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "a"}, ' \
               b'"spec": ' + b"[" * levels + b"]" * levels + b"}"
        return b'{"apiVersion": "v1", "kind": "List", "items": [' + item + b"]}"

    limit = next(n for n in range(1015, 1030) if not _parses(b"[" * n + b"]" * n)) - 1  # orjson's, measured
    fits, too_deep = file_with(limit - 3), file_with(limit - 2)  # file depth: object, items, item, then the levels
    assert _parses(fits) and not _parses(too_deep)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.json").write_bytes(fits)
    inv = snapshot.load(tmp_path / "a")  # read, and the object left out by the shape check
    assert any(p.startswith("Widget a/w: spec") and "nested deeper than" in p for p in inv.left_out)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "w.json").write_bytes(too_deep)
    with pytest.raises(SnapshotError, match=r"^w\.json: nested too deeply to read"):
        snapshot.load(tmp_path / "b")


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def test_invalid_json_is_reported_before_an_earlier_item_without_kind(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"name": "a"}}, '
                                     '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": tru}}]}')
    with pytest.raises(SnapshotError, match=r"^x\.json: line 1: invalid JSON: "):
        snapshot.load(tmp_path)
    (tmp_path / "x.json").write_text('{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"name": "a"}}]}')
    with pytest.raises(SnapshotError, match=r"^x\.json: line 1: object without apiVersion, kind"):
        snapshot.load(tmp_path)
    # A later item as deep as the whole file cannot be read (found only when that item is parsed): that error first.
    levels = 1022  # object, items, item, then 1,022 levels: one past orjson's 1,024
    (tmp_path / "x.json").write_text('{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"name": "a"}}, '
                                     '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}, "spec": '
                                     + "[" * levels + "]" * levels + "}]}")
    with pytest.raises(SnapshotError, match=r"^x\.json: nested too deeply to read"):
        snapshot.load(tmp_path)


def test_a_repeated_items_key_keeps_the_last_as_orjson_does(tmp_path: Path) -> None:
    a, b = (json.dumps(pod_like(n, {})) for n in ("first", "second"))
    (tmp_path / "x.json").write_text(f'{{"kind": "List", "apiVersion": "v1", "items": [{a}], "items": [{b}]}}')
    inv = snapshot.load(tmp_path)
    assert [o["metadata"]["name"] for o in inv.objects("ConfigMap")] == ["second"]


def test_a_list_is_read_item_by_item_not_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole file is never parsed at once, and the load's peak is far below the parsed List's size."""
    env = [{"name": f"FLAG_{i:03d}", "value": f"enabled-for-tenant-{i % 7}-region-eu-north-1"} for i in range(90)]
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"web-{i}", "namespace": f"ns-{i % 4}", "uid": f"u{i}", "resourceVersion": str(i)},
             "spec": {"nodeName": f"node-{i % 3}", "containers": [{"name": "app", "image": "registry.example.com/web:1",
                                                                   "env": env}]}}
            for i in range(400)]
    data = orjson.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
    (tmp_path / "pods.json").write_bytes(data)
    tracemalloc.start()
    whole = orjson.loads(data)
    whole_size = tracemalloc.get_traced_memory()[0]
    del whole
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]

    def refuse(name: str, data: bytes) -> Any:
        raise AssertionError(f"{name} was parsed whole")

    monkeypatch.setattr(snapshot, "_parse_json", refuse)
    try:
        inv = snapshot.load(tmp_path)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert len(inv.objects("Pod")) == 400
    # Parsed whole, the List alone is whole_size (and the file's bytes and the redacted copies come on top).
    assert peak < whole_size / 2, (peak, whole_size)


# --- sharing what replicas repeat ------------------------------------------------------------------------------------

def replica(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": f"u-{name}", "labels": {"app": "web"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "rs"}]},
            "spec": {"nodeName": node, "containers": [
                {"name": "app", "image": "web:1", "env": [{"name": "DB_PASSWORD", "value": "hunter2-hunter2"},
                                                          {"name": "MODE", "value": "blue"}]},
                {"name": "sidecar", "image": "envoy:1"}],
                "volumes": [{"name": "cfg", "configMap": {"name": "web"}}]}}


def test_replicas_share_their_redacted_containers_and_nothing_changes() -> None:
    redactor, shared = Redactor(), Shared()
    plain = [redactor.redact(replica(n, f"node-{n}")) for n in ("a", "b")]
    kept = [shared(redactor.redact(replica(n, f"node-{n}"))) for n in ("a", "b")]
    assert [orjson.dumps(o) for o in kept] == [orjson.dumps(o) for o in plain]
    a, b = kept
    assert a["spec"]["containers"] is b["spec"]["containers"]
    assert a["spec"]["volumes"] is b["spec"]["volumes"]
    assert a["metadata"]["labels"] is b["metadata"]["labels"]
    assert a["spec"] is not b["spec"] and a["spec"]["nodeName"] != b["spec"]["nodeName"]
    assert "hunter2" not in orjson.dumps(kept).decode()
    # Another workload with the same sidecar: the list differs, the sidecar is still kept once.
    other = replica("c", "node-c")
    other["spec"]["containers"][0]["image"] = "api:2"
    c = shared(redactor.redact(other))
    assert c["spec"]["containers"] is not a["spec"]["containers"]
    assert c["spec"]["containers"][1] is a["spec"]["containers"][1]


@pytest.mark.parametrize(("first", "second"), [
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # equal dicts, keys in another order: written differently
    ([1], [1.0]), ([1], [True]), ([0.0], [-0.0]),
    ([math.nan], [None]),  # YAML's .nan: orjson writes it as null
    (["2026-01-01T00:00:00"], [__import__("datetime").datetime(2026, 1, 1)]),  # a YAML timestamp and its text
])
def test_only_identical_values_are_shared(first: Any, second: Any) -> None:
    shared = Shared()
    assert shared.part(first) is first
    assert shared.part(second) is second
    assert shared.part(copy.deepcopy(first)) is first or first != first  # NaN is never equal, even to itself


def test_a_part_that_is_not_json_is_kept_as_it_is() -> None:
    shared = Shared()
    value = {1: "a YAML mapping with an integer key"}
    assert shared.part(value) is value and shared.part({1: "a YAML mapping with an integer key"}) is not value


def test_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "SHARED_MAX", 10)
    shared = Shared()
    first = shared.part([0])
    for i in range(1, 25):
        shared.part([i])
    assert len(shared._seen) <= 10
    assert shared.part([0]) is not first  # forgotten: a new part is kept instead, nothing breaks


def test_live_admission_shares_between_pages() -> None:
    source = {"type": "live", "location": "x", "collected_at": "2026-01-01T00:00:00Z", "cluster": {}}
    inv = Inventory(source=SourceInfo.model_validate(source))
    redactor = Redactor()
    for name in ("a", "b"):
        assert admit(inv, replica(name, "n1"), redactor.redact) is None
    a, b = (inv.get("Pod", "shop", n) for n in ("a", "b"))
    assert a is not None and b is not None and a["spec"]["containers"] is b["spec"]["containers"]


# --- nothing writes into an inventory object -------------------------------------------------------------------------

class FrozenDict(dict):  # type: ignore[type-arg]
    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("write into an inventory object")

    __setitem__ = __delitem__ = setdefault = pop = popitem = update = clear = __ior__ = _refuse  # type: ignore[assignment]


class FrozenList(list):  # type: ignore[type-arg]
    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("write into an inventory object")

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


def frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return FrozenDict({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList([frozen(v) for v in value])
    return value


def test_collectors_never_write_into_inventory_objects() -> None:
    """Shared parts are only safe while nothing writes into an admitted object: every collector runs over the demo
    with objects that refuse writes, and derives the same facts as over plain ones."""
    scope = load_scope(ROOT / "samples" / "scope.yaml")
    plain = snapshot.load(DEMO)
    locked = Inventory(source=plain.source, log=list(plain.log), duplicates=list(plain.duplicates),
                       redactions=dict(plain.redactions), skipped=list(plain.skipped), notes=list(plain.notes),
                       left_out=list(plain.left_out))
    for obj in plain.all_objects():
        locked.add(frozen(obj))
    with pytest.raises(TypeError):
        locked.objects("Pod")[0]["spec"]["containers"].append({})
    as_of = plain.source.collected_at
    assert collect_all(locked, scope, as_of).model_dump(mode="json") == \
        collect_all(plain, scope, as_of).model_dump(mode="json")
