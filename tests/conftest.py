import os

import pytest
import torch

# Small networks: one thread per process (see README, "Performance").
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_home():
    """The benchmark data folder, or skip with the reason when it is not configured."""
    home = os.environ.get("CAUSALMIM_DATA_HOME")
    if not home or not os.path.isdir(home):
        pytest.skip("CAUSALMIM_DATA_HOME is not set to a folder with the benchmark data")
    return home


# --------------------------------------------------------------------------- PostgreSQL
# tests/test_tuning_postgres.py records the version of the real server each test ran against
# (user property "postgresql_server"); it is listed at the end of the run, also under
# pytest-xdist (user properties travel with the test reports to the controller).
_POSTGRES_RUNS = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        for name, value in report.user_properties:
            if name == "postgresql_server":
                _POSTGRES_RUNS.append((report.nodeid, report.outcome, value))


def pytest_terminal_summary(terminalreporter):
    if _POSTGRES_RUNS:
        terminalreporter.section("PostgreSQL server")
        for nodeid, outcome, version in _POSTGRES_RUNS:
            terminalreporter.write_line(f"{outcome.upper()} {nodeid}: ran against {version}")
