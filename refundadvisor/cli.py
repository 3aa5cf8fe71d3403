"""The command line: parse, ask, call the advisor, render, and map errors to exit codes.

No refund knowledge lives here; it all comes from the rule file.
"""


import os
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Iterator, NamedTuple, Optional

import typer

from . import __version__, paths

# Exit codes (documented in the README).
EXIT_OK = 0  # a verdict was printed, whatever its band
EXIT_DATA = 1  # a data or runtime error: the rule file is unreadable or invalid
EXIT_USAGE = 2  # bad input or missing facts
EXIT_BELOW = 3  # --fail-below: the verdict (any batch row) is below the band given
EXIT_INTERRUPTED = 130  # Ctrl-C

# The flag for each fact scripts can pass; the rule file declares the facts themselves.
FACT_FLAGS = {
    "charge_type": "--charge-type",
    "amount": "--amount",
    "charged_at": "--charged-at",
    "cause": "--cause",
    "payment_method": "--payment-method",
    "unused": "--unused",
    "prior_refunds": "--prior-refunds",
    "similar_prior": "--similar-prior",
    "prior_denials": "--prior-denials",
    "requests_90d": "--requests-90d",
    "warned": "--warned/--not-warned",
    "profile": "--profile",
    "usage_span_days": "--usage-span-days",
    "evidence": "--evidence",
    "ago": "--ago",
}

HELP = """How likely a refund is for an unexpected API charge, why, and what to gather.

Examples:

\b
  refundadvisor                      # answer a few questions in the terminal
  refundadvisor check --charge-type topup --amount 50 --ago 3h --cause duplicate-charge
  refundadvisor check --charge-type usage --amount 12.40 --charged-at 2026-11-29T14:30 --cause platform-error --evidence request-ids,logs --json

A heuristic guide grounded in published policy, not a guarantee.
"""

app = typer.Typer(
    name="refundadvisor",
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class CliError(Exception):
    """An error to show as one sentence on stderr, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        self.code = code
        super().__init__(message)


def is_interactive(no_input: bool = False) -> bool:
    """Prompt only when both stdin and stdout are terminals and --no-input was not given."""
    if no_input or os.environ.get("REFUNDADVISOR_NO_INPUT"):
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def fail(message: str, code: int) -> typer.Exit:
    """Print one error sentence on stderr (never echoing an API key) and return the Exit to raise."""
    from .redact import mask

    sys.stderr.write(f"refundadvisor: error: {mask(message)[0]}\n")
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every expected failure into one sentence on stderr and a documented exit code."""
    from .facts import FactError, MissingFacts
    from .history import HistoryError
    from .problems import RulesError

    try:
        yield
    except CliError as error:
        raise fail(str(error), error.code) from None
    except FactError as error:
        flag = FACT_FLAGS.get(error.fact, error.fact)
        raise fail(f"{flag}: {error}", EXIT_USAGE) from None
    except MissingFacts as error:
        flags = ", ".join(_flag_for_missing(name) for name in error.names)
        raise fail(f"missing {flags}; pass them as flags, or run in a terminal to be asked", EXIT_USAGE) from None
    except RulesError as error:
        errors = [problem for problem in error.problems if problem.severity == "error"]
        if len(errors) == 1:
            raise fail(errors[0].format(), EXIT_DATA) from None
        for problem in errors:
            sys.stderr.write(problem.format() + "\n")
        raise fail(f"{len(errors)} errors in the rule file {errors[0].path}; fix them, "
                   f"then check with 'refundadvisor rules validate {errors[0].path}'", EXIT_DATA) from None
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the half-typed prompt line first
        raise fail("interrupted; nothing was checked", EXIT_INTERRUPTED) from None
    except EOFError:
        raise fail("input ended before the interview finished; nothing was checked", EXIT_USAGE) from None
    except HistoryError as error:
        raise fail(str(error), EXIT_DATA) from None


def _flag_for_missing(name: str) -> str:
    if name == "charged_at":
        return "--charged-at (or --ago)"
    return FACT_FLAGS.get(name, f"{name} (a fact this rule file declares)")


def write_output(path: str, text: str) -> None:
    """Write a command's output to --output PATH, or say in one sentence why it cannot."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except (OSError, ValueError) as error:
        raise CliError(f"--output: cannot write {path!r} ({getattr(error, 'strerror', None) or error})", EXIT_DATA) from None


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"refundadvisor {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """With no command, run `check`: the interview in a terminal."""
    if ctx.invoked_subcommand is None:
        check()


def load_rules(explicit: Optional[str], platform: Optional[str] = None):
    """The rule set to use, and what chose it (compiled once per file content, then cached)."""
    from .rulecache import load

    if explicit and platform:
        raise CliError("give --rules or --platform, not both")
    try:
        path, chosen_by = paths.rules_path(explicit, platform=platform)
    except paths.UnknownPlatform as error:
        raise CliError(str(error)) from None
    return load(path), chosen_by


def _ask_platform(now: datetime, no_color: bool):
    """In the interview: which bundled platform charged the user; returns its rule set."""
    from .interview import Interview
    from .model import Choice, FactSpec
    from .rulecache import load
    from .render import make_console

    rulesets = {name: load(str(path)) for name, path in paths.bundled_platforms().items()}
    choices = tuple(Choice(name, f"{ruleset.title} (policy checked {ruleset.policy.verified_on})")
                    for name, ruleset in rulesets.items())
    question = FactSpec(name="platform", type="choice", question="Which platform charged you?", choices=choices,
                        default=paths.DEFAULT_PLATFORM, has_default=True, ids=tuple(rulesets))
    interview = Interview(None, now, make_console(stderr=True, no_color=no_color))
    interview.introduce()
    name = interview.ask(question, {})
    return rulesets[name], "asked"


def _asks_anything(raw: dict[str, Any], ago, answers) -> bool:
    """Whether the interview will have questions (the facts every rule file needs are not all given)."""
    if answers is not None:
        return False
    return any(raw.get(name) is None for name in ("charge_type", "amount", "cause")) or (
        raw.get("charged_at") is None and ago is None)


def parse_now(text: Optional[str]) -> datetime:
    """The moment to evaluate at: now, or --now for a reproducible run."""
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--now: {text!r} is not an ISO 8601 date-time like 2026-11-30T12:00:00Z") from None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(timezone.utc)


def gather_facts(ruleset, raw: dict[str, Any], ago: Optional[str], now: datetime,
                 answers_path: Optional[str] = None) -> dict[str, Any]:
    """Parse the facts from an answers file and flags (flags win); each must be declared."""
    from .facts import FactError, parse_answers

    if ago is not None and raw.get("charged_at") is not None:
        raise CliError("give --charged-at or --ago, not both")
    for name, value in raw.items():
        if value is not None and name not in ruleset.facts:
            raise CliError(f"{FACT_FLAGS[name]}: the rule file {ruleset.path} has no fact {name!r}")
    from_file: dict[str, Any] = {}
    if answers_path is not None:
        from .batch import InputError, read_answers

        try:
            from_file = read_answers(answers_path)
        except InputError as error:
            raise CliError(f"--answers: {error}") from None
    flags = {name: value for name, value in {**raw, "ago": ago}.items() if value is not None}
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


def band_index(ruleset, band_id: Optional[str]) -> Optional[int]:
    """The position of --fail-below's band (best first), or None when not given."""
    if band_id is None:
        return None
    ids = [band.id for band in ruleset.bands]
    if band_id not in ids:
        raise CliError(f"--fail-below: {band_id!r} is not a band; use one of {', '.join(ids)}")
    return ids.index(band_id)


def is_below(ruleset, band_id: str, threshold: Optional[int]) -> bool:
    """Whether a band lies below the --fail-below threshold."""
    return threshold is not None and [band.id for band in ruleset.bands].index(band_id) > threshold


Opt = typer.Option


# Options shared by the commands that take the facts of one charge (check, draft).
ChargeTypeOpt = Annotated[Optional[str], Opt("--charge-type", metavar="ID", help="What was charged: topup, usage or subscription.")]
AmountOpt = Annotated[Optional[str], Opt("--amount", metavar="N", help="The amount charged, in the account's currency (USD for OpenRouter), e.g. 12.50.")]
ChargedAtOpt = Annotated[Optional[str], Opt("--charged-at", metavar="WHEN", help="When: ISO 8601 date or date-time (no offset = local time), e.g. 2026-11-29T14:30.")]
AgoOpt = Annotated[Optional[str], Opt("--ago", metavar="DURATION", help="Or how long ago: 30m, 5h, 3d, 2w (or 1d12h).")]
CauseOpt = Annotated[Optional[str], Opt("--cause", metavar="ID", help="What happened, a cause id from the rule file, e.g. duplicate-charge ('refundadvisor rules show' lists them).")]
PaymentOpt = Annotated[Optional[str], Opt("--payment-method", metavar="ID", help="card, crypto or other [default: card].")]
UnusedOpt = Annotated[Optional[str], Opt("--unused", metavar="N", help="Top-ups: how much of the credits is still unused [default: the whole amount].")]
PriorOpt = Annotated[Optional[str], Opt("--prior-refunds", metavar="N", help="Refunds you asked for in the last 12 months [default: 0, or from your history].")]
SimilarOpt = Annotated[Optional[str], Opt("--similar-prior", metavar="N", help="Of those, how many for the same kind of reason [default: 0, or from your history].")]
DenialsOpt = Annotated[Optional[str], Opt("--prior-denials", metavar="N", help="Of those, how many were turned down [default: 0, or from your history].")]
Recent90Opt = Annotated[Optional[str], Opt("--requests-90d", metavar="N", help="Of those, how many in the last 90 days [default: 0, or from your history].")]
HistoryOpt = Annotated[Optional[str], Opt("--history", metavar="PATH", help="The refund history database [default: $REFUNDADVISOR_HOME/history.db, else ~/.local/share/refundadvisor/history.db].")]
NoHistoryOpt = Annotated[bool, Opt("--no-history", help="Do not read your refund history for the counts of earlier requests.")]
WarnedOpt = Annotated[Optional[bool], Opt("--warned/--not-warned", help="Whether support has warned you about refund requests [default: not warned].")]
ProfileOpt = Annotated[Optional[str], Opt("--profile", metavar="ID", help="casual, solo or team [default: solo].")]
SpanOpt = Annotated[Optional[str], Opt("--usage-span-days", metavar="N", help="Over how many days the disputed usage ran [default: 1].")]
EvidenceOpt = Annotated[Optional[str], Opt("--evidence", metavar="IDS", help="What you already have, comma-separated ids, e.g. receipts,card-statement [default: none].")]
AnswersOpt = Annotated[Optional[str], Opt("--answers", metavar="FILE", help="Facts from a YAML or JSON file ('-' for stdin), keys as in the JSON facts; flags override it.")]
NoInputOpt = Annotated[bool, Opt("--no-input", help="Never prompt; fail at once if a fact is missing.")]
RulesOpt = Annotated[Optional[str], Opt("--rules", metavar="PATH", help="The rule file [default: $REFUNDADVISOR_RULES, then ~/.config/refundadvisor/rules.yaml, then the bundled one].")]
NoColorOpt = Annotated[bool, Opt("--no-color", help="No colour (also NO_COLOR=1 or TERM=dumb).")]
NowOpt = Annotated[Optional[str], Opt("--now", metavar="WHEN", help="Evaluate as of this moment (ISO 8601), for reproducible runs.")]
PlatformOpt = Annotated[Optional[str], Opt("--platform", metavar="NAME", help="A bundled platform's rules: openrouter, anthropic or openai ('refundadvisor rules list') [default: $REFUNDADVISOR_PLATFORM, else openrouter].")]


def _rules_for_facts(rules, platform, raw, ago, answers, no_input: bool, now_text, no_color: bool):
    """The rule set for a command that takes facts; in an interview with no platform chosen, ask."""
    ruleset, chosen_by = load_rules(rules, platform)
    if chosen_by == "bundled" and len(paths.bundled_platforms()) > 1 and is_interactive(no_input) \
            and _asks_anything(raw, ago, answers):
        ruleset, chosen_by = _ask_platform(parse_now(now_text), no_color)
    return ruleset, chosen_by


def _raw_facts(values: dict[str, Any]) -> dict[str, Any]:
    """The fact flags' values, by fact name, from a command's parameters."""
    return {name: values[name] for name in FACT_FLAGS if name != "ago"}


class Context(NamedTuple):
    """What a facts command worked out besides the assessment."""

    history: Any  # the History used (None with --no-history)
    summary: Any  # what it said (None when not used)
    interviewed: bool


def _assessment_for(ruleset, raw: dict[str, Any], ago, answers, now, no_input: bool, no_color: bool,
                    history_path: Optional[str] = None, no_history: bool = False):
    """The assessment of the facts given (asking for the rest in a terminal), with what the
    user's refund history says filled in for the counts of earlier requests not given."""
    from .advisor import fill_from_history
    from .history import History

    moment = parse_now(now)
    given = gather_facts(ruleset, raw, ago, moment, answers)
    origin = {name: "given" for name in given}
    history = None if no_history else History(paths.history_path(history_path))
    state = {"summary": fill_from_history(ruleset, given, origin, history, moment)}

    def refill() -> None:
        if state["summary"] is None:
            state["summary"] = fill_from_history(ruleset, given, origin, history, moment)

    interactive = is_interactive(no_input) and answers != "-"
    assessment = _assess(ruleset, given, origin, moment, interactive, no_color, refill)
    return assessment, Context(history, state["summary"], interactive and any(v == "asked" for v in origin.values()))


@app.command("check")
def check(
    charge_type: ChargeTypeOpt = None, amount: AmountOpt = None, charged_at: ChargedAtOpt = None, ago: AgoOpt = None,
    cause: CauseOpt = None, payment_method: PaymentOpt = None, unused: UnusedOpt = None, prior_refunds: PriorOpt = None,
    similar_prior: SimilarOpt = None, prior_denials: DenialsOpt = None, requests_90d: Recent90Opt = None,
    warned: WarnedOpt = None, profile: ProfileOpt = None,
    usage_span_days: SpanOpt = None, evidence: EvidenceOpt = None, answers: AnswersOpt = None,
    json_output: Annotated[bool, Opt("--json", help="Print one versioned JSON document on stdout.")] = False,
    fail_below: Annotated[Optional[str], Opt("--fail-below", metavar="BAND", help="Exit 3 when the verdict is below this band, e.g. likely.")] = None,
    quiet: Annotated[bool, Opt("-q", "--quiet", help="Print nothing on stdout; the exit code tells (with --fail-below).")] = False,
    explain: Annotated[bool, Opt("--explain", help="Show every rule, fired or not, each condition, and the score's steps.")] = False,
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
    record: Annotated[bool, Opt("--record", help="Record this request in your history (as pending); in a terminal you are asked.")] = False,
) -> None:
    """Check one charge: flags for what you know, questions for the rest (in a terminal).

    Examples:

      \b
      refundadvisor check
      refundadvisor check --charge-type topup --amount 50 --ago 3h --cause unused-credits
      refundadvisor check --charge-type usage --amount 80 --ago 2d --cause runaway-script --prior-refunds 1 --similar-prior 1 --json
      refundadvisor check --answers charge.yaml --fail-below likely -q && echo "worth asking"
    """
    raw = _raw_facts(locals())
    with user_errors():
        ruleset, chosen_by = _rules_for_facts(rules, platform, raw, ago, answers, no_input, now, no_color)
        threshold = band_index(ruleset, fail_below)
        assessment, context = _assessment_for(ruleset, raw, ago, answers, now, no_input, no_color, history, no_history)
        if not quiet:
            _print(assessment, chosen_by, json_output, explain, no_color, context)
        _maybe_record(assessment, context, record, history, no_color, json_output or quiet)
    if is_below(ruleset, assessment.band.id, threshold):
        raise typer.Exit(EXIT_BELOW)


@app.command("draft")
def draft(
    charge_type: ChargeTypeOpt = None, amount: AmountOpt = None, charged_at: ChargedAtOpt = None, ago: AgoOpt = None,
    cause: CauseOpt = None, payment_method: PaymentOpt = None, unused: UnusedOpt = None, prior_refunds: PriorOpt = None,
    similar_prior: SimilarOpt = None, prior_denials: DenialsOpt = None, requests_90d: Recent90Opt = None,
    warned: WarnedOpt = None, profile: ProfileOpt = None,
    usage_span_days: SpanOpt = None, evidence: EvidenceOpt = None, answers: AnswersOpt = None,
    summary: Annotated[Optional[str], Opt("--summary", metavar="TEXT", help="What happened, in your own words (API keys in it are removed).")] = None,
    output: Annotated[Optional[str], Opt("--output", "-o", metavar="FILE", help="Write the draft to this file instead of stdout.")] = None,
    output_format: Annotated[str, Opt("--format", metavar="FORMAT", help="text or markdown [default: text].")] = "text",
    no_input: NoInputOpt = False, rules: RulesOpt = None, platform: PlatformOpt = None, no_color: NoColorOpt = False,
    now: NowOpt = None, history: HistoryOpt = None, no_history: NoHistoryOpt = False,
) -> None:
    """Write a support request for one charge, ready to complete and send.

    It states only what you gave; what is still to add is marked [[like this]].

    Examples:

      \b
      refundadvisor draft --charge-type usage --amount 12.40 --ago 6h --cause platform-error --evidence request-ids --summary "Requests to one model failed with 502 errors for an hour."
      refundadvisor draft --answers charge.yaml --format markdown --output request.md
    """
    from .draft import as_markdown, as_text, compose
    from .redact import mask

    raw = _raw_facts(locals())
    with user_errors():
        if output_format not in ("text", "markdown"):
            raise CliError(f"--format: {output_format!r} is not a format; use text or markdown")
        ruleset, _chosen_by = _rules_for_facts(rules, platform, raw, ago, answers, no_input, now, no_color)
        assessment, _context = _assessment_for(ruleset, raw, ago, answers, now, no_input, no_color, history, no_history)
        if assessment.ruleset.draft is None:
            raise CliError(f"the rule file {assessment.ruleset.path} has no draft section", EXIT_DATA)
        composed = compose(assessment, summary)
        text = (as_markdown if output_format == "markdown" else as_text)(composed)
        text, leaked = mask(text)  # a second pass: nothing that looks like a key leaves, whatever its way in
        removed = composed.masked + leaked
        if removed:
            sys.stderr.write(f"refundadvisor: warning: removed {removed} API key{'s' if removed > 1 else ''} from the "
                             "draft; never send keys to support, and rotate any key that was exposed\n")
        if output:
            write_output(output, text)
            sys.stderr.write(f"refundadvisor: draft written to {output}\n")
        else:
            sys.stdout.write(text)


def _assess(ruleset, given, origin, moment, interactive: bool, no_color: bool, refill=None):
    from .advisor import advise, time_of_day_matters

    if interactive:
        from .interview import Interview
        from .render import make_console

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
        from .render import assessment_document, to_json

        sys.stdout.write(to_json(assessment_document(assessment, chosen_by, explain, history)) + "\n")
        return
    from .render import make_console, render_human

    render_human(assessment, make_console(no_color=no_color), chosen_by, explain, history)


def _maybe_record(assessment, context, record: bool, history_path: Optional[str], no_color: bool, silent: bool) -> None:
    """Record the request in the history: with --record, or if the user says so after an interview."""
    from .history import History

    if not record:
        if not context.interviewed or silent:
            return
        from .interview import Interview
        from .render import make_console

        console = make_console(stderr=True, no_color=no_color)
        if not Interview(None, assessment.facts.now, console).confirm("Record this request in your refund history?"):
            return
    history = context.history or History(paths.history_path(history_path))
    facts = assessment.facts.values
    charge = facts.get("charged_at")
    entry_id = history.add({
        "platform": assessment.ruleset.platform, "cause": facts.get("cause"), "amount": facts.get("amount"),
        "currency": assessment.ruleset.currency, "charged_at": charge.at.isoformat() if charge else None,
        "asked_at": assessment.facts.now.isoformat(), "outcome": "pending",
        "note": f"checked: {assessment.band.id} ({assessment.score})",
    }, now=assessment.facts.now)
    sys.stderr.write(f"refundadvisor: recorded as request {entry_id} in {history.path}; "
                     f"'refundadvisor history update {entry_id} --outcome granted' once support answers\n")


# --- refundadvisor batch ---------------------------------------------------------------------------

@app.command("batch")
def batch(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON Lines or CSV with a header; '-' for stdin.")],
    output_format: Annotated[str, Opt("--format", metavar="FORMAT", help="jsonl or csv [default: jsonl].")] = "jsonl",
    input_format: Annotated[str, Opt("--input-format", metavar="FORMAT", help="auto, jsonl or csv [default: auto: by the file name, else the first line].")] = "auto",
    fail_below: Annotated[Optional[str], Opt("--fail-below", metavar="BAND", help="Exit 3 when any row's verdict is below this band.")] = None,
    quiet: Annotated[bool, Opt("-q", "--quiet", help="No summary or progress on stderr.")] = False,
    rules: RulesOpt = None,
    platform: PlatformOpt = None,
    now: NowOpt = None,
    jobs: Annotated[Optional[int], Opt("--jobs", metavar="N", help="Worker processes for long inputs [default: the CPUs available, at most 4].")] = None,
    history: HistoryOpt = None, no_history: NoHistoryOpt = False,
) -> None:
    """Assess many charges: one result per input row, in input order, streaming.

    Rows use the answers-file keys (charge_type, amount, charged_at or ago, cause, ...) and an
    optional id, echoed in the result. A bad row gets a result naming its line and error, and
    the batch goes on; the exit code is 1 if any row failed.

    Examples:

      \b
      refundadvisor batch charges.jsonl > verdicts.jsonl
      refundadvisor batch disputes.csv --format csv --fail-below likely
    """
    from .batch import InputError, default_jobs

    with user_errors():
        moment = parse_now(now)
        if jobs is not None and not 1 <= jobs <= 64:
            raise CliError(f"--jobs: {jobs} is not between 1 and 64")
        if output_format not in ("jsonl", "csv"):
            raise CliError(f"--format: {output_format!r} is not a format; use jsonl or csv")
        if input_format not in ("auto", "jsonl", "csv"):
            raise CliError(f"--input-format: {input_format!r} is not a format; use auto, jsonl or csv")
        ruleset, _ = load_rules(rules, platform)
        threshold = band_index(ruleset, fail_below)
        try:
            from .history import History

            store = None if no_history else History(paths.history_path(history))
            counts = _run_batch(ruleset, file, input_format, output_format, threshold, moment, quiet,
                                jobs or default_jobs(), store)
        except InputError as error:
            raise CliError(f"{file}: {error}") from None
    if counts["failed"]:
        raise typer.Exit(EXIT_DATA)
    if counts["below"]:
        raise typer.Exit(EXIT_BELOW)


def _open_input(path: str):
    if path == "-":
        return sys.stdin
    from .batch import InputError

    try:
        return open(path, encoding="utf-8-sig", newline="")
    except IsADirectoryError:
        raise InputError("is a directory, not a file") from None
    except FileNotFoundError:
        raise InputError("no such file") from None
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror or error})") from None
    except ValueError:
        raise InputError("is not a usable path (it contains a NUL byte)") from None


def _run_batch(ruleset, path: str, input_format: str, output_format: str, threshold, moment, quiet: bool,
               jobs: int, history=None) -> dict:
    from .batch import CSV_COLUMNS, InputError, assess_chunks, detect_format, read_chunks

    stream = _open_input(path)
    try:
        first = stream.readline()
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text") from None
    if "\x00" in first:
        raise InputError("is a binary file, not JSON Lines or CSV")
    chosen = detect_format(path, first) if input_format == "auto" else input_format
    chunks = read_chunks(_chain(first, stream), chosen)
    if output_format == "csv":
        sys.stdout.write(",".join(CSV_COLUMNS) + "\n")
    counts = {"rows": 0, "failed": 0, "below": 0}
    failed_lines: list[int] = []
    bands: dict[str, int] = {}
    below = {band.id for band in ruleset.bands if is_below(ruleset, band.id, threshold)}
    progress = _progress(quiet)
    try:
        for result in assess_chunks(ruleset, chunks, moment, output_format, jobs, history):
            sys.stdout.write(result.text)
            counts["rows"] += result.rows
            counts["failed"] += len(result.failed_lines)
            failed_lines.extend(result.failed_lines[:11 - len(failed_lines)])
            for band, number in result.bands.items():
                bands[band] = bands.get(band, 0) + number
                counts["below"] += number if band in below else 0
            if progress:
                progress(counts["rows"])
    except UnicodeDecodeError:
        raise InputError(f"is not UTF-8 text (after row {counts['rows']})") from None
    finally:
        if progress:
            progress(None)
    if not quiet:
        _batch_summary(ruleset, counts, failed_lines, bands)
    return counts


def _chain(first: str, rest):
    if first:
        yield first
    yield from rest


def _progress(quiet: bool):
    """A progress line on stderr when stderr is a terminal: rows done, or None to finish."""
    if quiet or not sys.stderr.isatty():
        return None
    from rich.live import Live
    from rich.text import Text

    from .render import make_console

    # Live, unlike Console.status, can leave stdout alone: the results are written there
    live = Live(Text("assessed 0 rows"), console=make_console(stderr=True), transient=True,
                redirect_stdout=False, redirect_stderr=False, refresh_per_second=4)
    live.start()

    def update(rows):
        if rows is None:
            live.stop()
        else:
            live.update(Text(f"assessed {rows:,} rows"))

    return update


def _batch_summary(ruleset, counts: dict, failed_lines: list[int], bands: dict[str, int]) -> None:
    by_band = ", ".join(f"{band.id} {bands[band.id]}" for band in ruleset.bands if band.id in bands) or "none"
    text = f"refundadvisor batch: {counts['rows']} rows, {counts['rows'] - counts['failed']} assessed ({by_band})"
    if counts["failed"]:
        shown = ", ".join(str(line) for line in failed_lines[:10]) + (", ..." if counts["failed"] > 10 else "")
        text += f", {counts['failed']} failed (lines {shown})"
    if counts["below"]:
        text += f", {counts['below']} below --fail-below"
    sys.stderr.write(text + "\n")


# --- refundadvisor history ... --------------------------------------------------------------------

history_app = typer.Typer(
    help="Your own record of refund requests: what support will see when you ask again.\n\nExamples:\n\n\b\n"
         "  refundadvisor history\n  refundadvisor history add --platform openrouter --cause runaway-script --amount 40\n"
         "  refundadvisor history update 3 --outcome denied",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(history_app, name="history")
OUTCOME_HELP = "pending, granted, partial or denied"
# Options shared by history add and update.
EntryCauseOpt = Annotated[Optional[str], Opt("--cause", metavar="ID", help="Why you asked, a cause id of that platform's rule file.")]
EntryOutcomeOpt = Annotated[Optional[str], Opt("--outcome", metavar="OUTCOME", help=OUTCOME_HELP + " [default when added: pending].")]
EntryAmountOpt = Annotated[Optional[str], Opt("--amount", metavar="N", help="The amount you asked about.")]
EntryAskedOpt = Annotated[Optional[str], Opt("--asked-at", metavar="WHEN", help="When you asked (ISO 8601 date or date-time) [default when added: now].")]
EntryChargedOpt = Annotated[Optional[str], Opt("--charged-at", metavar="WHEN", help="When the charge was (ISO 8601).")]
EntryReturnedOpt = Annotated[Optional[str], Opt("--returned", metavar="N", help="How much came back.")]
EntryNoteOpt = Annotated[Optional[str], Opt("--note", metavar="TEXT", help="Anything worth remembering (API keys are removed).")]


def _history(path: Optional[str]):
    from .history import History

    return History(paths.history_path(path))


def _entry_platform_ruleset(platform: str):
    """The bundled rule set of a platform named in the history, or None for another platform."""
    from .rulecache import load

    found = paths.bundled_platforms().get(platform)
    return load(str(found)) if found else None


@history_app.callback(invoke_without_command=True)
def history_main(
    ctx: typer.Context,
    history: HistoryOpt = None,
    json_output: Annotated[bool, Opt("--json", help="Print the pattern as JSON.")] = False,
    now: NowOpt = None,
) -> None:
    """With no command: the pattern of your requests as support would see it, per platform."""
    if ctx.invoked_subcommand is not None:
        return
    from .advisor import history_pattern
    from .render import history_document, history_text, to_json

    with user_errors():
        moment = parse_now(now)
        store = _history(history)
        entries = store.entries()
        platforms = {}
        for platform in dict.fromkeys(entry.platform for entry in entries):
            ruleset = _entry_platform_ruleset(platform)
            mine = [entry for entry in entries if entry.platform == platform]
            summaries = {cause: store.summary(platform, cause, moment) for cause in dict.fromkeys(e.cause for e in mine)}
            crossings = history_pattern(ruleset, summaries) if ruleset else []
            platforms[platform] = (ruleset, mine, summaries, crossings)
        document = history_document(str(store.path), platforms, moment)
        sys.stdout.write((to_json(document) if json_output else history_text(document)) + "\n")


@history_app.command("add")
def history_add(
    platform: Annotated[Optional[str], Opt("--platform", metavar="NAME", help="Which platform you asked [default: $REFUNDADVISOR_PLATFORM, else openrouter].")] = None,
    cause: EntryCauseOpt = None, outcome: EntryOutcomeOpt = None, amount: EntryAmountOpt = None,
    asked_at: EntryAskedOpt = None, charged_at: EntryChargedOpt = None, returned: EntryReturnedOpt = None,
    note: EntryNoteOpt = None, history: HistoryOpt = None, no_input: NoInputOpt = False, now: NowOpt = None,
) -> None:
    """Record a refund request; in a terminal you are asked for what is missing.

    Example:

      \b
      refundadvisor history add --platform openai --cause duplicate-charge --amount 20 --outcome granted --returned 20
    """
    from .history import OUTCOMES
    from .redact import mask

    with user_errors():
        moment = parse_now(now)
        name = (platform or os.environ.get(paths.PLATFORM_ENV) or paths.DEFAULT_PLATFORM).strip().lower()
        ruleset = _entry_platform_ruleset(name)
        values = {"platform": name, "cause": cause, "outcome": outcome, "amount": amount, "asked_at": asked_at,
                  "charged_at": charged_at, "returned": returned, "note": mask(note)[0] if note else None,
                  "currency": ruleset.currency if ruleset else None}
        causes = ruleset.facts["cause"] if ruleset and "cause" in ruleset.facts else None
        if is_interactive(no_input) and (cause is None or outcome is None):
            _ask_history_entry(values, causes, moment)
        if values["cause"] is None:
            raise CliError("missing --cause; pass it, or run in a terminal to be asked")
        if causes is not None and values["cause"] not in causes.choice_ids():
            raise CliError(f"--cause: {values['cause']!r} is not a cause of {name}; choose one of: {', '.join(causes.choice_ids())}")
        if values["outcome"] is not None and values["outcome"] not in OUTCOMES:
            raise CliError(f"--outcome: {values['outcome']!r} is not one of {', '.join(OUTCOMES)}")
        store = _history(history)
        entry_id = store.add(values, now=moment)
        sys.stdout.write(f"{entry_id}\n")
        sys.stderr.write(f"refundadvisor: recorded as request {entry_id} in {store.path}\n")


def _ask_history_entry(values: dict, causes, moment) -> None:
    """Ask, in a terminal, for the cause and outcome of a request to record."""
    from .history import OUTCOMES
    from .interview import Interview
    from .model import Choice, FactSpec
    from .render import make_console

    interview = Interview(None, moment, make_console(stderr=True))
    if values["cause"] is None and causes is not None:
        values["cause"] = interview.ask(causes, {})
    if values["outcome"] is None:
        question = FactSpec(name="outcome", type="choice", question="What did support answer?",
                            choices=tuple(Choice(outcome, outcome) for outcome in OUTCOMES), default="pending",
                            has_default=True, ids=OUTCOMES)
        values["outcome"] = interview.ask(question, {})


@history_app.command("list")
def history_list(
    platform: Annotated[Optional[str], Opt("--platform", metavar="NAME", help="Only this platform's requests.")] = None,
    json_output: Annotated[bool, Opt("--json", help="Print a JSON array.")] = False,
    history: HistoryOpt = None, no_color: NoColorOpt = False,
) -> None:
    """List the recorded requests, oldest first.

    Example:

      \b
      refundadvisor history list --platform openrouter --json
    """
    from .render import entries_table, to_json

    with user_errors():
        entries = _history(history).entries(platform.strip().lower() if platform else None)
        if json_output:
            sys.stdout.write(to_json([entry.as_dict() for entry in entries]) + "\n")
        else:
            from .render import make_console

            entries_table(entries, make_console(no_color=no_color))


@history_app.command("update")
def history_update(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The request's id ('refundadvisor history list').")],
    outcome: EntryOutcomeOpt = None, returned: EntryReturnedOpt = None, amount: EntryAmountOpt = None,
    cause: EntryCauseOpt = None, asked_at: EntryAskedOpt = None, charged_at: EntryChargedOpt = None,
    note: EntryNoteOpt = None, history: HistoryOpt = None, now: NowOpt = None,
) -> None:
    """Change a recorded request, e.g. its outcome once support answers.

    Example:

      \b
      refundadvisor history update 3 --outcome partial --returned 12.50
    """
    from .redact import mask

    with user_errors():
        changes = {"outcome": outcome, "returned": returned, "amount": amount, "cause": cause, "asked_at": asked_at,
                   "charged_at": charged_at, "note": mask(note)[0] if note else None}
        if all(value is None for value in changes.values()):
            raise CliError("nothing to change; give --outcome, --returned, --amount, --cause, --asked-at, --charged-at or --note")
        entry = _history(history).update(entry_id, changes, now=parse_now(now))
        sys.stderr.write(f"refundadvisor: request {entry.id} is now {entry.outcome}\n")


@history_app.command("remove")
def history_remove(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The request's id.")],
    yes: Annotated[bool, Opt("--yes", "-y", help="Remove without asking (for scripts).")] = False,
    history: HistoryOpt = None, no_input: NoInputOpt = False,
) -> None:
    """Remove a recorded request (asks first in a terminal).

    Example:

      \b
      refundadvisor history remove 3 --yes
    """
    with user_errors():
        store = _history(history)
        entry = store.get(entry_id)
        if not yes:
            if not is_interactive(no_input):
                raise CliError("removing needs confirmation: pass --yes, or run in a terminal to be asked")
            from .interview import Interview
            from .render import make_console

            question = f"Remove request {entry.id} ({entry.platform}, {entry.cause}, asked {entry.asked_at[:10]})?"
            if not Interview(None, datetime.now(timezone.utc), make_console(stderr=True)).confirm(question):
                sys.stderr.write("refundadvisor: nothing removed\n")
                return
        store.remove(entry_id)
        sys.stderr.write(f"refundadvisor: removed request {entry_id}\n")


@history_app.command("export")
def history_export(
    output: Annotated[str, Opt("--output", "-o", metavar="FILE", help="Where to write ('-' for stdout).")] = "-",
    output_format: Annotated[str, Opt("--format", metavar="FORMAT", help="jsonl or csv [default: jsonl].")] = "jsonl",
    history: HistoryOpt = None,
) -> None:
    """Write every recorded request as JSON Lines (or CSV), for a backup or another machine.

    Example:

      \b
      refundadvisor history export --output history.jsonl
    """
    from .history import FIELDS

    with user_errors():
        if output_format not in ("jsonl", "csv"):
            raise CliError(f"--format: {output_format!r} is not a format; use jsonl or csv")
        rows = list(_history(history).export_rows())
        text = _history_text(rows, output_format, FIELDS)
        if output == "-":
            sys.stdout.write(text)
        else:
            write_output(output, text)
            sys.stderr.write(f"refundadvisor: exported {len(rows)} requests to {output}\n")


def _history_text(rows: list[dict], output_format: str, fields) -> str:
    import csv
    import io
    import json

    if output_format == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=True) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@history_app.command("import")
def history_import(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON Lines or CSV from 'history export' ('-' for stdin).")],
    input_format: Annotated[str, Opt("--format", metavar="FORMAT", help="auto, jsonl or csv [default: auto].")] = "auto",
    history: HistoryOpt = None,
) -> None:
    """Add the requests of an export; all or nothing, and the same request twice is skipped.

    Example:

      \b
      refundadvisor history import history.jsonl
    """
    import csv
    import json

    from .batch import InputError, detect_format

    with user_errors():
        if input_format not in ("auto", "jsonl", "csv"):
            raise CliError(f"--format: {input_format!r} is not a format; use auto, jsonl or csv")
        try:
            text = _open_input(file).read()
        except InputError as error:
            raise CliError(f"{file}: {error}") from None
        except UnicodeDecodeError:
            raise CliError(f"{file}: is not UTF-8 text") from None
        chosen = detect_format(file, text.split("\n", 1)[0]) if input_format == "auto" else input_format
        rows = []
        if chosen == "jsonl":
            for number, line in enumerate(text.split("\n"), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as error:
                    raise CliError(f"{file}: line {number} is not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise CliError(f"{file}: line {number} is not a JSON object")
                rows.append((number, row))
        else:
            import io

            reader = csv.DictReader(io.StringIO(text, newline=""))
            rows = [(reader.line_num, {key: (value if value != "" else None) for key, value in row.items()})
                    for row in reader]
        imported, skipped = _history(history).import_rows(rows)
        sys.stderr.write(f"refundadvisor: imported {imported} requests" + (f", skipped {skipped} already there" if skipped else "") + "\n")


# --- refundadvisor rules ... ----------------------------------------------------------------------

rules_app = typer.Typer(
    help="Validate, test, show and describe rule files.\n\nExamples:\n\n\b\n  refundadvisor rules validate\n"
         "  refundadvisor rules test my-rules.yaml --coverage\n  refundadvisor rules schema > rules.schema.json",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(rules_app, name="rules")

from .evidence_cli import evidence_app  # noqa: E402  (the lead moves this line when cli/ becomes a package)

app.add_typer(evidence_app, name="evidence")

PathArgument = Annotated[Optional[str], typer.Argument(metavar="[PATH]", help="The rule file [default: as for check: --rules, $REFUNDADVISOR_RULES, user config, bundled].", show_default=False)]
FormatOption = Annotated[str, Opt("--format", metavar="FORMAT", help="text or json [default: text].")]
StrictOption = Annotated[bool, Opt("--strict", help="Fail on warnings too.")]


def _rule_file(path: Optional[str], platform: Optional[str]) -> str:
    """The rule file a rules command works on: PATH, else as for check."""
    if path and platform:
        raise CliError("give a PATH or --platform, not both")
    try:
        return paths.rules_path(path, platform=platform)[0]
    except paths.UnknownPlatform as error:
        raise CliError(str(error)) from None


def _format(value: str) -> str:
    if value not in ("text", "json"):
        raise CliError(f"--format: {value!r} is not a format; use text or json")
    return value


@rules_app.command("validate")
def rules_validate(path: PathArgument = None, platform: PlatformOpt = None, strict: StrictOption = False,
                   output_format: FormatOption = "text") -> None:
    """Check a rule file and list every problem, located (path:line:col).

    Examples:

      \b
      refundadvisor rules validate
      refundadvisor rules validate my-rules.yaml --strict --format json
    """
    from .render import to_json, validation_document, validation_text
    from .rules import inspect

    with user_errors():
        output_format = _format(output_format)
        chosen = _rule_file(path, platform)
        ruleset, problems, sha = inspect(chosen)
        document = validation_document(chosen, sha, problems, ruleset)
        sys.stdout.write((to_json(document) if output_format == "json" else validation_text(document)) + "\n")
        if not document["valid"] or (strict and document["warnings"]):
            raise typer.Exit(EXIT_DATA)


@rules_app.command("test")
def rules_test(path: PathArgument = None, platform: PlatformOpt = None,
               coverage: Annotated[bool, Opt("--coverage", help="List the rules and bands no test exercises.")] = False,
               strict: StrictOption = False, output_format: FormatOption = "text") -> None:
    """Validate a rule file, then run the tests written in it (tests: and examples:).

    Examples:

      \b
      refundadvisor rules test
      refundadvisor rules test my-rules.yaml --coverage
    """
    from .render import test_report_document, test_report_text, to_json, validation_document, validation_text
    from .rules import inspect
    from .ruletests import run_tests

    with user_errors():
        output_format = _format(output_format)
        chosen = _rule_file(path, platform)
        ruleset, problems, sha = inspect(chosen)
        validation = validation_document(chosen, sha, problems, ruleset)
        if ruleset is None or (strict and validation["warnings"]):
            text = to_json(validation) if output_format == "json" else validation_text(validation)
            sys.stdout.write(text + "\n")
            raise typer.Exit(EXIT_DATA)
        report = run_tests(ruleset)
        if output_format == "json":
            sys.stdout.write(to_json({**test_report_document(report), "warnings": validation["warnings"]}) + "\n")
        else:
            sys.stdout.write(test_report_text(report, coverage) + "\n")
        if report.failed:
            raise typer.Exit(EXIT_DATA)


@rules_app.command("show")
def rules_show(path: PathArgument = None, platform: PlatformOpt = None,
               no_color: Annotated[bool, Opt("--no-color", help="No colour.")] = False) -> None:
    """Show a rule file as tables: facts, causes, evidence, parameters, rules and bands.

    Example:

      \b
      refundadvisor rules show
    """
    from .render import make_console, render_rules_show

    with user_errors():
        ruleset, _ = load_rules(_rule_file(path, platform))
        render_rules_show(ruleset, make_console(no_color=no_color))


@rules_app.command("list")
def rules_list(output_format: FormatOption = "text") -> None:
    """List the bundled platforms' rule files, with their policy dates and sources.

    Example:

      \b
      refundadvisor rules list
    """
    from .render import platforms_document, platforms_text, to_json
    from .rulecache import load

    with user_errors():
        output_format = _format(output_format)
        rulesets = {name: load(str(path)) for name, path in paths.bundled_platforms().items()}
        document = platforms_document(rulesets, paths.DEFAULT_PLATFORM)
        sys.stdout.write((to_json(document) if output_format == "json" else platforms_text(document)) + "\n")


@rules_app.command("schema")
def rules_schema() -> None:
    """Print the JSON Schema (draft-07) of rule files, for editors and other tools.

    Example:

      \b
      refundadvisor rules schema > rules.schema.json
    """
    from importlib.resources import files

    sys.stdout.write(files("refundadvisor").joinpath("rules.schema.json").read_text(encoding="utf-8"))


def _only_the_command_run(argv: list[str]) -> None:
    """Typer builds every command's options on every run; a script calling one command pays
    for all of them. Keep just the command named (all of them for help or an unknown name)."""
    if not argv or argv[0].startswith("-") or "-h" in argv or "--help" in argv:
        return
    commands = [info for info in app.registered_commands if info.name == argv[0]]
    groups = [info for info in app.registered_groups if info.name == argv[0]]
    if commands or groups:
        app.registered_commands, app.registered_groups = commands, groups


def main() -> None:
    """The console script: run the app, ending quietly on a closed pipe."""
    try:
        _only_the_command_run(sys.argv[1:])
        app()
    except BrokenPipeError:
        # the reader went away (e.g. `| head -1`): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except KeyboardInterrupt:
        sys.stderr.write("refundadvisor: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
