"""The spreadsheet round trip: read what the compliance team wrote in a pack's control-matrix.xlsx (Owner,
Attestation, Statement, Attested on, Valid until, Evidence link, Auditor comment) and carry it into the next pack.

Rows marked `attested` become attestations (statuses unchanged, expiry honoured, see evidence/attest.py). A row
whose people columns still hold exactly what the previous pack pre-filled from its recorded attestations (the
hidden Recorded column) carries those attestations whole: statement, date, expiry and attachment, copied from the
pack the workbook belongs to. The auditor's comment is never read as an attestation; it is carried forward as a
comment. Every filled row is kept in matrix.json so the next workbook starts with it. Every invalid cell is an
error naming sheet, cell and what is allowed (exit 2), never a silent drop; a missing date is never defaulted.
A workbook of another cluster, or a row whose hidden Key names a requirement the catalogue lacks, is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.attest import Attestation, AttestationError, Entry
from evidence.controls import Catalogue
from evidence.errors import InputError

SHEET = "Requirements"
CLUSTER_PROPERTY = "auditpack.kube_system_uid"  # written by render/xlsx.py
DIGEST_PROPERTY = "auditpack.evidence_digest"
FIELDS = {"Owner": "owner", "Attestation": "attestation", "Statement": "statement", "Attested on": "on",
          "Valid until": "valid_until", "Evidence link": "evidence_link", "Auditor comment": "comment"}
DATES = ("on", "valid_until")
ATTESTATION = ("attested", "not attested", "not applicable", "in progress")  # the sheet's dropdown (render/xlsx.py)

@dataclass
class Matrix:
    path: Path
    cluster_uid: str | None
    pack_digest: str | None
    entries: list[dict[str, Any]]
    attestations: list[Attestation]
    # Errors that only matter once the workbook is known to belong to this cluster (check_cluster runs first).
    pending: list[AttestationError] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """matrix.json: where the entries came from and what they were."""
        return {"file": str(self.path), "previous_pack_digest": self.pack_digest, "cluster_uid": self.cluster_uid,
                "entries": self.entries}

    def check_cluster(self, uid: str | None) -> None:
        if self.cluster_uid and uid and self.cluster_uid != uid:
            raise AttestationError(
                f"{self.path}: document property {CLUSTER_PROPERTY} is {self.cluster_uid}, but this cluster's "
                f"kube-system UID is {uid}: the workbook belongs to another cluster",
                "pass the control-matrix.xlsx of a previous pack of this cluster")
        if self.pending:
            raise self.pending[0]


def load(path: Path, catalogue: Catalogue, previous: Path | None = None) -> Matrix:
    """Read the Requirements sheet. `previous`: a pack to take carried attachments from when the workbook is not
    inside the pack it was written for (`--previous PACK`)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, data_only=True)
    except (OSError, InvalidFileException, KeyError, ValueError) as exc:
        raise AttestationError(f"{path}: cannot read the workbook ({exc})",
                               "pass the control-matrix.xlsx of an earlier pack (or a YAML attestations file)") from None
    props = {p.name: str(p.value) for p in wb.custom_doc_props.props}
    if SHEET not in wb.sheetnames:
        raise AttestationError(f"{path}: no sheet {SHEET!r}", "pass a control matrix written by auditpack")
    ws = wb[SHEET]
    header = [str(c.value) if c.value is not None else "" for c in ws[1]]
    missing = [h for h in ("Key", *FIELDS) if h not in header]
    if missing:
        raise AttestationError(f"{path}: {SHEET}!1: column {missing[0]!r} is missing",
                               "pass the workbook as auditpack wrote it (columns may be filled, not removed)")
    col = {name: i for i, name in enumerate(header)}
    source = _source_pack(path, props.get(DIGEST_PROPERTY), previous)
    entries: list[dict[str, Any]] = []
    attestations: list[Attestation] = []
    pending: list[AttestationError] = []
    for row_no, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
        key = row[col["Key"]]
        if not key:
            continue
        cell = f"{SHEET}!{_letter(header, 'Key')}{row_no}"
        try:
            _, framework, requirement = str(key).split("|", 2)
        except ValueError:
            raise AttestationError(f"{path}: {cell}: Key {key!r} is not <pack>|<framework>|<requirement>",
                                   "do not edit the hidden Key column") from None
        fw = catalogue.framework(framework)
        if fw is None or fw.requirement(requirement) is None:
            raise AttestationError(f"{path}: {cell}: unknown requirement {framework} {requirement!r}",
                                   "the row does not match the current catalogue; remove it or fix the Key")
        values = {FIELDS[h]: _value(path, header, row_no, h, row[col[h]]) for h in FIELDS}
        values = {k: v for k, v in values.items() if v not in (None, "")}
        if not values:
            continue
        state = values.get("attestation")
        if state is not None and state not in ATTESTATION:
            raise AttestationError(f"{path}: {SHEET}!{_letter(header, 'Attestation')}{row_no}: {state!r} is not an "
                                   f"Attestation value", "choose one of: " + ", ".join(ATTESTATION))
        entry: dict[str, Any] = {"framework": framework, "requirement": requirement, "row": row_no, **values}
        entries.append(entry)
        if state == "attested":
            recorded = _recorded(path, header, row_no, row[col["Recorded"]] if "Recorded" in col else None)
            if recorded and _unchanged(values, recorded):
                try:
                    attestations.extend(_carried(path, row_no, entry, recorded, source))
                except AttestationError as exc:
                    pending.append(exc)
            else:
                attestations.append(_attestation(path, row_no, entry, header))
    return Matrix(path, props.get(CLUSTER_PROPERTY), props.get(DIGEST_PROPERTY), entries, attestations, pending)


def _value(path: Path, header: list[str], row_no: int, name: str, value: Any) -> Any:
    """A cell as the entry keeps it: text stripped, dates as ISO dates (typed or written as YYYY-MM-DD)."""
    if value is None:
        return None
    if FIELDS[name] in DATES:
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        text = str(value).strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise AttestationError(f"{path}: {SHEET}!{_letter(header, name)}{row_no}: {text!r} is not a date",
                                   "enter a date (the cell accepts dates, e.g. 2027-03-31)") from None
    return str(value).strip()


def _recorded(path: Path, header: list[str], row_no: int, raw: Any) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        data = json.loads(str(raw))
    except ValueError:
        data = None
    if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
        raise AttestationError(f"{path}: {SHEET}!{_letter(header, 'Recorded')}{row_no}: the hidden Recorded column "
                               "was edited", "do not edit the hidden columns; take the workbook from the pack again")
    return data


def _unchanged(values: dict[str, Any], recorded: list[dict[str, Any]]) -> bool:
    """True when the people columns still hold what the previous pack pre-filled (render/xlsx.py `prefill`)."""
    from evidence.render.xlsx import prefill

    expected = prefill(recorded)
    return all((values.get(k) or "") == (expected.get(k) or "")
               for k in ("owner", "attestation", "statement", "on", "valid_until", "evidence_link"))


def _source_pack(path: Path, digest: str | None, previous: Path | None) -> Path | None:
    """The pack the workbook was written in (its own directory, or --previous), if its evidence digest matches."""
    from evidence.pack import read_manifest, verify

    for candidate in (path.parent, previous):
        if candidate is None or not (candidate / "manifest.json").is_file():
            continue
        try:
            if not digest or read_manifest(candidate).get("evidence_digest") != digest:
                continue
        except InputError:
            continue
        check = verify(candidate)
        if not check.intact:
            raise AttestationError(f"{path}: the pack it belongs to, {candidate}, was modified "
                                   f"({'; '.join(check.problems()) or 'evidence digest'})",
                                   "`auditpack verify` lists the differences; take the workbook from an intact pack")
        return candidate
    return None


def _carried(path: Path, row_no: int, e: dict[str, Any], recorded: list[dict[str, Any]],
             source: Path | None) -> list[Attestation]:
    """The previous pack's attestations of this row, unchanged: statement, dates and attachment as recorded."""
    out = []
    for r in recorded:
        attachment = None
        if r.get("attachment"):
            if source is None:
                raise AttestationError(
                    f"{path}: {SHEET} row {row_no} ({e['framework']} {e['requirement']}): the attestation's attachment "
                    f"{r.get('attachment_name') or r['attachment']} is in the pack this workbook came from, which is "
                    "not beside it", "keep the workbook in its pack directory, or pass that pack with --previous PACK")
            attachment = _attachment_in(source, str(r["attachment"]), r.get("attachment_sha256"), path, row_no)
        entry = Entry(framework=e["framework"], requirement=e["requirement"], statement=r["statement"], by=r["by"],
                      date=dt.date.fromisoformat(r["on"]), valid_until=dt.date.fromisoformat(r["valid_until"]))
        label = f"{r.get('entry') or path}, carried unchanged through {path.name} row {row_no}"
        out.append(Attestation(entry, label, attachment, r.get("attachment_sha256"), r.get("attachment_name")))
    return out


def _attachment_in(pack: Path, rel: str, sha256: Any, path: Path, row_no: int) -> Path:
    """The recorded attachment inside the source pack, only if the pack lists it with that hash: a workbook is
    input from outside, and its hidden column must not make us copy any other file into the next pack."""
    from evidence.pack import entry_state, read_manifest, unsafe_path

    listed = read_manifest(pack)["evidence"]["files"].get(rel) if not unsafe_path(rel) else None
    if not rel.startswith("attachments/") or listed is None or listed.get("sha256") != sha256 \
            or entry_state(pack, rel) is not None:
        raise AttestationError(f"{path}: {SHEET} row {row_no}: the recorded attachment {rel!r} is not a file the "
                               f"pack {pack} lists with that hash", "take the workbook from the pack again")
    return pack / rel


def _attestation(path: Path, row_no: int, e: dict[str, Any], header: list[str]) -> Attestation:
    """An attestation written (or changed) in the sheet: Owner, Statement, Attested on and Valid until required."""
    where = f"{e['framework']} {e['requirement']} is marked attested"
    for name, key, need in (("Owner", "owner", "who attests (name and role)"),
                            ("Statement", "statement", "what is attested, in a sentence or two (at least 10 characters)"),
                            ("Attested on", "on", "the date of the statement"),
                            ("Valid until", "valid_until", "when the statement must be renewed (no default is assumed)")):
        if len(str(e.get(key) or "").strip()) < (10 if key == "statement" else 2 if key == "owner" else 1):
            raise AttestationError(f"{path}: {SHEET}!{_letter(header, name)}{row_no}: {where} without {name}",
                                   f"fill in {need}")
    on, until = dt.date.fromisoformat(e["on"]), dt.date.fromisoformat(e["valid_until"])
    if until < on:
        raise AttestationError(f"{path}: {SHEET}!{_letter(header, 'Valid until')}{row_no}: Valid until {until} is "
                               f"before Attested on {on}", "enter the date the statement must be renewed")
    statement = e["statement"] + (f" (evidence: {e['evidence_link']})" if e.get("evidence_link") else "")
    entry = Entry(framework=e["framework"], requirement=e["requirement"], statement=statement, by=e["owner"],
                  date=on, valid_until=until)
    return Attestation(entry, f"{path}: {SHEET} row {row_no} ({e['framework']} {e['requirement']})", None, None)


def _letter(header: list[str], name: str) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(header.index(name) + 1)) if name in header else "?"
