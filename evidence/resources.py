"""Locates the data shipped with auditpack (controls/, report_templates/) in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory `name` ("controls" or "report_templates").

    In a wheel the directories are installed as evidence/_data/<name>; in a checkout they sit at the
    repository root next to the package.
    """
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"auditpack data directory {name!r} is missing from the installation")
