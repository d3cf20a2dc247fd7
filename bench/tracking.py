"""The forecast's accuracy cases, then what following runs in progress adds to the nightly refresh:
10 simulated runs with 10,000 log lines each (scripts/simulate_run_log.py, JSON Lines), against the
same refresh with none.

    .venv/bin/python bench/tracking.py            # cases, then timings
    .venv/bin/python bench/tracking.py cases      # the cases only

Cases (issue #20): the stalled run of tests/llmplan/test_tracking.py (two 4–6 h stalls in its first
40 %; target p50 within 5 % of the remaining time, truth inside p10–p90), the simulated coverage of
p10–p90 (target 70–90 %), and the steady run of tests/llmplan/test_track_views.py through
`llmplan track` (target p50 265.8–280 h left, p_on_time ≥ 0.7; deadline at 11.4 days ≤ 0.1).

Measured in one process on a warehouse fitted from the shipped data, each stage that tracking
touches, best of 3: ingest (every log is hashed as an input), the track stage (read, check,
observe, plan prior, forecast, store), and the report (cards and three charts more). The
target (issue #15): under 2 s added in all.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np

from llmplan import pipeline
from llmplan.scenario import load_scenario
from llmplan.warehouse import transaction_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS, LINES = 10, 10_000


def stalled_and_coverage() -> None:
    """The simulated cases, with the tests' own simulator (known finishes)."""
    from tests.llmplan import test_tracking as t
    from llmplan import tracking

    log, finish = t.simulate(t.ISSUE_STALLS)
    obs = tracking.observe(t.upto(log, 0.40), t.spec())
    fc = tracking.forecast(obs, t.spec(), t.PRIOR)
    rem = (finish - obs.as_of).total_seconds() / 3600
    print(f"stalled run at 40 %: truth {rem:.1f} h left; p10 {fc['hours_left_p10']:.1f}, p50 {fc['hours_left_p50']:.1f} "
          f"({fc['hours_left_p50'] / rem - 1:+.1%}), p90 {fc['hours_left_p90']:.1f}; truth inside: "
          f"{fc['eta_p10'] <= finish <= fc['eta_p90']}; interruptions still expected {fc['interruptions_expected_left']:.2f}")
    h0 = tracking.PRIOR_GPU_HOURS / 64
    for fraction in (0.05, 0.4):
        inside, errors = 0, []
        for i in range(200):
            rng = np.random.default_rng(5000 + i)
            k = rng.poisson(rng.gamma(t.LAM0 * h0, 1.0 / h0) * t.RUNNING_H)
            lg, fin = t.simulate(list(zip(rng.uniform(0, 1, k), rng.exponential(t.D0, k))), seed=i)
            o = tracking.observe(t.upto(lg, fraction), t.spec())
            f = tracking.forecast(o, t.spec(), t.PRIOR, seed=i)
            r = (fin - o.as_of).total_seconds() / 3600
            inside += f["eta_p10"] <= fin <= f["eta_p90"]
            errors.append(abs(f["hours_left_p50"] - r) / r)
        print(f"coverage at {fraction:.0%} of 200 simulated runs: {inside / 200:.1%} inside p10–p90, "
              f"median |p50 error| {np.median(errors):.2%}")


def steady(wh: Path, tmp: Path) -> None:
    """The issue's steady run through `llmplan track` on a fitted warehouse."""
    from typer.testing import CliRunner

    from llmplan.cli import app

    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    f = tmp / "steady.jsonl"
    f.write_text("".join(json.dumps({"time": (start + timedelta(seconds=600 * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                     "step": i + 1, "tokens": int(6e8 * (i + 1))}) + "\n" for i in range(72)))
    for days in (12, 11.4):
        r = CliRunner().invoke(app, ["track", "--log", str(f), "--params", "7B", "--tokens", "1T", "--gpu", "H100", "--gpus", "128",
                                     "--start", start.isoformat(), "--deadline", (start + timedelta(days=days)).isoformat(),
                                     "--now", (start + timedelta(hours=12, minutes=5)).isoformat(), "--json", "--warehouse", str(wh)])
        if r.exit_code != 0:
            raise SystemExit(r.output)
        out = json.loads(r.stdout)
        print(f"steady run, deadline {days} d after the start: p50 {out['hours_left_p50']:.1f} h left, on track "
              f"{out['on_track']}, p_on_time {out['p_on_time']:.3f}, interruptions expected {out['interruptions_expected_left']:.2f}")


def best(fn, n=3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    stalled_and_coverage()
    cases_only = sys.argv[1:] == ["cases"]
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
        started = datetime.now(timezone.utc)
        with transaction_file(wh) as con:
            ing = pipeline.ingest(con, base)
            pipeline.fit(con, "r")
            pipeline.plan(con, "r", sc)
            pipeline.record_run(con, "r", started, "succeeded", ing["input_hashes"], sc,
                                pipeline.fingerprint(ing["input_hashes"], sc), "r", None, None, {})
        steady(wh, tmp)
        if cases_only:
            return
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
