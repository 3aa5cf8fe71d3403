"""Answers files and batches: facts by name from YAML, JSON, JSON Lines or CSV.

An answers file holds the facts of one charge; a batch holds one charge a row. Keys are the
fact names (``charge_type``, ``amount``, ``charged_at`` or ``ago``, ``cause``, ...) as in the JSON
``facts``, plus an optional ``id`` per batch row that is echoed in its result. Rows are read and
assessed one at a time, so memory stays flat however long the input is.
"""

import collections
import csv
import itertools
import json
import os
from json.encoder import encode_basestring_ascii
import sys
from datetime import datetime
from typing import Any, Iterator, NamedTuple, Optional, TextIO

from .advisor import prepare
from .csvsafe import row_text as _csv_line  # cells guarded against spreadsheet formulas (OWASP); CR, LF quoted
from .engine import conclude, evaluate
from .facts import FactError, MissingFacts, parse_answers
from .model import EVIDENCE_FACT, PLATFORM_KEY, RuleSet
from .render import SCHEMA_VERSION

ANSWERS_LIMIT = 1024 * 1024  # an answers file describes one charge; more is a mistake
ROW_ID = "id"


class InputError(Exception):
    """Input that cannot be read at all (not one bad row): says what and where."""


def read_answers(path: str) -> dict[str, Any]:
    """Read an answers file (YAML or JSON; '-' for stdin) into a mapping of fact names to values."""
    from .rules import read as safeyaml

    try:
        if path == "-":
            data = sys.stdin.buffer.read(ANSWERS_LIMIT + 1)
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


def detect_format(path: str, first_line: str) -> str:
    """'jsonl' or 'csv', from the file name, else from the first line."""
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def read_rows(stream: TextIO, input_format: str) -> Iterator[Row]:
    """Yield the rows of a JSON Lines or CSV stream, one at a time; blank lines are skipped.

    JSON lines are passed on unparsed (``raw``), so that parsing happens in the worker that
    assesses them; ``parse_row`` does it."""
    if input_format == "jsonl":
        for number, line in enumerate(stream, 1):
            if line.strip():
                yield Row(number, None, None, line)
        return
    reader = csv.DictReader(stream)
    try:
        for values in reader:
            # empty cells mean "not given"; a row with more cells than the header is an error
            extra = values.pop(None, None)
            if extra:
                yield Row(reader.line_num, None, f"{len(extra)} more cells than the header has columns")
                continue
            yield Row(reader.line_num, {key: value for key, value in values.items() if value not in ("", None)})
    except csv.Error as error:
        raise InputError(f"line {reader.line_num}: not valid CSV ({error})") from None


def parse_row(row: Row) -> Row:
    """A row with its JSON line parsed into values, or with the reason it cannot be."""
    if row.raw is None:
        return row
    try:
        values = json.loads(row.raw)
    except ValueError as error:
        return Row(row.line, None, f"not valid JSON ({error.msg} at column {error.colno})")
    if not isinstance(values, dict):
        return Row(row.line, None, "a row must be a JSON object of fact names to values")
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
        """The formatted result for one row: its verdict, or the error that stopped it."""
        row = parse_row(row)
        row_id = row.values.get(ROW_ID) if row.values else None
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
        if self.csv:
            return RowResult(_csv_line([row_id, row.line, "", "", "", "", message]), row.line, None)
        document = {"schema_version": SCHEMA_VERSION, "line": row.line, "id": row_id, "ok": False,
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
    return encode_basestring_ascii(value) if type(value) is str else _json(value)


def _json(value: Any) -> str:
    # ASCII only: a JSON line must not hold characters some readers take as line breaks (U+0085, U+2028)
    return json.dumps(value, separators=(",", ":"))


# --- many rows, on every core -------------------------------------------------------------------
# Rows travel in chunks: for JSON Lines a chunk is the raw text of its lines, for CSV the rows
# the CSV reader made. A worker process assesses a chunk and returns its formatted results as
# one text, with counts; chunks are sent and collected in input order with a bounded number in
# flight, so output order is input order and memory stays flat.

CHUNK_ROWS = 2000


class Chunk(NamedTuple):
    first_line: int  # the input line number of the chunk's first line
    lines: Optional[str]  # JSON Lines: the raw text
    rows: Optional[list]  # CSV: the rows already read


class ChunkResult(NamedTuple):
    text: str  # the formatted results, one line each
    rows: int
    bands: dict  # band id -> how many rows got it
    failed_lines: list  # input line numbers of the rows that failed


def read_chunks(stream: TextIO, input_format: str, size: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """The input in chunks of about ``size`` rows."""
    if input_format == "jsonl":
        first = 1
        while True:
            lines = list(itertools.islice(stream, size))
            if not lines:
                return
            yield Chunk(first, "".join(lines), None)
            first += len(lines)
    rows = read_rows(stream, "csv")
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield Chunk(chunk[0].line, None, chunk)


def assess_chunk(assessor: RowAssessor, chunk: Chunk) -> ChunkResult:
    """Every row of a chunk, formatted, with the counts the summary needs."""
    if chunk.lines is not None:
        rows = (Row(chunk.first_line + offset, None, None, line)
                for offset, line in enumerate(chunk.lines.split("\n")) if line.strip())
    else:
        rows = chunk.rows
    texts: list[str] = []
    bands: dict[str, int] = {}
    failed: list[int] = []
    for row in rows:
        result = assessor.result(row)
        texts.append(result.text)
        if result.band is None:
            failed.append(result.line)
        else:
            bands[result.band] = bands.get(result.band, 0) + 1
    return ChunkResult("\n".join(texts) + "\n" if texts else "", len(texts), bands, failed)


_worker: Optional[RowAssessor] = None


def _start_worker(ruleset: RuleSet, now: datetime, output_format: str, history) -> None:
    global _worker
    _worker = RowAssessor(ruleset, now, output_format, history)


def _work(chunk: Chunk) -> ChunkResult:
    return assess_chunk(_worker, chunk)


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
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(jobs, initializer=_start_worker, initargs=(ruleset, now, output_format, history)) as pool:
        pending: collections.deque = collections.deque()
        for chunk in itertools.chain((first, second), chunks):
            pending.append(pool.apply_async(_work, (chunk,)))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def default_jobs() -> int:
    """How many worker processes a batch uses by default: the CPUs this process may use, up to 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(available, 4))
