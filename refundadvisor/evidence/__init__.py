"""Evidence from the platform's own records: generation look-ups, response logs, usage reports.

The engine side of ``refundadvisor evidence``: no Typer here (the commands live in
``refundadvisor/cli/evidence.py``), and httpx is imported only by the modules that make
requests, so other commands start as fast as before. Each reader returns a versioned JSON
document; ``facts.evidence_facts`` turns any of them into facts for the verdict.
"""

from .common import SCHEMA_VERSION, EvidenceError

__all__ = ["SCHEMA_VERSION", "EvidenceError"]
