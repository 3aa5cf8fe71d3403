"""The case library: real, public refund requests with a known outcome, run through the rules.

A case file (YAML) holds an ``agreement`` mapping (which bands agree with which outcome: data,
not code) and a list of ``cases``, each with the facts as refundadvisor's answers, the moment the
user asked (``now``) and what support did (``outcome``). Each case is assessed on the same path
as ``check``, ``batch`` and the rule files' own tests (``advisor.advise`` on parsed answers), and
its band is compared with its outcome. Pure: no CLI, no terminal, no history.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from .facts import shown_value
from .rules import read as safeyaml

CASE_FILE_LIMIT = 1024 * 1024  # a few hundred cases at most; more is a mistake
CASE_KEYS = ("id", "source", "date", "platform", "facts", "now", "outcome", "note")
FILE_KEYS = ("agreement", "cases", "about")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SOURCE = re.compile(r"^https://\S+$")


class CaseFileError(Exception):
    """A case file that cannot be used: one sentence saying where and how to fix it."""


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    date: str
    platform: str
    facts: dict
    now: datetime
    outcome: str
    note: str
    path: str
    line: int


@dataclass(frozen=True)
class CaseFile:
    path: str
    agreement: dict[str, tuple[str, ...]]  # outcome -> the bands that agree with it
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class CaseResult:
    case: Case
    band: Optional[str]  # None when the case could not be assessed
    score: Optional[int]
    agrees: bool
    error: Optional[str] = None


@dataclass
class CaseReport:
    results: list[CaseResult] = field(default_factory=list)
    bands: tuple[str, ...] = ()  # in the rule files' order, best first
    outcomes: tuple[str, ...] = ()  # in the case files' order

    @property
    def agreed(self) -> int:
        return sum(result.agrees for result in self.results)

    @property
    def errors(self) -> list[CaseResult]:
        return [result for result in self.results if result.error is not None]

    def agreement(self) -> float:
        """The share of cases whose band agrees with their outcome, in percent (0 for no cases)."""
        return 100.0 * self.agreed / len(self.results) if self.results else 0.0

    def platforms(self) -> dict[str, tuple[int, int]]:
        """Per platform, in order of appearance: (cases, agreed)."""
        counts: dict[str, list[int]] = {}
        for result in self.results:
            entry = counts.setdefault(result.case.platform, [0, 0])
            entry[0] += 1
            entry[1] += result.agrees
        return {name: (total, agreed) for name, (total, agreed) in counts.items()}

    def table(self) -> dict[str, dict[str, int]]:
        """How many cases of each outcome got each band (band -> outcome -> count); the cases that
        could not be assessed are counted under the band 'error'."""
        table = {band: {outcome: 0 for outcome in self.outcomes} for band in (*self.bands, "error")}
        for result in self.results:
            row = table.setdefault(result.band or "error", {outcome: 0 for outcome in self.outcomes})
            row[result.case.outcome] = row.get(result.case.outcome, 0) + 1
        return table


def case_files(paths: Iterable[str]) -> list[str]:
    """The case files named: a folder stands for its *.yaml files, in name order."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(name for name in os.listdir(path) if name.endswith((".yaml", ".yml")))
            if not names:
                raise CaseFileError(f"{path}: the folder holds no case files (*.yaml)")
            found.extend(os.path.join(path, name) for name in names)
        else:
            found.append(path)
    return found


def load_case_file(path: str) -> CaseFile:
    """Read and check one case file strictly; raises CaseFileError naming the file and line."""
    try:
        document = safeyaml.load(path, what="case file", limit=CASE_FILE_LIMIT)
    except safeyaml.YamlProblem as problem:
        raise CaseFileError(problem.format()) from None
    data = document.data

    def where(ypath: tuple) -> str:
        mark = document.mark(ypath)
        return f"{path}:{mark.line}:{mark.column}"

    if not isinstance(data, dict):
        raise CaseFileError(f"{where(())}: a case file is a mapping with 'agreement:' and 'cases:' "
                            "(see docs/rules.md, 'The case library')")
    for key in data:
        if key not in FILE_KEYS:
            raise CaseFileError(f"{where((key,))}: unknown key {key!r}; a case file has {', '.join(FILE_KEYS)}")
    agreement = _agreement(data.get("agreement"), where)
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise CaseFileError(f"{where(('cases',))}: 'cases:' must be a non-empty list of cases")
    seen: dict[str, int] = {}
    read = []
    for index, item in enumerate(cases):
        case = _case(item, ("cases", index), where, agreement, path, document.mark(("cases", index)).line)
        if case.id in seen:
            raise CaseFileError(f"{where(('cases', index, 'id'))}: duplicate case id {case.id!r} "
                                f"(first at line {seen[case.id]})")
        seen[case.id] = case.line
        read.append(case)
    return CaseFile(path, agreement, tuple(read))


def _agreement(value: Any, where: Callable[[tuple], str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise CaseFileError(f"{where(('agreement',))}: 'agreement:' must map each outcome to the bands that agree "
                            "with it, e.g. 'refunded: [very-likely, likely]'")
    agreement = {}
    for outcome, bands in value.items():
        if not isinstance(outcome, str) or not _ID.match(outcome):
            raise CaseFileError(f"{where(('agreement', outcome))}: the outcome {outcome!r} must be a lower-case id")
        if not isinstance(bands, list) or not bands or not all(isinstance(band, str) for band in bands):
            raise CaseFileError(f"{where(('agreement', outcome))}: the bands that agree with {outcome!r} must be a "
                                "non-empty list of band ids")
        agreement[outcome] = tuple(bands)
    return agreement


def _case(item: Any, ypath: tuple, where, agreement, path: str, line: int) -> Case:
    if not isinstance(item, dict):
        raise CaseFileError(f"{where(ypath)}: each case is a mapping with {', '.join(CASE_KEYS)}")
    for key in item:
        if key not in CASE_KEYS:
            raise CaseFileError(f"{where(ypath + (key,))}: unknown key {key!r}; a case has {', '.join(CASE_KEYS)}")
    missing = [key for key in CASE_KEYS if item.get(key) in (None, "")]
    if missing:
        raise CaseFileError(f"{where(ypath)}: the case is missing {', '.join(missing)}")
    for key in ("id", "source", "date", "platform", "now", "outcome", "note"):
        if not isinstance(item[key], str):
            raise CaseFileError(f"{where(ypath + (key,))}: {key} must be text (quote it)")
    checks = (
        ("id", _ID, "a lower-case id of letters, digits and dashes"),
        ("source", _SOURCE, "the https:// address of the public request"),
        ("date", _DATE, "the date of the request as YYYY-MM-DD"),
    )
    for key, pattern, meaning in checks:
        if not pattern.match(item[key]):
            raise CaseFileError(f"{where(ypath + (key,))}: {key} {shown_value(item[key])} is not {meaning}")
    if "\n" in item["note"].strip():
        raise CaseFileError(f"{where(ypath + ('note',))}: the note must be one line")
    if item["outcome"] not in agreement:
        raise CaseFileError(f"{where(ypath + ('outcome',))}: outcome {item['outcome']!r} is not one of "
                            f"{', '.join(agreement)} (the file's 'agreement:')")
    if not isinstance(item["facts"], dict):
        raise CaseFileError(f"{where(ypath + ('facts',))}: facts must be a mapping of answers keys to values")
    try:
        now = _moment(item["now"])
    except ValueError:
        from .facts import MOMENTS_SHOWN

        raise CaseFileError(f"{where(ypath + ('now',))}: now {shown_value(item['now'])} is not a date and time "
                            f"in the years {MOMENTS_SHOWN} (2026-04-25T10:00:00Z)") from None
    return Case(item["id"], item["source"], item["date"], item["platform"].strip().lower(),
                {str(key): value for key, value in item["facts"].items()}, now, item["outcome"],
                item["note"].strip(), path, line)


def _moment(text: str) -> datetime:
    """A case's moment in UTC; ValueError for text that is no date or a date outside the years
    refundadvisor works with (year 1 at +14:00 would leave the calendar on the way to UTC)."""
    from .facts import in_range

    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    try:
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(text) from None
    if not in_range(moment):
        raise ValueError(text)
    return moment


def run_case(case: Case, ruleset, agreement: dict[str, tuple[str, ...]]) -> CaseResult:
    """Assess one case as `check` would, and say whether its band agrees with its outcome."""
    from .advisor import advise
    from .facts import FactError, MissingFacts, parse_answers

    try:
        assessment = advise(ruleset, parse_answers(ruleset, case.facts, case.now), case.now, trace=False)
    except MissingFacts as error:
        return CaseResult(case, None, None, False, f"missing facts: {', '.join(error.names)}")
    except FactError as error:
        return CaseResult(case, None, None, False, f"{error.fact}: {error}")
    band = assessment.band.id
    return CaseResult(case, band, assessment.score, band in agreement[case.outcome])


def run(files: Iterable[CaseFile], ruleset_for: Callable[[str], Any]) -> CaseReport:
    """Run every case of every file with its platform's rule set (``ruleset_for(name)``, which
    raises CaseFileError for an unknown platform); a band named in an agreement that the rules lack
    is an error."""
    report = CaseReport()
    outcomes: dict[str, None] = {}
    seen: dict[str, Case] = {}  # a case counted twice (a file named twice, an id reused) would inflate the figure
    for case_file in files:
        outcomes.update(dict.fromkeys(case_file.agreement))
        for case in case_file.cases:
            if case.id in seen:
                first = seen[case.id]
                raise CaseFileError(f"{case.path}:{case.line}: case {case.id!r} is already in the run "
                                    f"({first.path}:{first.line}); name each file once and give each case its own id")
            seen[case.id] = case
            try:
                ruleset = ruleset_for(case.platform)
            except CaseFileError as error:
                raise CaseFileError(f"{case.path}:{case.line}: {error}") from None
            known = [band.id for band in ruleset.bands]
            if not report.bands:
                report.bands = tuple(known)
            for outcome, bands in case_file.agreement.items():
                unknown = [band for band in bands if band not in known]
                if unknown:
                    raise CaseFileError(f"{case_file.path}: agreement for {outcome!r} names {', '.join(unknown)}, "
                                        f"not a band of the {case.platform} rules ({', '.join(known)})")
            report.results.append(run_case(case, ruleset, case_file.agreement))
    report.outcomes = tuple(outcomes)
    return report


def percent(agreed: int, total: int) -> str:
    return f"{100.0 * agreed / total:.0f}%" if total else "-"


def report_document(report: CaseReport, paths: list[str], minimum: Optional[float], schema_version: str) -> dict:
    """The case run as one JSON document (docs/json.md)."""
    return {
        "schema_version": schema_version,
        "files": paths,
        "cases": len(report.results),
        "agreed": report.agreed,
        "agreement": round(report.agreement(), 1),
        "min_agreement": minimum,
        "platforms": [{"platform": name, "cases": total, "agreed": agreed, "agreement": round(100.0 * agreed / total, 1)}
                      for name, (total, agreed) in report.platforms().items()],
        "table": report.table(),
        "results": [{"id": r.case.id, "platform": r.case.platform, "source": r.case.source, "date": r.case.date,
                     "outcome": r.case.outcome, "band": r.band, "score": r.score, "agrees": r.agrees,
                     "error": r.error, "note": r.case.note, "where": f"{r.case.path}:{r.case.line}"}
                    for r in report.results],
    }


def report_text(report: CaseReport, verbose: bool = False) -> str:
    """Agreement per platform, the band-against-outcome table and every case that disagrees."""
    lines = ["Agreement between the verdict's band and what support did", ""]
    width = max([len(name) for name in report.platforms()] + [len("all")])
    lines.append(f"  {'platform':<{width}}  cases  agree  share")
    for name, (total, agreed) in report.platforms().items():
        lines.append(f"  {name:<{width}}  {total:>5}  {agreed:>5}  {percent(agreed, total):>5}")
    lines.append(f"  {'all':<{width}}  {len(report.results):>5}  {report.agreed:>5}  "
                 f"{percent(report.agreed, len(report.results)):>5}")
    lines += ["", "Band against outcome (cases)", ""]
    table = report.table()
    band_width = max(len(band) for band in table)
    cells = [max(len(outcome), len("agree")) for outcome in report.outcomes]  # as wide as the counts above
    lines.append("  " + " " * band_width + "  " + "  ".join(f"{o:>{w}}" for o, w in zip(report.outcomes, cells)))
    for band, row in table.items():
        if band == "error" and not any(row.values()):
            continue
        lines.append(f"  {band:<{band_width}}  " + "  ".join(f"{row.get(o, 0):>{w}}" for o, w in zip(report.outcomes, cells)))
    shown = [r for r in report.results if verbose or not r.agrees]
    if shown:
        lines += ["", "Every case" if verbose else "Disagreements", ""]
        for r in shown:
            mark = "ok  " if r.agrees else "MISS"
            got = f"error: {r.error}" if r.error else f"{r.band} ({r.score})"
            lines.append(f"  {mark} {r.case.id} [{r.case.platform}] outcome {r.case.outcome}, band {got}")
            lines.append(f"       {r.case.note}")
            lines.append(f"       {r.case.source}")
    return "\n".join(lines)
