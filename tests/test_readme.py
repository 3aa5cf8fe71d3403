"""The README and docs stay true: the CI command, every flag, every exit code, every JSON key."""

from __future__ import annotations

import re

import typer

from refundadvisor import cli
from refundadvisor.render import SCHEMA_VERSION

from helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci_command}\n" in README


def test_readme_lists_every_check_flag():
    command = typer.main.get_command(cli.app).commands["check"]
    for param in command.params:
        for flag in param.opts + param.secondary_opts:
            if flag.startswith("--"):
                assert f"`{flag}" in README, flag


def test_readme_documents_every_exit_code():
    table = README[README.index("## Exit codes"):]
    for name in dir(cli):
        if name.startswith("EXIT_"):
            assert re.search(rf"^\| {getattr(cli, name)} \|", table, re.MULTILINE), name


def test_json_doc_describes_every_key():
    doc = (ROOT / "docs" / "json.md").read_text()
    assert f'`schema_version` "{SCHEMA_VERSION}"' in doc
    from typer.testing import CliRunner
    import json

    result = CliRunner().invoke(cli.app, ["check", "--charge-type", "usage", "--amount", "1", "--ago", "1h",
                                          "--cause", "overuse", "--json", "--explain"])
    for key in json.loads(result.stdout):
        assert f"| `{key}` |" in doc, key
