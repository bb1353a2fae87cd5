"""Worst-case redaction time for 1 MiB hostile values (issue 11 section 4: the old URL pattern was quadratic).

Each value is redacted as a ConfigMap data value, an annotation, an env value and a container argument, in a
fresh Redactor; the figure is the wall time of one object. Run: python benchmarks/redact_worst.py [--mib N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from evidence.redact import Redactor


def cases(size: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]
    return {
        "lowercase run": fill("a"),
        "repeated a://a": fill("a://a"),
        "repeated a://a:b (userinfo-like)": fill("a://a:b"),
        "many -----BEGIN": fill("-----BEGIN "),
        "many -----BEGIN RSA PRIVATE": fill("-----BEGIN RSA PRIVATE "),
        "long base64": fill("QUJDRGVmZ2hpams0NTY3OA=="),
        "repeated eyJ": fill("eyJ"),
        "repeated .eyJ + base64url": fill(".eyJhbGciOi"),
        "repeated password=/ref": fill("password=/ref "),
        "every trigger repeated": fill("a://x eyJx AKIA ghp_ xox sk_live_ AIza bearer \"auth\" sha256~ key-data "),
        "lowercase lines (YAML-like)": fill("abcdefghij\n"),
        "key: value lines (YAML)": fill("k: v\n"),
        "[SECTION] lines": fill("[OUTPUT]\n    Name x\n"),
    }


def one(value: str) -> dict[str, float]:
    def timed(make: Callable[[], dict[str, object]]) -> float:
        obj = make()
        start = time.perf_counter()
        Redactor().redact(obj)  # type: ignore[arg-type]
        return time.perf_counter() - start
    meta = {"name": "x", "namespace": "n"}
    return {
        "configmap": timed(lambda: {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta),
                                    "data": {"v": value}}),
        "annotation": timed(lambda: {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {**meta, "annotations": {"a": value}}}),
        "env+arg": timed(lambda: {"apiVersion": "v1", "kind": "Pod", "metadata": dict(meta), "spec": {
            "containers": [{"name": "c", "env": [{"name": "E", "value": value}], "args": [f"--x={value}", value]}]}}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=float, default=1.0)
    size = int(ap.parse_args().mib * (1 << 20))
    print(f"value size: {size:,} bytes")
    print(f"{'case':36} {'configmap s':>12} {'annotation s':>13} {'env+arg s':>10}")
    worst = 0.0
    for name, value in cases(size).items():
        t = one(value)
        worst = max(worst, *t.values())
        print(f"{name:36} {t['configmap']:12.3f} {t['annotation']:13.3f} {t['env+arg']:10.3f}")
    print(f"worst: {worst:.3f} s")


if __name__ == "__main__":
    main()
