"""What an adversarial tester found at the edges of input and output: a closed stdin, an
undecodable answer, a Ctrl-C while starting, unreadable input, FIFOs and empty output paths,
keys broken in new ways, escapes and invisible characters from user data, long numbers, UTF-16
and CSV formula guards. Each test runs the program as a user would, or checks the property that
makes a whole class of input safe."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

import pexpect
import pytest
from hypothesis import given, strategies as st

from helpers import NOW_TEXT
from refundadvisor.csvsafe import FORMULA_STARTS, guard, unguard
from refundadvisor.output import Sink, clean
from refundadvisor.redact import MASK, mask

PYTHON = [sys.executable, "-m", "refundadvisor"]
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("refundadvisor"))
CHARGE = ["--now", NOW_TEXT, "--charge-type", "usage", "--amount", "80", "--ago", "20h", "--cause", "runaway-script"]
TOPUP = ["--now", NOW_TEXT, "--charge-type", "topup", "--amount", "50", "--ago", "20h", "--cause", "unused-credits"]
ROW = '{"charge_type":"usage","amount":80,"ago":"20h","cause":"runaway-script","id":%s}\n'
KEY_BODY = "0123456789abcdef0123456789ab"
KEY = "sk-or-v1-" + KEY_BODY


def run(*args: str, stdin=subprocess.DEVNULL, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*PYTHON, *args], stdin=stdin, capture_output=True, timeout=60,
                          env={**os.environ, **(env or {})}, **kwargs)


def one_sentence(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("refundadvisor: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- 4. a closed stdin -----------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["batch", "-"],
    ["check", "--answers", "-", *CHARGE],
    ["history", "import", "-"],
    ["evidence", "log", "-"],
    ["evidence", "generations", "--ids-file", "-"],
])
def test_a_closed_stdin_is_one_sentence_not_a_traceback(args):
    result = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *PYTHON, *args], capture_output=True, timeout=60)
    sentence = one_sentence(result)
    assert "stdin" in sentence and ("closed" in sentence or "cannot be read" in sentence)
    assert result.returncode in (1, 2)


def test_batch_from_a_closed_stdin_is_a_usage_error():
    result = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *PYTHON, "batch", "-"], capture_output=True, timeout=60)
    assert result.returncode == 2 and "stdin is closed" in one_sentence(result)


# --- 5. an answer the locale cannot decode ----------------------------------------------------

def test_a_non_ascii_answer_with_an_ascii_locale_is_asked_again():
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "TERM")}
    environment.update({"TERM": "xterm-256color", "PYTHONIOENCODING": "ascii"})
    child = pexpect.spawn(PYTHON[0], [*PYTHON[1:], "check", "--now", NOW_TEXT, "--platform", "openrouter"],
                          encoding="utf-8", codec_errors="replace", timeout=20, env=environment)
    child.expect_exact("> charge type:")
    child.sendline("café")
    child.expect_exact("choose one of: topup, usage, subscription")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in child.before and "UnicodeDecodeError" not in child.before


# --- 6. Ctrl-C while the program starts -------------------------------------------------------

def test_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130():
    # a Ctrl-C that lands while Typer is being imported, made certain by an import hook
    code = ("import sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, *rest):\n"
            "        if name == 'typer':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "sys.argv = ['refundadvisor', '--version']\n"
            "from refundadvisor.__main__ import main\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 130
    assert result.stderr.decode() == "refundadvisor: error: interrupted\n"


@pytest.mark.skipif(not os.path.exists(CONSOLE_SCRIPT), reason="the console script is not installed here")
def test_the_console_script_enters_where_ctrl_c_is_already_handled():
    # (a Ctrl-C in the first ~20 ms, while Python itself and the generated wrapper start, comes
    # before any of the program's code and cannot be caught by it)
    assert "from refundadvisor.__main__ import main" in Path(CONSOLE_SCRIPT).read_text()


# --- 8. a read error in the middle of a batch ---------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_read_error_in_a_batch_file_is_one_sentence():
    result = run("batch", "/proc/self/mem", "--now", NOW_TEXT, "--no-history")
    assert result.returncode == 1
    assert "cannot be read" in one_sentence(result)


# --- 9, 19, 21. output paths ------------------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (["check", *TOPUP, "--ics", "{fifo}"], "--ics"),
    (["draft", *CHARGE, "-o", "{fifo}"], "--output"),
    (["history", "export", "--output", "{fifo}"], "--output"),
])
def test_a_fifo_nobody_reads_is_refused_at_once_naming_the_flag(tmp_path, args, flag):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    result = run(*[str(fifo) if arg == "{fifo}" else arg for arg in args])  # the timeout fails a hang
    assert result.returncode == 1
    sentence = one_sentence(result)
    assert sentence.startswith(f"refundadvisor: error: {flag}:") and "FIFO" in sentence


@pytest.mark.parametrize("args, flag", [(["check", *TOPUP, "--ics", ""], "--ics"), (["draft", *CHARGE, "-o", ""], "--output")])
def test_an_empty_output_path_is_a_usage_error(args, flag):
    result = run(*args)
    assert result.returncode == 2
    assert f"{flag}: the file name is empty" in one_sentence(result)


def test_ics_errors_name_ics_and_a_folder_is_refused(tmp_path):
    full = run("check", *TOPUP, "--ics", "/dev/full")
    assert full.returncode == 1 and "--ics: cannot write '/dev/full'" in one_sentence(full)
    folder = run("check", *TOPUP, "--ics", str(tmp_path))
    assert folder.returncode == 1 and "is a folder" in one_sentence(folder)


def test_draft_to_dev_stdout_into_a_pipe_still_arrives():
    result = run("draft", *CHARGE, "-o", "/dev/stdout")
    assert result.returncode == 0 and b"I was charged 80.00 USD" in result.stdout


# --- 11-13. keys however they are broken ----------------------------------------------------------

BREAKS = ["\n", "\r\n", "\t", "\\\n", "\\n", "\\\\n", "\n    ", "\r"]


def _hidden(output: str) -> bool:
    """No eight characters of the key body in a row, as written or once decoded."""
    seen = unicodedata.normalize("NFKC", unquote(unquote(output)))
    return all(KEY_BODY[i:i + 8] not in seen for i in range(len(KEY_BODY) - 7))


@given(position=st.integers(min_value=1, max_value=len(KEY) - 1), separator=st.sampled_from(BREAKS),
       before=st.sampled_from(["", "my key ", "Bearer ", "'", "note: "]), after=st.sampled_from(["", " thanks", "'"]))
def test_a_key_broken_anywhere_by_a_line_break_or_tab_is_masked(position, separator, before, after):
    text = before + KEY[:position] + separator + KEY[position:] + after
    assert _hidden(mask(text)[0]), text
    assert _hidden(clean(text)), text


@given(times=st.integers(min_value=1, max_value=2), upper=st.booleans(), every=st.booleans())
def test_a_key_percent_encoded_once_or_twice_is_masked(times, upper, every):
    key = KEY.upper() if upper else KEY
    text = "".join(f"%{ord(c):02X}" for c in key) if every else quote(key, safe="").replace("-", "%2D")
    if times == 2:
        text = text.replace("%", "%25")
    assert _hidden(mask(f"cause: {text}")[0]), text


@given(prefix=st.sampled_from(["", "id ", "x"]), wide=st.sets(st.integers(min_value=0, max_value=len(KEY) - 1)))
def test_a_key_in_full_width_letters_is_masked(prefix, wide):
    text = prefix + "".join(chr(ord(c) + 0xFEE0) if i in wide and "!" <= c <= "~" else c for i, c in enumerate(KEY))
    assert _hidden(mask(text)[0]), text


@pytest.mark.parametrize("cause", [
    "s\nk-or-v1-" + KEY_BODY, "sk\n-or-v1-" + KEY_BODY, "sk-or-v1-01234567\t89abcdef0123456789abcdef",
    "sk-or-v1-01234\\\n56789abcdef0123456789abcdef", "sk%252Dor%252Dv1%252D0123456789abcdef0123456789",
])
def test_a_mangled_key_given_as_a_flag_is_not_echoed(cause):
    result = run("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "80", "--ago", "20h", "--cause", cause)
    assert result.returncode == 2
    assert MASK in one_sentence(result) and _hidden(result.stderr.decode())


def test_batch_ids_hold_no_key_in_either_format(tmp_path):
    ids = ['"\\uff33\\uff2b-or-v1-%s"' % KEY_BODY, '"sk%%252Dor%%252Dv1%%252D%s"' % KEY_BODY, '"s\\nk-or-v1-%s"' % KEY_BODY]
    source = tmp_path / "k.jsonl"
    source.write_text("".join(ROW % row_id for row_id in ids))
    for output_format in ("jsonl", "csv"):
        result = run("batch", str(source), "--now", NOW_TEXT, "--no-history", "-q", "--format", output_format)
        out = result.stdout.decode()
        assert out.count(MASK) == 3 and _hidden(out.encode().decode("unicode_escape")), out


# --- 14-17. escapes, invisible characters, invalid UTF-8 ------------------------------------------

HIDING = st.sampled_from(["\x1b[30;40m", "\x1b[0m", "\x1b[38;2;0;0;0m", "\x1b]0;title\x07", "\x9b2J", "\u202e",
                          "\u202a", "\u2066", "\u2069", "\u200b", "\u200f", "\ufeff", "\u2028", "\u2029",
                          "\udcff", "\ud800", "\x07", "\x00"])


@given(st.lists(st.one_of(HIDING, st.text(max_size=8)), max_size=12))
def test_piped_output_holds_no_escape_invisible_character_or_invalid_utf8(pieces):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="")
    sink = Sink(stream, "stdout")
    sink.write("".join(pieces) + "\n")
    sink.flush()
    written = stream.buffer.getvalue()
    text = written.decode("utf-8")  # valid UTF-8, whatever went in
    assert "\x1b" not in text and not any("\x80" <= c <= "\x9f" for c in text)
    assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200e\u200f\ufeff")


def test_colour_from_a_note_never_reaches_a_pipe(tmp_path):
    history = str(tmp_path / "h.db")
    note = "\x1b[30;40mHIDDEN\x1b[0m \x1b[38;2;0;0;0mH2 \u202eevil"
    added = run("history", "add", "--history", history, "--cause", "runaway-script", "--amount", "1", "--note", note)
    assert added.returncode == 0, added.stderr
    for args in (["history", "list"], ["history", "export", "--format", "csv"], ["history", "export"]):
        out = run(*args, "--history", history).stdout
        assert b"HIDDEN" in out or b"\\u001b" in out, (args, out)
        assert b"\x1b" not in out and "\u202e".encode() not in out, (args, out)


def test_a_batch_csv_row_with_a_lone_surrogate_loses_nothing(tmp_path):
    source = tmp_path / "s.jsonl"
    source.write_text(ROW % '"\\ud800"' + ROW % '"\\udcff\\u001b[30;40mX\\u202eY"' + ROW % '"ok"')
    result = run("batch", str(source), "--format", "csv", "--now", NOW_TEXT, "--no-history", "-q")
    assert result.returncode == 0 and b"stdout" not in result.stderr, result.stderr
    rows = result.stdout.decode("utf-8").splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["\ufffd", "\ufffdXY", "ok"]


def test_invalid_utf8_in_a_summary_is_written_as_the_replacement_character():
    result = subprocess.run([*PYTHON, "draft", *CHARGE, "--summary", b"x\xffy\xe2\x80\xae"], capture_output=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0
    out = result.stdout.decode("utf-8")  # strict: no raw 0xFF byte
    assert "x\ufffdy" in out and "\u202e" not in out


# --- 22, 23. long numbers, UTF-16 -----------------------------------------------------------------

def test_a_number_of_thousands_of_digits_is_explained_plainly(tmp_path):
    source = tmp_path / "big.jsonl"
    source.write_text('{"charge_type":"usage","amount":%s}\n' % ("9" * 5000))
    result = run("batch", str(source), "--now", NOW_TEXT, "--no-history", "-q")
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "a number of more than" in out and "digits" in out and "set_int_max_str_digits" not in out


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_batch_is_named_utf16_with_the_fix(tmp_path, encoding):
    source = tmp_path / "u.jsonl"
    text = '{"charge_type":"usage"}\n'
    source.write_bytes(("\ufeff" + text).encode(encoding) if encoding.endswith("be") else text.encode(encoding))
    result = run("batch", str(source), "--now", NOW_TEXT, "--no-history")
    sentence = one_sentence(result)
    assert result.returncode == 1 and "UTF-16" in sentence and "save it as UTF-8" in sentence


# --- 27. CSV formula guards --------------------------------------------------------------------------

@given(st.text(alphabet=st.sampled_from(" \t\r\n'=+-@abc1"), max_size=10))
def test_no_guarded_cell_starts_a_formula_even_after_spaces_and_the_guard_reverses(text):
    cell = guard(text)
    assert unguard(cell) == text
    assert not cell.lstrip(" \t\r\n").startswith(FORMULA_STARTS) or cell.startswith("'")


def test_an_error_cell_quotes_bad_input_once_and_leading_spaces_are_guarded(tmp_path):
    source = tmp_path / "c.csv"
    source.write_text('id,charge_type,amount,ago,cause\n" =1+1",usage,80,20h,=cmd|x\n"\t=2",usage,80,20h,runaway-script\n')
    result = run("batch", str(source), "--format", "csv", "--now", NOW_TEXT, "--no-history", "-q")
    rows = result.stdout.decode().splitlines()
    assert rows[1].startswith("' =1+1,") and rows[2].startswith("'\t=2,")
    assert "\"'=cmd|x' is not a valid cause" in rows[1] and "''=cmd" not in rows[1]


class _Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_at_a_terminal_line_separators_show_as_spaces_and_a_pipe_keeps_them_as_data(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = _Terminal()
    sink = Sink(terminal, "stdout")
    sink.write("a\u2028b\u2029c \u202eevil\n")
    sink.flush()
    assert terminal.getvalue() == "a b c evil\n"
    assert clean("a\u2028b \u202eevil") == "a\u2028b evil"


def test_no_color_or_a_dumb_terminal_gets_no_escape_sequence(monkeypatch):
    for name, value in (("NO_COLOR", "1"), ("TERM", "dumb")):
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.setenv(name, value)
        terminal = _Terminal()
        sink = Sink(terminal, "stdout")
        sink.write("\x1b[1mbold\x1b[0m \x1b[30;40mhidden\x1b[0m\n")
        sink.flush()
        assert terminal.getvalue() == "bold hidden\n", name


@pytest.mark.parametrize("args", [["history", "list"], ["history", "export", "--format", "csv"]])
def test_at_a_terminal_a_notes_colour_codes_are_removed(tmp_path, args):
    history = str(tmp_path / "h.db")
    note = "\x1b[30;40mHIDDEN\x1b[0m end"
    assert run("history", "add", "--history", history, "--cause", "runaway-script", "--amount", "1",
               "--note", note).returncode == 0
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    child = pexpect.spawn(PYTHON[0], [*PYTHON[1:], *args, "--history", history], encoding="utf-8", timeout=20,
                          dimensions=(40, 120), env={**environment, "TERM": "xterm-256color"})
    child.expect(pexpect.EOF)
    child.close()
    assert "HIDDEN end" in child.before and "\x1b[30;40m" not in child.before
