"""The rule-writing guide's worked example is a real, valid rule file that behaves as shown."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from refundadvisor.cli import app

from helpers import ROOT

runner = CliRunner()
GUIDE = (ROOT / "docs" / "rules.md").read_text()


def example_file(tmp_path):
    section = GUIDE[GUIDE.index("## Worked example"):]
    text = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    path = tmp_path / "acme.yaml"
    path.write_text(text)
    return path


def test_the_worked_example_validates_and_passes_its_tests(tmp_path):
    path = example_file(tmp_path)
    assert runner.invoke(app, ["rules", "validate", str(path), "--strict"]).exit_code == 0
    result = runner.invoke(app, ["rules", "test", str(path), "--coverage"])
    assert result.exit_code == 0
    assert result.stdout == ("coverage: every rule fires and every band is reached in at least one test\n"
                             "3 passed, 0 failed\n")


def test_the_worked_example_gives_the_verdict_shown(tmp_path):
    path = example_file(tmp_path)
    result = runner.invoke(app, ["check", "--rules", str(path), "--charge-type", "topup", "--amount", "20",
                                 "--ago", "10d", "--cause", "unused-credits", "--json"])
    assert json.loads(result.stdout)["likelihood"]["band"] == "likely"


def test_a_made_up_platform_needs_no_flag_it_does_not_declare(tmp_path):
    path = example_file(tmp_path)
    result = runner.invoke(app, ["check", "--rules", str(path), "--charge-type", "topup", "--amount", "20",
                                 "--ago", "10d", "--cause", "unused-credits", "--profile", "team"])
    assert result.exit_code == 2
    assert "--profile: the rule file" in result.stderr and "has no fact 'profile'" in result.stderr
