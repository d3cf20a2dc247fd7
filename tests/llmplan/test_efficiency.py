"""The efficiency model: arithmetic, recovery on synthetic runs, calibrated intervals, persistence."""

import math

import numpy as np
import polars as pl
import pytest

from llmplan import efficiency as ef
from llmplan.flops import training_flop


def test_training_flop_hand_checked():
    assert training_flop(10e9, None, 200e9) == pytest.approx(1.2e22)
    assert training_flop(47e9, 13e9, 1e12) == pytest.approx(6 * 13e9 * 1e12)   # MoE: active params


def _synthetic(n=120, seed=0, sigma=0.08, accs=("A100-80GB", "H100-80GB", "TPUv4")):
    rng = np.random.default_rng(seed)
    peaks = {"A100-80GB": 312e12, "H100-80GB": 989e12, "TPUv4": 275e12}
    acc = rng.choice(list(accs), n)
    params = 10 ** rng.uniform(8, 11.5, n)
    gpus = 2 ** rng.integers(3, 12, n)
    year = rng.integers(2020, 2024, n)
    peak = np.array([peaks[a] for a in acc])
    log_u = -0.45 + 0.05 * (np.log10(params) - 9) - 0.04 * (np.log10(gpus) - 2.5) + rng.normal(0, sigma, n)
    util = 10 ** log_u
    tokens = 20 * params
    flop = 6 * params * tokens
    hours = flop / (util * peak * 3600)
    return pl.DataFrame({"run_key": [f"r{i}" for i in range(n)], "family": [f"f{i % 12}" for i in range(n)],
                         "year": year.astype(np.int32), "params": params, "gpu_count": gpus.astype(float),
                         "accelerator": acc, "peak_flops": peak, "utilization": util, "training_flop": flop,
                         "gpu_hours": hours, "per_step": np.zeros(n, dtype=np.int32)})


def test_a_run_with_known_utilisation_reproduces_it():
    """Constant utilisation 0.40 everywhere → the model predicts 0.40 and GPU-hours = 6ND/(0.4·peak)."""
    t = _synthetic(sigma=0.0)
    t = t.with_columns(pl.lit(0.40).alias("utilization"),
                       (pl.col("training_flop") / (0.40 * pl.col("peak_flops") * 3600)).alias("gpu_hours"))
    m = ef.fit(t)
    new = pl.DataFrame({"params": [1e10], "gpu_count": [256.0], "year": [2023], "accelerator": ["A100-80GB"],
                        "peak_flops": [312e12], "training_flop": [1.2e22]})
    p = m.predict(new).row(0, named=True)
    assert p["utilization_p50"] == pytest.approx(0.40, rel=1e-3)
    assert p["gpu_hours_p50"] == pytest.approx(1.2e22 / (0.40 * 312e12 * 3600), rel=1e-3)


def test_fit_recovers_effects_and_intervals_are_calibrated():
    train, test = _synthetic(n=150, seed=1), _synthetic(n=400, seed=2)
    m = ef.fit(train)
    assert m.beta["x_size"] == pytest.approx(0.05, abs=0.02)
    assert m.beta["x_cluster"] == pytest.approx(-0.04, abs=0.03)
    p = m.predict(test)
    inside = p.select(pl.col("gpu_hours").is_between(pl.col("gpu_hours_p10"), pl.col("gpu_hours_p90")).mean()).item()
    assert 0.72 <= inside <= 0.90, inside
    assert (p["gpu_hours_p10"] < p["gpu_hours_p50"]).all() and (p["gpu_hours_p50"] < p["gpu_hours_p90"]).all()


def test_unseen_accelerator_gets_a_wider_interval():
    m = ef.fit(_synthetic(seed=3))
    new = pl.DataFrame({"params": [1e10, 1e10], "gpu_count": [256.0, 256.0], "year": [2023, 2023],
                        "accelerator": ["A100-80GB", "B200"], "peak_flops": [312e12, 2250e12], "training_flop": [1e22, 1e22]})
    p = m.predict(new)
    width = (p["gpu_hours_p90"] / p["gpu_hours_p10"]).to_list()
    assert width[1] > width[0]


def test_model_round_trips_through_the_warehouse_rows():
    m = ef.fit(_synthetic(seed=4))
    m2 = ef.EfficiencyModel.from_frame(m.to_frame("run"))
    new = _synthetic(n=10, seed=5)
    a, b = m.predict(new), m2.predict(new)
    for c in ("gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90"):
        assert np.allclose(a[c].to_numpy(), b[c].to_numpy())


def test_backtest_scores_both_splits_beside_the_rule():
    from llmplan.ingest import read_all
    from llmplan.transform import build_core
    from tests.conftest import DATA

    core = build_core(read_all(DATA))
    table = ef.fit_table(core["core.training_runs"], core["core.throughput"])
    bt = ef.backtest(table)
    s = ef.backtest_summary(bt)
    assert set(s["method"]) == {"llmplan", "6ND/(peak×0.40)"}
    assert s["split"].str.starts_with("leave-one-family-out").any() and s["split"].str.starts_with("time split").any()
    lofo = bt.filter(pl.col("split") == "leave-one-family-out")
    # every whole-run row is predicted exactly once, by a model that never saw its family
    assert lofo["run_key"].is_unique().all() and lofo.height == table.filter(pl.col("per_step") == 0).height
    assert lofo["abs_log10_err"].is_finite().all()
    r = bt.row(0, named=True)
    assert r["abs_log10_err"] == pytest.approx(abs(math.log10(r["pred_p50"] / r["actual_gpu_hours"])))


def _with_gross_errors(t: pl.DataFrame, rows: list[int], factor: float) -> pl.DataFrame:
    """Records whose hours are off by `factor` (a sweep counted in, GPUs counted per node)."""
    bad = pl.int_range(pl.len()).is_in(rows)
    return t.with_columns(pl.when(bad).then(pl.col("utilization") * factor).otherwise(pl.col("utilization")).alias("utilization"))


def test_gross_record_errors_are_down_weighted_and_do_not_drag_the_slopes():
    """Five of 150 records with utilisation ÷10, all on the smallest models: a normal likelihood
    tilts the size slope; the t likelihood gives those rows small weights and keeps it."""
    t = _synthetic(n=150, seed=6, sigma=0.05)
    small = t.with_row_index().sort("params")["index"][:5].to_list()
    bad = _with_gross_errors(t, small, 0.1)
    robust, normal = ef.fit(bad), ef.fit(bad, nu=math.inf)
    assert abs(robust.beta["x_size"] - 0.05) < 0.02
    assert abs(robust.beta["x_size"] - 0.05) < abs(normal.beta["x_size"] - 0.05) / 3
    keys = bad["run_key"].to_list()
    bad_w = [robust.weights[keys[i]] for i in small]
    good_w = [robust.weights[k] for i, k in enumerate(keys) if i not in small]
    assert max(bad_w) < 0.2 < 0.5 < float(np.median(good_w))


def test_family_variance_is_estimated_and_new_families_are_covered():
    """Runs of one family share an offset (sd 0.12); the model estimates that variance (its t
    scale² × ν/(ν−2)) and its p10–p90 band covers 72–90 % of runs from families it never saw."""
    def families(seed, n_fam, per, prefix):
        rng = np.random.default_rng(seed + 1000)
        t = _synthetic(n=n_fam * per, seed=seed, sigma=0.03)
        idx = np.arange(t.height) % n_fam
        offset = rng.normal(0, 0.12, n_fam)[idx]
        return t.with_columns(pl.Series("family", [f"{prefix}{i}" for i in idx]), pl.col("utilization") * 10 ** pl.Series(offset),
                              (pl.col("gpu_hours") / 10 ** pl.Series(offset)))
    train, test = families(0, 60, 4, "train"), families(50, 300, 1, "new")
    m = ef.fit(train)
    assert 0.5 * 0.12 ** 2 < m.sigma2_family * ef.NU / (ef.NU - 2) < 2 * 0.12 ** 2
    inside = m.predict(test).select(pl.col("gpu_hours").is_between(pl.col("gpu_hours_p10"), pl.col("gpu_hours_p90")).mean()).item()
    assert 0.72 <= inside <= 0.90, inside


@pytest.mark.parametrize("a,s", [(0.10, 0.05), (0.02, 0.10), (0.10, 0.0), (1e-9, 0.1)])
def test_interval_half_width_is_the_quantile_of_normal_plus_t(a, s):
    rng = np.random.default_rng(0)
    draws = a * rng.standard_normal(2_000_000) + s * rng.standard_t(ef.NU, 2_000_000)
    expected = np.quantile(draws, 0.9)
    got = ef._quantile_factor(np.array([a * a]), s * s, ef.NU)[0]
    assert got == pytest.approx(expected, rel=0.01)


def test_weights_and_variance_components_round_trip():
    m = ef.fit(_synthetic(seed=9))
    m2 = ef.EfficiencyModel.from_frame(m.to_frame("run"))
    assert m2.weights == pytest.approx(m.weights) and m2.nu == m.nu
    assert m2.sigma2_family == pytest.approx(m.sigma2_family)


def test_reml_gradient_matches_finite_differences():
    """The analytic gradient L-BFGS uses, against central differences of the criterion itself."""
    from llmplan.efficiency import _reml

    rng = np.random.default_rng(0)
    n = 60
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    Z1, Z2 = np.eye(5)[rng.integers(0, 5, n)], np.eye(12)[rng.integers(0, 12, n)] * 0.7
    y = X @ [1, 2, 3] + Z1 @ rng.normal(size=5) * 0.5 + Z2 @ rng.normal(size=12) * 0.3 + rng.normal(size=n) * 0.2
    w = rng.uniform(0.3, 1.5, n)
    for ll in ([-1.0, -1.0], [0.5, -2.0], [2.0, 1.0]):
        _, g = _reml(X, y, [Z1, Z2], np.exp(ll), w, grad=True)
        for k in range(2):
            e = np.zeros(2)
            e[k] = 1e-6
            num = (_reml(X, y, [Z1, Z2], np.exp(np.array(ll) + e), w)[0]
                   - _reml(X, y, [Z1, Z2], np.exp(np.array(ll) - e), w)[0]) / 2e-6
            assert g[k] == pytest.approx(num, rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def fitted():
    from pathlib import Path

    from llmplan.ingest import read_all
    from llmplan.transform import build_core

    core = build_core(read_all(Path(__file__).resolve().parents[2] / "data"))
    table = ef.fit_table(core["core.training_runs"], core["core.throughput"])
    return table, ef.fit(table)


def test_backtest_refits_started_from_the_full_fit_give_the_same_answers(fitted):
    """`full=` only changes where each refit starts: the predictions agree with refits from
    scratch to 0.5 %, the split medians to 0.002 (the < 2023 split's likelihood is flat)."""
    table, model = fitted
    efficiency = ef
    cold, warm = efficiency.backtest(table), efficiency.backtest(table, full=model)
    j = cold.join(warm, on=["split", "run_key"], suffix="_w")
    assert j.height == cold.height == warm.height
    assert (j["pred_p50_w"] / j["pred_p50"] - 1).abs().max() < 0.005
    a = efficiency.backtest_summary(cold).filter(pl.col("method") == "llmplan").sort("split")
    b = efficiency.backtest_summary(warm).filter(pl.col("method") == "llmplan").sort("split")
    assert (a["median_abs_log10_err"] - b["median_abs_log10_err"]).abs().max() < 0.002
    assert a["coverage_p10_p90"].to_list() == b["coverage_p10_p90"].to_list()
