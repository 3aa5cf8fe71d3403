"""The engine on plain facts, no CLI: the seed's situations, OpenRouter's published rules,
and how scores, caps, floors and outcomes combine."""

from __future__ import annotations

import pytest

from refundadvisor import engine, rules
from refundadvisor.facts import resolve

from helpers import NOW, assess, fired

# The seed article's table "Type of issue: how it's typically viewed", as facts.
SEED_SITUATIONS = {
    "clear platform error": dict(charge_type="usage", amount="12.40", charged_at="6h", cause="platform-error",
                                 evidence="request-ids,error-messages"),
    "billing glitch (double charge)": dict(charge_type="topup", amount="50", charged_at="3d", cause="duplicate-charge",
                                           evidence="card-statement,receipts"),
    "misconfigured script": dict(charge_type="usage", amount="80", charged_at="1d", cause="runaway-script"),
    "didn't like the responses": dict(charge_type="usage", amount="15", charged_at="2d", cause="dissatisfied"),
    "used more than I meant": dict(charge_type="usage", amount="40", charged_at="2d", cause="overuse"),
}


@pytest.mark.parametrize("situation, band, outcome", [
    ("clear platform error", "very-likely", "full-refund"),
    ("billing glitch (double charge)", "likely", "full-refund"),
    ("misconfigured script", "very-unlikely", "decline-likely"),
    ("didn't like the responses", "very-unlikely", "decline-likely"),
    ("used more than I meant", "very-unlikely", "decline-likely"),
])
def test_seed_situations(ruleset, situation, band, outcome):
    result = assess(ruleset, **SEED_SITUATIONS[situation])
    assert (result.band.id, result.outcome.id) == (band, outcome)


def test_platform_side_problems_rank_above_user_mistakes(ruleset):
    scores = {name: assess(ruleset, **facts).score for name, facts in SEED_SITUATIONS.items()}
    platform_side = min(scores["clear platform error"], scores["billing glitch (double charge)"])
    user_side = max(scores["misconfigured script"], scores["didn't like the responses"], scores["used more than I meant"])
    assert platform_side > user_side + 30


def test_unused_credits_within_24h_is_self_serve(ruleset):
    result = assess(ruleset, charge_type="topup", amount="25", charged_at="23h", cause="unused-credits")
    assert result.outcome.id == "self-serve-refund"
    assert result.band.id == "very-likely"
    assert result.floor and result.floor.rule == "unused-credits-in-window"
    assert any("refund button" in step for step in result.next_steps)


def test_unused_credits_an_hour_past_the_window_is_declined(ruleset):
    result = assess(ruleset, charge_type="topup", amount="25", charged_at="25h", cause="unused-credits")
    assert result.outcome.id == "decline-likely"
    assert result.cap.rule == "unused-credits-after-window"
    assert "unused-credits-in-window" not in fired(result)


def test_exactly_24_hours_is_still_within_the_window(ruleset):
    result = assess(ruleset, charge_type="topup", amount="25", charged_at="24h", cause="unused-credits")
    assert result.outcome.id == "self-serve-refund"


def test_used_up_credits_are_not_refundable_through_the_button(ruleset):
    result = assess(ruleset, charge_type="topup", amount="25", charged_at="2h", cause="unused-credits", unused="0")
    assert "unused-credits-in-window" not in fired(result)


def test_crypto_is_never_refundable_and_its_cap_beats_the_floor(ruleset):
    result = assess(ruleset, charge_type="topup", amount="25", charged_at="1h", cause="duplicate-charge",
                    payment_method="crypto")
    assert result.cap.rule == "crypto-not-refundable"
    assert result.score <= result.cap.value
    assert result.outcome.id == "decline-likely"


def test_duplicate_top_up_in_window_points_to_the_button(ruleset):
    result = assess(ruleset, charge_type="topup", amount="50", charged_at="2h", cause="duplicate-charge")
    assert result.outcome.id == "self-serve-refund"
    later = assess(ruleset, charge_type="topup", amount="50", charged_at="2d", cause="duplicate-charge")
    assert later.outcome.id == "full-refund"
    assert later.cap.rule == "duplicate-charge-after-window"


def test_runaway_script_nuance_shows_but_published_rule_decides(ruleset):
    result = assess(ruleset, charge_type="usage", amount="30", charged_at="3h", cause="runaway-script", profile="solo")
    assert "solo-one-off-script" in fired(result)
    assert result.band.id == "very-unlikely"
    assert result.cap.rule == "used-credits-not-refundable"


def test_history_lowers_the_score_and_a_warning_caps_it(ruleset):
    base = dict(charge_type="topup", amount="30", charged_at="3h", cause="unauthorized")
    clean = assess(ruleset, **base)
    repeat = assess(ruleset, **base, prior_refunds="3", similar_prior="1")
    warned = assess(ruleset, **base, prior_refunds="3", similar_prior="1", warned="yes")
    assert clean.score > repeat.score > warned.score
    assert warned.cap.rule == "warned-before"
    assert warned.outcome.id == "decline-likely"


def test_team_profile_turns_a_platform_error_into_partial_credit(ruleset):
    solo = assess(ruleset, charge_type="usage", amount="60", charged_at="10d", cause="platform-error",
                  evidence="request-ids")
    team = assess(ruleset, charge_type="usage", amount="60", charged_at="10d", cause="platform-error",
                  evidence="request-ids", profile="team")
    assert solo.outcome.id == "full-refund"
    assert team.outcome.id == "partial-credit"
    assert team.score < solo.score  # heavy users' goodwill is weaker, not stronger


def test_amount_and_span_matter(ruleset):
    small = assess(ruleset, charge_type="usage", amount="10", charged_at="10d", cause="platform-error",
                   evidence="request-ids")
    large = assess(ruleset, charge_type="usage", amount="500", charged_at="10d", cause="platform-error",
                   usage_span_days="14", evidence="request-ids")
    assert small.score - large.score >= 25
    assert {"large-amount", "long-usage-span"} <= set(fired(large))


def test_timing_matters(ruleset):
    scores = [assess(ruleset, charge_type="usage", amount="60", charged_at=ago, cause="platform-error").score
              for ago in ("2h", "3d", "14d", "60d")]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]


def test_checklist_ticks_what_the_user_has(ruleset):
    result = assess(ruleset, charge_type="usage", amount="12", charged_at="5h", cause="platform-error",
                    evidence="request-ids")
    have = {entry.id: entry.have for entry in result.checklist}
    assert have["generation-ids"] is True
    assert have["generation-details"] is False
    # usage is not a payment: its time window, no receipt
    assert {"usage-window", "timeline"} <= set(have) and not {"purchase-time", "receipt"} & set(have)
    topup = assess(ruleset, charge_type="topup", amount="12", charged_at="5h", cause="credits-missing")
    assert {"purchase-time", "receipt", "timeline"} <= {entry.id for entry in topup.checklist}


def test_platform_error_warns_about_zero_completion_insurance(ruleset):
    result = assess(ruleset, charge_type="usage", amount="12", charged_at="5h", cause="platform-error")
    assert any("Zero Completion Insurance" in warning for warning in result.warnings)


def test_same_facts_same_verdict(ruleset):
    runs = {(r.score, r.band.id, r.outcome.id, tuple(fired(r)))
            for r in (assess(ruleset, **SEED_SITUATIONS["misconfigured script"]) for _ in range(5))}
    assert len(runs) == 1


def test_date_only_charge_gets_the_cautious_reading_and_a_warning(ruleset):
    # 29 Nov at 00:00 is 36 h before NOW (outside the window); at 23:59 it is 12 h (inside)
    result = assess(ruleset, charge_type="topup", amount="20", charged_at="2026-11-29", cause="unused-credits")
    assert result.outcome.id == "decline-likely"
    assert result.facts.values["hours_since_charge"] == 36
    assert any("Only the date" in warning for warning in result.warnings)


def test_date_only_charge_warns_only_when_the_hour_matters(ruleset):
    result = assess(ruleset, charge_type="usage", amount="20", charged_at="2026-11-20", cause="overuse")
    assert not any("Only the date" in warning for warning in result.warnings)


SMALL_RULES = """
format: 1
requires_engine: 1
platform: demo
title: Demo
currency: USD
policy:
  name: Demo policy
  verified_on: "2026-01-01"
  sources: {doc: {title: Demo docs, sureness: primary}}
  parameters: {limit: {value: 10, source: doc}}
facts:
  amount: {type: number, question: How much?, min: 0}
  kind: {type: choice, question: Which?, choices: [{id: a, label: A}, {id: b, label: B}]}
outcomes:
  - {id: good, text: Good}
  - {id: bad, text: Bad}
scoring: {start: 50, min: 0, max: 100}
bands:
  - {id: high, label: High, from: 50, to: 100, outcome: good}
  - {id: low, label: Low, from: 0, to: 49, outcome: bad}
rules:
  - {id: plus, why: w, source: doc, when: {fact: amount, gt: {param: limit}}, score: 80, floor: 60}
  - {id: cap-a, why: w, source: doc, when: {fact: kind, eq: a}, cap: 40, outcome: good}
  - {id: cap-a-lower, why: w, source: doc, when: {fact: kind, eq: a}, cap: 30, outcome: bad}
  - {id: floor-b, why: w, source: doc, when: {fact: kind, eq: b}, floor: 70}
"""


@pytest.fixture
def small():
    ruleset, _ = rules.load_text(SMALL_RULES, "small.yaml")
    return ruleset


def run(ruleset, **values):
    from decimal import Decimal

    given = {name: Decimal(value) if name == "amount" else value for name, value in values.items()}
    return engine.assess(resolve(ruleset, given, NOW), ruleset)


def test_scores_are_clamped_to_the_range(small):
    result = run(small, amount="20", kind="b")
    assert result.score == 100
    assert [step.what for step in result.steps][:3] == ["start", "+80", "kept within 0-100"]


def test_lowest_cap_wins_and_names_its_rule(small):
    result = run(small, amount="20", kind="a")
    assert (result.score, result.cap.rule) == (30, "cap-a-lower")
    assert result.band.id == "low"


def test_least_favourable_outcome_wins(small):
    assert run(small, amount="5", kind="a").outcome.id == "bad"


def test_floor_raises_and_highest_floor_applies(small):
    result = run(small, amount="5", kind="b")
    assert (result.score, result.floor.rule) == (70, "floor-b")


def test_band_outcome_when_no_rule_names_one(small):
    result = run(small, amount="5", kind="b")
    assert (result.band.id, result.outcome.id, result.outcome_rule) == ("high", "good", None)


def test_missing_fact_makes_a_condition_unknown_not_an_error(small):
    from refundadvisor.conditions import Test, holds

    assert holds(Test("kind", "eq", "a", "a"), {}) is None
    assert holds(Test("kind", "missing", True, "true"), {}) is True


# --- the compiled conditions agree with the reference evaluation ----------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from refundadvisor.conditions import compile_condition as evaluator, holds  # noqa: E402

FACT_VALUES = st.fixed_dictionaries({}, optional={
    "charge_type": st.sampled_from(["topup", "usage", "subscription"]),
    "cause": st.sampled_from(["unused-credits", "duplicate-charge", "credits-missing", "unauthorized",
                              "platform-error", "runaway-script", "overuse", "dissatisfied", "credits-expired",
                              "auto-topup-misfire", "wrong-balance", "blocked-after-payment", "terms-changed",
                              "wrong-purchase", "spend-limit-overrun", "promo-credits-removed",
                              "refund-not-received", "unwanted-renewal", "plan-changed", "not-a-cause"]),
    "payment_method": st.sampled_from(["card", "crypto", "other"]),
    "amount": st.decimals(min_value=0, max_value=10_000, places=2),
    "unused": st.decimals(min_value=0, max_value=10_000, places=2),
    "prior_refunds": st.integers(0, 10),
    "similar_prior": st.integers(0, 10),
    "warned": st.booleans(),
    "profile": st.sampled_from(["casual", "solo", "team"]),
    "usage_span_days": st.floats(0, 400),
    "evidence": st.lists(st.sampled_from(["timestamps", "receipts", "logs", "request-ids", "card-statement",
                                          "screenshots", "activity-export", "transaction-ids"]), unique=True).map(tuple),
    "hours_since_charge": st.floats(0, 10_000),
    "days_since_charge": st.floats(0, 400),
})


@settings(max_examples=300, deadline=None)
@given(values=FACT_VALUES)
def test_compiled_conditions_agree_with_the_reference(ruleset, values):
    for rule in ruleset.rules:
        assert evaluator(rule.when)(values) == holds(rule.when, values), rule.id
    for spec in ruleset.facts.values():
        if spec.ask_when is not None:
            assert evaluator(spec.ask_when)(values) == holds(spec.ask_when, values)


@settings(max_examples=300, deadline=None)
@given(values=FACT_VALUES)
def test_the_gated_evaluation_fires_exactly_the_rules_a_full_one_does(values):
    """Batches evaluate only the rules that can hold for a row's value of the gating fact."""
    from refundadvisor.paths import bundled_platforms
    from refundadvisor.rules import load

    for path in bundled_platforms().values():
        rules, _ = load(str(path))
        plan = engine.plan_for(rules)
        full = tuple(index for index, check in enumerate(plan.checks) if check(values) is True)
        plan.gate[0] = engine._GATE_AFTER  # as after a batch's first rows: the gate is built and used
        assert engine.evaluate(values, rules) == full
        assert plan.gate[1] is not None


@settings(max_examples=200, deadline=None)
@given(values=FACT_VALUES)
def test_remembered_conclusions_match_fresh_ones(ruleset, values):
    from refundadvisor.facts import Facts

    first = engine.assess(Facts(dict(values), {}), ruleset, trace=False)
    engine.plan_for(ruleset).conclusions.clear()
    fresh = engine.assess(Facts(dict(values), {}), ruleset, trace=True)
    assert (first.score, first.band, first.outcome, first.reasons, first.checklist, first.next_steps) == \
           (fresh.score, fresh.band, fresh.outcome, fresh.reasons, fresh.checklist, fresh.next_steps)
    assert fresh.steps[-1].score == fresh.score


def test_the_history_never_counts_the_charge_being_checked_against_itself(tmp_path, monkeypatch):
    import json as _json

    from typer.testing import CliRunner

    from refundadvisor.cli import app

    monkeypatch.setenv("REFUNDADVISOR_HOME", str(tmp_path))
    cli = CliRunner()
    charge = ["--charge-type", "usage", "--amount", "30", "--ago", "3h", "--cause", "platform-error",
              "--evidence", "request-ids"]

    def score(*args):
        result = cli.invoke(app, ["check", *args, "--json"])
        assert result.exit_code == 0, result.stderr
        document = _json.loads(result.stdout)
        return document["likelihood"]["score"], document["facts"]["prior_refunds"]

    first = score(*charge, "--record")
    # checked again later: "3h ago" now names a moment a little later, but it is the same charge
    again = score(*charge[:5], "2h59m", *charge[6:])
    assert again == first and first[1] == 0
    # another charge (another amount) does count the recorded request
    assert score("--charge-type", "usage", "--amount", "31", "--ago", "1h", "--cause", "platform-error",
                 "--evidence", "request-ids")[1] == 1
