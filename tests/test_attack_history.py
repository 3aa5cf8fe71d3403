"""What an adversarial tester found in the history and the evidence readers, each as a user sees it:
text that is not UTF-8, ids past any request, a database another program wrote odd values into,
dates in the wrong order, a link to nowhere, evidence lines with absurd times or costs, and the
messages about flags that do not exist. Never a traceback; one sentence, or a warning and the rest."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from refundadvisor import history as history_module
from refundadvisor.cli import EXIT_DATA, EXIT_USAGE, app

from helpers import NOW_TEXT

runner = CliRunner()
NOW = datetime.fromisoformat(NOW_TEXT.replace("Z", "+00:00"))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


def add(db, *args: str) -> int:
    result = run("history", "add", "--history", str(db), "--now", NOW_TEXT, "--cause", "runaway-script", *args)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


# --- 1: text that is not UTF-8 is stored with U+FFFD, never a traceback ---------------------------

@PROPERTY
@given(note=st.text(min_size=1, max_size=40))
def test_any_note_is_stored_with_lone_surrogates_replaced(tmp_path_factory, note):
    store = history_module.History(tmp_path_factory.mktemp("h") / "history.db")
    entry_id = store.add({"platform": "openrouter", "cause": "runaway-script", "note": note}, now=NOW)
    stored = store.get(entry_id).note or ""
    assert not any(0xD800 <= ord(char) <= 0xDFFF for char in stored)
    expected = "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in note)
    if expected.strip() and "sk-" not in expected.lower():  # a key-like note is masked, that is tested elsewhere
        assert stored == expected[:history_module.NOTE_LIMIT]
    updated = store.update(entry_id, {"currency": note[:8], "note": note + "\udcff"}, now=NOW)
    assert updated.note.endswith("\ufffd")


def test_bytes_that_are_not_utf8_in_add_update_and_import(db, tmp_path):
    # on the command line, undecodable bytes arrive as lone surrogates (surrogateescape)
    entry_id = add(db, "--note", "x\udcffy")
    assert run("history", "update", str(entry_id), "--history", str(db), "--note", "\udc9b").exit_code == 0
    export = tmp_path / "f.jsonl"
    export.write_text('{"platform":"openrouter","cause":"runaway-script","note":"a\\ud800b"}\n')
    assert run("history", "import", str(export), "--history", str(db)).exit_code == 0
    notes = [row["note"] for row in json.loads(run("history", "list", "--json", "--history", str(db)).stdout)]
    assert notes == ["\ufffd", "a\ufffdb"]
    export.write_text('{"platform":"openrouter","cause":"runaway-script","updated_at":"\\udcff"}\n')
    result = run("history", "import", str(export), "--history", str(db))
    assert result.exit_code == EXIT_DATA and "f.jsonl: line 1: updated_at" in result.stderr


# --- 2: ids past any request ---------------------------------------------------------------------

@PROPERTY
@given(entry_id=st.one_of(st.integers(max_value=0), st.integers(min_value=2**63)))
def test_an_id_no_request_can_have_is_no_request(tmp_path_factory, entry_id):
    store = history_module.History(tmp_path_factory.mktemp("h") / "history.db")
    store.add({"platform": "openrouter", "cause": "runaway-script"}, now=NOW)
    for attempt in (lambda: store.get(entry_id), lambda: store.remove(entry_id),
                    lambda: store.update(entry_id, {"outcome": "denied"}, now=NOW)):
        with pytest.raises(history_module.HistoryError, match="there is no request"):
            attempt()


@pytest.mark.parametrize("command", [["update", "99999999999999999999999", "--outcome", "denied"],
                                     ["remove", "99999999999999999999999", "--yes"]])
def test_a_huge_id_on_the_command_line_is_one_sentence(db, command):
    add(db)
    result = run("history", *command, "--history", str(db))
    assert result.exit_code == EXIT_DATA
    assert result.stderr.startswith("refundadvisor: error: there is no request 99999999999999999999999")
    assert result.stderr.count("\n") == 1


# --- 7: a database holding values of the wrong type -------------------------------------------------

COLUMNS = ("asked_at", "platform", "charged_at", "amount", "currency", "cause", "outcome", "returned", "note",
           "updated_at")
ODD_VALUES = (b"\xff\xfe", 12, 3.5, "not-a-date-or-number", -7)


@pytest.mark.parametrize("column", COLUMNS)
def test_odd_values_in_any_column_never_break_the_history_views(db, column):
    add(db, "--amount", "5")
    with sqlite3.connect(db) as connection:
        for number, value in enumerate(ODD_VALUES, 100):
            row = {"id": number, "asked_at": "2026-11-30", "platform": "openrouter", "cause": "runaway-script",
                   "outcome": "pending", column: value}
            connection.execute(f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                               tuple(row.values()))
    for view in (["history", "--now", NOW_TEXT], ["history", "--json", "--now", NOW_TEXT], ["history", "list"],
                 ["history", "export"], ["history", "export", "--format", "csv"]):
        result = run(*view, "--history", str(db))
        assert result.exit_code == 0, (view, result.stderr)
    listed = json.loads(run("history", "list", "--json", "--history", str(db)).stdout)
    assert {row["id"] for row in listed} == {1, 100, 101, 102, 103, 104}
    assert all(isinstance(row[column], (str, type(None))) for row in listed)
    # binary data is said, on one line of stderr, once per command
    result = run("history", "list", "--history", str(db))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("refundadvisor: warning:")]
    assert any("request 100" in line and "binary data" in line for line in warnings), result.stderr
    assert len(warnings) == len(set(warnings))
    # the odd request can still be corrected or removed
    assert run("history", "update", "100", "--history", str(db), "--now", NOW_TEXT, "--asked-at", "2026-11-30",
               "--charged-at", "2026-11-29", "--amount", "3", "--returned", "1", "--cause", "runaway-script",
               "--outcome", "partial", "--note", "fixed").exit_code == 0
    assert run("history", "remove", "101", "--yes", "--history", str(db)).exit_code == 0


def test_a_text_amount_that_is_no_number_is_shown_empty_with_a_warning(db):
    add(db)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE requests SET amount = 'lots' WHERE id = 1")
    result = run("history", "list", "--json", "--history", str(db))
    assert json.loads(result.stdout)[0]["amount"] is None
    assert "request 1 is not as refundadvisor writes it: amount 'lots' is not a number" in result.stderr
    assert result.stderr.count("\n") == 1


# --- 24: dates in an order that cannot be ----------------------------------------------------------

def test_a_charge_after_the_request_or_a_request_in_the_future_is_refused(db):
    result = run("history", "add", "--history", str(db), "--now", NOW_TEXT, "--cause", "runaway-script",
                 "--asked-at", "1900-01-01", "--charged-at", "8999-12-31")
    assert result.exit_code == EXIT_USAGE and result.stderr.count("\n") == 1
    assert "--charged-at" in result.stderr and "after the request" in result.stderr
    result = run("history", "add", "--history", str(db), "--now", NOW_TEXT, "--cause", "runaway-script",
                 "--asked-at", "2100-01-01")
    assert result.exit_code == EXIT_USAGE and "--asked-at" in result.stderr and "after now" in result.stderr
    assert not db.exists() or json.loads(run("history", "list", "--json", "--history", str(db)).stdout) == []
    # the same day (a date is midnight) is fine, and so is an update that keeps the order
    entry_id = add(db, "--asked-at", "2026-11-30", "--charged-at", "2026-11-30T15:00")
    result = run("history", "update", str(entry_id), "--history", str(db), "--now", NOW_TEXT,
                 "--charged-at", "2026-12-25")
    assert result.exit_code == EXIT_USAGE and "after the request" in result.stderr


# --- a dangling link in place of the history ----------------------------------------------------------

def test_a_link_to_nowhere_is_refused_not_created_through(tmp_path):
    link = tmp_path / "history.db"
    target = tmp_path / "elsewhere" / "made.db"
    os.symlink(target, link)
    result = run("history", "add", "--history", str(link), "--now", NOW_TEXT, "--cause", "runaway-script")
    assert result.exit_code == EXIT_DATA and result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr and "link" in result.stderr
    assert not target.exists() and not target.parent.exists()


# --- 18: the id cannot be printed, but the request was recorded ---------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_full_disk_on_stdout_says_the_request_was_recorded(db, extra):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "refundadvisor", "history", "add", "--history", str(db),
                                 "--now", NOW_TEXT, "--cause", "runaway-script", *extra],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == EXIT_DATA and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "request 1 WAS recorded in " + str(db) in result.stderr and "do not add it again" in result.stderr
    assert [row["id"] for row in json.loads(run("history", "list", "--json", "--history", str(db)).stdout)] == [1]


# --- 3 and 22: an evidence log line with an absurd time, cost or count is a broken line ------------

GOOD_LINE = {"id": "gen-1", "object": "chat.completion", "model": "m", "choices": [{"finish_reason": "stop"}],
             "created": 1764000000, "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.01}}
ABSURD = ['"created":1e20', '"created":-1e15', '"created":1e308', '"created":NaN', '"created":-62135596801',
          '"created":' + "9" * 400, '"ts":"9999-12-31T23:59:59-14:00"', '"ts":"0001-01-01T00:00:00+14:00"',
          '"ts":1e300', '"usage":{"cost":1e400}', '"usage":{"cost":NaN}', '"usage":{"cost":1e300}',
          '"usage":{"prompt_tokens":' + "9" * 30 + "}"]


def _log(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _absurd_line(field: str) -> str:
    base = {key: value for key, value in GOOD_LINE.items() if key not in ("created", "usage")}
    return json.dumps(base)[:-1] + "," + field + "}"


@pytest.mark.parametrize("field", ABSURD)
def test_a_line_with_an_absurd_time_or_cost_is_skipped_and_counted(tmp_path, field):
    log = tmp_path / "ev.jsonl"
    log.write_bytes(_log(json.dumps(GOOD_LINE), _absurd_line(field), json.dumps(GOOD_LINE)))
    result = run("evidence", "log", str(log), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["lines"]["requests"] == 2 and document["lines"]["skipped"]["broken"] == 1
    assert document["lines"]["broken_examples"][0]["line"] == 2
    assert "out of range" in document["lines"]["broken_examples"][0]["reason"] \
        or "not a number" in document["lines"]["broken_examples"][0]["reason"]
    assert "line 2" in result.stderr and "skipped" in result.stderr and "cannot read" not in result.stderr
    alone = tmp_path / "one.jsonl"
    alone.write_bytes(_log(_absurd_line(field)))
    result = run("evidence", "log", str(alone))
    assert result.exit_code == 0 and "1 broken" in result.stdout, result.stdout + result.stderr


@settings(max_examples=80, deadline=None)
@given(value=st.one_of(st.floats(), st.integers(min_value=-10**40, max_value=10**40),
                       st.text(max_size=40)),
       field=st.sampled_from(["created", "ts", "timestamp", "cost", "prompt_tokens"]))
def test_any_time_or_cost_value_never_stops_the_log(value, field):
    import io

    from refundadvisor.evidence.logread import read_log

    line = dict(GOOD_LINE)
    if field in ("cost", "prompt_tokens"):
        line["usage"] = {**GOOD_LINE["usage"], field: value}
    else:
        line.pop("created")
        line[field] = value
    reader = read_log(io.BytesIO(_log(json.dumps(line), json.dumps(GOOD_LINE))))
    document = json.loads(json.dumps(reader.document(), default=str))
    assert document["lines"]["requests"] + document["lines"]["skipped"]["broken"] == 2
    assert document["lines"]["requests"] >= 1


def test_a_number_of_thousands_of_digits_is_called_that_not_too_deeply_nested(tmp_path):
    log = tmp_path / "ev.jsonl"
    log.write_bytes(_log('{"usage":{"prompt_tokens":' + "1" * 4400 + "}}", json.dumps(GOOD_LINE)))
    result = run("evidence", "log", str(log), "--json")
    reason = json.loads(result.stdout)["lines"]["broken_examples"][0]["reason"]
    assert "more digits" in reason and "nested" not in reason


@pytest.mark.parametrize("field, value", [("created_at", "9999-12-31T23:59:59-14:00"), ("created_at", "0001-01-01"),
                                          ("total_cost", 1e308), ("total_cost", float("inf")),
                                          ("tokens_prompt", 10**40)])
def test_a_generation_with_an_absurd_value_is_a_malformed_reply(field, value):
    from refundadvisor.evidence.client import RequestFailed
    from refundadvisor.evidence.generations import parse_generation

    data = {"id": "gen-1", "total_cost": 0.5, "created_at": "2026-11-30T10:00:00Z", field: value}
    with pytest.raises(RequestFailed, match="malformed|not"):
        parse_generation({"data": data}, "gen-1")


# --- 20: --fact NAME=VALUE errors name --fact and the facts there are ------------------------------

CHECK = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--ago", "20h", "--cause", "runaway-script"]


@settings(max_examples=40, deadline=None)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)
       .filter(lambda name: "=" not in name and name.strip() and name.strip() not in (
           "charge_type", "amount", "charged_at", "cause", "ago", "currency", "payment_method", "unused",
           "unauthorized_how", "prior_refunds", "similar_prior", "prior_denials", "requests_90d", "warned",
           "other_accounts", "profile", "usage_span_days", "evidence", "support_reply")))
def test_an_unknown_fact_name_is_said_as_a_fact_name_not_a_flag(name):
    result = run(*CHECK, "--amount", "80", "--fact", f"{name}=x")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("refundadvisor: error: --fact: ") and result.stderr.count("\n") == 1
    assert "the fact names are: charge_type, amount" in result.stderr


def test_a_fact_given_by_name_counts_and_its_bad_value_names_fact():
    assert run(*CHECK, "--fact", "amount=80").exit_code == 0
    result = run(*CHECK, "--fact", "amount=abc")
    assert result.exit_code == EXIT_USAGE and result.stderr.startswith("refundadvisor: error: --fact amount: ")
    result = run(*CHECK, "--fact", "note=x", "--amount", "80")
    assert "--note" not in result.stderr and "'note' is not a fact" in result.stderr


# --- 26: the history pattern and `rules list` fit a narrow terminal ---------------------------------

def _fits(text: str, width: int) -> bool:
    return all(len(line) <= width or " " not in line.strip() for line in text.splitlines())


@pytest.mark.parametrize("width", [40, 57, 100])
def test_history_pattern_and_rules_list_wrap_to_columns(db, width):
    add(db, "--amount", "12", "--asked-at", "2026-11-01", "--note", "a long note " * 20)
    add(db, "--amount", "12", "--asked-at", "2026-11-20")
    views = [["history", "--history", str(db), "--now", NOW_TEXT], ["rules", "list"]]
    for view in views:
        wide = run(*view).stdout
        assert not _fits(wide, 40), view  # as written, the lines run past 40 columns
        narrow = runner.invoke(app, view, env={"COLUMNS": str(width)}).stdout
        assert _fits(narrow, width), narrow
        assert narrow.split() == wide.split()  # nothing lost or added, only the line breaks
        assert any(line.startswith("      https://") for line in narrow.splitlines()) or view[0] == "history"


def test_piped_views_keep_one_line_per_item(db):
    add(db, "--asked-at", "2026-11-01")
    listed = run("rules", "list").stdout.splitlines()
    assert all(line.startswith("    ") and line.split()[-1].startswith("http") for line in listed
               if line.startswith(" "))


@pytest.mark.parametrize("bucket", [{"start_time": 10**14, "end_time": 10**14 + 60},
                                    {"start_time": -10**12, "end_time": 60},
                                    {"starting_at": "9999-12-31T23:59:59-14:00", "ending_at": "9999-12-31T23:59:59-13:00"},
                                    {"starting_at": "0001-01-01T00:00:00+14:00", "ending_at": "2026-01-01T00:00:00Z"}])
@pytest.mark.parametrize("platform", ["openai", "anthropic"])
def test_a_usage_bucket_with_an_absurd_time_or_amount_is_a_malformed_reply(platform, bucket):
    from refundadvisor.evidence.client import RequestFailed
    from refundadvisor.evidence.usage import PLATFORMS, _cost_bucket, _usage_bucket

    with pytest.raises(RequestFailed, match="without a valid start and end"):
        _usage_bucket(PLATFORMS[platform], {**bucket, "results": []})
    good = {"start_time": 1764000000, "end_time": 1764003600, "starting_at": "2025-11-24T16:00:00Z",
            "ending_at": "2025-11-24T17:00:00Z"}
    amount = {"value": 1e300, "currency": "usd"} if platform == "openai" else "1e300"
    with pytest.raises(RequestFailed, match="not a number"):
        _cost_bucket(PLATFORMS[platform], {**good, "results": [{"amount": amount, "currency": "USD"}]})


def test_an_amount_with_billions_of_decimal_places_is_refused_like_in_check(tmp_path):
    """3E-3000000000 once took 3 GB to write out in plain digits; the history uses check's bounds."""
    result = runner.invoke(app, ["history", "add", "--cause", "overuse", "--amount", "3E-3000000000",
                                 "--history", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    assert "more than 12 decimal places" in result.output
    assert "Traceback" not in result.output
