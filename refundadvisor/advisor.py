"""From given facts to an assessment: the one path every command takes.

Completes the facts (defaults, bounds, derived), reads a date-only charge time cautiously and
says so when the hour would change the verdict, then runs the engine. No CLI, no terminal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from . import engine
from .facts import ChargeTime, Facts, resolve, with_charge
from .model import CHARGE_TIME_FACT, RuleSet


def time_of_day_matters(ruleset: RuleSet, given: Mapping[str, Any], now: datetime) -> bool:
    """Whether a date-only charge time gives another verdict at the day's end than at its start."""
    charge = given.get(CHARGE_TIME_FACT)
    if not isinstance(charge, ChargeTime) or charge.time_known:
        return False
    early = engine.assess(resolve(ruleset, given, now), ruleset, trace=False)
    late = engine.assess(resolve(ruleset, with_charge(given, charge.latest(now)), now), ruleset, trace=False)
    return not early.same_verdict(late)


def date_only_warning(charge: ChargeTime) -> str:
    """Says that a date-only charge time was read as the start of the day, and how to sharpen it."""
    day = charge.at.astimezone().date().isoformat()
    return (f"Only the date of the charge was given and the hour changes the verdict, so it assumes the start of "
            f"{day} (local time), the cautious reading; give the time too (--charged-at {day}T14:30).")


def prepare(ruleset: RuleSet, given: Mapping[str, Any], now: datetime,
            origin: Optional[Mapping[str, str]] = None) -> tuple[Facts, tuple[str, ...]]:
    """Complete the facts and say how a date-only charge time was read, when that matters.

    Raises MissingFacts or FactError for incomplete or bad facts."""
    facts = resolve(ruleset, given, now, origin)
    warnings: tuple[str, ...] = ()
    if time_of_day_matters(ruleset, given, now):
        warnings = (date_only_warning(given[CHARGE_TIME_FACT]),)
    return facts, warnings


def advise(ruleset: RuleSet, given: Mapping[str, Any], now: datetime,
           origin: Optional[Mapping[str, str]] = None, trace: bool = True) -> engine.Assessment:
    """Assess already-parsed facts. Raises MissingFacts or FactError for incomplete or bad facts."""
    facts, warnings = prepare(ruleset, given, now, origin)
    return engine.assess(facts, ruleset, warnings, trace)


def fill_from_history(ruleset: RuleSet, given: dict[str, Any], origin: dict[str, str], history, now: datetime):
    """Fill the counts of earlier requests that were not given from the user's history.

    Needs the cause (for "similar"); returns the history's Summary once used, else None. Facts
    given as flags or answers win; the ones filled are marked "history" in ``origin``."""
    from .history import FACTS_FROM_SUMMARY

    if history is None or given.get("cause") is None or not history.exists():
        return None
    if given.get("prior_refunds") is not None:
        return None  # the user counted their requests themselves: the "of those" counts are theirs too
    summary = history.summary(ruleset.platform, given["cause"], now)
    for fact, field in FACTS_FROM_SUMMARY.items():
        if fact in ruleset.facts and given.get(fact) is None:
            given[fact] = getattr(summary, field)
            origin[fact] = "history"
    return summary


def history_pattern(ruleset: RuleSet, summaries: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What the rules make of the history, per cause: the rules one more request for that cause
    would newly bring into play, judged on the history facts alone. Returns (cause, rule) pairs."""
    from .conditions import evaluator, test_holds, tests_in
    from .history import FACTS_FROM_SUMMARY

    crossings = []
    for cause, summary in summaries.items():
        now_facts: dict[str, Any] = {fact: getattr(summary, field) for fact, field in FACTS_FROM_SUMMARY.items()}
        now_facts["cause"] = cause
        next_facts = {**now_facts, "prior_refunds": summary.requests_12m + 1, "similar_prior": summary.similar_12m + 1,
                      "requests_90d": summary.requests_90d + 1}
        for rule in ruleset.rules:
            tests = [test for test in tests_in(rule.when) if test.fact in FACTS_FROM_SUMMARY]
            if not tests:
                continue
            before = [test_holds(test, now_facts) for test in tests]
            after = [test_holds(test, next_facts) for test in tests]
            # newly in play: its history tests all hold after one more request but not now, and
            # nothing else known (the cause) rules it out
            if all(after) and not all(before) and evaluator(rule.when)(next_facts) is not False:
                crossings.append((cause, rule))
    return crossings
