"""Benchmark: auditpack beside Prowler's Kubernetes provider and kubectl on the same synthetic cluster (issue 16).

The cluster is e2e.py's for --pods N (the demo snapshot plus N ~12 KB pods, 50 a namespace, with Deployments,
NetworkPolicies, Services, Ingresses, TLS Secrets, Certificates and 100 nodes), served over verified HTTPS with a
bearer token by the loopback API server (tests/fakeapi) in its own process. Each tool then runs in a fresh process:

  auditpack collect   live collection and the full pack (PDF, workbook, OSCAL, signed manifest)
  auditpack snapshot  live collection only, written as a snapshot directory
  prowler             `prowler kubernetes` with its default checks and default outputs (CSV, JSON-OCSF, HTML,
                      compliance CSVs), into a temporary directory, with --log-level ERROR so that the errors it
                      catches are printed
  kubectl pods        `kubectl get pods -A -o json` (the floor)
  kubectl all         `kubectl get all -A -o json`

Each tool is started by a small wrapper process that times it and reads getrusage(RUSAGE_CHILDREN) after it
exits: wall, CPU (user+sys of the tool and every process it waited for) and peak RSS (the largest single process
of the tree). Beside that, this process samples the summed RSS of the tool's process tree every 0.25 s ("tree
MB": auditpack's PDF renderer runs beside the collector). A tool whose tree passes --max-rss-mb or runs longer
than --timeout is killed (the machine is shared), and the table says so.

Usage: python benchmarks/peer_prowler.py [--pods 10000] [--prowler PATH] [--skip prowler,kubectl-all] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
TOOLS = ("auditpack-collect", "auditpack-snapshot", "kubectl-pods", "kubectl-all", "prowler")

# The wrapper: one fresh process per tool, so RUSAGE_CHILDREN holds that tool's figures only.
WRAP = r"""
import json, resource, subprocess, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
t = time.perf_counter()
with open(out, "wb") as o, open(err, "wb") as e:
    rc = subprocess.run(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, check=False).returncode
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024}))
"""


@dataclass
class Measured:
    tool: str
    rc: int | None = None
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    tree_mb: float = 0.0
    killed: str = ""
    produced: str = ""
    notes: list[str] = field(default_factory=list)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in kids:
                found.append(int(k))
                todo.append(int(k))
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(tool: str, cmd: list[str], work: Path, *, max_rss_mb: float, timeout: float,
            env: dict[str, str] | None = None) -> tuple[Measured, Path, Path]:
    """Run cmd under the wrapper; sample its process tree; kill the tree (not the wrapper) past the limits."""
    out, err = work / f"{tool}.stdout", work / f"{tool}.stderr"
    m = Measured(tool)
    wrapper = subprocess.Popen([sys.executable, "-c", WRAP, str(out), str(err), *cmd], stdout=subprocess.PIPE,
                               text=True, cwd=ROOT, env=env)
    started = time.perf_counter()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            tree = _descendants(wrapper.pid)
            m.tree_mb = max(m.tree_mb, sum(_rss_mb(p) for p in tree))
            reason = ""
            if m.tree_mb > max_rss_mb:
                reason = f"killed: tree RSS passed {max_rss_mb:.0f} MB"
            elif time.perf_counter() - started > timeout:
                reason = f"killed: still running after {timeout:.0f} s"
            if reason and not m.killed:
                m.killed = f"{reason} at {time.perf_counter() - started:.0f} s"
                for p in reversed(tree):  # the processes this benchmark started, by id
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, _ = wrapper.communicate()
    stop.set()
    watcher.join()
    if wrapper.returncode != 0 or not stdout.strip():
        m.notes.append(f"the wrapper failed (exit {wrapper.returncode})")
        return m, out, err
    data = json.loads(stdout.strip().splitlines()[-1])
    m.rc, m.wall, m.cpu, m.rss_mb = data["rc"], data["wall"], data["user"] + data["sys"], data["rss_mb"]
    return m, out, err


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _tail(path: Path, n: int = 5) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-800:]


def auditpack_cmd() -> list[str]:
    script = Path(sys.executable).parent / "auditpack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "evidence.cli"]


def run_collect(kubeconfig: Path, work: Path, key: Path, **limits: Any) -> Measured:
    pack = work / "pack"
    m, out, err = measure("auditpack-collect", [*auditpack_cmd(), "collect", "--kubeconfig", str(kubeconfig),
                                                "--out", str(pack), "--fail-on", "none", "--sign-key", str(key),
                                                "--json"], work, **limits)
    if m.rc != 0 or m.killed:
        m.produced = f"exit {m.rc}: {_tail(err)}"
        return m
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    pages = None
    for line in err.read_text(errors="replace").splitlines():
        if '"rendered PDF"' in line:
            pages = json.loads(line).get("pages")
    controls = ", ".join(f"{v} {k}" for k, v in sorted(summary["controls"].items()))
    findings = sum(summary["findings"].values())
    oscal = sorted(p.name for p in (pack / "oscal").glob("*")) if (pack / "oscal").is_dir() else []
    m.produced = (f"signed pack {_size_mb(pack):.0f} MB: PDF {pages} pages, workbook "
                  f"{_size_mb(pack / 'control-matrix.xlsx'):.1f} MB, OSCAL ({len(oscal)} files); "
                  f"{sum(summary['controls'].values())} controls ({controls}); {findings} findings; "
                  f"collection complete: {summary['collection_complete']}")
    return m


def run_snapshot(kubeconfig: Path, work: Path, **limits: Any) -> Measured:
    snap = work / "snapshot"
    m, out, err = measure("auditpack-snapshot", [*auditpack_cmd(), "snapshot", "--kubeconfig", str(kubeconfig),
                                                 "--out", str(snap)], work, **limits)
    line = next((ln for ln in out.read_text(errors="replace").splitlines() if ln.startswith("wrote ")), "")
    found = re.search(r": (\d+) objects in (\d+) files", line)
    if m.rc == 0 and found:
        m.produced = f"snapshot {_size_mb(snap):.0f} MB: {found[1]} objects in {found[2]} files"
    else:
        m.produced = f"exit {m.rc}{' ' + m.killed if m.killed else ''}: {_tail(out)} {_tail(err)}"
    return m


# The kinds of kubectl's `all` category on a real API server. The loopback server's discovery lists no categories
# (kubectl answers 'the server doesn't have a resource type "all"'), so `kubectl get all` is run as the served ones
# of these, named explicitly.
ALL_CATEGORY = ("pods", "replicationcontrollers", "services", "daemonsets.apps", "deployments.apps",
                "replicasets.apps", "statefulsets.apps", "horizontalpodautoscalers.autoscaling", "cronjobs.batch",
                "jobs.batch")


def all_category(kubeconfig: Path) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "api-resources", "-o", "name"],
                          capture_output=True, text=True, check=False)
    served = set(proc.stdout.split())
    return ",".join(k for k in ALL_CATEGORY if k in served)


def run_kubectl(tool: str, what: str, kubeconfig: Path, work: Path, **limits: Any) -> Measured:
    m, out, err = measure(tool, ["kubectl", "--kubeconfig", str(kubeconfig), "get", what, "-A", "-o", "json"],
                          work, **limits)
    if what != "pods":
        m.notes.append(f"kubectl get {what} -A -o json")
    if m.rc == 0 and not m.killed:
        items = orjson.loads(out.read_bytes())["items"]
        kinds = collections.Counter(i.get("kind", "?") for i in items)
        m.produced = f"{len(items)} objects ({', '.join(f'{v} {k}' for k, v in kinds.most_common())}), " \
                     f"{_size_mb(out):.0f} MB of JSON"
    else:
        m.produced = f"exit {m.rc}{' ' + m.killed if m.killed else ''}: {_tail(err)}"
    out.unlink(missing_ok=True)
    return m


def _prowler_checks(prowler: str) -> list[str]:
    proc = subprocess.run([prowler, "kubernetes", "--list-checks-json"], capture_output=True, text=True, check=False)
    try:
        return list(json.loads(proc.stdout)["kubernetes"])
    except (ValueError, KeyError):
        return []


def run_prowler(prowler: str, kubeconfig: Path, work: Path, **limits: Any) -> Measured:
    outdir = work / "prowler-out"
    outdir.mkdir()
    # Prowler writes into its own venv's tree unless told otherwise; HOME keeps any cache out of the user's home.
    env = {**os.environ, "HOME": str(work)}
    # --log-level ERROR only makes its caught errors visible: by default a failed list (e.g. nodes the client's
    # model rejects) is logged below the shown level and its checks simply produce no findings.
    m, out, err = measure("prowler", [prowler, "kubernetes", "--kubeconfig-file", str(kubeconfig),
                                      "--output-directory", str(outdir), "--no-banner", "--no-color",
                                      "--log-level", "ERROR"], work, env=env, **limits)
    text = out.read_text(errors="replace")
    executing = re.search(r"Executing (\d+) checks", text)
    scan = re.search(r"Scan completed!.* in ((?:\d+:)?[\d.]+)s?", text)  # "in 40.3s" or "in 6:28.9"
    if scan:
        m.notes.append(f"Prowler's progress bar timed its check run at {scan[1]} (s or m:s) of the wall time "
                       "(the rest is start-up, the connection and writing its outputs)")
    errors = [ln.strip() for ln in (text + err.read_text(errors="replace")).splitlines()
              if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", ln)]
    if errors:
        distinct = list(dict.fromkeys(re.sub(r"^.*?\] *", "", e) for e in errors))
        m.notes.append(f"{len(errors)} error lines, {len(distinct)} distinct: " + " | ".join(d[:300] for d in distinct[:5]))
    main_csv = sorted(p for p in outdir.glob("*.csv"))
    if m.killed or not main_csv:
        stage = "after its scan finished (writing outputs)" if "Scan completed" in text else "during its scan"
        m.produced = (f"exit {m.rc}{' ' + m.killed if m.killed else ''} {stage}; "
                      f"{'ran ' + executing[1] + ' checks; ' if executing else ''}outputs written by then: "
                      f"{_size_mb(outdir):,.0f} MB; last output: {_tail(out, 1)} {_tail(err, 2)}")
        return m
    csv.field_size_limit(sys.maxsize)
    statuses: collections.Counter[str] = collections.Counter()
    per_check: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    with main_csv[0].open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            statuses[row["STATUS"]] += 1
            per_check[row["CHECK_ID"]][row["STATUS"]] += 1
    listed = _prowler_checks(prowler)
    silent = sorted(set(listed) - set(per_check))
    by_service = collections.Counter(c.split("_", 1)[0] for c in silent)
    m.produced = (f"exit {m.rc} (3: failed findings); ran {executing[1] if executing else '?'} checks; "
                  f"{sum(statuses.values())} findings ({', '.join(f'{v} {k}' for k, v in statuses.most_common())}) "
                  f"from {len(per_check)} checks; outputs {_size_mb(outdir):,.0f} MB "
                  f"(OCSF JSON {sum(_size_mb(p) for p in outdir.glob('*.ocsf.json')):,.0f} MB)")
    if silent:
        m.notes.append(f"{len(silent)} of {len(listed)} checks gave no finding at all (no FAIL, no MANUAL): "
                       + ", ".join(f"{v} {k}" for k, v in sorted(by_service.items()))
                       + f" [{', '.join(silent)}]")
    top = sorted(((c, s["FAIL"]) for c, s in per_check.items() if s["FAIL"]), key=lambda x: -x[1])[:6]
    m.notes.append("most FAIL findings: " + ", ".join(f"{c} {n}" for c, n in top))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--prowler", default="/tmp/prowler-venv/bin/prowler")
    ap.add_argument("--skip", default="", help=f"comma-separated tools to skip ({', '.join(TOOLS)})")
    ap.add_argument("--max-rss-mb", type=float, default=12_000, help="kill a tool whose process tree passes this")
    ap.add_argument("--timeout", type=float, default=1800, help="kill a tool still running after this many seconds")
    ap.add_argument("--keep", type=Path, help="keep the cluster and every output in this directory")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    limits = {"max_rss_mb": args.max_rss_mb, "timeout": args.timeout}
    skipped: list[str] = []
    if "prowler" not in skip and not Path(args.prowler).exists():
        skip.add("prowler")
        skipped.append(f"prowler: skipped, {args.prowler} does not exist (install it in its own venv: "
                       "python3 -m venv /tmp/prowler-venv && /tmp/prowler-venv/bin/pip install prowler)")
    if shutil.which("kubectl") is None:
        skip |= {"kubectl-pods", "kubectl-all"}
        skipped.append("kubectl: skipped, not on PATH")

    from e2e import generate

    work = args.keep or Path(tempfile.mkdtemp(prefix="auditpack-peer-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        cluster = work / "cluster"
        t = time.perf_counter()
        objects = generate(cluster, args.pods)
        versions = [_version([*auditpack_cmd(), "--version"])]
        if "prowler" not in skip:
            versions.append(_version([args.prowler, "--version"]))
        if shutil.which("kubectl"):
            versions.append("kubectl " + _version(["kubectl", "version", "--client", "-o", "json"], "gitVersion"))
        print(f"{args.pods:,} pods: e2e.py's cluster ({objects:,} synthetic objects plus the demo snapshot), "
              f"generated in {time.perf_counter() - t:.1f} s; {'; '.join(versions)}")
        keys = work / "keys"
        subprocess.run([sys.executable, "-m", "evidence.cli", "keys", "generate", "--out", str(keys)], check=True,
                       capture_output=True, cwd=ROOT)
        kubeconfig = work / "kubeconfig"
        server_log = (work / "fakeapi.log").open("w")
        server = subprocess.Popen([sys.executable, "-m", "tests.fakeapi", "serve", str(cluster), "--kubeconfig",
                                   str(kubeconfig)], cwd=ROOT, stdout=subprocess.PIPE, stderr=server_log, text=True)
        assert server.stdout is not None
        ready = server.stdout.readline()
        if not ready.startswith("READY"):
            raise SystemExit(f"the loopback API server did not start: {ready!r}; see {work / 'fakeapi.log'}")
        print(f"loopback API server {ready.split()[1]} (pid {server.pid}); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n", flush=True)
        results: list[Measured] = []
        for tool in TOOLS:
            if tool in skip:
                continue
            load = os.getloadavg()[0]
            if tool == "auditpack-collect":
                m = run_collect(kubeconfig, work, keys / "auditpack-signing.key", **limits)
            elif tool == "auditpack-snapshot":
                m = run_snapshot(kubeconfig, work, **limits)
            elif tool == "kubectl-pods":
                m = run_kubectl(tool, "pods", kubeconfig, work, **limits)
            elif tool == "kubectl-all":
                m = run_kubectl(tool, all_category(kubeconfig), kubeconfig, work, **limits)
            else:
                m = run_prowler(args.prowler, kubeconfig, work, **limits)
            m.notes.insert(0, f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
            results.append(m)
            print(f"{m.tool}: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, peak RSS {m.rss_mb:.0f} MB "
                  f"(tree {m.tree_mb:.0f} MB); {m.produced}", flush=True)
            for note in m.notes:
                print(f"  {note}", flush=True)
            if args.keep is None:  # Prowler's outputs alone are ~2 GB per 1,000 pods
                for p in ("pack", "snapshot", "prowler-out"):
                    shutil.rmtree(work / p, ignore_errors=True)
        print("\n| tool | wall s | CPU s | peak RSS MB | tree RSS MB | what it produced |")
        print("|---|---:|---:|---:|---:|---|")
        for m in results:
            print(f"| {m.tool} | {m.wall:.1f} | {m.cpu:.1f} | {m.rss_mb:,.0f} | {m.tree_mb:,.0f} | {m.produced} |")
        for s in skipped:
            print(s)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _version(cmd: list[str], key: str | None = None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    text = proc.stdout.strip() or proc.stderr.strip()
    if key:
        try:
            return str(json.loads(text)["clientVersion"][key])
        except (ValueError, KeyError):
            return "?"
    return text.splitlines()[-1] if text else "?"


if __name__ == "__main__":
    main()
