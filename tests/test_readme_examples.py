"""Every script example in the README runs as shown at a terminal (a pty) and asks nothing."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from helpers import ROOT

README = (ROOT / "README.md").read_text()
# examples that ask on purpose: removing a request asks first (--yes for scripts); install writes
# to the shell's start-up files
ASKS_BY_DESIGN = ("history remove 2 ", "completion install")


def script_examples() -> list[str]:
    examples = []
    for kind, body in re.findall(r"```(text|sh)\n(.*?)```", README, re.DOTALL):
        body = body.replace("\\\n", " ")
        for line in body.splitlines():
            command = line[2:] if kind == "text" and line.startswith("$ ") else (line if kind == "sh" else "")
            command = re.sub(r"\s+#.*$", "", command).strip()
            if "refundadvisor " not in command or " --" not in command + " --" and kind == "text":
                continue
            if kind == "text" and command.strip() == "refundadvisor":
                continue  # the interview itself
            if any(marker in command + " " for marker in ASKS_BY_DESIGN):
                continue
            if command.startswith(("python", ".venv", "pip")):
                continue
            examples.append(" ".join(command.split()))
    return list(dict.fromkeys(examples))


EXAMPLES = script_examples()


def test_the_readme_has_script_examples():
    assert len(EXAMPLES) >= 10
    assert any("--json" in example for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_readme_example_asks_nothing_at_a_terminal(example, tmp_path):
    (tmp_path / "charge.yaml").write_text("charge_type: usage\namount: 12.40\ncharged_at: 2026-11-29T14:30\n"
                                          "cause: platform-error\nevidence: [request-ids, logs]\n")
    (tmp_path / "disputes.jsonl").write_text('{"id": "a", "charge_type": "topup", "amount": 50, "ago": "3h", '
                                             '"cause": "duplicate-charge"}\n')
    (tmp_path / "backup.jsonl").write_text("")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "TERM": "xterm-256color",
           "REFUNDADVISOR_HOME": str(tmp_path / "home")}
    script = f"open-ticket() {{ :; }}; {example}"
    child = pexpect.spawn("bash", ["-c", script], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=30,
                          dimensions=(24, 80))
    index = child.expect([pexpect.EOF, r"\n> [a-z ]+(\[[^\]]*\])?: ", r"\[y/N\]: "])
    output = child.before
    child.close()
    assert index == 0, f"{example!r} asked: {child.after!r}"
    assert "Traceback" not in output, output[-800:]
