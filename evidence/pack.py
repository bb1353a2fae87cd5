"""The audit pack: one directory per run, written to a temporary sibling and renamed into place, never overwriting.

manifest.json holds the SHA-256 of every file. Its `evidence` section (data files + identity) has its own
digest, printed on the PDF cover; the renders (PDF, workbook) are hashed in `renders`, since a document
cannot contain its own hash.

A pack is hostile input when it comes back (verify, render, diff, --previous): every path its manifest lists must
be relative, normalised and name a regular file inside the pack, and no symlink in it is ever followed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from evidence import __version__
from evidence.errors import EXIT_FAILURES, PackError
from evidence.inventory import Inventory, ObjectRef

MANIFEST = "manifest.json"
FORMAT = "auditpack-pack/v1"
RENDERS = ("report.pdf", "control-matrix.xlsx", "oscal/assessment-results.json")
SIGNATURE = "manifest.sig"
# Files the manifest cannot list: itself, and the signature made over it.
UNLISTED = (MANIFEST, SIGNATURE)
PARTIAL = ".partial-"  # AtomicDir's temporary siblings: .<name>.partial-<random>
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Crash-window tests (tests/test_security_pack.py) kill the process at one of these points in PackWriter.finish.
CRASH_ENV = "AUDITPACK_TEST_CRASH_AT"
CRASH_POINTS = ("after-manifest", "after-signature", "after-rename")


class PackModifiedError(PackError):
    """A pack given to render, diff or --previous does not verify: changed, missing, extra or unsafe files."""

    code = "AP106"
    exit_code = EXIT_FAILURES


def unsafe_path(rel: object) -> str | None:
    """Why `rel` cannot be a manifest entry (None when it can): it must be a relative, normalised POSIX path
    inside the pack, with no `.`/`..` segment, no backslash or NUL, and not the manifest or its signature."""
    if not isinstance(rel, str) or not rel:
        return "not a path"
    if "\x00" in rel or "\\" in rel:
        return "contains a NUL or backslash"
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return "absolute path"
    if any(part in ("", ".", "..") for part in rel.split("/")) or posixpath.normpath(rel) != rel:
        return "not a normalised relative path (., .. or empty segments)"
    if rel in UNLISTED:
        return f"{rel} cannot list itself"
    return None


def entry_state(root: Path, rel: str) -> str | None:
    """None when root/rel is a regular file reached without any symlink; else what it is instead."""
    current = root
    parts = rel.split("/")
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = current.lstat()
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return "a symlink (never followed)"
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            return "missing"
        if last and not stat.S_ISREG(st.st_mode):
            return "not a regular file"
    return None


def _open_nofollow(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))


def read_entry(root: Path, rel: str) -> bytes:
    """The bytes of a listed file, refusing unsafe paths and symlinks (render copies files this way)."""
    reason = unsafe_path(rel) or entry_state(root, rel)
    if reason is not None:
        raise PackModifiedError(f"{root}: manifest entry {rel!r}: {reason}",
                                "the pack was tampered with; `auditpack verify` lists every problem")
    with os.fdopen(_open_nofollow(root / rel), "rb") as fh:
        return fh.read()


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable (the directory's own metadata)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crash_point(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def dumps(data: Any) -> bytes:
    """Canonical JSON: sorted keys, 2-space indent, trailing newline (stable hashes, readable diffs)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def sha256_file(path: Path, follow_symlinks: bool = True) -> str:
    """SHA-256 of a file's content. In a pack (follow_symlinks=False) a symlink is refused (OSError ELOOP)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY) if follow_symlinks else _open_nofollow(path)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_destination(out: Path) -> None:
    """Refuse a destination that exists and is not empty (an earlier pack is never overwritten)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PackError(f"{out} is {'a symlink' if out.is_symlink() else 'a file'}, not a directory; "
                        "auditpack never overwrites it", "choose a new --out directory (e.g. one named after today's date)")
    if out.exists() and any(out.iterdir()):
        raise PackError(f"{out} already exists and is not empty; auditpack never overwrites a pack",
                        "choose a new --out directory (e.g. one named after today's date)")
    if not out.parent.exists():
        raise PackError(f"parent directory {out.parent} does not exist", "create it first or choose another --out")


def inventory_files(inv: Inventory, root: Path) -> list[dict[str, Any]]:
    """Write inventory/<group>/<Kind>.json (one list per kind) and return the per-object index."""
    index: list[dict[str, Any]] = []
    for group, kind in inv.kinds():
        objs = inv.objects(kind, group)
        rel = Path("inventory") / (group or "core") / f"{kind}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_list(root / rel, objs)
        for o in objs:
            index.append({"ref": ObjectRef.of(o).model_dump(), "file": str(rel),
                          "sha256": hashlib.sha256(dumps(o)).hexdigest()})
    return index


WRITE_CHUNK = 1_000  # objects serialised at a time: 50,000 pods in one dumps() were 1.3 GB at the run's peak


def _write_list(path: Path, objs: list[Any]) -> None:
    """dumps(objs), byte for byte, written in chunks: each chunk's list is serialised the same way, so its inner
    lines are the whole list's; only the brackets between chunks are replaced by the separator."""
    if len(objs) <= WRITE_CHUNK:
        path.write_bytes(dumps(objs))
        return
    with path.open("wb") as f:
        f.write(b"[\n")
        for start in range(0, len(objs), WRITE_CHUNK):
            part = dumps(objs[start:start + WRITE_CHUNK])
            f.write((b",\n" if start else b"") + part[2:-3])  # without "[\n" and "\n]\n"
        f.write(b"\n]\n")


@dataclass
class AtomicDir:
    """A directory built in a temporary sibling and renamed into place by `commit`; removed on error."""

    out: Path
    tmp: Path = field(init=False)

    def __enter__(self) -> AtomicDir:
        check_destination(self.out)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-", dir=self.out.parent))
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)  # nothing half-written is left behind

    def commit(self) -> None:
        # Every file and directory reaches the disk before the rename makes the pack visible, and the parent
        # directory after it: a power cut leaves either no pack or a whole one, never a named half.
        for p in sorted(self.tmp.rglob("*"), reverse=True):
            if p.is_file() and not p.is_symlink():
                with p.open("rb") as fh:
                    os.fsync(fh.fileno())
            elif p.is_dir() and not p.is_symlink():
                fsync_dir(p)
        fsync_dir(self.tmp)
        try:
            if self.out.exists():
                self.out.rmdir()  # an empty directory the user created; a non-empty one was refused
            self.tmp.rename(self.out)
        except OSError as exc:
            raise PackError(f"could not move the result into {self.out}: {exc.strerror}",
                            "another run may have written there; choose a new --out") from None
        _crash_point("after-rename")
        fsync_dir(self.out.parent)


class PackWriter(AtomicDir):
    """Collects the files of a pack in a temporary sibling directory, then renames it into place."""

    def __enter__(self) -> PackWriter:
        super().__enter__()
        return self

    def write_json(self, rel: str, data: Any) -> None:
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dumps(data))

    def render(self, rel: str, fn: Callable[[Path, Path], None]) -> None:
        fn(self.tmp, self.tmp / rel)

    def finish(self, identity: dict[str, Any], sign: Callable[[bytes], bytes] | None = None,
               rendered: dict[str, Any] | None = None, signer_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write manifest.json (and, with `sign`, manifest.sig over its exact bytes), then move the pack in place.

        `signer_info` (signing.signer_info) records in the manifest who signs it, so a deleted or swapped
        manifest.sig is detected from the signed manifest itself."""
        manifest = build_manifest(self.tmp, identity)
        if rendered is not None:
            manifest["rendered"] = rendered  # outside the evidence section: the digest stays the same
        if signer_info is not None:
            manifest["signer"] = signer_info  # covered by the signature: manifest.sig must agree with it
        body = dumps(manifest)
        # Both written inside the .partial- directory: a crash before the rename leaves no pack at all.
        (self.tmp / MANIFEST).write_bytes(body)
        _crash_point("after-manifest")
        if sign is not None:
            (self.tmp / SIGNATURE).write_bytes(sign(body))
        _crash_point("after-signature")
        self.commit()
        return manifest


def _hash_tree(root: Path, renders: bool) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink() or not p.is_file() or rel in UNLISTED or (rel in RENDERS) != renders:
            continue
        out[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def evidence_digest(evidence: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(evidence)).hexdigest()


def build_manifest(root: Path, identity: dict[str, Any]) -> dict[str, Any]:
    evidence = {**identity, "files": _hash_tree(root, renders=False)}
    return {"format": FORMAT, "tool": {"name": "auditpack", "version": __version__}, "evidence": evidence,
            "evidence_digest": evidence_digest(evidence), "renders": _hash_tree(root, renders=True)}


def evidence_section(root: Path, identity: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The evidence section and its digest, computed before renders exist (the PDF cover prints the digest)."""
    evidence = {**identity, "files": _hash_tree(root, renders=False)}
    return evidence, evidence_digest(evidence)


@dataclass
class Verification:
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # entries or files verify refuses to read, with the reason
    digest_ok: bool = True
    evidence_digest: str = ""

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.unsafe) and self.digest_ok

    def problems(self) -> list[str]:
        """Every finding as "<label>: <entry>", in the order verify prints them."""
        return [f"{label}: {item}" for label, items in (("unsafe", self.unsafe), ("changed", self.changed),
                                                         ("missing", self.missing), ("extra", self.extra))
                for item in items]


def check_pack_dir(pack: Path, role: str = "pack") -> None:
    """A usage error (exit 2, one line) when `pack` is not a directory: `verify report.pdf`, `diff a.xlsx b`."""
    if not pack.exists():
        raise PackError(f"{role} {pack} does not exist", "pass the directory `auditpack collect --out` wrote")
    if not pack.is_dir():
        hint = ("verify the pack directory that holds it (the manifest lists its hash)" if pack.suffix.lower()
                in (".pdf", ".xlsx", ".json") else "pass the directory `auditpack collect --out` wrote")
        raise PackError(f"{role} {pack} is a file, not a pack directory", hint)


def read_manifest(pack: Path) -> dict[str, Any]:
    check_pack_dir(pack)
    path = pack / MANIFEST
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise PackModifiedError(f"{path} is not a regular file (a symlink or directory is never followed)",
                                "the pack was tampered with; use an intact copy")
    try:
        with os.fdopen(_open_nofollow(path), "rb") as fh:
            data = orjson.loads(fh.read())
    except FileNotFoundError:
        raise PackError(f"{pack} is not an audit pack: {MANIFEST} is missing",
                        "pass the directory `auditpack collect --out` wrote") from None
    except orjson.JSONDecodeError as exc:
        raise PackError(f"{path}: not valid JSON (line {exc.lineno})", "the manifest was damaged") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackError(f"{path}: unknown manifest format", f"expected {FORMAT}")
    evidence = data.get("evidence")
    if not isinstance(evidence, dict) or not isinstance(evidence.get("files"), dict) \
            or not isinstance(data.get("renders", {}), dict):
        raise PackModifiedError(f"{path}: the evidence or renders section is not a map of files",
                                "the manifest was damaged or edited; use an intact copy")
    return data


def listed_files(manifest: dict[str, Any]) -> dict[str, Any]:
    """Every entry the manifest lists (evidence files and renders), as written; not yet checked."""
    return {**manifest["evidence"]["files"], **(manifest.get("renders") or {})}


def verify(pack: Path) -> Verification:
    """Recompute every hash the manifest lists and look for anything it does not list.

    Nothing outside the pack is read: unsafe entries (absolute, `..`, symlinks, not regular files) and entries
    without a SHA-256 are findings, never opened. A half-written `.partial-` directory is never a pack."""
    check_pack_dir(pack)
    if PARTIAL in pack.resolve().name:
        raise PackModifiedError(f"{pack} is a half-written .partial- directory (a run was interrupted): never a pack",
                                "run collect again; the next --out-root run removes such directories")
    manifest = read_manifest(pack)
    v = Verification(evidence_digest=str(manifest.get("evidence_digest", "")))
    listed = listed_files(manifest)
    overlap = set(manifest["evidence"]["files"]) & set(manifest.get("renders") or {})
    v.unsafe += [f"{rel}: listed twice (evidence and renders)" for rel in sorted(overlap)]
    safe: set[str] = set()
    for rel, meta in sorted(listed.items()):
        reason = unsafe_path(rel)
        if reason is None and not (isinstance(meta, dict) and isinstance(meta.get("sha256"), str)
                                   and _SHA256.match(meta["sha256"])):
            reason = "no SHA-256 in the manifest"
        if reason is not None:
            v.unsafe.append(f"{rel!r}: {reason}")
            continue
        safe.add(rel)
        state = entry_state(pack, rel)
        if state == "missing":
            v.missing.append(rel)
        elif state is not None:
            v.unsafe.append(f"{rel}: {state}")
        else:
            try:
                digest = sha256_file(pack / rel, follow_symlinks=False)
            except OSError as exc:  # replaced by a symlink since the check (ELOOP), or unreadable
                v.unsafe.append(f"{rel}: cannot be read safely ({exc.strerror})")
                continue
            if digest != meta["sha256"]:
                v.changed.append(rel)
    wanted_dirs = {posixpath.dirname(rel) for rel in safe}
    wanted_dirs = {d for rel in wanted_dirs for d in _parents(rel)}
    for dirpath, dirnames, filenames in os.walk(pack):  # os.walk never descends into symlinked directories
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = base / name
            rel = p.relative_to(pack).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                if rel not in listed:
                    v.unsafe.append(f"{rel}: a symlink (never followed)")
            elif stat.S_ISDIR(st.st_mode):
                if rel not in wanted_dirs:
                    v.extra.append(f"{rel}/ (a directory the manifest does not list)")
            elif rel in UNLISTED:
                if not stat.S_ISREG(st.st_mode):
                    v.unsafe.append(f"{rel}: not a regular file")
            elif rel not in listed:
                v.extra.append(rel if stat.S_ISREG(st.st_mode) else f"{rel} (not a regular file)")
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
    v.digest_ok = evidence_digest(manifest["evidence"]) == manifest.get("evidence_digest")
    if not v.digest_ok:
        v.changed.append(f"{MANIFEST} (evidence section edited)")
    return v


def _parents(rel: str) -> set[str]:
    out = set()
    while rel:
        out.add(rel)
        rel = posixpath.dirname(rel)
    return out


def require_intact(pack: Path, role: str = "pack") -> dict[str, Any]:
    """The manifest of a pack that verifies (render, diff, --previous); PackModifiedError (exit 1) naming what
    changed otherwise. Integrity only: authenticity needs a trust anchor (`auditpack verify --public-key`)."""
    check_pack_dir(pack, role)
    v = verify(pack)
    if not v.intact:
        problems = v.problems()
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PackModifiedError(f"{role} {pack} does not verify: {shown}",
                                f"use an intact copy; `auditpack verify {pack}` lists every difference")
    return read_manifest(pack)
