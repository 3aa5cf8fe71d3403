"""Answers files, batches, --fail-below and -q: what scripts and CI jobs rely on."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from refundadvisor.cli import app

from helpers import NOW_TEXT

runner = CliRunner()
GOOD = {"charge_type": "topup", "amount": 50, "ago": "2h", "cause": "duplicate-charge"}


def run(*args: str, input: str | None = None, env: dict | None = None):
    return runner.invoke(app, list(args), input=input, env=env)


def check_json(*args: str, input: str | None = None) -> dict:
    result = run("check", "--now", NOW_TEXT, "--json", *args, input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- answers files --------------------------------------------------------------------------------

def test_answers_from_yaml_json_and_stdin_agree(tmp_path):
    (tmp_path / "a.yaml").write_text("charge_type: usage\namount: 12.40\nago: 6h\ncause: platform-error\n"
                                     "evidence: [request-ids, logs]\n")
    (tmp_path / "a.json").write_text(json.dumps({"charge_type": "usage", "amount": 12.4, "ago": "6h",
                                                 "cause": "platform-error", "evidence": ["request-ids", "logs"]}))
    from_yaml = check_json("--answers", str(tmp_path / "a.yaml"))
    from_json = check_json("--answers", str(tmp_path / "a.json"))
    from_stdin = check_json("--answers", "-", input=(tmp_path / "a.json").read_text())
    by_flags = check_json("--charge-type", "usage", "--amount", "12.40", "--ago", "6h", "--cause", "platform-error",
                          "--evidence", "request-ids,logs")
    assert from_yaml["facts"] == from_json["facts"] == from_stdin["facts"] == by_flags["facts"]
    assert from_yaml["likelihood"] == by_flags["likelihood"]


def test_flags_override_the_answers_file(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("charge_type: topup\namount: 50\ncharged_at: 2026-11-01\ncause: duplicate-charge\n")
    document = check_json("--answers", str(path), "--amount", "20", "--ago", "1h")
    assert document["facts"]["amount"] == 20
    assert document["facts"]["hours_since_charge"] == 1


@pytest.mark.parametrize("text, says", [
    ("charge_type: topup\namout: 5\n", "key 'amout': unknown key 'amout' (did you mean 'amount'?)"),
    ("charge_type: topup\namount: lots\nago: 1h\ncause: overuse\n", "key 'amount': 'lots' is not a number"),
    ("charge_type: topup\namount: -5\nago: 1h\ncause: overuse\n", "amount cannot be less than 0"),
    ("charge_type: gift\n", "key 'charge_type': 'gift' is not a valid charge type"),
    ("charge_type: topup\nago: 1h\ncharged_at: 2026-11-01\n", "not both"),
    ("- a list\n", "must be a mapping of fact names to values"),
    ("charge_type: !!python/object/apply:os.system [ls]\n", "error[tag]"),
    ("a: &x 1\nb: *x\n", "error[alias]"),
])
def test_bad_answers_exit_2_naming_the_key(tmp_path, text, says):
    path = tmp_path / "a.yaml"
    path.write_text(text)
    result = run("check", "--answers", str(path))
    assert result.exit_code == 2
    assert says in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_answers_file_exits_2(tmp_path):
    result = run("check", "--answers", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2 and "no answers file at this path" in result.stderr


# --- --fail-below and -q --------------------------------------------------------------------------

def test_fail_below_exits_3_only_below_the_band():
    args = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "9", "--ago", "2d", "--cause"]
    assert run(*args, "dissatisfied", "--fail-below", "likely", "-q").exit_code == 3
    assert run(*args, "platform-error", "--fail-below", "likely", "-q").exit_code == 0
    quiet = run(*args, "dissatisfied", "--fail-below", "likely", "-q")
    assert quiet.stdout == "" and quiet.stderr == ""
    loud = run(*args, "dissatisfied", "--fail-below", "likely", "--json")
    assert loud.exit_code == 3 and json.loads(loud.stdout)["likelihood"]["band"] == "very-unlikely"


def test_fail_below_an_unknown_band_lists_the_bands():
    result = run("check", "--charge-type", "usage", "--amount", "9", "--ago", "2d", "--cause", "overuse",
                 "--fail-below", "probable")
    assert result.exit_code == 2
    assert "use one of very-likely, likely, uncertain, unlikely, very-unlikely" in result.stderr


# --- batch ----------------------------------------------------------------------------------------

def jsonl(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def batch(*args: str, input: str):
    result = run("batch", "-", "--now", NOW_TEXT, *args, input=input)
    return result, [json.loads(line) for line in result.stdout.splitlines()] if "--format" not in args else None


def test_batch_one_result_per_row_in_order_with_ids():
    rows = [{**GOOD, "id": f"r{number}", "amount": number} for number in range(1, 6)]
    result, out = batch(input=jsonl(*rows))
    assert result.exit_code == 0
    assert [item["id"] for item in out] == ["r1", "r2", "r3", "r4", "r5"]
    assert [item["line"] for item in out] == [1, 2, 3, 4, 5]
    assert all(item["ok"] and item["schema_version"] == "4" for item in out)
    assert "refundadvisor batch: 5 rows, 5 assessed (very-likely 5)" in result.stderr


def test_a_bad_row_mid_file_is_reported_and_the_batch_goes_on():
    text = jsonl({**GOOD, "id": "a"}, {**GOOD, "id": "b", "amount": "12,50"}, "{not json", "",
                 {**GOOD, "id": "c", "cause": "bug"}, ["a", "list"], {**GOOD, "id": "d"})
    result, out = batch(input=text)
    assert result.exit_code == 1
    assert [(item["line"], item["ok"]) for item in out] == [(1, True), (2, False), (3, False), (5, False),
                                                             (6, False), (7, True)]
    assert out[1]["error"] == {"key": "amount", "message": "'12,50' uses a comma as the decimal mark; write 12.50"}
    assert out[2]["error"]["message"].startswith("not valid JSON")
    assert "choose one of" in out[3]["error"]["message"]
    assert "must be a JSON object" in out[4]["error"]["message"]
    assert "4 failed (lines 2, 3, 5, 6)" in result.stderr


def test_an_empty_batch_is_fine():
    for text in ("", "\n\n"):
        result, out = batch(input=text)
        assert result.exit_code == 0 and out == []
        assert "0 rows" in result.stderr


def test_csv_in_and_out(tmp_path):
    path = tmp_path / "charges.csv"
    path.write_text("id,charge_type,amount,ago,cause,evidence\n"
                    "x1,topup,50,2h,duplicate-charge,\n"
                    "x2,usage,12.40,6h,platform-error,\"request-ids,logs\"\n"
                    "x3,usage,-1,6h,overuse,\n")
    result = run("batch", str(path), "--format", "csv", "--now", NOW_TEXT)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "id,line,band,score,outcome,checklist_missing,error"
    assert lines[1].startswith("x1,2,very-likely,100,self-serve-refund,")
    assert lines[2].startswith("x2,3,very-likely,100,full-refund,")
    assert lines[3] == "x3,4,,,,,amount cannot be less than 0; got -1"


def test_batch_rows_agree_with_check():
    rows = [GOOD, {"charge_type": "usage", "amount": 80, "ago": "20h", "cause": "runaway-script", "prior_refunds": 1,
                   "similar_prior": 1},
            {"charge_type": "topup", "amount": 30, "charged_at": "2026-11-29", "cause": "unused-credits"}]
    _, out = batch(input=jsonl(*rows))
    for row, item in zip(rows, out):
        single = check_json("--answers", "-", input=json.dumps(row))
        assert item["likelihood"] == {key: single["likelihood"][key] for key in ("band", "label", "score")}
        assert item["outcome"] == {"id": single["outcome"]["id"], "set_by": single["outcome"]["set_by"]}
        assert [reason["rule"] for reason in item["reasons"]] == [reason["rule"] for reason in single["reasons"]]
        assert item["checklist_missing"] == [entry["id"] for entry in single["checklist"] if not entry["have"]]
        assert item["warnings"] == single["warnings"]


def test_batch_fail_below_and_quiet():
    text = jsonl(GOOD, {"charge_type": "usage", "amount": 9, "ago": "2d", "cause": "dissatisfied"})
    result, out = batch("--fail-below", "likely", "-q", input=text)
    assert result.exit_code == 3 and len(out) == 2
    assert result.stderr == ""


def test_many_rows_in_worker_processes_match_one_process(tmp_path):
    rows = [{**GOOD, "id": number, "amount": number % 300, "ago": f"{number % 90 + 1}h",
             "cause": ["duplicate-charge", "overuse", "platform-error"][number % 3]} for number in range(5000)]
    rows[2500] = {"id": "bad", "amount": "x"}
    path = tmp_path / "many.jsonl"
    path.write_text(jsonl(*rows))
    outputs = []
    for jobs in ("1", "2"):
        result = subprocess.run([sys.executable, "-m", "refundadvisor", "batch", str(path), "--now", NOW_TEXT,
                                 "--jobs", jobs], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert "5000 rows, 4999 assessed" in result.stderr and "1 failed (line 2501)" in result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert [json.loads(line)["line"] for line in outputs[0].splitlines()] == list(range(1, 5001))


@pytest.mark.parametrize("make, says", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "none.jsonl", "no such file"),
])
def test_unreadable_batch_input_exits_2(tmp_path, make, says):
    result = run("batch", str(make(tmp_path)))
    assert result.exit_code == 2 and says in result.stderr


def test_binary_batch_input_exits_1(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\x00\x01\x02binary\n")
    result = run("batch", str(path))
    assert result.exit_code == 1 and "binary data" in result.stderr


def test_a_progress_line_on_a_terminal_and_none_otherwise(tmp_path):
    import pexpect

    rows = [{**GOOD, "id": number} for number in range(3000)]
    path = tmp_path / "many.jsonl"
    path.write_text(jsonl(*rows))
    out = tmp_path / "out.jsonl"
    # stderr is the terminal here; stdout goes to a file
    child = pexpect.spawn("bash", ["-c", f"'{sys.executable}' -m refundadvisor batch '{path}' --jobs 1 --now {NOW_TEXT} > '{out}'"],
                          encoding="utf-8", timeout=60, env={**__import__("os").environ, "TERM": "xterm"})
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "assessed" in child.before and "3000 rows, 3000 assessed" in child.before
    # the input's size is known: how far through it, as a share of its size
    assert re.search(r"assessed [\d,]+ rows, \d+% of [\d.,]+ (KB|MB)", child.before), child.before
    assert "\x1b[K" in child.before  # the line is redrawn in place, and cleared at the end
    assert len(out.read_text().splitlines()) == 3000
    quiet = subprocess.run([sys.executable, "-m", "refundadvisor", "batch", str(path), "-q", "--now", NOW_TEXT],
                           capture_output=True, text=True, timeout=60)
    assert quiet.stderr == ""


# --- hostile input: one bad row costs that row, nothing else ---------------------------------------

def _lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("bad", ["[" * 1000 + "]" * 1000, '{"evidence": ' + "[" * 990 + "]" * 990 + "}",
                                 '{"id": ' + "[" * 500 + "]" * 500 + "}", "[" * 100_000, "1" * 5000,
                                 '{"amount": ' + "9" * 5000 + "}"])
def test_a_deeply_nested_or_huge_row_fails_alone(bad):
    rows = [{**GOOD, "id": f"r{number}"} for number in range(2500)]
    rows[1200] = bad
    result = run("batch", "-", "--now", NOW_TEXT, "--jobs", "1", input=jsonl(*rows))
    out = _lines(result)
    assert result.exit_code == 1 and len(out) == 2500
    assert [item["line"] for item in out if not item["ok"]] == [1201]
    assert len(out[1200]["error"]["message"]) < 500
    assert "1 failed (line 1201)" in result.stderr


def test_a_line_longer_than_the_cap_fails_alone_and_is_not_echoed(tmp_path):
    from refundadvisor.batch import LINE_LIMIT

    path = tmp_path / "long.jsonl"
    with path.open("w") as out:
        out.write(jsonl(GOOD, '{"id": "' + "x" * (3 * LINE_LIMIT) + '"}', {**GOOD, "id": "after"}))
    result = run("batch", str(path), "--now", NOW_TEXT)
    out = _lines(result)
    assert [(item["line"], item["ok"]) for item in out] == [(1, True), (2, False), (3, True)]
    assert "longer than 64 KiB, the limit for one row" in out[1]["error"]["message"]
    assert "xxxxxxxxxx" not in result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_bom_on_stdin_is_not_part_of_the_first_row(fmt):
    text = jsonl({**GOOD, "id": "first"}) if fmt == "jsonl" else "id,charge_type,amount,ago,cause\nfirst,topup,5,1h,duplicate-charge\n"
    result = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT, "--format", "csv"],
                           input=b"\xef\xbb\xbf" + text.encode())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("first,")
    assert "1 row, 1 assessed" in result.stderr


ENDINGS = st.sampled_from(["\n", "\r\n"])


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=30)
@given(st.lists(st.tuples(st.booleans(), ENDINGS, st.booleans()), min_size=1, max_size=12))
def test_line_numbers_count_line_endings_only(rows):
    # each row: valid or not, its ending, and a lone CR inside it (outside any string)
    text, expected = "", []
    for number, (valid, ending, lone_cr) in enumerate(rows, 1):
        body = json.dumps({**GOOD, "id": f"r{number}"}) if valid else '{"id": "bad", "amount": "x"}'
        if lone_cr:
            body = body.replace(', "amount"', ',\r "amount"')
        text += body + ending
        expected.append((number, valid))
    result = run("batch", "-", "--now", NOW_TEXT, input=text)
    assert [(item["line"], item["ok"]) for item in _lines(result)] == expected


def test_a_file_with_cr_line_endings_is_read_row_by_row(tmp_path):
    path = tmp_path / "old-mac.jsonl"
    path.write_bytes("\r".join(json.dumps({**GOOD, "id": f"r{number}"}) for number in range(4500)).encode() + b"\r")
    result = run("batch", str(path), "--now", NOW_TEXT)
    out = _lines(result)
    assert result.exit_code == 0 and [item["line"] for item in out] == list(range(1, 4501))


@pytest.mark.parametrize("garbage, says", [
    (b"\x00\x01\x02" * 100, "binary data"),
    (bytes(range(256)) * 40, "binary data"),
    (b"\xff\xfe\x80 not text\n", "not UTF-8 text"),
    (b"hello world\nthis is not a batch\n", "not a CSV header of fact names"),
    (b'{"charge_type": "topup"}\n' + b"\x00" * 200_000, "binary data"),
])
def test_garbage_exits_1_with_one_sentence(garbage, says):
    result = runner.invoke(app, ["batch", "-", "--now", NOW_TEXT], input=garbage)
    assert result.exit_code == 1, result.stderr
    assert says in result.stderr and result.stderr.count("\n") == 1
    assert "0 rows" not in result.stderr


def test_one_row_is_one_row():
    result = run("batch", "-", "--now", NOW_TEXT, input=jsonl({"id": "x", "amount": "y"}))
    assert "refundadvisor batch: 1 row, 0 assessed (none), 1 failed (line 1)" in result.stderr


# --- signals: workers die with the parent, no hang, whole lines, the count said ---------------------

def _interrupt(path, sig, to_group, delay):
    import os
    import signal
    import time

    out_path = path.with_suffix(".out")
    with out_path.open("w") as out:
        child = subprocess.Popen([sys.executable, "-m", "refundadvisor", "batch", str(path), "--jobs", "2", "--now",
                                  NOW_TEXT, "--no-history"], stdout=out, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        time.sleep(delay)
        (os.killpg if to_group else os.kill)(child.pid, sig)
        try:
            _, error = child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            raise AssertionError(f"batch hung after {signal.Signals(sig).name}")
    for _ in range(20):  # the workers are gone (reaped or killed) within a moment
        left = subprocess.run(["pgrep", "-g", str(child.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    return child.returncode, error, out_path.read_text(), left


@pytest.mark.parametrize("sig_name, to_group", [("SIGINT", True), ("SIGTERM", True), ("SIGTERM", False)])
def test_a_signal_stops_the_batch_and_its_workers_with_whole_lines(tmp_path, sig_name, to_group):
    import re
    import signal
    import time

    sig = getattr(signal, sig_name)
    path = tmp_path / "many.jsonl"
    path.write_text(jsonl(*({**GOOD, "id": number} for number in range(60000))))
    for delay in (0.4, 0.9, 1.6):
        code, error, text, left = _interrupt(path, sig, to_group, delay)
        if code == 0:  # finished first on a fast machine: nothing to check
            continue
        assert code in (128 + sig, -sig), error
        assert error.count("\n") <= 1 and "Traceback" not in error and "Error" not in error, error
        if "after writing" not in error:  # the signal came before the batch began: nothing written
            assert text == ""
            continue
        written = int(re.search(r"after writing (\d+) rows? \(whole lines\)", error).group(1))
        assert text.endswith("\n") or text == ""
        assert len(text.splitlines()) == written
        json.loads(text.splitlines()[-1]) if text else None
        assert left == [], "worker processes outlived the batch"


def test_workers_die_when_the_parent_is_killed(tmp_path):
    import os
    import signal
    import time

    path = tmp_path / "many.jsonl"
    path.write_text(jsonl(*({**GOOD, "id": number} for number in range(60000))))
    child = subprocess.Popen([sys.executable, "-m", "refundadvisor", "batch", str(path), "--jobs", "2", "--now",
                              NOW_TEXT, "--no-history"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    time.sleep(1.0)
    workers = subprocess.run(["pgrep", "-P", str(child.pid)], capture_output=True, text=True).stdout.split()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    time.sleep(0.5)
    assert [pid for pid in workers if os.path.exists(f"/proc/{pid}") and
            "Z" not in open(f"/proc/{pid}/stat").read().split(")")[1][:3]] == []


def test_an_endless_line_fails_as_its_row_and_reading_stops(monkeypatch):
    import refundadvisor.batch as batch_module

    monkeypatch.setattr(batch_module, "SKIP_LIMIT", 4 * 1024 * 1024)  # the same rule, at a test's size
    text = jsonl({**GOOD, "id": "before"}) + "y" * (6 * 1024 * 1024)
    result = run("batch", "-", "--now", NOW_TEXT, input=text)
    out = _lines(result)
    assert result.exit_code == 1 and [item["ok"] for item in out] == [True, False]
    assert "goes on for more than 4 MiB; the rest was not read" in out[1]["error"]["message"]


def test_a_huge_row_costs_bounded_memory_and_time(tmp_path):
    # the 64 KiB cap is what keeps memory flat: a 40 MB row is skipped, not kept
    import time

    path = tmp_path / "huge.jsonl"
    with path.open("w") as out:
        out.write(jsonl(GOOD) + '{"id": "' + "x" * 40_000_000 + '"}\n' + jsonl(GOOD))
    probe = ("import resource, subprocess, sys\n"
             f"subprocess.run([sys.executable, '-m', 'refundadvisor', 'batch', {str(path)!r}, '--now', {NOW_TEXT!r}],"
             " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    started = time.monotonic()
    peak_kib = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout)
    assert peak_kib < 100 * 1024, f"{peak_kib} KiB"
    assert time.monotonic() - started < 10


def test_a_quote_left_open_in_csv_fails_its_row_and_keeps_the_rows_before(tmp_path):
    path = tmp_path / "open-quote.csv"
    path.write_text("id,charge_type,amount,ago,cause\na,topup,5,1h,duplicate-charge\n"
                    'b,topup,5,1h,"duplicate-charge\n' + "x" * 100 + "\n" * 2000 + ("y" * 1000 + "\n") * 200)
    result = run("batch", str(path), "--format", "csv", "--now", NOW_TEXT)
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and len(lines) == 3
    assert lines[1].startswith("a,2,very-likely")
    assert lines[2].startswith(",3,,,,,not valid CSV") and "the rest was not read" in lines[2]
    assert "1 failed (line 3)" in result.stderr


def test_a_reader_that_goes_away_ends_the_workers_quietly(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(jsonl(*({**GOOD, "id": number} for number in range(20000))))
    result = subprocess.run(["bash", "-c", f"'{sys.executable}' -m refundadvisor batch '{path}' --jobs 2 --now {NOW_TEXT}"
                             " | head -1; exit ${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["line"] == 1
