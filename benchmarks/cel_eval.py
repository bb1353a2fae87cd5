"""Benchmark: cost of one CEL evaluation with auditpack's runtime (cel-expr-python) on real fact shapes.

Evaluates every built-in control against the demo cluster's subjects (as `evaluate` does: one Activation
per subject, shared by its controls) and, for comparison, the pure-Python cel-python runtime on the same
expressions when it is installed. Usage: python benchmarks/cel_eval.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path

from evidence.cel import env
from evidence.collectors import collect_all
from evidence.controls import load_catalogue
from evidence.evaluate import cel_view, scope_variables
from evidence.scope import load as load_scope
from evidence.sources import snapshot

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    scope = load_scope(ROOT / "samples" / "scope.yaml")
    facts = collect_all(snapshot.load(ROOT / "samples" / "demo-cluster"), scope, datetime(2026, 11, 21, 6, tzinfo=UTC))
    cat = load_catalogue()
    scope_vars = scope_variables(scope)
    pairs = [(c, s) for c in cat.controls for s in facts.of_type(c.spec.subject)]
    cel_env = env()
    by_type: dict[str, list] = {}
    for c in cat.controls:
        by_type.setdefault(c.spec.subject, []).append(c)
    evaluations = 0
    t = time.perf_counter()
    for _ in range(args.repeat):
        for stype, controls in by_type.items():
            for subject in facts.of_type(stype):
                act = cel_env.Activation({"subject": cel_view(subject), "scope": scope_vars})
                for c in controls:
                    c.rule.run(act)
                    evaluations += 1
    per = (time.perf_counter() - t) / evaluations * 1e6
    print(f"cel-expr-python: {evaluations:,} rule evaluations over {len(pairs)} (control, subject) pairs: "
          f"{per:.1f} us each (Activation shared per subject, includes building it)")
    t = time.perf_counter()
    n = 0
    for _ in range(max(1, args.repeat // 4)):
        for c, s in pairs:
            c.rule.expr.eval(data={"subject": cel_view(s), "scope": scope_vars})
            n += 1
    print(f"cel-expr-python: {(time.perf_counter() - t) / n * 1e6:.1f} us each with a fresh data dict per call")
    try:
        import celpy  # the pure-Python runtime, for comparison only
    except ImportError:
        print("cel-python not installed; skipping the comparison (pip install cel-python)")
        return
    cenv = celpy.Environment()
    progs = {c.id: cenv.program(cenv.compile(c.spec.rule)) for c in cat.controls}
    t = time.perf_counter()
    n = 0
    for c, s in pairs:
        # A rule may read a null field its applies_if would have excluded; that is still one evaluation.
        with contextlib.suppress(celpy.CELEvalError):
            progs[c.id].evaluate({"subject": celpy.json_to_cel(s), "scope": celpy.json_to_cel(scope_vars)})
        n += 1
    print(f"cel-python: {(time.perf_counter() - t) / n * 1e6:.1f} us each (same pairs, once)")


if __name__ == "__main__":
    main()
