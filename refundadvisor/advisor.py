"""From given facts to an assessment: the one path every command takes.

Completes the facts (defaults, bounds, derived), reads a date-only charge time cautiously and
says so when the hour would change the verdict, then runs the engine. No CLI, no terminal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from . import engine
from .facts import ChargeTime, Facts, resolve, with_charge
from .model import CHARGE_AMOUNT_FACT, CHARGE_TIME_FACT, RuleSet


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


def history_summary(ruleset: RuleSet, given: Mapping[str, Any], history, now: datetime):
    """What the user's history says for this charge (the rule file's history facts), or None when
    there is no history, no `history:` section or no value yet for the fact that groups requests."""
    if history is None or not ruleset.history_facts or not history.exists():
        return None
    same_as = ruleset.history_same_as
    if same_as and given.get(same_as) is None:
        return None
    charge = given.get(CHARGE_TIME_FACT)
    exclude = None
    if isinstance(charge, ChargeTime):
        from .history import utc_text

        exclude = {"charged_at": utc_text(charge.at), "cause": given.get(same_as) if same_as else None,
                   "amount": given.get(CHARGE_AMOUNT_FACT)}
    return history.summary(ruleset.platform, given.get(same_as) if same_as else None, now, ruleset.history_facts,
                           exclude)


def fill_from_history(ruleset: RuleSet, given: dict[str, Any], origin: dict[str, str], history, now: datetime):
    """Fill the counts of earlier requests that were not given from the user's history.

    Returns the history's Summary once used, else None. When the user gave any of the history's
    counts, they counted themselves and none is filled. Filled facts are marked "history" in
    ``origin``."""
    if any(given.get(wanted.fact) is not None for wanted in ruleset.history_facts):
        return None
    summary = history_summary(ruleset, given, history, now)
    if summary is None:
        return None
    for fact, count in summary.counts.items():
        given[fact] = count
        origin[fact] = "history"
    return summary


def history_pattern(ruleset: RuleSet, summaries: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What the rules make of the history, per cause: the rules one more request for that cause
    would newly bring into play, judged on the history facts alone. Returns (cause, rule) pairs."""
    from .conditions import holds, test_holds, tests_in

    counted = {wanted.fact for wanted in ruleset.history_facts}
    # one more request adds one to every count but the denials (its answer is not known yet)
    grows = {wanted.fact for wanted in ruleset.history_facts if wanted.counts != "denied"}
    crossings = []
    for cause, summary in summaries.items():
        now_facts: dict[str, Any] = dict(summary.counts)
        if ruleset.history_same_as:
            now_facts[ruleset.history_same_as] = cause
        next_facts = {**now_facts, **{fact: now_facts[fact] + 1 for fact in grows if fact in now_facts}}
        for rule in ruleset.rules:
            tests = [test for test in tests_in(rule.when) if test.fact in counted]
            if not tests:
                continue
            before = [test_holds(test, now_facts) for test in tests]
            after = [test_holds(test, next_facts) for test in tests]
            # newly in play: its history tests all hold after one more request but not now, and
            # nothing else known (the cause) rules it out
            if all(after) and not all(before) and holds(rule.when, next_facts) is not False:
                crossings.append((cause, rule))
    return crossings
