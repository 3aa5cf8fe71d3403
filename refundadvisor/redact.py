"""Keep secrets out of what refundadvisor writes: API keys pasted by mistake are masked.

A key is ``sk-`` (OpenRouter ``sk-or-v1-...``, OpenAI ``sk-proj-...``, Anthropic ``sk-ant-...``)
and at least 16 more key characters. It is found however it was mangled on the way in: in
upper case, percent-encoded (``sk%2Dor%2Dv1...``, even every character, even twice:
``sk%252Dor``), glued to the word before it (``Bearersk-or-v1-...``), broken over two lines
anywhere, right after the ``s`` too (a raw line break, a JSON ``\\n``, a shell's backslash-newline,
with the next line's indentation) or split by a tab, or in full-width letters. ``output.py`` applies this to every byte the program writes.
"""

import re
from urllib.parse import unquote

# The plain form: what `generations` looks for in a word it was given (case as typed or not).
API_KEY = re.compile(r"\bsk-(?:or-(?:v\d+-)?|ant-(?:api\d+-)?|proj-)?[A-Za-z0-9_-]{16,}", re.IGNORECASE)
MASK = "[API key removed]"
MIN_BODY = 16  # key characters after "sk-"; shorter runs are words like "sk-learn"

_HEX = r"%(?:25){0,2}"  # percent-encoded once, twice (%252D) or three times
_CHAR = rf"(?:[a-z0-9_-]|{_HEX}[0-9a-f]{{2}})"
# a line break (raw, escaped as in JSON, or a shell's backslash-newline) or a tab, and the next
# line's indentation
_BREAK = r"(?:\\?(?:\r\n|\r|\n)|\\+(?:r\\+n|n|r|t)|\t)[ \t]*"
_S, _K, _DASH = rf"(?:s|{_HEX}[57]3)", rf"(?:k|{_HEX}[46]b)", rf"(?:-|{_HEX}2d)"  # either case encoded
_CANDIDATE = rf"{_S}(?:{_BREAK})?{_K}(?:{_BREAK})?{_DASH}({_CHAR}*)(?:({_BREAK})({_CHAR}+))?"
_compiled: list = []  # _CANDIDATE, compiled the first time a text may hold a key (start-up stays short)
_KNOWN_PREFIX = re.compile(r"(?:or|ant|proj)-", re.IGNORECASE)
_WORD_BEFORE = re.compile(r"[A-Za-z0-9_]")


def _decoded(text: str) -> str:
    for _ in range(3):  # %252D is %2D encoded again
        if "%" not in text:
            break
        text = unquote(text)
    return text


def _looks_random(body: str) -> bool:
    """Key material, not an English compound: a digit, mixed case or a provider's prefix."""
    return any(c.isdigit() for c in body) or (body.lower() != body and body.upper() != body) \
        or bool(_KNOWN_PREFIX.match(body))


def _replace(match: "re.Match[str]", counter: list) -> str:
    head, tail = _decoded(match.group(1)), _decoded(match.group(3) or "")
    glued = match.start() > 0 and bool(_WORD_BEFORE.match(match.string[match.start() - 1]))
    # the part after a line break belongs to the key when the key is not whole without it, or
    # when it looks like key material itself (a following word of prose does not)
    joined = bool(tail) and not tail[:3].lower() == "sk-" and (len(head) < MIN_BODY or any(c.isdigit() for c in tail))
    body = head + tail if joined else head
    is_key = len(body) >= MIN_BODY and (not glued or _looks_random(body))
    counter[0] += is_key
    if is_key and joined:
        return MASK
    rest = _masked(match.group(2) + match.group(3), counter) if match.group(3) else ""
    return (MASK if is_key else match.group(0)[:match.end(1) - match.start()]) + rest


def _masked(text: str, counter: list) -> str:
    if _quick_miss(text):
        return text
    if not _compiled:
        _compiled.append(re.compile(_CANDIDATE, re.IGNORECASE))
    return _compiled[0].sub(lambda match: _replace(match, counter), text)


# What every candidate holds as typed: "k" or "K" followed by its dash, a line break, a CR, an
# escaped break's backslash or a tab; or a percent sign. Decided on bytes at C speed: the letters
# and separators are folded by one translate, then a single search.
_FOLD = bytes.maketrans(b"K\n\r\\\t", b"k----")


def quick_miss_bytes(raw: bytes) -> bool:
    """No key can be in these (UTF-8) bytes: the common case, decided at C speed."""
    return b"%" not in raw and b"k-" not in raw.translate(_FOLD)


def _quick_miss(text: str) -> bool:
    """No key can be in this text (the common case, decided at C speed)."""
    return quick_miss_bytes(text.encode("utf-8", "surrogatepass"))


# letters NFKC turns into ASCII ones: full-width forms, mathematical alphanumerics, enclosed,
# superscript and modifier letters (the usual typographic characters, "…" or "–", are not here)
_COMPATIBLE = ("[\u00aa\u00b2\u00b3\u00b9\u00ba\u1d2c-\u1d6a\u2070-\u209c\u2460-\u24ff\uff01-\uff5e"
               "\U0001d400-\U0001d7ff\U0001f130-\U0001f189]")
_compatible: list = []


def _has_compatibility_letters(text: str) -> bool:
    if not _compatible:
        _compatible.append(re.compile(_COMPATIBLE))
    return _compatible[0].search(text) is not None


def mask(text: str) -> tuple[str, int]:
    """The text with every API key replaced by a marker, and how many were replaced. Keys typed
    in full-width or other compatibility letters (``ＳＫ-or-v1-...``) are found in an NFKC copy of
    the text; when that copy holds more keys, it is the copy, masked, that is given back."""
    counter = [0]
    masked = _masked(text, counter)
    if not text.isascii() and _has_compatibility_letters(text):
        import unicodedata

        folded = unicodedata.normalize("NFKC", text)
        if folded != text and not _quick_miss(folded):
            more = [0]
            masked_folded = _masked(folded, more)
            if more[0]:  # a key in compatibility letters: the copy, masked, is what is shown
                return masked_folded, more[0]
    return masked, counter[0]


# The end of a text that may be the first half of a key broken over two writes: output.py holds
# such a line back until it sees the next one.
KEY_FRAGMENT_AT_END = re.compile(rf"{_S}(?:{_BREAK})?{_K}(?:{_BREAK})?{_DASH}{_CHAR}*(?:{_BREAK})?\Z", re.IGNORECASE)
