"""The interview: ask a person, in a terminal, for the facts the flags did not give.

Questions, choices and defaults come from the rule set; only relevant facts are asked, in the
rule file's order. A bad answer is re-asked with the reason. Prompts go to stderr so that
stdout carries only the verdict.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Callable, Optional

from .facts import ChargeTime, FactError, check_bounds, is_relevant, needs_asking, parse_value
from .model import CHARGE_TIME_FACT, FactSpec, RuleSet

Reader = Callable[[str], str]


def escape(text: str) -> str:
    """Text shown literally by Rich (no [markup])."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class Interview:
    """Asks for missing facts one at a time, validating each answer."""

    def __init__(self, ruleset: RuleSet, now: datetime, console, read: Optional[Reader] = None):
        self.ruleset = ruleset
        self.now = now
        self.console = console
        self.read = read or (lambda prompt: console.input(prompt))

    def complete(self, given: dict[str, Any], origin: dict[str, str], refill=None) -> None:
        """Ask for every relevant fact missing from ``given`` (updated in place); ``refill`` runs
        after each answer, to fill facts that other answers make known (e.g. from the history)."""
        if needs_asking(self.ruleset, given) is not None:
            self.introduce()
        asked = False
        while (spec := needs_asking(self.ruleset, given)) is not None:
            given[spec.name] = self.ask(spec, given)
            origin[spec.name] = "asked"
            asked = True
            if refill is not None:
                refill()
        if asked:
            self.console.print()
        for name in [name for name in given if name in self.ruleset.facts]:
            if not is_relevant(self.ruleset.facts[name], given) and origin.get(name) == "asked":
                del given[name]

    _introduced = False  # once per process: the platform question may come first

    def introduce(self) -> None:
        """How to answer, said once before the first question."""
        if not Interview._introduced:
            Interview._introduced = True
            self.console.print("[dim]Answer each question; Enter takes the default shown in brackets. Ctrl-C stops.[/dim]")

    def ask(self, spec: FactSpec, given: dict[str, Any]) -> Any:
        default = self.default_text(spec, given)
        self.console.print()
        self.console.print(f"[bold]{escape(spec.question)}[/bold]")
        if spec.choices:
            for number, choice in enumerate(spec.choices, 1):
                self.console.print(f"  {number:>2}. [cyan]{escape(choice.id)}[/cyan]  {escape(choice.label)}", highlight=False)
        suffix = f" [{default}]" if default is not None else ""
        while True:
            answer = self.read(escape(f"> {spec.name.replace('_', ' ')}{suffix}: ")).strip()
            if not answer and default is not None:
                answer = default
            if not answer:
                self.console.print("[yellow]An answer is needed here.[/yellow]")
                continue
            try:
                value = parse_value(spec, self.by_number(spec, answer), self.now)
                check_bounds(spec, {**given, spec.name: value})
                return value
            except FactError as error:
                self.console.print(f"[yellow]{escape(str(error))}[/yellow] Try again.")

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
        ids = [spec.choices[int(part) - 1].id if part.isdigit() and 1 <= int(part) <= len(spec.choices) else part
               for part in parts]
        return ",".join(ids)

    def confirm(self, question: str) -> bool:
        """A yes/no question whose default is no."""
        answer = self.read(escape(f"{question} [y/N]: ")).strip().lower()
        return answer in ("y", "yes")

    def ask_time_of_day(self, charge: ChargeTime) -> ChargeTime:
        """Ask for the time on the charge's date, in local time."""
        day = charge.at.astimezone().date()
        self.console.print()
        self.console.print(f"[bold]The hour of the charge changes the verdict: "
                           f"at what time on {day.isoformat()} were you charged?[/bold]")
        while True:
            answer = self.read(escape("> time (HH:MM, your local time): ")).strip()
            try:
                moment = datetime.combine(day, time.fromisoformat(answer)).astimezone()
                return parse_value(self.ruleset.facts[CHARGE_TIME_FACT], moment.isoformat(), self.now)
            except ValueError as error:
                message = str(error) if isinstance(error, FactError) else f"{answer!r} is not a time like 14:30"
                self.console.print(f"[yellow]{escape(message)}[/yellow] Try again.")
