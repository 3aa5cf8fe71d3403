"""batch: many charges, one result per input row, streaming."""

import sys
from typing import Annotated, Optional

import typer

from .. import paths
from . import EXIT_BELOW, EXIT_DATA, EXIT_USAGE, CliError, app, band_index, is_below, load_rules, parse_now, user_errors
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
            raise CliError(f"{'stdin' if file == '-' else file}: {error}", EXIT_DATA if error.data else EXIT_USAGE) from None
    if counts["failed"]:
        raise typer.Exit(EXIT_DATA)
    if counts["below"]:
        raise typer.Exit(EXIT_BELOW)


def open_input(path: str):
    """FILE opened as UTF-8 text ('-' for stdin; a BOM is skipped in both), or an InputError
    saying why it cannot be."""
    import io

    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="") \
            if hasattr(sys.stdin, "buffer") else sys.stdin
    raw = open_bytes(path)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def open_bytes(path: str):
    """FILE opened for reading bytes ('-' for stdin), or an InputError saying why it cannot be."""
    from ..batch import InputError

    if path == "-":
        return sys.stdin.buffer if hasattr(sys.stdin, "buffer") else _BytesOf(sys.stdin)
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise InputError("is a directory, not a file") from None
    except FileNotFoundError:
        raise InputError("no such file") from None
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror or error})") from None
    except ValueError:
        raise InputError("is not a usable path (it contains a NUL byte)") from None


class _BytesOf:
    """A text stdin (a test harness's) read as bytes."""

    def __init__(self, stream):
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size).encode("utf-8", "surrogateescape")


def _size_of(raw) -> Optional[int]:
    """The input's size in bytes when it is a regular file (a progress display can say how far)."""
    import os
    import stat

    try:
        info = os.fstat(raw.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size > 0 else None


def _run_batch(ruleset, path: str, input_format: str, output_format: str, threshold, moment, quiet: bool,
               jobs: int, history=None) -> dict:
    from ..batch import Stop, WorkerLost
    from ..words import plural

    counts = {"rows": 0, "failed": 0, "below": 0}
    failed_lines: list[int] = []
    bands: dict[str, int] = {}
    raw = open_bytes(path)
    progress = _progress(quiet, _size_of(raw))
    try:
        with _Signals() as guard:
            _assess(ruleset, raw, path, input_format, output_format, threshold, moment, jobs, history, guard,
                    progress, counts, failed_lines, bands)
    except Stop as stop:
        raise CliError(f"{stop.describe()} after writing {plural(counts['rows'], 'row')} (whole lines); "
                       "the rest was not checked", stop.exit_code) from None
    except WorkerLost:
        raise CliError(f"a worker process ended unexpectedly after writing {plural(counts['rows'], 'row')}; "
                       "run again with --jobs 1", EXIT_DATA) from None
    finally:
        if progress:
            progress(None)
    if not quiet:
        _batch_summary(ruleset, counts, failed_lines, bands)
    return counts


def _assess(ruleset, raw, path: str, input_format: str, output_format: str, threshold, moment, jobs: int, history,
            guard: "_Signals", progress, counts: dict, failed_lines: list, bands: dict) -> None:
    """Read, assess and write every row, keeping the counts the summary (or an interruption) needs."""
    from ..batch import CSV_COLUMNS, ROW_ID, InputError, Lines, assess_chunks, detect_format, read_chunks, read_rows
    from ..model import PLATFORM_KEY

    lines = Lines(raw)
    numbered = iter(lines)
    first = next(numbered, None)
    if first is not None and first[2] is not None:
        raise InputError(f"is not JSON Lines or CSV: line 1: {first[2]}", True)
    chosen = detect_format(path, first[1] if first else "") if input_format == "auto" else input_format
    rows = read_rows(_chain(first, numbered), chosen, set(ruleset.facts) | {ROW_ID, PLATFORM_KEY})
    below = {band.id for band in ruleset.bands if is_below(ruleset, band.id, threshold)}
    results = assess_chunks(ruleset, read_chunks(rows), moment, output_format, jobs, history)
    try:
        if output_format == "csv":
            guard.write(",".join(CSV_COLUMNS) + "\n")
            guard.check()
        for result in results:
            guard.write(result.text)
            counts["rows"] += result.rows
            counts["failed"] += len(result.failed_lines)
            failed_lines.extend(result.failed_lines[:11 - len(failed_lines)])
            for band, number in result.bands.items():
                bands[band] = bands.get(band, 0) + number
                counts["below"] += number if band in below else 0
            if progress:
                progress(counts["rows"], lines.consumed)
            guard.check()
    finally:
        results.close()  # worker processes, if any, are killed and reaped here


class _Signals:
    """Ctrl-C and SIGTERM while a batch runs: stop at once, but never in the middle of writing
    results (a signal that comes then is acted on when the write is done), so that the output
    so far is whole lines."""

    def __init__(self):
        self.writing = False
        self.caught: Optional[int] = None
        self.saved: dict = {}

    def __enter__(self) -> "_Signals":
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[signum] = signal.signal(signum, self._handle)
            except (ValueError, OSError):  # not the main thread: leave signals as they are
                pass
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for signum, handler in self.saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        from ..batch import Stop

        if self.writing or self.caught is not None:
            self.caught = self.caught or signum
            return
        self.caught = signum
        raise Stop(signum)

    def write(self, text: str) -> None:
        """Write results whole; a signal that comes meanwhile is acted on at ``check``."""
        self.writing = True
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        finally:
            self.writing = False

    def check(self) -> None:
        """Stop now if a signal came while writing."""
        from ..batch import Stop

        if self.caught is not None:
            raise Stop(self.caught)


def _chain(first, rest):
    if first is not None:
        yield first
    yield from rest


def _progress(quiet: bool, total: Optional[int]):
    """A progress line on stderr when stderr is a terminal: rows done, and how far through the
    input when its size is known; call with None to clear it."""
    import time

    from ..output import Sink

    stream = sys.stderr
    if quiet or not stream.isatty() or not isinstance(stream, Sink):
        return None
    last = [0.0]

    def update(rows, done_bytes=0):
        if rows is None:
            stream.control("\r\x1b[K")
            return
        now = time.monotonic()
        if now - last[0] < 0.25:
            return
        last[0] = now
        text = f"assessed {rows:,} rows"
        if total:
            share = min(done_bytes / total, 1.0)
            text += f", {share * 100:.0f}% of {_size(total)}"
        stream.control("\r\x1b[K" + text)

    return update


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return str(count)


def _batch_summary(ruleset, counts: dict, failed_lines: list[int], bands: dict[str, int]) -> None:
    from ..words import plural

    by_band = ", ".join(f"{band.id} {bands[band.id]}" for band in ruleset.bands if band.id in bands) or "none"
    text = f"refundadvisor batch: {plural(counts['rows'], 'row')}, {counts['rows'] - counts['failed']} assessed ({by_band})"
    if counts["failed"]:
        shown = ", ".join(str(line) for line in failed_lines[:10]) + (", ..." if counts["failed"] > 10 else "")
        text += f", {counts['failed']} failed ({'line' if counts['failed'] == 1 else 'lines'} {shown})"
    if counts["below"]:
        text += f", {counts['below']} below --fail-below"
    sys.stderr.write(text + "\n")
