"""What a loaded rule set prepares once for fast, repeated assessment.

Each loaded RuleSet carries one Prepared holder (``RuleSet.prepared``); the engine and the fact
resolver keep their compiled conditions and remembered conclusions there, so nothing lives in
module-level state and two rule sets never share anything. A holder checks that it was built for
the same rules (a RuleSet copied with other rules gets a fresh preparation).
"""

from __future__ import annotations

from typing import Any, Callable


class Prepared:
    """A small per-rule-set memo: name -> (the object it was built for, the prepared value)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str, source: Any, build: Callable[[], Any]) -> Any:
        entry = self._memo.get(name)
        if entry is None or entry[0] is not source:
            entry = (source, build())
            self._memo[name] = entry
        return entry[1]


def prepared(ruleset, name: str, source: Any, build: Callable[[], Any]) -> Any:
    """The value ``build`` makes for this rule set, made once while the rule set lives."""
    holder = ruleset.prepared
    if holder is None:  # a RuleSet built by hand (tests): prepare, without remembering
        return build()
    return holder.get(name, source, build)
