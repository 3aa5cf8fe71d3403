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
    ("-3E-30000000000", "more than 12 decimal places"), ("9" * 1_000_000, "too long to be a number"),
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


# -- dates at the calendar's edges (issue 15): property tests --------------------------------------

from hypothesis import given as for_all, strategies as st  # noqa: E402

from refundadvisor import advisor  # noqa: E402
from refundadvisor.facts import FIRST_MOMENT, LAST_MOMENT, in_range, parse_moment  # noqa: E402

ANY_MOMENT = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                          timezones=st.one_of(st.none(), st.timezones(), st.just(timezone.utc)))
EDGES = st.sampled_from(["0001-01-01", "0001-01-01T00:00:00+05:00", "9999-12-31", "9999-12-31T23:59:59-05:00",
                         "1899-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "8999-12-31T23:59:59Z", "9000-01-01T00:00:00Z"])
MOMENT_TEXT = st.one_of(ANY_MOMENT.map(datetime.isoformat), ANY_MOMENT.map(lambda moment: moment.date().isoformat()), EDGES)
DURATION = st.builds(lambda count, unit: f"{count}{unit}", st.integers(min_value=0, max_value=10 ** 8), st.sampled_from("mhdw"))


@for_all(MOMENT_TEXT)
def test_any_now_is_a_moment_in_range_or_one_fact_error(text):
    try:
        moment = parse_moment(text, "--now")
    except FactError as error:
        assert str(error).startswith(repr(text)[:20]) and ("outside the years" in str(error) or "ISO 8601" in str(error))
        return
    assert moment.tzinfo is not None and in_range(moment)


@for_all(MOMENT_TEXT, st.one_of(MOMENT_TEXT, DURATION))
def test_any_charge_time_at_any_now_gives_a_verdict_with_deadlines_or_one_fact_error(ruleset, now_text, charge_text):
    try:
        now = parse_moment(now_text, "--now")
        charge = parse_charge_time(charge_text, now)
    except FactError:
        return
    assert FIRST_MOMENT <= charge.at <= now + timedelta(minutes=1) < LAST_MOMENT + timedelta(minutes=1)
    values = given(ruleset, charge_type="topup", amount="30", cause="unused-credits")
    assessment = advisor.advise(ruleset, {**values, "charged_at": charge}, now)
    for deadline in assessment.deadlines:  # every deadline lands on the calendar
        assert deadline.closes_at.year <= 9999 and deadline.closed == (now > deadline.closes_at)
    from refundadvisor.calendar import deadlines_ics

    deadlines_ics(assessment)  # and can be written as a calendar file


def test_the_edges_of_the_range_are_a_sentence_not_a_crash(ruleset):
    with pytest.raises(FactError, match="outside the years refundadvisor works with"):
        parse_moment("9999-12-31", "--now")
    with pytest.raises(FactError, match="outside the years"):
        parse_moment("0001-01-01", "--now")
    with pytest.raises(FactError, match="further back than any charge could be"):
        parse_charge_time("5w", datetime(1900, 1, 2, tzinfo=timezone.utc))
    # the last moment there is still gives a verdict, its deadlines a year on
    now = parse_moment("8999-12-31T23:00:00Z", "--now")
    values = given(ruleset, charge_type="topup", amount="30", cause="unused-credits")
    assessment = advisor.advise(ruleset, {**values, "charged_at": parse_charge_time("1h", now)}, now)
    assert assessment.deadlines and all(deadline.closes_at.year == 9000 for deadline in assessment.deadlines)


@for_all(st.one_of(st.text(max_size=30), st.from_regex(r"\A[-+$ ]?[0-9]{0,400}([.,][0-9]{0,400})?([eE][-+]?[0-9]{1,12})?\Z",
                                                        fullmatch=True), st.just("9" * 1_000_000)))
def test_any_amount_text_is_a_sane_number_or_one_fact_error(ruleset, text):
    try:
        amount = parse_number(text)
    except FactError as error:
        assert len(str(error)) < 300
        return
    assert amount.copy_abs() <= Decimal("1e12")
    values = given(ruleset, charge_type="topup", cause="unused-credits", charged_at="3h")
    try:
        resolved = resolve(ruleset, {**values, "amount": amount}, NOW)
    except FactError:
        return  # a bound of the rule file (no negative amounts)
    advisor.advise(ruleset, dict(values, amount=amount), NOW)  # and the engine's arithmetic copes
    assert resolved.values["amount"] == amount
