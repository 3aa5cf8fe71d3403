"""The one place every byte the program writes goes through: stdout, stderr and --output files.

``installed()`` puts a ``Sink`` in front of ``sys.stdout`` and ``sys.stderr`` for the length of a
command, so that Click's own messages, Rich's consoles, ``print`` and plain writes all pass here.
On the way out the text is

- masked: API keys in any of their mangled forms become a marker (``redact.mask``);
- defused: control characters are removed (a rule file's ``title`` cannot clear the screen, ring
  the bell, or show a disguised OSC 8 link), keeping newline and tab, carriage return when the
  stream is not a terminal (a CSV cell may hold one), and, at a terminal that shows colour only,
  plain colour codes (SGR), which the renderers write; they remove even those from the text they
  are given (``plain``) before styling it, so that a colour reaching the terminal is theirs.
  Piped or saved output holds no escape sequence at all;
- made visible: bidi overrides and isolates, zero-width characters and a BOM inside text are
  removed, U+2028/U+2029 become a space at a terminal, and lone surrogates (bytes that were not UTF-8, a JSON
  "\\ud800") become U+FFFD, so that what is written is always valid UTF-8;
- encoded safely: typographic characters spelled in ASCII when the stream is not UTF-8, and
  anything else it cannot carry replaced by '?' (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``).

A write that fails (a full disk, a closed stdout) raises ``OutputError``, which the CLI turns
into one sentence and exit 1; a reader that went away (``| head -1``) stays a BrokenPipeError,
a quiet success.

Text is passed on a whole line at a time, so that a key split between two writes is still seen
whole; a line that ends in what may be the first half of a key is held until the next one.
``flush()`` passes on everything held (a prompt, the end of a command).
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, TextIO

from .redact import KEY_FRAGMENT_AT_END, mask, quick_miss_bytes
from .term import is_terminal, safe

HOLD_LIMIT = 64 * 1024  # a line longer than this is passed on in pieces

# an escape sequence as a whole (so that no "[2J" is left behind), or one control character
_CONTROL = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, hyperlinks
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"  # C0 (but tab, newline, CR) and C1
)
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # one class: a fast first look
_CR = re.compile(r"\r(?!\n)")
_SGR = re.compile(r"\x1b\[([0-9;]*)m\Z")
_HIDING = {"5", "6", "8"}  # blink, rapid blink, conceal: nothing the renderers use


def _kept(match: "re.Match[str]") -> str:
    """Colour codes (SGR) pass; any other control sequence or character is removed (the
    colouring stream's rule: ``defuse`` removes colours too when the stream shows none)."""
    sgr = _SGR.match(match.group(0))
    if sgr and not _HIDING.intersection(sgr.group(1).split(";")):
        return match.group(0)
    return ""


def defuse(text: str, terminal: bool = True, colour: Optional[bool] = None) -> str:
    """The text without control characters (but newline, tab and, where colour is shown, plain
    colour codes); at a terminal a lone carriage return goes too (it would let text overwrite
    the line). Colour is shown only at a terminal (``colour`` defaults to ``terminal``): piped
    or saved output holds no escape sequence at all."""
    if _ANY_CONTROL.search(text):
        text = _CONTROL.sub(_kept if (terminal if colour is None else colour) else "", text)
    if terminal and "\r" in text:
        text = _CR.sub("", text)
    return text


_PLAIN = bytes(range(0x20, 0x7F)) + b"\n\t"


def plain(text: str) -> str:
    """Text from a rule file, a note or a log, before a renderer styles it: every control
    sequence removed, colours too (a title could otherwise hide text, black on black), and any
    carriage return that does not end a line."""
    if _ANY_CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return _CR.sub("", text) if "\r" in text else text


# characters that change how text around them reads without being seen: bidi overrides and
# isolates (U+202E shows "txt.exe" as "exe.txt"), zero-width characters, a BOM inside text; line
# separators some viewers honour and others not; lone surrogates (invalid UTF-8 read with
# surrogateescape, a JSON "\\ud800"). One character class, compiled when first needed.
_HIDDEN = "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u2028\u2029\u0085\ud800-\udfff]"
_SHOWN_AS = {"\u2028": " ", "\u2029": " ", "\u0085": " "}
_hidden: list = []


def _shown(match: "re.Match[str]") -> str:
    char = match.group(0)
    return _SHOWN_AS.get(char) or ("\ufffd" if "\ud800" <= char <= "\udfff" else "")


def _kept_as_data(match: "re.Match[str]") -> str:
    char = match.group(0)
    return char if char in _SHOWN_AS else _shown(match)


def visible(text: str, terminal: bool = True) -> str:
    """Non-ASCII text with nothing hidden in it: invisible and direction-changing characters
    removed, and lone surrogates (bytes that were not UTF-8) as the replacement character U+FFFD,
    so that what is written is valid UTF-8. U+2028/U+2029 are a space at a terminal (they would
    start a line there unseen); in a file or pipe they stay, as the data they are (a note exported
    to CSV imports back the same)."""
    if not _hidden:
        _hidden.append(re.compile(_HIDDEN))
    if not _hidden[0].search(text):
        return text
    return _hidden[0].sub(_shown if terminal else _kept_as_data, text)


def clean(text: str, terminal: bool = False, colour: Optional[bool] = None) -> str:
    """Text as it may leave the program: keys masked, controls removed, nothing invisible."""
    if text.isascii():  # the usual case (JSON lines are ASCII): decided on bytes, at C speed
        raw = text.encode("ascii")
        if not raw.translate(None, _PLAIN) and quick_miss_bytes(raw):
            return text
        return defuse(mask(text)[0], terminal, colour)
    return defuse(visible(mask(text)[0], terminal), terminal, colour)


class OutputError(Exception):
    """A write that cannot be done: says which stream and why."""


class Sink:
    """A text stream in front of a real one: masks, defuses and safely encodes what is written.

    It has no ``buffer``: Click and others that would write bytes past it find none, and write
    text here instead."""

    def __init__(self, stream: Optional[TextIO], name: str, silent: bool = False):
        self.stream = stream
        self.name = name
        self.silent = silent  # stderr: a failure there has nowhere to be reported
        self.terminal = is_terminal(stream) if stream is not None else False
        # colour codes pass only where they are shown (a terminal, without NO_COLOR or TERM=dumb)
        self.colour = self.terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.pending = ""
        self.gone = False  # the reader went away: drop the rest

    # what Click, Rich and the interview look at
    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    def isatty(self) -> bool:
        return self.terminal

    def fileno(self) -> int:
        if self.stream is None:
            raise OSError(f"{self.name} is closed")
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text or self.gone:
            return len(text)
        self.pending += text
        if "\n" not in text and len(self.pending) < HOLD_LIMIT:
            return len(text)
        cut = self.pending.rfind("\n") + 1 if len(self.pending) < HOLD_LIMIT else len(self.pending)
        ready, rest = self.pending[:cut], self.pending[cut:]
        fragment = KEY_FRAGMENT_AT_END.search(ready, max(0, len(ready) - 4096))
        if fragment and fragment.start() > 0:
            start = ready.rfind("\n", 0, fragment.start()) + 1  # hold the whole line, if it is short
            if len(ready) - start < 4096:
                ready, rest = ready[:start], ready[start:] + rest
        self.pending = rest
        if ready:
            self._emit(ready)
        return len(text)

    def flush(self) -> None:
        if self.pending and not self.gone:
            ready, self.pending = self.pending, ""
            self._emit(ready)
        if self.stream is not None and not self.gone:
            self._guarded(self.stream.flush)

    def control(self, sequence: str) -> None:
        """Write the program's own control sequence (a progress line's \\r and erase) as is."""
        if self.terminal and self.stream is not None and not self.gone:
            self.flush()
            self._guarded(lambda: self.stream.write(sequence))
            self._guarded(self.stream.flush)

    def _emit(self, text: str) -> None:
        text = safe(clean(text, self.terminal, self.colour), self.stream) if self.stream is not None else text
        self._guarded(lambda: self._write_encodable(text))

    def _write_encodable(self, text: str) -> None:
        """Write; text the stream cannot encode (whatever slipped past ``safe``) is written with
        replacement characters, never reported as the stream failing."""
        try:
            self.stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self.stream, "encoding", None) or "utf-8"
            self.stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))

    def _guarded(self, action) -> None:
        try:
            if self.stream is None:
                raise OutputError(f"cannot write to {self.name}: it is closed")
            action()
        except BrokenPipeError:
            self.gone, self.pending = True, ""
            if not self.silent:
                raise
        except OutputError:
            if not self.silent:
                raise
        except (OSError, ValueError) as error:
            self.gone, self.pending = True, ""
            if not self.silent:
                reason = getattr(error, "strerror", None) or str(error)
                raise OutputError(f"cannot write to {self.name} ({reason})") from None


@contextmanager
def installed() -> Iterator[None]:
    """stdout and stderr through a Sink while the block runs (once, however deeply nested)."""
    if isinstance(sys.stdout, Sink):
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Sink(saved[0], "stdout"), Sink(saved[1], "stderr", silent=True)
    try:
        yield
    finally:
        out, err = sys.stdout, sys.stderr
        try:
            if isinstance(err, Sink):
                err.flush()
        finally:
            sys.stdout, sys.stderr = saved
        if isinstance(out, Sink):
            try:
                out.flush()  # the command flushed already and reported any failure; this is the rest
            except (OutputError, BrokenPipeError):
                pass


def finish_stdout() -> None:
    """Flush stdout now, so that a full disk is reported while an error can still be shown."""
    if isinstance(sys.stdout, Sink):
        sys.stdout.flush()
    elif sys.stdout is not None:
        sys.stdout.flush()
