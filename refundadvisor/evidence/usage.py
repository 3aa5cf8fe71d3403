"""OpenAI and Anthropic usage and cost reports (admin keys), as the same spike view as a log.

OpenAI (https://platform.openai.com/docs/api-reference/usage/completions and
https://platform.openai.com/docs/api-reference/usage/costs), with ``Authorization: Bearer
$OPENAI_ADMIN_KEY``:
  GET /v1/organization/usage/completions?start_time=&end_time=&bucket_width=1m|1h|1d&limit=&page=
      -> {"data": [{"start_time", "end_time", "results": [{"num_model_requests", "input_tokens",
         "output_tokens", ...}]}], "has_more", "next_page"}
  GET /v1/organization/costs?start_time=&end_time=&bucket_width=1d&limit=&page=
      -> the same pages, results [{"amount": {"value": 0.06, "currency": "usd"}, ...}]

Anthropic (https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages and
https://platform.claude.com/docs/en/api/admin/cost_report), with ``x-api-key:
$ANTHROPIC_ADMIN_KEY`` and ``anthropic-version: 2023-06-01``:
  GET /v1/organizations/usage_report/messages?starting_at=&ending_at=&bucket_width=&limit=&page=
      -> {"data": [{"starting_at", "ending_at", "results": [{"uncached_input_tokens",
         "cache_read_input_tokens", "cache_creation": {...}, "output_tokens", ...}]}], "has_more", "next_page"}
  GET /v1/organizations/cost_report?starting_at=&ending_at=&limit=&page=
      -> results [{"amount": "123.45", "currency": "USD", ...}]: amount in cents, as a decimal string.

Anthropic's usage report has no request counts, so its spikes are in tokens; OpenAI's are in
requests. Costs come per day on both (the only width their cost reports offer).
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, NamedTuple, Optional

from .client import JsonClient, Policy, RequestFailed
from .common import (CURRENCY, SCHEMA_VERSION, EvidenceError, as_count, as_decimal, parse_time, seconds_in_range,
                     utc_text)
from .windows import find_windows

MAX_PAGES = 200  # a report longer than this is not one incident; narrow --since/--until
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
PAGE_LIMITS = {"1m": 1440, "1h": 168, "1d": 31}  # the most buckets a page may hold, per the docs


class Platform(NamedTuple):
    name: str
    title: str
    base_url: str
    key_variables: tuple[str, ...]
    usage_path: str
    cost_path: str
    metric: str  # what the spike view counts
    docs: tuple[str, ...]


PLATFORMS = {
    "openai": Platform("openai", "OpenAI", "https://api.openai.com/v1", ("OPENAI_ADMIN_KEY",),
                       "/organization/usage/completions", "/organization/costs", "requests",
                       ("https://platform.openai.com/docs/api-reference/usage/completions",
                        "https://platform.openai.com/docs/api-reference/usage/costs")),
    "anthropic": Platform("anthropic", "Anthropic", "https://api.anthropic.com/v1",
                          ("ANTHROPIC_ADMIN_KEY", "ANTHROPIC_ADMIN_API_KEY"),
                          "/organizations/usage_report/messages", "/organizations/cost_report", "tokens",
                          ("https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages",
                           "https://platform.claude.com/docs/en/api/admin/cost_report")),
}


class Bucket(NamedTuple):
    start: int  # Unix seconds
    end: int
    requests: Optional[int]  # None where the platform does not count them (Anthropic)
    input_tokens: int
    output_tokens: int


class CostBucket(NamedTuple):
    start: int
    end: int
    cost: Decimal  # USD


def headers_for(platform: Platform, key: str) -> dict[str, str]:
    if platform.name == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01", "accept": "application/json",
                "user-agent": "refundadvisor (evidence usage)"}
    return {"authorization": f"Bearer {key}", "accept": "application/json", "user-agent": "refundadvisor (evidence usage)"}


def auto_width(since: datetime, until: datetime) -> str:
    """Minutes for a day or less, hours up to two weeks, else days."""
    span = until - since
    return "1m" if span <= timedelta(days=1) else "1h" if span <= timedelta(days=14) else "1d"


def fetch(platform: Platform, key: str, since: datetime, until: datetime, width: str,
          base_url: Optional[str] = None, policy: Policy = Policy(),
          progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Ask the platform's usage and cost reports for [since, until) and build the document."""
    if width not in WIDTHS:
        raise EvidenceError(f"the bucket width must be 1m, 1h or 1d, not {width!r}")
    if until <= since:
        raise EvidenceError("--until must be after --since")
    base_url = (base_url or platform.base_url).rstrip("/")
    policy = policy._replace(not_found_attempts=1)  # a report is there or not; only generations appear late
    with JsonClient(base_url, headers_for(platform, key), key, policy, connections=1) as client:
        usage_pages = _pages(client, platform, platform.usage_path, _range(platform, since, until)
                             | {"bucket_width": width, "limit": PAGE_LIMITS[width]}, "the usage report", progress)
        buckets = [_usage_bucket(platform, item) for page in usage_pages for item in page]
        cost_limit = 180 if platform.name == "openai" else 31
        cost_pages = _pages(client, platform, platform.cost_path, _range(platform, since, until)
                            | {"bucket_width": "1d", "limit": cost_limit}, "the cost report", progress)
        costs = [_cost_bucket(platform, item) for page in cost_pages for item in page]
    return document(platform, since, until, width, buckets, costs, base_url)


def _range(platform: Platform, since: datetime, until: datetime) -> dict[str, Any]:
    if platform.name == "openai":
        return {"start_time": int(since.timestamp()), "end_time": int(until.timestamp())}
    return {"starting_at": utc_text(since), "ending_at": utc_text(until)}


def _pages(client: JsonClient, platform: Platform, path: str, params: dict[str, Any], what: str,
           progress: Optional[Callable[[str], None]]) -> list[list[Any]]:
    """Every page's ``data``, following next_page while has_more says so."""
    pages, cursor, seen = [], None, set()
    for number in range(1, MAX_PAGES + 1):
        query = dict(params) if cursor is None else {**params, "page": cursor}
        reply = client.get_json(path, query, f"{what} (page {number})")
        if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
            raise RequestFailed("malformed", f"{platform.title}'s reply for {what} has no \"data\" list")
        pages.append(reply["data"])
        if progress is not None:
            progress(f"{what}: page {number}")
        cursor = reply.get("next_page")
        if not reply.get("has_more") or not isinstance(cursor, str) or not cursor:
            return pages
        if cursor in seen:
            raise RequestFailed("malformed", f"{platform.title} gave the same next page twice for {what}")
        seen.add(cursor)
    raise EvidenceError(f"{what} runs to more than {MAX_PAGES} pages; ask for a shorter range with --since and --until")


def _bucket_times(platform: Platform, item: Any, what: str) -> tuple[int, int, list]:
    if not isinstance(item, dict) or not isinstance(item.get("results"), list):
        raise RequestFailed("malformed", f"{platform.title}'s {what} has a bucket without \"results\"")
    if platform.name == "openai":
        start, end = as_count(item.get("start_time")), as_count(item.get("end_time"))
    else:
        start_at, end_at = parse_time(item.get("starting_at")), parse_time(item.get("ending_at"))
        start = int(start_at.timestamp()) if start_at else None
        end = int(end_at.timestamp()) if end_at else None
    if start is None or end is None or end <= start or not seconds_in_range(start) or not seconds_in_range(end):
        raise RequestFailed("malformed", f"{platform.title}'s {what} has a bucket without a valid start and end")
    return start, end, [result for result in item["results"] if isinstance(result, dict)]


def _tokens(result: dict, *names: str) -> int:
    total = 0
    for name in names:
        value = result
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        total += as_count(value) or 0
    return total


def _usage_bucket(platform: Platform, item: Any) -> Bucket:
    start, end, results = _bucket_times(platform, item, "usage report")
    if platform.name == "openai":
        return Bucket(start, end, sum(_tokens(result, "num_model_requests") for result in results),
                      sum(_tokens(result, "input_tokens") for result in results),
                      sum(_tokens(result, "output_tokens") for result in results))
    return Bucket(start, end, None,
                  sum(_tokens(result, "uncached_input_tokens", "cache_read_input_tokens",
                              "cache_creation.ephemeral_1h_input_tokens", "cache_creation.ephemeral_5m_input_tokens")
                      for result in results),
                  sum(_tokens(result, "output_tokens") for result in results))


def _cost_bucket(platform: Platform, item: Any) -> CostBucket:
    start, end, results = _bucket_times(platform, item, "cost report")
    total = Decimal(0)
    for result in results:
        amount = result.get("amount")
        if platform.name == "openai":
            value = amount.get("value") if isinstance(amount, dict) else None
            currency = str(amount.get("currency", "usd")) if isinstance(amount, dict) else "usd"
            number = as_decimal(value)
        else:
            currency = str(result.get("currency", "USD"))
            try:
                number = Decimal(amount) / 100 if isinstance(amount, str) else None  # cents, as text
            except InvalidOperation:
                number = None
        if number is None or not number.is_finite() or as_decimal(abs(number)) is None:
            raise RequestFailed("malformed", f"{platform.title}'s cost report has an amount that is not a number")
        if currency.upper() != CURRENCY:
            raise RequestFailed("malformed", f"{platform.title}'s cost report is in {currency[:8]}, not USD")
        total += number
    return CostBucket(start, end, total)


def document(platform: Platform, since: datetime, until: datetime, width: str, buckets: list[Bucket],
             costs: list[CostBucket], base_url: str) -> dict[str, Any]:
    step = WIDTHS[width]
    metric = platform.metric

    def value(bucket: Bucket) -> int:
        return bucket.requests if metric == "requests" else bucket.input_tokens + bucket.output_tokens

    series = {bucket.start // step * step: value(bucket) for bucket in buckets}
    k, floor, least = {"1m": (5.0, 5, 3), "1h": (5.0, 1, 1), "1d": (3.0, 1, 1)}[width]
    if metric == "tokens":
        floor = 0
    baseline, windows = find_windows(series, {}, step, k, floor, least)
    total_cost = sum((bucket.cost for bucket in costs), Decimal(0))
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": f"{platform.name}-usage",
        "source": {
            "requests": [f"GET {base_url}{platform.usage_path} (bucket_width={width}, every page)",
                         f"GET {base_url}{platform.cost_path} (bucket_width=1d, every page)"],
            "docs": list(platform.docs),
        },
        "range": {"since": utc_text(since), "until": utc_text(until)},
        "metric": metric,
        "bucket_seconds": step,
        "buckets": [
            {"start": _at(bucket.start), "end": _at(bucket.end), "requests": bucket.requests,
             "input_tokens": bucket.input_tokens, "output_tokens": bucket.output_tokens}
            for bucket in sorted(buckets)
        ],
        "cost_buckets": [{"start": _at(bucket.start), "end": _at(bucket.end), "cost": bucket.cost}
                         for bucket in sorted(costs)],
        "totals": {
            "requests": sum(bucket.requests for bucket in buckets) if metric == "requests" else None,
            "input_tokens": sum(bucket.input_tokens for bucket in buckets),
            "output_tokens": sum(bucket.output_tokens for bucket in buckets),
            "cost": total_cost,
            "currency": CURRENCY,
        },
        "baseline": {
            f"{metric}_per_bucket": baseline.per_bucket,
            "threshold": baseline.threshold,
            "k": baseline.k,
            "meaning": f"the median of the buckets with any use; a bucket is hot at {k:g} times it",
        },
        "runaway": _window(windows[0], metric) if windows else None,
        "windows": [_window(window, metric) for window in windows],
    }


def _at(seconds: int) -> str:
    return utc_text(datetime.fromtimestamp(seconds, timezone.utc))


def _window(window, metric: str) -> dict[str, Any]:
    return {
        "start": _at(window.start),
        "end": _at(window.end),
        "minutes": (window.end - window.start) // 60,
        "hot_buckets": window.hot_buckets,
        metric: int(window.value),
        f"peak_{metric}_per_bucket": int(window.peak),
        "times_baseline": round(window.ratio, 1),
    }


def chart_timeline(evidence: dict[str, Any], rows: int = 48) -> dict[str, Any]:
    """The usage buckets regrouped for a chart of at most ``rows`` rows ({"bucket_seconds", "buckets"})."""
    from .logread import CHART_STEPS

    metric = evidence["metric"]
    points = []
    for bucket in evidence["buckets"]:
        start = int(parse_time(bucket["start"]).timestamp())
        amount = bucket["requests"] if metric == "requests" else bucket["input_tokens"] + bucket["output_tokens"]
        points.append((start, amount or 0))
    if not points:
        return {"bucket_seconds": evidence["bucket_seconds"], "buckets": []}
    low, high = min(start for start, _ in points), max(start for start, _ in points)
    step = next((step for step in CHART_STEPS if step >= evidence["bucket_seconds"]
                 and (high // step - low // step) + 1 <= rows), 30 * 86400)
    grouped: dict[int, int] = {}
    for start, amount in points:
        grouped[start // step * step] = grouped.get(start // step * step, 0) + amount
    first = low // step * step
    return {"bucket_seconds": step,
            "buckets": [{"start": _at(start), "requests": grouped.get(start, 0), "cost": None, "errors": 0}
                        for start in range(first, high + 1, step)]}
