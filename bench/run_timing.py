"""Wall time of `llmplan run` (cold and warm) beside an empty Prefect flow run (the orchestrator's
floor), each in a fresh process on this machine.

    .venv/bin/python bench/run_timing.py

cold: new Prefect home (temporary server migrates a fresh database) and a new warehouse.
warm, full: same home, new warehouse (every stage runs).
warm, unchanged: same home and warehouse, unchanged inputs (the run reuses the previous results).
"""

import os
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
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PREFECT_HOME": str(tmp / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
        env.pop("PREFECT_API_URL", None)
        run = [str(BIN / "llmplan"), "run", "--reports", str(tmp / "reports")]
        cold = timed(run + ["--warehouse", str(tmp / "a.duckdb")], env)
        warm_full = timed(run + ["--warehouse", str(tmp / "b.duckdb")], env)
        warm_same = timed(run + ["--warehouse", str(tmp / "b.duckdb")], env)
        empty = timed([sys.executable, "-c", EMPTY], env)
        empty2 = timed([sys.executable, "-c", EMPTY], env)
    print(f"llmplan run, cold (fresh Prefect home, new warehouse): {cold:6.1f} s")
    print(f"llmplan run, warm, full pipeline (new warehouse):      {warm_full:6.1f} s")
    print(f"llmplan run, warm, inputs unchanged (reused results):  {warm_same:6.1f} s")
    print(f"empty Prefect flow run (same home), two tries:         {empty:6.1f} s, {empty2:.1f} s")
    print(f"llmplan's own work above the orchestrator floor (warm, full): {warm_full - min(empty, empty2):.1f} s "
          f"(ratio {warm_full / min(empty, empty2):.2f}x of the floor)")


if __name__ == "__main__":
    main()
