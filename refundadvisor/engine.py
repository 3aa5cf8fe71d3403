"""The engine: facts + a rule set -> an assessment, with the trace of how it was reached.

Pure and deterministic: no I/O, no clock, no CLI or rendering. Rules are applied in file
order. The lowest cap and the highest floor apply, a cap wins over a floor, and when fired
rules name different outcomes the least favourable one wins; each is credited to the first
rule (in file order) that set it.
"""


from typing import Any, NamedTuple, Optional

from .conditions import holds, test_holds, tests_in
from .facts import Facts
from .model import EVIDENCE_FACT, Band, Outcome, Rule, RuleSet


class Reason(NamedTuple):
    """A fired rule and what it did to the verdict."""

    rule: str
    why: str
    sources: tuple[str, ...]
    score: int
    cap: Optional[int]
    floor: Optional[int]
    outcome: Optional[str]

    @property
    def effect(self) -> str:
        """The rule's effect in a few words, e.g. '+25, cap 70'."""
        parts = []
        if self.score:
            parts.append(f"{self.score:+d}")
        if self.cap is not None:
            parts.append(f"cap {self.cap}")
        if self.floor is not None:
            parts.append(f"floor {self.floor}")
        if self.outcome:
            parts.append(f"outcome {self.outcome}")
        return ", ".join(parts) or "no score change"


class ChecklistEntry(NamedTuple):
    id: str
    item: str
    why: str
    have: bool


class Limit(NamedTuple):
    """A cap or floor that decided the score, and the rule that set it."""

    value: int
    rule: str


class Step(NamedTuple):
    """One step from the starting score to the band."""

    what: str
    score: int
    rule: Optional[str] = None


class TestResult(NamedTuple):
    test: str
    got: Any
    result: Optional[bool]  # None: the fact is missing (unknown)


class RuleResult(NamedTuple):
    rule: str
    fired: bool
    result: Optional[bool]
    tests: tuple[TestResult, ...]


class Assessment(NamedTuple):
    """The verdict on one charge and everything that explains it."""

    score: int
    band: Band
    outcome: Outcome
    outcome_rule: Optional[str]
    cap: Optional[Limit]
    floor: Optional[Limit]
    reasons: tuple[Reason, ...]
    checklist: tuple[ChecklistEntry, ...]
    next_steps: tuple[str, ...]
    warnings: tuple[str, ...]
    steps: tuple[Step, ...]
    trace: tuple[RuleResult, ...]
    facts: Facts
    ruleset: RuleSet

    def same_verdict(self, other: "Assessment") -> bool:
        """Whether two assessments agree on band and outcome."""
        return self.band.id == other.band.id and self.outcome.id == other.outcome.id


def assess(facts: Facts, ruleset: RuleSet, extra_warnings: tuple[str, ...] = ()) -> Assessment:
    """Apply every rule to the facts, in file order, and return the assessment."""
    values = facts.values
    fired: list[Rule] = []
    trace: list[RuleResult] = []
    for rule in ruleset.rules:
        result = holds(rule.when, values)
        trace.append(RuleResult(rule.id, result is True, result, tuple(
            TestResult(test.describe(), values.get(test.fact), test_holds(test, values)) for test in tests_in(rule.when)
        )))
        if result is True:
            fired.append(rule)

    score, steps = _score(ruleset, fired)
    cap = _limit(fired, "cap", min)
    floor = _limit(fired, "floor", max)
    if floor is not None and score < floor.value:
        score = floor.value
        steps.append(Step(f"floor {floor.value}", score, floor.rule))
    if cap is not None and score > cap.value:
        score = cap.value
        steps.append(Step(f"cap {cap.value}", score, cap.rule))
    band = next(band for band in ruleset.bands if band.low <= score <= band.high)
    steps.append(Step(f"band {band.id} ({band.low}-{band.high})", score))

    outcome, outcome_rule = _outcome(ruleset, fired, band)
    have = set(values.get(EVIDENCE_FACT) or ())
    item_ids = list(ruleset.always_checklist) + [item for rule in fired for item in rule.checklist]
    checklist = tuple(
        ChecklistEntry(item.id, item.item, item.why, any(kind in have for kind in item.evidence))
        for item in (ruleset.checklist[item_id] for item_id in dict.fromkeys(item_ids))
    )
    return Assessment(
        score=score, band=band, outcome=outcome, outcome_rule=outcome_rule, cap=cap, floor=floor,
        reasons=tuple(Reason(rule.id, rule.why, rule.sources, rule.score, rule.cap, rule.floor, rule.outcome) for rule in fired),
        checklist=checklist,
        next_steps=_unique([step for rule in fired for step in rule.next_steps] + list(ruleset.always_next_steps)),
        warnings=_unique(list(extra_warnings) + [warning for rule in fired for warning in rule.warnings]),
        steps=tuple(steps), trace=tuple(trace), facts=facts, ruleset=ruleset,
    )


def _score(ruleset: RuleSet, fired: list[Rule]) -> tuple[int, list[Step]]:
    score = ruleset.score_start
    steps = [Step("start", score)]
    for rule in fired:
        if rule.score:
            score += rule.score
            steps.append(Step(f"{rule.score:+d}", score, rule.id))
    clamped = min(max(score, ruleset.score_min), ruleset.score_max)
    if clamped != score:
        steps.append(Step(f"kept within {ruleset.score_min}-{ruleset.score_max}", clamped))
    return clamped, steps


def _limit(fired: list[Rule], kind: str, pick) -> Optional[Limit]:
    limits = [(getattr(rule, kind), rule.id) for rule in fired if getattr(rule, kind) is not None]
    if not limits:
        return None
    value = pick(limit for limit, _ in limits)
    return Limit(value, next(rule for limit, rule in limits if limit == value))


def _outcome(ruleset: RuleSet, fired: list[Rule], band: Band) -> tuple[Outcome, Optional[str]]:
    named = [(ruleset.outcomes[rule.outcome], rule.id) for rule in fired if rule.outcome]
    if not named:
        return ruleset.outcomes[band.outcome], None
    worst = max(outcome.rank for outcome, _ in named)
    return next((outcome, rule) for outcome, rule in named if outcome.rank == worst)


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
