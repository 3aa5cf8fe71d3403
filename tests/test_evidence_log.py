"""The response-log reader: the runaway window to the minute, repeats, billed errors, broken lines, the chart."""

from __future__ import annotations

import io
import json
import random
from decimal import Decimal

from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.evidence.chart import bar, sparkline
from refundadvisor.evidence.facts import evidence_facts
from refundadvisor.evidence.logread import read_log

runner = CliRunner()
DAY = 1764547200  # 2025-12-01T00:00:00Z
LOOP_START = DAY + 14 * 3600 + 3 * 60 + 27  # 14:03:27


def response(gen_id: str, created: int, prompt: int = 1234, completion: int = 80, cost: float = 0.002,
             finish: str | None = "stop", model: str = "openai/gpt-4o") -> dict:
    return {"id": gen_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "x"}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion, "cost": cost}}


def runaway_day() -> list[str]:
    """A normal day of sparse traffic (150 requests at random times, varied prompts) with one
    request repeated every second for an hour from 14:03:27."""
    chance = random.Random(14)
    items = []
    for number in range(150):
        moment = DAY + chance.randrange(86400)
        items.append((moment, response(f"gen-day{number}", moment, prompt=chance.randrange(50, 3000), cost=0.0012)))
    for second in range(3600):
        items.append((LOOP_START + second, response(f"gen-loop{second}", LOOP_START + second)))
    items.sort(key=lambda item: item[0])
    return [json.dumps(item) for _, item in items]


def read(lines: list[str], **kwargs):
    return read_log(io.BytesIO(("\n".join(lines) + "\n").encode()), "test.jsonl", **kwargs)


def test_the_runaway_window_is_found_to_the_minute():
    evidence = read(runaway_day()).document()
    runaway = evidence["runaway"]
    assert (runaway["start"], runaway["end"]) == ("2025-12-01T14:03:00Z", "2025-12-01T15:04:00Z")
    assert runaway["minutes"] == 61 and runaway["hot_minutes"] == 61
    assert 3600 <= runaway["requests"] <= 3610
    assert len(evidence["windows"]) == 1
    assert evidence["baseline"]["requests_per_minute"] == 1.0
    (repeat,) = evidence["repeats"]
    assert repeat["signature"] == {"model": "openai/gpt-4o", "prompt_tokens": 1234}
    assert repeat["requests"] == 3600 and repeat["in_loop"] == 3599
    assert (repeat["first_at"], repeat["last_at"]) == ("2025-12-01T14:03:27Z", "2025-12-01T15:03:26Z")
    assert repeat["cost"] == Decimal("7.2")
    assert evidence["totals"]["requests"] == 3750 and evidence["billed_errors"]["count"] == 0
    hours = {bucket["start"][11:13]: bucket["requests"] for bucket in evidence["timeline"]["buckets"]}
    assert evidence["timeline"]["bucket_seconds"] == 3600 and len(hours) == 24 and hours["14"] > 3000


def test_a_repeat_by_request_hash_and_a_wrapped_log():
    lines = [json.dumps({"ts": f"2025-12-01T10:00:{second:02d}Z", "request_hash": "abc123",
                         "response": response(f"gen-w{second}", 0)}) for second in range(30)]
    for line in lines:  # the wrapper's ts counts when the body's created is missing
        assert '"created": 0' in line
    lines = [line.replace('"created": 0, ', "") for line in lines]
    evidence = read(lines).document()
    assert evidence["repeats"][0]["signature"] == {"request_hash": "abc123"}
    assert evidence["repeats"][0]["in_loop"] == 29
    assert evidence["first_request"] == {"at": "2025-12-01T10:00:00Z", "line": 1, "id": "gen-w0"}


def test_quiet_steady_traffic_has_no_runaway():
    lines = [json.dumps(response(f"gen-s{number}", DAY + number * 20, prompt=100 + number % 7))
             for number in range(3000)]
    evidence = read(lines).document()
    assert evidence["runaway"] is None and evidence["repeats"] == []


def test_errors_that_were_billed():
    lines = [
        json.dumps(response("gen-a", DAY + 60)),
        json.dumps(response("gen-b", DAY + 120, completion=0, finish="error", cost=0.0031)),
        json.dumps({"error": {"code": 429, "message": "Rate limit exceeded",
                              "metadata": {"error_type": "rate_limit_exceeded"}}, "timestamp": DAY + 130}),
        json.dumps(response("gen-c", DAY + 180, completion=0, finish=None, cost=0.0042)),
        json.dumps(response("gen-d", DAY + 240, completion=0, finish="error", cost=0)),
        json.dumps({"error": {"message": "Incorrect API key provided: sk-proj-" + "A" * 40,
                              "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}),
    ]
    evidence = read(lines).document()
    billed = evidence["billed_errors"]
    assert billed["count"] == 2 and billed["cost"] == Decimal("0.0073") and not billed["truncated"]
    assert [(item["line"], item["id"], item["reason"]) for item in billed["items"]] == [
        (2, "gen-b", "error"), (4, "gen-c", "zero-completion")]
    assert billed["items"][0]["at"] == "2025-12-01T00:02:00Z"
    totals = evidence["totals"]
    assert totals["errors"] == 4 and totals["untimed"] == 1 and totals["requests"] == 6
    facts = evidence_facts(evidence)
    assert facts["amount"] == Decimal("0.0073") and facts["amount_basis"] == "flagged"
    assert facts["charged_at"] == "2025-12-01T00:02:00Z" and facts["usage_span_days"] == Decimal("0.01")
    assert facts["suggested_cause"] == "platform-error"
    assert facts["evidence"] == ["logs", "request-ids", "timestamps", "error-messages"]
    assert facts["note"] == "0.0073 USD, the cost of 2 failed requests that were billed"
    assert facts["attachment"]["rows"][0] == ["gen-b", "2025-12-01T00:02:00Z", "openai/gpt-4o", "error", "0.0031",
                                              "error"]


def test_evidence_facts_for_a_runaway_log():
    facts = evidence_facts(json.loads(json.dumps(read(runaway_day()).document(), default=str)))
    assert facts["amount_basis"] == "runaway-window" and facts["suggested_cause"] == "runaway-script"
    assert facts["charged_at"] == "2025-12-01T14:03:00Z"
    assert facts["usage_span_days"] == Decimal("0.05")  # 61 minutes, rounded up
    assert facts["note"].startswith("7.2")


def test_a_broken_line_in_the_middle_is_named_and_the_rest_read():
    lines = runaway_day()
    lines.insert(1000, '{"id": "gen-cut", "created": 17645')
    seen = []
    reader = read(lines, on_broken=seen.append)
    assert [(broken.line, broken.reason[:18]) for broken in seen] == [(1001, "is not valid JSON ")]
    evidence = reader.document()
    assert evidence["lines"]["skipped"]["broken"] == 1 and evidence["totals"]["requests"] == 3750


def test_a_line_over_the_cap_is_skipped_unread():
    lines = [json.dumps(response("gen-1", DAY)), '{"pad": "' + "x" * 5000 + '"}', json.dumps(response("gen-2", DAY + 1))]
    seen = []
    evidence = read(lines, on_broken=seen.append, limit=1000).document()
    assert seen[0].line == 2 and "longer than 1,000 bytes" in seen[0].reason
    assert evidence["lines"]["skipped"]["too_long"] == 1 and evidence["totals"]["requests"] == 2
    assert evidence["last_request"]["line"] == 3


def test_stream_chunks_count_once_and_other_objects_are_ignored():
    chunk = {"id": "gen-s", "object": "chat.completion.chunk", "created": DAY, "choices": [{"delta": {}}]}
    last = {**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "cost": 0.01}}
    evidence = read([json.dumps(chunk)] * 5 + [json.dumps(last), '{"note": "deploy"}', "[1, 2]", ""]).document()
    assert evidence["totals"]["requests"] == 1 and evidence["totals"]["cost"] == Decimal("0.01")
    assert evidence["lines"]["skipped"] == {"broken": 1, "too_long": 0, "not_a_response": 1, "stream_chunks": 5}


# --- the command --------------------------------------------------------------------------------

def test_the_command_shows_the_window_the_chart_and_broken_lines(tmp_path):
    lines = runaway_day()
    lines.insert(500, "{oops")
    lines.insert(2000, '{"pad": "' + "x" * (1024 * 1024 + 10) + '"}')
    for number in range(8):
        lines.insert(3000, "not json")
    path = tmp_path / "responses.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["evidence", "log", str(path)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Runaway window: 2025-12-01T14:03:00Z to 2025-12-01T15:04:00Z (61 min)" in out
    assert "Repeated: openai/gpt-4o with 1,234 prompt tokens, 3,600 times" in out
    assert "Requests per hour (UTC)" in out and "12-01 14:00" in out and "◀" in out and "█" in out
    assert "Requests per minute, 15 min either side of the window:" in out
    warnings = result.stderr.splitlines()
    assert warnings[0] == f"refundadvisor: warning: {path}: line 501 is not valid JSON (Expecting property name " \
                          "enclosed in double quotes); skipped"
    assert warnings[1] == f"refundadvisor: warning: {path}: line 2001 is longer than 1 MiB (not read); skipped"
    assert len(warnings) == 6 and warnings[-1] == f"refundadvisor: warning: {path}: 10 broken lines skipped in all"


def test_the_command_json_and_stdin():
    result = runner.invoke(app, ["evidence", "log", "-", "--json"], input="\n".join(runaway_day()) + "\n")
    assert result.exit_code == 0 and result.stderr == ""
    evidence = json.loads(result.stdout)
    assert list(evidence) == ["schema_version", "kind", "source", "lines", "first_request", "last_request", "totals",
                              "baseline", "runaway", "windows", "repeats", "billed_errors", "timeline"]
    assert evidence["schema_version"] == "1" and evidence["kind"] == "response-log"
    assert evidence["source"] == {"name": "<stdin>"} and evidence["runaway"]["start"] == "2025-12-01T14:03:00Z"


def test_keys_in_a_log_are_masked_in_what_is_printed(tmp_path):
    key = "sk-proj-" + "Q" * 40
    line = response("gen-k", DAY, completion=0, finish="error", cost=0.5)
    line["error"] = {"message": f"bad key {key}"}
    path = tmp_path / "keys.jsonl"
    path.write_text(json.dumps(line) + "\n")
    for args in ([], ["--json"]):
        result = runner.invoke(app, ["evidence", "log", str(path), *args])
        assert result.exit_code == 0 and key not in result.stdout + result.stderr


def test_an_unreadable_file_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["evidence", "log", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and result.stderr.startswith("refundadvisor: error: FILE: cannot read")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = runner.invoke(app, ["evidence", "log", str(empty)])
    assert result.exit_code == 0 and "No responses or error bodies found" in result.stdout


def test_bars_and_sparklines():
    assert bar(0, 10, 8) == "" and bar(10, 10, 8) == "█" * 8 and bar(1, 10, 8) == "▊"
    assert sparkline([0, 1, 2, 4, 8]) == " ▂▃▅█"
    assert len(sparkline(list(range(500)), width=60)) == 60


def test_a_line_that_never_ends_stops_the_reading_instead_of_running_forever(monkeypatch):
    """`evidence log /dev/zero` once read for ever; a line that runs past the skip bound stops it."""
    import refundadvisor.evidence.logread as logread

    monkeypatch.setattr(logread, "SKIP_LIMIT", 4 * 1024 * 1024)
    broken = []

    class Endless(io.RawIOBase):
        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    reader = read_log(Endless(), "endless", on_broken=broken.append)
    assert reader.lines == 1
    assert any("reading stopped there" in str(item) for item in broken)
