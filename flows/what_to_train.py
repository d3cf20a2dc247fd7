"""what_to_train: the inverse question from the UI — "we have G accelerators for D days (or $X):
what should we train?" — answered from the latest fits, published as a markdown artifact."""
# No `from __future__ import annotations` here: Prefect resolves pydantic parameters at deploy time.

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field, model_validator

from llmplan import config, pipeline, warehouse
from llmplan.artifacts import what_to_train_markdown
from llmplan.plan import inverse_plan
from llmplan.scenario import Scenario


class Budget(BaseModel):
    """The hardware and the time and/or money you have (both limits hold when both are given)."""

    accelerator: str = Field(default="H100-80GB", description="Accelerator (name or alias)")
    gpus: int = Field(default=20, ge=1, le=1_000_000, description="Number of accelerators")
    days: float | None = Field(default=15.0, gt=0, le=3650, description="Days available (empty: only the budget limits)")
    budget_usd: float | None = Field(default=None, gt=0, description="Budget in USD; with days, the run stops at "
                                                                     "whichever limit comes first")
    mixture: dict[str, float] = Field(default={"en": 1.0}, description="Share of tokens per language (sums to 1)")
    unique_tokens: dict[str, str] = Field(default={}, description="Unique tokens available per language, e.g. {'ja': '300B'}")
    scaling_law: str = Field(default="auto", description="auto | besiroglu2024 | hoffmann2022 | user")

    @model_validator(mode="after")
    def _one(self):
        if self.days is None and self.budget_usd is None:
            raise ValueError("give days or budget_usd")
        return self


@flow(name="what_to_train", log_prints=True)
def what_to_train(budget: Budget = Budget(), warehouse_path: str | None = None) -> dict:
    """Compute budget (p10/p50/p90), compute-optimal size and tokens, expected loss, memory, data per language."""
    sc = Scenario(mixture=budget.mixture, unique_tokens=budget.unique_tokens)
    with warehouse.connect_readonly(config.warehouse_path(warehouse_path)) as con:
        model, _, acc, law, bpt = pipeline.planning_inputs(con, budget.accelerator, budget.scaling_law)
    out = inverse_plan(model, acc, budget.gpus, law, days=budget.days, budget_usd=budget.budget_usd, sc=sc, bpt=bpt)
    md = what_to_train_markdown(out)
    create_markdown_artifact(key="llmplan-what-to-train", markdown=md)
    print(md)
    return out
