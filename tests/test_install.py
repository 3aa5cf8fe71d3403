"""A built wheel carries rules.yaml and works when run from another folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from helpers import NOW_TEXT, ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project built as a wheel and installed (without its dependencies) into a folder."""
    dist = tmp_path_factory.mktemp("dist")
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(ROOT)], check=True, timeout=300)
    wheel = next(dist.glob("refundadvisor-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, timeout=300)
    return wheel, target


def test_wheel_carries_the_rules(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("refundadvisor/rules.yaml")
        for name in ("openai", "anthropic"):
            assert archive.read(f"refundadvisor/platforms/{name}.yaml") == (ROOT / "platforms" / f"{name}.yaml").read_bytes()
        assert archive.read("refundadvisor/rules/schema.json")
    assert packaged == (ROOT / "rules.yaml").read_bytes()


def test_installed_wheel_runs_from_another_folder(installed, tmp_path):
    _, target = installed
    env = {**os.environ, "PYTHONPATH": str(target)}
    args = ["check", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "20", "--ago", "2h",
            "--cause", "unused-credits", "--json"]
    result = subprocess.run([str(target / "bin" / "refundadvisor"), *args], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"]["id"] == "self-serve-refund"
    assert document["rules"]["path"].startswith(str(target))
    other = subprocess.run([str(target / "bin" / "refundadvisor"), *args, "--platform", "anthropic"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert json.loads(other.stdout)["platform"]["id"] == "anthropic"


def test_wheel_carries_the_case_library_and_runs_it(installed, tmp_path):
    wheel, target = installed
    with zipfile.ZipFile(wheel) as archive:
        for path in sorted((ROOT / "cases").glob("*.yaml")):
            assert archive.read(f"refundadvisor/cases/{path.name}") == path.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([str(target / "bin" / "refundadvisor"), "rules", "cases", "--json"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["files"] and all(path.startswith(str(target)) for path in document["files"])
    assert document["cases"] == sum(path.read_text().count("\n  - id: ") for path in (ROOT / "cases").glob("*.yaml"))
