"""Fleets: `collect --contexts` against two loopback API servers and a dead one, through the real CLI."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import yaml
from conftest import SAMPLE, SCOPE
from fakeapi import FakeAPIServer
from pypdf import PdfReader

AS_OF = "2026-11-21T06:00:00Z"


def merged_kubeconfig(path: Path, servers: dict[str, FakeAPIServer], dead: str) -> Path:
    """One kubeconfig with a context per server, plus `dead`: a copy of the first pointing at a closed port."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for name, srv in servers.items():
        kc = srv.kubeconfig(context=name)
        for key in ("clusters", "users", "contexts"):
            merged[key] += kc[key]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on leaving the block: nothing listens there
    first = next(iter(servers.values())).kubeconfig(context=dead)
    first["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    for key in ("clusters", "users", "contexts"):
        merged[key] += first[key]
    merged["current-context"] = dead
    path.write_text(yaml.safe_dump(merged))
    return path


def test_fleet_writes_each_pack_and_says_which_cluster_failed(cli, tmp_path: Path) -> None:
    with FakeAPIServer(SAMPLE) as a, FakeAPIServer(SAMPLE, version="v1.30.2") as b:
        kc = merged_kubeconfig(tmp_path / "kubeconfig", {"prod-se": a, "prod-no": b}, dead="prod-dead")
        root = tmp_path / "packs"
        root.mkdir()
        r = cli("collect", "--kubeconfig", kc, "--contexts", "prod-se,prod-dead,prod-no", "--out-root", root,
                "--scope", SCOPE, "--as-of", AS_OF, "--fail-on", "none", "--parallel", "2", "--json",
                "--previous", "auto", "--keep", "4", "--report", "summary")
        assert a.requests and b.requests

    # stdout: one JSON line per cluster as it finishes, then the fleet line; the exit code is the worst (3).
    assert r.code == 3, r.err
    lines = [json.loads(line) for line in r.out.splitlines()]
    per = {ln["context"]: ln for ln in lines[:-1]}
    fleet = lines[-1]
    assert set(per) == {"prod-se", "prod-no", "prod-dead"}
    for ctx in ("prod-se", "prod-no"):
        pack = Path(per[ctx]["pack"])
        assert per[ctx]["exit_code"] == 0 and pack.parent == root / ctx and per[ctx]["cluster"] == ctx
        assert per[ctx]["previous"] is None  # the first pack of this cluster under root
        assert per[ctx]["controls"]["fail"] >= 1  # --fail-on none: failures are counted, not an exit code
        assert cli("verify", pack).code == 7  # intact; unsigned, so authenticity is not established
        assert json.loads((pack / "manifest.json").read_text())["evidence"]["cluster"]["name"] == ctx
    dead = per["prod-dead"]
    assert dead["exit_code"] == 3 and dead["pack"] is None
    assert "cannot reach the API server" in dead["error"] and "connection refused" in dead["error"]
    assert not (root / "prod-dead").exists() or not any(p.name[0].isdigit() for p in (root / "prod-dead").iterdir())
    assert fleet["exit_code"] == 3 and fleet["failed"] == ["prod-dead"]
    assert fleet["clusters"] == {"prod-se": 0, "prod-dead": 3, "prod-no": 0}

    # The fleet summary: JSON, a one-page PDF and a workbook, in DIR/fleet/<timestamp>/.
    summary_dir = Path(fleet["fleet"])
    assert summary_dir.parent == root / "fleet"
    assert sorted(p.name for p in summary_dir.iterdir()) == ["fleet-summary.json", "fleet-summary.pdf",
                                                              "fleet-summary.xlsx"]
    summary = json.loads((summary_dir / "fleet-summary.json").read_text())
    assert [c["context"] for c in summary["clusters"]] == ["prod-se", "prod-dead", "prod-no"]
    pdf = PdfReader(summary_dir / "fleet-summary.pdf")
    assert len(pdf.pages) == 1
    text = " ".join((pdf.pages[0].extract_text() or "").split())
    assert "No complete pack for: prod-dead" in text and "connection refused" in text
    assert per["prod-se"]["pack"].replace(" ", "")[-16:] in text.replace(" ", "")
    rows = list(openpyxl.load_workbook(summary_dir / "fleet-summary.xlsx")["Clusters"].iter_rows(values_only=True))
    by_ctx = {row[0]: row for row in rows[1:]}
    assert by_ctx["prod-dead"][1:3] == ("collection incomplete", 3) and by_ctx["prod-dead"][7] is None
    assert by_ctx["prod-se"][2] == 0 and by_ctx["prod-se"][7] == per["prod-se"]["pack"]
    assert by_ctx["prod-se"][4] == per["prod-se"]["controls"]["fail"]

    # stderr: JSON log lines, each naming its cluster; at most --parallel clusters ran at once, and two did.
    events = [json.loads(line) for line in r.err.splitlines() if line.startswith("{")]
    assert events and all("cluster" in e for e in events)
    assert any(e.get("event") == "list" and e["cluster"] == "prod-no" for e in events)
    running, peak = 0, 0
    for e in sorted((e for e in events if e.get("event") in ("cluster_start", "cluster_done")),
                    key=lambda e: (datetime.fromisoformat(e["ts"]), e["event"] == "cluster_start")):
        running += 1 if e["event"] == "cluster_start" else -1
        peak = max(peak, running)
    assert peak == 2


def test_fleet_usage_errors_write_nothing(cli, tmp_path: Path) -> None:
    with FakeAPIServer(SAMPLE) as a:
        kc = merged_kubeconfig(tmp_path / "kubeconfig", {"one": a}, dead="two")
        root = tmp_path / "packs"
        root.mkdir()
        typo = cli("collect", "--kubeconfig", kc, "--contexts", "one,tow", "--out-root", root)
        assert typo.code == 2 and "no context 'tow'" in typo.err and "one, two" in typo.err
        both = cli("collect", "--kubeconfig", kc, "--all-contexts", "--out", tmp_path / "p")
        assert both.code == 2 and "need --out-root" in both.err
        zero = cli("collect", "--kubeconfig", kc, "--all-contexts", "--out-root", root, "--parallel", "0")
        assert zero.code == 2 and "--parallel 0" in zero.err
        assert not a.requests and not any(root.iterdir())


def test_every_collect_option_reaches_each_cluster_run() -> None:
    """The fleet passes the user's collect options on, generically: options added to collect later come along."""
    import argparse

    from evidence.cli import build_parser
    from evidence.fleet import FLEET_ONLY, forwarded_options

    parser = build_parser()
    collect = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["collect"]
    given = parser.parse_args(["collect", "--contexts", "a,b", "--out-root", "r", "--scope", "s.yaml", "--controls",
                               "c1", "--controls", "c2", "--fail-on", "high", "--as-of", AS_OF, "--keep", "3",
                               "--previous", "auto", "--parallel", "3", "--json"])
    forwarded = forwarded_options(given, collect._actions)
    assert "--contexts" not in forwarded and "--parallel" not in forwarded and "--json" not in forwarded
    child = parser.parse_args(["collect", "--out-root", "r", "--context", "a", *forwarded])
    for action in collect._actions:
        if action.dest not in FLEET_ONLY:
            assert getattr(child, action.dest) == getattr(given, action.dest), action.dest
