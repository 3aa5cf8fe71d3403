"""CSV a spreadsheet opens without running anything, and that reads back exactly.

Every CSV refundadvisor writes (``batch --format csv``, ``history export --format csv``,
``evidence --csv``) goes through here. Following OWASP's guidance on CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection), a text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return (also after leading spaces or tabs: `` =1+1``)
gets a single quote in front of it, so that a
spreadsheet shows it as text instead of evaluating it as a formula (``=HYPERLINK(...)``,
``=cmd|...``); every cell is quoted when it holds a comma, a double quote, CR or LF (RFC 4180).

The guard is reversible: a text cell that already starts with a single quote gets one more, so
``unguard(guard(text)) == text`` for every text, and ``history import`` reads back exactly what
``history export`` wrote. Numbers the program computed itself (ints, Decimals, floats: a score,
a line number, an amount) are written as numbers, a negative one included: a spreadsheet must
see ``-5`` as the number it is, and no text typed by anyone reaches such a cell.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, Iterable

# OWASP: a cell starting with one of these may be evaluated as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"  # makes the cell text in a spreadsheet; also doubled in front of a text that starts with it
LINE_END = "\r\n"  # RFC 4180; it also makes the writer quote any cell holding CR or LF


_LEADING_SPACE = " \t\r\n\f\v\u00a0\u3000"  # what a spreadsheet may skip before a formula


def is_formula(text: str) -> bool:
    """Whether a spreadsheet could read the text as a formula: it starts with one of
    FORMULA_STARTS, also after spaces or tabs (" =1+1" is evaluated by some)."""
    return text.startswith(FORMULA_STARTS) or text.lstrip(_LEADING_SPACE).startswith(FORMULA_STARTS)


def guard(text: str) -> str:
    """Text as a cell no spreadsheet evaluates; ``unguard`` gives the text back exactly."""
    return GUARD + text if text.startswith(GUARD) or is_formula(text) else text


class Sentence(str):
    """The program's own sentence (a row's error), which may quote bad input: guarded once when
    a spreadsheet could evaluate it, but never given a second quote for starting with the
    program's own quote mark ("'=cmd|x' is not a valid cause" is already text)."""


def unguard(text: str) -> str:
    """The text a guarded cell stands for (its leading single quote, if any, removed)."""
    return text[1:] if text.startswith(GUARD) else text


def cell(value: Any) -> str:
    """A value as cell text: nothing for None, true/false, numbers as plain digits (never
    guarded: the program made them), text guarded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Sentence):
        return GUARD + value if is_formula(value) else str(value)
    return guard(str(value))


def writer(out) -> Any:
    """A csv writer for ``out`` that ends lines as RFC 4180 does (and so quotes CR and LF)."""
    return csv.writer(out, lineterminator=LINE_END)


def row_text(cells: Iterable[Any]) -> str:
    """One row as CSV text, guarded and quoted, without its line end (a CR or LF inside a cell is
    quoted, so the row stays one record)."""
    out = io.StringIO()
    writer(out).writerow([cell(value) for value in cells])
    return out.getvalue()[:-len(LINE_END)]


def write_rows(out, rows: Iterable[Iterable[Any]]) -> int:
    """Write rows (the header first, if wanted) to a text stream; returns how many were written."""
    csv_writer = writer(out)
    count = 0
    for row in rows:
        csv_writer.writerow([cell(value) for value in row])
        count += 1
    return count
