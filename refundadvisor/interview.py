"""The interview: ask a person, in a terminal, for the facts the flags did not give.

Questions, choices, defaults and help come from the rule set; only relevant facts are asked, in
the rule file's order. At every question ``?`` shows its help and ``back`` returns to the one
before; a fact with a default also takes ``unknown`` (the default is then assumed, and said so).
After the last answer the answers are listed with numbers for a review: a number changes one,
Enter accepts. A bad answer is re-asked with the reason. Prompts go to stderr, so that stdout
carries only the verdict (``refundadvisor > verdict.txt`` still asks at the terminal).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, time
from typing import Any, Callable, Optional

from .facts import ChargeTime, FactError, check_bounds, is_relevant, parse_value
from .model import CHARGE_TIME_FACT, FactSpec, RuleSet

Reader = Callable[[str], str]

BACK_WORDS = ("back", "b", "<")
HELP_WORDS = ("?", "help", "h")
UNKNOWN_WORDS = ("unknown", "?unknown", "don't know", "dont know", "not sure")
TYPE_HELP = {
    "number": "A number, with a dot for decimals (12.50).",
    "integer": "A whole number (0, 1, 2, ...).",
    "boolean": "yes or no.",
    "time": "A date (2026-11-29), a date and time in your local time (2026-11-29T14:30, or with Z for UTC), "
            "or how long ago (30m, 5h, 3d, 2w, 1d12h).",
    "choice": "The number or the id of one of the answers listed.",
    "choices": "The numbers or ids of the answers that apply, separated by commas; 'none' or Enter for none.",
}


class _Back(Exception):
    """The person typed 'back'."""


class _Unknown(Exception):
    """The person does not know; the fact's default will be assumed."""


def _default_reader(screen) -> Reader:
    def read(prompt: str) -> str:
        from .term import write

        write(screen.stream, screen.style(prompt, "bold"))
        screen.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    return read


_NUMBER = re.compile(r"[0-9]{1,6}")


class Interview:
    """Asks for missing facts one at a time, validating each answer."""

    def __init__(self, ruleset: Optional[RuleSet], now: datetime, console=None, read: Optional[Reader] = None):
        from .term import Screen

        self.ruleset = ruleset
        self.now = now
        # a Screen on stderr; a Rich console handed in by an older caller is not used for markup
        self.console = console if isinstance(console, Screen) else Screen(sys.stderr)
        self.read = read or _default_reader(self.console)

    def say(self, text: str = "", style: str = "") -> None:
        self.console.print(text, style)

    # --- the whole interview -----------------------------------------------------------------

    def complete(self, given: dict[str, Any], origin: dict[str, str], refill=None, only_needed: bool = False) -> bool:
        """Ask for the relevant facts missing from ``given`` (updated in place): all of them, or
        with ``only_needed`` just those without a default. ``refill`` runs after each answer,
        to fill facts other answers make known (e.g. from the history). Returns whether anything
        was asked; then the answers were reviewed."""
        asked: list[str] = []
        while True:
            self._forget_irrelevant(given, origin, asked)
            spec = self._next(given, only_needed)
            if spec is None:
                if not asked:
                    return False
                change = self.review(given, asked)
                if change is None:
                    self.say()
                    return True
                given.pop(change, None)
                origin.pop(change, None)
                asked.remove(change)
                spec = self.ruleset.facts[change]
            if not asked:
                self.introduce()
            try:
                value = self.ask(spec, given, can_go_back=bool(asked))
                origin[spec.name] = "asked"
            except _Back:
                previous = asked.pop()
                given.pop(previous, None)
                origin.pop(previous, None)
                continue
            except _Unknown:
                value = self._default(spec, given)
                origin[spec.name] = "default"
            given[spec.name] = value
            asked.append(spec.name)
            self._recheck(spec.name, given, origin, asked)
            if refill is not None:
                refill()

    def _next(self, given: dict[str, Any], only_needed: bool) -> Optional[FactSpec]:
        for spec in self.ruleset.facts.values():
            if given.get(spec.name) is not None or not is_relevant(spec, given):
                continue
            if only_needed and (spec.has_default or spec.default_fact is not None):
                continue
            return spec
        return None

    def _forget_irrelevant(self, given: dict[str, Any], origin: dict[str, str], asked: list[str]) -> None:
        """Answers that a changed answer made irrelevant (an unused amount once the charge is no
        longer a top-up) are dropped."""
        for name in list(asked):
            if not is_relevant(self.ruleset.facts[name], given):
                asked.remove(name)
                given.pop(name, None)
                origin.pop(name, None)

    def _recheck(self, changed: str, given: dict[str, Any], origin: dict[str, str], asked: list[str]) -> None:
        """An earlier answer that a new one puts out of bounds (an unused amount above a lowered
        amount) is asked again."""
        for name in list(asked):
            if name == changed:
                continue
            try:
                check_bounds(self.ruleset.facts[name], given)
            except FactError as error:
                self.say(f"{error}; asking for the {name.replace('_', ' ')} again.", "yellow")
                asked.remove(name)
                given.pop(name, None)
                origin.pop(name, None)

    @staticmethod
    def _default(spec: FactSpec, given: dict[str, Any]) -> Any:
        return given.get(spec.default_fact) if spec.default_fact is not None else spec.default

    def review(self, given: dict[str, Any], asked: list[str]) -> Optional[str]:
        """List the answers with numbers (in the questions' order); returns the fact to change,
        or None to go on."""
        asked = [name for name in self.ruleset.facts if name in asked]
        self.say()
        self.say("Your answers:", "bold")
        for number, name in enumerate(asked, 1):
            self.console.para(f"{name.replace('_', ' ')}: {self.shown(self.ruleset.facts[name], given.get(name))}",
                              f"  {number:>2}. ", "      ")
        while True:
            answer = self.read("> Enter to accept, or a number to change that answer: ").strip().lower()
            if not answer or answer in ("y", "yes", "ok"):
                return None
            if answer in BACK_WORDS:
                return asked[-1]
            if answer.isdigit() and 1 <= int(answer) <= len(asked):
                return asked[int(answer) - 1]
            if answer in HELP_WORDS:
                self.say("Press Enter to get the verdict with these answers, or type the number of an answer to "
                         "ask that question again.", "dim")
                continue
            self.say(f"{answer[:24]!r} is not one of the numbers 1 to {len(asked)}. Try again.", "yellow")

    def shown(self, spec: FactSpec, value: Any) -> str:
        if isinstance(value, ChargeTime):
            local = value.at.astimezone()
            return local.strftime("%Y-%m-%d %H:%M %Z") if value.time_known else (
                f"{local.date().isoformat()} (hour not known)")
        if isinstance(value, tuple):
            return ",".join(value) or "none"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return format(value, "f") if hasattr(value, "as_tuple") else str(value)

    _introduced = False  # once per process: the platform question may come first

    def introduce(self) -> None:
        """How to answer, said once before the first question."""
        if not Interview._introduced:
            Interview._introduced = True
            self.say("Answer each question; Enter takes the default shown in brackets. "
                     "Type ? for help, back for the question before. Ctrl-C stops.", "dim")

    # --- one question --------------------------------------------------------------------------

    def ask(self, spec: FactSpec, given: dict[str, Any], can_go_back: bool = False) -> Any:
        """Ask one question until the answer fits. Raises _Back for 'back' (when allowed) and
        _Unknown for 'unknown' (when the fact has a default)."""
        default = self.default_text(spec, given)
        self.say()
        self.say(spec.question, "bold")
        self._choices(spec)
        suffix = f" [{default}]" if default is not None else ""
        while True:
            answer = self.read(f"> {spec.name.replace('_', ' ')}{suffix}: ").strip()
            word = answer.lower()
            if word in HELP_WORDS:
                self.help(spec, can_go_back, default is not None)
                continue
            if word in BACK_WORDS:
                if can_go_back:
                    raise _Back
                self.say("This is the first question; there is nothing to go back to.", "yellow")
                continue
            if word in UNKNOWN_WORDS:
                if default is not None:
                    raise _Unknown
                self.say("This one is needed for a verdict; give your best estimate.", "yellow")
                continue
            if not answer and default is not None:
                answer = default
            if not answer:
                self.say("An answer is needed here (? for help).", "yellow")
                continue
            try:
                value = parse_value(spec, self.by_number(spec, answer), self.now)
                check_bounds(spec, {**given, spec.name: value})
                return value
            except FactError as error:
                self.say(f"{str(error).rstrip('.')}. Try again.", "yellow")

    def _choices(self, spec: FactSpec) -> None:
        for number, choice in enumerate(spec.choices, 1):
            self.console.para(f"{choice.id}  {choice.label}", f"  {number:>2}. ", "      ")

    def help(self, spec: FactSpec, can_go_back: bool, has_default: bool) -> None:
        """The fact's help from the rule file (else its type's), and what else can be typed."""
        text = getattr(spec, "help", "") or ""
        self.say(text or TYPE_HELP.get(spec.type, ""), "dim")
        if text and spec.type in TYPE_HELP:
            self.say(TYPE_HELP[spec.type], "dim")
        extras = []
        if has_default:
            extras.append("Enter takes the default in brackets; 'unknown' assumes it and says so in the verdict")
        if can_go_back:
            extras.append("'back' returns to the question before")
        if extras:
            self.say("; ".join(extras) + ".", "dim")

    def default_text(self, spec: FactSpec, given: dict[str, Any]) -> Optional[str]:
        if spec.default_fact is not None:
            value = given.get(spec.default_fact)
            return None if value is None else format(value, "f")
        if not spec.has_default:
            return None
        if spec.type == "choices":
            return ",".join(spec.default) if spec.default else "none"
        if spec.type == "boolean":
            return "yes" if spec.default else "no"
        return str(spec.default)

    @staticmethod
    def by_number(spec: FactSpec, answer: str) -> str:
        """Map choice numbers ("2" or "1,3") to their ids; leave anything else as typed."""
        if not spec.choices:
            return answer
        parts = [part.strip() for part in answer.split(",")]
        # plain ASCII digits, a few of them: int() refuses '²' and 4,300 digits with a ValueError
        ids = [spec.choices[int(part) - 1].id if _NUMBER.fullmatch(part) and 1 <= int(part) <= len(spec.choices) else part
               for part in parts]
        return ",".join(ids)

    def confirm(self, question: str) -> bool:
        """A yes/no question whose default is no."""
        answer = self.read(f"{question} [y/N]: ").strip().lower()
        return answer in ("y", "yes")

    def ask_time_of_day(self, charge: ChargeTime) -> ChargeTime:
        """Ask for the time on the charge's date, in local time; Enter or 'unknown' keeps the
        cautious reading (the start of that day)."""
        day = charge.at.astimezone().date()
        self.say()
        self.say(f"The hour of the charge changes the verdict: at what time on {day.isoformat()} were you charged?",
                 "bold")
        while True:
            answer = self.read("> time (HH:MM, your local time) [unknown]: ").strip()
            if not answer or answer.lower() in UNKNOWN_WORDS:
                self.say(f"Keeping the cautious reading: the start of {day.isoformat()}.", "dim")
                return charge
            if answer.lower() in HELP_WORDS:
                self.say("The time on the receipt or the billing page, as HH:MM in your local time (14:30). Enter or "
                         "'unknown' if you do not know: the verdict then assumes the start of the day.", "dim")
                continue
            try:
                moment = datetime.combine(day, time.fromisoformat(answer)).astimezone()
                return parse_value(self.ruleset.facts[CHARGE_TIME_FACT], moment.isoformat(), self.now)
            except ValueError as error:
                message = str(error) if isinstance(error, FactError) else f"{answer[:24]!r} is not a time like 14:30"
                self.say(f"{message.rstrip('.')}. Try again.", "yellow")

    def ask_text(self, question: str, hint: str) -> Optional[str]:
        """Several lines of free text, ended by an empty line (Enter twice); None if nothing."""
        self.say()
        self.say(question, "bold")
        self.say(hint, "dim")
        lines: list[str] = []
        while True:
            line = self.read("> " if not lines else "  ")
            if not line.strip():
                break
            lines.append(line.rstrip())
        text = "\n".join(lines).strip()
        return text or None
