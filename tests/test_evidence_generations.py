"""Generation look-ups against a real local HTTP server: retries, limits, flags, output, and the key kept secret."""

from __future__ import annotations

import csv
import io
import json
import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.evidence.client import Policy, RequestFailed, retry_after
from refundadvisor.evidence.facts import evidence_facts
from refundadvisor.evidence.generations import IdError, document, look_up, read_ids

import evidence_server
from evidence_server import KEY

FAST = Policy(timeout=2.0, attempts=3, not_found_attempts=3, backoff=0.02, max_backoff=0.05, max_wait=2.0)
runner = CliRunner()


def lookup(server, *ids, policy=FAST, concurrency=4, key=KEY):
    return look_up(list(ids), key, server.base_url, concurrency, policy)


def cli(server, *args, key=KEY):
    env = {"OPENROUTER_API_KEY": key, "REFUNDADVISOR_API_URL": server.base_url}
    return runner.invoke(app, ["evidence", "generations", *args], env=env)


# --- the client against each kind of reply ----------------------------------------------------

def test_normal_replies_are_read_in_the_order_asked(server):
    result = lookup(server, "gen-ok-2", "gen-ok-0", "gen-ok-1")
    assert [generation.id for generation in result.generations] == ["gen-ok-2", "gen-ok-0", "gen-ok-1"]
    first = result.generations[1]
    assert first.model == "openai/gpt-4o" and first.provider == "OpenAI" and first.finish_reason == "stop"
    assert (first.tokens_prompt, first.tokens_completion) == (1200, 150)
    assert first.total_cost == Decimal("0.0015") and first.streamed is True and first.cancelled is False
    assert first.created_at.isoformat() == "2026-11-29T14:30:00.433273+00:00"
    assert first.flags == () and result.failures == []


def test_billed_failures_are_flagged(server):
    result = lookup(server, "gen-ok-0", "gen-error-1", "gen-zero-2", "gen-cancel-3")
    flags = {generation.id: generation.flags for generation in result.generations}
    assert flags == {"gen-ok-0": (), "gen-error-1": ("error-finish", "zero-completion-billed"),
                     "gen-zero-2": ("zero-completion-billed",), "gen-cancel-3": ("cancelled-billed",)}
    evidence = document(result)
    assert evidence["totals"]["flagged"] == 3
    assert evidence["totals"]["flagged_cost"] == Decimal("0.0093")
    assert evidence["totals"]["total_cost"] == Decimal("0.0108")
    assert evidence["flags"]["zero-completion-billed"]["ids"] == ["gen-error-1", "gen-zero-2"]


def test_a_rejected_key_stops_the_run_and_is_never_repeated(server):
    with pytest.raises(RequestFailed) as caught:
        lookup(server, "gen-ok-0", "gen-ok-1", key="wrong-key-Qm3vX9")
    assert caught.value.kind == "auth" and caught.value.fatal
    assert "rejected the API key (HTTP 401" in str(caught.value)
    assert "wrong-key-Qm3vX9" not in str(caught.value)


def test_not_found_is_retried_a_few_times_then_reported(server):
    result = lookup(server, "gen-missing-0")
    assert result.generations == []
    assert [(failure.id, failure.kind) for failure in result.failures] == [("gen-missing-0", "not-found")]
    assert server.seen["gen-missing-0"] == FAST.not_found_attempts


def test_a_generation_that_just_finished_is_found_after_early_404s(server):
    result = lookup(server, "gen-late-0")
    assert [generation.id for generation in result.generations] == ["gen-late-0"]
    assert server.seen["gen-late-0"] == 3


def test_429_waits_for_retry_after_in_seconds(server):
    started = time.monotonic()
    result = lookup(server, "gen-busy-0")
    assert [generation.id for generation in result.generations] == ["gen-busy-0"]
    assert time.monotonic() - started >= 0.95  # Retry-After: 1, not the 0.02 s backoff
    assert server.seen["gen-busy-0"] == 2


def test_429_waits_for_retry_after_as_an_http_date(server):
    result = lookup(server, "gen-date-0")
    assert [generation.id for generation in result.generations] == ["gen-date-0"]
    assert server.seen["gen-date-0"] == 2


def test_retry_after_reads_seconds_and_dates_and_is_capped_by_the_client():
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_long_retry_after_is_cut_to_the_cap(server):
    capped = FAST._replace(max_wait=0.2)
    started = time.monotonic()
    lookup(server, "gen-busy-1", policy=capped)
    assert time.monotonic() - started < 0.9


def test_500_then_success(server):
    result = lookup(server, "gen-flaky-0")
    assert [generation.id for generation in result.generations] == ["gen-flaky-0"]
    assert server.seen["gen-flaky-0"] == 2


def test_a_timeout_is_retried_then_reported(server):
    policy = FAST._replace(timeout=0.2, attempts=2)
    started = time.monotonic()
    result = lookup(server, "gen-hang-0", "gen-ok-1", policy=policy)
    assert time.monotonic() - started < evidence_server.HANG * 2
    assert [generation.id for generation in result.generations] == ["gen-ok-1"]
    (failure,) = result.failures
    assert failure.kind == "timeout" and "within 0.2 s (2 tries)" in failure.message


@pytest.mark.parametrize("gen_id", ["gen-malformed-0", "gen-shape-0"])
def test_a_malformed_reply_is_reported_for_its_id(server, gen_id):
    result = lookup(server, gen_id, "gen-ok-1")
    (failure,) = result.failures
    assert failure.kind == "malformed" and gen_id in failure.message
    assert len(result.generations) == 1


@pytest.mark.parametrize("gen_id", ["gen-huge-0", "gen-stream-0"])
def test_a_huge_body_is_refused_unread(server, gen_id):
    result = lookup(server, gen_id)
    (failure,) = result.failures
    assert failure.kind == "too-large" and "1,048,576-byte limit" in failure.message


def test_a_server_repeating_the_key_in_an_error_does_not_leak_it(server):
    result = lookup(server, "gen-echo-0")
    (failure,) = result.failures
    assert KEY not in failure.message and "[API key removed]" not in failure.message  # 404 messages are not shown
    with pytest.raises(RequestFailed) as caught:
        lookup(server, "gen-ok-0", key="sk-or-v1-" + "b" * 64)
    assert "sk-or-v1-" not in str(caught.value)


def test_a_thousand_lookups_stay_under_the_concurrency_limit_and_run_in_parallel(server):
    server.delay = 0.01
    ids = [f"gen-ok-{number}" for number in range(1000)]
    started = time.monotonic()
    result = lookup(server, *ids, concurrency=8)
    elapsed = time.monotonic() - started
    assert len(result.generations) == 1000 and result.failures == []
    assert [generation.id for generation in result.generations] == ids
    assert 2 <= server.max_in_flight <= 8
    sequential = 1000 * server.delay
    assert elapsed < sequential / 2, f"{elapsed:.2f} s for 1,000 look-ups"


def test_the_concurrency_limit_is_checked():
    from refundadvisor.evidence.common import EvidenceError

    with pytest.raises(EvidenceError):
        look_up(["gen-ok-0"], KEY, "http://127.0.0.1:9", concurrency=17)


def test_an_unreachable_api_stops_the_run():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RequestFailed) as caught:
        look_up(["gen-ok-0"] * 1, KEY, f"http://127.0.0.1:{port}/api/v1", 4, FAST)
    assert caught.value.kind == "network" and "cannot reach 127.0.0.1" in str(caught.value)


# --- which IDs ----------------------------------------------------------------------------------

def test_ids_one_a_line_with_comments_and_repeats():
    text = b"gen-aaa111\n\n# a comment\ngen-bbb222\r\ngen-aaa111\n"
    assert read_ids(io.BytesIO(text), "ids.txt") == ["gen-aaa111", "gen-bbb222"]


def test_ids_found_anywhere_in_a_json_lines_log():
    log = (b'{"id": "gen-one1", "choices": [], "request": {"id": "req_1"}}\n'
           b'{"response": {"id": "gen-two2", "nested": [{"id": "gen-three3"}]}, "id": 5}\n'
           b'{"error": {"code": 429}}\n')
    assert read_ids(io.BytesIO(log), "app.jsonl") == ["gen-one1", "gen-two2", "gen-three3"]


@pytest.mark.parametrize("text, says", [
    (b"gen-ok\nnot an id\n", "line 2 is not a generation ID"),
    (b'gen-ok\n{"id": \n', "line 2 starts like JSON but is not valid JSON"),
    (b"\xff\xfe\n", "line 1 is not UTF-8"),
])
def test_bad_id_files_name_the_line(text, says):
    with pytest.raises(IdError, match=says):
        read_ids(io.BytesIO(text), "ids.txt")


# --- the command --------------------------------------------------------------------------------

def test_the_command_prints_a_table_and_totals(server):
    result = cli(server, "gen-ok-0", "gen-error-1", "gen-zero-2", "gen-cancel-3")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("OpenRouter generations", "2026-11-29T14:30:00Z", "openai/gpt-4o", "OpenAI", "error-finish",
                 "zero-completion-billed", "cancelled-billed", "4 generations from 2026-11-29T14:30:00Z to "
                 "2026-11-29T14:33:00Z (3 min): 0.0108 USD in all.", "3 flagged, billed 0.0093 USD"):
        assert text in out, text
    assert result.stderr == ""


def test_the_json_document_is_versioned_and_complete(server):
    result = cli(server, "gen-ok-0", "gen-error-1", "gen-malformed-2", "--json")
    assert result.exit_code == 1  # a look-up failed; the document still comes
    evidence = json.loads(result.stdout)
    assert list(evidence) == ["schema_version", "kind", "source", "generations", "totals", "flags", "errors"]
    assert evidence["schema_version"] == "1" and evidence["kind"] == "openrouter-generations"
    assert evidence["source"]["request"] == f"GET {server.base_url}/generation?id=..."
    assert set(evidence["generations"][0]) == {
        "id", "created_at", "model", "provider", "finish_reason", "native_finish_reason", "tokens_prompt",
        "tokens_completion", "total_cost", "cancelled", "streamed", "is_byok", "flags"}
    assert evidence["totals"]["asked"] == 3 and evidence["totals"]["failed"] == 1
    assert evidence["totals"]["flagged_cost"] == 0.0031
    assert evidence["errors"] == [{"id": "gen-malformed-2", "kind": "malformed",
                                   "message": "the reply for generation gen-malformed-2 is not JSON"}]
    assert result.stderr == "refundadvisor: warning: the reply for generation gen-malformed-2 is not JSON\n"


def test_ids_from_a_file_and_stdin(server, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("gen-ok-0\ngen-ok-1\n")
    result = cli(server, "--ids-file", str(ids), "--json")
    assert [row["id"] for row in json.loads(result.stdout)["generations"]] == ["gen-ok-0", "gen-ok-1"]
    env = {"OPENROUTER_API_KEY": KEY, "REFUNDADVISOR_API_URL": server.base_url}
    result = runner.invoke(app, ["evidence", "generations", "gen-ok-5", "--ids-file", "-", "--json"],
                           input='{"id": "gen-ok-3"}\n{"id": "gen-ok-5"}\n', env=env)
    assert [row["id"] for row in json.loads(result.stdout)["generations"]] == ["gen-ok-5", "gen-ok-3"]


def test_the_csv_attachment_is_guarded_against_formulas_and_written_whole(server, tmp_path):
    folder = tmp_path / "attachments"
    folder.mkdir()
    path = folder / "generations.csv"
    result = cli(server, "gen-formula-0", "gen-error-1", "--csv", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"refundadvisor: 2 generations written to {path}\n"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows[0][:3] == ["id", "created_at_utc", "model"]
    assert rows[1][2] == "'=HYPERLINK(\"http://example.invalid\",\"x\")"
    assert rows[1][3] == "'@SUM(1+1)" and rows[1][4] == "'-2+3"
    assert rows[2][-1] == "error-finish zero-completion-billed" and rows[2][8] == "0.0031"
    assert [entry.name for entry in folder.iterdir()] == ["generations.csv"]  # no temporary file left


def test_the_key_never_appears_in_output_errors_or_files(server, tmp_path):
    path = tmp_path / "out.csv"
    outputs = []
    for args in (["gen-ok-0", "gen-error-1", "--csv", str(path)], ["gen-ok-0", "--json"], ["gen-malformed-0"]):
        result = cli(server, *args)
        outputs += [result.stdout, result.stderr]
    server.key = "another-key-entirely"
    rejected = cli(server, "gen-ok-0")  # the server repeats the rejected key in its 401 message
    server.key = KEY
    assert rejected.exit_code == 1
    assert rejected.stderr.startswith("refundadvisor: error: 127.0.0.1:")
    assert "rejected the API key (HTTP 401" in rejected.stderr and rejected.stderr.count("\n") == 1
    outputs += [rejected.stdout, rejected.stderr, path.read_text()]
    for text in outputs:
        assert KEY not in text


def test_usage_errors_exit_2(server, tmp_path):
    assert cli(server).exit_code == 2
    result = runner.invoke(app, ["evidence", "generations", "gen-ok-0"], env={"OPENROUTER_API_KEY": ""})
    assert result.exit_code == 2 and "set OPENROUTER_API_KEY" in result.stderr and "never from a flag" in result.stderr
    result = cli(server, "gen-ok-0", "--concurrency", "17")
    assert result.exit_code == 2 and "--concurrency: 17 is not between 1 and 16" in result.stderr
    result = cli(server, "--ids-file", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2 and "--ids-file: cannot read" in result.stderr
    result = cli(server, "not an id")
    assert result.exit_code == 2
    pasted = "sk-or-v1-" + "c" * 64
    result = cli(server, pasted)
    assert result.exit_code == 2 and "looks like an API key" in result.stderr and pasted not in result.stderr
    assert server.requests == 0  # nothing was sent
    result = runner.invoke(app, ["evidence", "generations", "gen-ok-0"],
                           env={"OPENROUTER_API_KEY": KEY, "REFUNDADVISOR_API_URL": "ftp://example"})
    assert result.exit_code == 1 and "REFUNDADVISOR_API_URL must be an http" in result.stderr


def test_evidence_facts_from_a_generations_document(server):
    evidence = json.loads(cli(server, "gen-ok-0", "gen-error-1", "gen-zero-2", "--json").stdout)
    facts = evidence_facts(evidence)
    assert facts["amount"] == Decimal("0.0073") and facts["amount_basis"] == "flagged"
    assert facts["charged_at"] == "2026-11-29T14:31:00Z"
    assert facts["usage_span_days"] == Decimal("0.01")
    assert facts["evidence"] == ["request-ids", "logs", "timestamps"]
    assert facts["suggested_cause"] == "platform-error"
    assert facts["note"] == "0.0073 USD, the cost of 2 failed generations (of 3 looked up)"
    assert facts["attachment"]["columns"] == ["id", "time_utc", "model", "finish_reason", "cost_usd", "why"]
    assert facts["attachment"]["rows"][0] == ["gen-error-1", "2026-11-29T14:31:00Z", "openai/gpt-4o", "error",
                                              "0.0031", "error-finish zero-completion-billed"]
    assert evidence_facts(document(lookup(server, "gen-ok-0")))["amount_basis"] == "total"


# --- into the verdict: check and draft --generations ------------------------------------------------

def test_check_and_draft_take_the_looked_up_evidence(server, tmp_path):
    looked_up = cli(server, "gen-ok-0", "gen-error-1", "gen-zero-2", "--json")
    assert looked_up.exit_code == 0, looked_up.stderr
    evidence = tmp_path / "generations.json"
    evidence.write_text(looked_up.stdout)
    args = ["--charge-type", "usage", "--cause", "platform-error", "--generations", str(evidence),
            "--now", "2026-11-30T12:00:00Z"]
    checked = runner.invoke(app, ["check", *args, "--json"])
    assert checked.exit_code == 0, checked.stderr
    document = json.loads(checked.stdout)
    flagged = json.loads(looked_up.stdout)["totals"]["flagged_cost"]
    assert document["facts"]["amount"] == flagged  # the billed cost of the two failed generations, not a guess
    assert document["facts"]["charged_at"].startswith("2026-11-29T14:31")
    assert {"request-ids", "logs"} <= set(document["facts"]["evidence"])
    assert "the cost of 2 failed generations" in checked.stderr
    drafted = runner.invoke(app, ["draft", *args])
    assert drafted.exit_code == 0, drafted.stderr
    assert "gen-error-1" in drafted.stdout and "gen-zero-2" in drafted.stdout
    assert "gen-ok-0" not in drafted.stdout  # only the requests in question
    assert "[[the generation IDs" not in drafted.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    refused = runner.invoke(app, ["check", *args[:4], "--generations", str(garbage), "--ago", "1h", "--amount", "3"])
    assert refused.exit_code == 2 and "--generations: not an evidence document" in refused.stderr
