"""Keep secrets out of what refundadvisor writes: API keys pasted by mistake are masked."""

import re

# OpenRouter keys (sk-or-v1-...), and other providers' sk-... keys; long enough not to catch words.
API_KEY = re.compile(r"\bsk-(?:or-(?:v\d+-)?|ant-(?:api\d+-)?|proj-)?[A-Za-z0-9_-]{16,}")
MASK = "[API key removed]"


def mask(text: str) -> tuple[str, int]:
    """The text with every API key replaced by a marker, and how many were replaced."""
    return API_KEY.subn(MASK, text)
