"""What leaves the program is safe to show: no API key in any mangled form, no control sequence
from a rule file or a note, no Rich markup taken from user text, no traceback when stdout cannot
take the output, and --output replaced whole or not at all."""

from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import sys
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.output import Sink, clean, defuse
from refundadvisor.redact import MASK, mask

from helpers import NOW_TEXT, ROOT

runner = CliRunner()
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)
CHECK = ["--charge-type", "usage", "--amount", "80", "--ago", "20h", "--cause", "runaway-script", "--no-history",
         "--now", NOW_TEXT]
KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"

# --- keys in every shape ------------------------------------------------------------------------

PREFIXES = st.sampled_from(["sk-or-v1-", "sk-proj-", "sk-ant-api03-", "sk-"])
BODIES = st.from_regex(r"[A-Za-z0-9]{8,30}[0-9][A-Za-z0-9_-]{8,40}[A-Za-z0-9]", fullmatch=True)
BREAKS = st.sampled_from(["\n", "\r\n", "\\n", "\\r\\n", "\n    ", "\n\t"])
PROSE = st.text(alphabet=st.sampled_from(list("abc XYZ.,:;()\n\t!?\"'=/")), max_size=30)


def _quoted_fully(text: str) -> str:
    return "".join(f"%{ord(char):02X}" for char in text)


SHAPES = {
    "as is": lambda key: key,
    "upper case": str.upper,
    "dashes encoded": lambda key: key.replace("-", "%2D"),
    "every character encoded": _quoted_fully,
    "glued to a word": lambda key: "Bearer" + key,
}


def _normalised(text: str) -> str:
    """Output as a reader would reassemble it: decoded, line breaks and indents dropped."""
    return re.sub(r"(?:\r\n|\r|\n|\\r\\n|\\n|\\r)[ \t]*", "", unquote(text)).lower()


def _leaks(output: str, body: str) -> bool:
    seen = _normalised(output)
    return any(body[start:start + 10].lower() in seen for start in range(0, len(body) - 9, 5))


@SETTINGS
@given(PREFIXES, BODIES, st.sampled_from(sorted(SHAPES)), PROSE, PROSE)
def test_a_key_in_any_shape_is_masked(prefix, body, shape, before, after):
    text = f"{before} {SHAPES[shape](prefix + body)} {after}"
    masked, count = mask(text)
    assert count >= 1 and MASK in masked
    assert not _leaks(masked.replace(before, "").replace(after, ""), body), (shape, masked)


@SETTINGS
@given(PREFIXES, BODIES, BREAKS, st.data())
def test_a_key_broken_over_two_lines_is_masked(prefix, body, line_break, data):
    # where the break falls: anywhere in a key too short without its second half, or before a
    # second half that holds a digit (key material, not the next word of prose)
    key = prefix + body
    cut = data.draw(st.integers(4, len(key) - 4))
    head, tail = key[:cut], key[cut:]
    if len(head) - 3 >= 16 and not any(char.isdigit() for char in tail):
        tail = tail + "7"
    masked, _ = mask(f"note: {head}{line_break}{tail} end")
    assert not _leaks(masked, body), masked
    assert masked.endswith(" end")


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_masking_leaves_text_without_keys_alone(text):
    if "sk" not in text.lower() and "%" not in text:
        assert mask(text) == (text, 0)


@pytest.mark.parametrize("text", ["sk-learn", "task-force-for-the-migration-plan", "risk-assessment-framework-v",
                                  "a desk-based-review-of-everything"])
def test_words_that_look_a_little_like_keys_are_kept(text):
    assert mask(text) == (text, 0)


def test_a_key_written_in_two_pieces_is_still_masked():
    out = io.StringIO()
    sink = Sink(out, "stdout")
    sink.write("id: " + KEY[:20])
    sink.write("\n")
    sink.write(KEY[20:] + " done\n")
    sink.flush()
    assert "0123456789abcdef0123456789abcdef" not in out.getvalue()
    assert out.getvalue().endswith(" done\n")


@SETTINGS
@given(PREFIXES, BODIES, st.sampled_from(sorted(SHAPES)), st.lists(st.integers(0, 200), max_size=6))
def test_however_the_writes_are_split_no_key_gets_through(prefix, body, shape, cuts):
    text = f"row 1\nthe key {SHAPES[shape](prefix + body)} was pasted\nrow 3\n"
    out = io.StringIO()
    sink = Sink(out, "stdout")
    points = sorted({min(cut, len(text)) for cut in cuts} | {0, len(text)})
    for start, end in zip(points, points[1:]):
        sink.write(text[start:end])
    sink.flush()
    assert not _leaks(out.getvalue(), body)
    assert out.getvalue().startswith("row 1\nthe key ") and out.getvalue().endswith(" was pasted\nrow 3\n")


# every path a key took to the output in the adversarial pass
KEY_PATHS = {
    "a usage error about --jobs": (["batch", "--jobs", KEY, "-"], None),
    "an unquoted --summary": (["draft", *CHECK, "--summary", "leaked", KEY.upper()], None),
    "a key given as an id": (["history", "update", KEY], None),
    "a key broken over two lines in a usage error": (["batch", "--jobs", KEY[:14] + "\n" + KEY[14:], "-"], None),
    "a long value with a key in a usage error": (["check", "--cause", "x" * 70 + KEY], None),
    "a batch row id": (["batch", "-", "--now", NOW_TEXT, "--no-history"],
                       json.dumps({"id": KEY.upper(), "charge_type": "topup", "amount": 5, "ago": "1h",
                                   "cause": "duplicate-charge"}) + "\n"),
    "the key of a row error": (["batch", "-", "--now", NOW_TEXT, "--no-history"],
                               json.dumps({"id": "x", KEY.replace("-", "%2D"): 1}) + "\n"),
    "a CSV id": (["batch", "-", "--format", "csv", "--input-format", "csv", "--now", NOW_TEXT, "--no-history"],
                 "id,charge_type,amount,ago,cause\nBearer" + KEY + ",topup,5,1h,duplicate-charge\n"),
    "a row id broken over two lines": (["batch", "-", "--now", NOW_TEXT, "--no-history"],
                                       json.dumps({"id": KEY[:20] + "\n" + KEY[20:], "charge_type": "topup"}) + "\n"),
}


@pytest.mark.parametrize("path", sorted(KEY_PATHS))
def test_no_key_reaches_stdout_or_stderr(path):
    args, stdin = KEY_PATHS[path]
    result = runner.invoke(app, args, input=stdin)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    shown = result.stdout + result.stderr
    assert shown.strip(), path
    assert not _leaks(shown, KEY[9:]), shown


def test_notes_brought_in_by_import_are_masked_when_listed_and_exported(tmp_path):
    database = str(tmp_path / "history.db")
    backup = tmp_path / "backup.jsonl"
    backup.write_text(json.dumps({"asked_at": "2026-11-01T10:00:00Z", "platform": "openrouter",
                                  "cause": "duplicate-charge", "outcome": "pending",
                                  "note": "pasted " + KEY.replace("-", "%2d").upper()}) + "\n")
    runner.invoke(app, ["history", "import", str(backup), "--history", database])
    for args in (["history", "list", "--history", database], ["history", "export", "--history", database],
                 ["history", "export", "--format", "csv", "--history", database]):
        result = runner.invoke(app, args)
        assert "pasted" in result.stdout, (args, result.stdout, result.stderr)
        assert not _leaks(result.stdout, KEY[9:]), result.stdout


# --- control sequences ----------------------------------------------------------------------------

CONTROL_TEXT = st.lists(st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x9f), st.sampled_from(["\x1b[", "\x1b]8;;", "\x1b\\", "\x07", "m", "8"]),
    st.characters(codec="utf-8")), max_size=80).map("".join)
LEFT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@SETTINGS
@given(CONTROL_TEXT, st.booleans())
def test_no_control_character_survives_but_newline_tab_and_plain_colours(text, terminal):
    out = defuse(text, terminal)
    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert not LEFT_CONTROL.search(without_colours.replace("\r", "")), repr(out)
    if terminal:
        assert "\r" not in without_colours.replace("\r\n", "")
    for sgr in re.findall(r"\x1b\[([0-9;]*)m", out):
        assert not {"5", "6", "8"} & set(sgr.split(";"))
    assert out.count("\n") == text.count("\n")  # no line is joined to the next


@pytest.mark.parametrize("sequence", ["\x1b[2J\x1b[H", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
                                      "\x07", "\x1b]0;title\x07", "\x9b2J", "\x1bP+q\x1b\\", "\x1b[8mhidden\x1b[0m",
                                      "\x1b[30;40mblack on black\x1b[0m"])
def test_a_rule_file_title_cannot_drive_the_terminal(tmp_path, sequence):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"extends: {ROOT / 'platforms' / 'openrouter.yaml'}\noverrides: [title]\n"
                     f"title: {json.dumps('Open' + sequence + 'Router')}\n")
    for command in (["check", *CHECK, "--full"], ["draft", *CHECK], ["rules", "show"]):
        result = runner.invoke(app, [*command, "--rules", str(rules)])
        shown = result.stdout + result.stderr
        assert result.exit_code in (0, 1, 2), (command, shown)
        assert "\x1b]" not in shown and "\x07" not in shown and "\x1b[2J" not in shown and "\x9b" not in shown
        assert "\x1b" not in shown  # not even a colour: the renderers add their own only


def test_a_summary_with_escape_and_bell_is_drafted_without_them():
    result = runner.invoke(app, ["draft", *CHECK, "--summary", "charged twice\x1b[2J\x07 \x1b]8;;http://x\x1b\\"])
    assert result.exit_code == 0, result.stderr
    assert "charged twice" in result.stdout
    assert not LEFT_CONTROL.search(result.stdout)


def test_rich_markup_in_a_note_is_shown_as_written(monkeypatch):
    from rich.console import Console

    monkeypatch.setenv("TERM", "xterm-256color")
    from refundadvisor.history import Entry
    from refundadvisor.render import entries_table

    fields = {name: None for name in Entry._fields}
    fields.update(id=1, asked_at="2026-11-01T10:00:00Z", platform="openrouter", cause="duplicate-charge",
                  outcome="pending", note="[link=https://evil.example]refund here[/link] [bold red]x[/]")
    console = Console(file=io.StringIO(), force_terminal=True, width=200, color_system="truecolor")
    entries_table([Entry(**fields)], console)
    shown = console.file.getvalue()
    assert "[link=https://evil.example]refund" in shown and "[bold red]x[/]" in shown
    assert "\x1b]8;" not in shown


# --- stdout that cannot take the output -------------------------------------------------------------

def _run(args, env_extra=None, shell_tail="", stdin=None, limits=None):
    env = {**os.environ, **(env_extra or {})}
    command = " ".join(_quote(part) for part in [sys.executable, "-m", "refundadvisor", *args]) + shell_tail
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, errors="replace", env=env, input=stdin,
                          timeout=60, preexec_fn=limits)


def _quote(text):
    import shlex

    return shlex.quote(text)


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0"},
                                 {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"},
                                 {"PYTHONIOENCODING": "latin-1"}])
def test_a_narrow_encoding_gets_the_verdict_not_a_traceback(env):
    for args in (["check", *CHECK], ["check", *CHECK, "--full"], ["draft", *CHECK, "--summary", "é💸 “quoted”"],
                 ["check", *CHECK, "--unknown-é💸"]):
        result = _run(args, env)
        assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
        assert result.returncode in (0, 2), result.stderr
        assert result.stdout.strip() or result.stderr.count("\n") == 1


def test_a_full_disk_is_one_sentence_and_exit_1():
    for args in (["check", *CHECK], ["check", *CHECK, "--json"], ["rules", "show"], ["--help"]):
        result = _run(args, shell_tail=" > /dev/full")
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr == "refundadvisor: error: cannot write to stdout (No space left on device); " \
                                "the output is incomplete\n"


def test_a_closed_stdout_is_one_sentence_and_exit_1():
    result = _run(["check", *CHECK], shell_tail=" >&-")
    assert result.returncode == 1
    assert result.stderr == "refundadvisor: error: cannot write to stdout: it is closed; the output is incomplete\n"


def test_a_closed_pipe_is_still_a_quiet_success():
    result = _run(["rules", "show"], shell_tail=" | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}")
    assert result.returncode == 0 and result.stderr == ""


# --- --output: whole or not at all -----------------------------------------------------------------

def _file_size_limit(size):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_failed_output_write_leaves_the_previous_file_whole(tmp_path):
    target = tmp_path / "draft.txt"
    previous = "".join(f"line {number}\n" for number in range(300))
    target.write_text(previous)
    result = _run(["draft", *CHECK, "--summary", "x" * 8000, "-o", str(target)], limits=_file_size_limit(4096))
    assert result.returncode == 1
    assert result.stderr.startswith(f"refundadvisor: error: --output: cannot write '{target}' (File too large)")
    assert target.read_text() == previous
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []  # no temporary file left


def test_output_replaces_the_file_keeps_its_mode_and_follows_a_symlink(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    result = runner.invoke(app, ["draft", *CHECK, "--summary", "key " + KEY, "-o", str(link)])
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and "old" not in real.read_text()
    assert (real.stat().st_mode & 0o777) == 0o640
    assert KEY[12:30] not in real.read_text() and MASK in real.read_text()


def test_output_to_a_device_is_written_directly():
    result = runner.invoke(app, ["draft", *CHECK, "-o", os.devnull])
    assert result.exit_code == 0, result.stderr


def test_clean_masks_and_defuses():
    assert clean(f"a {KEY}\x1b[2J b\r\n") == f"a {MASK} b\r\n"


def test_text_from_a_log_is_not_rich_markup_in_the_evidence_views(capsys, monkeypatch):
    from refundadvisor.cli.evidence import _show

    monkeypatch.setenv("TERM", "xterm-256color")
    _show(lambda width: ["Repeated: [link=https://evil.example]POST /v1/chat[/link] [bold]x[/bold]"], no_color=False)
    shown = capsys.readouterr().out
    assert "[link=https://evil.example]POST /v1/chat[/link] [bold]x[/bold]" in shown
