"""Print the efficiency model's backtest table beside the 6ND/(peak×0.40) rule.

    .venv/bin/python bench/backtest.py
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from bench._common import fitted  # noqa: E402
from llmplan import efficiency  # noqa: E402


def main() -> None:
    _, table, model = fitted()
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
