"""Parses the public certificate chain of a kubernetes.io/tls Secret with `cryptography` (PCI DSS 4.2.1, 4.2.1.1)."""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from itertools import pairwise
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from evidence.facts import CertificateFacts

FAKE_CERT_CN = "Kubernetes Ingress Controller Fake Certificate"
# Issuer names used by public test CAs; certificates from them are untrusted by browsers.
STAGING_MARKERS = ("(STAGING)", "Fake LE", "Pebble", "staging")


class CertificateParseError(ValueError):
    """tls.crt held no parseable certificate."""


def parse_chain(tls_crt_b64: str) -> list[x509.Certificate]:
    try:
        pem = base64.b64decode(tls_crt_b64)
    except (binascii.Error, ValueError):
        raise CertificateParseError("tls.crt is not valid base64") from None
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CertificateParseError("tls.crt holds no PEM certificate") from None
    if not certs:
        raise CertificateParseError("tls.crt holds no PEM certificate")
    return certs


def facts(chain: list[x509.Certificate], as_of: datetime) -> CertificateFacts:
    leaf = chain[0]
    key = leaf.public_key()
    key_type, key_size = _key(key)
    sig_name = leaf.signature_algorithm_oid._name  # e.g. sha256WithRSAEncryption
    try:
        sig_hash = leaf.signature_hash_algorithm
    except UnsupportedAlgorithm:
        sig_hash = None
    weak_sig = isinstance(sig_hash, (hashes.SHA1, hashes.MD5)) or sig_name.lower().startswith(("sha1", "md5", "md2"))
    weak_key = (key_type == "RSA" and key_size < 2048) or (key_type == "EC" and key_size < 256) or key_type == "DSA"
    not_after = leaf.not_valid_after_utc
    seconds_left = (not_after - as_of).total_seconds()
    issuer = leaf.issuer.rfc4514_string()
    subject = leaf.subject.rfc4514_string()
    return CertificateFacts(
        subject=subject,
        issuer=issuer,
        serial=format(leaf.serial_number, "x"),
        sans=_sans(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=not_after,
        days_left=math.floor(seconds_left / 86400),
        expired=seconds_left <= 0 or leaf.not_valid_before_utc > as_of,
        key_type=key_type,
        key_size=key_size,
        signature_algorithm=sig_name,
        weak=weak_key or weak_sig,
        self_signed=leaf.issuer == leaf.subject,
        chain_length=len(chain),
        chain_complete=_chain_complete(chain),
        staging_issuer=any(m.lower() in issuer.lower() for m in STAGING_MARKERS),
        fake_certificate=FAKE_CERT_CN in subject,
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        chain_fingerprints=[c.fingerprint(hashes.SHA256()).hex() for c in chain],
    )


KeyType = Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "other"]


def _key(key: object) -> tuple[KeyType, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return "other", 0


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return names


def _chain_complete(chain: list[x509.Certificate]) -> bool:
    """Each certificate is signed by the next; the last is self-signed or its issuer is simply not included.

    A chain of one non-self-signed leaf is incomplete: clients need the intermediate.
    """
    if len(chain) == 1:
        return chain[0].issuer == chain[0].subject
    return all(child.issuer == parent.subject and _signed_by(child, parent) for child, parent in pairwise(chain))


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def host_matches(host: str, names: list[str]) -> bool:
    """RFC 6125 matching: exact, or a left-most '*' label covering exactly one label."""
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:] and host.split(".", 1)[0]:
            return True
    return False
