"""history: the user's own record of refund requests, and its commands."""

import os
import sys
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer

from .. import paths
from ..words import plural
from . import EXIT_DATA, CliError, app, is_interactive, load_rules, parse_now, user_errors, write_output
from .check import _examples
from .options import (HistoryOpt, InputFormat, NoColorOpt, NoInputOpt, NowOpt, Opt, RowsFormat, complete_ids,
                      complete_platform, help_with_examples)

history_app = typer.Typer(
    help=help_with_examples("Your own record of refund requests: what support will see when you ask again.",
                            _examples("history")),
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(history_app, name="history")
OUTCOME_HELP = "pending, granted, partial or denied (any case)"


def _cause_ids() -> tuple[str, ...]:
    """Every cause id the rule files name (the shared vocabulary), for Tab completion."""
    from .check import SHARED

    spec = SHARED.facts.get("cause") if SHARED else None
    return spec.choice_ids() if spec is not None else ()


def _outcome_ids() -> tuple[str, ...]:
    from ..history import OUTCOMES

    return OUTCOMES


# Options shared by history add and update.
EntryCauseOpt = Annotated[Optional[str], Opt("--cause", metavar="ID", help="Why you asked, a cause id of that platform's rule file (any case, as in check).", autocompletion=complete_ids(_cause_ids))]
EntryOutcomeOpt = Annotated[Optional[str], Opt("--outcome", metavar="OUTCOME", help=OUTCOME_HELP + " [default when added: pending].", autocompletion=complete_ids(_outcome_ids))]
EntryAmountOpt = Annotated[Optional[str], Opt("--amount", metavar="N", help="The amount you asked about.")]
EntryAskedOpt = Annotated[Optional[str], Opt("--asked-at", metavar="WHEN", help="When you asked (ISO 8601 date or date-time) [default when added: now].")]
EntryChargedOpt = Annotated[Optional[str], Opt("--charged-at", metavar="WHEN", help="When the charge was (ISO 8601).")]
EntryReturnedOpt = Annotated[Optional[str], Opt("--returned", metavar="N", help="How much came back.")]
EntryNoteOpt = Annotated[Optional[str], Opt("--note", metavar="TEXT", help="Anything worth remembering (API keys are removed).")]
EntryJsonOpt = Annotated[bool, Opt("--json", help="Print the stored request as JSON (docs/json.md).")]


def _history(path: Optional[str]):
    from ..history import History

    return History(paths.history_path(path))


def _entry_platform_ruleset(platform: str):
    """The bundled rule set of a platform named in the history, or None for another platform."""
    from ..rules.cache import load

    found = paths.bundled_platforms().get(platform)
    return load(str(found)) if found else None


class Vocabulary:
    """The platforms and causes a history entry may name: those of the rule files `check` uses
    (every bundled platform, and the one your own rules describe: $REFUNDADVISOR_RULES or the
    user config), compared the way `check` compares them (trimmed, any case). Rule sets are
    loaded once per platform."""

    def __init__(self):
        self._rulesets: dict = {}
        self._checked: dict = {}

    def ruleset(self, name: str):
        """The rule set of a platform (normalised name), or None when no rule file describes it."""
        if name not in self._rulesets:
            found = _entry_platform_ruleset(name)
            if found is None:
                own = self._own()
                found = own if own is not None and own.platform == name else None
            self._rulesets[name] = found
        return self._rulesets[name]

    def _own(self):
        if "" not in self._rulesets:
            try:
                self._rulesets[""] = load_rules(None)[0]
            except CliError:  # the configured rules are the shared file or an unknown platform
                self._rulesets[""] = None
        return self._rulesets[""]

    def platform(self, value: str):
        """(name, rule set) of a platform; HistoryError with a did-you-mean for an unknown one."""
        from ..facts import shown_value, suggestion
        from ..history import HistoryError, normal_id

        name = normal_id(value)
        ruleset = self.ruleset(name) if name else None
        if ruleset is None:
            known = list(paths.bundled_platforms())
            own = self._own()
            if own is not None and own.platform not in known:
                known.append(own.platform)
            raise HistoryError(f"{shown_value(value)} is not a platform with rules{suggestion(name, known)}; "
                               f"choose one of: {', '.join(known)}")
        return name, ruleset

    def cause(self, ruleset, value: str) -> str:
        """A cause id of the platform's rule file, as `check` reads it; HistoryError otherwise."""
        from ..facts import shown_value, suggestion
        from ..history import HistoryError, normal_id

        spec = ruleset.facts.get("cause")
        word, ids = normal_id(value), (spec.choice_ids() if spec is not None else ())
        if not ids or word in ids:
            return word
        raise HistoryError(f"{shown_value(value)} is not a cause of {ruleset.platform}{suggestion(word, ids)}; "
                           f"choose one of: {', '.join(ids)}")

    def check(self, entry: dict) -> dict:
        """An entry (from ``check_entry``) whose platform and cause the rule files know (each pair
        looked up once: an import repeats them)."""
        key = (entry["platform"], entry["cause"])
        if key not in self._checked:
            name, ruleset = self.platform(entry["platform"])
            self._checked[key] = (name, self.cause(ruleset, entry["cause"]))
        name, cause = self._checked[key]
        return {**entry, "platform": name, "cause": cause}


def _flagged(flag: str, work):
    """``work()``, its HistoryError as a usage error about ``flag``."""
    from ..history import HistoryError

    try:
        return work()
    except HistoryError as error:
        raise CliError(f"{flag}: {error}") from None


def _stored(work):
    """``work()`` (an add or update); a field that does not fit is a usage error naming its flag."""
    from ..history import BadEntry

    try:
        return work()
    except BadEntry as error:
        raise CliError(f"--{error.field.replace('_', '-')}: {error.problem}") from None


def _outcome(value: Optional[str]) -> Optional[str]:
    """--outcome as stored (any case), or a usage error with a did-you-mean."""
    from ..facts import shown_value, suggestion
    from ..history import OUTCOMES, normal_id

    if value is None:
        return None
    word = normal_id(value)
    if word not in OUTCOMES:
        raise CliError(f"--outcome: {shown_value(value)} is not one of {', '.join(OUTCOMES)}{suggestion(word, OUTCOMES)}")
    return word


def _print_entry(store, entry, json_output: bool) -> None:
    """The stored request on stdout: its id, or with --json the versioned document."""
    if json_output:
        from ..render import SCHEMA_VERSION, to_json

        sys.stdout.write(to_json({"schema_version": SCHEMA_VERSION, "path": str(store.path),
                                  "entry": entry.as_dict()}) + "\n")
    else:
        sys.stdout.write(f"{entry.id}\n")


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
    from ..render import history_document, history_text, layout_width, to_json

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
        sys.stdout.write((to_json(document) if json_output else history_text(document, layout_width(sys.stdout))) + "\n")


@history_app.command("add", help=help_with_examples(
    "Record a refund request; in a terminal you are asked for the cause if it is missing. "
    "The outcome is pending unless you give --outcome.", _examples("history add")))
def history_add(
    platform: Annotated[Optional[str], Opt("--platform", metavar="NAME", help=f"Which platform you asked [default: $REFUNDADVISOR_PLATFORM, else {paths.default_platform()}].", autocompletion=complete_platform)] = None,
    cause: EntryCauseOpt = None, outcome: EntryOutcomeOpt = None, amount: EntryAmountOpt = None,
    asked_at: EntryAskedOpt = None, charged_at: EntryChargedOpt = None, returned: EntryReturnedOpt = None,
    note: EntryNoteOpt = None, history: HistoryOpt = None, no_input: NoInputOpt = False, now: NowOpt = None,
    json_output: EntryJsonOpt = False,
) -> None:
    with user_errors():
        moment = parse_now(now)
        known = Vocabulary()
        flag = "--platform" if platform else paths.PLATFORM_ENV if os.environ.get(paths.PLATFORM_ENV) else "--platform"
        name, ruleset = _flagged(flag, lambda: known.platform(
            platform or os.environ.get(paths.PLATFORM_ENV) or paths.default_platform()))
        values = {"platform": name, "cause": cause, "outcome": _outcome(outcome), "amount": amount,
                  "asked_at": asked_at, "charged_at": charged_at, "returned": returned, "note": note,
                  "currency": ruleset.currency}
        causes = ruleset.facts.get("cause")
        if values["cause"] is None and causes is not None and is_interactive(no_input) and not json_output:
            values["cause"] = _ask_cause(causes, moment)
        if values["cause"] is None:
            raise CliError("missing --cause; pass it, or run in a terminal to be asked")
        values["cause"] = _flagged("--cause", lambda: known.cause(ruleset, values["cause"]))
        store = _history(history)
        entry = store.get(_stored(lambda: store.add(values, now=moment)))
        _print_recorded(store, entry, json_output)
        sys.stderr.write(f"refundadvisor: recorded as request {entry.id} ({entry.outcome}) in {store.path}\n")


def _print_recorded(store, entry, json_output: bool) -> None:
    """The id of a request just recorded, on stdout now (not at exit): when it cannot be written,
    the error says the request WAS recorded, so that a script retrying does not add it twice."""
    from ..output import OutputError

    try:
        _print_entry(store, entry, json_output)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OutputError, OSError, ValueError) as error:
        why = f"cannot write to stdout ({error.strerror or error})" if isinstance(error, OSError) else str(error)
        raise CliError(f"request {entry.id} WAS recorded in {store.path}, but its id was not printed ({why}); "
                       f"do not add it again ('refundadvisor history list' shows it)", EXIT_DATA) from None


def _ask_cause(causes, moment) -> str:
    """Ask, in a terminal, for the cause of a request to record."""
    from ..interview import Interview
    from ..render import make_console

    return Interview(None, moment, make_console(stderr=True)).ask(causes, {})


@history_app.command("list")
def history_list(
    platform: Annotated[Optional[str], Opt("--platform", metavar="NAME", help="Only this platform's requests.", autocompletion=complete_platform)] = None,
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
    note: EntryNoteOpt = None, history: HistoryOpt = None, now: NowOpt = None, json_output: EntryJsonOpt = False,
) -> None:
    """Change a recorded request, e.g. its outcome once support answers.

    Example:

      \b
      refundadvisor history update 3 --outcome partial --returned 12.50
    """
    with user_errors():
        changes = {"outcome": _outcome(outcome), "returned": returned, "amount": amount, "cause": cause,
                   "asked_at": asked_at, "charged_at": charged_at, "note": note}
        if all(value is None for value in changes.values()):
            raise CliError("nothing to change; give --outcome, --returned, --amount, --cause, --asked-at, --charged-at or --note")
        moment = parse_now(now)
        store = _history(history)
        if cause is not None:
            known = Vocabulary()
            ruleset = known.ruleset(store.get(entry_id).platform)
            if ruleset is not None:  # a platform no rule file describes any more keeps any cause
                changes["cause"] = _flagged("--cause", lambda: known.cause(ruleset, cause))
        entry = _stored(lambda: store.update(entry_id, changes, now=moment))
        if json_output:
            _print_entry(store, entry, json_output)
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
            from ..output import plain

            # at a terminal, a note's own colour codes are removed (piped, the output removes all)
            sys.stdout.write(plain(text) if sys.stdout.isatty() else text)
        else:
            write_output(output, text)
            sys.stderr.write(f"refundadvisor: exported {plural(len(rows), 'request')} to {output}\n")


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
    from ..history import UnreadableExport, detect_export_format, export_lines, read_export

    with user_errors():
        store = _history(history)
        stream = _open_export(file)
        try:
            lines = export_lines(stream)
            chosen = input_format.value
            if chosen == "auto":
                chosen, lines = detect_export_format(lines)
                chosen = _format_by_name(file) or chosen
            imported, skipped = store.import_rows(read_export(lines, chosen), check=Vocabulary().check)
        except UnreadableExport as error:
            raise CliError(f"{_shown_path(file)}: {error}", EXIT_DATA) from None
        except OSError as error:
            raise CliError(f"{_shown_path(file)}: cannot be read ({error.strerror or error})", EXIT_DATA) from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        sys.stderr.write(f"refundadvisor: imported {plural(imported, 'request')}"
                         + (f", skipped {skipped} already there" if skipped else "") + "\n")


def _format_by_name(path: str) -> Optional[str]:
    """'csv' or 'jsonl' when the file's name says so."""
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    return "jsonl" if lowered.endswith((".jsonl", ".ndjson", ".json")) else None


def _shown_path(path: str) -> str:
    from ..history import shown_path

    return "stdin" if path == "-" else shown_path(path)


def _open_export(path: str):
    """FILE opened for reading bytes ('-' for stdin), or a one-sentence CliError."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except IsADirectoryError:
        problem = "is a directory, not a file"
    except FileNotFoundError:
        problem = "no such file"
    except OSError as error:
        problem = f"cannot be read ({error.strerror or error})"
    except ValueError:
        problem = "is not a usable path (it contains a NUL byte)"
    raise CliError(f"{_shown_path(path)}: {problem}")
