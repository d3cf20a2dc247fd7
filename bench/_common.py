"""Build a fitted model from the shipped data without Prefect or a warehouse (for benchmarks)."""

from pathlib import Path

from llmplan import efficiency
from llmplan.ingest import read_all
from llmplan.transform import build_core

DATA = Path(__file__).resolve().parent.parent / "data"


def fitted():
    core = build_core(read_all(DATA))
    table = efficiency.fit_table(core["core.training_runs"], core["core.throughput"])
    return core, table, efficiency.fit(table)


def chain():
    """What plans use: the whole-run model and the per-step model (llmplan.step.Chain)."""
    from llmplan.step import Chain, fit_step

    core, table, whole = fitted()
    return core, Chain(whole, fit_step(core["core.step_benchmarks"]))
