"""The headline plans, chosen once: the report's answer cards, its key figures, the Prefect
`llmplan-headline-plan` artifact and the run summary in meta.pipeline_runs all read the rows
picked here, so they cannot disagree (they did when each ran its own query).

Also "what changed" between two runs' plans: only rows whose worded value moved, and the
bytes/token each language's plans use (a corpus scan moves the GB of text, not GPU-days)."""

import math

import polars as pl

from llmplan.units import fmt_count


def _billed() -> pl.Expr:
    return pl.coalesce("billed_gpu_hours_p50", "gpu_hours_p50")


def card_rows(plans: pl.DataFrame, targets: list[float], policy: str) -> pl.DataFrame:
    """Per headline target × accelerator, the plan its card shows: the cluster with the fewest
    billed GPU-hours among those whose memory fits; when no planned cluster fits, the largest
    cluster, with fits_in_memory false (shown as "does not fit", never as a plan)."""
    p = plans.filter(pl.col("target_params").is_in(targets) & (pl.col("policy") == policy))
    if "billed_gpu_hours_p50" not in p.columns:
        p = p.with_columns(pl.col("gpu_hours_p50").alias("billed_gpu_hours_p50"))
    order = pl.when(pl.col("fits_in_memory")).then(_billed()).otherwise(-pl.col("cluster_gpus").cast(pl.Float64))
    return (p.sort([pl.col("fits_in_memory").not_(), order, pl.col("cluster_gpus")], nulls_last=True)
            .group_by("target_params", "accelerator", maintain_order=True).first()
            .sort("target_params", "accelerator"))


def pick(plans: pl.DataFrame, policy: str, seen: set[str] | list[str]) -> dict | None:
    """The one plan people look at first, by a stated rule: the target nearest 10B and the policy
    given; of its card rows (card_rows: one cluster per accelerator, memory fitting first), the
    cheapest p50 cost — among accelerators the efficiency fit has seen whole runs or benchmarks
    on first (one predicted from its specs alone is planned, not headlined), then priced before
    unpriced; ties → fewer GPU-days, then the smaller cluster. A target that fits nowhere is
    still returned, with fits_in_memory false."""
    p = plans.filter(pl.col("policy") == policy)
    if p.height == 0:
        return None
    t = nearest_10b(p["target_params"].unique().to_list())
    cards = card_rows(p, [t], policy).with_columns(
        pl.col("accelerator").is_in(list(seen)).not_().alias("_unseen"),
        pl.col("cost_usd_p50").is_null().alias("_unpriced"))
    best = cards.sort([pl.col("fits_in_memory").not_(), "_unseen", "_unpriced", "cost_usd_p50", "gpu_days_p50",
                       "cluster_gpus"], nulls_last=True).row(0, named=True)
    return {k: v for k, v in best.items() if not k.startswith("_")}


def text_per_language(langs: pl.DataFrame) -> pl.DataFrame:
    """Per (target, policy): tokens, bytes (p50) and bytes/token per language, as structs."""
    return langs.group_by("target_params", "policy").agg(
        pl.struct("language", "tokens", "bytes_p50", "bytes_per_token").sort_by("language").alias("languages"))


# -- what changed ---------------------------------------------------------------------------

def moved(old: pl.Expr, new: pl.Expr) -> pl.Expr:
    """True where a reader would see a different number (three significant figures, as
    llmplan.units.fmt_count words it): 0.231 → 0.231 is not a change."""
    return (old.map_elements(fmt_count, return_dtype=pl.Utf8, skip_nulls=True)
            != new.map_elements(fmt_count, return_dtype=pl.Utf8, skip_nulls=True))


def gpu_day_changes(old: pl.DataFrame, new: pl.DataFrame, policy: str | None = None) -> pl.DataFrame:
    """(target_params, policy, accelerator, old, new) for the p50 GPU-days (best cluster) that
    moved between two runs' plans; `old`/`new` are plans.plans rows (or main.plan_history)."""
    key = ["target_params", "policy", "accelerator"]
    a = old.group_by(key).agg(pl.col("gpu_days_p50").min().alias("old"))
    b = new.group_by(key).agg(pl.col("gpu_days_p50").min().alias("new"))
    out = a.join(b, on=key)
    if policy is not None:
        out = out.filter(pl.col("policy") == policy)
    return out.filter(moved(pl.col("old"), pl.col("new"))).sort(key)


def bytes_per_token_changes(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """(language, old, new, old_source, new_source) where the bytes/token a language's plans use
    moved (to 3 significant figures); `old`/`new` are plans.plan_languages rows."""
    cols = ["language", "bytes_per_token", "bytes_per_token_source"]

    def one(df):
        return df.group_by("language").agg(pl.col(c).first() for c in cols[1:])
    out = one(old).join(one(new), on="language", suffix="_new").rename(
        {"bytes_per_token": "old", "bytes_per_token_new": "new", "bytes_per_token_source": "old_source",
         "bytes_per_token_source_new": "new_source"})
    return out.filter(moved(pl.col("old"), pl.col("new"))).sort("language")


def only_report_language(changed_parameters: dict) -> tuple[str, str] | None:
    """(old, new) when the report language is the only parameter that differs, else None."""
    if set(changed_parameters) == {"report_lang"}:
        return changed_parameters["report_lang"]
    return None


def nearest_10b(targets: list[float]) -> float | None:
    return min(targets, key=lambda t: abs(math.log(t / 1e10))) if targets else None
