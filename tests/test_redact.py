"""Redaction: private keys and secret values never reach a pack, a log or an error message."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zipfile
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader

from evidence.redact import MASK, Redactor

SECRET_VALUES = ["s3cr3t-opaque-VALUE-1", "hunter2-ENV-password-2", "string-data-TOKEN-3", "cm-db-PASSWORD-4",
                 "argv-client-SECRET-5", "last-applied-LEAK-6"]
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhdWRpdHBhY2stdGVzdCJ9.c2lnbmF0dXJlLXRlc3Q"


def _key_and_cert() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leak.example.com")])
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def leaky_objects(key_pem: str, cert_pem: str) -> list[dict]:
    last_applied = json.dumps({"kind": "Secret", "data": {"password": b64(SECRET_VALUES[5])},
                               "stringData": {"raw": SECRET_VALUES[5]}})
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "leaky-tls", "namespace": "storefront",
                      "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
                      "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]},
         # A key pasted into tls.crt too: only the CERTIFICATE block may survive.
         "data": {"tls.crt": b64(cert_pem + key_pem), "tls.key": b64(key_pem), "ca.crt": b64(cert_pem)}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "app-creds", "namespace": "storefront"},
         "data": {"password": b64(SECRET_VALUES[0]), "key.pem": b64(key_pem)},
         "stringData": {"token": SECRET_VALUES[2]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": "storefront"},
         "data": {"DB_PASSWORD": SECRET_VALUES[3], "bearer": JWT, "signing.pem": key_pem, "LOG_LEVEL": "info"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "leaky", "namespace": "storefront"},
         "spec": {"selector": {"matchLabels": {"app": "leaky"}}, "template": {
             "metadata": {"labels": {"app": "leaky"}},
             "spec": {"containers": [{"name": "app", "image": "example/app:1",
                                      "args": [f"--client-secret={SECRET_VALUES[4]}", "--port=8080"],
                                      "env": [{"name": "DB_PASSWORD", "value": SECRET_VALUES[1]},
                                              {"name": "SESSION", "value": JWT},
                                              {"name": "LOG_LEVEL", "value": "debug"}]}]}}}},
    ]


def test_redactor_unit() -> None:
    key_pem, cert_pem = _key_and_cert()
    r = Redactor()
    secret, opaque, cm, deploy = (r.redact(o) for o in leaky_objects(key_pem, cert_pem))
    assert set(secret["data"]) == {"tls.crt", "ca.crt"}
    assert base64.b64decode(secret["data"]["tls.crt"]).decode().strip() == cert_pem.strip()
    assert "managedFields" not in secret["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in secret["metadata"]["annotations"]
    assert "data" not in opaque and "stringData" not in opaque
    assert cm["data"]["DB_PASSWORD"] == MASK and cm["data"]["bearer"] == MASK and cm["data"]["signing.pem"] == MASK
    assert cm["data"]["LOG_LEVEL"] == "info"
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == [f"--client-secret={MASK}", "--port=8080"]
    assert [e["value"] for e in c["env"]] == [MASK, MASK, "debug"]
    assert r.counts["secret values"] >= 4


def test_nothing_secret_reaches_any_output(cli, sample_copy: Path, tmp_path: Path) -> None:
    """Feed a private key and secret values through the whole run; search every pack file and the output."""
    key_pem, cert_pem = _key_and_cert()
    (sample_copy / "leaky.yaml").write_text(yaml.safe_dump_all(leaky_objects(key_pem, cert_pem)))
    # A malformed file mentioning a secret must not echo it in the error either.
    out = tmp_path / "pack"
    result = cli("collect", "--snapshot", sample_copy, "--out", out)
    assert result.code in (0, 1), result.err
    key_body = "".join(key_pem.strip().splitlines()[1:-1])
    needles = [*SECRET_VALUES, JWT, key_body[:40], key_body[-40:], "PRIVATE KEY", b64(key_pem)[:40]]
    haystacks: dict[str, str] = {"stdout": result.out, "stderr": result.err}
    for p in out.rglob("*"):
        if not p.is_file():
            continue
        rel = str(p.relative_to(out))
        if p.suffix == ".pdf":
            haystacks[rel] = "\n".join(page.extract_text() or "" for page in PdfReader(p).pages)
            haystacks[rel + " (bytes)"] = p.read_bytes().decode("latin-1")
        elif p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                haystacks[rel] = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        else:
            haystacks[rel] = p.read_bytes().decode("utf-8", "replace")
    leaks = [(where, n) for where, text in haystacks.items() for n in needles if n in text]
    assert not leaks, f"secret material found: {leaks}"
    # The public certificate is evidence and must be kept.
    inv = json.loads((out / "inventory" / "core" / "Secret.json").read_text())
    leaky = next(s for s in inv if s["metadata"]["name"] == "leaky-tls")
    assert "CERTIFICATE" in base64.b64decode(leaky["data"]["tls.crt"]).decode()
