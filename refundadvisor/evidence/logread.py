"""Reading a JSON Lines log of OpenAI-compatible responses and error bodies, streaming.

Each line is one response ({"id", "created", "model", "choices": [{"finish_reason"}], "usage":
{"prompt_tokens", "completion_tokens", "cost"}}), one error body ({"error": {...}}, with a time
field when the logger added one), or either wrapped by a logger ({"ts": ..., "response": {...}}).
Only per-minute aggregates are kept (and a bounded table of request signatures, and the first
billed errors), so memory stays flat however many lines there are. A broken line is noted by
its number and skipped; the rest is read.
"""

import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any, Callable, NamedTuple, Optional

from .common import CURRENCY, MAX_COUNT, SCHEMA_VERSION, utc_text
from .windows import Window, find_windows
from ..facts import FIRST_MOMENT, LAST_MOMENT

KIND = "response-log"
LINE_LIMIT = 1024 * 1024  # a response line is a few KiB; a 1 MiB line is not one
BROKEN_EXAMPLES = 5  # broken lines named one by one; the rest are counted
BILLED_ERRORS_KEPT = 1000
SIGNATURES_KEPT = 200_000  # distinct requests tracked for repeats; later new ones are only counted
LOOP_GAP = 10  # seconds: the same request again within this is a loop, not a user asking twice
LOOP_MIN = 10  # repeats in a loop before a signature is reported
K = 5.0  # a minute is hot at k times the baseline...
FLOOR = 5  # ...and at least this many requests
MIN_MINUTES = 3  # a runaway window lasts at least this many hot minutes
TIME_FIELDS = ("ts", "timestamp", "time", "created_at", "created", "date")
HASH_FIELDS = ("request_hash", "request_sha256", "request_id_hash", "prompt_hash")
BLOCK = 1024 * 1024  # bytes read at a time
SKIP_LIMIT = 256 * 1024 * 1024  # a line this long is not skipped to its end: reading stops there (/dev/zero)
NANO = 1_000_000_000  # costs are summed in nano-USD: integer sums stay exact over millions of lines
FIRST_SECONDS, LAST_SECONDS = FIRST_MOMENT.timestamp(), LAST_MOMENT.timestamp()  # the times a log line may have
MAX_COST = 10**12  # USD for one request; more is a broken value (1e308, a JSON 1e400), not a charge
CHART_STEPS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
CHART_ROWS = 48


_raw_decode = json.JSONDecoder().raw_decode
DIGITS_PROBLEM = "a number with more digits than any log holds"


class Broken(NamedTuple):
    line: int
    reason: str


class _Minute:
    __slots__ = ("requests", "cost", "errors")

    def __init__(self) -> None:
        self.requests = 0
        self.cost = 0
        self.errors = 0


class _Absurd(Exception):
    """A line whose time, cost or token count no real request has: the line is broken."""


def _time(value: Any) -> Optional[float]:
    """Unix seconds from a number (seconds, or milliseconds) or ISO 8601 text; _Absurd for a
    time outside the years refundadvisor works with (1e20, NaN, year 9999 at -14:00)."""
    kind = type(value)
    if kind is int or kind is float:
        try:
            seconds = value / 1000 if value > 1e11 else float(value)
        except OverflowError:  # an integer of hundreds of digits
            seconds = math.inf
        if not FIRST_SECONDS <= seconds < LAST_SECONDS:  # NaN too
            raise _Absurd(f"a time out of range ({_excerpt(value)})")
        return seconds
    if kind is str:
        from .common import OUT_OF_RANGE, _parsed_time

        moment = _parsed_time(value)
        if moment is OUT_OF_RANGE:
            raise _Absurd(f"a time out of range ({_excerpt(value)})")
        return None if moment is None else moment.timestamp()
    return None


def _nanos(value: Any) -> int:
    kind = type(value)
    if (kind is float or kind is int) and value > 0:
        if not value <= MAX_COST:  # inf (a JSON 1e400) too
            raise _Absurd(f"a cost out of range ({_excerpt(value)})")
        return round(value * NANO)
    if kind is float and value != value:
        raise _Absurd("a cost that is not a number (NaN)")
    return 0


def _tokens(value: Any) -> Any:
    if type(value) is int and not 0 <= value <= MAX_COUNT:
        raise _Absurd(f"a token count out of range ({_excerpt(value)})")
    return value


def _excerpt(value: Any) -> str:
    text = repr(value) if type(value) is not int or value.bit_length() < 200 else f"a {len(str(abs(value)))}-digit number"
    return text if len(text) <= 40 else text[:37] + "..."


class LogReader:
    """Feed it lines (``feed``) or a whole stream (``read``); ``document()`` gives the findings."""

    def __init__(self, name: str = "-", on_broken: Optional[Callable[[Broken], None]] = None):
        self.name = name
        self.on_broken = on_broken
        self.lines = 0
        self.requests = 0
        self.errors = 0
        self.untimed = 0
        self.cost = 0
        self.tokens_prompt = 0
        self.tokens_completion = 0
        self.broken = 0
        self.too_long = 0
        self.not_responses = 0
        self.chunks = 0
        self.examples: list[Broken] = []
        self.minutes: dict[int, _Minute] = {}
        self.first: Optional[tuple[float, int, Any]] = None  # (time, line, id)
        self.last: Optional[tuple[float, int, Any]] = None
        self.billed_errors = 0
        self.billed_errors_cost = 0
        self.billed: list[dict[str, Any]] = []
        self.signatures: dict[Any, list] = {}  # signature -> [count, loops, first, last, cost]
        self.untracked = 0

    # --- reading ---

    def read(self, stream: IO[bytes], limit: int = LINE_LIMIT) -> "LogReader":
        """Read every line of a binary stream, in blocks (a long line is never held whole)."""
        too_long = (f"is longer than {limit // 1024 // 1024} MiB (not read)" if limit >= 1024 * 1024
                    else f"is longer than {limit:,} bytes (not read)")
        take, parse = self._take, self._parse
        pending = b""
        skipping = False  # inside a line over the limit: drop bytes up to its end
        skipped = 0  # bytes of that line dropped so far
        while True:
            block = stream.read(BLOCK)
            if not block:
                break
            if skipping:
                end = block.find(b"\n")
                if end < 0:
                    skipped += len(block)
                    if skipped > SKIP_LIMIT:
                        self._note(self.lines, f"runs past {SKIP_LIMIT // 1024 // 1024} MiB without a line end; "
                                               "reading stopped there")
                        break
                    continue
                block, skipping = block[end + 1:], False
            lines = (pending + block).split(b"\n") if pending else block.split(b"\n")
            pending = lines.pop()
            for line in lines:
                self.lines += 1
                if len(line) > limit:
                    self._note(self.lines, too_long)
                    self.too_long += 1
                    continue
                item = parse(line)
                if item is not None:
                    take(item)
            if len(pending) > limit:
                self.lines += 1
                self._note(self.lines, too_long)
                self.too_long += 1
                pending, skipping, skipped = b"", True, 0
        if pending and not skipping:
            self.feed(pending)  # a last line without a newline
        return self

    def feed(self, line: bytes) -> None:
        """Read one line (without or with its newline)."""
        self.lines += 1
        item = self._parse(line)
        if item is not None:
            self._take(item)

    def _parse(self, line: bytes) -> Optional[dict]:
        try:
            text = line.decode("utf-8")
            item, end = _raw_decode(text)  # json.loads without its per-call encoding sniffing
            if end != len(text) and not text[end:].isspace():
                raise ValueError("Extra data")
        except UnicodeDecodeError:
            self._note(self.lines, "is not UTF-8 text")
            return None
        except (ValueError, RecursionError):
            if not line.strip():
                return None  # a blank line
            try:
                json.loads(line)
            except RecursionError:
                self._note(self.lines, "is not valid JSON (too deeply nested)")
                return None
            except ValueError as error:  # a JSONDecodeError has a msg; a number past Python's digit limit has not
                self._note(self.lines, f"is not valid JSON ({getattr(error, 'msg', None) or DIGITS_PROBLEM})")
                return None
            item = json.loads(line)  # leading white space, which raw_decode does not skip
        if type(item) is not dict:
            self._note(self.lines, "is not a JSON object")
            return None
        return item

    def _note(self, line: int, reason: str) -> None:
        self.broken += 1
        if len(self.examples) < BROKEN_EXAMPLES:
            broken = Broken(line, reason)
            self.examples.append(broken)
            if self.on_broken is not None:
                self.on_broken(broken)

    def _take(self, item: dict) -> None:
        try:
            self._take_checked(item)
        except _Absurd as problem:
            self._note(self.lines, f"has {problem}")

    def _take_checked(self, item: dict) -> None:
        body = item
        inner = item.get("response")
        if type(inner) is not dict:
            inner = item.get("body")
        if type(inner) is dict:
            body = inner
        error = body.get("error")
        choices = body.get("choices")
        usage = body.get("usage")
        if error is None and choices is None and usage is None:
            self.not_responses += 1
            return
        if usage is None and body.get("object") == "chat.completion.chunk":
            self.chunks += 1  # a stream's chunks: the one with usage (the last) stands for the request
            return
        at = body.get("created")
        at = _time(at) if at is not None else None
        if at is None:
            for field in TIME_FIELDS:
                value = item.get(field)
                if value is None and body is not item:
                    value = body.get(field)
                if value is not None:
                    at = _time(value)
                    if at is not None:
                        break
        cost = prompt = completion = 0
        if type(usage) is dict:
            cost = _nanos(usage.get("cost"))
            prompt = _tokens(usage.get("prompt_tokens"))
            completion = _tokens(usage.get("completion_tokens"))
        self.requests += 1
        if type(usage) is dict:
            if type(prompt) is int:
                self.tokens_prompt += prompt
            if type(completion) is int:
                self.tokens_completion += completion
        failed = error is not None
        finish = None
        if type(choices) is list:
            for choice in choices:
                if type(choice) is dict:
                    reason = choice.get("finish_reason")
                    if reason == "error" or choice.get("error") is not None:
                        failed = True
                        finish = "error"
                    elif finish is None:
                        finish = reason
        if failed:
            self.errors += 1
        self.cost += cost
        if at is None:
            self.untimed += 1
        else:
            minute_key = int(at // 60) * 60
            minute = self.minutes.get(minute_key)
            if minute is None:
                minute = self.minutes[minute_key] = _Minute()
            minute.requests += 1
            minute.cost += cost
            if failed:
                minute.errors += 1
            if self.first is None or at < self.first[0]:
                self.first = (at, self.lines, body.get("id"))
            if self.last is None or at >= self.last[0]:
                self.last = (at, self.lines, body.get("id"))
        if cost:
            zero_completion = completion == 0 and not finish
            if failed or zero_completion:
                self._billed_error(body, at, finish, cost, "error" if failed else "zero-completion")
        # repeats: the same request again and again, by its hash when the logger wrote one,
        # else by model and prompt size
        signature = None
        for field in HASH_FIELDS:
            value = item.get(field)
            if type(value) is str:
                signature = ("hash", value[:128])
                break
        if signature is None and type(prompt) is int and prompt:
            model = body.get("model")
            if type(model) is str:
                signature = (model[:200], prompt)
        if signature is not None and at is not None:
            seen = self.signatures.get(signature)
            if seen is None:
                if len(self.signatures) < SIGNATURES_KEPT:
                    self.signatures[signature] = [1, 0, at, at, cost]
                else:
                    self.untracked += 1
            else:
                seen[0] += 1
                if abs(at - seen[3]) <= LOOP_GAP:
                    seen[1] += 1
                if at < seen[2]:
                    seen[2] = at
                if at > seen[3]:
                    seen[3] = at
                seen[4] += cost

    def _billed_error(self, body: dict, at: Optional[float], finish: Any, cost: int, reason: str) -> None:
        self.billed_errors += 1
        self.billed_errors_cost += cost
        if len(self.billed) < BILLED_ERRORS_KEPT:
            error = body.get("error")
            message = error.get("message") if type(error) is dict else None
            self.billed.append({
                "line": self.lines,
                "id": body.get("id") if type(body.get("id")) is str else None,
                "at": _moment(at),
                "model": body.get("model") if type(body.get("model")) is str else None,
                "finish_reason": finish if type(finish) is str else None,
                "reason": reason,
                "message": message[:200] if type(message) is str else None,
                "cost": _usd(cost),
            })

    # --- findings ---

    def document(self) -> dict[str, Any]:
        series = {start: minute.requests for start, minute in self.minutes.items()}
        costs = {start: minute.cost for start, minute in self.minutes.items()}
        baseline, windows = find_windows(series, costs, 60, K, FLOOR, MIN_MINUTES)
        active_costs = sorted(cost for cost in costs.values() if cost)
        repeats = sorted((item for item in self.signatures.items() if item[1][1] >= LOOP_MIN),
                         key=lambda item: item[1][1], reverse=True)[:10]
        first, last = self.first, self.last
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "source": {"name": self.name},
            "lines": {
                "read": self.lines,
                "requests": self.requests,
                "skipped": {"broken": self.broken - self.too_long, "too_long": self.too_long,
                            "not_a_response": self.not_responses, "stream_chunks": self.chunks},
                "broken_examples": [broken._asdict() for broken in self.examples],
            },
            "first_request": _point(first),
            "last_request": _point(last),
            "totals": {
                "requests": self.requests,
                "errors": self.errors,
                "untimed": self.untimed,
                "span_seconds": int(last[0] - first[0]) if first and last else None,
                "tokens_prompt": self.tokens_prompt,
                "tokens_completion": self.tokens_completion,
                "cost": _usd(self.cost),
                "currency": CURRENCY,
            },
            "baseline": {
                "requests_per_minute": baseline.per_bucket,
                "threshold_requests_per_minute": baseline.threshold,
                "k": baseline.k,
                "cost_per_minute": _usd(active_costs[len(active_costs) // 2]) if active_costs else None,
                "meaning": f"the median of the minutes with any request; a minute is hot at {K:g} times it "
                           f"(and at least {FLOOR} requests); a window is at least {MIN_MINUTES} hot minutes",
            },
            "runaway": _window(windows[0]) if windows else None,
            "windows": [_window(window) for window in windows],
            "repeats": [
                {"signature": ({"request_hash": signature[1]} if signature[0] == "hash" else
                               {"model": signature[0], "prompt_tokens": signature[1]}),
                 "requests": seen[0], "in_loop": seen[1], "first_at": _moment(seen[2]), "last_at": _moment(seen[3]),
                 "cost": _usd(seen[4])}
                for signature, seen in repeats
            ],
            "billed_errors": {
                "count": self.billed_errors,
                "cost": _usd(self.billed_errors_cost),
                "items": self.billed,
                "truncated": self.billed_errors > len(self.billed),
            },
            "timeline": self.timeline(),
        }

    def timeline(self, rows: int = CHART_ROWS) -> dict[str, Any]:
        """Requests, cost and errors per bucket, the bucket chosen so the chart has at most ``rows`` rows."""
        if not self.minutes:
            return {"bucket_seconds": 60, "buckets": []}
        low, high = min(self.minutes), max(self.minutes)
        step = next((step for step in CHART_STEPS if (high // step - low // step) + 1 <= rows), 30 * 86400)
        buckets: dict[int, list[int]] = {}
        for start, minute in self.minutes.items():
            bucket = buckets.setdefault(start // step * step, [0, 0, 0])
            bucket[0] += minute.requests
            bucket[1] += minute.cost
            bucket[2] += minute.errors
        first = low // step * step
        return {
            "bucket_seconds": step,
            "buckets": [
                {"start": _moment(start), "requests": buckets.get(start, (0, 0, 0))[0],
                 "cost": _usd(buckets.get(start, (0, 0, 0))[1]), "errors": buckets.get(start, (0, 0, 0))[2]}
                for start in range(first, high + 1, step)
            ],
        }

    def per_minute(self, start: int, end: int) -> list[tuple[int, int]]:
        """(minute start, requests) for every minute in [start, end), zeros included."""
        return [(moment, self.minutes[moment].requests if moment in self.minutes else 0)
                for moment in range(start // 60 * 60, end, 60)]


def read_log(stream: IO[bytes], name: str = "-", on_broken: Optional[Callable[[Broken], None]] = None,
             limit: int = LINE_LIMIT) -> LogReader:
    """Read a whole JSON Lines stream; the reader holds the findings (``.document()``)."""
    return LogReader(name, on_broken).read(stream, limit)


def _moment(at: Optional[float]) -> Optional[str]:
    return None if at is None else utc_text(datetime.fromtimestamp(at, timezone.utc))


def _usd(nanos: int) -> Decimal:
    return (Decimal(nanos) / NANO).normalize() if nanos else Decimal(0)


def _point(point: Optional[tuple[float, int, Any]]) -> Optional[dict[str, Any]]:
    if point is None:
        return None
    return {"at": _moment(point[0]), "line": point[1], "id": point[2] if type(point[2]) is str else None}


def _window(window: Window) -> dict[str, Any]:
    return {
        "start": _moment(window.start),
        "end": _moment(window.end),
        "minutes": (window.end - window.start) // 60,
        "hot_minutes": window.hot_buckets,
        "requests": int(window.value),
        "cost": _usd(window.cost),
        "peak_requests_per_minute": int(window.peak),
        "times_baseline": round(window.ratio, 1),
    }
