"""OSCAL 1.1 assessment results (oscal/assessment-results.json) from a pack's data, no proprietary adapter needed.

Like the PDF it is a rendering of the pack's data (listed under `renders` in the manifest), so it can cite the
evidence digest and every evidence file's hash.

One result per run; one observation per evaluated (control, subject) with its relevant evidence pointing to the
pack files (back-matter resources carrying their SHA-256); one finding per framework requirement with automated
controls, an attestation or a waiver, its target status `satisfied` only when the requirement itself passed (rated
fully automatable, nothing manual left, every control passing: evaluate.requirement_status). Every other status,
automated_pass included, is `not-satisfied`, with the nuance in props (auditpack-status, auditpack-status-text) and
remarks (what the assessor still needs).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from evidence import __version__

OSCAL_VERSION = "1.1.2"
NS = "https://auditpack.dev/ns/oscal"
_NOT_TOKEN = re.compile(r"[^\w.\-]")


def _uuid(seed: str, *parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "auditpack:" + seed + ":" + "/".join(parts)))


def token(text: str) -> str:
    """An OSCAL token (letters, digits, '.', '-', '_'; not starting with a digit or punctuation)."""
    t = _NOT_TOKEN.sub("_", text)
    return t if re.match(r"^[^\W\d]", t) else f"_{t}"


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": value}


def _time(value: Any) -> str:
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else datetime.now(UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def assessment_results(evidence: dict[str, Any], digest: str, results: dict[str, Any],
                       files: dict[str, dict[str, Any]], index: list[dict[str, Any]]) -> dict[str, Any]:
    """The assessment-results document. `files` are the pack files (path -> sha256, bytes) it may cite."""
    seed = digest
    cluster = evidence.get("cluster") or {}
    resources: dict[str, dict[str, Any]] = {path: {"uuid": _uuid(seed, "file", path), "title": path,
                        "rlinks": [{"href": path, "media-type": "application/json",
                                    "hashes": [{"algorithm": "SHA-256", "value": meta["sha256"]}]}]}
                 for path, meta in sorted(files.items())}
    file_of = {(r["ref"]["kind"], r["ref"].get("namespace"), r["ref"]["name"]): r["file"] for r in index}
    observations: list[dict[str, Any]] = []
    obs_by_control: dict[str, list[str]] = {}
    for f in results["findings"]:
        if f["status"] == "not_applicable":
            continue
        oid = _uuid(seed, "observation", f["control"], f["subject_id"])
        obs_by_control.setdefault(f["control"], []).append(oid)
        cited = sorted({str(p) for e in f["evidence"] if (p := file_of.get((e["kind"], e.get("namespace"), e["name"])))})
        relevant = [{"href": f"#{resources[p]['uuid']}", "description": f"inventory file {p}"} for p in cited
                    if p in resources]
        if "facts.json" in resources:
            relevant.append({"href": f"#{resources['facts.json']['uuid']}",
                             "description": f"{f['subject_type']} subject {f['subject_id']} in facts.json"})
        refs = "; ".join(_ref(e) for e in f["evidence"][:20])
        obs: dict[str, Any] = {
            "uuid": oid,
            "title": f"{f['control']} on {f['subject_name']}",
            "description": f["message"] or f"{f['control']}: {f['status']}",
            "props": [_prop("auditpack-status", f["status"]), _prop("control", f["control"])],
            "methods": ["TEST"],
            "types": ["control-objective"],
            "collected": _time(evidence.get("as_of")),
            "relevant-evidence": relevant or [{"href": "#" + resources["results.json"]["uuid"],
                                               "description": "results.json"}],
        }
        if refs:
            obs["remarks"] = f"Objects: {refs}"
        if f.get("waiver"):
            w = f["waiver"]
            obs["props"].append(_prop("waiver-ticket", str(w["ticket"])))
            obs["remarks"] = (obs.get("remarks", "") + f" Waived: {w['reason']} (approved by {w['approver']}, "
                              f"ticket {w['ticket']}, expires {w['expires']}).").strip()
        observations.append(obs)
    findings: list[dict[str, Any]] = []
    for r in results["requirements"]:
        # The current attestation (evidence/attest.py); expired ones no longer count.
        attestation = next((a for a in r.get("attestations") or [] if not a.get("expired")), None)
        if not r["controls"] and not attestation:
            continue
        satisfied = r["status"] == "pass"
        related = [{"observation-uuid": o} for c in r["controls"] for o in obs_by_control.get(c, [])]
        finding: dict[str, Any] = {
            "uuid": _uuid(seed, "finding", r["framework"], r["id"]),
            "title": f"{r['framework']} {r['id']}: {r['title']}",
            "description": r["summary"],
            "props": [_prop("auditpack-status", r["status"]), _prop("framework", r["framework"]),
                      _prop("requirement", token(r["id"])),
                      *([_prop("auditpack-status-text", r["status_text"])] if r.get("status_text") else [])],
            "target": {
                "type": "objective-id",
                "target-id": token(f"{r['framework']}_{r['id']}"),
                "title": f"{r['framework']} {r['id']}",
                "status": {"state": "satisfied" if satisfied else "not-satisfied",
                           "reason": "pass" if satisfied else ("fail" if r["status"] == "fail" else "other")},
            },
        }
        if r["status"] != "pass":
            remarks = {
                "automated_pass": "Automated checks pass: assessor evidence required. They cover only the cluster's "
                                  "part of the requirement; not counted as satisfied.",
                "inconclusive": "Evidence was missing, denied or unparseable; not counted as satisfied.",
                "waived": "A documented, unexpired waiver applies to the failing subjects.",
                "manual": "No automated evidence; see the attestation.",
                "not_applicable": "Not applicable per cluster evidence, assessor to confirm: the automated controls "
                                  "found nothing in scope to assess.",
                "fail": "An automated control failed.",
            }.get(r["status"], r["status"])
            if attestation and r["status"] in ("fail", "inconclusive", "waived"):
                remarks += " A current attestation covers the manual part only; the automated part did not pass."
            if r.get("manual_evidence"):
                remarks += f" Evidence the assessor needs: {r['manual_evidence']}"
            finding["target"]["status"]["remarks"] = remarks
        if related:
            finding["related-observations"] = related
        if attestation:
            finding["remarks"] = (f"Attested by {attestation.get('by')} on {attestation.get('on')}, valid until "
                                  f"{attestation.get('valid_until')}: {attestation.get('statement')}"
                                  + (f" (attachment {attestation['attachment']}, sha256 "
                                     f"{attestation.get('attachment_sha256')})" if attestation.get("attachment") else ""))
        findings.append(finding)
    catalogue = evidence.get("catalogue") or {}
    plan_uuid = _uuid(seed, "assessment-plan")
    back_matter = [{"uuid": plan_uuid, "title": "auditpack control catalogue (the assessment plan)",
                    "description": f"{catalogue.get('controls')} controls, catalogue digest {catalogue.get('digest')}; "
                                   "frameworks: " + ", ".join(f"{k} {v}" for k, v in
                                                              (catalogue.get("frameworks") or {}).items()),
                    "props": [_prop("catalogue-digest", str(catalogue.get("digest")))]},
                   *resources.values()]
    return {"assessment-results": {
        "uuid": _uuid(seed, "assessment-results"),
        "metadata": {
            "title": f"auditpack assessment of {cluster.get('name')}",
            "last-modified": _time(evidence.get("finished_at") or evidence.get("as_of")),
            "version": __version__,
            "oscal-version": OSCAL_VERSION,
            "props": [_prop("evidence-digest", digest), _prop("cluster", str(cluster.get("name"))),
                      *([_prop("kube-system-uid", str(cluster["kube_system_uid"]))]
                        if cluster.get("kube_system_uid") else [])],
        },
        "import-ap": {"href": f"#{plan_uuid}",
                      "remarks": "The control catalogue in the pack's manifest is the assessment plan."},
        "results": [{
            "uuid": _uuid(seed, "result"),
            "title": f"Automated evidence collection of {cluster.get('name')}",
            "description": f"Controls evaluated against the cluster as of {_time(evidence.get('as_of'))}.",
            "start": _time(evidence.get("started_at") or evidence.get("as_of")),
            "end": _time(evidence.get("finished_at") or evidence.get("as_of")),
            "props": [_prop(f"controls-{k}", str(v)) for k, v in sorted(results["control_counts"].items())],
            "reviewed-controls": {"control-selections": [{"include-all": {}}]},
            "observations": observations or None,
            "findings": findings or None,
        }],
        "back-matter": {"resources": back_matter},
    }}


def _ref(e: dict[str, Any]) -> str:
    where = f"{e['namespace']}/{e['name']}" if e.get("namespace") else e["name"]
    return f"{e['kind']}/{where}@{e.get('resourceVersion') or ''}".rstrip("@")


def render(root: Any, evidence: dict[str, Any], digest: str, out: Any) -> None:
    """Write the document for the pack at `root` (renderer signature, like render.pdf and render.xlsx)."""
    import orjson

    results = orjson.loads((root / "results.json").read_bytes())
    index = orjson.loads((root / "inventory" / "index.json").read_bytes())
    doc = prune_nulls(assessment_results(evidence, digest, results, evidence.get("files") or {}, index))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def prune_nulls(value: Any) -> Any:
    """OSCAL forbids empty arrays and nulls: drop them."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value
