"""The shape of a compiled rule set: plain, immutable data that the engine runs on.

``rules.py`` builds these from a rule file; nothing here knows about YAML, the CLI or refunds.
They are NamedTuples rather than dataclasses because every command pays for their creation at
start-up, and NamedTuples cost a fraction of it (bench/startup.py).
"""


from typing import Any, NamedTuple, Optional

from .conditions import Condition

ENGINE_VERSION = 1
RULE_FORMAT = 1

# Facts the engine computes from the ones a person gives, with their types. A rule file may
# use them in conditions without declaring them.
DERIVED_FACTS: dict[str, str] = {
    "hours_since_charge": "number",
    "days_since_charge": "number",
    "charge_time_known": "boolean",
}
# The declared time fact they are computed from.
CHARGE_TIME_FACT = "charged_at"
# The multi-choice fact whose ids tick checklist items.
EVIDENCE_FACT = "evidence"
# The answers key (and batch column) naming the bundled platform that charged (not a fact).
PLATFORM_KEY = "platform"
# The number fact holding what was charged (a refund estimate's purchase fee is part of it).
CHARGE_AMOUNT_FACT = "amount"
# The choice fact naming the charge's currency: when given, money is shown in it (its choice id
# upper-cased when that is a three-letter code, else its label) instead of the rule set's currency.
CURRENCY_FACT = "currency"

FACT_TYPES = ("choice", "choices", "number", "integer", "boolean", "time")
SURENESS = ("primary", "secondary", "anecdotal", "heuristic", "uncertain")


class Source(NamedTuple):
    id: str
    title: str
    url: Optional[str]
    sureness: str


class Parameter(NamedTuple):
    name: str
    value: float
    shown: str  # as written in the file, e.g. "0.80"
    source: str
    meaning: str


class Policy(NamedTuple):
    name: str
    verified_on: str
    note: str
    sources: dict[str, Source]
    parameters: dict[str, Parameter]


class Choice(NamedTuple):
    id: str
    label: str


class Bound(NamedTuple):
    """A limit on a number: a constant or another fact's value."""

    value: Optional[float] = None
    fact: Optional[str] = None


class FactSpec(NamedTuple):
    name: str
    type: str
    question: str
    choices: tuple[Choice, ...] = ()
    default: Any = None
    default_fact: Optional[str] = None
    has_default: bool = False
    min: Optional[Bound] = None
    max: Optional[Bound] = None
    unit: str = ""
    ask_when: Optional[Condition] = None
    ids: tuple[str, ...] = ()  # the choices' ids, kept for fast lookups
    help: str = ""  # what the interview shows for '?': how to find or read the answer

    def choice_ids(self) -> tuple[str, ...]:
        return self.ids


class ChecklistItem(NamedTuple):
    id: str
    item: str
    why: str
    evidence: tuple[str, ...]
    placeholder: str = ""  # what the support-request draft asks the user to paste, while missing


class Outcome(NamedTuple):
    id: str
    text: str
    rank: int  # 0 is the most favourable


class Band(NamedTuple):
    id: str
    label: str
    low: int
    high: int
    outcome: Optional[str]


class Rule(NamedTuple):
    id: str
    why: str
    sources: tuple[str, ...]
    when: Condition
    score: int = 0
    cap: Optional[int] = None
    floor: Optional[int] = None
    outcome: Optional[str] = None
    checklist: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    line: int = 0
    effect: str = ""  # describe_effect() of the above, computed once
    draft_lines: tuple[str, ...] = ()  # sentences the support-request draft adds (fact placeholders filled later)
    draft_notes: tuple[str, ...] = ()  # advice shown above the draft, e.g. that a ticket is the wrong path
    settles: bool = False  # when it fires, only settling rules' caps and outcomes apply (support already said yes)


def describe_effect(score: int, cap: Optional[int], floor: Optional[int], outcome: Optional[str],
                    settles: bool = False) -> str:
    """A rule's effect in a few words, e.g. '+25, cap 70, outcome full-refund'."""
    parts = []
    if score:
        parts.append(f"{score:+d}")
    if cap is not None:
        parts.append(f"cap {cap}")
    if floor is not None:
        parts.append(f"floor {floor}")
    if outcome:
        parts.append(f"outcome {outcome}")
    if settles:
        parts.append("settles")
    return ", ".join(parts) or "no score change"


class Expectation(NamedTuple):
    """What a rule-file test expects of the verdict; None means "not checked"."""

    band: Optional[str] = None
    score: Optional[tuple[int, int]] = None  # an inclusive range; an exact score is (n, n)
    outcome: Optional[str] = None
    fired: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    checklist_includes: tuple[str, ...] = ()


class RuleTest(NamedTuple):
    """A test written in the rule file: facts by name, an optional moment, and expectations."""

    name: str
    facts: dict[str, Any]
    now: Optional[str]
    expect: Expectation
    line: int
    column: int


class Deadline(NamedTuple):
    """A time limit counted from the charge, e.g. a refund window."""

    id: str
    what: str
    after: float  # how many units after the charge it closes
    unit: str  # "hours" or "days"
    approximate: bool
    source: str
    when: Optional[Condition] = None  # where it applies; always when None


class Estimate(NamedTuple):
    """What would come back, if anything; the first estimate whose condition holds applies."""

    id: str
    note: str
    returns: Optional[str] = None  # the number fact that bounds what comes back; None: nothing
    up_to: bool = False  # the amount is a most, not an expectation
    fee_percent: Optional[float] = None  # a purchase fee included in the charge and not returned
    fee_minimum: Optional[float] = None
    when: Optional[Condition] = None
    settled: bool = False  # only for a verdict a settling rule decided, and then before the others


class DraftTemplate(NamedTuple):
    """The wording of the support-request draft; {fact} placeholders are filled from the facts."""

    subject: str
    greeting: str
    account: tuple[str, ...]
    requests: dict[str, str]  # outcome id -> what the message asks for
    attached: str
    to_gather: str
    closing: tuple[str, ...]
    summary_item: str = ""  # the checklist item that the user's own account of what happened provides


class HistoryFact(NamedTuple):
    """A fact the user's refund history answers: which requests it counts, over which window."""

    fact: str
    counts: str  # "requests", "similar" (same value of the `same_as` fact) or "denied"
    within_days: float
    says: str  # how the human view words the count, e.g. "{n} in the last 90 days"


HISTORY_COUNTS = ("requests", "similar", "denied")


class RuleSet(NamedTuple):
    path: str
    sha256: str
    platform: str
    title: str
    currency: str
    policy: Policy
    facts: dict[str, FactSpec]
    checklist: dict[str, ChecklistItem]
    outcomes: dict[str, Outcome]
    bands: tuple[Band, ...]
    rules: tuple[Rule, ...]
    score_start: int
    score_min: int
    score_max: int
    always_checklist: tuple[str, ...] = ()
    always_next_steps: tuple[str, ...] = ()
    tests: tuple[RuleTest, ...] = ()
    deadlines: tuple[Deadline, ...] = ()
    estimates: tuple[Estimate, ...] = ()
    draft: Optional[DraftTemplate] = None
    history_facts: tuple[HistoryFact, ...] = ()  # what the refund history fills, in file order
    history_same_as: str = ""  # the fact whose value makes an earlier request "similar"
    examples: Optional[dict[str, tuple[str, ...]]] = None  # command -> the example lines its help shows
    layers: tuple[tuple[str, str], ...] = ()  # (path, sha256) of each file, the one asked for first
    origins: Optional[dict[str, str]] = None  # "rules.first-request" -> the file that defined it
    prepared: Any = None  # what the engine prepares once per loaded rule set (rules.prepared.Prepared)
    contact: Optional[dict[str, dict[str, str]]] = None  # where to write: id -> {label, url or email, source}

    @property
    def is_base(self) -> bool:
        """A shared base file (no platform) that platforms build on; it cannot assess a charge."""
        return not self.platform

    def money_currency(self, values) -> str:
        """The currency money is shown in for these facts: the currency fact's value when it has
        one (a three-letter id upper-cased, else its label), else the rule set's currency."""
        spec = self.facts.get(CURRENCY_FACT)
        value = values.get(CURRENCY_FACT) if values is not None else None
        if spec is None or value is None:
            return self.currency
        text = str(value)
        if len(text) == 3 and text.isalpha():
            return text.upper()
        return next((choice.label for choice in spec.choices if choice.id == text), text)

    def fact_type(self, name: str) -> Optional[str]:
        """The type of a declared or derived fact, or None if the rule set has no such fact."""
        if name in self.facts:
            return self.facts[name].type
        return DERIVED_FACTS.get(name)
