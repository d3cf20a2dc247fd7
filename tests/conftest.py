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
os.environ["LLMPLAN_PREFECT_HOME"] = os.path.join(_home, "llmplan")   # never the checkout's own .prefect/

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped inputs that a test may break."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock"))
    return dst


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_home, ignore_errors=True)


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory) -> Path:
    """A warehouse built by the pipeline's stages directly (no Prefect): ingest → fit → plan."""
    from datetime import datetime, timezone

    from llmplan import pipeline
    from llmplan.scenario import load_scenario
    from llmplan.warehouse import transaction_file

    path = tmp_path_factory.mktemp("wh") / "w.duckdb"
    sc = load_scenario(DATA / "targets.toml")
    started = datetime.now(timezone.utc)
    run_id = pipeline.new_run_id(started)
    with transaction_file(path) as con:
        ing = pipeline.ingest(con, DATA)
        pipeline.fit(con, run_id)
        pipeline.plan(con, run_id, sc)
        fp = pipeline.fingerprint(ing["input_hashes"], sc)
        pipeline.record_run(con, run_id, started, "succeeded", ing["input_hashes"], sc, fp, run_id, None, None, {})
    return path
