"""Compiled rule sets cached by the rule file's content hash.

Every `check` reads its rule file; parsing and validating YAML costs more than the rest of the
command. The compiled RuleSet is kept in the user's cache directory under the sha256 of the
file's bytes (and the versions that shaped it), so a changed file is always recompiled and an
unchanged one is loaded without importing the YAML parser at all. A cache that cannot be read or
written is ignored: the file is compiled as if there were none.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile

from . import __version__
from .model import ENGINE_VERSION, RuleSet
from .paths import cache_dir

MAX_BYTES = 2 * 1024 * 1024  # the same limit as safeyaml.MAX_BYTES


def _cache_file(sha: str):
    return cache_dir() / "rules" / f"{sha}-e{ENGINE_VERSION}-{__version__}.pickle"


def load(path: str) -> RuleSet:
    """The compiled rule set for a file, from the cache when its content was compiled before.

    Raises rules.RulesError for a file that cannot be used (never cached).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError):
        data = None
    if data is None or len(data) > MAX_BYTES:
        return _compile(path)  # let the full loader report the problem
    sha = hashlib.sha256(data).hexdigest()
    cached = _read(_cache_file(sha))
    if cached is not None:
        return cached._replace(path=path)
    ruleset = _compile(path)
    if ruleset.sha256 == sha:
        _write(_cache_file(sha), ruleset)
    return ruleset


def _compile(path: str) -> RuleSet:
    from .rules import load as load_rules

    ruleset, _warnings = load_rules(path)
    return ruleset


def _read(cache_file) -> RuleSet | None:
    try:
        with open(cache_file, "rb") as handle:
            ruleset = pickle.load(handle)
    except Exception:  # missing, truncated, or from another Python: compile instead
        return None
    return ruleset if isinstance(ruleset, RuleSet) else None


def _write(cache_file, ruleset: RuleSet) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_file.parent, delete=False) as handle:
            pickle.dump(ruleset, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, cache_file)  # atomic: concurrent runs never see half a file
    except OSError:
        pass
