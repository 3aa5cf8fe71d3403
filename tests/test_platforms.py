"""Rule files for other platforms: OpenAI and Anthropic beside OpenRouter, chosen by name."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.paths import bundled_platforms

from helpers import NOW_TEXT, ROOT
from test_interview import answer, finish, spawn

runner = CliRunner()
PLATFORMS = ["openrouter", "anthropic", "openai"]  # the default, then by name

# A handful of situations, the same facts for every platform.
SITUATIONS = {
    "credits bought by mistake, 3 h ago": ["--charge-type", "topup", "--amount", "50", "--ago", "3h",
                                           "--cause", "unused-credits"],
    "duplicate top-up, 3 days ago": ["--charge-type", "topup", "--amount", "50", "--ago", "3d",
                                     "--cause", "duplicate-charge", "--evidence", "card-statement,receipts"],
    "failed requests billed, 6 h ago": ["--charge-type", "usage", "--amount", "12", "--ago", "6h",
                                        "--cause", "platform-error", "--evidence", "request-ids"],
    "runaway script, 5 h ago": ["--charge-type", "usage", "--amount", "80", "--ago", "5h", "--cause", "runaway-script"],
    "leaked key, 20 h ago": ["--charge-type", "usage", "--amount", "140", "--ago", "20h", "--cause", "unauthorized"],
}
EXPECTED = {  # (band, outcome) per platform, in PLATFORMS order: OpenRouter, Anthropic, OpenAI
    "credits bought by mistake, 3 h ago": [("very-likely", "self-serve-refund"), ("very-unlikely", "decline-likely"),
                                           ("very-unlikely", "decline-likely")],
    "duplicate top-up, 3 days ago": [("likely", "full-refund"), ("likely", "partial-credit"),
                                     ("very-likely", "full-refund")],
    "failed requests billed, 6 h ago": [("very-likely", "full-refund"), ("likely", "partial-credit"),
                                        ("very-likely", "full-refund")],
    "runaway script, 5 h ago": [("very-unlikely", "decline-likely")] * 3,
    "leaked key, 20 h ago": [("uncertain", "partial-credit"), ("unlikely", "partial-credit"),
                             ("likely", "full-refund")],
}


def verdict(platform: str, args: list[str]) -> tuple[str, str]:
    result = runner.invoke(app, ["check", "--now", NOW_TEXT, "--json", "--platform", platform, *args])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    return document["likelihood"]["band"], document["outcome"]["id"]


def test_three_platforms_are_bundled():
    assert list(bundled_platforms()) == PLATFORMS


@pytest.mark.parametrize("name", PLATFORMS)
def test_each_bundled_file_validates_clean_and_its_tests_cover_everything(name):
    validated = runner.invoke(app, ["rules", "validate", "--platform", name, "--strict"])
    assert validated.exit_code == 0 and "0 warnings" in validated.stdout, validated.stdout
    tested = runner.invoke(app, ["rules", "test", "--platform", name, "--coverage", "--format", "json"])
    report = json.loads(tested.stdout)
    assert tested.exit_code == 0 and report["failed"] == 0
    assert report["coverage"] == {"uncovered_rules": [], "uncovered_bands": []}


@pytest.mark.parametrize("name", PLATFORMS)
def test_each_file_names_its_platform_cites_primary_sources_and_has_a_date(name):
    from refundadvisor.rules import load

    ruleset, _ = load(str(bundled_platforms()[name]))
    assert ruleset.platform == name
    assert ruleset.policy.verified_on == {"anthropic": "2026-12-02"}.get(name, "2026-11-30")  # when each was checked
    primary = {source.id for source in ruleset.policy.sources.values() if source.sureness == "primary"}
    assert primary, name
    for rule in ruleset.rules:  # a rule that states policy cites a primary source
        if rule.cap is not None and rule.outcome == "decline-likely" and "published" not in rule.why.lower():
            assert primary & set(rule.sources) or any(s.startswith("seed-") for s in rule.sources), rule.id
    for source in ruleset.policy.sources.values():  # nothing uncertain drives the verdict
        assert source.sureness != "uncertain", source.id


def test_the_same_facts_give_different_verdicts_where_the_policies_differ():
    table = {situation: [verdict(platform, args) for platform in PLATFORMS] for situation, args in SITUATIONS.items()}
    assert table == EXPECTED


def test_platform_from_the_environment_and_conflicts():
    args = ["check", "--json", "--now", NOW_TEXT, *SITUATIONS["credits bought by mistake, 3 h ago"]]
    from_env = runner.invoke(app, args, env={"REFUNDADVISOR_PLATFORM": "anthropic"})
    document = json.loads(from_env.stdout)
    assert (document["platform"]["id"], document["rules"]["chosen_by"]) == ("anthropic", "REFUNDADVISOR_PLATFORM")
    flag_wins = json.loads(runner.invoke(app, [*args, "--platform", "openai"],
                                         env={"REFUNDADVISOR_PLATFORM": "anthropic"}).stdout)
    assert flag_wins["platform"]["id"] == "openai"
    both = runner.invoke(app, [*args, "--platform", "openai", "--rules", str(ROOT / "platforms" / "openrouter.yaml")])
    assert both.exit_code == 2 and "not both" in both.stderr
    unknown = runner.invoke(app, [*args, "--platform", "gemini"])
    assert unknown.exit_code == 2 and "bundled: openrouter, anthropic, openai" in unknown.stderr
    bad_env = runner.invoke(app, args, env={"REFUNDADVISOR_PLATFORM": "gemini"})
    assert bad_env.exit_code == 2 and "REFUNDADVISOR_PLATFORM: no bundled rule file" in bad_env.stderr


def test_one_fact_vocabulary_a_fact_a_platform_does_not_use_is_reported_not_refused():
    args = ["check", *SITUATIONS["credits bought by mistake, 3 h ago"], "--unused", "10", "--now", NOW_TEXT]
    for platform in PLATFORMS:
        result = runner.invoke(app, [*args, "--platform", platform, "--json"])
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["facts"]["unused"] == 10
        # OpenRouter refunds unused credits in its window, OpenAI for an incorrect restriction;
        # Anthropic publishes nothing that depends on them
        assert ("unused" in document["facts_unused"]) == (platform == "anthropic"), platform
    human = runner.invoke(app, [*args, "--platform", "anthropic", "--full"]).stdout
    assert "Not used by Anthropic's rules: unused" in " ".join(human.split())
    crypto = runner.invoke(app, ["check", "--platform", "anthropic", *SITUATIONS["runaway script, 5 h ago"],
                                 "--payment-method", "crypto"])
    assert crypto.exit_code == 2 and "choose one of: card, other" in crypto.stderr


def test_rules_list_shows_platforms_with_dates_and_sources():
    text = runner.invoke(app, ["rules", "list"]).stdout
    assert "openrouter (default): OpenRouter" in text and "openai: OpenAI API" in text and "anthropic: Anthropic" in text
    assert "https://help.openai.com/en/articles/8264778" in text
    document = json.loads(runner.invoke(app, ["rules", "list", "--format", "json"]).stdout)
    assert [item["name"] for item in document["platforms"]] == PLATFORMS
    assert all(item["verified_on"] and item["sources"] for item in document["platforms"])


def test_drafts_and_batches_take_the_platform():
    draft = runner.invoke(app, ["draft", "--now", NOW_TEXT, "--platform", "anthropic",
                                *SITUATIONS["failed requests billed, 6 h ago"]]).stdout
    assert draft.splitlines()[0].startswith("Subject: Billing question") and "Hello Anthropic support," in draft
    rows = json.dumps({"charge_type": "topup", "amount": 50, "ago": "3h", "cause": "unused-credits"}) + "\n"
    out = runner.invoke(app, ["batch", "-", "--platform", "openai", "--now", NOW_TEXT], input=rows).stdout
    assert json.loads(out)["outcome"]["id"] == "decline-likely"


def test_the_interview_asks_for_the_platform():
    child = spawn("check", "--now", NOW_TEXT)
    child.expect_exact("Which platform charged you?")
    answer(child, "> platform [openrouter]:", "3")  # by number: openai
    answer(child, "> charge type:", "usage")
    answer(child, "> amount:", "12")
    answer(child, "> charged at:", "6h")
    answer(child, "> cause:", "platform-error")
    answer(child, "> currency [usd]:", "")
    answer(child, "> prior refunds [0]:", "")
    answer(child, "> profile [solo]:", "")
    answer(child, "> usage span days [1]:", "")
    answer(child, "> evidence [none]:", "")
    answer(child, "> support reply [none]:", "")
    answer(child, "> Enter to accept, or a number to change that answer:", "")
    child.expect_exact("Refund likelihood (OpenAI API)")
    finish(child)
    assert child.exitstatus == 0


def test_no_platform_question_when_one_was_chosen():
    child = spawn("check", "--now", NOW_TEXT, "--platform", "anthropic")
    index = child.expect_exact(["Which platform charged you?", "> charge type:"])
    assert index == 1
    child.sendcontrol("c")
    finish(child)


# --- issue 12: the situations real users meet, on every platform ------------------------------------

NEW_SITUATIONS = {  # cause -> facts; every platform must give a verdict with its own contact address
    "credits-expired": ["--charge-type", "topup", "--amount", "50", "--ago", "400d"],
    "auto-topup-misfire": ["--charge-type", "topup", "--amount", "30", "--ago", "3d"],
    "wrong-balance": ["--charge-type", "subscription", "--amount", "60", "--ago", "2d"],
    "blocked-after-payment": ["--charge-type", "topup", "--amount", "50", "--ago", "3d"],
    "terms-changed": ["--charge-type", "topup", "--amount", "50", "--ago", "10d"],
    "wrong-purchase": ["--charge-type", "topup", "--amount", "500", "--ago", "36h"],
    "spend-limit-overrun": ["--charge-type", "usage", "--amount", "80", "--ago", "1d"],
    "promo-credits-removed": ["--charge-type", "topup", "--amount", "10", "--ago", "5d"],
    "refund-not-received": ["--charge-type", "topup", "--amount", "40", "--ago", "20d"],
    "unwanted-renewal": ["--charge-type", "subscription", "--amount", "20", "--ago", "2d"],
    "plan-changed": ["--charge-type", "subscription", "--amount", "200", "--ago", "5h"],
}


@pytest.mark.parametrize("cause", sorted(NEW_SITUATIONS))
def test_every_new_situation_has_a_verdict_and_a_place_to_write_on_every_platform(cause):
    for platform in PLATFORMS:
        result = runner.invoke(app, ["check", "--platform", platform, *NEW_SITUATIONS[cause], "--cause", cause,
                                     "--now", NOW_TEXT])
        assert result.exit_code == 0, (platform, result.stderr)
        assert "Where:" in result.stdout and "https://" in result.stdout, platform


def test_expired_credits_are_decided_by_each_platforms_published_expiry():
    for platform in PLATFORMS:
        late = json.loads(runner.invoke(app, ["check", "--platform", platform, *NEW_SITUATIONS["credits-expired"],
                                              "--cause", "credits-expired", "--now", NOW_TEXT, "--json"]).stdout)
        early = json.loads(runner.invoke(app, ["check", "--platform", platform, "--charge-type", "topup",
                                               "--amount", "50", "--ago", "100d", "--cause", "credits-expired",
                                               "--now", NOW_TEXT, "--json"]).stdout)
        assert late["outcome"]["id"] == "decline-likely", platform
        assert early["outcome"]["id"] == "reinstate-credits", platform
        assert early["likelihood"]["score"] > late["likelihood"]["score"], platform


def test_money_is_shown_in_the_charges_currency_and_usd_arithmetic_is_flagged():
    args = ["check", "--charge-type", "topup", "--amount", "20", "--ago", "2h", "--cause", "unused-credits",
            "--now", NOW_TEXT]
    euros = json.loads(runner.invoke(app, [*args, "--currency", "eur", "--json"]).stdout)
    assert euros["refund_estimate"]["currency"] == "EUR"
    assert any("Assumption" in warning and "USD" in warning for warning in euros["warnings"])
    dollars = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert dollars["refund_estimate"]["currency"] == "USD" and not any("Assumption" in w for w in dollars["warnings"])
    human = runner.invoke(app, [*args, "--currency", "gbp"]).stdout
    assert "GBP" in human and "USD" not in human.split("Would come back:")[1].splitlines()[0]
    subject = runner.invoke(app, ["draft", *args[1:], "--currency", "eur"]).stdout
    assert "20.00 EUR" in subject or "20 EUR" in subject


def test_a_card_dispute_window_only_for_a_card_payment_counted_from_the_payment():
    def deadlines(*extra):
        document = json.loads(runner.invoke(app, ["check", "--platform", "openai", "--amount", "40", "--ago", "2d",
                                                  "--now", NOW_TEXT, "--json", *extra]).stdout)
        return {deadline["id"]: deadline for deadline in document["deadlines"]}

    assert "card-dispute" in deadlines("--charge-type", "topup", "--cause", "credits-missing")
    assert not {"card-dispute", "card-dispute-duplicate"} & set(deadlines("--charge-type", "usage", "--cause", "platform-error"))
    duplicate = deadlines("--charge-type", "topup", "--cause", "duplicate-charge")
    assert "card-dispute-duplicate" in duplicate and "card-dispute" not in duplicate
    crypto = json.loads(runner.invoke(app, ["check", "--charge-type", "topup", "--amount", "40", "--ago", "2d",
                                            "--cause", "duplicate-charge", "--payment-method", "crypto",
                                            "--now", NOW_TEXT, "--json"]).stdout)
    assert not [d for d in crypto["deadlines"] if d["id"].startswith("card-dispute")]


def test_a_date_only_purchase_from_yesterday_may_still_be_open_never_closed():
    args = ["check", "--charge-type", "topup", "--amount", "20", "--charged-at", "2026-11-29",
            "--cause", "unused-credits", "--now", "2026-11-30T12:00:00Z"]
    human = " ".join(runner.invoke(app, args).stdout.split())
    assert "may still be open, check now" in human and "closed" not in human.split("Nearest deadline:")[1][:200]
    document = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    window = next(d for d in document["deadlines"] if d["id"] == "self-serve-refund")
    assert window["may_be_open_until"] is not None
    later = json.loads(runner.invoke(app, [*args[:-1], "2026-12-02T12:00:00Z", "--json"]).stdout)
    assert next(d for d in later["deadlines"] if d["id"] == "self-serve-refund")["may_be_open_until"] is None


def test_a_refund_support_promised_stays_likely_whatever_the_other_rules_say():
    """Caps written for an open request (no refunds for used credits, a second plan refund, abuse
    patterns) must not turn a refund support already promised into a refusal, on any platform."""
    from refundadvisor.rules import load

    for platform in PLATFORMS:
        ruleset, _ = load(str(bundled_platforms()[platform]))
        causes = [choice.id for choice in ruleset.facts["cause"].choices if choice.id != "refund-not-received"]
        rows = [{"id": f"{cause}/{charge_type}/{history}", "charge_type": charge_type, "amount": 200, "ago": "3d",
                 "cause": cause, "support_reply": "promised-refund",
                 **({"prior_refunds": 4, "similar_prior": 2, "warned": True} if history else {})}
                for cause in causes for charge_type in ("topup", "usage", "subscription") for history in (0, 1)]
        result = runner.invoke(app, ["batch", "-", "--platform", platform, "--format", "jsonl", "--no-history",
                                     "--now", NOW_TEXT], input="\n".join(json.dumps(row) for row in rows) + "\n")
        assert result.exit_code == 0, result.stderr
        verdicts = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(verdicts) == len(rows)
        low = [(row["id"], row["likelihood"]["score"]) for row in verdicts if row["likelihood"]["score"] < 70]
        assert not low, (platform, low)
        assert all(row["outcome"]["id"] != "decline-likely" for row in verdicts), platform
        # what comes back is the promise, wherever the platform's own estimates stand in the file
        args = ["check", "--platform", platform, "--charge-type", "usage", "--amount", "50", "--ago", "3d",
                "--cause", "runaway-script", "--no-history", "--now", NOW_TEXT, "--json"]
        promised = json.loads(runner.invoke(app, [*args, "--support-reply", "promised-refund"]).stdout)
        assert promised["refund_estimate"]["id"] == "promised-by-support", platform
        assert json.loads(runner.invoke(app, args).stdout)["refund_estimate"]["id"] != "promised-by-support", platform
