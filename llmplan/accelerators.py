"""Accelerator names → the accelerator table (data/accelerators/*.csv).

Names are matched case- and punctuation-insensitively against the table's own names and
data/accelerator_aliases.csv (Epoch's "NVIDIA A100 SXM4 80 GB" → A100-80GB; H800/A800 → their
compute twins, flagged 'export_variant'). An alias with an empty target is a known system
outside the table (kept, excluded from fits). Anything else is unknown: an error in curated
files, a counted exclusion for Epoch rows.
"""

import re

import polars as pl

from llmplan.errors import LlmplanError, Problem


def alias_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def alias_table(accelerators: pl.DataFrame, aliases: pl.DataFrame) -> pl.DataFrame:
    """alias_key → accelerator (null = known, outside the table), flag."""
    own = accelerators.select(
        pl.col("accelerator").map_elements(alias_key, return_dtype=pl.Utf8).alias("alias_key"),
        pl.col("accelerator").alias("alias"), "accelerator", pl.lit(None, pl.Utf8).alias("flag"),
    )
    extra = aliases.select(
        pl.col("alias").map_elements(alias_key, return_dtype=pl.Utf8).alias("alias_key"),
        "alias", "accelerator", "flag",
    ) if aliases.height else own.clear()
    # A table row may carry a flag from the alias file (H800 is its own row and still an export variant).
    flags = extra.filter(pl.col("flag").is_not_null()).select("alias_key", "accelerator", pl.col("flag").alias("_f"))
    own = own.join(flags.unique(["alias_key", "accelerator"], keep="first"), on=["alias_key", "accelerator"], how="left",
                   maintain_order="left").with_columns(pl.coalesce("flag", "_f").alias("flag")).drop("_f")
    return pl.concat([own, extra]).unique("alias_key", keep="first", maintain_order=True)


def normalise(frame: pl.DataFrame, column: str, table: pl.DataFrame) -> pl.DataFrame:
    """Add accelerator, accelerator_flag and accelerator_known (alias matched) for `column`."""
    keyed = frame.with_columns(
        pl.col(column).fill_null("").map_elements(alias_key, return_dtype=pl.Utf8).alias("_k")
    )
    t = table.select(pl.col("alias_key").alias("_k"), "accelerator", pl.col("flag").alias("accelerator_flag"),
                     pl.lit(True).alias("accelerator_known"))
    out = keyed.join(t, on="_k", how="left").drop("_k")
    return out.with_columns(pl.col("accelerator_known").fill_null(False))


def resolve(name: str, table: pl.DataFrame) -> str:
    """One user-typed name → table name, or an error listing the known names."""
    hit = table.filter(pl.col("alias_key") == alias_key(name))
    if hit.height == 0 or hit["accelerator"][0] is None:
        known = sorted(set(table["accelerator"].drop_nulls().to_list()))
        why = "has no specs in the accelerator table" if hit.height else "is not a known accelerator"
        raise LlmplanError(f"{name!r} {why}; known accelerators: {', '.join(known)} "
                           "(aliases such as 'H100', 'A800', 'NVIDIA A100 SXM4 80 GB' also work)")
    return hit["accelerator"][0]


def check_accelerator_names(data: dict) -> list[Problem]:
    """Curated inputs must name known accelerators; aliases must point into the table."""
    problems: list[Problem] = []
    acc = data["accelerators"].typed
    names = set(acc["accelerator"].to_list()) if acc.height else set()
    aliases = data["accelerator_aliases"].typed
    if aliases.height:
        bad = aliases.filter(pl.col("accelerator").is_not_null() & ~pl.col("accelerator").is_in(list(names)))
        for r in bad.iter_rows(named=True):
            problems.append(Problem(r["source_file"], r["source_line"], "accelerator",
                                    f"unknown accelerator {r['accelerator']!r}; expected one of: {', '.join(sorted(names))}"))
    table = alias_table(acc, aliases if aliases.height else pl.DataFrame(schema={"alias": pl.Utf8, "accelerator": pl.Utf8, "flag": pl.Utf8}))
    for kind, col, header in (("training_runs", "gpu_type", "gpu_type"), ("throughput", "gpu", "GPU"),
                              ("step_benchmarks", "gpu_type", "gpu_type")):
        frame = data[kind].typed
        if not frame.height:
            continue
        bad = normalise(frame, col, table).filter(~pl.col("accelerator_known"))
        for r in bad.iter_rows(named=True):
            problems.append(Problem(r["source_file"], r["source_line"], header,
                                    f"unknown accelerator {r[col]!r}; expected a name from the accelerator table "
                                    f"({', '.join(sorted(names))}) or data/accelerator_aliases.csv"))
    return problems


# Architecture generation and launch year, for grouping in the report (vendor announcements).
GENERATIONS = {
    "V100": "NVIDIA Volta (2017)", "A100": "NVIDIA Ampere (2020)", "H100": "NVIDIA Hopper (2022)",
    "H200": "NVIDIA Hopper (2022)", "H800": "NVIDIA Hopper (2022)", "B200": "NVIDIA Blackwell (2024)", "GB200": "NVIDIA Blackwell (2024)",
    "MI250X": "AMD CDNA 2 (2021)",
    "MI300X": "AMD CDNA 3 (2023)", "TPUv3": "Google TPU v3 (2018)", "TPUv4": "Google TPU v4 (2021)",
    "TPUv5e": "Google TPU v5 (2023)", "TPUv5p": "Google TPU v5 (2023)", "Trainium1": "AWS Trainium 1 (2022)",
    "Trainium2": "AWS Trainium 2 (2024)",
}


def generation(accelerator: pl.Expr) -> pl.Expr:
    """'A100-80GB' → 'NVIDIA Ampere (2020)' (by the name before the memory size); else the name."""
    base = accelerator.str.replace(r"-\d+GB$", "")
    return base.replace_strict(GENERATIONS, default=None).fill_null(accelerator)
