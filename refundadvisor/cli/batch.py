"""batch: many charges, one result per input row, streaming."""

import sys
from typing import Annotated, Optional

import typer

from .. import paths
from . import EXIT_BELOW, EXIT_DATA, CliError, app, band_index, is_below, load_rules, parse_now, user_errors
from .options import HistoryOpt, InputFormat, NoHistoryOpt, NowOpt, Opt, PlatformOpt, RowsFormat, RulesOpt


@app.command("batch")
def batch(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON Lines or CSV with a header; '-' for stdin.")],
    output_format: Annotated[RowsFormat, Opt("--format", metavar="FORMAT", help="jsonl or csv [default: jsonl].")] = RowsFormat.jsonl,
    input_format: Annotated[InputFormat, Opt("--input-format", metavar="FORMAT", help="auto, jsonl or csv [default: auto: by the file name, else the first line].")] = InputFormat.auto,
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
    from ..batch import InputError, default_jobs

    with user_errors():
        moment = parse_now(now)
        if jobs is not None and not 1 <= jobs <= 64:
            raise CliError(f"--jobs: {jobs} is not between 1 and 64")
        ruleset, _ = load_rules(rules, platform)
        threshold = band_index(ruleset, fail_below)
        try:
            from ..history import History

            store = None if no_history else History(paths.history_path(history))
            counts = _run_batch(ruleset, file, input_format.value, output_format.value, threshold, moment, quiet,
                                jobs or default_jobs(), store)
        except InputError as error:
            raise CliError(f"{file}: {error}") from None
    if counts["failed"]:
        raise typer.Exit(EXIT_DATA)
    if counts["below"]:
        raise typer.Exit(EXIT_BELOW)


def open_input(path: str):
    """FILE opened as UTF-8 text ('-' for stdin), or an InputError saying why it cannot be."""
    if path == "-":
        return sys.stdin
    from ..batch import InputError

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
    from ..batch import CSV_COLUMNS, InputError, assess_chunks, detect_format, read_chunks

    stream = open_input(path)
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

    from ..render import make_console

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
