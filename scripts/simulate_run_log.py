"""Write a SIMULATED run in progress (run.toml + progress log) — for the shipped example, for
bench/tracking.py, and to try `llmplan track`. Not a real run: steady throughput with a little
noise, stalls at given token fractions, and a loss that follows Besiroglu et al. (2024) plus noise.

    .venv/bin/python scripts/simulate_run_log.py data/runs_in_progress/simulated-example-7b \\
        --params 7B --tokens 1.4T --gpus 64 --rate 2.0e6 --start 2026-11-01T00:00:00Z \\
        --stalls 0.15:4,0.30:6 --done 0.4 --deadline 2026-11-12T00:00:00Z --seed 7
"""

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from llmplan.scaling import BESIROGLU_2024
from llmplan.units import parse_size


def simulate(params: float, tokens: float, rate: float, start: datetime, every_s: float, stalls: list[tuple[float, float]],
             done: float, seed: int, max_lines: int | None = None) -> list[dict]:
    rng = np.random.default_rng(seed)
    n = int(done * tokens / (rate * every_s)) + 1
    if max_lines:
        n = min(n, max_lines)
    dk = rate * every_s * (1 + 0.02 * rng.standard_normal(n))
    k = np.cumsum(dk)
    t = np.cumsum(dk / rate)
    for frac, hours in stalls:                                  # a stall shifts every later line
        t = t + np.where(k > frac * tokens, hours * 3600, 0.0)
    loss = BESIROGLU_2024.loss(np.full(n, params), k) + 0.08 + 0.01 * rng.standard_normal(n)
    return [{"time": (start + timedelta(seconds=float(ti))).strftime("%Y-%m-%dT%H:%M:%SZ"), "step": i + 1,
             "tokens": int(ki), "loss": round(float(li), 4)} for i, (ti, ki, li) in enumerate(zip(t, k, loss))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--params", default="7B")
    ap.add_argument("--tokens", default="1.4T")
    ap.add_argument("--accelerator", default="H100-80GB")
    ap.add_argument("--gpus", type=int, default=64)
    ap.add_argument("--rate", type=float, default=2.0e6, help="tokens/s of the whole cluster while running")
    ap.add_argument("--start", default="2026-11-01T00:00:00Z")
    ap.add_argument("--every", type=float, default=600.0, help="seconds between log lines")
    ap.add_argument("--stalls", default="0.15:4,0.30:6", help="token fraction:hours, comma-separated")
    ap.add_argument("--done", type=float, default=0.4, help="fraction of the tokens logged so far")
    ap.add_argument("--deadline", default=None)
    ap.add_argument("--lines", type=int, default=None, help="cap the log at this many lines")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    start = datetime.fromisoformat(a.start.replace("Z", "+00:00")).astimezone(timezone.utc)
    stalls = [(float(f), float(h)) for f, h in (x.split(":") for x in a.stalls.split(",") if x)]
    rows = simulate(parse_size(a.params), parse_size(a.tokens), a.rate, start, a.every, stalls, a.done, a.seed, a.lines)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    toml = ["# SIMULATED run: not a real training run. Made with:",
            "#   .venv/bin/python scripts/simulate_run_log.py " + " ".join(sys.argv[1:]),
            f'params = "{a.params}"', f'tokens = "{a.tokens}"', f'accelerator = "{a.accelerator}"', f"gpus = {a.gpus}",
            f"start = {a.start}"]
    if a.deadline:
        toml.append(f"deadline = {a.deadline}")
    toml.append(f'notes = "simulated: {a.rate:g} tokens/s while running, stalls {a.stalls}, seed {a.seed}"')
    (a.out / "run.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
    print(f"{a.out}: {len(rows)} lines")


if __name__ == "__main__":
    main()
