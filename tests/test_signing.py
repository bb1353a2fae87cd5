"""Signed packs: keys, manifest.sig, verify's exit codes, and the PDF's PAdES signature checked by real verifiers."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as ax509
from conftest import SAMPLE, SCOPE
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evidence import signing

    out = tmp_path_factory.mktemp("keys")
    signing.generate(out / "ed")
    signing.generate(out / "ec", algorithm="ecdsa-p256")
    signing.generate(out / "other")
    return out


@pytest.fixture(scope="module")
def signed_pack(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import run_cli

    out = tmp_path_factory.mktemp("signed") / "pack"
    r = run_cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--out", out, "--fail-on", "none",
                "--sign-key", keys / "ed" / "auditpack-signing.key")
    assert r.code == 0, r.err
    # The summary names the report and the workbook, and which key signed (issue 15).
    from evidence import signing

    kid = signing.key_id(signing.load_public_key(keys / "ed" / "auditpack-signing.pub"))
    assert f"report: {out / 'report.pdf'}" in r.out and f"workbook: {out / 'control-matrix.xlsx'}" in r.out
    assert f"signed manifest.sig and report.pdf (Ed25519, key id {kid})" in r.out
    return out


def test_keys_generate(cli, tmp_path: Path) -> None:
    r = cli("keys", "generate", "--out", tmp_path)
    assert r.code == 0
    key = tmp_path / "auditpack-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "auditpack-signing.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = cli("keys", "generate", "--out", tmp_path)
    assert again.code == 2 and "never overwrites" in again.err


def test_verify_signed_pack(cli, signed_pack: Path, keys: Path, tmp_path: Path) -> None:
    ok = cli("verify", signed_pack, "--public-key", keys / "ed" / "auditpack-signing.pub")
    assert ok.code == 0 and "signature valid" in ok.out and "intact" in ok.out
    # The certificate works as the public key too.
    assert cli("verify", signed_pack, "--public-key", keys / "ed" / "auditpack-signing.crt").code == 0
    other = cli("verify", signed_pack, "--public-key", keys / "other" / "auditpack-signing.pub")
    assert other.code == 6 and "signature other-key" in other.out
    forged = tmp_path / "forged"
    shutil.copytree(signed_pack, forged)
    sig = json.loads((forged / "manifest.sig").read_text())
    sig["signature"] = sig["signature"][:-8] + ("A" * 8 if not sig["signature"].endswith("A" * 8) else "B" * 8)
    (forged / "manifest.sig").write_text(json.dumps(sig))
    bad = cli("verify", forged, "--public-key", keys / "ed" / "auditpack-signing.pub")
    assert bad.code == 6 and "signature invalid" in bad.out
    # A pack re-hashed after an edit, but not re-signed: the hashes agree, the signature does not.
    edited = tmp_path / "edited"
    shutil.copytree(signed_pack, edited)
    m = json.loads((edited / "manifest.json").read_text())
    m["evidence"]["cluster"]["name"] = "someone-else"
    from evidence.pack import dumps, evidence_digest

    m["evidence_digest"] = evidence_digest(m["evidence"])
    (edited / "manifest.json").write_bytes(dumps(m))
    assert cli("verify", edited, "--public-key", keys / "ed" / "auditpack-signing.pub").code == 6


def test_unsigned_pack_with_public_key_exits_5(cli, demo_pack: Path, keys: Path) -> None:
    r = cli("verify", demo_pack, "--public-key", keys / "ed" / "auditpack-signing.pub")
    assert r.code == 5 and "signature missing" in r.out
    plain = cli("verify", demo_pack)  # intact, but nothing says who made it: its own exit code, 7
    assert plain.code == 7 and "authenticity NOT established: unsigned" in plain.out


def test_signed_pack_without_trust_anchor_is_unverified(cli, signed_pack: Path, keys: Path) -> None:
    """Without a trust anchor, verify never names the (unverified) signer's key id."""
    r = cli("verify", signed_pack)
    assert r.code == 7 and "signed by an unverified key" in r.out
    from evidence import signing

    kid = signing.key_id(signing.load_public_key(keys / "ed" / "auditpack-signing.pub"))
    assert kid not in r.out
    # The manifest records the signer (covered by the signature), for the report to print the fingerprint.
    signer = json.loads((signed_pack / "manifest.json").read_text())["signer"]
    assert signer["key_id"] == kid and signer["algorithm"] == "Ed25519" and len(signer["certificate_sha256"]) == 64
    ok = cli("verify", signed_pack, "--public-key", keys / "ed" / "auditpack-signing.pub")
    assert kid in ok.out and "intact and authentic" in ok.out
    # The self-signed certificate as the trust anchor (--trust-cert) works the same way.
    by_cert = cli("verify", signed_pack, "--trust-cert", keys / "ed" / "auditpack-signing.crt")
    assert by_cert.code == 0 and "intact and authentic" in by_cert.out
    other = cli("verify", signed_pack, "--trust-cert", keys / "other" / "auditpack-signing.crt")
    assert other.code == 6 and "not issued by a trusted certificate" in other.out


def test_no_private_key_in_the_pack(signed_pack: Path, keys: Path) -> None:
    body = "".join((keys / "ed" / "auditpack-signing.key").read_text().strip().splitlines()[1:-1])
    for p in signed_pack.rglob("*"):
        if p.is_file():
            data = p.read_bytes().decode("latin-1")
            assert body not in data and "PRIVATE KEY" not in data, p


def _validate(pdf: Path, crt: Path):  # type: ignore[no-untyped-def]
    root = ax509.Certificate.load(pem.unarmor(crt.read_bytes())[2])
    with pdf.open("rb") as fh:
        reader = PdfFileReader(fh)
        assert len(reader.embedded_signatures) == 1
        return validate_pdf_signature(reader.embedded_signatures[0], ValidationContext(trust_roots=[root]))


def test_pdf_signature_validates_and_detects_changes(signed_pack: Path, keys: Path, tmp_path: Path) -> None:
    status = _validate(signed_pack / "report.pdf", keys / "ed" / "auditpack-signing.crt")
    assert status.intact and status.valid and status.trusted
    tampered = tmp_path / "report.pdf"
    data = bytearray((signed_pack / "report.pdf").read_bytes())
    i = data.find(b"demo-payments", 2000)
    data[i:i + 4] = b"evil"
    tampered.write_bytes(bytes(data))
    assert not _validate(tampered, keys / "ed" / "auditpack-signing.crt").intact


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="pdfsig (poppler-utils) not installed")
def test_ecdsa_pdf_signature_valid_in_poppler(cli, keys: Path, tmp_path: Path) -> None:
    """An ordinary PDF stack (poppler with NSS) validates the ECDSA P-256 signature."""
    out = tmp_path / "pack"
    r = cli("collect", "--snapshot", SAMPLE, "--out", out, "--fail-on", "none",
            "--sign-key", keys / "ec" / "auditpack-signing.key")
    assert r.code == 0, r.err
    result = subprocess.run(["pdfsig", str(out / "report.pdf")], capture_output=True, text=True, check=False)
    assert "Signature is Valid" in result.stdout, result.stdout


def test_key_files_and_directories_are_private(cli, tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        r = cli("keys", "generate", "--out", tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert r.code == 0, r.err
    for d in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    key = tmp_path / "a" / "b" / "auditpack-signing.key"
    key.chmod(0o644)
    world = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--sign-key", key)
    assert world.code == 2 and "readable by everyone (mode 0644)" in world.err and f"chmod 600 {key}" in world.err
    key.chmod(0o640)
    group = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--sign-key", key)
    assert group.code == 2 and "readable by its group (mode 0640)" in group.err
    assert not (tmp_path / "p").exists()


def test_encrypted_key_generate_and_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    from conftest import ROOT

    from evidence import signing
    from evidence.errors import InputError

    def run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        e = {k: v for k, v in os.environ.items() if k != signing.PASSPHRASE_ENV} | env
        return subprocess.run([sys.executable, "-m", "evidence.cli", *map(str, args)], capture_output=True,
                              text=True, cwd=ROOT, env=e, check=False)

    missing = run("keys", "generate", "--out", tmp_path / "enc", "--passphrase-env", "MY_PASS")
    assert missing.returncode == 2 and "MY_PASS: the variable is not set" in missing.stderr
    r = run("keys", "generate", "--out", tmp_path / "enc", "--passphrase-env", "MY_PASS", MY_PASS="correct horse")
    assert r.returncode == 0 and "encrypted" in r.stdout and "correct horse" not in r.stdout + r.stderr
    key = tmp_path / "enc" / "auditpack-signing.key"
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes() and stat.S_IMODE(key.stat().st_mode) == 0o600
    monkeypatch.delenv(signing.PASSPHRASE_ENV, raising=False)
    with pytest.raises(InputError, match="is encrypted"):
        signing.load_signer(key)
    monkeypatch.setenv(signing.PASSPHRASE_ENV, "correct horse")
    assert signing.load_signer(key).key_id
    # An unencrypted key with a passphrase set: say so, not "is encrypted".
    signing.generate(tmp_path / "plain")
    with pytest.raises(InputError, match="is not encrypted, but AUDITPACK_SIGN_KEY_PASSPHRASE is set"):
        signing.load_signer(tmp_path / "plain" / "auditpack-signing.key")
    monkeypatch.setenv(signing.PASSPHRASE_ENV, "wrong")
    with pytest.raises(InputError, match="passphrase is wrong"):
        signing.load_signer(key)


def test_bad_key_file_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "k.key").write_text("not a key")
    (tmp_path / "k.key").chmod(0o600)
    r = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--sign-key", tmp_path / "k.key")
    assert r.code == 2 and "is not a PEM private key" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "p").exists()
