"""The support-request draft: a factual, polite message built from the assessment.

Its wording comes from the rule file's ``draft`` section and from the fired rules'
``draft_lines`` and ``draft_notes``; what the user has not told us is never claimed, only asked
for with a ``[[...]]`` placeholder. Composing decides what to say; ``as_text`` and
``as_markdown`` only lay it out.
"""

import re
from decimal import Decimal
from typing import NamedTuple, Optional

from .engine import Assessment
from .facts import ChargeTime
from .redact import mask

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Draft(NamedTuple):
    subject: str
    notes: tuple[str, ...]  # advice for the user, not part of the message
    greeting: str
    account: tuple[str, ...]
    summary: str
    request: str
    attached_heading: str
    attached: tuple[str, ...]
    to_gather_heading: str
    to_gather: tuple[str, ...]
    closing: tuple[str, ...]
    masked: int  # API keys removed from what the user wrote


def compose(assessment: Assessment, summary: Optional[str] = None, attachment: Optional[dict] = None) -> Draft:
    """The draft for an assessed charge, with the user's own account of it when given."""
    ruleset = assessment.ruleset
    template = ruleset.draft
    if template is None:
        raise ValueError(f"the rule file {ruleset.path} has no draft section")
    masked = 0
    if summary is not None:
        summary, masked = mask(summary.strip())
    fired = [rule for rule in ruleset.rules if rule.id in {reason.rule for reason in assessment.reasons}]

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda match: _show(assessment, match.group(1)), text)

    account = tuple(fill(line) for line in template.account if _about_this_charge(assessment, line)) + tuple(
        dict.fromkeys(fill(line) for rule in fired for line in rule.draft_lines))
    body = " ".join(account)
    attached, to_gather = [], []
    for entry in assessment.checklist:
        item = ruleset.checklist[entry.id]
        if entry.id == template.summary_item and summary:
            continue  # the user's own account is in the message itself
        if entry.have:
            attached.append(item.item)
            continue
        placeholder = f"[[{item.placeholder or item.item}]]"
        # asked for once: the summary's own placeholder, or a line of the account, already asks
        if entry.id != template.summary_item and placeholder not in body:
            to_gather.append(placeholder)
    if attachment and attachment.get("rows"):
        attached.append(_table(attachment))
    return Draft(
        subject=fill(template.subject),
        notes=tuple(dict.fromkeys(note for rule in fired for note in rule.draft_notes)),
        greeting=fill(template.greeting),
        account=account,
        summary=summary or "[[what happened, in your own words: when you noticed it and what you did]]",
        request=fill(template.requests[assessment.outcome.id]),
        attached_heading=template.attached,
        attached=tuple(attached),
        to_gather_heading=template.to_gather,
        to_gather=tuple(to_gather),
        closing=tuple(fill(line) for line in template.closing),
        masked=masked,
    )


def _table(attachment: dict) -> str:
    """The looked-up requests as a plain-text table (from an evidence document), for the message."""
    rows = [list(map(str, attachment["columns"]))] + [["" if cell is None else str(cell) for cell in row]
                                                      for row in attachment["rows"]]
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    more = f"\n  ... and {attachment['more']} more (the CSV from 'refundadvisor evidence --csv' has them all)" \
        if attachment.get("more") else ""
    return "The requests in question, from the platform's own records:\n  " + "\n  ".join(lines) + more


def _about_this_charge(assessment: Assessment, line: str) -> bool:
    """Whether a template line fits the charge: a line naming a fact that does not apply to it (its
    ask_when is false, e.g. a payment method for usage) is left out rather than claimed, and so is
    a line that states a single fact the user never gave (a default is not something to assert)."""
    from .facts import is_relevant

    facts = assessment.ruleset.facts
    values = assessment.facts.values
    named = [name for name in _PLACEHOLDER.findall(line) if name in facts]
    if len(named) == 1 and assessment.facts.origin.get(named[0]) == "default":
        return False
    return all(is_relevant(facts[name], values) for name in named)


def _show(assessment: Assessment, name: str) -> str:
    """A fact (or title, currency, since) as it reads in a sentence; a placeholder if unknown."""
    ruleset = assessment.ruleset
    values = assessment.facts.values
    if name == "title":
        return ruleset.title
    if name == "currency":
        return ruleset.money_currency(values)
    if name == "since":
        hours = values.get("hours_since_charge")
        return "[[how long after the charge]]" if hours is None else _duration(hours)
    value = values.get(name)
    if value is None:
        return f"[[{name.replace('_', ' ')}]]"
    spec = ruleset.facts.get(name)
    if isinstance(value, ChargeTime):
        moment = value.at.strftime("%Y-%m-%d %H:%M UTC")
        return moment if value.time_known else f"{value.at.astimezone().date().isoformat()} (time of day not known)"
    if spec is not None and spec.choices:
        labels = {choice.id: choice.label for choice in spec.choices}
        if isinstance(value, tuple):
            return ", ".join(labels[item] for item in value) or "none"
        return labels.get(value, str(value))
    if isinstance(value, Decimal) and spec is not None and spec.unit:
        return f"{value:.2f}"
    return str(value)


def _duration(hours: float) -> str:
    if hours < 1:
        return "less than an hour"
    if hours < 48:
        return f"{int(hours)} hour{'s' if int(hours) != 1 else ''}"
    return f"{int(hours // 24)} days"


def as_text(draft: Draft) -> str:
    """The draft as plain text: the notes first (if any), then the message to send."""
    lines: list[str] = []
    if draft.notes:
        lines += ["Before you send this:"] + [f"- {note}" for note in draft.notes] + ["", "-" * 60, ""]
    lines += [f"Subject: {draft.subject}", "", draft.greeting, ""]
    lines += [" ".join(draft.account), "", draft.summary, "", draft.request, ""]
    if draft.attached:
        lines += [draft.attached_heading] + [f"- {item}" for item in draft.attached] + [""]
    if draft.to_gather:
        lines += [draft.to_gather_heading] + [f"- {item}" for item in draft.to_gather] + [""]
    lines += list(draft.closing)
    return "\n".join(lines) + "\n"


def as_markdown(draft: Draft) -> str:
    """The draft as Markdown: notes as a quote, the subject as a heading, lists as lists."""
    lines: list[str] = []
    if draft.notes:
        lines += ["> **Before you send this:**"] + [f"> - {note}" for note in draft.notes] + [""]
    lines += [f"## {draft.subject}", "", draft.greeting, ""]
    lines += [" ".join(draft.account), "", draft.summary, "", draft.request, ""]
    if draft.attached:
        lines += [f"**{draft.attached_heading}**", ""] + [f"- {item}" for item in draft.attached] + [""]
    if draft.to_gather:
        lines += [f"**{draft.to_gather_heading}**", ""] + [f"- {item}" for item in draft.to_gather] + [""]
    lines += ["  \n".join(draft.closing)]
    return "\n".join(lines) + "\n"


def placeholders(text: str) -> list[str]:
    """Every [[...]] placeholder left in a draft's text."""
    return re.findall(r"\[\[(.+?)\]\]", text)


def body_text(draft: Draft) -> str:
    """The message to send, without its subject and without the notes for the user."""
    lines = [draft.greeting, "", " ".join(draft.account), "", draft.summary, "", draft.request, ""]
    if draft.attached:
        lines += [draft.attached_heading] + [f"- {item}" for item in draft.attached] + [""]
    if draft.to_gather:
        lines += [draft.to_gather_heading] + [f"- {item}" for item in draft.to_gather] + [""]
    lines += list(draft.closing)
    return "\n".join(lines) + "\n"


def draft_document(draft: Draft) -> dict:
    """The draft as a structured document for `draft --json` (docs/json.md)."""
    from .render import SCHEMA_VERSION

    body = body_text(draft)
    return {
        "schema_version": SCHEMA_VERSION,
        "subject": draft.subject,
        "body": body,
        "notes": list(draft.notes),
        "attached": list(draft.attached),
        "to_gather": [item[2:-2] if item.startswith("[[") and item.endswith("]]") else item for item in draft.to_gather],
        "placeholders": list(dict.fromkeys(placeholders(draft.subject + "\n" + body))),
    }
