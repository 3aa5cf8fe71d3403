"""check, draft and batch take one path from facts to a verdict.

The batch joins its JSON lines from prepared pieces for speed; here every row it writes is
checked against the reference document built from the full assessment that `check` makes.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from helpers import NOW, NOW_TEXT
from refundadvisor import advisor
from refundadvisor.cli import app
from refundadvisor.facts import parse_answers
from refundadvisor.paths import bundled_platforms
from refundadvisor.render import batch_row_document
from refundadvisor.rules.cache import load

runner = CliRunner()
PLATFORMS = list(bundled_platforms())

ROWS = st.fixed_dictionaries(
    {"charge_type": st.sampled_from(["topup", "usage", "subscription"]),
     "amount": st.sampled_from([3, 12.4, 20, 50, 150, 800]),
     "ago": st.sampled_from(["1h", "20h", "25h", "3d", "10d", "40d"]),
     "cause": st.sampled_from(["unused-credits", "duplicate-charge", "credits-missing", "unauthorized",
                               "platform-error", "runaway-script", "overuse", "dissatisfied"])},
    optional={"platform": st.sampled_from(PLATFORMS),
              "payment_method": st.sampled_from(["card", "other"]),
              "prior_refunds": st.integers(0, 4),
              "warned": st.booleans(),
              "profile": st.sampled_from(["casual", "solo", "team"]),
              "evidence": st.lists(st.sampled_from(["receipts", "logs", "request-ids", "card-statement"]),
                                   unique=True)})


def reference(row: dict, line: int) -> dict:
    platform = row.get("platform", PLATFORMS[0])
    ruleset = load(str(bundled_platforms()[platform]))
    answers = {key: value for key, value in row.items() if key != "platform"}
    assessment = advisor.advise(ruleset, parse_answers(ruleset, answers, NOW), NOW)
    return batch_row_document(assessment, line)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(ROWS, min_size=1, max_size=12))
def test_every_batch_row_matches_the_full_assessment(rows):
    text = "".join(json.dumps(row) + "\n" for row in rows)
    result = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT, "--no-history"], input=text)
    assert result.exit_code == 0, result.stderr
    written = [json.loads(line) for line in result.stdout.splitlines()]
    assert written == [reference(row, number) for number, row in enumerate(rows, 1)]


def test_a_row_names_its_platform_and_gets_its_rules():
    row = {"charge_type": "topup", "amount": 50, "ago": "3h", "cause": "unused-credits"}
    text = "".join(json.dumps({**row, "platform": name, "id": name}) + "\n" for name in PLATFORMS)
    text += json.dumps({**row, "platform": "gemini", "id": "unknown"}) + "\n"
    result = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT], input=text)
    out = {item["id"]: item for item in map(json.loads, result.stdout.splitlines())}
    assert out["openrouter"]["outcome"]["id"] == "self-serve-refund"
    assert out["openai"]["outcome"]["id"] == out["anthropic"]["outcome"]["id"] == "decline-likely"
    assert out["unknown"]["ok"] is False and out["unknown"]["error"]["key"] == "platform"
    assert result.exit_code == 1  # one row failed


def test_a_row_never_depends_on_the_rows_before_it():
    """True is not 1: a boolean count is refused whether or not an earlier row gave 1."""
    base = {"charge_type": "usage", "amount": 10, "ago": "2h", "cause": "overuse"}
    alone = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT], input=json.dumps({**base, "prior_refunds": True}) + "\n")
    after = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT],
                          input=json.dumps({**base, "prior_refunds": 1}) + "\n" + json.dumps({**base, "prior_refunds": True}) + "\n")
    first = json.loads(alone.stdout)
    second = json.loads(after.stdout.splitlines()[1])
    assert first["ok"] is False and second["ok"] is False
    assert first["error"] == second["error"]
