import pytest
from pydantic import ValidationError

from flows.what_to_train import Budget, what_to_train


def test_inverse_question_from_the_ui(built_warehouse):
    out = what_to_train(Budget(accelerator="H100", gpus=20, days=15, mixture={"ja": 0.5, "en": 0.5}),
                        warehouse_path=str(built_warehouse))
    assert out["gpu_hours"] == 20 * 15 * 24
    assert out["params_opt_p10"] < out["params_opt_p50"] < out["params_opt_p90"]
    assert set(out["bytes_per_language"]) == {"ja", "en"}


def test_budget_needs_days_or_money():
    with pytest.raises(ValidationError, match="days or budget_usd"):
        Budget(days=None, budget_usd=None)


def test_a_budget_is_not_ignored_because_days_has_a_default(built_warehouse):
    """The form's days default (15) and a $20,000 budget: the run stops when the money runs out."""
    out = what_to_train(Budget(accelerator="H100", gpus=20, budget_usd=20000), warehouse_path=str(built_warehouse))
    assert out["limited_by"] == "budget" and out["cost_usd"] <= 20000 * (1 + 1e-9)
    assert out["days"] < 15
