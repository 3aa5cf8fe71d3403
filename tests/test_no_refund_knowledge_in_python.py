"""No refund knowledge lives in Python: the rule files are the product's brain.

Every string literal in the package (docstrings aside) is scanned for a cause id, an evidence
id, any other choice id of a fact, a platform name or a policy phrase, and every number literal
for a policy number. Fact names are the contract between the code and the files and may appear.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from refundadvisor.paths import bundled_platforms
from refundadvisor.rules import load

PACKAGE = Path(__file__).resolve().parent.parent / "refundadvisor"
# Known exception, to be moved into the rule files: the evidence commands (refundadvisor/evidence/
# and cli/evidence.py) talk to each platform's own API and still map what they find to evidence
# ids and a suggested cause in code.
EXEMPT = ("evidence",)
# Numbers that are units of time or money arithmetic, not policy.
UNIT_NUMBERS = {0, 1, 2, 3, 4, 7, 8, 10, 16, 24, 60, 100, 1000, 1024, 1440, 3600}
# Choice ids that are also the interface's own words (the interview's 'unknown', an empty list
# shown as 'none'): they name no refund knowledge on their own.
INTERFACE_WORDS = {"none", "unknown"}
POLICY_PHRASES = re.compile(r"\b\d+[ -](hours?|days?|months?|weeks?)\b|\b\d+(\.\d+)?\s?%")


def vocabulary() -> tuple[set[str], list[set[str]], set[float]]:
    """Words that are refund knowledge wherever they appear (platform names, hyphenated ids), the
    choice ids of each fact (plain words like 'card' or 'usage' count when two of one fact are
    named together, or one stands alone as a literal), and the policy numbers."""
    names: set[str] = set()
    by_fact: dict[str, set[str]] = {}
    numbers: set[float] = set()
    for name, path in bundled_platforms().items():
        ruleset, _ = load(str(path))
        names.add(name)
        for spec in ruleset.facts.values():
            by_fact.setdefault(spec.name, set()).update(
                choice.id for choice in spec.choices if choice.id not in INTERFACE_WORDS)
        numbers |= {parameter.value for parameter in ruleset.policy.parameters.values()}
    names |= {word for ids in by_fact.values() for word in ids if "-" in word}
    return names, [ids for ids in by_fact.values() if ids], numbers - UNIT_NUMBERS


def word_pattern(words) -> re.Pattern:
    return re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")(?![\w-])")


def literals(tree: ast.AST):
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            yield node


def test_the_package_names_no_cause_evidence_choice_platform_or_policy_number():
    names, choice_sets, numbers = vocabulary()
    always = word_pattern(names)
    every_id = set().union(*choice_sets)
    per_fact = [word_pattern(ids) for ids in choice_sets]
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(part in EXEMPT or path.stem in EXEMPT for part in path.relative_to(PACKAGE).parts[:-1]) \
                or path.stem in EXEMPT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in literals(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if isinstance(node.value, str):
                text = node.value
                hits = [pattern.findall(text) for pattern in per_fact]
                match = always.search(text) or POLICY_PHRASES.search(text)
                if match:
                    found.append(f"{where}: {match.group(0)!r} in {text[:60]!r}")
                elif text in every_id or any(len(set(hit)) >= 2 for hit in hits):
                    found.append(f"{where}: choice ids {sorted(set().union(*hits)) or [text]} in {text[:60]!r}")
            elif isinstance(node.value, (int, float)) and not isinstance(node.value, bool) and node.value in numbers:
                found.append(f"{where}: the policy number {node.value!r}")
    assert not found, "refund knowledge in Python (move it to a rule file):\n" + "\n".join(found)
