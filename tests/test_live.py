"""Live collection through the real `kubernetes` client against the loopback API server (tests/fakeapi)."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
import yaml
from conftest import SAMPLE, SCOPE
from fakeapi import FakeAPIServer
from pypdf import PdfReader

from evidence.collectors import collect_all
from evidence.inventory import Inventory, key_of
from evidence.scope import load as load_scope
from evidence.sources import live, snapshot

AS_OF = "2026-11-21T06:00:00Z"
TOKENS = {"good": "system:serviceaccount:auditpack:auditpack",
          "nosecrets": "system:serviceaccount:auditpack:ns",
          "nscoped": "system:serviceaccount:auditpack:scoped",
          "nonetpol": "system:serviceaccount:auditpack:nonetpol",
          "nolist": "system:serviceaccount:auditpack:nolist"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAPIServer]:
    deny = {"nosecrets": [("secrets", None)], "nscoped": [("secrets", "payments")],
            "nonetpol": [("networkpolicies.networking.k8s.io", None)],
            "nolist": [("secrets", None, "list")]}  # get by name allowed, list denied
    with FakeAPIServer(SAMPLE, tokens=TOKENS, deny=deny) as srv:
        yield srv


@pytest.fixture
def srv(server: FakeAPIServer) -> Iterator[FakeAPIServer]:
    server.faults.clear()
    server.clear_requests()
    yield server
    server.faults.clear()


def source(srv: FakeAPIServer, tmp_path: Path, token: str = "good", page_size: int = 500) -> live.LiveSource:
    kubeconfig = srv.write_kubeconfig(tmp_path / f"kc-{token}", token=token)
    return live.LiveSource(live.connect(kubeconfig), sleep=lambda _s: None, page_size=page_size)


def test_live_facts_equal_snapshot_facts(srv: FakeAPIServer, tmp_path: Path) -> None:
    scope = load_scope(SCOPE)
    as_of = datetime(2026, 11, 21, 6, tzinfo=UTC)
    from_api = source(srv, tmp_path).load("demo-payments")
    from_files = snapshot.load(SAMPLE, "demo-payments")
    # The live source lists only kubernetes.io/tls Secrets; everything else is the same.
    wanted = [o for o in from_files.all_objects() if o["kind"] != "Secret" or o.get("type") == "kubernetes.io/tls"]
    assert sorted(map(key_of, from_api.all_objects())) == sorted(map(key_of, wanted))
    assert from_api.source.cluster.kube_system_uid == from_files.source.cluster.kube_system_uid
    live_facts = collect_all(from_api, scope, as_of).model_dump()
    # The one difference: a live pack knows who collected it, and reports that identity as an rbac_subject.
    me = [r for r in live_facts["subjects"]["rbac_subject"] if r["collector"]]
    assert [r["id"] for r in me] == ["ServiceAccount/auditpack/auditpack"]
    live_facts["subjects"]["rbac_subject"].remove(me[0])
    assert live_facts == collect_all(from_files, scope, as_of).model_dump()
    # Secrets are read only with the TLS field selector, and every list is paginated.
    secret_lists = srv.requests_for("secrets")
    assert secret_lists and all(r.query.get("fieldSelector") == "type=kubernetes.io/tls" for r in secret_lists)
    assert all("limit" in r.query for r in srv.requests if r.verb == "list")


def test_410_and_429_500_bursts_still_give_a_complete_inventory(srv: FakeAPIServer, tmp_path: Path) -> None:
    srv.faults.throttle("pods", times=3, retry_after=0)
    srv.faults.fail("pods", times=2, status=500, skip=4)
    srv.faults.fail("services", times=2, status=503)
    srv.faults.expire_continue("pods", nth=2)
    inv = source(srv, tmp_path, page_size=5).load()
    expected = snapshot.load(SAMPLE)
    assert sorted(map(key_of, inv.objects("Pod", ""))) == sorted(map(key_of, expected.objects("Pod", "")))
    assert len(inv.objects("Service", "")) == len(expected.objects("Service", ""))
    assert all(e.status != "error" for e in inv.log)
    statuses = [r.status for r in srv.requests_for("pods")]
    assert statuses.count(429) == 3 and statuses.count(500) == 2 and statuses.count(410) == 1


def test_denied_secrets_make_certificate_controls_inconclusive(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    kubeconfig = srv.write_kubeconfig(tmp_path / "kc", token="nosecrets")
    out = tmp_path / "pack"
    result = cli("collect", "--kubeconfig", kubeconfig, "--scope", SCOPE, "--out", out, "--as-of", AS_OF)
    assert result.code == 3, result.err
    # One line says what was denied and where; one request per namespace in scope, no more.
    denied = [line for line in result.out.splitlines() if "permission denied: list secrets" in line]
    assert len(denied) == 1, result.out
    assert "cluster-wide and in each of the 4 namespaces in scope tried (auth, ingress-nginx, payments, " \
        "storefront)" in denied[0]
    assert [r.namespace for r in srv.requests_for("secrets")] == [None, "auth", "ingress-nginx", "payments",
                                                                    "storefront"]
    r = json.loads((out / "results.json").read_text())
    assert [p for p in r["collection_problems"] if "secrets" in p] == [denied[0].split("incomplete: ")[1]]
    certs = {c["id"]: c["status"] for c in r["controls"] if c["id"].startswith("transit.certificate")}
    assert certs and all(s == "inconclusive" for s in certs.values()), certs
    tls = [f for f in r["findings"] if f["control"] == "transit.ingress-tls" and "legacy" not in f["subject_id"]
           and "/Service/" not in f["subject_id"]]
    assert tls and all(f["status"] == "inconclusive" for f in tls)
    text = "\n".join(p.extract_text() or "" for p in PdfReader(out / "report.pdf").pages)
    assert "permission denied: list secrets" in text.replace("\n", " ")
    wb = openpyxl.load_workbook(out / "control-matrix.xlsx")
    cells = [str(c.value) for row in wb["Summary"].iter_rows() for c in row if c.value]
    assert any("permission denied: list secrets" in c for c in cells)


def test_live_and_snapshot_of_live_give_identical_results(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
    live_pack, snap, snap_pack = tmp_path / "live", tmp_path / "snap", tmp_path / "from-snap"
    args = ["--scope", SCOPE, "--as-of", AS_OF, "--fail-on", "none", "--report", "summary"]
    assert cli("collect", "--kubeconfig", kubeconfig, "--out", live_pack, *args).code == 0
    snap_run = cli("snapshot", "--kubeconfig", kubeconfig, "--out", snap)
    assert snap_run.code == 0, snap_run.err
    assert (snap / "snapshot.json").is_file() and (snap / "collection.json").is_file()
    assert cli("collect", "--snapshot", snap, "--out", snap_pack, *args).code == 0
    for name in ("facts.json", "results.json"):
        assert (live_pack / name).read_text() == (snap_pack / name).read_text(), name
    # Without a TTY, progress is one JSON object per line on stderr.
    events = [json.loads(line) for line in snap_run.err.splitlines() if line.strip()]
    assert any(e["event"] == "list" and e["resource"] == "pods" and e["count"] > 0 for e in events)


def test_wrong_token_exits_3_with_one_line(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    kubeconfig = srv.write_kubeconfig(tmp_path / "kc", token="wrong")
    result = cli("collect", "--kubeconfig", kubeconfig, "--out", tmp_path / "p")
    assert result.code == 3
    assert "rejected the credentials (401 Unauthorized)" in result.err and "Traceback" not in result.err
    assert len([line for line in result.err.splitlines() if not line.startswith("{")]) == 2  # error + hint
    assert not (tmp_path / "p").exists()


def test_unreachable_server_exits_3(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    kc = json.loads(json.dumps(srv.kubeconfig()))
    kc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "kc"
    path.write_text(json.dumps(kc))
    result = cli("collect", "--kubeconfig", path, "--out", tmp_path / "p")
    assert result.code == 3 and "cannot reach the API server" in result.err and "connection refused" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "p").exists()


def test_tls_verification_is_always_on(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    kc = srv.kubeconfig()
    cluster = kc["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["insecure-skip-tls-verify"] = True
    path = tmp_path / "kc"
    path.write_text(json.dumps(kc))
    result = cli("collect", "--kubeconfig", path, "--out", tmp_path / "p")
    assert result.code == 3 and "TLS certificate verification failed" in result.err


def test_bad_kubeconfig_is_input_error(cli, tmp_path: Path) -> None:
    missing = cli("collect", "--kubeconfig", tmp_path / "nope", "--out", tmp_path / "p")
    assert missing.code == 2 and "does not exist" in missing.err
    (tmp_path / "kc").write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n")
    broken = cli("collect", "--kubeconfig", tmp_path / "kc", "--context", "prod", "--out", tmp_path / "p")
    assert broken.code == 2 and "kubeconfig" in broken.err and "Traceback" not in broken.err


def test_namespace_scoped_denial_is_recorded_per_namespace(srv: FakeAPIServer, tmp_path: Path) -> None:
    """Denied cluster-wide but allowed per namespace except payments: read what is allowed, mark the rest."""
    inv = source(srv, tmp_path, token="nscoped").load("demo-payments")
    assert inv.status("Secret", "", "payments").status == "forbidden"
    assert inv.status("Secret", "", "storefront").status == "ok"
    assert inv.get("Secret", "storefront", "shop-example-tls") is not None
    hosts = {s["host"]: s for s in collect_all(inv, load_scope(SCOPE), datetime(2026, 11, 21, 6, tzinfo=UTC))
             .subjects["ingress_host"]}
    assert hosts["shop.example.com"]["certificate"] is not None
    assert {u["field"]: u["reason"] for u in hosts["pay.example.com"]["unknown"]}["certificate"] == \
        "permission denied: list secrets in namespace payments"


# --- issue 14: unavailable APIs, deadlines, retry reasons, the collector's identity, Secrets by name --------------

def events_of(srv: FakeAPIServer, tmp_path: Path, token: str = "good", **kwargs: object) -> tuple[Inventory, list]:
    """Load through LiveSource, capturing the progress events it emits."""
    events: list[dict] = []
    kubeconfig = srv.write_kubeconfig(tmp_path / f"kc-{token}", token=token)
    src = live.LiveSource(live.connect(kubeconfig), live.Progress(events.append), sleep=lambda _s: None,
                          **kwargs)  # type: ignore[arg-type]
    return src.load(), events


def test_aggregated_api_at_503_is_recorded_unavailable_and_the_run_goes_on(cli, tmp_path: Path) -> None:
    """An APIService with no endpoints (the Calico API server, metrics-server) makes kube-apiserver answer 503 for
    its group/version discovery (kube-aggregator's "the server is currently unable to handle the request")."""
    with FakeAPIServer(SAMPLE, tokens=TOKENS, extra_types=["felixconfigurations.projectcalico.org"]) as srv:
        srv.faults.fail("/apis/projectcalico.org/v3", times=None, status=503,
                        message="the server is currently unable to handle the request")
        srv.faults.fail("/apis/monitoring.coreos.com/v1", times=None, status=503,
                        message="the server is currently unable to handle the request")
        kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
        out = tmp_path / "pack"
        # On a terminal (stderr is a pseudo-terminal), the progress display shows the stages after collection.
        primary, secondary = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "evidence.cli", "collect", "--kubeconfig", str(kubeconfig),
                                 "--scope", str(SCOPE), "--out", str(out), "--as-of", AS_OF],
                                stdout=subprocess.DEVNULL, stderr=secondary, cwd=SAMPLE.parents[1],
                                env={**os.environ, "COLUMNS": "200", "TERM": "xterm"})
        os.close(secondary)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(primary, chunks), daemon=True)
        reader.start()  # read while it runs: a full pseudo-terminal buffer would block the child
        proc.wait(timeout=600)
        reader.join(timeout=10)
        screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
        # Discovery of each failing group/version was asked twice (DISCOVERY_ATTEMPTS), not six times.
        assert [r.status for r in srv.requests if r.path == "/apis/projectcalico.org/v3"] == [503, 503]
    assert proc.returncode == 3, screen
    collection = json.loads((out / "collection.json").read_text())
    reason = "the API server answered 503: its storage or an aggregated API is failing (the server is " \
             "currently unable to handle the request)"
    assert collection["unavailable"] == {"projectcalico.org/v3": f"discovery of /apis/projectcalico.org/v3 failed: "
                                                                 f"{reason}",
                                         "monitoring.coreos.com/v1": f"discovery of /apis/monitoring.coreos.com/v1 "
                                                                     f"failed: {reason}"}
    log = {(e["group"], e["kind"]): e for e in collection["log"] if e["namespace"] is None}
    assert log[("projectcalico.org", "FelixConfiguration")]["status"] == "error"
    assert log[("monitoring.coreos.com", "Prometheus")]["message"].startswith(
        "prometheuses.monitoring.coreos.com not read: API group monitoring.coreos.com is unavailable: discovery")
    assert log[("crd.projectcalico.org", "FelixConfiguration")]["status"] == "ok"  # the rest was read
    # Every control over monitoring facts is inconclusive, and says why.
    results = json.loads((out / "results.json").read_text())
    monitoring = [c for c in results["controls"] if c["id"].startswith("monitoring.")]
    assert monitoring and all(c["status"] == "inconclusive" for c in monitoring), monitoring
    # The reason reaches the run's problems (and so the report's collection section) and every affected finding.
    assert any(p.startswith("prometheuses.monitoring.coreos.com not read: API group monitoring.coreos.com is "
                            "unavailable") for p in results["collection_problems"])
    for f in (f for f in results["findings"] if f["control"].startswith("monitoring.")):
        assert any("API group monitoring.coreos.com is unavailable" in r for r in f["reasons"]), f
    # The terminal showed the stages and the page count, and named the unavailable group once.
    pages = len(PdfReader(out / "report.pdf").pages)
    assert f"report.pdf, {pages} pages" in screen, screen
    assert screen.count("API projectcalico.org/v3 unavailable") == 1
    assert "collecting as system:serviceaccount:auditpack:auditpack" in screen


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)


def test_stage_events_without_a_terminal(cli, srv: FakeAPIServer, tmp_path: Path) -> None:
    kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
    result = cli("collect", "--kubeconfig", kubeconfig, "--out", tmp_path / "p", "--scope", SCOPE, "--as-of", AS_OF,
                 "--fail-on", "none")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    stages = [e["stage"] for e in events if e["event"] == "stage"]
    # The PDF is laid out in two processes while the workbook and OSCAL are written, then its parts are joined
    # (pipeline.render_all, render/parts.py).
    assert stages == ["collecting", "deriving facts", "evaluating", "rendering PDF, workbook and OSCAL",
                      "writing workbook", "writing OSCAL", "joining PDF parts", "rendered PDF", "writing manifest"]
    rendered = next(e for e in events if e.get("stage") == "rendered PDF")
    assert rendered["pages"] == len(PdfReader(tmp_path / "p" / "report.pdf").pages) > 1
    # The pack records who collected: the API server's own answer (SelfSubjectReview).
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    collector = manifest["evidence"]["cluster"]["collector"]
    assert collector["username"] == TOKENS["good"] and collector["source"].startswith("SelfSubjectReview")
    assert collector["groups"] == ["system:serviceaccounts", "system:serviceaccounts:auditpack",
                                   "system:authenticated"]


def test_storage_down_is_named_bounded_and_still_gives_an_inventory(srv: FakeAPIServer, tmp_path: Path) -> None:
    """etcd down: /version still answers (it needs no storage), every read answers 503. The reason is named, retries
    stop after a few types, and the run ends with every type recorded as not read."""
    srv.faults.fail(lambda r: r.verb in ("list", "get"), times=None, status=503, message="etcdserver: request timed out")
    inv, events = events_of(srv, tmp_path)
    assert inv.source.cluster.kube_system_uid is None and inv.source.cluster.version == "v1.31.4"
    read = [e for e in inv.log if e.status != "not_served"]
    assert read and all(e.status == "error" for e in read)
    assert all("the API server answered 503: its storage or an aggregated API is failing (etcdserver: request "
               "timed out)" in str(e.message) for e in read), read[0].message
    retries = [e for e in events if e["event"] == "retry"]
    assert retries and all("answered 503" in e["reason"] and "attempt" in e["reason"] for e in retries)
    # Six attempts for the first types, then one each: not six per type (etcd down took 380 s before this).
    lists = [r for r in srv.requests if r.verb == "list"]
    assert len(lists) <= 4 * live.MAX_ATTEMPTS + len(read), len(lists)
    assert "cannot reach" not in json.dumps([e.model_dump() for e in inv.log])


def test_retry_events_name_the_status_and_the_exception(srv: FakeAPIServer, tmp_path: Path) -> None:
    srv.faults.throttle("pods", times=1, retry_after=0)
    srv.faults.fail("services", times=1, status=500, message="boom")
    srv.faults.hang("configmaps", times=1, seconds=5)
    _, events = events_of(srv, tmp_path, request_timeout=0.5)
    reasons = {e["resource"]: e["reason"] for e in events if e["event"] == "retry"}
    assert reasons["/api/v1/pods"].startswith("the API server answered 429 Too Many Requests")
    assert reasons["/api/v1/services"].startswith("the API server answered 500 (Internal error occurred: boom)")
    assert reasons["/api/v1/configmaps"].startswith("no answer within the per-request timeout (ReadTimeoutError)")
    assert all("(attempt 1 of 6)" in r for r in reasons.values())


def test_deadline_writes_the_pack_with_the_rest_inconclusive_and_exits_3(cli, srv: FakeAPIServer,
                                                                         tmp_path: Path) -> None:
    srv.faults.hang("pods", times=None, seconds=30)
    kubeconfig = srv.write_kubeconfig(tmp_path / "kc")
    out = tmp_path / "pack"
    started = time.monotonic()
    result = cli("collect", "--kubeconfig", kubeconfig, "--scope", SCOPE, "--out", out, "--as-of", AS_OF,
                 "--timeout", "4", "--request-timeout", "1", "--report", "summary")
    assert result.code == 3, result.err
    # Collection stopped at the deadline (rendering afterwards takes what it takes on a loaded machine).
    events = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    stages = {e["stage"]: datetime.fromisoformat(e["ts"]) for e in events if e.get("event") == "stage"}
    assert (stages["deriving facts"] - stages["collecting"]).total_seconds() < 30
    assert time.monotonic() - started < 600
    log = json.loads((out / "collection.json").read_text())["log"]
    pods = next(e for e in log if e["kind"] == "Pod")
    assert pods["status"] == "error" and "deadline (--timeout 4 s) was reached" in pods["message"]
    after = log[[e["kind"] for e in log].index("Pod") + 1:]
    assert after and all(e["status"] == "error" and "deadline" in e["message"] for e in after)
    results = json.loads((out / "results.json").read_text())
    # Nothing that was not read is passed, not applicable or manual: monitoring needs Pods, and they were not read.
    statuses = {c["id"]: c["status"] for c in results["controls"]}
    assert all(statuses[c] == "inconclusive" for c in statuses if c.startswith("monitoring."))
    assert "deadline" in result.out


# CPython 3.11's ssl.SSLSocket._create leaks the socket when the peer resets it between connect() and the TLS
# handshake (getpeername says ENOTCONN, then recv raises ECONNRESET, and that path raises without closing). The
# dying server does exactly that to the client's next connection; neither urllib3 nor auditpack ever holds that
# socket, so only the garbage collector closes it (in this test's teardown, see conftest).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_server_that_dies_mid_run_leaves_a_pack_of_what_was_read(tmp_path: Path) -> None:
    with FakeAPIServer(SAMPLE, tokens=TOKENS) as srv:
        srv.faults.die("deployments")
        started = time.monotonic()
        inv, _ = events_of(srv, tmp_path)
    assert time.monotonic() - started < 30
    assert inv.status("Pod", "").status == "ok" and inv.objects("Pod", "")
    after = [e for e in inv.log if e.kind not in ("Namespace", "Node", "Pod", "Service", "ConfigMap", "Secret",
                                                  "ServiceAccount")]
    assert after and all(e.status == "error" for e in after)
    assert all("not read: the API server stopped answering (connection refused)" in str(e.message) for e in after[1:])


def test_token_rejected_mid_run_stops_reading_but_keeps_the_pack(srv: FakeAPIServer, tmp_path: Path) -> None:
    srv.faults.fail("services", times=None, status=401, message="Unauthorized")
    inv, _ = events_of(srv, tmp_path)
    assert inv.status("Pod", "").status == "ok"
    rest = inv.log[[e.kind for e in inv.log].index("Service"):]
    assert all(e.status == "error" and "rejected the credentials (401 Unauthorized)" in str(e.message) for e in rest)
    assert len([r for r in srv.requests if r.status == 401]) == 1  # not one per remaining type


def test_messages_name_the_group(srv: FakeAPIServer, tmp_path: Path) -> None:
    inv = source(srv, tmp_path, token="nonetpol").load()
    entry = inv.status("NetworkPolicy", "networking.k8s.io")
    assert entry.status == "forbidden"
    assert entry.message.startswith("permission denied: list networkpolicies.networking.k8s.io cluster-wide")
    assert entry.reason("networkpolicies").startswith("permission denied: list networkpolicies.networking.k8s.io")
    calico = inv.status("NetworkPolicy", "crd.projectcalico.org")  # the other networkpolicies: not denied
    assert calico.status == "not_served" and calico.reason("networkpolicies") == \
        "networkpolicies.crd.projectcalico.org are not served by this cluster"


def test_collector_identity_without_self_subject_review(tmp_path: Path) -> None:
    """Before 1.27 the API server has no SelfSubjectReview: the token's claims say who it is, else the kubeconfig
    user entry's name, and the pack says which."""
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "system:serviceaccount:audit:collector"}).encode())
    jwt = "eyJhbGciOiJSUzI1NiJ9." + claims.decode().rstrip("=") + ".c2ln"
    with FakeAPIServer(SAMPLE, tokens={jwt: "system:serviceaccount:audit:collector", "good": TOKENS["good"]},
                       self_subject_review=False) as srv:
        with live.connect(srv.write_kubeconfig(tmp_path / "kc1", token=jwt)) as conn:
            by_claims = live.LiveSource(conn).identity()
        with live.connect(srv.write_kubeconfig(tmp_path / "kc2", context="ops")) as conn:
            by_name = live.LiveSource(conn).identity()
        assert [r.status for r in srv.requests if r.method == "POST"] == [404, 404]
    assert by_claims.collector is not None and by_name.collector is not None
    assert by_claims.collector.username == "system:serviceaccount:audit:collector"
    assert by_claims.collector.source == \
        "kubeconfig user 'fake': the bearer token's claims (SelfSubjectReview not available)"
    assert (by_name.collector.username, by_name.collector.source) == (
        "ops", "kubeconfig user 'ops': name only (the API server did not say who this is)")


def test_secrets_by_name_get_exactly_the_referenced_ones_and_list_none(srv: FakeAPIServer, tmp_path: Path) -> None:
    scope = load_scope(SCOPE)
    as_of = datetime(2026, 11, 21, 6, tzinfo=UTC)
    by_name = live.LiveSource(live.connect(srv.write_kubeconfig(tmp_path / "kc", token="nolist")),
                              sleep=lambda _s: None, secrets="by-name").load("demo-payments")
    secret_requests = srv.requests_for("secrets")
    assert {r.verb for r in secret_requests} == {"get"}
    assert sorted((r.namespace, r.name) for r in secret_requests) == [
        ("auth", "auth-example-tls"), ("monitoring", "grafana-example-tls"), ("payments", "pay-example-tls"),
        ("payments", "pay-internal-example-tls"), ("storefront", "shop-example-tls")]
    entry = by_name.status("Secret", "")
    assert entry.status == "ok" and entry.message.startswith("read by name (no list): 5 of the 5 TLS Secrets")
    listed = source(srv, tmp_path).load("demo-payments")
    assert collect_all(by_name, scope, as_of).subjects["ingress_host"] == \
        collect_all(listed, scope, as_of).subjects["ingress_host"]


def test_no_secrets_sends_no_secret_request_and_says_so(srv: FakeAPIServer, tmp_path: Path) -> None:
    inv, _ = events_of(srv, tmp_path, secrets="none")
    assert srv.requests_for("secrets") == []
    entry = inv.status("Secret", "")
    assert entry.status == "error" and "--no-secrets" in str(entry.message)


def test_rbac_tls_secrets_from_cluster_roles_are_enough_to_collect(cli, tmp_path: Path) -> None:
    """`auditpack rbac --tls-secrets-from-cluster` against the cluster; then a collector holding exactly that
    output (the API server enforcing resourceNames) collects the same ingress facts as with `list secrets`."""
    with FakeAPIServer(SAMPLE, tokens=TOKENS) as admin_view:
        result = cli("rbac", "--tls-secrets-from-cluster", "--kubeconfig",
                     admin_view.write_kubeconfig(tmp_path / "admin"))
    assert result.code == 0, result.err
    docs = list(yaml.safe_load_all(result.out))
    assert [d["kind"] for d in docs] == ["ClusterRole"] + ["Role", "RoleBinding"] * 4
    assert not any("secrets" in r.get("resources", []) for r in docs[0]["rules"])
    roles = {d["metadata"]["namespace"]: d["rules"] for d in docs if d["kind"] == "Role"}
    assert roles["payments"] == [{"apiGroups": [""], "resources": ["secrets"],
                                  "resourceNames": ["pay-example-tls", "pay-internal-example-tls"], "verbs": ["get"]}]
    assert set(roles) == {"auth", "monitoring", "payments", "storefront"}
    assert "5 TLS Secrets referenced in 4 namespaces" in result.err
    with FakeAPIServer(SAMPLE, tokens=TOKENS, allow={"good": [d for d in docs if d["kind"] != "RoleBinding"]}) as srv:
        out = tmp_path / "pack"
        run = cli("collect", "--report", "summary",
                  "--kubeconfig", srv.write_kubeconfig(tmp_path / "kc"), "--scope", SCOPE, "--out", out,
                  "--as-of", AS_OF, "--secrets", "by-name", "--fail-on", "none")
        assert {r.verb for r in srv.requests_for("secrets")} == {"get"}
        assert all(r.status == 200 for r in srv.requests_for("secrets"))
    assert run.code == 0, run.out + run.err
    with FakeAPIServer(SAMPLE, tokens=TOKENS) as srv:
        full = tmp_path / "full"
        assert cli("collect", "--report", "summary", "--kubeconfig", srv.write_kubeconfig(tmp_path / "kc2"),
                   "--scope", SCOPE, "--out", full, "--as-of", AS_OF, "--fail-on", "none").code == 0
    hosts = json.loads((out / "facts.json").read_text())["subjects"]["ingress_host"]
    assert hosts == json.loads((full / "facts.json").read_text())["subjects"]["ingress_host"]


def _collector_pack_facts(tmp_path: Path, role: dict) -> tuple[dict, list]:
    """Collect as the ServiceAccount auditpack/auditpack, bound cluster-wide to `role`; its rbac_subject and the
    access.cde-secrets findings about it."""
    from evidence.controls import load_catalogue
    from evidence.evaluate import evaluate

    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "auditpack", "uid": "crb-auditpack", "resourceVersion": "1"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": role["metadata"]["name"]},
               "subjects": [{"kind": "ServiceAccount", "name": "auditpack", "namespace": "auditpack"}]}
    with FakeAPIServer(SAMPLE, tokens=TOKENS, objects=[role, binding]) as srv:
        inv = source(srv, tmp_path).load("demo-payments")
    assert inv.source.cluster.collector is not None
    assert inv.source.cluster.collector.username == "system:serviceaccount:auditpack:auditpack"
    scope = load_scope(SCOPE)
    facts = collect_all(inv, scope, datetime(2026, 11, 21, 6, tzinfo=UTC))
    me = next(s for s in facts.subjects["rbac_subject"] if s["id"] == "ServiceAccount/auditpack/auditpack")
    results = evaluate(load_catalogue(), facts, scope, inv.log)
    return me, [f for f in results.findings if f.control == "access.cde-secrets" and f.subject_id == me["id"]]


def test_the_collector_bound_to_the_generated_role_is_shown_as_the_collector_not_a_failure(tmp_path: Path) -> None:
    from evidence.clusterrole import cluster_role

    me, findings = _collector_pack_facts(tmp_path, {**cluster_role(), "metadata": {"name": "auditpack", "uid": "cr1"}})
    assert me["collector"] is True and me["cde_secret_read"] == []
    assert me["collector_secret_read"] == [
        "payments: list secrets, cluster-wide via ClusterRoleBinding/auditpack (ClusterRole/auditpack): auditpack's "
        "collector, the role `auditpack rbac` generates"]
    assert [f.status for f in findings] == ["pass"]


def test_the_collector_with_a_broader_role_still_fails_access_cde_secrets(tmp_path: Path) -> None:
    broad = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "auditpack-broad", "uid": "cr2"},
             "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "list", "watch"]}]}
    me, findings = _collector_pack_facts(tmp_path, broad)
    assert me["collector"] is True and me["collector_secret_read"] == []
    assert me["cde_secret_read"] == [
        "payments: get, list, watch secrets, cluster-wide via ClusterRoleBinding/auditpack "
        "(ClusterRole/auditpack-broad) (auditpack's collector, through a role broader than `auditpack rbac` generates)"]
    assert [f.status for f in findings] == ["fail"]
    assert "auditpack's collector" in findings[0].message


def test_default_deadline_fits_inside_the_cronjobs_active_deadline() -> None:
    """The run's --timeout default leaves time to evaluate and render before Kubernetes kills the Job's pod."""
    from evidence.sources.limits import DEFAULT_RUN_TIMEOUT_S

    job = yaml.safe_load((SAMPLE.parents[1] / "deploy" / "base" / "cronjob.yaml").read_text())
    active = job["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert active - 3600 >= DEFAULT_RUN_TIMEOUT_S, (DEFAULT_RUN_TIMEOUT_S, active)


def test_live_options_parse_and_reach_every_cluster_of_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    from evidence import cli, fleet

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    actions = sub.choices["collect"]._actions  # type: ignore[attr-defined]
    for argv, forwarded in ((["--no-secrets"], ["--no-secrets"]), (["--secrets", "by-name"], ["--secrets", "by-name"]),
                            (["--timeout", "600", "--request-timeout", "5"], ["--timeout", "600.0",
                                                                              "--request-timeout", "5.0"])):
        args = parser.parse_args(["collect", "--out-root", "packs", "--all-contexts", *argv])
        assert fleet.forwarded_options(args, actions) == forwarded
    assert cli.main(["collect", "--out", "p", "--timeout", "0"]) == 2  # a usage error, not a run
    assert "give a positive number of seconds" in capsys.readouterr().err
    assert cli.main(["collect", "--out", "p", "--no-secrets", "--secrets", "by-name"]) == 2
    assert "give --no-secrets or --secrets, not both" in capsys.readouterr().err
