"""The engine: facts + a rule set -> an assessment, with the trace of how it was reached.

Pure and deterministic: no I/O, no clock, no CLI or rendering. Rules are applied in file
order. The lowest cap and the highest floor apply, a cap wins over a floor, and when fired
rules name different outcomes the least favourable one wins; each is credited to the first
rule (in file order) that set it. A rule that settles the verdict (support already promised the
refund) sets aside the other rules' caps and outcomes: only settling rules' limits apply.
"""


from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, Optional

from .conditions import compile_condition, holds, test_holds, tests_in
from .facts import Facts
from .model import CHARGE_AMOUNT_FACT, CHARGE_TIME_FACT, EVIDENCE_FACT, Band, ChecklistItem, Outcome, Rule, RuleSet


class Reason(NamedTuple):
    """A fired rule and what it did to the verdict."""

    rule: str
    why: str
    sources: tuple[str, ...]
    score: int
    cap: Optional[int]
    floor: Optional[int]
    outcome: Optional[str]
    effect: str  # in a few words, e.g. "+25, cap 70"


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


class DeadlineResult(NamedTuple):
    """When a time limit closes for this charge (UTC), and whether it already has."""

    id: str
    what: str
    closes_at: datetime
    source: str
    approximate: bool
    closed: bool
    # a date-only charge: closed when counted from the day's start, but open if the charge came later
    # that day, so it may still be open: the latest moment it can close
    open_until: Optional[datetime] = None


class EstimateResult(NamedTuple):
    """What would come back: an amount (exact to the cent) or None for nothing, and why."""

    id: str
    amount: Optional[Decimal]
    currency: str
    note: str
    up_to: bool


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
    deadlines: tuple[DeadlineResult, ...] = ()
    estimate: Optional[EstimateResult] = None
    unused_facts: tuple[str, ...] = ()  # facts the user gave that this platform's rules never read

    def same_verdict(self, other: "Assessment") -> bool:
        """Whether two assessments agree on band and outcome."""
        return self.band.id == other.band.id and self.outcome.id == other.outcome.id


class Conclusion(NamedTuple):
    """What an assessment derives from the fired rules' effects (the checklist not yet ticked)."""

    score: int
    band: Band
    outcome: Outcome
    outcome_rule: Optional[str]
    cap: Optional[Limit]
    floor: Optional[Limit]
    checklist: tuple[ChecklistItem, ...]
    next_steps: tuple[str, ...]
    warnings: tuple[str, ...]
    evidence: tuple[tuple[str, frozenset], ...]  # each checklist item's id and the evidence that ticks it


class Plan(NamedTuple):
    """A rule set prepared for fast, repeated assessment: each condition compiled once."""

    rules: tuple[Rule, ...]
    checks: tuple  # the compiled condition of each rule, in the same order
    reasons: tuple[Reason, ...]  # what each rule says when it fires
    deltas: tuple[int, ...]  # each rule's score change
    shaping: frozenset  # positions of rules with effects beyond a score change
    conclusions: dict  # (shaping rules fired, summed score changes) -> Conclusion
    gate: list  # [evaluations so far, the gate once built (see _gate)]: a batch builds it, a check never


_MAX_CONCLUSIONS = 8192  # keeps a long batch's memory flat


def plan_for(ruleset: RuleSet) -> Plan:
    """The prepared form of a rule set, made once while the rule set lives (it carries it)."""
    from .rules.prepared import prepared

    return prepared(ruleset, "plan", ruleset.rules, lambda: _make_plan(ruleset))


def _make_plan(ruleset: RuleSet) -> Plan:
    checks = tuple(compile_condition(rule.when) for rule in ruleset.rules)
    return Plan(
            ruleset.rules,
            checks,
            tuple(Reason(rule.id, rule.why, rule.sources, rule.score, rule.cap, rule.floor, rule.outcome, rule.effect)
                  for rule in ruleset.rules),
            tuple(rule.score for rule in ruleset.rules),
            frozenset(index for index, rule in enumerate(ruleset.rules)
                      if rule.cap is not None or rule.floor is not None or rule.outcome or rule.checklist
                      or rule.warnings or rule.next_steps),
            {},
            [0, None],
        )


_GATE_AFTER = 64  # evaluations of one rule set before the gate pays for its building


def _required_values(condition) -> dict:
    """The values a fact must have for the condition to hold: {fact: frozenset} from its eq/in
    tests, directly or inside an `all` (other conditions require nothing this way)."""
    from .conditions import All, Test

    if isinstance(condition, Test) and condition.op in ("eq", "in"):
        try:
            return {condition.fact: frozenset([condition.value] if condition.op == "eq" else condition.value)}
        except TypeError:  # an unhashable value: no shortcut
            return {}
    if isinstance(condition, All):
        required: dict = {}
        for item in condition.items:
            for fact, allowed in _required_values(item).items():
                required[fact] = required[fact] & allowed if fact in required else allowed
        return required
    return {}


def _gate(rules: tuple, checks: tuple) -> tuple:
    """Most rules hold only for some values of one fact (in the bundled files, the cause): for the
    fact that gates the most rules, the rules worth evaluating for each of its values, in file
    order. A rule that cannot hold for a row's value is never evaluated; what fires is the same."""
    required = [_required_values(rule.when) for rule in rules]
    counts: dict = {}
    for needs in required:
        for fact in needs:
            counts[fact] = counts.get(fact, 0) + 1
    if not counts:
        return (None, {}, tuple(enumerate(checks)))
    fact = max(counts, key=lambda name: (counts[name], name))
    values = frozenset().union(*(needs[fact] for needs in required if fact in needs))
    ungated = tuple((index, check) for index, (needs, check) in enumerate(zip(required, checks)) if fact not in needs)
    by_value = {value: tuple((index, check) for index, (needs, check) in enumerate(zip(required, checks))
                             if fact not in needs or value in needs[fact]) for value in values}
    return (fact, by_value, ungated)


def assess(facts: Facts, ruleset: RuleSet, extra_warnings: tuple[str, ...] = (), trace: bool = True) -> Assessment:
    """Apply every rule to the facts, in file order, and return the assessment.

    ``trace=False`` skips recording each test's result and the score's steps (batches do not
    show them).
    """
    values = facts.values
    if trace:
        plan = plan_for(ruleset)
        results = tuple(_rule_result(rule, check(values), values) for rule, check in zip(plan.rules, plan.checks))
        fired = tuple(index for index, result in enumerate(results) if result.fired)
        for rule, result in zip(plan.rules, results):
            # one evaluator decides; the reference one checks it on every explained verdict
            if holds(rule.when, values) != result.result:
                raise EngineMismatch(rule.id)
    else:
        results = ()
        fired = evaluate(values, ruleset)
    conclusion = conclude(ruleset, fired)
    have = values.get(EVIDENCE_FACT) or ()
    checklist = tuple(ChecklistEntry(item.id, item.item, item.why, any(kind in have for kind in item.evidence))
                      for item in conclusion.checklist)
    warnings = conclusion.warnings if not extra_warnings else _unique(list(extra_warnings) + list(conclusion.warnings))
    reasons = plan_for(ruleset).reasons
    return Assessment(
        score=conclusion.score, band=conclusion.band, outcome=conclusion.outcome, outcome_rule=conclusion.outcome_rule,
        cap=conclusion.cap, floor=conclusion.floor, reasons=tuple([reasons[index] for index in fired]), checklist=checklist,
        next_steps=conclusion.next_steps, warnings=warnings,
        steps=_steps(ruleset, fired, conclusion) if trace else (), trace=results, facts=facts, ruleset=ruleset,
        deadlines=deadlines(facts, ruleset),
        estimate=estimate(facts, ruleset, settled=any(ruleset.rules[index].settles for index in fired)),
        unused_facts=tuple(name for name, origin in facts.origin.items()
                           if origin in ("given", "asked") and name not in facts_read(ruleset)),
    )


def facts_read(ruleset: RuleSet) -> frozenset:
    """Every fact the rule set's rules, deadlines, estimates, questions and checklist read."""
    from .conditions import facts_used
    from .rules.prepared import prepared

    def build() -> frozenset:
        conditions = [rule.when for rule in ruleset.rules]
        conditions += [item.when for item in (*ruleset.deadlines, *ruleset.estimates) if item.when is not None]
        conditions += [spec.ask_when for spec in ruleset.facts.values() if spec.ask_when is not None]
        names = set().union(*(facts_used(condition) for condition in conditions))
        names |= {item.returns for item in ruleset.estimates if item.returns}
        names |= {CHARGE_TIME_FACT, CHARGE_AMOUNT_FACT}  # every verdict states when and how much
        if any(item.evidence for item in ruleset.checklist.values()):
            names.add(EVIDENCE_FACT)
        return frozenset(names)

    return prepared(ruleset, "facts_read", ruleset.rules, build)


def deadlines(facts: Facts, ruleset: RuleSet) -> tuple[DeadlineResult, ...]:
    """The rule set's deadlines that apply to this charge, counted from its time (for a date
    without a time, from the start of that day: the cautious reading)."""
    charge = facts.values.get(CHARGE_TIME_FACT)
    if charge is None:
        return ()
    results = []
    checks = _conditions(ruleset, "deadlines", ruleset.deadlines)
    for deadline, check in zip(ruleset.deadlines, checks):
        if check is not None and check(facts.values) is not True:
            continue
        length = timedelta(hours=deadline.after) if deadline.unit == "hours" else timedelta(days=deadline.after)
        closes_at = charge.at + length
        closed = facts.now is not None and facts.now > closes_at
        open_until = None
        if closed and not charge.time_known and charge.day_end is not None and facts.now <= charge.day_end + length:
            open_until = charge.day_end + length
        results.append(DeadlineResult(deadline.id, deadline.what, closes_at, deadline.source, deadline.approximate, closed,
                                      open_until))
    return tuple(results)


CENT = Decimal("0.01")


def estimate(facts: Facts, ruleset: RuleSet, settled: bool = False) -> Optional[EstimateResult]:
    """The first refund estimate whose condition holds: what would come back, if anything. For a
    verdict a settling rule decided (support promised the refund) the estimates marked ``settled``
    come first, wherever their file put them; otherwise they do not apply."""
    values = facts.values
    pairs = list(zip(ruleset.estimates, _conditions(ruleset, "estimates", ruleset.estimates)))
    first = [pair for pair in pairs if pair[0].settled] if settled else []
    pairs = first + [pair for pair in pairs if not pair[0].settled]
    for rule, check in pairs:
        if check is not None and check(values) is not True:
            continue
        amount = None
        if rule.returns is not None and values.get(rule.returns) is not None:
            amount = Decimal(values[rule.returns])
            charged = values.get(CHARGE_AMOUNT_FACT)
            if rule.fee_percent is not None and charged is not None:
                # the charge paid for the credits plus a fee of a percentage of them, at least a minimum
                rate = Decimal(str(rule.fee_percent)) / 100
                minimum = Decimal(str(rule.fee_minimum or 0))
                credits = min(Decimal(charged) / (1 + rate), Decimal(charged) - minimum)
                amount = min(amount, max(credits, Decimal(0)))
            amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
        return EstimateResult(rule.id, amount, ruleset.money_currency(values), rule.note, rule.up_to)
    return None


class EngineMismatch(RuntimeError):
    """The compiled and the reference evaluation of a rule disagree: a bug, never a verdict."""

    def __init__(self, rule: str):
        self.rule = rule
        super().__init__(f"internal error: the two evaluations of rule {rule!r} disagree; please report it")


def _conditions(ruleset: RuleSet, name: str, items: tuple) -> tuple:
    """The compiled `when` of each deadline or estimate, prepared once per rule set."""
    from .rules.prepared import prepared

    return prepared(ruleset, name, items, lambda: tuple(
        compile_condition(item.when) if item.when is not None else None for item in items))


def evaluate(values, ruleset: RuleSet) -> tuple[int, ...]:
    """The positions of the rules whose conditions hold for these fact values, in file order."""
    plan = plan_for(ruleset)
    state = plan.gate
    if state[1] is None:
        state[0] += 1
        if state[0] < _GATE_AFTER:
            return tuple([index for index, check in enumerate(plan.checks) if check(values) is True])
        state[1] = _gate(plan.rules, plan.checks)
    fact, by_value, ungated = state[1]
    try:
        candidates = by_value.get(values.get(fact), ungated) if fact else ungated
    except TypeError:  # a list where the gate expects one value: evaluate every rule
        candidates = tuple(enumerate(plan.checks))
    return tuple([index for index, check in candidates if check(values) is True])


def _rule_result(rule: Rule, result: Optional[bool], values) -> RuleResult:
    tests = tuple(TestResult(test.describe(), values.get(test.fact), test_holds(test, values)) for test in tests_in(rule.when))
    return RuleResult(rule.id, result is True, result, tests)


def conclude(ruleset: RuleSet, fired_positions: tuple[int, ...]) -> Conclusion:
    """Score, band, outcome, the checklist's items and the rest from the fired rules (by
    position). It depends only on the sum of their score changes and on which fired rules do
    more than change the score, so it is remembered by those."""
    plan = plan_for(ruleset)
    deltas, shaping = plan.deltas, plan.shaping
    raw = sum([deltas[index] for index in fired_positions])
    key = (tuple([index for index in fired_positions if index in shaping]), raw)
    conclusion = plan.conclusions.get(key)
    if conclusion is None:
        if len(plan.conclusions) >= _MAX_CONCLUSIONS:
            plan.conclusions.clear()
        conclusion = plan.conclusions[key] = _conclude(ruleset, [plan.rules[index] for index in key[0]], raw)
    return conclusion


def _conclude(ruleset: RuleSet, shaping: list[Rule], raw: int) -> Conclusion:
    score = min(max(ruleset.score_start + raw, ruleset.score_min), ruleset.score_max)
    settling = [rule for rule in shaping if rule.settles]
    limiting = settling or shaping  # a settled matter is not capped by policy written for an open one
    cap = _limit(limiting, "cap", min)
    floor = _limit(limiting, "floor", max)
    if floor is not None and score < floor.value:
        score = floor.value
    if cap is not None and score > cap.value:
        score = cap.value
    band = next(band for band in ruleset.bands if band.low <= score <= band.high)
    outcome, outcome_rule = _outcome(ruleset, limiting, band)
    item_ids = list(dict.fromkeys(list(ruleset.always_checklist) + [item for rule in shaping for item in rule.checklist]))
    return Conclusion(
        score=score, band=band, outcome=outcome, outcome_rule=outcome_rule, cap=cap, floor=floor,
        checklist=tuple(ruleset.checklist[item_id] for item_id in item_ids),
        evidence=tuple((item_id, frozenset(ruleset.checklist[item_id].evidence)) for item_id in item_ids),
        next_steps=_unique([step for rule in shaping for step in rule.next_steps] + list(ruleset.always_next_steps)),
        warnings=_unique([warning for rule in shaping for warning in rule.warnings]),
    )


def _steps(ruleset: RuleSet, fired_positions: tuple[int, ...], conclusion: Conclusion) -> tuple[Step, ...]:
    """The score's steps from the start to the band, for --explain."""
    score = ruleset.score_start
    steps = [Step("start", score)]
    for index in fired_positions:
        rule = ruleset.rules[index]
        if rule.score:
            score += rule.score
            steps.append(Step(f"{rule.score:+d}", score, rule.id))
    clamped = min(max(score, ruleset.score_min), ruleset.score_max)
    if clamped != score:
        steps.append(Step(f"kept within {ruleset.score_min}-{ruleset.score_max}", clamped))
    floor, cap = conclusion.floor, conclusion.cap
    if floor is not None and clamped < floor.value:
        clamped = floor.value
        steps.append(Step(f"floor {floor.value}", clamped, floor.rule))
    if cap is not None and clamped > cap.value:
        clamped = cap.value
        steps.append(Step(f"cap {cap.value}", clamped, cap.rule))
    band = conclusion.band
    steps.append(Step(f"band {band.id} ({band.low}-{band.high})", clamped))
    return tuple(steps)


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
