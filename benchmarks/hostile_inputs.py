"""Worst cases of hostile input (issue 11 section 4): for each bomb, the outcome, wall time and peak memory.

Each case runs in a fresh Python process, so the peak resident set (ru_maxrss) is that case's alone.
Usage: python benchmarks/hostile_inputs.py [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each case: a setup (writes input under `tmp`) and the action measured; `outcome` is printed.
PRELUDE = textwrap.dedent("""
    import io, json, resource, sys, tarfile, time, zlib
    from pathlib import Path
    sys.path.insert(0, ROOT)
    from evidence.errors import AuditpackError
    from evidence.sources import snapshot
    tmp = Path(TMP)
    NS = "apiVersion: v1\\nkind: Namespace\\nmetadata: {name: shop}\\n"
    (tmp / "snap").mkdir(exist_ok=True)
    (tmp / "snap" / "ns.yaml").write_text(NS)
""")

CASES: dict[str, tuple[str, str]] = {
    "billion-laughs (9^9 expansion)": ("""
lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for p, c in zip("abcdefgh", "bcdefghi"):
    lines.append(f"{c}: &{c} [" + ", ".join(["*" + p] * 9) + "]")
(tmp / "snap" / "bomb.yaml").write_text("\\n".join(lines) + "\\n")
""", "snapshot.load(tmp / 'snap')"),
    "alias bomb, 40 levels of doubling": ("""
lines = ['a0: &a0 [x, x]'] + [f"a{i}: &a{i} [*a{i-1}, *a{i-1}]" for i in range(1, 40)]
(tmp / "snap" / "bomb.yaml").write_text("\\n".join(lines) + "\\n")
""", "snapshot.load(tmp / 'snap')"),
    "tar bomb: 3 GiB of zeros in one member (3 MB gz)": ("""
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.left); b[:k] = bytes(k); self.left -= k; return k
with tarfile.open(tmp / "bomb.tar.gz", "w:gz", compresslevel=1) as tar:
    info = tarfile.TarInfo("ns.yaml"); data = NS.encode(); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    info = tarfile.TarInfo("zeros.yaml"); info.size = 3 * 2**30; tar.addfile(info, io.BufferedReader(Zeros(info.size)))
print(f"  (archive {(tmp / 'bomb.tar.gz').stat().st_size:,} bytes)", file=sys.stderr)
""", "snapshot.load(tmp / 'bomb.tar.gz')"),
    "tar bomb: 1,000 members of 4 MiB zeros (4 GiB)": ("""
with tarfile.open(tmp / "wide.tar.gz", "w:gz", compresslevel=1) as tar:
    info = tarfile.TarInfo("ns.yaml"); data = NS.encode(); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    blob = bytes(4 * 2**20)
    for i in range(1000):
        info = tarfile.TarInfo(f"z{i:04}.txt"); info.size = len(blob); tar.addfile(info, io.BytesIO(blob))
""", "snapshot.load(tmp / 'wide.tar.gz')"),
    "tar: 60,000 empty members (over the member cap)": ("""
with tarfile.open(tmp / "many.tar.gz", "w:gz") as tar:
    for i in range(60_000):
        info = tarfile.TarInfo(f"d/n{i:06}.txt"); tar.addfile(info, io.BytesIO(b""))
""", "snapshot.load(tmp / 'many.tar.gz')"),
    "tar: 20,000 small ConfigMaps (read in one pass)": ("""
with tarfile.open(tmp / "small.tar.gz", "w:gz") as tar:
    for i in range(20_000):
        data = f"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {{name: c{i}, namespace: shop}}\\ndata: {{k: v}}\\n".encode()
        info = tarfile.TarInfo(f"snap/cm/{i:05}.yaml"); info.size = len(data); tar.addfile(info, io.BytesIO(data))
""", "len(snapshot.load(tmp / 'small.tar.gz'))"),
    "JSON custom resource nested 600 deep": ("""
(tmp / "snap" / "deep.json").write_text('{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"deep",'
    '"namespace":"shop"},"spec":' + '{"x":' * 600 + '{}' + '}' * 600 + '}')
""", "[e.message for e in snapshot.load(tmp / 'snap').log if e.status == 'error']"),
    "JSON nested 100,000 deep": ("""
(tmp / "snap" / "deep.json").write_text('{"kind":"X","spec":' + '[' * 100000 + ']' * 100000 + '}')
""", "snapshot.load(tmp / 'snap')"),
    "YAML nested 100,000 deep (flow)": ("""
(tmp / "snap" / "deep.yaml").write_text('spec: ' + '[' * 100000 + ']' * 100000 + '\\n')
""", "snapshot.load(tmp / 'snap')"),
    "CEL rule quadrupling a string 16 times (876 bytes)": ("""
from evidence import cel
body = "size(v16) > 0"
for i in range(16, 0, -1):
    prev = f"v{i-1}" if i > 1 else "subject.name"
    body = f"[{prev} + {prev} + {prev} + {prev}].all(v{i}, {body})"
program = cel.compile_expr(body, "bool")
activation = cel.env().Activation({"subject": {"name": "payments"}, "scope": {}})
""", "program.run(activation)"),
}

RUNNER = PRELUDE + textwrap.dedent("""
    exec(SETUP)
    started = time.monotonic()
    try:
        outcome = repr(eval(ACTION))[:160]
    except AuditpackError as exc:
        outcome = f"exit {exc.exit_code}: {exc.message[:150]}"
    elapsed = time.monotonic() - started
    print(json.dumps({"seconds": elapsed, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "outcome": outcome}))
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run the cases whose name contains this text")
    args = parser.parse_args()
    print(f"{'case':<52} {'seconds':>8} {'peak MiB':>9}  outcome")
    for name, (setup, action) in CASES.items():
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            code = RUNNER.replace("ROOT", repr(str(ROOT))).replace("TMP", repr(tmp))
            code = code.replace("exec(SETUP)", f"exec({setup!r})").replace("eval(ACTION)", f"eval({action!r})")
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name:<52} {'-':>8} {'-':>9}  CRASHED (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:<52} {r['seconds']:>8.2f} {r['peak_mib']:>9.0f}  {r['outcome']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
