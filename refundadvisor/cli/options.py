"""The options more than one command takes, declared once, and the choices of --format."""

from enum import Enum
from typing import Annotated, Optional

import typer

Opt = typer.Option


# The choices of --format and --input-format: Click rejects anything else (exit 2), naming them.
class DraftFormat(str, Enum):
    text = "text"
    markdown = "markdown"


class RowsFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


class InputFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"


# --- Tab completion: each choice flag completes its ids (asked only when the shell asks) -------

def complete_ids(ids, many: bool = False):
    """A Typer ``autocompletion`` offering ``ids`` (a tuple, or a function giving them, called only
    when completing) that start with what is typed; with ``many`` the last of comma-separated ids."""
    def complete(incomplete: str) -> list[str]:
        head, comma, last = incomplete.rpartition(",") if many else ("", "", incomplete)
        known = ids() if callable(ids) else ids
        return [head + comma + name for name in known if name.startswith(last.strip().lower())]

    return complete


def _platform_ids() -> list[str]:
    from ..paths import bundled_platforms

    return list(bundled_platforms())


complete_platform = complete_ids(_platform_ids)


def _fact_names() -> list[str]:
    from .check import SHARED

    return [name + "=" for name in (SHARED.facts if SHARED else ())]


# Options shared by the commands that take the facts of one charge (check, draft). The fact
# flags themselves are made from the shared rule file's facts (fact_parameters below).
HistoryOpt = Annotated[Optional[str], Opt("--history", metavar="PATH", help="The refund history database [default: $REFUNDADVISOR_HOME/history.db, else ~/.local/share/refundadvisor/history.db].")]
NoHistoryOpt = Annotated[bool, Opt("--no-history", help="Do not read your refund history for the counts of earlier requests.")]
AnswersOpt = Annotated[Optional[str], Opt("--answers", metavar="FILE", help="Facts from a YAML or JSON file ('-' for stdin), keys as in the JSON facts; flags override it.")]
NoInputOpt = Annotated[bool, Opt("--no-input", help="Never prompt; fail at once if a fact is missing.")]
RulesOpt = Annotated[Optional[str], Opt("--rules", metavar="PATH", help="The rule file [default: $REFUNDADVISOR_RULES, then ~/.config/refundadvisor/rules.yaml, then the bundled one].")]
NoColorOpt = Annotated[bool, Opt("--no-color", help="No colour (also NO_COLOR=1 or TERM=dumb).")]
NowOpt = Annotated[Optional[str], Opt("--now", metavar="WHEN", help="Evaluate as of this moment (ISO 8601), for reproducible runs.")]
EvidenceFileOpt = Annotated[Optional[str], Opt("--generations", metavar="FILE", help="An evidence document from 'refundadvisor evidence generations|log|usage --json' ('-' for stdin): fills the amount, time and span of the disputed requests where not given, and the evidence in hand; draft attaches its table.")]
FactOpt = Annotated[Optional[list[str]], Opt("--fact", metavar="NAME=VALUE", help="Any fact by its name, e.g. for a fact your own rule file adds (repeatable; 'refundadvisor rules show' lists them).", autocompletion=complete_ids(_fact_names))]


def _platform_help() -> str:
    from ..paths import bundled_platforms, default_platform

    names = list(bundled_platforms())
    listed = ", ".join(names[:-1]) + (f" or {names[-1]}" if len(names) > 1 else "".join(names))
    return (f"A bundled platform's rules: {listed} ('refundadvisor rules list') "
            f"[default: $REFUNDADVISOR_PLATFORM, else {default_platform()}].")


PlatformOpt = Annotated[Optional[str], Opt("--platform", metavar="NAME", help=_platform_help(),
                                           autocompletion=complete_platform)]


# --- the fact flags, made from the rule file --------------------------------------------------------

METAVARS = {"choice": "ID", "choices": "IDS", "number": "N", "integer": "N", "time": "WHEN"}
TYPE_HINTS = {"number": "A number.", "integer": "A whole number.",
              "time": "ISO 8601; no offset means local time."}
AGO_FLAG = "--ago"


def flag_of(fact: str) -> str:
    """The command-line flag of a fact: its name with dashes (charge_type -> --charge-type)."""
    return "--" + fact.replace("_", "-")


def _help_for(spec, filled_by_history: bool) -> str:
    parts = [spec.question]
    if spec.type == "choice":
        parts.append("One of: " + ", ".join(spec.choice_ids()) + ".")
    elif spec.type == "choices":
        parts.append("Comma-separated, from: " + ", ".join(spec.choice_ids()) + ".")
    elif spec.type in TYPE_HINTS:
        parts.append(TYPE_HINTS[spec.type])
    if filled_by_history:
        parts.append("[default: from your refund history, else " + _shown_default(spec) + "]")
    elif spec.has_default:
        parts.append("[default: " + _shown_default(spec) + "]")
    return " ".join(parts)


def _shown_default(spec) -> str:
    if spec.default_fact:
        return "the " + spec.default_fact.replace("_", " ")
    if isinstance(spec.default, bool):
        return "yes" if spec.default else "no"
    if isinstance(spec.default, tuple):
        return ", ".join(spec.default) or "none"
    return str(spec.default)


def fact_parameters(ruleset) -> list:
    """One keyword parameter per fact of the rule set (with --ago beside the time fact), as Typer
    reads them from a function's signature."""
    import inspect

    history_facts = {wanted.fact for wanted in ruleset.history_facts}
    parameters = []
    for spec in ruleset.facts.values():
        flag = flag_of(spec.name)
        if spec.type == "boolean":
            option = Opt(f"{flag}/--not-{flag[2:]}", help=_help_for(spec, spec.name in history_facts))
            annotation = Annotated[Optional[bool], option]
        else:
            choices = spec.type in ("choice", "choices")
            option = Opt(flag, metavar=METAVARS.get(spec.type, "VALUE"), help=_help_for(spec, spec.name in history_facts),
                         autocompletion=complete_ids(spec.choice_ids(), spec.type == "choices") if choices else None)
            annotation = Annotated[Optional[str], option]
        parameters.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
        if spec.type == "time":
            ago = Opt(AGO_FLAG, metavar="DURATION", help="Or how long ago: 30m, 5h, 3d, 2w (or 1d12h).")
            parameters.append(inspect.Parameter("ago", inspect.Parameter.KEYWORD_ONLY, default=None,
                                                annotation=Annotated[Optional[str], ago]))
    return parameters


def named_fact_problem(name: str, ruleset) -> Optional[str]:
    """What is wrong with --fact NAME=VALUE's NAME for this rule set (None when it is a fact):
    the message names --fact and the valid fact names, never a flag that does not exist."""
    from ..facts import AGO_KEY, shown_value, suggestion

    known = [*ruleset.facts, AGO_KEY]
    if name in known:
        return None
    return (f"--fact: {shown_value(name)} is not a fact of the {ruleset.platform} rules{suggestion(name, known)}; "
            f"the fact names are: {', '.join(known)}")


def with_parameters(function, leading: list, trailing_from):
    """Give a command function (``**values``) the signature Typer reads: ``leading`` parameters,
    then those of ``trailing_from`` (a function declaring the command's other options)."""
    import inspect

    trailing = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                for parameter in inspect.signature(trailing_from).parameters.values()]
    function.__signature__ = inspect.Signature(leading + trailing)
    return function


def help_with_examples(text: str, examples) -> str:
    """A command's help: its text, then its examples from the rule file (kept whole lines)."""
    if not examples:
        return text
    lines = "\n".join("  " + line for line in examples)
    return f"{text}\n\nExamples:\n\n\b\n{lines}"
