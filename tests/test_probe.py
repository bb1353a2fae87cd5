"""The live TLS probe against loopback servers this test starts (Python ssl, certificates made here): negotiated
protocol, accepted versions, served certificate vs the Secret's, HSTS, port-80 redirect, unreachable hosts; and
the probe through the CLI, stored as evidence in the pack and judged by the controls."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import socket
import ssl
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import deployment, obj

from evidence.facts import IngressHost
from evidence.probe.tls import ProbeOptions, Target, probe, targets
from evidence.scope import Scope

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_chain(host: str) -> tuple[bytes, bytes]:
    """(leaf + CA PEM, leaf key PEM) for a loopback server; the key only ever reaches a temporary file."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Probe Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=90))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    return chain, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())


class Server:
    """A loopback server answering one HTTP request per connection, over TLS (with `chain`) or in plain text."""

    def __init__(self, response: bytes, chain: bytes | None = None, key: bytes | None = None,
                 legacy: bool = False) -> None:
        self.response, self.ctx = response, None
        if chain is not None and key is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if legacy:
                ctx.set_ciphers("ALL:@SECLEVEL=0")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / "c.pem").write_bytes(chain)
                (Path(d) / "k.pem").write_bytes(key)
                ctx.load_cert_chain(Path(d) / "c.pem", Path(d) / "k.pem")  # the key file is removed right after
            self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with contextlib.suppress(OSError, ssl.SSLError):
                conn.settimeout(2)
                if self.ctx is not None:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                conn.recv(4096)
                conn.sendall(self.response)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def ok(hsts: bool) -> bytes:
    head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
    return (head + ("Strict-Transport-Security: max-age=31536000\r\n" if hsts else "") + "\r\n").encode()


def redirect(host: str) -> bytes:
    return f"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://{host}/\r\nContent-Length: 0\r\n\r\n".encode()


def tls10_possible() -> bool:
    """Whether this machine's OpenSSL can complete a TLS 1.0 handshake at all (some builds cannot)."""
    chain, key = make_chain("probe.test")
    srv = Server(ok(False), chain, key, legacy=True)
    try:
        t = Target("probe.test", 443, "Ingress", (), "127.0.0.1", srv.port, "test", None, True)
        return "TLSv1" in probe(t, 2)["versions_accepted"]
    finally:
        srv.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict]:
    modern_chain, modern_key = make_chain("modern.example.com")
    legacy_chain, legacy_key = make_chain("legacy.example.com")
    made = {"modern": Server(ok(True), modern_chain, modern_key),
            "modern-http": Server(redirect("modern.example.com")),
            "legacy": Server(ok(False), legacy_chain, legacy_key, legacy=True),
            "legacy-http": Server(ok(False))}
    closed = socket.create_server(("127.0.0.1", 0))
    down = closed.getsockname()[1]
    closed.close()  # nothing listens here any more: connections are refused
    yield {"servers": made, "down": down, "chains": {"modern": modern_chain, "legacy": legacy_chain},
           "tls10": tls10_possible()}
    for s in made.values():
        s.close()


def target(host: str, port: int, http: int | None = None) -> Target:
    return Target(host, 443, "Ingress", (f"shop/web/{host}:443",), "127.0.0.1", port, "--probe-address",
                  ("127.0.0.1", http) if http else None, True)


def test_modern_server(servers: dict) -> None:
    s = servers["servers"]
    r = probe(target("modern.example.com", s["modern"].port, s["modern-http"].port), 2)
    assert r["reachable"] and r["protocol"] == "TLSv1.3" and r["cipher"]
    assert r["versions_accepted"] == ["TLSv1.2", "TLSv1.3"] and r["weak_versions_accepted"] == []
    assert set(r["versions_refused"]) | set(r["versions_untested"]) == {"TLSv1", "TLSv1.1"}
    assert r["served_subject"] == "CN=modern.example.com" and r["served_issuer"] == "CN=Probe Test CA"
    assert r["hsts"] == "max-age=31536000"
    assert r["http_status"] == 308 and r["http_redirects_to_https"] and r["http_location"] == "https://modern.example.com/"


def test_legacy_server_accepting_old_versions(servers: dict) -> None:
    s = servers["servers"]
    r = probe(target("legacy.example.com", s["legacy"].port, s["legacy-http"].port), 2)
    assert r["reachable"] and r.get("hsts") is None
    assert r["http_status"] == 200 and r["http_redirects_to_https"] is False
    if servers["tls10"]:
        assert r["weak_versions_accepted"][0] == "TLSv1"
    else:  # this OpenSSL cannot speak TLS 1.0: it must say so rather than call it refused
        assert "TLSv1" in r["versions_untested"] + r["versions_refused"]
    assert set(r["versions_accepted"]) >= {"TLSv1.2", "TLSv1.3"}


def test_unreachable_and_skipped_targets(servers: dict) -> None:
    r = probe(target("down.example.com", servers["down"]), 1)
    assert not r["reachable"] and r["error"] == "connection refused"
    hosts = [IngressHost(id="shop/web/*.example.com:443", name="x", namespace="shop", host="*.example.com", port=443,
                         ingress="web", ingress_class=None, controller=None, namespace_class="connected",
                         personal_data=False, tls=True, secret_name=None, secret_found=None),
             IngressHost(id="shop/web/a.example.com:443", name="a", namespace="shop", host="a.example.com", port=443,
                         ingress="web", ingress_class=None, controller=None, namespace_class="connected",
                         personal_data=False, tls=True, secret_name=None, secret_found=None,
                         addresses=["203.0.113.20"]),
             IngressHost(id="shop/web/b.example.com:443", name="b", namespace="shop", host="b.example.com", port=443,
                         ingress="web", ingress_class=None, controller=None, namespace_class="connected",
                         personal_data=False, tls=True, secret_name=None, secret_found=None)]
    got = {t.host: t for t in targets(hosts, Scope(host_addresses={"a.example.com": "198.51.100.7"}),
                                      ProbeOptions(addresses={"a.example.com:443": "127.0.0.1:8443"}))}
    assert "wildcard" in got["*.example.com"].skip
    # --probe-address beats the scope file, which beats the load-balancer status.
    assert (got["a.example.com"].address, got["a.example.com"].connect_port) == ("127.0.0.1", 8443)
    assert "no address for b.example.com" in got["b.example.com"].skip
    assert not probe(got["b.example.com"], 1)["reachable"]


# --- through the CLI ---------------------------------------------------------------------------------------

def write_snapshot(root: Path, chains: dict[str, bytes]) -> None:
    nginx = [deployment("ingress-nginx-controller", "ingress-nginx", "registry.k8s.io/ingress-nginx/controller:v1.11.3",
                        ["/nginx-ingress-controller", "--configmap=ingress-nginx/ingress-nginx-controller"]),
             obj("networking.k8s.io/v1", "IngressClass", "nginx", spec={"controller": "k8s.io/ingress-nginx"}),
             obj("v1", "ConfigMap", "ingress-nginx-controller", "ingress-nginx", data={})]
    other, _ = make_chain("legacy.example.com")  # the Secret holds a certificate the server does not serve
    objs = [*nginx, obj("v1", "Namespace", "shop", labels={"pci.auditpack.io/scope": "connected"}),
            obj("v1", "Namespace", "ingress-nginx")]
    for name, chain in (("modern", chains["modern"]), ("legacy", other), ("down", chains["modern"])):
        host = f"{name}.example.com"
        objs.append(obj("networking.k8s.io/v1", "Ingress", name, "shop", spec={
            "ingressClassName": "nginx", "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
            "rules": [{"host": host}]}))
        objs.append(obj("v1", "Secret", f"{name}-tls", "shop", type="kubernetes.io/tls",
                        data={"tls.crt": base64.b64encode(chain).decode()}))
    (root / "objects.yaml").write_text(yaml.safe_dump_all(objs))
    (root / "snapshot.json").write_text(json.dumps({"format": "auditpack-snapshot/v1", "collected_at": NOW.isoformat(),
                                                    "cluster": {"name": "probe-test"}}))


def test_probe_through_the_cli(cli, servers: dict, tmp_path: Path) -> None:
    s = servers["servers"]
    snap, pack = tmp_path / "snap", tmp_path / "pack"
    snap.mkdir()
    write_snapshot(snap, servers["chains"])
    addresses = {"modern.example.com:443": s["modern"].port, "modern.example.com:80": s["modern-http"].port,
                 "legacy.example.com:443": s["legacy"].port, "legacy.example.com:80": s["legacy-http"].port,
                 "down.example.com:443": servers["down"]}
    args = [a for k, port in addresses.items() for a in ("--probe-address", f"{k}=127.0.0.1:{port}")]
    result = cli("collect", "--snapshot", snap, "--out", pack, "--probe-tls", "--probe-timeout", "2",
                 "--probe-concurrency", "3", "--fail-on", "none", *args)
    assert result.code == 0, result.err
    manifest = json.loads((pack / "manifest.json").read_text())
    assert {"probes/tls.json", "inventory/probe.auditpack.io/TLSProbe.json"} <= set(manifest["evidence"]["files"])
    record = json.loads((pack / "probes/tls.json").read_text())
    assert record["options"]["timeout_s"] == 2 and len(record["results"]) == 3
    status = {(f["control"], f["subject_id"].split("/")[2]): f for f in
              json.loads((pack / "results.json").read_text())["findings"] if f["subject_type"] == "ingress_host"}
    assert status[("transit.served-certificate", "modern.example.com:443")]["status"] == "pass"
    assert status[("transit.served-certificate", "legacy.example.com:443")]["status"] == "fail"
    assert status[("transit.https-redirect", "modern.example.com:443")]["status"] == "pass"
    legacy_redirect = status[("transit.https-redirect", "legacy.example.com:443")]
    assert legacy_redirect["status"] == "fail" and "probe: GET http://legacy.example.com/ answered 200" in \
        legacy_redirect["message"]
    assert status[("transit.hsts", "legacy.example.com:443")]["status"] == "fail"
    down = status[("transit.served-certificate", "down.example.com:443")]
    assert down["status"] == "inconclusive" and "connection refused" in down["message"]
    protocols = status[("transit.ingress-tls-protocols", "legacy.example.com:443")]
    if servers["tls10"]:
        assert protocols["status"] == "fail" and "probe: accepted TLSv1" in protocols["message"]
    assert status[("transit.ingress-tls-protocols", "modern.example.com:443")]["status"] == "pass"
    # Only public data reaches the pack: no private key, whatever the probe saw.
    for f in pack.rglob("*.json"):
        assert "PRIVATE KEY" not in f.read_text()


def test_probe_address_needs_probe_tls(cli, tmp_path: Path) -> None:
    r = cli("collect", "--snapshot", tmp_path, "--out", tmp_path / "p", "--probe-address", "a.example.com=127.0.0.1")
    assert r.code == 2 and "--probe-address needs --probe-tls" in r.err


def test_the_probe_is_the_only_network_code_besides_the_sources() -> None:
    """DESIGN.md: sources talk to the cluster; the opt-in probe is the one other module that opens sockets."""
    import ast

    from conftest import ROOT

    allowed = {"evidence/probe/tls.py"}
    for path in (ROOT / "evidence").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("evidence/sources/") or rel in allowed:
            continue
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"socket", "ssl"}, rel
