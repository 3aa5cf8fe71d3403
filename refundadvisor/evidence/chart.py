"""Terminal charts with Rich alone: a bar per time bucket, and a one-line sparkline.

Readable at a glance and without colour: the bars are block characters, and the buckets inside
a runaway window carry a marker as well as a colour.
"""

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional, Sequence

BLOCKS = " ▏▎▍▌▋▊▉█"
SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float, top: float, width: int) -> str:
    """A horizontal bar of ``width`` cells at most, in eighths of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """The values squeezed into ``width`` characters (each the highest of its share), ▁ to █."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [max(values[int(index * size):max(int((index + 1) * size), int(index * size) + 1)])
                  for index in range(width)]
    top = max(values)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(" " if value <= 0 else SPARKS[min(len(SPARKS) - 1, int(value / top * (len(SPARKS) - 1) + 0.5))]
                   for value in values)


def _label(start: str, step: int) -> str:
    moment = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(timezone.utc)
    if step >= 86400:
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%m-%d %H:%M}"


def timeline_table(timeline: dict[str, Any], window: Optional[dict[str, Any]] = None, width: int = 32,
                   unit: str = "requests"):
    """A Rich table: one row per bucket with its time (UTC), a bar, the count, cost and errors."""
    from rich.table import Table
    from rich.text import Text

    step = timeline["bucket_seconds"]
    buckets = timeline["buckets"]
    top = max((bucket["requests"] for bucket in buckets), default=0)
    title = {60: "minute", 300: "5 minutes", 900: "15 minutes", 3600: "hour", 10800: "3 hours",
             21600: "6 hours", 86400: "day", 604800: "week"}.get(step, f"{step // 60} minutes")
    table = Table(title=f"{unit.capitalize()} per {title} (UTC)", title_justify="left", box=None,
                  show_edge=False, pad_edge=False)
    table.add_column("from", no_wrap=True)
    table.add_column(unit, no_wrap=True, min_width=width)
    table.add_column("count", justify="right", no_wrap=True)
    has_cost = any(bucket.get("cost") for bucket in buckets)
    has_errors = any(bucket.get("errors") for bucket in buckets)
    if has_cost:
        table.add_column("cost USD", justify="right", no_wrap=True)
    if has_errors:
        table.add_column("errors", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    low, high = (window["start"], window["end"]) if window else (None, None)
    for bucket in buckets:
        start = bucket["start"]
        end = _plus(start, step)
        inside = low is not None and start < high and end > low
        style = "bold red" if inside else None
        row = [_label(start, step), Text(bar(bucket["requests"], top, width), style=style or "cyan"),
               f"{bucket['requests']:,}"]
        if has_cost:
            row.append(_cost(bucket.get("cost")))
        if has_errors:
            row.append(f"{bucket['errors']:,}" if bucket.get("errors") else "")
        row.append(Text("◀", style="bold red") if inside else "")
        table.add_row(*row)
    return table


def _plus(start: str, seconds: int) -> str:
    from datetime import timedelta

    moment = datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _cost(value: Any) -> str:
    if not value:
        return ""
    return f"{Decimal(str(value)):.4f}"
