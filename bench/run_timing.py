"""Wall time of `llmplan run` beside an empty Prefect flow run (the orchestrator's floor), each
in a fresh process on this machine, both with the temporary Prefect server a new user gets.

    .venv/bin/python bench/run_timing.py [--repeat 3]

cold: a new Prefect home (its temporary server migrates a fresh database) and a new warehouse;
      the empty flow likewise in a new home.
warm, full: the same home, a new warehouse file each time (every stage runs: ingest, fits and
      backtests, plans, runs in progress, report).
warm, unchanged: the same home and warehouse, unchanged inputs (the run reuses the results).
Each figure is the median of --repeat runs. Targets (issue #16): warm full ≤ 1.5 × the empty
flow; cold ≤ 2 × the cold empty flow.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
EMPTY = "from prefect import flow\n@flow\ndef empty():\n    return 1\nempty()\n"


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def env(home: str) -> dict:
            e = {**os.environ, "PREFECT_HOME": str(tmp / home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
            e.pop("PREFECT_API_URL", None)
            return e
        run = [str(BIN / "llmplan"), "run", "--reports", str(tmp / "reports")]
        empty = [sys.executable, "-c", EMPTY]
        r = range(a.repeat)
        cold = [timed(run + ["--warehouse", str(tmp / f"cold{i}.duckdb")], env(f"cold-home-{i}")) for i in r]
        cold_empty = [timed(empty, env(f"cold-empty-home-{i}")) for i in r]
        timed(empty, env("home"))                   # the warm home: migrated once, not counted
        warm_full = [timed(run + ["--warehouse", str(tmp / f"warm{i}.duckdb")], env("home")) for i in r]
        warm_same = [timed(run + ["--warehouse", str(tmp / "warm0.duckdb")], env("home")) for i in r]
        warm_empty = [timed(empty, env("home")) for i in r]
    med = statistics.median
    spread = lambda xs: f"{med(xs):6.1f} s  (runs: {', '.join(f'{x:.1f}' for x in xs)})"  # noqa: E731
    print(f"llmplan run, cold (fresh Prefect home, new warehouse):  {spread(cold)}")
    print(f"empty Prefect flow run, cold (fresh Prefect home):      {spread(cold_empty)}")
    print(f"llmplan run, warm, full pipeline (new warehouse):       {spread(warm_full)}")
    print(f"llmplan run, warm, inputs unchanged (reused results):   {spread(warm_same)}")
    print(f"empty Prefect flow run, warm (same home):               {spread(warm_empty)}")
    print(f"warm full ÷ warm empty flow: {med(warm_full) / med(warm_empty):.2f}  (target ≤ 1.5); "
          f"llmplan's own work above the floor: {med(warm_full) - med(warm_empty):.1f} s")
    print(f"cold ÷ cold empty flow:      {med(cold) / med(cold_empty):.2f}  (target ≤ 2)")


if __name__ == "__main__":
    main()
