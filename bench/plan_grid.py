"""Plan-grid throughput: ≥ 100,000 plan rows in one vectorised Polars pass, against a pure-NumPy
evaluation of the same formulas measured in the same run.

    .venv/bin/python bench/plan_grid.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench._common import chain, fitted  # noqa: E402
from llmplan import memory  # noqa: E402
from llmplan.efficiency import A100_PEAK, FIXED  # noqa: E402
from llmplan.plan import build_plans  # noqa: E402
from llmplan.scaling import BESIROGLU_2024  # noqa: E402
from llmplan.scenario import Scenario  # noqa: E402


def numpy_grid(model, targets, accs, clusters, sc):
    """The chinchilla/overtrain/fixed rows with the same formulas, written directly in NumPy."""
    n = np.repeat(targets, 1)
    tok = {"chinchilla": 20 * n, "overtrain": 20 * n * sc.overtrain_factor, "fixed": np.full_like(n, 2e12)}
    N, D, P, M, PR, G = [], [], [], [], [], []
    for d in tok.values():
        nn, pp, gg = np.meshgrid(n, np.arange(len(accs)), clusters, indexing="ij")
        dd = np.broadcast_to(d[:, None, None], nn.shape)
        N.append(nn.ravel()); D.append(dd.ravel()); G.append(gg.ravel().astype(float))
        P.append(accs["peak_flops"].to_numpy()[pp.ravel()]); M.append(accs["memory_bytes"].to_numpy()[pp.ravel()])
        PR.append(accs["usd_per_hour"].fill_null(np.nan).to_numpy()[pp.ravel()])
    N, D, P, M, PR, G = map(np.concatenate, (N, D, P, M, PR, G))
    flop = 6 * N * D
    X = np.column_stack([np.ones_like(N), np.log10(N) - 9, np.log10(G) - model.centre_cluster,
                         np.full_like(N, model.year_range[1] - 2022.0), np.log10(P / A100_PEAK), np.zeros_like(N)])
    X = X[:, [FIXED.index(t) for t in model.terms]]
    b = np.array([model.beta[t] for t in model.terms])
    mean = X @ b
    hw = model.half_width(np.einsum("ij,jk,ik->i", X, model.cov, X), np.full_like(N, model.sigma2_group))
    hours = flop / (P * 3600)
    h50 = hours / 10 ** mean
    h10, h90 = hours / 10 ** (mean + hw), hours / 10 ** (mean - hw)
    days = h50 / G / 24
    cost = h50 * PR
    per_gpu, need = memory.memory_plan(N, G, M, sc.zero_stage, sc.seq_len, sc.micro_batch)
    loss = BESIROGLU_2024.loss(N, D)
    return len(N), (h10, h50, h90, days, cost, per_gpu, need, loss)


def main() -> None:
    core, _, model = fitted()
    accs = core["core.accelerators"]
    targets = np.geomspace(1e8, 1e12, 120)
    clusters = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1000000, 20, 100]
    sc = Scenario(targets=[f"{t:.6g}" for t in targets], accelerators=accs["accelerator"].to_list(), cluster_sizes=clusters,
                  policies=["chinchilla", "overtrain", "fixed"], mixture={"ja": 0.4, "en": 0.4, "code": 0.2},
                  unique_tokens={"ja": "300B", "en": "5T", "code": "500B"})
    build_plans(sc, model, accs, BESIROGLU_2024, None)          # warm-up
    reps = 3
    t = time.perf_counter()
    for _ in range(reps):
        plans, langs = build_plans(sc, model, accs, BESIROGLU_2024, None)
    t_pl = (time.perf_counter() - t) / reps
    numpy_grid(model, targets, accs, np.array(clusters, float), sc)
    t = time.perf_counter()
    for _ in range(reps):
        n_np, _ = numpy_grid(model, targets, accs, np.array(clusters, float), sc)
    t_np = (time.perf_counter() - t) / reps
    print(f"plan rows: {plans.height:,} (+{langs.height:,} language rows), {plans.width} columns")
    print(f"llmplan (Polars, full plan rows): {t_pl:.3f} s/pass = {plans.height / t_pl:,.0f} rows/s")
    print(f"pure NumPy (same core formulas, no language rows, warnings or frame): {t_np:.3f} s/pass = {n_np / t_np:,.0f} rows/s")
    print(f"ratio llmplan / NumPy time: {t_pl / t_np:.2f}x")
    # What plans really run: the step × goodput chain, whose layout search scores every candidate
    # layout (TP × PP × ZeRO × recompute) of every row at once.
    _, ch = chain()
    build_plans(sc, ch, accs, BESIROGLU_2024, None)
    t = time.perf_counter()
    for _ in range(reps):
        cplans, _ = build_plans(sc, ch, accs, BESIROGLU_2024, None)
    t_ch = (time.perf_counter() - t) / reps
    from bench.peak import peak_rss_mb
    print(f"llmplan with the layout search (step × goodput chain): {cplans.height:,} rows in {t_ch:.3f} s/pass = "
          f"{cplans.height / t_ch:,.0f} rows/s, {t_ch / t_pl:.1f}x the whole-run-only pass; peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
