"""A reader holding the warehouse while a run writes, and a run killed part-way (real processes)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly_refresh
from llmplan.scenario import Scenario
from tests.conftest import DATA, ROOT
from tests.helpers import file_sha, table_contents

HOLDER = r"""
import json, os, sys, time, duckdb
path, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
held = duckdb.connect(path, read_only=True)            # a user holding the file open all along
first = held.sql("SELECT count(*) FROM meta.pipeline_runs").fetchall()[0][0]
open(out + ".ready", "w").close()
end = time.time() + seconds
while not os.path.exists(out + ".stop") and time.time() < end:
    time.sleep(0.05)
again = held.sql("SELECT count(*) FROM meta.pipeline_runs").fetchall()[0][0]
plans = held.sql("SELECT count(*) FROM latest_plans").fetchall()[0][0]
json.dump({"first": first, "again": again, "plans": plans}, open(out, "w"))
"""

# A process polling with fresh connections. (Within one process DuckDB shares the database
# instance between connections to the same path, so a process that keeps one connection open
# keeps seeing that snapshot; this one closes each connection.)
READER = r"""
import json, os, sys, time, duckdb
path, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
obs, end, last = [], time.time() + seconds, False
open(out + ".ready", "w").close()
while time.time() < end and not last:
    last = os.path.exists(out + ".stop")                   # one more look after the run finished
    try:
        with duckdb.connect(path, read_only=True) as c:   # a fresh reader: sees whole runs only
            runs = c.sql("SELECT count(*) FROM meta.pipeline_runs").fetchall()[0][0]
            plans = c.sql("SELECT count(*) FROM latest_plans").fetchall()[0][0]
            obs.append([runs, plans])
    except duckdb.Error as e:
        obs.append(["error", str(e)])
    time.sleep(0.05)
json.dump({"obs": obs}, open(out, "w"))
"""


@pytest.fixture
def warehouse(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock"))
    wh = tmp_path / "w.duckdb"
    nightly_refresh(warehouse=str(wh), data_dir=str(data), reports_dir=str(tmp_path / "reports"))
    return wh, data, tmp_path


SMALL = Scenario(targets=["1B", "7B"], accelerators=["H100-80GB"], cluster_sizes=[64], policies=["chinchilla"],
                 mixture={"en": 1.0})


def test_readers_never_block_the_run_nor_see_half_a_run(warehouse):
    wh, data, tmp = warehouse
    out, held = tmp / "reader.json", tmp / "holder.json"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(wh), str(held), "300"])
    reader = subprocess.Popen([sys.executable, "-c", READER, str(wh), str(out), "300"])
    cli = subprocess.Popen([str(Path(sys.executable).with_name("duckdb")), "-readonly", "-csv", str(wh)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while not (Path(str(out) + ".ready").exists() and Path(str(held) + ".ready").exists()) and time.time() < deadline:
            time.sleep(0.1)
        result = nightly_refresh(scenario=SMALL, warehouse=str(wh), data_dir=str(data), reports_dir=str(tmp / "reports"))
        assert result["status"] == "succeeded"
        cli_out, _ = cli.communicate("SELECT count(*) AS n FROM meta.pipeline_runs;\n", timeout=30)
    finally:
        for f in (out, held):
            Path(str(f) + ".stop").touch()
        reader.wait(timeout=60)
        holder.wait(timeout=60)
        cli.kill()
    h = json.loads(held.read_text())
    assert h["first"] == h["again"] == 1 and h["plans"] > 0    # the held connection keeps its whole snapshot
    seen = json.loads(out.read_text())
    assert seen["obs"] and all(o[0] != "error" for o in seen["obs"]), seen["obs"][:5]
    assert {o[0] for o in seen["obs"]} <= {1, 2} and 2 in {o[0] for o in seen["obs"]}
    assert all(o[1] > 0 for o in seen["obs"])                  # never a run without its plans
    assert cli_out.split() == ["n", "1"]                       # the CLI held the old file throughout
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM meta.pipeline_runs").fetchall()[0][0] == 2


RUNNER = r"""
import sys
from flows.nightly import nightly_refresh
from llmplan.scenario import Scenario
nightly_refresh(scenario=Scenario(targets=["2B"], accelerators=["A100-80GB"], cluster_sizes=[32], mixture={"en": 1.0}),
                warehouse=sys.argv[1], data_dir=sys.argv[2], reports_dir=sys.argv[3])
"""


def test_a_run_killed_part_way_leaves_the_previous_state_and_the_next_run_succeeds(warehouse):
    from prefect.settings import PREFECT_API_URL

    wh, data, tmp = warehouse
    before_sha, before = file_sha(wh), table_contents(wh)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(wh), str(data), str(tmp / "reports")], cwd=ROOT, env=env)
    staging = wh.with_name(f"{wh.name}.tmp-{proc.pid}")
    deadline = time.time() + 120
    while not staging.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert staging.exists(), "the run never started writing"
    time.sleep(0.5)                                             # well inside ingest/fit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert file_sha(wh) == before_sha and table_contents(wh) == before
    result = nightly_refresh(scenario=SMALL, warehouse=str(wh), data_dir=str(data), reports_dir=str(tmp / "reports"))
    assert result["status"] == "succeeded"
    assert not staging.exists()                                 # the killed run's copy was cleaned up
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM meta.pipeline_runs").fetchall()[0][0] == 2
