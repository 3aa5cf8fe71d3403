"""Renderings of an assessment: one versioned JSON document for programs, Rich for people.

The JSON side imports nothing beyond the standard library, so ``--json`` never pays for Rich.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Optional

from . import __version__
from .engine import Assessment
from .facts import normalised

# Bump on any change to the JSON document's keys or their meaning (docs/json.md).
# 2: added deadlines and refund_estimate. 3: added history. 4: rules.layers, facts_unused, history.counts.
SCHEMA_VERSION = "4"
DISCLAIMER = ("A heuristic guide grounded in published policy and in how support teams weigh "
              "requests, not a guarantee: support decides.")
SCORE_NOTE = "A heuristic score from 0 to 100, not a probability."


def assessment_document(assessment: Assessment, rules_source: str = "", explain: bool = False,
                        history: Optional[dict] = None) -> dict[str, Any]:
    """The assessment as the versioned JSON document (plain dicts and lists)."""
    ruleset = assessment.ruleset
    policy = ruleset.policy
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "refundadvisor", "version": __version__},
        "platform": {"id": ruleset.platform, "title": ruleset.title, "currency": ruleset.currency},
        "likelihood": {
            "band": assessment.band.id,
            "label": assessment.band.label,
            "score": assessment.score,
            "score_range": [ruleset.score_min, ruleset.score_max],
            "note": SCORE_NOTE,
        },
        "outcome": {"id": assessment.outcome.id, "text": assessment.outcome.text, "set_by": assessment.outcome_rule},
        "reasons": [
            {"rule": reason.rule, "effect": reason.effect, "why": reason.why, "score": reason.score,
             "cap": reason.cap, "floor": reason.floor, "outcome": reason.outcome, "sources": list(reason.sources)}
            for reason in assessment.reasons
        ],
        "limits": {
            "cap": {"value": assessment.cap.value, "rule": assessment.cap.rule} if assessment.cap else None,
            "floor": {"value": assessment.floor.value, "rule": assessment.floor.rule} if assessment.floor else None,
        },
        "checklist": [
            {"id": entry.id, "item": entry.item, "why": entry.why, "have": entry.have}
            for entry in assessment.checklist
        ],
        "next_steps": list(assessment.next_steps),
        "warnings": list(assessment.warnings),
        "deadlines": [
            {"id": deadline.id, "what": deadline.what, "closes_at": utc_text(deadline.closes_at),
             "source": deadline.source, "approximate": deadline.approximate, "closed": deadline.closed,
             "may_be_open_until": deadline.open_until.isoformat() if deadline.open_until else None}
            for deadline in assessment.deadlines
        ],
        "refund_estimate": None if assessment.estimate is None else {
            "id": assessment.estimate.id,
            "amount": money(assessment.estimate.amount),
            "currency": assessment.estimate.currency,
            "up_to": assessment.estimate.up_to,
            "note": assessment.estimate.note,
        },
        "policy": {
            "name": policy.name,
            "verified_on": policy.verified_on,
            "note": policy.note,
            "sources": [
                {"id": source.id, "title": source.title, "url": source.url, "sureness": source.sureness}
                for source in policy.sources.values()
            ],
        },
        "rules": {"path": ruleset.path, "sha256": ruleset.sha256, "chosen_by": rules_source,
                  "layers": [{"path": path, "sha256": sha} for path, sha in ruleset.layers]},
        "facts": normalised(assessment.facts),
        "fact_origins": dict(assessment.facts.origin),
        "facts_unused": list(assessment.unused_facts),
        "history": history,
        "disclaimer": DISCLAIMER,
    }
    if explain:
        document["trace"] = trace_document(assessment)
    return document


def batch_row_document(assessment: Assessment, line: int, row_id: Any = None) -> dict[str, Any]:
    """One batch row's result, built from a full assessment: the reference that the batch's
    fast path (batch.py, which joins prepared pieces) must match, checked by the tests."""
    return {
        "schema_version": SCHEMA_VERSION, "line": line, "id": row_id, "ok": True,
        "likelihood": {"band": assessment.band.id, "label": assessment.band.label, "score": assessment.score},
        "outcome": {"id": assessment.outcome.id, "set_by": assessment.outcome_rule},
        "reasons": [{"rule": reason.rule, "effect": reason.effect} for reason in assessment.reasons],
        "checklist_missing": [entry.id for entry in assessment.checklist if not entry.have],
        "warnings": list(assessment.warnings),
    }


def utc_text(moment) -> str:
    """A moment as ISO 8601 in UTC with a Z, to the second."""
    from datetime import timezone

    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def money(amount: Optional[Decimal]) -> Optional[float]:
    """A Decimal amount as a JSON number that prints exactly (12.5, never 12.4999999)."""
    return None if amount is None else float(amount)


def span(seconds: float) -> str:
    """A duration for people: '3 h 12 min', '2 d 4 h', '45 min'."""
    minutes = int(abs(seconds) // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def trace_document(assessment: Assessment) -> dict[str, Any]:
    """Every rule with each test's expectation and what it got, and the score's steps."""
    return {
        "rules": [
            {"rule": result.rule, "fired": result.fired,
             "result": {True: "true", False: "false", None: "unknown"}[result.result],
             "tests": [{"test": test.test, "got": _plain(test.got),
                        "result": {True: "true", False: "false", None: "unknown"}[test.result]}
                       for test in result.tests]}
            for result in assessment.trace
        ],
        "steps": [{"step": step.what, "score": step.score, "rule": step.rule} for step in assessment.steps],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "at"):  # a ChargeTime
        return value.at.isoformat()
    return value


def to_json(document: dict[str, Any]) -> str:
    """Serialise a document as indented JSON text."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=_plain)


# --- for people ---------------------------------------------------------------------------------

BAND_STYLES = ("bold green", "green", "yellow", "red", "bold red")


def make_console(stderr: bool = False, no_color: bool = False, width: int | None = None):
    """A Rich console honouring NO_COLOR, TERM=dumb, --no-color and non-terminals."""
    import os

    from rich.console import Console

    plain = no_color or bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
    console = Console(stderr=stderr, no_color=plain, highlight=False, width=width,
                      color_system=None if plain else "auto", emoji=False)
    console.on_broken_pipe = _broken_pipe  # Rich would exit 1; a closed pipe is not an error (exit 0)
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError


def counted(history_facts, counts: dict, skip_zero: bool = True, cause_label: str = "") -> list[str]:
    """Each count of earlier requests as the rule file words it ("2 requests in the last 12 months");
    counts of 0 after the first are left out."""
    parts = []
    for index, wanted in enumerate(history_facts):
        number = counts.get(wanted.fact)
        if number is None or (skip_zero and index and not number):
            continue
        text = wanted.says.replace("{n}", str(number)).replace("{s}", "" if number == 1 else "s")
        parts.append(f"{text} ({cause_label})" if wanted.counts == "similar" and cause_label else text)
    return parts


def history_sentence(history: dict, ruleset, cause_label: str) -> str:
    """'From your history (path): 3 requests in the last 12 months, 2 for this cause, ...'"""
    parts = counted(ruleset.history_facts, history["counts"], cause_label=cause_label)
    last = f"; the last on {history['last_asked_at'][:10]}" if history["last_asked_at"] else ""
    return f"From your history ({history['path']}): {', '.join(parts)}{last}."


COMPACT_ROWS = 24  # the summary fits one screen: 24 rows at 80 columns
COMPACT_STEPS = 3  # at most this many next steps in the summary


def band_style(ruleset, band_id: str) -> str:
    index = [band.id for band in ruleset.bands].index(band_id)
    return BAND_STYLES[min(index * len(BAND_STYLES) // max(len(ruleset.bands), 1), len(BAND_STYLES) - 1)]


def assumptions(assessment: Assessment) -> list[tuple[str, str]]:
    """The facts that were not given but taken from their defaults, where they matter: (fact, value
    as read). These are what the verdict assumed; a flag changes any of them."""
    from .facts import is_relevant

    ruleset = assessment.ruleset
    values = assessment.facts.values
    result = []
    for name, origin in assessment.facts.origin.items():
        spec = ruleset.facts.get(name)
        if origin != "default" or spec is None or not is_relevant(spec, values):
            continue
        result.append((name, shown_value(spec, values.get(name))))
    return result


def shown_value(spec, value: Any) -> str:
    """A fact's value in a few words (an id, yes/no, a number, 'none')."""
    if value is None:
        return "not known"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "at"):
        return utc_text(value.at)
    return str(value)


def contact_links(ruleset) -> list[tuple[str, str]]:
    """Where to act, from the rule file's ``contact`` section when it has one: (what, address)
    pairs such as ("billing page", "https://..."). Read defensively: absent or odd means none."""
    contact = getattr(ruleset, "contact", None)
    if contact is None:
        return []
    if hasattr(contact, "_asdict"):
        contact = contact._asdict()
    if not isinstance(contact, dict):
        return []
    links = []
    for key, value in contact.items():
        if isinstance(value, dict):  # {label: ..., url: ...} or {url: ...}
            address = value.get("url") or value.get("email") or value.get("address")
            label = value.get("label") or value.get("title") or str(key)
        else:
            address, label = value, str(key)
        if isinstance(address, str) and address.strip():
            links.append((str(label).replace("_", " "), address.strip()))
    return links


def support_address(ruleset) -> Optional[str]:
    """The support page or form to open (an http address from the contact section), if any."""
    links = contact_links(ruleset)
    for preferred in (("support", "form", "contact", "help"), ()):
        for label, address in links:
            if address.startswith(("http://", "https://")) and (
                    not preferred or any(word in label.lower() for word in preferred)):
                return address
    return None


def nearest_deadline(assessment: Assessment):
    """The open deadline that closes first, or None."""
    open_ones = [deadline for deadline in assessment.deadlines if not deadline.closed or deadline.open_until]
    return min(open_ones, key=lambda deadline: deadline.closes_at) if open_ones else None


def when_text(moment, approximate: bool) -> str:
    """A deadline's moment in UTC and, where the user's zone differs, in local time too."""
    from datetime import timezone

    utc = moment.astimezone(timezone.utc)
    if approximate:
        return utc.strftime("%Y-%m-%d")
    local = moment.astimezone()
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    if local.utcoffset() != utc.utcoffset():
        zone = local.strftime("%Z") or local.strftime("%z")
        same_day = local.date() == utc.date()
        text += f", {local.strftime('%H:%M' if same_day else '%Y-%m-%d %H:%M')} {zone} your time"
    return text


def deadline_words(deadline, now) -> str:
    """'closes in 3 h 12 min (2026-11-30 14:00 UTC, 15:00 CET your time)', 'closed 2 d ago (...)'."""
    when = when_text(deadline.closes_at, deadline.approximate)
    about = "about " if deadline.approximate else ""
    if now is None:
        return f"{about}{when}"
    left = (deadline.closes_at - now).total_seconds()
    if deadline.closed and deadline.open_until is not None:  # a date-only charge later that day
        latest = when_text(deadline.open_until, deadline.approximate)
        return f"may still be open, check now (only the date is known: it closes by {latest} at the latest)"
    if deadline.closed:
        return f"closed {about}{span(left)} ago ({when})"
    return f"closes in {about}{span(left)} ({when})"


def deadline_text(deadline, now) -> str:
    """Kept for callers of the earlier API: the deadline's words as plain text."""
    return deadline_words(deadline, now)


def _estimate_words(estimate) -> Optional[str]:
    if estimate is None:
        return None
    if estimate.amount is not None:
        return f"{'up to ' if estimate.up_to else 'about '}{estimate.amount:.2f} {estimate.currency}"
    return None


def compact_lines(assessment: Assessment, screen, history: Optional[dict] = None, full: bool = False,
                  rows: int = COMPACT_ROWS) -> list[tuple[str, str]]:
    """The verdict at a glance, as (line, style) pairs that fit ``rows`` lines at the screen's
    width: the band and score, the outcome, the main reason, what comes back, the nearest
    deadline, where to go, what to do now, what was assumed, and how to see the rest."""
    ruleset = assessment.ruleset
    style = band_style(ruleset, assessment.band.id)

    def block(text: str, label: str = "", text_style: str = "") -> list[tuple[str, str]]:
        head = f"{label} " if label else ""
        return [(line, text_style) for line in screen.wrap(head + text, "", "  ")]

    head = [(line, "bold " + style) for line in screen.wrap(
        f"Refund likelihood ({ruleset.title}): {assessment.band.label}, score {assessment.score}/{ruleset.score_max}",
        "", "  ")]
    head += block("(a heuristic score, not a probability; support decides)", text_style="dim")
    head += block(assessment.outcome.text, "Expected outcome:")
    limit = next((limit for limit in (assessment.cap, assessment.floor)
                  if limit is not None and assessment.score == limit.value), None)  # the limit that decided it
    main = next((reason for reason in assessment.reasons if limit is not None and reason.rule == limit.rule), None) or (
        max(assessment.reasons, key=lambda reason: abs(reason.score)) if assessment.reasons else None)
    reason = block(main.why, "Mainly because:") if main is not None else []
    estimate = _estimate_words(assessment.estimate)
    back = block(estimate, "Would come back:") if estimate else (
        block(assessment.estimate.note, "Would come back:") if assessment.estimate is not None else [])
    nearest = nearest_deadline(assessment)
    deadline = block(f"{nearest.what}: {deadline_words(nearest, assessment.facts.now)}", "Nearest deadline:",
                     "bold") if nearest is not None else []
    links = contact_links(ruleset)
    where = block("; ".join(f"{label} {address}" for label, address in links), "Where:") if links else []
    assumed = assumptions(assessment)
    # a flag and its value stay on one line: joined by NUL while wrapping, a space after
    assumed_block = [(line.replace("\0", " "), style_) for line, style_ in block(
        ", ".join(f"--{name.replace('_', '-')}\0{value}" for name, value in assumed),
        "Assumed (a flag changes it):", "dim")] if assumed else []
    missing = sum(1 for entry in assessment.checklist if not entry.have)
    have = len(assessment.checklist) - missing
    counts = [f"{missing} item{'s' if missing != 1 else ''} to gather" + (f" ({have} in hand)" if have else "")]
    if assessment.warnings:
        counts.append(f"{len(assessment.warnings)} warning{'s' if len(assessment.warnings) != 1 else ''}")
    tail = block(", ".join(counts) + "." + ("" if full else
                 " Run again with --full for why, the checklist, every step and the sources."), text_style="dim")
    history_block = []
    if history is not None and not full:
        history_block = block(f"From your history: {', '.join(counted(ruleset.history_facts, history['counts']))}.",
                              text_style="dim")

    def steps_block(count: int) -> list[tuple[str, str]]:
        if not count or not assessment.next_steps:
            return []
        lines = [("Do now:", "bold")]
        for number, step in enumerate(assessment.next_steps[:count], 1):
            lines += [(line, "") for line in screen.wrap(step, f"  {number}. ", "     ")]
        return lines

    fixed = head + reason + back + deadline + where + assumed_block + history_block + tail
    count = min(COMPACT_STEPS, len(assessment.next_steps))
    while count and len(fixed) + len(steps_block(count)) > rows - 1:
        count -= 1
    lines = head + reason + back + deadline + where + steps_block(count) + assumed_block + history_block + tail
    if len(lines) > rows - 1:  # a very narrow screen: keep the head, the deadline and the way out
        lines = (head + deadline + tail)[:rows - 1]
    return lines


def render_human(assessment: Assessment, screen, rules_source: str = "", explain: bool = False,
                 history: Optional[dict] = None, full: bool = False) -> None:
    """Print the assessment for a person: the verdict at a glance (one screen), then with
    ``full`` (or ``explain``) the reasons, the checklist, every step, deadlines, warnings and
    the sources with their titles and addresses."""
    full = full or explain
    for line, style in compact_lines(assessment, screen, history, full):
        screen.line(line, style)
    if not full:
        return
    ruleset = assessment.ruleset
    tick, todo, bullet = ("✓", "☐", "•") if screen.fancy else ("[x]", "[ ]", "*")
    if history is not None:
        cause = assessment.facts.values.get("cause")
        labels = {choice.id: choice.label for choice in ruleset.facts["cause"].choices} if "cause" in ruleset.facts else {}
        screen.line()
        screen.para(history_sentence(history, ruleset, labels.get(cause, str(cause))), style="dim")
    if assessment.unused_facts:
        screen.para(f"Not used by {ruleset.title}'s rules: {', '.join(assessment.unused_facts)} "
                    "(accepted, and left out of this verdict).", style="dim")

    _section(screen, "Why")
    for reason in assessment.reasons:
        label = f"{reason.score:+d}" if reason.score else "."
        limits = ", ".join(part for part in (f"cap {reason.cap}" if reason.cap is not None else "",
                                             f"floor {reason.floor}" if reason.floor is not None else "") if part)
        screen.para(f"{reason.why} [{reason.rule}{'; ' + limits if limits else ''}]", f"{label:>3} ", "    ")
    decided = [(limit, word) for limit, word in ((assessment.floor, "raised to"), (assessment.cap, "capped at"))
               if limit is not None and assessment.score == limit.value]
    for limit, word in decided[-1:]:  # the cap when both apply: it wins
        screen.para(f"The score is {word} {limit.value} by rule {limit.rule}.", "    ", style="dim")

    _section(screen, "Checklist: what to gather")
    for entry in assessment.checklist:
        mark = tick if entry.have else todo
        screen.para(f"{entry.item}. {entry.why}", f"{mark} ", " " * (len(mark) + 1))

    if assessment.next_steps:
        _section(screen, "Next steps")
        for number, step in enumerate(assessment.next_steps, 1):
            screen.para(step, f"{number:>2}. ", "    ")

    if assessment.estimate is not None:
        _section(screen, "What would come back")
        estimate = _estimate_words(assessment.estimate)
        screen.para(f"{estimate}: {assessment.estimate.note}" if estimate else assessment.estimate.note)

    if assessment.deadlines:
        _section(screen, "Deadlines")
        for deadline in assessment.deadlines:
            screen.para(f"{deadline.what}: {deadline_words(deadline, assessment.facts.now)}", f"{bullet} ", "  ",
                        style="dim" if deadline.closed else "")

    if assessment.warnings:
        _section(screen, "Warnings")
        for warning in assessment.warnings:
            screen.para(warning, "! ", "  ")

    if explain:
        render_trace(assessment, screen)

    policy = ruleset.policy
    cited = list(dict.fromkeys(source for reason in assessment.reasons for source in reason.sources))
    _section(screen, "Sources")
    screen.para(f"{policy.name}, checked {policy.verified_on}. The reasons above cite:", style="dim")
    for source_id in cited:
        source = policy.sources[source_id]
        screen.para(f"{source.title} ({source.sureness})", f"{bullet} ", "  ")
        if source.url:
            screen.line(f"  {source.url}", "dim")  # whole, never wrapped: it stays clickable
    screen.para(f"Rules: {ruleset.path} (sha256 {ruleset.sha256[:12]}, {rules_source or 'given'})", style="dim")
    screen.para(DISCLAIMER, style="italic")


def render_trace(assessment: Assessment, screen) -> None:
    """Every rule, fired or not, with each test's expectation and what it got."""
    _section(screen, "Explain: every rule")
    marks = {True: "✓", False: "✗", None: "?"} if screen.fancy else {True: "+", False: "x", None: "?"}
    for result in assessment.trace:
        screen.line(f"{'fired' if result.fired else 'not  '} {result.rule}", "bold" if result.fired else "dim")
        for test in result.tests:
            got = "nothing: the fact is not set" if test.got is None else _plain(test.got)
            screen.para(f"{marks[test.result]} {test.test}  (got {got})", "    ", "      ",
                        style="" if result.fired else "dim")
    _section(screen, "Explain: the score")
    arrow = " → " if screen.fancy else " -> "
    screen.para(arrow.join(f"{step.what}{' ' + step.rule if step.rule else ''} = {step.score}"
                           for step in assessment.steps))


def _section(screen, title: str) -> None:
    screen.line()
    screen.line(title, "bold underline")


# --- rule files: validation, tests, and a readable overview ---------------------------------------

def validation_document(path: str, sha256: str, problems, ruleset=None) -> dict[str, Any]:
    """The result of validating a rule file, for --format json."""
    errors = [problem.as_dict() for problem in problems if problem.severity == "error"]
    warnings = [problem.as_dict() for problem in problems if problem.severity == "warning"]
    counts = None
    if ruleset is not None:
        counts = {"facts": len(ruleset.facts), "rules": len(ruleset.rules), "bands": len(ruleset.bands),
                  "tests": len(ruleset.tests)}
    return {"schema_version": SCHEMA_VERSION, "path": path, "sha256": sha256, "valid": not errors,
            "errors": errors, "warnings": warnings, "counts": counts}


def validation_text(document: dict[str, Any]) -> str:
    """The result of validating a rule file, one problem a line, then a summary line."""
    lines = [_problem_line(problem) for problem in document["errors"] + document["warnings"]]
    if document["valid"]:
        counts = document["counts"]
        lines.append(f"{document['path']}: valid ({counts['facts']} facts, {counts['rules']} rules, "
                     f"{counts['bands']} bands, {counts['tests']} tests); {len(document['warnings'])} warnings")
    else:
        lines.append(f"{document['path']}: invalid; {len(document['errors'])} errors, {len(document['warnings'])} warnings")
    return "\n".join(lines)


def _problem_line(problem: dict[str, Any]) -> str:
    where = f" {problem['where']}:" if problem["where"] else ""
    return (f"{problem['path']}:{problem['line']}:{problem['column']}: {problem['severity']}[{problem['code']}]:"
            f"{where} {problem['message']}")


def test_report_document(report) -> dict[str, Any]:
    """The result of a rule file's tests, for --format json."""
    return {
        "schema_version": SCHEMA_VERSION,
        "path": report.path,
        "passed": report.passed,
        "failed": report.failed,
        "tests": [
            {"name": outcome.test.name, "line": outcome.test.line, "passed": outcome.passed,
             "failures": outcome.failures, "error": outcome.error}
            for outcome in report.outcomes
        ],
        "coverage": {"uncovered_rules": report.uncovered_rules, "uncovered_bands": report.uncovered_bands},
    }


def test_report_text(report, coverage: bool) -> str:
    """Each failing test located and explained, coverage when asked, and the closing count."""
    lines = []
    for outcome in report.outcomes:
        if outcome.passed:
            continue
        where = f"{report.path}:{outcome.test.line}:{outcome.test.column}"
        problems = [outcome.error] if outcome.error else outcome.failures
        lines.append(f"{where}: FAILED {outcome.test.name!r}")
        lines.extend(f"    {problem}" for problem in problems)
    if coverage:
        if report.uncovered_rules or report.uncovered_bands:
            if report.uncovered_rules:
                lines.append(f"rules no test exercises: {', '.join(report.uncovered_rules)}")
            if report.uncovered_bands:
                lines.append(f"bands no test reaches: {', '.join(report.uncovered_bands)}")
        else:
            lines.append("coverage: every rule fires and every band is reached in at least one test")
    lines.append(f"{report.passed} passed, {report.failed} failed")
    return "\n".join(lines)


def render_rules_show(ruleset, console) -> None:
    """The rule file as tables: facts, causes, evidence, parameters, rules and bands."""
    def table(title: str, *columns: str):
        result = literal_table(title=title, title_justify="left", title_style="bold", show_lines=False)
        for column in columns:
            result.add_column(column, overflow="fold")
        return result

    from rich.markup import escape

    policy = ruleset.policy
    from .output import plain

    console.print(f"[bold]{escape(plain(ruleset.title))}[/bold] rules ({escape(plain(ruleset.path))}), "
                  f"policy checked {policy.verified_on}")
    if len(ruleset.layers) > 1:  # the merged result of several files: say which is which
        console.print("Built from: " + " <- ".join(escape(path) for path, _sha in ruleset.layers) +
                      " (each row's 'from' names its file)")

    def origin(key: str) -> str:
        import os

        found = (ruleset.origins or {}).get(key)
        return os.path.basename(found) if found else ""

    facts = table("Facts (in the order they are asked)", "fact", "type", "default", "asked when", "from")
    for spec in ruleset.facts.values():
        default = spec.default_fact and f"= {spec.default_fact}" or (
            ("none" if spec.default == () else _show(spec.default)) if spec.has_default else "required")
        facts.add_row(spec.name, spec.type, default, "only if it applies" if spec.ask_when else "always",
                      origin(f"facts.{spec.name}"))
    console.print(facts)
    for name, spec in ruleset.facts.items():
        if spec.choices:
            choices = table(f"{name}: the ids", "id", "meaning")
            for choice in spec.choices:
                choices.add_row(choice.id, choice.label)
            console.print(choices)
    params = table("Policy parameters", "name", "value", "source", "meaning", "from")
    for param in policy.parameters.values():
        params.add_row(param.name, param.shown, param.source, param.meaning, origin(f"policy.parameters.{param.name}"))
    console.print(params)
    rules = table("Rules (in the order they apply)", "rule", "effect", "source", "why", "from")
    for rule in ruleset.rules:
        rules.add_row(rule.id, rule.effect, ", ".join(rule.sources), rule.why, origin(f"rules.{rule.id}"))
    console.print(rules)
    bands = table("Bands (first match)", "band", "scores", "default outcome")
    for band in ruleset.bands:
        bands.add_row(f"{band.id} ({band.label})", f"{band.low}-{band.high}", band.outcome or "")
    console.print(bands)


def rules_document(ruleset) -> dict[str, Any]:
    """A rule file as data, for `rules show --json`: facts, parameters, rules and bands, each with
    the file it comes from (merged with what it extends)."""
    origins = ruleset.origins or {}

    def default_of(spec) -> Any:
        if spec.default_fact:
            return {"fact": spec.default_fact}
        return list(spec.default) if isinstance(spec.default, tuple) else spec.default

    return {
        "schema_version": SCHEMA_VERSION,
        "path": ruleset.path, "sha256": ruleset.sha256, "platform": ruleset.platform, "title": ruleset.title,
        "currency": ruleset.currency, "verified_on": ruleset.policy.verified_on,
        "layers": [{"path": path, "sha256": sha} for path, sha in ruleset.layers],
        "facts": [{"name": spec.name, "type": spec.type, "question": spec.question, "help": spec.help or None,
                   "required": not spec.has_default and spec.default_fact is None,
                   "default": default_of(spec) if spec.has_default or spec.default_fact else None,
                   "asked": "only if it applies" if spec.ask_when else "always",
                   "choices": [{"id": choice.id, "label": choice.label} for choice in spec.choices]}
                  for spec in ruleset.facts.values()],
        "parameters": [{"name": param.name, "value": param.value, "source": param.source, "meaning": param.meaning}
                       for param in ruleset.policy.parameters.values()],
        "rules": [{"id": rule.id, "effect": rule.effect, "sources": list(rule.sources), "why": rule.why,
                   "from": origins.get(f"rules.{rule.id}")} for rule in ruleset.rules],
        "bands": [{"id": band.id, "label": band.label, "low": band.low, "high": band.high, "outcome": band.outcome}
                  for band in ruleset.bands],
    }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def platforms_document(rulesets: dict, default: str) -> dict[str, Any]:
    """The bundled platforms, for `rules list --format json`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "default": default,
        "platforms": [
            {"name": name, "title": ruleset.title, "currency": ruleset.currency, "policy": ruleset.policy.name,
             "verified_on": ruleset.policy.verified_on, "path": ruleset.path,
             "sources": [{"id": source.id, "title": source.title, "url": source.url, "sureness": source.sureness}
                         for source in ruleset.policy.sources.values() if source.url]}
            for name, ruleset in rulesets.items()
        ],
    }


def layout_width(stream) -> Optional[int]:
    """The width to wrap a plain-text view to: the terminal's, or $COLUMNS when set; None (one
    line per item, as written, for grep and scripts) when piped without $COLUMNS."""
    import os

    from .term import is_terminal, width_of

    columns = os.environ.get("COLUMNS", "")
    return width_of(stream) if is_terminal(stream) or (columns.isdigit() and int(columns) > 0) else None


def fitted(text: str, width: Optional[int]) -> str:
    """Each line of a view wrapped to ``width`` (none when None): continuation lines indented two
    more than their line, words never broken (a URL stays whole, so it still opens)."""
    import textwrap

    if width is None:
        return text
    out = []
    for line in text.split("\n"):
        indent = line[:len(line) - len(line.lstrip(" "))]
        hanging = indent + "  " if len(indent) + 2 < width // 2 else indent
        out += textwrap.wrap(line, width=width, initial_indent="", subsequent_indent=hanging,
                             break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(out)


def platforms_text(document: dict[str, Any], width: Optional[int] = None) -> str:
    """The bundled platforms for people: one block each, the default marked (wrapped to
    ``width`` when given)."""
    lines = []
    for platform in document["platforms"]:
        mark = " (default)" if platform["name"] == document["default"] else ""
        lines.append(f"{platform['name']}{mark}: {platform['title']}, {platform['policy']}, checked {platform['verified_on']}")
        lines += [f"    {source['title']} ({source['sureness']}) {source['url']}" for source in platform["sources"]]
    return fitted("\n".join(lines), width)


# --- the refund history -----------------------------------------------------------------------------

def history_document(path: str, platforms: dict, now) -> dict[str, Any]:
    """The history's pattern per platform, for `history --json` (and the text view)."""
    result = []
    for platform, (ruleset, entries, summaries, crossings) in platforms.items():
        by_month: dict[str, dict[str, int]] = {}
        outcomes: dict[str, int] = {}
        for entry in entries:
            month = by_month.setdefault(entry.asked_at[:7], {})
            month[entry.cause] = month.get(entry.cause, 0) + 1
            outcomes[entry.outcome] = outcomes.get(entry.outcome, 0) + 1
        returned = sum((entry.returned for entry in entries if entry.returned is not None), Decimal(0))
        result.append({
            "platform": platform,
            "title": ruleset.title if ruleset else platform,
            "requests": len(entries),
            "by_month": by_month,
            "outcomes": outcomes,
            "returned": money(returned),
            "counts": {cause: summary.counts for cause, summary in summaries.items()},
            "counted": counted([wanted for wanted in ruleset.history_facts if wanted.counts != "similar"],
                               next(iter(summaries.values())).counts, skip_zero=False) if ruleset and summaries else [],
            "would_cross": [{"cause": cause, "rule": rule.id, "effect": rule.effect, "why": rule.why}
                            for cause, rule in crossings],
        })
    return {"schema_version": SCHEMA_VERSION, "path": path, "as_of": utc_text(now), "platforms": result}


def history_text(document: dict[str, Any], width: Optional[int] = None) -> str:
    """The pattern as support would see it, for people (wrapped to ``width`` when given)."""
    if not document["platforms"]:
        return fitted(f"No requests recorded yet in {document['path']}; 'refundadvisor history add' records one.", width)
    lines = [f"Your refund requests ({document['path']}), as of {document['as_of'][:10]}:"]
    for platform in document["platforms"]:
        outcomes = ", ".join(f"{name} {count}" for name, count in platform["outcomes"].items())
        lines += ["", f"{platform['title']}: {platform['requests']} request{'s' if platform['requests'] != 1 else ''} "
                      f"({outcomes}); {platform['returned']:.2f} returned in all"]
        for month, causes in sorted(platform["by_month"].items()):
            lines.append(f"  {month}: " + ", ".join(f"{cause} {count}" for cause, count in causes.items()))
        if platform["counted"]:
            lines.append(f"  Counted now: {', '.join(platform['counted'])}.")
        for crossing in platform["would_cross"]:
            lines.append(f"  One more {crossing['cause']} request now would bring in rule {crossing['rule']} "
                         f"({crossing['effect']}): {crossing['why']}")
        if not platform["would_cross"] and platform["counted"]:
            lines.append("  One more request now would not cross any rule about earlier requests.")
    return fitted("\n".join(lines), width)


def literal_table(**options):
    """A Rich table whose cells are shown as written: a note or a rule file's text is never
    taken as markup (``[link=...]`` stays those characters, not a live link)."""
    from rich.table import Table
    from rich.text import Text

    from .output import plain

    class LiteralTable(Table):
        def add_row(self, *cells, **extra):
            super().add_row(*(Text(plain(cell)) if isinstance(cell, str) else cell for cell in cells), **extra)

    return LiteralTable(**options)


def entries_table(entries, console) -> None:
    """The recorded requests: a table on a wide terminal, one plain line each when piped or
    narrower than 60 columns (nothing cut, no padding)."""
    from .term import NARROW, Screen

    if not entries:
        console.print("No requests recorded yet.")
        return
    wide = getattr(console, "is_terminal", False) and (getattr(console, "width", 80) or 80) >= NARROW
    if not wide:
        screen = Screen(getattr(console, "file", None) or __import__("sys").stdout,
                        width=getattr(console, "width", None))
        for entry in entries:
            money_part = "" if entry.amount is None else f" {entry.amount:.2f}"
            returned = "" if entry.returned is None else f", returned {entry.returned:.2f}"
            screen.para(f"#{entry.id} {entry.asked_at[:10]} {entry.platform} {entry.cause}{money_part}: {entry.outcome}"
                        f"{returned}" + (f"; {entry.note}" if entry.note else ""), "", "  ")
        screen.flush()
        return
    table = literal_table(title=None, show_lines=False)
    for column in ("id", "asked", "platform", "cause", "outcome", "amount", "returned"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    from rich.text import Text

    from .output import plain

    # as plain Text: a note's "[link=...]" is shown, never made markup, and its colour codes
    # (black on black) removed: the table's colours are the program's
    for entry in entries:
        table.add_row(*(Text(plain(cell)) for cell in (
            str(entry.id), entry.asked_at[:10], entry.platform, entry.cause, entry.outcome,
            "" if entry.amount is None else f"{entry.amount:.2f}",
            "" if entry.returned is None else f"{entry.returned:.2f}", entry.note or "")))
    console.print(table)
