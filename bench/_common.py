"""Build a fitted model from the shipped data without Prefect or a warehouse (for benchmarks)."""

from pathlib import Path

import polars as pl

from llmplan import efficiency
from llmplan.ingest import read_all
from llmplan.transform import build_core

DATA = Path(__file__).resolve().parent.parent / "data"


def fitted():
    core = build_core(read_all(DATA))
    table = efficiency.fit_table(core["core.training_runs"], core["core.throughput"])
    return core, table, efficiency.fit(table)


def laid():
    """fitted() (core tables, efficiency table and model), the step physics fitted on its per-step rows, and the public
    whole runs laid out by it at what they published (as pipeline.fit_models builds them)."""
    from llmplan import step

    core, table, whole = fitted()
    acc = core["core.accelerators"]
    sm = step.fit_step(core["core.step_benchmarks"], acc)
    runs = step.runs_with_step(core["core.training_runs"].filter(pl.col("fit_exclusion_reason").is_null()), sm, acc,
                               core["core.model_shapes"])
    return core, table, whole, sm, runs


def chain():
    """What plans use: the step physics × whole-run multiplier × goodput (llmplan.step.Chain)."""
    from llmplan import goodput, step

    core, _, whole, sm, runs = laid()
    return core, step.Chain(whole, sm, goodput.fit_residual(runs))
