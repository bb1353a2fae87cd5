"""Generate the auditpack demo snapshot: a small, deliberately imperfect payments cluster.

Usage:
    python samples/generate_demo.py [--out DIR] [--now 2026-11-21T06:00:00Z]

Writes a snapshot of the fictional cluster "demo-payments" into samples/demo-cluster/
(or --out), deleting and recreating that directory first. The objects look the way
`kubectl get -o yaml` writes them, already redacted the way auditpack writes snapshots
(no managedFields, no last-applied-configuration, non-TLS Secrets without data).
The files deliberately mix the three input forms the loader supports: `kind: List`
files, multi-document YAML and a single-object JSON file in a subdirectory.

Everything is derived from --now (default 2026-11-21T06:00:00Z) and from stable hashes
of object names, so re-runs produce the same objects. Only key material differs between
runs: certificate keys and serials, and the WireGuard public keys. Private keys are
generated in memory and never written anywhere; TLS Secrets carry `tls.crt` only.

The deliberate compliance gaps are listed in samples/README.md.

Requires Python >= 3.11, cryptography and pyyaml.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import ipaddress
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NOW = "2026-11-21T06:00:00Z"
DEFAULT_OUT = Path(__file__).resolve().parent / "demo-cluster"

CLUSTER_NAME = "demo-payments"
API_SERVER = "https://203.0.113.10:6443"
K8S_VERSION = "v1.31.4"
LB_IP = "203.0.113.20"
IDP_URL = "https://idp.example.com/realms/payments"
IDP_CIDR = "198.51.100.25/32"
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
CALICO_VERSION = "v3.29.1"
CERT_MANAGER_VERSION = "v1.16.2"
INGRESS_NGINX_IMAGE = (
    "registry.k8s.io/ingress-nginx/controller:v1.11.3"
    "@sha256:d56f135b6462cfc476447cfe564b83a45e8bb7da2774963b00d12161112270b7"
)

# Fixed namespace for uuid5 so object uids are stable across runs.
UID_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-a1b2c3d4e5f6")
# Alphabet Kubernetes uses for generated name suffixes (k8s.io/apimachinery rand).
KUBE_ALNUM = "bcdfghjklmnpqrstvwxz2456789"

ACME_SERVERS = {
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


# --------------------------------------------------------------------------------------
# Nodes


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    region: str
    zone: str
    pod_cidr: str  # kubeadm-assigned spec.podCIDR
    ipam_block: str  # the Calico IPAM /26 block pods on this node get addresses from
    os_image: str
    kernel: str
    joined_days_ago: int
    control_plane: bool = False
    wireguard: bool = True  # whether Felix managed to bring WireGuard up (public key annotation)


NODES = (
    Node("sto-node-1", "10.10.1.11", "se-sto", "se-sto-a", "10.244.0.0/24", "10.244.41.192/26",
         "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", 412, control_plane=True),
    Node("sto-node-2", "10.10.1.12", "se-sto", "se-sto-b", "10.244.1.0/24", "10.244.118.64/26",
         "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", 412),
    # Joined later at the Gothenburg site; WireGuard never came up there (deliberate gap).
    Node("got-node-1", "10.20.1.11", "se-got", "se-got-a", "10.244.2.0/24", "10.244.203.0/26",
         "Ubuntu 22.04.5 LTS", "5.15.0-126-generic", 190, wireguard=False),
)
STO1, STO2, GOT1 = NODES
WORKERS = (STO2, GOT1)
CONTROL_PLANE_TAINT = {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}
PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


# --------------------------------------------------------------------------------------
# Small deterministic helpers


def stable_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "big")


def uid(kind: str, namespace: str | None, name: str) -> str:
    return str(uuid.uuid5(UID_NAMESPACE, f"{kind}/{namespace or ''}/{name}"))


def resource_version(kind: str, namespace: str | None, name: str) -> str:
    return str(3_000_000 + stable_int("rv", kind, namespace or "", name) % 1_800_000)


def kube_suffix(seed: str, length: int) -> str:
    n = stable_int("suffix", seed)
    chars = []
    for _ in range(length):
        n, i = divmod(n, len(KUBE_ALNUM))
        chars.append(KUBE_ALNUM[i])
    return "".join(chars)


def fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def image_id(image: str) -> str:
    """What the kubelet reports as imageID: repository@digest."""
    if "@" in image:
        return image
    repo = image.rsplit(":", 1)[0]
    return f"{repo}@{fake_digest(image)}"


def cluster_ip(namespace: str, name: str) -> str:
    offset = 256 + stable_int("svc", namespace, name) % (SERVICE_CIDR.num_addresses - 512)
    return str(SERVICE_CIDR.network_address + offset)


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_ref(owner: dict, *, block_deletion: bool = True) -> dict:
    ref = {
        "apiVersion": owner["apiVersion"],
        "controller": True,
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block_deletion:
        ref["blockOwnerDeletion"] = True
    return ref


# --------------------------------------------------------------------------------------
# Pod spec fragments


def env_list(env: dict) -> list[dict]:
    """{"NAME": "value" | {"fieldRef": ...} | {"secretKeyRef": ...}} -> container env list."""
    return [
        {"name": k, "value": v} if isinstance(v, str) else {"name": k, "valueFrom": v}
        for k, v in env.items()
    ]


def field_ref(path: str) -> dict:
    return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}


def secret_ref(name: str, key: str) -> dict:
    return {"secretKeyRef": {"key": key, "name": name}}


def container(name: str, image: str, *, ports=(), args=None, command=None, env=None,
              mounts=None, resources=None, security=None, probe=None) -> dict:
    """A container as the API server returns it (defaults filled in).

    ports: (name, containerPort) or (name, containerPort, protocol) tuples.
    probe: (path, port, scheme) for identical liveness/readiness HTTP probes.
    """
    c = {
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "name": name,
        "resources": resources or {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if command:
        c["command"] = list(command)
    if args:
        c["args"] = list(args)
    if env:
        c["env"] = env_list(env)
    if ports:
        c["ports"] = [
            {"containerPort": p[1], "name": p[0], "protocol": p[2] if len(p) > 2 else "TCP"}
            for p in ports
        ]
    if mounts:
        c["volumeMounts"] = [
            {"mountPath": path, "name": vol, **({"readOnly": True} if ro else {})}
            for vol, path, ro in mounts
        ]
    if security:
        c["securityContext"] = security
    if probe:
        path, port, scheme = probe
        for kind, failures in (("livenessProbe", 3), ("readinessProbe", 3)):
            c[kind] = {
                "failureThreshold": failures,
                "httpGet": {"path": path, "port": port, "scheme": scheme},
                "periodSeconds": 10,
                "successThreshold": 1,
                "timeoutSeconds": 1,
            }
    return c


def requests(cpu: str, memory: str, limit_memory: str | None = None) -> dict:
    res = {"requests": {"cpu": cpu, "memory": memory}}
    if limit_memory:
        res["limits"] = {"memory": limit_memory}
    return res


def restricted_container() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def restricted_pod(user: int) -> dict:
    return {
        "fsGroup": user,
        "runAsGroup": user,
        "runAsNonRoot": True,
        "runAsUser": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def host_path(name: str, path: str, kind: str = "") -> dict:
    return {"hostPath": {"path": path, "type": kind}, "name": name}


def tolerate_everything() -> list[dict]:
    return [{"effect": "NoSchedule", "operator": "Exists"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"}]


def pod_template(labels: dict, containers: list[dict], *, service_account: str = "default",
                 security: dict | None = None, volumes=None, tolerations=None, init=None,
                 host_network: bool = False, priority_class: str | None = None,
                 annotations: dict | None = None, grace: int = 30, **spec_extra) -> dict:
    spec = {
        "containers": containers,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": security or {},
        "serviceAccount": service_account,
        "serviceAccountName": service_account,
        "terminationGracePeriodSeconds": grace,
        **spec_extra,
    }
    if init:
        spec["initContainers"] = init
    if volumes:
        spec["volumes"] = volumes
    if tolerations:
        spec["tolerations"] = tolerations
    if host_network:
        spec["hostNetwork"] = True
    if priority_class:
        spec["priorityClassName"] = priority_class
    metadata = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": spec}


def qos_class(containers: list[dict]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(resources):
        return "BestEffort"
    if all(r.get("limits") and r.get("limits") == r.get("requests") for r in resources):
        return "Guaranteed"
    return "Burstable"


# NetworkPolicy fragments

def ns_peer(namespace: str, pod_labels: dict | None = None) -> dict:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": pod_labels}
    return peer


def pod_peer(labels: dict) -> dict:
    return {"podSelector": {"matchLabels": labels}}


def np_ports(*ports, protocol: str = "TCP") -> list[dict]:
    return [{"port": p, "protocol": protocol} for p in ports]


DNS_EGRESS = {
    "ports": np_ports(53, protocol="UDP") + np_ports(53),
    "to": [ns_peer("kube-system", {"k8s-app": "kube-dns"})],
}


def app_labels(name: str, *, component: str | None = None, part_of: str | None = None,
               version: str | None = None, instance: str | None = None) -> dict:
    labels = {"app.kubernetes.io/name": name}
    for key, value in (("component", component), ("part-of", part_of),
                       ("version", version), ("instance", instance)):
        if value:
            labels[f"app.kubernetes.io/{key}"] = value
    return labels


# --------------------------------------------------------------------------------------
# PKI (in memory only)


@dataclass
class Authority:
    cert: x509.Certificate
    key: object  # private key; never serialised
    aia_url: str


class Pki:
    """Fake ACME-style chains: a production chain and a separate staging chain."""

    def __init__(self, now: datetime):
        prod_root = self._ca("Demo Root CA", "Demo Certificate Authority", None,
                             now - timedelta(days=5 * 365), now + timedelta(days=15 * 365))
        staging_root = self._ca("(STAGING) Demo Staging Root X1",
                                "(STAGING) Demo Certificate Authority", None,
                                now - timedelta(days=5 * 365), now + timedelta(days=15 * 365))
        self.issuers = {
            "letsencrypt-prod": self._ca(
                "Demo Issuing CA R1", "Demo Certificate Authority", prod_root,
                now - timedelta(days=420), now + timedelta(days=675),
                aia="http://r1.i.demo-ca.example/"),
            "letsencrypt-staging": self._ca(
                "(STAGING) Demo Staging R1", "(STAGING) Demo Certificate Authority", staging_root,
                now - timedelta(days=420), now + timedelta(days=675),
                aia="http://stg-r1.i.demo-ca.example/"),
        }

    @staticmethod
    def _ca(cn: str, org: str, parent: Authority | None, not_before: datetime,
            not_after: datetime, aia: str = "") -> Authority:
        key = ec.generate_private_key(ec.SECP384R1()) if parent is None else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])
        issuer_cert, issuer_key = (parent.cert, parent.key) if parent else (None, key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject if issuer_cert else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0 if parent else None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
        )
        if issuer_cert:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
                critical=False)
        algorithm = hashes.SHA384() if parent is None else hashes.SHA256()
        return Authority(builder.sign(issuer_key, algorithm), key, aia)

    def issue_chain(self, issuer: str, dns_names: list[str], key_algorithm: str,
                    not_before: datetime, not_after: datetime) -> bytes:
        """Return PEM leaf + issuing CA (the root is not included, as ACME CAs serve it)."""
        ca = self.issuers[issuer]
        if key_algorithm == "ECDSA":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=key_algorithm == "RSA", data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.cert.public_key()), critical=False)
            .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(ca.aia_url))]), critical=False)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
            .sign(ca.key, hashes.SHA256())
        )
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca.cert))


def wireguard_public_key() -> str:
    """A real X25519 public key, as Felix publishes it; the private half is discarded."""
    public = x25519.X25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)).decode()


# --------------------------------------------------------------------------------------
# Object builder


class Builder:
    """Builds API objects; owns the clock, the PKI and the per-node pod IP allocator."""

    def __init__(self, now: datetime, pki: Pki):
        self.now = now
        self.pki = pki
        self._next_host = {n.name: 2 for n in NODES}  # .0 IPIP tunnel, .1 WireGuard

    def ago(self, days: float = 0, minutes: float = 0) -> str:
        return rfc3339(self.now - timedelta(days=days, minutes=minutes))

    def pod_ip(self, node: Node) -> str:
        block = ipaddress.ip_network(node.ipam_block)
        ip = block.network_address + self._next_host[node.name]
        self._next_host[node.name] += 1
        return str(ip)

    # ---- generic

    def obj(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            age: float, labels: dict | None = None, annotations: dict | None = None,
            owner: dict | None = None, owner_refs: list | None = None,
            generation: int | None = None, **body) -> dict:
        metadata = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        metadata["uid"] = uid(kind, namespace, name)
        metadata["resourceVersion"] = resource_version(kind, namespace, name)
        metadata["creationTimestamp"] = self.ago(age)
        if generation:
            metadata["generation"] = generation
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        if owner:
            owner_refs = [owner_ref(owner)]
        if owner_refs:
            metadata["ownerReferences"] = owner_refs
        out = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        out.update({k: v for k, v in body.items() if v is not None})
        return out

    def namespace(self, name: str, labels: dict, age: float) -> dict:
        return self.obj("v1", "Namespace", name, age=age,
                        labels={"kubernetes.io/metadata.name": name, **labels},
                        spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"})

    def service_account(self, ns: str, name: str, age: float, labels: dict | None = None) -> dict:
        return self.obj("v1", "ServiceAccount", name, ns, age=age, labels=labels)

    def service_accounts(self, ns: str, age: float, *names: str) -> list[dict]:
        return [self.service_account(ns, n, age) for n in ("default", *names)]

    def configmap(self, ns: str, name: str, data: dict, age: float, labels: dict | None = None) -> dict:
        return self.obj("v1", "ConfigMap", name, ns, age=age, labels=labels, data=data)

    def redacted_secret(self, ns: str, name: str, age: float, labels: dict | None = None,
                        secret_type: str = "Opaque") -> dict:
        """A non-TLS Secret as auditpack stores it: metadata and type only, no data."""
        return self.obj("v1", "Secret", name, ns, age=age, labels=labels, type=secret_type)

    # ---- networking

    def service(self, ns: str, name: str, *, selector: dict | None, ports, age: float,
                labels: dict | None = None, headless: bool = False,
                load_balancer_ip: str | None = None, fixed_ip: str | None = None) -> dict:
        """ports: (name, port, targetPort[, protocol]) tuples."""
        ip = "None" if headless else (fixed_ip or cluster_ip(ns, name))
        spec = {
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        }
        if selector:
            spec["selector"] = selector
        for p in ports:
            port = {"name": p[0], "port": p[1], "protocol": p[3] if len(p) > 3 else "TCP",
                    "targetPort": p[2]}
            if load_balancer_ip:
                port["nodePort"] = 30000 + stable_int("nodeport", ns, name, p[0]) % 2768
            spec["ports"].append(port)
        status = {"loadBalancer": {}}
        if load_balancer_ip:
            spec.update(type="LoadBalancer", allocateLoadBalancerNodePorts=True,
                        externalTrafficPolicy="Local",
                        healthCheckNodePort=30000 + stable_int("hc", ns, name) % 2768)
            status = {"loadBalancer": {"ingress": [{"ip": load_balancer_ip, "ipMode": "VIP"}]}}
        return self.obj("v1", "Service", name, ns, age=age, labels=labels, spec=spec, status=status)

    def ingress(self, ns: str, name: str, *, rules, tls, age: float, annotations: dict | None = None,
                labels: dict | None = None) -> dict:
        """rules: (host, path, service, port name) tuples; tls: (hosts, secretName) tuples."""
        spec = {"ingressClassName": "nginx", "rules": []}
        for host, path, svc, port in rules:
            spec["rules"].append({"host": host, "http": {"paths": [{
                "backend": {"service": {"name": svc, "port": {"name": port}}},
                "path": path, "pathType": "Prefix"}]}})
        if tls:
            spec["tls"] = [{"hosts": list(hosts), "secretName": secret} for hosts, secret in tls]
        return self.obj("networking.k8s.io/v1", "Ingress", name, ns, age=age, generation=1,
                        labels=labels, annotations=annotations, spec=spec,
                        status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}})

    def network_policy(self, ns: str, name: str, *, pod_selector: dict, types: list[str],
                       age: float, ingress=None, egress=None, annotations: dict | None = None) -> dict:
        spec = {"podSelector": {"matchLabels": pod_selector} if pod_selector else {},
                "policyTypes": types}
        if ingress is not None:
            spec["ingress"] = ingress
        if egress is not None:
            spec["egress"] = egress
        return self.obj("networking.k8s.io/v1", "NetworkPolicy", name, ns, age=age,
                        generation=1, annotations=annotations, spec=spec)

    # ---- pods and workloads

    def pod(self, ns: str, name: str, template: dict, node: Node, *, owner: dict,
            age: float, extra_labels: dict | None = None, block_deletion: bool = True,
            **spec_extra) -> dict:
        spec = copy.deepcopy(template["spec"])
        spec.update(nodeName=node.name, enableServiceLinks=True, preemptionPolicy="PreemptLowerPriority",
                    priority=PRIORITIES.get(spec.get("priorityClassName"), 0), **spec_extra)
        spec.setdefault("tolerations", []).extend([
            {"effect": "NoExecute", "key": f"node.kubernetes.io/{t}", "operator": "Exists",
             "tolerationSeconds": 300} for t in ("not-ready", "unreachable")])
        labels = {**template["metadata"]["labels"], **(extra_labels or {})}
        annotations = dict(template["metadata"].get("annotations", {}))
        if spec.get("hostNetwork"):
            ip = node.ip
        else:
            ip = self.pod_ip(node)
            annotations.update({
                "cni.projectcalico.org/containerID": hashlib.sha256(f"sandbox/{name}".encode()).hexdigest(),
                "cni.projectcalico.org/podIP": f"{ip}/32",
                "cni.projectcalico.org/podIPs": f"{ip}/32",
            })
        started = self.ago(age)
        status = {
            "conditions": [
                {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": t}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                          "PodScheduled")
            ],
            "containerStatuses": [self._container_status(name, c, age) for c in spec["containers"]],
            "hostIP": node.ip,
            "hostIPs": [{"ip": node.ip}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": qos_class(spec["containers"]),
            "startTime": started,
        }
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [
                self._container_status(name, c, age, terminated=True) for c in spec["initContainers"]]
        return self.obj("v1", "Pod", name, ns, age=age, labels=labels,
                        annotations=annotations or None,
                        owner_refs=[owner_ref(owner, block_deletion=block_deletion)],
                        spec=spec, status=status)

    def _container_status(self, pod: str, c: dict, age: float, terminated: bool = False) -> dict:
        started = self.ago(age, minutes=-1)
        restarts = 0 if terminated or stable_int("restarts", pod, c["name"]) % 4 else 1
        state = ({"terminated": {"containerID": None, "exitCode": 0, "finishedAt": started,
                                 "reason": "Completed", "startedAt": started}}
                 if terminated else {"running": {"startedAt": started}})
        container_id = "containerd://" + hashlib.sha256(f"{pod}/{c['name']}".encode()).hexdigest()
        if terminated:
            state["terminated"]["containerID"] = container_id
        return {
            "containerID": container_id,
            "image": c["image"],
            "imageID": image_id(c["image"]),
            "lastState": {},
            "name": c["name"],
            "ready": not terminated,
            "restartCount": restarts,
            "started": not terminated,
            "state": state,
        }

    def deployment(self, ns: str, name: str, template: dict, *, selector: dict, nodes,
                   age: float, rollout_age: float, labels: dict | None = None,
                   annotations: dict | None = None, revision: int = 1) -> list[dict]:
        """Deployment + its current ReplicaSet + one Pod per entry in `nodes`."""
        replicas = len(nodes)
        pod_hash = kube_suffix(ns + name, 10)
        template = copy.deepcopy(template)
        template["metadata"]["labels"].update(selector)
        deploy = self.obj(
            "apps/v1", "Deployment", name, ns, age=age, generation=revision, labels=labels,
            annotations={"deployment.kubernetes.io/revision": str(revision), **(annotations or {})},
            spec={"progressDeadlineSeconds": 600, "replicas": replicas, "revisionHistoryLimit": 10,
                  "selector": {"matchLabels": selector},
                  "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                               "type": "RollingUpdate"},
                  "template": template},
            status={"availableReplicas": replicas,
                    "conditions": [
                        {"lastTransitionTime": self.ago(rollout_age), "lastUpdateTime": self.ago(rollout_age),
                         "message": "Deployment has minimum availability.",
                         "reason": "MinimumReplicasAvailable", "status": "True", "type": "Available"},
                        {"lastTransitionTime": self.ago(age), "lastUpdateTime": self.ago(rollout_age),
                         "message": f'ReplicaSet "{name}-{pod_hash}" has successfully progressed.',
                         "reason": "NewReplicaSetAvailable", "status": "True", "type": "Progressing"}],
                    "observedGeneration": revision, "readyReplicas": replicas, "replicas": replicas,
                    "updatedReplicas": replicas})
        rs_template = copy.deepcopy(template)
        rs_template["metadata"]["labels"]["pod-template-hash"] = pod_hash
        rs = self.obj(
            "apps/v1", "ReplicaSet", f"{name}-{pod_hash}", ns, age=rollout_age, generation=1,
            labels={**(labels or {}), **rs_template["metadata"]["labels"]},
            annotations={"deployment.kubernetes.io/desired-replicas": str(replicas),
                         "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                         "deployment.kubernetes.io/revision": str(revision)},
            owner=deploy,
            spec={"replicas": replicas,
                  "selector": {"matchLabels": {**selector, "pod-template-hash": pod_hash}},
                  "template": rs_template},
            status={"availableReplicas": replicas, "fullyLabeledReplicas": replicas,
                    "observedGeneration": 1, "readyReplicas": replicas, "replicas": replicas})
        pods = [
            self.pod(ns, f"{rs['metadata']['name']}-{kube_suffix(f'{ns}/{name}/{i}', 5)}",
                     rs_template, node, owner=rs, age=rollout_age - 0.001 * (i + 1))
            for i, node in enumerate(nodes)
        ]
        return [deploy, rs, *pods]

    def daemonset(self, ns: str, name: str, template: dict, *, selector: dict, age: float,
                  pod_age: float, labels: dict | None = None, nodes=NODES) -> list[dict]:
        """DaemonSet + one Pod per node (all three nodes unless told otherwise)."""
        template = copy.deepcopy(template)
        template["metadata"]["labels"].update(selector)
        n = len(nodes)
        ds = self.obj(
            "apps/v1", "DaemonSet", name, ns, age=age, generation=1, labels=labels,
            annotations={"deprecated.daemonset.template.generation": "1"},
            spec={"revisionHistoryLimit": 10, "selector": {"matchLabels": selector},
                  "template": template,
                  "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                                     "type": "RollingUpdate"}},
            status={"currentNumberScheduled": n, "desiredNumberScheduled": n, "numberAvailable": n,
                    "numberMisscheduled": 0, "numberReady": n, "observedGeneration": 1,
                    "updatedNumberScheduled": n})
        revision_hash = kube_suffix(f"ds/{ns}/{name}", 10)
        pods = []
        for i, node in enumerate(nodes):
            affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node.name]}]}]}}}
            pods.append(self.pod(
                ns, f"{name}-{kube_suffix(f'{ns}/{name}/{node.name}', 5)}", template, node,
                owner=ds, age=pod_age - 0.001 * i, affinity=affinity,
                extra_labels={"controller-revision-hash": revision_hash,
                              "pod-template-generation": "1"}))
        return [ds, *pods]

    def statefulset(self, ns: str, name: str, template: dict, *, selector: dict, nodes,
                    service_name: str, age: float, pod_age: float, labels: dict | None = None,
                    volume_claims: dict | None = None, owner: dict | None = None) -> list[dict]:
        """StatefulSet + pods <name>-0..N. volume_claims: {claim name: (storage, storageClass)}."""
        template = copy.deepcopy(template)
        template["metadata"]["labels"].update(selector)
        n = len(nodes)
        vcts = [
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": claim},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": size}},
                      "storageClassName": storage_class, "volumeMode": "Filesystem"},
             "status": {"phase": "Pending"}}
            for claim, (size, storage_class) in (volume_claims or {}).items()
        ]
        revision = f"{name}-{kube_suffix(f'sts/{ns}/{name}', 10)}"
        sts = self.obj(
            "apps/v1", "StatefulSet", name, ns, age=age, generation=1, labels=labels, owner=owner,
            spec={"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                  "podManagementPolicy": "OrderedReady" if owner is None else "Parallel",
                  "replicas": n, "revisionHistoryLimit": 10,
                  "selector": {"matchLabels": selector}, "serviceName": service_name,
                  "template": template,
                  "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"},
                  **({"volumeClaimTemplates": vcts} if vcts else {})},
            status={"availableReplicas": n, "collisionCount": 0, "currentReplicas": n,
                    "currentRevision": revision, "observedGeneration": 1, "readyReplicas": n,
                    "replicas": n, "updateRevision": revision, "updatedReplicas": n})
        pods = []
        for i, node in enumerate(nodes):
            pod_name = f"{name}-{i}"
            pod_template_i = copy.deepcopy(template)
            claims = [{"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{pod_name}"}}
                      for claim in (volume_claims or {})]
            pod_template_i["spec"]["volumes"] = claims + pod_template_i["spec"].get("volumes", [])
            pods.append(self.pod(
                ns, pod_name, pod_template_i, node, owner=sts, age=pod_age - 0.001 * i,
                hostname=pod_name, subdomain=service_name,
                extra_labels={"apps.kubernetes.io/pod-index": str(i),
                              "controller-revision-hash": revision,
                              "statefulset.kubernetes.io/pod-name": pod_name}))
        return [sts, *pods]

    # ---- cert-manager

    def managed_certificate(self, ingress: dict, secret_name: str, dns_names: list[str], *,
                            issuer: str, key_algorithm: str, valid_from_days: int,
                            valid_until_days: int, revision: int, age: float,
                            ready: bool = True, failed_attempts: int = 0,
                            last_failure_days: float = 0, failure_message: str = "") -> list[dict]:
        """A Certificate created by ingress-shim for `ingress`, plus its kubernetes.io/tls Secret.

        valid_from_days / valid_until_days are relative to now (negative = in the past).
        """
        ns = ingress["metadata"]["namespace"]
        not_before = self.now + timedelta(days=valid_from_days)
        not_after = self.now + timedelta(days=valid_until_days)
        renewal = not_after - (not_after - not_before) / 3  # cert-manager default: 1/3 lifetime
        chain = self.pki.issue_chain(issuer, dns_names, key_algorithm, not_before, not_after)

        if ready:
            ready_cond = {"lastTransitionTime": rfc3339(not_before), "message":
                          "Certificate is up to date and has not expired", "observedGeneration": 1,
                          "reason": "Ready", "status": "True", "type": "Ready"}
        else:
            ready_cond = {"lastTransitionTime": rfc3339(not_after), "message":
                          f"Certificate expired on {not_after.strftime('%a, %d %b %Y %H:%M:%S UTC')}",
                          "observedGeneration": 1, "reason": "Expired", "status": "False",
                          "type": "Ready"}
        status = {"conditions": [ready_cond], "notAfter": rfc3339(not_after),
                  "notBefore": rfc3339(not_before), "renewalTime": rfc3339(renewal),
                  "revision": revision}
        if failed_attempts:
            failed_at = self.ago(last_failure_days)
            status["conditions"].append({
                "lastTransitionTime": failed_at, "observedGeneration": 1, "reason": "Failed",
                "message": f"The certificate request has failed to complete and will be retried: "
                           f"{failure_message}", "status": "False", "type": "Issuing"})
            status["failedIssuanceAttempts"] = failed_attempts
            status["lastFailureTime"] = failed_at

        spec = {"dnsNames": list(dns_names),
                "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
                "secretName": secret_name,
                "usages": ["digital signature", "key encipherment"]}
        if key_algorithm == "ECDSA":
            spec["privateKey"] = {"algorithm": "ECDSA", "size": 256}
        certificate = self.obj(
            "cert-manager.io/v1", "Certificate", secret_name, ns, age=age, generation=1,
            owner=ingress, spec=spec, status=status)
        secret = self.obj(
            "v1", "Secret", secret_name, ns, age=age,
            labels={"controller.cert-manager.io/fao": "true"},
            annotations={"cert-manager.io/alt-names": ",".join(dns_names),
                         "cert-manager.io/certificate-name": secret_name,
                         "cert-manager.io/common-name": dns_names[0],
                         "cert-manager.io/ip-sans": "",
                         "cert-manager.io/issuer-group": "cert-manager.io",
                         "cert-manager.io/issuer-kind": "ClusterIssuer",
                         "cert-manager.io/issuer-name": issuer,
                         "cert-manager.io/uri-sans": ""},
            type="kubernetes.io/tls",
            # Deliberately no tls.key: private keys never leave memory.
            data={"tls.crt": base64.b64encode(chain).decode()})
        return [certificate, secret]


# --------------------------------------------------------------------------------------
# Cluster-scoped objects


NAMESPACES = {  # name: (labels, days ago)
    "default": ({}, 412),
    "kube-node-lease": ({}, 412),
    "kube-public": ({}, 412),
    "kube-system": ({}, 412),
    "ingress-nginx": ({**app_labels("ingress-nginx", instance="ingress-nginx"),
                       "pci.auditpack.io/scope": "connected",
                       "pod-security.kubernetes.io/enforce": "baseline"}, 405),
    "cert-manager": ({}, 405),
    "monitoring": ({"pod-security.kubernetes.io/enforce": "privileged"}, 400),
    "logging": ({"pod-security.kubernetes.io/enforce": "privileged"}, 400),
    "auth": ({"pci.auditpack.io/scope": "connected",
              "pod-security.kubernetes.io/enforce": "restricted"}, 380),
    "payments": ({"pci.auditpack.io/scope": "cde",
                  "pod-security.kubernetes.io/enforce": "restricted",
                  "pod-security.kubernetes.io/enforce-version": "latest"}, 372),
    # Connected, but Pod Security only warns and audits here; nothing is enforced.
    "storefront": ({"pci.auditpack.io/scope": "connected",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted"}, 365),
    # Security tooling: runtime detection, vulnerability scanning, policy reports.
    "falco": ({"pod-security.kubernetes.io/enforce": "privileged"}, 300),
    "trivy-system": ({}, 300),
    "kyverno": ({}, 300),
}


def node_object(b: Builder, n: Node) -> dict:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/region": n.region,
        "topology.kubernetes.io/zone": n.zone,
    }
    if n.control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    block = ipaddress.ip_network(n.ipam_block)
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "projectcalico.org/IPv4Address": f"{n.ip}/24",
        "projectcalico.org/IPv4IPIPTunnelAddr": str(block.network_address),
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if n.wireguard:
        annotations["projectcalico.org/IPv4WireguardInterfaceAddr"] = str(block.network_address + 1)
        annotations["projectcalico.org/WireguardPublicKey"] = wireguard_public_key()
    heartbeat = b.ago(minutes=2)
    joined = b.ago(n.joined_days_ago)
    conditions = [("NetworkUnavailable", "False", "CalicoIsUp", "Calico is running on this node")] + [
        (t, "False", r, m) for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))
    ] + [("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
    machine = uuid.uuid5(UID_NAMESPACE, f"machine/{n.name}")
    capacity = {"cpu": "8", "ephemeral-storage": "205314024Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "32827144Ki", "pods": "110"}
    spec = {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]}  # no providerID: bare metal
    if n.control_plane:
        spec["taints"] = [CONTROL_PLANE_TAINT]
    return b.obj("v1", "Node", n.name, age=n.joined_days_ago, labels=labels,
                 annotations=annotations, spec=spec, status={
                     "addresses": [{"address": n.ip, "type": "InternalIP"},
                                   {"address": n.name, "type": "Hostname"}],
                     "allocatable": {**capacity, "ephemeral-storage": "189217404206",
                                     "memory": "32724744Ki"},
                     "capacity": capacity,
                     "conditions": [
                         {"lastHeartbeatTime": heartbeat, "lastTransitionTime": joined,
                          "message": m, "reason": r, "status": s, "type": t}
                         for t, s, r, m in conditions],
                     "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                     "nodeInfo": {
                         "architecture": "amd64",
                         "bootID": str(uuid.uuid5(UID_NAMESPACE, f"boot/{n.name}")),
                         "containerRuntimeVersion": "containerd://1.7.24",
                         "kernelVersion": n.kernel,
                         "kubeProxyVersion": K8S_VERSION,
                         "kubeletVersion": K8S_VERSION,
                         "machineID": machine.hex,
                         "operatingSystem": "linux",
                         "osImage": n.os_image,
                         "systemUUID": str(machine).upper(),
                     }})


def rbac(b: Builder) -> list[dict]:
    def cluster_role(name: str, rules: list[dict], age: float, labels: dict | None = None,
                     annotations: dict | None = None) -> dict:
        return b.obj("rbac.authorization.k8s.io/v1", "ClusterRole", name, age=age, labels=labels,
                     annotations=annotations, rules=rules)

    def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict], age: float,
                ns: str | None = None, labels: dict | None = None, annotations: dict | None = None):
        return b.obj("rbac.authorization.k8s.io/v1", kind, name, ns, age=age, labels=labels,
                     annotations=annotations,
                     roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                     subjects=subjects)

    def sa(ns: str, name: str) -> dict:
        return {"kind": "ServiceAccount", "name": name, "namespace": ns}

    def group(name: str) -> dict:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}

    bootstrap = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    autoupdate = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    read = ["get", "list", "watch"]
    objs = [
        cluster_role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                       {"nonResourceURLs": ["*"], "verbs": ["*"]}],
                     412, bootstrap, autoupdate),
        binding("ClusterRoleBinding", "cluster-admin", "ClusterRole", "cluster-admin",
                [group("system:masters")], 412, labels=bootstrap, annotations=autoupdate),
        binding("ClusterRoleBinding", "platform-admins", "ClusterRole", "cluster-admin",
                [group("oidc:platform-admins")], 410),
        # A CI token that was given cluster-admin "to get the release going" (deliberate gap:
        # access.cluster-admin).
        binding("ClusterRoleBinding", "release-bot-admin", "ClusterRole", "cluster-admin",
                [sa("default", "release-bot")], 58),
    ]
    # The API server's default discovery roles, bound to every (and every unauthenticated) request.
    discovery = [
        ("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                               "verbs": ["get"]}], [group("system:authenticated")]),
        ("system:basic-user", [{"apiGroups": ["authorization.k8s.io"],
                                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                                "verbs": ["create"]}], [group("system:authenticated")]),
        ("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                            "/version/"], "verbs": ["get"]}],
         [group("system:authenticated"), group("system:unauthenticated")]),
    ]
    for name, rules, subjects in discovery:
        objs.append(cluster_role(name, rules, 412, bootstrap, autoupdate))
        objs.append(binding("ClusterRoleBinding", name, "ClusterRole", name, subjects, 412, labels=bootstrap,
                            annotations=autoupdate))
    # `view` is aggregated: its rules are the union of every ClusterRole labelled aggregate-to-view.
    aggregate_view = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    objs += [
        b.obj("rbac.authorization.k8s.io/v1", "ClusterRole", "view", age=412, labels=bootstrap,
              annotations=autoupdate,
              aggregationRule={"clusterRoleSelectors": [{"matchLabels": aggregate_view}]},
              rules=[{"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "configmaps"],
                      "verbs": read}]),
        cluster_role("monitoring-view", [{"apiGroups": ["monitoring.coreos.com"],
                                          "resources": ["prometheuses", "alertmanagers", "prometheusrules"],
                                          "verbs": read}], 400, aggregate_view),
        binding("ClusterRoleBinding", "auditors-view", "ClusterRole", "view", [group("oidc:auditors")], 120),
    ]
    workload_roles = [
        ("calico-node", 412, sa("kube-system", "calico-node"), [
            {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces", "serviceaccounts",
                                              "endpoints", "services"], "verbs": read},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
            {"apiGroups": ["crd.projectcalico.org"], "resources": ["*"],
             "verbs": ["create", "get", "list", "update", "watch"]}]),
        ("ingress-nginx", 405, sa("ingress-nginx", "ingress-nginx"), [
            {"apiGroups": [""], "resources": ["configmaps", "endpoints", "nodes", "pods", "secrets",
                                              "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
             "verbs": read},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]}]),
        ("prometheus-k8s", 400, sa("monitoring", "prometheus-k8s"), [
            {"apiGroups": [""], "resources": ["nodes/metrics", "services", "endpoints", "pods"],
             "verbs": read},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
        ("fluent-bit", 400, sa("logging", "fluent-bit"), [
            {"apiGroups": [""], "resources": ["namespaces", "pods", "nodes", "nodes/proxy"],
             "verbs": read}]),
    ]
    for name, age, subject, rules in workload_roles:
        labels = app_labels(name)
        objs.append(cluster_role(name, rules, age, labels))
        objs.append(binding("ClusterRoleBinding", name, "ClusterRole", name, [subject], age,
                            labels=labels))
    return objs


def cluster_scoped(b: Builder) -> list[dict]:
    objs = [node_object(b, n) for n in NODES]
    objs += [b.namespace(name, labels, age) for name, (labels, age) in NAMESPACES.items()]
    objs += rbac(b)
    objs.append(b.obj(
        "networking.k8s.io/v1", "IngressClass", "nginx", age=405, generation=1,
        labels=app_labels("ingress-nginx", component="controller", instance="ingress-nginx",
                          part_of="ingress-nginx", version="1.11.3"),
        annotations={"ingressclass.kubernetes.io/is-default-class": "true"},
        spec={"controller": "k8s.io/ingress-nginx"}))
    for name, server in ACME_SERVERS.items():
        account = 1_900_000_000 + stable_int("acme", name) % 90_000_000
        objs.append(b.obj(
            "cert-manager.io/v1", "ClusterIssuer", name, age=404, generation=1,
            spec={"acme": {"email": "platform-team@example.com",
                           "privateKeySecretRef": {"name": f"{name}-account-key"},
                           "server": server,
                           "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]}},
            status={"acme": {"lastPrivateKeyHash": base64.b64encode(
                                 hashlib.sha256(name.encode()).digest()).decode(),
                             "lastRegisteredEmail": "platform-team@example.com",
                             "uri": server.replace("/directory", f"/acme/acct/{account}")},
                    "conditions": [{"lastTransitionTime": b.ago(404), "message":
                                    "The ACME account was registered with the ACME server",
                                    "observedGeneration": 1, "reason": "ACMEAccountRegistered",
                                    "status": "True", "type": "Ready"}]}))
    objs.append(b.obj(
        "crd.projectcalico.org/v1", "FelixConfiguration", "default", age=412, generation=2,
        spec={"bpfEnabled": False, "bpfLogLevel": "", "floatingIPs": "Disabled",
              "healthPort": 9099, "logSeverityScreen": "Info", "reportingInterval": "0s",
              "wireguardEnabled": True}))
    return objs


# --------------------------------------------------------------------------------------
# kube-system

KUBEADM_CLUSTER_CONFIGURATION = {
    "apiServer": {
        "certSANs": ["203.0.113.10", "api.demo-payments.example.com"],
        "extraArgs": [
            {"name": "anonymous-auth", "value": "false"},
            {"name": "authorization-mode", "value": "Node,RBAC"},
            {"name": "encryption-provider-config", "value": "/etc/kubernetes/enc/enc.yaml"},
            {"name": "oidc-client-id", "value": "kubernetes"},
            {"name": "oidc-groups-claim", "value": "groups"},
            {"name": "oidc-groups-prefix", "value": "oidc:"},
            {"name": "oidc-issuer-url", "value": IDP_URL},
            {"name": "oidc-username-claim", "value": "email"},
            {"name": "oidc-username-prefix", "value": "oidc:"},
            {"name": "tls-min-version", "value": "VersionTLS12"},
        ],
        "extraVolumes": [{"hostPath": "/etc/kubernetes/enc", "mountPath": "/etc/kubernetes/enc",
                          "name": "enc", "pathType": "DirectoryOrCreate", "readOnly": True}],
    },
    "apiVersion": "kubeadm.k8s.io/v1beta4",
    "caCertificateValidityPeriod": "87600h0m0s",
    "certificateValidityPeriod": "8760h0m0s",
    "certificatesDir": "/etc/kubernetes/pki",
    "clusterName": CLUSTER_NAME,
    "controlPlaneEndpoint": "203.0.113.10:6443",
    "controllerManager": {},
    "dns": {},
    "encryptionAlgorithm": "RSA-2048",
    "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
    "imageRepository": "registry.k8s.io",
    "kind": "ClusterConfiguration",
    "kubernetesVersion": K8S_VERSION,
    "networking": {"dnsDomain": "cluster.local", "podSubnet": "10.244.0.0/16",
                   "serviceSubnet": "10.96.0.0/12"},
    "proxy": {},
    "scheduler": {},
}

CALICO_CNI_CONFIG = """{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "__KUBECONFIG_FILEPATH__"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    },
    {
      "type": "bandwidth",
      "capabilities": {"bandwidth": true}
    }
  ]
}
"""

COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
"""

KUBE_PROXY_CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
kind: KubeProxyConfiguration
metricsBindAddress: ""
mode: iptables
"""


def kube_apiserver_pod(b: Builder) -> dict:
    pki = "/etc/kubernetes/pki"
    command = [
        "kube-apiserver",
        f"--advertise-address={STO1.ip}",
        "--allow-privileged=true",
        "--anonymous-auth=false",
        "--authorization-mode=Node,RBAC",
        f"--client-ca-file={pki}/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        "--encryption-provider-config=/etc/kubernetes/enc/enc.yaml",
        f"--etcd-cafile={pki}/etcd/ca.crt",
        f"--etcd-certfile={pki}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        f"--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt",
        f"--kubelet-client-key={pki}/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--oidc-client-id=kubernetes",
        "--oidc-groups-claim=groups",
        "--oidc-groups-prefix=oidc:",
        f"--oidc-issuer-url={IDP_URL}",
        "--oidc-username-claim=email",
        "--oidc-username-prefix=oidc:",
        f"--proxy-client-cert-file={pki}/front-proxy-client.crt",
        f"--proxy-client-key-file={pki}/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki}/sa.pub",
        f"--service-account-signing-key-file={pki}/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        f"--tls-cert-file={pki}/apiserver.crt",
        "--tls-min-version=VersionTLS12",
        f"--tls-private-key-file={pki}/apiserver.key",
        # Deliberately no --audit-policy-file / --audit-log-path: API auditing is off.
    ]
    mounts = [("ca-certs", "/etc/ssl/certs", True),
              ("enc", "/etc/kubernetes/enc", True),
              ("etc-ca-certificates", "/etc/ca-certificates", True),
              ("k8s-certs", pki, True),
              ("usr-local-share-ca-certificates", "/usr/local/share/ca-certificates", True),
              ("usr-share-ca-certificates", "/usr/share/ca-certificates", True)]
    volumes = [host_path(name, path, "DirectoryOrCreate") for name, path, _ in mounts]
    c = container("kube-apiserver", f"registry.k8s.io/kube-apiserver:{K8S_VERSION}",
                  command=command, mounts=mounts, resources={"requests": {"cpu": "250m"}},
                  probe=("/livez", 6443, "HTTPS"))
    config_hash = hashlib.md5(" ".join(command).encode()).hexdigest()
    template = pod_template({"component": "kube-apiserver", "tier": "control-plane"}, [c],
                            security={"seccompProfile": {"type": "RuntimeDefault"}},
                            volumes=volumes, tolerations=[{"effect": "NoExecute", "operator": "Exists"}],
                            host_network=True, priority_class="system-node-critical",
                            annotations={
                                "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint":
                                    f"{STO1.ip}:6443",
                                "kubernetes.io/config.hash": config_hash,
                                "kubernetes.io/config.mirror": config_hash,
                                "kubernetes.io/config.seen": b.ago(38),
                                "kubernetes.io/config.source": "file"})
    template["spec"].pop("serviceAccount")
    template["spec"].pop("serviceAccountName")
    node = b.obj("v1", "Node", STO1.name, age=STO1.joined_days_ago)
    return b.pod("kube-system", f"kube-apiserver-{STO1.name}", template, STO1, owner=node,
                 age=38, block_deletion=False)


def kube_system(b: Builder) -> list[dict]:
    ns, age = "kube-system", 412
    calico_image = f"docker.io/calico/node:{CALICO_VERSION}"
    calico_mounts = [("lib-modules", "/lib/modules", True), ("xtables-lock", "/run/xtables.lock", False),
                     ("var-run-calico", "/var/run/calico", False),
                     ("var-lib-calico", "/var/lib/calico", False),
                     ("cni-log-dir", "/var/log/calico/cni", True)]
    calico_node = container(
        "calico-node", calico_image,
        env={"DATASTORE_TYPE": "kubernetes",
             "WAIT_FOR_DATASTORE": "true",
             "NODENAME": field_ref("spec.nodeName"),
             "CALICO_NETWORKING_BACKEND": "bird",
             "CLUSTER_TYPE": "k8s,bgp",
             "IP": "autodetect",
             "CALICO_IPV4POOL_IPIP": "Always",
             "CALICO_IPV4POOL_VXLAN": "Never",
             "CALICO_IPV6POOL_VXLAN": "Never",
             "CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
             "FELIX_IPINIPMTU": {"configMapKeyRef": {"key": "veth_mtu", "name": "calico-config"}},
             "CALICO_DISABLE_FILE_LOGGING": "true",
             "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
             "FELIX_IPV6SUPPORT": "false",
             "FELIX_HEALTHENABLED": "true"},
        mounts=calico_mounts, security={"privileged": True},
        resources={"requests": {"cpu": "250m"}})
    install_cni = container(
        "install-cni", f"docker.io/calico/cni:{CALICO_VERSION}", command=["/opt/cni/bin/install"],
        env={"CNI_CONF_NAME": "10-calico.conflist",
             "CNI_NETWORK_CONFIG": {"configMapKeyRef": {"key": "cni_network_config",
                                                        "name": "calico-config"}},
             "KUBERNETES_NODE_NAME": field_ref("spec.nodeName"),
             "CNI_MTU": {"configMapKeyRef": {"key": "veth_mtu", "name": "calico-config"}},
             "SLEEP": "false"},
        mounts=[("cni-bin-dir", "/host/opt/cni/bin", False), ("cni-net-dir", "/host/etc/cni/net.d", False)],
        security={"privileged": True})
    calico_volumes = [host_path("lib-modules", "/lib/modules"),
                      host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                      host_path("var-run-calico", "/var/run/calico", "DirectoryOrCreate"),
                      host_path("var-lib-calico", "/var/lib/calico", "DirectoryOrCreate"),
                      host_path("cni-log-dir", "/var/log/calico/cni"),
                      host_path("cni-bin-dir", "/opt/cni/bin", "DirectoryOrCreate"),
                      host_path("cni-net-dir", "/etc/cni/net.d")]
    calico_tpl = pod_template({}, [calico_node], init=[install_cni], service_account="calico-node",
                              volumes=calico_volumes, tolerations=tolerate_everything(),
                              host_network=True, priority_class="system-node-critical", grace=0,
                              nodeSelector={"kubernetes.io/os": "linux"})

    kube_proxy_tpl = pod_template(
        {}, [container("kube-proxy", f"registry.k8s.io/kube-proxy:{K8S_VERSION}",
                       command=["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                                "--hostname-override=$(NODE_NAME)"],
                       env={"NODE_NAME": field_ref("spec.nodeName")},
                       mounts=[("kube-proxy", "/var/lib/kube-proxy", False),
                               ("xtables-lock", "/run/xtables.lock", False),
                               ("lib-modules", "/lib/modules", True)],
                       security={"privileged": True})],
        service_account="kube-proxy", host_network=True, priority_class="system-node-critical",
        tolerations=[{"operator": "Exists"}], nodeSelector={"kubernetes.io/os": "linux"},
        volumes=[{"configMap": {"defaultMode": 420, "name": "kube-proxy"}, "name": "kube-proxy"},
                 host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                 host_path("lib-modules", "/lib/modules")])

    controllers_tpl = pod_template(
        {}, [container("calico-kube-controllers", f"docker.io/calico/kube-controllers:{CALICO_VERSION}",
                       env={"ENABLED_CONTROLLERS": "node,loadbalancer", "DATASTORE_TYPE": "kubernetes"},
                       security={"runAsNonRoot": True})],
        service_account="calico-kube-controllers", priority_class="system-cluster-critical",
        tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"},
                     {"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"},
                     CONTROL_PLANE_TAINT],
        nodeSelector={"kubernetes.io/os": "linux"})

    coredns_tpl = pod_template(
        {}, [container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3",
                       args=["-conf", "/etc/coredns/Corefile"],
                       ports=[("dns", 53, "UDP"), ("dns-tcp", 53), ("metrics", 9153)],
                       mounts=[("config-volume", "/etc/coredns", True)],
                       resources={"limits": {"memory": "170Mi"},
                                  "requests": {"cpu": "100m", "memory": "70Mi"}},
                       security={"allowPrivilegeEscalation": False,
                                 "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                 "readOnlyRootFilesystem": True},
                       probe=("/health", 8080, "HTTP"))],
        service_account="coredns", priority_class="system-cluster-critical", dnsPolicy="Default",
        tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"}, CONTROL_PLANE_TAINT],
        volumes=[{"configMap": {"defaultMode": 420, "items": [{"key": "Corefile", "path": "Corefile"}],
                                "name": "coredns"}, "name": "config-volume"}],
        nodeSelector={"kubernetes.io/os": "linux"})

    dns_labels = {"k8s-app": "kube-dns"}
    return [
        *b.service_accounts(ns, age, "calico-node", "calico-kube-controllers", "coredns", "kube-proxy"),
        b.configmap(ns, "calico-config", {"calico_backend": "bird",
                                          "cni_network_config": CALICO_CNI_CONFIG,
                                          "typha_service_name": "none", "veth_mtu": "0"}, age),
        b.configmap(ns, "coredns", {"Corefile": COREFILE}, age),
        b.configmap(ns, "kube-proxy", {"config.conf": KUBE_PROXY_CONFIG}, age, {"app": "kube-proxy"}),
        b.configmap(ns, "kubeadm-config", {"ClusterConfiguration": yaml.dump(
            KUBEADM_CLUSTER_CONFIGURATION, **YAML_OPTIONS)}, age),
        *b.daemonset(ns, "calico-node", calico_tpl, selector={"k8s-app": "calico-node"},
                     labels={"k8s-app": "calico-node"}, age=age, pod_age=38),
        *b.daemonset(ns, "kube-proxy", kube_proxy_tpl, selector={"k8s-app": "kube-proxy"},
                     labels={"k8s-app": "kube-proxy"}, age=age, pod_age=38),
        *b.deployment(ns, "calico-kube-controllers", controllers_tpl,
                      selector={"k8s-app": "calico-kube-controllers"},
                      labels={"k8s-app": "calico-kube-controllers"}, nodes=[STO1], age=age,
                      rollout_age=38),
        *b.deployment(ns, "coredns", coredns_tpl, selector=dns_labels, labels=dns_labels,
                      nodes=[STO1, STO2], age=age, rollout_age=38),
        b.service(ns, "kube-dns", selector=dns_labels, fixed_ip="10.96.0.10", age=age,
                  labels={**dns_labels, "kubernetes.io/cluster-service": "true",
                          "kubernetes.io/name": "CoreDNS"},
                  ports=[("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53), ("metrics", 9153, 9153)]),
        kube_apiserver_pod(b),
    ]


def default_namespaces(b: Builder) -> list[dict]:
    objs = [b.service_account(ns, "default", 412) for ns in ("default", "kube-node-lease", "kube-public")]
    objs.append(b.service_account("default", "release-bot", 58, {"app.kubernetes.io/part-of": "release-pipeline"}))
    objs.append(b.service("default", "kubernetes", selector=None, fixed_ip="10.96.0.1", age=412,
                          labels={"component": "apiserver", "provider": "kubernetes"},
                          ports=[("https", 443, 6443)]))
    return objs


# --------------------------------------------------------------------------------------
# ingress-nginx and cert-manager


def ingress_nginx(b: Builder) -> list[dict]:
    ns, age = "ingress-nginx", 405
    labels = app_labels("ingress-nginx", component="controller", instance="ingress-nginx",
                        part_of="ingress-nginx", version="1.11.3")
    selector = {"app.kubernetes.io/component": "controller",
                "app.kubernetes.io/instance": "ingress-nginx",
                "app.kubernetes.io/name": "ingress-nginx"}
    controller = container(
        "controller", INGRESS_NGINX_IMAGE,
        args=["/nginx-ingress-controller",
              "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
              "--election-id=ingress-nginx-leader",
              "--controller-class=k8s.io/ingress-nginx",
              "--ingress-class=nginx",
              "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
              "--validating-webhook=:8443",
              "--validating-webhook-certificate=/usr/local/certificates/cert",
              "--validating-webhook-key=/usr/local/certificates/key",
              "--enable-metrics=false"],
        env={"POD_NAME": field_ref("metadata.name"),
             "POD_NAMESPACE": field_ref("metadata.namespace"),
             "LD_PRELOAD": "/usr/local/lib/libmimalloc.so"},
        ports=[("http", 80), ("https", 443), ("webhook", 8443)],
        mounts=[("webhook-cert", "/usr/local/certificates/", True)],
        resources={"requests": {"cpu": "100m", "memory": "90Mi"}},
        security={"allowPrivilegeEscalation": False,
                  "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                  "readOnlyRootFilesystem": False, "runAsNonRoot": True, "runAsUser": 101,
                  "seccompProfile": {"type": "RuntimeDefault"}},
        probe=("/healthz", 10254, "HTTP"))
    controller["lifecycle"] = {"preStop": {"exec": {"command": ["/wait-shutdown"]}}}
    template = pod_template(labels, [controller], service_account="ingress-nginx", grace=300,
                            volumes=[{"name": "webhook-cert", "secret": {
                                "defaultMode": 420, "secretName": "ingress-nginx-admission"}}],
                            nodeSelector={"kubernetes.io/os": "linux"})
    return [
        *b.service_accounts(ns, age, "ingress-nginx"),
        b.configmap(ns, "ingress-nginx-controller", {
            "allow-snippet-annotations": "false",
            "hsts": "true",
            "hsts-include-subdomains": "true",
            "hsts-max-age": "31536000",
            "ssl-protocols": "TLSv1.2 TLSv1.3",
            "use-forwarded-headers": "true",
        }, age, labels),
        b.redacted_secret(ns, "ingress-nginx-admission", age, labels),
        *b.deployment(ns, "ingress-nginx-controller", template, selector=selector, labels=labels,
                      nodes=WORKERS, age=age, rollout_age=96, revision=3),
        b.service(ns, "ingress-nginx-controller", selector=selector, labels=labels, age=age,
                  load_balancer_ip=LB_IP,
                  ports=[("http", 80, "http"), ("https", 443, "https")]),
        b.service(ns, "ingress-nginx-controller-admission", selector=selector, labels=labels,
                  age=age, ports=[("https-webhook", 443, "webhook")]),
    ]


def cert_manager(b: Builder) -> list[dict]:
    ns, age = "cert-manager", 405
    repo = "quay.io/jetstack/cert-manager"
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True}
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    components = {  # Deployment: (app label, component, args, ports)
        "cert-manager": ("cert-manager", "controller", [
            "--v=2",
            "--cluster-resource-namespace=$(POD_NAMESPACE)",
            "--leader-election-namespace=kube-system",
            f"--acme-http01-solver-image={repo}-acmesolver:{CERT_MANAGER_VERSION}",
            "--max-concurrent-challenges=60"], [("http-metrics", 9402), ("http-healthz", 9403)]),
        "cert-manager-webhook": ("webhook", "webhook", [
            "--v=2",
            "--secure-port=10250",
            "--dynamic-serving-ca-secret-namespace=$(POD_NAMESPACE)",
            "--dynamic-serving-ca-secret-name=cert-manager-webhook-ca",
            "--dynamic-serving-dns-names=cert-manager-webhook,cert-manager-webhook.$(POD_NAMESPACE),"
            "cert-manager-webhook.$(POD_NAMESPACE).svc"], [("https", 10250), ("healthcheck", 6080)]),
        "cert-manager-cainjector": ("cainjector", "cainjector", [
            "--v=2", "--leader-election-namespace=kube-system"], [("http-metrics", 9402)]),
    }
    objs = b.service_accounts(ns, age, *components)
    for name, (app, component, args, ports) in components.items():
        selector = {"app.kubernetes.io/component": component,
                    "app.kubernetes.io/instance": "cert-manager",
                    "app.kubernetes.io/name": app}
        labels = {**selector, "app": app, "app.kubernetes.io/version": CERT_MANAGER_VERSION}
        c = container(f"cert-manager-{component}", f"{repo}-{component}:{CERT_MANAGER_VERSION}",
                      args=args, ports=ports, security=security,
                      env={"POD_NAMESPACE": field_ref("metadata.namespace")})
        template = pod_template(labels, [c], service_account=name, security=pod_security,
                                nodeSelector={"kubernetes.io/os": "linux"})
        objs += b.deployment(ns, name, template, selector=selector, labels=labels, nodes=[STO2],
                             age=age, rollout_age=96, revision=2)
        if name == "cert-manager-webhook":
            objs.append(b.service(ns, name, selector=selector, labels=labels, age=age,
                                  ports=[("https", 443, "https")]))
    objs += [b.redacted_secret(ns, f"{issuer}-account-key", 404) for issuer in ACME_SERVERS]
    objs.append(b.redacted_secret(ns, "cert-manager-webhook-ca", 404))
    return objs


# --------------------------------------------------------------------------------------
# Application namespaces


def payments(b: Builder) -> list[dict]:
    ns, age = "payments", 372
    api_labels = {"app": "payment-api", **app_labels("payment-api", part_of="payments", version="2.14.3")}
    db_labels = {"app": "payments-db", **app_labels("postgresql", instance="payments-db",
                                                     part_of="payments", version="16.6"),
                 "pci.auditpack.io/data": "chd-store"}
    api = container(
        "payment-api",
        f"registry.example.com/payments/payment-api:2.14.3@{fake_digest('payment-api:2.14.3')}",
        ports=[("http", 8080), ("metrics", 9090)],
        env={"DATABASE_HOST": "payments-db.payments.svc.cluster.local", "DATABASE_PORT": "5432",
             "DATABASE_NAME": "payments", "DATABASE_USER": "payment_api",
             "DATABASE_PASSWORD": secret_ref("payments-db", "api-password"),
             "DATABASE_SSLMODE": "require"},
        resources=requests("250m", "256Mi", "512Mi"), security=restricted_container(),
        mounts=[("tmp", "/tmp", False)], probe=("/healthz", "http", "HTTP"))
    db = container(
        "postgres",
        f"registry.example.com/mirror/postgres:16.6-bookworm@{fake_digest('postgres:16.6-bookworm')}",
        ports=[("postgres", 5432)],
        env={"POSTGRES_DB": "payments", "PGDATA": "/var/lib/postgresql/data/pgdata",
             "POSTGRES_PASSWORD": secret_ref("payments-db", "postgres-password")},
        resources=requests("500m", "1Gi", "2Gi"),
        security={**restricted_container(), "readOnlyRootFilesystem": False},
        mounts=[("data", "/var/lib/postgresql/data", False), ("run", "/var/run/postgresql", False)])
    api_tpl = pod_template(api_labels, [api], service_account="payment-api",
                           security=restricted_pod(10001), volumes=[{"emptyDir": {}, "name": "tmp"}],
                           automountServiceAccountToken=False)
    db_tpl = pod_template(db_labels, [db], service_account="default", security=restricted_pod(999),
                          volumes=[{"emptyDir": {}, "name": "run"}], automountServiceAccountToken=False)
    ingress = b.ingress(
        ns, "payment-api", age=370, labels=api_labels,
        rules=[("pay.example.com", "/", "payment-api", "http")],
        tls=[(["pay.example.com"], "pay-example-tls")],
        annotations={
            "cert-manager.io/cluster-issuer": "letsencrypt-prod",
            "nginx.ingress.kubernetes.io/auth-response-headers": "Authorization,X-Auth-Request-Email",
            "nginx.ingress.kubernetes.io/auth-signin": "https://auth.example.com/oauth2/start?rd=$escaped_request_uri",
            "nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/oauth2/auth",
        })
    api_sel, db_sel = {"app": "payment-api"}, {"app": "payments-db"}
    role = b.obj("rbac.authorization.k8s.io/v1", "Role", "payments-developers", ns, age=371,
                 rules=[{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}])
    role_binding = b.obj(
        "rbac.authorization.k8s.io/v1", "RoleBinding", "payments-developers", ns, age=371,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "payments-developers"},
        subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oidc:payments-devs"}])
    # Added during an incident and never removed (deliberate gap: access.cde-secrets, access.cde-exec).
    debug_role = b.obj("rbac.authorization.k8s.io/v1", "Role", "payments-debug", ns, age=44,
                       rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                              {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}])
    debug_binding = b.obj(
        "rbac.authorization.k8s.io/v1", "RoleBinding", "payments-developers-debug", ns, age=44,
        annotations={"incident": "INC-2291"},
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "payments-debug"},
        subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oidc:payments-devs"}])
    # A second host for the same API, for the internal back office, without the auth annotations
    # (deliberate gap: auth.no-bypass on pay.example.com).
    internal = b.ingress(
        ns, "payment-api-internal", age=150, labels=api_labels,
        rules=[("pay-internal.example.com", "/", "payment-api", "http")],
        tls=[(["pay-internal.example.com"], "pay-internal-example-tls")],
        annotations={"cert-manager.io/cluster-issuer": "letsencrypt-prod"})
    # Nightly settlement export: no automountServiceAccountToken, so the default token is mounted
    # (deliberate gap: access.workload-tokens).
    export = container(
        "settlement-export",
        f"registry.example.com/payments/settlement-export:1.4.0@{fake_digest('settlement-export:1.4.0')}",
        args=["--since=24h", "--out=sftp://settlement.example.com/in"],
        env={"DATABASE_HOST": "payments-db.payments.svc.cluster.local",
             "DATABASE_PASSWORD": secret_ref("payments-db", "export-password")},
        resources=requests("100m", "128Mi", "256Mi"), security=restricted_container())
    export_tpl = pod_template({"app": "settlement-export"}, [export], security=restricted_pod(10002),
                              restartPolicy="OnFailure")
    cronjob = b.obj("batch/v1", "CronJob", "settlement-export", ns, age=210, generation=2,
                    labels={"app": "settlement-export"},
                    spec={"concurrencyPolicy": "Forbid", "failedJobsHistoryLimit": 1, "schedule": "15 2 * * *",
                          "successfulJobsHistoryLimit": 3, "suspend": False,
                          "jobTemplate": {"spec": {"backoffLimit": 2, "template": export_tpl}}},
                    status={"lastScheduleTime": b.ago(0.16), "lastSuccessfulTime": b.ago(0.15)})
    return [
        *b.service_accounts(ns, age, "payment-api"),
        role, role_binding, debug_role, debug_binding,
        cronjob,
        b.redacted_secret(ns, "payments-db", age, {"app": "payments-db"}),
        *b.deployment(ns, "payment-api", api_tpl, selector=api_sel, labels=api_labels,
                      nodes=WORKERS, age=age, rollout_age=12, revision=17),
        *b.statefulset(ns, "payments-db", db_tpl, selector=db_sel, labels=db_labels, nodes=[STO2],
                       service_name="payments-db", age=age, pod_age=38,
                       volume_claims={"data": ("20Gi", "local-path")}),
        b.service(ns, "payment-api", selector=api_sel, labels=api_labels, age=age,
                  ports=[("http", 8080, "http"), ("metrics", 9090, "metrics")]),
        b.service(ns, "payments-db", selector=db_sel, labels=db_sel, age=age,
                  ports=[("postgres", 5432, "postgres")]),
        ingress,
        *b.managed_certificate(ingress, "pay-example-tls", ["pay.example.com"],
                               issuer="letsencrypt-prod", key_algorithm="RSA", valid_from_days=-30,
                               valid_until_days=60, revision=5, age=370),
        internal,
        *b.managed_certificate(internal, "pay-internal-example-tls", ["pay-internal.example.com"],
                               issuer="letsencrypt-prod", key_algorithm="RSA", valid_from_days=-20,
                               valid_until_days=70, revision=2, age=150),
        b.network_policy(ns, "default-deny", pod_selector={}, types=["Ingress", "Egress"], age=372),
        b.network_policy(
            ns, "allow-ingress-nginx-to-api", pod_selector=api_sel, types=["Ingress"], age=370,
            annotations={"compliance.auditpack.io/justification": "Public card API via ingress controller"},
            ingress=[{"from": [ns_peer("ingress-nginx")], "ports": np_ports("http")}]),
        b.network_policy(
            ns, "allow-api-to-db", pod_selector=db_sel, types=["Ingress"], age=370,
            ingress=[{"from": [pod_peer(api_sel)], "ports": np_ports(5432)}]),
        b.network_policy(
            ns, "allow-api-egress", pod_selector=api_sel, types=["Egress"], age=370,
            egress=[{"ports": np_ports(5432), "to": [pod_peer(db_sel)]}, DNS_EGRESS]),
        # No justification annotation and not an approved flow in scope.yaml (deliberate gap).
        b.network_policy(
            ns, "allow-monitoring-scrape", pod_selector=api_sel, types=["Ingress"], age=201,
            ingress=[{"from": [ns_peer("monitoring")], "ports": np_ports(9090)}]),
    ]


def storefront(b: Builder) -> list[dict]:
    ns, age = "storefront", 365
    web_labels = {"app": "web", **app_labels("storefront-web", part_of="storefront", version="3.8.1")}
    cart_labels = {"app": "cart", **app_labels("storefront-cart", part_of="storefront", version="1.19.0")}
    web = container("web", "registry.example.com/storefront/web:3.8.1", ports=[("http", 8080)],
                    resources=requests("100m", "64Mi", "128Mi"),
                    security={"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 101},
                    probe=("/", "http", "HTTP"))
    cart = container("cart", "registry.example.com/storefront/cart:1.19.0", ports=[("http", 8080)],
                     env={"LOG_LEVEL": "info",
                          "PAYMENT_GATEWAY_URL": "https://pay.example.com/v1",
                          # A fake credential in a plain env var, for the masking redaction to find.
                          "PAYMENT_GATEWAY_API_KEY": "demo-not-a-real-key-0000"},
                     resources=requests("100m", "128Mi", "256Mi"), probe=("/healthz", "http", "HTTP"))
    shop = b.ingress(ns, "shop", age=364, labels=web_labels,
                     rules=[("shop.example.com", "/", "web", "http"),
                            ("www.shop.example.com", "/", "web", "http")],
                     tls=[(["shop.example.com", "www.shop.example.com"], "shop-example-tls")],
                     annotations={"cert-manager.io/cluster-issuer": "letsencrypt-prod",
                                  "cert-manager.io/private-key-algorithm": "ECDSA",
                                  # Public by design: customers browse without logging in (auth.required n/a).
                                  "compliance.auditpack.io/public-access":
                                      "Public web shop; customers sign in inside the application"})
    return [
        *b.service_accounts(ns, age),
        *b.deployment(ns, "web", pod_template(web_labels, [web]), selector={"app": "web"},
                      labels=web_labels, nodes=WORKERS, age=age, rollout_age=5, revision=42),
        *b.deployment(ns, "cart", pod_template(cart_labels, [cart]), selector={"app": "cart"},
                      labels=cart_labels, nodes=[GOT1], age=age, rollout_age=19, revision=23),
        b.service(ns, "web", selector={"app": "web"}, labels=web_labels, age=age,
                  ports=[("http", 80, "http")]),
        b.service(ns, "cart", selector={"app": "cart"}, labels=cart_labels, age=age,
                  ports=[("http", 8080, "http")]),
        shop,
        *b.managed_certificate(
            shop, "shop-example-tls", ["shop.example.com", "www.shop.example.com"],
            issuer="letsencrypt-prod", key_algorithm="ECDSA", valid_from_days=-80,
            valid_until_days=10, revision=4, age=364, failed_attempts=3, last_failure_days=1.5,
            failure_message='Failed to wait for order resource "shop-example-tls-5-3820914477" to '
                            'become ready: order is in "invalid" state: authorization for identifier '
                            'www.shop.example.com is invalid'),
        # Legacy host: no tls section at all and the HTTPS redirect switched off (deliberate gap).
        b.ingress(ns, "shop-legacy", age=290, labels=web_labels,
                  rules=[("legacy.shop.example.com", "/", "web", "http")], tls=None,
                  annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
        # The only policy here: no default-deny, and `cart` is selected by nothing (deliberate gap).
        b.network_policy(ns, "allow-from-ingress", pod_selector={"app": "web"}, types=["Ingress"],
                         age=360, ingress=[{"from": [ns_peer("ingress-nginx")],
                                            "ports": np_ports("http")}]),
    ]


OAUTH2_PROXY_CFG = """email_domains = [ "example.com" ]
upstreams = [ "static://202" ]
cookie_secure = true
cookie_expire = "12h"
set_authorization_header = true
set_xauthrequest = true
skip_provider_button = true
"""


def auth(b: Builder) -> list[dict]:
    ns, age = "auth", 380
    labels = {"app": "oauth2-proxy", **app_labels("oauth2-proxy", instance="oauth2-proxy", version="7.7.1")}
    # Settings in all three forms oauth2-proxy reads (flags > OAUTH2_PROXY_* env > config file), as the Helm
    # chart renders them: the chart's ConfigMap holds oauth2_proxy.cfg, extraArgs become flags.
    proxy = container(
        "oauth2-proxy", "quay.io/oauth2-proxy/oauth2-proxy:v7.7.1",
        args=["--provider=oidc",
              f"--oidc-issuer-url={IDP_URL}",
              "--config=/etc/oauth2_proxy/oauth2_proxy.cfg",
              "--cookie-refresh=10m",
              "--reverse-proxy=true",  # without --trusted-proxy-ip (deliberate gap: auth.proxy-no-bypass)
              "--http-address=0.0.0.0:4180",
              "--metrics-address=0.0.0.0:44180"],
        env={"OAUTH2_PROXY_CLIENT_ID": "payments-portal",
             "OAUTH2_PROXY_CLIENT_SECRET": secret_ref("oauth2-proxy", "client-secret"),
             "OAUTH2_PROXY_COOKIE_SECRET": secret_ref("oauth2-proxy", "cookie-secret"),
             "OAUTH2_PROXY_ALLOWED_GROUPS": "payments-portal-users,payments-support"},
        ports=[("http", 4180), ("metrics", 44180)],
        mounts=[("configmain", "/etc/oauth2_proxy/oauth2_proxy.cfg", True)],
        resources=requests("50m", "64Mi", "128Mi"),
        security={**restricted_container(), "runAsUser": 2000, "runAsGroup": 2000},
        probe=("/ping", "http", "HTTP"))
    proxy["volumeMounts"][0]["subPath"] = "oauth2_proxy.cfg"
    template = pod_template(labels, [proxy], service_account="oauth2-proxy",
                            security={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                            volumes=[{"configMap": {"defaultMode": 420, "name": "oauth2-proxy"},
                                      "name": "configmain"}])
    ingress = b.ingress(ns, "oauth2-proxy", age=379, labels=labels,
                        rules=[("auth.example.com", "/oauth2", "oauth2-proxy", "http")],
                        tls=[(["auth.example.com"], "auth-example-tls")],
                        annotations={"cert-manager.io/cluster-issuer": "letsencrypt-prod"})
    sel = {"app": "oauth2-proxy"}
    return [
        *b.service_accounts(ns, age, "oauth2-proxy"),
        b.redacted_secret(ns, "oauth2-proxy", age, labels),
        b.configmap(ns, "oauth2-proxy", {"oauth2_proxy.cfg": OAUTH2_PROXY_CFG}, age, labels),
        *b.deployment(ns, "oauth2-proxy", template, selector=sel, labels=labels, nodes=WORKERS,
                      age=age, rollout_age=61, revision=6),
        b.service(ns, "oauth2-proxy", selector=sel, labels=labels, age=age,
                  ports=[("http", 4180, "http"), ("metrics", 44180, "metrics")]),
        ingress,
        *b.managed_certificate(ingress, "auth-example-tls", ["auth.example.com"],
                               issuer="letsencrypt-prod", key_algorithm="RSA", valid_from_days=-10,
                               valid_until_days=80, revision=5, age=379),
        b.network_policy(ns, "default-deny", pod_selector={}, types=["Ingress", "Egress"], age=380),
        b.network_policy(ns, "allow-from-ingress-nginx", pod_selector=sel, types=["Ingress"], age=380,
                         ingress=[{"from": [ns_peer("ingress-nginx")], "ports": np_ports("http")}]),
        b.network_policy(ns, "allow-egress-idp", pod_selector=sel, types=["Egress"], age=380,
                         egress=[{"ports": np_ports(443), "to": [{"ipBlock": {"cidr": IDP_CIDR}}]},
                                 DNS_EGRESS]),
    ]


def daemonset_not_ready(namespace: str, name: str) -> str:
    """PromQL (kube-state-metrics): fewer ready pods than nodes the DaemonSet should run on."""
    sel = f'{{namespace="{namespace}",daemonset="{name}"}}'
    return (f"kube_daemonset_status_number_ready{sel}"
            f" < kube_daemonset_status_desired_number_scheduled{sel}")


PROMETHEUS_RULES = [
    {"alert": "CertificateExpiringSoon",
     "annotations": {"summary": "Certificate {{ $labels.namespace }}/{{ $labels.name }} "
                                "expires in less than 21 days."},
     "expr": "certmanager_certificate_expiration_timestamp_seconds - time() < 21 * 24 * 3600",
     "for": "1h", "labels": {"severity": "warning"}},
    {"alert": "CalicoNodeDown",
     "annotations": {"summary": "calico-node is not ready on every node; "
                                "policy and encryption may not be enforced."},
     "expr": daemonset_not_ready("kube-system", "calico-node"),
     "for": "10m", "labels": {"severity": "critical"}},
    {"alert": "LogShipperDown",
     "annotations": {"summary": "fluent-bit is not running on every node; logs are not being shipped."},
     "expr": daemonset_not_ready("logging", "fluent-bit"),
     "for": "15m", "labels": {"severity": "critical"}},
    {"alert": "FalcoNotRunning",
     "annotations": {"summary": "Falco is not running on every node; runtime intrusion detection has gaps."},
     "expr": daemonset_not_ready("falco", "falco"),
     "for": "10m", "labels": {"severity": "critical"}},
]


def monitoring(b: Builder) -> list[dict]:
    ns, age = "monitoring", 400
    operator_version = "v0.79.2"

    def operated(kind: str, name: str, app: str) -> dict:
        """The selector prometheus-operator puts on the StatefulSets it manages."""
        return {**app_labels(app, instance=name),
                "app.kubernetes.io/managed-by": "prometheus-operator",
                "operator.prometheus.io/name": name, kind.lower(): name}

    prom_sel = operated("Prometheus", "k8s", "prometheus")
    prometheus = b.obj(
        "monitoring.coreos.com/v1", "Prometheus", "k8s", ns, age=age, generation=4,
        labels=app_labels("prometheus", component="prometheus", part_of="kube-prometheus"),
        spec={"alerting": {"alertmanagers": [{"apiVersion": "v2", "name": "alertmanager-main",
                                              "namespace": ns, "port": "web"}]},
              "externalLabels": {"cluster": CLUSTER_NAME},
              "image": "quay.io/prometheus/prometheus:v3.1.0",
              "podMonitorNamespaceSelector": {}, "podMonitorSelector": {},
              "replicas": 2, "resources": {"requests": {"memory": "400Mi"}},
              "retention": "15d",
              "ruleNamespaceSelector": {},
              "ruleSelector": {"matchLabels": {"prometheus": "k8s", "role": "alert-rules"}},
              "securityContext": {"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000},
              "serviceAccountName": "prometheus-k8s",
              "serviceMonitorNamespaceSelector": {}, "serviceMonitorSelector": {},
              "storage": {"volumeClaimTemplate": {"spec": {
                  "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}},
                  "storageClassName": "local-path"}}},
              "version": "3.1.0"},
        status={"availableReplicas": 2,
                "conditions": [{"lastTransitionTime": b.ago(38), "message": "", "observedGeneration": 4,
                                "reason": "", "status": "True", "type": t}
                               for t in ("Available", "Reconciled")],
                "paused": False, "replicas": 2,
                "selector": ",".join(f"{k}={v}" for k, v in sorted(prom_sel.items())),
                "shardStatuses": [{"availableReplicas": 2, "replicas": 2, "shardID": "0",
                                   "unavailableReplicas": 0, "updatedReplicas": 2}],
                "shards": 1, "unavailableReplicas": 0, "updatedReplicas": 2})
    am_sel = operated("Alertmanager", "main", "alertmanager")
    alertmanager = b.obj(
        "monitoring.coreos.com/v1", "Alertmanager", "main", ns, age=age, generation=2,
        labels=app_labels("alertmanager", component="alert-router", part_of="kube-prometheus"),
        spec={"image": "quay.io/prometheus/alertmanager:v0.28.0", "replicas": 1, "retention": "120h",
              "alertmanagerConfigNamespaceSelector": {}, "alertmanagerConfigSelector": {},
              # The routing is an AlertmanagerConfig (visible evidence), not the Secret alertmanager-main.
              "alertmanagerConfiguration": {"name": "main-routing"},
              "securityContext": {"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000},
              "serviceAccountName": "alertmanager-main", "version": "0.28.0"},
        status={"availableReplicas": 1,
                "conditions": [{"lastTransitionTime": b.ago(38), "message": "", "observedGeneration": 2,
                                "reason": "", "status": "True", "type": t}
                               for t in ("Available", "Reconciled")],
                "paused": False, "replicas": 1, "unavailableReplicas": 0, "updatedReplicas": 1})
    routing = b.obj(
        "monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "main-routing", ns, age=210, generation=2,
        labels=app_labels("alertmanager", part_of="kube-prometheus"),
        spec={"route": {"receiver": "platform-oncall", "groupBy": ["alertname", "namespace"],
                        "groupWait": "30s", "groupInterval": "5m", "repeatInterval": "4h",
                        "routes": [{"receiver": "null", "matchers": [
                            {"name": "alertname", "value": "Watchdog", "matchType": "="}]}]},
              "receivers": [
                  {"name": "null"},
                  {"name": "platform-oncall", "webhookConfigs": [
                      {"url": "https://oncall.example.com/hooks/alertmanager", "sendResolved": True}],
                   "emailConfigs": [{"to": "platform-oncall@example.com", "sendResolved": True}]}]})
    rules = b.obj(
        "monitoring.coreos.com/v1", "PrometheusRule", "auditpack-compliance", ns, age=210, generation=3,
        labels={"prometheus": "k8s", "role": "alert-rules"},
        spec={"groups": [{"name": "compliance.rules", "rules": PROMETHEUS_RULES}]})

    reloader_image = f"quay.io/prometheus-operator/prometheus-config-reloader:{operator_version}"
    reloader = container("config-reloader", reloader_image,
                         args=["--listen-address=:8080", "--reload-url=http://localhost:9090/-/reload"],
                         ports=[("reloader-web", 8080)], security=restricted_container(),
                         resources={"limits": {"cpu": "10m", "memory": "50Mi"},
                                    "requests": {"cpu": "10m", "memory": "50Mi"}})
    prom_container = container(
        "prometheus", "quay.io/prometheus/prometheus:v3.1.0",
        args=["--web.console.templates=/etc/prometheus/consoles",
              "--web.console.libraries=/etc/prometheus/console_libraries",
              "--config.file=/etc/prometheus/config_out/prometheus.env.yaml",
              "--web.enable-lifecycle", "--web.route-prefix=/",
              "--storage.tsdb.retention.time=15d", "--storage.tsdb.path=/prometheus",
              "--web.config.file=/etc/prometheus/web_config/web-config.yaml"],
        ports=[("web", 9090)], resources={"requests": {"memory": "400Mi"}},
        security=restricted_container(),
        mounts=[("config", "/etc/prometheus/config", True),
                ("prometheus-k8s-db", "/prometheus", False)],
        probe=("/-/ready", "web", "HTTP"))
    prom_tpl = pod_template(prom_sel, [prom_container, reloader], service_account="prometheus-k8s",
                            security={"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000},
                            volumes=[{"name": "config", "secret": {"defaultMode": 420,
                                                                   "secretName": "prometheus-k8s"}}],
                            grace=600, annotations={"kubectl.kubernetes.io/default-container": "prometheus"})
    am_container = container(
        "alertmanager", "quay.io/prometheus/alertmanager:v0.28.0",
        args=["--config.file=/etc/alertmanager/config_out/alertmanager.env.yaml",
              "--storage.path=/alertmanager", "--data.retention=120h", "--cluster.listen-address=",
              "--web.listen-address=:9093", "--web.route-prefix=/"],
        ports=[("web", 9093)], resources={"requests": {"memory": "200Mi"}},
        security=restricted_container(),
        mounts=[("config-volume", "/etc/alertmanager/config", True),
                ("alertmanager-main-db", "/alertmanager", False)],
        probe=("/-/ready", "web", "HTTP"))
    am_tpl = pod_template(am_sel, [am_container], service_account="alertmanager-main",
                          security={"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000},
                          volumes=[{"name": "config-volume", "secret": {
                              "defaultMode": 420, "secretName": "alertmanager-main-generated"}},
                                   {"emptyDir": {}, "name": "alertmanager-main-db"}],
                          grace=120, annotations={"kubectl.kubernetes.io/default-container": "alertmanager"})

    operator_labels = app_labels("prometheus-operator", component="controller",
                                 part_of="kube-prometheus", version=operator_version[1:])
    operator_tpl = pod_template(operator_labels, [container(
        "prometheus-operator", f"quay.io/prometheus-operator/prometheus-operator:{operator_version}",
        args=["--kubelet-service=kube-system/kubelet",
              f"--prometheus-config-reloader={reloader_image}"],
        ports=[("http", 8080)], security=restricted_container(),
        resources=requests("100m", "100Mi", "200Mi"))], service_account="prometheus-operator",
        security={"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}})

    ksm_labels = app_labels("kube-state-metrics", component="exporter", part_of="kube-prometheus",
                            version="2.14.0")
    ksm_tpl = pod_template(ksm_labels, [container(
        "kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0",
        args=["--port=8080", "--telemetry-port=8081"], ports=[("http-metrics", 8080), ("telemetry", 8081)],
        security={**restricted_container(), "runAsUser": 65534},
        resources=requests("10m", "190Mi", "250Mi"))], service_account="kube-state-metrics")

    exporter_labels = app_labels("node-exporter", component="exporter", part_of="kube-prometheus",
                                 version="1.8.2")
    exporter_tpl = pod_template(exporter_labels, [container(
        "node-exporter", "quay.io/prometheus/node-exporter:v1.8.2",
        args=["--web.listen-address=0.0.0.0:9100", "--path.sysfs=/host/sys",
              "--path.rootfs=/host/root", "--path.udev.data=/host/root/run/udev/data",
              "--no-collector.wifi", "--no-collector.hwmon"],
        ports=[("http", 9100)], mounts=[("sys", "/host/sys", True), ("root", "/host/root", True)],
        security={"allowPrivilegeEscalation": False, "capabilities": {"add": ["SYS_TIME"], "drop": ["ALL"]},
                  "readOnlyRootFilesystem": True},
        resources=requests("102m", "180Mi", "180Mi"))], service_account="node-exporter",
        host_network=True, hostPID=True, tolerations=[{"operator": "Exists"}],
        security={"runAsNonRoot": True, "runAsUser": 65534},
        volumes=[host_path("sys", "/sys"), host_path("root", "/")],
        nodeSelector={"kubernetes.io/os": "linux"})

    grafana_labels = app_labels("grafana", component="grafana", part_of="kube-prometheus", version="11.4.0")
    grafana_tpl = pod_template(grafana_labels, [container(
        "grafana", "docker.io/grafana/grafana:11.4.0", ports=[("http", 3000)],
        env={"GF_SERVER_ROOT_URL": "https://grafana.example.com",
             "GF_SECURITY_ADMIN_PASSWORD": secret_ref("grafana", "admin-password"),
             "GF_AUTH_ANONYMOUS_ENABLED": "false"},
        security={**restricted_container(), "runAsUser": 472},
        mounts=[("storage", "/var/lib/grafana", False)],
        resources=requests("100m", "100Mi", "200Mi"), probe=("/api/health", "http", "HTTP"))],
        service_account="grafana", volumes=[{"emptyDir": {}, "name": "storage"}],
        security={"fsGroup": 65534, "runAsNonRoot": True, "runAsUser": 472})
    grafana_ingress = b.ingress(ns, "grafana", age=398, labels=grafana_labels,
                                rules=[("grafana.example.com", "/", "grafana", "http")],
                                tls=[(["grafana.example.com"], "grafana-example-tls")],
                                annotations={"cert-manager.io/cluster-issuer": "letsencrypt-staging"})

    def sel(labels: dict) -> dict:
        keep = ("app.kubernetes.io/component", "app.kubernetes.io/name", "app.kubernetes.io/part-of")
        return {k: v for k, v in labels.items() if k in keep}

    # Also published on a NodePort for the on-call team, in plain HTTP with no TLS proxy in front
    # (deliberate gap: transit.exposed-services).
    grafana_nodeport = b.service(ns, "grafana-oncall", selector=sel(grafana_labels), age=120, labels=grafana_labels,
                                 ports=[("http", 3000, "http")])
    grafana_nodeport["spec"].update(type="NodePort", externalTrafficPolicy="Cluster")
    grafana_nodeport["spec"]["ports"][0]["nodePort"] = 31300

    return [
        prometheus, alertmanager, routing, rules,
        *b.service_accounts(ns, age, "prometheus-k8s", "alertmanager-main", "prometheus-operator",
                            "kube-state-metrics", "node-exporter", "grafana"),
        b.redacted_secret(ns, "alertmanager-main", age,
                          app_labels("alertmanager", part_of="kube-prometheus")),
        b.redacted_secret(ns, "alertmanager-main-generated", 38,
                          {"managed-by": "prometheus-operator", "alertmanager-name": "main"}),
        b.redacted_secret(ns, "prometheus-k8s", 38, {"managed-by": "prometheus-operator"}),
        b.redacted_secret(ns, "grafana", age, grafana_labels),
        *b.deployment(ns, "prometheus-operator", operator_tpl, selector=sel(operator_labels),
                      labels=operator_labels, nodes=[STO2], age=age, rollout_age=38, revision=3),
        *b.statefulset(ns, "prometheus-k8s", prom_tpl, selector=prom_sel, nodes=WORKERS,
                       service_name="prometheus-operated", age=age, pod_age=38, labels=prom_sel,
                       owner=prometheus, volume_claims={"prometheus-k8s-db": ("50Gi", "local-path")}),
        *b.statefulset(ns, "alertmanager-main", am_tpl, selector=am_sel, nodes=[GOT1],
                       service_name="alertmanager-operated", age=age, pod_age=38, labels=am_sel,
                       owner=alertmanager),
        *b.deployment(ns, "kube-state-metrics", ksm_tpl, selector=sel(ksm_labels), labels=ksm_labels,
                      nodes=[STO2], age=age, rollout_age=38, revision=2),
        *b.daemonset(ns, "node-exporter", exporter_tpl, selector=sel(exporter_labels),
                     labels=exporter_labels, age=age, pod_age=38),
        *b.deployment(ns, "grafana", grafana_tpl, selector=sel(grafana_labels), labels=grafana_labels,
                      nodes=[GOT1], age=398, rollout_age=38, revision=4),
        b.service(ns, "prometheus-k8s", selector=sel(prom_sel), age=age, labels=sel(prom_sel),
                  ports=[("web", 9090, "web"), ("reloader-web", 8080, "reloader-web")]),
        b.service(ns, "alertmanager-main", selector=sel(am_sel), age=age, labels=sel(am_sel),
                  ports=[("web", 9093, "web")]),
        b.service(ns, "kube-state-metrics", selector=sel(ksm_labels), age=age, labels=ksm_labels,
                  headless=True, ports=[("http-metrics", 8080, "http-metrics")]),
        b.service(ns, "node-exporter", selector=sel(exporter_labels), age=age, labels=exporter_labels,
                  headless=True, ports=[("http", 9100, "http")]),
        b.service(ns, "grafana", selector=sel(grafana_labels), age=398, labels=grafana_labels,
                  ports=[("http", 3000, "http")]),
        grafana_nodeport,
        grafana_ingress,
        *b.managed_certificate(
            grafana_ingress, "grafana-example-tls", ["grafana.example.com"],
            issuer="letsencrypt-staging", key_algorithm="RSA", valid_from_days=-95,
            valid_until_days=-5, revision=4, age=398, ready=False, failed_attempts=9,
            last_failure_days=0.2,
            failure_message='Failed to wait for order resource "grafana-example-tls-5-1947730112" to '
                            'become ready: order is in "errored" state: Failed to create Order: '
                            '429 urn:ietf:params:acme:error:rateLimited'),
        # Ingress-only default deny: egress from monitoring is unrestricted (deliberate gap).
        b.network_policy(ns, "default-deny-ingress", pod_selector={}, types=["Ingress"], age=399),
        b.network_policy(ns, "allow-same-namespace", pod_selector={}, types=["Ingress"], age=399,
                         ingress=[{"from": [{"podSelector": {}}]}]),
        b.network_policy(ns, "allow-ingress-nginx-to-grafana", pod_selector=sel(grafana_labels),
                         types=["Ingress"], age=398,
                         ingress=[{"from": [ns_peer("ingress-nginx")], "ports": np_ports("http")}]),
    ]


FLUENT_BIT_CONF = """[SERVICE]
    Daemon        Off
    Flush         1
    Log_Level     info
    Parsers_File  /fluent-bit/etc/parsers.conf
    HTTP_Server   On
    HTTP_Listen   0.0.0.0
    HTTP_Port     2020
    Health_Check  On

[INPUT]
    Name              tail
    Path              /var/log/containers/*.log
    multiline.parser  docker, cri
    Tag               kube.*
    Mem_Buf_Limit     5MB
    Skip_Long_Lines   On

[INPUT]
    Name            systemd
    Tag             host.*
    Systemd_Filter  _SYSTEMD_UNIT=kubelet.service
    Read_From_Tail  On

[FILTER]
    Name                kubernetes
    Match               kube.*
    Merge_Log           On
    Keep_Log            Off
    K8S-Logging.Parser  On
    K8S-Logging.Exclude On

[OUTPUT]
    Name                   loki
    Match                  *
    Host                   loki.logging.svc
    Port                   3100
    Labels                 job=fluent-bit, node=${NODE_NAME}
    Auto_Kubernetes_Labels On
"""

LOKI_CONFIG = """auth_enabled: false
server:
  http_listen_port: 3100
  grpc_listen_port: 9095
common:
  path_prefix: /var/loki
  replication_factor: 1
  ring:
    kvstore:
      store: inmemory
  storage:
    filesystem:
      chunks_directory: /var/loki/chunks
      rules_directory: /var/loki/rules
schema_config:
  configs:
    - from: "2025-01-01"
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
compactor:
  working_directory: /var/loki/compactor
  retention_enabled: true
  retention_delete_delay: 2h
  delete_request_store: filesystem
limits_config:
  retention_period: 8760h
  reject_old_samples: true
  reject_old_samples_max_age: 168h
"""


def logging_ns(b: Builder) -> list[dict]:
    ns, age = "logging", 400
    fb_labels = app_labels("fluent-bit", instance="fluent-bit", version="3.1.9")
    loki_labels = app_labels("loki", component="single-binary", instance="loki", version="3.3.2")
    fb_tpl = pod_template(fb_labels, [container(
        "fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
        command=["/fluent-bit/bin/fluent-bit"], args=["--workdir=/fluent-bit/etc",
                                                       "--config=/fluent-bit/etc/conf/fluent-bit.conf"],
        env={"NODE_NAME": field_ref("spec.nodeName")}, ports=[("http", 2020)],
        mounts=[("config", "/fluent-bit/etc/conf", False), ("varlog", "/var/log", False),
                ("etcmachineid", "/etc/machine-id", True)],
        probe=("/api/v1/health", "http", "HTTP"))],
        service_account="fluent-bit",
        tolerations=[{**CONTROL_PLANE_TAINT, "operator": "Exists"}],
        volumes=[{"configMap": {"defaultMode": 420, "name": "fluent-bit"}, "name": "config"},
                 host_path("varlog", "/var/log"), host_path("etcmachineid", "/etc/machine-id", "File")])
    loki_tpl = pod_template(loki_labels, [container(
        "loki", "docker.io/grafana/loki:3.3.2",
        args=["-config.file=/etc/loki/config/config.yaml", "-target=all"],
        ports=[("http-metrics", 3100), ("grpc", 9095)],
        mounts=[("config", "/etc/loki/config", False), ("storage", "/var/loki", False)],
        security={**restricted_container(), "runAsUser": 10001},
        resources=requests("250m", "512Mi", "1Gi"), probe=("/ready", "http-metrics", "HTTP"))],
        service_account="loki",
        security={"fsGroup": 10001, "runAsGroup": 10001, "runAsNonRoot": True, "runAsUser": 10001},
        volumes=[{"configMap": {"defaultMode": 420, "name": "loki"}, "name": "config"}])
    loki_sel = {"app.kubernetes.io/component": "single-binary", "app.kubernetes.io/name": "loki"}
    return [
        *b.service_accounts(ns, age, "fluent-bit", "loki"),
        b.configmap(ns, "fluent-bit", {"fluent-bit.conf": FLUENT_BIT_CONF}, age, fb_labels),
        b.configmap(ns, "loki", {"config.yaml": LOKI_CONFIG}, age, loki_labels),
        *b.daemonset(ns, "fluent-bit", fb_tpl, selector={"app.kubernetes.io/name": "fluent-bit"},
                     labels=fb_labels, age=age, pod_age=38),
        *b.statefulset(ns, "loki", loki_tpl, selector=loki_sel, nodes=[STO2], service_name="loki-headless",
                       age=age, pod_age=38, labels=loki_labels,
                       volume_claims={"storage": ("100Gi", "local-path")}),
        b.service(ns, "loki", selector=loki_sel, labels=loki_labels, age=age,
                  ports=[("http-metrics", 3100, "http-metrics"), ("grpc", 9095, "grpc")]),
        b.service(ns, "loki-headless", selector=loki_sel, labels=loki_labels, age=age, headless=True,
                  ports=[("http-metrics", 3100, "http-metrics")]),
        # Deliberately no NetworkPolicy in this namespace.
    ]


# --------------------------------------------------------------------------------------
# Security tooling: Falco, trivy-operator and its VulnerabilityReports, Kyverno PolicyReports

FALCO_VERSION = "0.39.2"
TRIVY_OPERATOR_VERSION = "0.24.1"
TRIVY_VERSION = "0.57.1"
# Chart defaults: alerts go to stdout and syslog only (deliberate gap: detection.runtime-ids).
FALCO_YAML = """rules_files:
  - /etc/falco/falco_rules.yaml
  - /etc/falco/falco_rules.local.yaml
  - /etc/falco/rules.d
json_output: false
log_stderr: true
log_syslog: true
log_level: info
priority: debug
stdout_output:
  enabled: true
syslog_output:
  enabled: true
file_output:
  enabled: false
  keep_alive: false
  filename: ./events.txt
http_output:
  enabled: false
  url: ""
program_output:
  enabled: false
  keep_alive: false
  program: "jq '{text: .output}' | curl -d @- -X POST https://hooks.slack.com/services/XXX"
grpc:
  enabled: false
  bind_address: "unix:///run/falco/falco.sock"
grpc_output:
  enabled: false
"""

# Findings per image (vulnerabilityID, package, installed, fixed, severity, published days before now).
VULNERABILITIES = {
    "registry.k8s.io/ingress-nginx/controller": [
        # IngressNightmare, published 2025-03-24 (607 days before the default --now).
        ("CVE-2025-1974", "ingress-nginx", "1.11.3", "1.11.5", "CRITICAL", 607, 9.8),
        ("CVE-2025-24514", "ingress-nginx", "1.11.3", "1.11.5", "HIGH", 607, 8.8)],
    "registry.example.com/payments/payment-api": [
        ("CVE-2026-21441", "urllib3", "2.2.3", "2.6.3", "HIGH", 40, 7.5)],
    "registry.example.com/storefront/cart": [
        ("CVE-2026-0001", "libssl3", "3.3.1-r0", "3.3.2-r0", "CRITICAL", 9, 9.1)],
}
# Scans that stopped: trivy-operator cannot pull the image any more (deliberate gap: vulnerability.scan-recent).
STALE_SCANS = {("storefront", "cart"): 97}


def security_tools(b: Builder) -> list[dict]:
    falco_labels = app_labels("falco", instance="falco", version=FALCO_VERSION)
    falco_container = container(
        "falco", f"docker.io/falcosecurity/falco:{FALCO_VERSION}",
        args=["/usr/bin/falco", "--cri", "/run/containerd/containerd.sock", "-pk"],
        mounts=[("config-volume", "/etc/falco/falco.yaml", True), ("proc-fs", "/host/proc", True),
                ("containerd-socket", "/run/containerd/containerd.sock", False)],
        security={"privileged": True}, resources=requests("100m", "512Mi", "1Gi"))
    falco_container["volumeMounts"][0]["subPath"] = "falco.yaml"
    falco_tpl = pod_template(falco_labels, [falco_container], service_account="falco",
                             tolerations=tolerate_everything(),
                             volumes=[{"configMap": {"defaultMode": 420, "name": "falco"}, "name": "config-volume"},
                                      host_path("proc-fs", "/proc"),
                                      host_path("containerd-socket", "/run/containerd/containerd.sock")])
    trivy_labels = app_labels("trivy-operator", instance="trivy-operator", version=TRIVY_OPERATOR_VERSION)
    trivy_tpl = pod_template(trivy_labels, [container(
        "trivy-operator", f"mirror.gcr.io/aquasec/trivy-operator:{TRIVY_OPERATOR_VERSION}",
        env={"OPERATOR_NAMESPACE": "trivy-system", "OPERATOR_TARGET_NAMESPACES": "",
             "OPERATOR_SCANNER_REPORT_TTL": "24h", "OPERATOR_VULNERABILITY_SCANNER_ENABLED": "true"},
        security=restricted_container(), resources=requests("100m", "128Mi", "512Mi"))],
        service_account="trivy-operator")
    kyverno_labels = app_labels("kyverno", component="admission-controller", instance="kyverno",
                                version="1.13.2")
    kyverno_tpl = pod_template(kyverno_labels, [container(
        "kyverno", "ghcr.io/kyverno/kyverno:v1.13.2", args=["--admissionReports=true", "--v=2"],
        ports=[("https", 9443)], security=restricted_container(), resources=requests("100m", "128Mi", "384Mi"))],
        service_account="kyverno-admission-controller")
    return [
        *b.service_accounts("falco", 300, "falco"),
        b.configmap("falco", "falco", {"falco.yaml": FALCO_YAML}, 300, falco_labels),
        *b.daemonset("falco", "falco", falco_tpl, selector={"app.kubernetes.io/name": "falco"},
                     labels=falco_labels, age=300, pod_age=38),
        *b.service_accounts("trivy-system", 300, "trivy-operator"),
        *b.deployment("trivy-system", "trivy-operator", trivy_tpl,
                      selector={"app.kubernetes.io/name": "trivy-operator"}, labels=trivy_labels, nodes=[STO2],
                      age=300, rollout_age=38, revision=2),
        *b.service_accounts("kyverno", 300, "kyverno-admission-controller"),
        *b.deployment("kyverno", "kyverno-admission-controller", kyverno_tpl,
                      selector={"app.kubernetes.io/component": "admission-controller",
                                "app.kubernetes.io/name": "kyverno"},
                      labels=kyverno_labels, nodes=[STO2], age=300, rollout_age=38, revision=3),
    ]


def _scanned_workloads(objects: list[dict]) -> list[tuple[dict, dict]]:
    """(resource trivy-operator reports on, the workload's pod spec): the current ReplicaSet of a Deployment,
    StatefulSets, DaemonSets and CronJobs."""
    out = []
    for o in objects:
        kind = o["kind"]
        if (kind == "ReplicaSet" and o["metadata"].get("ownerReferences")) or kind in ("StatefulSet", "DaemonSet"):
            out.append((o, o["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            out.append((o, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return out


def vulnerability_reports(b: Builder, objects: list[dict]) -> list[dict]:
    reports = []
    for resource, spec in _scanned_workloads(objects):
        meta = resource["metadata"]
        ns, kind, name = meta["namespace"], resource["kind"], meta["name"]
        owner = (meta.get("ownerReferences") or [{}])[0].get("name", name)
        for c in spec.get("initContainers", []) + spec["containers"]:
            image = c["image"]
            repo_full, _, digest = image.partition("@")
            repo, _, tag = repo_full.rpartition(":") if ":" in repo_full.split("/")[-1] else (repo_full, "", "latest")
            server, _, repository = repo.partition("/")
            found = next((v for k, v in VULNERABILITIES.items() if repo.startswith(k)), [])
            age = STALE_SCANS.get((ns, owner), 0.3 + (stable_int("scan", ns, name, c["name"]) % 20) / 100)
            vulns = [{"vulnerabilityID": vid, "resource": pkg, "installedVersion": inst, "fixedVersion": fixed,
                      "severity": sev, "score": score, "title": f"{pkg}: {vid}",
                      "primaryLink": f"https://avd.aquasec.com/nvd/{vid.lower()}",
                      "publishedDate": b.ago(published), "lastModifiedDate": b.ago(published - 2),
                      "target": image, "links": []}
                     for vid, pkg, inst, fixed, sev, published, score in found]
            counts = {s: sum(1 for v in vulns if v["severity"] == s.upper())
                      for s in ("critical", "high", "medium", "low", "unknown")}
            reports.append(b.obj(
                "aquasecurity.github.io/v1alpha1", "VulnerabilityReport",
                f"{kind.lower()}-{name}-{c['name']}", ns, age=age,
                labels={"app.kubernetes.io/managed-by": "trivy-operator",
                        "trivy-operator.container.name": c["name"],
                        "trivy-operator.resource.kind": kind, "trivy-operator.resource.name": name,
                        "trivy-operator.resource.namespace": ns,
                        "resource-spec-hash": kube_suffix(f"spec/{ns}/{name}/{c['name']}", 10)},
                owner=resource,
                report={"updateTimestamp": b.ago(age),
                        "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": TRIVY_VERSION},
                        "registry": {"server": server},
                        "artifact": {"repository": repository, "tag": tag or "latest",
                                     **({"digest": digest} if digest else {})},
                        "os": {"family": "debian" if "postgres" in repo else "alpine", "name": "3.20.3"},
                        "summary": {f"{s}Count": n for s, n in counts.items()} | {"noneCount": 0},
                        "vulnerabilities": vulns}))
    return reports


def policy_reports(b: Builder, objects: list[dict]) -> list[dict]:
    """Kyverno per-resource PolicyReports (named after the resource's uid) for the in-scope namespaces."""
    policies = [("require-run-as-nonroot", "run-as-non-root", "high", "Pod Security Standards (Restricted)"),
                ("disallow-privilege-escalation", "privilege-escalation", "medium", "Pod Security Standards (Restricted)"),
                ("disallow-latest-tag", "validate-image-tag", "medium", "Best Practices")]
    reports = []
    for o in objects:
        if o["kind"] not in ("Deployment", "StatefulSet") or o["metadata"]["namespace"] not in (
                "payments", "storefront", "auth", "ingress-nginx"):
            continue
        spec = o["spec"]["template"]["spec"]
        results = []
        for policy, rule, severity, category in policies:
            c = spec["containers"][0]
            sc = {**(spec.get("securityContext") or {}), **(c.get("securityContext") or {})}
            ok = {"require-run-as-nonroot": sc.get("runAsNonRoot") is True,
                  "disallow-privilege-escalation": sc.get("allowPrivilegeEscalation") is False,
                  "disallow-latest-tag": not c["image"].split("@")[0].endswith(":latest")}[policy]
            results.append({"policy": policy, "rule": rule, "result": "pass" if ok else "fail", "scored": True,
                            "severity": severity, "category": category, "source": "kyverno",
                            "message": f"validation rule '{rule}' passed." if ok else
                            f"validation error: rule {rule} failed at path /spec/template/spec/containers/0/",
                            "timestamp": {"nanos": 0, "seconds": 1_795_000_000 + stable_int(policy) % 100_000}})
        meta = o["metadata"]
        reports.append(b.obj(
            "wgpolicyk8s.io/v1alpha2", "PolicyReport", meta["uid"], meta["namespace"], age=1,
            labels={"app.kubernetes.io/managed-by": "kyverno"},
            scope={"apiVersion": o["apiVersion"], "kind": o["kind"], "name": meta["name"],
                   "namespace": meta["namespace"], "uid": meta["uid"]},
            summary={k: sum(1 for r in results if r["result"] == k) for k in ("pass", "fail", "warn", "error", "skip")},
            results=results))
    return reports


# --------------------------------------------------------------------------------------
# Output


class KubectlDumper(yaml.SafeDumper):
    """YAML that looks like kubectl's: no anchors, block literals, double-quoted ambiguous strings."""

    def ignore_aliases(self, data):
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str):
    style = None
    if "\n" in data:
        style = "|"
    elif dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
        style = '"'  # "", "true", "0", timestamps ... as kubectl quotes them
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


KubectlDumper.add_representer(str, _represent_str)
YAML_OPTIONS = {"Dumper": KubectlDumper, "sort_keys": True, "default_flow_style": False,
                "allow_unicode": True, "width": 4096}


def render(form: str, content) -> str:
    if form == "list":  # what `kubectl get -A -o yaml` prints
        return yaml.dump({"apiVersion": "v1", "items": content, "kind": "List",
                          "metadata": {"resourceVersion": ""}}, **YAML_OPTIONS)
    if form == "multi":  # multi-document YAML
        return yaml.dump_all(content, explicit_start=True, **YAML_OPTIONS)
    if form == "json":  # a single object, as `kubectl get -o json` prints it
        return json.dumps(content, indent=4) + "\n"
    raise ValueError(form)


def build_files(b: Builder) -> dict[str, tuple[str, object]]:
    """Relative path -> (form, content). Builders run in a fixed order (pod IPs are allocated in order)."""
    mon = monitoring(b)
    prometheus = next(o for o in mon if o["kind"] == "Prometheus")
    files: dict[str, tuple[str, object]] = {
        "cluster-scoped.yaml": ("list", cluster_scoped(b)),
        "kube-system.yaml": ("list", kube_system(b)),
        "default.yaml": ("list", default_namespaces(b)),
        "ingress-nginx.yaml": ("multi", ingress_nginx(b)),
        "cert-manager.yaml": ("list", cert_manager(b)),
        "payments.yaml": ("multi", payments(b)),
        "storefront.yaml": ("multi", storefront(b)),
        "auth.yaml": ("list", auth(b)),
        "monitoring/prometheus.json": ("json", prometheus),
        "monitoring/stack.yaml": ("multi", [o for o in mon if o is not prometheus]),
        "logging/logging.yaml": ("list", logging_ns(b)),
    }
    files["security/tools.yaml"] = ("multi", security_tools(b))
    workloads = [o for form, content in files.values() if form != "json" for o in content]
    files["security/reports.yaml"] = ("list", vulnerability_reports(b, workloads) + policy_reports(b, workloads))
    return files


def snapshot_metadata(now: datetime) -> dict:
    return {
        "format": "auditpack-snapshot/v1",
        "collected_at": rfc3339(now),
        "cluster": {
            "name": CLUSTER_NAME,
            "server": API_SERVER,
            "version": K8S_VERSION,
            "kube_system_uid": uid("Namespace", None, "kube-system"),
            "context": CLUSTER_NAME,
        },
    }


def reset_dir(out: Path) -> None:
    if out.exists():
        if any(out.iterdir()) and not (out / "snapshot.json").exists():
            raise SystemExit(f"refusing to delete {out}: not empty and not a snapshot (no snapshot.json)")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def parse_now(value: str) -> datetime:
    try:
        now = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {value}") from exc
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory, deleted and recreated (default: {DEFAULT_OUT})")
    parser.add_argument("--now", type=parse_now, default=parse_now(DEFAULT_NOW),
                        help=f"snapshot time; validity windows are relative to it (default: {DEFAULT_NOW})")
    args = parser.parse_args(argv)

    builder = Builder(args.now, Pki(args.now))
    files = build_files(builder)
    reset_dir(args.out)
    (args.out / "snapshot.json").write_text(json.dumps(snapshot_metadata(args.now), indent=2) + "\n")
    total = 0
    for rel, (form, content) in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(form, content))
        count = 1 if form == "json" else len(content)
        total += count
        print(f"{rel:32} {form:6} {count:4} objects")
    print(f"wrote {total} objects to {args.out}")


if __name__ == "__main__":
    main()
