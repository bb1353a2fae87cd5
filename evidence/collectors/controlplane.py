"""The API server's own configuration files, where they can be seen: the audit policy (--audit-policy-file) and
the EncryptionConfiguration (--encryption-provider-config). Judged from their content, not from the flag alone.

They live on the control-plane nodes, not in the API, so they are visible only when the snapshot holds them (an
audit.k8s.io Policy or apiserver.config.k8s.io EncryptionConfiguration document copied into the snapshot
directory) or when the scope names a ConfigMap holding them (`control_plane_files`). Otherwise the caller marks
the fact unknown (audit policy) or asks for the file (encryption), never a pass on the flag alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from evidence.inventory import Inventory, Obj

# What an audit policy must record for PCI DSS 10.2.1.x: reads of Secrets (10.2.1.1 access to cardholder data's
# keys), changes to RBAC (10.2.1.5 changes to identification and privileges), exec/attach into pods (10.2.1.2
# administrative actions), ServiceAccount token requests (credentials issued). (group, resource, subresource)
REQUIRED: dict[str, list[tuple[str, str, str | None]]] = {
    "Secrets": [("", "secrets", None)],
    "RBAC changes": [("rbac.authorization.k8s.io", r, None)
                     for r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")],
    "exec/attach into pods": [("", "pods", "exec"), ("", "pods", "attach")],
    "ServiceAccount tokens": [("", "serviceaccounts", "token")],
}


@dataclass
class Found:
    source: str | None = None  # "<kind> <name> (snapshot)" or "ConfigMap ns/name key k (scope)"
    document: dict[str, Any] | None = None
    objects: list[Obj] = field(default_factory=list)
    problem: str | None = None


def find(inv: Inventory, kind: str, group: str, configmap: str | None) -> Found:
    """The document of `kind` from the snapshot, else from the ConfigMap the scope names ("ns/name" or
    "ns/name#key")."""
    docs = inv.objects(kind, group)
    if docs:
        first = docs[0]
        return Found(f"{kind} {first.get('metadata', {}).get('name') or '(unnamed)'} in the snapshot", first, [first])
    if not configmap:
        return Found()
    ref, _, key = configmap.partition("#")
    ns, _, name = ref.partition("/")
    cm = inv.get("ConfigMap", ns, name, group="")
    if cm is None:
        return Found(problem=f"ConfigMap {ref} (named in the scope) was not found")
    data = cm.get("data") or {}
    keys = [key] if key else sorted(data)
    for k in keys:
        raw = data.get(k)
        doc: Any
        try:
            doc = yaml.safe_load(raw) if isinstance(raw, str) else None
        except yaml.YAMLError:
            doc = None
        if isinstance(doc, dict) and doc.get("kind") == kind:
            return Found(f"ConfigMap {ref} key {k} (named in the scope)", doc, [cm])
    return Found(objects=[cm], problem=f"ConfigMap {ref} holds no readable {kind} document")


def _matches(rule: dict[str, Any], group: str, resource: str, sub: str | None) -> tuple[bool, bool]:
    """(does the rule's `resources` cover group/resource/sub, only for some resourceNames). The audit.k8s.io/v1
    semantics: no `resources` = every resource; a group with no resource list = all its resources and subresources;
    "pods" is not "pods/exec"; "*" = all resources and subresources; "pods/*" and "*/exec" match the subresource."""
    selectors = rule.get("resources")
    if selectors is None:
        return not rule.get("nonResourceURLs"), False
    for sel in selectors if isinstance(selectors, list) else []:
        if not isinstance(sel, dict) or str(sel.get("group", "")) != group:
            continue
        names = [str(n) for n in sel.get("resources") or []]
        target = f"{resource}/{sub}" if sub else resource
        if not names or any(n in (target, "*") or (sub is not None and n in (f"{resource}/*", f"*/{sub}"))
                            for n in names):
            return True, bool(sel.get("resourceNames"))
    return False, False


def audit_gaps(policy: dict[str, Any]) -> list[str]:
    """What the policy does not record, by REQUIRED category. Rules are read in order and the first match wins,
    as the API server does; a rule restricted to some users, groups, verbs or namespaces counts as logging (if its
    level is not None) but does not exclude (if it is None), since it does not decide for every request."""
    rules = [r for r in policy.get("rules") or [] if isinstance(r, dict)]
    omitted = {str(s) for s in policy.get("omitStages") or []}
    gaps = []
    if not rules or all(str(r.get("level", "None")) == "None" for r in rules):
        return ["every request: the policy logs nothing (no rule, or level None for all)"]
    for label, targets in REQUIRED.items():
        missing = []
        for group, resource, sub in targets:
            logged = False
            for r in rules:
                hit, by_name = _matches(r, group, resource, sub)
                if not hit:
                    continue
                restricted = by_name or any(r.get(k) for k in ("users", "userGroups", "verbs", "namespaces"))
                level = str(r.get("level", "None"))
                if level != "None":
                    logged = True
                    break
                if not restricted:
                    break
            if not logged:
                missing.append(f"{resource}/{sub}" if sub else (f"{resource}.{group}" if group else resource))
        if missing:
            gaps.append(f"{label} ({', '.join(missing)})")
    if "ResponseComplete" in omitted and "ResponseStarted" in omitted:
        gaps.append("the ResponseStarted and ResponseComplete stages are omitted for every rule")
    return gaps


def first_secret_provider(config: dict[str, Any]) -> str | None:
    """The provider that encrypts new Secrets: the first provider of the first resource entry covering secrets
    (apiserver.config.k8s.io/v1 EncryptionConfiguration; `identity` first means stored in plain text)."""
    for entry in config.get("resources") or []:
        if not isinstance(entry, dict):
            continue
        names = [str(n) for n in entry.get("resources") or []]
        if not any(n in ("secrets", "*.*", "*.") for n in names):
            continue
        providers = entry.get("providers") or []
        if providers and isinstance(providers[0], dict) and providers[0]:
            return str(next(iter(providers[0])))
        return None
    return "identity"  # secrets not listed: the API server stores them unencrypted
