"""The fuzzers of bench/ in small: a few dozen random command lines and mutated rule files, each
run through the real console script in a forked process with a time limit. Any traceback, hang or
undocumented exit code fails. The long runs (3,000 command lines, 500 rule files) are
`python bench/fuzz_argv.py` and `python bench/fuzz_rules.py`; their seeds replay here with
FUZZ_SEED=N."""

from __future__ import annotations

import os
import random
import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import fuzz_argv  # noqa: E402
import fuzz_rules  # noqa: E402
from fuzz_common import Runner, sealed_env, summary  # noqa: E402

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
# The commands whose input handling this suite's rule-file and facts code owns end to end.
OWN = ("check", "draft", "rules")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fuzz runner forks")


def _snapshot() -> dict:
    """The checkout's top-level files and the shipped rule files, with their size and mtime."""
    paths = [*ROOT.iterdir(), *(ROOT / "platforms").iterdir()]
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in paths if path.is_file()}


def _runner(tmp_path):
    return Runner(sealed_env(tmp_path), timeout=8, jobs=2, workdir=tmp_path)


def test_mutated_rule_files_are_valid_or_a_located_error(tmp_path):
    files = fuzz_rules.mutated_files(25, SEED, tmp_path)
    outcomes = _runner(tmp_path).run_all(fuzz_rules.vectors(files, random.Random(SEED)))
    report, failed = summary("fuzz_rules", SEED, outcomes, 0)
    assert failed == 0, report
    assert {outcome.code for outcome in outcomes} <= {0, 1, 2}


def test_random_command_lines_over_check_draft_and_rules(tmp_path):
    work = [vector for vector in fuzz_argv.vectors(400, SEED, tmp_path) if vector[0] and vector[0][0] in OWN][:40]
    assert len(work) == 40
    work.append((["draft", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits",
                  "--output", "relative-output.txt"], ""))
    before = _snapshot()
    outcomes = _runner(tmp_path).run_all(work)
    assert _snapshot() == before  # relative paths land in the scratch folder; the checkout's files are never targets
    report, failed = summary("fuzz_argv", SEED, outcomes, 0)
    assert failed == 0, report
    assert any(outcome.code == 0 for outcome in outcomes) and any(outcome.code == 2 for outcome in outcomes)


def test_the_runner_sees_a_traceback_and_a_hang(tmp_path, monkeypatch):
    """The harness itself: a crash and a hang in the command are reported, not missed."""
    import time as time_module

    from refundadvisor.cli import check as check_module

    runner = _runner(tmp_path)
    runner.timeout = 2
    monkeypatch.setattr(check_module, "_read_answers", lambda path: 1 / 0)  # inherited by the forked children
    crashed, = runner.run_all([(["check", "--answers", "x.yaml"], "")])
    assert crashed.problem.startswith("traceback: ZeroDivisionError")
    monkeypatch.setattr(check_module, "_read_answers", lambda path: time_module.sleep(60))
    hung, = runner.run_all([(["check", "--answers", "x.yaml"], "")])
    assert hung.code is None and hung.problem.startswith("hang")
