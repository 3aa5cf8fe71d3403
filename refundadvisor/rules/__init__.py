"""Rule files: reading (strict YAML), layers (`extends:`), validation and compilation, the cache.

Kept light on import: the YAML parser is imported only when a file must actually be compiled,
so a command that finds its rule set in the cache never pays for it.

- ``load(path)``: read, merge and compile a rule file (RulesError if it cannot be used)
- ``load_cached(path)``: the same, through the verified cache (rules/cache.py)
- ``inspect(path)``: validate without raising, for `rules validate`
"""

from __future__ import annotations

from typing import Optional

from .problems import Problem, RulesError

__all__ = ["Problem", "RulesError", "inspect", "load", "load_cached", "load_text"]


def load(path: str, text: Optional[str] = None):
    """Read, merge (extends:) and compile a rule file; returns (RuleSet, warnings).

    Raises RulesError, with every problem located in its own file, if it cannot be used."""
    from .compile import compile_document
    from .layers import combined_sha, load_layers, merge_layers
    from .prepared import Prepared

    layers = load_layers(path, text)
    merged = merge_layers(layers)
    top = layers[0].document.data
    own_facts = set(top.get("facts") or {}) if isinstance(top, dict) and isinstance(top.get("facts"), dict) else set()
    ruleset, warnings = compile_document(merged.document, combined_sha(layers),
                                         own_facts if len(layers) > 1 else None)
    import os

    return ruleset._replace(path=path, layers=tuple((os.path.abspath(layer.path), layer.sha256) for layer in layers),
                            origins=merged.origins, prepared=Prepared()), warnings


def load_text(text: str, path: str):
    """Compile rule-file text as if read from ``path`` (its `extends:` resolved from there)."""
    return load(path, text)


def load_cached(path: str):
    """The compiled rule set for a file, from the verified cache when it was compiled before."""
    from .cache import load as cached

    return cached(path)


def inspect(path: str):
    """Validate a rule file without raising: (the rule set or None, every problem, its sha256)."""
    try:
        ruleset, warnings = load(path)
    except RulesError as error:
        return None, error.problems, ""
    return ruleset, warnings, ruleset.sha256
