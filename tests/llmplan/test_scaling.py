import numpy as np
import pytest

from llmplan.errors import LlmplanError
from llmplan.scaling import BESIROGLU_2024, HOFFMANN_2022, effective_tokens, fit_law


def test_compute_optimal_split_satisfies_c_equals_6nd_and_the_first_order_condition():
    for law in (HOFFMANN_2022, BESIROGLU_2024):
        c = 1e23
        n, d = law.optimal(c)
        assert 6 * n * d == pytest.approx(c)
        # at the optimum, moving along C = 6ND cannot lower the loss
        for k in (0.9, 1.1):
            assert law.loss(n * k, d / k) > law.loss(n, d)


def test_replication_gives_about_20_tokens_per_param_and_hoffmann_more():
    n, d = BESIROGLU_2024.optimal(1e24)
    assert 15 < d / n < 30
    n, d = HOFFMANN_2022.optimal(1e24)
    assert d / n > 40


def test_repeated_data_is_worth_less_past_four_epochs():
    u = 1e11
    assert effective_tokens(4 * u, u) / (4 * u) > 0.9
    assert effective_tokens(16 * u, u) / (16 * u) < 0.75
    assert effective_tokens(0.5 * u, u) == pytest.approx(0.5 * u)
    assert effective_tokens(1e12, np.nan) == pytest.approx(1e12)       # unknown supply: no penalty


def test_fitter_recovers_known_constants_within_its_intervals():
    rng = np.random.default_rng(7)
    n = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 60))
    d = np.exp(rng.uniform(np.log(1e9), np.log(3e11), 60))
    loss = BESIROGLU_2024.loss(n, d) * np.exp(rng.normal(0, 0.004, 60))
    law, ci = fit_law(n, d, loss, n_boot=150, seed=1)
    for k, true in (("E", 1.8172), ("A", 482.01), ("B", 2085.43), ("alpha", 0.3478), ("beta", 0.3658)):
        lo, hi = ci[k]
        assert lo <= true <= hi, (k, lo, true, hi)
    assert law.E == pytest.approx(1.8172, rel=0.05)


def test_fitter_refuses_too_few_or_non_positive_points():
    with pytest.raises(LlmplanError, match="at least 5"):
        fit_law([1e8] * 4, [1e9] * 4, [3.0] * 4)
    with pytest.raises(LlmplanError, match="positive"):
        fit_law([1e8, 2e8, 3e8, 4e8, -5e8], [1e9] * 5, [3.0] * 5)
