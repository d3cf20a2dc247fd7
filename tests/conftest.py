"""Shared test setup. Prefect's home and analytics are set before anything imports Prefect."""

import os
import shutil
import tempfile
from pathlib import Path

_home = tempfile.mkdtemp(prefix="llmplan-prefect-home-")
os.environ.setdefault("PREFECT_HOME", _home)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("LLMPLAN_WAREHOUSE", None)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped inputs that a test may break."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock", "*.jsonl"))
    return dst


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_home, ignore_errors=True)
