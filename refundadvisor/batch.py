"""Answers files and batches: facts by name from YAML, JSON, JSON Lines or CSV.

An answers file holds the facts of one charge; a batch holds one charge a row. Keys are the
fact names (``charge_type``, ``amount``, ``charged_at`` or ``ago``, ``cause``, ...) as in the JSON
``facts``, plus an optional ``id`` per batch row that is echoed in its result. Rows are read and
assessed one at a time, so memory stays flat however long the input is.
"""

import collections
import csv
import errno
import itertools
import json
import os
from json.encoder import encode_basestring_ascii
import sys
from datetime import datetime
from typing import Any, Iterator, NamedTuple, Optional

from .advisor import prepare
from .csvsafe import Sentence, row_text as _csv_line  # cells guarded against spreadsheet formulas (OWASP); CR, LF quoted
from .engine import conclude, evaluate
from .facts import FactError, MissingFacts, parse_answers
from .model import EVIDENCE_FACT, PLATFORM_KEY, RuleSet
from .redact import mask
from .render import SCHEMA_VERSION

ANSWERS_LIMIT = 1024 * 1024  # an answers file describes one charge; more is a mistake
ROW_ID = "id"


class InputError(Exception):
    """Input that cannot be read at all (not one bad row): says what and where. ``data`` when
    the input was found but is not what it should be (binary, not CSV), not a wrong path."""

    def __init__(self, message: str, data: bool = False):
        super().__init__(message)
        self.data = data


class Stop(Exception):
    """A signal asked a batch to stop: Ctrl-C (SIGINT) or SIGTERM. Exit 128 + the signal's number,
    as shells report a process a signal ended (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum

    def describe(self) -> str:
        import signal

        return "interrupted" if self.signum == signal.SIGINT else f"stopped by {signal.Signals(self.signum).name}"


def read_answers(path: str) -> dict[str, Any]:
    """Read an answers file (YAML or JSON; '-' for stdin) into a mapping of fact names to values."""
    from .rules import read as safeyaml

    try:
        if path == "-":
            try:
                data = sys.stdin.buffer.read(ANSWERS_LIMIT + 1)
            except OSError as error:
                raise InputError(f"stdin cannot be read ({error.strerror or error})") from None
            if len(data) > ANSWERS_LIMIT:
                raise InputError("the answers on stdin are larger than 1 MiB")
            document = safeyaml.parse(safeyaml.decode(data, "<stdin>", "answers"), "<stdin>")
        else:
            document = safeyaml.load(path, what="answers file", limit=ANSWERS_LIMIT)
    except safeyaml.YamlProblem as problem:
        raise InputError(problem.format()) from None
    if document.data is None:
        return {}
    if not isinstance(document.data, dict):
        raise InputError(f"{document.path}: the answers must be a mapping of fact names to values, one per "
                         "line like 'amount: 20' ('refundadvisor rules show' lists the facts)")
    return {str(key): value for key, value in document.data.items()}


class Row(NamedTuple):
    line: int  # where the row starts in the input, 1-based
    values: Optional[dict[str, Any]]  # None when not read yet (raw) or unreadable (error)
    error: Optional[str] = None
    raw: Optional[str] = None  # a JSON line still to parse (parsed where it is assessed)


LINE_LIMIT = 64 * 1024  # bytes in one input line: a row describes one charge; more is a mistake
MIB = 1024 * 1024
SKIP_LIMIT = 256 * MIB  # a line this long is not skipped to its end: it fails, and reading stops there
MAX_DEPTH = 32  # nesting of a JSON row's arrays and objects
EXCERPT = 60  # characters of bad input shown in an error, at most
BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # Windows' "Unicode" text: UTF-16 (or UTF-32) with its BOM
_DIGIT_LIMIT = getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


def _mostly_nul(sample: bytes) -> bool:
    """Whether bytes look like UTF-16 of mostly ASCII text (every other byte NUL), as JSON Lines
    and CSV saved as Windows "Unicode" are."""
    return len(sample) >= 2 and sample.count(0) * 3 >= len(sample)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A short piece of bad input, fit to show in an error: never the whole of a long one."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class Lines:
    """The numbered lines of a byte stream, decoded one at a time, in bounded memory.

    A line ends at LF (a CR before it is dropped); a file that has no LF in its first block but
    has CRs uses CR alone (old Mac files). A lone CR inside a line stays in that line, so it never
    shifts the numbers of the lines after it. A UTF-8 BOM at the start is dropped. A line longer
    than LINE_LIMIT is not kept: it is given as an error and skipped. ``consumed`` counts the
    bytes read so far (for a progress display)."""

    BLOCK = 64 * 1024

    def __init__(self, raw, limit: int = LINE_LIMIT):
        self.raw = raw
        self.limit = limit
        self.consumed = 0
        self.ending = b"\n"

    def __iter__(self) -> Iterator[tuple[int, Optional[str], Optional[str]]]:
        """(line number, text without its ending, None) or (line number, None, what is wrong)."""
        number = 0
        for line, too_long in self._pieces():
            number += 1
            if isinstance(too_long, str):
                yield number, None, too_long
                continue
            if too_long:
                yield number, None, (f"the line is longer than {self.limit // 1024} KiB, the limit for one row; "
                                     "split it, or check that this is the file you meant")
                continue
            if self.ending == b"\n" and line.endswith(b"\r"):
                line = line[:-1]
            if b"\x00" in line:
                yield number, None, "the line holds a NUL byte: this is binary data, not text"
                continue
            try:
                yield number, line.decode("utf-8"), None
            except UnicodeDecodeError as error:
                yield number, None, f"not UTF-8 text (byte 0x{line[error.start]:02x} at column {error.start + 1})"

    def _read(self) -> bytes:
        # read1: what is there, without waiting for a whole block (rows piped in slowly stream out)
        try:
            block = (self.raw.read1 if hasattr(self.raw, "read1") else self.raw.read)(self.BLOCK)
        except OSError as error:  # a disk error, /proc/self/mem, a closed stdin: mid-file as at its start
            where = f" after {self.consumed:,} bytes" if self.consumed else ""
            closed = error.errno == errno.EBADF  # no stdin at all (<&-): how it was run, not the data
            raise InputError(f"cannot be read{where} ({error.strerror or error})", not closed) from None
        self.consumed += len(block)
        return block

    def _pieces(self) -> Iterator[tuple[bytes, Any]]:
        """Each line's bytes, and False; or b"" and True for a line too long to keep; or b"" and
        why reading stops."""
        buffer = self._read()
        if buffer.startswith(BOM):
            buffer = buffer[len(BOM):]
        elif buffer.startswith(UTF16_BOMS) and _mostly_nul(buffer[2:514]):
            raise InputError("is UTF-16 text (as Windows saves 'Unicode' text); save it as UTF-8 and run again", True)
        if b"\x00" in buffer[:self.BLOCK].split(b"\n", 1)[0] or b"\x00" * 8 in buffer:
            raise InputError("is binary data (it holds NUL bytes), not JSON Lines or CSV text", True)
        if b"\n" not in buffer and b"\r" in buffer:
            self.ending = b"\r"
        ending = self.ending
        skipping = False  # inside a line too long to keep
        skipped = 0
        while buffer:
            *whole, rest = buffer.split(ending)
            for line in whole:
                if skipping:
                    skipping = False
                    yield b"", True
                elif len(line) > self.limit:
                    yield b"", True
                else:
                    yield line, False
            if skipping or len(rest) > self.limit:  # inside a line too long to keep: drop what came
                skipped = skipped + len(rest) if skipping else len(rest)
                # an endless line (/dev/zero, `yes | tr -d '\\n'`) would be read for ever: that row
                # fails and reading stops there, the rows before it keep their verdicts
                if b"\x00" in rest:
                    yield b"", "the line holds binary data (NUL bytes) and no line break; the rest was not read"
                    return
                if skipped > SKIP_LIMIT:
                    yield b"", f"the line goes on for more than {SKIP_LIMIT // MIB} MiB; the rest was not read"
                    return
                skipping, rest = True, b""
            more = self._read()
            if not more:
                if skipping:
                    yield b"", True
                elif rest:
                    yield rest, False
                return
            buffer = rest + more


def detect_format(path: str, first_line: str) -> str:
    """'jsonl' or 'csv', from the file name, else from the first line."""
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def read_rows(lines: Iterator[tuple[int, Optional[str], Optional[str]]], input_format: str,
              known: Optional[set] = None) -> Iterator[Row]:
    """Yield the rows of numbered JSON Lines or CSV lines, one at a time; blank lines are skipped.

    JSON lines are passed on unparsed (``raw``), so that parsing happens in the worker that
    assesses them; ``parse_row`` does it. A CSV header must name at least one of ``known``."""
    if input_format == "jsonl":
        for number, text, error in lines:
            if error is not None:
                yield Row(number, None, error)
            elif text.strip():
                yield Row(number, None, None, text)
        return
    yield from _csv_rows(lines, known)


def _csv_rows(lines, known: Optional[set]) -> Iterator[Row]:
    failed: list = []  # lines that could not be read, reported in their place

    def feed():
        for number, text, error in lines:
            if error is not None:
                failed.append((number, error))
                yield "\n"
            else:
                yield text + "\n"

    reader = csv.reader(feed())
    start = 1  # where the row being read begins
    try:
        header = next((cells for cells in reader if cells), None)  # blank lines before it are skipped
        if header is None:
            return
        if failed:
            raise InputError(f"line {failed[0][0]}: {failed[0][1]}; the first line must be the CSV header", True)
        names = [cell.strip() for cell in header]
        if known is not None and not known.intersection(names):
            raise InputError(f"line {reader.line_num} is not a CSV header of fact names (it reads "
                             f"{excerpt(','.join(header))!r}); the first line must name the columns, like "
                             "id,charge_type,amount,ago,cause", True)
        while True:
            start = reader.line_num + 1
            cells = next(reader, None)
            while failed:
                number, error = failed.pop(0)
                yield Row(number, None, error)
            if cells is None:
                return
            if not cells:
                continue
            if len(cells) > len(names):
                yield Row(reader.line_num, None, f"{len(cells) - len(names)} more cells than the header has columns")
                continue
            yield Row(reader.line_num, {key: value for key, value in zip(names, cells) if value != ""})
    except csv.Error as error:
        # that row fails, and the rows before it keep their verdicts; after it nothing can be told apart
        yield Row(start, None, f"not valid CSV ({excerpt(error, 2 * EXCERPT)}); a quote left open takes in "
                               "the lines after it; the rest was not read")


def _depth(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def parse_row(row: Row) -> Row:
    """A row with its JSON line parsed into values, or with the reason it cannot be."""
    if row.raw is None:
        return row
    try:
        values = json.loads(row.raw)
    except RecursionError:
        return Row(row.line, None, f"nested more than {MAX_DEPTH} levels deep; a row is one charge's facts")
    except ValueError as error:
        if not hasattr(error, "colno"):  # Python's limit on the digits of one integer
            return Row(row.line, None, f"holds a number of more than {_DIGIT_LIMIT:,} digits; no amount or count "
                                       "is that long: check the row")
        where = f" at column {error.colno}"
        return Row(row.line, None, f"not valid JSON ({excerpt(getattr(error, 'msg', str(error)), 2 * EXCERPT)}{where})")
    if not isinstance(values, dict):
        return Row(row.line, None, "a row must be a JSON object of fact names to values")
    if row.raw.count("[") + row.raw.count("{") > MAX_DEPTH and _depth(values, MAX_DEPTH):
        return Row(row.line, None, f"nested more than {MAX_DEPTH} levels deep; a row is one charge's facts")
    return Row(row.line, values)


class RowResult(NamedTuple):
    """One row's result, already formatted for the output."""

    text: str  # a JSON line or a CSV row, without its newline
    line: int
    band: Optional[str]  # None for a row that failed


CSV_COLUMNS = ("id", "line", "band", "score", "outcome", "checklist_missing", "error")


class RowAssessor:
    """Assesses rows one at a time for one rule set and moment, and formats each result.

    What repeats is prepared once: parsed values (cached), and the JSON of each band, outcome
    and rule's reason, so that a result line is joined from pieces rather than serialised."""

    def __init__(self, ruleset: RuleSet, now: datetime, output_format: str = "jsonl", history=None):
        self.ruleset = ruleset
        self.now = now
        self.csv = output_format == "csv"
        self.history = _ReadOnce(history) if history is not None and history.exists() else None
        self.others: dict = {ruleset.platform: self}  # platform name -> its assessor, for rows that name one
        self.parsed: dict = {}
        self.bands = {band.id: f'"likelihood":{{"band":"{band.id}","label":{_json(band.label)},"score":'
                      for band in ruleset.bands}
        self.reasons = tuple(_json({"rule": rule.id, "effect": rule.effect}) for rule in ruleset.rules)

    def result(self, row: Row) -> RowResult:
        """The formatted result for one row: its verdict, or the error that stopped it (one row's
        problem, however deep or strange, never costs the rows around it)."""
        try:
            return self._result(row)
        except RecursionError:
            return self.failure(row, None, None, "nested too deeply to assess; a row is one charge's facts")

    def _result(self, row: Row) -> RowResult:
        row = parse_row(row)
        row_id = row.values.get(ROW_ID) if row.values else None
        if row_id is not None and not isinstance(row_id, (str, int, float)):
            return self.failure(row, None, ROW_ID, "an id must be text or a number")
        if row.error is not None:
            return self.failure(row, row_id, None, row.error)
        platform = row.values.get(PLATFORM_KEY)
        if platform is not None and str(platform).strip().lower() != self.ruleset.platform:
            other = self.for_platform(platform)
            if isinstance(other, str):
                return self.failure(row, row_id, PLATFORM_KEY, other)
            return other.result(row)
        answers = {key: value for key, value in row.values.items() if key not in (ROW_ID, PLATFORM_KEY)}
        try:
            given = parse_answers(self.ruleset, answers, self.now, self.parsed)
            if self.history is not None:
                self.fill_from_history(given)
            facts, warnings = prepare(self.ruleset, given, self.now)
        except FactError as error:
            return self.failure(row, row_id, error.fact, str(error))
        except MissingFacts as error:
            return self.failure(row, row_id, error.names[0], f"missing {', '.join(error.names)}")
        fired = evaluate(facts.values, self.ruleset)
        conclusion = conclude(self.ruleset, fired)
        have = facts.values.get(EVIDENCE_FACT) or ()
        missing = [item for item, kinds in conclusion.evidence if kinds.isdisjoint(have)]
        band = conclusion.band.id
        if self.csv:
            line = _csv_line([row_id, row.line, band, conclusion.score, conclusion.outcome.id, len(missing), ""])
            return RowResult(line, row.line, band)
        if conclusion.warnings:
            warnings = warnings + tuple(w for w in conclusion.warnings if w not in warnings)
        # ids are validated to [a-z0-9_-], so they need no escaping
        listed = '["' + '","'.join(missing) + '"]' if missing else "[]"
        set_by = f'"{conclusion.outcome_rule}"' if conclusion.outcome_rule else "null"
        text = (f'{{"schema_version":"{SCHEMA_VERSION}","line":{row.line},"id":{_json_id(row_id)},"ok":true,'
                f'{self.bands[band]}{conclusion.score}}},'
                f'"outcome":{{"id":"{conclusion.outcome.id}","set_by":{set_by}}},'
                f'"reasons":[{",".join([self.reasons[index] for index in fired])}],'
                f'"checklist_missing":{listed},"warnings":{_json(list(warnings)) if warnings else "[]"}}}')
        return RowResult(text, row.line, band)

    def for_platform(self, name: Any):
        """The assessor for a row's own platform (its bundled rules), or why there is none."""
        from .paths import UnknownPlatform, platform_path
        from .rules import RulesError
        from .rules.cache import load

        key = str(name).strip().lower()
        found = self.others.get(key)
        if found is None:
            try:
                ruleset = load(str(platform_path(key, PLATFORM_KEY)))
                found = RowAssessor(ruleset, self.now, "csv" if self.csv else "jsonl", None)
                found.history = self.history
                found.others = self.others
            except UnknownPlatform as error:
                found = str(error)
            except RulesError as error:
                found = f"the rules of platform {key!r} cannot be used: {error}"
            if len(self.others) < 64:
                self.others[key] = found
        return found

    def fill_from_history(self, given: dict[str, Any]) -> None:
        """The counts of earlier requests a row does not give, from the user's history (the same
        filling as check's, with each distinct charge's summary read once)."""
        from .advisor import fill_from_history

        fill_from_history(self.ruleset, given, {}, self.history, self.now)

    def failure(self, row: Row, row_id: Any, key: Optional[str], message: str) -> RowResult:
        # what is echoed of bad input stays short: a key as long as a line, a value's whole text
        # (API keys are masked first, so that no cut leaves half of one for the output to miss)
        key = None if key is None else excerpt(mask(key)[0])
        message = excerpt(mask(message)[0], 400)
        if self.csv:
            return RowResult(_csv_line([row_id, row.line, "", "", "", "", Sentence(message)]), row.line, None)
        document = {"schema_version": SCHEMA_VERSION, "line": row.line, "id": _unescaped_key_masked(row_id), "ok": False,
                    "error": {"key": key, "message": message}}
        return RowResult(_json(document), row.line, None)


class _ReadOnce:
    """The user's history read once per batch (it does not change while a batch runs); answers
    the same summaries as the database would."""

    def __init__(self, history):
        from .history import History

        self.path = history.path
        self._entries: dict = {}
        self._history = history
        self.summary = History.summary.__get__(self)

    def exists(self) -> bool:
        return True

    def entries(self, platform=None):
        if platform not in self._entries:
            self._entries[platform] = self._history.entries(platform)
        return self._entries[platform]


def _json_id(value: Any) -> str:
    """A row id as JSON; text ids (the usual case) without the general encoder's overhead."""
    return encode_basestring_ascii(_unescaped_key_masked(value)) if type(value) is str else _json(value)


def _unescaped_key_masked(value: Any) -> Any:
    """A text id with any key in full-width or other non-ASCII letters masked now: once JSON
    has escaped it (\\uff33...), the output sink cannot see it."""
    return mask(value)[0] if type(value) is str and not value.isascii() else value


def _json(value: Any) -> str:
    # ASCII only: a JSON line must not hold characters some readers take as line breaks (U+0085, U+2028)
    return json.dumps(value, separators=(",", ":"))


# --- many rows, on every core -------------------------------------------------------------------
# Rows travel in chunks: for JSON Lines the raw text of each line, for CSV the rows the CSV
# reader made. A worker process assesses a chunk and returns its formatted results as one text,
# with counts. Each worker has its own pipe (no lock is shared, so none can be left held by a
# worker that died) and at most IN_FLIGHT chunks ahead (a thread in the worker takes them in as
# they come, so neither side's send waits on the other's); chunks go round the workers and come
# back in input order, so output order is input order and memory stays flat. Workers ignore Ctrl-C (the
# parent decides what happens), die with the parent, and never print.

CHUNK_ROWS = 2000
WORKER_EXIT_WAIT = 2.0  # seconds: a killed worker is gone in milliseconds; this bounds a stuck one
IN_FLIGHT = 2  # chunks sent to each worker ahead of its results


class Chunk(NamedTuple):
    rows: list  # Row tuples: JSON lines still raw, CSV rows already read


class ChunkResult(NamedTuple):
    text: str  # the formatted results, one line each
    rows: int
    bands: dict  # band id -> how many rows got it
    failed_lines: list  # input line numbers of the rows that failed


class WorkerLost(Exception):
    """A worker process ended without its results (killed, out of memory)."""


def read_chunks(rows: Iterator[Row], size: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """The rows in chunks of ``size``."""
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield Chunk(chunk)


def assess_chunk(assessor: RowAssessor, chunk: Chunk) -> ChunkResult:
    """Every row of a chunk, formatted, with the counts the summary needs."""
    texts: list[str] = []
    bands: dict[str, int] = {}
    failed: list[int] = []
    for row in chunk.rows:
        result = assessor.result(row)
        texts.append(result.text)
        if result.band is None:
            failed.append(result.line)
        else:
            bands[result.band] = bands.get(result.band, 0) + 1
    return ChunkResult("\n".join(texts) + "\n" if texts else "", len(texts), bands, failed)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies, however it dies (kill -9 too)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, ImportError):
        pass
    if os.getppid() != parent:  # the parent was already gone
        os._exit(0)


def _worker(connection, parent: int, ruleset: RuleSet, now: datetime, output_format: str, history) -> None:
    """A worker process: assess the chunks it is sent, until told to stop or the parent is gone."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent handles it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        _die_with_parent(parent)
        assessor = RowAssessor(ruleset, now, output_format, history)
        inbox = _Inbox(connection)
        while True:
            chunk = inbox.get()
            if chunk is None:
                break
            connection.send(assess_chunk(assessor, chunk))
    except BaseException:  # noqa: BLE001  the parent reports a lost worker; a worker never prints
        pass
    finally:
        os._exit(0)


class _Inbox:
    """A worker's incoming chunks, read by a thread as they come: the parent's send never waits
    on a worker busy sending its results (the two would wait on each other for ever)."""

    def __init__(self, connection):
        import queue
        import threading

        self.connection = connection
        self.queue: "queue.SimpleQueue" = queue.SimpleQueue()
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        try:
            while True:
                chunk = self.connection.recv()
                self.queue.put(chunk)
                if chunk is None:
                    return
        except (EOFError, OSError):
            self.queue.put(None)

    def get(self):
        return self.queue.get()


class Workers:
    """Worker processes, each with its own pipe; ``map`` assesses chunks in input order. On leaving
    the ``with`` block, however it is left, every worker is killed and reaped."""

    def __init__(self, jobs: int, ruleset: RuleSet, now: datetime, output_format: str, history):
        import multiprocessing
        import signal

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self.processes: list = []
        self.connections: list = []
        # no signal may land between a fork and the worker's own handlers (it would run the parent's)
        saved = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for _ in range(jobs):
                mine, theirs = context.Pipe()
                process = context.Process(target=_worker, daemon=True,
                                          args=(theirs, os.getpid(), ruleset, now, output_format, history))
                process.start()
                theirs.close()
                self.processes.append(process)
                self.connections.append(mine)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def map(self, chunks: Iterator[Chunk]) -> Iterator[ChunkResult]:
        waiting: collections.deque = collections.deque()  # worker indexes, oldest chunk first
        limit = IN_FLIGHT * len(self.connections)
        for number, chunk in enumerate(chunks):
            if len(waiting) >= limit:  # the oldest chunk in flight went to this same worker
                yield self._receive(waiting.popleft())
            index = number % len(self.connections)
            self._send(index, chunk)
            waiting.append(index)
        while waiting:
            yield self._receive(waiting.popleft())

    def _send(self, index: int, chunk: Chunk) -> None:
        try:
            self.connections[index].send(chunk)
        except (OSError, EOFError):
            raise WorkerLost from None

    def _receive(self, index: int) -> ChunkResult:
        try:
            return self.connections[index].recv()
        except (OSError, EOFError):
            raise WorkerLost from None

    def close(self) -> None:
        for process in self.processes:
            try:
                process.kill()
            except (OSError, ValueError, AttributeError):
                pass
        for process in self.processes:
            try:
                process.join(WORKER_EXIT_WAIT)
            except (OSError, ValueError, AssertionError):
                pass
        for connection in self.connections:
            connection.close()
        self.processes, self.connections = [], []


def assess_chunks(ruleset: RuleSet, chunks: Iterator[Chunk], now: datetime, output_format: str = "jsonl",
                  jobs: int = 1, history=None) -> Iterator[ChunkResult]:
    """Each chunk's results, in input order; with jobs > 1 and more than one chunk, chunks are
    assessed in that many worker processes."""
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if jobs <= 1 or second is None:
        assessor = RowAssessor(ruleset, now, output_format, history)
        for chunk in itertools.chain((first,) if second is None else (first, second), chunks):
            yield assess_chunk(assessor, chunk)
        return
    with Workers(jobs, ruleset, now, output_format, history) as workers:
        yield from workers.map(itertools.chain((first, second), chunks))


def default_jobs() -> int:
    """How many worker processes a batch uses by default: the CPUs this process may use, up to 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(available, 4))
