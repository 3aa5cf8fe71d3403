"""Shared fixtures: every test runs with a temporary home and no user configuration."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests: a few hundred examples each in CI; HYPOTHESIS_PROFILE=thorough for a long run by hand.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("thorough", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from refundadvisor import rules as rules_module
from refundadvisor.paths import default_platform, platform_path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test reads or writes the real home, config or rule-file choice."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("_TYPER_FORCE_DISABLE_TERMINAL", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # sealed: nothing from the developer's environment reaches a test (REFUNDADVISOR_* included)
    for name in list(os.environ):
        if name.startswith("REFUNDADVISOR_"):
            monkeypatch.delenv(name)
    for name in ("NO_COLOR", "FORCE_COLOR", "GITHUB_ACTIONS", "COLUMNS", "OPENROUTER_API_KEY", "PYTHONIOENCODING",
                 "LC_ALL", "LANG"):
        monkeypatch.delenv(name, raising=False)
    import time

    time.tzset()
    yield home
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="session")
def ruleset():
    """The bundled default platform's rule set (OpenRouter)."""
    loaded, _warnings = rules_module.load(str(platform_path(default_platform())))
    return loaded


# The fake platform API of the evidence tests (tests/evidence_server.py): one server per test
# module, its recorded requests and replies reset for each test.
@pytest.fixture(scope="module")
def api():
    import evidence_server

    server, thread = evidence_server.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def server(api):
    api.reset()
    return api
