"""OpenRouter generations: look each one up with the documented GET /api/v1/generation?id=...,
flag the ones billed against OpenRouter's own rules, and total them.

Docs: https://openrouter.ai/docs/api/api-reference/generations/get-request-&-usage-metadata-for-a-generation
(the reply is {"data": {...}} with id, created_at, model, provider_name, finish_reason,
tokens_prompt, tokens_completion, total_cost, cancelled, streamed, ...; most fields nullable).
"""

import json
import re
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple, Optional

from ..redact import API_KEY
from .client import JsonClient, Policy, RequestFailed
from .common import CURRENCY, SCHEMA_VERSION, EvidenceError, as_count, as_decimal, parse_time, utc_text

OPENROUTER_API_URL = "https://openrouter.ai/api/v1"
KEY_VARIABLE = "OPENROUTER_API_KEY"
DOCS_URL = "https://openrouter.ai/docs/api/api-reference/generations/get-request-&-usage-metadata-for-a-generation"
ZCI_URL = "https://openrouter.ai/docs/guides/features/zero-completion-insurance"
KIND = "openrouter-generations"
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 16
MAX_IDS = 100_000  # a bigger list is a whole account's history: use the Activity export instead
LINE_LIMIT = 1024 * 1024

# Flags: why a generation may have been billed against OpenRouter's own rules.
FLAGS = {
    "error-finish": "ended with finish reason 'error'",
    "zero-completion-billed": "no completion tokens and a blank or error finish reason, yet billed "
                              "(Zero Completion Insurance says these cost nothing in token charges)",
    "cancelled-billed": "cancelled, yet billed",
}

# An ID given on a line of its own; a JSON log's "id" fields count only when they look like OpenRouter's.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
_GENERATION_ID = re.compile(r"gen-[A-Za-z0-9_-]{4,196}")


class IdError(EvidenceError):
    """A list of IDs that cannot be used (a usage error, not a failed look-up)."""


class Generation(NamedTuple):
    id: str
    created_at: Optional[datetime]
    model: Optional[str]
    provider: Optional[str]
    finish_reason: Optional[str]
    native_finish_reason: Optional[str]
    tokens_prompt: Optional[int]
    tokens_completion: Optional[int]
    total_cost: Decimal
    cancelled: Optional[bool]
    streamed: Optional[bool]
    is_byok: Optional[bool]
    flags: tuple[str, ...]


class Failure(NamedTuple):
    id: str
    kind: str  # not-found, malformed, too-large, timeout, rate-limited, server, refused
    message: str


class Lookup(NamedTuple):
    generations: list[Generation]  # in the order the IDs were given
    failures: list[Failure]


# --- which IDs ---------------------------------------------------------------------------------

def read_ids(stream: IO[bytes], name: str) -> list[str]:
    """The IDs in a file: one a line ('#' starts a comment), or the generation ids found in the
    "id" fields of JSON Lines (any depth). Order kept, repeats dropped."""
    found: dict[str, None] = {}
    number = 0
    while True:
        line = stream.readline(LINE_LIMIT + 1)
        if not line:
            break
        number += 1
        if len(line) > LINE_LIMIT and not line.endswith(b"\n"):
            raise IdError(f"{name}: line {number} is longer than {LINE_LIMIT // 1024 // 1024} MiB; "
                          "is this the right file?")
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        if text.startswith(b"{"):
            try:
                document = json.loads(text)
            except (ValueError, RecursionError):
                raise IdError(f"{name}: line {number} starts like JSON but is not valid JSON") from None
            for found_id in _ids_in(document):
                found[found_id] = None
        else:
            try:
                word = text.decode("utf-8")
            except UnicodeDecodeError:
                raise IdError(f"{name}: line {number} is not UTF-8 text") from None
            if not _PLAIN_ID.fullmatch(word):
                raise IdError(f"{name}: line {number} is not a generation ID (one ID a line, like gen-abc123)")
            if API_KEY.match(word):
                raise IdError(f"{name}: line {number} looks like an API key, not a generation ID; keys are read "
                              "from the environment only (rotate one that was written to a file)")
            found[word] = None
        if len(found) > MAX_IDS:
            raise IdError(f"{name}: more than {MAX_IDS:,} IDs; for a whole account's history use the "
                          "Activity export instead")
    return list(found)


def _ids_in(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 32:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str) and _GENERATION_ID.fullmatch(item):
                yield item
            elif isinstance(item, (dict, list)):
                yield from _ids_in(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _ids_in(item, depth + 1)


def check_ids(ids: Iterable[str]) -> list[str]:
    """IDs given as arguments: each checked, repeats dropped."""
    result = list(dict.fromkeys(ids))
    for one in result:
        if API_KEY.match(one):
            raise IdError("an argument looks like an API key, not a generation ID; keys are read from the "
                          "environment only (and one typed on a command line is worth rotating)")
        if not _PLAIN_ID.fullmatch(one):
            raise IdError(f"{one[:80]!r} is not a generation ID (they look like gen-abc123)")
    if len(result) > MAX_IDS:
        raise IdError(f"more than {MAX_IDS:,} IDs; for a whole account's history use the Activity export instead")
    return result


# --- one generation ----------------------------------------------------------------------------

def parse_generation(reply: Any, asked: str) -> Generation:
    """The generation in a reply ({"data": {...}}), or RequestFailed("malformed") saying what is wrong."""
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, dict):
        raise RequestFailed("malformed", f"the reply for generation {asked} has no \"data\" object")

    def wrong(field: str, should: str) -> RequestFailed:
        return RequestFailed("malformed", f"the reply for generation {asked} has a {field} that is not {should}")

    if data.get("id") != asked:
        raise wrong("\"id\"", f"the ID asked for ({asked})")
    cost = as_decimal(data.get("total_cost"))
    if cost is None:
        raise wrong("\"total_cost\"", "a non-negative number")
    created_at = parse_time(data.get("created_at")) if data.get("created_at") is not None else None
    if data.get("created_at") is not None and (created_at is None or not isinstance(data["created_at"], str)):
        raise wrong("\"created_at\"", "an ISO 8601 time")
    text = {}
    for field in ("model", "provider_name", "finish_reason", "native_finish_reason"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise wrong(f"\"{field}\"", "text")
        text[field] = value[:200] if value else value
    counts = {}
    for field in ("tokens_prompt", "tokens_completion"):
        value = data.get(field)
        counts[field] = as_count(value)
        if value is not None and counts[field] is None:
            raise wrong(f"\"{field}\"", "a whole number")
    switches = {}
    for field in ("cancelled", "streamed", "is_byok"):
        value = data.get(field)
        if value is not None and not isinstance(value, bool):
            raise wrong(f"\"{field}\"", "true, false or null")
        switches[field] = value
    generation = Generation(asked, created_at, text["model"], text["provider_name"], text["finish_reason"],
                            text["native_finish_reason"], counts["tokens_prompt"], counts["tokens_completion"],
                            cost, switches["cancelled"], switches["streamed"], switches["is_byok"], ())
    return generation._replace(flags=flags_for(generation))


def flags_for(generation: Generation) -> tuple[str, ...]:
    """The FLAGS a generation earns; see docs/evidence.md for the rules behind each."""
    flags = []
    finish = (generation.finish_reason or "").strip().lower()
    if finish == "error":
        flags.append("error-finish")
    # Zero Completion Insurance: no output tokens and a blank or error finish reason are not
    # charged for token usage (auxiliary services such as web search may still be).
    if generation.tokens_completion == 0 and finish in ("", "error") and generation.total_cost > 0:
        flags.append("zero-completion-billed")
    if generation.cancelled and generation.total_cost > 0:
        flags.append("cancelled-billed")
    return tuple(flags)


# --- many generations ---------------------------------------------------------------------------

def look_up(ids: list[str], api_key: str, base_url: str = OPENROUTER_API_URL,
            concurrency: int = DEFAULT_CONCURRENCY, policy: Policy = Policy(),
            progress: Optional[Callable[[int, int], None]] = None) -> Lookup:
    """Look every ID up, at most ``concurrency`` at a time, and keep their order.

    A rejected key or an unreachable API stops the run (RequestFailed, fatal); any other
    failure is recorded for its ID and the rest go on. ``progress(done, total)`` is called
    from this thread as look-ups finish."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise EvidenceError(f"the concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}")
    headers = {"authorization": f"Bearer {api_key}", "accept": "application/json",
               "user-agent": "refundadvisor (evidence generations)"}
    results: dict[str, Any] = {}
    with JsonClient(base_url, headers, api_key, policy, connections=concurrency) as client:

        def one(generation_id: str) -> Generation:
            what = f"generation {generation_id}"
            return parse_generation(client.get_json("/generation", {"id": generation_id}, what), generation_id)

        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="refundadvisor-lookup")
        queue = iter(ids)
        pending: dict[Any, str] = {}
        try:
            while True:
                # a bounded queue: memory stays small however many IDs there are
                for generation_id in queue:
                    pending[executor.submit(one, generation_id)] = generation_id
                    if len(pending) >= 2 * concurrency:
                        break
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    generation_id = pending.pop(future)
                    try:
                        results[generation_id] = future.result()
                    except RequestFailed as error:
                        if error.fatal:
                            raise
                        results[generation_id] = Failure(generation_id, error.kind, str(error))
                if progress is not None:
                    progress(len(results), len(ids))
        finally:
            # after a fatal error or Ctrl-C: no new requests, waits cut short; closing the
            # client (leaving the with) ends the requests still in flight
            client.stop()
            executor.shutdown(wait=False, cancel_futures=True)
    generations = [results[one_id] for one_id in ids if isinstance(results.get(one_id), Generation)]
    failures = [results[one_id] for one_id in ids if isinstance(results.get(one_id), Failure)]
    return Lookup(generations, failures)


# --- the document -------------------------------------------------------------------------------

def generation_row(generation: Generation) -> dict[str, Any]:
    return {
        "id": generation.id,
        "created_at": utc_text(generation.created_at),
        "model": generation.model,
        "provider": generation.provider,
        "finish_reason": generation.finish_reason,
        "native_finish_reason": generation.native_finish_reason,
        "tokens_prompt": generation.tokens_prompt,
        "tokens_completion": generation.tokens_completion,
        "total_cost": generation.total_cost,
        "cancelled": generation.cancelled,
        "streamed": generation.streamed,
        "is_byok": generation.is_byok,
        "flags": list(generation.flags),
    }


def document(lookup: Lookup, base_url: str = OPENROUTER_API_URL) -> dict[str, Any]:
    """The versioned evidence document (Decimals and datetimes left for common.to_json)."""
    generations = lookup.generations
    times = sorted(generation.created_at for generation in generations if generation.created_at is not None)
    flagged = [generation for generation in generations if generation.flags]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "source": {"request": f"GET {base_url}/generation?id=...", "docs": DOCS_URL},
        "generations": [generation_row(generation) for generation in generations],
        "totals": {
            "asked": len(generations) + len(lookup.failures),
            "found": len(generations),
            "failed": len(lookup.failures),
            "first_at": utc_text(times[0]) if times else None,
            "last_at": utc_text(times[-1]) if times else None,
            "span_seconds": int((times[-1] - times[0]).total_seconds()) if times else None,
            "tokens_prompt": sum(generation.tokens_prompt or 0 for generation in generations),
            "tokens_completion": sum(generation.tokens_completion or 0 for generation in generations),
            "total_cost": sum((generation.total_cost for generation in generations), Decimal(0)),
            "flagged": len(flagged),
            "flagged_cost": sum((generation.total_cost for generation in flagged), Decimal(0)),
            "currency": CURRENCY,
        },
        "flags": {
            flag: {
                "meaning": meaning,
                "count": sum(1 for generation in flagged if flag in generation.flags),
                "cost": sum((generation.total_cost for generation in flagged if flag in generation.flags),
                            Decimal(0)),
                "ids": [generation.id for generation in flagged if flag in generation.flags],
            }
            for flag, meaning in FLAGS.items()
        },
        "errors": [failure._asdict() for failure in lookup.failures],
    }


CSV_COLUMNS = ("id", "created_at_utc", "model", "provider", "finish_reason", "native_finish_reason",
               "tokens_prompt", "tokens_completion", "total_cost_usd", "cancelled", "streamed", "flags")


def csv_rows(evidence: dict[str, Any]) -> Iterator[list[Any]]:
    """The attachment's rows (after CSV_COLUMNS), from the document."""
    for row in evidence["generations"]:
        yield [row["id"], row["created_at"], row["model"], row["provider"], row["finish_reason"],
               row["native_finish_reason"], row["tokens_prompt"], row["tokens_completion"], row["total_cost"],
               row["cancelled"], row["streamed"], " ".join(row["flags"])]
