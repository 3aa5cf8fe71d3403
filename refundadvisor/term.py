"""What the human views need to know about the terminal, without Rich: its width, whether it
takes colour and which characters it can show, and how to write to it without ever raising
UnicodeEncodeError (PYTHONIOENCODING=ascii, LANG=C).

Lines are laid out here (wrapped with a hanging indent, never padded), so a piped or narrow
output is plain text: no table cut to ``outco…``, no trailing spaces, no box characters.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Iterable, Optional, TextIO

NARROW = 60  # below this many columns, or when piped, the layout is plain
DEFAULT_WIDTH = 80

# Characters a non-UTF-8 stream cannot carry, and what stands in for them.
_ASCII = str.maketrans({
    "✓": "[x]", "☐": "[ ]", "✗": "x", "•": "*", "·": "-", "→": "->", "←": "<-", "…": "...", "—": "-", "–": "-",
    "‘": "'", "’": "'", "“": '"', "”": '"', "≥": ">=", "≤": "<=", "×": "x", "\u00a0": " ", "€": "EUR", "£": "GBP",
})

_STYLES = {"bold": "1", "dim": "2", "italic": "3", "underline": "4", "green": "32", "yellow": "33", "red": "31",
           "cyan": "36"}


def encoding_of(stream: TextIO) -> str:
    return (getattr(stream, "encoding", None) or "ascii").lower().replace("_", "-")


def is_utf(stream: TextIO) -> bool:
    return encoding_of(stream).startswith("utf")


def safe(text: str, stream: TextIO) -> str:
    """The text as the stream can carry it: typographic characters spelled in ASCII when the stream
    is not UTF-8, anything else still unencodable replaced by '?'."""
    if is_utf(stream):
        return text
    text = text.translate(_ASCII)
    encoding = encoding_of(stream)
    try:
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        return text.encode("ascii", "replace").decode("ascii")


def write(stream: TextIO, text: str) -> None:
    """Write text to a stream, safely encoded (a closed pipe still raises BrokenPipeError)."""
    stream.write(safe(text, stream))


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def width_of(stream: TextIO) -> int:
    """The columns to lay out for: the terminal's, else $COLUMNS, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if is_terminal(stream):
        try:
            return os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
        except (OSError, ValueError, AttributeError):
            pass
    return DEFAULT_WIDTH


def colour_wanted(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a terminal, and never with --no-color, NO_COLOR or TERM=dumb."""
    if no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


class Screen:
    """Styled, wrapped lines to one stream. Plain (no colour, no ornaments) when told, when the
    stream is not a terminal, or when it is narrower than NARROW."""

    def __init__(self, stream: Optional[TextIO] = None, no_color: bool = False, width: Optional[int] = None):
        self.stream = stream if stream is not None else sys.stdout
        self.width = max(width or width_of(self.stream), NARROW // 3)
        self.colour = colour_wanted(self.stream, no_color)
        self.plain = not is_terminal(self.stream) or self.width < NARROW
        self.fancy = is_utf(self.stream)  # ticks and bullets, or their ASCII spellings
        self.lines_written = 0

    def style(self, text: str, style: str = "") -> str:
        """The text without any control sequence of its own (a rule file's, a note's), in this
        screen's style: the only colours on the screen are the ones added here."""
        from .output import plain

        text = plain(text)
        if not self.colour or not style or not text:
            return text
        codes = ";".join(_STYLES[word] for word in style.split() if word in _STYLES)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text

    def wrap(self, text: str, indent: str = "", hanging: Optional[str] = None) -> list[str]:
        """Text wrapped to the width: the first line after ``indent``, the rest after ``hanging``."""
        hanging = indent if hanging is None else hanging
        lines = textwrap.wrap(text, width=self.width, initial_indent=indent, subsequent_indent=hanging,
                              break_on_hyphens=False, break_long_words=True) or [indent.rstrip()]
        return [line.rstrip() for line in lines]

    def line(self, text: str = "", style: str = "") -> None:
        """One line as it is (the caller wrapped it), styled (see ``style``)."""
        write(self.stream, self.style(text.rstrip(), style) + "\n")
        self.lines_written += 1

    def para(self, text: str, indent: str = "", hanging: Optional[str] = None, style: str = "") -> None:
        for line in self.wrap(text, indent, hanging):
            self.line(line, style)

    def lines(self, lines: Iterable[str], style: str = "") -> None:
        for line in lines:
            self.line(line, style)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass

    # --- the interview's side: prompts on this stream, answers from stdin ---------------------

    def print(self, text: str = "", style: str = "") -> None:
        """Print a paragraph (wrapped); the interview's and the prompts' way to speak."""
        if not text:
            self.line()
        else:
            self.para(text, style=style)

    def input(self, prompt: str) -> str:
        """Show the prompt (not wrapped) and read one line from stdin; EOFError at its end."""
        write(self.stream, self.style(prompt, "bold"))
        self.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")
