"""Packs under --out-root: layout, the per-cluster lock, --keep pruning and --previous auto."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SAMPLE, SCOPE

from evidence.errors import InputError, PackError
from evidence.retention import (
    LOCK,
    ClusterLock,
    cluster_dir,
    new_dir,
    newest_pack,
    packs,
    prune,
    remove_orphans,
)

HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"pid %d (test holder)" % os.getpid())
print("locked", flush=True)
if sys.argv[2] == "hold":
    time.sleep(60)
"""


def fake_pack(root: Path, cluster: str, name: str,
              manifest: str = '{"format": "auditpack-pack/v1", "evidence": {"files": {}}}') -> Path:
    p = root / cluster_dir(cluster) / name
    p.mkdir(parents=True)
    (p / "manifest.json").write_text(manifest)
    return p


def test_cluster_names_become_one_safe_path_component() -> None:
    assert cluster_dir("arn:aws:eks:eu-north-1:123456789012:cluster/prod") == \
        "arn-aws-eks-eu-north-1-123456789012-cluster-prod"
    assert cluster_dir("gke_proj_europe-north1_prod") == "gke_proj_europe-north1_prod"
    assert cluster_dir("../..") == "cluster" and cluster_dir(".hidden") == "hidden" and cluster_dir("") == "cluster"
    assert cluster_dir("fleet") == "fleet-cluster"  # DIR/fleet/ holds fleet summaries
    assert len(cluster_dir("x" * 500)) == 100


def test_new_dirs_never_collide(tmp_path: Path) -> None:
    now = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    first = new_dir(tmp_path, now)
    assert first.name == "20261121T030000Z"
    first.mkdir()
    second = new_dir(tmp_path, now)
    assert second.name == "20261121T030000Z-2"


def test_packs_are_complete_timestamped_directories_only(tmp_path: Path) -> None:
    a = fake_pack(tmp_path, "prod", "20260101T030000Z")
    b = fake_pack(tmp_path, "prod", "20260401T030000Z")
    b2 = fake_pack(tmp_path, "prod", "20260401T030000Z-2")
    b10 = fake_pack(tmp_path, "prod", "20260401T030000Z-10")
    base = tmp_path / "prod"
    (base / ".20260701T030000Z.partial-x1y2").mkdir()  # being written (pack.AtomicDir)
    (base / "20260702T030000Z").mkdir()  # no manifest: not a pack (a crashed copy, or someone's files)
    (base / "notes").mkdir()
    (base / LOCK).write_text("")
    assert packs(tmp_path, "prod") == [a, b, b2, b10]
    assert packs(tmp_path, "other") == []
    assert newest_pack(tmp_path, "prod") == b10
    (b10 / "manifest.json").write_text("{damaged")
    assert newest_pack(tmp_path, "prod") == b2  # a damaged pack never stops the next quarter's run


def test_prune_keeps_n_never_the_newest_nor_the_new_pack(tmp_path: Path) -> None:
    old = [fake_pack(tmp_path, "prod", f"2025{m:02d}01T030000Z") for m in (1, 4, 7, 10)]
    partial = tmp_path / "prod" / ".20260101T030000Z.partial-abc"
    partial.mkdir()
    assert prune(tmp_path, "prod", 2, protect=old[-1]) == old[:2]
    assert packs(tmp_path, "prod") == old[2:] and partial.is_dir()
    assert not list((tmp_path / "prod").glob(".*pruning*"))
    # A clock that went backwards: the new pack sorts first, yet it and the newest both stay.
    future = fake_pack(tmp_path, "prod", "20990101T030000Z")
    assert prune(tmp_path, "prod", 1, protect=old[2]) == [old[3]]
    assert packs(tmp_path, "prod") == [old[2], future]
    with pytest.raises(InputError, match="--keep 0"):
        prune(tmp_path, "prod", 0, protect=future)


def test_a_pack_that_cannot_be_removed_is_reported_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = [fake_pack(tmp_path, "prod", f"2025{m:02d}01T030000Z") for m in (1, 4, 7)]

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("evidence.retention.Path.rename", lambda self, target: refuse(self))
    failed: list[Path] = []
    assert prune(tmp_path, "prod", 1, protect=old[-1], on_error=lambda p, exc: failed.append(p)) == []
    assert failed == old[:2] and packs(tmp_path, "prod") == old


def test_lock_refuses_a_second_holder_in_this_process(tmp_path: Path) -> None:
    with ClusterLock(tmp_path / "prod" / LOCK, "prod"), pytest.raises(PackError, match="is locked"), \
            ClusterLock(tmp_path / "prod" / LOCK, "prod"):
        pass
    with ClusterLock(tmp_path / "prod" / LOCK, "prod"):  # released on leaving the block
        pass


def test_lock_file_symlink_is_never_followed(tmp_path: Path) -> None:
    """A symlink planted at .lock would make the run truncate and write its target: O_NOFOLLOW refuses it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "prod").mkdir()
    (tmp_path / "prod" / LOCK).symlink_to(victim)
    with pytest.raises(PackError, match="is a symlink; auditpack never follows it"), \
            ClusterLock(tmp_path / "prod" / LOCK, "prod"):
        pass
    assert victim.read_text() == "precious"


def test_orphans_of_killed_runs_are_removed_and_nothing_else(tmp_path: Path) -> None:
    pack = fake_pack(tmp_path, "prod", "20260101T030000Z")
    base = tmp_path / "prod"
    orphans = [base / ".20260401T030000Z.partial-ab_12", base / ".20260401T030000Z-2.pruning-77"]
    for o in orphans:
        (o / "sub").mkdir(parents=True)
    keep = [base / ".hidden-notes", base / "partial-notes"]
    keep[0].mkdir()
    keep[1].mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (base / ".20260501T030000Z.partial-link").symlink_to(outside, target_is_directory=True)
    assert remove_orphans(tmp_path, "prod") == sorted(orphans)
    assert all(not o.exists() for o in orphans) and keep[0].is_dir() and keep[1].is_dir() and pack.is_dir()
    assert outside.is_dir() and (base / ".20260501T030000Z.partial-link").is_symlink()  # never followed


def test_concurrent_run_is_refused_with_one_line(cli, tmp_path: Path) -> None:
    root = tmp_path / "packs"
    lock = root / "demo-payments" / LOCK
    lock.parent.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock), "hold"], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            r = cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out-root", root, "--json")
        finally:
            holder.kill()
    assert r.code == 2
    assert r.err.splitlines() == [r.err.strip()] and "is locked" in r.err and "test holder" in r.err
    assert json.loads(r.out) == {"pack": None, "exit_code": 2, "error": r.err.strip(), "previous": None,
                                 "cluster": None}
    assert [p.name for p in lock.parent.iterdir()] == [LOCK]


def test_out_root_layout_stale_lock_previous_auto_and_keep(cli, demo_pack: Path, tmp_path: Path) -> None:
    root = tmp_path / "packs"
    earlier = root / "demo-payments" / "20260801T030000Z"
    shutil.copytree(demo_pack, earlier)  # last quarter's pack of the same cluster
    # Left by killed runs (pack.AtomicDir, prune): removed by the next run, which holds the cluster's lock.
    orphan = root / "demo-payments" / ".20260901T030000Z.partial-k1ll3d"
    (orphan / "inventory").mkdir(parents=True)
    (orphan / "manifest.json").write_text("{}")
    pruning = root / "demo-payments" / ".20250101T030000Z.pruning-4242"
    pruning.mkdir()
    unrelated = tmp_path / "not-a-pack-dir"
    unrelated.mkdir()
    lock = root / "demo-payments" / LOCK
    # A run that died holding the lock leaves the file behind; flock died with it, so nothing is blocked.
    subprocess.run([sys.executable, "-c", HOLD_LOCK, str(lock), "exit"], check=True, capture_output=True)
    r = cli("collect", "--report", "summary",
            "--snapshot", SAMPLE, "--scope", SCOPE, "--out-root", root, "--keep", "1", "--previous", "auto",
            "--fail-on", "none", "--json")
    assert r.code == 0, r.err
    line = json.loads(r.out)
    pack = Path(line["pack"])
    assert pack.parent == root / "demo-payments" and re.fullmatch(r"\d{8}T\d{6}Z", pack.name)
    assert line["cluster"] == "demo-payments"
    assert line["previous"] == str(earlier) and line["pruned"] == [str(earlier)]
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["evidence"]["previous"]["pack"] == str(earlier)
    assert sorted(p.name for p in (root / "demo-payments").iterdir()) == [LOCK, pack.name]
    assert not orphan.exists() and not pruning.exists() and unrelated.is_dir()  # a killed run's leftovers went
    assert cli("verify", pack).code == 7  # intact; unsigned, so authenticity is not established


def test_out_root_usage_errors(cli, tmp_path: Path) -> None:
    neither = cli("collect", "--snapshot", SAMPLE)
    assert neither.code == 2 and "exactly one of --out DIR" in neither.err
    keep = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--keep", "3")
    assert keep.code == 2 and "--keep needs --out-root" in keep.err
    missing = cli("collect", "--snapshot", SAMPLE, "--out-root", tmp_path / "nope")
    assert missing.code == 2 and "--out-root" in missing.err and "is not a directory" in missing.err
