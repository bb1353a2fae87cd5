"""Namespace scope classes as every access and monitoring collector needs them (same rules as namespaces.py)."""

from __future__ import annotations

from dataclasses import dataclass

from evidence.inventory import Inventory
from evidence.scope import SCOPE_LABEL, SYSTEM_NAMESPACES, NamespaceClass, Scope


@dataclass(frozen=True)
class NamespaceScope:
    cls: NamespaceClass
    in_scope: bool  # cde or connected, or unclassified when no scope was declared at all
    personal_data: bool


class Scopes:
    """Scope class of every namespace: the scope file beats the label; system namespaces are 'system'."""

    def __init__(self, inv: Inventory, scope: Scope) -> None:
        self.scope = scope
        self.labels = {str(n["metadata"]["name"]): dict(n["metadata"].get("labels") or {})
                       for n in inv.objects("Namespace", "")}
        self.declared = bool(scope.namespaces.cde or scope.namespaces.connected) or any(
            SCOPE_LABEL in labels for labels in self.labels.values())
        self._cache: dict[str, NamespaceScope] = {}

    def of(self, namespace: str | None) -> NamespaceScope:
        ns = namespace or ""
        found = self._cache.get(ns)
        if found is None:
            cls, _ = self.scope.classify(ns, self.labels.get(ns, {}))
            if cls == "unclassified" and ns in SYSTEM_NAMESPACES:
                cls = "system"
            in_scope = cls in ("cde", "connected") or (cls == "unclassified" and not self.declared)
            personal = ns in self.scope.data.personal_data or ns in self.scope.data.health_data
            found = self._cache[ns] = NamespaceScope(cls, in_scope, personal)
        return found

    def cde(self) -> list[str]:
        """CDE namespaces: those that exist, plus those the scope file names (a missing one is still CDE)."""
        names = set(self.labels) | set(self.scope.namespaces.cde)
        return sorted(n for n in names if self.of(n).cls == "cde")


def why(inv: Inventory, kind: str, group: str, plural: str, namespace: str | None = None) -> str | None:
    """None when the resource type was read; else why not, in the collection log's words."""
    return inv.status(kind, group, namespace).reason(plural, namespace)
