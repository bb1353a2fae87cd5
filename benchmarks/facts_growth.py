"""Benchmark: growth of each collector's CPU time with the cluster's size (issue 16: nothing quadratic in pods).

Builds e2e.py's synthetic cluster at each size, loads it as `collect --snapshot` does, and times every collector of
the registry (CPU seconds, this process) in a fresh process per size. Asserts, for each collector that takes at
least MIN_S at the smallest size, that time(largest) / time(smallest) <= the pods ratio x 1.2 (linear with some
slack: 6 for 10k -> 50k). Exit 1 when a collector grows faster, naming it.

Usage: python benchmarks/facts_growth.py --pods 10000 50000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_S = 0.2  # below this, timer noise on a shared machine dominates the ratio

CHILD = r"""
import gc, json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from evidence import scope as scope_mod
from evidence.collectors import registry
from evidence.sources import snapshot
gc.disable()
inv = snapshot.load(Path(sys.argv[1]))
gc.enable(); gc.freeze()
scope = scope_mod.load(Path(sys.argv[2]))
as_of = inv.source.collected_at or datetime.now(UTC)
out = {}
for c in registry():
    t = time.process_time()
    c.collect(inv, scope, as_of)
    out[c.name] = time.process_time() - t
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, nargs="+", default=[10000, 50000])
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from e2e import generate

    times: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="auditpack-growth-") as tmp:
        for n in args.pods:
            snap = Path(tmp) / f"cluster-{n}"
            generate(snap, n)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(snap), str(ROOT / "samples" / "scope.yaml")],
                                  capture_output=True, text=True, cwd=ROOT, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{n} pods: the run failed:\n{proc.stderr[-3000:]}")
            times[n] = json.loads(proc.stdout.strip().splitlines()[-1])
            subprocess.run(["rm", "-rf", str(snap)], check=True)
    small, large = min(times), max(times)
    limit = large / small * 1.2
    print("| collector | " + " | ".join(f"{n:,} pods CPU s" for n in sorted(times)) + " | growth |")
    print("|---|" + "---|" * len(times) + "---|")
    bad = []
    for name in times[small]:
        a, b = times[small][name], times[large][name]
        growth = b / a if a > 0 else float("inf")
        print(f"| {name} | " + " | ".join(f"{times[n][name]:.2f}" for n in sorted(times)) + f" | {growth:.1f}x |")
        if a >= MIN_S and growth > limit:
            bad.append(f"{name} grew {growth:.1f}x for {large / small:.0f}x the pods (limit {limit:.1f}x)")
    total = sum(times[small].values()), sum(times[large].values())
    print(f"| total | {total[0]:.2f} | {total[1]:.2f} | {total[1] / total[0]:.1f}x |")
    if bad:
        raise SystemExit("superlinear: " + "; ".join(bad))
    print(f"every collector grows at most {limit:.1f}x from {small:,} to {large:,} pods: met")


if __name__ == "__main__":
    main()
