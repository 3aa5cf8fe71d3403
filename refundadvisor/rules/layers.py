"""Rule files that build on others: `extends:` resolved into one document, strictly.

A platform's file holds only its published policy, parameters, rules and wording, and names the
file it builds on (the shared heuristics in the root rules.yaml, or a bundled platform for a
user's own file). The merge is plain data, before validation, so that every problem is still
reported at its own file, line and column:

- mappings (policy, its sources and parameters, facts, scoring, draft) merge key by key;
- lists of items with an ``id`` (rules, checklist, outcomes, bands, deadlines, refund_estimates)
  merge by id: the extending file's new items come first (the specific before the general), a
  replaced item keeps the base's place;
- anything else (texts, plain lists) is the extending file's own or the base's;
- a key or id defined in both is an error unless the extending file lists it under
  ``overrides:`` (e.g. ``rules.solo-one-off-script``, ``always_next_steps``, or a whole section
  such as ``outcomes`` to reword any of its items): an override is always explicit;
- a choice fact can be narrowed without restating it: ``facts: {payment_method: {only: [card,
  other]}}`` keeps the shared fact with just those choices;
- tests stay with the file that wrote them.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple, Optional

from . import read
from .problems import Problem, RulesError

MAX_LAYERS = 8  # a chain longer than this is a mistake (or a loop)
ID_LISTS = ("rules", "checklist", "outcomes", "bands", "deadlines", "refund_estimates")
KEYED_MAPS = {("facts",), ("policy", "sources"), ("policy", "parameters")}
NESTED_MAPS = {("policy",), ("scoring",), ("draft",), ("draft", "requests")}
OWN_KEYS = ("extends", "overrides", "tests")  # never inherited


class Layer(NamedTuple):
    """One file of a rule set, as read: its path, its content's sha256 and its parsed document."""

    path: str
    sha256: str
    document: read.Document


class Merged(NamedTuple):
    document: read.Document
    layers: tuple[Layer, ...]  # the files, the one asked for first
    origins: dict[str, str]  # "rules.first-request" -> the file that defined it


def resolve_extends(reference: str, from_path: str) -> str:
    """The file an `extends:` names: a bundled platform by name, else a path relative to the
    extending file's folder."""
    from ..paths import bundled_platforms

    if "/" not in reference and not reference.endswith((".yaml", ".yml")):
        found = bundled_platforms().get(reference.strip().lower())
        if found is not None:
            return str(found)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(from_path)), reference))


def read_layer(path: str, text: Optional[str] = None) -> Layer:
    """Read and parse one file strictly (YamlProblem on failure)."""
    if text is None:
        text = read.read_text(path, what="rule file")
    return Layer(path, hashlib.sha256(text.encode("utf-8")).hexdigest(), read.parse(text, path))


def load_layers(path: str, text: Optional[str] = None) -> list[Layer]:
    """The file and every file it builds on, the file itself first. Raises RulesError."""
    layers: list[Layer] = []
    seen: set[str] = set()
    current, current_text = path, text
    while True:
        try:
            layer = read_layer(current, current_text)
        except read.YamlProblem as problem:
            raise RulesError([yaml_problem(problem)]) from None
        layers.append(layer)
        seen.add(os.path.realpath(current))
        data = layer.document.data
        reference = data.get("extends") if isinstance(data, dict) else None
        if reference is None:
            return layers
        mark = layer.document.mark(("extends",))
        if not isinstance(reference, str) or not reference.strip():
            raise RulesError([_problem(mark, "extends", "type", "extends names a rule file: a bundled platform or a path")])
        target = resolve_extends(reference, current)
        if os.path.realpath(target) in seen:
            raise RulesError([_problem(mark, "extends", "extends-loop", f"{reference!r} leads back to a file already in the chain")])
        if len(layers) >= MAX_LAYERS:
            raise RulesError([_problem(mark, "extends", "extends-depth", f"more than {MAX_LAYERS} files build on each other")])
        if not os.path.isfile(target):
            from ..paths import bundled_platforms

            raise RulesError([_problem(mark, "extends", "extends-missing",
                                       f"no rule file {reference!r} (looked for {target}); name a bundled platform "
                                       f"({', '.join(bundled_platforms())}) or a path relative to this file")])
        current, current_text = target, None


def merge_layers(layers: list[Layer]) -> Merged:
    """One document from a chain of layers (the file asked for first). Raises RulesError for
    collisions that are not listed under `overrides:`."""
    merged = layers[-1].document  # the file every other builds on
    origins: dict[str, str] = {}
    _note_origins(merged, origins)
    for layer in reversed(layers[:-1]):
        merged = _merge(layer.document, merged, origins)
        _note_origins(layer.document, origins)
    return Merged(merged, tuple(layers), origins)


def _note_origins(document: read.Document, origins: dict[str, str]) -> None:
    data = document.data if isinstance(document.data, dict) else {}
    for section in ID_LISTS:
        items = data.get(section)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                origins[f"{section}.{item['id']}"] = document.path
    for ypath in KEYED_MAPS:
        section = _get(data, ypath)
        if isinstance(section, dict):
            for key in section:
                origins[".".join(ypath + (str(key),))] = document.path


class _Grafter:
    """Copies located values from one document into another under a new YAML path."""

    def __init__(self, source: read.Document):
        self.source = source
        self.by_prefix: dict[tuple, list] = {}
        for kind in ("marks", "key_marks", "raw"):
            for ypath, value in getattr(source, kind).items():
                for length in range(1, min(len(ypath), 3) + 1):
                    self.by_prefix.setdefault(ypath[:length], []).append((kind, ypath, value))

    def graft(self, target: read.Document, old: tuple, new: tuple) -> None:
        if len(old) > 3:
            raise ValueError("graft works on paths up to three deep")
        for kind, ypath, value in self.by_prefix.get(old, ()):
            getattr(target, kind)[new + ypath[len(old):]] = value


def _merge(top: read.Document, base: read.Document, origins: dict[str, str]) -> read.Document:
    problems: list[Problem] = []
    top_data = top.data if isinstance(top.data, dict) else {}
    base_data = base.data if isinstance(base.data, dict) else {}
    overrides = _overrides(top, problems)
    used: set[str] = set()
    result = read.Document(data={}, path=top.path)
    take_top, take_base = _Grafter(top), _Grafter(base)

    keys = list(dict.fromkeys([*base_data, *top_data]))
    for key in keys:
        if key in ("extends", "overrides"):
            continue
        in_top, in_base = key in top_data, key in base_data
        if key == "tests" or not in_base:
            if in_top:
                result.data[key] = top_data[key]
                take_top.graft(result, (key,), (key,))
            continue
        if key in ("format", "requires_engine"):
            chosen = top_data[key] if in_top else base_data[key]
            if key == "requires_engine" and in_top and isinstance(top_data[key], int) and isinstance(base_data[key], int):
                chosen = max(top_data[key], base_data[key])
            result.data[key] = chosen
            (take_top if in_top else take_base).graft(result, (key,), (key,))
            continue
        if not in_top:
            result.data[key] = base_data[key]
            take_base.graft(result, (key,), (key,))
            continue
        result.data[key] = _merge_value((key,), top_data[key], base_data[key], top, take_top, take_base, result,
                                        overrides, used, problems, origins)
    for name, mark in overrides.items():
        if name not in used:
            problems.append(_problem(mark, "overrides", "override-unused",
                                     f"overrides lists {name!r}, but the file it extends defines no {name!r} to replace"))
    if problems:
        raise RulesError(problems)
    return result


def _merge_value(ypath: tuple, top_value: Any, base_value: Any, top: read.Document, take_top: _Grafter,
                 take_base: _Grafter, result: read.Document, overrides: dict, used: set, problems: list,
                 origins: dict) -> Any:
    name = ".".join(str(part) for part in ypath)
    base_path = origins.get(name, origins.get(ypath[0], "the file it extends"))
    mergeable = ypath in KEYED_MAPS or ypath in NESTED_MAPS or (len(ypath) == 1 and ypath[0] in ID_LISTS)
    allowed = _overridden(name, overrides)
    if allowed and not mergeable:  # a section named in overrides is still merged item by item
        used.add(allowed)
        take_top.graft(result, ypath, ypath)
        return top_value
    if ypath[:1] == ("facts",) and len(ypath) == 2 and isinstance(top_value, dict) and "only" in top_value:
        return _narrow(ypath, top_value, base_value, top, take_base, result, problems)
    if ypath in KEYED_MAPS or ypath in NESTED_MAPS:
        if not isinstance(top_value, dict) or not isinstance(base_value, dict):
            take_top.graft(result, ypath, ypath)  # the compiler reports the wrong type
            return top_value
        merged: dict = {}
        for key in dict.fromkeys([*base_value, *top_value]):
            here = ypath + (key,)
            if key in top_value and key in base_value:
                merged[key] = _merge_value(here, top_value[key], base_value[key], top, take_top, take_base, result,
                                           overrides, used, problems, origins)
            elif key in top_value:
                merged[key] = top_value[key]
                take_top.graft(result, here, here)
            else:
                merged[key] = base_value[key]
                take_base.graft(result, here, here)
        result.marks.setdefault(ypath, top.mark(ypath))
        return merged
    if ypath[0] in ID_LISTS and len(ypath) == 1 and isinstance(top_value, list) and isinstance(base_value, list):
        return _merge_items(ypath[0], top_value, base_value, top, take_top, take_base, result, overrides, used,
                            problems, origins)
    problems.append(_problem(top.key_marks.get(ypath) or top.mark(ypath), name, "override-needed",
                             f"{name!r} is also defined in {base_path}; to replace it, list {name!r} under "
                             "'overrides:' at the top of this file"))
    return top_value


def _merge_items(section: str, top_items: list, base_items: list, top: read.Document, take_top: _Grafter,
                 take_base: _Grafter, result: read.Document, overrides: dict, used: set, problems: list,
                 origins: dict) -> list:
    def item_id(item: Any) -> Optional[str]:
        return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None

    top_by_id = {item_id(item): index for index, item in enumerate(top_items) if item_id(item)}
    base_ids = {item_id(item) for item in base_items if item_id(item)}
    placed: list[tuple[Any, _Grafter, int]] = []
    for index, item in enumerate(top_items):
        if item_id(item) not in base_ids:
            placed.append((item, take_top, index))
    for index, item in enumerate(base_items):
        ident = item_id(item)
        if ident in top_by_id:
            name = f"{section}.{ident}"
            where = top_by_id[ident]
            base_path = origins.get(name, "the file it extends")
            allowed = _overridden(name, overrides)
            if allowed:
                used.add(allowed)
            else:
                problems.append(_problem(top.mark((section, where, "id")), f"{section}[{where}].id", "override-needed",
                                         f"{section} {ident!r} is also defined in {base_path}; to replace it, list "
                                         f"{name!r} under 'overrides:' at the top of this file"))
            placed.append((top_items[where], take_top, where))
        else:
            placed.append((item, take_base, index))
    merged = []
    for position, (item, grafter, old_index) in enumerate(placed):
        grafter.graft(result, (section, old_index), (section, position))
        merged.append(item)
    result.marks.setdefault((section,), top.mark((section,)))
    return merged


def _overridden(name: str, overrides: dict) -> Optional[str]:
    """The `overrides:` entry that allows replacing ``name`` (itself, or a section holding it)."""
    parts = name.split(".")
    for length in range(len(parts), 0, -1):
        candidate = ".".join(parts[:length])
        if candidate in overrides:
            return candidate
    return None


def _narrow(ypath: tuple, top_value: dict, base_value: Any, top: read.Document, take_base: _Grafter,
            result: read.Document, problems: list) -> Any:
    """A shared choice fact with only some of its choices (`only: [ids]`)."""
    only = top_value.get("only")
    mark = top.mark(ypath + ("only",))
    where = ".".join(ypath) + ".only"
    choices = base_value.get("choices") if isinstance(base_value, dict) else None
    if len(top_value) != 1 or not isinstance(only, list) or not only or not isinstance(choices, list):
        problems.append(_problem(mark, where, "type", "only narrows a shared choice fact: a list of its choice ids, "
                                                       "alone in the fact's mapping"))
        return base_value
    ids = [choice.get("id") for choice in choices if isinstance(choice, dict)]
    unknown = [item for item in only if item not in ids]
    if unknown:
        problems.append(_problem(mark, where, "unknown-choice",
                                 f"{unknown[0]!r} is not a choice of the shared fact ({', '.join(map(str, ids))})"))
        return base_value
    take_base.graft(result, ypath, ypath)
    kept = [index for index, choice_id in enumerate(ids) if choice_id in only]
    for kind in ("marks", "key_marks", "raw"):  # the kept choices' locations, renumbered
        table = getattr(result, kind)
        for key in [key for key in table if key[:3] == ypath + ("choices",) and len(key) > 3]:
            del table[key]
    for new, old in enumerate(kept):
        for kind, located, value in take_base.by_prefix.get(ypath + ("choices",), ()):
            if len(located) > 3 and located[3] == old:
                getattr(result, kind)[ypath + ("choices", new) + located[4:]] = value
    narrowed = dict(base_value)
    narrowed["choices"] = [choices[index] for index in kept]
    if narrowed.get("default") is not None and narrowed["default"] not in only:
        narrowed.pop("default")
    return narrowed


def _overrides(top: read.Document, problems: list) -> dict[str, read.Mark]:
    data = top.data if isinstance(top.data, dict) else {}
    value = data.get("overrides")
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(_problem(top.mark(("overrides",)), "overrides", "type",
                                 "overrides is a list of what this file replaces, e.g. [facts.payment_method, rules.first-request]"))
        return {}
    return {item: top.mark(("overrides", index)) for index, item in enumerate(value)}


def _get(data: Any, ypath: tuple) -> Any:
    for part in ypath:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _problem(mark: read.Mark, where: str, code: str, message: str) -> Problem:
    return Problem(mark.path, mark.line, mark.column, "error", code, where, message)


def yaml_problem(problem: read.YamlProblem) -> Problem:
    mark = problem.mark or read.Mark(1, 1, problem.path)
    return Problem(problem.path, mark.line, mark.column, "error", problem.code, "", problem.message)


def combined_sha(layers) -> str:
    """One hash for a chain of files: the file's own for a single file, else over each file's."""
    if len(layers) == 1:
        return layers[0].sha256
    return hashlib.sha256("".join(layer.sha256 for layer in layers).encode("ascii")).hexdigest()

