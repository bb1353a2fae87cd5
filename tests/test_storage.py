"""Object storage (issue 17): upload, resume, list, verify s3:// and --previous auto against a running S3 server.

The server is moto's standalone server (a real HTTP S3 endpoint with Object Lock) started by .ci/run, or by the
fixture below when run alone; boto3 talks to it over HTTP exactly as it would to AWS (no in-process patching).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import orjson
import pytest

from evidence import retention, storage
from tests.conftest import ATTESTATIONS, ROOT, SAMPLE, SCOPE

# Distinctive fake credentials: they must never appear in any output or pack file.
ACCESS_KEY = "AKIAAUDITPACKCANARY7"
SECRET_KEY = "s3cr3t-canary-" + "Zq9xW2" * 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    existing = os.environ.get("AUDITPACK_TEST_S3_ENDPOINT")
    if existing:
        yield existing
        return
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto S3 server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
              "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return {**os.environ, **values}


def _s3() -> object:
    return boto3.client("s3")


def _bucket(locked: bool) -> str:
    name = f"{'locked' if locked else 'plain'}-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked) if locked else s3.create_bucket(Bucket=name)
    return name


def _cli(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evidence.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600, check=False)


def _files(pack: Path) -> list[str]:
    return sorted(p.relative_to(pack).as_posix() for p in pack.rglob("*") if p.is_file())


def test_upload_retains_every_object_and_locked_objects_survive_delete_and_overwrite(
        env: dict[str, str], demo_pack: Path) -> None:
    bucket = _bucket(locked=True)
    r = _cli(env, "upload", demo_pack, f"s3://{bucket}/evidence", "--retain", "400d", "--json")
    assert r.returncode == 0, r.stderr
    line = orjson.loads(r.stdout)
    url = line["uploaded"]
    assert url.startswith(f"s3://{bucket}/evidence/") and line["object_lock"] is True
    assert line["objects"] == len(_files(demo_pack)) == line["sent"]
    s3 = boto3.client("s3")
    prefix = url[len(f"s3://{bucket}/"):]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert sorted(k[len(prefix):] for k in keys) == _files(demo_pack)
    for key in keys:  # every object carries its own retention
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"].year >= 2026
    results_key = prefix + "results.json"
    original = s3.get_object(Bucket=bucket, Key=results_key)
    version = original["VersionId"]
    body = original["Body"].read()
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as denied:
        s3.delete_object(Bucket=bucket, Key=results_key, VersionId=version)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_object(Bucket=bucket, Key=results_key, Body=b'{"tampered": true}')  # a new version beside the locked one
    assert s3.get_object(Bucket=bucket, Key=results_key, VersionId=version)["Body"].read() == body
    # What anyone fetching gets now is the new version: verify says the pack changed and the key was rewritten.
    v = _cli(env, "verify", url)
    assert v.returncode == 1, v.stdout + v.stderr
    assert "changed: results.json" in v.stdout
    assert "results.json: COMPLIANCE until" in v.stdout and "written 2 times" in v.stdout


def test_interrupted_upload_is_not_a_pack_and_resumes(env: dict[str, str], demo_pack: Path) -> None:
    bucket = _bucket(locked=True)
    target = f"s3://{bucket}/q"
    killed = _cli({**env, "AUDITPACK_TEST_CRASH_AT": "upload:3"}, "upload", demo_pack, target)
    assert killed.returncode == -9, killed.stderr
    listed = _cli(env, "list", target)
    assert listed.returncode == 0, listed.stderr
    assert "incomplete upload (no manifest.json, not a pack)" in listed.stdout
    assert "digest" not in listed.stdout  # no pack row
    assert _cli(env, "list", target, "--json").stdout == ""
    partial = storage.list_packs(target).incomplete[0]
    v = _cli(env, "verify", partial)
    assert v.returncode == 1 and "NOT A COMPLETE PACK" in v.stdout
    resumed = _cli(env, "upload", demo_pack, target, "--json")
    assert resumed.returncode == 0, resumed.stderr
    line = orjson.loads(resumed.stdout)
    assert line["sent"] == line["objects"] - 3
    listing = storage.list_packs(target)
    assert [p.url for p in listing.packs] == [line["uploaded"]] and listing.incomplete == []
    again = _cli(env, "upload", demo_pack, target)
    assert again.returncode == 2 and "already holds this pack" in again.stderr


def test_bucket_without_object_lock_is_refused_and_tampering_there_is_detected(
        env: dict[str, str], demo_pack: Path) -> None:
    bucket = _bucket(locked=False)
    refused = _cli(env, "upload", demo_pack, f"s3://{bucket}/p")
    assert refused.returncode == 2
    assert f"bucket {bucket} has no Object Lock" in refused.stderr and "--allow-mutable" in refused.stderr
    assert "Traceback" not in refused.stderr
    ok = _cli(env, "upload", demo_pack, f"s3://{bucket}/p", "--allow-mutable", "--json")
    assert ok.returncode == 0, ok.stderr
    url = orjson.loads(ok.stdout)["uploaded"]
    clean = _cli(env, "verify", url)
    assert "no Object Lock" in clean.stdout and "no retention (can be deleted)" in clean.stdout
    assert clean.returncode == 7  # intact; unsigned: authenticity not established
    s3 = boto3.client("s3")
    key = url[len(f"s3://{bucket}/"):] + "facts.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b"[]")
    tampered = _cli(env, "verify", url)
    assert tampered.returncode == 1 and "changed: facts.json" in tampered.stdout


def test_collect_upload_previous_auto_from_bucket_and_no_credentials_leak(
        env: dict[str, str], tmp_path: Path) -> None:
    bucket = _bucket(locked=True)
    target = f"s3://{bucket}/auditpack"
    root = tmp_path / "packs"
    root.mkdir()
    keys = tmp_path / "keys"
    assert _cli(env, "keys", "generate", "--out", keys).returncode == 0
    common = ["collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--attestations", ATTESTATIONS, "--out-root", root,
              "--previous", "auto", "--keep", "1", "--upload", target, "--json", "--fail-on", "none",
              "--sign-key", keys / "auditpack-signing.key", "--report", "summary"]
    first = _cli(env, *common)
    assert first.returncode == 0, first.stderr
    one = orjson.loads(first.stdout.splitlines()[-1])
    assert one["uploaded"].startswith(target + "/") and one["previous"] is None
    time.sleep(1.1)  # a new timestamp directory
    second = _cli(env, *common)
    assert second.returncode == 0, second.stderr
    two = orjson.loads(second.stdout.splitlines()[-1])
    assert two["previous"] == one["uploaded"]  # found in the bucket, not in the local cache
    assert two["pruned"] and Path(two["pruned"][0]).name == Path(one["pack"]).name  # uploaded, so prunable
    pack = Path(two["pack"])
    assert (pack / "changes.json").is_file()
    manifest = orjson.loads((pack / "manifest.json").read_bytes())
    assert manifest["evidence"]["storage"]["object_lock"] is True
    listed = _cli(env, "list", target)
    assert listed.stdout.count("signed (verify with the owner's public key)") == 2, listed.stdout
    v = _cli(env, "verify", two["uploaded"], "--public-key", keys / "auditpack-signing.pub")
    assert v.returncode == 0, v.stdout + v.stderr
    everything = first.stdout + first.stderr + second.stdout + second.stderr + listed.stdout + v.stdout + v.stderr
    blobs = [everything.encode()] + [p.read_bytes() for p in pack.rglob("*") if p.is_file()]
    for blob in blobs:
        assert ACCESS_KEY.encode() not in blob and SECRET_KEY.encode() not in blob


def test_keep_never_prunes_a_pack_that_was_not_uploaded(tmp_path: Path) -> None:
    base = tmp_path / retention.cluster_dir("prod")
    for name in ("20260101T030000Z", "20260401T030000Z", "20260701T030000Z"):
        (base / name).mkdir(parents=True)
        (base / name / "manifest.json").write_text("{}")
    retention.record_upload(base / "20260401T030000Z", "s3://b/p/prod/20260401T030000Z/")
    removed = retention.prune(tmp_path, "prod", 1, protect=base / "20260701T030000Z", uploaded_only=True)
    assert [p.name for p in removed] == ["20260401T030000Z"]
    assert (base / "20260101T030000Z").is_dir()  # never uploaded: kept


def test_bad_urls_and_retention_are_one_line_errors(env: dict[str, str], demo_pack: Path) -> None:
    for args, text in (((demo_pack, "s3://Bad_Bucket/x"), "not a valid bucket name"),
                       ((demo_pack, "s3://good-bucket/../x"), "may not contain"),
                       ((demo_pack, "s3://good-bucket/x", "--retain", "forever"), "is not a retention period"),
                       ((demo_pack, "s3://no-such-bucket-ap/x"), "NoSuchBucket")):
        r = _cli(env, "upload", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr


def test_fleet_uploads_each_cluster_pack_and_the_summary(env: dict[str, str], tmp_path: Path) -> None:
    from fakeapi import FakeAPIServer
    from test_fleet import merged_kubeconfig

    bucket = _bucket(locked=True)
    target = f"s3://{bucket}/fleet-test"
    with FakeAPIServer(SAMPLE) as a, FakeAPIServer(SAMPLE) as b:
        kc = merged_kubeconfig(tmp_path / "kubeconfig", {"prod-se": a, "prod-no": b}, dead="prod-dead")
        root = tmp_path / "packs"
        root.mkdir()
        r = _cli(env, "collect", "--kubeconfig", kc, "--contexts", "prod-se,prod-no", "--out-root", root,
                 "--scope", SCOPE, "--fail-on", "none", "--json", "--upload", target, "--report", "summary")
    assert r.returncode == 0, r.stderr
    lines = [orjson.loads(line) for line in r.stdout.splitlines()]
    per, fleet = lines[:-1], lines[-1]
    assert {ln["context"] for ln in per} == {"prod-se", "prod-no"}
    assert all(ln["uploaded"].startswith(f"{target}/{ln['context']}/") for ln in per)
    assert fleet["uploaded"].startswith(f"{target}/fleet/")
    listing = storage.list_packs(target)
    assert sorted(p.cluster for p in listing.packs) == ["prod-no", "prod-se"]  # the summary is not a pack
    s3 = boto3.client("s3")
    key = fleet["uploaded"][len(f"s3://{bucket}/"):] + "fleet-summary.json"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["Metadata"]["sha256"]
