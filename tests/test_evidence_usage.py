"""OpenAI and Anthropic usage and cost reports against the local server: paging, shapes, the spike, the key."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from refundadvisor.cli import app
from refundadvisor.evidence.facts import evidence_facts

from evidence_server import ADMIN_KEY

runner = CliRunner()
START = 1764547200  # 2025-12-01T00:00:00Z
HOURS = 48
SPIKE_HOUR = 30  # 2025-12-02T06:00Z


def rfc3339(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def openai_pages(server) -> None:
    buckets = [{"object": "bucket", "start_time": START + hour * 3600, "end_time": START + (hour + 1) * 3600,
                "results": [{"object": "organization.usage.completions.result", "input_tokens": 1000,
                             "output_tokens": 200, "num_model_requests": 600 if hour == SPIKE_HOUR else 10 + hour % 3,
                             "input_cached_tokens": 0, "project_id": None, "model": None}]}
               for hour in range(HOURS)]
    path = "/v1/organization/usage/completions"
    server.admin_pages[(path, None)] = {"object": "page", "data": buckets[:24], "has_more": True,
                                        "next_page": "page_AAAA"}
    server.admin_pages[(path, "page_AAAA")] = {"object": "page", "data": buckets[24:], "has_more": False,
                                               "next_page": None}
    costs = [{"object": "bucket", "start_time": START + day * 86400, "end_time": START + (day + 1) * 86400,
              "results": [{"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"},
                           "line_item": None, "project_id": None}]}
             for day, value in ((0, 1.25), (1, 38.5))]
    server.admin_pages[("/v1/organization/costs", None)] = {"object": "page", "data": costs, "has_more": False,
                                                             "next_page": None}


def anthropic_pages(server) -> None:
    buckets = [{"starting_at": rfc3339(START + hour * 3600), "ending_at": rfc3339(START + (hour + 1) * 3600),
                "results": [{"uncached_input_tokens": 900_000 if hour == SPIKE_HOUR else 9000,
                             "cache_read_input_tokens": 100, "cache_creation": {"ephemeral_1h_input_tokens": 0,
                                                                                "ephemeral_5m_input_tokens": 50},
                             "output_tokens": 1000, "server_tool_use": {"web_search_requests": 0}, "model": None}]}
               for hour in range(HOURS)]
    server.admin_pages[("/v1/organizations/usage_report/messages", None)] = {
        "data": buckets, "has_more": False, "next_page": None}
    costs = [{"starting_at": rfc3339(START + day * 86400), "ending_at": rfc3339(START + (day + 1) * 86400),
              "results": [{"amount": amount, "currency": "USD", "cost_type": None, "model": None}]}
             for day, amount in ((0, "123.45"), (1, "9876.5"))]
    server.admin_pages[("/v1/organizations/cost_report", None)] = {"data": costs, "has_more": False, "next_page": None}


def cli(server, *args, env=None):
    return runner.invoke(app, ["evidence", "usage", *args],
                         env={"REFUNDADVISOR_API_URL": server.root_url, **(env or {})})


RANGE = ["--since", "2025-12-01", "--until", "2025-12-03"]


def test_openai_usage_pages_costs_and_the_spike(server):
    openai_pages(server)
    result = cli(server, "--platform", "openai", *RANGE, "--json", env={"OPENAI_ADMIN_KEY": ADMIN_KEY})
    assert result.exit_code == 0, result.stderr
    evidence = json.loads(result.stdout)
    assert evidence["schema_version"] == "1" and evidence["kind"] == "openai-usage"
    assert evidence["metric"] == "requests" and evidence["bucket_seconds"] == 3600 and len(evidence["buckets"]) == 48
    assert evidence["totals"]["cost"] == 39.75 and evidence["totals"]["requests"] == 600 + sum(
        10 + hour % 3 for hour in range(HOURS) if hour != SPIKE_HOUR)
    runaway = evidence["runaway"]
    assert (runaway["start"], runaway["end"], runaway["requests"]) == ("2025-12-02T06:00:00Z", "2025-12-02T07:00:00Z",
                                                                       600)
    paths = [(path, query.get("page", [None])[0], query["bucket_width"][0], query["limit"][0])
             for path, query in server.admin_paths]
    assert paths == [("/v1/organization/usage/completions", None, "1h", "168"),
                     ("/v1/organization/usage/completions", "page_AAAA", "1h", "168"),
                     ("/v1/organization/costs", None, "1d", "180")]
    assert server.admin_paths[0][1]["start_time"] == [str(START)]
    assert server.admin_paths[0][1]["end_time"] == [str(START + 2 * 86400)]
    facts = evidence_facts(evidence)
    assert facts["amount"] == Decimal("39.75") and facts["charged_at"] == "2025-12-01T00:00:00Z"
    assert facts["usage_span_days"] == Decimal("2.00") and facts["suggested_cause"] == "runaway-script"


def test_anthropic_usage_in_tokens_and_costs_in_cents(server):
    anthropic_pages(server)
    result = cli(server, "--platform", "anthropic", *RANGE, "--json", env={"ANTHROPIC_ADMIN_KEY": ADMIN_KEY})
    assert result.exit_code == 0, result.stderr
    evidence = json.loads(result.stdout)
    assert evidence["kind"] == "anthropic-usage" and evidence["metric"] == "tokens"
    assert evidence["totals"]["requests"] is None
    assert evidence["totals"]["cost"] == 99.9995  # 123.45 + 9876.5 cents
    assert evidence["runaway"]["start"] == "2025-12-02T06:00:00Z" and evidence["runaway"]["tokens"] == 901_150
    query = server.admin_paths[0][1]
    assert query["starting_at"] == ["2025-12-01T00:00:00Z"] and query["ending_at"] == ["2025-12-03T00:00:00Z"]


def test_the_human_view_draws_the_spike(server):
    openai_pages(server)
    result = cli(server, "--platform", "openai", *RANGE, env={"OPENAI_ADMIN_KEY": ADMIN_KEY})
    assert result.exit_code == 0, result.stderr
    assert "Spike: 2025-12-02T06:00:00Z to 2025-12-02T07:00:00Z: 600 requests" in result.stdout
    assert "Requests per hour (UTC)" in result.stdout and "◀" in result.stdout
    assert "2025-12-02  38.50 USD" in result.stdout


def test_a_rejected_admin_key_is_one_line_and_never_shown(server):
    openai_pages(server)
    result = cli(server, "--platform", "openai", *RANGE, env={"OPENAI_ADMIN_KEY": "wrong-admin-Pq7"})
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "rejected the API key (HTTP 401" in result.stderr
    assert "wrong-admin-Pq7" not in result.stderr + result.stdout


def test_a_malformed_report_is_a_data_error(server):
    server.admin_pages[("/v1/organization/usage/completions", None)] = {"data": [{"start_time": 5}],
                                                                        "has_more": False}
    result = cli(server, "--platform", "openai", *RANGE, env={"OPENAI_ADMIN_KEY": ADMIN_KEY})
    assert result.exit_code == 1 and "bucket without \"results\"" in result.stderr


@pytest.mark.parametrize("args, says", [
    ([], "--platform is required"),
    (["--platform", "mistral", "--since", "1d"], "'mistral' is not a platform with usage reports"),
    (["--platform", "openai"], "--since is required"),
    (["--platform", "openai", "--since", "yesterday"], "'yesterday' is not a date or time"),
    (["--platform", "openai", "--since", "2025-12-03", "--until", "2025-12-01"], "--until must be after --since"),
    (["--platform", "openai", "--since", "1d", "--bucket", "5m"], "--bucket: '5m' is not a width"),
    (["--platform", "anthropic", "--since", "1d"], "set ANTHROPIC_ADMIN_KEY"),
])
def test_usage_errors_exit_2(server, args, says):
    result = cli(server, *args, env={"OPENAI_ADMIN_KEY": ADMIN_KEY, "ANTHROPIC_ADMIN_KEY": "",
                                     "ANTHROPIC_ADMIN_API_KEY": ""})
    assert result.exit_code == 2 and says in result.stderr, result.stderr
