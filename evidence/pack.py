"""The audit pack: one directory per run, written to a temporary sibling and renamed into place, never overwriting.

manifest.json holds the SHA-256 of every file. Its `evidence` section (data files + identity) has its own
digest, printed on the PDF cover; the renders (PDF, workbook) are hashed in `renders`, since a document
cannot contain its own hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from evidence import __version__
from evidence.errors import PackError
from evidence.inventory import Inventory, ObjectRef

MANIFEST = "manifest.json"
FORMAT = "auditpack-pack/v1"
RENDERS = ("report.pdf", "control-matrix.xlsx", "oscal/assessment-results.json")
SIGNATURE = "manifest.sig"
# Files the manifest cannot list: itself, and the signature made over it.
UNLISTED = (MANIFEST, SIGNATURE)


def dumps(data: Any) -> bytes:
    """Canonical JSON: sorted keys, 2-space indent, trailing newline (stable hashes, readable diffs)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_destination(out: Path) -> None:
    """Refuse a destination that exists and is not empty (an earlier pack is never overwritten)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
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
        (root / rel).write_bytes(dumps(objs))
        for o in objs:
            index.append({"ref": ObjectRef.of(o).model_dump(), "file": str(rel),
                          "sha256": hashlib.sha256(dumps(o)).hexdigest()})
    return index


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
        for p in self.tmp.rglob("*"):
            if p.is_file():
                with p.open("rb") as fh:
                    os.fsync(fh.fileno())
        try:
            if self.out.exists():
                self.out.rmdir()  # an empty directory the user created; a non-empty one was refused
            self.tmp.rename(self.out)
        except OSError as exc:
            raise PackError(f"could not move the result into {self.out}: {exc.strerror}",
                            "another run may have written there; choose a new --out") from None


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
               rendered: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write manifest.json (and, with `sign`, manifest.sig over its exact bytes), then move the pack in place."""
        manifest = build_manifest(self.tmp, identity)
        if rendered is not None:
            manifest["rendered"] = rendered  # outside the evidence section: the digest stays the same
        body = dumps(manifest)
        (self.tmp / MANIFEST).write_bytes(body)
        if sign is not None:
            (self.tmp / SIGNATURE).write_bytes(sign(body))
        self.commit()
        return manifest


def _hash_tree(root: Path, renders: bool) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel in UNLISTED or (rel in RENDERS) != renders:
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
    digest_ok: bool = True
    evidence_digest: str = ""

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing or self.extra) and self.digest_ok


def read_manifest(pack: Path) -> dict[str, Any]:
    path = pack / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise PackError(f"{pack} is not an audit pack: {MANIFEST} is missing",
                        "pass the directory `auditpack collect --out` wrote") from None
    except orjson.JSONDecodeError as exc:
        raise PackError(f"{path}: not valid JSON (line {exc.lineno})", "the manifest was damaged") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackError(f"{path}: unknown manifest format", f"expected {FORMAT}")
    return data


def verify(pack: Path) -> Verification:
    manifest = read_manifest(pack)
    v = Verification(evidence_digest=str(manifest.get("evidence_digest", "")))
    listed: dict[str, dict[str, Any]] = {**manifest["evidence"]["files"], **manifest.get("renders", {})}
    for rel, meta in sorted(listed.items()):
        p = pack / rel
        if not p.is_file():
            v.missing.append(rel)
        elif sha256_file(p) != meta["sha256"]:
            v.changed.append(rel)
    for p in sorted(pack.rglob("*")):
        rel = p.relative_to(pack).as_posix()
        if p.is_file() and rel not in listed and rel not in UNLISTED:
            v.extra.append(rel)
    v.digest_ok = evidence_digest(manifest["evidence"]) == manifest.get("evidence_digest")
    if not v.digest_ok:
        v.changed.append(f"{MANIFEST} (evidence section edited)")
    return v
