"""Evidence that outlives the cluster: packs uploaded to S3-compatible object storage under Object Lock, listed,
resumed and verified where they are kept.

Layout: s3://<bucket>/<prefix>/<cluster>/<timestamp>/<the pack's files>. Every listed file goes first and
`manifest.json`, then `manifest.sig`, last: an interrupted upload has no manifest, so it is recognisably incomplete
and never listed as a pack; `upload` resumes it. With Object Lock (COMPLIANCE or GOVERNANCE) each object carries its
own retain-until date (PCI DSS 10.5.1 asks for a year of audit history; HSLF-FS 2016:40 4 kap. for five years of
logs), so nobody with the cluster's credentials, or the bucket's, can delete or change last year's evidence.

Credentials come from boto3's usual chain (environment, web identity / IRSA, a profile, instance metadata), never
from a flag; an endpoint other than AWS comes from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, as boto3 reads them.
Nothing here prints or records a credential: errors carry the S3 error code and the bucket/key only.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from evidence.errors import EXIT_INCOMPLETE, InputError, PackError
from evidence.pack import MANIFEST, _crash_point, read_manifest, unsafe_path, verify

SIGNATURE = "manifest.sig"
SCHEME = "s3://"
Mode = Literal["COMPLIANCE", "GOVERNANCE"]
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PACK_NAME = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")
_RETAIN = re.compile(r"^(\d{1,3})([dmy])$")
METADATA_SHA256 = "sha256"  # x-amz-meta-sha256: the manifest's hash of the file, for resume and listings


class StorageError(InputError):
    """Object storage refused or failed an operation (bucket missing, access denied, no credentials)."""

    code = "AP110"


@dataclass(frozen=True)
class Location:
    """s3://bucket/prefix, validated: a bucket name S3 accepts and a prefix of plain path components."""

    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's root

    @classmethod
    def parse(cls, url: str) -> Location:
        if not url.startswith(SCHEME):
            raise InputError(f"{url!r} is not an s3:// URL", "write s3://BUCKET/PREFIX, e.g. s3://acme-evidence/auditpack")
        bucket, _, prefix = url[len(SCHEME):].partition("/")
        if not _BUCKET.match(bucket):
            raise InputError(f"{url!r}: {bucket!r} is not a valid bucket name",
                             "bucket names are 3-63 lowercase letters, digits, dots and hyphens")
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise InputError(f"{url!r}: the prefix may not contain '.' or '..'", "give a plain prefix such as evidence/q4")
        return cls(bucket, "/".join(parts))

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def url(self, *parts: str) -> str:
        key = self.key(*parts)
        return f"{SCHEME}{self.bucket}/{key}" + ("/" if parts and not parts[-1].count(".") else "")


def is_s3(value: str | Path | None) -> bool:
    return value is not None and str(value).startswith(SCHEME)


def parse_retention(value: str) -> tuple[int, str]:
    """'7y', '18m', '400d' -> (7, 'y'); a retention the user can read in the listing."""
    m = _RETAIN.match(value.strip())
    if not m or int(m.group(1)) == 0:
        raise InputError(f"--retain {value!r} is not a retention period",
                         "write a number and a unit: 400d, 18m or 7y (days, months, years)")
    return int(m.group(1)), m.group(2)


def retain_until(value: str, now: datetime) -> datetime:
    n, unit = parse_retention(value)
    if unit == "d":
        return now + timedelta(days=n)
    months = n * (12 if unit == "y" else 1)
    year, month = divmod(now.month - 1 + months, 12)
    target_year, target_month = now.year + year, month + 1
    day = now.day
    while True:  # 29 February + 1y -> 28 February: never shorter than asked by more than the month's end
        try:
            return now.replace(year=target_year, month=target_month, day=day)
        except ValueError:
            day -= 1


def client() -> Any:
    """A boto3 S3 client from the standard credential chain (imported here: only storage needs boto3)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - boto3 is a dependency; a broken install says so plainly
        raise InputError("object storage needs boto3, which is not installed",
                         "pip install 'auditpack[s3]' (the container image has it)") from None
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                 request_checksum_calculation="when_supported")
    return boto3.client("s3", config=cfg)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _fail(exc: BaseException, what: str) -> StorageError:
    """One line naming the operation, the bucket/key and S3's error code, never the credentials."""
    code = _code(exc)
    hints = {
        "NoSuchBucket": "create the bucket (with Object Lock enabled) or correct the URL",
        "AccessDenied": "the identity needs s3:PutObject, s3:PutObjectRetention, s3:GetObject*, s3:ListBucket and "
                        "s3:GetBucketObjectLockConfiguration on the prefix (deploy/overlays/example/iam-policy.json)",
        "NoCredentialsError": "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use workload identity (IRSA)",
        "InvalidAccessKeyId": "the access key is unknown to this endpoint: check AWS_PROFILE or the environment",
        "SignatureDoesNotMatch": "the secret key does not match the access key",
        "EndpointConnectionError": "check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and the network",
    }
    return StorageError(f"object storage: {what} failed: {code}", hints.get(code, "see the S3 error code above"))


def _client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


@dataclass
class LockState:
    enabled: bool
    default_mode: str | None = None
    default_retention: str | None = None

    def describe(self) -> str:
        if not self.enabled:
            return "no Object Lock: objects can be deleted or overwritten by anyone with write access"
        default = f"; bucket default {self.default_mode} {self.default_retention}" if self.default_mode else ""
        return f"Object Lock enabled{default}"


def bucket_lock(s3: Any, loc: Location) -> LockState:
    try:
        cfg = s3.get_object_lock_configuration(Bucket=loc.bucket).get("ObjectLockConfiguration", {})
    except _client_errors() as exc:
        if _code(exc) in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
            return LockState(False)
        raise _fail(exc, f"reading the Object Lock configuration of bucket {loc.bucket}") from None
    rule = (cfg.get("Rule") or {}).get("DefaultRetention") or {}
    period = f"{rule['Years']}y" if rule.get("Years") else (f"{rule['Days']}d" if rule.get("Days") else None)
    return LockState(cfg.get("ObjectLockEnabled") == "Enabled", rule.get("Mode"), period)


def require_lock(lock: LockState, loc: Location, allow_mutable: bool) -> None:
    if not lock.enabled and not allow_mutable:
        raise StorageError(f"bucket {loc.bucket} has no Object Lock: evidence there could be deleted or changed, "
                           "so auditpack refuses to upload to it",
                           "create the bucket with Object Lock enabled (aws s3api create-bucket "
                           "--object-lock-enabled-for-bucket), or pass --allow-mutable to accept mutable evidence "
                           "(the listing and verify then say so)")


def pack_files(pack: Path) -> list[str]:
    """The pack's files in upload order: every listed file, then manifest.json, then manifest.sig (if any)."""
    manifest = read_manifest(pack)
    listed = sorted({*manifest["evidence"]["files"], *manifest.get("renders", {})})
    tail = [MANIFEST] + ([SIGNATURE] if (pack / SIGNATURE).is_file() else [])
    return listed + tail


def destination(pack: Path, manifest: dict[str, Any]) -> tuple[str, str]:
    """(<cluster>, <timestamp>) under the prefix: the names `--out-root` uses, from the pack itself."""
    from evidence.retention import TIMESTAMP, cluster_dir

    evidence = manifest["evidence"]
    cluster = cluster_dir(str((evidence.get("cluster") or {}).get("name") or "cluster"))
    if _PACK_NAME.match(pack.name):
        return cluster, pack.name
    started = datetime.fromisoformat(str(evidence.get("started_at") or evidence.get("as_of")))
    return cluster, started.astimezone(UTC).strftime(TIMESTAMP)


@dataclass
class UploadResult:
    url: str
    objects: int
    uploaded: int  # objects sent by this call (fewer than `objects` when an interrupted upload was resumed)
    bytes: int
    seconds: float
    lock: LockState
    retain_until: datetime | None


def upload(pack: Path, url: str, retain: str = "7y", mode: Mode = "COMPLIANCE", allow_mutable: bool = False,
           s3: Any = None, progress: Callable[[str], None] | None = None) -> UploadResult:
    """Upload an intact pack (files, then the manifest, then its signature), then verify the copy in the bucket."""
    started = time.monotonic()
    loc = Location.parse(url)
    parse_retention(retain)
    check = verify(pack)
    if not check.intact:
        raise PackError(f"{pack} is not intact ({'; '.join(check.problems())}); only an intact pack is uploaded",
                        "`auditpack verify` lists the differences")
    s3 = s3 or client()
    lock = bucket_lock(s3, loc)
    require_lock(lock, loc, allow_mutable)
    manifest = read_manifest(pack)
    cluster, stamp = destination(pack, manifest)
    hashes = {**{k: v["sha256"] for k, v in manifest["evidence"]["files"].items()},
              **{k: v["sha256"] for k, v in manifest.get("renders", {}).items()}}
    until = retain_until(retain, datetime.now(UTC)) if lock.enabled else None
    existing = _existing(s3, loc, cluster, stamp)
    if MANIFEST in existing:
        if existing[MANIFEST] == hashlib.sha256((pack / MANIFEST).read_bytes()).hexdigest():
            raise StorageError(f"{loc.url(cluster, stamp)} already holds this pack", "nothing to upload; "
                               f"`auditpack verify {loc.url(cluster, stamp)}` checks it")
        raise StorageError(f"{loc.url(cluster, stamp)} already holds another complete pack; it is never overwritten",
                           "upload under another prefix")
    sent = size = 0
    files = pack_files(pack)
    for rel in files:
        path = pack / rel
        digest = hashes.get(rel) or hashlib.sha256(path.read_bytes()).hexdigest()
        if existing.get(rel) == digest:
            continue  # resumed: this object already arrived whole (S3 writes are all or nothing)
        if rel in existing:
            raise StorageError(f"{loc.url(cluster, stamp, rel)} exists with other content: another pack's upload",
                               "upload under another prefix; objects under retention are never overwritten")
        args: dict[str, Any] = {"Bucket": loc.bucket, "Key": loc.key(cluster, stamp, rel), "Body": path.read_bytes(),
                                "Metadata": {METADATA_SHA256: digest}, "ChecksumAlgorithm": "SHA256"}
        if until is not None:
            args.update(ObjectLockMode=mode, ObjectLockRetainUntilDate=until)
        try:
            s3.put_object(**args)
        except _client_errors() as exc:
            raise _fail(exc, f"uploading {loc.url(cluster, stamp, rel)}") from None
        sent += 1
        size += path.stat().st_size
        _crash_point(f"upload:{sent}")  # tests kill the upload here to prove it is recognisably incomplete
        if progress is not None:
            progress(rel)
    target = loc.url(cluster, stamp)
    remote = verify_remote(target, s3=s3)
    if not remote.intact:
        raise StorageError(f"the uploaded copy at {target} does not verify: {remote.problem}",
                           f"run `auditpack verify {target}`; the local pack {pack} is kept")
    return UploadResult(target, len(files), sent, size, time.monotonic() - started, lock, until)


def _existing(s3: Any, loc: Location, cluster: str, stamp: str) -> dict[str, str | None]:
    """rel path -> the sha256 recorded on the object (None when the object carries none)."""
    out: dict[str, str | None] = {}
    base = loc.key(cluster, stamp) + "/"
    for obj in _list(s3, loc.bucket, base):
        rel = obj["Key"][len(base):]
        out[rel] = _head(s3, loc.bucket, obj["Key"]).get("Metadata", {}).get(METADATA_SHA256)
    return out


def _list(s3: Any, bucket: str, prefix: str, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            if delimiter:
                yield from ({"Prefix": p["Prefix"]} for p in page.get("CommonPrefixes", []))
            yield from page.get("Contents", [])
    except _client_errors() as exc:
        raise _fail(exc, f"listing s3://{bucket}/{prefix}") from None


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except _client_errors() as exc:
        raise _fail(exc, f"reading s3://{bucket}/{key}") from None


@dataclass
class ObjectState:
    rel: str
    bytes: int
    mode: str | None
    retain_until: datetime | None
    versions: int  # >1: the key was written again after the upload (the locked original is still kept)


@dataclass
class RemoteCheck:
    url: str
    local: Path | None = None  # the downloaded copy (a temporary directory the caller removes)
    objects: list[ObjectState] = field(default_factory=list)
    problem: str | None = None
    complete: bool = True
    lock: LockState | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def retention_lines(self) -> list[str]:
        out = []
        for o in self.objects:
            kept = (f"{o.mode} until {o.retain_until.astimezone(UTC).date().isoformat()}"
                    if o.mode and o.retain_until else "no retention (can be deleted)")
            again = f"; written {o.versions} times, the first version is the evidence" if o.versions > 1 else ""
            out.append(f"{o.rel}: {kept}{again}")
        return out


def download(url: str, dest: Path, s3: Any = None) -> RemoteCheck:
    """Fetch a pack's objects into dest (a new directory), with their retention; refuse unsafe keys."""
    loc = Location.parse(url)
    s3 = s3 or client()
    check = RemoteCheck(url, dest, lock=bucket_lock(s3, loc))
    base = loc.key() + "/"
    keys = [o for o in _list(s3, loc.bucket, base)]
    rels = [o["Key"][len(base):] for o in keys]
    if MANIFEST not in rels:
        check.complete = False
        check.problem = ("no manifest.json: an interrupted or incomplete upload, not a pack" if rels
                         else "no objects at this location")
        return check
    versions = _versions(s3, loc.bucket, base)
    for obj, rel in zip(keys, rels, strict=True):
        reason = None if rel in (MANIFEST, SIGNATURE) else unsafe_path(rel)
        if reason is not None:
            check.problem = f"object {rel!r}: {reason}"
            return check
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The current version is what anyone fetching the pack gets, so that is what is verified; a key
            # written more than once is reported (under Object Lock the first version is still retained).
            first = versions.get(obj["Key"], [])
            body = s3.get_object(Bucket=loc.bucket, Key=obj["Key"])["Body"].read()
            head = _head(s3, loc.bucket, obj["Key"])
        except _client_errors() as exc:
            raise _fail(exc, f"reading {loc.url(rel)}") from None
        target.write_bytes(body)
        until = head.get("ObjectLockRetainUntilDate")
        check.objects.append(ObjectState(rel, len(body), head.get("ObjectLockMode"), until, max(1, len(first))))
    return check


def _versions(s3: Any, bucket: str, prefix: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                out.setdefault(v["Key"], []).append(v["VersionId"])
    except _client_errors() as exc:
        if _code(exc) in ("NotImplemented", "AccessDenied"):
            return {}  # versions unreadable: counts stay 1, the hashes below still decide integrity
        raise _fail(exc, f"listing versions under s3://{bucket}/{prefix}") from None
    return out


def verify_remote(url: str, s3: Any = None) -> RemoteCheck:
    """Download into a temporary directory and verify the hashes against the manifest (integrity only)."""
    tmp = Path(tempfile.mkdtemp(prefix="auditpack-verify-"))
    try:
        check = download(url, tmp / "pack", s3)
        if check.intact:
            local = verify(tmp / "pack")
            if not local.intact:
                check.problem = "; ".join(local.problems()) or "the evidence digest does not match"
        return check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class PackListing:
    cluster: str
    timestamp: str
    url: str
    evidence_digest: str | None
    signed: bool
    mode: str | None
    retain_until: datetime | None


@dataclass
class Listing:
    packs: list[PackListing]
    incomplete: list[str]  # uploads without a manifest: resume them with `auditpack upload`
    lock: LockState


def list_packs(url: str, s3: Any = None) -> Listing:
    loc = Location.parse(url)
    s3 = s3 or client()
    lock = bucket_lock(s3, loc)
    base = loc.key() + "/" if loc.prefix else ""
    found: list[PackListing] = []
    incomplete: list[str] = []
    for c in _list(s3, loc.bucket, base, delimiter="/"):
        cluster = c["Prefix"][len(base):].strip("/")
        for p in _list(s3, loc.bucket, c["Prefix"], delimiter="/"):
            stamp = p["Prefix"][len(c["Prefix"]):].strip("/")
            names = {o["Key"][len(p["Prefix"]):] for o in _list(s3, loc.bucket, p["Prefix"])}
            if MANIFEST not in names:
                incomplete.append(loc.url(cluster, stamp))
                continue
            key = p["Prefix"] + MANIFEST
            try:
                body = s3.get_object(Bucket=loc.bucket, Key=key)["Body"].read()
                manifest = orjson.loads(body)
            except _client_errors() as exc:
                raise _fail(exc, f"reading s3://{loc.bucket}/{key}") from None
            except orjson.JSONDecodeError:
                manifest = {}
            head = _head(s3, loc.bucket, key)
            found.append(PackListing(cluster, stamp, loc.url(cluster, stamp), manifest.get("evidence_digest"),
                                     SIGNATURE in names, head.get("ObjectLockMode"),
                                     head.get("ObjectLockRetainUntilDate")))
    found.sort(key=lambda p: (p.cluster, p.timestamp))
    return Listing(found, sorted(incomplete), lock)


def newest(url: str, cluster: str, s3: Any = None, before: str | None = None) -> str | None:
    """The newest complete pack of a cluster in the bucket (for `collect --previous auto --upload`)."""
    from evidence.retention import cluster_dir

    packs = [p for p in list_packs(url, s3).packs if p.cluster == cluster_dir(cluster)
             and (before is None or p.timestamp < before)]
    return packs[-1].url if packs else None


def today() -> date:
    return datetime.now(UTC).date()


class UploadFailed(StorageError):
    """The pack was written locally but could not be uploaded or did not verify in the bucket: not delivered."""

    code = "AP111"
    exit_code = EXIT_INCOMPLETE  # like an incomplete collection: the evidence exists, but not where it must be kept


@dataclass
class UploadOptions:
    """`collect --upload URL --retain 7y --retain-mode COMPLIANCE [--allow-mutable]`."""

    url: str
    retain: str = "7y"
    mode: Mode = "COMPLIANCE"
    allow_mutable: bool = False
    lock: LockState | None = None

    def __post_init__(self) -> None:
        Location.parse(self.url)
        parse_retention(self.retain)

    def preflight(self) -> dict[str, Any]:
        """Check the bucket before anything is collected; return what the pack records about its storage."""
        loc = Location.parse(self.url)
        self.lock = bucket_lock(client(), loc)
        require_lock(self.lock, loc, self.allow_mutable)
        return {"target": self.url, "object_lock": self.lock.enabled,
                "retention": f"{self.mode} {self.retain}" if self.lock.enabled else None,
                "statement": (f"uploaded to {self.url} under S3 Object Lock, {self.mode} mode, retained {self.retain}"
                              if self.lock.enabled else
                              f"uploaded to {self.url}, a bucket WITHOUT Object Lock (--allow-mutable): the copy "
                              "there can be deleted or replaced; its integrity rests on the manifest and signature")}

    def ship(self, pack: Path, progress: Callable[[dict[str, Any]], None] | None = None) -> UploadResult:
        emit = (lambda rel: progress({"event": "uploading", "file": rel})) if progress is not None else None
        try:
            return upload(pack, self.url, self.retain, self.mode, self.allow_mutable, progress=emit)
        except StorageError as exc:
            raise UploadFailed(f"the pack {pack} was written but not delivered: {exc.message}",
                               f"resume with `auditpack upload {pack} {self.url}`; --keep never removes a pack "
                               "that was not uploaded") from None


def upload_summary(directory: Path, options: UploadOptions, s3: Any = None) -> str:
    """A fleet summary (not a pack: no manifest) to <prefix>/fleet/<timestamp>/, each file with its retention
    and its SHA-256 in the object's metadata; each cluster's pack is uploaded by its own run."""
    loc = Location.parse(options.url)
    s3 = s3 or client()
    lock = bucket_lock(s3, loc)
    require_lock(lock, loc, options.allow_mutable)
    until = retain_until(options.retain, datetime.now(UTC)) if lock.enabled else None
    for path in sorted(p for p in directory.iterdir() if p.is_file() and not p.is_symlink()):
        body = path.read_bytes()
        args: dict[str, Any] = {"Bucket": loc.bucket, "Key": loc.key("fleet", directory.name, path.name), "Body": body,
                                "Metadata": {METADATA_SHA256: hashlib.sha256(body).hexdigest()},
                                "ChecksumAlgorithm": "SHA256"}
        if until is not None:
            args.update(ObjectLockMode=options.mode, ObjectLockRetainUntilDate=until)
        try:
            s3.put_object(**args)
        except _client_errors() as exc:
            raise UploadFailed(f"the fleet summary {directory} was written but not delivered: "
                               f"{_fail(exc, 'uploading ' + path.name).message}", "rerun the fleet") from None
    return loc.url("fleet", directory.name)
