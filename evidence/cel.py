"""CEL, the rule language of controls: Google's C++ runtime (cel-expr-python), compiled once at load.

Controls see two variables: `subject` (one subject, as its facts.json shape) and `scope` (thresholds
from the scope file). Type errors the checker can see (wrong operand types, undeclared variables) and
field names the subject type does not have are reported at load, with line and column.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # not on every platform; there the guard below does nothing
    resource = None  # type: ignore[assignment]

from cel_expr_python import cel
from cel_expr_python.ext.ext_math import ExtMath
from cel_expr_python.ext.ext_strings import ExtStrings

_ENV: Any = None
# CEL has no loops, yet nested comprehensions double a string per level: a 900-byte rule allocated 5 GB
# (issue 11). cel-expr-python exposes no cost limit, so an evaluation gets this much address space above what
# the process already holds; past it the C++ runtime's allocation fails (std::bad_alloc, raised as MemoryError)
# and that one evaluation is inconclusive.
MEMORY_BUDGET = 512 << 20
MAX_RESULT_CHARS = 4000  # a message longer than this is cut: findings are read by people
_guarding = False
_POS = re.compile(r"<input>:(\d+):(\d+):\s*")
_SUBJECT_PATH = re.compile(r"\bsubject((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_STRING_LITERAL = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")


class CelCompileError(ValueError):
    """A CEL expression that does not compile; `line` and `column` are 1-based within the expression."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def env() -> Any:
    global _ENV
    if _ENV is None:
        dyn_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
        # The strings (join, split, lowerAscii, ...) and math extensions, as Kubernetes CEL offers them.
        _ENV = cel.NewEnv(variables={"subject": dyn_map, "scope": dyn_map},
                          extensions=[ExtStrings(), ExtMath()])
    return _ENV


@dataclass
class Program:
    source: str
    expr: Any
    exhausted: str | None = None  # set once the expression ran out of memory: it is not run again

    def run(self, activation: Any) -> tuple[Any, str | None]:
        """(value, None) on success, (None, error message) on a CEL runtime error."""
        if self.exhausted is not None:  # each attempt would cost seconds and end the same way
            return None, f"{self.exhausted} on an earlier subject; not evaluated again"
        try:
            with memory_guard():
                value = self.expr.eval(activation)
        except RuntimeError as exc:  # the runtime reports some failures as exceptions
            return None, _clean(str(exc))
        except MemoryError:
            self.exhausted = (f"the expression needed more than {MEMORY_BUDGET >> 20} MiB of memory and was "
                              "stopped (a rule that builds ever larger strings or lists?)")
            return None, self.exhausted
        if value.type() == cel.Type.ERROR:
            return None, _clean(str(value.value()))
        return value.value(), None


@contextlib.contextmanager
def memory_guard(budget: int = MEMORY_BUDGET) -> Iterator[None]:
    """Cap the process's address space at its current size plus `budget` while the block runs (re-entrant:
    an outer guard, e.g. around all controls of one subject, makes inner ones free)."""
    global _guarding
    if _guarding or resource is None:
        yield
        return
    try:
        current = int(Path("/proc/self/statm").read_bytes().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + budget
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft != resource.RLIM_INFINITY and soft < limit:
            limit = soft  # a tighter limit set by the operator stays
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        yield  # no /proc (not Linux) or the limit cannot be set: run unguarded
        return
    _guarding = True
    try:
        yield
    finally:
        _guarding = False
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def compile_expr(source: str, expect: str, schema: dict[str, Any] | None = None) -> Program:
    """Compile `source`; `expect` is "bool" or "string". Raise CelCompileError with the position."""
    try:
        expr = env().compile(source)
    except RuntimeError as exc:
        text = str(exc)
        m = _POS.search(text)
        msg = _clean(text.split("\n")[0])
        raise CelCompileError(msg, int(m.group(1)) if m else None, int(m.group(2)) if m else None) from None
    rtype = expr.return_type()
    wanted = cel.Type.BOOL if expect == "bool" else cel.Type.STRING
    if rtype not in (wanted, cel.Type.DYN):
        raise CelCompileError(f"expression returns {rtype.name().lower()}, expected {expect}", 1, 1)
    if schema is not None:
        check_fields(source, schema)
    return Program(source, expr)


def check_fields(source: str, schema: dict[str, Any]) -> None:
    """Reject `subject.a.b` paths the subject's JSON schema does not define (a typo would otherwise make the
    control inconclusive on every subject at run time)."""
    masked = _STRING_LITERAL.sub(lambda m: " " * len(m.group(0)), source)
    for m in _SUBJECT_PATH.finditer(masked):
        node: dict[str, Any] | None = schema
        offset = m.start(1)
        for part in m.group(1).split(".")[1:]:
            offset += 1
            if node is None:
                break
            props = node.get("properties")
            if props is None:
                break  # a map (labels) or a scalar: nothing more to check
            if part not in props:
                line = source.count("\n", 0, offset) + 1
                col = offset - (source.rfind("\n", 0, offset) + 1) + 1
                known = ", ".join(sorted(props))
                raise CelCompileError(f"subject has no field {part!r} (known: {known})", line, col)
            node = _resolve(props[part], schema)
            offset += len(part)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """Follow $ref and Optional (anyOf with null) to the object schema, if any; arrays stop the walk."""
    for _ in range(5):
        if "$ref" in node:
            node = root.get("$defs", {}).get(node["$ref"].split("/")[-1], {})
        elif "anyOf" in node:
            non_null = [n for n in node["anyOf"] if n.get("type") != "null"]
            if len(non_null) != 1:
                return None
            node = non_null[0]
        else:
            break
    return node if node.get("type") == "object" or "properties" in node else None


def _clean(text: str) -> str:
    text = text.replace("INVALID_ARGUMENT: ", "").replace(" [INVALID_ARGUMENT]", "").strip()
    text = text.replace("ERROR: ", "")
    return _POS.sub("", text)
