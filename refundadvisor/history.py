"""The user's own history of refund requests, kept in SQLite (the standard library's sqlite3).

Support remembers every request; this remembers them for the user, so that `check` can count
them the way support will. Every write is one transaction, concurrent writers wait for each
other (WAL and a busy timeout), the schema is versioned (``PRAGMA user_version``) and migrated
forward (and kept in WAL mode), and a database that cannot be used raises HistoryError with one
sentence: never a traceback, never a silently empty history, never a hang on a FIFO. Reading
needs no write access: a history in a read-only folder is read as it is. No CLI or terminal
code here.

Exports are JSON Lines or CSV; CSV cells are guarded against spreadsheet formulas
(``csvsafe``) and read back exactly. Imports are streamed with a bounded line length and size.
"""

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Optional

SCHEMA_VERSION = 2
OUTCOMES = ("pending", "granted", "partial", "denied")
BUSY_SECONDS = 10  # how long a writer waits for another one before giving up
NOTE_LIMIT = 2000  # characters of a note kept
# An export's line (a request is well under 10,000 characters even with every character escaped)
# and its whole size; more is not an export of requests, and reading it would cost without end.
LINE_LIMIT = 64 * 1024
SIZE_LIMIT = 256 * 1024 * 1024
READ_CHUNK = 64 * 1024
# Ids are SQLite integers: a number past this is no request (and would not fit the database).
ID_LIMIT = 2**63 - 1
# A date given without a time is midnight: a charge later that same day is not "after" the request.
DATE_SLACK = timedelta(days=1)

# Each migration takes the database from the version before it to its own.
MIGRATIONS = {
    1: [
        """CREATE TABLE requests (
               id INTEGER PRIMARY KEY,
               asked_at TEXT NOT NULL,
               platform TEXT NOT NULL,
               charged_at TEXT,
               amount TEXT,
               cause TEXT NOT NULL,
               outcome TEXT NOT NULL,
               returned TEXT,
               note TEXT
           )""",
    ],
    2: [
        "ALTER TABLE requests ADD COLUMN currency TEXT",
        "ALTER TABLE requests ADD COLUMN updated_at TEXT",
        "CREATE INDEX requests_by_platform ON requests (platform, asked_at)",
    ],
}
FIELDS = ("id", "asked_at", "platform", "charged_at", "amount", "currency", "cause", "outcome", "returned", "note",
          "updated_at")


class HistoryError(Exception):
    """The history cannot be used; the message is one sentence saying why and what to do."""


class BadEntry(HistoryError):
    """A field of a request that does not fit: which field (``field``) and why (``problem``)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")


class UnreadableExport(HistoryError):
    """An export to import that is not JSON Lines or CSV of requests: which line, and why."""


class Entry(NamedTuple):
    """One refund request. Times are ISO 8601 in UTC; money is exact (Decimal)."""

    id: int
    asked_at: str
    platform: str
    charged_at: Optional[str]
    amount: Optional[Decimal]
    currency: Optional[str]
    cause: str
    outcome: str
    returned: Optional[Decimal]
    note: Optional[str]
    updated_at: Optional[str]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (money as text, so it stays exact)."""
        return {name: (str(value) if isinstance(value, Decimal) else value) for name, value in self._asdict().items()}


class Summary(NamedTuple):
    """What the history says about one platform (and cause), as support would count it: a count
    for each fact the rule file's `history:` section names."""

    counts: dict  # fact name -> count
    last_asked_at: Optional[str]


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _shown(value: Any) -> str:
    from .facts import shown_value  # a bad value is quoted, cut to a short excerpt

    return shown_value(value)


def _money(value: Any, name: str) -> Optional[Decimal]:
    if value is None or value == "":
        return None
    from .facts import FactError, check_number

    text = str(value)
    try:
        number = Decimal(text) if len(text) <= 64 else Decimal("NaN")  # 64 digits is no amount
    except InvalidOperation:
        raise BadEntry(name, f"{_shown(value)} is not a number") from None
    if not number.is_finite() or number < 0 or number > Decimal("1e12"):
        raise BadEntry(name, f"{_shown(value)} must be a number from 0 up to 1e12")
    try:  # the same bounds as every amount (3E-3000000000 would be written with 3 billion zeros)
        number = check_number(number, name, text)
    except FactError as error:
        raise BadEntry(name, str(error)) from None
    return Decimal(format(number, "f"))  # plain digits: 30, never 3E+1


def _time(value: Any, name: str) -> Optional[str]:
    if value is None or value == "":
        return None
    from .facts import FactError, parse_moment  # the one reading of a date everywhere

    try:
        return utc_text(parse_moment(str(value), name))
    except FactError as error:
        raise BadEntry(name, str(error)) from None


def clean_text(value: Any) -> Any:
    """Text as SQLite can store it: a lone surrogate (bytes that were not UTF-8 on the command
    line, or a JSON "\\ud800") becomes U+FFFD; anything else is returned as it is."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # rare: replace each surrogate, keep the rest
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


def check_entry(values: dict[str, Any], now: Optional[datetime] = None) -> dict[str, Any]:
    """Validate and normalise an entry's fields (all but id); raises HistoryError. A request
    cannot be asked after ``now`` (default: the clock), nor its charge be later than the request."""
    from .redact import mask

    result = {name: clean_text(value) for name, value in values.items()}
    for name in ("platform", "cause"):
        if not str(result.get(name) or "").strip():
            raise BadEntry(name, "is required")
        result[name] = normal_id(result[name])
    outcome = normal_id(result.get("outcome") or "pending")
    if outcome not in OUTCOMES:
        raise BadEntry("outcome", f"{_shown(outcome)} is not one of {', '.join(OUTCOMES)}{_suggest(outcome, OUTCOMES)}")
    result["outcome"] = outcome
    result["asked_at"] = _time(result.get("asked_at"), "asked_at") or utc_text(datetime.now(timezone.utc))
    result["charged_at"] = _time(result.get("charged_at"), "charged_at")
    _check_order(result, now or datetime.now(timezone.utc))
    result["amount"] = _money(result.get("amount"), "amount")
    result["returned"] = _money(result.get("returned"), "returned")
    if result["returned"] is not None and result["amount"] is not None and result["returned"] > result["amount"]:
        raise BadEntry("returned", f"({result['returned']}) cannot be more than the amount ({result['amount']})")
    note = result.get("note")
    result["note"] = None if note in (None, "") else mask(str(note)[:NOTE_LIMIT * 2])[0][:NOTE_LIMIT]
    currency = result.get("currency")
    result["currency"] = None if currency in (None, "") else str(currency).strip().upper()[:8]
    return result


def _check_order(entry: dict[str, Any], now: datetime) -> None:
    """A request is not asked in the future, and its charge is not later than the request."""
    from .facts import FUTURE_TOLERANCE

    asked, charged = entry["asked_at"], entry["charged_at"]
    if asked > utc_text(now + FUTURE_TOLERANCE):
        raise BadEntry("asked_at", f"({asked}) is after now ({utc_text(now)}); give when you asked, "
                                   "which has happened (or a later --now)")
    if charged is not None and charged > utc_text(_moment(asked) + DATE_SLACK):
        raise BadEntry("charged_at", f"({charged}) is after the request was asked ({asked}); "
                                     "a charge comes before the request about it")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def normal_id(value: Any) -> str:
    """An id (platform, cause, outcome) as stored: trimmed and lower-case, as `check` reads them."""
    return str(value).strip().lower()


def _suggest(word: str, options) -> str:
    from .facts import suggestion

    return suggestion(word, options)


def entry_from_assessment(assessment) -> dict[str, Any]:
    """The entry recording a request just checked: pending, with the verdict in its note."""
    facts = assessment.facts.values
    charge = facts.get("charged_at")
    return {
        "platform": assessment.ruleset.platform, "cause": facts.get("cause"), "amount": facts.get("amount"),
        "currency": assessment.ruleset.money_currency(facts), "charged_at": charge.at.isoformat() if charge else None,
        "asked_at": assessment.facts.now.isoformat(), "outcome": "pending",
        "note": f"checked: {assessment.band.id} ({assessment.score})",
    }


def export_text(rows: list[dict[str, Any]], output_format: str) -> str:
    """Exported rows (``History.export_rows``) as JSON Lines ('jsonl') or CSV with a header ('csv').
    CSV cells are guarded against spreadsheet formulas (``csvsafe``) and ``read_export`` reads them
    back exactly, a note holding CR, LF, quotes or a leading '=' included."""
    import io
    import json

    if output_format == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=True) + "\n" for row in rows)
    from .csvsafe import write_rows

    out = io.StringIO()
    write_rows(out, [FIELDS, *([row.get(name) for name in FIELDS] for row in rows)])
    return out.getvalue()


def export_lines(stream: BinaryIO) -> Iterator[str]:
    """The lines of an export read from a binary stream, a bounded piece at a time: UTF-8, a
    leading byte order mark dropped, split at LF only (a CR inside a CSV cell stays in its cell),
    each with its line end. Raises UnreadableExport for a binary file (a NUL byte in the first
    line), text that is not UTF-8, a line longer than LINE_LIMIT characters or more than
    SIZE_LIMIT bytes, without reading further."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, number, size, started = "", 1, 0, False
    while True:
        data = stream.read(READ_CHUNK)
        size += len(data)
        if size > SIZE_LIMIT:
            raise UnreadableExport(f"is larger than {SIZE_LIMIT // 1024 // 1024} MiB, far more than any history; "
                                   "split it, or check that it is an export")
        if number == 1 and b"\x00" in data.split(b"\n", 1)[0]:
            _check_line("\x00", 1)  # a binary file, said before it fails to decode
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            at = number + data[:error.start].count(b"\n")
            raise UnreadableExport(f"line {at} is not UTF-8 text; "
                                   "give an export from 'refundadvisor history export'") from None
        if not started and text:
            started, text = True, text[1:] if text.startswith("\ufeff") else text
        parts = (pending + text).split("\n")
        pending = parts.pop()
        for line in parts:
            _check_line(line, number)
            yield line + "\n"
            number += 1
        _check_line(pending, number)
        if not data:
            break
    if pending:
        yield pending


def _check_line(line: str, number: int) -> None:
    if number == 1 and "\x00" in line:
        raise UnreadableExport("is a binary file (a NUL byte on line 1), not JSON Lines or CSV of requests")
    if len(line) > LINE_LIMIT:
        raise UnreadableExport(f"line {number} is longer than {LINE_LIMIT:,} characters, far more than a request; "
                               "check that this is an export from 'refundadvisor history export'")


def detect_export_format(lines: Iterator[str]) -> tuple[str, Iterator[str]]:
    """'jsonl' or 'csv' from the first line that is not blank, and the lines again."""
    import itertools

    seen = []
    for line in lines:
        seen.append(line)
        if line.strip():
            break
    chosen = "jsonl" if seen and seen[-1].lstrip().startswith("{") else "csv"
    return chosen, itertools.chain(seen, lines)


def read_export(lines: Iterable[str], input_format: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The (line, row) pairs of an export in 'jsonl' or 'csv', one at a time, for
    ``History.import_rows``: blank lines are skipped, empty CSV cells are None, CSV cells are
    unguarded (``csvsafe``). Raises UnreadableExport naming the line at fault."""
    if input_format == "jsonl":
        yield from _read_jsonl(lines)
    else:
        yield from _read_csv(lines)


def _read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import json

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:  # a JSONDecodeError has a msg; a number past Python's digit limit has not
            problem = getattr(error, "msg", None) or "a number with more digits than any request holds"
            raise UnreadableExport(f"line {number} is not valid JSON ({problem})") from None
        except RecursionError:
            raise UnreadableExport(f"line {number} is nested too deeply to be a request") from None
        if not isinstance(row, dict):
            raise UnreadableExport(f"line {number} is not a JSON object of a request's fields")
        for name, value in row.items():
            if isinstance(value, (bool, list, dict)):
                kind = "true or false" if isinstance(value, bool) else "a list" if isinstance(value, list) else "a mapping"
                raise UnreadableExport(f"line {number}: {_shown(name)} holds {kind} where text or a number belongs")
        yield number, row


def _read_csv(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import csv

    from .csvsafe import unguard

    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            return
        _check_header(header)
        last = reader.line_num
        for cells in reader:
            start, last = last + 1, reader.line_num
            if not cells:
                continue
            if len(cells) != len(header):
                raise UnreadableExport(f"line {start} has {len(cells)} cells where the header has {len(header)}; "
                                       "give the CSV 'refundadvisor history export --format csv' wrote")
            yield start, {name: (unguard(value) if value != "" else None) for name, value in zip(header, cells)}
    except csv.Error as error:
        raise UnreadableExport(f"line {reader.line_num} is not valid CSV ({error})") from None


def _check_header(header: list[str]) -> None:
    wanted = ", ".join(FIELDS)
    for name in header:
        if name not in FIELDS:
            raise UnreadableExport(f"line 1: {_shown(name)} is not a column of a history export"
                                   f"{_suggest(name, FIELDS)}; the columns are {wanted}")
    if len(set(header)) != len(header):
        twice = next(name for name in header if header.count(name) > 1)
        raise UnreadableExport(f"line 1: the column {twice!r} is there twice; the columns are {wanted}")


class History:
    """A history database at a path; opened (and migrated) on first use."""

    def __init__(self, path: Path, warn: Optional[Callable[[str], None]] = None):
        """``warn`` is told, once each, of fields the database holds that are not what a history
        holds (see ``_entry``); by default a warning line on stderr."""
        self.path = Path(path)
        self._warn = warn or _stderr_warning
        self._warned: set[str] = set()

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)

    def _entry(self, row: Optional[tuple]) -> Optional[Entry]:
        return None if row is None else _entry(row, self._warn_once)

    # -- opening ---------------------------------------------------------------------------------
    def _kind(self) -> str:
        """'missing', 'file', 'folder' or 'special' (a FIFO, a device: reading one could hang)."""
        import stat

        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            if os.path.islink(self.path):  # creating through it would make a file wherever it points
                raise HistoryError(f"the history path {shown_path(self.path)} is a link to {shown_path(os.readlink(self.path))}, "
                                   "which does not exist; remove the link, or point --history at a file") from None
            return "missing"
        except NotADirectoryError:
            raise HistoryError(f"the history path {self.path} goes through a file as if it were a folder; "
                               "point --history or REFUNDADVISOR_HOME elsewhere") from None
        except (OSError, ValueError) as error:  # a name too long for the system, a NUL byte, no access
            raise HistoryError(f"the history path {shown_path(self.path)} cannot be used "
                               f"({getattr(error, 'strerror', None) or error}); point --history or "
                               "REFUNDADVISOR_HOME at a usable file path") from None
        if stat.S_ISREG(mode):
            return "file"
        return "folder" if stat.S_ISDIR(mode) else "special"

    def exists(self) -> bool:
        return self._kind() != "missing"

    def _usable(self, create: bool) -> None:
        kind = self._kind()
        if kind == "missing" and not create:
            raise HistoryError(f"there is no history at {self.path} yet; 'refundadvisor history add' starts one")
        if kind == "folder":
            raise HistoryError(f"the history path {self.path} is a directory; give a file path")
        if kind == "special":
            raise HistoryError(f"the history path {self.path} is not a regular file (a pipe or a device); "
                               "move it aside, or point --history at a file")

    def _connect(self, create: bool, write: bool = True):
        import sqlite3  # here, not at the top: a check without a history never pays for it

        self._usable(create)
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if not write and not self._writable():
                return self._connect_read_only()
            connection = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = %d" % (BUSY_SECONDS * 1000))
            self._migrate(connection)
            return connection
        except sqlite3.DatabaseError as error:
            raise self._explain(error, write) from None
        except OSError as error:
            raise HistoryError(f"the history {shown_path(self.path)} cannot be opened "
                               f"({error.strerror or error})") from None

    def _writable(self) -> bool:
        """Whether this process may change the history (the file and its folder, for WAL's files)."""
        return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK | os.X_OK)

    def _connect_read_only(self):
        """The history opened for reading only, when the file or its folder cannot be written: as
        it is (read-only), else as a snapshot (immutable: WAL's shared-memory file cannot be made
        in a read-only folder). Not migrated: ``_columns`` reads an older schema as it is."""
        import sqlite3
        from urllib.parse import quote

        address = "file:" + quote(str(self.path.resolve()))
        error = None
        for mode in ("?mode=ro", "?mode=ro&immutable=1"):
            connection = sqlite3.connect(address + mode, uri=True, timeout=BUSY_SECONDS, isolation_level=None)
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(connection, version)
                return connection
            except sqlite3.DatabaseError as problem:
                connection.close()
                error = problem
        raise error

    def _check_version(self, connection, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise HistoryError(f"the history {self.path} was written by a newer refundadvisor (schema {version}); "
                               "upgrade refundadvisor to use it")
        if version == 0 and connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise HistoryError(f"{self.path} is an SQLite database but not a refundadvisor history; "
                               "point --history elsewhere")

    def _migrate(self, connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        self._check_version(connection, version)
        if version != SCHEMA_VERSION:
            self._migrate_from(connection)
        # readers never block the one writer; a history made by an older version (schema 1 was
        # left in rollback-journal mode) is moved to WAL too
        if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            connection.execute("PRAGMA journal_mode = WAL")

    def _migrate_from(self, connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated it while this one waited for the lock
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _explain(self, error, write: bool = True) -> HistoryError:
        text = str(error).lower()
        if "locked" in text or "busy" in text:
            return HistoryError(f"the history {self.path} is locked by another refundadvisor; try again in a moment")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return HistoryError(f"the history {self.path} is damaged (not a readable database); move it aside to "
                                "start a new one, or point --history at another file")
        if "readonly" in text or "read-only" in text:
            return HistoryError(f"the history {self.path} is read-only, so {'nothing was recorded' if write else 'it cannot be read'}; "
                                f"check the permissions of the file and of its folder {self.path.parent}")
        if "unable to open" in text:
            return HistoryError(f"the history {self.path} cannot be opened; check the path and its permissions")
        return HistoryError(f"the history {self.path} cannot be used ({error})")

    def _run(self, work, create: bool = False, write: bool = False):
        """Run ``work(connection)`` in one transaction (IMMEDIATE for writes); errors become HistoryError."""
        import sqlite3

        connection = self._connect(create, write)
        try:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = work(connection)
                connection.execute("COMMIT")
                return result
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as error:
            raise self._explain(error) from None
        finally:
            connection.close()

    # -- reading and writing -----------------------------------------------------------------------
    def add(self, values: dict[str, Any], now: Optional[datetime] = None) -> int:
        """Record a request; returns its id. Asked at ``now`` unless the values say when."""
        entry = check_entry({**values, "asked_at": values.get("asked_at") or (now and utc_text(now))}, now)
        stamp = utc_text(now or datetime.now(timezone.utc))

        def work(connection):
            cursor = connection.execute(
                "INSERT INTO requests (asked_at, platform, charged_at, amount, currency, cause, outcome, returned, "
                "note, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry["asked_at"], entry["platform"], entry["charged_at"], _text(entry["amount"]), entry["currency"],
                 entry["cause"], entry["outcome"], _text(entry["returned"]), entry["note"], stamp))
            return cursor.lastrowid

        return self._run(work, create=True, write=True)

    def entries(self, platform: Optional[str] = None) -> list[Entry]:
        """Every request, oldest first (one platform's when given)."""
        if not self.exists():
            return []
        where, arguments = (" WHERE platform = ?", (platform,)) if platform else ("", ())

        def work(connection):
            query = _select(connection)
            return [] if query is None else connection.execute(query + where + " ORDER BY asked_at, id",
                                                                arguments).fetchall()

        return [entry for entry in map(self._entry, self._run(work)) if entry is not None]

    def get(self, entry_id: int) -> Entry:
        _known_id(entry_id)

        def work(connection):
            query = _select(connection)
            return None if query is None else connection.execute(query + " WHERE id = ?", (entry_id,)).fetchone()

        entry = self._entry(self._run(work))
        if entry is None:
            raise HistoryError(f"there is no request {entry_id} in the history ('refundadvisor history list' shows them)")
        return entry

    def update(self, entry_id: int, changes: dict[str, Any], now: Optional[datetime] = None) -> Entry:
        """Change some fields of a request (e.g. its outcome once support answers)."""
        _known_id(entry_id)

        def work(connection):
            row = connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?", (entry_id,)).fetchone()
            current = self._entry(row)
            if current is None:
                raise HistoryError(f"there is no request {entry_id} in the history")
            current = current._asdict()
            merged = check_entry({**current, **{name: value for name, value in changes.items() if value is not None}},
                                 now)
            connection.execute(
                "UPDATE requests SET asked_at = ?, platform = ?, charged_at = ?, amount = ?, currency = ?, cause = ?, "
                "outcome = ?, returned = ?, note = ?, updated_at = ? WHERE id = ?",
                (merged["asked_at"], merged["platform"], merged["charged_at"], _text(merged["amount"]),
                 merged["currency"], merged["cause"], merged["outcome"], _text(merged["returned"]), merged["note"],
                 utc_text(now or datetime.now(timezone.utc)), entry_id))
            return self._entry(connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?",
                                             (entry_id,)).fetchone())

        return self._run(work, write=True)

    def remove(self, entry_id: int) -> None:
        _known_id(entry_id)

        def work(connection):
            if connection.execute("DELETE FROM requests WHERE id = ?", (entry_id,)).rowcount == 0:
                raise HistoryError(f"there is no request {entry_id} in the history")

        self._run(work, write=True)

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """Every request as a plain dict, for JSON Lines or CSV."""
        for entry in self.entries():
            yield entry.as_dict()

    def import_rows(self, rows: Iterable[tuple[int, dict[str, Any]]],
                    check: Optional[Callable[[dict], dict]] = None) -> tuple[int, int]:
        """Import (line, row) pairs in one transaction: all or nothing. Rows may be read as they
        are imported (an UnreadableExport raised while reading undoes the import). Each row is
        checked by ``check_entry`` and then by ``check`` (e.g. that the rule files know its
        platform and cause), which may normalise it or raise HistoryError. A row whose id is
        already there with the same content is skipped; with other content it is an error.
        Returns (imported, skipped)."""
        def work(connection):
            imported = skipped = 0
            for line, row in rows:
                unknown = [name for name in row if name not in FIELDS]
                if unknown:
                    raise UnreadableExport(f"line {line}: unknown field {_shown(unknown[0])}"
                                           f"{_suggest(str(unknown[0]), FIELDS)}; the fields are {', '.join(FIELDS)}")
                try:
                    entry = check_entry(row)
                    if check is not None:
                        entry = check(entry)
                    updated_at = _time(clean_text(row.get("updated_at")), "updated_at")
                except HistoryError as error:
                    raise UnreadableExport(f"line {line}: {error}") from None
                entry_id = row.get("id")
                if entry_id not in (None, ""):
                    entry_id = _entry_id(entry_id, line)
                    existing = connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?",
                                                  (entry_id,)).fetchone()
                    existing = self._entry(existing)
                    if existing is not None:
                        same = {k: v for k, v in existing.as_dict().items() if k != "id"}
                        theirs = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in entry.items() if k in FIELDS}
                        theirs.setdefault("updated_at", None)
                        if same == {k: theirs.get(k) for k in same}:
                            skipped += 1
                            continue
                        raise HistoryError(f"line {line}: request {entry_id} is already in the history with other "
                                           "details; remove it first or drop the id to add it as new")
                else:
                    entry_id = None
                connection.execute(
                    "INSERT INTO requests (id, asked_at, platform, charged_at, amount, currency, cause, outcome, "
                    "returned, note, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry_id, entry["asked_at"], entry["platform"], entry["charged_at"], _text(entry["amount"]),
                     entry["currency"], entry["cause"], entry["outcome"], _text(entry["returned"]), entry["note"],
                     updated_at))
                imported += 1
            return imported, skipped

        return self._run(work, create=True, write=True)

    def summary(self, platform: str, cause: Optional[str], now: datetime, history_facts,
                exclude: Optional[dict] = None) -> Summary:
        """The counts support would see for a new request on this platform (for this cause), one
        for each of the rule file's history facts. ``exclude`` describes the charge being
        checked (charged_at, cause): a recorded request for that very charge is not an earlier one."""
        entries = [entry for entry in self.entries(platform) if not _same_charge(entry, exclude)]
        until = utc_text(now)
        counts: dict[str, int] = {}
        latest = None
        for wanted in history_facts:
            since = _days_before(now, wanted.within_days)
            window = [entry for entry in entries if since <= entry.asked_at <= until]
            if window:
                latest = max(latest or "", window[-1].asked_at)
            if wanted.counts == "similar":
                counts[wanted.fact] = sum(entry.cause == cause for entry in window)
            elif wanted.counts == "denied":
                counts[wanted.fact] = sum(entry.outcome == "denied" for entry in window)
            else:
                counts[wanted.fact] = len(window)
        return Summary(counts, latest)


def _known_id(entry_id: int) -> None:
    """An id a request can have (1 up to ID_LIMIT); else HistoryError: there is no such request."""
    if not 1 <= entry_id <= ID_LIMIT:
        raise HistoryError(f"there is no request {_shown(entry_id)} in the history; ids are whole numbers "
                           "from 1 ('refundadvisor history list' shows them)")


def _entry_id(value: Any, line: int) -> int:
    """A request's id in an export: a whole number from 1 up (12, 12.0 or "12")."""
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise UnreadableExport(f"line {line}: id {_shown(value)} is not a whole number from 1 up")
    return int(text)


def _select(connection) -> Optional[str]:
    """The SELECT of every field, NULL for a field an older schema lacks (a history read without
    write access is not migrated); None when there is no table of requests yet."""
    present = {row[1] for row in connection.execute("PRAGMA table_info(requests)")}
    if not present:
        return None
    return "SELECT " + ", ".join(name if name in present else "NULL" for name in FIELDS) + " FROM requests"


def shown_path(path) -> str:
    """A path as an error message shows it: whole when short, else its start and end."""
    from .facts import SHOWN_LIMIT

    text = str(path)
    if len(text) <= SHOWN_LIMIT:
        return text
    return f"{text[:SHOWN_LIMIT // 2]}...{text[-SHOWN_LIMIT // 4:]} ({len(text)} characters)"


def _days_before(now: datetime, days: float) -> str:
    """The moment ``days`` before ``now`` as stored text; the earliest moment there is if that is
    before year 1."""
    try:
        return utc_text(now - timedelta(days=days))
    except OverflowError:
        return "0001-01-01T00:00:00Z"


# A charge given as "3h ago" moves with the clock between two runs: recorded and re-checked times
# of one charge within this much of each other (same cause and amount) are the same charge.
SAME_CHARGE_SLACK = timedelta(hours=1)


def _same_charge(entry: Entry, charge: Optional[dict]) -> bool:
    """Whether a recorded request is for the charge being checked: the same cause, the same amount
    when both are known, and the same time give or take SAME_CHARGE_SLACK."""
    if not charge or not charge.get("charged_at") or entry.charged_at is None or entry.cause != charge.get("cause"):
        return False
    amount = charge.get("amount")
    if amount is not None and entry.amount is not None and Decimal(str(amount)) != entry.amount:
        return False
    if entry.charged_at == charge["charged_at"]:
        return True
    try:
        recorded = datetime.fromisoformat(entry.charged_at.replace("Z", "+00:00"))
        checked = datetime.fromisoformat(str(charge["charged_at"]).replace("Z", "+00:00"))
        return abs(recorded - checked) <= SAME_CHARGE_SLACK
    except (TypeError, ValueError):
        return False


def _text(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else str(value)


TEXT_FIELDS = ("asked_at", "platform", "charged_at", "currency", "cause", "outcome", "note", "updated_at")


def _entry(row: tuple, warn: Callable[[str], None]) -> Optional[Entry]:
    """A row as an Entry, read defensively: a history written by another program (or damaged)
    may hold binary data or a number where text belongs, or text that is no amount. Such a field
    is shown as text (binary data decoded, bad bytes as U+FFFD) or, for money, left empty; the
    row's odd fields are said on one line through ``warn``. A row without a usable id is skipped (said too)."""
    values = dict(zip(FIELDS, row))
    entry_id = values["id"]
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        warn(f"a request whose id is {_shown(entry_id)}, not a whole number, is skipped")
        return None
    odd = []
    for name in TEXT_FIELDS:
        value = values[name]
        if isinstance(value, bytes):
            odd.append(f"{name} holds binary data")
            values[name] = value.decode("utf-8", "replace")
        elif value is not None and not isinstance(value, str):
            values[name] = str(value)
    for name in ("amount", "returned"):
        value = values[name]
        try:
            values[name] = None if value is None else _money(value if isinstance(value, (str, int, float)) else
                                                             _shown(value), name)
        except BadEntry as error:
            values[name] = None
            odd.append(f"{name} {'holds binary data' if isinstance(value, bytes) else error.problem} (shown empty)")
    if odd:
        warn(f"request {entry_id} is not as refundadvisor writes it: {'; '.join(odd)}; "
             f"'refundadvisor history update {entry_id}' corrects it, 'history remove {entry_id}' drops it")
    for name in ("asked_at", "platform", "cause", "outcome"):
        if values[name] is None:  # NOT NULL in the schema, but a foreign table may lack the constraint
            values[name] = ""
    return Entry(**values)


def _stderr_warning(message: str) -> None:
    import sys

    try:
        sys.stderr.write(f"refundadvisor: warning: {message}\n")
    except (OSError, ValueError, AttributeError):  # no stderr to say it on
        pass
