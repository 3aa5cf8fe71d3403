"""evidence_facts' contract, CSV cells, times and money: the small pure pieces."""

from __future__ import annotations

import csv
import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from refundadvisor.evidence.common import EvidenceError, money_text, parse_time
from refundadvisor.evidence.csvout import safe_cell, write_csv
from refundadvisor.evidence.facts import evidence_facts


@pytest.mark.parametrize("document", [{}, {"schema_version": "2", "kind": "response-log"}, [],
                                      {"schema_version": "1", "kind": "something-else"}])
def test_other_documents_are_refused(document):
    with pytest.raises(EvidenceError):
        evidence_facts(document)


def test_a_generations_document_without_flags_gives_the_total():
    document = {"schema_version": "1", "kind": "openrouter-generations", "generations": [
        {"id": "gen-a", "created_at": "2026-11-29T10:00:00Z", "model": "m", "finish_reason": "stop",
         "total_cost": 1.5, "flags": []},
        {"id": "gen-b", "created_at": "2026-11-30T22:00:00Z", "model": "m", "finish_reason": "stop",
         "total_cost": 2, "flags": []}]}
    facts = evidence_facts(document)
    assert facts["amount"] == Decimal("3.5") and facts["amount_basis"] == "total"
    assert facts["charged_at"] == "2026-11-29T10:00:00Z" and facts["usage_span_days"] == Decimal("1.50")
    assert "suggested_cause" not in facts
    assert facts["note"] == "3.50 USD, the cost of the 2 generations looked up"
    assert facts["attachment"]["more"] == 0 and len(facts["attachment"]["rows"]) == 2


def test_an_empty_log_document_gives_no_times():
    document = {"schema_version": "1", "kind": "response-log", "totals": {"cost": 0, "requests": 0},
                "billed_errors": {"count": 0}, "runaway": None, "repeats": [],
                "first_request": None, "last_request": None}
    facts = evidence_facts(document)
    assert facts["amount"] == 0 and "charged_at" not in facts and "usage_span_days" not in facts
    assert facts["evidence"] == ["logs"]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_become_text(text):
    assert safe_cell(text) == "'" + text


def test_plain_cells_are_left_alone():
    assert [safe_cell(value) for value in ("gen-1", 12, Decimal("0.0031"), None, True, "a=b")] == [
        "gen-1", "12", "0.0031", "", "true", "a=b"]


def test_write_csv_replaces_atomically_and_cleans_up_on_failure(tmp_path):
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    path = tmp_path / "out.csv"
    path.write_text("old")
    assert write_csv(str(path), ["a", "b"], [["=x", 1]]) == 1
    assert list(csv.reader(path.open(newline=""))) == [["a", "b"], ["'=x", "1"]]

    def rows():
        yield ["ok", 1]
        raise RuntimeError("the rows broke off")

    with pytest.raises(RuntimeError):
        write_csv(str(path), ["a", "b"], rows())
    assert path.read_text().startswith("a,b") and os.listdir(tmp_path) == ["out.csv"]
    with pytest.raises(EvidenceError, match="--csv: cannot write"):
        write_csv(str(tmp_path / "missing" / "out.csv"), ["a"], [])


@pytest.mark.parametrize("value, expected", [
    ("2024-07-15T23:33:19.433273+00:00", datetime(2024, 7, 15, 23, 33, 19, 433273, timezone.utc)),
    ("2024-07-15T23:33:19.4Z", datetime(2024, 7, 15, 23, 33, 19, 400000, timezone.utc)),
    ("2024-07-15 23:33:19", datetime(2024, 7, 15, 23, 33, 19, tzinfo=timezone.utc)),
    (1755800000, datetime(2025, 8, 21, 18, 13, 20, tzinfo=timezone.utc)),
    (1755800000000, datetime(2025, 8, 21, 18, 13, 20, tzinfo=timezone.utc)),
    ("yesterday", None), (True, None), (None, None),
])
def test_times(value, expected):
    assert parse_time(value) == expected


def test_money_for_people():
    assert [money_text(Decimal(text)) for text in ("3.4199", "0.0108", "0.5", "0")] == [
        "3.42 USD", "0.0108 USD", "0.50 USD", "0.00 USD"]
