"""Label selectors evaluated over many items at once, as bitmasks (Python ints), through an inverted label index.

Same semantics as `evidence.netpol.selectors.matches` (the property test checks the two agree), but one selector costs a
few big-integer operations instead of a pass over every namespace or pod class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def mask_of(ids: Iterable[int], size: int) -> int:
    """Bitmask with the given bit positions set."""
    id_list = list(ids)
    if len(id_list) * 64 < size:
        m = 0
        for i in id_list:
            m |= 1 << i
        return m
    buf = bytearray((size + 8) // 8)
    for i in id_list:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def bits(mask: int) -> list[int]:
    """Positions of the set bits, ascending."""
    s = bin(mask)[:1:-1]  # least significant bit first
    out: list[int] = []
    i = s.find("1")
    while i >= 0:
        out.append(i)
        i = s.find("1", i + 1)
    return out


class LabelIndex:
    """Items (namespaces, or pod classes) by label, answering `select(selector) -> bitmask of matching items`."""

    def __init__(self, items: Sequence[Mapping[str, str]]) -> None:
        self.size = len(items)
        self.universe = (1 << self.size) - 1
        kv: dict[tuple[str, str], list[int]] = {}
        keys: dict[str, list[int]] = {}
        for i, labels in enumerate(items):
            for k, v in labels.items():
                kv.setdefault((k, v), []).append(i)
                keys.setdefault(k, []).append(i)
        self._kv = {k: mask_of(v, self.size) for k, v in kv.items()}
        self._keys = {k: mask_of(v, self.size) for k, v in keys.items()}

    def _value_mask(self, key: Any, values: Iterable[Any]) -> int:
        m = 0
        for v in values:
            m |= self._kv.get((key, v), 0)  # non-string values never equal a label value, as in matches()
        return m

    def select(self, selector: Mapping[str, Any] | None) -> int:
        """Items matching a LabelSelector; an empty or absent selector matches every item."""
        m = self.universe
        if not selector:
            return m
        for key, value in (selector.get("matchLabels") or {}).items():
            m &= self._kv.get((key, value), 0)
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
            if op == "In":
                m &= self._value_mask(key, values)
            elif op == "NotIn":  # also matches items without the key
                m &= ~self._value_mask(key, values)
            elif op == "Exists":
                m &= self._keys.get(key, 0)
            elif op == "DoesNotExist":
                m &= ~self._keys.get(key, 0)
            else:  # unknown operator: the API rejects it; never a match (as selectors.matches)
                return 0
        return m & self.universe
