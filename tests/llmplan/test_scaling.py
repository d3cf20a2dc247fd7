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


def _grid_runs(seed=7, k=60, noise=0.004):
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(3e7), np.log(3e9), k))
    d = np.exp(rng.uniform(np.log(1e9), np.log(3e11), k))
    return n, d, BESIROGLU_2024.loss(n, d) * np.exp(rng.normal(0, noise, k))


def test_fitter_recovers_known_constants_within_its_intervals():
    n, d, loss = _grid_runs()
    fit = fit_law(n, d, loss, n_boot=150, seed=1)
    for k, true in (("E", 1.8172), ("A", 482.01), ("B", 2085.43), ("alpha", 0.3478), ("beta", 0.3658)):
        lo, hi = fit.ci[k]
        assert lo <= true <= hi, (k, lo, true, hi)
    assert fit.law.E == pytest.approx(1.8172, rel=0.05)
    assert fit.identifiable and fit.warnings == []
    assert fit.draws.shape == (150, 5)


def _spy_batches(monkeypatch):
    """Record every call of the batched refits: (starts, run weights)."""
    from llmplan import scaling

    calls = []
    real = scaling._newton_batch
    monkeypatch.setattr(scaling, "_newton_batch",
                        lambda X0, W, *a, **k: calls.append((np.array(X0), np.array(W))) or real(X0, W, *a, **k))
    return calls


def _resample_rows(counts):
    return np.repeat(np.arange(len(counts)), counts.astype(int))


def test_lbfgs_starts_from_several_grid_points_and_each_resample_from_its_own(monkeypatch):
    """The main fit refines the N_STARTS best points of the 4,500-point grid; every bootstrap
    refit starts from the full-data optimum AND from the best grid point of its own resample
    (computed here on the resample's repeated rows), so it is not confined to the optimum's basin."""
    from llmplan import scaling

    starts = []
    real = scaling._lbfgs
    monkeypatch.setattr(scaling, "_lbfgs", lambda x0, *a: starts.append(np.array(x0)) or real(x0, *a))
    calls = _spy_batches(monkeypatch)
    n, d, loss = _grid_runs(k=30)
    fit = fit_law(n, d, loss, n_boot=5, seed=2)
    assert len(starts) == scaling.N_STARTS
    grid = {tuple(g) for g in scaling.GRID}
    assert all(tuple(x) in grid for x in starts)
    assert len({tuple(x) for x in starts}) == scaling.N_STARTS
    x_full = [np.log(fit.law.A), np.log(fit.law.B), np.log(fit.law.E), fit.law.alpha, fit.law.beta]
    X0, W = calls[0]
    assert len(X0) == 10 and np.allclose(X0[:5], x_full) and np.array_equal(W[:5], W[5:])
    lo, hi = np.array(scaling.BOUNDS).T
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    for counts, x0 in zip(W[:5], X0[5:]):
        rows = _resample_rows(counts)
        own = scaling._grid_objective(logn[rows], logd[rows], logl[rows])
        assert np.allclose(x0, np.clip(scaling.GRID[np.argmin(own)], lo, hi))


def _lbfgs_on_rows(x0, logn, logd, logl):
    from scipy.optimize import minimize

    from llmplan import scaling

    return minimize(scaling._objective, x0, args=(logn, logd, logl), jac=True, method="L-BFGS-B",
                    bounds=scaling.BOUNDS, options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9})


def test_each_bootstrap_draw_is_its_resamples_best_optimum(monkeypatch):
    """Every draw is at least as good, on its resample's repeated rows, as scipy's L-BFGS-B from
    the full-data optimum and from each of the resample's N_STARTS_BOOT best grid points — and
    equals the best of those where they agree (the same minimiser, found by another method)."""
    from llmplan import scaling

    calls = _spy_batches(monkeypatch)
    n, d, loss = _grid_runs(k=30, seed=3, noise=0.01)
    fit = fit_law(n, d, loss, n_boot=8, seed=5)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    x_full = [np.log(fit.law.A), np.log(fit.law.B), np.log(fit.law.E), fit.law.alpha, fit.law.beta]
    for counts, (E, A, B, al, be) in zip(calls[0][1][:8], fit.draws):
        rows = _resample_rows(counts)
        args = logn[rows], logd[rows], logl[rows]
        order = np.argsort(scaling._grid_objective(*args), kind="stable")[:scaling.N_STARTS_BOOT]
        ref = min((_lbfgs_on_rows(x0, *args) for x0 in [x_full, *scaling.GRID[order]]), key=lambda r: r.fun)
        x = np.array([np.log(A), np.log(B), np.log(E), al, be])
        f = scaling._objective(x, *args)[0]
        assert f <= ref.fun + 1e-9 * ref.fun
        assert f == pytest.approx(ref.fun, rel=1e-9)
        assert x == pytest.approx(ref.x, rel=1e-4, abs=1e-4)


def test_resamples_whose_two_starts_disagree_get_more_grid_starts(monkeypatch):
    """On a surface with flat parts, a resample's best grid point can end far from the warm start;
    those resamples (and only those) are refined from their next N_STARTS_BOOT − 1 grid points."""
    from llmplan import scaling

    calls = _spy_batches(monkeypatch)
    n = np.array([5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9])
    loss = BESIROGLU_2024.loss(n, 20 * n) * np.exp(np.random.default_rng(0).normal(0, 0.003, 6))
    fit_law(n, 20 * n, loss, n_boot=30, seed=1)
    X0, W = calls[0]
    f = scaling._batch_value(*[scaling._newton_batch(X0, W, np.log(n), np.log(20 * n), np.log(loss))[0]], W,
                             np.log(n), np.log(20 * n), np.log(loss))
    split = np.flatnonzero(np.abs(f[:30] - f[30:]) > 1e-9 * np.maximum(1.0, np.minimum(f[:30], f[30:])))
    assert split.size > 0                                            # the case this test is about occurs
    X1, W1 = calls[1]
    k = scaling.N_STARTS_BOOT - 1
    assert len(X1) == k * split.size and np.array_equal(W1, np.repeat(W[split], k, 0))
    lo, hi = np.array(scaling.BOUNDS).T
    logn, logd, logl = np.log(n), np.log(20 * n), np.log(loss)
    for j, counts in enumerate(W[split]):
        rows = _resample_rows(counts)
        own = np.argsort(scaling._grid_objective(logn[rows], logd[rows], logl[rows]), kind="stable")
        assert np.allclose(X1[j * k:(j + 1) * k], np.clip(scaling.GRID[own[1:k + 1]], lo, hi))


def test_batched_newton_has_the_objectives_derivatives_and_reaches_scipys_minima():
    """_batch_derivs: value and gradient equal _objective's, the Hessian equals the gradient's
    central finite differences; _newton_batch from perturbed starts ends where scipy's L-BFGS-B
    ends."""
    from llmplan import scaling

    n, d, loss = _grid_runs(k=40, seed=11, noise=0.01)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    rng = np.random.default_rng(4)
    W = np.array([np.bincount(rng.integers(0, 40, 40), minlength=40) for _ in range(6)], float)
    truth = np.array([np.log(482.01), np.log(2085.43), np.log(1.8172), 0.3478, 0.3658])
    X0 = truth + rng.normal(0, [0.5, 0.5, 0.05, 0.03, 0.03], (6, 5))
    f, g, H = scaling._batch_derivs(X0, W, logn, logd, logl)
    for k in range(6):
        fk, gk = scaling._objective(X0[k], logn, logd, logl, W[k])
        assert f[k] == pytest.approx(fk, rel=1e-12) and g[k] == pytest.approx(gk, rel=1e-9, abs=1e-9)
        h = 1e-6
        fd = np.array([(scaling._objective(X0[k] + h * e, logn, logd, logl, W[k])[1]
                        - scaling._objective(X0[k] - h * e, logn, logd, logl, W[k])[1]) / (2 * h) for e in np.eye(5)])
        assert H[k] == pytest.approx(fd, rel=1e-4, abs=1e-4 * np.abs(fd).max())
    X, fx, ok = scaling._newton_batch(X0, W, logn, logd, logl)
    assert ok.all()
    for k in range(6):
        rows = _resample_rows(W[k])
        ref = _lbfgs_on_rows(X0[k], logn[rows], logd[rows], logl[rows])
        assert fx[k] <= ref.fun * (1 + 1e-9) and fx[k] == pytest.approx(ref.fun, rel=1e-9)
        assert X[k] == pytest.approx(ref.x, rel=1e-4, abs=1e-4)


def test_non_convergence_is_reported(monkeypatch):
    from scipy.optimize import OptimizeResult

    from llmplan import scaling

    real = scaling._lbfgs

    def stalled(x0, *a):
        r = real(x0, *a)
        return OptimizeResult(x=r.x, fun=r.fun, success=False, message="ABNORMAL_TERMINATION_IN_LNSRCH")

    monkeypatch.setattr(scaling, "_lbfgs", stalled)
    monkeypatch.setattr(scaling, "NEWTON_MAXITER", 1)               # no refit can finish in one step
    n, d, loss = _grid_runs(k=20)
    fit = fit_law(n, d, loss, n_boot=4, seed=0)
    assert any("none of the 20 L-BFGS starts converged" in w for w in fit.warnings)
    assert "4 of 4 bootstrap refits did not converge" in " ".join(fit.warnings)
    assert not fit.identifiable                                     # a law that did not converge is not used


def test_a_fixed_tokens_per_parameter_sweep_cannot_identify_the_law():
    """Six runs at D = 20·N (the usual Chinchilla-style sweep): A/N^α and B/D^β are both powers of
    N, so the split between them — and the compute-optimal allocation — is arbitrary."""
    n = np.array([5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9])
    loss = BESIROGLU_2024.loss(n, 20 * n) * np.exp(np.random.default_rng(0).normal(0, 0.003, 6))
    fit = fit_law(n, 20 * n, loss, n_boot=60, seed=1)
    assert not fit.identifiable
    assert "tokens per parameter hardly vary" in fit.problems[0]


def test_fitter_refuses_too_few_or_non_positive_points():
    with pytest.raises(LlmplanError, match="at least 5"):
        fit_law([1e8] * 4, [1e9] * 4, [3.0] * 4)
    with pytest.raises(LlmplanError, match="positive"):
        fit_law([1e8, 2e8, 3e8, 4e8, -5e8], [1e9] * 5, [3.0] * 5)


def test_loss_interval_from_bootstrap_draws():
    from llmplan.scaling import Law, loss_quantiles

    draws = np.array([[1.8, 480.0, 2000.0, 0.35, 0.36], [1.9, 480.0, 2000.0, 0.35, 0.36]] * 5)
    law = Law("user", 1.85, 480.0, 2000.0, 0.35, 0.36, draws=draws)
    lo, hi = loss_quantiles(law, [1e9], [2e10])
    tail = 480.0 / 1e9**0.35 + 2000.0 / 2e10**0.36
    assert lo[0] == pytest.approx(1.8 + tail) and hi[0] == pytest.approx(1.9 + tail)
    assert loss_quantiles(BESIROGLU_2024, [1e9], [2e10]) == (None, None)


def test_a_resample_as_weighted_distinct_runs_has_the_resamples_objective_and_grid():
    """Bootstrap refits work on the distinct runs of a resample weighted by how often each was
    drawn, and take the grid objective as the full data's per-run Huber matrix times those
    counts: both must equal the plain computation on the resample's repeated rows."""
    from llmplan import scaling

    n, d, loss = _grid_runs(k=40)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    idx = np.random.default_rng(7).integers(0, 40, 40)
    counts = np.bincount(idx, minlength=40).astype(float)
    k = counts > 0
    theta = np.array([6.0, 8.0, 0.6, 0.35, 0.4])
    f_rep, g_rep = scaling._objective(theta, logn[idx], logd[idx], logl[idx])
    f_w, g_w = scaling._objective(theta, logn[k], logd[k], logl[k], counts[k])
    assert f_w == pytest.approx(f_rep, rel=1e-12) and g_w == pytest.approx(g_rep, rel=1e-9, abs=1e-12)
    grid = scaling._grid_huber(logn, logd, logl) @ counts
    assert grid == pytest.approx(scaling._grid_objective(logn[idx], logd[idx], logl[idx]), rel=1e-12)
    # and the objective is Huber's: δ·(|r| − δ/2) outside δ, r²/2 inside (scaled by 1/δ)
    r = np.array([-3e-3, -5e-4, 0.0, 2e-4, 4e-3])
    assert scaling._huber(r) == pytest.approx(np.where(np.abs(r) <= 1e-3, r ** 2 / 2, 1e-3 * (np.abs(r) - 5e-4)))
