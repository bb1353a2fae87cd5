"""The shapes of the Kubernetes objects collectors read, checked at the inventory boundary (DESIGN.md trust rules).

Each model types only the fields auditpack reads (extra fields pass untouched), strictly: a string where a list
is expected (`spec.containers: "x"`, `metadata.labels: []`, `spec.rules: 5`) is a problem named by
`problem(obj)`, never a collector's crash. The checked object is kept as read; the models only judge it.
Custom resources whose fields are not modelled here still have their top-level sections checked.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# Deeper objects are refused: no real manifest nests this far, and every walk over the inventory stays shallow.
MAX_OBJECT_DEPTH = 100
INT64 = (-(2**63), 2**63 - 1)  # JSON numbers the API server (and our JSON encoder) can represent


class _M(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


StrMap = dict[str, str] | None
StrList = list[str] | None
Section = dict[str, Any] | None
IntOrStr = int | str


class OwnerReference(_M):
    kind: str | None = None
    name: str | None = None
    apiVersion: str | None = None
    controller: bool | None = None


class Metadata(_M):
    name: str
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    creationTimestamp: str | None = None
    labels: StrMap = None
    annotations: StrMap = None
    ownerReferences: list[OwnerReference] | None = None


class TemplateMetadata(Metadata):
    name: str | None = None  # type: ignore[assignment]  # pod templates carry no name


class Requirement(_M):
    key: str
    operator: str
    values: StrList = None


class LabelSelector(_M):
    matchLabels: StrMap = None
    matchExpressions: list[Requirement] | None = None


class KeyRef(_M):
    name: str | None = None
    key: str | None = None
    optional: bool | None = None


class EnvSource(_M):
    secretKeyRef: KeyRef | None = None
    configMapKeyRef: KeyRef | None = None
    fieldRef: Section = None
    resourceFieldRef: Section = None


class EnvVar(_M):
    name: str
    value: str | None = None
    valueFrom: EnvSource | None = None


class NameRef(_M):
    name: str | None = None
    optional: bool | None = None


class EnvFrom(_M):
    prefix: str | None = None
    configMapRef: NameRef | None = None
    secretRef: NameRef | None = None


class ContainerPort(_M):
    containerPort: int | None = None
    hostPort: int | None = None
    protocol: str | None = None
    name: str | None = None


class VolumeMount(_M):
    name: str
    mountPath: str
    subPath: str | None = None
    readOnly: bool | None = None


class Capabilities(_M):
    add: StrList = None
    drop: StrList = None


class SeccompProfile(_M):
    type: str | None = None
    localhostProfile: str | None = None


class SecurityContext(_M):
    privileged: bool | None = None
    runAsNonRoot: bool | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    allowPrivilegeEscalation: bool | None = None
    readOnlyRootFilesystem: bool | None = None
    capabilities: Capabilities | None = None
    seccompProfile: SeccompProfile | None = None


class PodSecurityContext(_M):
    runAsNonRoot: bool | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    fsGroup: int | None = None
    supplementalGroups: list[int] | None = None
    seccompProfile: SeccompProfile | None = None


class HTTPHeader(_M):
    name: str
    value: str


class HTTPGet(_M):
    path: str | None = None
    port: IntOrStr | None = None
    scheme: str | None = None
    httpHeaders: list[HTTPHeader] | None = None


class Probe(_M):
    httpGet: HTTPGet | None = None
    exec: Section = None
    tcpSocket: Section = None


class Container(_M):
    name: str | None = None
    image: str | None = None
    command: StrList = None
    args: StrList = None
    env: list[EnvVar] | None = None
    envFrom: list[EnvFrom] | None = None
    ports: list[ContainerPort] | None = None
    volumeMounts: list[VolumeMount] | None = None
    securityContext: SecurityContext | None = None
    resources: Section = None
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    startupProbe: Probe | None = None


class KeyToPath(_M):
    key: str
    path: str


class ConfigMapVolume(_M):
    name: str | None = None
    items: list[KeyToPath] | None = None


class SecretVolume(_M):
    secretName: str | None = None
    items: list[KeyToPath] | None = None


class HostPathVolume(_M):
    path: str
    type: str | None = None


class ClaimVolume(_M):
    claimName: str


class ProjectedSource(_M):
    configMap: ConfigMapVolume | None = None
    secret: ConfigMapVolume | None = None
    serviceAccountToken: Section = None


class ProjectedVolume(_M):
    sources: list[ProjectedSource] | None = None


class Volume(_M):
    name: str
    configMap: ConfigMapVolume | None = None
    secret: SecretVolume | None = None
    emptyDir: Section = None
    hostPath: HostPathVolume | None = None
    persistentVolumeClaim: ClaimVolume | None = None
    projected: ProjectedVolume | None = None


class PodSpec(_M):
    containers: list[Container] | None = None
    initContainers: list[Container] | None = None
    ephemeralContainers: list[Container] | None = None
    volumes: list[Volume] | None = None
    serviceAccountName: str | None = None
    serviceAccount: str | None = None
    automountServiceAccountToken: bool | None = None
    hostNetwork: bool | None = None
    hostPID: bool | None = None
    hostIPC: bool | None = None
    nodeName: str | None = None
    nodeSelector: StrMap = None
    securityContext: PodSecurityContext | None = None
    imagePullSecrets: list[NameRef] | None = None
    tolerations: list[dict[str, Any]] | None = None


class PodStatus(_M):
    phase: str | None = None
    podIP: str | None = None
    hostIP: str | None = None


class Pod(_M):
    metadata: Metadata
    spec: PodSpec | None = None
    status: PodStatus | None = None


class PodTemplate(_M):
    metadata: TemplateMetadata | None = None
    spec: PodSpec | None = None


class WorkloadSpec(_M):
    replicas: int | None = None
    selector: LabelSelector | None = None
    template: PodTemplate | None = None
    serviceName: str | None = None


class Workload(_M):
    metadata: Metadata
    spec: WorkloadSpec | None = None
    status: Section = None


class JobTemplate(_M):
    metadata: TemplateMetadata | None = None
    spec: WorkloadSpec | None = None


class CronJobSpec(_M):
    schedule: str | None = None
    suspend: bool | None = None
    jobTemplate: JobTemplate | None = None


class CronJob(_M):
    metadata: Metadata
    spec: CronJobSpec | None = None


class ServicePort(_M):
    port: int
    targetPort: IntOrStr | None = None
    nodePort: int | None = None
    protocol: str | None = None
    name: str | None = None
    appProtocol: str | None = None


class ServiceSpec(_M):
    type: str | None = None
    selector: StrMap = None
    ports: list[ServicePort] | None = None
    clusterIP: str | None = None
    externalIPs: StrList = None
    externalName: str | None = None
    loadBalancerSourceRanges: StrList = None


class LoadBalancerIngress(_M):
    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(_M):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(_M):
    loadBalancer: LoadBalancerStatus | None = None


class Service(_M):
    metadata: Metadata
    spec: ServiceSpec | None = None
    status: ServiceStatus | None = None


class ServiceBackendPort(_M):
    number: int | None = None
    name: str | None = None


class ServiceBackend(_M):
    name: str
    port: ServiceBackendPort | None = None


class IngressBackend(_M):
    service: ServiceBackend | None = None
    resource: Section = None


class IngressPath(_M):
    path: str | None = None
    pathType: str | None = None
    backend: IngressBackend | None = None


class IngressHTTP(_M):
    paths: list[IngressPath]


class IngressRule(_M):
    host: str | None = None
    http: IngressHTTP | None = None


class IngressTLS(_M):
    hosts: StrList = None
    secretName: str | None = None


class IngressSpec(_M):
    ingressClassName: str | None = None
    defaultBackend: IngressBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[IngressRule] | None = None


class Ingress(_M):
    metadata: Metadata
    spec: IngressSpec | None = None
    status: ServiceStatus | None = None


class IngressClassSpec(_M):
    controller: str | None = None
    parameters: Section = None


class IngressClass(_M):
    metadata: Metadata
    spec: IngressClassSpec | None = None


class IPBlock(_M):
    cidr: str
    except_: StrList = Field(default=None, alias="except")


class Peer(_M):
    podSelector: LabelSelector | None = None
    namespaceSelector: LabelSelector | None = None
    ipBlock: IPBlock | None = None


class PolicyPort(_M):
    protocol: str | None = None
    port: IntOrStr | None = None
    endPort: int | None = None


class IngressRuleNP(_M):
    from_: list[Peer] | None = Field(default=None, alias="from")
    ports: list[PolicyPort] | None = None


class EgressRuleNP(_M):
    to: list[Peer] | None = None
    ports: list[PolicyPort] | None = None


class NetworkPolicySpec(_M):
    podSelector: LabelSelector | None = None
    policyTypes: StrList = None
    ingress: list[IngressRuleNP] | None = None
    egress: list[EgressRuleNP] | None = None


class NetworkPolicy(_M):
    metadata: Metadata
    spec: NetworkPolicySpec | None = None


class Namespace(_M):
    metadata: Metadata
    status: Section = None


class NodeAddress(_M):
    type: str
    address: str


class NodeStatus(_M):
    addresses: list[NodeAddress] | None = None
    nodeInfo: StrMap = None
    conditions: list[dict[str, Any]] | None = None


class Node(_M):
    metadata: Metadata
    spec: Section = None
    status: NodeStatus | None = None


class PolicyRule(_M):
    apiGroups: StrList = None
    resources: StrList = None
    verbs: list[str]
    resourceNames: StrList = None
    nonResourceURLs: StrList = None


class AggregationRule(_M):
    clusterRoleSelectors: list[LabelSelector] | None = None


class Role(_M):
    metadata: Metadata
    rules: list[PolicyRule] | None = None
    aggregationRule: AggregationRule | None = None


class RoleRef(_M):
    kind: str
    name: str
    apiGroup: str | None = None


class RBACSubject(_M):
    kind: str
    name: str
    namespace: str | None = None
    apiGroup: str | None = None


class RoleBinding(_M):
    metadata: Metadata
    roleRef: RoleRef
    subjects: list[RBACSubject] | None = None


class Secret(_M):
    metadata: Metadata
    type: str | None = None
    data: StrMap = None
    stringData: StrMap = None


class ConfigMap(_M):
    metadata: Metadata
    data: StrMap = None
    binaryData: StrMap = None


class ServiceAccount(_M):
    metadata: Metadata
    automountServiceAccountToken: bool | None = None
    secrets: list[NameRef] | None = None
    imagePullSecrets: list[NameRef] | None = None


class PortMtls(_M):
    mode: str | None = None


class PeerAuthenticationSpec(_M):
    selector: LabelSelector | None = None
    mtls: PortMtls | None = None
    portLevelMtls: dict[str, PortMtls] | None = None


class PeerAuthentication(_M):
    metadata: Metadata
    spec: PeerAuthenticationSpec | None = None


class GatewayTLS(_M):
    mode: str | None = None
    certificateRefs: list[dict[str, Any]] | None = None


class Listener(_M):
    name: str | None = None
    port: int | None = None
    protocol: str | None = None
    hostname: str | None = None
    tls: GatewayTLS | None = None


class GatewaySpec(_M):
    gatewayClassName: str | None = None
    listeners: list[Listener] | None = None


class Gateway(_M):
    metadata: Metadata
    spec: GatewaySpec | None = None


class HTTPRouteSpec(_M):
    parentRefs: list[dict[str, Any]] | None = None
    hostnames: StrList = None
    rules: list[dict[str, Any]] | None = None


class HTTPRoute(_M):
    metadata: Metadata
    spec: HTTPRouteSpec | None = None


class IstioPort(_M):
    number: int | None = None
    protocol: str | None = None
    name: str | None = None


class IstioServerTLS(_M):
    mode: str | None = None
    credentialName: str | None = None
    httpsRedirect: bool | None = None
    minProtocolVersion: str | None = None


class IstioServer(_M):
    port: IstioPort | None = None
    hosts: StrList = None
    tls: IstioServerTLS | None = None


class IstioGatewaySpec(_M):
    selector: StrMap = None
    servers: list[IstioServer] | None = None


class IstioGateway(_M):
    metadata: Metadata
    spec: IstioGatewaySpec | None = None


class RuleSpec(_M):
    alert: str | None = None
    record: str | None = None
    expr: IntOrStr | None = None
    labels: StrMap = None


class RuleGroup(_M):
    name: str | None = None
    rules: list[RuleSpec] | None = None


class PrometheusRuleSpec(_M):
    groups: list[RuleGroup] | None = None


class PrometheusRule(_M):
    metadata: Metadata
    spec: PrometheusRuleSpec | None = None


class PodMetadata(_M):
    labels: StrMap = None
    annotations: StrMap = None


class MonitoringSpec(_M):
    replicas: int | None = None
    retention: str | None = None
    podMetadata: PodMetadata | None = None
    ruleSelector: LabelSelector | None = None
    ruleNamespaceSelector: LabelSelector | None = None
    storage: Section = None
    alerting: Section = None


class Monitoring(_M):
    metadata: Metadata
    spec: MonitoringSpec | None = None


class CertificateSpec(_M):
    secretName: str | None = None
    dnsNames: StrList = None
    issuerRef: Section = None
    duration: str | None = None
    renewBefore: str | None = None


class Certificate(_M):
    metadata: Metadata
    spec: CertificateSpec | None = None
    status: Section = None


class Generic(_M):
    """Any other kind: its top-level sections are at least mappings (or lists where the API has lists)."""

    metadata: Metadata
    spec: Section = None
    status: Section = None


class ListSpec(_M):
    """Custom resources whose spec holds lists of rules (Calico, Cilium, Traefik, Contour)."""

    ingress: list[dict[str, Any]] | None = None
    egress: list[dict[str, Any]] | None = None
    routes: list[dict[str, Any]] | None = None
    rules: list[dict[str, Any]] | None = None


class ListCR(_M):
    metadata: Metadata
    spec: ListSpec | None = None


class VulnerabilityReport(_M):
    metadata: Metadata
    report: Section = None


class PolicyReport(_M):
    metadata: Metadata
    results: list[dict[str, Any]] | None = None
    summary: Section = None


_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
MODELS: dict[tuple[str, str], type[_M]] = {
    ("", "Pod"): Pod,
    **{("apps" if k != "Job" else "batch", k): Workload for k in _WORKLOADS},
    ("batch", "CronJob"): CronJob,
    ("", "Service"): Service,
    ("networking.k8s.io", "Ingress"): Ingress,
    ("networking.k8s.io", "IngressClass"): IngressClass,
    ("networking.k8s.io", "NetworkPolicy"): NetworkPolicy,
    ("", "Namespace"): Namespace,
    ("", "Node"): Node,
    ("rbac.authorization.k8s.io", "Role"): Role,
    ("rbac.authorization.k8s.io", "ClusterRole"): Role,
    ("rbac.authorization.k8s.io", "RoleBinding"): RoleBinding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): RoleBinding,
    ("", "Secret"): Secret,
    ("", "ConfigMap"): ConfigMap,
    ("", "ServiceAccount"): ServiceAccount,
    ("security.istio.io", "PeerAuthentication"): PeerAuthentication,
    ("networking.istio.io", "Gateway"): IstioGateway,
    ("gateway.networking.k8s.io", "Gateway"): Gateway,
    ("gateway.networking.k8s.io", "HTTPRoute"): HTTPRoute,
    ("monitoring.coreos.com", "PrometheusRule"): PrometheusRule,
    ("monitoring.coreos.com", "Prometheus"): Monitoring,
    ("monitoring.coreos.com", "Alertmanager"): Monitoring,
    ("cert-manager.io", "Certificate"): Certificate,
    ("crd.projectcalico.org", "GlobalNetworkPolicy"): ListCR,
    ("crd.projectcalico.org", "NetworkPolicy"): ListCR,
    ("cilium.io", "CiliumNetworkPolicy"): ListCR,
    ("cilium.io", "CiliumClusterwideNetworkPolicy"): ListCR,
    ("traefik.io", "IngressRoute"): ListCR,
    ("projectcontour.io", "HTTPProxy"): ListCR,
    ("aquasecurity.github.io", "VulnerabilityReport"): VulnerabilityReport,
    ("wgpolicyk8s.io", "PolicyReport"): PolicyReport,
}
_ADAPTERS: dict[type[_M], TypeAdapter[Any]] = {}

_EXPECTED = {
    "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "string_type": "a string", "int_type": "an integer", "bool_type": "true or false", "missing": "a value",
    "float_type": "a number",
}
_UNION_TAGS = {"int", "str", "bool", "float"}


def depth_problem(obj: Any) -> str | None:
    """Why this decoded value cannot enter the inventory (too deep, a number out of range, a value that is
    not JSON), or None. Iterative, so a hostile nesting cannot exhaust the stack."""
    if _plainly_fine(obj):
        return None
    return _depth_problem(obj)


def _plainly_fine(obj: Any) -> bool:
    """True when `obj` is plainly acceptable: exact JSON types only, no key but strings, numbers in range, nesting
    within the limit. It builds no path (the paths were two thirds of a 10,000-pod load's checking); anything else,
    subclasses included, goes to `_depth_problem`, which names the field."""
    if type(obj) is not dict and type(obj) is not list:
        return False
    lo, hi = INT64
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_OBJECT_DEPTH:
            return False
        if type(value) is dict:
            for k in value:
                if type(k) is not str:
                    return False
            values: Any = value.values()
        else:
            values = value
        for v in values:
            t = type(v)
            if t is str or t is bool or v is None or t is float:
                continue
            if t is dict or t is list:
                stack.append((v, depth + 1))
            elif t is not int or not lo <= v <= hi:
                return False
    return True


def _depth_problem(obj: Any) -> str | None:
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_OBJECT_DEPTH:
                return f"{_short(path)}: nested deeper than {MAX_OBJECT_DEPTH} levels"
            for k, v in value.items():
                if not isinstance(k, str):
                    return f"{path or 'the object'}: a mapping key is {type(k).__name__}, not a string"
                if isinstance(v, dict | list):
                    stack.append((v, depth + 1, f"{path}.{k}" if path else k))
                elif not _scalar_ok(v):
                    return f"{path}.{k}".lstrip(".") + ": " + _scalar_problem(v)
        elif isinstance(value, list):
            if depth > MAX_OBJECT_DEPTH:
                return f"{_short(path)}: nested deeper than {MAX_OBJECT_DEPTH} levels"
            for i, v in enumerate(value):
                if isinstance(v, dict | list):
                    stack.append((v, depth + 1, f"{path}[{i}]"))
                elif not _scalar_ok(v):
                    return f"{path}[{i}]: " + _scalar_problem(v)
    return None


def _short(path: str) -> str:
    return path if len(path) <= 60 else path[:60] + "..."


def _scalar_ok(v: Any) -> bool:
    if isinstance(v, bool) or v is None or isinstance(v, str | float):
        return True
    return isinstance(v, int) and INT64[0] <= v <= INT64[1]


def _scalar_problem(v: Any) -> str:
    if isinstance(v, int):
        return "a number beyond the 64-bit range"
    return f"a value of type {type(v).__name__}, which JSON cannot hold"


def problem(obj: dict[str, Any]) -> str | None:
    """None when the object can enter the inventory, else one line naming the field and what was expected:
    "spec.containers: expected a list, found a string". `obj` has a string apiVersion and kind."""
    found = depth_problem(obj)
    if found is not None:
        return found
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    model = MODELS.get((group, kind), Generic)
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    try:
        adapter.validate_python(obj)
    except ValidationError as exc:
        return _describe(exc)
    return None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = _path(first["loc"])
    expected = [_EXPECTED.get(e["type"], e["msg"].lower()) for e in errors if _path(e["loc"]) == loc]
    wanted = " or ".join(dict.fromkeys(expected))
    if first["type"] == "missing":
        return f"{loc}: required field missing"
    return f"{loc}: expected {wanted}, found {_kind_of(first.get('input'))}"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS:
            continue
        else:
            out += f".{part}" if out else part
    return out


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)
