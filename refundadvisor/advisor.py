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
