"""The case library: real refund requests whose band must keep agreeing with what support did.

AGREEMENT is the figure the bundled library reached when it was last measured (README, "How
often the advice holds up"); the test fails when a change to the rules lowers it.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import ROOT
from refundadvisor import cases
from refundadvisor.cli import app
from refundadvisor.paths import bundled_cases, bundled_platforms
from refundadvisor.rules.cache import load

runner = CliRunner()
CASES = ROOT / "cases"
AGREEMENT = 72.9  # percent: 27 of 37 cases, measured 2026-12-02 with the Anthropic rules re-grounded (README)


def bundled_files() -> list[cases.CaseFile]:
    return [cases.load_case_file(path) for path in cases.case_files([str(CASES)])]


def test_the_command_runs_the_shipped_library_by_default():
    assert bundled_cases() == CASES
    result = runner.invoke(app, ["rules", "cases", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["cases"] == sum(len(case_file.cases) for case_file in bundled_files())
    assert all(row["error"] is None for row in document["results"]), "every case is assessable"
    assert document["agreement"] >= AGREEMENT


def test_every_case_file_is_valid_and_names_real_platforms_and_bands():
    files = bundled_files()
    assert files, "the library ships at least one case file"
    ids = [case.id for case_file in files for case in case_file.cases]
    assert len(ids) == len(set(ids)), "case ids are unique across files"
    for case_file in files:
        for case in case_file.cases:
            assert case.platform in bundled_platforms(), f"{case.id}: unknown platform {case.platform}"
            bands = {band.id for band in load(str(bundled_platforms()[case.platform])).bands}
            named = {band for agreeing in case_file.agreement.values() for band in agreeing}
            assert named <= bands, f"{case_file.path}: agreement names bands the rules lack: {named - bands}"


@pytest.mark.parametrize("case", [case for case_file in bundled_files() for case in case_file.cases],
                         ids=lambda case: case.id)
def test_each_case_gets_the_band_check_prints_for_the_same_facts(case, tmp_path):
    """The library takes the one path: the band equals what `check` prints for the same answers."""
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(case.facts), encoding="utf-8")
    now = case.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    checked = runner.invoke(app, ["check", "--platform", case.platform, "--answers", str(answers), "--now", now,
                                  "--json", "--no-history"])
    assert checked.exit_code == 0, checked.stderr
    result = cases.run_case(case, load(str(bundled_platforms()[case.platform])), {case.outcome: ()})
    assert result.band == json.loads(checked.stdout)["likelihood"]["band"]


AGREEMENT_BLOCK = """agreement:
  refunded: [very-likely, likely]
  partial: [likely, uncertain, unlikely]
  refused: [unlikely, very-unlikely]
"""

CASE = """  - id: {id}
    source: https://example.org/{id}
    date: "2026-11-29"
    platform: openrouter
    facts: {{charge_type: topup, amount: 20, charged_at: "2026-11-29T10:00:00Z", cause: unused-credits}}
    now: "2026-11-29T12:00:00Z"
    outcome: {outcome}
    note: An unused top-up asked back two hours later.
"""


def write(tmp_path, text: str, name: str = "cases.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_agreement_per_platform_and_the_band_table(tmp_path):
    # the same facts twice: one outcome agrees with the band they get, the other does not
    path = write(tmp_path, AGREEMENT_BLOCK + "cases:\n" + CASE.format(id="a", outcome="refunded")
                 + CASE.format(id="b", outcome="refused"))
    result = runner.invoke(app, ["rules", "cases", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "openrouter" in result.stdout and "50%" in result.stdout
    assert "Band against outcome" in result.stdout
    assert "MISS b [openrouter] outcome refused" in result.stdout
    assert "MISS a" not in result.stdout
    document = json.loads(runner.invoke(app, ["rules", "cases", str(path), "--json"]).stdout)
    assert document["platforms"] == [{"platform": "openrouter", "cases": 2, "agreed": 1, "agreement": 50.0}]
    band = next(row["band"] for row in document["results"] if row["id"] == "a")
    assert document["table"][band] == {"refunded": 1, "partial": 0, "refused": 1}


def test_min_agreement_fails_below_the_figure_only(tmp_path):
    path = write(tmp_path, AGREEMENT_BLOCK + "cases:\n" + CASE.format(id="a", outcome="refunded")
                 + CASE.format(id="b", outcome="refused"))
    below = runner.invoke(app, ["rules", "cases", str(path), "--min-agreement", "60"])
    assert below.exit_code == 1
    assert below.stderr.strip() == "refundadvisor: error: agreement 50.0% is below --min-agreement 60%"
    assert runner.invoke(app, ["rules", "cases", str(path), "--min-agreement", "50"]).exit_code == 0
    assert runner.invoke(app, ["rules", "cases", str(path), "--min-agreement", "101"]).exit_code == 2


def test_the_json_document_is_versioned_and_keeps_its_keys(tmp_path):
    path = write(tmp_path, AGREEMENT_BLOCK + "cases:\n" + CASE.format(id="a", outcome="refunded"))
    document = json.loads(runner.invoke(app, ["rules", "cases", str(path), "--json"]).stdout)
    assert set(document) == {"schema_version", "files", "cases", "agreed", "agreement", "min_agreement",
                             "platforms", "table", "results"}
    assert document["schema_version"].isdigit()
    assert set(document["results"][0]) == {"id", "platform", "source", "date", "outcome", "band", "score", "agrees",
                                           "error", "note", "where"}


GOOD = CASE.format(id="a", outcome="refunded")


def changed(old: str, new: str) -> str:
    """A case file with one good case, edited."""
    assert old in GOOD
    return AGREEMENT_BLOCK + "cases:\n" + GOOD.replace(old, new)


MALFORMED = {
    "not-a-mapping": ("- just\n- a list\n", "a case file is a mapping"),
    "no-agreement": ("cases:\n" + GOOD, "'agreement:' must map each outcome"),
    "unknown-top-key": (AGREEMENT_BLOCK + "extra: 1\ncases:\n" + GOOD, "unknown key 'extra'"),
    "no-cases": (AGREEMENT_BLOCK + "cases: []\n", "must be a non-empty list"),
    "duplicate-key": (changed("    note:", "    outcome: partial\n    note:"), "duplicate key 'outcome'"),
    "missing-outcome": (changed("    outcome: refunded\n", ""), "the case is missing outcome"),
    "unknown-case-key": (changed("    note:", "    verdict: granted\n    note:"), "unknown key 'verdict'"),
    "outcome-not-in-agreement": (changed("outcome: refunded", "outcome: waived"),
                                 "outcome 'waived' is not one of refunded, partial, refused"),
    "bad-date": (changed('date: "2026-11-29"', 'date: "last week"'), "is not the date of the request"),
    "bad-source": (changed("https://example.org/a", "somewhere"), "is not the https:// address"),
    "bad-now": (changed('now: "2026-11-29T12:00:00Z"', 'now: "soon"'), "is not a date and time"),
    "two-line-note": (changed("note: An unused", 'note: "one\\ntwo" #'), "the note must be one line"),
    "duplicate-id": (AGREEMENT_BLOCK + "cases:\n" + GOOD + GOOD, "duplicate case id 'a'"),
    "unknown-platform": (changed("platform: openrouter", "platform: gemini"),
                         "the platform 'gemini' has no bundled rule file"),
    "unknown-band": (AGREEMENT_BLOCK.replace("[unlikely, very-unlikely]", "[hopeless]") + "cases:\n" + GOOD,
                     "names hopeless, not a band"),
    "yaml-syntax": (AGREEMENT_BLOCK + "cases: [\n", "error[syntax]"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_case_file_gives_one_sentence_and_exit_1(tmp_path, name):
    text, expected = MALFORMED[name]
    path = write(tmp_path, text)
    result = runner.invoke(app, ["rules", "cases", str(path)])
    assert result.exit_code == 1, result.stdout
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refundadvisor: error: ")
    assert expected in lines[0]
    assert str(path) in lines[0], "the sentence says which file"


def test_files_that_are_not_case_files_are_refused_in_one_sentence(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x00\x01\x02")
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    for target, expected in ((tmp_path / "missing.yaml", "no case file at this path"),
                             (binary, "binary file"), (empty_folder, "holds no case files")):
        result = runner.invoke(app, ["rules", "cases", str(target)])
        assert result.exit_code == 1
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_case_whose_facts_cannot_be_assessed_is_listed_and_fails_the_run(tmp_path):
    bad = CASE.format(id="a", outcome="refunded").replace("amount: 20", "amount: -5")
    path = write(tmp_path, AGREEMENT_BLOCK + "cases:\n" + bad + CASE.format(id="b", outcome="refunded"))
    result = runner.invoke(app, ["rules", "cases", str(path), "--json"])
    assert result.exit_code == 1
    rows = {row["id"]: row for row in json.loads(result.stdout)["results"]}
    assert rows["a"]["band"] is None and rows["a"]["error"].startswith("amount")
    assert rows["a"]["agrees"] is False and rows["b"]["error"] is None
    assert result.stderr.startswith("refundadvisor: error: 1 case(s) could not be assessed, first a ")


def test_a_case_counted_twice_is_refused_rather_than_inflating_the_figure(tmp_path):
    one = str(CASES / "openai.yaml")
    result = runner.invoke(app, ["rules", "cases", one, one])
    assert result.exit_code == 1
    assert "is already in the run" in result.output


def test_a_case_moment_outside_the_calendar_is_one_sentence(tmp_path):
    text = (CASES / "openai.yaml").read_text(encoding="utf-8")
    first_now = text.index("now: ")
    end = text.index("\n", first_now)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text[:first_now] + 'now: "0001-01-01T00:00:00+14:00"' + text[end:], encoding="utf-8")
    result = runner.invoke(app, ["rules", "cases", str(bad)])
    assert result.exit_code == 1
    assert "in the years 1900 to 8999" in result.output and "Traceback" not in result.output


def test_min_agreement_nan_is_refused_not_a_gate_that_never_fails():
    result = runner.invoke(app, ["rules", "cases", "--min-agreement", "nan"])
    assert result.exit_code == 2 and "not a share" in result.output
