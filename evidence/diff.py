"""Quarter over quarter: what changed between two packs (new failures, fixes, still failing, subjects added and
removed, waivers that expired, scope changes, requirement status changes). Pure: data in, data out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from evidence.errors import PackError
from evidence.pack import read_entry, require_intact


class ChangedFinding(BaseModel):
    control: str
    subject_type: str
    subject_id: str
    subject_name: str
    before: str | None
    after: str | None
    message: str | None = None


class ChangedRequirement(BaseModel):
    framework: str
    id: str
    title: str
    before: str  # requirement statuses (evaluate.RequirementStatus), e.g. automated_pass
    after: str
    note: str | None = Field(default=None, description="why the status may have changed without the cluster "
                             "changing, e.g. the earlier pack predates the requirement statuses of issue 12")


class Changes(BaseModel):
    """changes.json: the differences from a previous pack of the same cluster."""

    previous_pack: str
    previous_as_of: str
    previous_evidence_digest: str
    current_as_of: str
    same_cluster: bool
    new_failures: list[ChangedFinding] = Field(default_factory=list)
    fixed: list[ChangedFinding] = Field(default_factory=list)
    still_failing: list[ChangedFinding] = Field(default_factory=list)
    other_changes: list[ChangedFinding] = Field(default_factory=list)
    subjects_added: list[str] = Field(default_factory=list)
    subjects_removed: list[str] = Field(default_factory=list)
    waivers_expired: list[str] = Field(default_factory=list)
    scope_changes: list[str] = Field(default_factory=list)
    requirements_changed: list[ChangedRequirement] = Field(default_factory=list)
    controls_added: list[str] = Field(default_factory=list)
    controls_removed: list[str] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("new_failures", "fixed", "still_failing", "subjects_added",
                                                   "subjects_removed", "waivers_expired", "scope_changes",
                                                   "requirements_changed")}


def read_pack(pack: Path, role: str = "pack") -> dict[str, Any]:
    """The data files diff needs (manifest, results, facts, scope) from a pack that verifies first: a modified
    pack is an error naming what changed (exit 1), a file in place of a pack directory a usage error (exit 2)."""
    manifest = require_intact(pack, role)
    out: dict[str, Any] = {"path": str(pack), "manifest": manifest}
    for name in ("results", "facts", "scope"):
        rel = f"{name}.json"
        if rel not in manifest["evidence"]["files"]:
            raise PackError(f"{role} {pack} is not an audit pack: its manifest lists no {rel}",
                            "pass directories written by `auditpack collect`")
        try:
            out[name] = orjson.loads(read_entry(pack, rel))
        except orjson.JSONDecodeError as exc:
            raise PackError(f"{pack}/{rel}: not valid JSON (line {exc.lineno})",
                            "run `auditpack verify` on the pack") from None
    return out


def compare(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """Differences from `old` to `new`; both as read_pack returns them (or the same shape built in a run)."""
    o_ev, n_ev = old["manifest"]["evidence"], new["manifest"]["evidence"]
    changes = Changes(
        previous_pack=str(old.get("path", "")), previous_as_of=str(o_ev.get("as_of")),
        previous_evidence_digest=str(old["manifest"].get("evidence_digest", "")), current_as_of=str(n_ev.get("as_of")),
        same_cluster=(o_ev.get("cluster") or {}).get("kube_system_uid") == (n_ev.get("cluster") or {}).get(
            "kube_system_uid"))
    before = {(f["control"], f["subject_id"]): f for f in old["results"]["findings"]}
    after = {(f["control"], f["subject_id"]): f for f in new["results"]["findings"]}
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        f = a or b
        assert f is not None
        item = ChangedFinding(control=key[0], subject_type=f["subject_type"], subject_id=key[1],
                              subject_name=f["subject_name"], before=b["status"] if b else None,
                              after=a["status"] if a else None, message=(a or {}).get("message"))
        if item.after == "fail" and item.before != "fail":
            changes.new_failures.append(item)
        elif item.before == "fail" and item.after in ("pass", "not_applicable", None):
            changes.fixed.append(item)
        elif item.before == item.after == "fail":
            changes.still_failing.append(item)
        elif item.before != item.after:
            changes.other_changes.append(item)
    subjects = {(t, s["id"]) for t, ss in (old["facts"].get("subjects") or {}).items() for s in ss}
    now = {(t, s["id"]) for t, ss in (new["facts"].get("subjects") or {}).items() for s in ss}
    changes.subjects_added = sorted(f"{t}: {i}" for t, i in now - subjects)
    changes.subjects_removed = sorted(f"{t}: {i}" for t, i in subjects - now)
    old_expired = {(w["control"], w["subject"], w["ticket"]) for w in old["results"].get("expired_waivers") or []}
    changes.waivers_expired = sorted(f"{w['ticket']} ({w['control']} on {w['subject']}, expired {w['expired_on']})"
                                     for w in new["results"].get("expired_waivers") or []
                                     if (w["control"], w["subject"], w["ticket"]) not in old_expired)
    changes.scope_changes = _scope_changes(old.get("scope") or {}, new.get("scope") or {})
    old_req = {(r["framework"], r["id"]): r for r in old["results"]["requirements"]}
    for r in new["results"]["requirements"]:
        prev = old_req.get((r["framework"], r["id"]))
        if prev is not None and prev["status"] != r["status"]:
            # Packs written before issue 12 rolled a requirement up to "pass" whenever its controls passed; they
            # carry no status_text. Their pass -> automated_pass is the new rule, not a change in the cluster.
            note = (_OLD_ROLL_UP if "status_text" not in prev and prev["status"] == "pass"
                    and r["status"] == "automated_pass" else None)
            changes.requirements_changed.append(ChangedRequirement(framework=r["framework"], id=r["id"],
                                                                   title=r["title"], before=prev["status"],
                                                                   after=r["status"], note=note))
    old_ids = {c["id"] for c in old["results"]["controls"]}
    new_ids = {c["id"] for c in new["results"]["controls"]}
    changes.controls_added, changes.controls_removed = sorted(new_ids - old_ids), sorted(old_ids - new_ids)
    return changes


_OLD_ROLL_UP = ("the earlier pack read pass when every control passed; a requirement now passes only when its "
                "controls cover all of it")


def _scope_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key == "origin":
            continue
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    out.append(f"{key}.{sub}: {_short(a.get(sub))} -> {_short(b.get(sub))}")
        else:
            out.append(f"{key}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


def text(changes: Changes) -> str:
    """The human form `auditpack diff` prints."""
    lines = [f"changes since {changes.previous_as_of} ({changes.previous_pack})"]
    if not changes.same_cluster:
        lines.append("  warning: the packs come from different clusters (kube-system UIDs differ)")
    for title, items in (("new failures", changes.new_failures), ("fixed", changes.fixed),
                         ("still failing", changes.still_failing), ("other status changes", changes.other_changes)):
        lines.append(f"{title}: {len(items)}")
        lines += [f"  {i.control}  {i.subject_name}  {i.before or '-'} -> {i.after or '-'}"
                  + (f"  ({i.message})" if i.message and i.after == "fail" else "") for i in items]
    for title, entries in (("subjects added", changes.subjects_added), ("subjects removed", changes.subjects_removed),
                           ("waivers expired", changes.waivers_expired), ("scope changes", changes.scope_changes),
                           ("controls added", changes.controls_added), ("controls removed", changes.controls_removed)):
        lines.append(f"{title}: {len(entries)}")
        lines += [f"  {e}" for e in entries]
    lines.append(f"requirements changed: {len(changes.requirements_changed)}")
    lines += [f"  {r.framework} {r.id} {r.title}: {r.before.replace('_', ' ')} -> {r.after.replace('_', ' ')}"
              + (f"  ({r.note})" if r.note else "") for r in changes.requirements_changed]
    return "\n".join(lines) + "\n"
