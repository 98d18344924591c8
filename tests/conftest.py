"""Shared test hooks: the fuzz suite's counts are printed at the end of every run (make test)."""

from __future__ import annotations

import pytest

_FUZZ = pytest.StashKey[list]()


@pytest.fixture
def fuzz_report(request) -> list[str]:
    """Lines the fuzz tests report; printed in the terminal summary, passed or failed."""
    return request.config.stash.setdefault(_FUZZ, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = config.stash.get(_FUZZ, [])
    if lines:
        terminalreporter.section("fuzz suite")
        for line in lines:
            terminalreporter.write_line(line)
