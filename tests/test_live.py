"""Live collection through the real `kubernetes` client against the loopback API server (tests/fakeapi)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLE, SCOPE
from fakeapi import FakeAPIServer
from pypdf import PdfReader

from evidence.collectors import collect_all
from evidence.inventory import key_of
from evidence.scope import load as load_scope
from evidence.sources import live, snapshot

AS_OF = "2026-11-21T06:00:00Z"
TOKENS = {"good": "system:serviceaccount:auditpack:auditpack",
          "nosecrets": "system:serviceaccount:auditpack:ns",
          "nscoped": "system:serviceaccount:auditpack:scoped"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAPIServer]:
    deny = {"nosecrets": [("secrets", None)], "nscoped": [("secrets", "payments")]}
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
    assert collect_all(from_api, scope, as_of).model_dump() == collect_all(from_files, scope, as_of).model_dump()
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
    assert "incomplete: permission denied: list secrets" in result.out
    r = json.loads((out / "results.json").read_text())
    assert "permission denied: list secrets" in r["collection_problems"]
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
    args = ["--scope", SCOPE, "--as-of", AS_OF, "--fail-on", "none"]
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
