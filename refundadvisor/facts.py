"""The facts about one charge: parsing what a person typed, defaults, bounds and derived facts.

Input arrives as text (flags, prompts) or as plain values; ``parse_value`` turns text into the
fact's type and ``resolve`` turns what was given into a complete, checked set of facts for the
engine. Which facts exist, their choices, defaults and bounds come from the rule set.
"""


import math
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, NamedTuple, Optional

from .conditions import compile_condition, holds
from .model import CHARGE_TIME_FACT, FactSpec, RuleSet
from .redact import mask

# Inputs beyond this are typos, not charges; it keeps arithmetic and output sane.
MAX_NUMBER = Decimal("1e12")
MAX_DECIMALS = 12  # finer than any currency; beyond it a number is a typo (or 3E-30000000000)
# A charge a minute "in the future" is clock skew between machines, not a typo.
FUTURE_TOLERANCE = timedelta(minutes=1)

# The moments refundadvisor works with (charges, --now, history dates): far wider than any real
# charge, and far enough inside the calendar's ends (years 1 and 9999) that a deadline or a window
# from a rule file (at most MAX_SPAN_DAYS long, checked when the file is validated) never leaves it.
FIRST_MOMENT = datetime(1900, 1, 1, tzinfo=timezone.utc)
LAST_MOMENT = datetime(9000, 1, 1, tzinfo=timezone.utc)
MAX_SPAN_DAYS = 36500  # a hundred years
MOMENTS_SHOWN = f"{FIRST_MOMENT.year} to {LAST_MOMENT.year - 1}"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[wdhm]\s*)+$", re.IGNORECASE)
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_TRUE = {"y", "yes", "true", "1", "on"}
_FALSE = {"n", "no", "false", "0", "off"}


SHOWN_LIMIT = 80  # a value echoed in an error is cut to about this many characters


def shown_value(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut to SHOWN_LIMIT characters."""
    text = repr(value)
    if len(text) <= SHOWN_LIMIT:
        return text
    return f"{text[:SHOWN_LIMIT * 3 // 4]}... ({len(str(value))} characters)"


def suggestion(word: Any, options) -> str:
    """' (did you mean 'runaway-script'?)' for a near miss or a unique prefix, else ''."""
    from difflib import get_close_matches

    word = str(word).strip().lower()
    if not word or len(word) > SHOWN_LIMIT:
        return ""
    starting = [option for option in options if option.startswith(word)]
    close = starting if len(starting) == 1 else get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class FactError(ValueError):
    """A value that does not fit its fact; the message says what would (never echoing a key)."""

    def __init__(self, fact: str, message: str):
        self.fact = fact
        super().__init__(mask(message)[0])


class MissingFacts(Exception):
    """Facts that are needed and were not given, in the rule file's order."""

    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(", ".join(names))


class ChargeTime(NamedTuple):
    """When a charge happened. A date without a time is read as the start of that day."""

    at: datetime  # timezone-aware
    time_known: bool
    day_end: Optional[datetime] = None  # with only a date: the last moment the charge could be

    def latest(self, now: datetime) -> "ChargeTime":
        """The latest moment the charge could have happened (for a date-only charge)."""
        if self.time_known or self.day_end is None:
            return self
        return ChargeTime(min(self.day_end, now), False, self.day_end)


class Facts(NamedTuple):
    """A complete set of facts: values by name, and where each came from."""

    values: dict[str, Any]
    origin: dict[str, str]  # "given", "asked" or "default"
    now: Optional[datetime] = None

    @property
    def charge(self) -> Optional[ChargeTime]:
        return self.values.get(CHARGE_TIME_FACT)


def parse_number(text: str, fact: str = "amount") -> Decimal:
    """Parse a plain decimal number such as 12.50 (a leading $ is allowed)."""
    cleaned = str(text).strip().lstrip("$").strip()
    if len(cleaned) > SHOWN_LIMIT:  # no amount needs more characters; Decimal would take a million digits
        raise FactError(fact, f"{shown_value(text)} is too long to be a number; write it like 12.50")
    if re.fullmatch(r"[-+]?\d+,\d{1,2}", cleaned):
        raise FactError(fact, f"{shown_value(text)} uses a comma as the decimal mark; write {cleaned.replace(',', '.')}")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise FactError(fact, f"{shown_value(text)} is not a number; write it like 12.50") from None
    return check_number(number, fact, text)


def check_number(number: Any, fact: str, shown: Any = None) -> Decimal:
    """Accept an int, float or Decimal that is finite and of a sane size, as a Decimal."""
    shown = number if shown is None else shown
    if isinstance(number, bool) or not isinstance(number, (int, float, Decimal)):
        raise FactError(fact, f"{shown_value(shown)} is not a number")
    if isinstance(number, float):
        if not math.isfinite(number):
            raise FactError(fact, f"{shown_value(shown)} is not a finite number")
        number = Decimal(repr(number))
    number = Decimal(number)
    if not number.is_finite():
        raise FactError(fact, f"{shown_value(shown)} is not a finite number")
    if number.copy_abs() > MAX_NUMBER:  # exact: abs() rounds to the context and can overflow
        raise FactError(fact, f"{shown_value(shown)} is too large to be a real charge")
    if not number:
        return Decimal(0)  # 0E+999999 and -0 are plain 0
    sign, digits, exponent = number.as_tuple()
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if exponent + trailing_zeros < -MAX_DECIMALS:  # 3E-30000000000 would be written with 30 billion zeros
        raise FactError(fact, f"{shown_value(shown)} has more than {MAX_DECIMALS} decimal places; write it like 12.50")
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number  # 30, never 3E+1


def parse_integer(text: str, fact: str) -> int:
    cleaned = str(text).strip()
    if not re.fullmatch(r"[-+]?\d+", cleaned):
        raise FactError(fact, f"{shown_value(text)} is not a whole number")
    if len(cleaned.lstrip("+-")) > 9:
        raise FactError(fact, f"{shown_value(text)} is too large to be a count of refunds")
    return int(cleaned)


def _integer_text(value: Any) -> str:
    """A whole number from a file as text for parse_integer (3.0 is 3; true is not a number)."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_boolean(text: str, fact: str) -> bool:
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise FactError(fact, f"{shown_value(text)} is not yes or no")


def parse_choice(text: str, spec: FactSpec) -> str:
    """A choice by its id (any case); the interview also accepts its number."""
    word = str(text).strip().lower()
    if word in spec.choice_ids():
        return word
    raise FactError(spec.name, f"{shown_value(text)} is not a valid {spec.name.replace('_', ' ')}"
                               f"{suggestion(word, spec.choice_ids())}; choose one of: {', '.join(spec.choice_ids())}")


def parse_choices(text: Any, spec: FactSpec) -> tuple[str, ...]:
    """A comma-separated list of choice ids (or a list); empty or 'none' means none."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    words = [str(item).strip().lower() for item in items if str(item).strip()]
    if words == ["none"]:
        return ()
    bad = [word for word in words if word not in spec.choice_ids()]
    if bad:
        raise FactError(spec.name, f"{shown_value(bad[0])} is not a valid {spec.name.replace('_', ' ')}"
                                   f"{suggestion(bad[0], spec.choice_ids())}; choose from: {', '.join(spec.choice_ids())}")
    return tuple(dict.fromkeys(words))


def parse_duration(text: str) -> timedelta:
    """'30m', '5h', '3d', '2w' or a combination such as '1d12h'."""
    if not _DURATION.match(text):
        raise FactError(CHARGE_TIME_FACT, f"{shown_value(text)} is not a duration; write it like 30m, 5h, 3d or 2w")
    total = timedelta()
    try:
        for amount, unit in _DURATION_PART.findall(text):
            total += float(amount) * _UNIT[unit.lower()]
    except OverflowError:
        raise FactError(CHARGE_TIME_FACT, f"{shown_value(text)} is further back than any charge could be") from None
    return total


def in_range(moment: datetime) -> bool:
    """Whether a (timezone-aware) moment lies within the dates refundadvisor works with."""
    return FIRST_MOMENT <= moment < LAST_MOMENT


def parse_moment(text: str, what: str) -> datetime:
    """An ISO 8601 date or date-time (no offset means local time) as a UTC moment within the
    dates refundadvisor works with; FactError naming ``what`` otherwise."""
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("z", "Z"))
    except ValueError:
        raise FactError(what, f"{shown_value(text)} is not an ISO 8601 date-time like 2026-11-30T12:00:00Z") from None
    try:  # near year 1 or 9999 the conversion to UTC itself leaves the calendar
        moment = (moment if moment.tzinfo else moment.astimezone()).astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        moment = None
    if moment is None or not in_range(moment):
        raise FactError(what, f"{shown_value(text)} is outside the years refundadvisor works with ({MOMENTS_SHOWN})")
    return moment


def parse_charge_time(text: str, now: datetime) -> ChargeTime:
    """An ISO 8601 date or date-time (no offset means local time), or a duration ago."""
    text = str(text).strip()
    if _DURATION.match(text):
        return ago(parse_duration(text), now)
    date_only = re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None
    try:
        written = date.fromisoformat(text) if date_only else datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise FactError(CHARGE_TIME_FACT, f"{shown_value(text)} is not a date or time; write 2026-11-29, 2026-11-29T14:30 "
                                          "or how long ago, like 5h or 3d") from None
    try:  # near year 1 or 9999 the conversion to UTC itself leaves the calendar
        if date_only:
            start = datetime.combine(written, time(0, 0)).astimezone()
            end = datetime.combine(written, time(23, 59, 59)).astimezone()
            charge = ChargeTime(start.astimezone(timezone.utc), False, end.astimezone(timezone.utc))
        else:
            moment = written if written.tzinfo is not None else written.astimezone()  # local time, that date's DST rule
            charge = ChargeTime(moment.astimezone(timezone.utc), True)
    except (ValueError, OverflowError, OSError):
        charge = None
    if charge is None or not in_range(charge.at) or not in_range(charge.day_end or charge.at):
        raise FactError(CHARGE_TIME_FACT, f"{shown_value(text)} is outside the years refundadvisor works with ({MOMENTS_SHOWN})")
    if charge.at > now + FUTURE_TOLERANCE:
        raise FactError(CHARGE_TIME_FACT, f"{shown_value(text)} is in the future; give the time of a charge that has happened")
    return charge


def ago(duration: timedelta, now: datetime) -> ChargeTime:
    """The charge time ``duration`` before ``now``."""
    try:
        moment = (now - duration).astimezone(timezone.utc)
    except OverflowError:
        moment = None
    if moment is None or not in_range(moment):
        raise FactError(AGO_KEY, f"that is further back than any charge could be (before {FIRST_MOMENT.year})")
    return ChargeTime(moment, True)


def parse_value(spec: FactSpec, value: Any, now: datetime) -> Any:
    """Turn text (or a plain value from a file) into the fact's type, or raise FactError."""
    if spec.type == "choice":
        return parse_choice(value, spec)
    if spec.type == "choices":
        return parse_choices(value, spec)
    if spec.type == "number":
        return parse_number(value, spec.name) if isinstance(value, str) else check_number(value, spec.name)
    if spec.type == "integer":
        return parse_integer(value if isinstance(value, str) else _integer_text(value), spec.name)
    if spec.type == "boolean":
        return value if isinstance(value, bool) else parse_boolean(value, spec.name)
    if isinstance(value, ChargeTime):
        return value
    return parse_charge_time(value, now)


def is_relevant(spec: FactSpec, values: Mapping[str, Any]) -> bool:
    """Whether a fact matters given the others; unknown counts as relevant."""
    return spec.ask_when is None or holds(spec.ask_when, values) is not False


def needs_asking(ruleset: RuleSet, values: Mapping[str, Any]) -> Optional[FactSpec]:
    """The next relevant fact, in file order, that has no value yet."""
    for spec in ruleset.facts.values():
        if values.get(spec.name) is None and is_relevant(spec, values):
            return spec
    return None


class _FactStep(NamedTuple):
    name: str
    spec: FactSpec
    relevant: Any  # the compiled ask_when, or None when always relevant
    default: Any  # what to use when not given: _COPY, _NONE or a constant
    default_fact: Optional[str]


_NONE = object()  # no default: the fact is required where relevant


def _fact_plan(ruleset: RuleSet) -> tuple:
    """The facts prepared once per rule set: (steps in file order, specs that have bounds)."""
    from .rules.prepared import prepared

    def build() -> tuple:
        steps = tuple(
            _FactStep(spec.name, spec, compile_condition(spec.ask_when) if spec.ask_when is not None else None,
                      spec.default if spec.has_default else _NONE, spec.default_fact)
            for spec in ruleset.facts.values()
        )
        bounded = tuple(spec for spec in ruleset.facts.values() if spec.min is not None or spec.max is not None)
        return steps, bounded

    return prepared(ruleset, "facts", ruleset.facts, build)


def resolve(ruleset: RuleSet, given: Mapping[str, Any], now: datetime, origin: Mapping[str, str] | None = None) -> Facts:
    """Complete and check the given (already parsed) facts: defaults, bounds, derived facts.

    Raises MissingFacts for relevant facts without a value or default, FactError for a value
    outside its bounds. ``origin`` names where given facts came from (default: "given").
    """
    if not in_range(now):
        raise FactError("now", f"{now.isoformat()} is outside the years refundadvisor works with ({MOMENTS_SHOWN})")
    steps, bounded = _fact_plan(ruleset)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    missing: list[str] = []
    for name, spec, relevant, default, default_fact in steps:
        value = given.get(name)
        if value is not None:
            values[name] = value
            origins[name] = origin.get(name, "given") if origin else "given"
        elif relevant is not None and relevant(values) is False:
            # not asked: a constant default still says what "nothing to report" means
            # (no similar refunds when there were none); a default copied from another fact
            # would invent a value, so the fact stays missing
            if default is not _NONE and default_fact is None:
                values[name] = default
                origins[name] = "default"
        elif default_fact is not None:
            values[name] = values.get(default_fact)
            origins[name] = "default"
        elif default is not _NONE:
            values[name] = default
            origins[name] = "default"
        else:
            missing.append(name)
    if missing:
        raise MissingFacts(missing)
    for spec in bounded:
        check_bounds(spec, values)
    charge = values.get(CHARGE_TIME_FACT)
    if isinstance(charge, ChargeTime):
        hours = max((now - charge.at).total_seconds(), 0) / 3600
        values["hours_since_charge"] = round(hours, 2)
        values["days_since_charge"] = round(hours / 24, 2)
        values["charge_time_known"] = charge.time_known
    return Facts(values, origins, now)


def check_bounds(spec: FactSpec, values: Mapping[str, Any]) -> None:
    """Raise FactError if the fact's value lies outside its min/max (constants or other facts)."""
    value = values.get(spec.name)
    if value is None:
        return
    low, high = spec.min, spec.max  # plain comparisons: this runs for every fact of every batch row
    if low is not None:
        limit = values.get(low.fact) if low.fact else low.value
        if limit is not None and value < limit:
            raise _out_of_bounds(spec, "less", low, limit, value)
    if high is not None:
        limit = values.get(high.fact) if high.fact else high.value
        if limit is not None and value > limit:
            raise _out_of_bounds(spec, "more", high, limit, value)


def _out_of_bounds(spec: FactSpec, word: str, bound, limit: Any, value: Any) -> FactError:
    other = f"the {bound.fact.replace('_', ' ')} ({_plain(limit)})" if bound.fact else _plain(limit)
    return FactError(spec.name, f"{spec.name.replace('_', ' ')} cannot be {word} than {other}; got {_plain(value)}")


def _plain(number: Any) -> str:
    return format(number, "f") if isinstance(number, Decimal) else str(number)


def with_charge(facts_given: Mapping[str, Any], charge: ChargeTime) -> dict[str, Any]:
    """A copy of the given facts with another reading of the charge time."""
    return {**facts_given, CHARGE_TIME_FACT: charge}


def normalised(facts: Facts) -> dict[str, Any]:
    """The facts as plain JSON-ready values (times in UTC, ISO 8601)."""
    result: dict[str, Any] = {}
    for name, value in facts.values.items():
        if isinstance(value, ChargeTime):
            result[name] = value.at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        elif isinstance(value, Decimal):
            result[name] = int(value) if value == value.to_integral_value() else float(value)
        elif isinstance(value, tuple):
            result[name] = list(value)
        else:
            result[name] = value
    return result


AGO_KEY = "ago"  # an answers key (and flag) that gives the charge time as a duration


def parse_answers(ruleset: RuleSet, answers: Mapping[str, Any], now: datetime,
                  cache: Optional[dict] = None) -> dict[str, Any]:
    """Parse facts given by name (flags, an answers file, a rule-file test) into typed values.

    Keys are fact names, plus ``ago`` for the charge time as a duration; None means not given.
    Raises FactError naming the key for an unknown key or a bad value. ``cache`` (a dict kept
    by the caller for one ``now``) remembers parsed values, for batches where they repeat.
    """
    if answers.get(AGO_KEY) is not None and answers.get(CHARGE_TIME_FACT) is not None:
        raise FactError(AGO_KEY, f"give {CHARGE_TIME_FACT} or {AGO_KEY}, not both")
    given: dict[str, Any] = {}
    for key, value in answers.items():
        if value is None:
            continue
        if cache is not None:
            # the value's type is part of the key: True == 1 and "1" != 1, and each parses differently
            hashable = (type(value), tuple(value) if isinstance(value, list) else value)
            try:
                parsed = cache.get((key, hashable))
            except TypeError:  # a mapping or a list of lists: not cacheable, parse it
                parsed = hashable = None
            if parsed is None:
                parsed = _parse_answer(ruleset, key, value, now)
                if hashable is not None and len(cache) < 8192:  # bounded: a batch's memory stays flat
                    cache[(key, hashable)] = parsed
        else:
            parsed = _parse_answer(ruleset, key, value, now)
        given[CHARGE_TIME_FACT if key == AGO_KEY else key] = parsed
    return given


def _parse_answer(ruleset: RuleSet, key: Any, value: Any, now: datetime) -> Any:
    if key == AGO_KEY:
        if CHARGE_TIME_FACT not in ruleset.facts:
            raise FactError(AGO_KEY, f"the rule file has no fact {CHARGE_TIME_FACT!r}")
        return ago(parse_duration(str(value)), now)
    if key not in ruleset.facts:
        known = [*ruleset.facts, AGO_KEY]
        hint = suggestion(key, known) or f"; known keys: {', '.join(known)}"
        raise FactError(str(key), f"unknown key {shown_value(key)}{hint}")
    return parse_value(ruleset.facts[key], value, now)
