"""Parsing what people type: amounts, times, durations, choices, and the checks on them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from refundadvisor.facts import FactError, MissingFacts, parse_charge_time, parse_duration, parse_number, parse_value, resolve

from helpers import NOW


@pytest.mark.parametrize("text, value", [("12.50", Decimal("12.50")), ("$7", Decimal("7")), ("0", Decimal("0")),
                                         (" 0.1 ", Decimal("0.1"))])
def test_amounts(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text, says", [
    ("12,50", "write 12.50"), ("abc", "not a number"), ("nan", "not a finite number"),
    ("inf", "not a finite number"), ("1e308", "too large"), ("", "not a number"),
])
def test_bad_amounts(text, says):
    with pytest.raises(FactError, match=says):
        parse_number(text)


def test_money_stays_exact():
    assert parse_number("0.1") + parse_number("0.2") == Decimal("0.3")


@pytest.mark.parametrize("text, delta", [("30m", timedelta(minutes=30)), ("5h", timedelta(hours=5)),
                                         ("3d", timedelta(days=3)), ("2w", timedelta(weeks=2)),
                                         ("1d12h", timedelta(hours=36)), ("0m", timedelta(0)), ("5H", timedelta(hours=5))])
def test_durations(text, delta):
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["5", "5y", "h", "-3d", "3 days"])
def test_bad_durations(text):
    with pytest.raises(FactError, match="30m, 5h, 3d or 2w"):
        parse_duration(text)


def test_date_time_without_offset_is_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    charge = parse_charge_time("2026-11-29T14:30", NOW)
    assert charge.at == datetime(2026, 11, 29, 19, 30, tzinfo=timezone.utc)
    assert charge.time_known


def test_local_time_uses_the_dst_rule_of_that_date(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    summer = parse_charge_time("2026-07-01T12:00", NOW)
    winter = parse_charge_time("2026-11-01T12:00", NOW)
    assert summer.at.hour == 10 and winter.at.hour == 11


def test_offsets_and_z_are_honoured():
    assert parse_charge_time("2026-11-29T14:30:00+02:00", NOW).at.hour == 12
    assert parse_charge_time("2026-11-29T14:30:00Z", NOW).at.hour == 14


def test_date_only_reads_as_the_start_of_the_day_with_the_hour_unknown():
    charge = parse_charge_time("2026-11-29", NOW)
    assert charge.at == datetime(2026, 11, 29, tzinfo=timezone.utc)
    assert not charge.time_known
    assert charge.latest(NOW).at == datetime(2026, 11, 29, 23, 59, 59, tzinfo=timezone.utc)


def test_leap_day():
    assert parse_charge_time("2024-02-29", NOW).at.day == 29
    with pytest.raises(FactError):
        parse_charge_time("2026-02-29", NOW)


def test_future_is_refused_but_clock_skew_is_not():
    with pytest.raises(FactError, match="future"):
        parse_charge_time("2026-12-01", NOW)
    parse_charge_time("2026-11-30T12:00:30Z", NOW)


@pytest.mark.parametrize("text", ["yesterday", "29/11/2026", "2026-13-01", "12:00"])
def test_unreadable_dates(text):
    with pytest.raises(FactError, match="not a date or time"):
        parse_charge_time(text, NOW)


def test_choices_by_id_any_case_and_the_error_lists_them(ruleset):
    assert parse_value(ruleset.facts["cause"], "Platform-Error", NOW) == "platform-error"
    with pytest.raises(FactError, match="choose one of: unused-credits, duplicate-charge"):
        parse_value(ruleset.facts["cause"], "bug", NOW)


def test_evidence_list(ruleset):
    spec = ruleset.facts["evidence"]
    assert parse_value(spec, "logs, receipts,logs", NOW) == ("logs", "receipts")
    assert parse_value(spec, "none", NOW) == ()
    with pytest.raises(FactError, match="'selfie'"):
        parse_value(spec, "logs,selfie", NOW)


def given(ruleset, **values):
    return {name: parse_value(ruleset.facts[name], value, NOW) for name, value in values.items()}


def test_defaults_fill_in_for_scripts(ruleset):
    facts = resolve(ruleset, given(ruleset, charge_type="topup", amount="30", charged_at="2h", cause="unused-credits"), NOW)
    values = facts.values
    assert (values["payment_method"], values["unused"], values["prior_refunds"], values["warned"],
            values["profile"], values["evidence"]) == ("card", Decimal("30"), 0, False, "solo", ())
    assert values["hours_since_charge"] == 2
    assert facts.origin["unused"] == "default" and facts.origin["amount"] == "given"


def test_only_relevant_facts_are_needed(ruleset):
    facts = resolve(ruleset, given(ruleset, charge_type="usage", amount="30", charged_at="2h", cause="overuse"), NOW)
    assert "unused" not in facts.values


def test_missing_required_facts_are_named_in_order(ruleset):
    with pytest.raises(MissingFacts) as caught:
        resolve(ruleset, given(ruleset, amount="3"), NOW)
    assert caught.value.names == ["charge_type", "charged_at", "cause"]


@pytest.mark.parametrize("values, says", [
    (dict(amount="-5"), "amount cannot be less than 0"),
    (dict(unused="40"), "unused cannot be more than the amount"),
    (dict(prior_refunds="1", similar_prior="2"), "similar prior cannot be more than the prior refunds"),
])
def test_bounds(ruleset, values, says):
    base = dict(charge_type="topup", amount="30", charged_at="2h", cause="unused-credits")
    with pytest.raises(FactError, match=says):
        resolve(ruleset, given(ruleset, **{**base, **values}), NOW)
