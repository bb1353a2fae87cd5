"""Segmentation: namespaces (scope class, default deny per direction, unselected pods, reachability) and the flows
into the CDE, computed by the NetworkPolicy engine (PCI DSS 1.2.5, 1.3.1, 1.3.2, 1.4.1, 11.4.5)."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections import defaultdict
from datetime import datetime
from typing import Any

from evidence.collectors.cluster import detect_cni
from evidence.collectors.workloads import PodView, namespace_of, pods
from evidence.facts import CdeFlow, NamespaceFacts, NetworkPolicyAccess, PolicyWriter, Subject, WorkloadSegmentation
from evidence.inventory import Inventory, Obj, ObjectRef
from evidence.netpol.engine import Engine, engine_from_inventory
from evidence.netpol.model import ConnSet, IPSet, _subtract
from evidence.netpol.selectors import is_empty
from evidence.rbac import rbac_for
from evidence.scope import SCOPE_LABEL, SYSTEM_NAMESPACES, ApprovedFlow, Scope

ALL_V4, ALL_V6 = "0.0.0.0/0", "::/0"
JUSTIFICATION = "compliance.auditpack.io/justification"
# Not the internet: private, shared, loopback, link-local and unique-local ranges (RFC 1918, 6598, 4193).
NON_PUBLIC = IPSet.from_cidrs(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
                               "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128"])
PUBLIC = IPSet.all().difference(NON_PUBLIC)
PUBLIC_V4, PUBLIC_V6 = IPSet(v4=PUBLIC.v4), IPSet(v6=PUBLIC.v6)
EVERY_POD, EVERY_ADDRESS = "every pod in the cluster", "every public address"
WORKLOAD_TYPES = (("Deployment", "apps", "deployments"), ("StatefulSet", "apps", "statefulsets"),
                  ("DaemonSet", "apps", "daemonsets"), ("ReplicaSet", "apps", "replicasets"), ("Job", "batch", "jobs"),
                  ("CronJob", "batch", "cronjobs"), ("Prometheus", "monitoring.coreos.com", "prometheuses"),
                  ("Alertmanager", "monitoring.coreos.com", "alertmanagers"),
                  ("PrometheusAgent", "monitoring.coreos.com", "prometheusagents"),
                  ("ThanosRuler", "monitoring.coreos.com", "thanosrulers"))
# What the engine computes from every namespace's policies: unknown when the policies were not read.
REACHABILITY_FIELDS = ("ingress_from_namespaces", "egress_to_namespaces", "ingress_from_external", "egress_to_internet",
                       "egress_to_internet_unrestricted", "baseline_ingress_isolated", "baseline_egress_isolated",
                       "baseline_ingress_admits", "baseline_egress_reaches")


def policy_types(policy: Obj) -> set[str]:
    """spec.policyTypes, or as the API infers it: Ingress always, Egress when egress rules exist."""
    spec = policy.get("spec") or {}
    declared = spec.get("policyTypes")
    if declared:
        return {str(t) for t in declared}
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def collect(inv: Inventory, scope: Scope, as_of: datetime) -> list[Subject]:
    del as_of  # segmentation does not depend on time
    engine = engine_from_inventory(inv, probes=True)
    cni, cni_refs, cni_unknown = detect_cni(inv)
    enforced = cni.enforces_network_policy if cni else None
    reason = cni.reason if cni else (cni_unknown or "CNI unknown")
    reach = {f["namespace"]: f for f in engine.namespace_facts()}
    subjects: list[Subject] = []
    for ns in _namespaces(inv, scope, engine):
        f = reach.get(ns.name, {})
        ns.policies_enforced, ns.enforcement_reason = enforced, reason
        ns.ingress_from_namespaces = list(f.get("ingress_from_namespaces", []))
        ns.egress_to_namespaces = list(f.get("egress_to_namespaces", []))
        ns.ingress_from_external = list(f.get("ingress_from_external", []))
        internet = IPSet.from_cidrs(f.get("egress_to_external", [])).difference(NON_PUBLIC)
        ns.egress_to_internet = internet.cidrs()
        ns.egress_to_internet_unrestricted = internet == PUBLIC
        ns.evidence += cni_refs
        if enforced is None:
            ns.mark_unknown("policies_enforced", reason)
        subjects.append(ns)
    classes: dict[str, str] = {s.name: s.scope_class for s in subjects if isinstance(s, NamespaceFacts)}
    subjects += _cde_flows(inv, engine, scope, classes, enforced, reason, cni_refs)
    subjects.append(_policy_writers(inv, scope))
    return subjects


WRITE_VERBS = ("create", "update", "patch", "delete")


def _policy_writers(inv: Inventory, scope: Scope) -> NetworkPolicyAccess:
    """Who may change NetworkPolicies (PCI DSS 1.2.8: NSC configuration protected from unauthorised change)."""
    rbac = rbac_for(inv)
    by_grant: dict[tuple[str, str, str, str], list[str]] = {}
    system: dict[tuple[str, str, str, str], bool] = {}
    for g in rbac.grants:
        verbs = [v for v in WRITE_VERBS if any(r.allows(v, "networking.k8s.io", "networkpolicies") for r in g.rules)]
        if verbs:
            key = (g.subject.display(), g.binding, g.role, g.scope)
            by_grant[key] = sorted(set(by_grant.get(key, [])) | set(verbs), key=WRITE_VERBS.index)
            system[key] = g.bootstrap or g.subject.name == "system:masters" or g.subject.name.startswith("system:")
    admins = set(scope.network_admin_groups)
    writers = [PolicyWriter(subject=k[0], binding=k[1], role=k[2], scope=k[3], verbs=v,
                            approved=k[0].startswith("Group ") and k[0][6:] in admins, system=system[k])
               for k, v in sorted(by_grant.items())]
    subject = NetworkPolicyAccess(
        id="network-policy-access", name="who can change NetworkPolicies", admin_groups=sorted(admins),
        writers=writers,
        unapproved=[f"{w.subject} ({w.scope}, {w.binding} -> {w.role})" for w in writers
                    if not w.approved and not w.system])
    subject.evidence = [ObjectRef.of(o) for kind in ("ClusterRoleBinding", "RoleBinding")
                        for o in inv.objects(kind, "rbac.authorization.k8s.io")
                        if any(b == f"{kind}/{_binding_name(o)}" for _, b, _, _ in by_grant)]
    for kind, plural in (("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings"),
                         ("Role", "roles"), ("RoleBinding", "rolebindings")):
        st = inv.status(kind, "rbac.authorization.k8s.io")
        if st.status != "ok":
            subject.mark_unknown("unapproved", st.reason(plural) or "")
    if not admins:
        subject.mark_unknown("unapproved", "no network team declared: set network_admin_groups in the scope file")
    return subject


def _binding_name(o: Obj) -> str:
    meta = o.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta.get("name"))


def _covers_everyone(ips: IPSet) -> bool:
    """Every public IPv4 address, or every public IPv6 address (0.0.0.0/0 with private ranges excepted counts)."""
    return (ips & PUBLIC_V4) == PUBLIC_V4 or (ips & PUBLIC_V6) == PUBLIC_V6


def _everyone(exp: dict[str, Any], direction: str) -> tuple[list[str], list[str], list[str]]:
    """From an engine exposure, for one direction: (ports open to every pod, ports open to every public address,
    the policies opening them). Ports as labels; ['all'] is every port."""
    any_pod: ConnSet = exp["ingress_from_any_pod" if direction == "in" else "egress_to_any_pod"]
    external: list[tuple[IPSet, ConnSet]] = exp["ingress_from_external" if direction == "in" else "egress_to_external"]
    internet = ConnSet.empty()
    for ips, conn in external:
        if _covers_everyone(ips):
            internet = internet | conn
    policies = set(exp["ingress_any_pod_policies" if direction == "in" else "egress_any_pod_policies"])
    policies.update(p for p, _, ips, _ in exp["ingress_external_rules" if direction == "in" else "egress_external_rules"]
                    if _covers_everyone(ips))
    return (port_labels(any_pod) if not any_pod.is_empty() else [],
            port_labels(internet) if not internet.is_empty() else [], sorted(policies))


def _open_to_everyone(any_pod: list[str], internet: list[str]) -> list[str]:
    """Who may connect on every port: the widest opening, the one that voids a default deny."""
    return [who for who, ports in ((EVERY_POD, any_pod), (EVERY_ADDRESS, internet)) if ports == ["all"]]


def _host_ports(pod: PodView) -> list[str]:
    """Ports a pod binds on its node: hostPort entries, or every container port of a hostNetwork pod."""
    out = []
    for c in pod.containers:
        for p in c.get("ports") or []:
            port = p.get("hostPort") or (p.get("containerPort") if pod.host_network else None)
            if isinstance(port, int):
                out.append(f"{p.get('protocol') or 'TCP'} {port}")
    return out


def _namespaces(inv: Inventory, scope: Scope, engine: Engine) -> list[NamespaceFacts]:
    policies_by_ns: dict[str, list[Obj]] = defaultdict(list)
    for p in inv.objects("NetworkPolicy", "networking.k8s.io"):
        policies_by_ns[namespace_of(p)].append(p)
    all_pods, _ = pods(inv)
    pods_by_ns: dict[str, list[PodView]] = defaultdict(list)
    for pod in all_pods:
        pods_by_ns[pod.namespace].append(pod)
    namespaces: list[Obj | str] = list(inv.objects("Namespace", ""))
    # Objects applied without metadata.namespace live in `default`; a namespace holding pods or policies but with
    # no Namespace object in the input (a directory of upstream manifests) is still reported, by name.
    listed = {str(n["metadata"]["name"]) for n in inv.objects("Namespace", "")}
    namespaces += sorted((set(pods_by_ns) | set(policies_by_ns)) - listed)
    declared = bool(scope.namespaces.cde or scope.namespaces.connected) or any(
        SCOPE_LABEL in ((n["metadata"].get("labels")) or {}) for n in namespaces if not isinstance(n, str))
    selecting_nothing = set(engine.policies_selecting_nothing())
    # Pods of workloads with none observed come from templates: a workload type that could not be read leaves
    # pods unseen, so "this policy selects nothing" and "every pod is selected" cannot be claimed.
    workloads_why = next((why for kind, group, plural in WORKLOAD_TYPES
                          if (why := inv.status(kind, group).reason(plural)) is not None
                          and inv.status(kind, group).status in ("forbidden", "error")), None)
    out = []
    for ns_obj in namespaces:
        meta: dict[str, Any] = {"name": ns_obj} if isinstance(ns_obj, str) else ns_obj["metadata"]
        name = str(meta["name"])
        labels = dict(meta.get("labels") or {})
        cls, reason = scope.classify(name, labels)
        if cls == "unclassified" and name in SYSTEM_NAMESPACES:
            cls, reason = "system", "Kubernetes system namespace"
        in_scope = cls in ("cde", "connected") or (cls == "unclassified" and not declared)
        if cls == "unclassified" and not declared:
            reason += "; no scope declared, so treated as in scope"
        if isinstance(ns_obj, str):
            reason += "; no Namespace object in the input (its labels are unknown)"
        policies = policies_by_ns.get(name, [])
        ns_pods = pods_by_ns.get(name, [])
        subject = NamespaceFacts(
            id=name, name=name, namespace=name, scope_class=cls, scope_reason=reason, in_scope=in_scope,
            personal_data=name in scope.data.personal_data or name in scope.data.health_data,
            labels=labels, pod_security_enforce=labels.get("pod-security.kubernetes.io/enforce"),
            network_policies=len(policies), default_deny_ingress=False, default_deny_egress=False,
            default_deny_policies=[], pods=len(ns_pods), pods_not_selected=[], allow_all_ingress_policies=[],
            allow_all_egress_policies=[])
        _reachability(subject, engine, ns_pods, in_scope)
        subject.policies_selecting_nothing = sorted(
            str(p["metadata"]["name"]) for p in policies
            if f"{name}/{p['metadata']['name']}" in selecting_nothing
            and not is_empty((p.get("spec") or {}).get("podSelector")))
        subject.evidence = ([] if isinstance(ns_obj, str) else [ObjectRef.of(ns_obj)]) + \
            [ObjectRef.of(p) for p in policies]
        pol_status = inv.status("NetworkPolicy", "networking.k8s.io", name)
        pod_status = inv.status("Pod", "", name)
        if pol_status.status != "ok":
            why = pol_status.reason("networkpolicies", name) or ""
            for f in ("network_policies", "default_deny_ingress", "default_deny_egress", "pods_not_selected",
                      "allow_all_ingress_policies", "allow_all_egress_policies", "open_ingress_workloads",
                      "open_egress_workloads", "policies_selecting_nothing", "workloads", *REACHABILITY_FIELDS):
                subject.mark_unknown(f, why)
        if pod_status.status in ("forbidden", "error"):
            why = pod_status.reason("pods", name) or ""
            for f in ("pods_not_selected", "pods", "open_ingress_workloads", "open_egress_workloads",
                      "policies_selecting_nothing", "host_network_workloads", "host_port_workloads", "workloads"):
                subject.mark_unknown(f, why)
        if workloads_why is not None:
            for f in ("pods_not_selected", "policies_selecting_nothing"):
                subject.mark_unknown(f, workloads_why)
        if pod_status.status not in ("forbidden", "error") and any(p.derived for p in ns_pods):
            subject.scope_reason += "; pods of workloads with none observed: derived from workload templates"
        out.append(subject)
    return out


def _reachability(subject: NamespaceFacts, engine: Engine, ns_pods: list[PodView], in_scope: bool) -> None:
    """Default deny, isolation and openness of a namespace and its workloads, from what the engine computes."""
    base = engine.baseline(subject.name)
    in_pod, in_net, in_pols = _everyone(base, "in")
    out_pod, out_net, out_pols = _everyone(base, "out")
    subject.baseline_ingress_isolated = bool(base["ingress_isolated"])
    subject.baseline_egress_isolated = bool(base["egress_isolated"])
    subject.baseline_ingress_admits = _open_to_everyone(in_pod, in_net)
    subject.baseline_egress_reaches = _open_to_everyone(out_pod, out_net)
    subject.default_deny_ingress = subject.baseline_ingress_isolated and not subject.baseline_ingress_admits
    subject.default_deny_egress = subject.baseline_egress_isolated and not subject.baseline_egress_reaches
    # The policies whose rules open a new pod here to everyone: they are what voids the default deny.
    subject.baseline_ingress_policies = sorted(p.split("/", 1)[1] for p in in_pols) \
        if subject.baseline_ingress_admits else []
    subject.baseline_egress_policies = sorted(p.split("/", 1)[1] for p in out_pols) \
        if subject.baseline_egress_reaches else []
    subject.default_deny_policies = sorted(
        name for name, types in engine.baseline_policies(subject.name)
        if ("Ingress" in types and subject.default_deny_ingress) or ("Egress" in types and subject.default_deny_egress))
    by_owner: dict[str, list[PodView]] = defaultdict(list)
    for pod in ns_pods:
        by_owner[pod.owner].append(pod)
    ids = {owner: f"{subject.name}/{owner.split('/', 1)[1]}[{owner.split('/', 1)[0]}]" for owner in by_owner}
    known = {o: w for o, w in ids.items() if w in engine.workloads}
    namespaces = engine.workload_namespaces(known.values()) if in_scope else {}
    allow_in: set[str] = set()
    allow_out: set[str] = set()
    for owner in sorted(by_owner):
        wid = known.get(owner)
        if wid is None:
            continue
        exp = engine.exposure(wid)
        w_in_pod, w_in_net, w_in_pols = _everyone(exp, "in")
        w_out_pod, w_out_net, w_out_pols = _everyone(exp, "out")
        open_in, open_out = _open_to_everyone(w_in_pod, w_in_net), _open_to_everyone(w_out_pod, w_out_net)
        # A workload open because nothing selects it is reported by pods_not_selected; listed here are the ones a
        # policy opens (or that a namespace default deny would have been expected to cover).
        if open_in and (exp["ingress_isolated"] or subject.default_deny_ingress):
            allow_in.update(w_in_pols)
            subject.open_ingress_workloads.append(
                f"{owner} (admits {' and '.join(open_in)} on every port"
                + (f": {', '.join(w_in_pols)})" if exp["ingress_isolated"] else ": no ingress policy selects it)"))
        if open_out and (exp["egress_isolated"] or subject.default_deny_egress):
            allow_out.update(w_out_pols)
            subject.open_egress_workloads.append(
                f"{owner} (reaches {' and '.join(open_out)} on every port"
                + (f": {', '.join(w_out_pols)})" if exp["egress_isolated"] else ": no egress policy selects it)"))
        if not engine.selected(wid):
            subject.pods_not_selected.append(owner)
        group = by_owner[owner]
        host_ports = sorted({p for pod in group for p in _host_ports(pod)})
        host_network = any(pod.host_network for pod in group)
        if host_network:
            subject.host_network_workloads.append(owner)
        if host_ports:
            subject.host_port_workloads.append(f"{owner} ({', '.join(host_ports)})")
        if in_scope:
            srcs, _ = namespaces.get(wid, ([], []))
            subject.workloads.append(WorkloadSegmentation(
                name=owner, pods=len(group), derived=all(p.derived for p in group),
                ingress_isolated=bool(exp["ingress_isolated"]), egress_isolated=bool(exp["egress_isolated"]),
                admits_any_pod=w_in_pod, admits_internet=w_in_net, reaches_any_pod=w_out_pod,
                reaches_internet=w_out_net, open_policies=sorted(set(w_in_pols if open_in else [])
                                                                 | set(w_out_pols if open_out else [])),
                ingress_from_namespaces=srcs,
                ingress_from_external=sorted({c for ips, _ in exp["ingress_from_external"] for c in ips.cidrs()}),
                host_network=host_network, host_ports=host_ports))
    mine = f"{subject.name}/"
    subject.allow_all_ingress_policies = sorted(p[len(mine):] for p in allow_in | set(
        in_pols if subject.baseline_ingress_admits else []) if p.startswith(mine))
    subject.allow_all_egress_policies = sorted(p[len(mine):] for p in allow_out | set(
        out_pols if subject.baseline_egress_reaches else []) if p.startswith(mine))


def _namespace_of(endpoint: str) -> str | None:
    """'ns/name[Kind]' -> 'ns'; a CIDR (external) -> None."""
    return endpoint.split("/", 1)[0] if endpoint.endswith("]") else None


def port_labels(conns: ConnSet) -> list[str]:
    if conns.is_all:
        return ["all"]
    return [f"{proto} {lo}" if lo == hi else f"{proto} {lo}-{hi}" for proto, ranges in conns.ranges for lo, hi in ranges]


def _approved_conns(flow: ApprovedFlow) -> ConnSet:
    """'TCP/8080', 'UDP/53', 'TCP/8000-8100' or 'all' (no ports listed also means all)."""
    if not flow.ports or "all" in flow.ports:
        return ConnSet.all()
    acc = ConnSet.empty()
    for spec in flow.ports:
        proto, _, rng = spec.partition("/")
        lo, _, hi = rng.partition("-")
        acc = acc | ConnSet.of(proto.upper(), int(lo), int(hi or lo))
    return acc


def _minus(flow: ConnSet, approved: ConnSet) -> list[str]:
    """The allowed connections an approval does not cover, as labels."""
    if approved.is_all or flow.is_empty():
        return []
    if flow.is_all:
        return ["all except " + ", ".join(port_labels(approved))] if not approved.is_empty() else ["all"]
    allowed = dict(approved.ranges)
    out = []
    for proto, ranges in flow.ranges:
        out += [f"{proto} {lo}" if lo == hi else f"{proto} {lo}-{hi}"
                for lo, hi in _subtract(ranges, allowed.get(proto, ()))]
    return out


def _matches_endpoint(pattern: str, endpoint: str) -> bool:
    """An approved-flow end: a workload 'ns/name' (globs allowed, [Kind] optional) or a CIDR containing the source."""
    if not endpoint.endswith("]"):
        try:
            return ipaddress.ip_network(endpoint).subnet_of(ipaddress.ip_network(pattern))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False
    bare = endpoint.rsplit("[", 1)[0]
    return fnmatch.fnmatchcase(endpoint, pattern) or fnmatch.fnmatchcase(bare, pattern)


def _cde_flows(inv: Inventory, engine: Engine, scope: Scope, classes: dict[str, str], enforced: bool | None,
               reason: str, cni_refs: list[ObjectRef]) -> list[CdeFlow]:
    """Every connection the policies allow into a CDE workload from outside the CDE, with the rules behind it."""
    cde = {ns for ns, c in classes.items() if c == "cde"}
    if not cde:
        return []
    policies = {f"{namespace_of(p)}/{p['metadata']['name']}": p
                for p in inv.objects("NetworkPolicy", "networking.k8s.io")}
    out: list[CdeFlow] = []
    for entry in engine.iter_workload_connectivity():
        src, dst = str(entry["src"]), str(entry["dst"])
        dst_ns, src_ns = _namespace_of(dst), _namespace_of(src)
        if dst_ns not in cde or (src_ns is not None and src_ns in cde):
            continue
        conns = ConnSet.from_json(entry["conns"])
        probe = src if src_ns is not None else str(ipaddress.ip_network(src).network_address)
        why = engine.rules_allowing(probe, dst)
        ingress = why.get("ingress") or {}
        allowing = list(ingress.get("policies") or [])
        approval = next((a for a in scope.approved_flows
                         if _matches_endpoint(a.from_, src) and _matches_endpoint(a.to, dst)), None)
        unapproved = _minus(conns, _approved_conns(approval)) if approval else port_labels(conns)
        flow = CdeFlow(
            id=f"{src} -> {dst}", name=f"{src} -> {dst}", namespace=dst_ns, src=src, dst=dst, src_namespace=src_ns,
            dst_namespace=dst_ns, external=src_ns is None,
            src_scope_class=classes.get(src_ns, "unclassified") if src_ns else "external",
            ports=port_labels(conns), approved=approval is not None and not unapproved,
            approval=approval.reason if approval else None, unapproved_ports=unapproved, policies=allowing,
            rules=[f"{r['policy']} ingress[{r['rule']}]: {', '.join(port_labels(ConnSet.from_json(r['conns'])))}"
                   for r in ingress.get("rules") or []],
            unjustified_policies=[p for p in allowing if not ((policies.get(p, {}).get("metadata") or {})
                                                              .get("annotations") or {}).get(JUSTIFICATION)],
            destination_isolated=bool(ingress.get("isolated")), policies_enforced=enforced,
            enforcement_reason=reason)
        flow.evidence = [ObjectRef.of(policies[p]) for p in allowing if p in policies] + cni_refs
        ns_obj = inv.get("Namespace", None, dst_ns, group="")
        if ns_obj is not None:
            flow.evidence.insert(0, ObjectRef.of(ns_obj))
        if enforced is None:
            flow.mark_unknown("policies_enforced", reason)
        pol_why = inv.status("NetworkPolicy", "networking.k8s.io", dst_ns).reason("networkpolicies", dst_ns)
        if pol_why is not None:  # with the policies unread, "allowed" only means "nothing read forbids it"
            for f in ("approved", "unapproved_ports", "policies", "unjustified_policies", "destination_isolated"):
                flow.mark_unknown(f, pol_why)
        out.append(flow)
    return out
