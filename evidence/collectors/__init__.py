"""The collector registry: pure functions from (inventory, scope, time) to subjects, one module per fact family.

Listed explicitly here (never discovered by import side effects), in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from evidence.facts import Facts, Subject
from evidence.inventory import Inventory
from evidence.scope import Scope

CollectFn = Callable[[Inventory, Scope, datetime], Sequence[Subject]]


@dataclass(frozen=True)
class Collector:
    name: str
    subject_types: tuple[str, ...]  # what it produces (one engine run can yield several related types)
    collect: CollectFn


def registry() -> tuple[Collector, ...]:
    from evidence.collectors import (
        access,
        auth,
        certificates,
        cluster,
        credentials,
        ingress,
        monitoring,
        namespaces,
        posture,
        transit,
        vulnerabilities,
    )

    return (
        Collector("cluster", ("cluster",), cluster.collect),
        Collector("segmentation", ("namespace", "cde_flow", "network_policy_access"), namespaces.collect),
        Collector("ingress", ("ingress_host",), ingress.collect),
        Collector("certificates", ("certificate",), certificates.collect),
        Collector("transit", ("namespace_transit",), transit.collect),
        Collector("monitoring", ("monitoring",), monitoring.collect),
        Collector("authentication", ("host_auth", "auth_proxy"), auth.collect),
        Collector("rbac", ("rbac_subject",), access.collect_subjects),
        Collector("workload-identity", ("workload_identity",), access.collect_workloads),
        Collector("credentials", ("namespace_credentials",), credentials.collect),
        Collector("posture", ("namespace_posture",), posture.collect),
        Collector("vulnerabilities", ("image_scan",), vulnerabilities.collect),
    )


def collect_all(inv: Inventory, scope: Scope, as_of: datetime) -> Facts:
    subjects: dict[str, list[dict[str, object]]] = {}
    for c in registry():
        for t in c.subject_types:
            subjects.setdefault(t, [])
        try:
            produced = c.collect(inv, scope, as_of)
        except Exception as exc:  # a bug: name the collector and the object that triggers it (issue 13)
            from evidence.culprit import internal_error

            def rerun(subset: Inventory, fn: CollectFn = c.collect) -> object:
                return fn(subset, scope, as_of)

            raise internal_error(f"collector {c.name}", rerun, inv, exc) from exc
        for s in produced:
            if s.TYPE not in c.subject_types:
                raise AssertionError(f"collector {c.name} produced a {s.TYPE} subject it does not declare")
            subjects[s.TYPE].append(s.model_dump(mode="json"))
    return Facts(as_of=as_of, subjects=subjects)
