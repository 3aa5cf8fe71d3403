"""check and draft: the commands that take the facts of one charge, from flags, an answers file
and, in a terminal, an interview."""

import sys
from datetime import datetime
from typing import Annotated, Any, NamedTuple, Optional

import typer

from .. import paths
from . import (EXIT_BELOW, EXIT_DATA, CliError, app, band_index, is_below, is_interactive, load_rules, parse_now,
               user_errors, write_output)
from .options import (AnswersOpt, EvidenceFileOpt, DraftFormat, FactOpt, HistoryOpt, NoColorOpt, NoHistoryOpt, NoInputOpt, NowOpt, Opt,
                      PlatformOpt, RulesOpt, fact_parameters, flag_of, help_with_examples, with_parameters)


def _shared_rules():
    """The shared rule file every bundled platform builds on: its facts are the fact flags (one
    vocabulary everywhere) and its examples the help's. None if it cannot be read (the command
    that needs rules then says why)."""
    from ..rules import RulesError
    from ..rules.cache import load_vocabulary

    try:
        return load_vocabulary(str(paths.bundled_rules()))
    except RulesError:
        return None


SHARED = _shared_rules()
FACT_PARAMETERS = fact_parameters(SHARED) if SHARED else []
FACT_NAMES = tuple(parameter.name for parameter in FACT_PARAMETERS if parameter.name != "ago")


def _examples(command: str):
    return (SHARED.examples or {}).get(command) if SHARED else None


def _ask_platform(now: datetime, no_color: bool):
    """In the interview: which bundled platform charged the user; returns its rule set."""
    from ..interview import Interview
    from ..model import Choice, FactSpec
    from ..rules.cache import load
    from ..render import make_console

    rulesets = {name: load(str(path)) for name, path in paths.bundled_platforms().items()}
    choices = tuple(Choice(name, f"{ruleset.title} (policy checked {ruleset.policy.verified_on})")
                    for name, ruleset in rulesets.items())
    question = FactSpec(name="platform", type="choice", question="Which platform charged you?", choices=choices,
                        default=paths.default_platform(), has_default=True, ids=tuple(rulesets))
    interview = Interview(None, now, make_console(stderr=True, no_color=no_color))
    interview.introduce()
    name = interview.ask(question, {})
    return rulesets[name], "asked"


def _asks_anything(ruleset, raw: dict[str, Any], ago, answers) -> bool:
    """Whether the interview will have questions: a fact that is always needed and has no
    default (the rule file says which) was not given."""
    if answers is not None:
        return False
    from ..model import CHARGE_TIME_FACT

    required = [spec.name for spec in ruleset.facts.values() if not spec.has_default and spec.ask_when is None]
    return any(raw.get(name) is None and not (name == CHARGE_TIME_FACT and ago is not None) for name in required)


def _read_answers(answers_path: Optional[str]) -> dict[str, Any]:
    if answers_path is None:
        return {}
    from ..batch import InputError, read_answers

    try:
        return read_answers(answers_path)
    except InputError as error:
        raise CliError(f"--answers: {error}") from None


EVIDENCE_LIMIT = 16 * 1024 * 1024


def _evidence(path: Optional[str]) -> Optional[dict]:
    """The facts an evidence document ('refundadvisor evidence ... --json', '-' for stdin) gives:
    the amount, time and span of the disputed requests, and the evidence now in hand."""
    if path is None:
        return None
    import json

    from ..evidence.common import EvidenceError
    from ..evidence.facts import evidence_facts

    try:
        if path == "-":
            data = sys.stdin.buffer.read(EVIDENCE_LIMIT + 1)
        else:
            if not paths.is_regular_file(path):
                raise CliError(f"--generations: {path[:200]!r} is not a readable file")
            with open(path, "rb") as handle:
                data = handle.read(EVIDENCE_LIMIT + 1)
        if len(data) > EVIDENCE_LIMIT:
            raise CliError("--generations: the evidence document is larger than 16 MiB")
        return evidence_facts(json.loads(data.decode("utf-8-sig")))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CliError(f"--generations: not an evidence document ({str(error)[:100]})") from None
    except EvidenceError as error:
        raise CliError(f"--generations: {error}") from None


def _with_evidence(from_file: dict, found: Optional[dict]) -> dict:
    """Answers with the evidence's facts where the answers file does not give them (flags win
    over both); its evidence kinds join the ones given."""
    if not found:
        return from_file
    merged = dict(from_file)
    for key in ("amount", "charged_at", "usage_span_days"):
        if key in found and key not in merged and not (key == "charged_at" and "ago" in merged):
            merged[key] = str(found[key])
    if found.get("evidence"):
        given = merged.get("evidence") or []
        given = given.split(",") if isinstance(given, str) else list(given)
        merged["evidence"] = list(dict.fromkeys([*given, *found["evidence"]]))
    sys.stderr.write(f"refundadvisor: from the evidence: {found.get('note', '')}\n")
    return merged


def _named_facts(items: Optional[list[str]]) -> dict[str, Any]:
    """--fact NAME=VALUE, as many as given."""
    named: dict[str, Any] = {}
    for item in items or ():
        name, sign, value = item.partition("=")
        if not sign or not name.strip():
            raise CliError(f"--fact: {item[:80]!r} is not NAME=VALUE, e.g. --fact usage_span_days=3")
        named[name.strip()] = value
    return named


def gather_facts(ruleset, raw: dict[str, Any], ago: Optional[str], now: datetime,
                 from_file: Optional[dict[str, Any]] = None, answers_path: Optional[str] = None,
                 named: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Parse the facts from an answers file, --fact and the fact flags (in that order, the later
    winning); each must be a fact of the rule set."""
    from ..model import PLATFORM_KEY
    from ..facts import FactError, parse_answers

    if ago is not None and raw.get("charged_at") is not None:
        raise CliError("give --charged-at or --ago, not both")
    for name, value in raw.items():
        if value is not None and name not in ruleset.facts:
            raise CliError(f"{flag_of(name)}: the rule file {ruleset.path} has no fact {name!r}")
    from_file = {key: value for key, value in (from_file or {}).items() if key != PLATFORM_KEY}
    flags = {name: value for name, value in {**(named or {}), **raw, "ago": ago}.items() if value is not None}
    if "ago" in flags or "charged_at" in flags:  # a time on the command line replaces the file's
        from_file.pop("ago", None)
        from_file.pop("charged_at", None)
    merged = {**from_file, **flags}
    try:
        return parse_answers(ruleset, merged, now)
    except FactError as error:
        if error.fact in from_file and error.fact not in flags:
            raise CliError(f"--answers {answers_path}: key {error.fact!r}: {error}") from None
        raise


def _rules_for_facts(rules, platform, raw, ago, answers, no_input: bool, now_text, no_color: bool,
                     from_file: Optional[dict] = None):
    """The rule set for a command that takes facts: --rules or --platform, else the answers
    file's `platform`, else as configured; in an interview with no platform chosen, ask."""
    from ..model import PLATFORM_KEY

    named = (from_file or {}).get(PLATFORM_KEY)
    if named is not None and not rules and not platform:
        ruleset, _ = load_rules(None, str(named))
        return ruleset, f"--answers {answers}"
    ruleset, chosen_by = load_rules(rules, platform)
    if chosen_by == "bundled" and len(paths.bundled_platforms()) > 1 and is_interactive(no_input) \
            and _asks_anything(ruleset, raw, ago, answers):
        ruleset, chosen_by = _ask_platform(parse_now(now_text), no_color)
    return ruleset, chosen_by


def _raw_facts(values: dict[str, Any]) -> dict[str, Any]:
    """The fact flags' values, by fact name, from a command's parameters."""
    return {name: values.get(name) for name in FACT_NAMES}


class Context(NamedTuple):
    """What a facts command worked out besides the assessment."""

    history: Any  # the History used (None with --no-history)
    summary: Any  # what it said (None when not used)
    interviewed: bool


def _assessment_for(ruleset, raw: dict[str, Any], ago, answers, now, no_input: bool, no_color: bool,
                    history_path: Optional[str] = None, no_history: bool = False,
                    from_file: Optional[dict] = None, named: Optional[dict] = None):
    """The assessment of the facts given (asking for the rest in a terminal), with what the
    user's refund history says filled in for the counts of earlier requests not given."""
    from ..advisor import fill_from_history
    from ..history import History

    moment = parse_now(now)
    given = gather_facts(ruleset, raw, ago, moment, from_file, answers, named)
    origin = {name: "given" for name in given}
    history = None if no_history else History(paths.history_path(history_path))
    state = {"summary": fill_from_history(ruleset, given, origin, history, moment)}

    def refill() -> None:
        if state["summary"] is None:
            state["summary"] = fill_from_history(ruleset, given, origin, history, moment)

    interactive = is_interactive(no_input) and answers != "-"
    assessment = _assess(ruleset, given, origin, moment, interactive, no_color, refill)
    return assessment, Context(history, state["summary"], interactive and any(v == "asked" for v in origin.values()))


CHECK_HELP = "Check one charge: flags for what you know, questions for the rest (in a terminal)."


def _check_options(
    answers: AnswersOpt = None, fact: FactOpt = None, generations: EvidenceFileOpt = None,
    json_output: Annotated[bool, Opt("--json", help="Print one versioned JSON document on stdout.")] = False,
    fail_below: Annotated[Optional[str], Opt("--fail-below", metavar="BAND", help="Exit 3 when the verdict is below this band, e.g. likely.")] = None,
    quiet: Annotated[bool, Opt("-q", "--quiet", help="Print nothing on stdout; the exit code tells (with --fail-below).")] = False,
    explain: Annotated[bool, Opt("--explain", help="Show every rule, fired or not, each condition, and the score's steps.")] = False,
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
    record: Annotated[bool, Opt("--record", help="Record this request in your history (as pending); in a terminal you are asked.")] = False,
) -> None:
    """The options of check besides the fact flags (their names and defaults, for the signature)."""


def check(**values: Any) -> None:
    v = _with_defaults(values, _check_options)
    raw = _raw_facts(v)
    with user_errors():
        found = _evidence(v["generations"])
        from_file = _with_evidence(_read_answers(v["answers"]), found)
        named = _named_facts(v["fact"])
        ruleset, chosen_by = _rules_for_facts(v["rules"], v["platform"], raw, v["ago"], v["answers"], v["no_input"],
                                              v["now"], v["no_color"], from_file)
        threshold = band_index(ruleset, v["fail_below"])
        assessment, context = _assessment_for(ruleset, raw, v["ago"], v["answers"], v["now"], v["no_input"],
                                              v["no_color"], v["history"], v["no_history"], from_file, named)
        if not v["quiet"]:
            _print(assessment, chosen_by, v["json_output"], v["explain"], v["no_color"], context)
        _maybe_record(assessment, context, v["record"], v["history"], v["no_color"], v["json_output"] or v["quiet"])
    if is_below(ruleset, assessment.band.id, threshold):
        raise typer.Exit(EXIT_BELOW)


def _with_defaults(values: dict, options) -> dict:
    """The command's values with every option's default filled in (for calls made without Typer,
    e.g. the bare `refundadvisor` running check)."""
    import inspect

    filled = {parameter.name: None for parameter in FACT_PARAMETERS}
    filled.update({name: parameter.default for name, parameter in inspect.signature(options).parameters.items()})
    filled.update(values)
    return filled


app.command("check", help=help_with_examples(CHECK_HELP, _examples("check")))(
    with_parameters(check, FACT_PARAMETERS, _check_options))


DRAFT_HELP = ("Write a support request for one charge, ready to complete and send.\n\n"
              "It states only what you gave; what is still to add is marked [[like this]].")


def _draft_options(
    answers: AnswersOpt = None, fact: FactOpt = None, generations: EvidenceFileOpt = None,
    summary: Annotated[Optional[str], Opt("--summary", metavar="TEXT", help="What happened, in your own words (API keys in it are removed).")] = None,
    output: Annotated[Optional[str], Opt("--output", "-o", metavar="FILE", help="Write the draft to this file instead of stdout.")] = None,
    output_format: Annotated[DraftFormat, Opt("--format", metavar="FORMAT", help="text or markdown [default: text].")] = DraftFormat.text,
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
) -> None:
    """The options of draft besides the fact flags."""


def draft(**values: Any) -> None:
    from ..draft import as_markdown, as_text, compose
    from ..redact import mask

    v = _with_defaults(values, _draft_options)
    raw = _raw_facts(v)
    with user_errors():
        found = _evidence(v["generations"])
        from_file = _with_evidence(_read_answers(v["answers"]), found)
        named = _named_facts(v["fact"])
        ruleset, _chosen_by = _rules_for_facts(v["rules"], v["platform"], raw, v["ago"], v["answers"], v["no_input"],
                                               v["now"], v["no_color"], from_file)
        assessment, _context = _assessment_for(ruleset, raw, v["ago"], v["answers"], v["now"], v["no_input"],
                                               v["no_color"], v["history"], v["no_history"], from_file, named)
        if assessment.ruleset.draft is None:
            raise CliError(f"the rule file {assessment.ruleset.path} has no draft section", EXIT_DATA)
        composed = compose(assessment, v["summary"], (found or {}).get("attachment"))
        text = (as_markdown if v["output_format"] == "markdown" else as_text)(composed)
        text, leaked = mask(text)  # a second pass: nothing that looks like a key leaves, whatever its way in
        removed = composed.masked + leaked
        if removed:
            sys.stderr.write(f"refundadvisor: warning: removed {removed} API key{'s' if removed > 1 else ''} from the "
                             "draft; never send keys to support, and rotate any key that was exposed\n")
        if v["output"]:
            write_output(v["output"], text)
            sys.stderr.write(f"refundadvisor: draft written to {v['output']}\n")
        else:
            sys.stdout.write(text)


app.command("draft", help=help_with_examples(DRAFT_HELP, _examples("draft")))(
    with_parameters(draft, FACT_PARAMETERS, _draft_options))


def _assess(ruleset, given, origin, moment, interactive: bool, no_color: bool, refill=None):
    from ..advisor import advise, time_of_day_matters

    if interactive:
        from ..interview import Interview
        from ..render import make_console

        interview = Interview(ruleset, moment, make_console(stderr=True, no_color=no_color))
        interview.complete(given, origin, refill)
        if time_of_day_matters(ruleset, given, moment):
            given["charged_at"] = interview.ask_time_of_day(given["charged_at"])
    return advise(ruleset, given, moment, origin)


def _print(assessment, chosen_by: str, json_output: bool, explain: bool, no_color: bool, context=None) -> None:
    history = None
    if context is not None and context.summary is not None:
        history = {"path": str(context.history.path), **context.summary._asdict()}
    if json_output:
        from ..render import assessment_document, to_json

        sys.stdout.write(to_json(assessment_document(assessment, chosen_by, explain, history)) + "\n")
        return
    from ..render import make_console, render_human

    render_human(assessment, make_console(no_color=no_color), chosen_by, explain, history)


def _maybe_record(assessment, context, record: bool, history_path: Optional[str], no_color: bool, silent: bool) -> None:
    """Record the request in the history: with --record, or if the user says so after an interview."""
    from ..history import History, entry_from_assessment

    if not record:
        if not context.interviewed or silent:
            return
        from ..interview import Interview
        from ..render import make_console

        console = make_console(stderr=True, no_color=no_color)
        if not Interview(None, assessment.facts.now, console).confirm("Record this request in your refund history?"):
            return
    history = context.history or History(paths.history_path(history_path))
    entry_id = history.add(entry_from_assessment(assessment), now=assessment.facts.now)
    sys.stderr.write(f"refundadvisor: recorded as request {entry_id} in {history.path}; "
                     f"'refundadvisor history update {entry_id} --outcome granted' once support answers\n")
