"""Names the object a crashing collector was processing (issue 13: every internal error names its object).

Collectors are pure functions of the inventory, so the object that makes one raise can be found after the fact:
rerun it with halves of the suspects left out (the rest of the inventory stays, so references still resolve)
until one object remains whose removal alone makes the failure go away. This runs only on the failure path,
with a bounded number of reruns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evidence.errors import InternalError
from evidence.inventory import Inventory, Obj, describe

MAX_RERUNS = 40  # 2 x log2 of a 1,000,000-object inventory


def internal_error(stage: str, run: Callable[[Inventory], Any], inv: Inventory, exc: BaseException) -> InternalError:
    """An InternalError for `exc`, raised by `run(inv)` in `stage`, naming the object that triggers it if one
    object alone does."""
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    culprit = find_culprit(run, inv, exc)
    on = f" on {describe(culprit)}" if culprit is not None else ""
    return InternalError(f"internal error in {stage}{on}: {what}",
                         "this is a bug in auditpack; rerun with AUDITPACK_DEBUG=1 for the traceback and report it "
                         "with the object named (its shape, not its secrets)")


def find_culprit(run: Callable[[Inventory], Any], inv: Inventory, original: BaseException) -> Obj | None:
    """The one object whose removal makes `run` stop raising, or None. Removing an object that `run` needs as
    context (a referenced Namespace) gives a different failure: that object is not the one being processed."""
    objects = list(inv.all_objects())
    reruns = 0

    def without(removed: list[Obj]) -> str:
        """"same" (still the original failure), "other" (a different one) or "none"."""
        nonlocal reruns
        reruns += 1
        gone = {id(o) for o in removed}
        subset = Inventory(source=inv.source, log=list(inv.log))
        for o in objects:
            if id(o) not in gone:
                subset.add(o)
        try:
            run(subset)
        except Exception as exc:
            return "same" if type(exc) is type(original) and str(exc) == str(original) else "other"
        return "none"

    suspects = objects
    while len(suspects) > 1 and reruns < MAX_RERUNS:
        half = len(suspects) // 2
        first, second = suspects[:half], suspects[half:]
        a = without(first)
        if a == "none":
            suspects = first
            continue
        b = without(second)
        if b == "none":
            suspects = second
        elif a == "same":
            suspects = second  # the first half is not needed for the failure
        elif b == "same":
            suspects = first
        else:
            return None
    if len(suspects) == 1 and reruns < MAX_RERUNS and without(suspects) == "none":
        return suspects[0]
    return None
