"""Benchmark: live collection of a synthetic cluster served by the loopback API server (tests/fakeapi).

Prints, side by side as medians over --runs runs (each in a fresh process, so peak RSS is per method):
  auditpack   the live source (discovery, paginated raw lists, orjson, redaction, inventory)
  model       the official client's default model path: CoreV1Api.list_pod_for_all_namespaces()
  kubectl     kubectl get pods -A -o json (when kubectl is installed)
  floor       the same pages read with the client's raw path and decoded with orjson, nothing else

Usage: python benchmarks/collect_live.py [--pods 10000] [--runs 3] [--skip kubectl,model]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent


def pod(i: int, namespaces: int) -> dict[str, Any]:
    """A realistic ~12 KB pod: labels, owner reference, two containers, probes, volumes, managedFields, status."""
    app = i % 60
    ns = f"team-{i % namespaces:03d}"
    name = f"app-{app:02d}-7d9f8c6b5-{i:05d}"
    env = [{"name": f"FEATURE_FLAG_{j:03d}", "value": f"enabled-for-tenant-{j % 7}-region-eu-north-1"}
           for j in range(90)]
    container = {
        "name": "app",
        "image": f"registry.example.com/team/app-{app}@sha256:{uuid.uuid5(uuid.NAMESPACE_DNS, str(app)).hex * 2}",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": env, "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                         {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    sidecar = {"name": "log-forwarder", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
               "args": ["--config=/fluent-bit/etc/fluent-bit.conf"],
               "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
               "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]}
    managed = [{"manager": m, "operation": "Update", "apiVersion": "v1", "time": "2026-11-01T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {f"f:{k}": {} for k in ("app", "pod-template-hash", "tier")},
                                            "f:ownerReferences": {f'k:{{"uid":"{i}"}}': {}}},
                             "f:spec": {"f:containers": {f'k:{{"name":"{c}"}}': {
                                 f"f:{f}": {} for f in ("image", "env", "ports", "resources", "volumeMounts",
                                                         "securityContext", "livenessProbe", "readinessProbe")}
                                 for c in ("app", "log-forwarder")}}}}
               for m in ("kube-controller-manager", "kubelet")]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name + ns)),
                     "resourceVersion": str(100000 + i), "creationTimestamp": "2026-11-01T10:00:00Z",
                     "generateName": name[:-5],
                     "labels": {"app": f"app-{app}", "pod-template-hash": "7d9f8c6b5", "tier": "web",
                                "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": f"1.{app}.0"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name[:-6],
                                          "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, name[:-6])), "controller": True,
                                          "blockOwnerDeletion": True}],
                     "managedFields": managed},
        "spec": {"containers": [container, sidecar], "serviceAccountName": f"app-{app}", "nodeName": f"node-{i % 40}",
                 "volumes": [{"name": "config", "configMap": {"name": f"app-{app}-config"}},
                             {"name": "varlog", "emptyDir": {}},
                             {"name": "kube-api-access", "projected": {"sources": [
                                 {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                                 {"configMap": {"name": "kube-root-ca.crt",
                                                "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                   "hostIP": f"192.0.2.{i % 40}", "qosClass": "Burstable", "startTime": "2026-11-01T10:00:01Z",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-11-01T10:00:05Z"}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                            "PodScheduled")],
                   "containerStatuses": [{"name": c, "ready": True, "restartCount": 0, "started": True,
                                          "image": "registry.example.com/x:1", "imageID": "sha256:" + "ab" * 32,
                                          "containerID": "containerd://" + "cd" * 32,
                                          "state": {"running": {"startedAt": "2026-11-01T10:00:03Z"}}}
                                         for c in ("app", "log-forwarder")]},
    }


def generate(directory: Path, pods: int, namespaces: int) -> tuple[int, float]:
    items = [pod(i, namespaces) for i in range(pods)]
    nss = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, n))}}
           for n in ["kube-system"] + [f"team-{j:03d}" for j in range(namespaces)]]
    data = orjson.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    (directory / "pods.json").write_bytes(data)
    (directory / "namespaces.json").write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": nss}))
    return len(data), len(data) / pods


CHILD = r"""
import gc, json, resource, sys, time
method, kubeconfig = sys.argv[1], sys.argv[2]
import orjson, kubernetes.client, kubernetes.config  # imports are not part of the measurement
if method == "auditpack":
    from evidence.sources import live
t = time.perf_counter()
objects = 0
if method == "auditpack":
    inv = live.LiveSource(live.connect(__import__("pathlib").Path(kubeconfig))).load()
    objects = len(inv)
elif method == "model":
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=kubeconfig)
    objects = len(client.CoreV1Api(api).list_pod_for_all_namespaces().items)
elif method == "floor":
    import orjson
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=kubeconfig)
    v1, token = client.CoreV1Api(api), None
    while True:
        raw = v1.list_pod_for_all_namespaces(limit=500, _continue=token, _preload_content=False).data
        gc.disable()
        page = orjson.loads(raw)
        gc.enable()
        objects += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
elif method == "kubectl":
    import subprocess
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "pods", "-A", "-o", "json"],
                         capture_output=True, check=True).stdout
    objects = len(json.loads(out)["items"])
elapsed = time.perf_counter() - t
# This process's own peak is VmHWM: Linux carries ru_maxrss over fork and exec (the generating parent's RSS).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if method == "kubectl" else hwm
print(json.dumps({"seconds": elapsed, "objects": objects, "rss_mb": rss / 1024}))
"""


def run(method: str, kubeconfig: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, method, str(kubeconfig)], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated methods to skip (auditpack, model, kubectl, floor)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    methods = [m for m in ("auditpack", "floor", "model", "kubectl") if m not in skip]
    if "kubectl" in methods and shutil.which("kubectl") is None:
        methods.remove("kubectl")
    work = Path(tempfile.mkdtemp(prefix="auditpack-bench-"))
    try:
        total, per_pod = generate(work, args.pods, args.namespaces)
        print(f"{args.pods} pods, {total / 1e6:.1f} MB of JSON ({per_pod / 1000:.1f} KB per pod), "
              f"{args.namespaces} namespaces; medians of {args.runs} runs, each method in its own process")
        kubeconfig = work / "kubeconfig"
        server = subprocess.Popen([sys.executable, "-m", "tests.fakeapi", "serve", str(work), "--kubeconfig",
                                   str(kubeconfig)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            ready = server.stdout.readline()
            if not ready.startswith("READY"):
                raise SystemExit(f"server did not start: {ready}")
            results: dict[str, dict[str, float]] = {}
            for m in methods:
                runs = [run(m, kubeconfig) for _ in range(args.runs)]
                results[m] = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "objects", "rss_mb")}
            floor = results.get("floor", {}).get("seconds")
            model = results.get("model", {}).get("seconds")
            print(f"{'method':<10} {'seconds':>8} {'objects/s':>10} {'MB/s':>7} {'peak RSS MB':>12} {'vs floor':>9}"
                  f" {'vs model':>9}")
            for m, r in results.items():
                vs_floor = f"{r['seconds'] / floor:.2f}x" if floor else "-"
                vs_model = f"{model / r['seconds']:.1f}x" if model else "-"
                print(f"{m:<10} {r['seconds']:>8.2f} {r['objects'] / r['seconds']:>10,.0f} "
                      f"{total / 1e6 / r['seconds']:>7.1f} {r['rss_mb']:>12.0f} {vs_floor:>9} {vs_model:>9}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    time.sleep(0)


if __name__ == "__main__":
    main()
