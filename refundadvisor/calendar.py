"""Deadlines as calendar reminders (`check --ics FILE`), written with the icalendar library.

icalendar is imported only here, and this module only when --ics is given: no other command
pays for it at start-up.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Optional

from .engine import Assessment


def _reminder_before(seconds_left: float) -> timedelta:
    """How long before the deadline to remind: a day for long windows, less for short ones."""
    if seconds_left > 3 * 86400:
        return timedelta(days=1)
    if seconds_left > 6 * 3600:
        return timedelta(hours=2)
    return timedelta(hours=0.5)


def deadlines_ics(assessment: Assessment) -> Optional[str]:
    """An iCalendar file with one event (and a reminder) per open deadline; None if none is open."""
    from icalendar import Alarm, Calendar, Event

    ruleset = assessment.ruleset
    now = assessment.facts.now
    open_ones = [deadline for deadline in assessment.deadlines if not deadline.closed]
    if not open_ones:
        return None
    calendar = Calendar()
    calendar.add("prodid", "-//refundadvisor//deadlines//EN")
    calendar.add("version", "2.0")
    charge = assessment.facts.charge
    stamp = (now or charge.at).astimezone(timezone.utc).replace(microsecond=0)
    for deadline in open_ones:
        closes = deadline.closes_at.astimezone(timezone.utc).replace(microsecond=0)
        event = Event()
        event.add("uid", f"{deadline.id}-{int(closes.timestamp())}-{ruleset.platform}@refundadvisor")
        event.add("dtstamp", stamp)
        event.add("summary", f"{ruleset.title}: {deadline.what}")
        if deadline.approximate:  # a date, not a moment: an all-day event on that day
            event.add("dtstart", closes.date())
            event.add("dtend", closes.date() + timedelta(days=1))
        else:
            event.add("dtstart", closes - timedelta(minutes=15))
            event.add("dtend", closes)
        event.add("description", f"{deadline.what}. Closes {'about ' if deadline.approximate else ''}"
                                 f"{closes.strftime('%Y-%m-%d' if deadline.approximate else '%Y-%m-%d %H:%M UTC')}. "
                                 f"Verdict: {assessment.band.label} ({assessment.score}/{ruleset.score_max}). "
                                 "From refundadvisor, a heuristic guide: support decides.")
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Soon: {deadline.what}")
        left = (deadline.closes_at - now).total_seconds() if now is not None else 86400.0 * 7
        alarm.add("trigger", -_reminder_before(left))
        event.add_component(alarm)
        calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")
