"""From an evidence document to facts for the verdict (pure: no I/O, no clock).

The lead wires this into ``check`` and ``draft``; nothing here knows the CLI or the rule file.
"""

import math
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Mapping, Optional

from .common import EvidenceError, money_text, parse_time, utc_text

ATTACHMENT_COLUMNS = ("id", "time_utc", "model", "finish_reason", "cost_usd", "why")
ATTACHMENT_ROWS = 200  # a draft attachment lists the first rows; the CSV (--csv) holds them all


def evidence_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """Facts for the verdict from an evidence document (``openrouter-generations``,
    ``response-log``, ``openai-usage`` or ``anthropic-usage``, schema_version "1"), as parsed
    from the JSON the commands print (numbers as int/float) or as built in memory (Decimals).

    Returns a dict with only the keys that are known:

    - ``amount`` (Decimal, USD, >= 0): what the evidence says was billed for the disputed part.
      When there are failed or flagged items (generations flagged error-finish,
      zero-completion-billed or cancelled-billed; log lines that errored yet were billed) it is
      their total cost: the platform-error case. Otherwise, for a log with a runaway window, the
      window's cost; otherwise the total cost of everything in the document.
    - ``amount_basis``: which of those it is: "flagged", "runaway-window" or "total".
    - ``charged_at`` (str): the first request of the items the amount covers, ISO 8601 in UTC
      with a Z (e.g. "2026-11-29T14:30:05Z"); absent when no time is known.
    - ``usage_span_days`` (Decimal >= 0): from the first to the last of those requests, in days,
      rounded up to 0.01 day; absent when no time is known.
    - ``evidence`` (list of str): evidence kinds now in hand, ids of the rule files' ``evidence``
      fact: "request-ids" (generation or request ids are listed), "logs" (a look-up or log
      was read), "timestamps" (exact request times), "error-messages" (error bodies were seen).
    - ``suggested_cause`` (str): "platform-error" when failed items were billed,
      "runaway-script" when a runaway window or a request loop was found; a hint for the user
      to confirm, never a fact to assume.
    - ``note`` (str): one sentence for people, e.g. "3.42 USD, the cost of 57 failed generations".
    - ``attachment`` (dict): {"columns": ATTACHMENT_COLUMNS, "rows": [[...], ...],
      "more": N} for a draft: the disputed items (at most ATTACHMENT_ROWS rows; ``more`` counts
      the rest), each row (id, time_utc, model, finish_reason, cost_usd as text, why).
    - ``currency``: "USD".

    Raises EvidenceError for a document of another kind or version.
    """
    if not isinstance(document, Mapping) or document.get("schema_version") != "1":
        raise EvidenceError("not an evidence document of schema_version 1 (from 'refundadvisor evidence ... --json')")
    kind = document.get("kind")
    if kind == "openrouter-generations":
        return _from_generations(document)
    if kind == "response-log":
        return _from_log(document)
    if kind in ("openai-usage", "anthropic-usage"):
        return _from_usage(document)
    raise EvidenceError(f"unknown evidence document kind {str(kind)[:40]!r}")


def _decimal(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal(0)
    return Decimal(value) if isinstance(value, (int, Decimal, str)) else Decimal(0)


def _span_days(first: Optional[datetime], last: Optional[datetime]) -> Optional[Decimal]:
    if first is None or last is None:
        return None
    days = Decimal((last - first).total_seconds()) / Decimal(86400)
    return days.quantize(Decimal("0.01"), rounding=ROUND_CEILING)


def _timed(amount: Decimal, basis: str, times: list[datetime]) -> dict[str, Any]:
    facts: dict[str, Any] = {"amount": amount, "amount_basis": basis, "currency": "USD"}
    if times:
        facts["charged_at"] = utc_text(min(times))
        facts["usage_span_days"] = _span_days(min(times), max(times))
    return facts


def _cost_text(amount: Decimal) -> str:
    return f"{amount:.6f}".rstrip("0").rstrip(".") if amount else "0"


def _from_generations(document: Mapping[str, Any]) -> dict[str, Any]:
    rows = list(document.get("generations") or [])
    flagged = [row for row in rows if row.get("flags")]
    chosen, basis = (flagged, "flagged") if flagged else (rows, "total")
    amount = sum((_decimal(row.get("total_cost")) for row in chosen), Decimal(0))
    times = [moment for moment in (parse_time(row.get("created_at")) for row in chosen) if moment is not None]
    facts = _timed(amount, basis, times)
    facts["evidence"] = ["request-ids", "logs"] + (["timestamps"] if times else [])
    if flagged:
        facts["suggested_cause"] = "platform-error"
        count = len(flagged)
        facts["note"] = (f"{money_text(amount)}, the cost of {count} failed generation{'s' if count != 1 else ''} "
                         f"(of {len(rows)} looked up)")
    else:
        facts["note"] = f"{money_text(amount)}, the cost of the {len(rows)} generation{'s' if len(rows) != 1 else ''} looked up"
    shown = chosen[:ATTACHMENT_ROWS]
    facts["attachment"] = {
        "columns": list(ATTACHMENT_COLUMNS),
        "rows": [[row.get("id"), row.get("created_at"), row.get("model"), row.get("finish_reason"),
                  _cost_text(_decimal(row.get("total_cost"))), " ".join(row.get("flags") or [])] for row in shown],
        "more": len(chosen) - len(shown),
    }
    return facts


def _from_log(document: Mapping[str, Any]) -> dict[str, Any]:
    billed = document.get("billed_errors") or {}
    runaway = document.get("runaway")
    totals = document.get("totals") or {}
    items = list(billed.get("items") or [])
    evidence = ["logs"]
    if billed.get("count"):
        amount = _decimal(billed.get("cost"))
        times = [moment for moment in (parse_time(item.get("at")) for item in items) if moment is not None]
        facts = _timed(amount, "flagged", times)
        facts["suggested_cause"] = "platform-error"
        count = billed["count"]
        facts["note"] = f"{money_text(amount)}, the cost of {count} failed request{'s' if count != 1 else ''} that were billed"
        rows = [[item.get("id"), item.get("at"), item.get("model"), item.get("finish_reason"),
                 _cost_text(_decimal(item.get("cost"))), item.get("message") or item.get("reason")]
                for item in items[:ATTACHMENT_ROWS]]
        more = count - len(rows)
    elif runaway:
        amount = _decimal(runaway.get("cost"))
        times = [moment for moment in (parse_time(runaway.get("start")), parse_time(runaway.get("end")))
                 if moment is not None]
        facts = _timed(amount, "runaway-window", times)
        facts["suggested_cause"] = "runaway-script"
        facts["note"] = (f"{money_text(amount)}, the cost of {runaway.get('requests')} requests from "
                         f"{runaway.get('start')} to {runaway.get('end')}, "
                         f"{runaway.get('times_baseline')} times the usual rate")
        rows = [["", runaway.get("start"), "", "", _cost_text(amount),
                 f"runaway window: {runaway.get('requests')} requests in {runaway.get('minutes')} minutes"]]
        more = 0
    else:
        amount = _decimal(totals.get("cost"))
        times = [moment for moment in (parse_time((document.get(point) or {}).get("at"))
                                       for point in ("first_request", "last_request")) if moment is not None]
        facts = _timed(amount, "total", times)
        facts["note"] = f"{money_text(amount)}, the cost of the {totals.get('requests', 0)} requests in the log"
        rows, more = [], 0
    if document.get("repeats") and "suggested_cause" not in facts:
        facts["suggested_cause"] = "runaway-script"
    if any(item.get("id") for item in items) or (document.get("first_request") or {}).get("id"):
        evidence.append("request-ids")
    if document.get("first_request"):
        evidence.append("timestamps")
    if totals.get("errors"):
        evidence.append("error-messages")
    facts["evidence"] = evidence
    facts["attachment"] = {"columns": list(ATTACHMENT_COLUMNS), "rows": rows, "more": max(0, more)}
    return facts


def _from_usage(document: Mapping[str, Any]) -> dict[str, Any]:
    totals = document.get("totals") or {}
    amount = _decimal(totals.get("cost"))
    days = [bucket for bucket in document.get("cost_buckets") or [] if _decimal(bucket.get("cost"))]
    times = [moment for moment in (parse_time(bucket.get("start")) for bucket in days) if moment is not None]
    facts = _timed(amount, "total", times)
    if times:  # a daily bucket spans its whole day
        last_end = max(moment for moment in (parse_time(bucket.get("end")) for bucket in days) if moment is not None)
        facts["usage_span_days"] = _span_days(min(times), last_end)
    facts["evidence"] = ["logs", "timestamps"] if times else ["logs"]
    if document.get("runaway"):
        facts["suggested_cause"] = "runaway-script"
    platform = "OpenAI" if document.get("kind") == "openai-usage" else "Anthropic"
    facts["note"] = (f"{money_text(amount)}, the cost {platform}'s cost report shows from "
                     f"{(document.get('range') or {}).get('since')} to {(document.get('range') or {}).get('until')}")
    facts["attachment"] = {
        "columns": list(ATTACHMENT_COLUMNS),
        "rows": [["", bucket.get("start"), "", "", _cost_text(_decimal(bucket.get("cost"))), "daily cost"]
                 for bucket in days[:ATTACHMENT_ROWS]],
        "more": max(0, len(days) - ATTACHMENT_ROWS),
    }
    return facts
