"""Shared fixtures: the demo sample, a CLI runner, and one demo pack built once per test session."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "demo-cluster"
SCOPE = ROOT / "samples" / "scope.yaml"
ATTESTATIONS = ROOT / "samples" / "attestations.yaml"


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr


def run_cli(*args: str | Path, cwd: Path | None = None) -> CLIResult:
    """Run the real `auditpack` entry point in a subprocess (as a user would)."""
    proc = subprocess.run([sys.executable, "-m", "evidence.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=600, check=False)
    return CLIResult(proc)


@pytest.fixture(autouse=True)
def _sockets_closed_by_this_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """In modules that talk to a loopback server, collect garbage when each test ends. An unclosed socket is then
    a ResourceWarning (an error here) in the test that leaked it, every time, instead of in whichever later test
    the collector happens to run in."""
    yield
    if any(hasattr(request.module, name) for name in ("FakeAPIServer", "live", "socket", "ssl")):
        gc.collect()


@pytest.fixture(scope="session")
def cli() -> Callable[..., CLIResult]:
    return run_cli


@pytest.fixture(scope="session")
def demo_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "demo"
    result = run_cli("collect", "--snapshot", SAMPLE, "--scope", SCOPE, "--attestations", ATTESTATIONS, "--out", out)
    assert result.code == 1, result.err  # the demo has deliberate failures
    assert "Traceback" not in result.err + result.out
    return out


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "demo-cluster"
    shutil.copytree(SAMPLE, dst)
    return dst
