"""The object-storage commands of the CLI: `collect --upload`, `upload`, `list` and `verify s3://...`."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from evidence.errors import EXIT_FAILURES, EXIT_OK

EPILOG = """\
Credentials come from the usual places (AWS_* environment variables, a profile, workload identity / IRSA),
never from a flag; another S3-compatible endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL.
Each pack goes to <URL>/<cluster>/<timestamp>/, every file first, then manifest.json and manifest.sig: an
upload cut short has no manifest, is not listed as a pack, and `auditpack upload` resumes it. With S3 Object
Lock every object is retained (--retain, default 7y; COMPLIANCE mode: nobody can shorten it). A bucket without
Object Lock is refused unless --allow-mutable is given.
"""


def upload_args(p: argparse.ArgumentParser, with_url: bool = True) -> None:
    g = p.add_argument_group("object storage (S3, S3 Object Lock)")
    if with_url:
        g.add_argument("--upload", metavar="s3://BUCKET/PREFIX",
                       help="after writing the pack, upload it there and verify the uploaded copy")
    g.add_argument("--retain", default="7y", metavar="PERIOD",
                   help="Object Lock retention of every object: 400d, 18m, 7y (default 7y)")
    g.add_argument("--retain-mode", choices=["COMPLIANCE", "GOVERNANCE"], default="COMPLIANCE",
                   help="COMPLIANCE (default): no one can delete or shorten; GOVERNANCE: privileged users can")
    g.add_argument("--allow-mutable", action="store_true",
                   help="accept a bucket without Object Lock (the report and listings say the copy is mutable)")


def add_commands(sub: Any) -> None:
    u = sub.add_parser("upload", help="upload a pack to S3 (Object Lock), or resume an interrupted upload",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack upload packs/prod/20261001T030000Z s3://acme-evidence/auditpack
  auditpack upload packs/prod/20261001T030000Z s3://acme-evidence/auditpack --retain 10y

""" + EPILOG)
    u.add_argument("pack", type=Path, metavar="PACK")
    u.add_argument("url", metavar="s3://BUCKET/PREFIX")
    u.add_argument("--json", action="store_true", help="print the result as one JSON line")
    upload_args(u, with_url=False)

    ls = sub.add_parser("list", help="list the packs kept in S3, per cluster, with digest, signature and retention",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
examples:
  auditpack list s3://acme-evidence/auditpack
  auditpack verify s3://acme-evidence/auditpack/prod/20261001T030000Z/ --public-key auditpack-signing.pub

""" + EPILOG)
    ls.add_argument("url", metavar="s3://BUCKET/PREFIX")
    ls.add_argument("--json", action="store_true", help="one JSON object per pack")


def options(args: argparse.Namespace) -> Any:
    """storage.UploadOptions from `collect --upload ...`, or None."""
    if getattr(args, "upload", None) is None:
        return None
    from evidence.storage import UploadOptions

    return UploadOptions(args.upload, args.retain, args.retain_mode, args.allow_mutable)


def run_upload(args: argparse.Namespace) -> int:
    from evidence import storage

    result = storage.upload(args.pack, args.url, args.retain, args.retain_mode, args.allow_mutable)
    if args.json:
        sys.stdout.write(orjson.dumps({"pack": str(args.pack), "uploaded": result.url, "objects": result.objects,
                                       "sent": result.uploaded, "bytes": result.bytes,
                                       "seconds": round(result.seconds, 3), "object_lock": result.lock.enabled,
                                       "retain_until": result.retain_until.isoformat() if result.retain_until
                                       else None}).decode() + "\n")
        return EXIT_OK
    resumed = f" ({result.objects - result.uploaded} were already there: resumed)" if result.uploaded < result.objects \
        else ""
    print(f"uploaded {args.pack} to {result.url}: {result.uploaded} of {result.objects} objects{resumed}, "
          f"{result.bytes:,} bytes in {result.seconds:.1f} s")
    if result.retain_until is not None:
        print(f"  retained ({args.retain_mode}) until {result.retain_until.astimezone(UTC).date().isoformat()}")
    else:
        print(f"  warning: {result.lock.describe()}")
    print("  the uploaded copy was verified against the manifest")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from evidence import storage

    listing = storage.list_packs(args.url)
    if args.json:
        for p in listing.packs:
            sys.stdout.write(orjson.dumps({
                "cluster": p.cluster, "timestamp": p.timestamp, "url": p.url, "evidence_digest": p.evidence_digest,
                "signed": p.signed, "retention_mode": p.mode,
                "retain_until": p.retain_until.isoformat() if p.retain_until else None}).decode() + "\n")
        return EXIT_OK
    print(f"{args.url}: {listing.lock.describe()}")
    if not listing.packs:
        print("  no packs")
    cluster = None
    for p in listing.packs:
        if p.cluster != cluster:
            cluster = p.cluster
            print(f"  {cluster}")
        kept = (f"{p.mode} until {p.retain_until.astimezone(UTC).date().isoformat()}" if p.mode and p.retain_until
                else "no retention")
        sig = "signed (verify with the owner's public key)" if p.signed else "unsigned"
        print(f"    {p.timestamp}  digest {(p.evidence_digest or '?')[:16]}  {sig}  {kept}")
    for url in listing.incomplete:
        print(f"  incomplete upload (no manifest.json, not a pack): {url}  resume: auditpack upload PACK {args.url}")
    return EXIT_OK


def run_verify(url: str, local_verify: Callable[[Path], int]) -> int:
    """Download the pack, run the same verification as for a directory, then report each object's retention."""
    from evidence import storage

    tmp = Path(tempfile.mkdtemp(prefix="auditpack-verify-"))
    try:
        check = storage.download(url, tmp / "pack")
        print(f"{url}: {check.lock.describe() if check.lock else ''}")
        if not check.intact:
            print(f"NOT A COMPLETE PACK: {check.problem}")
            return EXIT_FAILURES
        code = local_verify(tmp / "pack")
        print("retention per object:")
        for line in check.retention_lines():
            print(f"  {line}")
        return code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
