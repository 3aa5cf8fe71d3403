"""Keep secrets out of what refundadvisor writes: API keys pasted by mistake are masked.

A key is ``sk-`` (OpenRouter ``sk-or-v1-...``, OpenAI ``sk-proj-...``, Anthropic ``sk-ant-...``)
and at least 16 more key characters. It is found however it was mangled on the way in: in
upper case, percent-encoded (``sk%2Dor%2Dv1...``, even every character), glued to the word
before it (``Bearersk-or-v1-...``), or broken over two lines (a raw line break or a JSON ``\\n``,
with the next line's indentation). ``output.py`` applies this to every byte the program writes.
"""

import re
from urllib.parse import unquote

# The plain form: what `generations` looks for in a word it was given (case as typed or not).
API_KEY = re.compile(r"\bsk-(?:or-(?:v\d+-)?|ant-(?:api\d+-)?|proj-)?[A-Za-z0-9_-]{16,}", re.IGNORECASE)
MASK = "[API key removed]"
MIN_BODY = 16  # key characters after "sk-"; shorter runs are words like "sk-learn"

_CHAR = r"(?:[a-z0-9_-]|%[0-9a-f]{2})"
_BREAK = r"(?:\r\n|\r|\n|\\r\\n|\\n|\\r)[ \t]*"
_CANDIDATE = re.compile(rf"(?:s|%73)(?:k|%6b)(?:-|%2d)({_CHAR}*)(?:({_BREAK})({_CHAR}+))?", re.IGNORECASE)
_KNOWN_PREFIX = re.compile(r"(?:or|ant|proj)-", re.IGNORECASE)
_WORD_BEFORE = re.compile(r"[A-Za-z0-9_]")


def _decoded(text: str) -> str:
    return unquote(text) if "%" in text else text


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
    return _CANDIDATE.sub(lambda match: _replace(match, counter), text)


def _quick_miss(text: str) -> bool:
    """No key can be in this text (the common case, decided at C speed): every candidate holds
    "k-" or "K-" as typed, or a percent-encoded character."""
    return "k-" not in text and "K-" not in text and "%" not in text


def mask(text: str) -> tuple[str, int]:
    """The text with every API key replaced by a marker, and how many were replaced."""
    counter = [0]
    return _masked(text, counter), counter[0]


# The end of a text that may be the first half of a key broken over two writes: output.py holds
# such a line back until it sees the next one.
KEY_FRAGMENT_AT_END = re.compile(rf"(?:s|%73)(?:k|%6b)(?:-|%2d){_CHAR}*(?:\r?\n|\r)?\Z", re.IGNORECASE)
