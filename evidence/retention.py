"""Packs kept under one root (`collect --out-root DIR`): DIR/<cluster>/<UTC timestamp>/, one run per cluster at a
time, the oldest pruned with `--keep N`, the previous pack found with `--previous auto`.

Nothing here deletes what it did not recognise: a pack is a directory named like a timestamp that holds a
manifest.json. Half-written packs live in hidden `.partial-` siblings (pack.AtomicDir) and are never counted;
one left by a killed run (`.<timestamp>.partial-*`, or `.<timestamp>.pruning-*` from a cut-short prune) is
removed by the next run of that cluster, which holds the cluster's lock, so no live run can own it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from evidence.errors import InputError, PackError
from evidence.pack import MANIFEST, read_manifest
from evidence.pipeline import RunOptions, RunSummary, collect

LOCK = ".lock"
FLEET_DIR = "fleet"  # DIR/fleet/<timestamp>/: fleet summaries (a cluster named "fleet" gets "fleet-cluster")
TIMESTAMP = "%Y%m%dT%H%M%SZ"
_PACK_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
_ORPHAN_NAME = re.compile(r"^\.\d{8}T\d{6}Z(?:-\d+)?\.(?:partial|pruning)-[A-Za-z0-9_]+$")


def cluster_dir(name: str) -> str:
    """A cluster name as one safe path component: `arn:aws:eks:eu-north-1:1234:cluster/prod` ->
    `arn-aws-eks-eu-north-1-1234-cluster-prod`; never empty, hidden, `..` or the fleet directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:100] or "cluster"
    return "fleet-cluster" if safe == FLEET_DIR else safe


def new_dir(parent: Path, now: datetime | None = None) -> Path:
    """parent/<UTC timestamp>, or <timestamp>-2, -3, ... if a run in the same second already wrote one."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(TIMESTAMP)
    candidate, n = parent / stamp, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stamp}-{n}"
    return candidate


def _order(p: Path) -> tuple[str, int]:
    m = _PACK_NAME.match(p.name)
    assert m is not None
    return m.group(1), int(m.group(2) or 1)


def packs(root: Path, cluster: str) -> list[Path]:
    """The complete packs of a cluster under root, oldest first."""
    base = root / cluster_dir(cluster)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if _PACK_NAME.match(p.name) and p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=_order)


def newest_pack(root: Path, cluster: str) -> Path | None:
    """The newest pack of `cluster` under root whose manifest reads (`--previous auto`), or None.

    A pack with a damaged manifest is skipped rather than failing the run: a quarterly job must not stop
    producing evidence because an old pack was damaged (`auditpack verify` reports that pack)."""
    for pack in reversed(packs(root, cluster)):
        try:
            read_manifest(pack)
        except PackError:
            continue
        return pack
    return None


def remove_orphans(root: Path, cluster: str, on_error: Callable[[Path, OSError], None] | None = None) -> list[Path]:
    """Remove half-written directories of killed runs (`.<timestamp>.partial-*`, `.<timestamp>.pruning-*`) of
    `cluster`. Call with the cluster's lock held: then no live run is writing one. Symlinks are never followed."""
    base = root / cluster_dir(cluster)
    if not base.is_dir():
        return []
    removed = []
    for p in sorted(base.iterdir()):
        if not _ORPHAN_NAME.match(p.name) or p.is_symlink() or not p.is_dir():
            continue
        try:
            shutil.rmtree(p)
        except OSError as exc:
            if on_error is None:
                raise
            on_error(p, exc)
            continue
        removed.append(p)
    return removed


UPLOADS = ".uploaded"  # DIR/<cluster>/.uploaded: one line per pack delivered to object storage (--upload)


def record_upload(pack: Path, url: str) -> None:
    """Note in the cluster's directory that `pack` reached object storage (pruning then may remove it)."""
    fd = os.open(pack.parent / UPLOADS, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "a") as fh:
        fh.write(f"{pack.name} {url}\n")


def uploaded(root: Path, cluster: str) -> set[str]:
    """Names of the cluster's packs recorded as uploaded."""
    path = root / cluster_dir(cluster) / UPLOADS
    if not path.is_file() or path.is_symlink():
        return set()
    return {line.split(" ", 1)[0] for line in path.read_text(errors="replace").splitlines() if line.strip()}


def prune(root: Path, cluster: str, keep: int, protect: Path,
          on_error: Callable[[Path, OSError], None] | None = None, uploaded_only: bool = False) -> list[Path]:
    """Remove the oldest packs of `cluster` so that `keep` remain; never the newest, never `protect` (the pack
    just written). Call with the cluster's lock held. Returns the removed packs; a pack that cannot be removed
    is reported to `on_error` and left (the new pack is written already: that must not turn into a failure)."""
    if keep < 1:
        raise InputError(f"--keep {keep}: must be at least 1", "pass --keep 1 or more (8 keeps two years of quarters)")
    existing = packs(root, cluster)
    doomed = [p for p in existing[:-keep] if p != existing[-1] and p.resolve() != protect.resolve()]
    if uploaded_only:  # with --upload the local packs are a cache: one that never reached the bucket is kept
        shipped = uploaded(root, cluster)
        doomed = [p for p in doomed if p.name in shipped]
    removed = []
    for p in doomed:
        # Renamed first, so a removal cut short leaves a hidden directory, never a half-deleted "pack".
        hidden = p.with_name(f".{p.name}.pruning-{os.getpid()}")
        try:
            p.rename(hidden)
            shutil.rmtree(hidden)
        except OSError as exc:
            if on_error is None:
                raise
            on_error(p, exc)
            continue
        removed.append(p)
    return removed


class ClusterLock:
    """An exclusive flock on DIR/<cluster>/.lock for a whole run. The kernel releases it when the process ends,
    however it ends, so a lock file left by a dead run never blocks the next one; a live run makes a second one
    fail at once (PackError, exit 2) instead of waiting."""

    def __init__(self, path: Path, cluster: str) -> None:
        self.path, self.cluster = path, cluster
        self._fd: int | None = None

    def __enter__(self) -> ClusterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink planted at .lock would make us truncate and write the file it points to.
        # Not inherited by child processes (O_CLOEXEC is Python's default).
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if self.path.is_symlink():
                raise PackError(f"lock file {self.path} is a symlink; auditpack never follows it",
                                "remove the symlink (and find out who planted it)") from None
            raise PackError(f"cannot open lock file {self.path}: {exc.strerror}",
                            "check the permissions of the --out-root directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.close(fd)
            raise PackError(f"another auditpack run is writing packs of cluster {self.cluster!r}: {self.path} is locked"
                            f"{f' ({holder})' if holder else ''}; wait for it to finish, runs of one cluster never "
                            "overlap") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays (unlinking it would race with a new run)
            self._fd = None


def planned_cluster_name(opts: RunOptions) -> str:
    """The cluster's name before anything is read: --cluster-name, the scope's cluster_name, the snapshot's
    recorded name (or its file name), else the kubeconfig context ("in-cluster" inside a pod)."""
    if opts.cluster_name:
        return opts.cluster_name
    from evidence import scope as scope_mod

    named = scope_mod.load(opts.scope).cluster_name
    if named:
        return named
    if opts.snapshot is not None:
        meta = opts.snapshot / "snapshot.json"
        if meta.is_file():
            import orjson

            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                name = (orjson.loads(meta.read_bytes()).get("cluster") or {}).get("name")
                if name and name != "unknown":
                    return str(name)
        return opts.snapshot.name.removesuffix(".tar.gz").removesuffix(".tgz")
    from evidence.sources import live

    return live.context_name(opts.kubeconfig, opts.context)


def _warn(opts: RunOptions, pack: Path, exc: OSError) -> None:
    event = {"event": "prune_failed", "level": "warning", "pack": str(pack), "message": f"{exc.strerror}"}
    if opts.progress is not None and not sys.stderr.isatty():
        opts.progress(event)  # a JSON log line (CronJob logs)
    else:
        sys.stderr.write(f"warning: could not remove old pack {pack}: {exc.strerror}\n")


def collect_to_root(opts: RunOptions, root: Path, keep: int | None = None, previous_auto: bool = False) -> RunSummary:
    """`collect --out-root`: lock the cluster's directory, resolve --previous auto, write a new pack, prune."""
    if keep is not None and keep < 1:
        raise InputError(f"--keep {keep}: must be at least 1", "pass --keep 1 or more (8 keeps two years of quarters)")
    if not root.is_dir():
        raise PackError(f"--out-root {root} is not a directory", "create it first (in the CronJob: the packs volume)")
    name = planned_cluster_name(opts)
    base = root / cluster_dir(name)
    with ClusterLock(base / LOCK, name):
        remove_orphans(root, name, on_error=lambda p, exc: _warn(opts, p, exc))
        with contextlib.ExitStack() as stack:
            previous, remote = opts.previous, None
            if previous is None and previous_auto:
                # With --upload the bucket holds the history (the local directory is only a cache).
                remote = _previous_from_bucket(opts, name, stack) if opts.upload is not None else None
                previous = remote[1] if remote else newest_pack(root, name)
            out = new_dir(base)
            summary = collect(replace(opts, out=out, previous=previous))
            summary.previous = previous
            summary.previous_url = remote[0] if remote else None
        if summary.uploaded is not None:
            record_upload(out, summary.uploaded)
        if keep is not None:
            summary.pruned = prune(root, name, keep, protect=out, on_error=lambda p, exc: _warn(opts, p, exc),
                                   uploaded_only=opts.upload is not None)
    return summary


def _previous_from_bucket(opts: RunOptions, cluster: str, stack: contextlib.ExitStack) -> tuple[str, Path] | None:
    """Download the cluster's newest pack from the bucket into a temporary directory kept for this run."""
    import tempfile

    from evidence import storage

    url = storage.newest(opts.upload.url, cluster)
    if url is None:
        return None
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auditpack-previous-")))
    check = storage.download(url, tmp / "pack")
    if not check.intact:
        raise storage.StorageError(f"the previous pack {url} cannot be used: {check.problem}",
                                   f"run `auditpack verify {url}`, or pass --previous PACK explicitly")
    return url, tmp / "pack"
