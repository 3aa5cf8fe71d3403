"""The interview in a real pseudo-terminal (pexpect): what a person at a keyboard sees."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

from helpers import NOW_TEXT

COMMAND = [sys.executable, "-m", "refundadvisor"]


def spawn(*args: str, columns: int = 100, **env: str) -> pexpect.spawn:
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "TERM")}
    environment.update({"TERM": "xterm-256color", **env})
    return pexpect.spawn(COMMAND[0], [*COMMAND[1:], *args], encoding="utf-8", timeout=20,
                         dimensions=(50, columns), env=environment)


def answer(child: pexpect.spawn, prompt: str, text: str) -> None:
    child.expect_exact(prompt)
    child.sendline(text)


RECORD_PROMPT = "Record this request in your refund history? [y/N]: "
REVIEW_PROMPT = "> Enter to accept, or a number to change that answer:"


def finish(child: pexpect.spawn, record: str = "n") -> str:
    """Read to the end, answering the offer to record the request (no, unless told)."""
    seen = ""
    if child.expect_exact([pexpect.EOF, RECORD_PROMPT]) == 1:
        seen = child.before
        child.sendline(record)
        child.expect(pexpect.EOF)
    child.close()
    return seen + child.before


def test_a_whole_interview():
    child = spawn("check", "--full", "--now", NOW_TEXT)
    answer(child, "> platform [openrouter]:", "")  # Enter takes the default
    answer(child, "> charge type:", "2")  # by number: usage
    answer(child, "> amount:", "18.20")
    answer(child, "> charged at:", "4h")
    answer(child, "> cause:", "platform-error")  # by id
    answer(child, "> currency [usd]:", "")  # no payment method for usage
    answer(child, "> prior refunds [0]:", "")
    answer(child, "> profile [solo]:", "3")
    answer(child, "> usage span days [1]:", "")
    answer(child, "> evidence [none]:", "6,7")
    answer(child, "> support reply [none]:", "")
    answer(child, REVIEW_PROMPT, "")
    child.expect_exact("Refund likelihood")
    rest = finish(child)
    assert child.exitstatus == 0
    assert "Expected outcome" in rest and "partial refund" in rest  # team + platform error
    assert "✓" in rest


def test_unused_is_asked_only_for_top_ups_and_defaults_to_the_amount():
    child = spawn("check", "--now", NOW_TEXT)
    answer(child, "> platform [openrouter]:", "")
    answer(child, "> charge type:", "topup")
    answer(child, "> amount:", "40")
    answer(child, "> charged at:", "3h")
    answer(child, "> cause:", "unused-credits")
    answer(child, "> currency [usd]:", "")
    answer(child, "> payment method [card]:", "")
    answer(child, "> unused [40]:", "")
    answer(child, "> prior refunds [0]:", "")
    index = child.expect_exact(["> usage span days", "> profile [solo]:"])
    assert index == 1  # no usage span for a top-up
    child.sendline("")
    answer(child, "> evidence [none]:", "")
    answer(child, "> support reply [none]:", "")
    answer(child, REVIEW_PROMPT, "")
    child.expect_exact("Refund it yourself")
    finish(child)
    assert child.exitstatus == 0


def test_a_bad_answer_is_re_asked_with_the_reason():
    child = spawn("check", "--now", NOW_TEXT, "--platform", "openrouter", "--charge-type", "usage", "--ago", "3h",
                  "--cause", "overuse", "--payment-method", "card", "--prior-refunds", "0", "--profile", "solo", "--usage-span-days", "1",
                  "--evidence", "none")
    answer(child, "> amount:", "12,50")
    child.expect_exact("write 12.50")
    answer(child, "> amount:", "-1")
    child.expect_exact("cannot be less than 0")
    answer(child, "> amount:", "12.50")
    answer(child, REVIEW_PROMPT, "")
    child.expect_exact("Refund likelihood")
    finish(child)
    assert child.exitstatus == 0


def test_a_bad_choice_lists_the_valid_ones():
    child = spawn("check", "--now", NOW_TEXT, "--platform", "openrouter")
    answer(child, "> charge type:", "gift")
    child.expect_exact("choose one of: topup, usage, subscription")
    answer(child, "> charge type:", "9")
    child.expect_exact("Try again")
    child.sendcontrol("c")
    finish(child)


def test_date_only_asks_for_the_hour_when_it_decides():
    # the cause is asked, so this is an interview: the hour is asked too (a script gets the cautious reading)
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "20", "--charged-at", "2026-11-29",
                  "--payment-method", "card", "--unused", "20", "--prior-refunds", "0",
                  "--profile", "solo", "--evidence", "none")
    answer(child, "> cause:", "unused-credits")
    answer(child, REVIEW_PROMPT, "")
    answer(child, "> time (HH:MM, your local time) [unknown]:", "25:00")
    child.expect_exact("not a time like 14:30")
    answer(child, "> time (HH:MM, your local time) [unknown]:", "20:00")  # 16 h before NOW: inside the window
    child.expect_exact("Refund it yourself")
    finish(child)
    assert child.exitstatus == 0


def test_ctrl_c_says_one_line_and_exits_130():
    child = spawn("check", "--platform", "openrouter")
    child.expect_exact("> charge type:")
    child.sendcontrol("c")
    rest = finish(child)
    assert child.exitstatus == 130
    assert "interrupted" in rest and "Traceback" not in rest


def test_ctrl_d_says_one_line_and_exits_non_zero():
    child = spawn("check", "--platform", "openrouter")
    child.expect_exact("> charge type:")
    child.sendeof()
    rest = finish(child)
    assert child.exitstatus == 2
    assert "input ended" in rest and "Traceback" not in rest


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_when_asked(env):
    child = spawn("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "5", "--ago", "1h",
                  "--cause", "overuse", "--no-input", **env)
    rest = finish(child)
    assert child.exitstatus == 0
    assert "\x1b[3" not in rest  # no foreground colours
    assert "Very unlikely" in rest


def test_a_narrow_terminal_still_reads():
    child = spawn("check", "--full", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "5", "--ago", "1h",
                  "--cause", "overuse", "--no-input", columns=40, NO_COLOR="1")
    rest = finish(child)
    assert child.exitstatus == 0
    lines = rest.replace("\r", "").splitlines()
    # every line fits, but an address, which stays whole so that it can be clicked or copied
    assert max(len(line) for line in lines if "\x1b" not in line and not line.strip().startswith("https://")) <= 40
    assert not [line for line in lines if line != line.rstrip()]  # no trailing spaces
    assert "Next steps" in rest


def test_no_input_never_prompts_even_in_a_terminal():
    child = spawn("check", "--no-input", "--charge-type", "usage")
    rest = finish(child)
    assert child.exitstatus == 2
    assert "missing --amount" in rest


def test_after_an_interview_the_request_can_be_recorded(isolated_home):
    child = spawn("check", "--now", NOW_TEXT, "--platform", "openrouter", "--charge-type", "usage", "--ago", "3h",
                  "--cause", "overuse", "--payment-method", "card", "--prior-refunds", "0", "--profile", "solo",
                  "--usage-span-days", "1", "--evidence", "none")
    answer(child, "> amount:", "12.50")
    answer(child, REVIEW_PROMPT, "")
    child.expect_exact(RECORD_PROMPT)
    child.sendline("y")
    child.expect_exact("recorded as request 1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    database = isolated_home / ".local" / "share" / "refundadvisor" / "history.db"
    assert database.exists()
