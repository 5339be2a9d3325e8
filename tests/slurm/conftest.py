"""Measurements of the Slurm tests (test_slurm_workflow.py), printed at the end of the pytest run."""

from __future__ import annotations

import pytest

MEASURED = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def record(pytestconfig):
    """record(line): a line for the "Slurm runs measured" section of pytest's summary."""
    return pytestconfig.stash.setdefault(MEASURED, []).append


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(MEASURED, [])
    if lines:
        terminalreporter.section("Slurm runs measured")
        for line in lines:
            terminalreporter.write_line(line)
