"""Usage errors are one line and a hint (issue 15), with the JSON summary line under --json, never the usage block."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(("args", "text"), [
    (["collect", "--fail-on", "severe"], "invalid choice: 'severe'"),
    (["collect", "--as-of", "yesterday"], "'yesterday' is not an ISO 8601 timestamp"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["upload", "--retain-mode", "FOREVER", "pack", "s3://b/p"], "invalid choice: 'FOREVER'"),
])
def test_usage_errors_are_one_line_with_a_hint(cli, args: list[str], text: str) -> None:
    r = cli(*args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: auditpack") and text in lines[0]
    assert lines[1].startswith("  hint: `auditpack") and "--help" in lines[1]
    assert "usage:" not in r.err and r.out == ""


def test_usage_error_under_json_prints_the_json_line(cli) -> None:
    r = cli("collect", "--json", "--as-of", "yesterday")
    assert r.code == 2
    line = json.loads(r.out)
    assert line["pack"] is None and line["exit_code"] == 2 and "yesterday" in line["error"]
