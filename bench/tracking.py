"""What following runs in progress adds to the nightly refresh: 10 simulated runs with 10,000
log lines each (scripts/simulate_run_log.py, JSON Lines), against the same refresh with none.

    .venv/bin/python bench/tracking.py

Measured in one process on a warehouse fitted from the shipped data, each stage that tracking
touches, best of 3: ingest (every log is hashed as an input), the track stage (read, check,
observe, plan prior, forecast, store), and the report (cards and three charts more). The
target (issue #15): under 2 s added in all.
"""

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from llmplan import pipeline
from llmplan.scenario import load_scenario
from llmplan.warehouse import transaction_file

ROOT = Path(__file__).resolve().parent.parent
RUNS, LINES = 10, 10_000


def best(fn, n=3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, many = tmp / "base", tmp / "many"
        shutil.copytree(ROOT / "data", base, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock", "runs_in_progress"))
        shutil.copytree(base, many)
        for i in range(RUNS):
            subprocess.run([sys.executable, str(ROOT / "scripts" / "simulate_run_log.py"), str(many / "runs_in_progress" / f"run-{i}"),
                            "--params", "7B", "--tokens", "1T", "--gpus", "128", "--rate", "1.2e6", "--every", "60",
                            "--done", "0.9", "--lines", str(LINES), "--seed", str(i), "--stalls", "0.1:3,0.2:5",
                            "--deadline", "2026-12-01T00:00:00Z"], check=True, stdout=subprocess.DEVNULL)
        wh = tmp / "w.duckdb"
        sc = load_scenario(base / "targets.toml")
        with transaction_file(wh) as con:
            pipeline.ingest(con, base)
            pipeline.fit(con, "r")
            pipeline.plan(con, "r", sc)
        now = datetime.now(timezone.utc)
        out = {}
        for name, data in (("none", base), ("10 runs", many)):
            path = tmp / f"{name}.duckdb"
            shutil.copyfile(wh, path)
            with transaction_file(path) as con:
                ingest = best(lambda: pipeline.ingest(con, data))
                track = best(lambda: pipeline.track(con, "r", data, now))
            with duckdb.connect(str(path), read_only=True) as con:
                report = best(lambda: pipeline.write_report(con, "r", sc, tmp / f"reports-{name}"), n=2)
            out[name] = (ingest, track, report)
        lines = sum(1 for f in (many / "runs_in_progress").rglob("progress.jsonl") for _ in open(f))
    print(f"{RUNS} runs in progress, {lines:,} log lines in all")
    print(f"{'stage':<10}{'none':>10}{'10 runs':>10}{'added':>10}")
    added = 0.0
    for i, stage in enumerate(("ingest", "track", "report")):
        a, b = out["none"][i], out["10 runs"][i]
        added += b - a
        print(f"{stage:<10}{a:>9.2f}s{b:>9.2f}s{b - a:>+9.2f}s")
    print(f"added to the nightly refresh: {added:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
