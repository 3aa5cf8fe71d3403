"""The compiled-rules cache is an optimisation that can never change a verdict.

Stale, corrupt, planted and foreign entries are ignored (the rule file is compiled instead), an
entry is JSON that rebuilds only refundadvisor's own types, and REFUNDADVISOR_NO_CACHE bypasses it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.rules import cache

from helpers import NOW_TEXT, ROOT

runner = CliRunner()
CRYPTO_DUPLICATE = ["check", "--json", "--now", NOW_TEXT, "--charge-type", "topup", "--amount", "50", "--ago", "1h",
                    "--cause", "duplicate-charge", "--payment-method", "crypto"]


@pytest.fixture
def rule_tree(tmp_path):
    """A copy of the bundled files, laid out as they are (the platform file extends ../rules.yaml)."""
    root = tmp_path / "bundle"
    (root / "platforms").mkdir(parents=True)
    shutil.copy(ROOT / "rules.yaml", root / "rules.yaml")
    shutil.copy(ROOT / "platforms" / "openrouter.yaml", root / "platforms" / "openrouter.yaml")
    return root


def entries(isolated_home):
    folder = isolated_home / ".cache" / "refundadvisor" / "rules"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def verdict(path) -> dict:
    result = runner.invoke(app, [*CRYPTO_DUPLICATE, "--rules", str(path)])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["likelihood"]


def test_an_entry_is_signed_json_and_gives_the_same_rule_set(rule_tree, isolated_home):
    path = str(rule_tree / "platforms" / "openrouter.yaml")
    compiled = cache.load(path)
    [entry] = entries(isolated_home)
    signature, _, payload = entry.read_bytes().partition(b"\n")
    assert len(signature) == 64 and json.loads(payload)["ruleset"]["$"] == "RuleSet"
    again = cache.load(path)
    assert again._replace(prepared=None) == compiled._replace(prepared=None)


def test_a_changed_base_file_is_compiled_again(rule_tree, isolated_home):
    path = rule_tree / "platforms" / "openrouter.yaml"
    before = verdict(path)
    shared = rule_tree / "rules.yaml"
    shared.write_text(shared.read_text().replace("label: Very unlikely", "label: Hardly ever", 1))
    after = verdict(path)
    # the entry recorded the base's hash too; it no longer matches, so the change is seen
    assert (before["label"], after["label"]) == ("Very unlikely", "Hardly ever")


def test_a_stale_entry_from_an_edited_file_is_not_used(rule_tree, isolated_home):
    path = rule_tree / "platforms" / "openrouter.yaml"
    assert verdict(path)["band"] == "very-unlikely"
    path.write_text(path.read_text().replace("title: OpenRouter", "title: Edited"))
    result = runner.invoke(app, [*CRYPTO_DUPLICATE, "--rules", str(path)])
    assert json.loads(result.stdout)["platform"]["title"] == "Edited"


@pytest.mark.parametrize("damage", ["truncated", "not json", "empty", "binary"])
def test_a_corrupt_entry_is_ignored(rule_tree, isolated_home, damage):
    path = rule_tree / "platforms" / "openrouter.yaml"
    expected = verdict(path)
    [entry] = entries(isolated_home)
    text = entry.read_bytes()
    entry.write_bytes({"truncated": text[: len(text) // 2], "not json": b"x\n{", "empty": b"",
                       "binary": os.urandom(4096)}[damage])
    assert verdict(path) == expected


def test_a_planted_entry_cannot_change_a_verdict(rule_tree, isolated_home):
    """An entry rewritten without the cap rules (its recorded hashes left genuine) is refused."""
    path = rule_tree / "platforms" / "openrouter.yaml"
    genuine = verdict(path)
    assert genuine["band"] == "very-unlikely"
    [entry] = entries(isolated_home)
    signature, _, payload = entry.read_bytes().partition(b"\n")
    document = json.loads(payload)
    rules = document["ruleset"]["v"][10]["$t"]  # RuleSet.rules
    document["ruleset"]["v"][10]["$t"] = [rule for rule in rules if rule["v"][5] is None]  # no caps
    forged = json.dumps(document, separators=(",", ":")).encode()
    for planted in (signature + b"\n" + forged, b"0" * 64 + b"\n" + forged):
        entry.write_bytes(planted)
        assert verdict(path) == genuine


def test_an_entry_signed_with_another_key_is_ignored(rule_tree, isolated_home, monkeypatch):
    """An entry copied from another user or machine: signed, but not with this user's key."""
    path = rule_tree / "platforms" / "openrouter.yaml"
    expected = verdict(path)
    [entry] = entries(isolated_home)
    (isolated_home / ".local" / "share" / "refundadvisor" / "cache.key").write_bytes(os.urandom(32))
    assert verdict(path) == expected
    assert entry.exists()  # replaced by a fresh entry under this user's key, never trusted as it was


def test_only_refundadvisor_types_can_be_rebuilt():
    with pytest.raises(KeyError):
        cache.decode('{"$": "system", "v": ["echo pwned"]}')
    assert cache.decode('{"$t": [1, 2]}') == (1, 2)


def test_no_cache_bypasses_it(rule_tree, isolated_home, monkeypatch):
    monkeypatch.setenv("REFUNDADVISOR_NO_CACHE", "1")
    verdict(rule_tree / "platforms" / "openrouter.yaml")
    assert entries(isolated_home) == []


def test_a_fifo_where_an_entry_would_be_does_not_hang(rule_tree, isolated_home):
    path = rule_tree / "platforms" / "openrouter.yaml"
    expected = verdict(path)
    [entry] = entries(isolated_home)
    entry.unlink()
    os.mkfifo(entry)
    done = threading.Event()
    result = {}

    def run():
        result["verdict"] = verdict(path)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(20), "reading the cache hung on a FIFO"
    assert result["verdict"] == expected
