"""history: the user's own record of refund requests, and its commands."""

import os
import sys
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer

from .. import paths
from . import CliError, app, is_interactive, load_rules, parse_now, user_errors, write_output
from .check import _examples
from .options import HistoryOpt, InputFormat, NoColorOpt, NoInputOpt, NowOpt, Opt, RowsFormat, help_with_examples

history_app = typer.Typer(
    help=help_with_examples("Your own record of refund requests: what support will see when you ask again.",
                            _examples("history")),
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
    from ..history import History

    return History(paths.history_path(path))


def _entry_platform_ruleset(platform: str):
    """The bundled rule set of a platform named in the history, or None for another platform."""
    from ..rules.cache import load

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
    from ..advisor import history_pattern
    from ..render import history_document, history_text, to_json

    with user_errors():
        moment = parse_now(now)
        store = _history(history)
        entries = store.entries()
        platforms = {}
        for platform in dict.fromkeys(entry.platform for entry in entries):
            ruleset = _entry_platform_ruleset(platform)
            counting = (ruleset or load_rules(None)[0]).history_facts
            mine = [entry for entry in entries if entry.platform == platform]
            summaries = {cause: store.summary(platform, cause, moment, counting) for cause in dict.fromkeys(e.cause for e in mine)}
            crossings = history_pattern(ruleset, summaries) if ruleset else []
            platforms[platform] = (ruleset, mine, summaries, crossings)
        document = history_document(str(store.path), platforms, moment)
        sys.stdout.write((to_json(document) if json_output else history_text(document)) + "\n")


@history_app.command("add", help=help_with_examples(
    "Record a refund request; in a terminal you are asked for what is missing.", _examples("history add")))
def history_add(
    platform: Annotated[Optional[str], Opt("--platform", metavar="NAME", help=f"Which platform you asked [default: $REFUNDADVISOR_PLATFORM, else {paths.default_platform()}].")] = None,
    cause: EntryCauseOpt = None, outcome: EntryOutcomeOpt = None, amount: EntryAmountOpt = None,
    asked_at: EntryAskedOpt = None, charged_at: EntryChargedOpt = None, returned: EntryReturnedOpt = None,
    note: EntryNoteOpt = None, history: HistoryOpt = None, no_input: NoInputOpt = False, now: NowOpt = None,
) -> None:
    from ..history import OUTCOMES
    from ..redact import mask

    with user_errors():
        moment = parse_now(now)
        name = (platform or os.environ.get(paths.PLATFORM_ENV) or paths.default_platform()).strip().lower()
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
    from ..history import OUTCOMES
    from ..interview import Interview
    from ..model import Choice, FactSpec
    from ..render import make_console

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
    from ..render import entries_table, to_json

    with user_errors():
        entries = _history(history).entries(platform.strip().lower() if platform else None)
        if json_output:
            sys.stdout.write(to_json([entry.as_dict() for entry in entries]) + "\n")
        else:
            from ..render import make_console

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
    from ..redact import mask

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
            from ..interview import Interview
            from ..render import make_console

            question = f"Remove request {entry.id} ({entry.platform}, {entry.cause}, asked {entry.asked_at[:10]})?"
            if not Interview(None, datetime.now(timezone.utc), make_console(stderr=True)).confirm(question):
                sys.stderr.write("refundadvisor: nothing removed\n")
                return
        store.remove(entry_id)
        sys.stderr.write(f"refundadvisor: removed request {entry_id}\n")


@history_app.command("export")
def history_export(
    output: Annotated[str, Opt("--output", "-o", metavar="FILE", help="Where to write ('-' for stdout).")] = "-",
    output_format: Annotated[RowsFormat, Opt("--format", metavar="FORMAT", help="jsonl or csv [default: jsonl].")] = RowsFormat.jsonl,
    history: HistoryOpt = None,
) -> None:
    """Write every recorded request as JSON Lines (or CSV), for a backup or another machine.

    Example:

      \b
      refundadvisor history export --output history.jsonl
    """
    from ..history import export_text

    with user_errors():
        rows = list(_history(history).export_rows())
        text = export_text(rows, output_format.value)
        if output == "-":
            sys.stdout.write(text)
        else:
            write_output(output, text)
            sys.stderr.write(f"refundadvisor: exported {len(rows)} requests to {output}\n")


@history_app.command("import")
def history_import(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON Lines or CSV from 'history export' ('-' for stdin).")],
    input_format: Annotated[InputFormat, Opt("--format", metavar="FORMAT", help="auto, jsonl or csv [default: auto].")] = InputFormat.auto,
    history: HistoryOpt = None,
) -> None:
    """Add the requests of an export; all or nothing, and the same request twice is skipped.

    Example:

      \b
      refundadvisor history import history.jsonl
    """
    from ..batch import InputError, detect_format
    from ..history import UnreadableExport, read_export
    from .batch import open_input

    with user_errors():
        try:
            text = open_input(file).read()
        except InputError as error:
            raise CliError(f"{file}: {error}") from None
        except UnicodeDecodeError:
            raise CliError(f"{file}: is not UTF-8 text") from None
        chosen = detect_format(file, text.split("\n", 1)[0]) if input_format == "auto" else input_format.value
        try:
            rows = read_export(text, chosen)
        except UnreadableExport as error:
            raise CliError(f"{file}: {error}") from None
        imported, skipped = _history(history).import_rows(rows)
        sys.stderr.write(f"refundadvisor: imported {imported} requests" + (f", skipped {skipped} already there" if skipped else "") + "\n")
