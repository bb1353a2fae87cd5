"""Live TLS probe (`auditpack collect --probe-tls`, off by default): for each exposed host, connect with SNI and
record the negotiated protocol and cipher, which protocol versions are accepted, the served certificate,
the HSTS header, and whether plain HTTP on port 80 redirects to HTTPS (PCI DSS 4.2.1, 12.3.3).

Bounded: every connection has a timeout, at most `concurrency` hosts are probed at once, and the whole probe
stops waiting after `budget` seconds (hosts not reached by then are recorded as not probed, with why).
Results become `TLSProbe` objects (group probe.auditpack.io) in the inventory, so the ingress collector reads
them like any other evidence, and the full record is written to the pack as probes/tls.json. Only public
data is kept: certificate fingerprints and names, protocol names, status codes and two response headers.
"""

from __future__ import annotations

import concurrent.futures
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from evidence.errors import InputError
from evidence.facts import IngressHost
from evidence.inventory import CollectionEntry, Inventory
from evidence.scope import Scope

GROUP, KIND, API_VERSION = "probe.auditpack.io", "TLSProbe", "probe.auditpack.io/v1"
VERSIONS: dict[str, ssl.TLSVersion] = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                                       "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
WEAK = ("TLSv1", "TLSv1.1")
MAX_HEADER_BYTES = 16_384
REDIRECT_CODES = (301, 302, 303, 307, 308)
USER_AGENT = "auditpack-tls-probe"


@dataclass
class ProbeOptions:
    """--probe-address overrides ('HOST[:PORT]' -> 'IP[:PORT]'), per-connection timeout, parallelism, budget."""

    addresses: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    concurrency: int = 8
    budget: float = 120.0

    @staticmethod
    def parse_address(spec: str) -> tuple[str, str]:
        """'shop.example.com=203.0.113.20' or 'shop.example.com:443=127.0.0.1:8443' -> (key, value)."""
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"--probe-address {spec!r}: expected HOST=IP or HOST:PORT=IP:PORT",
                             "for example --probe-address shop.example.com=203.0.113.20")
        return key.strip().lower(), value.strip()


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    kind: str
    entry_points: tuple[str, ...]
    address: str | None
    connect_port: int
    address_source: str
    http: tuple[str, int] | None  # where to check plain HTTP (port 80 of the host), if anywhere
    sni: bool
    skip: str | None = None


def _split(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if not host:
        return value, default_port
    try:
        return host, int(port)
    except ValueError:
        return value, default_port


def _lookup(mapping: dict[str, str], host: str, port: int) -> tuple[str, int] | None:
    exact = mapping.get(f"{host}:{port}".lower())
    if exact:
        return _split(exact, port)
    whole = mapping.get(host.lower())
    if whole:
        address, _ = _split(whole, port)
        return address, port  # a host-wide mapping keeps the entry point's port
    return None


def targets(entry_points: list[IngressHost], scope: Scope, options: ProbeOptions) -> list[Target]:
    """One target per distinct (host, port); the address comes from --probe-address, then the scope file's
    host_addresses, then the entry point's load-balancer status."""
    scope_map = {k.lower(): v for k, v in scope.host_addresses.items()}
    grouped: dict[tuple[str, int], list[IngressHost]] = {}
    for ep in entry_points:
        if ep.kind == "Service" or ep.tls:
            grouped.setdefault((ep.host, ep.port), []).append(ep)
    out = []
    for (host, port), eps in sorted(grouped.items()):
        ids = tuple(sorted(e.id for e in eps))
        kind = eps[0].kind
        found, source = _lookup(options.addresses, host, port), "--probe-address"
        if found is None:
            found, source = _lookup(scope_map, host, port), "scope file host_addresses"
        if found is None:
            status = next((a for e in eps for a in e.addresses), None)
            if status and not status.startswith("("):
                found, source = (status, port), f"load-balancer status of {eps[0].kind} {eps[0].namespace}/{eps[0].ingress}"
        http = None
        if kind != "Service":
            http = _lookup(options.addresses, host, 80) or _lookup(scope_map, host, 80) or (
                (found[0], 80) if found and source.startswith("load-balancer") else None)
        skip = None
        if host == "*" or host.startswith("*."):
            skip = f"wildcard host {host}: there is no single name to connect to"
        elif found is None:
            skip = (f"no address for {host}: the object has no load-balancer status; add it to host_addresses in "
                    f"the scope file or pass --probe-address {host}=IP")
        out.append(Target(host=host, port=port, kind=kind, entry_points=ids, address=found[0] if found else None,
                          connect_port=found[1] if found else port, address_source=source if found else "",
                          http=http, sni=kind != "Service", skip=skip))
    return out


def _context(version: str | None = None) -> ssl.SSLContext:
    # Verification is off on purpose: the probe records what is served (chain, names, validity) and the
    # certificate controls judge it; a failed verification would hide exactly the certificate to report.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        if version in WEAK:
            # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; lower it to be able to ask.
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Python deprecates offering TLS 1.0/1.1; offering them is exactly how the probe tests servers.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = VERSIONS[version]
            ctx.maximum_version = VERSIONS[version]
    return ctx


def _connect(t: Target, ctx: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    assert t.address is not None
    raw = socket.create_connection((t.address, t.connect_port), timeout=timeout)
    try:
        raw.settimeout(timeout)
        return ctx.wrap_socket(raw, server_hostname=t.host if t.sni else None)
    except BaseException:
        raw.close()
        raise


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEADER_BYTES:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def _http_head(sock: socket.socket, host: str) -> tuple[int | None, dict[str, str]]:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n".encode())
    lines = _read_head(sock).decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2) if lines and lines[0] else []
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def probe(t: Target, timeout: float) -> dict[str, Any]:
    """Probe one target; never raises. The result has the fields of facts.TLSProbeFacts plus a few extras."""
    result: dict[str, Any] = {"address": t.address, "address_source": t.address_source, "connect_port": t.connect_port,
                              "reachable": False, "error": t.skip, "versions_accepted": [], "versions_refused": [],
                              "versions_untested": [], "weak_versions_accepted": [],
                              "probed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if t.skip or t.address is None:
        return result
    try:
        sock = _connect(t, _context(), timeout)
    except ssl.SSLError as exc:
        result.update(reachable=True, error=f"TLS handshake failed: {_reason(exc)}")
    except OSError as exc:
        result["error"] = _reason(exc)
        return result
    else:
        with sock:
            result.update(reachable=True, error=None, protocol=sock.version(), cipher=(sock.cipher() or (None,))[0])
            _served(sock, result)
            if t.kind != "Service":
                try:
                    _, headers = _http_head(sock, t.host)
                    result["hsts"] = headers.get("strict-transport-security")
                except OSError as exc:
                    result["hsts_error"] = _reason(exc)
    if t.kind == "Service" and result.get("protocol") is None:
        return result  # not a TLS port: versions and HTTP do not apply
    _versions(t, timeout, result)
    if t.http is not None:
        _plain_http(t, timeout, result)
    return result


def _served(sock: ssl.SSLSocket, result: dict[str, Any]) -> None:
    der = sock.getpeercert(binary_form=True)
    if not der:
        return
    cert = x509.load_der_x509_certificate(der)
    result.update(served_fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
                  served_subject=cert.subject.rfc4514_string(), served_issuer=cert.issuer.rfc4514_string(),
                  served_not_after=cert.not_valid_after_utc.isoformat())
    chain = getattr(sock, "get_unverified_chain", None)  # Python 3.13+
    if chain is not None:
        certs = chain() or []
        result["served_chain_length"] = len(certs)
        result["served_chain_fingerprints"] = [
            x509.load_der_x509_certificate(bytes(c)).fingerprint(hashes.SHA256()).hex() for c in certs]


def _versions(t: Target, timeout: float, result: dict[str, Any]) -> None:
    for name in VERSIONS:
        try:
            ctx = _context(name)
        except (ValueError, ssl.SSLError):
            result["versions_untested"].append(name)
            continue
        try:
            with _connect(t, ctx, timeout):
                result["versions_accepted"].append(name)
        except ssl.SSLError as exc:
            # NO_PROTOCOLS_AVAILABLE: this machine's OpenSSL cannot offer the version at all.
            key = "versions_untested" if exc.reason == "NO_PROTOCOLS_AVAILABLE" else "versions_refused"
            result[key].append(name)
        except OSError:
            result["versions_refused"].append(name)
    result["weak_versions_accepted"] = [v for v in result["versions_accepted"] if v in WEAK]
    if result["versions_accepted"] and not result.get("protocol"):
        result["error"] = None
        result["protocol"] = result["versions_accepted"][-1]


def _plain_http(t: Target, timeout: float, result: dict[str, Any]) -> None:
    assert t.http is not None
    try:
        with socket.create_connection(t.http, timeout=timeout) as sock:
            sock.settimeout(timeout)
            status, headers = _http_head(sock, t.host)
    except OSError as exc:
        result["http_error"] = f"{t.http[0]}:{t.http[1]}: {_reason(exc)}"
        return
    location = headers.get("location")
    result.update(http_status=status, http_location=location,
                  http_redirects_to_https=status in REDIRECT_CODES and bool(location)
                  and str(location).lower().startswith("https://"))


def run(inv: Inventory, scope: Scope, options: ProbeOptions) -> dict[str, Any]:
    """Probe every exposed host (bounded) and return the record written to probes/tls.json."""
    from evidence.collectors import ingress  # the entry points, exactly as the ingress collector sees them

    started, clock = datetime.now(UTC), time.monotonic()
    todo = targets(ingress.entry_points(inv, scope), scope, options)
    results: dict[Target, dict[str, Any]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.concurrency),
                                                 thread_name_prefix="tls-probe")
    futures = {pool.submit(probe, t, options.timeout): t for t in todo}
    done, pending = concurrent.futures.wait(futures, timeout=options.budget)
    for f in done:
        results[futures[f]] = f.result()
    for f in pending:
        f.cancel()
        t = futures[f]
        results[t] = {"address": t.address, "address_source": t.address_source, "connect_port": t.connect_port,
                      "reachable": False, "error": f"probe time budget of {options.budget:g}s ran out before "
                      f"{t.host}:{t.port} was probed", "versions_accepted": [], "versions_refused": [],
                      "versions_untested": [], "weak_versions_accepted": []}
    pool.shutdown(wait=False, cancel_futures=True)
    return {
        "format": "auditpack-tls-probe/v1",
        "options": {"timeout_s": options.timeout, "concurrency": options.concurrency, "budget_s": options.budget,
                    "addresses": dict(sorted(options.addresses.items())), "openssl": ssl.OPENSSL_VERSION},
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(time.monotonic() - clock, 3),
        "results": [{"host": t.host, "port": t.port, "kind": t.kind, "entry_points": list(t.entry_points),
                     "sni": t.host if t.sni else None, **results[t]} for t in todo],
    }


def record(inv: Inventory, record_: dict[str, Any]) -> None:
    """Add each result to the inventory as a TLSProbe evidence object, and the probe to the collection log."""
    for r in record_["results"]:
        spec = {k: r[k] for k in ("host", "port", "kind", "entry_points", "sni")}
        status = {k: v for k, v in r.items() if k not in spec}
        inv.add({"apiVersion": API_VERSION, "kind": KIND,
                 "metadata": {"name": f"{r['host']}:{r['port']}", "creationTimestamp": status.get("probed_at")},
                 "spec": spec, "status": status})
    inv.log.append(CollectionEntry(group=GROUP, kind=KIND, status="ok", count=len(record_["results"]),
                                   duration_s=float(record_["duration_s"]),
                                   message=f"live TLS probe of {len(record_['results'])} host:port targets"))
