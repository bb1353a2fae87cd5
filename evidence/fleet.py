"""Fleets: `collect --contexts a,b,c` or `--all-contexts` collects several clusters, one pack each under --out-root,
then writes a fleet summary (fleet-summary.json, .pdf, .xlsx) in DIR/fleet/<timestamp>/.

Each cluster runs as its own `auditpack collect --context X --out-root DIR --json` process, at most --parallel
at a time: a cluster that fails, hangs on a dead API server, runs out of memory or crashes cannot take another
cluster's pack with it, each run holds its cluster's lock (retention.py), and two clusters really run on two
cores. The fleet's exit code is the worst of its clusters: 4, then 2 > 3 > 1 > 0 (README: Exit codes).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from evidence import __version__
from evidence.errors import EXIT_BAD_INPUT, EXIT_FAILURES, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_OK, InputError
from evidence.pack import AtomicDir, dumps
from evidence.retention import FLEET_DIR, cluster_dir, new_dir

# Worst first: a bug, then bad input (nothing was collected, and rerunning will not help), then incomplete
# collection, then failed controls.
SEVERITY = (EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_FAILURES, EXIT_OK)
FORMAT = "auditpack-fleet/v1"
# Options that describe the fleet itself, or that each cluster's run gets its own value for.
FLEET_ONLY = frozenset({"contexts", "all_contexts", "parallel", "json", "context", "cluster_name", "out",
                        "snapshot", "help", "out_root", "kubeconfig"})


def worst(codes: Sequence[int]) -> int:
    rank = {code: i for i, code in enumerate(SEVERITY)}
    return min(codes, key=lambda c: rank.get(c, 0), default=EXIT_OK)


@dataclass
class FleetOptions:
    out_root: Path
    kubeconfig: Path | None
    contexts: list[str] | None  # None: every context of the kubeconfig (--all-contexts)
    parallel: int = 2
    forwarded: list[str] = field(default_factory=list)  # collect options passed to every cluster's run
    json: bool = False
    upload: Any = None  # storage.UploadOptions: each cluster's run uploads its pack; the fleet uploads the summary


@dataclass
class ClusterRun:
    context: str
    exit_code: int
    line: dict[str, Any]  # the run's JSON summary line, with `context` (and `cluster`) always set
    reason: str | None
    seconds: float

    def record(self) -> dict[str, Any]:
        ln = self.line
        return {"context": self.context, "cluster": ln.get("cluster", self.context), "exit_code": self.exit_code,
                "pack": ln.get("pack"), "previous": ln.get("previous"), "controls": ln.get("controls") or {},
                "findings": ln.get("findings") or {}, "collection_complete": ln.get("collection_complete"),
                "reason": self.reason, "seconds": round(self.seconds, 1)}


def forwarded_options(args: argparse.Namespace, actions: Sequence[argparse.Action]) -> list[str]:
    """The collect options the user gave, as arguments again, for each cluster's run (all but FLEET_ONLY)."""
    out: list[str] = []
    for a in actions:
        longs = [s for s in a.option_strings if s.startswith("--")]
        value = getattr(args, a.dest, None)
        if not longs or a.dest in FLEET_ONLY or value is None or value == a.default:
            continue
        if a.nargs == 0:  # a flag (store_true)
            out.append(longs[0])
            continue
        for v in value if isinstance(value, list) else [value]:
            out += [longs[0], v.isoformat() if isinstance(v, datetime) else str(v)]
    return out


def resolve_contexts(opts: FleetOptions) -> list[str]:
    """The contexts to collect, checked against the kubeconfig before anything runs (a typo is exit 2)."""
    from evidence.sources import live

    if opts.contexts == []:
        raise InputError("--contexts names no context", "pass --contexts prod-se,prod-no (or --all-contexts)")
    names, _ = live.contexts(opts.kubeconfig)
    wanted = names if opts.contexts is None else opts.contexts
    if not wanted:
        raise InputError("the kubeconfig has no contexts", "pass --kubeconfig with the fleet's contexts")
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise InputError(f"--contexts: the kubeconfig has no context {', '.join(map(repr, unknown))}",
                         f"use some of: {', '.join(names)} (kubectl config get-contexts)")
    if len(set(wanted)) != len(wanted):
        raise InputError("--contexts names a context twice", "list each context once")
    dirs: dict[str, str] = {}
    for c in wanted:
        d = cluster_dir(c)
        if d in dirs:
            raise InputError(f"contexts {dirs[d]!r} and {c!r} would share the pack directory {d!r}",
                             "rename one of the contexts (kubectl config rename-context)")
        dirs[d] = c
    return list(wanted)


class _Relay:
    """Passes each cluster's log lines on to stderr, tagged with the cluster: JSON lines stay JSON (CronJob logs),
    on a terminal lines are prefixed with the context."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()

    def emit(self, context: str, event: dict[str, Any]) -> None:
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "info", **event,
                "cluster": context}
        self._write(context, line)

    def relay(self, context: str, raw: str) -> None:
        text = raw.rstrip("\n")
        if not text:
            return
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            level = "error" if text.lstrip().startswith(("error", "internal error", "hint:")) else "info"
            event = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, "message": text}
        self._write(context, {**event, "cluster": context})

    def _write(self, context: str, event: dict[str, Any]) -> None:
        if self.tty:
            if "message" in event and event.get("event") is None:
                text = str(event["message"])
            elif event.get("event") == "list" and event.get("status") in ("forbidden", "error"):
                text = f"{event['status']} {event.get('resource')}: {event.get('message', '')}"
            elif event.get("event") in ("cluster_start", "cluster_done"):
                text = str(event.get("summary", "started"))
            else:
                return
            line = f"{context}: {text}\n"
        else:
            line = orjson.dumps(event).decode() + "\n"
        with self.lock:
            sys.stderr.write(line)
            sys.stderr.flush()


def _reason(code: int, line: dict[str, Any], stderr_tail: list[str]) -> str | None:
    if line.get("error"):
        return str(line["error"])
    if code == EXIT_INCOMPLETE and line.get("pack"):
        problems = [str(p) for p in line.get("collection_problems") or []]
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        return "collection incomplete: " + ("; ".join(problems[:3]) + more if problems else "see the pack")
    if code == EXIT_FAILURES:
        return f"{(line.get('controls') or {}).get('fail', 0)} controls failed (at or above --fail-on)"
    if code != EXIT_OK:
        return stderr_tail[-1] if stderr_tail else f"exited with code {code}"
    return None


class Runner:
    """Runs one cluster's collect as a child process; remembers children so an interrupt can stop them."""

    def __init__(self, opts: FleetOptions, relay: _Relay) -> None:
        self.opts, self.relay = opts, relay
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def command(self, context: str) -> list[str]:
        cmd = [sys.executable, "-m", "evidence.cli", "collect", "--out-root", str(self.opts.out_root),
               "--context", context, "--cluster-name", context, "--json"]
        if self.opts.kubeconfig is not None:
            cmd += ["--kubeconfig", str(self.opts.kubeconfig)]
        return cmd + self.opts.forwarded

    def run(self, context: str) -> ClusterRun:
        started = time.monotonic()
        if self.stopping:
            return ClusterRun(context, EXIT_INCOMPLETE, {"context": context, "cluster": context, "pack": None},
                              "not started: the fleet run was interrupted", 0.0)
        self.relay.emit(context, {"event": "cluster_start", "summary": "collecting"})
        tail: list[str] = []
        with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
            # The child's stdout holds only its JSON summary line; a file cannot fill up and block it.
            proc = subprocess.Popen(self.command(context), stdout=out, stderr=subprocess.PIPE, text=True,
                                    stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            with self._lock:
                self._children.add(proc)
            try:
                assert proc.stderr is not None
                for raw in proc.stderr:
                    self.relay.relay(context, raw)
                    if raw.strip() and not raw.lstrip().startswith("{"):
                        tail = [*tail[-4:], raw.strip()]
                rc = proc.wait()
            finally:
                with self._lock:
                    self._children.discard(proc)
            out.seek(0)
            line = _last_json_line(out.read())
        code, reason = rc, None
        if rc < 0:  # killed by a signal: no pack (the OOM killer sends SIGKILL)
            code = EXIT_INCOMPLETE
            reason = f"killed by {signal.Signals(-rc).name}" + (" (out of memory?)" if rc == -signal.SIGKILL else "")
        elif rc not in SEVERITY:
            code = EXIT_INTERNAL
        line = {**line, "context": context}
        line.setdefault("cluster", context)
        line.setdefault("pack", None)
        line["exit_code"] = code
        run = ClusterRun(context, code, line, reason or _reason(code, line, tail), time.monotonic() - started)
        self.relay.emit(context, {"event": "cluster_done", "exit_code": code, "pack": line.get("pack"),
                                  "seconds": round(run.seconds, 1),
                                  "summary": f"exit {code}: {line.get('pack') or run.reason}"})
        return run

    def stop_all(self) -> None:
        self.stopping = True
        with self._lock:
            for proc in self._children:
                proc.terminate()


def _last_json_line(text: str) -> dict[str, Any]:
    for raw in reversed(text.splitlines()):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}


@dataclass
class FleetResult:
    exit_code: int
    runs: list[ClusterRun]
    summary_dir: Path
    summary: dict[str, Any]
    uploaded: str | None = None

    def line(self) -> dict[str, Any]:
        line = {"fleet": str(self.summary_dir), "exit_code": self.exit_code,
                "clusters": {r.context: r.exit_code for r in self.runs}, "failed": self.summary["failed"]}
        if self.uploaded is not None:
            line["uploaded"] = self.uploaded
        return line


def run(opts: FleetOptions, on_done: Callable[[ClusterRun], None] | None = None) -> FleetResult:
    """Collect every context (bounded concurrency), then write the fleet summary atomically."""
    if opts.parallel < 1:
        raise InputError(f"--parallel {opts.parallel}: must be at least 1", "pass --parallel 2 (the default) or more")
    if not opts.out_root.is_dir():
        raise InputError(f"--out-root {opts.out_root} is not a directory", "create it first; fleets need --out-root")
    contexts = resolve_contexts(opts)
    started = datetime.now(UTC)
    runner = Runner(opts, _Relay())
    runs: dict[str, ClusterRun] = {}
    with ThreadPoolExecutor(max_workers=min(opts.parallel, len(contexts)), thread_name_prefix="fleet") as pool:
        futures = [pool.submit(runner.run, c) for c in contexts]
        try:
            for fut in as_completed(futures):
                r = fut.result()
                runs[r.context] = r
                if on_done is not None:
                    on_done(r)
        except BaseException:
            runner.stop_all()
            raise
    ordered = [runs[c] for c in contexts]
    code = worst([r.exit_code for r in ordered])
    summary = {
        "format": FORMAT, "tool": {"name": "auditpack", "version": __version__},
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "out_root": str(opts.out_root), "exit_code": code,
        "failed": [r.context for r in ordered if r.exit_code in (EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INCOMPLETE)],
        "clusters": [r.record() for r in ordered],
    }
    result = FleetResult(code, ordered, write_summary(opts.out_root, summary), summary)
    if opts.upload is not None:
        from evidence import storage

        result.uploaded = storage.upload_summary(result.summary_dir, opts.upload)
    return result


def write_summary(root: Path, summary: dict[str, Any]) -> Path:
    """DIR/fleet/<timestamp>/ with fleet-summary.json, .pdf and .xlsx, renamed into place when complete."""
    from evidence.render import fleet as render

    parent = root / FLEET_DIR
    parent.mkdir(exist_ok=True)
    out = new_dir(parent)
    with AtomicDir(out) as d:
        (d.tmp / "fleet-summary.json").write_bytes(dumps(summary))
        render.pdf(summary, d.tmp / "fleet-summary.pdf")
        render.xlsx(summary, d.tmp / "fleet-summary.xlsx")
        d.commit()
    return out
