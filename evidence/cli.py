"""The `auditpack` command line: argument parsing, one-line errors with hints, documented exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson

from evidence import __version__, storage_cli
from evidence.errors import (
    EXIT_BAD_INPUT,
    EXIT_BAD_SIGNATURE,
    EXIT_FAILURES,
    EXIT_INCOMPLETE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_UNSIGNED,
    EXIT_UNVERIFIED,
    AuditpackError,
    InputError,
)

EPILOG_MAIN = """\
examples:
  auditpack collect --snapshot samples/demo-cluster --scope samples/scope.yaml --out demo-pack
  auditpack collect --context prod --scope scope.yaml --out packs/prod-2026-Q4
  auditpack snapshot --context prod --out snapshots/prod
  auditpack collect --out-root /packs --keep 8 --previous auto --json
  auditpack rbac > clusterrole.yaml
  auditpack verify demo-pack
  auditpack controls list --framework pci-dss
  auditpack controls schema

exit codes:
  0  every control passed (or failed below --fail-on)
  1  a control failed at or above --fail-on; verify, diff, render or --previous found a changed pack
  2  bad input or usage (the message names the file, field and fix)
  3  collection incomplete (denied or failed reads; the pack marks what is inconclusive), or the pack was
     written but could not be uploaded (--upload; `auditpack upload` resumes)
  4  internal error (a bug in auditpack; AUDITPACK_DEBUG=1 shows the traceback)
  5  verify: a signature was expected (trust anchor given, or the manifest names a signer) but is missing
  6  verify: the signature is invalid, or not made by the trusted key or certificate
  7  verify: the pack is intact, but authenticity is not established (unsigned, or no trust anchor given)
"""


def _timestamp(value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 timestamp (e.g. 2026-11-21T06:00:00Z)") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone; add Z for UTC")
    return ts


class _UsageError(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog, self.message = prog, message


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and a hint (and the JSON line under --json), not the usage block."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="auditpack", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_MAIN,
        description="Compliance evidence packs (PCI DSS v4.0.1, GDPR Art. 32, HSLF-FS 2016:40) from Kubernetes.")
    p.add_argument("--version", action="version", version=f"auditpack {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("collect", help="collect evidence, evaluate controls and write an audit pack",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack collect --snapshot samples/demo-cluster --scope samples/scope.yaml --out packs/2026-Q4
  auditpack collect --snapshot cluster-dump.tar.gz --controls ./our-controls --fail-on high --out pack
  auditpack collect --out-root /packs --keep 8 --previous auto --json         (the CronJob)
  auditpack collect --contexts prod-se,prod-no --out-root packs --parallel 2  (a fleet)

--out-root DIR writes DIR/<cluster>/<UTC timestamp>/ under a lock (DIR/<cluster>/.lock): a second run of the
same cluster at the same time is refused (exit 2). A fleet writes one pack per cluster plus a summary in
DIR/fleet/<timestamp>/ and exits with the worst of its clusters' codes (4, then 2, 3, 1, 0).
""")
    c.add_argument("--snapshot", type=Path, metavar="PATH",
                   help="directory or .tar.gz of YAML/JSON objects (kubectl get -A -o yaml, auditpack snapshot); "
                        "without it, the live cluster is read")
    _cluster_args(c)
    _live_args(c)
    c.add_argument("--out", type=Path, metavar="DIR",
                   help="new pack directory; refused if it exists and is not empty (or use --out-root)")
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
                   help="an earlier pack of this cluster: the report gains 'Changes since <date>'; "
                        "'auto' (with --out-root): the newest earlier pack of the cluster")
    c.add_argument("--sign-key", type=Path, metavar="KEY",
                   help="sign the manifest and the PDF with this key (auditpack keys generate)")
    c.add_argument("--sign-cert", type=Path, metavar="CRT",
                   help="certificate of the signing key for the PDF signature (default: KEY's .crt beside it)")
    c.add_argument("--report", choices=["full", "summary"], default="full",
                   help="full (default) or summary: a PDF of cover, summary, scope, requirement tables and failures")
    c.add_argument("--attestations", type=Path, metavar="FILE",
                   help="attestations for requirements no cluster can show (auditpack attest); attachments are "
                        "copied into the pack and hashed")

    _retention_args(c)
    _probe_args(c)
    storage_cli.upload_args(c)

    s = sub.add_parser("snapshot", help="read the live cluster and write a redacted snapshot for offline audits",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack snapshot --context prod --out snapshots/prod-2026-11-21
  auditpack collect --snapshot snapshots/prod-2026-11-21 --scope scope.yaml --out packs/prod-2026-Q4
""")
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="new directory for the snapshot")
    s.add_argument("--cluster-name", metavar="NAME", help="name recorded for the cluster (default: the context)")
    _cluster_args(s)
    _live_args(s)

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

    rb = sub.add_parser("rbac", help="print the least-privilege ClusterRole for collection (from kinds.py)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack rbac > deploy/base/clusterrole.yaml        (what `make rbac` does)
  auditpack rbac --no-secrets | kubectl apply -f -
""")
    rb.add_argument("--name", default="auditpack", help="the ClusterRole's name (default: auditpack)")
    rb.add_argument("--format", choices=["yaml", "json"], default="yaml")
    rb.add_argument("--no-secrets", action="store_true",
                    help="omit Secrets (list secrets reads every Secret); certificate controls become inconclusive")
    rb.add_argument("--tls-secrets-from-cluster", action="store_true",
                    help="read the cluster's Ingresses, Gateways and Certificates and add namespaced Roles with get "
                         "on exactly the TLS Secrets they reference (collect with --secrets by-name)")
    rb.add_argument("--service-account", default="auditpack:auditpack", metavar="NS:NAME",
                    help="with --tls-secrets-from-cluster: the collector's ServiceAccount the Roles are bound to")
    _cluster_args(rb)

    v = sub.add_parser("verify", help="check a pack's files against its manifest, and its signature",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack verify packs/2026-Q4 --public-key auditpack-signing.pub   (the key the pack's owner handed over)
  auditpack verify packs/2026-Q4 --trust-cert our-signing-ca.crt

Integrity needs only the pack; authenticity needs a trust anchor you obtained out of band (--public-key or
--trust-cert). Without one, a pack anyone re-signed with their own key looks the same as the original.

exit codes of verify (when several apply, the first in this list wins):
  1  not intact: a file was changed, is missing, was added, is a symlink or an unsafe path, an entry has no
     hash, or the directory is a half-written .partial- one
  6  the signature is invalid (manifest.sig or manifest.json edited) or not made by the trusted key/certificate
  5  a signature was expected (a trust anchor was given, or the manifest names a signer) but manifest.sig is
     missing
  7  intact, but authenticity is not established: unsigned, or signed by a key no trust anchor vouches for
  0  intact and signed by the trusted key or certificate
  2  usage: PACK is not a directory, or the key/certificate file cannot be read
""")
    v.add_argument("pack", metavar="PACK",
                   help="a pack directory, or s3://BUCKET/PREFIX/CLUSTER/TIMESTAMP/ in object storage")
    anchor = v.add_mutually_exclusive_group()
    anchor.add_argument("--public-key", type=Path, metavar="KEY",
                        help="trust anchor: the signer's .pub or .crt file, obtained out of band")
    anchor.add_argument("--trust-cert", type=Path, metavar="CRT",
                        help="trust anchor: PEM certificate(s), the signing certificate or the CA it chains to")

    d = sub.add_parser("diff", help="what changed between two packs (quarter over quarter)")
    d.add_argument("old", type=Path, metavar="OLD")
    d.add_argument("new", type=Path, metavar="NEW")
    d.add_argument("--format", choices=["text", "json"], default="text")

    r = sub.add_parser("render", help="re-render the PDF and workbook of a stored pack into a new directory")
    r.add_argument("pack", type=Path, metavar="PACK")
    r.add_argument("--out", type=Path, required=True, metavar="DIR")
    r.add_argument("--sign-key", type=Path, metavar="KEY", help="sign the re-rendered pack")
    r.add_argument("--sign-cert", type=Path, metavar="CRT")
    r.add_argument("--report", choices=["full", "summary"], default="full",
                   help="full (default) or summary: a PDF of cover, summary, scope, requirement tables and failures")

    at = sub.add_parser("attest", help="record an attestation for a requirement no cluster can show",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack attest --file attestations.yaml --framework pci-dss --requirement 8.4.2 \\
      --statement "Entra ID conditional access requires MFA for the payments portal" \\
      --by "Jane Doe, CISO" --valid-until 2027-05-31 --attach evidence/entra-mfa-policy.pdf
  auditpack attest --file attestations.yaml          (validate the file and list its entries)
  auditpack collect --snapshot dump --attestations attestations.yaml --out pack

An attestation never turns a requirement into a pass: it stays manual, shown with the statement, who, when,
the attachment's SHA-256 and the expiry. After valid_until it is listed as expired and no longer counts.
""")
    at.add_argument("--file", type=Path, required=True, metavar="FILE", help="the attestations file (created if new)")
    at.add_argument("--framework", metavar="ID", help="pci-dss, gdpr, hslf-fs-2016-40 or nis2")
    at.add_argument("--requirement", metavar="ID", help="the requirement id, e.g. 8.4.2 or '3 kap. 15 § p. 2'")
    at.add_argument("--statement", metavar="TEXT", help="what is attested, in a sentence or two")
    at.add_argument("--by", metavar="NAME", help="who attests: name and role")
    at.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD", help="date of the statement (today)")
    at.add_argument("--valid-until", type=date.fromisoformat, metavar="YYYY-MM-DD",
                    help="when the statement must be renewed (e.g. the next review)")
    at.add_argument("--attach", type=Path, metavar="FILE", help="evidence file (stored relative to the attestations file)")

    k = sub.add_parser("keys", help="create the key pair that signs packs")
    k_sub = k.add_subparsers(dest="keys_command", metavar="ACTION")
    kg = k_sub.add_parser("generate", help="write auditpack-signing.key (keep it secret), .pub and .crt")
    kg.add_argument("--out", type=Path, required=True, metavar="DIR")
    kg.add_argument("--name", default="auditpack pack signer", help="the certificate's common name")
    # ECDSA P-256 by default: poppler's pdfsig (and so Okular, Evince) reports an Ed25519 PDF signature as invalid,
    # and the PDF is what the auditor opens first; the manifest signature verifies with either.
    kg.add_argument("--algorithm", choices=["ecdsa-p256", "ed25519"], default="ecdsa-p256",
                    help="ecdsa-p256 (default: PDF readers verify it) or ed25519 (manifest-only verifiers)")
    kg.add_argument("--passphrase-env", metavar="VAR",
                    help="encrypt the key with the passphrase in environment variable VAR (never on the command "
                         "line); collect --sign-key reads it from $AUDITPACK_SIGN_KEY_PASSPHRASE")
    kg.add_argument("--kubernetes-secret", metavar="NAME",
                    help="print the private key as a Kubernetes Secret manifest on stdout (pipe it to kubectl apply -f -) "
                         "instead of writing it: it never touches disk outside the cluster; --out gets .pub and .crt")
    kg.add_argument("--namespace", default="auditpack", help="the Secret's namespace (default: auditpack)")

    storage_cli.add_commands(sub)

    ctl = sub.add_parser("controls", help="list, check and document controls")
    ctl_sub = ctl.add_subparsers(dest="controls_command", metavar="ACTION")
    ls = ctl_sub.add_parser("list", help="list controls and the requirements they evidence")
    ls.add_argument("--framework", metavar="ID", help="only controls citing this framework (pci-dss, gdpr, ...), "
                    "then every requirement of it with its status")
    ls.add_argument("--pack", type=Path, metavar="DIR", help="with --framework: the requirement statuses of this "
                    "pack (default: the best status the catalogue allows each requirement)")
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
    p.add_argument("--allow-insecure-http", action="store_true",
                   help="accept an http:// API server (refused by default: the token would cross the network in clear)")


def _live_args(p: argparse.ArgumentParser) -> None:
    """collect and snapshot from a live cluster: deadlines and Secret access (sources/live.py)."""
    from evidence.sources.limits import DEFAULT_RUN_TIMEOUT_S, REQUEST_TIMEOUT_S

    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help=f"deadline for reading the cluster (default {DEFAULT_RUN_TIMEOUT_S:g}, an hour inside the "
                        "CronJob's activeDeadlineSeconds); what is not read by then is inconclusive, the pack is "
                        "written and the exit code is 3")
    p.add_argument("--request-timeout", type=_seconds, metavar="SECONDS",
                   help=f"wait at most this long for each API response (default {REQUEST_TIMEOUT_S:g})")
    p.add_argument("--secrets", choices=["list", "by-name", "none"], default="list",
                   help="list: list TLS Secrets (field selector type=kubernetes.io/tls); by-name: get only the "
                        "Secrets Ingresses, Gateways and Certificates reference, never list (the Roles of "
                        "`auditpack rbac --tls-secrets-from-cluster`); none: no Secret access (default: list)")
    p.add_argument("--no-secrets", action="store_true",
                   help="same as --secrets none: certificates come from cert-manager Certificate status and "
                        "--probe-tls; the certificate controls that need a Secret are inconclusive")


def _secrets_mode(args: argparse.Namespace) -> str:
    if args.no_secrets and args.secrets != "list":
        raise InputError("give --no-secrets or --secrets, not both", "--no-secrets is --secrets none")
    return "none" if args.no_secrets else str(args.secrets)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: give a positive number of seconds")
    return seconds


def _retention_args(c: argparse.ArgumentParser) -> None:
    """collect: packs kept under one root (retention.py) and fleets of clusters (fleet.py)."""
    c.add_argument("--out-root", type=Path, metavar="DIR",
                   help="write DIR/<cluster>/<UTC timestamp>/ (instead of --out), one run per cluster at a time")
    c.add_argument("--keep", type=int, metavar="N",
                   help="with --out-root: after writing, remove the oldest packs of the cluster so N remain")
    c.add_argument("--contexts", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], metavar="A,B,...",
                   help="collect these kubeconfig contexts (one pack each under --out-root) and a fleet summary")
    c.add_argument("--all-contexts", action="store_true", help="collect every context of the kubeconfig")
    c.add_argument("--parallel", type=int, default=2, metavar="N",
                   help="with --contexts/--all-contexts: clusters collected at the same time (default: 2)")


def _check_retention_args(args: argparse.Namespace) -> bool:
    """Usage errors of --out/--out-root/--keep/--previous (exit 2); True for --previous auto."""
    if (args.out is None) == (args.out_root is None):
        raise InputError("collect needs exactly one of --out DIR (one pack there) and --out-root DIR "
                         "(DIR/<cluster>/<timestamp>/)", "pass --out packs/2026-Q4, or --out-root packs")
    previous_auto = args.previous is not None and str(args.previous) == "auto"
    if args.out_root is None and (previous_auto or args.keep is not None):
        raise InputError(f"{'--previous auto' if previous_auto else '--keep'} needs --out-root",
                         "use --out-root DIR, where earlier packs of the cluster are kept")
    return previous_auto


def _with_json_error(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """With --json, a run that ends in an error still prints its one JSON line (pack null, exit code, error), so
    alerting on that line also sees runs that wrote nothing."""
    try:
        return run(args)
    except Exception as exc:
        if args.json:
            code = exc.exit_code if isinstance(exc, AuditpackError) else EXIT_INTERNAL
            text = f"error[{exc.code}]: {exc.message}" if isinstance(exc, AuditpackError) else \
                f"internal error: {type(exc).__name__}: {exc}"
            line = {"pack": None, "exit_code": code, "error": text, "previous": None,
                    "cluster": args.cluster_name or args.context}
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
        raise


def _fleet(args: argparse.Namespace) -> int:
    from evidence import fleet

    if args.out_root is None or args.out is not None or args.snapshot is not None or args.context is not None \
            or args.cluster_name is not None:
        raise InputError("--contexts/--all-contexts need --out-root DIR, and take no --out, --snapshot, --context "
                         "or --cluster-name", "each cluster is named after its context: pass --out-root DIR only")
    if args.contexts is not None and args.all_contexts:
        raise InputError("give --contexts or --all-contexts, not both", "drop one of them")
    if args.previous is not None and str(args.previous) != "auto":
        raise InputError("a fleet takes --previous auto only", "each cluster's previous pack is its own")
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    opts = fleet.FleetOptions(out_root=args.out_root, kubeconfig=args.kubeconfig, contexts=args.contexts,
                              parallel=args.parallel, json=args.json, upload=storage_cli.options(args),
                              forwarded=fleet.forwarded_options(args, sub.choices["collect"]._actions))

    def done(run: fleet.ClusterRun) -> None:
        if args.json:
            sys.stdout.write(orjson.dumps(run.line).decode() + "\n")
        else:
            print(f"{run.context}: exit {run.exit_code}: {run.line.get('pack') or 'no pack'}"
                  + (f" ({run.reason})" if run.reason else ""))
        sys.stdout.flush()

    result = fleet.run(opts, done)
    if args.json:
        sys.stdout.write(orjson.dumps(result.line()).decode() + "\n")
    else:
        failed = result.summary["failed"]
        print(f"fleet summary {result.summary_dir}: {len(result.runs)} clusters, exit {result.exit_code}"
              + (f"; no complete pack for {', '.join(failed)}" if failed else ""))
    return result.exit_code


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
                status.update(f"collecting: listing {event['resource']}")
            elif event["event"] == "stage":
                stage = str(event["stage"])
                if stage == "rendered PDF":
                    console.print(f"  [green]rendered[/]   report.pdf, {event.get('pages', '?')} pages")
                    status.update("rendered PDF")
                else:
                    status.update(f"{stage}...")
            elif event["event"] == "note":
                console.print(f"  [{'yellow' if event.get('level') == 'warning' else 'dim'}]note[/]       "
                              f"{event['message']}")
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
    except SystemExit as exc:  # --help and --version
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    except _UsageError as exc:
        text = f"{exc.prog}: {exc.message}"
        if "--json" in (sys.argv[1:] if argv is None else argv):
            sys.stdout.write(orjson.dumps({"pack": None, "exit_code": EXIT_BAD_INPUT, "error": text}).decode() + "\n")
        _err(f"error: {text}")
        _err(f"  hint: `{exc.prog} --help` lists the options and their values")
        return EXIT_BAD_INPUT
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
        if args.contexts is not None or args.all_contexts:
            return _fleet(args)
        return _with_json_error(args, _collect)
    if args.command == "rbac":
        return _rbac(args)
    if args.command == "snapshot":
        return _snapshot(args)
    if args.command == "segmentation":
        return _segmentation(args)
    if args.command == "verify":
        if str(args.pack).startswith("s3://"):
            return storage_cli.run_verify(args.pack, lambda p: _verify(p, args.public_key, args.trust_cert))
        return _verify(Path(args.pack), args.public_key, args.trust_cert)
    if args.command == "upload":
        return storage_cli.run_upload(args)
    if args.command == "list":
        return storage_cli.run_list(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "attest":
        return _attest(args)
    if args.command == "diff":
        return _diff(args)
    if args.command == "render":
        from evidence.pipeline import rerender

        out = rerender(args.pack, args.out, args.sign_key, args.sign_cert, report=args.report)
        print(f"wrote {out}: report.pdf and control-matrix.xlsx re-rendered from {args.pack}")
        _print_signed(out)
        return EXIT_OK
    if args.command == "controls":
        return _controls(args)
    parser.print_help()
    return EXIT_BAD_INPUT


def _probe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live TLS probe (off by default; connects to every exposed host)")
    g.add_argument("--probe-tls", action="store_true",
                   help="handshake with each entry point: protocol versions, served certificate, HSTS, port-80 redirect")
    g.add_argument("--probe-address", action="append", default=[], metavar="HOST[:PORT]=IP[:PORT]",
                   help="where to connect for a host (repeatable); default: scope host_addresses, then the "
                        "load-balancer status of the Ingress/Gateway/Service")
    g.add_argument("--probe-timeout", type=float, default=5.0, metavar="SECONDS", help="per connection (default 5)")
    g.add_argument("--probe-concurrency", type=int, default=8, metavar="N", help="hosts probed at once (default 8)")
    g.add_argument("--probe-budget", type=float, default=120.0, metavar="SECONDS",
                   help="stop waiting for the probe after this long (default 120); unprobed hosts say so")


def _probe_options(args: argparse.Namespace) -> Any:
    from evidence.errors import InputError
    from evidence.probe.tls import ProbeOptions

    if not args.probe_tls:
        if args.probe_address:
            raise InputError("--probe-address needs --probe-tls", "add --probe-tls to run the live TLS probe")
        return None
    if args.probe_timeout <= 0 or args.probe_concurrency < 1 or args.probe_budget <= 0:
        raise InputError("--probe-timeout, --probe-budget must be positive and --probe-concurrency at least 1",
                             "for example --probe-timeout 5 --probe-concurrency 8 --probe-budget 120")
    return ProbeOptions(addresses=dict(ProbeOptions.parse_address(a) for a in args.probe_address),
                        timeout=args.probe_timeout, concurrency=args.probe_concurrency, budget=args.probe_budget)


def _attest(args: argparse.Namespace) -> int:
    from evidence import attest
    from evidence.controls import load_catalogue

    catalogue = load_catalogue()
    wanted = (args.framework, args.requirement, args.statement, args.by, args.valid_until)
    if not any(wanted):
        entries = attest.load(args.file, catalogue)
        today = date.today()
        for a in entries:
            e = a.entry
            state = "expired" if e.valid_until < today else "valid"
            attached = f", {a.attachment.name} sha256 {a.sha256[:12]}" if a.attachment and a.sha256 else ""
            print(f"{e.framework} {e.requirement}: {state} until {e.valid_until} ({e.by}, {e.date}{attached})")
        print(f"{args.file}: {len(entries)} attestation(s), valid")
        return EXIT_OK
    missing = [f"--{n}" for n, v in zip(("framework", "requirement", "statement", "by", "valid-until"), wanted,
                                        strict=True) if not v]
    if missing:
        raise AuditpackError(f"attest: {', '.join(missing)} missing", "give all of --framework, --requirement, "
                             "--statement, --by and --valid-until (and --attach FILE for the evidence)")
    attachment = None
    if args.attach is not None:
        # Attachments live under the attestations file's directory (attest.attachment_problem); symlinks are
        # not resolved here, so a link is refused by the check rather than silently replaced by its target.
        target = Path(os.path.normpath(args.attach.absolute()))
        base = Path(os.path.normpath(args.file.absolute())).parent
        if not target.is_relative_to(base):
            raise InputError(f"--attach {args.attach}: not inside {base}, the attestations file's directory",
                             "copy the evidence file there (e.g. attestations/) and attach that copy")
        attachment = target.relative_to(base).as_posix()
    entry = attest.entry(framework=args.framework, requirement=args.requirement, statement=args.statement,
                         by=args.by, date=args.date or date.today(), valid_until=args.valid_until,
                         attachment=attachment)
    added = attest.append(args.file, entry, catalogue)
    digest = f", attachment sha256 {added.sha256}" if added.sha256 else ""
    print(f"{args.file}: attested {entry.framework} {entry.requirement} until {entry.valid_until}{digest}")
    return EXIT_OK


def _collect(args: argparse.Namespace) -> int:
    from evidence.pipeline import RunOptions, collect
    from evidence.render.data import REQUIREMENT_ORDER

    previous_auto = _check_retention_args(args)
    progress = _progress() if args.snapshot is None else None
    try:
        opts = RunOptions(out=args.out or Path(), snapshot=args.snapshot, kubeconfig=args.kubeconfig,
                          context=args.context, scope=args.scope, controls=args.controls, as_of=args.as_of,
                          fail_on=args.fail_on, cluster_name=args.cluster_name, progress=progress,
                          sign_key=args.sign_key, sign_cert=args.sign_cert,
                          previous=None if previous_auto else args.previous, probe=_probe_options(args),
                          attestations=args.attestations, timeout=args.timeout,
                          request_timeout=args.request_timeout, secrets=_secrets_mode(args),
                          allow_insecure_http=args.allow_insecure_http, upload=storage_cli.options(args),
                          report=args.report)
        if args.out_root is not None:
            from evidence.retention import collect_to_root

            summary = collect_to_root(opts, args.out_root, args.keep, previous_auto)
        else:
            summary = collect(opts)
    finally:
        getattr(progress, "stop", lambda: None)()
    r = summary.results
    if args.json:
        sys.stdout.write(orjson.dumps(summary.line()).decode() + "\n")
    else:
        counts = ", ".join(f"{r.control_counts.get(s, 0)} {s}" for s in
                           ("pass", "fail", "inconclusive", "manual", "waived", "not_applicable") if r.control_counts.get(s))
        print(f"wrote {summary.pack} ({len(r.controls)} controls: {counts})")
        for fw in r.frameworks:
            fc = ", ".join(f"{fw.counts[s]} {s.replace('_', ' ')}" for s in REQUIREMENT_ORDER
                           if fw.counts.get(s))
            attested = f"; {fw.attested} with a current attestation" if fw.attested else ""
            print(f"  {fw.title} {fw.version}: {fw.requirements} requirements ({fc}{attested})")
        for problem in r.collection_problems:
            print(f"  incomplete: {problem}")
        print(f"  evidence digest {summary.evidence_digest}")
        print(f"  report: {summary.pack / 'report.pdf'}")
        print(f"  workbook: {summary.pack / 'control-matrix.xlsx'}")
        if summary.uploaded is not None:
            print(f"  uploaded to {summary.uploaded} and verified there")
        if args.sign_key is not None:
            _print_signed(summary.pack)
        if summary.previous is not None:
            print(f"  compared with {summary.previous}")
        for pruned in summary.pruned:
            print(f"  removed old pack {pruned} (--keep {args.keep})")
    return summary.exit_code


def _rbac(args: argparse.Namespace) -> int:
    """The ClusterRole; with --tls-secrets-from-cluster also the per-namespace Roles for the referenced Secrets."""
    from evidence.clusterrole import render as render_role

    if not args.tls_secrets_from_cluster:
        if args.kubeconfig is not None or args.context is not None:
            raise InputError("rbac reads the cluster only with --tls-secrets-from-cluster",
                             "add --tls-secrets-from-cluster, or drop --kubeconfig/--context")
        sys.stdout.write(render_role(args.name, args.format, secrets=not args.no_secrets))
        return EXIT_OK
    if args.no_secrets:
        raise InputError("--no-secrets and --tls-secrets-from-cluster exclude each other",
                         "--no-secrets grants no Secret at all; --tls-secrets-from-cluster grants get on named ones")
    sa_ns, _, sa_name = str(args.service_account).partition(":")
    if not sa_ns or not sa_name:
        raise InputError(f"--service-account {args.service_account!r} is not NAMESPACE:NAME",
                         "for example --service-account auditpack:auditpack")
    from evidence.clusterrole import render_by_name, tls_secret_refs
    from evidence.kinds import RESOURCE_TYPES
    from evidence.sources import live

    refs_types = [t for t in RESOURCE_TYPES if (t.kind, t.group) in
                  (("Namespace", ""), ("Ingress", "networking.k8s.io"), ("Gateway", "gateway.networking.k8s.io"),
                   ("Certificate", "cert-manager.io"))]
    inv = live.LiveSource(live.connect(args.kubeconfig, args.context, args.allow_insecure_http)).load(types=refs_types)
    problems = [e for e in inv.log if e.status in ("forbidden", "error")]
    if problems:
        # Roles made from a partial read would silently leave Secrets out: refuse instead.
        from evidence.errors import CollectionError

        raise CollectionError("cannot read every Ingress, Gateway and Certificate: "
                                   + "; ".join(str(e.message) for e in problems),
                                   "run `auditpack rbac --tls-secrets-from-cluster` with list access to them "
                                   "(e.g. as a cluster administrator)")
    refs = tls_secret_refs(inv)
    sys.stdout.write(render_by_name(refs, (sa_ns, sa_name), args.name, args.format))
    namespaces = len({ns for ns, _ in refs})
    _err(f"{len(refs)} TLS Secrets referenced in {namespaces} namespaces: one Role and RoleBinding per namespace")
    return EXIT_OK


def _snapshot(args: argparse.Namespace) -> int:
    from evidence.pipeline import RunOptions, take_snapshot

    progress = _progress()
    try:
        inv, files = take_snapshot(RunOptions(out=args.out, snapshot=None, kubeconfig=args.kubeconfig,
                                              context=args.context, cluster_name=args.cluster_name, progress=progress,
                                              timeout=args.timeout, request_timeout=args.request_timeout,
                                              secrets=_secrets_mode(args), allow_insecure_http=args.allow_insecure_http))
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
                                    context=args.context, allow_insecure_http=args.allow_insecure_http), None)
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


def _verify(pack: Path, public_key: Path | None, trust_cert: Path | None = None) -> int:
    """Integrity (every hash, nothing unlisted, nothing unsafe), then authenticity against a trust anchor.
    Exit-code precedence (documented in `verify --help` and the README): 1, 6, 5, 7, 0."""
    from evidence import signing
    from evidence.pack import verify

    anchor = None
    if public_key is not None:
        anchor = signing.TrustAnchor(public_key=signing.load_public_key(public_key), source=f"--public-key {public_key}")
    elif trust_cert is not None:
        anchor = signing.TrustAnchor(certificates=signing.load_trust_certs(trust_cert),
                                     source=f"--trust-cert {trust_cert}")
    v = verify(pack)
    for problem in v.problems():
        print(f"{pack}: {problem}")
    sig = signing.check_manifest_signature(pack, anchor)
    if sig.status == "missing" and anchor is None and not sig.declared:
        print(f"{pack}: not signed")
    else:
        print(f"{pack}: signature {sig.status}: {sig.detail}")
    if not v.intact:
        print(f"{pack}: NOT intact: {len(v.problems())} problem(s) above")
        return EXIT_FAILURES
    if sig.status in ("invalid", "other-key"):
        print(f"{pack}: files intact, but NOT authentic: the signature does not hold")
        return EXIT_BAD_SIGNATURE
    if sig.status == "missing" and (anchor is not None or sig.declared):
        print(f"{pack}: files intact, but NOT authentic: the signature is missing")
        return EXIT_UNSIGNED
    if sig.status != "valid":
        what = "unsigned" if sig.status == "missing" else "signed by an unverified key"
        print(f"{pack}: intact (evidence digest {v.evidence_digest}); authenticity NOT established: {what} "
              "(pass --public-key or --trust-cert from the pack's owner)")
        return EXIT_UNVERIFIED
    print(f"{pack}: intact and authentic (evidence digest {v.evidence_digest})")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from evidence import diff

    # Both packs verify first (exit 1 naming what changed): a comparison with a tampered pack is no evidence.
    changes = diff.compare(diff.read_pack(args.old, "OLD pack"), diff.read_pack(args.new, "NEW pack"))
    if args.format == "json":
        sys.stdout.write(changes.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(diff.text(changes))
    return EXIT_OK


def _print_signed(pack: Path) -> None:
    """After --sign-key: say that the pack was signed, and with which key (from the manifest just written)."""
    with contextlib.suppress(OSError, orjson.JSONDecodeError, AttributeError):
        signer = orjson.loads((pack / "manifest.json").read_bytes()).get("signer")
        if signer:
            print(f"  signed manifest.sig and report.pdf ({signer['algorithm']}, key id {signer['key_id']}); "
                  f"verify with: auditpack verify {pack} --public-key <the key's .pub>")


def _keys(args: argparse.Namespace) -> int:
    from evidence import signing

    if args.keys_command != "generate":
        raise AuditpackError("keys needs an action", "auditpack keys generate --out DIR")
    passphrase = None
    if args.passphrase_env is not None:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise InputError(f"--passphrase-env {args.passphrase_env}: the variable is not set or empty",
                             f"export {args.passphrase_env} first (read it with `read -s`, never type it on the "
                             "command line)")
        passphrase = value.encode()
    if args.kubernetes_secret is not None:
        return _key_secret(args, passphrase)
    key, pub, crt = signing.generate(args.out, args.name, args.algorithm, passphrase=passphrase)
    print(f"wrote {key} (private{', encrypted' if passphrase else ''}: keep it secret, never in a pack), "
          f"{pub} (give to auditors), {crt} (PDF signatures)")
    return EXIT_OK


def _key_secret(args: argparse.Namespace, passphrase: bytes | None) -> int:
    """`keys generate --kubernetes-secret NAME`: the Secret manifest on stdout, the public files in --out."""
    import base64

    import yaml

    from evidence import signing

    pub, crt = args.out / "auditpack-signing.pub", args.out / "auditpack-signing.crt"
    for path in (pub, crt):
        if path.exists():
            raise InputError(f"{path} already exists; auditpack never overwrites signing material",
                             "choose another --out directory")
    key_pem, pub_pem, crt_pem = signing.new_key_material(args.name, args.algorithm, passphrase=passphrase)
    args.out.mkdir(parents=True, exist_ok=True)
    pub.write_bytes(pub_pem)
    crt.write_bytes(crt_pem)
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": args.kubernetes_secret, "namespace": args.namespace,
                           "labels": {"app.kubernetes.io/name": "auditpack"}},
              "data": {"auditpack-signing.key": base64.b64encode(key_pem).decode(),
                       "auditpack-signing.crt": base64.b64encode(crt_pem).decode()}}
    sys.stdout.write(yaml.safe_dump(secret, sort_keys=False))
    sys.stderr.write(f"printed Secret {args.namespace}/{args.kubernetes_secret} (private key: pipe it to kubectl apply "
                     f"-f -, do not save it); wrote {pub} (give to auditors) and {crt}; key id "
                     f"{signing.key_id(signing.load_public_key(pub))}\n")
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
    pack = getattr(args, "pack", None)
    if pack is not None and not fw:
        raise AuditpackError("--pack needs --framework", "for example: auditpack controls list --framework pci-dss "
                             "--pack PACK")
    results = _pack_results(pack) if pack is not None else None
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
    if fw:
        _requirement_rows(cat, fw, pack, results)
    return EXIT_OK


def _pack_results(pack: Path) -> Any:
    from evidence.evaluate import Results

    path = pack / "results.json"
    try:
        return Results.model_validate_json(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        raise AuditpackError(f"{path} does not exist", "pass a pack directory written by `auditpack collect`") \
            from None
    except ValueError as exc:
        raise AuditpackError(f"{path}: not a results file of this auditpack version ({str(exc).splitlines()[0]})",
                             "run `auditpack verify` on the pack") from None


def _requirement_rows(cat: Any, fw_id: str, pack: Path | None, results: Any) -> None:
    """`controls list --framework X`: one row per requirement with its status (issue 12), from a pack's
    results.json, or else the best the catalogue allows (pass only for `full` with nothing manual left)."""
    from evidence.evaluate import REQUIREMENT_LABELS, requirement_status
    from evidence.render.data import REQUIREMENT_ORDER

    fw = cat.framework(fw_id)
    mapped: dict[str, list[str]] = {}
    for c in cat.controls:
        for rid in c.spec.requirements.get(fw_id, []):
            mapped.setdefault(rid, []).append(c.id)
    if results is not None:
        got = {r.id: (r.status, r.controls) for r in results.requirements if r.framework == fw_id}
        heading = f"status in {pack}"
    else:
        # The best outcome: every control passing (a requirement no control covers stays manual).
        got = {r.id: (requirement_status(r.automatable, r.manual_evidence, ["pass"] * len(mapped.get(r.id, []))),
                      mapped.get(r.id, [])) for r in fw.requirements}
        heading = "best status the catalogue allows (--pack PACK for a pack's)"
    print(f"\n{fw.title} {fw.version}: {len(fw.requirements)} requirements, {heading}")
    width = max((len(r.id) for r in fw.requirements), default=6)
    counts: dict[str, int] = {}
    for r in fw.requirements:
        status, controls = got.get(r.id, ("manual", []))
        counts[status] = counts.get(status, 0) + 1
        print(f"{r.id:<{width}}  {status:<14}  {r.automatable:<7}  {r.title}")
        print(f"{'':<{width}}  {REQUIREMENT_LABELS.get(status, status)}"
              + (f"; controls: {', '.join(controls)}" if controls else ""))
    print(", ".join(f"{counts[s]} {s}" for s in REQUIREMENT_ORDER if counts.get(s)))


if __name__ == "__main__":
    sys.exit(main())
