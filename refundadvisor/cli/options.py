"""The options more than one command takes, declared once, and the choices of --format."""

from enum import Enum
from typing import Annotated, Optional

import typer

Opt = typer.Option


# The choices of --format and --input-format: Click rejects anything else (exit 2), naming them.
class DraftFormat(str, Enum):
    text = "text"
    markdown = "markdown"


class RowsFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


class InputFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"


# Options shared by the commands that take the facts of one charge (check, draft).
ChargeTypeOpt = Annotated[Optional[str], Opt("--charge-type", metavar="ID", help="What was charged: topup, usage or subscription.")]
AmountOpt = Annotated[Optional[str], Opt("--amount", metavar="N", help="The amount charged, in the account's currency (USD for OpenRouter), e.g. 12.50.")]
ChargedAtOpt = Annotated[Optional[str], Opt("--charged-at", metavar="WHEN", help="When: ISO 8601 date or date-time (no offset = local time), e.g. 2026-11-29T14:30.")]
AgoOpt = Annotated[Optional[str], Opt("--ago", metavar="DURATION", help="Or how long ago: 30m, 5h, 3d, 2w (or 1d12h).")]
CauseOpt = Annotated[Optional[str], Opt("--cause", metavar="ID", help="What happened, a cause id from the rule file, e.g. duplicate-charge ('refundadvisor rules show' lists them).")]
PaymentOpt = Annotated[Optional[str], Opt("--payment-method", metavar="ID", help="card, crypto or other [default: card].")]
UnusedOpt = Annotated[Optional[str], Opt("--unused", metavar="N", help="Top-ups: how much of the credits is still unused [default: the whole amount].")]
PriorOpt = Annotated[Optional[str], Opt("--prior-refunds", metavar="N", help="Refunds you asked for in the last 12 months [default: 0, or from your history].")]
SimilarOpt = Annotated[Optional[str], Opt("--similar-prior", metavar="N", help="Of those, how many for the same kind of reason [default: 0, or from your history].")]
DenialsOpt = Annotated[Optional[str], Opt("--prior-denials", metavar="N", help="Of those, how many were turned down [default: 0, or from your history].")]
Recent90Opt = Annotated[Optional[str], Opt("--requests-90d", metavar="N", help="Of those, how many in the last 90 days [default: 0, or from your history].")]
HistoryOpt = Annotated[Optional[str], Opt("--history", metavar="PATH", help="The refund history database [default: $REFUNDADVISOR_HOME/history.db, else ~/.local/share/refundadvisor/history.db].")]
NoHistoryOpt = Annotated[bool, Opt("--no-history", help="Do not read your refund history for the counts of earlier requests.")]
WarnedOpt = Annotated[Optional[bool], Opt("--warned/--not-warned", help="Whether support has warned you about refund requests [default: not warned].")]
ProfileOpt = Annotated[Optional[str], Opt("--profile", metavar="ID", help="casual, solo or team [default: solo].")]
SpanOpt = Annotated[Optional[str], Opt("--usage-span-days", metavar="N", help="Over how many days the disputed usage ran [default: 1].")]
EvidenceOpt = Annotated[Optional[str], Opt("--evidence", metavar="IDS", help="What you already have, comma-separated ids, e.g. receipts,card-statement [default: none].")]
AnswersOpt = Annotated[Optional[str], Opt("--answers", metavar="FILE", help="Facts from a YAML or JSON file ('-' for stdin), keys as in the JSON facts; flags override it.")]
NoInputOpt = Annotated[bool, Opt("--no-input", help="Never prompt; fail at once if a fact is missing.")]
RulesOpt = Annotated[Optional[str], Opt("--rules", metavar="PATH", help="The rule file [default: $REFUNDADVISOR_RULES, then ~/.config/refundadvisor/rules.yaml, then the bundled one].")]
NoColorOpt = Annotated[bool, Opt("--no-color", help="No colour (also NO_COLOR=1 or TERM=dumb).")]
NowOpt = Annotated[Optional[str], Opt("--now", metavar="WHEN", help="Evaluate as of this moment (ISO 8601), for reproducible runs.")]
PlatformOpt = Annotated[Optional[str], Opt("--platform", metavar="NAME", help="A bundled platform's rules: openrouter, anthropic or openai ('refundadvisor rules list') [default: $REFUNDADVISOR_PLATFORM, else openrouter].")]
