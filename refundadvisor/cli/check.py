"""check and draft: the commands that take the facts of one charge, from flags, an answers file
and, in a terminal, an interview."""

import sys
from datetime import datetime
from typing import Annotated, Any, NamedTuple, Optional

import typer

from .. import paths
from . import (EXIT_BELOW, EXIT_DATA, EXIT_OK, EXIT_USAGE, CliError, app, band_index, is_below, load_rules,
               parse_now, require_path, user_errors, write_output)
from .options import (AnswersOpt, DraftFormat, EvidenceFileOpt, FactOpt, HistoryOpt, NoColorOpt, NoHistoryOpt, NoInputOpt, NowOpt, Opt,
                      PlatformOpt, RulesOpt, fact_parameters, flag_of, help_with_examples, named_fact_problem,
                      with_parameters)


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
    interview = Interview(None, now, _prompt_screen(no_color))
    interview.introduce()
    name = interview.ask(question, {})
    return rulesets[name], "asked"


def _prompt_screen(no_color: bool):
    from ..term import Screen

    return Screen(sys.stderr, no_color=no_color)


def can_ask(no_input: bool = False) -> bool:
    """Whether a person can be asked: stdin and stderr (where the questions go) are a terminal,
    and neither --no-input nor REFUNDADVISOR_NO_INPUT was given. stdout may be a file or a
    pipe: `refundadvisor > verdict.txt` asks at the terminal and writes the verdict there."""
    import os

    from ..term import is_terminal

    if no_input or os.environ.get("REFUNDADVISOR_NO_INPUT"):
        return False
    return is_terminal(sys.stdin) and is_terminal(sys.stderr)


class Asking(NamedTuple):
    """How a facts command may ask: ``why_not`` names what keeps it from asking (a flag that
    never prompts, or no terminal), ``full`` is the whole interview (no fact was given)."""

    allowed: bool
    full: bool
    why_not: str


def asking(v: dict, raw: dict[str, Any], never_flags: tuple[str, ...]) -> Asking:
    """The contract: --json, -q, --fail-below and --answers never prompt; without a terminal
    nothing prompts; with every required fact given nothing is asked (the rest are assumed and
    said so); with no fact given at all, the full interview."""
    given_any = any(value is not None for value in raw.values()) or v.get("ago") is not None or bool(v.get("fact"))
    for flag in never_flags:
        if flag:
            return Asking(False, False, f"{flag} never asks")
    if v.get("no_input") or __import__("os").environ.get("REFUNDADVISOR_NO_INPUT"):
        return Asking(False, False, "--no-input never asks")
    if not can_ask():
        return Asking(False, False, "or run in a terminal to be asked")
    return Asking(True, not given_any, "")


def _never_flags(v: dict) -> tuple[str, ...]:
    """The flags given that mean 'never prompt', by name."""
    names = []
    if v.get("json_output"):
        names.append("--json")
    if v.get("quiet"):
        names.append("-q")
    if v.get("fail_below") is not None:
        names.append("--fail-below")
    if v.get("answers") is not None:
        names.append("--answers")
    return tuple(names)


def _missing_message(error, ask: Asking) -> str:
    from . import _flag_for_missing

    flags = ", ".join(_flag_for_missing(name) for name in error.names)
    if ask.why_not.startswith("or "):
        return f"missing {flags}; pass them as flags, {ask.why_not} (stdin is not a terminal)"
    return f"missing {flags}; pass them as flags ({ask.why_not})"


def _check_ago(ago: Optional[str]) -> None:
    """--ago is a duration; say so in its own name (not --charged-at's), with how to write one."""
    if ago is None:
        return
    from ..facts import FactError, parse_duration

    try:
        parse_duration(ago)
    except FactError as error:
        from ..facts import shown_value

        if "not a duration" not in str(error):
            raise CliError(f"--ago: {error}") from None

        hint = " (a number alone has no unit: add m, h, d or w)" if ago.strip().replace(".", "", 1).isdigit() else ""
        raise CliError(f"--ago: {shown_value(ago)} is not a duration{hint}; write how long ago like 30m, 5h, 3d, 2w "
                       "or 1d12h, or give the date with --charged-at") from None


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
    for name in named or {}:
        problem = named_fact_problem(name, ruleset)
        if problem:
            raise CliError(problem)
    from_file = {key: value for key, value in (from_file or {}).items() if key != PLATFORM_KEY}
    given_flags = {name: value for name, value in {**raw, "ago": ago}.items() if value is not None}
    flags = {**(named or {}), **given_flags}  # a flag not given leaves --fact's value in place
    if "ago" in flags or "charged_at" in flags:  # a time on the command line replaces the file's
        from_file.pop("ago", None)
        from_file.pop("charged_at", None)
    merged = {**from_file, **flags}
    try:
        return parse_answers(ruleset, merged, now)
    except FactError as error:
        if error.fact in from_file and error.fact not in flags:
            raise CliError(f"--answers {answers_path}: key {error.fact!r}: {error}") from None
        if error.fact in (named or {}) and error.fact not in given_flags:
            raise CliError(f"--fact {error.fact}: {error}") from None
        raise


def _rules_for_facts(rules, platform, raw, ago, answers, ask: "Asking", now_text, no_color: bool,
                     from_file: Optional[dict] = None):
    """The rule set for a command that takes facts: --rules or --platform, else the answers
    file's `platform`, else as configured; in an interview with no platform chosen, ask."""
    from ..model import PLATFORM_KEY

    named = (from_file or {}).get(PLATFORM_KEY)
    if named is not None and not rules and not platform:
        ruleset, _ = load_rules(None, str(named))
        return ruleset, f"--answers {answers}"
    ruleset, chosen_by = load_rules(rules, platform)
    if chosen_by == "bundled" and len(paths.bundled_platforms()) > 1 and ask.full:
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


def _assessment_for(ruleset, raw: dict[str, Any], ago, answers, now, ask: Asking, no_color: bool,
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

    from ..facts import MissingFacts

    try:
        assessment, asked = _assess(ruleset, given, origin, moment, ask, no_color, refill)
    except MissingFacts as error:
        raise CliError(_missing_message(error, ask)) from None
    return assessment, Context(history, state["summary"], asked)


CHECK_HELP = ("Check one charge: flags for what you know, questions for the rest (in a terminal).\n\n"
              "Given every required fact (charge type, amount, when, cause) it asks nothing and assumes the "
              "defaults of the rest, saying which; with no fact at all it runs the whole interview.")


# What each exit code means: the table the help's epilog shows (the README has the same).
EXIT_CODES = (
    (EXIT_OK, "a verdict (or draft) was printed, whatever its band; also a closed pipe (| head -1)"),
    (EXIT_DATA, "a data or runtime error: an invalid rule file, an unusable history, a batch row or input that failed, "
                "output that could not be written (a full disk, a closed stdout)"),
    (EXIT_USAGE, "a usage error or bad input: an unknown flag, a missing fact, a value that does not fit"),
    (EXIT_BELOW, "--fail-below BAND: the verdict (any batch row) is below that band"),
    (130, "interrupted with Ctrl-C before a verdict (batch: after the rows said, in whole lines)"),
    (143, "batch stopped by SIGTERM (after the rows said, in whole lines)"),
)


def exit_code_epilog() -> str:
    """The exit-code table every command's help ends with (kept whole lines)."""
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"Exit codes:\n\n\b\n{rows}"


def _check_options(
    answers: AnswersOpt = None, fact: FactOpt = None, generations: EvidenceFileOpt = None,
    json_output: Annotated[bool, Opt("--json", help="Print one versioned JSON document on stdout (never asks).")] = False,
    full: Annotated[bool, Opt("--full", help="After the verdict at a glance, show why, the checklist, every step, the deadlines, warnings and sources.")] = False,
    fail_below: Annotated[Optional[str], Opt("--fail-below", metavar="BAND", help="Exit 3 when the verdict is below this band, e.g. likely (never asks).")] = None,
    quiet: Annotated[bool, Opt("-q", "--quiet", help="Print nothing on stdout; the exit code tells (with --fail-below; never asks).")] = False,
    explain: Annotated[bool, Opt("--explain", help="Show every rule, fired or not, each condition, and the score's steps.")] = False,
    ics: Annotated[Optional[str], Opt("--ics", metavar="FILE", help="Save the open deadlines as calendar reminders (iCalendar) in FILE.")] = None,
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
    record: Annotated[bool, Opt("--record", help="Record this request in your history (as pending); in a terminal you are asked.")] = False,
) -> None:
    """The options of check besides the fact flags (their names and defaults, for the signature)."""


def check(**values: Any) -> None:
    v = _with_defaults(values, _check_options)
    raw = _raw_facts(v)
    with user_errors():
        _check_ago(v["ago"])
        ask = asking(v, raw, _never_flags(v))
        found = _evidence(v["generations"])
        from_file = _with_evidence(_read_answers(v["answers"]), found)
        require_path(v["ics"], "--ics")
        named = _named_facts(v["fact"])
        ruleset, chosen_by = _rules_for_facts(v["rules"], v["platform"], raw, v["ago"], v["answers"], ask,
                                              v["now"], v["no_color"], from_file)
        threshold = band_index(ruleset, v["fail_below"])
        assessment, context = _assessment_for(ruleset, raw, v["ago"], v["answers"], v["now"], ask,
                                              v["no_color"], v["history"], v["no_history"], from_file, named)
        if not v["quiet"]:
            _print(assessment, chosen_by, v["json_output"], v["explain"], v["no_color"], context, v["full"])
        if v["ics"] is not None:
            _write_ics(assessment, v["ics"])
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


app.command("check", help=help_with_examples(CHECK_HELP, _examples("check")), epilog=exit_code_epilog())(
    with_parameters(check, FACT_PARAMETERS, _check_options))


DRAFT_HELP = ("Write a support request for one charge, ready to complete and send.\n\n"
              "It states only what you gave; what is still to add is marked [[like this]]. In a terminal, "
              "without --summary, it asks what happened in your own words.")


def _draft_options(
    answers: AnswersOpt = None, fact: FactOpt = None, generations: EvidenceFileOpt = None,
    summary: Annotated[Optional[str], Opt("--summary", metavar="TEXT", help="What happened, in your own words (API keys in it are removed).")] = None,
    output: Annotated[Optional[str], Opt("--output", "-o", metavar="FILE", help="Write the draft to this file instead of stdout.")] = None,
    output_format: Annotated[DraftFormat, Opt("--format", metavar="FORMAT", help="text or markdown [default: text].")] = DraftFormat.text,
    json_output: Annotated[bool, Opt("--json", help="Print the draft as one JSON document: subject, body, attached, to_gather, placeholders (never asks).")] = False,
    open_page: Annotated[bool, Opt("--open", help="Also open the platform's support page in your browser (when the rule file names one).")] = False,
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
) -> None:
    """The options of draft besides the fact flags."""


SUMMARY_QUESTION = "What happened, in your own words? (when you noticed it, what you did)"
SUMMARY_HINT = "Several lines are fine; an empty line (Enter twice) ends it. Enter alone leaves a placeholder."

# How draft --open reaches the browser; tests replace it (a test never opens a browser).
def open_in_browser(address: str) -> bool:
    import webbrowser

    return webbrowser.open(address)


def draft(**values: Any) -> None:
    from ..draft import as_markdown, as_text, compose, draft_document
    from ..redact import mask

    v = _with_defaults(values, _draft_options)
    raw = _raw_facts(v)
    with user_errors():
        _check_ago(v["ago"])
        ask = asking(v, raw, _never_flags(v))
        found = _evidence(v["generations"])
        from_file = _with_evidence(_read_answers(v["answers"]), found)
        named = _named_facts(v["fact"])
        ruleset, _chosen_by = _rules_for_facts(v["rules"], v["platform"], raw, v["ago"], v["answers"], ask,
                                               v["now"], v["no_color"], from_file)
        assessment, _context = _assessment_for(ruleset, raw, v["ago"], v["answers"], v["now"], ask,
                                               v["no_color"], v["history"], v["no_history"], from_file, named)
        if assessment.ruleset.draft is None:
            raise CliError(f"the rule file {assessment.ruleset.path} has no draft section", EXIT_DATA)
        summary = v["summary"]
        if summary is None and ask.allowed:
            from ..interview import Interview

            summary = Interview(ruleset, assessment.facts.now, _prompt_screen(v["no_color"])).ask_text(
                SUMMARY_QUESTION, SUMMARY_HINT)
        composed = compose(assessment, summary, (found or {}).get("attachment"))
        if v["json_output"]:
            from ..render import to_json

            text = to_json(draft_document(composed)) + "\n"
        else:
            text = (as_markdown if v["output_format"] == "markdown" else as_text)(composed)
        text, leaked = mask(text)  # a second pass: nothing that looks like a key leaves, whatever its way in
        removed = composed.masked + leaked
        if removed:
            sys.stderr.write(f"refundadvisor: warning: removed {removed} API key{'s' if removed > 1 else ''} from the "
                             "draft; never send keys to support, and rotate any key that was exposed\n")
        if v["output"] is not None:
            write_output(v["output"], text)
            sys.stderr.write(f"refundadvisor: draft written to {v['output']}\n")
        else:
            from ..output import plain
            from ..term import write

            write(sys.stdout, plain(text))  # a draft is plain text: no colour from a rule file either
            sys.stdout.flush()
        if v["open_page"]:
            _open_support_page(ruleset)


def _open_support_page(ruleset) -> None:
    from ..render import support_address

    address = support_address(ruleset)
    if address is None:
        sys.stderr.write(f"refundadvisor: {ruleset.title}'s rule file names no support page to open; "
                         "see the sources in 'refundadvisor check --full'\n")
        return
    try:
        opened = open_in_browser(address)
    except Exception:  # noqa: BLE001 - a browser that cannot start is not the draft's failure
        opened = False
    sys.stderr.write(f"refundadvisor: {'opened' if opened else 'open this page yourself:'} {address}\n")


app.command("draft", help=help_with_examples(DRAFT_HELP, _examples("draft")), epilog=exit_code_epilog())(
    with_parameters(draft, FACT_PARAMETERS, _draft_options))


def _assess(ruleset, given, origin, moment, ask: Asking, no_color: bool, refill=None):
    """Ask for what is needed (when asking is allowed), then assess. Returns the assessment and
    whether anything was asked."""
    from ..advisor import advise, time_of_day_matters

    asked = False
    if ask.allowed:
        from ..interview import Interview

        interview = Interview(ruleset, moment, _prompt_screen(no_color))
        asked = interview.complete(given, origin, refill, only_needed=not ask.full)
        # the hour of a date-only charge is asked only in an interview; a flag gets the cautious reading
        if asked and time_of_day_matters(ruleset, given, moment):
            given["charged_at"] = interview.ask_time_of_day(given["charged_at"])
    return advise(ruleset, given, moment, origin), asked


def _print(assessment, chosen_by: str, json_output: bool, explain: bool, no_color: bool, context=None,
           full: bool = False) -> None:
    history = None
    if context is not None and context.summary is not None:
        history = {"path": str(context.history.path), **context.summary._asdict()}
    if json_output:
        from ..render import assessment_document, to_json

        sys.stdout.write(to_json(assessment_document(assessment, chosen_by, explain, history)) + "\n")
        return
    from ..render import render_human
    from ..term import Screen

    screen = Screen(sys.stdout, no_color=no_color)
    render_human(assessment, screen, chosen_by, explain, history, full)
    screen.flush()


def _write_ics(assessment, path: str) -> None:
    """--ics FILE: the open deadlines as calendar events with a reminder, written atomically."""
    from ..calendar import deadlines_ics

    data = deadlines_ics(assessment)
    if data is None:
        sys.stderr.write("refundadvisor: no open deadline to save; nothing written to the calendar file\n")
        return
    write_output(path, data, "--ics")
    sys.stderr.write(f"refundadvisor: deadlines saved to {path} (import it into your calendar)\n")


def _maybe_record(assessment, context, record: bool, history_path: Optional[str], no_color: bool, silent: bool) -> None:
    """Record the request in the history: with --record, or if the user says so after an interview.
    The verdict is already printed: leaving the offer (Enter, Ctrl-D, Ctrl-C) records nothing and
    still exits 0."""
    from ..history import History, entry_from_assessment

    if not record:
        if not context.interviewed or silent:
            return
        from ..interview import Interview

        try:
            wanted = Interview(None, assessment.facts.now, _prompt_screen(no_color)).confirm(
                "Record this request in your refund history?")
        except (EOFError, KeyboardInterrupt):
            sys.stderr.write("\nrefundadvisor: not recorded\n")
            raise typer.Exit(EXIT_OK) from None
        if not wanted:
            return
    with user_errors():
        history = context.history or History(paths.history_path(history_path))
        entry_id = history.add(entry_from_assessment(assessment), now=assessment.facts.now)
    sys.stderr.write(f"refundadvisor: recorded as request {entry_id} in {history.path}; "
                     f"'refundadvisor history update {entry_id} --outcome granted' once support answers\n")
