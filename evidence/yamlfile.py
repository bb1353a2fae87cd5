"""Reads YAML with bounded work: the files users write (scope, controls, attestations) and, with `KubeLoader`,
Kubernetes manifests as the API server would read them.

PyYAML shares aliased nodes, so a "billion laughs" document parses quickly into a small graph whose expansion
is exponential: whoever walks it next (redaction, JSON encoding, a collector) hangs. Every document read here is
measured first, as the tree a consumer would walk, and refused past `MAX_EXPANDED_NODES` or `MAX_DEPTH`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from evidence.errors import InputError

# A 10,000-pod List is a few million nodes; a document may expand (through aliases) to ten times its own size.
MAX_EXPANDED_NODES = 5_000_000
ALIAS_EXPANSION_RATIO = 10
# libyaml refuses nesting beyond 1,000 levels; objects are checked more tightly at the inventory boundary.
MAX_DEPTH = 1_000

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_VALUE = "tag:yaml.org,2002:value"


class YAMLBoundError(yaml.YAMLError):
    """A well-formed document whose expanded size or depth is past the bounds; `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class BoundedSafeLoader(_Base):  # type: ignore[misc]
    """yaml.safe_load semantics (timestamps become dates: scope and waiver files rely on that), bounded."""


class KubeLoader(_Base):  # type: ignore[misc]
    """YAML as kubectl and the API server read it (sigs.k8s.io/yaml over go-yaml v2, YAML 1.1):

    - mapping keys are strings: `9090:` is "9090", `on:` is "true" (sigs.k8s.io/yaml yaml.go,
      convertToJSONableObject: int, float and bool keys are stringified; null or collection keys are errors);
    - unquoted timestamps stay the strings written (go-yaml v2 decodes a timestamp into interface{} as a
      string "for backward compatibility"), so `2026-01-31` is never a date that compares differently;
    - `=` is the string "=" (YAML 1.1's value tag has no meaning in JSON);
    - `12:30` is a string (go-yaml v2 has no base-60 numbers), `!!binary` is kept as its base64 text.
    """


# The implicit resolvers without timestamp and value: those scalars stay strings.
KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_TIMESTAMP, _VALUE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _plain_text(loader: Any, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)


def _number(kind: str) -> Any:
    base = yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{kind}"]

    def construct(loader: Any, node: yaml.Node) -> Any:
        value = loader.construct_scalar(node)
        if isinstance(value, str) and ":" in value:  # YAML 1.1 base 60 ("1:20"); go-yaml reads a string
            return value
        return base(loader, node)
    return construct


def _binary(loader: Any, node: yaml.Node) -> Any:
    return "".join(str(loader.construct_scalar(node)).split())


def _go_key(key: Any, node: yaml.Node) -> str:
    """A mapping key as sigs.k8s.io/yaml turns it into a JSON key."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if math.isnan(key):
            return ".nan"
        if math.isinf(key):
            return ".inf" if key > 0 else "-.inf"
        return repr(key).removesuffix(".0")
    found = "null" if key is None else type(key).__name__
    raise ConstructorError(None, None, f"a mapping key is {found}, not a string, number or boolean",
                           node.start_mark)


def _kube_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise ConstructorError(None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
    loader.flatten_mapping(node)
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _go_key(loader.construct_object(key_node, deep=True), key_node)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


KubeLoader.construct_mapping = _kube_mapping
KubeLoader.add_constructor(_TIMESTAMP, _plain_text)
KubeLoader.add_constructor("tag:yaml.org,2002:binary", _binary)
KubeLoader.add_constructor("tag:yaml.org,2002:int", _number("int"))
KubeLoader.add_constructor("tag:yaml.org,2002:float", _number("float"))


def check_bounds(node: yaml.Node) -> None:
    """Measure a composed document as the tree its consumers will walk (each alias expanded), without
    expanding it: each distinct node is visited once. Raise YAMLBoundError past the bounds."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    distinct = 0
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if done:
            on_path.discard(key)
            children = _children(current)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_DEPTH:
                raise YAMLBoundError(f"nested deeper than {MAX_DEPTH} levels", current.start_mark.line + 1)
            continue
        if key in size:
            continue
        if key in on_path:
            raise YAMLBoundError("an alias refers to a node that contains it (a recursive document)",
                                 current.start_mark.line + 1)
        distinct += 1
        on_path.add(key)
        stack.append((current, True))
        stack.extend((c, False) for c in _children(current) if id(c) not in size)
    limit = min(MAX_EXPANDED_NODES, max(100_000, ALIAS_EXPANSION_RATIO * distinct))
    if size[id(node)] > limit:
        raise YAMLBoundError(
            f"aliases expand this document to {size[id(node)]:,} nodes from {distinct:,} written "
            f"(limit {limit:,}): an alias bomb?", node.start_mark.line + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def documents(text: str, loader_class: Any = KubeLoader) -> Iterator[tuple[Any, int]]:
    """(document, 1-based line of its start) for each document of a YAML stream, each checked by
    `check_bounds` before it is built. Raises yaml.YAMLError (YAMLBoundError past the bounds)."""
    # Without an anchor there is no alias: the document is exactly as large as written, and libyaml already
    # refuses nesting past 1,000 levels. Most manifests take this path, which costs one scan of the text.
    anchored = "&" in text
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if anchored:
                check_bounds(node)
            yield loader.construct_document(node), node.start_mark.line + 1
    except RecursionError:  # the pure-Python parser (no libyaml) recurses per nesting level
        raise YAMLBoundError(f"nested too deeply to read (over {MAX_DEPTH} levels?)", 1) from None
    finally:
        loader.dispose()


def safe_loads(text: str) -> Any:
    """yaml.safe_load of one document, bounded (for configs held in ConfigMaps). Raises yaml.YAMLError."""
    for doc, _ in documents(text, BoundedSafeLoader):
        return doc
    return None


def read(path: Path, error: type[InputError], what: str, hint: str) -> Any:
    """The parsed document. Unreadable files and malformed YAML raise `error` naming the file, line and column."""
    try:
        return safe_loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{what} {path}: cannot read: {reason}", hint) from None
    except YAMLBoundError as exc:
        raise error(f"{what} {path}: line {exc.line}: {exc.message}",
                    "write the content out without deep nesting or repeated aliases") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise error(f"{what} {path}: {where}: malformed YAML: {exc.problem}",
                    "fix the YAML syntax at that position (indentation, quotes, tabs)") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: malformed YAML: {exc}", "fix the YAML syntax") from None
