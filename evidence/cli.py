"""The `auditpack` command line: argument parsing, one-line errors with hints, documented exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from evidence import __version__
from evidence.errors import (
    EXIT_BAD_INPUT,
    EXIT_BAD_SIGNATURE,
    EXIT_FAILURES,
    EXIT_INCOMPLETE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_UNSIGNED,
    AuditpackError,
)

EPILOG_MAIN = """\
examples:
  auditpack collect --snapshot samples/demo-cluster --scope samples/scope.yaml --out demo-pack
  auditpack collect --context prod --scope scope.yaml --out packs/prod-2026-Q4
  auditpack snapshot --context prod --out snapshots/prod
  auditpack verify demo-pack
  auditpack controls list --framework pci-dss
  auditpack controls schema

exit codes:
  0  every control passed (or failed below --fail-on)
  1  a control failed at or above --fail-on, or verify found a changed pack
  2  bad input or usage (the message names the file, field and fix)
  3  collection incomplete (denied or failed reads); the pack marks what is inconclusive
  4  internal error (a bug in auditpack; AUDITPACK_DEBUG=1 shows the traceback)
"""


def _timestamp(value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 timestamp (e.g. 2026-11-21T06:00:00Z)") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone; add Z for UTC")
    return ts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="auditpack", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_MAIN,
        description="Compliance evidence packs (PCI DSS v4.0.1, GDPR Art. 32, HSLF-FS 2016:40) from Kubernetes.")
    p.add_argument("--version", action="version", version=f"auditpack {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("collect", help="collect evidence, evaluate controls and write an audit pack",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack collect --snapshot samples/demo-cluster --scope samples/scope.yaml --out packs/2026-Q4
  auditpack collect --snapshot cluster-dump.tar.gz --controls ./our-controls --fail-on high --out pack
""")
    c.add_argument("--snapshot", type=Path, metavar="PATH",
                   help="directory or .tar.gz of YAML/JSON objects (kubectl get -A -o yaml, auditpack snapshot); "
                        "without it, the live cluster is read")
    _cluster_args(c)
    c.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="new pack directory; refused if it exists and is not empty")
    c.add_argument("--scope", type=Path, metavar="FILE", help="scope.yaml: CDE namespaces, sites, waivers")
    c.add_argument("--controls", type=Path, action="append", metavar="DIR",
                   help="extra directory of <id>.yaml controls (repeatable)")
    c.add_argument("--fail-on", choices=["critical", "high", "medium", "low", "info", "none"], default="low",
                   help="exit 1 when a control of this severity or higher fails (default: low)")
    c.add_argument("--as-of", type=_timestamp, metavar="TIME",
                   help="evaluate as of this time (default: the snapshot's collection time)")
    c.add_argument("--cluster-name", metavar="NAME", help="name shown in the report (default: from the scope)")
    c.add_argument("--json", action="store_true", help="print the run summary as one JSON line on stdout")
    c.add_argument("--previous", type=Path, metavar="PACK",
                   help="an earlier pack of this cluster: the report gains 'Changes since <date>'")
    c.add_argument("--sign-key", type=Path, metavar="KEY",
                   help="sign the manifest and the PDF with this key (auditpack keys generate)")
    c.add_argument("--sign-cert", type=Path, metavar="CRT",
                   help="certificate of the signing key for the PDF signature (default: KEY's .crt beside it)")

    s = sub.add_parser("snapshot", help="read the live cluster and write a redacted snapshot for offline audits",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack snapshot --context prod --out snapshots/prod-2026-11-21
  auditpack collect --snapshot snapshots/prod-2026-11-21 --scope scope.yaml --out packs/prod-2026-Q4
""")
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="new directory for the snapshot")
    s.add_argument("--cluster-name", metavar="NAME", help="name recorded for the cluster (default: the context)")
    _cluster_args(s)

    g = sub.add_parser("segmentation", help="print workload-level connectivity computed from NetworkPolicies",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack segmentation --snapshot samples/demo-cluster
  auditpack segmentation --context prod --format json > connectivity.json
""")
    g.add_argument("--snapshot", type=Path, metavar="PATH", help="snapshot to read (default: the live cluster)")
    g.add_argument("--format", choices=["text", "json"], default="text")
    g.add_argument("--namespace", metavar="NS", help="only flows from or to this namespace")
    _cluster_args(g)

    v = sub.add_parser("verify", help="check a pack's files against its manifest, and its signature",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
exit codes of verify:
  0  intact (and, with --public-key, signed by that key)
  1  a file was changed, is missing, or was added
  5  --public-key given but the pack is not signed
  6  the signature is invalid or was made by another key
""")
    v.add_argument("pack", type=Path, metavar="PACK")
    v.add_argument("--public-key", type=Path, metavar="KEY", help="the signer's .pub or .crt file")

    d = sub.add_parser("diff", help="what changed between two packs (quarter over quarter)")
    d.add_argument("old", type=Path, metavar="OLD")
    d.add_argument("new", type=Path, metavar="NEW")
    d.add_argument("--format", choices=["text", "json"], default="text")

    r = sub.add_parser("render", help="re-render the PDF and workbook of a stored pack into a new directory")
    r.add_argument("pack", type=Path, metavar="PACK")
    r.add_argument("--out", type=Path, required=True, metavar="DIR")
    r.add_argument("--sign-key", type=Path, metavar="KEY", help="sign the re-rendered pack")
    r.add_argument("--sign-cert", type=Path, metavar="CRT")

    k = sub.add_parser("keys", help="create the key pair that signs packs")
    k_sub = k.add_subparsers(dest="keys_command", metavar="ACTION")
    kg = k_sub.add_parser("generate", help="write auditpack-signing.key (keep it secret), .pub and .crt")
    kg.add_argument("--out", type=Path, required=True, metavar="DIR")
    kg.add_argument("--name", default="auditpack pack signer", help="the certificate's common name")
    kg.add_argument("--algorithm", choices=["ed25519", "ecdsa-p256"], default="ed25519",
                    help="ed25519 (default) or ecdsa-p256 (for PDF readers without EdDSA support)")

    ctl = sub.add_parser("controls", help="list, check and document controls")
    ctl_sub = ctl.add_subparsers(dest="controls_command", metavar="ACTION")
    ls = ctl_sub.add_parser("list", help="list controls and the requirements they evidence")
    ls.add_argument("--framework", metavar="ID", help="only controls citing this framework (pci-dss, gdpr, ...)")
    ls.add_argument("--controls", type=Path, action="append", metavar="DIR", help="extra controls directory")
    chk = ctl_sub.add_parser("check", help="validate control files (schema and CEL) without collecting")
    chk.add_argument("--controls", type=Path, action="append", metavar="DIR", help="extra controls directory")
    sch = ctl_sub.add_parser("schema", help="print the subject fields controls can use")
    sch.add_argument("--format", choices=["json", "markdown"], default="json")
    return p


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster config)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current context)")


def _progress() -> Callable[[dict[str, Any]], None]:
    """A rich display on a terminal; one JSON line per event on stderr otherwise (CronJob logs)."""
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        status = console.status("connecting")
        status.start()
        styles = {"ok": "green", "forbidden": "red", "error": "red", "not_served": "dim"}

        def show(event: dict[str, Any]) -> None:
            if event["event"] == "start":
                status.update(f"listing {event['resource']}")
            elif event["event"] == "list":
                st = event["status"]
                if st != "not_served":
                    console.print(f"  [{styles.get(st, '')}]{st:<10}[/] {event['resource']:<45} "
                                  f"{event['count']:>7,}  {event['seconds']:.2f}s"
                                  + (f"  {event['message']}" if st in ("forbidden", "error") else ""))
            elif event["event"] == "retry":
                console.print(f"  [yellow]retry[/]      {event['resource']}: {event['reason']}")

        show.stop = status.stop  # type: ignore[attr-defined]
        return show

    def log(event: dict[str, Any]) -> None:
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "info", **event}
        sys.stderr.write(orjson.dumps(line).decode() + "\n")

    return log


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the problem
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    try:
        return _dispatch(parser, args)
    except AuditpackError as exc:
        _err(f"error[{exc.code}]: {exc.message}")
        if exc.hint:
            _err(f"  hint: {exc.hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted; no pack was written")
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback only on request
        if os.environ.get("AUDITPACK_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc}")
        _err("  hint: this is a bug in auditpack; rerun with AUDITPACK_DEBUG=1 for the traceback and report it")
        return EXIT_INTERNAL


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "collect":
        return _collect(args)
    if args.command == "snapshot":
        return _snapshot(args)
    if args.command == "segmentation":
        return _segmentation(args)
    if args.command == "verify":
        return _verify(args.pack, args.public_key)
    if args.command == "keys":
        return _keys(args)
    if args.command == "diff":
        return _diff(args)
    if args.command == "render":
        from evidence.pipeline import rerender

        out = rerender(args.pack, args.out, args.sign_key, args.sign_cert)
        print(f"wrote {out}: report.pdf and control-matrix.xlsx re-rendered from {args.pack}")
        return EXIT_OK
    if args.command == "controls":
        return _controls(args)
    parser.print_help()
    return EXIT_BAD_INPUT


def _collect(args: argparse.Namespace) -> int:
    from evidence.pipeline import RunOptions, collect

    progress = _progress() if args.snapshot is None else None
    try:
        summary = collect(RunOptions(out=args.out, snapshot=args.snapshot, kubeconfig=args.kubeconfig,
                                     context=args.context, scope=args.scope, controls=args.controls, as_of=args.as_of,
                                     fail_on=args.fail_on, cluster_name=args.cluster_name, progress=progress,
                                     sign_key=args.sign_key, sign_cert=args.sign_cert, previous=args.previous))
    finally:
        getattr(progress, "stop", lambda: None)()
    r = summary.results
    if args.json:
        sys.stdout.write(orjson.dumps(summary.line()).decode() + "\n")
    else:
        counts = ", ".join(f"{r.control_counts.get(s, 0)} {s}" for s in
                           ("pass", "fail", "inconclusive", "waived", "not_applicable") if r.control_counts.get(s))
        print(f"wrote {summary.pack} ({len(r.controls)} controls: {counts})")
        for fw in r.frameworks:
            fc = ", ".join(f"{n} {s}" for s, n in sorted(fw.counts.items()))
            print(f"  {fw.title} {fw.version}: {fw.requirements} requirements ({fc})")
        for problem in r.collection_problems:
            print(f"  incomplete: {problem}")
        print(f"  evidence digest {summary.evidence_digest}")
    return summary.exit_code


def _snapshot(args: argparse.Namespace) -> int:
    from evidence.pipeline import RunOptions, take_snapshot

    progress = _progress()
    try:
        inv, files = take_snapshot(RunOptions(out=args.out, snapshot=None, kubeconfig=args.kubeconfig,
                                              context=args.context, cluster_name=args.cluster_name, progress=progress))
    finally:
        getattr(progress, "stop", lambda: None)()
    problems = [e for e in inv.log if e.status in ("forbidden", "error")]
    print(f"wrote {args.out}: {len(inv)} objects in {files} files from {inv.source.location}")
    for e in problems:
        print(f"  incomplete: {e.message}")
    return EXIT_INCOMPLETE if problems else EXIT_OK


def _segmentation(args: argparse.Namespace) -> int:
    """Every ordered pair of workloads (and of workloads and external CIDRs) with some allowed connection."""
    from evidence.netpol.engine import engine_from_inventory
    from evidence.pipeline import RunOptions, load_inventory

    inv = load_inventory(RunOptions(out=Path(), snapshot=args.snapshot, kubeconfig=args.kubeconfig,
                                    context=args.context), None)
    engine = engine_from_inventory(inv)
    ns = args.namespace
    entries = [e for e in engine.iter_workload_connectivity()
               if ns is None or str(e["src"]).startswith(f"{ns}/") or str(e["dst"]).startswith(f"{ns}/")]
    if args.format == "json":
        sys.stdout.write(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    from evidence.collectors.namespaces import port_labels
    from evidence.netpol.model import ConnSet

    width = max((len(str(e["src"])) for e in entries), default=10)
    for e in entries:
        print(f"{e['src']:<{width}}  ->  {e['dst']}  {', '.join(port_labels(ConnSet.from_json(e['conns'])))}")
    for warning in engine.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(entries)} allowed flows", file=sys.stderr)
    return EXIT_OK


def _verify(pack: Path, public_key: Path | None) -> int:
    from evidence import signing
    from evidence.pack import verify

    public = signing.load_public_key(public_key) if public_key else None
    v = verify(pack)
    for label, items in (("changed", v.changed), ("missing", v.missing), ("extra", v.extra)):
        for item in items:
            print(f"{pack}: {label}: {item}")
    sig = signing.check_manifest_signature(pack, public)
    if sig.status != "missing" or public is not None:
        print(f"{pack}: signature {sig.status}: {sig.detail}")
    if not v.intact:
        return EXIT_FAILURES
    if sig.status == "missing" and public is not None:
        return EXIT_UNSIGNED
    if sig.status in ("invalid", "other-key"):
        return EXIT_BAD_SIGNATURE
    print(f"{pack}: intact (evidence digest {v.evidence_digest})")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from evidence import diff

    changes = diff.compare(diff.read_pack(args.old), diff.read_pack(args.new))
    if args.format == "json":
        sys.stdout.write(changes.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(diff.text(changes))
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    from evidence import signing

    if args.keys_command != "generate":
        raise AuditpackError("keys needs an action", "auditpack keys generate --out DIR")
    key, pub, crt = signing.generate(args.out, args.name, args.algorithm)
    print(f"wrote {key} (private: keep it secret, never in a pack), {pub} (give to auditors), {crt} (PDF signatures)")
    return EXIT_OK


def _controls(args: argparse.Namespace) -> int:
    from evidence.controls import load_catalogue

    action = args.controls_command or "list"
    if action == "schema":
        from evidence.facts import schema_document, schema_markdown

        if args.format == "markdown":
            sys.stdout.write(schema_markdown())
        else:
            sys.stdout.write(orjson.dumps(schema_document(), option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    cat = load_catalogue(getattr(args, "controls", None))
    if action == "check":
        print(f"{len(cat.controls)} controls and {len(cat.frameworks)} frameworks are valid")
        return EXIT_OK
    fw = getattr(args, "framework", None)
    if fw and cat.framework(fw) is None:
        raise AuditpackError(f"unknown framework {fw!r}", "use one of: " + ", ".join(f.id for f in cat.frameworks))
    rows: list[dict[str, Any]] = []
    for c in cat.controls:
        if fw and fw not in c.spec.requirements:
            continue
        reqs = "; ".join(f"{k} {', '.join(v)}" for k, v in c.spec.requirements.items() if not fw or k == fw)
        rows.append({"id": c.id, "severity": c.spec.severity, "subject": c.spec.subject, "reqs": reqs,
                     "title": c.spec.title})
    width = max((len(r["id"]) for r in rows), default=10)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['severity']:<8}  {r['subject']:<12}  {r['title']}")
        print(f"{'':<{width}}  {'':<8}  {'':<12}  -> {r['reqs']}")
    print(f"{len(rows)} controls")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
