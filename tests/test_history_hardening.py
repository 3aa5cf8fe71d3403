"""The history against hostile and careless input: only what the rule files know is recorded, every
bad import is one sentence naming the line (never a traceback, never a hang, never "imported 0"),
CSV is guarded against spreadsheet formulas and reads back exactly, keys never land in a note,
and odd places for the history file (read-only, a FIFO, a path too long, an old schema) behave."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refundadvisor import csvsafe
from refundadvisor import history as history_module
from refundadvisor.cli import EXIT_DATA, EXIT_OK, EXIT_USAGE
from refundadvisor.words import plural

from helpers import NOW_TEXT

PY = sys.executable
KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
CHECK = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "80", "--ago", "20h",
         "--cause", "runaway-script"]


def run(*args: str, stdin: bytes | str = b"", env: dict | None = None, prefix: list | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """The real console entry point in its own process, as a script sees it."""
    result = subprocess.run([*(prefix or []), PY, "-m", "refundadvisor", *args],
                            input=stdin.encode() if isinstance(stdin, str) else stdin, capture_output=True,
                            timeout=timeout, env={**os.environ, **(env or {})})
    result.out, result.err = result.stdout.decode(), result.stderr.decode()
    assert "Traceback" not in result.err, result.err
    return result


def one_sentence(result) -> str:
    assert result.err.count("\n") == 1 and result.err.startswith("refundadvisor: error: "), result.err
    return result.err


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


def entries(db) -> list[dict]:
    return json.loads(run("history", "list", "--json", "--history", str(db)).out)


def add(db, *args: str) -> subprocess.CompletedProcess:
    result = run("history", "add", "--history", str(db), "--now", NOW_TEXT, *args)
    assert result.returncode == EXIT_OK, result.err
    return result


# --- only what the rule files know, compared as check compares ------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--platform", "foo", "--cause", "overuse"], "--platform: 'foo' is not a platform with rules; choose one of: "),
    (["--platform", "openroutr", "--cause", "overuse"], "(did you mean 'openrouter'?)"),
    (["--cause", "runaway"], "--cause: 'runaway' is not a cause of openrouter (did you mean 'runaway-script'?)"),
    (["--cause", "x"], "choose one of: unused-credits"),
    (["--cause", "overuse", "--outcome", "grnted"], "--outcome: 'grnted' is not one of pending, granted, partial, "
                                                    "denied (did you mean 'granted'?)"),
    (["--cause", "overuse", "--asked-at", "0001-01-01T00:00:00+05:00"], "--asked-at: "),
    (["--cause", "overuse", "--amount", "9" * 5000], "(5000 characters)"),
])
def test_add_refuses_what_the_rule_files_do_not_know(db, args, says):
    result = run("history", "add", "--history", str(db), *args)
    assert result.returncode == EXIT_USAGE and says in one_sentence(result)
    assert len(result.err) < 600  # a long bad value is echoed as a short excerpt
    assert not db.exists() or entries(db) == []


def test_ids_in_any_case_are_stored_as_check_reads_them(db):
    assert run(*CHECK[:-1], "Runaway-Script", "--no-history", "-q").returncode == EXIT_OK
    add(db, "--platform", " OpenAI ", "--cause", "Duplicate-Charge", "--outcome", "DENIED")
    run("history", "update", "1", "--cause", "OVERUSE", "--history", str(db))
    assert [(e["platform"], e["cause"], e["outcome"]) for e in entries(db)] == [("openai", "overuse", "denied")]
    refused = run("history", "update", "1", "--cause", "runaway", "--history", str(db))
    assert refused.returncode == EXIT_USAGE and "is not a cause of openai" in one_sentence(refused)


def test_import_refuses_unknown_platforms_and_causes_naming_the_line(db):
    good = json.dumps({"platform": "OpenRouter", "cause": "Runaway-Script"})
    for bad, says in ((json.dumps({"platform": "foo", "cause": "overuse"}), "line 2: 'foo' is not a platform"),
                      (json.dumps({"platform": "openrouter", "cause": "x"}), "line 2: 'x' is not a cause of openrouter")):
        result = run("history", "import", "-", "--history", str(db), stdin=f"{good}\n{bad}\n")
        assert result.returncode == EXIT_DATA and says in one_sentence(result)
        assert not db.exists() or entries(db) == []  # all or nothing
    run("history", "import", "-", "--history", str(db), stdin=good + "\n")
    assert [(e["platform"], e["cause"]) for e in entries(db)] == [("openrouter", "runaway-script")]


def test_add_asks_nothing_without_a_terminal_and_defaults_the_outcome(db):
    result = add(db, "--cause", "overuse")
    assert result.out == "1\n" and "(pending)" in result.err
    assert entries(db)[0]["outcome"] == "pending"


def test_add_and_update_echo_the_stored_request_as_json(db):
    added = json.loads(add(db, "--cause", "overuse", "--amount", "12.5", "--json").out)
    assert added["schema_version"] == "4" and added["path"] == str(db)
    assert added["entry"] == entries(db)[0] and added["entry"]["amount"] == "12.5"
    updated = run("history", "update", "1", "--outcome", "partial", "--returned", "5", "--history", str(db), "--json")
    document = json.loads(updated.out)
    assert document["entry"] == entries(db)[0] and document["entry"]["outcome"] == "partial"
    assert set(document) == {"schema_version", "path", "entry"}


# --- one request, two requests ---------------------------------------------------------------------

def test_counts_in_history_messages_agree_in_number(db, tmp_path):
    assert plural(1, "request") == "1 request" and plural(0, "request") == "0 requests"
    add(db, "--cause", "overuse")
    exported = tmp_path / "one.jsonl"
    assert "exported 1 request to" in run("history", "export", "-o", str(exported), "--history", str(db)).err
    assert "imported 1 request\n" in run("history", "import", str(exported), "--history", str(tmp_path / "b.db")).err
    add(db, "--cause", "overuse")
    assert "exported 2 requests to" in run("history", "export", "-o", str(exported), "--history", str(db)).err
    assert "1 request " in run("history", "--history", str(tmp_path / "b.db"), "--now", NOW_TEXT).out


# --- hostile imports: one sentence naming the line, at once ---------------------------------------

NESTED = "[" * 1000 + "]" * 1000
HOSTILE = [
    (b"hello world\nthis is, a ragged, text file\n", "line 1: 'hello world' is not a column of a history export"),
    (b"id,platform,cause\n1,openrouter\n", "line 2 has 2 cells where the header has 3"),
    (b"id,platform,cause\n1,openrouter,overuse,extra\n", "line 2 has 4 cells where the header has 3"),
    (b"cause,cause\n", "the column 'cause' is there twice"),
    (NESTED.encode() + b"\n", "is not a column"),
    (b'{"platform": "openrouter", "cause": "overuse"}\n{"note": ' + NESTED.encode() + b"}\n",
     "line 2 is nested too deeply"),
    (b'{"platform": "openrouter", "cause": "overuse", "note": ["a"]}\n', "line 1: 'note' holds a list"),
    (b'{"platform": "openrouter", "cause": "overuse", "amount": true}\n', "holds true or false"),
    (b'{"id": 1.5, "platform": "openrouter", "cause": "overuse"}\n', "line 1: id 1.5 is not a whole number from 1 up"),
    (b'{"platform": "openrouter", "cause": "overuse", "amount": ' + b"9" * 4400 + b"}\n",
     "line 1 is not valid JSON (a number with more digits than any request holds)"),
    (b"\x00\x01\x02", "is a binary file"),
    (bytes(range(256)) * 4, "is a binary file"),
    (b"platform,cause\nopenrouter,\xff\xfe\n", "line 2 is not UTF-8 text"),
    (b"platform,cause\ropenrouter,overuse\r", "is not valid CSV"),
    (b"x" * 200_000, "line 1 is longer than 65,536 characters"),
    (b'{"platform": "openrouter", "cause": "overuse"}\n' * 3 + b'{"x": "' + b"y" * 100_000 + b'"}\n',
     "line 4 is longer than"),
]


@pytest.mark.parametrize("data, says", HOSTILE)
def test_a_hostile_import_is_one_sentence_naming_the_line(db, data, says):
    result = run("history", "import", "-", "--history", str(db), stdin=data)
    assert result.returncode == EXIT_DATA and says in one_sentence(result)
    assert result.err.startswith("refundadvisor: error: stdin: ")
    assert "imported" not in result.err and len(result.err) < 600
    assert not db.exists() or entries(db) == []


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_import_stops_at_once(db, device):
    started = time.monotonic()
    result = run("history", "import", device, "--history", str(db), timeout=20)
    assert result.returncode == EXIT_DATA and one_sentence(result).startswith(f"refundadvisor: error: {device}: ")
    assert time.monotonic() - started < 10  # measured: 0.15 s and 24 MB, the interpreter's start included


def test_a_one_line_backup_with_a_byte_order_mark_is_imported(db, tmp_path):
    add(db, "--cause", "overuse", "--note", "first")
    for output_format in ("jsonl", "csv"):
        backup = run("history", "export", "--format", output_format, "--history", str(db)).stdout
        copy = tmp_path / f"copy-{output_format}.db"
        result = run("history", "import", "-", "--history", str(copy), stdin=b"\xef\xbb\xbf" + backup)
        assert result.returncode == EXIT_OK and "imported 1 request" in result.err
        assert entries(copy) == entries(db)


def test_notes_brought_in_by_import_are_masked(db):
    rows = (json.dumps({"platform": "openrouter", "cause": "overuse", "note": f"leaked {KEY}"}) + "\n"
            + "")
    run("history", "import", "-", "--history", str(db), stdin=rows)
    csv_rows = f"platform,cause,note\nopenrouter,overuse,\"again {KEY}\"\n"
    run("history", "import", "-", "--format", "csv", "--history", str(db), stdin=csv_rows)
    notes = [entry["note"] for entry in entries(db)]
    assert notes == ["leaked [API key removed]", "again [API key removed]"]
    for shown in (run("history", "list", "--history", str(db)).out, run("history", "export", "--history", str(db)).out):
        assert "sk-or" not in shown


# --- CSV: guarded against formulas, and exact both ways --------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(
    ["\r", "\n", '"', "'", "=", "+", "-", "@", "\t", "\x00", ",", "\ufeff"]), max_size=40)


@given(st.lists(TEXT, min_size=1, max_size=6))
def test_csv_cells_read_back_exactly_and_never_start_a_formula(cells):
    line = csvsafe.row_text(cells)
    written = next(csv.reader(io.StringIO(line + csvsafe.LINE_END, newline="")))
    assert [csvsafe.unguard(cell) for cell in written] == cells
    assert not any(cell.startswith(csvsafe.FORMULA_STARTS) for cell in written)


@given(note=TEXT, cause=TEXT)
def test_history_csv_export_reads_back_exactly(note, cause):
    row = {"id": 3, "asked_at": "2026-11-01T00:00:00Z", "platform": "openrouter", "cause": cause,
           "outcome": "pending", "note": note, "amount": "12.5"}
    text = history_module.export_text([row], "csv")
    lines = history_module.export_lines(io.BytesIO(text.encode()))
    read = list(history_module.read_export(lines, "csv"))
    assert len(read) == 1
    back = read[0][1]
    expected = {name: (str(row[name]) if row.get(name) not in (None, "") else None) for name in history_module.FIELDS}
    assert back == expected


@given(notes=st.lists(TEXT.filter(lambda text: text != ""), min_size=1, max_size=3))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_note_survives_a_csv_export_and_import_through_the_database(tmp_path, notes):
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        source = history_module.History(os.path.join(folder, "a.db"))
        for note in notes:
            source.add({"platform": "openrouter", "cause": "overuse", "note": note, "amount": "1.5"})
        text = history_module.export_text(list(source.export_rows()), "csv")
        copy = history_module.History(os.path.join(folder, "b.db"))
        lines = history_module.export_lines(io.BytesIO(b"\xef\xbb\xbf" + text.encode()))
        assert copy.import_rows(history_module.read_export(lines, "csv")) == (len(notes), 0)
        assert copy.entries() == source.entries()
        assert [entry.note for entry in copy.entries()] == notes


def test_a_note_with_a_lone_cr_and_a_formula_survives_export_and_import(db, tmp_path):
    note = 'line\rwith a lone CR, "quotes"\n=HYPERLINK("http://x") and \u2028 \t'
    add(db, "--cause", "overuse", "--note", note)
    add(db, "--cause", "overuse", "--note", "'starts with a quote")
    add(db, "--cause", "overuse", "--note", "-5+cmd|' /C calc'!A0")
    exported = run("history", "export", "--format", "csv", "--history", str(db)).stdout
    assert b",=HYPERLINK" not in exported and b'"=HYPERLINK' not in exported and b"'-5+cmd" in exported
    copy = tmp_path / "copy.db"
    assert run("history", "import", "-", "--format", "csv", "--history", str(copy), stdin=exported).returncode == 0
    assert entries(copy) == entries(db) and entries(copy)[0]["note"] == note


def test_batch_csv_is_guarded_and_one_record_per_row():
    rows = "".join(json.dumps(row) + "\n" for row in (
        {"id": "=HYPERLINK(\"http://x\",\"y\")", "charge_type": "usage", "amount": 5, "ago": "1h", "cause": "overuse"},
        {"id": "two\nlines\rhere", "charge_type": "usage", "amount": 5, "ago": "1h", "cause": "overuse"},
        {"id": "@SUM(A1)", "amount": "x"}))
    result = subprocess.run([PY, "-m", "refundadvisor", "batch", "-", "--format", "csv", "--now", NOW_TEXT],
                            input=rows.encode(), capture_output=True, timeout=60)
    records = list(csv.reader(io.StringIO(result.stdout.decode(), newline="")))
    assert [record[0] for record in records] == ["id", "'=HYPERLINK(\"http://x\",\"y\")", "two\nlines\rhere", "'@SUM(A1)"]
    assert [record[1] for record in records[1:]] == ["1", "2", "3"]  # numbers the program made stay numbers


def test_numbers_the_program_made_are_not_guarded_and_text_is():
    assert [csvsafe.cell(value) for value in (-5, -0.5, "-5", "'x", None, True)] == ["-5", "-0.5", "'-5", "''x", "",
                                                                                   "true"]


# --- where the history lives -----------------------------------------------------------------------

def _schema_1(path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, asked_at TEXT NOT NULL, platform TEXT NOT NULL, "
                       "charged_at TEXT, amount TEXT, cause TEXT NOT NULL, outcome TEXT NOT NULL, returned TEXT, "
                       "note TEXT)")
    connection.execute("INSERT INTO requests VALUES (1, '2026-11-20T00:00:00Z', 'openrouter', NULL, '5', "
                       "'runaway-script', 'denied', NULL, NULL)")
    connection.execute("PRAGMA user_version = 1")
    connection.close()


def _journal_mode(path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def test_a_schema_1_history_is_migrated_into_wal_mode(db):
    _schema_1(db)
    assert _journal_mode(db) == "delete"
    assert [entry.cause for entry in history_module.History(db).entries()] == ["runaway-script"]
    assert _journal_mode(db) == "wal"
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == history_module.SCHEMA_VERSION
    connection.close()


def test_a_current_history_left_in_rollback_mode_is_moved_to_wal(db):
    history_module.History(db).add({"platform": "openrouter", "cause": "overuse"})
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.close()
    history_module.History(db).entries()
    assert _journal_mode(db) == "wal"


def _without_write_access() -> list:
    """A command prefix that runs without the power to write where permissions forbid it: none for
    an ordinary user; as root, root without the capabilities that override permissions."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.parametrize("old_schema", [False, True])
def test_a_read_only_history_is_read_and_recording_says_why_it_cannot(tmp_path, old_schema):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "history.db"
    if old_schema:
        _schema_1(db)
    else:
        add(db, "--cause", "runaway-script", "--outcome", "denied", "--asked-at", "2026-11-20")
    prefix = _without_write_access()
    os.chmod(db, 0o444)
    os.chmod(folder, 0o555)
    try:
        result = run(*CHECK, "--history", str(db), "--json", prefix=prefix)
        assert result.returncode == EXIT_OK, result.err
        assert json.loads(result.out)["history"]["counts"]["prior_denials"] == 1
        listed = run("history", "list", "--json", "--history", str(db), prefix=prefix)
        assert listed.returncode == EXIT_OK and [e["outcome"] for e in json.loads(listed.out)] == ["denied"]
        recorded = run(*CHECK, "--history", str(db), "-q", "--record", prefix=prefix)
        assert recorded.returncode == EXIT_DATA
        assert "is read-only, so nothing was recorded; check the permissions" in one_sentence(recorded)
    finally:
        os.chmod(folder, 0o755)
        os.chmod(db, 0o644)
    assert sorted(path.name for path in folder.iterdir()) == ["history.db"]  # nothing written beside it


def test_a_fifo_where_the_history_should_be_does_not_hang(tmp_path):
    fifo = tmp_path / "history.db"
    os.mkfifo(fifo)
    for args in (["history", "list"], ["history", "add", "--cause", "overuse"], CHECK):
        result = run(*args, "--history", str(fifo), timeout=20)
        assert result.returncode == EXIT_DATA and "is not a regular file (a pipe or a device)" in one_sentence(result)


def test_paths_longer_than_the_system_allows_are_one_sentence(tmp_path):
    long_path = str(tmp_path / ("a" * 300) / ("b" * 5000))
    for args, env in ((["history", "list", "--history", long_path], {}),
                      (["history", "add", "--cause", "overuse", "--history", long_path], {}),
                      ([*CHECK, "-q"], {"REFUNDADVISOR_HOME": long_path})):
        result = run(*args, env=env)
        assert result.returncode == EXIT_DATA and "cannot be used (File name too long)" in one_sentence(result)
        assert len(result.err) < 400
    assert run(*CHECK, "-q", "--no-history", env={"XDG_CONFIG_HOME": long_path}).returncode == EXIT_OK


def test_history_list_is_plain_text_when_piped_and_in_a_narrow_terminal(db):
    import pexpect

    note = "[link=https://example.com]click[/link] and a note long enough to wrap past forty columns"
    add(db, "--cause", "overuse", "--amount", "3", "--note", note)
    piped = run("history", "list", "--history", str(db)).out
    assert piped.startswith("#1 2026-11-30 openrouter overuse 3.00: pending;") and "[link=" in piped
    assert "\x1b" not in piped and all(line == line.rstrip() for line in piped.splitlines())
    terminal = {**{name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}, "TERM": "xterm"}
    for columns in (40, 120):
        child = pexpect.spawn(PY, ["-m", "refundadvisor", "history", "list", "--history", str(db)],
                              dimensions=(24, columns), encoding="utf-8", timeout=30, env=terminal)
        child.expect(pexpect.EOF)
        shown = child.before.replace("\r\n", "\n")
        assert "[link=" in shown and "\x1b]8;" not in shown  # a note is text, never a link
        assert all(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) <= columns for line in shown.splitlines())
