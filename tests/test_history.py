"""The local refund history: commands, check reading from it, and nothing ever lost."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from refundadvisor import history as history_module
from refundadvisor.cli import app

from helpers import NOW_TEXT

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "history.db"


def run(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def add(db, *args: str) -> int:
    result = run("history", "add", "--history", str(db), "--now", NOW_TEXT, *args)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def listed(db) -> list[dict]:
    return json.loads(run("history", "list", "--history", str(db), "--json").stdout)


def test_add_list_update_remove(db):
    first = add(db, "--cause", "runaway-script", "--amount", "40", "--asked-at", "2026-09-10", "--outcome", "denied")
    second = add(db, "--platform", "openai", "--cause", "duplicate-charge", "--amount", "20.10", "--asked-at",
                 "2026-11-01T09:30:00Z", "--charged-at", "2026-10-31", "--note", "card shows two lines")
    entries = listed(db)
    assert [entry["id"] for entry in entries] == [first, second]
    assert entries[1] | {"updated_at": None} == {
        "id": second, "asked_at": "2026-11-01T09:30:00Z", "platform": "openai", "charged_at": "2026-10-31T00:00:00Z",
        "amount": "20.10", "currency": "USD", "cause": "duplicate-charge", "outcome": "pending", "returned": None,
        "note": "card shows two lines", "updated_at": None}
    assert run("history", "update", str(second), "--outcome", "granted", "--returned", "20.10", "--history",
               str(db)).exit_code == 0
    assert listed(db)[1]["outcome"] == "granted" and listed(db)[1]["returned"] == "20.10"
    assert run("history", "remove", str(first), "--history", str(db)).exit_code == 2  # no terminal, no --yes
    assert run("history", "remove", str(first), "--yes", "--history", str(db)).exit_code == 0
    assert [entry["id"] for entry in listed(db)] == [second]


@pytest.mark.parametrize("args, says", [
    (["--cause", "bug"], "is not a cause of openrouter"),
    (["--cause", "overuse", "--outcome", "maybe"], "is not one of pending, granted, partial, denied"),
    (["--cause", "overuse", "--amount", "-3"], "must be a number from 0 up"),
    (["--cause", "overuse", "--amount", "10", "--returned", "20"], "cannot be more than the amount"),
    (["--cause", "overuse", "--asked-at", "yesterday"], "is not an ISO 8601 date"),
    ([], "missing --cause"),
])
def test_bad_entries_are_refused_with_a_sentence(db, args, says):
    result = run("history", "add", "--history", str(db), *args)
    assert result.exit_code in (1, 2) and says in result.stderr


def test_unknown_ids(db):
    add(db, "--cause", "overuse")
    for args in (["update", "99", "--outcome", "denied"], ["remove", "99", "--yes"]):
        result = run("history", *args, "--history", str(db))
        assert result.exit_code == 1 and "no request 99" in result.stderr


def test_export_and_import_round_trip_unchanged(db, tmp_path):
    add(db, "--cause", "runaway-script", "--amount", "40", "--asked-at", "2026-09-10", "--outcome", "denied",
        "--note", "a loop, ünïcode, \"quotes\", commas, and\na newline")
    add(db, "--platform", "anthropic", "--cause", "platform-error", "--amount", "0.10", "--asked-at", "2026-11-01")
    run("history", "update", "2", "--outcome", "partial", "--returned", "0.05", "--history", str(db))
    for fmt in ("jsonl", "csv"):
        exported = run("history", "export", "--history", str(db), "--format", fmt).stdout
        copy = tmp_path / f"copy-{fmt}.db"
        dump = tmp_path / f"dump.{fmt}"
        dump.write_text(exported)
        assert run("history", "import", str(dump), "--history", str(copy)).exit_code == 0
        assert run("history", "export", "--history", str(copy), "--format", fmt).stdout == exported
        again = run("history", "import", str(dump), "--history", str(copy))
        assert again.exit_code == 0 and "skipped 2 already there" in again.stderr  # idempotent


def test_import_is_all_or_nothing(db, tmp_path):
    dump = tmp_path / "bad.jsonl"
    dump.write_text(json.dumps({"platform": "openrouter", "cause": "overuse", "outcome": "pending"}) + "\n"
                    + json.dumps({"platform": "openrouter", "cause": "overuse", "outcome": "won"}) + "\n")
    result = run("history", "import", str(dump), "--history", str(db))
    assert result.exit_code == 1 and "line 2" in result.stderr
    assert listed(db) == []


def test_reading_an_export_keeps_line_numbers_and_says_which_line_is_broken(db, tmp_path):
    def read(text, input_format):
        return list(history_module.read_export(text.splitlines(keepends=True), input_format))

    assert read('{"cause": "overuse"}\n\n{"cause": "x"}\n', "jsonl") == [
        (1, {"cause": "overuse"}), (3, {"cause": "x"})]
    assert read("cause,note\noveruse,\n", "csv") == [(2, {"cause": "overuse", "note": None})]
    with pytest.raises(history_module.UnreadableExport, match="line 2 is not valid JSON"):
        read('{}\n{"cause":\n', "jsonl")
    dump = tmp_path / "list.jsonl"
    dump.write_text("[1, 2]\n")
    result = run("history", "import", str(dump), "--history", str(db))
    assert result.exit_code == 1 and f"{dump}: line 1 is not a JSON object" in result.stderr


# --- check reads its facts from the history -------------------------------------------------------

def check(db, *args: str) -> dict:
    result = run("check", "--now", NOW_TEXT, "--history", str(db), "--json", "--charge-type", "usage", "--amount",
                 "30", "--ago", "5h", "--cause", "runaway-script", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_check_counts_earlier_requests_from_the_history(db):
    assert check(db)["history"] is None  # no history yet: nothing read, nothing created
    assert not db.exists()
    add(db, "--cause", "runaway-script", "--asked-at", "2026-09-10", "--outcome", "denied")
    add(db, "--cause", "runaway-script", "--asked-at", "2026-11-02")
    add(db, "--cause", "overuse", "--asked-at", "2025-06-01")  # more than 12 months ago: not counted
    add(db, "--platform", "openai", "--cause", "runaway-script", "--asked-at", "2026-11-03")  # another platform
    document = check(db)
    assert document["history"] | {"path": None} == {
        "path": None, "last_asked_at": "2026-11-02T00:00:00Z",
        "counts": {"prior_refunds": 2, "similar_prior": 2, "prior_denials": 1, "requests_90d": 2}}
    assert (document["facts"]["prior_refunds"], document["facts"]["similar_prior"]) == (2, 2)
    assert document["fact_origins"]["prior_refunds"] == "history"
    fired = [reason["rule"] for reason in document["reasons"]]
    assert {"similar-before", "repeated-pattern", "denied-before", "recent-requests"} <= set(fired)
    human = run("check", "--now", NOW_TEXT, "--history", str(db), "--charge-type", "usage", "--amount", "30",
                "--ago", "5h", "--cause", "runaway-script").stdout
    assert "From your history" in " ".join(human.split()) and "2 requests in the last 12 months" in " ".join(human.split())


def test_flags_override_the_history_and_no_history_ignores_it(db):
    add(db, "--cause", "runaway-script", "--asked-at", "2026-11-02")
    document = check(db, "--prior-refunds", "0")
    assert document["facts"]["prior_refunds"] == 0 and document["fact_origins"]["prior_refunds"] == "given"
    assert document["fact_origins"]["similar_prior"] == "default"  # not asked when there were none
    assert check(db, "--no-history")["history"] is None


def test_record_adds_a_pending_request(db):
    result = run("check", "--now", NOW_TEXT, "--history", str(db), "--charge-type", "usage", "--amount", "30",
                 "--ago", "5h", "--cause", "overuse", "--record", "-q")
    assert result.exit_code == 0 and "recorded as request 1" in result.stderr
    entry = listed(db)[0]
    assert (entry["cause"], entry["outcome"], entry["amount"], entry["asked_at"]) == ("overuse", "pending", "30",
                                                                                      "2026-11-30T12:00:00Z")
    assert entry["note"].startswith("checked: very-unlikely")


def test_batches_read_the_history_too(db):
    add(db, "--cause", "overuse", "--asked-at", "2026-11-02")
    row = json.dumps({"charge_type": "usage", "amount": 30, "ago": "5h", "cause": "overuse"})
    result = run("batch", "-", "--history", str(db), "--now", NOW_TEXT, input=row + "\n")
    assert "similar-before" in [reason["rule"] for reason in json.loads(result.stdout)["reasons"]]


def test_the_pattern_view_says_what_one_more_request_would_do(db):
    add(db, "--cause", "runaway-script", "--asked-at", "2026-10-10", "--outcome", "denied")
    text = run("history", "--history", str(db), "--now", NOW_TEXT).stdout
    assert "OpenRouter: 1 request (denied 1)" in text
    assert "2026-10: runaway-script 1" in text
    assert "One more runaway-script request now would bring in rule repeated-pattern (cap 25, outcome decline-likely)" in text
    document = json.loads(run("history", "--history", str(db), "--json", "--now", NOW_TEXT).stdout)
    crossing = {item["rule"] for item in document["platforms"][0]["would_cross"]}
    assert {"repeated-pattern", "recent-requests"} <= crossing


# --- nothing lost ---------------------------------------------------------------------------------

def test_concurrent_writers_all_land(db):
    writers = [subprocess.Popen([sys.executable, "-m", "refundadvisor", "history", "add", "--history", str(db),
                                 "--cause", "overuse", "--note", f"writer {number}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for number in range(8)]
    results = [writer.communicate(timeout=60) for writer in writers]
    assert all(writer.returncode == 0 for writer in writers), results
    notes = sorted(entry["note"] for entry in listed(db))
    assert notes == sorted(f"writer {number}" for number in range(8))
    assert sorted(int(out) for out, _ in results) == list(range(1, 9))


def test_a_database_from_an_older_schema_is_migrated_forward(db):
    connection = sqlite3.connect(db)
    for statement in history_module.MIGRATIONS[1]:
        connection.execute(statement)
    connection.execute("INSERT INTO requests (asked_at, platform, charged_at, amount, cause, outcome, returned, note) "
                       "VALUES ('2026-10-01T00:00:00Z', 'openrouter', NULL, '12.50', 'overuse', 'denied', NULL, 'v1')")
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    entries = listed(db)
    assert len(entries) == 1 and entries[0]["note"] == "v1" and entries[0]["amount"] == "12.50"
    assert entries[0]["currency"] is None
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == history_module.SCHEMA_VERSION
    add(db, "--cause", "overuse")
    assert len(listed(db)) == 2


def test_a_newer_schema_is_refused(db):
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA user_version = 99")
    connection.commit()
    connection.close()
    result = run("history", "list", "--history", str(db))
    assert result.exit_code == 1 and "newer refundadvisor" in result.stderr


@pytest.mark.parametrize("content, says", [
    (b"this is not a database at all, just some bytes" * 100, "damaged"),
    (b"SQLite format 3\x00" + b"\xff" * 4000, "damaged"),
])
def test_a_corrupt_database_is_one_sentence_and_exit_1_never_empty(db, content, says):
    db.write_bytes(content)
    for args in (["history", "list", "--history", str(db)], ["history", "--history", str(db)],
                 ["history", "add", "--cause", "overuse", "--history", str(db)],
                 ["check", "--history", str(db), "--charge-type", "usage", "--amount", "1", "--ago", "1h",
                  "--cause", "overuse"]):
        result = run(*args)
        assert result.exit_code == 1, args
        assert says in result.stderr and result.stderr.count("\n") == 1
    assert db.read_bytes() == content  # left as it was, for the user to inspect


def test_another_sqlite_database_is_not_taken_for_a_history(db):
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()
    result = run("history", "list", "--history", str(db))
    assert result.exit_code == 1 and "not a refundadvisor history" in result.stderr


def test_a_locked_database_says_so(db, monkeypatch):
    add(db, "--cause", "overuse")
    monkeypatch.setattr(history_module, "BUSY_SECONDS", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run("history", "add", "--cause", "overuse", "--history", str(db))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1 and "locked by another refundadvisor" in result.stderr
    assert len(listed(db)) == 1


def test_an_unreadable_location(tmp_path):
    result = run("history", "list", "--history", str(tmp_path))
    assert result.exit_code == 1 and "is a directory" in result.stderr
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = run("history", "add", "--cause", "overuse", "--history", str(blocked / "history.db"))
    assert result.exit_code == 1 and "goes through a file as if it were a folder" in result.stderr


def test_the_default_location_and_refundadvisor_home(isolated_home, monkeypatch, tmp_path):
    add_args = ["history", "add", "--cause", "overuse"]
    assert run(*add_args).exit_code == 0
    assert (isolated_home / ".local" / "share" / "refundadvisor" / "history.db").exists()
    monkeypatch.setenv("REFUNDADVISOR_HOME", str(tmp_path / "elsewhere"))
    assert run(*add_args).exit_code == 0
    assert (tmp_path / "elsewhere" / "history.db").exists()


def test_keys_in_notes_are_removed(db):
    add(db, "--cause", "unauthorized", "--note", "leaked sk-or-v1-0123456789abcdef0123456789abcdef on GitHub")
    assert "sk-or" not in listed(db)[0]["note"]


# --- in a real terminal -----------------------------------------------------------------------

def test_add_asks_for_the_cause_only_and_remove_asks_first(db):
    from test_interview import answer, spawn
    import pexpect

    child = spawn("history", "add", "--history", str(db), "--amount", "12")
    answer(child, "> cause:", "7")  # by number: overuse; the outcome is not asked: pending
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [(entry["cause"], entry["outcome"]) for entry in listed(db)] == [("overuse", "pending")]
    child = spawn("history", "add", "--history", str(db), "--cause", "overuse", "--amount", "3")
    child.expect(pexpect.EOF)  # every fact it needs was given: nothing asked
    child.close()
    assert child.exitstatus == 0 and "?" not in child.before and len(listed(db)) == 2
    run("history", "remove", "2", "--yes", "--history", str(db))
    child = spawn("history", "remove", "1", "--history", str(db))
    child.expect_exact("Remove request 1 (openrouter, overuse, asked")
    child.sendline("")  # the default is no
    child.expect(pexpect.EOF)
    child.close()
    assert len(listed(db)) == 1
    child = spawn("history", "remove", "1", "--history", str(db))
    child.expect_exact("[y/N]: ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert listed(db) == []
