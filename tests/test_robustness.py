"""Never a traceback, never a hang: random argument vectors, random answers files and random
mutations of rules.yaml always end in a verdict or one clear sentence and a documented exit code.

Examples per property: HYPOTHESIS_PROFILE=ci (the default here, a few hundred) or
HYPOTHESIS_PROFILE=thorough (thousands) for a run by hand.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from refundadvisor.cli import app

from helpers import NOW_TEXT, ROOT

runner = CliRunner()
DOCUMENTED_EXITS = {0, 1, 2, 3, 130, 143}
RULES_TEXT = (ROOT / "platforms" / "openrouter.yaml").read_text()
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)


def invoke(args: list[str], input: str | None = None):
    result = runner.invoke(app, args, input=input)
    # anything but a clean exit is an escaped exception: a traceback for the user
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert result.exit_code in DOCUMENTED_EXITS, (args, result.exit_code)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code not in (0, 3):
        assert result.stderr.strip() or result.stdout.strip(), args  # a failure always says why
    return result


# --- random argument vectors ----------------------------------------------------------------------

WEIRD_TEXT = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "1e308", "NaN", "inf", "-inf", "12,50", "0.30000000000000004", "9" * 40,
                     "2026-02-29", "2024-02-29", "2026-11-30T25:00", "1d12h", "0m", "99999999999w", "yes", "none",
                     "topup", "usage", "duplicate-charge", "platform-error", "logs,receipts", "logs,,", "crypto",
                     "team", "likely", "very-unlikely", "--json", "-", "\x00", "é", "💸", "a" * 300]),
    st.text(max_size=20),
)
FLAGS = ["--charge-type", "--amount", "--charged-at", "--ago", "--cause", "--payment-method", "--unused",
         "--prior-refunds", "--similar-prior", "--profile", "--usage-span-days", "--evidence", "--fail-below", "--now",
         "--rules", "--platform", "--prior-denials", "--requests-90d", "--summary", "--format", "--outcome",
         "--returned", "--asked-at", "--note", "--answers", "--jobs", "--min-agreement"]
SWITCHES = ["--warned", "--not-warned", "--json", "--explain", "--no-input", "--no-color", "-q", "--help", "--record",
            "--no-history", "--yes", "--coverage", "--strict", "--all"]
COMMANDS = [["check"], ["draft"], ["batch", "-"], ["rules", "validate"], ["rules", "test"], ["rules", "show"],
            ["rules", "schema"], ["rules", "list"], ["rules", "cases"], ["history"], ["history", "list"], ["history", "add"],
            ["history", "update", "1"], ["history", "remove", "1"], ["history", "export"], ["history", "import", "-"],
            [], ["--version"], ["nonsense"]]


@st.composite
def argument_vectors(draw):
    argv = list(draw(st.sampled_from(COMMANDS)))
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            flag = draw(st.sampled_from(FLAGS))
            value = draw(WEIRD_TEXT)
            if flag == "--rules" and draw(st.booleans()):
                value = str(ROOT / "platforms" / "openrouter.yaml")
            if flag == "--platform" and draw(st.booleans()):
                value = draw(st.sampled_from(["openrouter", "openai", "anthropic"]))
            argv += [flag, value]
        else:
            argv.append(draw(st.sampled_from(SWITCHES)))
    return argv


@SETTINGS
@given(argv=argument_vectors())
def test_random_argument_vectors(argv):
    result = invoke(argv, input="")
    if "--json" in argv and result.exit_code == 0 and argv[:1] == ["check"] and "--help" not in argv \
            and "-q" not in argv:
        assert "band" in json.loads(result.stdout)["likelihood"]


VALID = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12", "--ago", "5h", "--cause", "overuse"]


@SETTINGS
@given(flag=st.sampled_from(FLAGS[:12]), value=WEIRD_TEXT)
def test_one_weird_value_in_an_otherwise_valid_check(flag, value):
    argv = [item for item in VALID]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    if flag == "--charged-at":
        argv = [item for index, item in enumerate(argv) if item != "--ago" and argv[index - 1] != "--ago"]
    result = invoke(argv + ["--json"])
    if result.exit_code == 0:
        document = json.loads(result.stdout)
        assert document["likelihood"]["band"]
        assert all(not isinstance(value, float) or math.isfinite(value) for value in document["facts"].values())
    else:
        assert result.exit_code == 2 and result.stderr.startswith("refundadvisor: error: ")
        assert result.stderr.count("\n") == 1


# --- random answers files -------------------------------------------------------------------------

ANSWER_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.lists(st.text(max_size=10), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["topup", "usage", "overuse", "platform-error", "card", "crypto", "solo", "5h", "2026-11-29",
                     "2026-11-29T14:30", 1e308, -1, 0, 10**30]),
)
ANSWER_KEYS = st.sampled_from(["charge_type", "amount", "charged_at", "ago", "cause", "payment_method", "unused",
                               "prior_refunds", "similar_prior", "warned", "profile", "usage_span_days", "evidence",
                               "id", "amout", "", "🙂"])


@SETTINGS
@given(answers=st.dictionaries(ANSWER_KEYS, ANSWER_VALUES, max_size=10))
def test_random_answers_files(answers):
    text = json.dumps(answers, allow_nan=True)
    result = invoke(["check", "--answers", "-", "--json", "--now", NOW_TEXT], input=text)
    if result.exit_code == 0:
        assert json.loads(result.stdout)["likelihood"]["band"]
    else:
        assert result.exit_code == 2


@SETTINGS
@given(rows=st.lists(st.dictionaries(ANSWER_KEYS, ANSWER_VALUES, max_size=8), max_size=6),
       junk=st.lists(st.text(max_size=20), max_size=3))
def test_random_batches(rows, junk):
    lines = [json.dumps(row, allow_nan=True) for row in rows] + junk
    result = invoke(["batch", "-", "--now", NOW_TEXT], input="\n".join(lines) + "\n")
    results = [json.loads(line) for line in result.stdout.splitlines()]
    if result.exit_code == 1 and not results:  # refused whole: binary data, or no rows at all (no CSV header)
        assert result.stderr.count("\n") == 1
        assert "binary data" in result.stderr or "is not a CSV header of fact names" in result.stderr
        return
    assert result.exit_code in (0, 1)
    assert all(item["ok"] or item["error"]["message"] for item in results)
    assert (result.exit_code == 1) == any(not item["ok"] for item in results)


@SETTINGS
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_random_text_as_answers(text):
    invoke(["check", "--answers", "-", "--now", NOW_TEXT, "--json"], input=text)


# --- random mutations of rules.yaml ---------------------------------------------------------------

RULE_LINES = RULES_TEXT.splitlines()
REPLACEMENTS = ["", "- ", ": ", "{", "}", "[", "]", "&a", "*a", "!!python/none", "no", "010", "-1", "1e400",
                "fact: amount", "gt: 5", "eq: nonsense", "cap: 500", "score: x", "when: {}", "\t", "'", "\""]


@st.composite
def mutated_rules(draw):
    lines = list(RULE_LINES)
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "swap"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "swap" and index + 1 < len(lines):
            lines[index], lines[index + 1] = lines[index + 1], lines[index]
        else:
            line = lines[index]
            cut = draw(st.integers(0, len(line)))
            piece = draw(st.sampled_from(REPLACEMENTS))
            lines[index] = line[:cut] + piece + (line[cut:] if action == "insert" else line[cut + len(piece):])
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=mutated_rules())
def test_random_mutations_of_the_rules(tmp_path, text):
    path = tmp_path / "mutated.yaml"
    path.write_text(text)
    validated = invoke(["rules", "validate", str(path)])
    assert validated.exit_code in (0, 1)
    checked = invoke(["check", "--rules", str(path), "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12",
                      "--ago", "5h", "--cause", "overuse", "--json"])
    assert checked.exit_code in (0, 1, 2)
    if validated.exit_code == 1:
        assert checked.exit_code == 1 or "warning" in validated.stdout
    tested = invoke(["rules", "test", str(path)])
    assert tested.exit_code in (0, 1)


# --- hostile files: a clear error, quickly, in little memory --------------------------------------

HOSTILE = {
    "billion-laughs": "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                      + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
                                for i in range(8)),
    "deep-flow": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep-block": "".join(" " * i + "k:\n" for i in range(1400)),
    "binary": "\x00\x01\x02\x03" * 1000,
}


# A child's peak memory on Linux starts from its parent's size at fork, and this test process is
# large by now; a small launcher process runs the command and reports the command's own peak.
LAUNCHER = """
import resource, subprocess, sys, time
started = time.monotonic()
result = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=30)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - started, result.returncode,
      file=sys.stderr)
"""


def _measure(args: list[str]) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall time, the peak memory (KiB) of the command itself, and its result."""
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "refundadvisor", *args],
                              capture_output=True, text=True, timeout=60)
    *messages, figures = launched.stderr.rstrip("\n").split("\n")
    peak, elapsed, code = figures.split()
    result = subprocess.CompletedProcess(args, int(code), launched.stdout, "\n".join(messages))
    return float(elapsed), int(peak), result


@pytest.mark.parametrize("name", sorted(HOSTILE) + ["60-MB", "directory", "symlink-loop", "fifo-with-no-writer"])
@pytest.mark.parametrize("how", ["rules", "answers"])
def test_hostile_files(tmp_path, name, how):
    import os

    path = tmp_path / "hostile.yaml"
    if name == "60-MB":
        with open(path, "w") as handle:
            handle.write("a: b\n" * 12_000_000)
    elif name == "directory":
        path = tmp_path
    elif name == "symlink-loop":
        os.symlink(path, path)
    elif name == "fifo-with-no-writer":
        os.mkfifo(path)
        # a FIFO with no writer would block forever on open: a writer that closes at once ends it
        import threading

        threading.Thread(target=lambda: open(path, "w").close(), daemon=True).start()
    else:
        path.write_text(HOSTILE[name], encoding="latin-1")
    if how == "rules":
        args = ["rules", "validate", str(path)]
    else:
        args = ["check", "--answers", str(path), "--json"]
    elapsed, peak_kib, result = _measure(args)
    assert result.returncode == (1 if how == "rules" else 2), result.stderr
    assert "Traceback" not in result.stderr
    assert "error" in result.stdout + result.stderr
    assert elapsed < 2, elapsed
    assert peak_kib < 200 * 1024, peak_kib


# --- time and money at the edges ------------------------------------------------------------------

def check(*args: str):
    return runner.invoke(app, ["check", "--now", NOW_TEXT, "--json", "--charge-type", "topup", "--cause",
                               "unused-credits", *args])


def test_money_in_the_output_is_exact():
    document = json.loads(check("--amount", "0.30", "--unused", "0.1", "--ago", "1h").stdout)
    assert document["facts"]["amount"] == 0.3 and document["facts"]["unused"] == 0.1
    text = check("--amount", "0.1", "--unused", "0.1", "--ago", "1h").stdout
    assert "0.30000000000000004" not in text and "0.1000000" not in text


def test_the_window_edges():
    assert json.loads(check("--amount", "5", "--ago", "0m").stdout)["outcome"]["id"] == "self-serve-refund"
    assert json.loads(check("--amount", "5", "--ago", "24h").stdout)["outcome"]["id"] == "self-serve-refund"
    assert json.loads(check("--amount", "5", "--ago", "25h").stdout)["outcome"]["id"] == "decline-likely"
    assert json.loads(check("--amount", "5", "--ago", "24h1m").stdout)["outcome"]["id"] == "decline-likely"


@pytest.mark.parametrize("args, says", [
    (["--amount", "-5", "--ago", "1h"], "cannot be less than 0"),
    (["--amount", "NaN", "--ago", "1h"], "not a finite number"),
    (["--amount", "1e308", "--ago", "1h"], "too large"),
    (["--amount", "12,50", "--ago", "1h"], "write 12.50"),
    (["--amount", "5", "--ago", "99999999999w"], "further back than any charge"),
    (["--amount", "5", "--charged-at", "2026-12-01"], "in the future"),
    (["--amount", "5", "--charged-at", "2026-02-29"], "not a date or time"),
    (["--amount", "5", "--ago", "1h", "--prior-refunds", "9999999999"], "too large"),
])
def test_edges_are_refused_with_a_sentence(args, says):
    result = check(*args)
    assert result.exit_code == 2 and says in result.stderr


def test_a_charge_across_a_daylight_saving_change(monkeypatch):
    import time as clock

    monkeypatch.setenv("TZ", "Europe/Berlin")
    clock.tzset()
    # clocks went back at 03:00 on 2026-10-25: 01:30 was still summer time (UTC+2), 23:30 UTC the
    # day before, so 12.5 hours to 12:00 UTC; a winter-time reading would give 11.5
    result = runner.invoke(app, ["check", "--now", "2026-10-25T12:00:00Z", "--json", "--charge-type", "topup",
                                 "--cause", "unused-credits", "--amount", "5", "--charged-at", "2026-10-25T01:30"])
    assert json.loads(result.stdout)["facts"]["hours_since_charge"] == 12.5
