"""Acting on the verdict: calendar reminders, the draft as data, the support page, completion,
and the human view's pieces (assumptions, local time, contact, sources, ASCII)."""

from __future__ import annotations

import io
import json
import os
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


def _completions(words: list[str], incomplete: str) -> list[str]:
    """What Tab offers after ``refundadvisor WORDS INCOMPLETE``, asked as bash's script asks."""
    line = " ".join(["refundadvisor", *words, incomplete])
    result = runner.invoke(app, [], prog_name="refundadvisor", env={
        "_REFUNDADVISOR_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) + 1)})
    assert result.exit_code == 0, result.stderr
    return result.stdout.split()


def test_every_choice_fact_flag_completes_its_ids_on_check_and_draft():
    from refundadvisor.cli.check import SHARED
    from refundadvisor.cli.options import flag_of

    choice_facts = [spec for spec in SHARED.facts.values() if spec.type in ("choice", "choices")]
    assert {"cause", "charge_type", "payment_method"} <= {spec.name for spec in choice_facts}
    for command in ("check", "draft"):
        for spec in choice_facts:
            ids = list(spec.choice_ids())
            assert _completions([command, flag_of(spec.name)], "") == ids
            first = ids[0]
            assert all(name.startswith(first[:2]) for name in _completions([command, flag_of(spec.name)], first[:2]))
    evidence = next(spec for spec in choice_facts if spec.type == "choices")
    ids = evidence.choice_ids()
    assert _completions(["check", flag_of(evidence.name)], f"{ids[0]},") == [f"{ids[0]},{name}" for name in ids]


@pytest.mark.parametrize("words, incomplete, expected", [
    (["check", "--platform"], "o", ["openrouter", "openai"]),
    (["rules", "show", "--platform"], "", ["openrouter", "anthropic", "openai"]),
    (["batch", "x.jsonl", "--platform"], "an", ["anthropic"]),
    (["history", "add", "--outcome"], "", ["pending", "granted", "partial", "denied"]),
    (["history", "update", "3", "--outcome"], "p", ["pending", "partial"]),
    (["history", "add", "--cause"], "dup", ["duplicate-charge"]),
    (["history", "add", "--platform"], "open", ["openrouter", "openai"]),
    (["history", "list", "--platform"], "a", ["anthropic"]),
    (["completion", "show"], "", ["bash", "zsh", "fish", "powershell", "pwsh"]),
    (["completion", "install"], "f", ["fish"]),
    (["evidence", "usage", "--platform"], "", ["openai", "anthropic"]),
    (["evidence", "usage", "--bucket"], "1", ["1m", "1h", "1d"]),
    (["check", "--fact"], "usage_s", ["usage_span_days="]),
])
def test_choice_flags_complete_their_ids(words, incomplete, expected):
    assert _completions(words, incomplete) == expected


def test_cause_completes_through_the_shell_protocol():
    import os
    import subprocess
    import sys

    env = {**os.environ, "_REFUNDADVISOR_COMPLETE": "complete_bash", "COMP_WORDS": "refundadvisor check --cause r",
           "COMP_CWORD": "3"}
    script = os.path.join(os.path.dirname(sys.executable), "refundadvisor")
    result = subprocess.run([script], env=env, capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["runaway-script", "refund-not-received"]


@pytest.mark.parametrize("home", ["", "relative/home", "/no/such/folder/at/all", "QUOTE"])
def test_completion_install_refuses_a_home_it_cannot_write_a_safe_start_up_line_for(tmp_path, home):
    """Typer writes `source '<home>/...'` into ~/.bashrc as it is: a quote in HOME would break every
    new shell or run what follows it, and a missing HOME once wrote /.bashrc."""
    if home == "QUOTE":
        home = str(tmp_path / "o'brien $(touch PWNED)")
        os.makedirs(home)
    rc = os.path.join(home or "/", ".bashrc")
    before = os.path.exists(rc) and os.path.getmtime(rc)
    result = runner.invoke(app, ["completion", "install", "bash"], env={"HOME": home})
    assert result.exit_code == 2, result.output
    assert "completion show SHELL > FILE" in result.output
    assert (os.path.exists(rc) and os.path.getmtime(rc)) == before  # nothing written
    assert not (tmp_path / "PWNED").exists()


def test_completion_install_writes_the_start_up_line_for_a_plain_home(tmp_path):
    result = runner.invoke(app, ["completion", "install", "bash"], env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert f"source '{tmp_path}/.bash_completions/refundadvisor.sh'" in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize("variables", [{}, {"COMP_WORDS": "refundadvisor ch", "COMP_CWORD": "x"}])
def test_a_completion_request_without_the_shells_variables_is_one_sentence(variables):
    import subprocess
    import sys

    env = {**os.environ, "_REFUNDADVISOR_COMPLETE": "complete_bash", **variables}
    env.pop("COMP_WORDS", None) if not variables else None
    script = os.path.join(os.path.dirname(sys.executable), "refundadvisor")
    result = subprocess.run([script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "COMP_WORDS" in result.stderr
