"""Small helpers the tests share."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from refundadvisor import advisor
from refundadvisor.facts import parse_value

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
NOW_TEXT = "2026-11-30T12:00:00Z"


def assess(ruleset, now=NOW, **given: Any):
    """Assess facts given as text, the way flags give them."""
    parsed = {name: parse_value(ruleset.facts[name], value, now) for name, value in given.items()}
    return advisor.advise(ruleset, parsed, now)


def fired(assessment) -> list[str]:
    return [reason.rule for reason in assessment.reasons]
