"""CSV attachments support can open safely: no cell runs as a formula, and the file appears
whole or not at all."""

import os
import tempfile
from typing import Any, Iterable, Sequence

from ..csvsafe import cell as safe_cell  # OWASP's CSV-injection guard, shared by every CSV written
from ..csvsafe import writer as csv_writer
from .common import EvidenceError


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
            writer = csv_writer(out)  # RFC 4180, as spreadsheets expect
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
