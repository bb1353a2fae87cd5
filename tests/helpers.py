"""Small builders for collector tests: Kubernetes objects as dicts and an Inventory holding them."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from evidence.inventory import ClusterIdentity, CollectionEntry, Inventory, SourceInfo
from evidence.kinds import RESOURCE_TYPES

NOW = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)


def obj(api: str, kind: str, name: str, ns: str | None = None, labels: dict | None = None,
        annotations: dict | None = None, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{kind}-{name}", "resourceVersion": "1"}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def inventory(*objects: dict[str, Any], denied: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> Inventory:
    """Objects as a live source would give them: every catalogue type listed ok, except `denied`/`absent` kinds."""
    inv = Inventory(source=SourceInfo(type="snapshot", location="test", collected_at=NOW,
                                      cluster=ClusterIdentity(name="test")))
    for o in objects:
        inv.add(o)
    for t in RESOURCE_TYPES:
        status = "forbidden" if t.kind in denied else "absent" if t.kind in absent else "ok"
        inv.log.append(CollectionEntry(group=t.group, kind=t.kind, status=status,
                                       count=len(inv.objects(t.kind, t.group))))
    return inv


def certificate(cn: str, sans: list[str], days: tuple[int, int] = (-30, 60), rsa_bits: int | None = 2048,
                self_signed: bool = False, issuer_cn: str = "Test Issuing CA") -> str:
    """A base64 PEM chain (leaf + issuer unless self-signed), made for the test; no key leaves memory."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(10).not_valid_before(NOW - dt.timedelta(days=400))
          .not_valid_after(NOW + dt.timedelta(days=400))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).public_key(key.public_key()).serial_number(11)
               .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False))
    if self_signed:
        leaf = builder.issuer_name(name).sign(key, hashes.SHA256())
        pem = leaf.public_bytes(serialization.Encoding.PEM)
    else:
        leaf = builder.issuer_name(ca_name).sign(ca_key, hashes.SHA256())
        pem = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def tls_secret(name: str, ns: str, crt: str) -> dict[str, Any]:
    return obj("v1", "Secret", name, ns, type="kubernetes.io/tls", data={"tls.crt": crt})


def deployment(name: str, ns: str, image: str, args: list[str] | None = None, env: list | None = None,
               labels: dict | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    return obj("apps/v1", "Deployment", name, ns, spec={"selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": name, "image": image, "args": args or [], "env": env or []}]}}})


def pod(name: str, ns: str, labels: dict, node: str | None = None, owner: tuple[str, str] | None = None,
        phase: str = "Running") -> dict[str, Any]:
    o = obj("v1", "Pod", name, ns, labels=labels, spec={"nodeName": node, "containers": [{"name": "c"}]},
            status={"phase": phase})
    if owner:
        o["metadata"]["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return o


def node(name: str, region: str | None = None, annotations: dict | None = None) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if region:
        labels["topology.kubernetes.io/region"] = region
    return obj("v1", "Node", name, labels=labels, annotations=annotations)


def netpol(name: str, ns: str, selector: dict | None = None, types: list[str] | None = None,
           ingress: list | None = None, egress: list | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": selector or {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return obj("networking.k8s.io/v1", "NetworkPolicy", name, ns, spec=spec)
