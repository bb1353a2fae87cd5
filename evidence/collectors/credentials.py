"""Credentials written as plain values: container env values, arguments and ConfigMap keys (PCI DSS 8.6.2, 8.3.2;
regulations F13).

The redactor (evidence/redact.py) replaced every such value with its marker on the way in, judged by the name
(DB_PASSWORD, --client-secret, STRIPE_KEY) or by the shape (a PEM private key, a JWT, an AWS key, a URL with a
password, a `password=` line); other free text became a fingerprint, which is not a credential finding.
So the fact is the marker and where it sits: the value itself never reached the inventory.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from evidence.collectors.scoping import Scopes, why
from evidence.collectors.toplevel import workloads
from evidence.facts import NamespaceCredentials
from evidence.inventory import Inventory, ObjectRef
from evidence.redact import MASK
from evidence.scope import Scope


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[NamespaceCredentials]:
    del as_of
    scopes = Scopes(inv, scope)
    env: dict[str, list[str]] = defaultdict(list)
    args: dict[str, list[str]] = defaultdict(list)
    keys: dict[str, list[str]] = defaultdict(list)
    refs: dict[str, list[ObjectRef]] = defaultdict(list)
    for w in workloads(inv):
        hit = False
        for c in w.containers():
            name = c.get("name")
            for e in c.get("env") or []:
                if isinstance(e, dict) and e.get("value") == MASK:
                    env[w.namespace].append(f"{w.label} container {name} env {e.get('name')}")
                    hit = True
            argv = (c.get("command") or []) + (c.get("args") or [])
            for i, a in enumerate(argv):
                if isinstance(a, str) and MASK in a:
                    before = str(argv[i - 1]) if i else ""
                    # `--flag=MASK`, or the split form `--flag MASK` (the redactor keeps flag names, never values)
                    flag = a.split("=", 1)[0] if a.startswith("-") and "=" in a else \
                        before if before.startswith("-") and "=" not in before else "(a credential-shaped value)"
                    args[w.namespace].append(f"{w.label} container {name} argument {flag}")
                    hit = True
        if hit:
            refs[w.namespace].append(ObjectRef.of(w.obj))
    for cm in inv.objects("ConfigMap", ""):
        ns = str(cm["metadata"].get("namespace") or "")
        # A whole value masked, or a parsed config whose credential settings were masked inside it.
        masked = [k for section in ("data", "binaryData") for k, v in (cm.get(section) or {}).items()
                  if isinstance(v, str) and MASK in v]
        if masked:
            keys[ns] += [f"ConfigMap/{cm['metadata']['name']} key {k}" for k in sorted(masked)]
            refs[ns].append(ObjectRef.of(cm))
    namespaces = sorted({str(n["metadata"]["name"]) for n in inv.objects("Namespace", "")} | set(env) | set(args)
                        | set(keys))
    out = []
    for ns in namespaces:
        sc = scopes.of(ns)
        s = NamespaceCredentials(id=ns, name=ns, namespace=ns, namespace_class=sc.cls, in_scope=sc.in_scope,
                                 env_values=sorted(env[ns]), arguments=sorted(args[ns]),
                                 configmap_keys=sorted(keys[ns]))
        s.total = len(s.env_values) + len(s.arguments) + len(s.configmap_keys)
        s.evidence = refs[ns]
        for kind, group, plural, fields in (("ConfigMap", "", "configmaps", ("configmap_keys", "total")),
                                            ("Deployment", "apps", "deployments", ("env_values", "arguments", "total")),
                                            ("Pod", "", "pods", ("env_values", "arguments", "total"))):
            problem = why(inv, kind, group, plural, ns)
            if problem and "not served" not in problem and (kind != "Pod" or "permission" in problem):
                for f in fields:
                    s.mark_unknown(f, problem)
        out.append(s)
    return out
