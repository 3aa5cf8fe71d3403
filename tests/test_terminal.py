"""The terminal contract in a real pseudo-terminal (pexpect): ask only what is needed, never
ambush a script, review/back/help/unknown in the interview, the verdict on one screen."""

from __future__ import annotations

import json
import os
import re
import sys

import pexpect
import pytest

from helpers import NOW_TEXT

PY = sys.executable
REVIEW = "> Enter to accept, or a number to change that answer:"
RECORD = "Record this request in your refund history? [y/N]: "
REQUIRED = ["--charge-type", "usage", "--amount", "80", "--ago", "20h", "--cause", "runaway-script"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(*args: str, rows: int = 50, columns: int = 100, **env: str) -> pexpect.spawn:
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "TERM", "COLUMNS")}
    environment.update({"TERM": "xterm-256color", **env})
    return pexpect.spawn(PY, ["-m", "refundadvisor", *args], encoding="utf-8", timeout=20,
                         dimensions=(rows, columns), env=environment)


def ends(child: pexpect.spawn) -> str:
    """Everything up to the end, failing if the command asks anything on the way."""
    index = child.expect([pexpect.EOF, r"\n> [a-z ]+(\[[^\]]*\])?: ", re.escape(RECORD)])
    text = child.before
    assert index == 0, f"it asked: {child.after!r} after {text[-300:]!r}"
    child.close()
    return ANSI.sub("", text.replace("\r", ""))


def test_all_required_facts_as_flags_ask_nothing_and_say_what_was_assumed():
    child = spawn("check", "--now", NOW_TEXT, *REQUIRED)
    out = ends(child)
    assert child.exitstatus == 0
    assert "Very unlikely" in out
    # a usage charge is not a payment: no payment method is assumed for it
    assert "Assumed" in out and "--currency usd" in out and "--prior-refunds 0" in out
    assert "--payment-method" not in out


@pytest.mark.parametrize("extra", [["--json"], ["-q"], ["--fail-below", "likely"]])
def test_never_prompting_flags_with_everything_given(extra):
    child = spawn("check", "--now", NOW_TEXT, *REQUIRED, *extra)
    out = ends(child)
    if extra == ["--json"]:
        document = json.loads(out)
        assert document["fact_origins"]["payment_method"] == "default"
        assert child.exitstatus == 0
    elif extra == ["-q"]:
        assert out.strip() == "" and child.exitstatus == 0
    else:
        assert child.exitstatus == 3


@pytest.mark.parametrize("flag, says", [(["--json"], "--json never asks"), (["-q"], "-q never asks"),
                                        (["--fail-below", "likely"], "--fail-below never asks")])
def test_never_prompting_flags_with_a_fact_missing_fail_at_once(flag, says):
    child = spawn("check", "--charge-type", "usage", *flag)
    out = ends(child)
    assert child.exitstatus == 2
    assert "missing --amount" in out and says in out


def test_answers_never_prompt(tmp_path):
    answers = tmp_path / "charge.yaml"
    answers.write_text("charge_type: usage\namount: 5\n")
    child = spawn("check", "--answers", str(answers))
    out = ends(child)
    assert child.exitstatus == 2 and "--answers never asks" in out
    answers.write_text("charge_type: usage\namount: 5\nago: 2h\ncause: overuse\n")
    child = spawn("check", "--answers", str(answers), "--now", NOW_TEXT)
    out = ends(child)
    assert child.exitstatus == 0 and "Refund likelihood" in out


def test_a_missing_required_fact_is_the_only_question():
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "usage", "--ago", "2h", "--cause", "overuse")
    child.expect_exact("> amount:")
    child.sendline("12")
    child.expect_exact(REVIEW)  # and not payment method, profile, evidence...
    assert "payment method" not in child.before
    child.sendline("")
    child.expect_exact("Refund likelihood")
    child.expect_exact(RECORD)
    child.sendline("")
    child.expect(pexpect.EOF)


def _start_full_interview(child):
    child.expect_exact("> platform [openrouter]:")
    child.sendline("")
    child.expect_exact("> charge type:")
    child.sendline("usage")
    child.expect_exact("> amount:")
    child.sendline("12")


def test_review_changes_an_earlier_answer():
    child = spawn("check", "--now", NOW_TEXT)
    _start_full_interview(child)
    for prompt, text in [("> charged at:", "3h"), ("> cause:", "overuse"), ("> currency [usd]:", ""),
                         ("> prior refunds [0]:", ""), ("> profile [solo]:", ""), ("> usage span days [1]:", ""),
                         ("> evidence [none]:", ""), ("> support reply [none]:", "")]:
        child.expect_exact(prompt)
        child.sendline(text)
    child.expect_exact(REVIEW)
    assert "2. amount: 12" in child.before
    child.sendline("2")  # change the amount
    child.expect_exact("> amount:")
    child.sendline("99")
    child.expect_exact(REVIEW)
    assert "2. amount: 99" in child.before
    child.sendline("1")  # a top-up now: the unused amount becomes a question, usage span goes
    child.expect_exact("> charge type:")
    child.sendline("topup")
    child.expect_exact("> payment method [card]:")  # a top-up is a payment: asked now
    child.sendline("")
    child.expect_exact("> unused [99]:")
    child.sendline("")
    child.expect_exact(REVIEW)
    assert "usage span days" not in child.before.split("Your answers:")[-1]
    child.sendline("")
    child.expect_exact("Refund likelihood")
    child.expect_exact(RECORD)
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_back_returns_to_the_question_before_and_help_explains():
    child = spawn("check", "--now", NOW_TEXT, "--platform", "openrouter")
    child.expect_exact("> charge type:")
    child.sendline("back")
    child.expect_exact("nothing to go back to")
    child.sendline("?")
    child.expect_exact("A top-up is a purchase of credits")
    child.sendline("usage")
    child.expect_exact("> amount:")
    child.sendline("12")
    child.expect_exact("> charged at:")
    child.sendline("back")
    child.expect_exact("> amount:")  # asked again
    child.sendline("13")
    child.expect_exact("> charged at:")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_unknown_is_accepted_for_the_hour_and_for_a_fact_with_a_default():
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "20", "--charged-at", "2026-11-29",
                  "--unused", "20")
    child.expect_exact("> cause:")
    child.sendline("unused-credits")
    child.expect_exact(REVIEW)
    child.sendline("")
    child.expect_exact("> time (HH:MM, your local time) [unknown]:")
    child.sendline("unknown")
    child.expect_exact("Keeping the cautious reading")
    child.expect_exact("Refund likelihood")
    child.expect_exact(RECORD)
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = spawn("check", "--now", NOW_TEXT)
    _start_full_interview(child)
    child.expect_exact("> charged at:")
    child.sendline("3h")
    child.expect_exact("> cause:")
    child.sendline("overuse")
    child.expect_exact("> currency [usd]:")
    child.sendline("")
    child.expect_exact("> prior refunds [0]:")  # no payment method for usage
    child.sendline("unknown")
    child.expect_exact("> profile [solo]:")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)


def test_the_verdict_fits_one_screen_of_24_by_80():
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "50", "--ago", "20h48m",
                  "--cause", "unused-credits", "--unused", "30", rows=24, columns=80)
    out = ends(child)
    lines = out.rstrip("\n").split("\n")
    assert len(lines) <= 24, len(lines)
    assert max(len(line) for line in lines) <= 80
    first_screen = "\n".join(lines[:24])
    assert "Very likely, score 100/100" in first_screen
    assert "Nearest deadline: Self-serve refund" in first_screen and "closes in 3 h 12 min" in first_screen
    assert "about 30.00 USD" in first_screen


@pytest.mark.parametrize("cause", ["runaway-script", "platform-error", "duplicate-charge", "unauthorized"])
def test_every_compact_verdict_fits_24_by_80(cause):
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "30", "--ago", "3d",
                  "--cause", cause, "--prior-refunds", "2", "--similar-prior", "1", rows=24, columns=80)
    lines = ends(child).rstrip("\n").split("\n")
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert "Refund likelihood" in lines[0]


def test_forty_columns_stay_readable():
    child = spawn("check", "--now", NOW_TEXT, *REQUIRED, columns=40)
    lines = ends(child).rstrip("\n").split("\n")
    assert max(len(line) for line in lines) <= 40
    assert not [line for line in lines if line != line.rstrip()]
    assert "…" not in "\n".join(lines)


@pytest.mark.parametrize("key", ["eof", "ctrl-c"])
def test_leaving_the_record_offer_keeps_the_verdict_and_exits_0(key):
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "usage", "--ago", "2h", "--cause", "overuse")
    child.expect_exact("> amount:")
    child.sendline("12")
    child.expect_exact(REVIEW)
    child.sendline("")
    child.expect_exact(RECORD)
    child.sendeof() if key == "eof" else child.sendcontrol("c")
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    assert child.exitstatus == 0
    assert "not recorded" in rest and "nothing was checked" not in rest


def test_stdout_to_a_file_still_asks_at_the_terminal(tmp_path):
    target = tmp_path / "out.txt"
    child = pexpect.spawn("bash", ["-c", f"'{PY}' -m refundadvisor check --now {NOW_TEXT} --charge-type usage "
                                         f"--ago 2h --cause overuse > '{target}'"], encoding="utf-8", timeout=20)
    child.expect_exact("> amount:")
    child.sendline("12")
    child.expect_exact(REVIEW)
    child.sendline("")
    child.expect_exact(RECORD)
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Refund likelihood" in target.read_text()


def test_draft_asks_for_the_account_of_what_happened():
    child = spawn("draft", "--now", NOW_TEXT, *REQUIRED)
    child.expect_exact("What happened, in your own words?")
    child.sendline("My cron job looped at 02:00 UTC.")
    child.sendline("I stopped it at 06:00 and set a key limit.")
    child.sendline("")
    child.expect(pexpect.EOF)
    out = child.before.replace("\r", "")
    child.close()
    assert child.exitstatus == 0
    assert "My cron job looped at 02:00 UTC.\nI stopped it at 06:00" in out
    assert "[[what happened" not in out


def test_draft_with_a_summary_asks_nothing():
    child = spawn("draft", "--now", NOW_TEXT, *REQUIRED, "--summary", "It looped.")
    out = ends(child)
    assert child.exitstatus == 0 and "It looped." in out
