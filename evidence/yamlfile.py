"""Reads the YAML files users write (scope, controls, attestations): one place for read and syntax errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from evidence.errors import InputError


def read(path: Path, error: type[InputError], what: str, hint: str) -> Any:
    """The parsed document. Unreadable files and malformed YAML raise `error` naming the file, line and column."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{what} {path}: cannot read: {reason}", hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise error(f"{what} {path}: {where}: malformed YAML: {exc.problem}",
                    "fix the YAML syntax at that position (indentation, quotes, tabs)") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: malformed YAML: {exc}", "fix the YAML syntax") from None
