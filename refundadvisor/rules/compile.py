"""Validate a rule document (all its layers merged) and compile it into a RuleSet.

Validation collects every problem it can find, each located in the file, rather than stopping
at the first. Errors make the file unusable; warnings only fail with ``--strict``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from datetime import datetime, timezone
from typing import Any, Optional

from . import read
from ..conditions import ALL_OPERATORS, OPERATORS_BY_TYPE, All, Any_, Condition, Not, Test, facts_used
from ..model import (
    DERIVED_FACTS,
    ENGINE_VERSION,
    EVIDENCE_FACT,
    FACT_TYPES,
    RULE_FORMAT,
    SURENESS,
    Band,
    Bound,
    ChecklistItem,
    Choice,
    Deadline,
    DraftTemplate,
    Estimate,
    Expectation,
    FactSpec,
    HISTORY_COUNTS,
    HistoryFact,
    Outcome,
    Parameter,
    Policy,
    Rule,
    RuleSet,
    RuleTest,
    Source,
    describe_effect,
)
from .problems import Problem, RulesError
from ..facts import MAX_SPAN_DAYS, MOMENTS_SHOWN, in_range

_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

TOP_KEYS = (
    "format", "requires_engine", "extends", "overrides", "default_platform", "platform", "title", "currency", "policy", "facts", "checklist",
    "outcomes", "scoring", "bands", "always_checklist", "always_next_steps", "deadlines",
    "refund_estimates", "draft", "history", "examples", "rules", "tests", "contact",
)
RULE_KEYS = ("id", "why", "source", "when", "score", "cap", "floor", "settles", "outcome", "checklist",
             "warnings", "next_steps", "draft_lines", "draft_notes", "examples")
# Placeholders the support-request draft fills when it is written, besides the facts.
DRAFT_NAMES = ("title", "currency", "since")
FACT_KEYS = ("type", "question", "help", "choices", "default", "min", "max", "unit", "ask_when")


def format_ypath(ypath: tuple) -> str:
    """('rules', 3, 'when') -> 'rules[3].when'."""
    text = ""
    for part in ypath:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Bounds that keep validating any file linear in its size: problems reported (the rest are
# counted) and the options a did-you-mean compares against (a real file has a few dozen).
MAX_PROBLEMS = 100
MAX_SUGGESTION_OPTIONS = 500
SHOWN_CHARS = 60


def did_you_mean(word: Any, options) -> str:
    """A ' (did you mean 'x'?)' hint, or '' (always '' for a long word or too many options,
    where a comparison with each would cost more than the hint is worth)."""
    if not isinstance(word, (str, int)) or isinstance(word, bool) or len(str(word)) > SHOWN_CHARS:
        return ""
    options = list(options)
    if len(options) > MAX_SUGGESTION_OPTIONS:
        return ""
    close = difflib.get_close_matches(str(word), [str(option) for option in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def quoted(value: Any) -> str:
    """A value from the file as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 12]}... ({len(text)} characters)"


def listed(items, limit: int = 12) -> str:
    """Ids joined for a message: the first dozen, then how many more."""
    items = [str(item) for item in items]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def is_among(value: Any, known) -> bool:
    """Whether a value from the file is one of the known ids; False for a list or a mapping
    where an id belongs (never a TypeError)."""
    try:
        return value in known
    except TypeError:
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


class _Compiler:
    """Walks a parsed rule file, collecting problems and building the RuleSet."""

    def __init__(self, document: read.Document):
        self.doc = document
        self.problems: list[Problem] = []
        self.params: dict[str, Parameter] = {}
        self.facts: dict[str, FactSpec] = {}
        self.title = ""
        self.is_base = False
        self.checklist_ids: tuple[str, ...] = ()
        self.own_facts: Optional[set] = None  # facts the asked-for file declares itself (None: all)
        self.unreported = 0  # problems beyond MAX_PROBLEMS: counted, not listed
        self.unreported_errors = 0

    def did_you_mean(self, word: Any, options) -> str:
        """A hint while problems are still being listed; none once they are only counted."""
        return "" if len(self.problems) >= MAX_PROBLEMS else did_you_mean(word, options)

    # -- reporting ----------------------------------------------------------------------------
    def report(self, severity: str, ypath: tuple, code: str, message: str, at_key: bool = False) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.unreported += 1
            self.unreported_errors += severity == "error"  # still makes the file unusable
            return
        mark = self.doc.key_marks.get(ypath) if at_key else None
        mark = mark or self.doc.mark(ypath)
        self.problems.append(Problem(mark.path or self.doc.path, mark.line, mark.column, severity, code,
                                     format_ypath(ypath), message))

    def error(self, ypath: tuple, code: str, message: str, at_key: bool = False) -> None:
        self.report("error", ypath, code, message, at_key)

    def warn(self, ypath: tuple, code: str, message: str) -> None:
        self.report("warning", ypath, code, message)

    # -- typed access ---------------------------------------------------------------------------
    def mapping(self, value: Any, ypath: tuple, keys: tuple[str, ...] | None = None) -> dict:
        if not isinstance(value, dict):
            self.error(ypath, "type", f"expected a mapping, got {_type_name(value)}")
            return {}
        if keys is not None:
            for key in value:
                if key not in keys:
                    self.error(ypath + (key,), "unknown-key", f"unknown key {quoted(key)}{self.did_you_mean(key, keys)}", at_key=True)
        return value

    def listing(self, value: Any, ypath: tuple) -> list:
        if not isinstance(value, list):
            self.error(ypath, "type", f"expected a list, got {_type_name(value)}")
            return []
        return value

    def text(self, container: dict, key: str, ypath: tuple, required: bool = True, default: str = "") -> str:
        if key not in container:
            if required:
                self.error(ypath, "missing-key", f"{quoted(key)} is required")
            return default
        value = container[key]
        if not isinstance(value, str) or not value.strip():
            hint = ""
            if isinstance(value, bool):
                hint = f" ({quoted(self.doc.raw.get(ypath + (key,), value))} was read as true/false: quote it)"
            self.error(ypath + (key,), "type", f"expected text, got {_type_name(value)}{hint}")
            return default
        return value.strip()

    def identifier(self, container: dict, key: str, ypath: tuple) -> str:
        value = self.text(container, key, ypath)
        if value and not _ID.match(value):
            self.error(ypath + (key,), "bad-id", f"{quoted(value)} is not a valid id: use lowercase letters, digits, '-' and '_'")
        return value

    def integer(self, container: dict, key: str, ypath: tuple, required: bool = True, default=None):
        if key not in container:
            if required:
                self.error(ypath, "missing-key", f"{quoted(key)} is required")
            return default
        value = container[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(ypath + (key,), "type", f"expected a whole number, got {_type_name(value)}")
            return default
        return value

    def id_list(self, value: Any, ypath: tuple, known, what: str) -> tuple[str, ...]:
        items = []
        for index, item in enumerate(self.listing(value, ypath)):
            if not is_among(item, known):
                self.error(ypath + (index,), f"unknown-{what.replace(' ', '-')}", f"no {what} {quoted(item)}{self.did_you_mean(item, known)}")
            else:
                items.append(item)
        return tuple(items)

    def text_list(self, value: Any, ypath: tuple, later: tuple[str, ...] = ()) -> tuple[str, ...]:
        items = []
        for index, item in enumerate(self.listing(value, ypath)):
            if not isinstance(item, str) or not item.strip():
                self.error(ypath + (index,), "type", f"expected text, got {_type_name(item)}")
            else:
                items.append(self.fill(item.strip(), ypath + (index,), later))
        return tuple(items)

    def fill(self, text: str, ypath: tuple, later: tuple[str, ...] = ()) -> str:
        """Replace {parameter} placeholders with the parameter as written in the file; names in
        ``later`` (facts, in draft texts) are left for when the text is used."""

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in self.params:
                return self.params[name].shown
            if name == "title" and self.title:
                return self.title
            if name in later:
                return match.group(0)
            known = [*self.params, *later]
            self.error(ypath, "unknown-placeholder",
                       f"no parameter{' or fact' if later else ''} {quoted(name)} for the placeholder {{{name}}}{self.did_you_mean(name, known)}")
            return match.group(0)

        return _PLACEHOLDER.sub(replace, text)

    def draft_names(self) -> tuple[str, ...]:
        return (*self.facts, *DRAFT_NAMES)

    # -- sections -------------------------------------------------------------------------------
    def compile(self) -> Optional[RuleSet]:
        data = self.doc.data
        if not isinstance(data, dict):
            self.error((), "type", "a rule file must be a mapping of sections (format, policy, facts, rules, ...)")
            return None
        self.mapping(data, (), TOP_KEYS)
        fmt = self.integer(data, "format", ())
        if fmt is not None and fmt != RULE_FORMAT:
            self.error(("format",), "format", f"format {fmt} is not supported; this refundadvisor reads format {RULE_FORMAT}")
        needs = self.integer(data, "requires_engine", ())
        if needs is not None and needs > ENGINE_VERSION:
            self.error(("requires_engine",), "engine-version",
                       f"this file needs engine version {needs}, but this refundadvisor has {ENGINE_VERSION}: upgrade refundadvisor")
        # a file without a platform is a shared base that platforms build on (extends:)
        self.is_base = "platform" not in data
        if "default_platform" in data:
            self.identifier(data, "default_platform", ())
        platform = "" if self.is_base else self.identifier(data, "platform", ())
        title = self.title = self.text(data, "title", (), required=not self.is_base, default="the platform")
        currency = self.text(data, "currency", (), required=not self.is_base)
        policy = self.policy(data.get("policy"), ("policy",))
        self.facts = self.fact_specs(data.get("facts"), ("facts",))
        evidence_ids = self.facts[EVIDENCE_FACT].choice_ids() if EVIDENCE_FACT in self.facts else ()
        checklist = self.checklist(data.get("checklist", []), ("checklist",), evidence_ids)
        self.checklist_ids = tuple(checklist)
        outcomes = self.outcomes(data.get("outcomes"), ("outcomes",))
        scoring = self.mapping(data.get("scoring"), ("scoring",), ("start", "min", "max"))
        low = self.integer(scoring, "min", ("scoring",), default=0)
        high = self.integer(scoring, "max", ("scoring",), default=100)
        start = self.integer(scoring, "start", ("scoring",), default=low)
        if start is not None and not (low <= start <= high):
            self.error(("scoring", "start"), "range", f"start {start} is outside {low}..{high}")
        bands = self.bands(data.get("bands"), ("bands",), low, high, outcomes)
        always_checklist = self.id_list(data.get("always_checklist", []), ("always_checklist",), checklist, "checklist item")
        always_next = self.text_list(data.get("always_next_steps", []), ("always_next_steps",))
        deadlines = self.deadlines(data.get("deadlines", []), ("deadlines",), policy)
        estimates = self.estimates(data.get("refund_estimates", []), ("refund_estimates",))
        draft = self.draft(data["draft"], ("draft",), outcomes) if "draft" in data else None
        history_facts, same_as = self.history(data.get("history", {}), ("history",))
        rules = self.rules(data.get("rules"), ("rules",), checklist, outcomes, policy, low, high)
        known = {"rules": [rule.id for rule in rules], "bands": [band.id for band in bands],
                 "outcomes": list(outcomes), "checklist": list(checklist)}
        tests = [self.rule_test(entry, ("tests", index), known, None)
                 for index, entry in enumerate(self.listing(data.get("tests", []), ("tests",)))]
        rule_entries = data.get("rules") if isinstance(data.get("rules"), list) else []  # else reported by rules()
        for index, entry in enumerate(rule_entries):
            if isinstance(entry, dict) and "examples" in entry:
                where = ("rules", index, "examples")
                tests += [self.rule_test(example, where + (number,), known, entry.get("id"))
                          for number, example in enumerate(self.listing(entry["examples"], where))]
        tests = tuple(test for test in tests if test is not None)
        other_conditions = [item.when for item in (*deadlines, *estimates) if item.when is not None]
        self.unused_warnings(rules, checklist, always_checklist, other_conditions)
        if self.unreported_errors or any(problem.severity == "error" for problem in self.problems):
            return None
        return RuleSet(
            path=self.doc.path, sha256="", platform=platform, title=title, currency=currency,
            policy=policy, facts=self.facts, checklist=checklist, outcomes=outcomes, bands=bands,
            rules=rules, score_start=start, score_min=low, score_max=high,
            always_checklist=always_checklist, always_next_steps=always_next, tests=tests,
            deadlines=deadlines, estimates=estimates, draft=draft,
            history_facts=history_facts, history_same_as=same_as,
            examples=self.examples(data.get("examples", {}), ("examples",)),
            contact=self.contact(data.get("contact"), ("contact",), policy) if "contact" in data else None,
        )

    def contact(self, value: Any, ypath: tuple, policy: Policy) -> dict[str, dict[str, str]]:
        """Where to write: id -> {label, url or email, source}; each entry gives a url or an email."""
        result = {}
        for key, entry in self.mapping(value, ypath).items():
            where = ypath + (key,)
            entry = self.mapping(entry, where, ("label", "url", "email", "source"))
            link = {"label": self.text(entry, "label", where)}
            for name in ("url", "email"):
                if name in entry:
                    link[name] = self.text(entry, name, where)
            if "url" not in entry and "email" not in entry:
                self.error(where, "missing-key", "a contact entry needs a url or an email")
            if "source" in entry:
                source = link["source"] = self.text(entry, "source", where)
                if source and source not in policy.sources:
                    self.error(where + ("source",), "unknown-source",
                               f"no source {source!r} in policy.sources{did_you_mean(source, policy.sources)}")
            result[str(key)] = link
        return result

    def policy(self, value: Any, ypath: tuple) -> Policy:
        section = self.mapping(value, ypath, ("name", "verified_on", "note", "sources", "parameters"))
        name = self.text(section, "name", ypath, required=not self.is_base)
        verified = self.text(section, "verified_on", ypath, required=not self.is_base)
        if verified and not re.match(r"^\d{4}-\d{2}-\d{2}$", verified):
            self.error(ypath + ("verified_on",), "date", f"{quoted(verified)} is not a date written YYYY-MM-DD")
        note = self.text(section, "note", ypath, required=False)
        sources: dict[str, Source] = {}
        for source_id, entry in self.mapping(section.get("sources"), ypath + ("sources",)).items():
            where = ypath + ("sources", source_id)
            entry = self.mapping(entry, where, ("title", "url", "sureness"))
            sureness = self.text(entry, "sureness", where)
            if sureness and sureness not in SURENESS:
                self.error(where + ("sureness",), "unknown-sureness",
                           f"sureness {quoted(sureness)} is not one of {', '.join(SURENESS)}{self.did_you_mean(sureness, SURENESS)}")
            url = self.text(entry, "url", where, required=False) or None
            sources[str(source_id)] = Source(str(source_id), self.text(entry, "title", where), url, sureness)
        for param_name, entry in self.mapping(section.get("parameters", {}), ypath + ("parameters",)).items():
            where = ypath + ("parameters", param_name)
            entry = self.mapping(entry, where, ("value", "source", "meaning"))
            number = entry.get("value")
            if not _is_number(number):
                self.error(where + ("value",), "type", f"expected a number, got {_type_name(number)}")
                continue
            source = self.text(entry, "source", where)
            if source and source not in sources:
                self.error(where + ("source",), "unknown-source", f"no source {quoted(source)} in policy.sources{self.did_you_mean(source, sources)}")
            shown = self.doc.raw.get(where + ("value",), str(number))
            self.params[str(param_name)] = Parameter(str(param_name), number, shown, source,
                                                     self.text(entry, "meaning", where, required=False))
        return Policy(name, verified, note, sources, dict(self.params))

    def fact_specs(self, value: Any, ypath: tuple) -> dict[str, FactSpec]:
        section = self.mapping(value, ypath)
        specs: dict[str, FactSpec] = {}
        raw_specs = {}
        for name, entry in section.items():
            where = ypath + (name,)
            if name in DERIVED_FACTS:
                self.error(where, "reserved-fact", f"{quoted(name)} is computed by refundadvisor and cannot be declared", at_key=True)
                continue
            if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]*$", name):
                self.error(where, "bad-id", f"{quoted(name)} is not a valid fact name: use lowercase letters, digits and '_'")
                continue
            entry = self.mapping(entry, where, FACT_KEYS)
            kind = self.text(entry, "type", where)
            if not kind:
                continue  # reported by text(): nothing below can be checked without a type
            if kind not in FACT_TYPES:
                self.error(where + ("type",), "unknown-type",
                           f"fact type {quoted(kind)} is not one of {', '.join(FACT_TYPES)}{self.did_you_mean(kind, FACT_TYPES)}")
                continue
            choices: tuple[Choice, ...] = ()
            if kind in ("choice", "choices"):
                choices = self.choices(entry.get("choices"), where + ("choices",))
            elif "choices" in entry:
                self.error(where + ("choices",), "unexpected-key", f"a {kind} fact has no choices")
            specs[name] = FactSpec(name=name, type=kind, question=self.text(entry, "question", where),
                                   choices=choices, unit=self.text(entry, "unit", where, required=False),
                                   ids=tuple(choice.id for choice in choices),
                                   help=self.text(entry, "help", where, required=False))
            raw_specs[name] = (entry, where)
        self.facts = specs
        # defaults, bounds and conditions may refer to other facts, so they come second
        for name, (entry, where) in raw_specs.items():
            spec = specs[name]
            updates: dict[str, Any] = {}
            if "default" in entry:
                updates.update(self.fact_default(spec, entry["default"], where + ("default",)))
            for key in ("min", "max"):
                if key in entry:
                    updates[key] = self.bound(spec, entry[key], where + (key,))
            if "ask_when" in entry:
                updates["ask_when"] = self.condition(entry["ask_when"], where + ("ask_when",))
            if updates:
                specs[name] = spec._replace(**updates)
        return specs

    def choices(self, value: Any, ypath: tuple) -> tuple[Choice, ...]:
        items = self.listing(value, ypath)
        if not items and isinstance(value, list):
            self.error(ypath, "empty", "a choice fact needs at least one choice")
        result, seen = [], set()
        for index, entry in enumerate(items):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "label"))
            choice_id = self.identifier(entry, "id", where)
            if choice_id in seen:
                self.error(where + ("id",), "duplicate-id", f"choice {quoted(choice_id)} is listed twice")
            seen.add(choice_id)
            result.append(Choice(choice_id, self.text(entry, "label", where)))
        return tuple(result)

    def fact_value_ok(self, spec: FactSpec, value: Any, ypath: tuple) -> bool:
        """Check a constant against a fact's type, reporting a problem if it does not fit."""
        kind = spec.type
        ok = {
            "choice": isinstance(value, str) and value in spec.choice_ids(),
            "choices": isinstance(value, list) and all(item in spec.choice_ids() for item in value),
            "number": _is_number(value),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "time": False,
        }[kind]
        if not ok:
            if kind in ("choice", "choices"):
                wrong = value if not isinstance(value, list) else next((v for v in value if v not in spec.choice_ids()), value)
                self.error(ypath, "unknown-choice", f"{quoted(wrong)} is not a choice of {quoted(spec.name)} "
                           f"({listed(spec.choice_ids())}){self.did_you_mean(wrong, spec.choice_ids())}")
            else:
                self.error(ypath, "type", f"{quoted(spec.name)} is a {kind} fact; {_type_name(value)} does not fit")
        return ok

    def fact_default(self, spec: FactSpec, value: Any, ypath: tuple) -> dict:
        if isinstance(value, dict):
            ref = self.fact_ref(value, ypath, spec)
            return {"default_fact": ref, "has_default": True} if ref else {}
        if self.fact_value_ok(spec, value, ypath):
            return {"default": tuple(value) if isinstance(value, list) else value, "has_default": True}
        return {}

    def fact_ref(self, value: dict, ypath: tuple, spec: FactSpec) -> Optional[str]:
        self.mapping(value, ypath, ("fact",))
        name = value.get("fact")
        other = self.facts.get(name) if isinstance(name, str) else None
        if other is None:
            self.error(ypath + ("fact",), "unknown-fact", f"no fact {quoted(name)}{self.did_you_mean(name, self.facts)}")
            return None
        if other.type not in ("number", "integer") or spec.type not in ("number", "integer"):
            self.error(ypath + ("fact",), "type", f"{quoted(spec.name)} can only refer to a number fact, and {quoted(name)} is a {other.type} fact")
            return None
        return name

    def bound(self, spec: FactSpec, value: Any, ypath: tuple) -> Optional[Bound]:
        if spec.type not in ("number", "integer"):
            self.error(ypath, "unexpected-key", f"a {spec.type} fact has no bounds")
            return None
        if isinstance(value, dict):
            ref = self.fact_ref(value, ypath, spec)
            return Bound(fact=ref) if ref else None
        if not _is_number(value):
            self.error(ypath, "type", f"expected a number or {{fact: name}}, got {_type_name(value)}")
            return None
        return Bound(value=value)

    def checklist(self, value: Any, ypath: tuple, evidence_ids) -> dict[str, ChecklistItem]:
        items: dict[str, ChecklistItem] = {}
        for index, entry in enumerate(self.listing(value, ypath)):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "item", "why", "evidence", "placeholder"))
            item_id = self.identifier(entry, "id", where)
            if item_id in items:
                self.error(where + ("id",), "duplicate-id", f"checklist item {quoted(item_id)} is listed twice")
            evidence = self.id_list(entry.get("evidence", []), where + ("evidence",), evidence_ids, "evidence kind")
            placeholder = self.text(entry, "placeholder", where, required=False)
            items[item_id] = ChecklistItem(item_id, self.fill(self.text(entry, "item", where), where),
                                           self.fill(self.text(entry, "why", where), where), evidence,
                                           self.fill(placeholder, where) if placeholder else "")
        return items

    def outcomes(self, value: Any, ypath: tuple) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        items = self.listing(value, ypath)
        if not items and isinstance(value, list):
            self.error(ypath, "empty", "at least one outcome is needed")
        for index, entry in enumerate(items):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "text"))
            outcome_id = self.identifier(entry, "id", where)
            if outcome_id in outcomes:
                self.error(where + ("id",), "duplicate-id", f"outcome {quoted(outcome_id)} is listed twice")
            outcomes[outcome_id] = Outcome(outcome_id, self.fill(self.text(entry, "text", where), where), index)
        return outcomes

    def bands(self, value: Any, ypath: tuple, low: int, high: int, outcomes) -> tuple[Band, ...]:
        bands: list[Band] = []
        seen: set[str] = set()
        for index, entry in enumerate(self.listing(value, ypath)):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "label", "from", "to", "outcome"))
            band_id = self.identifier(entry, "id", where)
            if band_id in seen:
                self.error(where + ("id",), "duplicate-id", f"band {quoted(band_id)} is listed twice")
            seen.add(band_id)
            start, end = self.integer(entry, "from", where), self.integer(entry, "to", where)
            outcome = self.text(entry, "outcome", where)
            if outcome and outcome not in outcomes:
                self.error(where + ("outcome",), "unknown-outcome", f"no outcome {quoted(outcome)} ({listed(outcomes)}){self.did_you_mean(outcome, outcomes)}")
            if start is None or end is None:
                continue
            if start > end:
                self.error(where, "band-range", f"band {quoted(band_id)} runs from {start} to {end}: 'from' must not exceed 'to'")
                continue
            bands.append(Band(band_id, self.text(entry, "label", where), start, end, outcome))
        if not bands:
            if isinstance(value, list):
                self.error(ypath, "empty", "at least one band is needed")
            return ()
        self.check_band_cover(bands, ypath, low, high)
        return tuple(bands)

    def check_band_cover(self, bands: list[Band], ypath: tuple, low: int, high: int) -> None:
        """Bands must cover every score from low to high exactly once (checked on the bands'
        ends, in order: the cost does not grow with the width of the score range)."""
        spans = sorted((max(band.low, low), min(band.high, high), band.id) for band in bands
                       if max(band.low, low) <= min(band.high, high))
        gaps: list[int] = []  # the first score of each gap, and how many scores are left out
        missing, covered_to, covered_by = 0, low - 1, ""
        for start, end, band_id in spans:
            if start <= covered_to:
                self.error(ypath, "band-overlap", f"bands {quoted(covered_by)} and {quoted(band_id)} overlap at score {start}")
                return
            if start > covered_to + 1:
                gaps.append(covered_to + 1)
                missing += start - covered_to - 1
            covered_to, covered_by = end, band_id
        if covered_to < high:
            gaps.append(covered_to + 1)
            missing += high - covered_to
        if gaps:
            self.error(ypath, "band-gap", f"no band covers score {gaps[0]}" + (f" (nor {missing - 1} others)" if missing > 1 else ""))

    def rules(self, value: Any, ypath: tuple, checklist, outcomes, policy: Policy, low: int, high: int) -> tuple[Rule, ...]:
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        items = self.listing(value, ypath)
        if not items and isinstance(value, list):
            self.error(ypath, "empty", "at least one rule is needed")
        for index, entry in enumerate(items):
            where = ypath + (index,)
            entry = self.mapping(entry, where, RULE_KEYS)
            if not entry:
                continue
            rule_id = self.identifier(entry, "id", where)
            if rule_id in seen:
                self.error(where + ("id",), "duplicate-id", f"rule id {quoted(rule_id)} is used twice (first at line {seen[rule_id]})")
            seen[rule_id] = self.doc.mark(where).line
            sources = entry.get("source")
            sources = [sources] if isinstance(sources, str) else sources
            if sources is None:
                self.error(where, "missing-key", "'source' is required: cite a policy source id")
                sources = []
            source_ids = self.id_list(sources, where + ("source",), policy.sources, "source")
            if "when" not in entry:
                self.error(where, "missing-key", "'when' is required")
                condition = None
            else:
                condition = self.condition(entry["when"], where + ("when",))
            score = self.integer(entry, "score", where, required=False, default=0)
            cap = self.integer(entry, "cap", where, required=False)
            floor = self.integer(entry, "floor", where, required=False)
            for key, number in (("cap", cap), ("floor", floor)):
                if number is not None and not low <= number <= high:
                    self.error(where + (key,), "range", f"{key} {number} is outside the score range {low}..{high}")
            settles = entry.get("settles", False)
            if not isinstance(settles, bool):
                self.error(where + ("settles",), "type", "settles is true or false")
            elif settles and floor is None:
                self.error(where + ("settles",), "settles-without-floor",
                           "a rule that settles the verdict needs a 'floor' (the score it guarantees)")
            outcome = entry.get("outcome")
            if outcome is not None and not is_among(outcome, outcomes):
                self.error(where + ("outcome",), "unknown-outcome", f"no outcome {quoted(outcome)} ({listed(outcomes)}){self.did_you_mean(outcome, outcomes)}")
            effects = ("score", "cap", "floor", "outcome", "checklist", "warnings", "next_steps")
            if not any(key in entry for key in effects):
                self.warn(where, "no-effect", f"rule {quoted(rule_id)} has no effect (score, cap, floor, outcome, checklist, warnings or next_steps)")
            if condition is None:
                continue
            rules.append(Rule(
                id=rule_id, why=self.fill(self.text(entry, "why", where), where + ("why",)), sources=source_ids,
                when=condition, score=score or 0, cap=cap, floor=floor, outcome=outcome,
                checklist=self.id_list(entry.get("checklist", []), where + ("checklist",), checklist, "checklist item"),
                warnings=self.text_list(entry.get("warnings", []), where + ("warnings",)),
                next_steps=self.text_list(entry.get("next_steps", []), where + ("next_steps",)),
                line=self.doc.mark(where).line,
                effect=describe_effect(score or 0, cap, floor, outcome, settles is True),
                draft_lines=self.text_list(entry.get("draft_lines", []), where + ("draft_lines",), self.draft_names()),
                draft_notes=self.text_list(entry.get("draft_notes", []), where + ("draft_notes",)),
                settles=settles is True,
            ))
        return tuple(rules)

    # -- deadlines, refund estimates and the support-request draft -----------------------------
    def number_or_param(self, container: dict, key: str, ypath: tuple, required: bool = True) -> Optional[float]:
        if key not in container:
            if required:
                self.error(ypath, "missing-key", f"{quoted(key)} is required")
            return None
        value = container[key]
        if isinstance(value, dict):
            self.mapping(value, ypath + (key,), ("param",))
            name = value.get("param")
            if not is_among(name, self.params):
                self.error(ypath + (key, "param"), "unknown-parameter",
                           f"no parameter {quoted(name)} in policy.parameters{self.did_you_mean(name, self.params)}")
                return None
            return self.params[name].value
        if not _is_number(value):
            self.error(ypath + (key,), "type", f"expected a number or {{param: name}}, got {_type_name(value)}")
            return None
        return value

    def optional_condition(self, entry: dict, ypath: tuple):
        return self.condition(entry["when"], ypath + ("when",)) if "when" in entry else None

    def deadlines(self, value: Any, ypath: tuple, policy: Policy) -> tuple[Deadline, ...]:
        result, seen = [], set()
        for index, entry in enumerate(self.listing(value, ypath)):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "what", "after", "unit", "approximate", "source", "when"))
            deadline_id = self.identifier(entry, "id", where)
            if deadline_id in seen:
                self.error(where + ("id",), "duplicate-id", f"deadline {quoted(deadline_id)} is listed twice")
            seen.add(deadline_id)
            after = self.number_or_param(entry, "after", where)
            unit = self.text(entry, "unit", where)
            if unit and unit not in ("hours", "days"):
                self.error(where + ("unit",), "unknown-unit", f"unit {quoted(unit)} is not hours or days{self.did_you_mean(unit, ('hours', 'days'))}")
            source = self.text(entry, "source", where)
            if source and source not in policy.sources:
                self.error(where + ("source",), "unknown-source", f"no source {quoted(source)}{self.did_you_mean(source, policy.sources)}")
            approximate = entry.get("approximate", False)
            if not isinstance(approximate, bool):
                self.error(where + ("approximate",), "type", "approximate is true or false")
            if after is not None and after < 0:
                self.error(where + ("after",), "range", "a deadline cannot close before the charge")
            elif after is not None and after > MAX_SPAN_DAYS * (24 if unit == "hours" else 1):
                self.error(where + ("after",), "range", f"a deadline more than {MAX_SPAN_DAYS} days after the charge "
                                                        "is a mistake (it would leave the calendar for a late charge)")
            result.append(Deadline(deadline_id, self.fill(self.text(entry, "what", where), where), after or 0,
                                   unit, bool(approximate), source, self.optional_condition(entry, where)))
        return tuple(result)

    def estimates(self, value: Any, ypath: tuple) -> tuple[Estimate, ...]:
        result, seen = [], set()
        for index, entry in enumerate(self.listing(value, ypath)):
            where = ypath + (index,)
            entry = self.mapping(entry, where, ("id", "when", "returns", "up_to", "fee", "note", "settled"))
            estimate_id = self.identifier(entry, "id", where)
            if estimate_id in seen:
                self.error(where + ("id",), "duplicate-id", f"refund estimate {quoted(estimate_id)} is listed twice")
            seen.add(estimate_id)
            returns = entry.get("returns")
            if returns is not None and (not is_among(returns, self.facts) or self.facts[returns].type not in ("number", "integer")):
                numbers = [name for name, spec in self.facts.items() if spec.type in ("number", "integer")]
                self.error(where + ("returns",), "unknown-fact",
                           f"returns names a number fact ({listed(numbers)}) or is left out; got {quoted(returns)}")
            fee_percent = fee_minimum = None
            if "fee" in entry:
                fee = self.mapping(entry["fee"], where + ("fee",), ("percent", "minimum"))
                fee_percent = self.number_or_param(fee, "percent", where + ("fee",))
                fee_minimum = self.number_or_param(fee, "minimum", where + ("fee",), required=False)
            up_to, settled = entry.get("up_to", False), entry.get("settled", False)
            for key, flag in (("up_to", up_to), ("settled", settled)):
                if not isinstance(flag, bool):
                    self.error(where + (key,), "type", f"{key} is true or false")
            result.append(Estimate(estimate_id, self.fill(self.text(entry, "note", where), where), returns,
                                   bool(up_to), fee_percent, fee_minimum, self.optional_condition(entry, where),
                                   settled is True))
        return tuple(result)

    def draft(self, value: Any, ypath: tuple, outcomes) -> Optional[DraftTemplate]:
        keys = ("subject", "greeting", "account", "requests", "attached", "to_gather", "closing", "summary_item")
        entry = self.mapping(value, ypath, keys)
        names = self.draft_names()
        requests = {}
        for outcome_id, text in self.mapping(entry.get("requests", {}), ypath + ("requests",)).items():
            if outcome_id not in outcomes:
                self.error(ypath + ("requests", outcome_id), "unknown-outcome",
                           f"no outcome {quoted(outcome_id)}{self.did_you_mean(outcome_id, outcomes)}", at_key=True)
            elif not isinstance(text, str):
                self.error(ypath + ("requests", outcome_id), "type", f"expected text, got {_type_name(text)}")
            else:
                requests[outcome_id] = self.fill(text.strip(), ypath + ("requests", outcome_id), names)
        for outcome_id in outcomes:
            if outcome_id not in requests:
                self.error(ypath + ("requests",), "missing-key", f"the draft needs a request for outcome {quoted(outcome_id)}")
        return DraftTemplate(
            subject=self.fill(self.text(entry, "subject", ypath), ypath + ("subject",), names),
            greeting=self.fill(self.text(entry, "greeting", ypath), ypath + ("greeting",), names),
            account=self.text_list(entry.get("account", []), ypath + ("account",), names),
            requests=requests,
            attached=self.text(entry, "attached", ypath),
            to_gather=self.text(entry, "to_gather", ypath),
            closing=self.text_list(entry.get("closing", []), ypath + ("closing",), names),
            summary_item=self.draft_summary_item(entry, ypath),
        )

    def draft_summary_item(self, entry: dict, ypath: tuple) -> str:
        item = self.text(entry, "summary_item", ypath, required=False)
        if item and item not in self.checklist_ids:
            self.error(ypath + ("summary_item",), "unknown-checklist-item",
                       f"no checklist item {quoted(item)}{self.did_you_mean(item, self.checklist_ids)}")
            return ""
        return item

    def examples(self, value: Any, ypath: tuple) -> dict[str, tuple[str, ...]]:
        """The command-line help's examples: command name -> example lines."""
        return {str(command): self.text_list(lines, ypath + (command,))
                for command, lines in self.mapping(value, ypath).items()}

    def history(self, value: Any, ypath: tuple) -> tuple[tuple[HistoryFact, ...], str]:
        """Which facts the user's refund history fills, counting what over which window."""
        section = self.mapping(value, ypath, ("same_as", "facts"))
        same_as = ""
        if "same_as" in section:
            same_as = self.text(section, "same_as", ypath)
            if same_as and same_as not in self.facts:
                self.error(ypath + ("same_as",), "unknown-fact", f"no fact {quoted(same_as)}{self.did_you_mean(same_as, self.facts)}")
        result = []
        for index, entry in enumerate(self.listing(section.get("facts", []), ypath + ("facts",))):
            where = ypath + ("facts", index)
            entry = self.mapping(entry, where, ("fact", "counts", "within_days", "says"))
            name = self.text(entry, "fact", where)
            spec = self.facts.get(name)
            if name and spec is None:
                self.error(where + ("fact",), "unknown-fact", f"no fact {quoted(name)}{self.did_you_mean(name, self.facts)}")
            elif spec is not None and spec.type != "integer":
                self.error(where + ("fact",), "type", f"the history fills counts: {quoted(name)} is a {spec.type} fact, not an integer")
            counts = self.text(entry, "counts", where)
            if counts and counts not in HISTORY_COUNTS:
                self.error(where + ("counts",), "unknown-count",
                           f"counts is one of {', '.join(HISTORY_COUNTS)}{self.did_you_mean(counts, HISTORY_COUNTS)}")
            if counts == "similar" and not same_as:
                self.error(where + ("counts",), "missing-key", "counting similar requests needs history.same_as (e.g. cause)")
            days = self.number_or_param(entry, "within_days", where)
            if days is not None and not 0 < days <= MAX_SPAN_DAYS:
                self.error(where + ("within_days",), "range", f"within_days must be more than 0 and at most {MAX_SPAN_DAYS}")
            says = self.text(entry, "says", where)
            if says and "{n}" not in says:
                self.error(where + ("says",), "unknown-placeholder", "says must hold {n}, the count")
            if name and spec is not None and counts in HISTORY_COUNTS and days:
                result.append(HistoryFact(name, counts, float(days), says))
        return tuple(result), same_as

    # -- tests written in the rule file ---------------------------------------------------------
    def rule_test(self, entry: Any, ypath: tuple, known: dict, rule_id: Optional[str]) -> Optional[RuleTest]:
        """A test from `tests:` or a rule's `examples:` (which implies that the rule fires)."""
        entry = self.mapping(entry, ypath, ("name", "now", "facts", "expect"))
        if not entry:
            return None
        name = self.text(entry, "name", ypath, required=rule_id is None, default=f"example of {rule_id}")
        now = self.text(entry, "now", ypath, required=False) or None
        if now is not None:
            try:
                moment = datetime.fromisoformat(now)
                moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
            except (ValueError, OverflowError):
                self.error(ypath + ("now",), "date", f"{quoted(now)} is not an ISO 8601 date-time like 2026-11-30T12:00:00Z")
                now = None
            else:
                if not in_range(moment):
                    self.error(ypath + ("now",), "date", f"{quoted(now)} is outside the years refundadvisor works with ({MOMENTS_SHOWN})")
                    now = None
        facts = self.mapping(entry.get("facts"), ypath + ("facts",))
        for key in facts:
            if key not in self.facts and key != "ago":
                self.error(ypath + ("facts", key), "unknown-fact",
                           f"no fact {quoted(key)}{self.did_you_mean(key, [*self.facts, 'ago'])}", at_key=True)
        if "charged_at" in facts and now is None:
            self.error(ypath, "missing-key", "a test that gives charged_at needs 'now' so that it always gives the same result")
        expect_keys = ("band", "score", "outcome", "fired", "not_fired", "checklist_includes")
        expect = self.mapping(entry.get("expect", {}), ypath + ("expect",), expect_keys)
        where = ypath + ("expect",)
        if rule_id is None and not expect:
            self.error(ypath, "missing-key", "'expect' is required: say what the verdict should be")
        band, outcome = expect.get("band"), expect.get("outcome")
        if band is not None and band not in known["bands"]:
            self.error(where + ("band",), "unknown-band", f"no band {quoted(band)}{self.did_you_mean(band, known['bands'])}")
        if outcome is not None and outcome not in known["outcomes"]:
            self.error(where + ("outcome",), "unknown-outcome", f"no outcome {quoted(outcome)}{self.did_you_mean(outcome, known['outcomes'])}")
        score = expect.get("score")
        score_range = None
        if isinstance(score, int) and not isinstance(score, bool):
            score_range = (score, score)
        elif isinstance(score, list) and len(score) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in score):
            score_range = (score[0], score[1])
        elif score is not None:
            self.error(where + ("score",), "type", "score is a whole number or [low, high]")
        fired = self.id_list(expect.get("fired", []), where + ("fired",), known["rules"], "rule")
        if rule_id and rule_id not in fired:
            fired = (rule_id, *fired)
        return RuleTest(
            name=name, facts=dict(facts), now=now, line=self.doc.mark(ypath).line, column=self.doc.mark(ypath).column,
            expect=Expectation(
                band=band, score=score_range, outcome=outcome, fired=fired,
                not_fired=self.id_list(expect.get("not_fired", []), where + ("not_fired",), known["rules"], "rule"),
                checklist_includes=self.id_list(expect.get("checklist_includes", []), where + ("checklist_includes",),
                                                known["checklist"], "checklist item"),
            ),
        )

    # -- conditions -----------------------------------------------------------------------------
    def condition(self, value: Any, ypath: tuple) -> Optional[Condition]:
        if not isinstance(value, dict) or not value:
            self.error(ypath, "type", f"a condition is a mapping ({{fact: ..., eq: ...}} or all/any/not), got {_type_name(value)}")
            return None
        combinators = [key for key in ("all", "any", "not") if key in value]
        if combinators:
            if len(value) != 1:
                self.error(ypath, "condition-shape", f"'{combinators[0]}' must stand alone in its mapping")
                return None
            key = combinators[0]
            if key == "not":
                inner = self.condition(value["not"], ypath + ("not",))
                return Not(inner) if inner else None
            items = self.listing(value[key], ypath + (key,))
            if not items:
                self.error(ypath + (key,), "empty", f"'{key}' needs at least one condition")
                return None
            compiled = [self.condition(item, ypath + (key, index)) for index, item in enumerate(items)]
            if any(item is None for item in compiled):
                return None
            result = All(tuple(compiled)) if key == "all" else Any_(tuple(compiled))
            if key == "all":
                self.check_satisfiable(result, ypath)
            return result
        return self.test(value, ypath)

    def test(self, value: dict, ypath: tuple) -> Optional[Test]:
        if "fact" not in value:
            self.error(ypath, "condition-shape", "a condition needs 'fact' and one operator, or all/any/not")
            return None
        name = value["fact"]
        kind = self.fact_type(name)
        if kind is None:
            known = list(self.facts) + list(DERIVED_FACTS)
            self.error(ypath + ("fact",), "unknown-fact", f"no fact {quoted(name)}{self.did_you_mean(name, known)}")
            return None
        ops = [key for key in value if key != "fact"]
        unknown = [op for op in ops if op not in ALL_OPERATORS]
        if unknown:
            self.error(ypath + (unknown[0],), "unknown-operator",
                       f"unknown operator {quoted(unknown[0])}{self.did_you_mean(unknown[0], ALL_OPERATORS)}")
            return None
        if len(ops) != 1:
            self.error(ypath, "condition-shape", f"a condition takes exactly one operator, found {len(ops)}: {', '.join(ops) or 'none'}")
            return None
        op = ops[0]
        allowed = OPERATORS_BY_TYPE[kind]
        if op not in allowed:
            self.error(ypath + (op,), "operator-type", f"{quoted(op)} does not apply to {quoted(name)}, a {kind} fact; use one of {', '.join(allowed)}")
            return None
        checked = self.operand(name, kind, op, value[op], ypath + (op,))
        if checked is None:
            return None
        operand, shown = checked
        return Test(name, op, operand, shown)

    def fact_type(self, name: Any) -> Optional[str]:
        if not isinstance(name, str):
            return None
        if name in self.facts:
            return self.facts[name].type
        return DERIVED_FACTS.get(name)

    def operand(self, name: str, kind: str, op: str, value: Any, ypath: tuple):
        """Check an operator's value against the fact's type; returns (value, shown) or None."""
        if op in ("exists", "missing"):
            if value is not True:
                self.error(ypath, "type", f"'{op}' takes true")
                return None
            return True, "true"
        if op in ("in", "not_in", "between", "contains_any", "contains_all", "contains_none"):
            items = self.listing(value, ypath)
            if not items:
                if isinstance(value, list):
                    self.error(ypath, "empty", f"'{op}' needs at least one value")
                return None
            if op == "between" and len(items) != 2:
                self.error(ypath, "type", "'between' takes [low, high]")
                return None
            element_kind = "choice" if kind == "choices" else kind
            values = [self.scalar_operand(name, element_kind, item, ypath + (index,)) for index, item in enumerate(items)]
            if any(item is None for item in values):
                return None
            plain = tuple(item[0] for item in values)
            if op == "between" and plain[0] > plain[1]:
                self.error(ypath, "never-holds", f"between {plain[0]} and {plain[1]} can never hold: low exceeds high")
                return None
            return plain, "[" + ", ".join(item[1] for item in values) + "]"
        return self.scalar_operand(name, kind, value, ypath)

    def scalar_operand(self, name: str, kind: str, value: Any, ypath: tuple):
        if kind in ("number", "integer"):
            if isinstance(value, dict):
                self.mapping(value, ypath, ("param",))
                param = value.get("param")
                if not is_among(param, self.params):
                    self.error(ypath + ("param",), "unknown-parameter", f"no parameter {quoted(param)} in policy.parameters{self.did_you_mean(param, self.params)}")
                    return None
                return self.params[param].value, f"{self.params[param].shown} ({param})"
            if not _is_number(value):
                self.error(ypath, "type", f"{quoted(name)} is a number fact; compare it with a number or {{param: name}}, not {_type_name(value)}")
                return None
            return value, self.doc.raw.get(ypath, str(value))
        if kind == "boolean":
            if not isinstance(value, bool):
                self.error(ypath, "type", f"{quoted(name)} is a true/false fact; compare it with true or false, not {_type_name(value)}")
                return None
            return value, str(value).lower()
        # a choice
        ids = self.facts[name].choice_ids() if name in self.facts else ()
        if value not in ids:
            raw = self.doc.raw.get(ypath, value)
            self.error(ypath, "unknown-choice", f"{quoted(raw)} is not a choice of {quoted(name)} ({listed(ids)}){self.did_you_mean(raw, ids)}")
            return None
        return value, value

    def check_satisfiable(self, condition: All, ypath: tuple) -> None:
        """Report an 'all' whose direct tests on one fact can never hold together."""
        bounds: dict[str, list[float]] = {}
        equals: dict[str, Any] = {}
        for item in condition.items:
            if not isinstance(item, Test):
                continue
            low, high = bounds.setdefault(item.fact, [-math.inf, math.inf])
            if item.op in ("gt", "gte"):
                bounds[item.fact][0] = max(low, item.value)
            elif item.op in ("lt", "lte"):
                bounds[item.fact][1] = min(high, item.value)
            elif item.op == "eq":
                if item.fact in equals and equals[item.fact] != item.value:
                    self.error(ypath, "never-holds", f"{quoted(item.fact)} cannot equal both {quoted(equals[item.fact])} and {quoted(item.value)}")
                equals[item.fact] = item.value
        for fact, (low, high) in bounds.items():
            if low > high or (low == high and any(
                    isinstance(t, Test) and t.fact == fact and t.op in ("gt", "lt") for t in condition.items)):
                self.error(ypath, "never-holds", f"the tests on {quoted(fact)} exclude every value: this condition can never hold")

    def unused_warnings(self, rules, checklist, always_checklist, other_conditions=()) -> None:
        if self.is_base:
            return  # a shared base declares facts and items for the platforms that build on it
        used_items = set(always_checklist) | {item for rule in rules for item in rule.checklist}
        for item_id in checklist:
            if item_id not in used_items:
                self.warn(("checklist",), "unused-item", f"checklist item {quoted(item_id)} is never added by a rule")
        used_facts = {name for rule in rules for name in facts_used(rule.when)}
        used_facts |= {name for condition in other_conditions for name in facts_used(condition)}
        for name, spec in self.facts.items():
            if spec.ask_when is not None:
                used_facts |= facts_used(spec.ask_when)
        if any(item.evidence for item in checklist.values()):
            used_facts.add(EVIDENCE_FACT)  # it ticks checklist items
        for name, spec in self.facts.items():
            if self.own_facts is not None and name not in self.own_facts:
                continue  # a shared fact this platform's rules do not use: reported at check time, not here
            if name not in used_facts and spec.type != "time":
                self.warn(("facts", name), "unused-fact", f"fact {quoted(name)} is asked but no rule uses it")


def compile_document(document: read.Document, sha256: str = "",
                     own_facts: Optional[set] = None) -> tuple[RuleSet, list[Problem]]:
    """Validate a parsed rule file (its layers merged) and compile it; returns the RuleSet and
    its warnings. ``own_facts`` limits the unused-fact warning to the facts the file declares.

    Raises RulesError listing every problem when there is any error."""
    compiler = _Compiler(document)
    compiler.own_facts = own_facts
    ruleset = compiler.compile()
    if compiler.unreported:
        compiler.problems.append(Problem(document.path, 1, 1, "error" if ruleset is None else "warning", "too-many-problems", "",
                                         f"{compiler.unreported} more problems not listed (the first {MAX_PROBLEMS} are); "
                                         "fix these and validate again"))
    if ruleset is None:
        raise RulesError(compiler.problems)
    return ruleset._replace(sha256=sha256, path=document.path), compiler.problems
