"""`fit-scaling` time: llmplan's fit (multi-start L-BFGS, bootstrap refits from each resample's own
grid starts, the identifiability check) against the fitter it replaced, measured in the same run.

    .venv/bin/python bench/scaling_fit.py [--losses svg_extracted_data.csv] [--bootstrap 200] [--repeat 3]

--losses: Epoch AI's Chinchilla replication data (epoch-research/analyzing-chinchilla@9225883,
data/svg_extracted_data.csv: 245 runs, columns "Model Size", "Training FLOP", "loss"; tokens =
FLOP / 6N), or a CSV with params, tokens, loss. Without it: 245 runs drawn from Besiroglu et al.
2024's law at sizes 4e7–1.6e10 and 5–80 tokens per parameter, 1 % log-normal noise.

Baseline (the fitter before the identifiability check, llmplan@d7c1358 llmplan/scaling.py): the
best point of the grid, L-BFGS from it and three offsets around it; every bootstrap refit one
L-BFGS run from the full-data optimum, with llmplan.scaling's objective and L-BFGS settings. It
is timed twice: as it ran (BLAS with its default threads — the issue's "earlier 5.9 s"), and
with single-threaded BLAS like fit_law now (the cost of the new fitting rules alone: 20 starts
for the data and 4 grid starts per resample instead of 1 warm start, ~10× the L-BFGS evaluations).
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from llmplan import scaling  # noqa: E402


def load(path: str | None):
    if path is None:
        rng = np.random.default_rng(0)
        n = np.exp(rng.uniform(np.log(4e7), np.log(1.6e10), 245))
        d = n * np.exp(rng.uniform(np.log(5), np.log(80), 245))
        return n, d, scaling.BESIROGLU_2024.loss(n, d) * np.exp(rng.normal(0, 0.01, 245))
    import polars as pl

    f = pl.read_csv(path)
    if "Model Size" in f.columns:
        n = f["Model Size"].to_numpy()
        return n, f["Training FLOP"].to_numpy() / (6 * n), f["loss"].to_numpy()
    return f["params"].to_numpy(), f["tokens"].to_numpy(), f["loss"].to_numpy()


def baseline_fit(params, tokens, losses, n_boot: int = 200, seed: int = 0):
    """The fitter before the check (d7c1358), with today's objective and L-BFGS settings."""
    logn, logd, logl = np.log(params), np.log(tokens), np.log(losses)
    grid = scaling.GRID[np.isin(scaling.GRID[:, 2], (-1.0, 0.0, 0.5, 1.0))]      # its e values
    best = grid[int(np.argmin([scaling._objective(x, logn, logd, logl)[0] for x in grid]))]
    starts = [best] + [best + np.array(d) for d in ((2, 2, 0, 0.1, 0.1), (-2, -2, 0, -0.1, -0.1), (0, 0, 0.3, 0, 0))]
    res = min((scaling._lbfgs(x, logn, logd, logl) for x in starts), key=lambda r: r.fun)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(params), len(params))
        draws.append(scaling._lbfgs(res.x, logn[idx], logd[idx], logl[idx]).x)
    return res.x, np.array(draws)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--losses")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n, d, loss = load(a.losses)
    print(f"{len(n)} runs from {a.losses or 'Besiroglu et al. 2024 law (synthetic)'}, {a.bootstrap} bootstrap resamples")
    scaling.fit_law(n, d, loss, n_boot=2)                     # imports and the BLAS controller, once
    t_new, t_old, t_one = [], [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        fit = scaling.fit_law(n, d, loss, n_boot=a.bootstrap)
        t_new.append(time.perf_counter() - t)
        t = time.perf_counter()
        x_old, _ = baseline_fit(n, d, loss, a.bootstrap)
        t_old.append(time.perf_counter() - t)
        t = time.perf_counter()
        with scaling._blas().limit(limits=1, user_api="blas"):
            baseline_fit(n, d, loss, a.bootstrap)
        t_one.append(time.perf_counter() - t)
    new, old, one = (float(np.median(x)) for x in (t_new, t_old, t_one))
    law = fit.law
    print(f"llmplan fit_law (multi-start, own-grid bootstrap starts, identifiability check): {new:.2f} s "
          f"(median of {a.repeat}); identifiable: {fit.identifiable}")
    print(f"baseline, the fitter before the check, as it ran (default BLAS threads):        {old:.2f} s")
    print(f"baseline with single-threaded BLAS:                                              {one:.2f} s")
    print(f"ratio llmplan / baseline as it ran: {new / old:.2f}x (issue 21's target ≤ 1.5x)")
    print(f"ratio llmplan / single-threaded baseline: {new / one:.2f}x (the new fitting rules' own cost)")
    print(f"same optimum: E {law.E:.4f} vs {math.exp(x_old[2]):.4f}, alpha {law.alpha:.4f} vs {x_old[3]:.4f}, "
          f"beta {law.beta:.4f} vs {x_old[4]:.4f}")


if __name__ == "__main__":
    main()
