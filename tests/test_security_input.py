"""Hostile input (issue 11 section 4, issue 13 "Reading input"): every attack ends in exit 2 with one clear line,
or in a recorded problem naming the object, never in exit 4, a hang or unbounded memory."""

from __future__ import annotations

import copy
import gzip
import io
import json
import resource
import tarfile
import time
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from fakeapi import FakeAPIServer
from pydantic import BaseModel

from evidence import cel, shapes, yamlfile
from evidence.collectors import collect_all
from evidence.controls import load_control
from evidence.errors import ScopeError, SnapshotError
from evidence.evaluate import evaluate_subject
from evidence.scope import Scope
from evidence.scope import load as load_scope
from evidence.sources import live, snapshot

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, uid: ns-shop}\n"
BOMB = "".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
    *(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
])


def write(root: Path, rel: str, text: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node["x"] = {}
        node = node["x"]
    return root


# --- alias bombs ------------------------------------------------------------------------------------------

def test_billion_laughs_in_a_snapshot_is_refused_fast_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS)
    write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: shop}\ndata:\n"
          + "".join("  " + line + "\n" for line in BOMB.splitlines()))
    started = time.monotonic()
    with pytest.raises(SnapshotError) as exc:
        snapshot.load(tmp_path)
    assert time.monotonic() - started < 5
    assert "cm.yaml: line" in exc.value.message and "alias bomb" in exc.value.message
    assert "387,420,489" not in exc.value.message  # counted, never expanded: 9**9 leaves are not built


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "r.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: r, namespace: a}\ndata: &d\n"
          "  self: *d\n")
    with pytest.raises(SnapshotError, match=r"r\.yaml: line \d+: an alias refers to a node that contains it"):
        snapshot.load(tmp_path)


def test_alias_bomb_in_a_scope_file_is_an_input_error(tmp_path: Path) -> None:
    scope = write(tmp_path, "scope.yaml", BOMB)
    with pytest.raises(ScopeError, match="alias bomb"):
        load_scope(scope)
    # Legitimate aliases (a shared label set) still read, and still as safe_load reads them.
    assert yamlfile.safe_loads("base: &b {a: 1}\nx: *b\nwhen: 2026-01-31\n")["when"].isoformat() == "2026-01-31"


def test_alias_bomb_through_the_cli_exits_2_with_one_line(cli, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    write(snap, "bomb.yaml", BOMB)
    result = cli("collect", "--snapshot", snap, "--out", tmp_path / "pack")
    assert result.code == 2, result.err
    assert "bomb.yaml: line 1: aliases expand" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 2  # the error and its hint
    assert not (tmp_path / "pack").exists()


# --- archives and directories ----------------------------------------------------------------------------

def _tar(path: Path, members: list[tuple[str, bytes]], declared: dict[str, int] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if declared:  # rewrite a header to claim more bytes than follow (a bomb's header, without the 3 GB)
        raw = bytearray(gzip.decompress(path.read_bytes()))
        for name, size in declared.items():
            at = raw.find(name.encode())
            raw[at + 124:at + 136] = f"{size:011o}\0".encode()
            raw[at + 148:at + 156] = b" " * 8
            raw[at + 148:at + 155] = f"{sum(raw[at:at + 512]):06o}\0".encode()
        path.write_bytes(gzip.compress(bytes(raw)))
    return path


def test_archive_member_declaring_3_gib_is_refused_before_reading(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bomb.tar.gz", [("ns.yaml", NS.encode()), ("zeros.yaml", b"a: 1\n")],
                   declared={"zeros.yaml": 3 * 2**30})
    started = time.monotonic()
    with pytest.raises(SnapshotError, match=r"zeros\.yaml is 3,221,225,472 bytes, over the 536,870,912-byte limit"):
        snapshot.load(archive)
    assert time.monotonic() - started < 5


def test_archive_caps_total_size_and_member_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = [("ns.yaml", NS.encode())] + [(f"cm{i}.yaml", (f"apiVersion: v1\nkind: ConfigMap\nmetadata: "
                                                          f"{{name: c{i}, namespace: shop}}\n").encode())
                                           for i in range(40)]
    archive = _tar(tmp_path / "many.tar.gz", members)
    assert len(snapshot.load(archive).objects("ConfigMap", "")) == 40
    monkeypatch.setattr(snapshot, "MAX_MEMBERS", 30)
    with pytest.raises(SnapshotError, match="more than 30 members"):
        snapshot.load(archive)
    monkeypatch.setattr(snapshot, "MAX_MEMBERS", 100_000)
    monkeypatch.setattr(snapshot, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(SnapshotError, match="exceeds 1,000 bytes"):
        snapshot.load(archive)


def test_many_small_members_are_read_in_one_pass(tmp_path: Path) -> None:
    # Sorting members and then extracting each one made gzip seek back and decompress again: quadratic.
    members = [(f"snap/ns/cm{i:05}.yaml", (f"apiVersion: v1\nkind: ConfigMap\nmetadata: "
                                           f"{{name: c{i}, namespace: shop}}\ndata: {{k: v}}\n").encode())
               for i in range(5000)]
    archive = _tar(tmp_path / "small.tar.gz", members)
    started = time.monotonic()
    inv = snapshot.load(archive)
    elapsed = time.monotonic() - started
    assert len(inv.objects("ConfigMap", "")) == 5000
    assert elapsed < 30, f"5,000 small members took {elapsed:.1f} s"


def test_directory_caps_file_size_and_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "ns.yaml", NS)
    write(tmp_path, "big.yaml", "# padding\n" * 200 + NS.replace("shop", "other"))
    monkeypatch.setattr(snapshot, "MAX_FILE_BYTES", 1000)
    with pytest.raises(SnapshotError, match=r"big\.yaml is 2,\d{3} bytes, over the 1,000-byte limit for one file"):
        snapshot.load(tmp_path)
    monkeypatch.setattr(snapshot, "MAX_FILE_BYTES", 10_000)
    monkeypatch.setattr(snapshot, "MAX_TOTAL_BYTES", 2100)
    with pytest.raises(SnapshotError, match="exceeds 2,100 bytes"):
        snapshot.load(tmp_path)


def test_symlink_out_of_the_snapshot_is_not_read(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.yaml", NS.replace("shop", "leaked"))
    snap = tmp_path / "snap"
    write(snap, "ns.yaml", NS)
    (snap / "link.yaml").symlink_to(outside)
    inv = snapshot.load(snap)
    assert inv.get("Namespace", None, "leaked") is None
    assert inv.skipped == ["link.yaml (a symlink to outside the snapshot)"]


# --- nesting -------------------------------------------------------------------------------------------

def test_json_600_deep_is_a_recorded_problem_naming_the_object(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS)
    deep = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "deep", "namespace": "shop"},
            "spec": nested(600)}
    write(tmp_path, "deep.json", json.dumps(deep))
    write(tmp_path, "deep.yaml", json.dumps({**deep, "metadata": {"name": "deep-yaml", "namespace": "shop"}}))
    inv = snapshot.load(tmp_path)
    entry = inv.status("Widget", "example.com")
    assert entry.status == "error"
    assert "Widget shop/deep: spec.x.x" in (entry.message or "") and "nested deeper than 100 levels" in entry.message
    assert any(p.startswith("Widget shop/deep-yaml: ") for p in inv.left_out)
    assert inv.get("Namespace", None, "shop") is not None  # the run goes on with the rest


def test_json_and_yaml_past_the_parsers_depth_are_one_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "a/ns.yaml", NS)
    write(tmp_path, "a/deep.json", '{"apiVersion": "v1", "kind": "X", "spec": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(SnapshotError, match=r"deep\.json: nested too deeply to read"):
        snapshot.load(tmp_path / "a")
    write(tmp_path, "b/ns.yaml", NS)
    write(tmp_path, "b/deep.yaml", "spec: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SnapshotError, match=r"deep\.yaml: line 1, column \d+: nested deeper than libyaml reads"):
        snapshot.load(tmp_path / "b")


def test_live_custom_resource_300_deep_is_recorded_and_snapshot_goes_on(cli, tmp_path: Path) -> None:
    deep = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "deep", "namespace": "shop", "resourceVersion": "7"}, "spec": nested(300)}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "uid": "u1"}}
    with FakeAPIServer(objects=[ns, deep]) as srv:
        kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
        inv = live.LiveSource(live.connect(kubeconfig), sleep=lambda _s: None).load()
        entry = inv.status("PeerAuthentication", "security.istio.io")
        assert entry.status == "error"
        assert entry.message and "PeerAuthentication shop/deep: spec.x.x" in entry.message
        assert inv.get("Namespace", None, "shop") is not None
        result = cli("snapshot", "--kubeconfig", kubeconfig, "--out", tmp_path / "snap")
    assert result.code == 3, result.err  # incomplete, with the object named; never 4
    assert "PeerAuthentication shop/deep" in result.out
    log = json.loads((tmp_path / "snap" / "collection.json").read_text())
    assert any(e["kind"] == "PeerAuthentication" and e["status"] == "error" for e in log)


# --- reading as the API server reads ----------------------------------------------------------------------

def test_keys_timestamps_and_value_tag_read_as_the_api_server_serves_them(tmp_path: Path) -> None:
    # Istio's portLevelMtls is keyed by port number (istio.io security reference: map<uint32, MTLS>); written
    # unquoted, `9090:` is an integer key to YAML. sigs.k8s.io/yaml (yaml.go, convertToJSONableObject) turns
    # int and bool keys into strings, so the API server serves "9090" and "true" (`on:` is a YAML 1.1 bool).
    write(tmp_path, "pa.yaml", """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: ratings
  namespace: shop
  labels: {on: "yes", 1: "one"}
  creationTimestamp: 2026-01-31T10:00:00Z
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9090: {mode: DISABLE}
""")
    # A prometheus-operator CRD schema holds a bare `=` (an enum of operators): YAML 1.1's value tag, a string.
    write(tmp_path, "crd.yaml", """apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: ops, namespace: shop}
spec:
  groups:
  - name: g
    rules:
    - alert: Watchdog
      expr: vector(1)
      labels: {op: =, since: 2026-01-31, at: 12:30}
""")
    write(tmp_path, "ns.yaml", NS)
    inv = snapshot.load(tmp_path)
    pa = inv.get("PeerAuthentication", "shop", "ratings")
    assert pa is not None
    assert pa["spec"]["portLevelMtls"] == {"9090": {"mode": "DISABLE"}}
    assert pa["metadata"]["labels"] == {"true": "yes", "1": "one"}
    assert pa["metadata"]["creationTimestamp"] == "2026-01-31T10:00:00Z"
    rule = inv.get("PrometheusRule", "shop", "ops")
    assert rule is not None
    assert rule["spec"]["groups"][0]["rules"][0]["labels"] == {"op": "=", "since": "2026-01-31", "at": "12:30"}
    facts = collect_all(inv, Scope(), shapes_as_of())
    assert facts.subjects  # the collectors read it without "Dict key must be str"


def shapes_as_of() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 11, 21, 6, tzinfo=UTC)


def test_unquoted_timestamps_do_not_change_a_verdict(tmp_path: Path) -> None:
    # cert-manager writes status.notAfter as an RFC 3339 string; a hand-edited snapshot leaves it unquoted.
    # Read as a datetime it compared differently from the quoted one; both must give the same facts.
    body = """apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: web, namespace: shop, creationTimestamp: {ts}}}
spec: {{secretName: web-tls, dnsNames: [shop.example.com]}}
status: {{notAfter: {ts}, renewalTime: {ts}}}
"""
    for variant, ts in (("quoted", '"2026-12-01T00:00:00Z"'), ("plain", "2026-12-01T00:00:00Z")):
        write(tmp_path / variant, "c.yaml", body.format(ts=ts))
        write(tmp_path / variant, "ns.yaml", NS)
    quoted, plain = snapshot.load(tmp_path / "quoted", "c"), snapshot.load(tmp_path / "plain", "c")
    assert plain.get("Certificate", "shop", "web") == quoted.get("Certificate", "shop", "web")
    assert collect_all(plain, Scope(), shapes_as_of()).model_dump() == \
        collect_all(quoted, Scope(), shapes_as_of()).model_dump()


def test_files_that_are_not_objects_are_skipped_and_listed(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NS)
    write(tmp_path, "README.json", json.dumps({"title": "dump of prod", "taken": "2026-11-20"}))
    write(tmp_path, "helm/values.yaml", "kind: DaemonSet\nreplicaCount: 2\nimage: {repository: nginx, tag: 1.27}\n")
    write(tmp_path, "PROVENANCE.yaml", "- collected by ops\n- from prod-eu\n")
    inv = snapshot.load(tmp_path)
    assert inv.skipped == ["PROVENANCE.yaml", "README.json", "helm/values.yaml"]
    assert inv.notes == ["skipped 3 file(s) that hold no Kubernetes object: PROVENANCE.yaml, README.json, "
                         "helm/values.yaml"]
    # A control-plane file copied in as it is (no metadata) is read, named after the file.
    write(tmp_path, "enc.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
          "resources: [{resources: [secrets], providers: [{identity: {}}]}]\n")
    assert snapshot.load(tmp_path).get("EncryptionConfiguration", None, "enc") is not None
    # An object with apiVersion and kind but no name is not skipped silently: it is a recorded problem.
    write(tmp_path, "nameless.yaml", "apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\n")
    entry = snapshot.load(tmp_path).status("Service", "")
    assert entry.status == "error" and "Service without metadata.name; left out (nameless.yaml:1)" in entry.message


# --- schema-invalid objects at the inventory boundary -------------------------------------------------------

def _sample(annotation: Any) -> Any:
    """A valid value of every modelled field (strings "a", numbers 1, true)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return _sample(next(a for a in get_args(annotation) if a is not type(None)))
    if origin is list:
        return [_sample(get_args(annotation)[0])]
    if origin is dict:
        return {"k": _sample(get_args(annotation)[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {f.alias or n: _sample(f.annotation) for n, f in annotation.model_fields.items()}
    return {str: "a", int: 1, bool: True, float: 1.0}.get(annotation, {})


def _paths(model: type[BaseModel], prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every field path of a model (lists at index 0, maps at key "k") with its annotation."""
    out = []
    for n, f in model.model_fields.items():
        path = (*prefix, f.alias or n)
        out.append((path, f.annotation))
        out.extend(_inner(f.annotation, path))
    return out


def _inner(annotation: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any]]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [p for a in get_args(annotation) if a is not type(None) for p in _inner(a, path)]
    if origin is list:
        return _inner(get_args(annotation)[0], (*path, 0))
    if origin is dict:
        return _inner(get_args(annotation)[1], (*path, "k"))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _paths(annotation, path)
    return []


def _wrong(annotation: Any) -> Any:
    union = get_origin(annotation) in (Union, types.UnionType)
    types_ = [a for a in get_args(annotation) if a is not type(None)] if union else [annotation]
    return "x" if any(get_origin(t) is list for t in types_) else ["x"]


def _label(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _objects() -> list[tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]]]]:
    """Per modelled kind: a valid object with every modelled field, and one copy per field with its type wrong."""
    out = []
    for (group, kind), model in sorted(shapes.MODELS.items()):
        api = f"{group}/v1" if group else "v1"
        base = {**_sample(model), "apiVersion": api, "kind": kind}
        stem = f"{kind.lower()}-{(group or 'core').split('.')[0]}"  # NetworkPolicy and Gateway exist twice
        base["metadata"] = {**base["metadata"], "name": f"{stem}-valid", "namespace": "shop"}
        corrupt = []
        for path, annotation in _paths(model):
            if path == ("metadata", "name") or path[:2] == ("metadata", "namespace"):
                continue
            obj = copy.deepcopy(base)
            obj["metadata"]["name"] = f"{stem}-{len(corrupt)}"
            node = obj
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = _wrong(annotation)
            corrupt.append((_label(path), obj))
        out.append((f"{group or 'core'}/{kind}", base, corrupt))
    return out


def test_every_modelled_field_with_a_wrong_type_is_named() -> None:
    cases = 0
    for kind, base, corrupt in _objects():
        assert shapes.problem(base) is None, (kind, shapes.problem(base))
        for label, obj in corrupt:
            found = shapes.problem(obj)
            assert found is not None and found.startswith(f"{label}: expected "), (kind, label, found)
            cases += 1
    assert cases > 500  # Pod, workloads, Service, Ingress, NetworkPolicy, RBAC, Secret, ConfigMap, CRs


def test_issue_examples_are_named_with_what_was_expected() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
           "spec": {"containers": "x"}}
    assert shapes.problem(pod) == "spec.containers: expected a list, found a string"
    pod["metadata"]["labels"] = []
    assert shapes.problem(pod) == "metadata.labels: expected a mapping, found a list"
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {"rules": 5}}
    assert shapes.problem(ing) == "spec.rules: expected a list, found a number"


def test_corrupted_objects_of_every_kind_give_a_pack_and_named_problems(cli, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    write(snap, "ns.yaml", NS)
    expected: list[str] = []
    for group_kind, base, corrupt in _objects():
        docs = [base] + [obj for _, obj in corrupt]
        kind = base["kind"]
        write(snap, f"{group_kind}.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        # A corrupted `metadata` leaves no name to give: that object is named by its file and line instead.
        expected += [f"{kind} shop/{obj['metadata']['name']}: {label}: expected" if label != "metadata"
                     else f"{kind} without metadata.name; left out ({group_kind}.json:1)" for label, obj in corrupt]
    write(snap, "README.json", json.dumps({"about": "corrupted on purpose"}))
    result = cli("collect", "--snapshot", snap, "--out", tmp_path / "pack")
    assert result.code == 3, result.err  # incomplete (objects left out), never 4
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert "warning: skipped 1 file(s) that hold no Kubernetes object: README.json" in result.err
    record = json.loads((tmp_path / "pack" / "collection.json").read_text())
    assert record["skipped"] == ["README.json"]
    left_out = "\n".join(record["left_out"])
    missing = [e for e in expected if e not in left_out]
    assert not missing, missing[:5]
    errors = {f"{e['group'] or 'core'}/{e['kind']}" for e in record["log"] if e["status"] == "error"}
    assert {group_kind for group_kind, _, _ in _objects()} <= errors
    assert (tmp_path / "pack" / "report.pdf").exists()


# --- CEL -----------------------------------------------------------------------------------------------

def test_a_rule_that_doubles_strings_is_inconclusive_not_a_crash(tmp_path: Path) -> None:
    body = "size(v16) > 0"
    for i in range(16, 0, -1):
        prev = f"v{i - 1}" if i > 1 else "subject.name"
        body = f"[{prev} + {prev} + {prev} + {prev}].all(v{i}, {body})"
    write(tmp_path, "ctl/custom.memory-bomb.yaml", f"""id: custom.memory-bomb
title: A rule that quadruples a string sixteen times
subject: namespace
rule: >-
  {body}
message: "'never'"
severity: low
requirements: {{pci-dss: ["10.2.1"]}}
rationale: One user rule must not exhaust the memory of the run that evaluates it.
remediation: Write rules that do not build ever larger values.
""")
    assert len(body) < 900
    # A user's control file, loaded as --controls loads each file (the built-in catalogue is not needed here).
    control = load_control(tmp_path / "ctl" / "custom.memory-bomb.yaml")
    subject = {"id": "ns/shop", "name": "shop-payments", "namespace": "shop"}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    first = evaluate_subject(control, subject, {})
    second = evaluate_subject(control, {**subject, "id": "ns/b", "name": "b"}, {})
    elapsed = time.monotonic() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert first.status == second.status == "inconclusive"
    assert first.message and f"more than {cel.MEMORY_BUDGET >> 20} MiB of memory" in first.message
    assert second.message and "not evaluated again" in second.message
    assert grown_mib < (cel.MEMORY_BUDGET >> 20) + 64, grown_mib
    assert elapsed < 60
    # The guard is released afterwards: an ordinary allocation of 600 MB still succeeds.
    assert len(bytearray(600 * 2**20)) == 600 * 2**20


def test_huge_messages_are_cut(tmp_path: Path) -> None:
    write(tmp_path, "ctl/custom.long-message.yaml", """id: custom.long-message
title: A failure message of a million characters
subject: namespace
rule: "false"
message: >-
  [subject.name + subject.name + subject.name + subject.name].map(a, a + a + a + a + a + a + a + a)
  .map(b, b + b + b + b + b + b + b + b).map(c, c + c + c + c + c + c + c + c)
  .map(d, d + d + d + d + d + d + d + d)[0]
severity: low
requirements: {pci-dss: ["10.2.1"]}
rationale: A message is read by people; a rule must not fill the report with one.
remediation: Keep failure messages short and specific.
""")
    control = load_control(tmp_path / "ctl" / "custom.long-message.yaml")
    f = evaluate_subject(control, {"id": "n", "name": "shop-payments"}, {})
    assert f.status == "fail" and f.message is not None
    assert len(f.message) < cel.MAX_RESULT_CHARS + 40 and f.message.endswith(" characters)")


def test_memory_guard_is_reentrant_and_released() -> None:
    # evaluate() holds one guard per subject; inside it Program.run adds none (re-entrant).
    soft_before = resource.getrlimit(resource.RLIMIT_AS)[0]
    with cel.memory_guard():
        inner = resource.getrlimit(resource.RLIMIT_AS)[0]
        with cel.memory_guard():
            assert resource.getrlimit(resource.RLIMIT_AS)[0] == inner
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == soft_before
    assert inner != soft_before


# --- plain http -------------------------------------------------------------------------------------------

def _http_kubeconfig(path: Path) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "plain",
        "clusters": [{"name": "plain", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t0ps3cret-token-value"}}],
        "contexts": [{"name": "plain", "context": {"cluster": "plain", "user": "u"}}]}))
    return path


def test_plain_http_api_server_is_refused_unless_allowed(cli, tmp_path: Path) -> None:
    kubeconfig = _http_kubeconfig(tmp_path / "kc")
    refused = cli("snapshot", "--kubeconfig", kubeconfig, "--out", tmp_path / "snap")
    assert refused.code == 2, refused.err
    lines = refused.err.strip().splitlines()
    assert len(lines) == 2 and "http://127.0.0.1:9 is plain http://" in lines[0]
    assert "--allow-insecure-http" in lines[1]
    assert "t0ps3cret" not in refused.err + refused.out
    allowed = cli("snapshot", "--kubeconfig", kubeconfig, "--allow-insecure-http", "--out", tmp_path / "snap")
    assert allowed.code == 3, allowed.err  # allowed through; nothing listens on port 9 (discard)
    assert "plain http://" not in allowed.err
    with pytest.raises(Exception, match="plain http://"):
        live.connect(kubeconfig)


# --- internal errors name their object --------------------------------------------------------------------

def test_a_crashing_collector_names_the_object_it_was_processing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import evidence.collectors as collectors
    from evidence.errors import EXIT_INTERNAL, InternalError

    write(tmp_path, "ns.yaml", NS)
    for i in range(40):
        write(tmp_path, f"cm{i}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: shop, "
              f"labels: {{mode: {'odd' if i == 27 else 'plain'}}}}}\n")
    inv = snapshot.load(tmp_path, "c")

    def fragile(inv: Any, scope: Any, as_of: Any) -> list[Any]:
        # A stand-in for a collector bug that only one object's content triggers (it reads a referenced
        # Namespace too, so leaving the others in place matters).
        assert inv.get("Namespace", None, "shop") is not None
        for cm in inv.objects("ConfigMap", ""):
            if cm["metadata"]["labels"]["mode"] == "odd":
                raise KeyError("mode")
        return []

    real = collectors.registry
    monkeypatch.setattr(collectors, "registry", lambda: (*real(), collectors.Collector("fragile", (), fragile)))
    with pytest.raises(InternalError) as exc:
        collect_all(inv, Scope(), shapes_as_of())
    assert exc.value.exit_code == EXIT_INTERNAL
    assert exc.value.message == "internal error in collector fragile on ConfigMap shop/c27: KeyError: 'mode'"
