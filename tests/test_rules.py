"""Rule files people can trust: strict loading, located errors, the schema, tests in the file."""

from __future__ import annotations

import json
import os
import time

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from refundadvisor.cli import app

from helpers import ROOT

runner = CliRunner()
CORPUS = ROOT / "tests" / "rules_corpus"
BASE = (CORPUS / "base.yaml.txt").read_text()
SCHEMA = json.loads((ROOT / "refundadvisor" / "rules" / "schema.json").read_text())

# Each broken file in the corpus, with the line of its first error and that error's code.
BROKEN = {
    "alias": (34, "alias"),
    "band-gap": (29, "band-gap"),
    "band-overlap": (29, "band-overlap"),
    "band-reversed": (30, "band-range"),
    "between-reversed": (35, "never-holds"),
    "billion-laughs": (1, "alias"),
    "binary": (1, "binary"),
    "cap-out-of-range": (42, "range"),
    "condition-never-holds": (41, "never-holds"),
    "custom-tag": (4, "tag"),
    "deep-nesting": (1, "too-deep"),
    "duplicate-key-in-rule": (37, "duplicate-key"),
    "duplicate-rule-id": (38, "duplicate-id"),
    "duplicate-top-level-key": (51, "duplicate-key"),
    "empty-file": (1, "type"),
    "engine-too-new": (2, "engine-version"),
    "exists-false": (41, "type"),
    "format-unknown": (1, "format"),
    "merge-key": (38, "alias"),
    "missing-when": (38, "missing-key"),
    "missing-why": (38, "missing-key"),
    "not-a-mapping": (1, "type"),
    "operator-fact-type-mismatch": (41, "operator-type"),
    "python-tag": (4, "tag"),
    "reserved-fact": (14, "reserved-fact"),
    "settles-without-floor": (42, "settles-without-floor"),
    "syntax-bad-mapping": (4, "syntax"),
    "syntax-tab-indent": (7, "syntax"),
    "syntax-unclosed-bracket": (38, "syntax"),
    "test-unknown-fact": (46, "unknown-fact"),
    "test-unknown-rule": (47, "unknown-rule"),
    "two-operators": (41, "condition-shape"),
    "unknown-checklist-item": (37, "unknown-checklist-item"),
    "unknown-choice": (41, "unknown-choice"),
    "unknown-evidence-kind": (23, "unknown-evidence-kind"),
    "unknown-fact-type": (14, "unknown-type"),
    "unknown-fact": (35, "unknown-fact"),
    "unknown-operator": (35, "unknown-operator"),
    "unknown-outcome": (43, "unknown-outcome"),
    "unknown-parameter": (35, "unknown-parameter"),
    "unknown-placeholder": (33, "unknown-placeholder"),
    "unknown-source": (40, "unknown-source"),
    "unknown-sureness": (10, "unknown-sureness"),
    "unknown-top-level-key": (31, "unknown-key"),
    "value-type-mismatch": (35, "type"),
    "verified-on-not-a-date": (8, "date"),
    "wrong-type-rules-mapping": (32, "type"),
    "wrong-type-score": (42, "type"),
    "yaml11-octal-number": (42, "yaml11-octal"),
    "yaml11-yes-no": (20, "yaml11-bool"),
}


def test_the_corpus_is_complete():
    assert sorted(path.stem for path in CORPUS.glob("*.yaml")) == sorted(BROKEN)
    assert len(BROKEN) >= 30


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_gives_exit_1_and_a_located_error(name):
    line, code = BROKEN[name]
    path = CORPUS / f"{name}.yaml"
    result = runner.invoke(app, ["rules", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}:" in result.stdout and f"error[{code}]" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["python-tag", "billion-laughs", "unknown-fact", "band-gap", "syntax-tab-indent"])
def test_every_command_that_loads_a_rule_file_exits_1(name):
    path = str(CORPUS / f"{name}.yaml")
    for args in (["check", "--rules", path, "--charge-type", "usage", "--amount", "1", "--ago", "1h", "--cause", "x"],
                 ["rules", "test", path], ["rules", "show", path]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert "error[" in result.stdout + result.stderr


def test_nothing_in_a_rule_file_runs(tmp_path):
    marker = tmp_path / "owned"
    text = BASE.replace("title: Demo\n", f"title: !!python/object/apply:os.system [\"touch {marker}\"]\n")
    (tmp_path / "evil.yaml").write_text(text)
    runner.invoke(app, ["rules", "validate", str(tmp_path / "evil.yaml")])
    assert not marker.exists()


def test_all_errors_are_collected_not_just_the_first(tmp_path):
    text = BASE.replace("{fact: amount, gt:", "{fact: amout, gt:").replace("outcome: good\n", "outcome: great\n")
    text = text.replace("from: 0, to: 49", "from: 0, to: 40")
    (tmp_path / "many.yaml").write_text(text)
    result = runner.invoke(app, ["rules", "validate", str(tmp_path / "many.yaml"), "--format", "json"])
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert {"unknown-fact", "unknown-outcome", "band-gap"} <= {error["code"] for error in document["errors"]}


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text(BASE + "# padding\n" * 400_000)
    started = time.monotonic()
    result = runner.invoke(app, ["rules", "validate", str(huge)])
    assert result.exit_code == 1 and "error[too-large]" in result.stdout
    assert time.monotonic() - started < 2


def test_a_directory_and_a_symlink_loop_are_clear_errors(tmp_path):
    loop = tmp_path / "loop.yaml"
    os.symlink(loop, loop)
    for path, says in ((tmp_path, "is a directory"), (loop, "cannot be read")):
        result = runner.invoke(app, ["rules", "validate", str(path)])
        assert result.exit_code == 1 and says in result.stdout


def test_warnings_fail_only_with_strict(tmp_path):
    path = tmp_path / "warn.yaml"
    path.write_text(BASE.replace("    checklist: [logs]\n", ""))  # the checklist item is now never added
    relaxed = runner.invoke(app, ["rules", "validate", str(path)])
    strict = runner.invoke(app, ["rules", "validate", str(path), "--strict"])
    assert relaxed.exit_code == 0 and "warning[unused-item]" in relaxed.stdout
    assert strict.exit_code == 1


def test_the_bundled_rules_validate_clean_and_their_tests_cover_everything():
    result = runner.invoke(app, ["rules", "validate", str(ROOT / "rules.yaml"), "--strict"])
    assert result.exit_code == 0, result.stdout
    assert "0 warnings" in result.stdout
    tested = runner.invoke(app, ["rules", "test", str(ROOT / "rules.yaml"), "--coverage", "--format", "json"])
    report = json.loads(tested.stdout)
    assert tested.exit_code == 0 and report["failed"] == 0 and report["passed"] >= 8
    assert report["coverage"] == {"uncovered_rules": [], "uncovered_bands": []}


def test_a_failing_rule_test_names_its_line_and_shows_expected_against_actual(tmp_path):
    path = tmp_path / "failing.yaml"
    path.write_text(BASE.replace("expect: {band: low, fired: [big]}", "expect: {band: high, fired: [big, kind-a]}"))
    result = runner.invoke(app, ["rules", "test", str(path)])
    assert result.exit_code == 1
    line = BASE.splitlines().index("  - name: big amounts") + 1
    assert f"{path}:{line}:5: FAILED 'big amounts'" in result.stdout
    assert "band: expected high, got low" in result.stdout
    assert "fired: expected kind-a to fire" in result.stdout
    assert result.stdout.strip().endswith("1 passed, 1 failed")


def test_rule_examples_run_as_tests_and_imply_the_rule_fires(tmp_path):
    path = tmp_path / "examples.yaml"
    path.write_text(BASE.replace("    outcome: good\n", "    outcome: good\n    examples:\n      - facts: {amount: 1, kind: b}\n"))
    result = runner.invoke(app, ["rules", "test", str(path)])
    assert result.exit_code == 1
    assert "example of kind-a" in result.stdout and "expected kind-a to fire" in result.stdout


def test_coverage_lists_what_no_test_exercises(tmp_path):
    path = tmp_path / "thin.yaml"
    path.write_text(BASE.split("tests:")[0] + "tests:\n  - name: only big\n    facts: {amount: 50, kind: b}\n    expect: {band: low}\n")
    result = runner.invoke(app, ["rules", "test", str(path), "--coverage"])
    assert result.exit_code == 0
    assert "rules no test exercises: kind-a" in result.stdout
    assert "bands no test reaches: high" in result.stdout


def test_rules_show_lists_the_tables():
    result = runner.invoke(app, ["rules", "show", "--no-color"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for text in ("Facts", "cause: the ids", "evidence: the ids", "Policy parameters", "refund_window_hours",
                 "Rules (in the order they apply)", "unused-credits-in-window", "Bands", "very-likely"):
        assert text in result.stdout, text


def test_the_schema_is_draft_07_with_a_description_on_every_property():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(SCHEMA, "$")
    assert missing == []


def test_the_editor_and_the_cli_agree_on_the_bundled_rules():
    text = (ROOT / "rules.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=refundadvisor/rules/schema.json")
    jsonschema.validate(yaml.safe_load(text), SCHEMA)


@pytest.mark.parametrize("name", ["unknown-top-level-key", "wrong-type-score", "unknown-fact-type", "missing-why",
                                  "two-operators", "format-unknown", "exists-false", "unknown-sureness"])
def test_the_schema_also_rejects_structural_mistakes(name):
    data = yaml.safe_load((CORPUS / f"{name}.yaml").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_rules_schema_prints_the_shipped_schema():
    result = runner.invoke(app, ["rules", "schema"])
    assert json.loads(result.stdout) == SCHEMA


def test_the_schema_and_the_validator_name_the_same_keys():
    """The structure is written twice (the JSON Schema for editors, the validator for located
    errors): they must agree on every section, rule and fact key, so neither drifts."""
    from refundadvisor.rules.compile import FACT_KEYS, RULE_KEYS, TOP_KEYS

    assert set(SCHEMA["properties"]) == set(TOP_KEYS)
    assert set(SCHEMA["properties"]["rules"]["items"]["properties"]) == set(RULE_KEYS)
    assert set(SCHEMA["definitions"]["fact"]["properties"]) == set(FACT_KEYS)
