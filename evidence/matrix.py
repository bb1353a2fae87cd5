"""The spreadsheet round trip: read what the compliance team wrote in a pack's control-matrix.xlsx (Owner,
Attestation, Auditor comment, Evidence link, Attested until) and carry it into the next pack.

Rows marked `attested` become attestations (statuses unchanged, expiry honoured, see evidence/attest.py); every
filled row is kept in matrix.json so the next workbook starts with it. A workbook of another cluster, or a row
whose hidden Key names a requirement the catalogue lacks, is refused with the cell that shows it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.attest import Attestation, AttestationError, Entry
from evidence.controls import Catalogue

SHEET = "Requirements"
CLUSTER_PROPERTY = "auditpack.kube_system_uid"  # written by render/xlsx.py
DIGEST_PROPERTY = "auditpack.evidence_digest"
FIELDS = {"Owner": "owner", "Attestation": "attestation", "Auditor comment": "comment",
          "Evidence link": "evidence_link", "Attested until": "valid_until"}
DEFAULT_VALIDITY = dt.timedelta(days=365)


@dataclass
class Matrix:
    path: Path
    cluster_uid: str | None
    pack_digest: str | None
    entries: list[dict[str, Any]]
    attestations: list[Attestation]

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


def load(path: Path, catalogue: Catalogue, today: dt.date) -> Matrix:
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
    if "Key" not in header:
        raise AttestationError(f"{path}: {SHEET}!1: the hidden Key column is missing",
                               "keep the Key column: it ties each row to its requirement")
    col = {name: i for i, name in enumerate(header)}
    key_letter = ws.cell(row=1, column=col["Key"] + 1).column_letter
    entries: list[dict[str, Any]] = []
    attestations: list[Attestation] = []
    for row_no, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
        key = row[col["Key"]]
        if not key:
            continue
        cell = f"{SHEET}!{key_letter}{row_no}"
        try:
            _, framework, requirement = str(key).split("|", 2)
        except ValueError:
            raise AttestationError(f"{path}: {cell}: Key {key!r} is not <pack>|<framework>|<requirement>",
                                   "do not edit the hidden Key column") from None
        fw = catalogue.framework(framework)
        if fw is None or fw.requirement(requirement) is None:
            raise AttestationError(f"{path}: {cell}: unknown requirement {framework} {requirement!r}",
                                   "the row does not match the current catalogue; remove it or fix the Key")
        values = {FIELDS[h]: row[col[h]] for h in FIELDS if h in col and row[col[h]] not in (None, "")}
        if not values:
            continue
        entry: dict[str, Any] = {"framework": framework, "requirement": requirement, "row": row_no, **{
            k: (v.date().isoformat() if isinstance(v, dt.datetime) else str(v)) for k, v in values.items()}}
        entries.append(entry)
        if str(values.get("attestation", "")).strip().lower() == "attested":
            attestations.append(_attestation(path, row_no, entry, header, today))
    return Matrix(path, props.get(CLUSTER_PROPERTY), props.get(DIGEST_PROPERTY), entries, attestations)


def _attestation(path: Path, row_no: int, e: dict[str, Any], header: list[str], today: dt.date) -> Attestation:
    owner = str(e.get("owner") or "").strip()
    if len(owner) < 2:
        letter = _letter(header, "Owner")
        raise AttestationError(f"{path}: {SHEET}!{letter}{row_no}: {e['framework']} {e['requirement']} is marked "
                               "attested without an Owner", "fill in who attests (name and role)")
    until = dt.date.fromisoformat(e["valid_until"]) if e.get("valid_until") else today + DEFAULT_VALIDITY
    statement = str(e.get("comment") or "").strip() or f"Attested in the control matrix by {owner}"
    if e.get("evidence_link"):
        statement += f" (evidence: {e['evidence_link']})"
    entry = Entry(framework=e["framework"], requirement=e["requirement"], statement=statement, by=owner,
                  date=min(today, until), valid_until=until)
    return Attestation(entry, f"{path}: {SHEET} row {row_no} ({e['framework']} {e['requirement']})", None, None)


def _letter(header: list[str], name: str) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(header.index(name) + 1) if name in header else "?"
