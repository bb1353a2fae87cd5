"""Generate the auditpack mesh sample: a small cluster that protects traffic with Cilium WireGuard and Istio.

Usage:
    python samples/generate_mesh.py [--out DIR] [--now 2026-11-21T06:00:00Z]

Writes a snapshot of the fictional cluster "mesh-shop" into samples/mesh-cluster/ (or --out), deleting and
recreating it first; samples/mesh-scope.yaml is its scope file. Where the demo cluster (generate_demo.py)
shows the "simple parts" route (ingress-nginx, cert-manager, Calico WireGuard), this one shows the other:

- Cilium with WireGuard configured and active on every node, across two regions (se-sto, nl-ams);
- Istio with a mesh-wide STRICT PeerAuthentication and sidecars in every application namespace;
- a Gateway API Gateway (GatewayClass istio) with HTTPS listeners, certificates from cert-manager, and
  HTTPRoutes that set HSTS; plain HTTP for pay.example.com is redirected.

Deliberate gaps (samples/README.md): namespace `shop` overrides the mesh-wide STRICT with a PERMISSIVE
PeerAuthentication, and an HTTPRoute attached to the plain-HTTP listener serves shop.example.com without a
RequestRedirect. Certificates are real X.509 made in memory; private keys are never written.

Builds on the object builders of generate_demo.py (same directory).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import generate_demo as demo
from generate_demo import Node, app_labels, container, field_ref, pod_template

DEFAULT_OUT = Path(__file__).resolve().parent / "mesh-cluster"
CLUSTER_NAME = "mesh-shop"
API_SERVER = "https://198.51.100.10:6443"
K8S_VERSION = "v1.32.2"
ISTIO_VERSION = "1.24.2"
CILIUM_VERSION = "v1.16.5"
GATEWAY_IP = "198.51.100.40"

NODES = (
    Node("mesh-sto-1", "10.30.1.11", "se-sto", "se-sto-a", "10.0.0.0/24", "10.0.0.0/24",
         "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", 300, control_plane=True),
    Node("mesh-sto-2", "10.30.1.12", "se-sto", "se-sto-b", "10.0.1.0/24", "10.0.1.0/24",
         "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", 300),
    Node("mesh-ams-1", "10.40.1.11", "nl-ams", "nl-ams-a", "10.0.2.0/24", "10.0.2.0/24",
         "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", 280),
)
STO1, STO2, AMS1 = NODES
WORKERS = (STO2, AMS1)

NAMESPACES = {  # name: (labels, days ago)
    "default": ({}, 300), "kube-node-lease": ({}, 300), "kube-public": ({}, 300), "kube-system": ({}, 300),
    "istio-system": ({}, 295), "cert-manager": ({}, 295),
    "edge": ({"pci.auditpack.io/scope": "connected", "istio-injection": "enabled"}, 290),
    "shop": ({"pci.auditpack.io/scope": "connected", "istio-injection": "enabled"}, 290),
    "payments": ({"pci.auditpack.io/scope": "cde", "istio-injection": "enabled"}, 290),
}


class MeshBuilder(demo.Builder):
    """The demo's object builder on this cluster's nodes; pods carry Cilium, not Calico, annotations."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now, demo.Pki(now))
        self._next_host = {n.name: 10 for n in NODES}

    def pod(self, ns: str, name: str, template: dict, node: Node, **kw) -> dict:  # type: ignore[override]
        p = super().pod(ns, name, template, node, **kw)
        annotations = {k: v for k, v in (p["metadata"].get("annotations") or {}).items()
                       if not k.startswith("cni.projectcalico.org/")}
        if annotations:
            p["metadata"]["annotations"] = annotations
        else:
            p["metadata"].pop("annotations", None)
        return p


def sidecar(labels: dict, app: dict, *, service_account: str) -> dict:
    """A pod template as it looks after Istio's injector ran: istio-proxy container and the status annotation."""
    proxy = container("istio-proxy", f"docker.io/istio/proxyv2:{ISTIO_VERSION}",
                      args=["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                      env={"POD_NAMESPACE": field_ref("metadata.namespace")}, ports=[("http-envoy-prom", 15090)],
                      security={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 1337})
    status = json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                         "volumes": ["istio-envoy", "istio-data"], "imagePullSecrets": None,
                         "revision": "default"}, separators=(",", ":"))
    return pod_template({**labels, "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name":
                         labels.get("app", "app")}, [app, proxy], service_account=service_account,
                        annotations={"sidecar.istio.io/status": status, "prometheus.io/port": "15020"})


def node_objects(b: MeshBuilder) -> list[dict]:
    out = []
    for n in NODES:
        obj = demo.node_object(b, n)
        obj["metadata"]["annotations"] = {k: v for k, v in obj["metadata"]["annotations"].items()
                                          if not k.startswith("projectcalico.org/")}
        for cond in obj["status"]["conditions"]:
            if cond["type"] == "NetworkUnavailable":
                cond.update(reason="CiliumIsUp", message="Cilium is running on this node")
        obj["status"]["nodeInfo"].update(kubeletVersion=K8S_VERSION, kubeProxyVersion=K8S_VERSION)
        out.append(obj)
    return out


def cluster_scoped(b: MeshBuilder) -> list[dict]:
    objs = node_objects(b)
    objs += [b.namespace(name, labels, age) for name, (labels, age) in NAMESPACES.items()]
    # Cilium publishes each node's WireGuard public key on its CiliumNode: the per-node proof of encryption.
    for n in NODES:
        objs.append(b.obj("cilium.io/v2", "CiliumNode", n.name, age=n.joined_days_ago,
                          annotations={"network.cilium.io/wg-pub-key": demo.wireguard_public_key()},
                          spec={"addresses": [{"ip": n.ip, "type": "InternalIP"}], "encryption": {},
                                "ipam": {"podCIDRs": [n.pod_cidr]}},
                          status={"ipam": {"operator-status": {}}}))
    objs.append(b.obj("gateway.networking.k8s.io/v1", "GatewayClass", "istio", age=295, generation=1,
                      spec={"controllerName": "istio.io/gateway-controller",
                            "description": "The default Istio GatewayClass"},
                      status={"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                              "lastTransitionTime": b.ago(295)}]}))
    objs.append(b.obj("cert-manager.io/v1", "ClusterIssuer", "letsencrypt-prod", age=294, generation=1,
                      spec={"acme": {"email": "platform-team@example.com", "server": demo.ACME_SERVERS["letsencrypt-prod"],
                                     "privateKeySecretRef": {"name": "letsencrypt-prod-account-key"},
                                     "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [
                                         {"name": "public", "namespace": "edge", "kind": "Gateway"}]}}}]}},
                      status={"conditions": [{"type": "Ready", "status": "True", "reason": "ACMEAccountRegistered",
                                              "lastTransitionTime": b.ago(294)}]}))
    return objs


def kube_system(b: MeshBuilder) -> list[dict]:
    ns, age = "kube-system", 300
    labels = {"k8s-app": "cilium", **app_labels("cilium-agent", part_of="cilium")}
    agent = container("cilium-agent", f"quay.io/cilium/cilium:{CILIUM_VERSION}", command=["cilium-agent"],
                      args=["--config-dir=/tmp/cilium/config-map"],
                      env={"K8S_NODE_NAME": field_ref("spec.nodeName")}, security={"privileged": True})
    tpl = pod_template(labels, [agent], service_account="cilium", host_network=True,
                       tolerations=[{"operator": "Exists"}])
    return [
        *b.service_accounts(ns, age, "cilium"),
        # Helm encryption.enabled=true, encryption.type=wireguard, encryption.nodeEncryption=true.
        b.configmap(ns, "cilium-config", {"cluster-name": CLUSTER_NAME, "enable-wireguard": "true",
                                          "encrypt-node": "true", "enable-policy": "default",
                                          "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
                                          "ipam": "kubernetes"}, age),
        *b.daemonset(ns, "cilium", tpl, selector={"k8s-app": "cilium"}, labels=labels, age=age, pod_age=30,
                     nodes=NODES),
    ]


def istio_system(b: MeshBuilder) -> list[dict]:
    ns, age = "istio-system", 295
    labels = {"app": "istiod", "istio": "pilot", **app_labels("istiod", part_of="istio", version=ISTIO_VERSION)}
    pilot = container("discovery", f"docker.io/istio/pilot:{ISTIO_VERSION}",
                      args=["discovery", "--monitoringAddr=:15014", "--domain", "cluster.local"],
                      ports=[("grpc-xds", 15010), ("https-webhook", 15017)],
                      env={"POD_NAMESPACE": field_ref("metadata.namespace")})
    tpl = pod_template(labels, [pilot], service_account="istiod")
    return [
        *b.service_accounts(ns, age, "istiod"),
        b.configmap(ns, "istio", {"mesh": "rootNamespace: istio-system\nenableAutoMtls: true\n"
                                          "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n",
                                  "meshNetworks": "networks: {}\n"}, age),
        *b.deployment(ns, "istiod", tpl, selector={"app": "istiod"}, labels=labels, nodes=[STO2], age=age,
                      rollout_age=30, revision=4),
        b.service(ns, "istiod", selector={"app": "istiod"}, labels=labels, age=age,
                  ports=[("grpc-xds", 15010, 15010), ("https-webhook", 443, 15017)]),
        # Mesh-wide: every sidecar accepts only mutual TLS.
        b.obj("security.istio.io/v1", "PeerAuthentication", "default", ns, age=290, generation=1,
              spec={"mtls": {"mode": "STRICT"}}),
    ]


def cert_manager(b: MeshBuilder) -> list[dict]:
    ns, age = "cert-manager", 295
    labels = {"app": "cert-manager", **app_labels("cert-manager", component="controller", version="v1.17.1")}
    c = container("cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.17.1",
                  args=["--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)", "--enable-gateway-api"],
                  env={"POD_NAMESPACE": field_ref("metadata.namespace")})
    tpl = pod_template(labels, [c], service_account="cert-manager")
    return [*b.service_accounts(ns, age, "cert-manager"),
            *b.deployment(ns, "cert-manager", tpl, selector={"app": "cert-manager"}, labels=labels,
                          nodes=[STO2], age=age, rollout_age=30, revision=2),
            b.redacted_secret(ns, "letsencrypt-prod-account-key", 294)]


def route(b: MeshBuilder, ns: str, name: str, section: str, hosts: list[str], *, backend: tuple[str, int] | None,
          redirect: bool = False, hsts: bool = False) -> dict:
    rule: dict = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
    if redirect:
        rule["filters"] = [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    if hsts:
        rule["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [
            {"name": "Strict-Transport-Security", "value": "max-age=31536000; includeSubDomains"}]}}]
    if backend:
        rule["backendRefs"] = [{"name": backend[0], "port": backend[1]}]
    return b.obj("gateway.networking.k8s.io/v1", "HTTPRoute", name, ns, age=200, generation=1, spec={
        "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "edge",
                        "sectionName": section}],
        "hostnames": hosts, "rules": [rule]},
        status={"parents": [{"parentRef": {"name": "public", "namespace": "edge", "sectionName": section},
                             "controllerName": "istio.io/gateway-controller",
                             "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                             "lastTransitionTime": b.ago(200)}]}]})


def edge(b: MeshBuilder) -> list[dict]:
    ns, age = "edge", 290
    listeners = [
        {"name": "https-shop", "protocol": "HTTPS", "port": 443, "hostname": "shop.example.com",
         "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "shop-example-tls"}]},
         "allowedRoutes": {"namespaces": {"from": "All"}}},
        {"name": "https-pay", "protocol": "HTTPS", "port": 443, "hostname": "pay.example.com",
         "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "pay-example-tls"}]},
         "allowedRoutes": {"namespaces": {"from": "All"}}},
        {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}},
    ]
    gateway = b.obj(
        "gateway.networking.k8s.io/v1", "Gateway", "public", ns, age=age, generation=3,
        annotations={"cert-manager.io/cluster-issuer": "letsencrypt-prod"},
        spec={"gatewayClassName": "istio", "listeners": listeners},
        status={"addresses": [{"type": "IPAddress", "value": GATEWAY_IP}],
                "conditions": [{"type": t, "status": "True", "reason": t, "lastTransitionTime": b.ago(200)}
                               for t in ("Accepted", "Programmed")],
                "listeners": [{"name": li["name"], "attachedRoutes": 1, "supportedKinds": [{"kind": "HTTPRoute"}],
                               "conditions": [{"type": t, "status": "True", "reason": t,
                                               "lastTransitionTime": b.ago(200)}
                                              for t in ("Accepted", "Programmed", "ResolvedRefs")]}
                              for li in listeners]})
    # The deployment and LoadBalancer Service Istio creates for the Gateway (labelled with its name).
    gw_labels = {"gateway.networking.k8s.io/gateway-name": "public", "istio.io/gateway-name": "public"}
    proxy = container("istio-proxy", f"docker.io/istio/proxyv2:{ISTIO_VERSION}",
                      args=["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                      env={"POD_NAMESPACE": field_ref("metadata.namespace")},
                      ports=[("http", 80), ("https", 443)])
    tpl = pod_template(gw_labels, [proxy], service_account="public-istio",
                       annotations={"sidecar.istio.io/inject": "false", "istio.io/rev": "default"})
    svc = b.service(ns, "public-istio", selector={"gateway.networking.k8s.io/gateway-name": "public"},
                    labels=gw_labels, age=age, load_balancer_ip=GATEWAY_IP,
                    ports=[("http", 80, 80), ("https", 443, 443)])
    return [
        *b.service_accounts(ns, age, "public-istio"),
        gateway,
        *b.deployment(ns, "public-istio", tpl, selector=gw_labels, labels=gw_labels, nodes=[STO2, AMS1],
                      age=age, rollout_age=30, revision=3),
        svc,
        # Plain HTTP for pay.example.com only redirects (the shop's plain-HTTP route is in namespace shop).
        route(b, ns, "pay-http-redirect", "http", ["pay.example.com"], backend=None, redirect=True),
        *b.managed_certificate(gateway, "shop-example-tls", ["shop.example.com"], issuer="letsencrypt-prod",
                               key_algorithm="ECDSA", valid_from_days=-20, valid_until_days=70, revision=3, age=290),
        *b.managed_certificate(gateway, "pay-example-tls", ["pay.example.com"], issuer="letsencrypt-prod",
                               key_algorithm="RSA", valid_from_days=-35, valid_until_days=55, revision=4, age=290),
    ]


def app(b: MeshBuilder, ns: str, name: str, image: str, port: int, nodes, **route_kw) -> list[dict]:
    labels = {"app": name, **app_labels(name, part_of=ns)}
    c = container(name, image, ports=[("http", port)], security=demo.restricted_container(),
                  resources=demo.requests("100m", "128Mi", "256Mi"))
    tpl = sidecar(labels, c, service_account=name)
    return [*b.service_accounts(ns, 290, name),
            *b.deployment(ns, name, tpl, selector={"app": name}, labels=labels, nodes=nodes, age=290,
                          rollout_age=20, revision=6),
            b.service(ns, name, selector={"app": name}, labels=labels, age=290, ports=[("http", 8080, "http")])]


def shop(b: MeshBuilder) -> list[dict]:
    ns = "shop"
    return [
        *app(b, ns, "web", "registry.example.com/shop/web:3.2.0", 8080, WORKERS),
        route(b, ns, "web", "https-shop", ["shop.example.com"], backend=("web", 8080), hsts=True),
        # Deliberate gap 2: the plain-HTTP listener serves the shop instead of redirecting it.
        route(b, ns, "web-http", "http", ["shop.example.com"], backend=("web", 8080)),
        # Deliberate gap 1: the namespace overrides the mesh-wide STRICT ("for the old load tester").
        b.obj("security.istio.io/v1", "PeerAuthentication", "default", ns, age=120, generation=1,
              annotations={"description": "temporary: legacy load tester without sidecar"},
              spec={"mtls": {"mode": "PERMISSIVE"}}),
    ]


def payments(b: MeshBuilder) -> list[dict]:
    ns = "payments"
    db_labels = {"app": "ledger-db", **app_labels("postgresql", instance="ledger-db", part_of=ns)}
    db = container("postgres", "registry.example.com/mirror/postgres:16.6", ports=[("postgres", 5432)],
                   env={"POSTGRES_PASSWORD": demo.secret_ref("ledger-db", "password")})
    return [
        *app(b, ns, "payment-api", "registry.example.com/payments/payment-api:2.15.0", 8080, WORKERS),
        *b.statefulset(ns, "ledger-db", sidecar(db_labels, db, service_account="default"),
                       selector={"app": "ledger-db"}, labels=db_labels, nodes=[STO2], service_name="ledger-db",
                       age=290, pod_age=40),
        b.service(ns, "ledger-db", selector={"app": "ledger-db"}, labels=db_labels, age=290,
                  ports=[("tcp-postgres", 5432, "postgres")]),
        b.redacted_secret(ns, "ledger-db", 290),
        route(b, ns, "payment-api", "https-pay", ["pay.example.com"], backend=("payment-api", 8080), hsts=True),
    ]


def build_files(b: MeshBuilder) -> dict[str, tuple[str, object]]:
    return {
        "cluster-scoped.yaml": ("list", cluster_scoped(b)),
        "kube-system.yaml": ("list", kube_system(b)),
        "istio-system.yaml": ("multi", istio_system(b)),
        "cert-manager.yaml": ("list", cert_manager(b)),
        "edge.yaml": ("multi", edge(b)),
        "shop.yaml": ("multi", shop(b)),
        "payments.yaml": ("multi", payments(b)),
    }


def snapshot_metadata(now: datetime) -> dict:
    return {"format": "auditpack-snapshot/v1", "collected_at": demo.rfc3339(now),
            "cluster": {"name": CLUSTER_NAME, "server": API_SERVER, "version": K8S_VERSION,
                        "kube_system_uid": demo.uid("Namespace", None, "kube-system"), "context": CLUSTER_NAME}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory, deleted and recreated (default: {DEFAULT_OUT})")
    parser.add_argument("--now", type=demo.parse_now, default=demo.parse_now(demo.DEFAULT_NOW),
                        help=f"snapshot time; validity windows are relative to it (default: {demo.DEFAULT_NOW})")
    args = parser.parse_args(argv)
    files = build_files(MeshBuilder(args.now))
    demo.reset_dir(args.out)
    (args.out / "snapshot.json").write_text(json.dumps(snapshot_metadata(args.now), indent=2) + "\n")
    total = 0
    for rel, (form, content) in files.items():
        (args.out / rel).write_text(demo.render(form, content))
        count = len(content)  # type: ignore[arg-type]
        total += count
        print(f"{rel:24} {form:6} {count:4} objects")
    print(f"wrote {total} objects to {args.out}")


if __name__ == "__main__":
    main()
