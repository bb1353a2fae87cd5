"""Snapshot loading: directories, archives, List forms, unknown kinds, duplicates and malformed files."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from evidence.errors import SnapshotError
from evidence.sources import snapshot

POD = """apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: ns1, uid: u-%s, resourceVersion: "%s"}
spec: {containers: [{name: c, image: nginx}]}
"""


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_reads_single_multidoc_list_typed_list_and_json(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", POD % ("single", 1, 1))
    write(tmp_path, "sub/dir/b.yml", (POD % ("m1", 2, 1)) + "---\n" + (POD % ("m2", 3, 1)) + "---\n")
    write(tmp_path, "c.yaml", "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: ''}\nitems:\n"
          + "".join("- " + (POD % (f"l{i}", 10 + i, 1)).replace("\n", "\n  ").rstrip() + "\n" for i in range(2)))
    # The raw API's typed list: items carry no kind/apiVersion.
    write(tmp_path, "d.json", json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [
        {"metadata": {"name": "t1", "namespace": "ns1"}, "spec": {}}]}))
    write(tmp_path, "notes.txt", "not a manifest")
    inv = snapshot.load(tmp_path)
    names = sorted(p["metadata"]["name"] for p in inv.objects("Pod", ""))
    assert names == ["l0", "l1", "m1", "m2", "single", "t1"]
    assert inv.get("Pod", "ns1", "t1")["kind"] == "Pod"


def test_unknown_kinds_are_kept(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\nspec: {x: 1}\n")
    inv = snapshot.load(tmp_path)
    assert inv.get("Widget", "a", "w", group="example.com")["spec"] == {"x": 1}


def test_duplicates_reported_once_and_newest_kept(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", POD % ("dup", 1, 5))
    write(tmp_path, "two.yaml", POD % ("dup", 1, 9))
    write(tmp_path, "three.yaml", POD % ("dup", 1, 7))
    inv = snapshot.load(tmp_path)
    assert len(inv.objects("Pod", "")) == 1
    assert inv.get("Pod", "ns1", "dup")["metadata"]["resourceVersion"] == "9"
    assert len(inv.duplicates) == 1
    assert sorted(inv.duplicates[0].occurrences) == ["one.yaml:1", "three.yaml:1", "two.yaml:1"]


def test_tar_gz_archive(tmp_path: Path) -> None:
    src = tmp_path / "snap"
    write(src, "a.yaml", POD % ("p", 1, 1))
    write(src, "snapshot.json", json.dumps({"collected_at": "2026-01-02T03:04:05Z", "cluster": {"name": "c1"}}))
    archive = tmp_path / "snap.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="snap")
    inv = snapshot.load(archive)
    assert inv.get("Pod", "ns1", "p") is not None
    assert inv.source.cluster.name == "c1"
    assert inv.source.collected_at.isoformat() == "2026-01-02T03:04:05+00:00"


@pytest.mark.parametrize(("content", "fragment"), [
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: indent\n", "line 5"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n", "line 4"),
    ("kind: Pod\nmetadata: {name: x}\n", "Pod without apiVersion"),
    ("apiVersion: v1\nmetadata: {name: x}\n", "without kind"),
])
def test_malformed_file_names_file_and_line(tmp_path: Path, content: str, fragment: str) -> None:
    write(tmp_path, "good.yaml", POD % ("ok", 1, 1))
    write(tmp_path, "nested/broken.yaml", content)
    with pytest.raises(SnapshotError) as exc:
        snapshot.load(tmp_path)
    assert "nested/broken.yaml" in exc.value.message
    assert fragment in exc.value.message
    assert exc.value.hint


def test_invalid_json_names_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", '{"apiVersion": "v1",\n "kind": "Pod",\n "metadata": {"name": }\n}')
    with pytest.raises(SnapshotError, match=r"bad\.json: line 3"):
        snapshot.load(tmp_path)


def test_missing_and_empty_snapshot(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="does not exist"):
        snapshot.load(tmp_path / "nope")
    with pytest.raises(SnapshotError, match="holds no Kubernetes objects"):
        snapshot.load(tmp_path)


def test_absent_kinds_logged_without_collection_log(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", POD % ("p", 1, 1))
    inv = snapshot.load(tmp_path)
    assert inv.status("Pod", "").status == "ok"
    assert inv.status("Secret", "").status == "absent"


def test_malformed_snapshot_exits_2_and_leaves_nothing(cli, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    write(snap, "broken.yaml", "kind: [unclosed\n")
    out = tmp_path / "pack"
    result = cli("collect", "--snapshot", snap, "--out", out)
    assert result.code == 2
    assert "broken.yaml: line" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) <= 2
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]  # no temporary pack directory left behind
