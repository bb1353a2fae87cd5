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
    assert cli("verify", demo_pack).code == 0


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


def test_bad_key_file_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "k.key").write_text("not a key")
    r = cli("collect", "--snapshot", SAMPLE, "--out", tmp_path / "p", "--sign-key", tmp_path / "k.key")
    assert r.code == 2 and "is not a PEM private key" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "p").exists()
