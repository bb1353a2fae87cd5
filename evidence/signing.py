"""Signed packs: keys, the manifest signature (manifest.sig) and the PDF's PAdES signature, with `cryptography`
and pyHanko.

The manifest signature makes a pack tamper-evident for anyone holding the public key: `auditpack verify PACK
--public-key KEY` proves the manifest (and through its hashes every file) is what the key holder signed.
The PDF carries its own signature made with a self-signed certificate for the same key, so an auditor can check
the report alone in a PDF reader after trusting that certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from evidence.errors import InputError
from evidence.pack import SIGNATURE

Algorithm = Literal["ed25519", "ecdsa-p256"]
SIGNATURE_FILE = SIGNATURE
PASSPHRASE_ENV = "AUDITPACK_SIGN_KEY_PASSPHRASE"  # noqa: S105 (the name of a variable, not a secret)
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass
class Signer:
    key: PrivateKey
    certificate: x509.Certificate | None
    key_path: Path
    cert_path: Path | None

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())


def key_id(public: PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: names a key without revealing anything."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate(out: Path, name: str = "auditpack pack signer", algorithm: Algorithm = "ed25519",
             days: int = 1095) -> tuple[Path, Path, Path]:
    """Write <out>/auditpack-signing.key (0600), .pub and .crt (self-signed, for the PDF signature)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = tuple(out / f"auditpack-signing.{ext}" for ext in ("key", "pub", "crt"))
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise InputError(f"{existing[0]} already exists; auditpack never overwrites a signing key",
                         "choose another --out directory or move the old keys away")
    key: PrivateKey = ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" \
        else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, None if algorithm == "ed25519" else hashes.SHA256()))
    key_path, pub_path, crt_path = paths
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, pub_path, crt_path


def load_signer(key_path: Path, cert_path: Path | None = None) -> Signer:
    """The private key (PEM, optionally encrypted with $AUDITPACK_SIGN_KEY_PASSPHRASE) and its certificate
    (default: the .crt file beside the key)."""
    try:
        data = key_path.read_bytes()
    except OSError as exc:
        raise InputError(f"signing key {key_path}: {exc.strerror}", "create one with `auditpack keys generate`") from None
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        raise InputError(f"signing key {key_path} is encrypted", f"set {PASSPHRASE_ENV} to its passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"signing key {key_path} is not a PEM private key (or the passphrase is wrong)",
                         "pass the .key file written by `auditpack keys generate`") from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise InputError(f"signing key {key_path} is a {type(key).__name__}; auditpack signs with Ed25519 or ECDSA",
                         "create one with `auditpack keys generate`")
    cert_path = cert_path or key_path.with_suffix(".crt")
    cert = None
    if cert_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError:
            raise InputError(f"certificate {cert_path} is not a PEM certificate", "pass --sign-cert FILE") from None
        if key_id(cert.public_key()) != key_id(key.public_key()):  # type: ignore[arg-type]
            raise InputError(f"certificate {cert_path} is not for the key {key_path}",
                             "use the .crt written together with the key")
    return Signer(key, cert, key_path, cert_path if cert else None)


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def sign_manifest(manifest: bytes, signer: Signer) -> bytes:
    """manifest.sig: the signature over manifest.json's exact bytes, the key id and the public certificate."""
    record: dict[str, Any] = {
        "format": "auditpack-signature/v1",
        "algorithm": "Ed25519" if isinstance(signer.key, ed25519.Ed25519PrivateKey) else "ECDSA-P256-SHA256",
        "key_id": signer.key_id,
        "signed": "manifest.json",
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(_sign(signer.key, manifest)).decode(),
    }
    if signer.certificate is not None:
        record["certificate"] = signer.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def load_public_key(path: Path) -> PublicKey:
    """A public key from a .pub (SubjectPublicKeyInfo PEM) or .crt (certificate PEM) file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"public key {path}: {exc.strerror}", "pass the .pub or .crt file of the signing key") from None
    try:
        public: Any = x509.load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data \
            else serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{path} holds no PEM public key or certificate",
                         "pass the .pub or .crt file written by `auditpack keys generate`") from None
    if not isinstance(public, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise InputError(f"{path} is not an Ed25519 or ECDSA key", "pass the key that signed the pack")
    return public


@dataclass
class SignatureCheck:
    status: Literal["valid", "invalid", "missing", "other-key"]
    detail: str
    key_id: str | None = None


def check_manifest_signature(pack: Path, public: PublicKey | None) -> SignatureCheck:
    """Verify manifest.sig over manifest.json; with `public`, also that it is that key's signature."""
    sig_path = pack / SIGNATURE_FILE
    if not sig_path.is_file():
        return SignatureCheck("missing", f"{SIGNATURE_FILE} is missing: the pack is not signed")
    try:
        record = orjson.loads(sig_path.read_bytes())
        signature = base64.b64decode(record["signature"])
        embedded = record.get("certificate")
        signed_key: Any = x509.load_pem_x509_certificate(embedded.encode()).public_key() if embedded else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return SignatureCheck("invalid", f"{SIGNATURE_FILE} is damaged")
    key = public if public is not None else signed_key
    if key is None:
        return SignatureCheck("invalid", "no public key given and none embedded; pass --public-key")
    if public is not None and record.get("key_id") != key_id(public):
        return SignatureCheck("other-key", f"signed by key {record.get('key_id')}, not by {key_id(public)}",
                              record.get("key_id"))
    manifest = (pack / "manifest.json").read_bytes()
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, manifest)
        else:
            key.verify(signature, manifest, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return SignatureCheck("invalid", "the signature does not match manifest.json", record.get("key_id"))
    who = "the given key" if public is not None else \
        "the certificate embedded in manifest.sig (pass --public-key to prove it is the expected signer)"
    return SignatureCheck("valid", f"manifest signed by {who}, key {record.get('key_id')}", record.get("key_id"))


def sign_pdf(pdf: Path, signer: Signer, reason: str) -> None:
    """Add a PAdES signature to the PDF in place (an incremental update, so PDF/A content is unchanged)."""
    if signer.certificate is None or signer.cert_path is None:
        raise InputError(f"no certificate for {signer.key_path}: the PDF signature needs one",
                         "keep the .crt written by `auditpack keys generate` beside the key, or pass --sign-cert")
    from asn1crypto import keys as akeys
    from asn1crypto import pem as apem
    from asn1crypto import x509 as ax509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    # The key stays in memory: pyHanko gets it as a parsed structure, never as a file.
    key_der = signer.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    cert = ax509.Certificate.load(apem.unarmor(signer.certificate.public_bytes(serialization.Encoding.PEM))[2])
    simple = signers.SimpleSigner(signing_cert=cert, signing_key=akeys.PrivateKeyInfo.load(key_der),
                                  cert_registry=SimpleCertificateStore.from_certs([cert]))  # type: ignore[no-untyped-call]
    meta = signers.PdfSignatureMetadata(field_name="AuditpackSignature", reason=reason,
                                        subfilter=fields.SigSeedSubFilter.PADES)
    src = io.BytesIO(pdf.read_bytes())
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(src), meta, signer=simple, output=out)
    pdf.write_bytes(out.getvalue())
