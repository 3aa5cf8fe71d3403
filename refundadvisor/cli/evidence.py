"""The `refundadvisor evidence` commands: flags, output and exit codes for refundadvisor.evidence.

Self-contained (it does not import cli.py, which registers it) so that the group can move with
one line. Errors are one sentence on stderr; API keys are read from the environment only and
never printed.
"""

import os
import sys
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Optional

import typer

from .options import complete_ids

EXIT_OK = 0
EXIT_DATA = 1  # a failed look-up, an unreachable API, a rejected key, a malformed reply
EXIT_USAGE = 2  # bad flags or IDs, a missing key, an unreadable input file
EXIT_INTERRUPTED = 130

Opt = typer.Option
CONTEXT = {"help_option_names": ["-h", "--help"]}

evidence_app = typer.Typer(
    help="Evidence from the platform's own records: generation look-ups, your response logs, usage reports.\n\n"
         "Examples:\n\n\b\n"
         "  refundadvisor evidence generations gen-abc123 gen-def456\n"
         "  refundadvisor evidence generations --ids-file ids.txt --csv generations.csv\n"
         "  refundadvisor evidence log responses.jsonl\n"
         "  refundadvisor evidence usage --platform openai --since 2026-11-28 --until 2026-11-30\n\n"
         "Only the look-ups you ask for are sent, to the platform's own API; docs/evidence.md lists them.",
    no_args_is_help=True,
    context_settings=CONTEXT,
    rich_markup_mode=None,
)


class UsageError(Exception):
    """A mistake in how the command was called: exit 2."""


def _fail(message: str, code: int, secret: Optional[str] = None) -> typer.Exit:
    from ..redact import MASK, mask

    if secret:
        message = message.replace(secret, MASK)
    sys.stderr.write(f"refundadvisor: error: {mask(message)[0]}\n")
    return typer.Exit(code)


def _warn(message: str) -> None:
    from ..redact import mask

    sys.stderr.write(f"refundadvisor: warning: {mask(message)[0]}\n")


@contextmanager
def _errors(secret: Optional[str] = None) -> Iterator[None]:
    from ..evidence.common import EvidenceError
    from ..evidence.generations import IdError

    try:
        yield
    except (UsageError, IdError) as error:
        raise _fail(str(error), EXIT_USAGE, secret) from None
    except EvidenceError as error:
        raise _fail(str(error), EXIT_DATA, secret) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; nothing more was looked up or read", EXIT_INTERRUPTED, secret) from None


def _key(variable: str, platform: str) -> str:
    key = os.environ.get(variable, "").strip()
    if not key:
        raise UsageError(f"set {variable} to your {platform} key; it is read from the environment only, "
                         "never from a flag")
    return key


def _show(view, no_color: bool) -> None:
    """Print what ``view(width)`` gives (Rich renderables) on stdout, with anything that looks
    like an API key masked. Into a file or a pipe, the width is 200 rather than 80."""
    from ..redact import mask
    from ..render import make_console

    console = make_console(no_color=no_color)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = make_console(no_color=no_color, width=200)
    with console.capture() as capture:
        for renderable in view(console.width):
            # a plain string holds text from the log (ids, repeated requests): never markup
            console.print(renderable, markup=False) if isinstance(renderable, str) else console.print(renderable)
    sys.stdout.write(mask(capture.get())[0])


def _json(document: dict) -> None:
    from ..evidence.common import to_json
    from ..redact import mask

    sys.stdout.write(mask(to_json(document))[0] + "\n")


def _open_binary(path: str, what: str):
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as error:
        raise UsageError(f"{what}: cannot read {path!r} ({error.strerror or error})") from None


def _progress(total: int):
    """A one-line count on stderr while looking up, when stderr is a terminal."""
    if total < 8 or not sys.stderr.isatty():
        return None

    def update(done: int, total: int) -> None:
        sys.stderr.write(f"\rlooked up {done:,} of {total:,}" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return update


JsonOpt = Annotated[bool, Opt("--json", help="Print the findings as one versioned JSON document.")]
NoColorOpt = Annotated[bool, Opt("--no-color", help="No colour.")]
TimeoutOpt = Annotated[float, Opt("--timeout", metavar="SECONDS", min=0.1, max=600,
                                  help="Give up on a reply after this long (it is retried) [default: 30].",
                                  show_default=False)]


@evidence_app.command("generations")
def generations(
    ids: Annotated[Optional[list[str]], typer.Argument(metavar="[ID]...", help="Generation IDs (gen-...).",
                                                       show_default=False)] = None,
    ids_file: Annotated[Optional[str], Opt("--ids-file", metavar="FILE",
                                           help="IDs one a line, or a JSON Lines log whose \"id\" fields hold "
                                                "them ('-' for stdin).")] = None,
    json_output: JsonOpt = False,
    csv_path: Annotated[Optional[str], Opt("--csv", metavar="FILE",
                                           help="Also write the table as CSV, an attachment for support.")] = None,
    concurrency: Annotated[int, Opt("--concurrency", metavar="N", help="Look-ups at once, 1 to 16 [default: 4].",
                                                show_default=False)] = 4,
    timeout: TimeoutOpt = 30.0,
    no_color: NoColorOpt = False,
) -> None:
    """Look generations up on OpenRouter and flag the ones billed against its own rules.

    Examples:

      \b
      refundadvisor evidence generations gen-abc123 gen-def456
      refundadvisor evidence generations --ids-file ids.txt --csv generations.csv
      grep -o 'gen-[A-Za-z0-9_-]*' app.log | refundadvisor evidence generations --ids-file - --json

    Each ID is one request, GET https://openrouter.ai/api/v1/generation?id=ID, with the key in
    $OPENROUTER_API_KEY (never a flag). Exit 1 when any look-up failed.
    """
    from ..evidence.client import Policy
    from ..evidence.common import api_base_url
    from ..evidence.generations import (KEY_VARIABLE, MAX_CONCURRENCY, OPENROUTER_API_URL, check_ids, csv_rows,
                                       CSV_COLUMNS, document, look_up, read_ids)

    secret = os.environ.get(KEY_VARIABLE, "").strip() or None
    with _errors(secret):
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency: {concurrency} is not between 1 and {MAX_CONCURRENCY}")
        wanted = check_ids(ids or [])
        if ids_file is not None:
            stream = _open_binary(ids_file, "--ids-file")
            try:
                wanted = list(dict.fromkeys(wanted + read_ids(stream, "<stdin>" if ids_file == "-" else ids_file)))
            finally:
                if ids_file != "-":
                    stream.close()
        if not wanted:
            raise UsageError("give generation IDs as arguments or with --ids-file FILE")
        key = _key(KEY_VARIABLE, "OpenRouter API")
        base_url = api_base_url(OPENROUTER_API_URL)
        lookup = look_up(wanted, key, base_url, concurrency, Policy(timeout=timeout), _progress(len(wanted)))
        evidence = document(lookup, base_url)
        if csv_path:
            from ..evidence.csvout import write_csv

            written = write_csv(csv_path, CSV_COLUMNS, csv_rows(evidence))
            sys.stderr.write(f"refundadvisor: {written} generation{'s' if written != 1 else ''} written to {csv_path}\n")
        if json_output:
            _json(evidence)
        else:
            _show(lambda width: _generations_view(evidence, width), no_color)
        for failure in lookup.failures[:5]:
            _warn(failure.message)
        if len(lookup.failures) > 5:
            _warn(f"{len(lookup.failures) - 5} more look-ups failed ({len(lookup.failures)} in all)")
        if lookup.failures:
            raise typer.Exit(EXIT_DATA)


WIDE_TABLE = 150  # columns the one-row-a-generation table needs to stay readable


def _generations_view(evidence: dict, width: int) -> list[Any]:
    from rich import box
    from rich.text import Text

    from ..evidence.common import money_text, parse_time

    lines: list[Any] = []
    from ..render import literal_table

    table = literal_table(title="OpenRouter generations", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False, collapse_padding=True)
    for name, justify in (("id", "left"), ("time UTC", "left"), ("local", "left"), ("model", "left"),
                          ("provider", "left"), ("finish", "left"), ("prompt", "right"), ("completion", "right"),
                          ("cost USD", "right"), ("cancelled", "left"), ("streamed", "left"), ("flags", "left")):
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name not in ("model", "provider"),
                         min_width={"flags": 22, "model": 16}.get(name))
    if width < WIDE_TABLE:
        table = None
    for row in evidence["generations"]:
        moment = parse_time(row["created_at"])
        if table is None:  # a narrow terminal: two lines a generation rather than a squeezed table
            lines.append(_generation_lines(row, moment))
            continue
        table.add_row(
            row["id"], row["created_at"][:19].replace("T", " ") if row["created_at"] else "?",
            _local(moment), row["model"] or "", row["provider"] or "", row["finish_reason"] or "(blank)",
            _count(row["tokens_prompt"]), _count(row["tokens_completion"]), f"{row['total_cost']:f}",
            _yes(row["cancelled"]), _yes(row["streamed"]),
            Text("\n".join(row["flags"]), style="bold red") if row["flags"] else "",
        )
    totals = evidence["totals"]
    if table is not None:
        lines.append(table)
    lines.append("")
    span = ""
    if totals["first_at"]:
        from ..render import span as span_text

        span = f" from {totals['first_at']} to {totals['last_at']} ({span_text(totals['span_seconds'])})"
    lines.append(f"{totals['found']} generation{'s' if totals['found'] != 1 else ''}{span}: "
                 f"{money_text(totals['total_cost'])} in all.")
    if totals["flagged"]:
        lines.append(Text(f"{totals['flagged']} flagged, billed {money_text(totals['flagged_cost'])}:", style="bold"))
        for flag, found in evidence["flags"].items():
            if found["count"]:
                lines.append(f"  {flag}: {found['count']}, {money_text(found['cost'])}; {found['meaning']}")
    else:
        lines.append("None flagged: no error finish, no billed zero-completion and no billed cancellation.")
    if totals["failed"]:
        lines.append(f"{totals['failed']} could not be looked up (see the messages on stderr).")
    return lines


def _generation_lines(row: dict, moment) -> Any:
    from rich.text import Text

    text = Text()
    text.append(row["id"], style="bold")
    text.append(f"  {row['created_at'] or '?'} ({_local(moment) or '?'})  {row['model'] or '?'}"
                f" via {row['provider'] or '?'}\n")
    text.append(f"  finish {row['finish_reason'] or '(blank)'} · tokens {_count(row['tokens_prompt']) or '?'} prompt, "
                f"{_count(row['tokens_completion']) or '?'} completion · {row['total_cost']:f} USD · "
                f"cancelled {_yes(row['cancelled'])} · streamed {_yes(row['streamed'])}")
    if row["flags"]:
        text.append(f" · {', '.join(row['flags'])}", style="bold red")
    return text


def _local(moment) -> str:
    """The local time of day with its zone, and the local date when it is not the UTC date."""
    if moment is None:
        return ""
    local = moment.astimezone()
    day = f"{local:%m-%d} " if local.date() != moment.date() else ""
    return f"{day}{local:%H:%M:%S} {local.tzname() or ''}".rstrip()


def _count(value: Optional[int]) -> str:
    return "" if value is None else f"{value:,}"


def _yes(value: Optional[bool]) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


@evidence_app.command("log")
def log(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A JSON Lines log of responses ('-' for stdin).")],
    json_output: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Read a JSON Lines log of API responses: the runaway window, repeated requests, billed errors.

    Examples:

      \b
      refundadvisor evidence log responses.jsonl
      zcat responses.jsonl.gz | refundadvisor evidence log - --json

    Nothing is sent anywhere. Broken lines are named on stderr and skipped; the rest is read.
    """
    from ..evidence.logread import BROKEN_EXAMPLES, read_log

    name = "<stdin>" if file == "-" else file
    with _errors():
        stream = _open_binary(file, "FILE")
        try:
            reader = read_log(stream, name, lambda broken: _warn(f"{name}: line {broken.line} {broken.reason}; skipped"))
        except OSError as error:
            raise UsageError(f"cannot read {name!r} ({error.strerror or error})") from None
        finally:
            if file != "-":
                stream.close()
        if reader.broken > BROKEN_EXAMPLES:
            _warn(f"{name}: {reader.broken:,} broken lines skipped in all")
        evidence = reader.document()
        if json_output:
            _json(evidence)
        else:
            _show(lambda width: _log_view(evidence, reader), no_color)


def _log_view(evidence: dict, reader) -> list[Any]:
    from rich.text import Text

    from ..evidence.chart import sparkline, timeline_table
    from ..evidence.common import money_text, parse_time
    from ..evidence.logread import MIN_MINUTES
    from ..render import span as span_text

    totals = evidence["totals"]
    lines: list[Any] = []
    skipped = evidence["lines"]["skipped"]
    lines.append(f"{evidence['source']['name']}: {evidence['lines']['read']:,} lines, {totals['requests']:,} requests"
                 f" ({totals['errors']:,} errors), {money_text(totals['cost'])} in all."
                 + (f" Skipped: {skipped['broken'] + skipped['too_long']:,} broken." if skipped["broken"] + skipped["too_long"] else ""))
    if not totals["requests"]:
        lines.append("No responses or error bodies found in this file.")
        return lines
    first, last = evidence["first_request"], evidence["last_request"]
    if first:
        lines.append(f"First request {first['at']} (line {first['line']}), last {last['at']} (line {last['line']}), "
                     f"{span_text(totals['span_seconds'])} apart.")
    if totals["untimed"]:
        lines.append(f"{totals['untimed']:,} lines have no time and are left out of the chart.")
    baseline = evidence["baseline"]
    runaway = evidence["runaway"]
    lines.append("")
    if runaway:
        lines.append(Text(f"Runaway window: {runaway['start']} to {runaway['end']} ({runaway['minutes']} min): "
                          f"{runaway['requests']:,} requests, {money_text(runaway['cost'])}, "
                          f"{runaway['times_baseline']:g} times the usual {baseline['requests_per_minute']:g} "
                          f"per minute (peak {runaway['peak_requests_per_minute']:,} in a minute).", style="bold red"))
        for other in evidence["windows"][1:]:
            lines.append(f"Also above the usual rate: {other['start']} to {other['end']}: {other['requests']:,} "
                         f"requests, {money_text(other['cost'])}.")
    else:
        lines.append(f"No runaway window: no {MIN_MINUTES} minutes at {baseline['threshold_requests_per_minute']:g} or more "
                     f"requests a minute (the usual is {baseline['requests_per_minute']:g}).")
    for repeat in evidence["repeats"][:3]:
        signature = repeat["signature"]
        what = (f"request hash {signature['request_hash'][:16]}" if "request_hash" in signature
                else f"{signature['model']} with {signature['prompt_tokens']:,} prompt tokens")
        lines.append(f"Repeated: {what}, {repeat['requests']:,} times ({repeat['in_loop']:,} within seconds of the "
                     f"one before), {repeat['first_at']} to {repeat['last_at']}, {money_text(repeat['cost'])}.")
    billed = evidence["billed_errors"]
    if billed["count"]:
        lines.append(Text(f"Billed errors: {billed['count']:,} requests that failed yet were billed, "
                          f"{money_text(billed['cost'])} in all.", style="bold"))
        for item in billed["items"][:5]:
            lines.append(f"  line {item['line']}: {item['id'] or '(no id)'} at {item['at'] or '(no time)'}, "
                         f"{item['finish_reason'] or item['reason']}, {item['cost']:f} USD")
        if billed["count"] > 5:
            lines.append(f"  … and {billed['count'] - 5:,} more (--json lists up to 1,000).")
    else:
        lines.append("No billed errors: no failed request carried a cost.")
    lines.append("")
    lines.append(timeline_table(evidence["timeline"], runaway))
    if runaway:
        lines.append("◀ marks the runaway window.")
    if runaway:
        start = int(parse_time(runaway["start"]).timestamp())
        end = int(parse_time(runaway["end"]).timestamp())
        margin = max(600, (end - start) // 4)
        minutes = reader.per_minute(start - margin, end + margin)
        lines.append("")
        lines.append(f"Requests per minute, {span_text(margin)} either side of the window:")
        per_character = -(-len(minutes) // 76)  # fits an 80-column terminal
        lines.append(Text(sparkline([count for _, count in minutes], width=-(-len(minutes) // per_character)),
                          style="red", no_wrap=True))
        lines.append(f"{parse_time(minutes[0][0]):%H:%M} UTC … {parse_time(minutes[-1][0]):%H:%M} UTC, "
                     + ("one character a minute" if per_character == 1 else f"one character per {per_character} minutes"))
    return lines


def _usage_platforms() -> list[str]:
    from ..evidence.usage import PLATFORMS

    return list(PLATFORMS)


def _bucket_widths() -> list[str]:
    from ..evidence.usage import WIDTHS

    return ["auto", *WIDTHS]


@evidence_app.command("usage")
def usage(
    platform: Annotated[str, Opt("--platform", metavar="NAME", help="openai or anthropic.", show_default=False,
                                          autocompletion=complete_ids(_usage_platforms))] = "",
    since: Annotated[str, Opt("--since", metavar="WHEN", help="Start, a date or ISO 8601 time (UTC unless "
                                                              "an offset is given), or how long ago: 3d.", show_default=False)] = "",
    until: Annotated[Optional[str], Opt("--until", metavar="WHEN", help="End (exclusive) [default: now].")] = None,
    bucket: Annotated[str, Opt("--bucket", metavar="WIDTH", help="1m, 1h or 1d [default: by the range: "
                                                                 "1m up to a day, 1h up to two weeks, else 1d].",
                                        show_default=False, autocompletion=complete_ids(_bucket_widths))] = "auto",
    json_output: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
    no_color: NoColorOpt = False,
) -> None:
    """Read OpenAI's or Anthropic's usage and cost reports (an admin key) and find the spike.

    Examples:

      \b
      refundadvisor evidence usage --platform openai --since 2026-11-28 --until 2026-11-30
      refundadvisor evidence usage --platform anthropic --since 2d --bucket 1h --json

    The key comes from $OPENAI_ADMIN_KEY, or $ANTHROPIC_ADMIN_KEY (or $ANTHROPIC_ADMIN_API_KEY),
    never a flag. Two reports are read, every page: usage in the buckets chosen, cost per day.
    """
    from datetime import datetime, timedelta, timezone

    from ..evidence.client import Policy
    from ..evidence.common import api_base_url
    from ..evidence.usage import PLATFORMS, auto_width, fetch

    chosen = PLATFORMS.get(platform.strip().lower())
    secret = None
    if chosen is not None:
        secret = next((os.environ[name].strip() for name in chosen.key_variables if os.environ.get(name, "").strip()),
                      None)
    with _errors(secret):
        if chosen is None:
            raise UsageError(f"--platform: {platform!r} is not a platform with usage reports; use openai or anthropic"
                             if platform else "--platform is required: openai or anthropic")
        now = datetime.now(timezone.utc)
        start = _when(since, now, "--since") if since else None
        if start is None:
            raise UsageError("--since is required: a date such as 2026-11-28, a time, or how long ago such as 3d")
        end = _when(until, now, "--until") if until else now
        if end <= start:
            raise UsageError("--until must be after --since")
        if end - start > timedelta(days=366):
            raise UsageError("the range is longer than a year; narrow --since and --until to the incident")
        width = auto_width(start, end) if bucket == "auto" else bucket
        if width not in ("1m", "1h", "1d"):
            raise UsageError(f"--bucket: {bucket!r} is not a width; use 1m, 1h or 1d")
        if not secret:
            raise UsageError(f"set {chosen.key_variables[0]} to your {chosen.title} admin key; it is read from the "
                             "environment only, never from a flag")
        evidence = fetch(chosen, secret, start, end, width, api_base_url(chosen.base_url), Policy(timeout=timeout))
        if json_output:
            _json(evidence)
        else:
            _show(lambda width_: _usage_view(evidence, chosen.title), no_color)


def _when(text: str, now, flag: str):
    """A moment from a date, an ISO 8601 time (UTC unless it has an offset) or a duration ago."""
    import re
    from datetime import timedelta

    from ..evidence.common import parse_time

    text = text.strip()
    match = re.fullmatch(r"(\d{1,6})\s*([mhdw])", text)
    if match:
        unit = {"m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - timedelta(seconds=int(match.group(1)) * unit)
    moment = parse_time(text) if re.match(r"\d{4}-\d{2}-\d{2}", text) else None
    if moment is None:
        raise UsageError(f"{flag}: {text[:40]!r} is not a date or time; write 2026-11-28, 2026-11-28T14:00 or 3d")
    if moment > now:
        raise UsageError(f"{flag}: {text[:40]!r} is in the future")
    return moment


def _usage_view(evidence: dict, title: str) -> list[Any]:
    from rich.text import Text

    from ..evidence.chart import timeline_table
    from ..evidence.common import money_text
    from ..evidence.usage import chart_timeline

    totals = evidence["totals"]
    metric = evidence["metric"]
    lines: list[Any] = []
    used = (f"{totals['requests']:,} requests, " if totals["requests"] is not None else "") + \
        f"{totals['input_tokens']:,} input and {totals['output_tokens']:,} output tokens"
    lines.append(f"{title} usage from {evidence['range']['since']} to {evidence['range']['until']}: {used}; "
                 f"{money_text(totals['cost'])} in the cost report.")
    runaway = evidence["runaway"]
    if runaway:
        lines.append(Text(f"Spike: {runaway['start']} to {runaway['end']}: {runaway[metric]:,} {metric}, "
                          f"{runaway['times_baseline']:g} times the usual per bucket.", style="bold red"))
    else:
        lines.append(f"No spike: no bucket reached {evidence['baseline']['threshold']:g} {metric}.")
    lines.append("")
    lines.append(timeline_table(chart_timeline(evidence), runaway, unit=metric))
    if evidence["cost_buckets"]:
        lines.append("")
        lines.append("Cost per day (UTC):")
        for bucket in evidence["cost_buckets"]:
            lines.append(f"  {bucket['start'][:10]}  {money_text(bucket['cost'])}")
    return lines
