"""Kubernetes label selectors (matchLabels + matchExpressions) with the API's exact semantics."""

from __future__ import annotations

from typing import Any


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """True if `labels` satisfy the selector. An empty selector matches everything.

    A null selector in a NetworkPolicy peer means "not set"; callers decide what that means in context.
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key")
        op = expr.get("operator")
        values = expr.get("values") or []
        present = key in labels
        if op == "In":
            if not present or labels[key] not in values:
                return False
        elif op == "NotIn":
            if present and labels[key] in values:
                return False
        elif op == "Exists":
            if not present:
                return False
        elif op == "DoesNotExist":
            if present:
                return False
        else:
            # An unknown operator is rejected by the API server; never treat it as a match.
            return False
    return True


def is_empty(selector: dict[str, Any] | None) -> bool:
    """`{}` (select all). None (field absent) is also "select all" for spec.podSelector."""
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))
