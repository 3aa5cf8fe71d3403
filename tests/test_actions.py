"""Acting on the verdict: calendar reminders, the draft as data, the support page, completion,
and the human view's pieces (assumptions, local time, contact, sources, ASCII)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from refundadvisor import render
from refundadvisor.cli import app
from refundadvisor.cli import check as check_module
from refundadvisor.term import Screen

from helpers import NOW, NOW_TEXT, assess

runner = CliRunner()
TOPUP = ["--now", NOW_TEXT, "--charge-type", "topup", "--amount", "50", "--ago", "20h48m", "--cause", "unused-credits"]


def test_ics_saves_every_open_deadline_with_a_reminder(tmp_path):
    target = tmp_path / "refund.ics"
    result = runner.invoke(app, ["check", *TOPUP, "--ics", str(target)])
    assert result.exit_code == 0, result.stderr
    from icalendar import Calendar

    calendar = Calendar.from_ical(target.read_bytes())
    events = [component for component in calendar.walk() if component.name == "VEVENT"]
    assert len(events) == 3
    window = next(event for event in events if "Self-serve refund" in str(event["summary"]))
    assert window.decoded("dtend") == datetime(2026, 11, 30, 15, 12, tzinfo=timezone.utc)
    assert [alarm for alarm in window.walk() if alarm.name == "VALARM"]
    assert "deadlines saved to" in result.stderr


def test_ics_with_no_open_deadline_writes_nothing(tmp_path):
    target = tmp_path / "none.ics"
    result = runner.invoke(app, ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "5", "--ago", "1h",
                                 "--cause", "overuse", "--payment-method", "crypto", "--ics", str(target)])
    assert result.exit_code == 0
    assert not target.exists() and "no open deadline" in result.stderr


def test_draft_json_is_a_structured_document():
    result = runner.invoke(app, ["draft", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12", "--ago", "5h",
                                 "--cause", "platform-error", "--evidence", "request-ids", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"schema_version", "subject", "body", "notes", "attached", "to_gather", "placeholders"}
    assert document["subject"].startswith("Refund request")
    assert "what happened, in your own words: when you noticed it and what you did" in document["placeholders"]
    assert all(not item.startswith("[[") for item in document["to_gather"])
    assert document["attached"]


def test_draft_open_uses_the_injected_opener_and_the_contact_page(monkeypatch):
    opened = []
    monkeypatch.setattr(check_module, "open_in_browser", lambda address: opened.append(address) or True)
    monkeypatch.setattr(render, "contact_links", lambda ruleset: [("support form", "https://example.test/support")])
    result = runner.invoke(app, ["draft", *TOPUP, "--summary", "Bought twice.", "--open"])
    assert result.exit_code == 0
    assert opened == ["https://example.test/support"] and "opened https://example.test/support" in result.stderr


def test_draft_open_opens_the_platforms_support_page_from_its_contact_section(monkeypatch):
    opened = []
    monkeypatch.setattr(check_module, "open_in_browser", lambda address: opened.append(address) or True)
    result = runner.invoke(app, ["draft", *TOPUP, "--summary", "Bought twice.", "--open"])
    assert result.exit_code == 0 and opened == ["https://openrouter.zendesk.com/hc/en-us"]
    assert "names no support page" not in result.stderr


class _Contact(tuple):
    pass


def test_contact_is_read_defensively(ruleset):
    assert render.contact_links(ruleset) == [] or all(len(pair) == 2 for pair in render.contact_links(ruleset))

    class WithContact:
        contact = {"billing_page": "https://example.test/credits",
                   "support": {"label": "support form", "url": "https://example.test/help"}, "odd": 3}

    assert render.contact_links(WithContact()) == [("billing page", "https://example.test/credits"),
                                                   ("support form", "https://example.test/help")]
    assert render.support_address(WithContact()) == "https://example.test/help"

    class Broken:
        contact = ["not", "a", "mapping"]

    assert render.contact_links(Broken()) == []


def _screen(width=80, encoding="utf-8"):
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict")
    return Screen(stream, width=width), stream


def _text(stream) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode(stream.encoding)


def test_the_compact_view_assumes_out_loud_and_gives_local_time(ruleset, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    import time

    time.tzset()
    assessment = assess(ruleset, charge_type="topup", amount="50", charged_at="20h48m", cause="unused-credits")
    screen, stream = _screen()
    render.render_human(assessment, screen)
    out = _text(stream)
    assert "--payment-method card" in out and "--prior-refunds 0" in out
    assert "(2026-11-30 15:12 UTC, 16:12 CET your time)" in " ".join(out.split())
    assert len(out.splitlines()) <= 24


def test_full_view_sources_carry_title_and_address(ruleset):
    assessment = assess(ruleset, charge_type="topup", amount="50", charged_at="3h", cause="unused-credits")
    screen, stream = _screen()
    render.render_human(assessment, screen, full=True)
    out = _text(stream)
    assert 'OpenRouter FAQ, "What\'s the refund policy?" (primary)\n  https://openrouter.ai/docs/faq' in out


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_the_human_view_degrades_to_the_stream_encoding(ruleset, encoding):
    assessment = assess(ruleset, charge_type="topup", amount="50", charged_at="3h", cause="duplicate-charge",
                        evidence="receipts")
    screen, stream = _screen(encoding=encoding)
    render.render_human(assessment, screen, full=True, explain=True)
    out = _text(stream)
    assert "[x]" in out and "[ ]" in out and "* " in out


def test_completion_show_prints_a_script_and_an_unknown_shell_is_one_sentence():
    result = runner.invoke(app, ["completion", "show", "bash"])
    assert result.exit_code == 0 and "_REFUNDADVISOR_COMPLETE" in result.stdout
    result = runner.invoke(app, ["completion", "show", "tcsh"])
    assert result.exit_code == 2 and "is not a shell refundadvisor completes" in result.stderr


def test_completion_answers_through_the_environment(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "_REFUNDADVISOR_COMPLETE": "complete_bash", "COMP_WORDS": "refundadvisor ch",
           "COMP_CWORD": "1"}
    script = os.path.join(os.path.dirname(sys.executable), "refundadvisor")
    result = subprocess.run([script], env=env, capture_output=True, text=True, timeout=30)
    assert "check" in result.stdout


def test_narrow_history_list_is_plain_lines(isolated_home):
    runner.invoke(app, ["history", "add", "--platform", "openrouter", "--cause", "runaway-script", "--amount", "40",
                        "--outcome", "denied", "--asked-at", "2026-09-10", "--note", "looped overnight"])
    result = runner.invoke(app, ["history", "list"], env={"COLUMNS": "40"})
    assert result.exit_code == 0
    assert "#1 2026-09-10 openrouter runaway-script 40.00: denied; looped" in " ".join(result.stdout.split())
    assert "…" not in result.stdout and all(line == line.rstrip() for line in result.stdout.splitlines())
    assert NOW  # the shared clock stays importable
