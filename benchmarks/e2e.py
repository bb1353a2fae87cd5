"""Benchmark: a full pack (PDF, workbook, OSCAL, signing) for a synthetic cluster of N pods, per stage.

The cluster is the demo snapshot plus N application pods of ~12 KB (benchmarks/collect_live.py's generator), 50
pods per namespace, and per namespace a Deployment, a ReplicaSet, 5 NetworkPolicies, a Service, an Ingress with a
real TLS Secret and a cert-manager Certificate; nodes at two sites. Each size runs in a fresh process that calls
the pipeline as `collect --snapshot` does, with a progress callback that stamps every stage: wall, CPU (user+sys of
this process and of the PDF renderer's process) and peak RSS.

Usage: python benchmarks/e2e.py [--demo] --pods 1000 5000 10000 50000 [--keep DIR]
Targets (issue 16): the demo pack <= 8 s wall; 10,000 pods <= 60 s wall, <= 60 s CPU, <= 1 GB; 50,000 pods completes
under 3 GB. Memory is the larger of the run's own peak and the run plus its PDF processes sampled at the same moment.
Each target prints met or NOT met, and for one not met the stage that holds it back.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
PODS_PER_NS = 50
NODES = 100


def _cert() -> tuple[str, str]:
    """One real self-signed certificate (and key, which redaction must drop) shared by every TLS Secret."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=80))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.shop.example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    crt = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return crt, base64.b64encode(pem).decode()


def generate(out: Path, pods: int) -> int:
    """The demo snapshot plus the synthetic workload; returns the number of objects added."""
    from collect_live import pod

    shutil.copytree(ROOT / "samples" / "demo-cluster", out)
    (out / "snapshot.json").unlink(missing_ok=True)  # its collection log would not list the synthetic kinds' counts
    namespaces = max(1, pods // PODS_PER_NS)
    crt, key = _cert()
    items: list[dict[str, Any]] = [pod(i, namespaces) for i in range(pods)]
    for j in range(namespaces):
        ns = f"team-{j:03d}"
        host = f"{ns}.shop.example.com"
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": ns, "uid": f"ns-{j}", "labels": {"kubernetes.io/metadata.name": ns, "team": f"t{j % 20}"}}})
        for a in range(min(60, PODS_PER_NS)):
            if a % 12:
                continue
            items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
                "name": f"app-{a:02d}", "namespace": ns, "uid": f"dep-{j}-{a}"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"app-{a}"}},
                         "template": {"metadata": {"labels": {"app": f"app-{a}"}},
                                      "spec": {"containers": [{"name": "app", "image": "registry.example.com/a:1"}]}}}})
        for p in range(5):
            items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {
                "name": f"np-{p}", "namespace": ns, "uid": f"np-{j}-{p}"},
                "spec": {"podSelector": {} if p == 0 else {"matchLabels": {"app": f"app-{p * 12}"}},
                         "policyTypes": ["Ingress"] if p else ["Ingress", "Egress"],
                         "ingress": [] if p == 0 else [{"from": [{"podSelector": {"matchLabels": {"tier": "web"}}}],
                                                        "ports": [{"port": 8080, "protocol": "TCP"}]}]}})
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns, "uid": f"svc-{j}"},
                      "spec": {"selector": {"app": "app-0"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        items.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                      "metadata": {"name": "web-tls", "namespace": ns, "uid": f"sec-{j}"},
                      "data": {"tls.crt": crt, "tls.key": key}})
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
            "name": "web", "namespace": ns, "uid": f"ing-{j}", "annotations": {
                "cert-manager.io/cluster-issuer": "letsencrypt"}},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": [host], "secretName": "web-tls"}],
                     "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                         "service": {"name": "web", "port": {"number": 80}}}}]}}]}})
        items.append({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {
            "name": "web-tls", "namespace": ns, "uid": f"cert-{j}"},
            "spec": {"secretName": "web-tls", "dnsNames": [host], "issuerRef": {"name": "letsencrypt",
                                                                                "kind": "ClusterIssuer"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "notAfter": "2027-02-01T00:00:00Z", "renewalTime": "2027-01-01T00:00:00Z"}})
    for n in range(NODES):
        site = "sto" if n % 2 else "got"
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": f"node-{n}", "uid": f"node-{n}", "labels": {
                "kubernetes.io/hostname": f"node-{n}", "topology.kubernetes.io/region": "eu-north-1",
                "topology.kubernetes.io/zone": f"eu-north-1{site[0]}"}},
            "status": {"nodeInfo": {"kubeletVersion": "v1.30.4"}}})
    # In files of at most 10,000 objects: one file of 50,000 pods (591 MB) is over the snapshot's per-file cap.
    for part, start in enumerate(range(0, len(items), 10_000)):
        (out / f"synthetic-{part:02d}.json").write_bytes(
            orjson.dumps({"apiVersion": "v1", "kind": "List", "items": items[start:start + 10_000]}))
    return len(items)


CHILD = r"""
import json, os, resource, sys, threading, time
from pathlib import Path
snapshot, out, scope = (Path(a) for a in sys.argv[1:4])
key, attestations = (None if a == "-" else Path(a) for a in sys.argv[4:6])
from evidence.pipeline import RunOptions, collect
marks = []
# The renderer's own peak: RUSAGE_CHILDREN's maxrss starts from this process's peak at fork, so the PDF process's
# high-water mark (VmHWM, reset by exec) is sampled from /proc while it runs.
child_peak = [0]
combined_peak = [0]  # this process plus its children at the same moment (VmRSS sampled together)
def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
def watch():
    me = os.getpid()
    while True:
        kids = set()
        for tid in os.listdir(f"/proc/{me}/task"):
            try:
                kids.update(Path(f"/proc/{me}/task/{tid}/children").read_text().split())
            except OSError:
                pass
        for pid in kids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    child_peak[0] = max(child_peak[0], int(line.split()[1]) // 1024)
        combined_peak[0] = max(combined_peak[0], (rss_kb(me) + sum(rss_kb(k) for k in kids)) // 1024)
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
t0, c0 = time.perf_counter(), time.process_time()
def own_peak_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so the run would report the RSS this
    # benchmark had after generating the cluster (687 MB at 10k, 2,854 MB at 50k) instead of its own.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
def cpu():
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime
def progress(event):
    if event.get("event") == "stage":
        marks.append({"stage": event.get("stage"), "wall": time.perf_counter() - t0, "cpu": cpu(),
                      "rss_mb": own_peak_mb(), "pages": event.get("pages")})
summary = collect(RunOptions(out=out, snapshot=snapshot, scope=scope, fail_on="none", progress=progress, sign_key=key,
                             attestations=attestations))
end = {"wall": time.perf_counter() - t0, "cpu": cpu(),
       "rss_mb": own_peak_mb(),
       "child_rss_mb": child_peak[0], "combined_rss_mb": combined_peak[0]}
print(json.dumps({"marks": marks, "end": end}))
"""


def run(pods: int, work: Path) -> dict[str, Any]:
    snap = work / f"cluster-{pods}"
    started = time.perf_counter()
    objects = generate(snap, pods)
    gen_s = time.perf_counter() - started
    keys = work / "keys"
    if not keys.exists():
        subprocess.run([sys.executable, "-m", "evidence.cli", "keys", "generate", "--out", str(keys)], check=True,
                       capture_output=True, cwd=ROOT)
    out = work / f"pack-{pods}"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(snap), str(out), str(ROOT / "samples" / "scope.yaml"),
                           str(keys / "auditpack-signing.key"), "-"], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{pods} pods: the run failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    pages = next((m["pages"] for m in data["marks"] if m.get("pages")), None)
    xlsx = (out / "control-matrix.xlsx").stat().st_size
    return {"pods": pods, "objects": objects, "generate_s": gen_s, "pages": pages, "xlsx_mb": xlsx / 1e6,
            "pack_mb": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, **data}


def demo(work: Path) -> dict[str, Any]:
    """`make demo`'s pack (demo snapshot, scope, attestations; unsigned), through the same child."""
    out = work / "pack-demo"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "samples" / "demo-cluster"), str(out),
                           str(ROOT / "samples" / "scope.yaml"), "-", str(ROOT / "samples" / "attestations.yaml")],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"demo: the run failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    pages = next((m["pages"] for m in data["marks"] if m.get("pages")), None)
    xlsx = (out / "control-matrix.xlsx").stat().st_size
    return {"pods": 0, "objects": 0, "generate_s": 0.0, "pages": pages, "xlsx_mb": xlsx / 1e6,
            "pack_mb": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, **data}


def holding_stage(r: dict[str, Any]) -> str:
    """The stage with the most wall time, with its share and, for the PDF, the pages per second it laid out."""
    prev, spans = 0.0, []
    marks = r["marks"]
    for i, m in enumerate(marks):
        end = marks[i + 1]["wall"] if i + 1 < len(marks) else r["end"]["wall"]
        # Stages are stamped as they start; the PDF process's end is stamped as "rendered PDF".
        waits = i + 1 < len(marks) and marks[i + 1]["stage"] in ("joining PDF parts", "rendered PDF") \
            and not m["stage"].startswith("joining")
        spans.append((end - m["wall"], f"{m['stage']}, then waiting for the PDF processes" if waits else m["stage"]))
        prev = end
    started = next((m["wall"] for m in marks if m["stage"].startswith("rendering")), None)
    done = next((m["wall"] for m in marks if m["stage"] == "rendered PDF"), None)
    wall, stage = max(spans)
    text = f"the longest stage is '{stage}', {wall:.1f} s of {prev:.1f} s wall"
    if started is not None and done is not None and r.get("pages"):
        text += (f"; the PDF ({r['pages']} pages) was ready {done - started:.1f} s after rendering began "
                 f"({r['pages'] / max(done - started, 1e-9):.1f} pages/s, while the workbook and OSCAL were written)")
    return text


def report_stages(label: str, r: dict[str, Any]) -> None:
    print(f"\n{label}")
    prev_wall, prev_cpu = 0.0, 0.0
    for m in r["marks"]:
        print(f"  {m['stage']:<38} at {m['wall']:7.1f} s wall  +{m['wall'] - prev_wall:6.1f} s  "
              f"cpu +{m['cpu'] - prev_cpu:6.1f} s  rss {m['rss_mb']:7.0f} MB")
        prev_wall, prev_cpu = m["wall"], m["cpu"]
    e = r["end"]
    print(f"  TOTAL {e['wall']:.1f} s wall, {e['cpu']:.1f} s CPU, peak RSS {e['rss_mb']:.0f} MB "
          f"(largest PDF process {e['child_rss_mb']:.0f} MB; all processes together at most {e['combined_rss_mb']:.0f} MB), "
          f"{r['pages']} PDF pages, workbook {r['xlsx_mb']:.1f} MB, pack {r['pack_mb']:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, nargs="+", default=[1000])
    ap.add_argument("--keep", type=Path, help="keep the clusters and packs in this directory")
    ap.add_argument("--demo", action="store_true", help="also time make demo's pack (target: <= 8 s wall)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="auditpack-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    verdicts: list[str] = []
    try:
        if args.demo:
            d = demo(work)
            report_stages("demo pack (make demo)", d)
            ok = d["end"]["wall"] <= 8
            verdicts.append(f"demo target (<= 8 s wall): {'met' if ok else 'NOT met'}, {d['end']['wall']:.1f} s"
                            + ("" if ok else f"; {holding_stage(d)}"))
        for n in args.pods:
            r = run(n, work)
            rows.append(r)
            report_stages(f"{n:,} pods ({r['objects']:,} synthetic objects; generated in {r['generate_s']:.1f} s)", r)
        print("\n| pods | wall s | CPU s | run RSS MB | largest PDF process MB | all processes at once MB | PDF pages "
              "| workbook MB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            e = r["end"]
            print(f"| {r['pods']:,} | {e['wall']:.1f} | {e['cpu']:.1f} | {e['rss_mb']:.0f} | {e['child_rss_mb']:.0f} | "
                  f"{e['combined_rss_mb']:.0f} | {r['pages']} | {r['xlsx_mb']:.1f} |")
        for r in rows:
            e = r["end"]
            peak = max(e["rss_mb"], e["combined_rss_mb"])
            if r["pods"] == 10000:
                ok = e["wall"] <= 60 and e["cpu"] <= 60 and peak <= 1024
                verdicts.append(f"10k target (<= 60 s wall, <= 60 s CPU, <= 1 GB): {'met' if ok else 'NOT met'} "
                                f"({e['wall']:.1f} s, {e['cpu']:.1f} s CPU, {peak:.0f} MB)"
                                + ("" if ok else f"; {holding_stage(r)}"))
            if r["pods"] == 50000:
                ok = peak <= 3072
                verdicts.append(f"50k target (<= 3 GB): {'met' if ok else 'NOT met'} ({peak:.0f} MB) in "
                                f"{e['wall']:.0f} s" + ("" if ok else f"; {holding_stage(r)}"))
        print()
        for v in verdicts:
            print(v)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
