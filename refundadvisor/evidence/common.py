"""What the evidence readers share: the error type, times, money and the document version."""

import os
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

# Bump on any change to an evidence document's keys or their meaning (docs/evidence.md).
SCHEMA_VERSION = "1"
CURRENCY = "USD"
API_URL_VARIABLE = "REFUNDADVISOR_API_URL"  # points every look-up at another base URL (a proxy, a test server)


class EvidenceError(Exception):
    """Evidence that cannot be gathered or read: one sentence saying what and why."""


def api_base_url(default: str) -> str:
    """The base URL to ask: $REFUNDADVISOR_API_URL when set, else the platform's own."""
    url = os.environ.get(API_URL_VARIABLE, "").strip() or default
    if not re.match(r"https?://[^\s/]+", url):
        raise EvidenceError(f"{API_URL_VARIABLE} must be an http:// or https:// URL, not {url[:80]!r}")
    return url.rstrip("/")


_FRACTION = re.compile(r"(\.\d+)")


def parse_time(value: Any) -> Optional[datetime]:
    """A moment from ISO 8601 text (Z or an offset; no offset means UTC) or Unix seconds
    (milliseconds when the number is too large to be seconds); None when it is neither, or when it
    lies outside the years refundadvisor works with (``time_out_of_range`` tells which)."""
    moment = _parsed_time(value)
    return moment if moment is not None and moment is not OUT_OF_RANGE else None


def time_out_of_range(value: Any) -> bool:
    """Whether the value is a time (a number, or ISO 8601 text) far outside any log's: before
    1900, from 9000 on, not finite, or past the calendar's ends once in UTC."""
    return _parsed_time(value) is OUT_OF_RANGE


OUT_OF_RANGE: Any = object()


def seconds_in_range(seconds: Any) -> bool:
    """Whether Unix seconds (never read as milliseconds) fall in the years refundadvisor works with."""
    from ..facts import FIRST_MOMENT, LAST_MOMENT

    try:
        return FIRST_MOMENT.timestamp() <= float(seconds) < LAST_MOMENT.timestamp()
    except (TypeError, ValueError, OverflowError):
        return False


def _parsed_time(value: Any) -> Any:
    from ..facts import FIRST_MOMENT, LAST_MOMENT

    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float, Decimal)):
            seconds = float(value)
            if seconds > 1e11:  # milliseconds: seconds that large are past the year 5000
                seconds /= 1000
            if not FIRST_MOMENT.timestamp() <= seconds < LAST_MOMENT.timestamp():  # NaN too
                return OUT_OF_RANGE
            return datetime.fromtimestamp(seconds, timezone.utc)
        if not isinstance(value, str) or len(value) > 64:
            return None
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        # Python 3.10 reads only 3 or 6 fraction digits
        text = _FRACTION.sub(lambda match: (match.group(1) + "000000")[:7], text, count=1)
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except (ValueError, OverflowError, OSError):
        return OUT_OF_RANGE if isinstance(value, (int, float, Decimal)) else None
    try:
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # 9999-12-31T23:59-14:00 is past the calendar's end in UTC
        return OUT_OF_RANGE
    return moment if FIRST_MOMENT <= moment < LAST_MOMENT else OUT_OF_RANGE


def utc_text(moment: Optional[datetime]) -> Optional[str]:
    """ISO 8601 in UTC with a Z, to the second (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def local_text(moment: datetime) -> str:
    """The same moment in the machine's local time zone, for people."""
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


def as_decimal(value: Any) -> Optional[Decimal]:
    """A finite, non-negative amount up to MAX_NUMBER (1e12) as a Decimal, or None when it is not
    one: a cost of 1e308 is a broken value, not a charge."""
    from ..facts import MAX_NUMBER

    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite() or not 0 <= number <= MAX_NUMBER:
        return None
    return number


MAX_COUNT = 10**15  # tokens or requests; more in one record is a broken value


def as_count(value: Any) -> Optional[int]:
    """A non-negative whole count up to MAX_COUNT, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        whole = value.is_finite() and 0 <= value <= MAX_COUNT and value == value.to_integral_value()
        return int(value) if whole else None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_COUNT else None
    return None


def money_text(amount: Decimal) -> str:
    """'3.42 USD'; under 1 USD up to four decimals ('0.0108 USD'), under 0.0001 up to six."""
    if amount == 0 or abs(amount) >= 1:
        return f"{amount.quantize(Decimal('0.01')):f} {CURRENCY}"
    places = Decimal("0.0001") if abs(amount) >= Decimal("0.0001") else Decimal("0.000001")
    text = f"{amount.quantize(places):f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text += "0" * (2 - len(text.split(".")[1]))
    return f"{text} {CURRENCY}" if text.strip("-0.") else f"under 0.000001 {CURRENCY}"


def plain(value: Any) -> Any:
    """JSON for a Decimal: an int when whole, else a float that prints as the decimal does."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json(document: dict) -> str:
    import json

    return json.dumps(document, indent=2, ensure_ascii=False, default=plain)
