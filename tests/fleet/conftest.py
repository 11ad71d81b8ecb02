"""Fixtures for the fleet tests: one namespace-built fleet per session (see fleetlib.py)."""
import pytest

from . import fleetlib


@pytest.fixture(scope="session")
def fleet_session():
    fleet = fleetlib.start_fleet()
    fleetlib.report(f"FLEET setup: prefix={fleet.prefix} binary='{fleet.version}' database={fleet.database}")
    try:
        yield fleet
    finally:
        fleetlib.stop_fleet(fleet)


@pytest.fixture
def fleet(fleet_session):
    """The fleet, healed and healthy (a test that failed half-way must not break the next)."""
    fleet_session.ensure_ready()
    return fleet_session


def pytest_terminal_summary(terminalreporter):
    if fleetlib.FIGURES:
        terminalreporter.section("fleet figures")
        for line in fleetlib.FIGURES:
            terminalreporter.write_line(line)
