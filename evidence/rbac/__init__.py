"""Kubernetes RBAC semantics, pure: effective permissions per subject and `who_can` (see engine.py)."""

from evidence.rbac.engine import RBAC, Access, Grant, Rule, SubjectRef, rbac_for

__all__ = ["RBAC", "Access", "Grant", "Rule", "SubjectRef", "rbac_for"]
