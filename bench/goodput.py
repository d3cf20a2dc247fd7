"""Goodput on the public whole runs and for two reference clusters: per run, the achieved
tokens/s per accelerator, the step model's p50, physics goodput (interruptions and checkpoints,
llmplan.goodput), the step-side multiplier and what is left, and the fitted split.

    .venv/bin/python bench/goodput.py

The step rates are the step physics' on each run's searched layout (llmplan.step.runs_with_step).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from bench._common import laid  # noqa: E402
from llmplan import goodput as gp  # noqa: E402


def public_runs() -> pl.DataFrame:
    """The public whole runs laid out by the step physics at what they published (bench._common.laid)."""
    return laid()[4]


def main() -> None:
    print("physics goodput (defaults: %.2e interruptions/GPU-h, restart %.0f min, %.1f GB/s a node, 14 B/param):"
          % (gp.RATE_PER_GPU_HOUR, gp.RESTART_MINUTES, gp.STORAGE_GBPS))
    cases = gp.goodput([20, 16384], [10e9, 405e9], wall_hours=[24 * 30, 54 * 24])
    for r, name in zip(cases.iter_rows(named=True), ("10B on 20 H100, 30 days", "405B on 16,384 H100, 54 days")):
        print(f"  {name:<30} goodput p50 {r['goodput_p50']:.3f} (p10 {r['goodput_p10']:.3f}, p90 {r['goodput_p90']:.3f}); "
              f"MTBF {r['mtbf_hours']:,.1f} h; checkpoint write {r['checkpoint_write_hours'] * 3600:,.1f} s every "
              f"{r['checkpoint_interval_hours'] * 60:,.1f} min (overhead {r['checkpoint_overhead']:.2%}); "
              f"interruption loss {r['interruption_loss']:.2%}; {r['interruptions_expected']:,.1f} interruptions, "
              f"{r['hours_lost_interruptions']:,.1f} h lost")
    llama = gp.goodput(16384, 405e9, rate_per_gpu_hour=419 / (16384 * 54 * 24), storage_bytes_per_s=2e12 / 2048)
    print(f"  405B with Llama 3's own rate and storage: {llama['goodput_physics'][0]:.3f} (Meta reports > 0.90)")

    res = gp.fit_residual(public_runs())
    t = res.table.sort("year", "run_key")
    print(f"\n{res.n} public runs: log10(achieved ÷ (step × physics)) = goodput residual + step side")
    print(f"  goodput residual: {10 ** res.level:.3f} (log10 {res.level:+.3f}, sd {res.sd:.3f}) from Llama 3's > 90 % ÷ its physics")
    print(f"  step side: 10^({res.step_level:+.3f} {res.step_slope:+.3f}·min(year − 2024, 0) {res.step_size:+.3f}·(log10 active − 10) + family)"
          f", slope se {res.step_slope_se:.3f}, family sd {res.step_family_sd:.3f}, "
          f"new run of a new family sd {res.step_sd:.3f}")
    print(f"\n{'run':<34} {'year':>4} {'GPUs':>6} {'achieved':>10} {'step p50':>10} {'physics':>8} {'step ×':>7} "
          f"{'residual':>8} {'left':>6}")
    for r in t.iter_rows(named=True):
        gpus = "?" if r["gpu_count"] is None else f"{r['gpu_count']:.0f}"
        print(f"{r['run_key'][:34]:<34} {r['year']:>4} {gpus:>6} {r['achieved_tokens_per_s']:>10,.0f} "
              f"{r['step_tokens_per_s_p50']:>10,.0f} {r['goodput_physics']:>8.3f} {r['step_multiplier']:>7.3f} "
              f"{r['goodput_residual']:>8.3f} {r['left_over']:>6.2f}")
    by_year = t.group_by("year").agg(pl.len().alias("n"), pl.col("left_over").log10().mean().alias("mean_log10_left")).sort("year")
    print("\nwhat is left by year (mean log10, ≈ 0 when the year term has taken the trend):")
    for r in by_year.iter_rows(named=True):
        print(f"  {r['year']}: n={r['n']:>2}  {r['mean_log10_left']:+.3f}")


if __name__ == "__main__":
    main()
