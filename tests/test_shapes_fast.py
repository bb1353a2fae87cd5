"""The inventory boundary's fast check (shapes._plainly_fine) never lets through what the full check
(shapes._depth_problem, which names the field) would refuse: both agree on generated values, hostile ones included."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evidence import shapes

scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.floats(allow_nan=True),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond int64 both ways
    st.just(dt.date(2026, 1, 1)), st.just(b"bytes"), st.just((1, 2)), st.just(math.inf),
)
keys = st.one_of(st.text(max_size=4), st.integers(), st.booleans(), st.none())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=30)


class Str(str):
    pass


def _nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for i in range(depth - 1):
        value = {"a": value} if i % 2 else [value]
    return {"top": value}


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_fast_check_agrees_with_the_full_check(value: Any) -> None:
    assert shapes.depth_problem(value) == shapes._depth_problem(value)
    if shapes._plainly_fine(value):
        assert shapes._depth_problem(value) is None


def test_limits_and_subclasses_are_decided_by_the_full_check() -> None:
    for depth in (shapes.MAX_OBJECT_DEPTH - 1, shapes.MAX_OBJECT_DEPTH, shapes.MAX_OBJECT_DEPTH + 1,
                  shapes.MAX_OBJECT_DEPTH + 5):
        obj = _nested(depth)
        assert shapes.depth_problem(obj) == shapes._depth_problem(obj)
    assert shapes.depth_problem(_nested(shapes.MAX_OBJECT_DEPTH + 5)) is not None
    assert shapes.depth_problem({"n": 2**63}) == "n: a number beyond the 64-bit range"
    assert shapes.depth_problem({"n": 2**63 - 1, "m": -(2**63)}) is None
    assert shapes.depth_problem({Str("k"): Str("v")}) is None  # subclasses of str are strings: the full check says so
    assert shapes.depth_problem({"a": [{"b": dt.date(2026, 1, 1)}]}) == "a[0].b: a value of type date, which JSON " \
                                                                          "cannot hold"
