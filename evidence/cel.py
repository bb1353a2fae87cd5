"""CEL, the rule language of controls: Google's C++ runtime (cel-expr-python), compiled once at load.

Controls see two variables: `subject` (one subject, as its facts.json shape) and `scope` (thresholds
from the scope file). Type errors the checker can see (wrong operand types, undeclared variables) and
field names the subject type does not have are reported at load, with line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext.ext_math import ExtMath
from cel_expr_python.ext.ext_strings import ExtStrings

_ENV: Any = None
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

    def run(self, activation: Any) -> tuple[Any, str | None]:
        """(value, None) on success, (None, error message) on a CEL runtime error."""
        try:
            value = self.expr.eval(activation)
        except RuntimeError as exc:  # the runtime reports some failures as exceptions
            return None, _clean(str(exc))
        if value.type() == cel.Type.ERROR:
            return None, _clean(str(value.value()))
        return value.value(), None


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
