"""Planted secrets never reach a pack (issue 11 section 1): every place Kubernetes users put credentials, planted in a
snapshot and served by the loopback API server, then every byte of the packs, the snapshot and the console is
searched for each canary, raw, in hex and in base64 at the three byte offsets."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import shutil
import string
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
import pytest
import yaml
from conftest import SAMPLE, SCOPE, CLIResult, run_cli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from fakeapi import FakeAPIServer
from pypdf import PdfReader

AS_OF = "2026-11-21T06:00:00Z"
ALNUM = string.ascii_letters + string.digits


def rand(n: int = 20, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@dataclass
class Plant:
    """The canaries (each a unique random string) and the private keys planted in the objects."""

    canaries: dict[str, str] = field(default_factory=dict)  # what -> canary
    keys: dict[str, str] = field(default_factory=dict)  # what -> PEM

    def c(self, what: str, value: str | None = None) -> str:
        value = value or f"cny{rand(24)}"
        assert value not in self.canaries.values()
        self.canaries[what] = value
        return value

    def key(self, what: str, pem: str) -> str:
        self.keys[what] = pem
        return pem


def _pem(key: object, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()  # type: ignore[attr-defined]


def _cert(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "planted.example.com")])
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def meta(name: str, ns: str | None = "storefront", **extra: object) -> dict[str, object]:
    m: dict[str, object] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", **extra}
    if ns:
        m["namespace"] = ns
    return m


def planted_objects(p: Plant) -> tuple[list[dict], list[dict]]:
    """(objects served by the loopback API server and written to the snapshot, snapshot-only objects)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    tls_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    dsa_key = dsa.generate_private_key(key_size=2048)
    pkcs1 = p.key("RSA PKCS#1 in binaryData", _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    sec1 = p.key("EC key as kubeconfig client-key-data", _pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL))
    pkcs8 = p.key("PKCS#8 tls.key and pasted into tls.crt", _pem(tls_key, serialization.PrivateFormat.PKCS8))
    openssh = p.key("OpenSSH key in a ConfigMap", _pem(ed_key, serialization.PrivateFormat.OpenSSH))
    dsa_pem = p.key("DSA key in an env value", _pem(dsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    encrypted = tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pw")).decode()
    p.key("ENCRYPTED PRIVATE KEY in an annotation", encrypted)
    pgp = (f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQVYBF{p.c('PGP private key block', rand(40))}\n=AbCd\n"
           "-----END PGP PRIVATE KEY BLOCK-----\n")
    jwt = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.{p.c('JWT in the middle of a string', rand(43))}"
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": p.c("kubeconfig static token")}},
                  {"name": "k", "user": {"client-key-data": b64(sec1)}}]})
    loki = yaml.safe_dump({"auth_enabled": False, "compactor": {"retention_enabled": True},
                           "limits_config": {"retention_period": "30d"},
                           "storage_config": {"aws": {"access_key_id": p.c("Loki access key id",
                                                                           "AKIA" + rand(16, string.ascii_uppercase)),
                                                      "secret_access_key": p.c("Loki secret_access_key")}}})
    oauth_cfg = (f'provider = "oidc"\nemail_domains = ["example.com"]\n'
                 f'client_secret = "{p.c("oauth2-proxy client_secret")}"\n'
                 f'cookie_secret = "{p.c("oauth2-proxy cookie_secret")}"\n')
    dockercfg = json.dumps({"auths": {"registry.example.com": {
        "auth": b64(f"robot:{p.c('dockercfg auth, base64 inside JSON')}")}}})
    fluent = (f"[OUTPUT]\n    Name http\n    Host logs.example.com\n    HTTP_User shipper\n"
              f"    HTTP_Passwd {p.c('Fluent Bit HTTP_Passwd')}\n")
    falco = yaml.safe_dump({"http_output": {"enabled": True, "url": f"https://falco:{p.c('Falco http_output URL')}"
                                                                     "@siem.example.com/in"}})
    kubeadm = yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration", "apiServer": {
        "extraArgs": {"audit-log-path": "/var/log/audit.log", "token-auth-secret": p.c("kubeadm extraArgs value")}}})
    configmaps = {
        "app.properties": f"db.url=jdbc:postgresql://db/app\ndb.user=app\ndb.password={p.c('properties password=')}\n",
        "settings": f"password={p.c('single-line settings: password=')}",
        "kubeconfig": kubeconfig, "loki.yaml": loki, "oauth2_proxy.cfg": oauth_cfg, "config.json": dockercfg,
        "fluent-bit.conf": fluent, "falco.yaml": falco, "slack": f"xoxb-{p.c('Slack bot token', rand(30))}",
        "id_ed25519": openssh, "pgp.asc": pgp, "notes": f"free text, not a credential: {p.c('plain ConfigMap text')}",
        "api-key": f"{p.c('ConfigMap value named api-key')}",
    }
    secret_tls = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta("planted-tls"),
                  "data": {"tls.crt": b64(_cert(tls_key) + pkcs8), "tls.key": b64(pkcs8), "ca.crt": b64(_cert(tls_key))}}
    pod_spec = {
        "initContainers": [{"name": "init", "image": "busybox:1",
                            "args": [f"--password={p.c('init container --password=')}"]}],
        "containers": [{
            "name": "app", "image": "example/app:1",
            "command": ["sh", "-c", f"mysql -uroot -p{p.c('shell string mysql -pX')} app"],
            "args": ["--db-password", p.c("split-form --db-password X"), "--port=8080",
                     f"--notify=https://hooks.slack.com/services/T0/B0/{p.c('Slack webhook in an argument')}"],
            "env": [{"name": "STRIPE_KEY", "value": f"sk_live_{p.c('env STRIPE_KEY', rand(24))}"},
                    {"name": "ENCRYPTION_KEY", "value": p.c("env ENCRYPTION_KEY")},
                    {"name": "REDIS_URL", "value": f"redis://:{p.c('redis URL with an empty user')}@redis:6379/0"},
                    {"name": "AWS_SECRET_ACCESS_KEY", "value": p.c("env AWS_SECRET_ACCESS_KEY")},
                    {"name": "GITHUB", "value": f"ghp_{p.c('GitHub token in env', rand(36))}"},
                    {"name": "SIGNING", "value": dsa_pem},
                    {"name": "GREETING", "value": p.c("plain env value")}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "httpHeaders": [
                {"name": "Authorization", "value": f"Basic {b64('probe:' + p.c('probe httpHeaders Authorization'))}"}]}},
            "lifecycle": {"preStop": {"exec": {"command": ["curl", "-H", f"X-Token: {p.c('preStop exec command')}"]}}},
        }]}
    template_last_applied = json.dumps({"kind": "Deployment", "spec": {"password": p.c("last-applied on a pod template")}})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(
        "planted", annotations={"kubectl.kubernetes.io/last-applied-configuration":
                                json.dumps({"password": p.c("last-applied on metadata")}),
                                "example.com/private-key": encrypted}),
              "spec": {"selector": {"matchLabels": {"app": "planted"}}, "template": {
                  "metadata": {"labels": {"app": "planted"}, "annotations": {
                      "kubectl.kubernetes.io/last-applied-configuration": template_last_applied}},
                  "spec": pod_spec}}}
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("planted-cron"), "spec": {
        "schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "job", "image": "example/job:1", "args": [f"--api-token={p.c('CronJob --api-token=')}"]}]}}}}}}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("planted-ing", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet":
            f'proxy_set_header Authorization "Bearer {p.c("nginx configuration-snippet bearer token")}";',
        "nginx.ingress.kubernetes.io/auth-url": f"https://u:{p.c('auth-url with userinfo')}@auth.example.com/",
        "openshift.io/token-secret.value": p.c("OpenShift token annotation"),
        "example.com/jwt": f"session={jwt}; path=/"}),
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "planted.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "planted", "port": {"number": 80}}}}]}}]}}
    prom = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", "metadata": meta("planted-prom"),
            "spec": {"retention": "30d", "remoteWrite": [{"url": "https://metrics.example.com/push",
                                                          "bearerToken": p.c("Prometheus remoteWrite.bearerToken")}]}}
    amc = {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig", "metadata": meta("planted-am"),
           "spec": {"route": {"receiver": "ops"}, "receivers": [{"name": "ops", "webhookConfigs": [
               {"url": f"https://hooks.example.com/{p.c('Alertmanager webhook URL')}"}], "slackConfigs": [
               {"apiURL": {"name": "s", "key": "k"}, "channel": f"#{p.c('Alertmanager slack channel')}"}]}]}}
    authz = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": meta("planted-authz"),
             "spec": {"action": "ALLOW", "rules": [{"when": [{"key": "request.headers[x-api-key]",
                                                              "values": [p.c("Istio AuthorizationPolicy header value")]}]}]}}
    middleware = {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": meta("planted-mw"),
                  "spec": {"headers": {"customRequestHeaders": {"X-Upstream-Key": p.c("Traefik customRequestHeaders")}}}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("planted-route"),
             "spec": {"rules": [{"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
                 "set": [{"name": "X-Api-Key", "value": p.c("HTTPRoute requestHeaderModifier value")}]}}]}]}}
    namespace_note = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("planted-bin"),
                      "binaryData": {"key.der": b64(pkcs1), "blob": b64(p.c("binaryData plain bytes"))}}
    served = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("planted-config"), "data": configmaps},
        namespace_note, secret_tls, deploy, cron, ingress, prom, amc, authz, middleware, route,
    ]
    snapshot_only = [
        {"apiVersion": "v1beta1", "kind": "Secret", "type": "Opaque", "metadata": meta("odd-version"),
         "data": {"password": b64(p.c("Secret with apiVersion v1beta1"))}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta("opaque"),
         "stringData": {"token": p.c("Opaque Secret stringData")}, "data": {"k": b64(p.c("Opaque Secret data"))}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kubeadm-config", "kube-system"),
         "data": {"ClusterConfiguration": kubeadm}},
        {"apiVersion": "vendor.example.com/v1", "kind": "Widget", "metadata": meta("planted-widget"),
         "spec": {"connection": p.c("unmodelled custom resource string"), "nested": {"deeper": [
             {"dsn": f"postgres://app:{p.c('URL password in a custom resource')}@db/app"}]}}},
    ]
    return served, snapshot_only


def needles(value: str) -> Iterator[tuple[str, bytes]]:
    """The value raw, in hex, and in base64 at the three byte offsets (only the characters fixed by the value)."""
    raw = value.encode()
    yield "raw", raw
    yield "hex", binascii.hexlify(raw)
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw)
        start, end = (k + 2) // 3 * 4, (k + len(raw)) // 3 * 4
        yield f"base64+{k}", enc[start:end]


def key_needles(pem: str) -> list[str]:
    """Distinctive chunks of a private key: two lines of its PEM body (base64 of the DER)."""
    body = [ln for ln in pem.strip().splitlines() if not ln.startswith("-----") and len(ln) >= 40]
    return [body[len(body) // 2][:40], body[-2][:40] if len(body) > 2 else body[0][-40:]]


def pdf_text(pdf: Path) -> bytes:
    """The text a reader sees: WeasyPrint writes glyph ids into the content streams, so a byte search of the
    decompressed streams cannot see a rendered string. pdftotext (poppler) when present: pypdf takes 40 s here."""
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True, timeout=300).stdout
    return "\n".join(page.extract_text() or "" for page in PdfReader(pdf).pages).encode()


def haystacks(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every byte of every file, plus the unzipped workbook parts, the decompressed PDF streams and objects, its
    attachments and its text."""
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        rel = str(f.relative_to(root.parent))
        data = f.read_bytes()
        yield rel, data
        if f.suffix == ".xlsx":
            with zipfile.ZipFile(f) as z:
                for part in z.namelist():
                    yield f"{rel}!{part}", z.read(part)
        if f.suffix == ".pdf":
            with pikepdf.open(f) as pdf:
                for obj in pdf.objects:
                    if isinstance(obj, pikepdf.Stream):
                        try:
                            yield f"{rel} stream {obj.objgen}", obj.read_bytes()
                        except pikepdf.PdfError:
                            yield f"{rel} raw stream {obj.objgen}", obj.read_raw_bytes()
                    elif isinstance(obj, (pikepdf.Dictionary, pikepdf.Array, pikepdf.String)):
                        yield f"{rel} object {obj.objgen}", obj.unparse()
                for name, spec in pdf.attachments.items():
                    yield f"{rel} attachment {name}", spec.get_file().read_bytes()
            yield f"{rel} text", pdf_text(f)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]{0,40})PRIVATE KEY( BLOCK)?-----.{0,20000}?-----END [A-Z0-9 ]{0,40}"
                        rb"PRIVATE KEY( BLOCK)?-----", re.DOTALL)


@dataclass
class Run:
    plant: Plant
    outputs: list[Path]
    console: dict[str, CLIResult]
    places: list[tuple[str, bytes]]
    planted_input: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One full pack from a planted snapshot (the snapshot source and every renderer) and one `auditpack snapshot`
    of the planted loopback API server (the live source); everything they wrote is read once."""
    tmp = tmp_path_factory.mktemp("planted")
    plant = Plant()
    served, snapshot_only = planted_objects(plant)
    snap = tmp / "snapshot-in"
    shutil.copytree(SAMPLE, snap)
    (snap / "planted.yaml").write_text(yaml.safe_dump_all([*served, *snapshot_only], width=1 << 30))
    console: dict[str, CLIResult] = {}
    packs = tmp / "packs"
    packs.mkdir()
    console["collect --snapshot"] = run_cli("collect", "--snapshot", snap, "--out", packs / "from-snapshot",
                                            "--scope", SCOPE, "--as-of", AS_OF, "--fail-on", "none")
    with FakeAPIServer(SAMPLE, objects=served) as srv:
        kubeconfig = srv.write_kubeconfig(tmp / "kubeconfig")
        console["snapshot live"] = run_cli("snapshot", "--kubeconfig", kubeconfig, "--out", packs / "snapshot")
    for what, result in console.items():
        assert result.code == 0, f"{what}: exit {result.code}\n{result.err[-2000:]}"
    outputs = [packs / "from-snapshot", packs / "snapshot"]
    places = [(f"{name} stdout", r.out.encode()) for name, r in console.items()]
    places += [(f"{name} stderr", r.err.encode()) for name, r in console.items()]
    for out in outputs:
        places += list(haystacks(out))
    return Run(plant, outputs, console, places, snap / "planted.yaml")


def test_at_least_32_distinct_canaries_were_planted(run: Run) -> None:
    values = list(run.plant.canaries.values())
    assert len(values) >= 32 and len(set(values)) == len(values)
    assert len(run.plant.keys) >= 6


def searched_forms(plant: Plant) -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for what, value in plant.canaries.items():
        out += [(what, form, n) for form, n in needles(value)]
    for what, pem in plant.keys.items():
        for i, chunk in enumerate(key_needles(pem)):
            out += [(f"{what} (chunk {i})", form, n) for form, n in needles(chunk) if form != "hex"]
        out.append((f"{what} (in the base64 of the PEM)", "base64 PEM", b64(pem)[len(b64(pem)) // 2:][:40].encode()))
    return out


def test_the_search_finds_every_canary_in_the_unredacted_input(run: Run) -> None:
    """The positive control: the same search over the planted (unredacted) snapshot finds every secret."""
    data = run.planted_input.read_bytes()
    found = {what.split(" (")[0] for what, _, n in searched_forms(run.plant) if n in data}
    wanted = set(run.plant.canaries) | set(run.plant.keys)
    assert found == wanted, sorted(wanted - found)


def test_no_planted_secret_in_any_byte_of_the_packs_or_the_console(run: Run) -> None:
    searched = searched_forms(run.plant)
    places = run.places
    assert len(places) > 50
    leaks = sorted({f"{what} [{form}] in {where}" for where, data in places for what, form, n in searched
                    if n in data})
    found = {leak.split(" [")[0].split(" (")[0] for leak in leaks}
    total = len(run.plant.canaries) + len(run.plant.keys)
    print(f"planted secrets found in packs: {len(found)} of {total} ({len(places)} files, parts and streams searched)")
    assert not leaks, "\n".join(leaks[:40])


def test_no_private_key_loads_from_any_output(run: Run) -> None:
    for where, data in run.places:
        for m in _PEM_BLOCK.finditer(data):
            with pytest.raises((ValueError, TypeError)):
                serialization.load_pem_private_key(m.group(0), password=b"pw")
            pytest.fail(f"a PEM private-key block survived in {where}")  # pragma: no cover
    # The planted keys are real: each loads before redaction, so the search above could have found them.
    for pem in run.plant.keys.values():
        if "OPENSSH" in pem:
            serialization.load_ssh_private_key(pem.encode(), password=None)
        else:
            serialization.load_pem_private_key(pem.encode(), password=b"pw" if "ENCRYPTED" in pem else None)


def test_the_planted_objects_went_through_both_sources(run: Run) -> None:
    """Neither half is vacuous: the planted objects are in the pack's inventory and in the live snapshot."""
    for out in run.outputs:
        text = b"".join(f.read_bytes() for f in out.rglob("*.json"))
        for name in ("planted-config", "planted-bin", "planted-tls", "planted-cron", "planted-ing", "planted-prom",
                     "planted-am", "planted-authz", "planted-mw", "planted-route", '"planted"'):
            assert name.encode() in text, (out.name, name)
    inventory = b"".join(f.read_bytes() for f in (run.outputs[0] / "inventory").rglob("*.json"))
    assert b"odd-version" in inventory and b"planted-widget" in inventory and b"kubeadm-config" in inventory


def test_what_controls_read_survives_and_credentials_are_reported(run: Run) -> None:
    pack = run.outputs[0]
    facts = json.loads((pack / "facts.json").read_text())
    creds = {s["id"]: s for s in facts["subjects"]["namespace_credentials"]}["storefront"]
    env = " ".join(creds["env_values"])
    assert "env STRIPE_KEY" in env and "env ENCRYPTION_KEY" in env and "env REDIS_URL" in env
    assert "env GREETING" not in env  # plain free text is fingerprinted, not reported as a credential
    assert any("argument --db-password" in a for a in creds["arguments"])
    assert any("key oauth2_proxy.cfg" in k for k in creds["configmap_keys"])
    # The public certificate is evidence and is kept; the redaction counts reach the collection log.
    counts = json.loads((pack / "collection.json").read_text()).get("redactions") or {}
    assert counts.get("secret values", 0) >= 1 and any("fingerprinted" in k for k in counts), counts
    inventory = json.loads((pack / "inventory" / "core" / "Secret.json").read_text())
    tls = next(s for s in inventory if s["metadata"]["name"] == "planted-tls")
    assert set(tls["data"]) == {"tls.crt", "ca.crt"}
    assert base64.b64decode(tls["data"]["tls.crt"]).decode().count("BEGIN CERTIFICATE") == 1
