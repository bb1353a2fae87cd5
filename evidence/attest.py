"""Attestations: people's statements for requirements no cluster can show (MFA in the identity provider, a completed
access review, a policy), with who, when, an attached file and an expiry date.

An attestations file is YAML (`attestations:` a list), written by `auditpack attest` or by hand, and passed to
`auditpack collect --attestations FILE`. It is validated strictly against the framework catalogues: an unknown
field, framework or requirement id, a missing attachment or an expiry before the statement is an error naming the
entry and the fix. In a pack, each attachment is copied to attachments/ (so the manifest hashes it) and
attestations.json records the file as read.

An attestation never changes a requirement's status: a manual requirement stays `manual` with the attestation
shown, because what was attached is for the assessor to examine, not something auditpack verified. A current
attestation marks it `attested`; an expired one is still listed, marked expired, and the requirement is open again.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evidence import yamlfile
from evidence.controls import Catalogue
from evidence.errors import InputError
from evidence.evaluate import AttestationInfo, Results
from evidence.pack import sha256_file, unsafe_path

HEADER = """\
# auditpack attestations: statements for requirements no cluster can show (see README "Attestations").
# Pass this file to `auditpack collect --attestations FILE`; attachments (paths relative to this file) are copied
# into the pack and hashed. An expired attestation (valid_until in the past) no longer counts.
attestations:
"""


class AttestationError(InputError):
    """An attestations file that cannot be read, or an entry that does not validate."""

    code = "AP105"


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    framework: str = Field(min_length=1)
    requirement: str = Field(min_length=1)
    statement: str = Field(min_length=10)
    by: str = Field(min_length=2, description="who attests: name and role")
    date: dt.date
    valid_until: dt.date
    attachment: str | None = Field(default=None, description="a file, relative to the attestations file")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attestations: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Attestation:
    entry: Entry
    label: str  # "<file>: entry <n> (<framework> <requirement>)"
    attachment: Path | None
    sha256: str | None
    name: str | None = None  # the attachment's original file name (when carried from a pack, where it is prefixed)

    @property
    def attachment_name(self) -> str | None:
        return self.name or (self.attachment.name if self.attachment is not None else None)

    @property
    def pack_path(self) -> str | None:
        """Where the attachment goes in a pack: attachments/<first 12 hex of its SHA-256>-<file name>."""
        if self.attachment is None or self.sha256 is None:
            return None
        return f"attachments/{self.sha256[:12]}-{self.attachment_name}"


def _read(path: Path) -> list[dict[str, Any]]:
    raw = yamlfile.read(path, AttestationError, "attestations file", "check the --attestations path")
    if raw is None:
        return []
    try:
        doc = _File.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise AttestationError(f"attestations file {path}: {field}: {err['msg']}",
                               "the file holds one key, `attestations:`, a list of entries") from None
    return doc.attestations or []


def validate(path: Path, raw: dict[str, Any], index: int, catalogue: Catalogue) -> Attestation:
    """One entry, checked against the catalogue; errors name the entry and say how to fix it."""
    label = f"{path}: entry {index}"
    if isinstance(raw, dict) and raw.get("framework") and raw.get("requirement"):
        label += f" ({raw['framework']} {raw['requirement']})"
    try:
        entry = Entry.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(entry)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else (
            "required field is missing" if err["type"] == "missing" else err["msg"])
        raise AttestationError(f"{label}: field {field!r}: {msg}",
                               "fields: framework, requirement, statement, by, date, valid_until, attachment "
                               "(optional); dates as YYYY-MM-DD; quote requirement ids (\"10.4\")") from None
    fw = catalogue.framework(entry.framework)
    if fw is None:
        raise AttestationError(f"{label}: unknown framework {entry.framework!r}",
                               f"use one of: {', '.join(f.id for f in catalogue.frameworks)}")
    if fw.requirement(entry.requirement) is None:
        close = difflib.get_close_matches(entry.requirement, [r.id for r in fw.requirements], n=3, cutoff=0.6)
        raise AttestationError(f"{label}: {fw.id} has no requirement {entry.requirement!r}",
                               (f"did you mean {' or '.join(close)}? " if close else "")
                               + f"the ids are in controls/frameworks/{fw.id}.yaml")
    if entry.valid_until < entry.date:
        raise AttestationError(f"{label}: valid_until {entry.valid_until} is before date {entry.date}",
                               "set valid_until to the date the statement stops being true (e.g. the next review)")
    attachment = None
    digest = None
    if entry.attachment:
        # Whatever the file names is copied into the pack: only files under the attestations file's directory,
        # reached without symlinks, so an edited file cannot pull ~/.kube/config or a key into an evidence pack.
        reason = attachment_problem(path.parent, entry.attachment)
        if reason is not None:
            raise AttestationError(f"{label}: attachment {entry.attachment} {reason}",
                                   "give a path relative to the attestations file, inside its directory "
                                   "(e.g. attestations/mfa-policy.pdf), or remove the attachment")
        attachment = path.parent / entry.attachment
        digest = sha256_file(attachment)
    return Attestation(entry, label, attachment, digest)


def attachment_problem(base: Path, rel: str) -> str | None:
    """Why `rel` cannot be an attachment of an attestations file in `base` (None when it can): it must be a
    relative, normalised path inside `base` naming a regular file. A symlink is followed only when it stays inside
    `base` (a Kubernetes ConfigMap volume links every key to its ..data directory), as in snapshot directories."""
    reason = unsafe_path(rel)
    if reason is not None:
        outside = reason == "absolute path" or ".." in rel.split("/")
        return "points outside the attestations file's directory" if outside else reason
    target = base / rel
    if not target.exists():
        return "does not exist"
    if not target.resolve().is_relative_to(base.resolve()):
        return "is a symlink that leads outside the attestations file's directory (not read)"
    return None if target.is_file() else "is not a regular file"


def load(path: Path, catalogue: Catalogue) -> list[Attestation]:
    return [validate(path, raw, i, catalogue) for i, raw in enumerate(_read(path), start=1)]


def apply(results: Results, attestations: list[Attestation], today: date) -> Results:
    """Attach attestations to their requirement results (pure; statuses unchanged) and count the current ones."""
    by_req: dict[tuple[str, str], list[Attestation]] = {}
    for a in attestations:
        by_req.setdefault((a.entry.framework, a.entry.requirement), []).append(a)
    out = results.model_copy(deep=True)
    for r in out.requirements:
        for a in by_req.get((r.framework, r.id), []):
            r.attestations.append(AttestationInfo(
                statement=a.entry.statement.strip(), by=a.entry.by, on=a.entry.date, valid_until=a.entry.valid_until,
                attachment=a.pack_path, attachment_name=a.attachment_name,
                attachment_sha256=a.sha256, expired=a.entry.valid_until < today, entry=a.label))
        r.attested = any(not x.expired for x in r.attestations)
    for fw in out.frameworks:
        fw.attested = sum(1 for r in out.requirements if r.framework == fw.id and r.attested)
    return out


def pack_record(path: Path, attestations: list[Attestation]) -> dict[str, Any]:
    """attestations.json: the file as read (its hash) and every entry with its attachment's place in the pack."""
    return {"file": str(path), "sha256": sha256_file(path),
            "entries": [{**a.entry.model_dump(mode="json"), "attachment_in_pack": a.pack_path,
                         "attachment_sha256": a.sha256} for a in attestations]}


def copy_attachments(root: Path, attestations: list[Attestation]) -> None:
    for a in attestations:
        if a.attachment is not None and a.pack_path is not None:
            target = root / a.pack_path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(a.attachment, target)
            if sha256_file(target) != a.sha256:  # changed while the run was going: the statement's file is unclear
                raise AttestationError(f"{a.label}: attachment {a.attachment} changed while the pack was written",
                                       "run collect again once the file is final")


def entry(**fields: Any) -> Entry:
    """An Entry from command-line values; a bad value is an AttestationError naming the option."""
    try:
        return Entry.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "(entry)"
        raise AttestationError(f"attest: {option}: {err['msg']}", "see `auditpack attest --help`") from None


def append(path: Path, entry: Entry, catalogue: Catalogue) -> Attestation:
    """`auditpack attest`: validate one entry against the catalogue and the file's other entries, then append it
    (written to a temporary file and renamed, so a failure never leaves a half-written file)."""
    existing = _read(path) if path.exists() else []
    for i, raw in enumerate(existing, start=1):
        validate(path, raw, i, catalogue)
    data = entry.model_dump(mode="json", exclude_none=True)
    data["date"], data["valid_until"] = entry.date, entry.valid_until
    checked = validate(path, data, len(existing) + 1, catalogue)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    block = _block(data)
    indent = _appendable(text)
    if indent is not None:
        new = text.rstrip("\n") + "\n" + "".join(f"{indent}{line}\n" for line in block.splitlines())
    else:  # e.g. `attestations: []` in flow style: rewrite (comments are lost)
        new = HEADER + "".join(f"  {line}\n" for e in [*existing, data] for line in _block(e).splitlines())
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new)
        if len(_read(tmp)) != len(existing) + 1:
            raise AttestationError(f"{path}: appending the entry would not round-trip", "edit the file by hand")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return checked


def _block(data: dict[str, Any]) -> str:
    """One list item; strings double-quoted (JSON strings are YAML), so an id such as 10.4 stays a string."""
    lines = []
    for i, (key, value) in enumerate(data.items()):
        text = value.isoformat() if isinstance(value, date) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{'- ' if i == 0 else '  '}{key}: {text}")
    return "\n".join(lines) + "\n"


def _appendable(text: str) -> str | None:
    """The indentation of the `attestations:` block list when the file ends with it (so an item can be appended
    as text, comments kept); None otherwise."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    top = [i for i, ln in enumerate(lines) if not ln.startswith((" ", "-"))]
    if not top or lines[top[-1]].rstrip() != "attestations:":
        return None
    items = lines[top[-1] + 1:]
    return "" if any(ln.startswith("-") for ln in items) else "  "
