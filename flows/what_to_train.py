"""what_to_train: the inverse question from the UI — "we have G accelerators for D days (or $X):
what should we train?" — answered from the latest fits, published as a markdown artifact."""
# No `from __future__ import annotations` here: Prefect resolves pydantic parameters at deploy time.

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field, model_validator

from llmplan import config, pipeline, warehouse
from llmplan.plan import bytes_per_token_table, inverse_plan
from llmplan.scenario import Scenario
from llmplan.units import fmt_bytes, fmt_days, fmt_params, fmt_sci, fmt_usd


class Budget(BaseModel):
    """The hardware and time (or money) you have."""

    accelerator: str = Field(default="H100-80GB", description="Accelerator (name or alias)")
    gpus: int = Field(default=20, ge=1, le=1_000_000, description="Number of accelerators")
    days: float | None = Field(default=15.0, gt=0, le=3650, description="Days available (or leave empty and give a budget)")
    budget_usd: float | None = Field(default=None, gt=0, description="Budget in USD (used when days is empty)")
    mixture: dict[str, float] = Field(default={"en": 1.0}, description="Share of tokens per language (sums to 1)")
    scaling_law: str = Field(default="auto", description="auto | besiroglu2024 | hoffmann2022 | user")

    @model_validator(mode="after")
    def _one(self):
        if self.days is None and self.budget_usd is None:
            raise ValueError("give days or budget_usd")
        return self


@flow(name="what_to_train", log_prints=True)
def what_to_train(budget: Budget = Budget(), warehouse_path: str | None = None) -> dict:
    """Compute budget (p10/p50/p90), compute-optimal size and tokens, expected loss, data per language."""
    sc = Scenario(mixture=budget.mixture)
    with warehouse.connect_readonly(config.warehouse_path(warehouse_path)) as con:
        model, _, acc, law, bpt = pipeline.planning_inputs(con, budget.accelerator, budget.scaling_law)
    out = inverse_plan(model, acc, budget.gpus, law, days=budget.days, budget_usd=budget.budget_usd,
                       languages=bytes_per_token_table(sc, bpt))
    md = (f"# {budget.gpus} × {out['accelerator']} for {fmt_days(out['days'])}"
          + (f" ({fmt_usd(out['cost_usd'])})" if out.get("cost_usd") else "") + "\n\n"
          f"| | p10 | p50 | p90 |\n|---|---|---|---|\n"
          f"| compute | {fmt_sci(out['compute_flop_p10'], 'FLOP')} | {fmt_sci(out['compute_flop_p50'], 'FLOP')} | {fmt_sci(out['compute_flop_p90'], 'FLOP')} |\n"
          f"| compute-optimal size | {fmt_params(out['params_opt_p10'])} | {fmt_params(out['params_opt_p50'])} | {fmt_params(out['params_opt_p90'])} |\n"
          f"| tokens | {fmt_sci(out['tokens_opt_p10'])} | {fmt_sci(out['tokens_opt_p50'])} | {fmt_sci(out['tokens_opt_p90'])} |\n\n"
          f"Expected loss (p50, {out['law']}): {out['predicted_loss_p50']:.3f}\n\n"
          + "".join(f"- {k}: {fmt_bytes(v)} of text\n" for k, v in out["bytes_per_language"].items()))
    create_markdown_artifact(key="llmplan-what-to-train", markdown=md)
    print(md)
    return out
