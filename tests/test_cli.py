"""The command line: flags, the JSON document, exit codes, and never prompting without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from refundadvisor import __version__
from refundadvisor.cli import app

from helpers import NOW_TEXT, ROOT

runner = CliRunner()
BASE = ["check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "12.40", "--ago", "6h",
        "--cause", "platform-error"]


def run(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def run_json(*args: str) -> dict:
    result = run(*BASE, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_document_keys_are_pinned():
    document = run_json()
    assert list(document) == ["schema_version", "tool", "platform", "likelihood", "outcome", "reasons", "limits",
                              "checklist", "next_steps", "warnings", "deadlines", "refund_estimate", "policy", "rules",
                              "facts", "fact_origins", "facts_unused", "history", "disclaimer"]
    assert document["schema_version"] == "4"
    assert document["deadlines"] == []  # usage is not a payment: no card-dispute window is counted from it
    topup = json.loads(run("check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "20", "--ago", "2h",
                           "--cause", "unused-credits", "--json").stdout)
    assert set(topup["deadlines"][0]) == {"id", "what", "closes_at", "source", "approximate", "closed",
                                          "may_be_open_until"}
    assert set(document["refund_estimate"]) == {"id", "amount", "currency", "up_to", "note"}
    assert set(document["likelihood"]) == {"band", "label", "score", "score_range", "note"}
    assert set(document["outcome"]) == {"id", "text", "set_by"}
    assert set(document["reasons"][0]) == {"rule", "effect", "why", "score", "cap", "floor", "outcome", "sources"}
    assert set(document["checklist"][0]) == {"id", "item", "why", "have"}
    assert set(document["policy"]) == {"name", "verified_on", "note", "sources"}
    assert set(document["rules"]) == {"path", "sha256", "chosen_by", "layers"}
    assert [layer["path"].rsplit("/", 1)[-1] for layer in document["rules"]["layers"]] == ["openrouter.yaml", "rules.yaml"]


def test_json_carries_the_verdict_and_normalised_facts():
    document = run_json("--evidence", "request-ids")
    assert document["likelihood"]["band"] == "very-likely"
    assert document["outcome"]["id"] == "full-refund"
    facts = document["facts"]
    assert facts["hours_since_charge"] == 6
    assert facts["charged_at"] == "2026-11-30T06:00:00Z"
    assert facts["amount"] == 12.4
    assert facts["evidence"] == ["request-ids"]
    assert document["policy"]["verified_on"] == "2026-11-30"
    assert any(source["url"] == "https://openrouter.ai/docs/faq" for source in document["policy"]["sources"])
    assert len(document["rules"]["sha256"]) == 64


def test_json_stdout_is_only_json_and_has_no_colour():
    result = run(*BASE, "--json", env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in result.stdout
    json.loads(result.stdout)
    assert result.stderr == ""


def test_human_output_says_what_a_person_needs():
    result = run(*BASE, "--full")
    assert result.exit_code == 0
    out = result.stdout
    # a platform error with nothing to show it yet is not the top band
    for text in ("Likely", "score", "not a probability", "Expected outcome", "Why", "Checklist",
                 "Next steps", "Warnings", "OpenRouter refund policy, checked 2026-11-30",
                 "not a guarantee"):
        assert text in out, text
    assert "\x1b[" not in out


def test_low_verdict_still_exits_zero():
    result = run("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "9", "--ago", "2d",
                 "--cause", "dissatisfied", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["likelihood"]["band"] == "very-unlikely"


@pytest.mark.parametrize("args, says", [
    (["--amount", "-3"], "--amount: amount cannot be less than 0"),
    (["--amount", "12,50"], "write 12.50"),
    (["--amount", "NaN"], "not a finite number"),
    (["--cause", "bug"], "choose one of: unused-credits"),
    (["--charge-type", "gift"], "choose one of: topup, usage, subscription"),
    (["--ago", "3y"], "not a duration"),
    (["--prior-refunds", "1", "--similar-prior", "2"], "--similar-prior: similar prior cannot be more"),
    (["--evidence", "logs,selfie"], "'selfie'"),
    (["--charged-at", "2026-11-29"], "not both"),
])
def test_bad_input_is_one_sentence_and_exit_2(args, says):
    result = run(*BASE, *args)
    assert result.exit_code == 2
    assert says in result.stderr
    assert result.stderr.startswith("refundadvisor: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("when, says", [("2027-01-01", "in the future"), ("soon", "not a date or time")])
def test_bad_charge_time(when, says):
    result = run("check", "--charge-type", "usage", "--amount", "3", "--cause", "overuse", "--charged-at", when)
    assert result.exit_code == 2
    assert f"--charged-at: {when!r} " in result.stderr and says in result.stderr


def test_missing_facts_without_a_terminal_name_the_flags():
    result = run("check", "--charge-type", "usage", "--amount", "3")
    assert result.exit_code == 2
    assert "missing --charged-at (or --ago), --cause" in result.stderr


def test_no_command_without_a_terminal_does_not_wait():
    result = subprocess.run([sys.executable, "-m", "refundadvisor"], capture_output=True,
                            text=True, timeout=20, input="topup\n")
    assert result.returncode == 2
    assert "missing --charge-type, --amount, --charged-at (or --ago), --cause" in result.stderr


def test_unknown_flag_is_a_usage_error():
    result = run("check", "--colour")
    assert result.exit_code == 2


@pytest.mark.parametrize("args, choices", [
    (["draft", "--format", "pdf"], "'text', 'markdown'"),
    (["batch", "-", "--format", "xml"], "'jsonl', 'csv'"),
    (["batch", "-", "--input-format", "xml"], "'auto', 'jsonl', 'csv'"),
    (["history", "export", "--format", "tsv"], "'jsonl', 'csv'"),
    (["history", "import", "-", "--format", "tsv"], "'auto', 'jsonl', 'csv'"),
    (["rules", "validate", "--format", "yaml"], "'text', 'json'"),
    (["rules", "test", "--format", "yaml"], "'text', 'json'"),
    (["rules", "list", "--format", "yaml"], "'text', 'json'"),
])
def test_a_format_not_offered_is_a_usage_error_naming_the_choices(args, choices):
    result = run(*args)
    assert result.exit_code == 2
    assert f"is not one of {choices}" in result.stderr


def test_invalid_rule_file_exits_1_with_a_located_message(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("format: 1\nrules: [\n")
    result = run(*BASE, "--rules", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3:1: error[syntax]" in result.stderr


def test_missing_rule_file_exits_1(tmp_path):
    result = run(*BASE, "--rules", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "no rule file at this path" in result.stderr


def test_rules_from_the_environment_and_the_user_config(tmp_path, isolated_home):
    # a user's own file builds on a bundled platform and replaces what it names
    custom = "format: 1\nextends: openrouter\noverrides: [title]\ntitle: My Copy\n"
    env_file = tmp_path / "env-rules.yaml"
    env_file.write_text(custom)
    document = json.loads(run(*BASE, "--json", env={"REFUNDADVISOR_RULES": str(env_file)}).stdout)
    assert (document["platform"]["title"], document["rules"]["chosen_by"]) == ("My Copy", "REFUNDADVISOR_RULES")
    config = isolated_home / ".config" / "refundadvisor"
    config.mkdir(parents=True)
    (config / "rules.yaml").write_text(custom.replace("My Copy", "From Config"))
    document = json.loads(run(*BASE, "--json").stdout)
    assert (document["platform"]["title"], document["rules"]["chosen_by"]) == ("From Config", "user config")


def test_version_and_help():
    assert run("--version").stdout.strip() == f"refundadvisor {__version__}"
    for flag in ("-h", "--help"):
        result = run(flag)
        assert result.exit_code == 0
        assert "Examples:" in result.stdout and "refundadvisor check" in result.stdout
    # examples stay whole lines, whatever the terminal width
    assert "refundadvisor check --charge-type topup --amount 50 --ago 3h --cause duplicate-charge\n" in run("-h").stdout
    check_help = run("check", "-h").stdout
    for option in ("--charge-type", "--amount", "--charged-at", "--ago", "--cause", "--payment-method", "--unused",
                   "--prior-refunds", "--similar-prior", "--warned", "--not-warned", "--profile",
                   "--usage-span-days", "--evidence", "--json", "--no-input", "--rules", "--explain"):
        assert option in check_help, option


def test_console_script_and_module_run_the_same(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "refundadvisor")
    args = BASE + ["--json"]
    by_script = subprocess.run([script, *args], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    by_module = subprocess.run([sys.executable, "-m", "refundadvisor", *args], capture_output=True, text=True,
                               timeout=30, cwd=tmp_path)
    assert by_script.returncode == by_module.returncode == 0
    assert json.loads(by_script.stdout)["likelihood"] == json.loads(by_module.stdout)["likelihood"]


def test_closed_pipe_ends_quietly():
    command = f"'{sys.executable}' -m refundadvisor {' '.join(BASE)} | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr


def test_explain_shows_every_rule_its_conditions_and_the_score_steps():
    result = run("check", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "80", "--ago", "20h",
                 "--cause", "runaway-script", "--explain", env={"COLUMNS": "200"})
    out = result.stdout
    assert "fired used-credits-not-refundable" in out
    assert "not   unused-credits-in-window" in out
    assert "✗ charge_type eq topup  (got usage)" in out
    assert "? unused gt 0  (got nothing: the fact is not set)" in out
    assert "start = 50 → +10 reported-quickly = 60" in out
    assert "cap 15 used-credits-not-refundable = 15" in out


def test_explain_in_json_is_under_trace(ruleset):
    document = run_json("--explain")
    trace = document["trace"]
    assert [rule["rule"] for rule in trace["rules"]] == [rule.id for rule in ruleset.rules]
    unused = next(rule for rule in trace["rules"] if rule["rule"] == "unused-credits-in-window")
    assert unused["fired"] is False
    assert {"test": "unused gt 0", "got": None, "result": "unknown"} in unused["tests"]
    assert trace["steps"][0] == {"step": "start", "score": 50, "rule": None}
    assert trace["steps"][-1]["step"].startswith("band likely")  # capped: no evidence of the error yet
    assert "trace" not in run_json()
