"""Print the backtests: the whole-run model and the step × goodput chain plans use (beside the
6ND/(peak×0.40) rule) on whole runs, and the per-step model (beside 40 % of the BF16 peak and 40 %
of the precision's peak) on benchmark rows it never saw.

    .venv/bin/python bench/backtest.py [--runs]     (--runs: the chain's predictions run by run)
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from bench._common import laid  # noqa: E402
from llmplan import efficiency, step  # noqa: E402


def main() -> None:
    core, table, model, sm, laid_runs = laid()
    bt = efficiency.backtest(table)
    s = efficiency.backtest_summary(bt)
    print(f"whole-run rows: {table.filter(pl.col('per_step') == 0).height}, per-step rows: {table.filter(pl.col('per_step') == 1).height}")
    print(f"{'split':<48} {'method':<16} {'n':>3} {'med|log10 err|':>15} {'med|%err|':>10} {'in p10-p90':>11}")
    for r in s.iter_rows(named=True):
        cov = "" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.0%}"
        print(f"{r['split']:<48} {r['method']:<16} {r['n']:>3} {r['median_abs_log10_err']:>15.3f} {r['median_abs_pct_err']:>9.0f}% {cov:>11}")
    for split in s["split"].unique(maintain_order=True):
        m = s.filter((pl.col("split") == split) & (pl.col("method") == "llmplan"))["median_abs_log10_err"][0]
        r = s.filter((pl.col("split") == split) & (pl.col("method") != "llmplan"))["median_abs_log10_err"][0]
        print(f"ratio llmplan / rule error, {split}: {m / r:.2f}")
    # The chain plans use: step physics × whole-run multiplier × goodput, on the same splits.
    acc = core["core.accelerators"]
    chain = step.chain_backtest(laid_runs)
    cs = efficiency.backtest_summary(chain)
    print("\nstep × multiplier × goodput chain (what plans use) on the same splits:")
    for r in cs.iter_rows(named=True):
        cov = "" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.0%}"
        print(f"{r['split']:<48} {r['method'] if r['method'] != 'llmplan' else 'chain':<16} {r['n']:>3} "
              f"{r['median_abs_log10_err']:>15.3f} {r['median_abs_pct_err']:>9.0f}% {cov:>11}")
    if "--runs" in sys.argv:           # per run: the layout the chain assumed, its step MFU, achieved ÷ predicted
        per = chain.join(laid_runs.select("run_key", "gpu_count", "seq_len", "tp", "pp", "ep", "dp", "zero_stage", "step_mfu_p50"), on="run_key")
        print(f"\n{'split':<12} {'run':<28} {'year':>4} {'accelerator':<12} {'gpus':>6} {'seq':>5} {'layout':<18} "
              f"{'step MFU':>8} {'achieved/pred':>13} {'log10 err':>9}")
        for r in per.sort("split", "year", "run_key").iter_rows(named=True):
            lay = f"TP{r['tp']} PP{r['pp']} EP{r['ep']} Z{r['zero_stage']}"
            print(f"{r['split'][:12]:<12} {r['run_key'][:28]:<28} {r['year']:>4} {r['accelerator'][:12]:<12} {r['gpu_count']:>6.0f} "
                  f"{r['seq_len']:>5} {lay:<18} {r['step_mfu_p50']:>8.3f} {r['pred_p50'] / r['actual_gpu_hours']:>13.2f} "
                  f"{math.log10(r['pred_p50'] / r['actual_gpu_hours']):>+9.3f}")
    dense = chain.join(laid_runs.select("run_key", (pl.col("params") > pl.col("active_params") * 1.0001).alias("moe")), on="run_key")
    for moe, g in dense.group_by("moe", maintain_order=True):
        print(f"  {'MoE' if moe[0] else 'dense'} runs: median |log10 err| {g['abs_log10_err'].median():.3f} over {g.height} predictions")
    # Per step, on benchmark configurations never used in the fit (bench/step_targets.py has the rest).
    sbt = step.step_backtest(core["core.step_benchmarks"], acc, full=sm)
    ss = step.step_backtest_summary(sbt)
    print("\nper-step model (tokens/s per accelerator) on held-out benchmark rows:")
    print(f"{'split':<52} {'method':<30} {'n':>4} {'med|log10 err|':>15} {'in p10-p90':>11}")
    for r in ss.iter_rows(named=True):
        cov = "" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.0%}"
        print(f"{r['split']:<52} {r['method']:<30} {r['n']:>4} {r['median_abs_log10_err']:>15.3f} {cov:>11}")
    # The floor the records set: no held-out score should beat a fit scored on its own rows.
    whole = table.filter(pl.col("per_step") == 0).with_columns(pl.col("utilization").log10().alias("_y"))
    own = model.predict(whole).select(
        (pl.col("utilization_p50").log10() - pl.col("_y")).abs().median().alias("model"),
        (pl.col("_y") - math.log10(efficiency.RULE_MFU)).abs().median().alias("rule")).row(0, named=True)
    oracle = whole.select((pl.col("_y") - pl.col("_y").median().over("accelerator")).abs().median()).item()
    print(f"in-sample floor (fitted on all {whole.height} whole runs, scored on the same runs): "
          f"llmplan {own['model']:.3f}, rule {own['rule']:.3f}; each accelerator's own median: {oracle:.3f}")


if __name__ == "__main__":
    main()
