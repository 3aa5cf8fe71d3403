"""Rule files in layers: `extends:` merges strictly, reports problems at their own file, line and
column, and never replaces anything silently."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import NOW_TEXT
from refundadvisor.cli import app
from refundadvisor.rules import RulesError, load

runner = CliRunner()
CHECK = ["check", "--json", "--now", NOW_TEXT, "--charge-type", "usage", "--amount", "30", "--ago", "2h",
         "--cause", "platform-error"]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path) -> list:
    with pytest.raises(RulesError) as raised:
        load(str(path))
    return [problem for problem in raised.value.problems if problem.severity == "error"]


def test_a_users_file_builds_on_a_bundled_platform_and_replaces_only_what_it_names(tmp_path):
    path = write(tmp_path, "mine.yaml", "format: 1\nextends: openrouter\noverrides: [rules.first-request]\n"
                                        "rules:\n  - id: first-request\n    why: Never asked before.\n"
                                        "    source: seed-history\n    when: {fact: prior_refunds, eq: 0}\n    score: 30\n")
    document = json.loads(runner.invoke(app, [*CHECK, "--rules", str(path)]).stdout)
    first = next(reason for reason in document["reasons"] if reason["rule"] == "first-request")
    assert first["score"] == 30 and first["why"] == "Never asked before."
    assert [layer["path"].rsplit("/", 1)[-1] for layer in document["rules"]["layers"]] == \
           ["mine.yaml", "openrouter.yaml", "rules.yaml"]


def test_a_collision_not_listed_under_overrides_is_an_error_at_its_line(tmp_path):
    path = write(tmp_path, "mine.yaml", "format: 1\nextends: openrouter\ntitle: Mine\n")
    [problem] = problems_of(path)
    assert (problem.code, problem.line, problem.path) == ("override-needed", 3, str(path))
    assert "list 'title' under 'overrides:'" in problem.message


def test_an_override_that_replaces_nothing_is_an_error(tmp_path):
    path = write(tmp_path, "mine.yaml", "format: 1\nextends: openrouter\noverrides: [rules.no-such-rule]\n")
    [problem] = problems_of(path)
    assert problem.code == "override-unused" and problem.line == 3


def test_a_problem_in_a_base_is_reported_in_the_base(tmp_path):
    base = write(tmp_path, "base.yaml", "format: 1\nfacts:\n  amount: {type: numbr, question: How much?}\n")
    top = write(tmp_path, "top.yaml", "format: 1\nextends: base.yaml\nplatform: x\n")
    errors = problems_of(top)
    assert any(problem.path == str(base) and problem.line == 3 and problem.code == "unknown-type" for problem in errors)


def test_loops_missing_files_and_bad_narrowing_are_errors(tmp_path):
    write(tmp_path, "a.yaml", "format: 1\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "format: 1\nextends: a.yaml\n")
    assert problems_of(tmp_path / "a.yaml")[0].code == "extends-loop"
    missing = write(tmp_path, "c.yaml", "format: 1\nextends: nowhere.yaml\n")
    assert problems_of(missing)[0].code == "extends-missing"
    narrow = write(tmp_path, "d.yaml", "format: 1\nextends: openrouter\nfacts:\n  payment_method: {only: [cash]}\n")
    assert problems_of(narrow)[0].code == "unknown-choice"


def test_the_shared_file_is_a_base_not_a_platform():
    from helpers import ROOT

    result = runner.invoke(app, [*CHECK, "--rules", str(ROOT / "rules.yaml")])
    assert result.exit_code == 2 and "holds the shared heuristics" in result.stderr
    shown = runner.invoke(app, ["rules", "show", str(ROOT / "rules.yaml")])
    assert shown.exit_code == 0


def test_rules_show_says_where_each_piece_comes_from():
    text = runner.invoke(app, ["rules", "show", "--platform", "openai"], env={"COLUMNS": "200"}).stdout
    assert "Built from:" in text
    line = next(line for line in text.splitlines() if "credits-non-refundable" in line)
    assert "openai.yaml" in line
    line = next(line for line in text.splitlines() if " first-request " in line)
    assert "rules.yaml" in line


def test_the_bundled_platform_files_share_no_block_of_six_lines():
    """The heuristics are written once: no run of six meaningful lines repeats across the files."""
    from helpers import ROOT

    files = [ROOT / "rules.yaml", *sorted((ROOT / "platforms").glob("*.yaml"))]
    seen: dict[tuple, str] = {}
    repeated = []
    for path in files:
        lines = [" ".join(line.split()) for line in path.read_text().splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        for start in range(len(lines) - 5):
            block = tuple(lines[start:start + 6])
            if block in seen and seen[block] != path.name:
                repeated.append(f"{seen[block]} and {path.name}: {block[0]!r}")
            seen.setdefault(block, path.name)
    assert not repeated, repeated
