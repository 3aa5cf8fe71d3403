"""The user's own history of refund requests, kept in SQLite (the standard library's sqlite3).

Support remembers every request; this remembers them for the user, so that `check` can count
them the way support will. Every write is one transaction, concurrent writers wait for each
other (WAL and a busy timeout), the schema is versioned (``PRAGMA user_version``) and migrated
forward, and a database that cannot be used raises HistoryError with one sentence: never a
traceback, never a silently empty history. No CLI or terminal code here.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Optional

SCHEMA_VERSION = 2
OUTCOMES = ("pending", "granted", "partial", "denied")
BUSY_SECONDS = 10  # how long a writer waits for another one before giving up

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


class UnreadableExport(ValueError):
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


def _money(value: Any, name: str) -> Optional[Decimal]:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise HistoryError(f"{name} {value!r} is not a number") from None
    if not number.is_finite() or number < 0 or number > Decimal("1e12"):
        raise HistoryError(f"{name} {value!r} must be a number from 0 up")
    return Decimal(format(number, "f"))  # plain digits: 30, never 3E+1


def _time(value: Any, name: str) -> Optional[str]:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"{name} {value!r} is not an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return utc_text(moment)


def check_entry(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise an entry's fields (all but id); raises HistoryError."""
    result = dict(values)
    for name in ("platform", "cause"):
        if not str(result.get(name) or "").strip():
            raise HistoryError(f"{name} is required")
        result[name] = str(result[name]).strip().lower()
    outcome = str(result.get("outcome") or "pending").strip().lower()
    if outcome not in OUTCOMES:
        raise HistoryError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    result["outcome"] = outcome
    result["asked_at"] = _time(result.get("asked_at"), "asked_at") or utc_text(datetime.now(timezone.utc))
    result["charged_at"] = _time(result.get("charged_at"), "charged_at")
    result["amount"] = _money(result.get("amount"), "amount")
    result["returned"] = _money(result.get("returned"), "returned")
    if result["returned"] is not None and result["amount"] is not None and result["returned"] > result["amount"]:
        raise HistoryError(f"returned ({result['returned']}) cannot be more than the amount ({result['amount']})")
    note = result.get("note")
    result["note"] = None if note in (None, "") else str(note)[:2000]
    currency = result.get("currency")
    result["currency"] = None if currency in (None, "") else str(currency).strip().upper()[:8]
    return result


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
    """Exported rows (``History.export_rows``) as JSON Lines ('jsonl') or CSV with a header ('csv')."""
    import csv
    import io
    import json

    if output_format == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=True) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_export(text: str, input_format: str) -> list[tuple[int, dict[str, Any]]]:
    """The (line, row) pairs of an export in 'jsonl' or 'csv', for ``History.import_rows``: blank
    JSON lines are skipped, empty CSV cells are None. Raises UnreadableExport."""
    import csv
    import io
    import json

    if input_format != "jsonl":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [(reader.line_num, {key: (value if value != "" else None) for key, value in row.items()})
                for row in reader]
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise UnreadableExport(f"line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise UnreadableExport(f"line {number} is not a JSON object")
        rows.append((number, row))
    return rows


class History:
    """A history database at a path; opened (and migrated) on first use."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- opening ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self, create: bool):
        import sqlite3  # here, not at the top: a check without a history never pays for it

        if not create and not self.path.exists():
            raise HistoryError(f"there is no history at {self.path} yet; 'refundadvisor history add' starts one")
        if self.path.is_dir():
            raise HistoryError(f"the history path {self.path} is a directory; give a file path")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = %d" % (BUSY_SECONDS * 1000))
            self._migrate(connection)
            return connection
        except sqlite3.DatabaseError as error:
            raise self._explain(error) from None
        except OSError as error:
            raise HistoryError(f"the history {self.path} cannot be opened ({error.strerror or error})") from None

    def _migrate(self, connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(f"the history {self.path} was written by a newer refundadvisor (schema {version}); "
                               "upgrade refundadvisor to use it")
        if version == SCHEMA_VERSION:
            return
        if version == 0 and connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise HistoryError(f"{self.path} is an SQLite database but not a refundadvisor history; "
                               "point --history elsewhere")
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
        if version == 0:
            connection.execute("PRAGMA journal_mode = WAL")  # readers never block the one writer

    def _explain(self, error) -> HistoryError:
        text = str(error).lower()
        if "locked" in text or "busy" in text:
            return HistoryError(f"the history {self.path} is locked by another refundadvisor; try again in a moment")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return HistoryError(f"the history {self.path} is damaged (not a readable database); move it aside to "
                                "start a new one, or point --history at another file")
        if "readonly" in text or "read-only" in text:
            return HistoryError(f"the history {self.path} is read-only; check its permissions")
        if "unable to open" in text:
            return HistoryError(f"the history {self.path} cannot be opened; check the path and its permissions")
        return HistoryError(f"the history {self.path} cannot be used ({error})")

    def _run(self, work, create: bool = False, write: bool = False):
        """Run ``work(connection)`` in one transaction (IMMEDIATE for writes); errors become HistoryError."""
        import sqlite3

        connection = self._connect(create)
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
        """Record a request; returns its id."""
        entry = check_entry(values)
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
        query = f"SELECT {', '.join(FIELDS)} FROM requests"
        arguments: tuple = ()
        if platform:
            query += " WHERE platform = ?"
            arguments = (platform,)
        rows = self._run(lambda connection: connection.execute(query + " ORDER BY asked_at, id", arguments).fetchall())
        return [_entry(row) for row in rows]

    def get(self, entry_id: int) -> Entry:
        row = self._run(lambda connection: connection.execute(
            f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?", (entry_id,)).fetchone())
        if row is None:
            raise HistoryError(f"there is no request {entry_id} in the history ('refundadvisor history list' shows them)")
        return _entry(row)

    def update(self, entry_id: int, changes: dict[str, Any], now: Optional[datetime] = None) -> Entry:
        """Change some fields of a request (e.g. its outcome once support answers)."""
        def work(connection):
            row = connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise HistoryError(f"there is no request {entry_id} in the history")
            current = _entry(row)._asdict()
            merged = check_entry({**current, **{name: value for name, value in changes.items() if value is not None}})
            connection.execute(
                "UPDATE requests SET asked_at = ?, platform = ?, charged_at = ?, amount = ?, currency = ?, cause = ?, "
                "outcome = ?, returned = ?, note = ?, updated_at = ? WHERE id = ?",
                (merged["asked_at"], merged["platform"], merged["charged_at"], _text(merged["amount"]),
                 merged["currency"], merged["cause"], merged["outcome"], _text(merged["returned"]), merged["note"],
                 utc_text(now or datetime.now(timezone.utc)), entry_id))
            return _entry(connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?",
                                             (entry_id,)).fetchone())

        return self._run(work, write=True)

    def remove(self, entry_id: int) -> None:
        def work(connection):
            if connection.execute("DELETE FROM requests WHERE id = ?", (entry_id,)).rowcount == 0:
                raise HistoryError(f"there is no request {entry_id} in the history")

        self._run(work, write=True)

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """Every request as a plain dict, for JSON Lines or CSV."""
        for entry in self.entries():
            yield entry.as_dict()

    def import_rows(self, rows: Iterable[tuple[int, dict[str, Any]]]) -> tuple[int, int]:
        """Import (line, row) pairs in one transaction: all or nothing. A row whose id is already
        there with the same content is skipped; with other content it is an error. Returns
        (imported, skipped)."""
        def work(connection):
            imported = skipped = 0
            for line, row in rows:
                unknown = set(row) - set(FIELDS)
                if unknown:
                    raise HistoryError(f"line {line}: unknown field {sorted(unknown)[0]!r}")
                try:
                    entry = check_entry(row)
                except HistoryError as error:
                    raise HistoryError(f"line {line}: {error}") from None
                entry_id = row.get("id")
                if entry_id not in (None, ""):
                    try:
                        entry_id = int(entry_id)
                    except (TypeError, ValueError):
                        raise HistoryError(f"line {line}: id {entry_id!r} is not a whole number") from None
                    existing = connection.execute(f"SELECT {', '.join(FIELDS)} FROM requests WHERE id = ?",
                                                  (entry_id,)).fetchone()
                    if existing is not None:
                        same = {k: v for k, v in _entry(existing).as_dict().items() if k != "id"}
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
                     _time(row.get("updated_at"), "updated_at")))
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


def _entry(row: tuple) -> Entry:
    values = dict(zip(FIELDS, row))
    values["amount"] = None if values["amount"] is None else Decimal(values["amount"])
    values["returned"] = None if values["returned"] is None else Decimal(values["returned"])
    return Entry(**values)
