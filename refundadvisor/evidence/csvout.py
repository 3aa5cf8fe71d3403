"""CSV attachments support can open safely: no cell runs as a formula, and the file appears
whole or not at all."""

import csv
import os
import tempfile
from decimal import Decimal
from typing import Any, Iterable, Sequence

from .common import EvidenceError

# OWASP, "CSV Injection": a cell starting with one of these may run as a formula in a
# spreadsheet; a leading single quote makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A value as CSV cell text that a spreadsheet shows and never evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = f"{value:f}"
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(path: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write the rows to ``path`` atomically (a temporary file in the same folder, then
    os.replace); returns how many rows were written."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".refundadvisor-", suffix=".csv.tmp", dir=folder)
    except OSError as error:
        raise EvidenceError(f"--csv: cannot write in {folder!r} ({error.strerror or error})") from None
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
            writer.writerow([safe_cell(column) for column in columns])
            for row in rows:
                writer.writerow([safe_cell(value) for value in row])
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise EvidenceError(f"--csv: cannot write {path!r} ({error.strerror or error})") from None
        raise
    return count


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
