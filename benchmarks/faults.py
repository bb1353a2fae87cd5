"""Reliability figures: live collection against the loopback API server (tests/fakeapi) through each fault of
issue 14, one line per fault: survived / pack / exit code / false verdicts / seconds.

    python benchmarks/faults.py                 (every fault; collection, facts, evaluation and the pack's data)
    python benchmarks/faults.py --full          (the real `auditpack collect` in a subprocess: PDF and workbook too)
    python benchmarks/faults.py --only 429,dies (a subset, by fault name)

Each fault gets a fresh server holding samples/demo-cluster, the real kubernetes client over verified TLS, and
short limits (--timeout 20, --request-timeout 3) so every fault ends in well under 60 s. The default mode runs
`pipeline.collect` in this process with the PDF and workbook renders skipped (they read only the pack's data and do
not depend on the fault; on a loaded 2-core machine they cost minutes per run); --full renders them.

survived:       the run ended with a documented exit code (0-3), without a traceback, within 60 s.
pack:           a pack was written (expected whenever the cluster could be identified; a wrong CA or a rejected
                token identifies nothing, so the right outcome there is exit 3, one clear line and no pack).
false verdicts: controls that are pass, not_applicable or manual although an input they derive from was not read:
                (a) the status differs from the fault-free run of the same server and is not inconclusive, or
                (b) a primary input kind of the control's subject type (evaluate.SUBJECT_SOURCES, when present) was
                denied or failed. 0 is the only acceptable figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fakeapi import FakeAPIServer, synthetic_pods  # noqa: E402

from evidence.kinds import RESOURCE_TYPES  # noqa: E402

SAMPLE = ROOT / "samples" / "demo-cluster"
SCOPE = ROOT / "samples" / "scope.yaml"
AS_OF = "2026-11-21T06:00:00Z"
TIMEOUT, REQUEST_TIMEOUT, FAULT_BUDGET_S = 20.0, 3.0, 60.0
NOT_A_VERDICT_FOR_UNREAD = ("pass", "not_applicable", "manual")


@dataclass
class Fault:
    name: str
    what: str
    arrange: Callable[[FakeAPIServer], None] = lambda srv: None
    token: str = "good"
    wrong_ca: bool = False
    server_kwargs: dict[str, Any] | None = None
    pack_expected: bool = True


@dataclass
class Outcome:
    fault: str
    survived: bool
    pack: bool
    exit_code: int | None
    false_verdicts: list[str]
    seconds: float
    note: str = ""

    def line(self) -> str:
        pack = "pack" if self.pack else "no pack"
        return (f"{self.fault:<34} {'survived' if self.survived else 'FAILED':<9} {pack:<8} exit {self.exit_code!s:<4} "
                f"false verdicts: {len(self.false_verdicts)}  {self.seconds:5.1f} s  {self.note}")


def _small_pods() -> list[dict[str, Any]]:
    return synthetic_pods(1200, size=1500, namespaces=3, apps=4, seed="faults")


def faults() -> list[Fault]:
    paged = {"objects": _small_pods()}  # 1,200 extra pods: three pages of 500, so a continue token exists
    calico = {"extra_types": ["felixconfigurations.projectcalico.org"]}
    return [
        Fault("410 mid-list", "the continue token expires on the 2nd page of pods (etcd compaction)",
              lambda s: s.faults.expire_continue("pods", nth=1), server_kwargs=paged),
        Fault("429 with Retry-After", "every first five requests throttled, Retry-After: 1",
              lambda s: s.faults.throttle("*", times=5, retry_after=1)),
        Fault("5xx bursts", "500 x3 on pods, 503 x2 on services, 504 x2 on configmaps",
              lambda s: (s.faults.fail("pods", times=3, status=500), s.faults.fail("services", times=2, status=503),
                         s.faults.fail("configmaps", times=2, status=504, message="etcdserver: request timed out"))),
        Fault("aggregated API at 503", "projectcalico.org/v3 registered, its API server has no endpoints",
              lambda s: s.faults.fail("/apis/projectcalico.org/v3", times=None, status=503,
                                      message="the server is currently unable to handle the request"),
              server_kwargs=calico),
        Fault("storage down (etcd)", "every read answers 503; /version answers",
              lambda s: s.faults.fail(lambda r: r.verb in ("list", "get"), times=None, status=503,
                                      message="etcdserver: request timed out")),
        Fault("hanging connection (once)", "the first deployments request is never answered",
              lambda s: s.faults.hang("deployments", times=1, seconds=30)),
        Fault("hanging connection (always)", "deployments never answer: the run's deadline ends collection",
              lambda s: s.faults.hang("deployments", times=None, seconds=60)),
        Fault("wrong CA", "the kubeconfig trusts another CA", wrong_ca=True, pack_expected=False),
        Fault("expired token", "the API server answers 401 to the bearer token", token="expired",
              pack_expected=False),
        Fault("token expires mid-run", "401 from services on (after pods were read)",
              lambda s: s.faults.fail("services", times=None, status=401, message="Unauthorized")),
        Fault("server dies mid-run", "the API server goes away at the deployments list",
              lambda s: s.faults.die("deployments")),
    ]


def denial_faults(kinds: list[str] | None) -> list[Fault]:
    """One fault per catalogue type the sample cluster serves (denying a type that is not served changes nothing)."""
    served = {(t.group, t.plural) for t in FakeAPIServer(SAMPLE).types}
    out = []
    for t in RESOURCE_TYPES:
        if (kinds and t.label not in kinds) or (t.group, t.plural) not in served:
            continue
        out.append(Fault(f"denied: {t.label}", f"403 on list {t.label} (cluster-wide and per namespace)",
                         token=f"deny-{t.label}"))
    return out


@contextlib.contextmanager
def serving(fault: Fault) -> Iterator[FakeAPIServer]:
    tokens = {"good": "system:serviceaccount:auditpack:auditpack"}
    deny = {}
    if fault.token.startswith("deny-"):
        label = fault.token.removeprefix("deny-")
        t = next(t for t in RESOURCE_TYPES if t.label == label)
        tokens[fault.token] = "system:serviceaccount:auditpack:denied"
        deny[fault.token] = [(f"{t.plural}.{t.group}" if t.group else f"{t.plural}.", None)]
    with FakeAPIServer(SAMPLE, tokens=tokens, deny=deny, **(fault.server_kwargs or {})) as srv:
        fault.arrange(srv)
        yield srv


def kubeconfig(srv: FakeAPIServer, fault: Fault, path: Path) -> Path:
    srv.write_kubeconfig(path, token=fault.token)
    if fault.wrong_ca:
        import base64

        import yaml

        with FakeAPIServer(SAMPLE) as other:  # another server's CA: valid PEM, wrong issuer
            ca = base64.b64encode(other.ca_pem).decode()
        kc = yaml.safe_load(path.read_text())
        kc["clusters"][0]["cluster"]["certificate-authority-data"] = ca
        path.write_text(yaml.safe_dump(kc))
    return path


def run_in_process(kc: Path, out: Path) -> tuple[int, str]:
    """pipeline.collect as `auditpack collect` runs it, renders skipped; the CLI's error handling for the code."""
    from evidence import cli
    from evidence.pack import PackWriter

    original = PackWriter.render
    PackWriter.render = lambda self, rel, fn: None  # type: ignore[method-assign]
    try:
        import io
        from contextlib import redirect_stderr, redirect_stdout

        err, std = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(std):
            code = cli.main(["collect", "--kubeconfig", str(kc), "--out", str(out), "--scope", str(SCOPE),
                             "--as-of", AS_OF, "--timeout", str(TIMEOUT), "--request-timeout", str(REQUEST_TIMEOUT),
                             "--fail-on", "none"])
        return code, err.getvalue()
    finally:
        PackWriter.render = original  # type: ignore[method-assign]


def run_cli(kc: Path, out: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "evidence.cli", "collect", "--kubeconfig", str(kc), "--out",
                           str(out), "--scope", str(SCOPE), "--as-of", AS_OF, "--timeout", str(TIMEOUT),
                           "--request-timeout", str(REQUEST_TIMEOUT), "--fail-on", "none"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    return proc.returncode, proc.stderr


def false_verdicts(out: Path, baseline: dict[str, str]) -> list[str]:
    """Controls that are pass/not_applicable/manual although an input they derive from was not read."""
    try:
        from evidence.evaluate import SUBJECT_SOURCES
    except ImportError:  # before issue 14's statuses work: only the comparison with the fault-free run
        SUBJECT_SOURCES = {}
    results = json.loads((out / "results.json").read_text())
    log = json.loads((out / "collection.json").read_text())["log"]
    unread = {(e["group"], e["kind"]) for e in log if e["status"] in ("forbidden", "error")}
    bad = []
    for c in results["controls"]:
        if c["status"] not in NOT_A_VERDICT_FOR_UNREAD:
            continue
        changed = baseline.get(c["id"], c["status"]) != c["status"]
        primary_unread = [f"{s.kind}.{s.group}" for s in SUBJECT_SOURCES.get(c["subject_type"], [])
                          if getattr(s, "primary", False) and (s.group, s.kind) in unread]
        if changed or primary_unread:
            why = f"was {baseline.get(c['id'])}" if changed else f"{', '.join(primary_unread)} not read"
            bad.append(f"{c['id']} {c['status']} ({why})")
    return bad


def run(fault: Fault, work: Path, full: bool, baselines: dict[str, dict[str, str]]) -> Outcome:
    out = work / fault.name.replace(" ", "-").replace(":", "").replace("/", "_")
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    with serving(fault) as srv:
        kc = kubeconfig(srv, fault, work / "kc.yaml")
        code, err = (run_cli if full else run_in_process)(kc, out)
    seconds = time.monotonic() - started
    pack = (out / "manifest.json").is_file()
    key = json.dumps(fault.server_kwargs and sorted(fault.server_kwargs), default=str)
    verdicts = false_verdicts(out, baselines[key]) if pack and key in baselines else []
    traceback = "Traceback" in err or "internal error" in err
    survived = code in (0, 1, 2, 3) and not traceback and seconds < FAULT_BUDGET_S and pack == fault.pack_expected
    note = ""
    if not pack:
        note = next((ln.strip() for ln in err.splitlines() if ln.startswith("error[")), "")[:110]
    elif code == 3:
        problems = json.loads((out / "results.json").read_text())["collection_problems"]
        note = f"{len(problems)} problem(s): {problems[0][:90]}" if problems else ""
    return Outcome(fault.name, survived, pack, code, verdicts, seconds, note)


def baseline(work: Path, full: bool, server_kwargs: dict[str, Any] | None) -> dict[str, str]:
    fault = Fault("baseline", "no fault", server_kwargs=server_kwargs)
    out = work / f"baseline-{len(str(server_kwargs))}"
    shutil.rmtree(out, ignore_errors=True)
    with serving(fault) as srv:
        code, err = (run_cli if full else run_in_process)(kubeconfig(srv, fault, work / "kc.yaml"), out)
    if code not in (0, 1):
        raise SystemExit(f"the fault-free run failed (exit {code}): {err[-500:]}")
    return {c["id"]: c["status"] for c in json.loads((out / "results.json").read_text())["controls"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run the real CLI in a subprocess, renders included")
    parser.add_argument("--only", help="comma-separated fault names (prefix match; 'denied' for every denial)")
    parser.add_argument("--kinds", help="with denials: only these resource types (plural.group, comma-separated)")
    parser.add_argument("--keep", type=Path, help="keep the packs in this directory")
    args = parser.parse_args()
    wanted = [w.strip() for w in (args.only or "").split(",") if w.strip()]
    selected = [f for f in faults() + denial_faults(args.kinds.split(",") if args.kinds else None)
                if not wanted or any(f.name.startswith(w) for w in wanted)]
    work = args.keep or Path(tempfile.mkdtemp(prefix="auditpack-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    baselines: dict[str, dict[str, str]] = {}
    for kwargs in {json.dumps(f.server_kwargs and sorted(f.server_kwargs), default=str): f.server_kwargs
                   for f in selected if f.pack_expected}.values():
        key = json.dumps(kwargs and sorted(kwargs), default=str)
        baselines[key] = baseline(work, args.full, kwargs)
    mode = "auditpack collect (subprocess, renders included)" if args.full else \
        "pipeline.collect in-process, renders skipped"
    print(f"# faults against tests/fakeapi serving samples/demo-cluster; {mode}; --timeout {TIMEOUT:g} "
          f"--request-timeout {REQUEST_TIMEOUT:g}", flush=True)
    outcomes = []
    for fault in selected:
        outcome = run(fault, work, args.full, baselines)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
        for v in outcome.false_verdicts:
            print(f"    false verdict: {v}", flush=True)
    survived = sum(o.survived for o in outcomes)
    false_total = sum(len(o.false_verdicts) for o in outcomes)
    print(f"# {survived}/{len(outcomes)} survived; false verdicts: {false_total}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if survived == len(outcomes) and false_total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
