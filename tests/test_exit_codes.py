"""Every exit code in the table (`refundadvisor --help`, the README) is true, through the real
console entry point: a process per case, as a script sees it. Also: no traceback whatever the
output encoding, usage errors in one sentence, and errors that point the right way."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pexpect
import pytest

from refundadvisor.cli import EXIT_BELOW, EXIT_DATA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from refundadvisor.cli.check import EXIT_CODES

from helpers import NOW_TEXT

PY = sys.executable
BASE = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12", "--ago", "5h", "--cause", "overuse"]


def run(*args: str, stdin: str | bytes = "", env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([PY, "-m", "refundadvisor", *args], input=stdin.encode() if isinstance(stdin, str) else stdin,
                          capture_output=True, timeout=60, env=environment)


def test_the_table_in_the_help_is_the_table_tested():
    help_text = run("--help").stdout.decode()
    assert "Exit codes:" in help_text
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^ +{code} +{re.escape(meaning[:20])}", help_text, re.MULTILINE), code
    assert "Exit codes:" in run("check", "--help").stdout.decode()
    assert {code for code, _ in EXIT_CODES} == {EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_BELOW, EXIT_INTERRUPTED, 143}


def test_0_a_verdict_whatever_its_band():
    result = run("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "9", "--ago", "2d",
                 "--cause", "dissatisfied")
    assert result.returncode == EXIT_OK and b"Very unlikely" in result.stdout


def test_0_a_closed_pipe_with_pipefail():
    command = f"set -o pipefail; '{PY}' -m refundadvisor {' '.join(BASE)} --full | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("args", [BASE + ["--full"], BASE + ["--json"], ["--help"], ["rules", "show"]])
def test_0_a_pipe_closed_before_anything_is_written(args):
    process = subprocess.Popen([PY, "-m", "refundadvisor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first byte
    _, error = process.communicate(timeout=60)
    assert process.returncode == EXIT_OK, error
    assert b"Traceback" not in error and b"Broken pipe" not in error


def test_1_an_invalid_rule_file(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("format: 1\nrules: [\n")
    result = run(*BASE, "--rules", str(bad))
    assert result.returncode == EXIT_DATA and b"error[syntax]" in result.stderr


def test_1_a_batch_row_that_failed():
    result = run("batch", "-", stdin='{"charge_type": "usage", "amount": -3, "ago": "1h", "cause": "overuse"}\n')
    assert result.returncode == EXIT_DATA


@pytest.mark.parametrize("command", [["batch", "-"], ["history", "import", "-"]])
@pytest.mark.parametrize("garbage", [b"hello world\nthis is not a batch\n", bytes(range(256)) * 4, b"\x00\x01\x02"])
def test_garbage_input_is_never_a_success(command, garbage, tmp_path):
    result = run(*command, stdin=garbage, env={"REFUNDADVISOR_HOME": str(tmp_path)})
    assert result.returncode in (EXIT_DATA, EXIT_USAGE), result.stderr
    assert b"imported 0" not in result.stderr and b"Traceback" not in result.stderr


def test_2_a_usage_error_is_one_sentence_with_the_fix():
    result = run("check", "--colour")
    assert result.returncode == EXIT_USAGE
    error = result.stderr.decode()
    assert error.count("\n") == 1 and error.startswith("refundadvisor: error: no such option: --colour")
    assert "did you mean" in error and "--no-color" in error and "'refundadvisor check --help'" in error
    assert "Usage:" not in error


def test_2_a_missing_fact_without_a_terminal():
    result = run("check", "--charge-type", "usage", "--amount", "3")
    assert result.returncode == EXIT_USAGE
    assert b"missing --charged-at (or --ago), --cause; pass them as flags, or run in a terminal" in result.stderr


@pytest.mark.parametrize("args, says", [
    (["--ago", "5"], "--ago: '5' is not a duration (a number alone has no unit"),
    (["--cause", "runaway"], "(did you mean 'runaway-script'?)"),
    (["--cause", "Runaway-Script", "--json"], None),  # ids are read in any case, as everywhere
])
def test_errors_point_the_right_way(args, says):
    base = {"--charge-type": "usage", "--amount": "3", "--ago": "2h", "--cause": "overuse"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [part for pair in base.items() for part in pair if part is not None]
    result = run("check", "--now", NOW_TEXT, *flat, *(["--json"] if "--json" in args else []))
    if says is None:
        assert result.returncode == EXIT_OK, result.stderr
    else:
        assert result.returncode == EXIT_USAGE and says in result.stderr.decode()


def test_a_huge_bad_value_is_not_echoed_in_full():
    result = run("check", "--charge-type", "usage", "--amount", "x" * 5000, "--ago", "1h", "--cause", "overuse")
    assert result.returncode == EXIT_USAGE
    assert len(result.stderr) < 400 and b"5000 characters" in result.stderr


def test_3_below_the_band():
    assert run(*BASE, "--fail-below", "likely", "-q").returncode == EXIT_BELOW


def test_130_ctrl_c_before_a_verdict():
    child = pexpect.spawn(PY, ["-m", "refundadvisor", "check", "--platform", "openrouter"], encoding="utf-8",
                          timeout=20, env={**os.environ, "TERM": "dumb"})
    child.expect_exact("> charge type:")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == EXIT_INTERRUPTED


ENVIRONMENTS = [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"}, {"LANG": "C", "LC_ALL": "C"},
                {"TERM": "dumb"}]


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()))
@pytest.mark.parametrize("args", [
    BASE + ["--full", "--explain"],
    ["check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "50", "--ago", "3h", "--cause", "unused-credits",
     "--evidence", "receipts", "--full"],
    ["draft", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12", "--ago", "5h", "--cause", "overuse",
     "--summary", "Ça a bouclé — “deux fois” ✓"],
    ["draft", "--json", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12", "--ago", "5h", "--cause",
     "platform-error"],
    BASE + ["--json"],
    ["check", "--cause", "é" * 10],
])
def test_no_traceback_whatever_the_encoding(env, args):
    result = run(*args, env=env)
    assert b"Traceback" not in result.stderr and b"UnicodeEncodeError" not in result.stderr, result.stderr[-500:]
    assert result.returncode in (EXIT_OK, EXIT_USAGE)
    if env.get("PYTHONIOENCODING") == "ascii" and result.returncode == EXIT_OK and "--json" not in args:
        result.stdout.decode("ascii")  # pure ASCII: ticks and dashes spelled out


def test_start_up_does_not_import_rich_or_icalendar_for_json():
    code = ("import sys, runpy; sys.argv = ['refundadvisor', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('refundadvisor', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "sys.stderr.write(' '.join(m for m in ('rich', 'icalendar') if m in sys.modules))")
    started = time.perf_counter()
    result = subprocess.run([PY, "-c", code, *BASE, "--json"], capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - started < 30
    assert result.stderr.strip() == "", result.stderr
