"""Signed packs: keys, the manifest signature (manifest.sig) and the PDF's PAdES signature, with `cryptography`
and pyHanko.

The manifest signature makes a pack tamper-evident for anyone holding the public key: `auditpack verify PACK
--public-key KEY` proves the manifest (and through its hashes every file) is what the key holder signed.
The PDF carries its own signature made with a self-signed certificate for the same key, so an auditor can check
the report alone in a PDF reader after trusting that certificate.

Integrity is not authenticity: anyone can re-sign an edited pack with a key of their own and embed its
certificate. Only a trust anchor the verifier holds (`--public-key`, or `--trust-cert` with the signing
certificate or its CA) establishes who signed; without one, verify says so and never names a signer.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from evidence.errors import InputError
from evidence.pack import MANIFEST, SIGNATURE

Algorithm = Literal["ed25519", "ecdsa-p256"]
SIGNATURE_FILE = SIGNATURE
PASSPHRASE_ENV = "AUDITPACK_SIGN_KEY_PASSPHRASE"  # noqa: S105 (the name of a variable, not a secret)
SIGNATURE_FORMAT = "auditpack-signature/v1"
_FIELDS = {"format", "algorithm", "key_id", "signed", "manifest_sha256", "signature", "certificate", "chain"}
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass
class Signer:
    key: PrivateKey
    certificate: x509.Certificate | None
    key_path: Path
    cert_path: Path | None
    chain: list[x509.Certificate] = field(default_factory=list)  # intermediates after the leaf in --sign-cert

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())


def algorithm_name(key: PrivateKey | PublicKey) -> str:
    return "Ed25519" if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)) else "ECDSA-P256-SHA256"


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def signer_info(signer: Signer) -> dict[str, Any]:
    """Who signs a pack, recorded in manifest.json (so the signature covers it) for the report to print:
    the algorithm, the key id (SHA-256 of the public key, the fingerprint an auditor compares with the key
    handed over out of band) and the certificate's SHA-256."""
    info: dict[str, Any] = {"algorithm": algorithm_name(signer.key), "key_id": signer.key_id,
                            "key_fingerprint": "SHA256:" + signer.key_id}
    if signer.certificate is not None:
        info["certificate_sha256"] = cert_sha256(signer.certificate)
        info["certificate_subject"] = signer.certificate.subject.rfc4514_string()
    return info


def key_id(public: PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: names a key without revealing anything."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _private_dir(out: Path) -> None:
    """Create `out` and any missing parents 0700 whatever the umask (mkdir's mode is filtered by it)."""
    missing = []
    for d in (out, *out.parents):
        if d.exists():
            break
        missing.append(d)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, not a directory", "pass a new or existing directory as --out")
    for d in reversed(missing):
        d.mkdir(mode=0o700)
        d.chmod(0o700)


def generate(out: Path, name: str = "auditpack pack signer", algorithm: Algorithm = "ed25519",
             days: int = 1095, passphrase: bytes | None = None) -> tuple[Path, Path, Path]:
    """Write <out>/auditpack-signing.key (0600; encrypted with `passphrase` if given), .pub and .crt
    (self-signed, for the PDF signature). Directories created for them are 0700."""
    _private_dir(out)
    paths = tuple(out / f"auditpack-signing.{ext}" for ext in ("key", "pub", "crt"))
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise InputError(f"{existing[0]} already exists; auditpack never overwrites a signing key",
                         "choose another --out directory or move the old keys away")
    key_pem, pub_pem, crt_pem = new_key_material(name, algorithm, days, passphrase)
    key_path, pub_path, crt_path = paths
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    pub_path.write_bytes(pub_pem)
    crt_path.write_bytes(crt_pem)
    return key_path, pub_path, crt_path


def new_key_material(name: str = "auditpack pack signer", algorithm: Algorithm = "ed25519", days: int = 1095,
                     passphrase: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """A new key pair and its self-signed certificate, in memory: (private PEM, public PEM, certificate PEM)."""
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
    encryption: serialization.KeySerializationEncryption = \
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            cert.public_bytes(serialization.Encoding.PEM))


def load_signer(key_path: Path, cert_path: Path | None = None) -> Signer:
    """The private key (PEM, optionally encrypted with $AUDITPACK_SIGN_KEY_PASSPHRASE) and its certificate
    (default: the .crt file beside the key)."""
    try:
        st = key_path.stat()
        data = key_path.read_bytes()
    except OSError as exc:
        raise InputError(f"signing key {key_path}: {exc.strerror}", "create one with `auditpack keys generate`") from None
    _check_key_mode(key_path, st)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase:
            raise InputError(f"signing key {key_path} is not encrypted, but {PASSPHRASE_ENV} is set",
                             f"unset {PASSPHRASE_ENV}, or create an encrypted key with "
                             f"`auditpack keys generate --passphrase-env {PASSPHRASE_ENV}`") from None
        raise InputError(f"signing key {key_path} is encrypted", f"set {PASSPHRASE_ENV} to its passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"signing key {key_path} is not a PEM private key (or the passphrase is wrong)",
                         "pass the .key file written by `auditpack keys generate`") from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise InputError(f"signing key {key_path} is a {type(key).__name__}; auditpack signs with Ed25519 or ECDSA",
                         "create one with `auditpack keys generate`")
    cert_path = cert_path or key_path.with_suffix(".crt")
    cert = None
    chain: list[x509.Certificate] = []
    if cert_path.exists():
        try:
            cert, *chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        except ValueError:
            raise InputError(f"certificate {cert_path} is not a PEM certificate", "pass --sign-cert FILE") from None
        if key_id(cert.public_key()) != key_id(key.public_key()):  # type: ignore[arg-type]
            raise InputError(f"certificate {cert_path} is not for the key {key_path}",
                             "use the .crt written together with the key (the signing certificate first, then "
                             "any intermediate CA certificates)")
    return Signer(key, cert, key_path, cert_path if cert else None, chain)


def _check_key_mode(path: Path, st: os.stat_result) -> None:
    """A private key others can read is refused, as ssh refuses it. World-readable is always refused; group
    access is refused on a key the user owns (a Kubernetes Secret volume with fsGroup is root-owned, mode 0440,
    readable only by the pod's group, and is accepted)."""
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o004 or (st.st_uid == os.geteuid() and mode & 0o077):
        who = "everyone" if mode & 0o004 else "its group"
        raise InputError(f"signing key {path} is readable by {who} (mode {mode:04o}); auditpack refuses a private "
                         "key others can read", f"chmod 600 {path} (and replace the key if others may have copied it)")


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def sign_manifest(manifest: bytes, signer: Signer) -> bytes:
    """manifest.sig: the signature over manifest.json's exact bytes, the key id and the public certificate
    (and intermediate CA certificates, if --sign-cert held them)."""
    record: dict[str, Any] = {
        "format": SIGNATURE_FORMAT,
        "algorithm": algorithm_name(signer.key),
        "key_id": signer.key_id,
        "signed": MANIFEST,
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(_sign(signer.key, manifest)).decode(),
    }
    if signer.certificate is not None:
        record["certificate"] = signer.certificate.public_bytes(serialization.Encoding.PEM).decode()
    if signer.chain:
        record["chain"] = [c.public_bytes(serialization.Encoding.PEM).decode() for c in signer.chain]
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


def load_trust_certs(path: Path) -> list[x509.Certificate]:
    """--trust-cert: the signing certificate itself, or the CA certificate(s) it chains to (PEM, one or more)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"trust certificate {path}: {exc.strerror}",
                         "pass the PEM file of the signing certificate or of its CA") from None
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InputError(f"{path} holds no PEM certificate", "pass the PEM file of the signing certificate or of "
                         "its CA (a public key goes to --public-key)") from None


@dataclass
class TrustAnchor:
    """What the verifier trusts, obtained out of band: a public key, or certificates (a CA or the signer's own)."""

    public_key: PublicKey | None = None
    certificates: list[x509.Certificate] = field(default_factory=list)
    source: str = ""


@dataclass
class SignatureCheck:
    """status: valid (signed by the trust anchor), unverified (a signature that is consistent, but no trust anchor
    was given: who signed is not established), missing, invalid, other-key (valid, by a key the anchor is not)."""

    status: Literal["valid", "unverified", "invalid", "missing", "other-key"]
    detail: str
    key_id: str | None = None  # set only when established by the trust anchor
    declared: bool = False  # missing, although the signed manifest names a signer (manifest.sig was deleted)


def _verify_raw(key: Any, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _chains_to(leaf: x509.Certificate, chain: list[x509.Certificate], anchors: list[x509.Certificate],
               at: dt.datetime | None) -> str | None:
    """None when `leaf` is an anchor or chains to one through `chain` (issuer names, signatures, CA flags and,
    when `at` is known, validity at signing time); else why not."""
    anchor_der = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    current, pool = leaf, chain + anchors
    for _ in range(8):
        if at is not None and not (current.not_valid_before_utc <= at <= current.not_valid_after_utc):
            return f"certificate {current.subject.rfc4514_string()} was not valid at the signing time {at.isoformat()}"
        if current.public_bytes(serialization.Encoding.DER) in anchor_der:
            return None
        issuer = None
        for cand in pool:
            if cand.subject != current.issuer or cand is current:
                continue
            try:
                current.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            try:
                bc = cand.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                continue
            if bc.ca:
                issuer = cand
                break
        if issuer is None:
            return f"certificate {current.subject.rfc4514_string()} is not issued by a trusted certificate"
        current = issuer
    return "certificate chain too long"


def _signed_at(manifest: dict[str, Any]) -> dt.datetime | None:
    when = (manifest.get("evidence") or {}).get("finished_at") if isinstance(manifest, dict) else None
    if not isinstance(when, str):
        return None
    try:
        ts = dt.datetime.fromisoformat(when)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def check_manifest_signature(pack: Path, anchor: TrustAnchor | PublicKey | None) -> SignatureCheck:
    """Check manifest.sig against manifest.json and, given a trust anchor, that the anchor's key signed it.

    Every field of manifest.sig is checked (format, algorithm, key id, signed file, manifest SHA-256, the
    certificate's key), and so is the `signer` block the signed manifest records: any edit is `invalid`.
    Without an anchor a consistent signature is only `unverified`: anyone can sign with a key of their own."""
    if anchor is not None and not isinstance(anchor, TrustAnchor):
        anchor = TrustAnchor(public_key=anchor)
    manifest_bytes = (pack / MANIFEST).read_bytes()
    try:
        manifest = orjson.loads(manifest_bytes)
    except orjson.JSONDecodeError:
        manifest = {}
    declared = manifest.get("signer") if isinstance(manifest, dict) else None
    sig_path = pack / SIGNATURE_FILE
    if sig_path.is_symlink() or (sig_path.exists() and not sig_path.is_file()):
        return SignatureCheck("invalid", f"{SIGNATURE_FILE} is not a regular file (a symlink is never followed)")
    if not sig_path.is_file():
        if isinstance(declared, dict):
            return SignatureCheck("missing", f"{SIGNATURE_FILE} was removed: the manifest says the pack was signed",
                                  declared=True)
        return SignatureCheck("missing", f"{SIGNATURE_FILE} is missing: the pack is not signed")
    try:
        record = orjson.loads(sig_path.read_bytes())
        if not isinstance(record, dict):
            raise TypeError
        signature = base64.b64decode(record["signature"], validate=True)
        embedded = record.get("certificate")
        cert = x509.load_pem_x509_certificate(embedded.encode()) if embedded is not None else None
        chain = [x509.load_pem_x509_certificate(c.encode()) for c in record.get("chain") or []]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return SignatureCheck("invalid", f"{SIGNATURE_FILE} is damaged (not the JSON record auditpack writes)")
    problems = []
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    if record.get("format") != SIGNATURE_FORMAT:
        problems.append(f"format is {record.get('format')!r}, not {SIGNATURE_FORMAT}")
    if record.get("signed") != MANIFEST:
        problems.append(f"signs {record.get('signed')!r}, not {MANIFEST}")
    if record.get("manifest_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        problems.append("manifest_sha256 does not match manifest.json")
    claimed = record.get("key_id")
    cert_key: Any = cert.public_key() if cert is not None else None
    if cert_key is not None and (not isinstance(cert_key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey))
                                 or key_id(cert_key) != claimed):
        problems.append("the certificate's key is not the key_id's key")
    if cert_key is not None and record.get("algorithm") != algorithm_name(cert_key):
        problems.append(f"algorithm {record.get('algorithm')!r} does not match the certificate's key")
    if isinstance(declared, dict):
        # The signed manifest names its signer: manifest.sig must be that signer's, certificate included.
        if declared.get("key_id") != claimed or declared.get("algorithm") != record.get("algorithm"):
            problems.append("key or algorithm differs from the signer the manifest records")
        if declared.get("certificate_sha256") != (cert_sha256(cert) if cert is not None else None):
            problems.append("the certificate differs from the one the manifest records")
    if problems:
        return SignatureCheck("invalid", f"{SIGNATURE_FILE} was edited: " + "; ".join(problems))
    if anchor is None:
        if cert_key is None:
            return SignatureCheck("invalid", f"{SIGNATURE_FILE} embeds no certificate; pass --public-key to check it")
        if not _verify_raw(cert_key, signature, manifest_bytes):
            return SignatureCheck("invalid", "the signature does not match manifest.json")
        return SignatureCheck("unverified", "signed by an unverified key: the pack is consistent with its own "
                                            "embedded certificate, which anyone can make; pass --public-key or "
                                            "--trust-cert (from the pack's owner, out of band) to establish who signed")
    if anchor.public_key is not None:
        trusted = key_id(anchor.public_key)
        if claimed != trusted:
            signed_by_claim = cert_key is not None and _verify_raw(cert_key, signature, manifest_bytes)
            return SignatureCheck("other-key" if signed_by_claim else "invalid",
                                  f"not signed by the trusted key {trusted} ({anchor.source})")
        if record.get("algorithm") != algorithm_name(anchor.public_key):
            return SignatureCheck("invalid", f"{SIGNATURE_FILE} was edited: algorithm {record.get('algorithm')!r} "
                                             "is not the trusted key's")
        if not _verify_raw(anchor.public_key, signature, manifest_bytes):
            return SignatureCheck("invalid", "the signature does not match manifest.json")
        return SignatureCheck("valid", f"manifest signed by the trusted key {trusted} ({anchor.source})", trusted)
    if cert is None or cert_key is None:
        return SignatureCheck("other-key", f"{SIGNATURE_FILE} embeds no certificate to check against --trust-cert")
    why = _chains_to(cert, chain, anchor.certificates, _signed_at(manifest))
    if why is not None:
        valid = _verify_raw(cert_key, signature, manifest_bytes)
        return SignatureCheck("other-key" if valid else "invalid", f"{why} ({anchor.source})")
    if not _verify_raw(cert_key, signature, manifest_bytes):
        return SignatureCheck("invalid", "the signature does not match manifest.json")
    return SignatureCheck("valid", f"manifest signed by key {key_id(cert_key)}, certificate "
                                   f"{cert.subject.rfc4514_string()} trusted through {anchor.source}", key_id(cert_key))


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
    from pyhanko.sign.signers import constants as sig_constants
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    class Pdf17Signer(signers.PdfSigner):
        """A PAdES signer that keeps the PDF at version 1.7. pyHanko registers the ISO 32002 extension for ECDSA
        P-256 and Ed25519 keys, which raises the catalogue's /Version to 2.0; PDF/A-3 is built on PDF 1.7, so a
        PDF/A validator then rejects the report. The ESIC extension (PAdES on PDF 1.7) is all a reader needs."""

        def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(sig_constants.ESIC_EXTENSION_1)

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
    Pdf17Signer(meta, signer=simple).sign_pdf(IncrementalPdfFileWriter(src), output=out)
    pdf.write_bytes(out.getvalue())
