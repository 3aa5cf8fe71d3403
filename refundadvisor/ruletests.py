"""Running the tests written inside a rule file, and measuring what they cover.

Pure: no CLI, no terminal. Each test's facts are parsed as an answers file would be, assessed
with the same advisor as `check`, and compared with its expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from .advisor import advise
from .facts import FactError, MissingFacts, parse_answers
from .model import RuleSet, RuleTest


@dataclass
class TestOutcome:
    """One rule-file test's result: failures are 'what: expected X, got Y' lines."""

    test: RuleTest
    failures: list[str] = field(default_factory=list)
    error: Optional[str] = None
    fired: tuple[str, ...] = ()
    band: Optional[str] = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


@dataclass
class TestReport:
    path: str
    outcomes: list[TestOutcome]
    uncovered_rules: list[str]
    uncovered_bands: list[str]

    @property
    def passed(self) -> int:
        return sum(outcome.passed for outcome in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.passed


def run_test(ruleset: RuleSet, test: RuleTest) -> TestOutcome:
    """Assess one test's facts and compare the verdict with what it expects."""
    outcome = TestOutcome(test)
    try:
        now = _moment(test.now)
        assessment = advise(ruleset, parse_answers(ruleset, test.facts, now), now)
    except (FactError, MissingFacts, ValueError) as error:
        what = f"missing facts: {', '.join(error.names)}" if isinstance(error, MissingFacts) else str(error)
        outcome.error = f"its facts cannot be assessed: {what}"
        return outcome
    fired = tuple(reason.rule for reason in assessment.reasons)
    outcome.fired, outcome.band = fired, assessment.band.id
    expect = test.expect
    if expect.band is not None and expect.band != assessment.band.id:
        outcome.failures.append(f"band: expected {expect.band}, got {assessment.band.id} (score {assessment.score})")
    if expect.score is not None and not expect.score[0] <= assessment.score <= expect.score[1]:
        wanted = str(expect.score[0]) if expect.score[0] == expect.score[1] else f"{expect.score[0]}-{expect.score[1]}"
        outcome.failures.append(f"score: expected {wanted}, got {assessment.score}")
    if expect.outcome is not None and expect.outcome != assessment.outcome.id:
        outcome.failures.append(f"outcome: expected {expect.outcome}, got {assessment.outcome.id}")
    for rule in expect.fired:
        if rule not in fired:
            outcome.failures.append(f"fired: expected {rule} to fire; fired: {', '.join(fired) or 'none'}")
    for rule in expect.not_fired:
        if rule in fired:
            outcome.failures.append(f"not_fired: expected {rule} not to fire, but it did")
    items = [entry.id for entry in assessment.checklist]
    for item in expect.checklist_includes:
        if item not in items:
            outcome.failures.append(f"checklist_includes: expected {item}; checklist: {', '.join(items)}")
    return outcome


def run_tests(ruleset: RuleSet) -> TestReport:
    """Run every test in the rule file and list the rules and bands that none exercised."""
    outcomes = [run_test(ruleset, test) for test in ruleset.tests]
    fired = {rule for outcome in outcomes for rule in outcome.fired}
    bands = {outcome.band for outcome in outcomes}
    return TestReport(
        path=ruleset.path, outcomes=outcomes,
        # a file answers for its own rules; the ones it builds on are tested where they are written
        uncovered_rules=[rule.id for rule in ruleset.rules if rule.id not in fired and _own(ruleset, rule.id)],
        uncovered_bands=[band.id for band in ruleset.bands if band.id not in bands],
    )


def _moment(text: Optional[str]) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _own(ruleset: RuleSet, rule_id: str) -> bool:
    """Whether a rule is written in the file the rule set was loaded from (not in one it extends)."""
    if not ruleset.origins or not ruleset.layers:
        return True
    import os

    origin = ruleset.origins.get(f"rules.{rule_id}")
    return origin is None or os.path.abspath(origin) == ruleset.layers[0][0]
