"""From verdict to action: the support-request draft, deadlines, the refund estimate, masking.

The drafts are golden files in tests/golden/; after an intended change to the wording, rewrite
them with UPDATE_GOLDEN=1 pytest tests/test_draft.py and review the diff.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.draft import placeholders

from helpers import NOW_TEXT, ROOT, assess

runner = CliRunner()
GOLDEN = ROOT / "tests" / "golden"
ALL_EVIDENCE = ("timestamps,receipts,card-statement,transaction-ids,screenshots,request-ids,error-messages,logs,"
                "activity-export,key-rotation,fix-notes,safeguards,timeline")
CASES = {
    "unused-credits": ["--charge-type", "topup", "--amount", "25", "--ago", "3h"],
    "duplicate-charge": ["--charge-type", "topup", "--amount", "50", "--ago", "3d"],
    "credits-missing": ["--charge-type", "topup", "--amount", "20", "--ago", "2h"],
    "unauthorized": ["--charge-type", "usage", "--amount", "140", "--ago", "20h"],
    "platform-error": ["--charge-type", "usage", "--amount", "12.40", "--charged-at", "2026-11-30T06:00:00Z"],
    "runaway-script": ["--charge-type", "usage", "--amount", "80", "--ago", "5h"],
    "overuse": ["--charge-type", "usage", "--amount", "35", "--ago", "2d"],
    "dissatisfied": ["--charge-type", "usage", "--amount", "9", "--ago", "1d"],
}


def draft(*args: str):
    result = runner.invoke(app, ["draft", "--now", NOW_TEXT, *args])
    assert "Traceback" not in result.stdout + result.stderr
    return result


def golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name}: the draft differs from {path}"


@pytest.mark.parametrize("cause", sorted(CASES))
@pytest.mark.parametrize("evidence", ["with", "without"])
def test_golden_drafts_for_every_cause(cause, evidence):
    args = [*CASES[cause], "--cause", cause]
    if evidence == "with":
        args += ["--evidence", ALL_EVIDENCE, "--summary", "It happened this morning; details below."]
    result = draft(*args)
    assert result.exit_code == 0, result.stderr
    golden(f"draft-{cause}-{evidence}-evidence", result.stdout)
    left = placeholders(result.stdout)
    if evidence == "with":
        # only what no evidence kind can give: who is writing, and what only the user knows
        assert "your name" in left and not any(item.startswith("the receipt") for item in left)
    elif "usage" in CASES[cause]:  # usage has no receipt: its time window identifies it
        assert any(item.startswith("the time window of the disputed usage") for item in left)
        assert not any(item.startswith("the receipt") for item in left)
    else:
        assert any(item.startswith("the receipt email") for item in left)
        assert any(item.startswith("what happened, in your own words") for item in left)


def test_evidence_fills_placeholders():
    base = [*CASES["platform-error"], "--cause", "platform-error"]
    without = placeholders(draft(*base).stdout)
    with_ids = placeholders(draft(*base, "--evidence", "request-ids").stdout)
    assert any("generation IDs" in item for item in without)
    assert not any("generation IDs" in item for item in with_ids)
    assert len(with_ids) == len(without) - 1


def test_the_draft_says_when_a_ticket_is_the_wrong_path():
    in_window = draft(*CASES["unused-credits"], "--cause", "unused-credits").stdout
    assert in_window.startswith("Before you send this:") and "refund button on the Credits page" in in_window
    crypto = draft(*CASES["unused-credits"], "--cause", "unused-credits", "--payment-method", "crypto").stdout
    assert "Cryptocurrency payments are not refundable" in crypto
    runaway = draft(*CASES["runaway-script"], "--cause", "runaway-script").stdout
    assert "goodwill" in runaway and "[[the limits you have added since" in runaway


def test_the_draft_never_claims_what_was_not_stated():
    text = draft(*CASES["runaway-script"], "--cause", "runaway-script").stdout
    assert "I have fixed" not in text and "[[what the bug was and how you fixed it]]" in text
    assert "[[what happened, in your own words" in text


def test_the_draft_states_only_what_the_user_gave_and_asks_for_the_remedy_that_fits():
    usage = draft(*CASES["platform-error"], "--cause", "platform-error").stdout
    assert "Payment method" not in usage  # usage is not a payment
    assert "listed below" not in usage
    topup = draft(*CASES["unused-credits"], "--cause", "unused-credits").stdout
    assert "Payment method" not in topup  # assumed, not given: not asserted to support
    paid = draft(*CASES["unused-credits"], "--cause", "unused-credits", "--payment-method", "card").stdout
    assert "Payment method: Card." in paid
    missing = draft(*CASES["credits-missing"], "--cause", "credits-missing").stdout
    assert "waiting" not in missing and "30 minutes" not in missing  # they did not say they waited
    assert "both" not in missing.lower()  # one payment: no "both receipts"
    crypto = draft(*CASES["credits-missing"], "--cause", "credits-missing", "--payment-method", "crypto").stdout
    assert "card statement" not in crypto.lower()
    late = draft("--charge-type", "topup", "--amount", "25", "--ago", "3d", "--cause", "unused-credits").stdout
    assert "goodwill credit" not in late  # they already hold the credits
    assert "one-time exception" in late and "unused credits from this purchase to be refunded" in late
    dated = draft("--charge-type", "topup", "--amount", "25", "--charged-at", "2026-11-29",
                  "--cause", "duplicate-charge").stdout
    assert "00:00" not in dated and "time of day not known" in dated  # no invented time of day
    euros = draft(*CASES["duplicate-charge"], "--cause", "duplicate-charge", "--currency", "eur").stdout
    assert "50.00 EUR" in euros and "USD" not in euros


def test_markdown_and_output_file(tmp_path):
    out = tmp_path / "request.md"
    result = draft(*CASES["duplicate-charge"], "--cause", "duplicate-charge", "--format", "markdown", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    text = out.read_text()
    assert text.startswith("## Refund request: 50.00 USD charged on 2026-11-27 12:00 UTC")
    assert "**To add before sending:**" in text and "- [[both transaction IDs" in text
    assert f"draft written to {out}" in result.stderr


def test_bad_draft_options():
    assert draft(*CASES["overuse"], "--cause", "overuse", "--format", "pdf").exit_code == 2
    result = draft(*CASES["overuse"], "--cause", "overuse", "--output", "/nonexistent/dir/x.txt")
    assert result.exit_code == 1 and "cannot write" in result.stderr


# --- secrets --------------------------------------------------------------------------------------

KEYS = ["sk-or-v1-0123456789abcdef0123456789abcdef", "sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "sk-0123456789abcdefghij"]


@pytest.mark.parametrize("key", KEYS)
def test_api_keys_in_the_summary_are_masked_with_a_warning(key):
    result = draft(*CASES["unauthorized"], "--cause", "unauthorized", "--summary", f"My key {key} leaked on GitHub.")
    assert key not in result.stdout and "[API key removed]" in result.stdout
    assert "removed 1 API key" in result.stderr and key not in result.stderr


def test_api_keys_are_never_echoed_in_errors():
    key = KEYS[0]
    for args in (["check", "--cause", key], ["draft", "--cause", key], ["check", "--amount", key]):
        result = runner.invoke(app, [*args, "--charge-type", "usage", "--ago", "1h"])
        assert result.exit_code == 2 and key not in result.stderr and "[API key removed]" in result.stderr
    batch = runner.invoke(app, ["batch", "-"], input=json.dumps({"cause": key}) + "\n")
    assert key not in batch.stdout


# --- deadlines ------------------------------------------------------------------------------------

def deadlines_for(*args: str, now: str = NOW_TEXT) -> dict:
    result = runner.invoke(app, ["check", "--now", now, "--json", "--charge-type", "topup", "--cause", "unused-credits",
                                 "--amount", "20", *args])
    return {item["id"]: item for item in json.loads(result.stdout)["deadlines"]}


def test_deadlines_are_absolute_utc_times():
    deadlines = deadlines_for("--charged-at", "2026-11-30T09:15:00Z")
    assert deadlines["self-serve-refund"]["closes_at"] == "2026-12-01T09:15:00Z"
    assert deadlines["card-dispute"]["closes_at"] == "2027-03-30T09:15:00Z"
    assert deadlines["card-dispute"]["approximate"] is True
    assert deadlines["credit-expiry"]["closes_at"] == "2027-11-30T09:15:00Z"
    assert not any(item["closed"] for item in deadlines.values())


@pytest.mark.parametrize("zone, given, closes", [
    ("America/Los_Angeles", "2026-11-29T23:30", "2026-12-01T07:30:00Z"),  # late evening local: next day in UTC
    ("Asia/Tokyo", "2026-11-30T08:00", "2026-11-30T23:00:00Z"),  # morning local: the day before in UTC
    ("Asia/Tokyo", "2026-11-30", "2026-11-30T15:00:00Z"),  # a date only: from the start of that local day
    ("UTC", "2026-11-30", "2026-12-01T00:00:00Z"),
])
def test_deadline_arithmetic_across_time_zones_and_the_day_boundary(monkeypatch, zone, given, closes):
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    deadlines = deadlines_for("--charged-at", given, now="2026-11-30T14:00:00Z")
    assert deadlines["self-serve-refund"]["closes_at"] == closes


def test_a_closed_window_says_so():
    deadlines = deadlines_for("--ago", "30h")
    assert deadlines["self-serve-refund"]["closed"] is True
    human = runner.invoke(app, ["check", "--full", "--now", NOW_TEXT, "--charge-type", "topup", "--cause", "unused-credits",
                                "--amount", "20", "--ago", "30h"], env={"COLUMNS": "200"}).stdout
    assert "closed 6 h ago (2026-11-30 06:00 UTC)" in human


def test_the_countdown():
    human = runner.invoke(app, ["check", "--full", "--now", NOW_TEXT, "--charge-type", "topup", "--cause", "unused-credits",
                                "--amount", "20", "--ago", "20h48m"], env={"COLUMNS": "200"}).stdout
    assert "closes in 3 h 12 min (2026-11-30 15:12 UTC)" in human
    assert "closes in about 119 d 3 h (2027-03-29)" in human


def test_crypto_has_no_self_serve_deadline_and_no_card_dispute():
    deadlines = deadlines_for("--ago", "1h", "--payment-method", "crypto")
    assert set(deadlines) == {"credit-expiry"}


# --- the refund estimate --------------------------------------------------------------------------

@pytest.mark.parametrize("facts, amount, up_to", [
    (dict(charge_type="topup", amount="10", charged_at="2h", cause="unused-credits"), Decimal("9.20"), False),
    (dict(charge_type="topup", amount="50", charged_at="2h", cause="unused-credits"), Decimal("47.39"), False),
    (dict(charge_type="topup", amount="50", charged_at="2h", cause="unused-credits", unused="30"), Decimal("30.00"), False),
    (dict(charge_type="topup", amount="0.90", charged_at="2h", cause="unused-credits"), Decimal("0.10"), False),
    (dict(charge_type="topup", amount="0.50", charged_at="2h", cause="unused-credits"), Decimal("0.00"), False),
    (dict(charge_type="topup", amount="100", charged_at="2h", cause="duplicate-charge"), Decimal("94.79"), False),
    (dict(charge_type="usage", amount="12.40", charged_at="2h", cause="platform-error"), Decimal("12.40"), True),
    (dict(charge_type="topup", amount="20", charged_at="2h", cause="unused-credits", payment_method="crypto"), None, False),
    (dict(charge_type="usage", amount="80", charged_at="2h", cause="runaway-script"), None, False),
    (dict(charge_type="topup", amount="20", charged_at="30h", cause="unused-credits"), None, False),
])
def test_refund_estimates(ruleset, facts, amount, up_to):
    estimate = assess(ruleset, **facts).estimate
    assert (estimate.amount, estimate.up_to) == (amount, up_to)
    assert estimate.note


def test_estimate_notes_name_the_fee_from_the_policy(ruleset):
    estimate = assess(ruleset, charge_type="topup", amount="10", charged_at="2h", cause="unused-credits").estimate
    assert "5.5%" in estimate.note and "$0.80" in estimate.note


def test_money_in_the_estimate_is_exact_in_json():
    result = runner.invoke(app, ["check", "--now", NOW_TEXT, "--json", "--charge-type", "topup", "--cause",
                                 "unused-credits", "--amount", "20", "--unused", "0.1", "--ago", "1h"])
    assert '"amount": 0.1' in result.stdout.split('"refund_estimate"')[1].split("}")[0]
