"""Where a plan lies outside the evidence behind it, said in words: a model far larger than the
largest public run of its kind (dense or mixture of experts) in the warehouse, or an
accelerator no training run or benchmark was measured on. The fits extrapolate there; the
plan is still made, and carries the caveat in the CLI, its JSON (`caveats`) and the report."""

import polars as pl

from llmplan.units import fmt_params

# "Far beyond": more than twice the largest public run of the same kind. Efficiency and memory
# laws are fitted on what exists; a factor of two is past the last point, not a rounding.
FAR_BEYOND = 2.0


def _moe(active: pl.Expr, total: pl.Expr) -> pl.Expr:
    return active.is_not_null() & (active < total)


def _largest(df: pl.DataFrame, moe: bool) -> dict:
    if df.height == 0 or "params" not in df.columns:
        return {"params": None, "active": None, "model": None}
    active = pl.col("active_params") if "active_params" in df.columns else pl.lit(None, pl.Float64)
    d = df.filter(pl.col("params").is_not_null()).with_columns(_moe(active, pl.col("params")).alias("_moe"), active.alias("_active"))
    d = d.filter(pl.col("_moe") == moe).sort("params", descending=True)
    if d.height == 0:
        return {"params": None, "active": None, "model": None}
    r = d.row(0, named=True)
    return {"params": r["params"], "active": r["_active"], "model": r.get("model")}


def from_warehouse(runs: pl.DataFrame, throughput: pl.DataFrame, steps: pl.DataFrame) -> dict:
    """The evidence: the largest dense and MoE model among public training runs and per-step
    benchmarks (core.training_runs, core.throughput, core.step_benchmarks), and every
    accelerator any of them was measured on."""
    frames = [f.select([c for c in ("model", "params", "active_params", "accelerator") if c in f.columns])
              for f in (runs, throughput, steps) if f.height]
    allrows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(
        schema={"model": pl.Utf8, "params": pl.Float64, "active_params": pl.Float64, "accelerator": pl.Utf8})
    return {"dense": _largest(allrows, False), "moe": _largest(allrows, True),
            "accelerators": sorted(a for a in allrows["accelerator"].drop_nulls().unique().to_list())}


def with_caveats(plans: pl.DataFrame, ev: dict, lang: str = "en") -> pl.DataFrame:
    """`plans` with a `caveats` column (list of sentences in `lang`, empty when the plan is inside
    the evidence). Vectorised over the plan rows."""
    from llmplan.i18n import text

    active = pl.col("active_params") if "active_params" in plans.columns else pl.lit(None, pl.Float64)
    moe = _moe(active, pl.col("params"))
    d, m = ev["dense"], ev["moe"]
    factor = f"{FAR_BEYOND:g}"
    if d["params"]:
        dense_far = pl.when(~moe & (pl.col("params") > FAR_BEYOND * d["params"])).then(pl.lit(
            text(lang, "cav_dense", factor=factor, model=d["model"], size=fmt_params(d["params"]))))
    else:
        dense_far = pl.when(~moe).then(pl.lit(text(lang, "cav_no_dense")))
    if m["params"]:
        m_active = m["active"] or m["params"]
        far = (pl.col("params") > FAR_BEYOND * m["params"]) | (active > FAR_BEYOND * m_active)
        moe_far = pl.when(moe & far).then(pl.lit(text(lang, "cav_moe", factor=factor, model=m["model"], size=fmt_params(m["params"]),
                                                      active=fmt_params(m_active))))
    else:
        moe_far = pl.when(moe).then(pl.lit(text(lang, "cav_no_moe")))
    template = text(lang, "cav_acc", acc="\x00")
    head, tail = template.split("\x00")
    no_data = pl.when(~pl.col("accelerator").is_in(ev["accelerators"])).then(pl.concat_str(pl.lit(head), "accelerator", pl.lit(tail)))
    return plans.with_columns(pl.concat_list([e.otherwise(pl.lit(None, pl.Utf8)) for e in (dense_far, moe_far, no_data)])
                              .list.drop_nulls().alias("caveats"))
