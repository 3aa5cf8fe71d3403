"""Hostile rule files and answers files: one located sentence and a documented exit code, never a
traceback, a hang or an unbounded cost (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, strategies as st
from typer.testing import CliRunner

from refundadvisor import rules
from refundadvisor.cli import app
from refundadvisor.rules import read
from refundadvisor.facts import parse_value
from refundadvisor.rules.problems import RulesError

from helpers import NOW, ROOT

runner = CliRunner()
BASE = (ROOT / "tests" / "rules_corpus" / "base.yaml.txt").read_text()
CHECK = ["check", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits", "-q",
         "--now", "2026-11-30T12:00:00Z"]
ANSWERS = "charge_type: topup\namount: {value}\nago: 3h\ncause: unused-credits\n"

# Scalars PyYAML resolves as numbers but whose constructors raise, or that mean something else.
BAD_NUMBERS = ["0x_", "0b_", "!!int abc", "!!float 1e", "!!int 0x", "!!float abc", "1" * 4400, "-" + "9" * 200,
               "1:20", "0o_", "!!int ''", "!!float ''"]


def _one_sentence(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "Error:" not in text.replace("error:", "")
    return text


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_bad_number_in_an_answers_file_is_one_sentence_and_exit_2(tmp_path, value):
    answers = tmp_path / "answers.yaml"
    answers.write_text(ANSWERS.format(value=value))
    result = runner.invoke(app, ["check", "--answers", str(answers), "-q", "--now", "2026-11-30T12:00:00Z"])
    text = _one_sentence(result)
    assert result.exit_code == 2, text
    assert f"{answers}:2:" in text or "key 'amount'" in text  # located: the amount's line, or its key


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_a_bad_number_in_a_rule_file_is_located(tmp_path, value):
    path = tmp_path / "rules.yaml"
    path.write_text(BASE.replace("score: -20", f"score: {value}"))
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert result.exit_code == 1
    line = BASE.splitlines().index("    score: -20") + 1
    assert f"{path}:{line}:" in _one_sentence(result)


def test_a_bad_user_rule_file_gives_every_check_one_sentence(isolated_home):
    config = isolated_home / ".config" / "refundadvisor"
    config.mkdir(parents=True)
    (config / "rules.yaml").write_text(BASE.replace("value: 10", "value: 0x_"))
    result = runner.invoke(app, CHECK)
    text = _one_sentence(result)
    assert result.exit_code == 1 and "rules.yaml:12:" in text and "YAML 1.1 number form" in text


@pytest.mark.parametrize("change, code", [
    (("tests:\n", "refund_estimates:\n  - {id: e, returns: [], note: x}\ntests:\n"), "unknown-fact"),
    (("tests:\n", "refund_estimates:\n  - {id: e, returns: {fact: amount}, note: x}\ntests:\n"), "unknown-fact"),
    (("outcome: good\ntests", "outcome: {any: []}\ntests"), "unknown-outcome"),
    (("checklist: [logs]", "checklist: [{any: []}]"), "unknown-checklist-item"),
    (("scoring:", "always_checklist: [[logs]]\nscoring:"), "unknown-checklist-item"),
    (("{fact: amount, gt: {param: limit}}", "{fact: amount, gt: {param: [limit]}}"), "unknown-parameter"),
])
def test_a_list_or_mapping_where_an_id_belongs_is_a_located_error(tmp_path, change, code):
    path = tmp_path / "rules.yaml"
    path.write_text(BASE.replace(*change, 1))
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert result.exit_code == 1 and f"error[{code}]" in _one_sentence(result)


def test_an_anchor_on_a_key_cannot_be_reused_as_a_value(tmp_path):
    text = BASE.replace("  kind:\n", "  &k kind:\n").replace("{fact: kind, eq: a}", "{fact: *k, eq: a}")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert result.exit_code == 1 and "error[alias]" in result.stdout
    # the same key written out is a valid file: only the alias is refused
    path.write_text(BASE)
    assert runner.invoke(app, ["rules", "validate", str(path)]).exit_code == 0


# -- property tests over scalars -----------------------------------------------------------------

NUMBERISH = st.from_regex(r"\A[-+]?(0[xbo])?[0-9a-fA-F_]{0,6}([.:][0-9_]{0,3})?([eE][-+]?[0-9]{0,3})?\Z", fullmatch=True)
TAGGED = st.builds(lambda tag, text: f"{tag} {text}", st.sampled_from(["!!int", "!!float", "!!bool", "!!null", "!!str"]),
                   st.text(alphabet="0123456789abcdefxXoObB_.:+-eE", max_size=8))
SCALARS = st.one_of(NUMBERISH, TAGGED, st.text(alphabet="0123456789_.:-+eExob~", min_size=1, max_size=12),
                    st.integers(min_value=-(10 ** 120), max_value=10 ** 120).map(str))


@given(SCALARS)
def test_any_scalar_in_an_answers_file_reads_or_is_a_yaml_problem(scalar):
    try:
        document = read.parse(ANSWERS.format(value=scalar), "answers.yaml")
    except read.YamlProblem as problem:
        assert problem.format().startswith("answers.yaml")
        return
    assert isinstance(document.data, dict)


@given(SCALARS, st.sampled_from(["score: -20", "value: 10", "start: 50", "from: 50", "min: 0}", "default: []"]))
def test_any_scalar_anywhere_in_a_rule_file_compiles_or_is_a_rules_error(scalar, where):
    key = where.split(":")[0]
    closing = "}" if where.endswith("}") else ""
    try:
        rules.load_text(BASE.replace(where, f"{key}: {scalar}{closing}", 1), "scalar.yaml")
    except RulesError as error:
        assert error.problems and all(problem.path == "scalar.yaml" for problem in error.problems)


# -- bounded cost --------------------------------------------------------------------------------

def _many_unknown_facts(count: int) -> str:
    facts = "".join(f"  fact_{index}: {{type: number, question: q}}\n" for index in range(count))
    rules_ = "".join(f"  - {{id: r{index}, why: w, source: doc, when: {{fact: fakt_{index}, gt: 1}}, score: 1}}\n"
                     for index in range(count))
    return BASE.replace("facts:\n", "facts:\n" + facts).replace("rules:\n", "rules:\n" + rules_)


@pytest.mark.parametrize("count", [300, 700])
def test_validation_stays_linear_and_lists_a_bounded_number_of_problems(tmp_path, count):
    path = tmp_path / "many.yaml"
    path.write_text(_many_unknown_facts(count))
    started = time.monotonic()
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert time.monotonic() - started < 2
    assert result.exit_code == 1
    assert result.stdout.count("error[unknown-fact]") == 100  # the first hundred, then a count
    assert "error[too-many-problems]" in result.stdout and "more problems not listed" in result.stdout


def test_a_huge_score_range_is_checked_without_walking_it(tmp_path):
    text = BASE.replace("max: 100}", "max: 900000000000}").replace("to: 100,", "to: 900000000000,")
    path = tmp_path / "wide.yaml"
    path.write_text(text.replace("from: 0, to: 49", "from: 0, to: 39"))
    started = time.monotonic()
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert time.monotonic() - started < 2
    assert "error[band-gap]" in result.stdout and "no band covers score 40 (nor 9 others)" in result.stdout


@pytest.mark.parametrize("text", ["[" + "1," * 400_000 + "1]", "a: [" + "{b: 1}," * 100_000 + "]",
                                  "[" * 1000 + "]" * 1000])
def test_a_flood_of_values_is_refused_before_it_is_built(tmp_path, text):
    path = tmp_path / "flood.yaml"
    path.write_text(text)
    for args in (["rules", "validate", str(path)], ["check", "--answers", str(path), "-q"]):
        started = time.monotonic()
        result = runner.invoke(app, args)
        assert time.monotonic() - started < 2
        assert result.exit_code in (1, 2) and ("error[too-large]" in result.output or "error[too-deep]" in result.output)


# -- files that are not regular files ------------------------------------------------------------

def _run(args, env_extra=None, timeout=10):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "refundadvisor", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
def test_a_fifo_where_a_file_is_expected_never_hangs(tmp_path, isolated_home):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for args, code in ((["rules", "validate", str(fifo)], 1), ([*CHECK, "--rules", str(fifo)], 1),
                       (["check", "--answers", str(fifo), "-q"], 2)):
        result = _run(args)  # a hang raises TimeoutExpired
        assert result.returncode == code, (args, result.stderr)
        assert "not a regular file" in result.stdout + result.stderr and "Traceback" not in result.stderr
    # the user's own rule file, the cache's signing key and a cache entry as FIFOs
    config = isolated_home / ".config" / "refundadvisor"
    config.mkdir(parents=True)
    os.mkfifo(config / "rules.yaml")
    result = _run(CHECK)
    assert result.returncode == 1 and "not a regular file" in result.stderr
    os.unlink(config / "rules.yaml")
    data = isolated_home / ".local" / "share" / "refundadvisor"
    data.mkdir(parents=True, exist_ok=True)
    if (data / "cache.key").exists():
        (data / "cache.key").unlink()
    os.mkfifo(data / "cache.key")
    assert _run(CHECK).returncode == 0  # nothing is cached, nothing hangs
    os.unlink(data / "cache.key")
    assert _run(CHECK).returncode == 0  # now a signed entry is cached...
    entries = list((isolated_home / ".cache" / "refundadvisor" / "rules").glob("*.json"))
    assert entries
    for entry in entries:  # ...and swapped for a FIFO
        entry.unlink()
        os.mkfifo(entry)
    result = _run(CHECK)
    assert result.returncode == 0 and "Traceback" not in result.stderr


# -- dates at the calendar's edges, end to end -----------------------------------------------------

@pytest.mark.parametrize("args, code", [
    (["check", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits", "--now", "0001-01-01"], 2),
    (["check", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits", "--now", "9999-12-31"], 2),
    (["check", "--charge-type", "topup", "--amount", "5", "--ago", "5w", "--cause", "unused-credits", "--now", "1900-01-02"], 2),
    (["check", "--charge-type", "topup", "--amount", "5", "--charged-at", "0001-01-01", "--cause", "unused-credits"], 2),
    (["history", "--now", "9999-12-31"], 2),
    (["history", "add", "--cause", "overuse", "--outcome", "denied", "--now", "0001-01-01T00:00:00+05:00"], 2),
    (["history", "add", "--cause", "overuse", "--outcome", "denied", "--asked-at", "9999-12-31T23:00:00-05:00"], 2),
    (["history", "add", "--cause", "overuse", "--outcome", "denied", "--charged-at", "0001-01-01"], 2),
])
def test_a_date_at_the_calendars_edge_is_one_sentence(tmp_path, args, code):
    result = runner.invoke(app, [*args, *(["--history", str(tmp_path / "h.db")] if args[0] == "history" else [])])
    text = _one_sentence(result)
    assert result.exit_code == code, text
    assert "outside the years refundadvisor works with" in text or "further back than any charge" in text


def test_the_first_and_last_years_still_give_answers(tmp_path):
    history = ["--history", str(tmp_path / "h.db")]
    added = runner.invoke(app, ["history", "add", "--cause", "overuse", "--outcome", "denied", "--asked-at", "1900-01-01T00:00:00Z",
                                "--now", "1900-01-02T00:00:00Z", *history])
    assert added.exit_code == 0, added.output
    view = runner.invoke(app, ["history", "--now", "1900-01-02T00:00:00Z", *history])
    assert view.exit_code == 0 and "overuse" in view.output
    late = runner.invoke(app, ["check", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits",
                               "--now", "8999-12-31T12:00:00Z", "--json"])
    assert late.exit_code == 0 and '"9000-' in late.output  # a deadline in the year after


@pytest.mark.parametrize("escape", ["\\e[2J", "\\e]8;;https://evil.example\\aclick\\e]8;;\\a", "\\x07", "\\x9b31m", "\\0"])
def test_a_control_character_in_rule_file_text_is_refused_where_it_is(tmp_path, escape):
    path = tmp_path / "evil.yaml"
    path.write_text(BASE.replace("title: Demo\n", f'title: "Demo {escape}"\n'))
    result = runner.invoke(app, ["check", "--rules", str(path), "--amount", "5", "--fact", "kind=a"])
    text = _one_sentence(result)
    assert result.exit_code == 1 and f"{path}:4:8: error[control-character]" in text
    assert "\x1b" not in text and "\x07" not in text  # the sentence names the character without sending it


@given(st.text(alphabet=st.characters(max_codepoint=0x2ff), max_size=20))
def test_no_parsed_text_holds_a_terminal_control_character(text):
    quoted = '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    try:
        document = read.parse(f"title: {quoted}\n", "t.yaml")
    except read.YamlProblem:
        return
    assert not any(ord(char) < 32 and char not in "\t\n" or 0x7f <= ord(char) <= 0x9f for char in document.data["title"])


def test_an_over_long_config_home_falls_back_and_anything_at_the_config_path_is_reported(isolated_home, monkeypatch):
    from refundadvisor.paths import rules_path

    monkeypatch.setenv("XDG_CONFIG_HOME", "/tmp/" + "a" * 5000)
    assert rules_path()[1] == "bundled"  # no file can be there: the system cannot even look the path up
    assert runner.invoke(app, CHECK).exit_code == 0
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated_home / ".config"))
    (isolated_home / ".config" / "refundadvisor" / "rules.yaml").mkdir(parents=True)
    result = runner.invoke(app, CHECK)  # a folder where the user's rule file goes is said, not skipped
    assert result.exit_code == 1 and "is a directory" in _one_sentence(result)


def test_an_error_past_a_hundred_warnings_still_makes_the_file_unusable(tmp_path):
    idle = "".join(f"  - {{id: idle-{index}, why: w, source: doc, when: {{fact: kind, eq: a}}}}\n" for index in range(150))
    text = BASE.replace("rules:\n", "rules:\n" + idle)  # 150 no-effect warnings, reported as the rules are read
    path = tmp_path / "late.yaml"
    path.write_text(text.replace("expect: {band: high", "expect: {band: nope"))  # one error in the tests, read after
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert result.exit_code == 1 and "error[too-many-problems]" in result.stdout
    path.write_text(text)
    assert runner.invoke(app, ["rules", "validate", str(path)]).exit_code == 0  # warnings alone: usable


def test_an_interview_answer_of_odd_digits_asks_again(ruleset, capsys):
    from refundadvisor.interview import Interview

    answers = iter(["²", "9" * 5000, "1" * 5000 + ",2", "٣", "0", "1"])
    interview = Interview(ruleset, NOW, read=lambda prompt: next(answers))
    assert interview.ask(ruleset.facts["charge_type"], {}) == ruleset.facts["charge_type"].choices[0].id
    said = capsys.readouterr().err
    assert said.count("is not a valid charge type") == 5 and "Traceback" not in said


FALLBACK = {"choice": None, "choices": "none", "number": "5", "integer": "1", "boolean": "yes", "time": "3h"}


@given(st.data())
def test_any_typed_answer_to_any_question_is_taken_or_asked_again(ruleset, data):
    from refundadvisor.interview import BACK_WORDS, HELP_WORDS, UNKNOWN_WORDS, Interview

    spec = data.draw(st.sampled_from(list(ruleset.facts.values())))
    typed = data.draw(st.lists(st.one_of(st.text(max_size=12), st.from_regex(r"\A[0-9²٣,. -]{1,12}\Z", fullmatch=True),
                                         st.sampled_from(["9" * 5000, "1e999999", "0001-01-01", "9999-12-31T23:59"])),
                               max_size=4))
    typed = [text for text in typed if text.strip() and text.strip().lower() not in (*BACK_WORDS, *HELP_WORDS, *UNKNOWN_WORDS)]
    answers = iter([*typed, FALLBACK[spec.type] or spec.choices[0].id])
    interview = Interview(ruleset, NOW, read=lambda prompt: next(answers))
    interview.ask(spec, {"amount": parse_value(ruleset.facts["amount"], "100", NOW)})  # never raises but to go back


@pytest.mark.parametrize("written", ["0x50", "0b101", "1_000", "-0x1", "+1_0.5"])
def test_yaml_1_1_number_forms_are_refused_not_read_as_another_value(written):
    """PyYAML reads 0x50 as 80, 0b101 as 5 and 1_000 as 1000: an amount a user did not mean."""
    with pytest.raises(read.YamlProblem) as problem:
        read.parse(ANSWERS.format(value=written), "answers.yaml")
    assert "yaml11-number" in problem.value.format()
