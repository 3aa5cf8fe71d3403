"""Conditions over facts: a closed set of operators combined with all/any/not.

A condition is evaluated with three values: True, False, or None when a fact it needs is
missing (unknown). A rule fires only when its condition is True.
"""


from typing import Any, Mapping, NamedTuple, Union

# The operators each fact type accepts. "exists" and "missing" take `true`.
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "choice": ("eq", "ne", "in", "not_in", "exists", "missing"),
    "choices": ("contains_any", "contains_all", "contains_none", "exists", "missing"),
    "number": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists", "missing"),
    "integer": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists", "missing"),
    "boolean": ("eq", "ne", "exists", "missing"),
    "time": ("exists", "missing"),
}
ALL_OPERATORS = tuple(dict.fromkeys(op for ops in OPERATORS_BY_TYPE.values() for op in ops))


class Test(NamedTuple):
    """One comparison of a fact with a value, e.g. ``amount gt 100``."""

    fact: str
    op: str
    value: Any
    shown: str  # how the expected value reads in a trace, e.g. "24 (refund_window_hours)"

    def describe(self) -> str:
        if self.op in ("exists", "missing"):
            return f"{self.fact} {self.op}"
        return f"{self.fact} {self.op} {self.shown}"


class All(NamedTuple):
    items: tuple["Condition", ...]


class Any_(NamedTuple):
    items: tuple["Condition", ...]


class Not(NamedTuple):
    item: "Condition"


Condition = Union[Test, All, Any_, Not]


def _compare(op: str, got: Any, want: Any) -> bool:
    if op == "eq":
        return got == want
    if op == "ne":
        return got != want
    if op == "in":
        return got in want
    if op == "not_in":
        return got not in want
    if op == "lt":
        return got < want
    if op == "lte":
        return got <= want
    if op == "gt":
        return got > want
    if op == "gte":
        return got >= want
    if op == "between":
        return want[0] <= got <= want[1]
    if op == "contains_any":
        return any(item in got for item in want)
    if op == "contains_all":
        return all(item in got for item in want)
    if op == "contains_none":
        return not any(item in got for item in want)
    raise ValueError(f"unknown operator {op!r}")  # rules.py refuses these when loading


def test_holds(test: Test, facts: Mapping[str, Any]) -> bool | None:
    """Whether one test holds over the facts; None when the fact is missing."""
    present = facts.get(test.fact) is not None
    if test.op == "exists":
        return present
    if test.op == "missing":
        return not present
    if not present:
        return None
    return _compare(test.op, facts[test.fact], test.value)


def holds(condition: Condition, facts: Mapping[str, Any]) -> bool | None:
    """Evaluate a condition with three-valued logic (None = unknown)."""
    if isinstance(condition, Test):
        return test_holds(condition, facts)
    if isinstance(condition, Not):
        inner = holds(condition.item, facts)
        return None if inner is None else not inner
    results = [holds(item, facts) for item in condition.items]
    if isinstance(condition, All):
        if False in results:
            return False
        return None if None in results else True
    if True in results:
        return True
    return None if None in results else False


def tests_in(condition: Condition) -> list[Test]:
    """Every test inside a condition, in order."""
    if isinstance(condition, Test):
        return [condition]
    if isinstance(condition, Not):
        return tests_in(condition.item)
    return [test for item in condition.items for test in tests_in(item)]


def facts_used(condition: Condition) -> set[str]:
    """The names of the facts a condition reads."""
    return {test.fact for test in tests_in(condition)}


# --- compiled evaluation -------------------------------------------------------------------------
# The engine evaluates every rule for every charge; batches do it for every row. Turning each
# condition into nested closures once removes the per-test dispatch above (same three-valued
# results: tests/test_engine.py checks both agree).

def _compiled_test(fact: str, op: str, want: Any):
    """One test as a single closure: None when the fact is missing, else the comparison."""
    if op == "exists":
        return lambda facts: facts.get(fact) is not None
    if op == "missing":
        return lambda facts: facts.get(fact) is None
    if op == "eq":
        return lambda facts: None if (got := facts.get(fact)) is None else got == want
    if op == "ne":
        return lambda facts: None if (got := facts.get(fact)) is None else got != want
    if op == "in":
        return lambda facts: None if (got := facts.get(fact)) is None else got in want
    if op == "not_in":
        return lambda facts: None if (got := facts.get(fact)) is None else got not in want
    if op == "lt":
        return lambda facts: None if (got := facts.get(fact)) is None else got < want
    if op == "lte":
        return lambda facts: None if (got := facts.get(fact)) is None else got <= want
    if op == "gt":
        return lambda facts: None if (got := facts.get(fact)) is None else got > want
    if op == "gte":
        return lambda facts: None if (got := facts.get(fact)) is None else got >= want
    if op == "between":
        low, high = want
        return lambda facts: None if (got := facts.get(fact)) is None else low <= got <= high
    wanted = frozenset(want)
    if op == "contains_any":
        return lambda facts: None if (got := facts.get(fact)) is None else not wanted.isdisjoint(got)
    if op == "contains_all":
        return lambda facts: None if (got := facts.get(fact)) is None else wanted.issubset(got)
    if op == "contains_none":
        return lambda facts: None if (got := facts.get(fact)) is None else wanted.isdisjoint(got)
    raise ValueError(f"unknown operator {op!r}")


def compile_condition(condition: Condition):
    """A function of the facts that returns what ``holds`` would: True, False or None."""
    if isinstance(condition, Test):
        return _compiled_test(condition.fact, condition.op, condition.value)
    if isinstance(condition, Not):
        inner = compile_condition(condition.item)

        def negate(facts):
            result = inner(facts)
            return None if result is None else not result

        return negate
    parts = tuple(compile_condition(item) for item in condition.items)
    # all stops at the first False, any at the first True; otherwise unknown spreads
    decisive = isinstance(condition, Any_)

    def combined(facts):
        unknown = False
        for part in parts:
            result = part(facts)
            if result is decisive:
                return decisive
            if result is None:
                unknown = True
        return None if unknown else not decisive

    return combined
