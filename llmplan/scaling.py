"""Scaling laws: L(N, D) = E + A/N^α + B/D^β, the compute-optimal split, repeated data, and
fitting a law to the team's own small runs.

Constants: Hoffmann et al. 2022 (Chinchilla, approach 3) and Besiroglu et al. 2024 (its
replication). Fitting follows Hoffmann: Huber loss (δ = 1e-3) on log-loss residuals of the
log-sum-exp form LSE(a − α·log N, b − β·log D, e) with A = eᵃ, B = eᵇ, E = eᵉ, L-BFGS from a
grid of initialisations; intervals by bootstrap over runs (each resample refitted to its own
optimum by a batched Newton method; see _newton_batch for why not scipy there).
Repeated data: Muennighoff et al. 2023 — U unique tokens seen for R repetitions beyond the
first epoch count as D' = U + U·R*·(1 − e^(−R/R*)), R* ≈ 15.4.
"""

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from llmplan.errors import LlmplanError

R_STAR = 15.4


@dataclass(frozen=True)
class Law:
    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""
    # Bootstrap draws (E, A, B, alpha, beta) of a fitted law, for loss intervals; None for
    # published constants (they come without joint draws).
    draws: np.ndarray | None = field(default=None, compare=False, repr=False)

    def loss(self, n, d):
        n, d = np.asarray(n, float), np.asarray(d, float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def optimal(self, compute):
        """Compute-optimal (N, D) for C = 6·N·D."""
        c6 = np.asarray(compute, float) / 6.0
        a, b = self.alpha, self.beta
        n = self.G() * c6 ** (b / (a + b))
        d = c6 ** (a / (a + b)) / self.G()
        return n, d

    def tokens_for_loss(self, n, target_loss):
        """D such that L(N, D) = target (inf when N alone cannot reach it)."""
        n = np.asarray(n, float)
        gap = np.asarray(target_loss, float) - self.E - self.A / n**self.alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (self.B / gap) ** (1.0 / self.beta), np.inf)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("draws")
        return d


HOFFMANN_2022 = Law("hoffmann2022", 1.69, 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. 2022, approach 3")
BESIROGLU_2024 = Law("besiroglu2024", 1.8172, 482.01, 2085.43, 0.3478, 0.3658, "Besiroglu et al. 2024 (Chinchilla replication)")
SHIPPED_LAWS = {law.name: law for law in (HOFFMANN_2022, BESIROGLU_2024)}


def effective_tokens(tokens, unique_tokens):
    """Muennighoff et al. 2023: value of `tokens` drawn from `unique_tokens` with repetition."""
    tokens, unique = np.asarray(tokens, float), np.asarray(unique_tokens, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.maximum(tokens / unique - 1.0, 0.0)
        eff = unique + unique * R_STAR * (1.0 - np.exp(-reps / R_STAR))
    return np.where(np.isfinite(unique) & (unique > 0), np.minimum(eff, tokens), tokens)


# -- fitting -------------------------------------------------------------------------------

HUBER_DELTA = 1e-3
# Hoffmann et al. 2022 (and Besiroglu et al. 2024, "4500 initialisations"): the grid of starts.
GRID = np.array(np.meshgrid([0.0, 5.0, 10.0, 15.0, 20.0, 25.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
                            [-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 0.5, 1.0, 1.5, 2.0],
                            indexing="ij")).reshape(5, -1).T
BOUNDS = [(-10.0, 40.0), (-10.0, 40.0), (-3.0, 3.0), (0.01, 3.0), (0.01, 3.0)]
N_STARTS = 20                        # L-BFGS runs from the best grid points of the data
# Each bootstrap refit starts from the full-data optimum and from its resample's best grid point;
# when the two end apart (different basins, or one stuck on a flat part of the surface) the
# resample's next N_STARTS_BOOT − 1 grid points are refined too, and the best of all is kept.
N_STARTS_BOOT = 4
NEWTON_MAXITER = 1000                # per start, for the batched refits (see _newton_batch)
BATCH_CELLS = 1_000_000              # starts × runs per batched block (its Hessian terms: 40 MB)
# Identifiability (see check_identifiable): the tokens-per-parameter ratio must vary across runs,
# and an exponent whose 95 % bootstrap interval is wider than this is not pinned down.
MIN_LOG_RATIO_SPREAD = 0.25          # sd of ln(D/N) left after regressing ln D on ln N (≈ ×1.3)
MAX_EXPONENT_CI_WIDTH = 0.5


def _huber(r):
    """Huber's ρ as g·(r − g/2) with g = clip(r, ±δ) (= r²/2 inside δ, δ·(|r| − δ/2) outside)."""
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
    return g * (r - 0.5 * g)


def _objective(theta, logn, logd, logl, w=None):
    """Σ w·Huber(LSE − log L) and its gradient; `w` counts how often each run is in a bootstrap
    resample (the same sum as over the resample's repeated rows, on fewer rows)."""
    a, b, e, alpha, beta = theta
    t1, t2 = a - alpha * logn, b - beta * logd
    m = np.maximum(np.maximum(t1, t2), e)
    e1, e2, e3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = e1 + e2 + e3
    r = m + np.log(s) - logl
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA)      # Huber's ψ: dρ/dr
    h = g * (r - 0.5 * g)
    if w is not None:
        g, h = g * w, h * w
    gs = g / s                                     # × softmax weights e_k/s: d lse / d term k
    g1, g2 = gs * e1, gs * e2
    s1, s2 = g1.sum(), g2.sum()
    grad = np.array([s1, s2, (gs * e3).sum(), -(g1 @ logn), -(g2 @ logd)])
    # Scaled by 1/δ (same minimiser): raw Huber values are ~1e-6 and L-BFGS would stop early.
    return h.sum() / HUBER_DELTA, grad / HUBER_DELTA


def _grid_huber(logn, logd, logl) -> np.ndarray:
    """Huber loss of every run at every grid start (starts × runs), computed once: the grid
    objective of the data is its row sums, that of a bootstrap resample its product with the
    resample's counts (no 4,500 × n recomputation per resample)."""
    a, b, e, alpha, beta = (GRID[:, i:i + 1] for i in range(5))
    t1, t2 = a - alpha * logn[None, :], b - beta * logd[None, :]
    t3 = np.broadcast_to(e, t1.shape)
    m = np.maximum(np.maximum(t1, t2), t3)
    lse = m + np.log(np.exp(t1 - m) + np.exp(t2 - m) + np.exp(t3 - m))
    return _huber(lse - logl[None, :])


def _grid_objective(logn, logd, logl) -> np.ndarray:
    """The objective at every grid start at once (vectorised over starts × runs)."""
    return _grid_huber(logn, logd, logl).sum(axis=1)


def _lbfgs(x0, logn, logd, logl, w=None):
    from scipy.optimize import minimize

    return minimize(_objective, x0, args=(logn, logd, logl, w), jac=True, method="L-BFGS-B", bounds=BOUNDS,
                    options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9})


def _fit_once(logn, logd, logl, n_starts: int, w=None, grid_values=None):
    """L-BFGS from the n_starts best grid points of these data (grid_values: the objective at
    each grid point, when already known); the best converged result (or the best of all when
    none converged) and how many starts converged."""
    values = _grid_objective(logn, logd, logl) if grid_values is None else grid_values
    order = np.argsort(values, kind="stable")[:n_starts]
    results = [_lbfgs(GRID[i], logn, logd, logl, w) for i in order]
    ok = [r for r in results if r.success]
    best = min(ok or results, key=lambda r: r.fun)
    return best, len(ok)


# -- bootstrap refits, batched --------------------------------------------------------------
# Why not scipy here: scipy.optimize solves one problem per call, and on these 5-parameter,
# few-hundred-run problems its per-iteration Python overhead costs more than the arithmetic;
# the bootstrap is hundreds of such problems (every resample × its starts). A damped Newton step
# with the exact Hessian, taken for all of them at once in numpy, converges in ~20 iterations
# from the full-data optimum (L-BFGS needs ~70 evaluations on this kinked Huber surface) and
# reaches the same minima (tests/llmplan/test_scaling.py compares it with scipy's L-BFGS-B).


def _batch_terms(X, logn, logd, logl):
    """exp of the three LSE terms and the residual r = LSE − log L, for K parameter rows × n runs."""
    e1 = np.exp(X[:, 0:1] - X[:, 3:4] * logn)
    e2 = np.exp(X[:, 1:2] - X[:, 4:5] * logd)
    e3 = np.exp(X[:, 2:3])
    s = e1 + e2 + e3          # no max-shift needed: within BOUNDS the exponents stay far from overflow
    return e1, e2, e3, s, np.log(s) - logl


def _batch_value(X, W, logn, logd, logl):
    """The objective (as _objective) of K parameter rows, each with its own run weights W[k]."""
    r = _batch_terms(X, logn, logd, logl)[4]
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
    return np.einsum("kn,kn->k", W, g * (r - 0.5 * g)) / HUBER_DELTA


def _batch_derivs(X, W, logn, logd, logl):
    """Objective, gradient (K×5) and exact Hessian (K×5×5) of K parameter rows. With p the
    softmax weights of the LSE terms, ∇r = Mᵀp and ∇²r = Mᵀ(diag p − ppᵀ)M (M: each term's
    derivative in θ), so ∇²Σwρ(r) = Σ w·[ρ''(r)·∇r∇rᵀ + ψ(r)·∇²r], ρ'' = 1 inside δ, 0 outside."""
    e1, e2, e3, s, r = _batch_terms(X, logn, logd, logl)
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
    f = np.einsum("kn,kn->k", W, g * (r - 0.5 * g))
    gw = g * W
    p1, p2, p3 = e1 / s, e2 / s, e3 / s
    q1, q2, q3 = gw * p1, gw * p2, gw * p3
    l1, l2 = q1 @ logn, q2 @ logd
    grad = np.stack([q1.sum(1), q2.sum(1), q3.sum(1), -l1, -l2], axis=1)
    J = np.stack([p1, p2, p3, -p1 * logn, -p2 * logd], axis=1)                  # ∇r, K×5×n
    H = (J * (np.where(np.abs(r) < HUBER_DELTA, W, 0.0) - gw)[:, None, :]) @ J.transpose(0, 2, 1)
    H[:, 0, 0] += q1.sum(1)
    H[:, 1, 1] += q2.sum(1)
    H[:, 2, 2] += q3.sum(1)
    H[:, 0, 3] -= l1
    H[:, 3, 0] -= l1
    H[:, 1, 4] -= l2
    H[:, 4, 1] -= l2
    H[:, 3, 3] += q1 @ logn**2
    H[:, 4, 4] += q2 @ logd**2
    return f / HUBER_DELTA, grad / HUBER_DELTA, H / HUBER_DELTA


def _newton_batch(X0, W, logn, logd, logl, maxiter: int | None = None, gtol: float = 1e-9):
    """Minimise the objective from K starts at once (row k weighted by W[k]) within BOUNDS:
    projected Newton steps (variables on a bound that the gradient pushes outward are held)
    with |eigenvalues| of the Hessian plus a Levenberg damping μ·max|λ| that shrinks after a
    step that lowers the objective and grows after one that does not. A row stops when its
    projected gradient is below gtol·max(1, f), when a step no longer lowers f measurably, or
    when no step does (μ exhausted): all three are minima to working precision. Returns
    (X, f, converged) — converged is False for rows that hit `maxiter`."""
    rows = max(1, BATCH_CELLS // max(1, len(logn)))           # rows × runs per block: bounded memory
    if len(X0) > rows:
        parts = [_newton_batch(X0[i:i + rows], W[i:i + rows], logn, logd, logl, maxiter, gtol)
                 for i in range(0, len(X0), rows)]
        return tuple(np.concatenate(p) for p in zip(*parts))
    lo, hi = np.array(BOUNDS).T
    maxiter = NEWTON_MAXITER if maxiter is None else maxiter
    X = np.clip(np.array(X0, float), lo, hi)
    f, grad, H = _batch_derivs(X, W, logn, logd, logl)
    mu = np.full(len(X), 1e-3)
    active = np.ones(len(X), bool)
    converged = np.zeros(len(X), bool)
    for _ in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        x, g, fi, mi = X[idx], grad[idx], f[idx], mu[idx]
        held = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        pg = np.where(held, 0.0, g)
        free = ~held
        Hf = H[idx] * (free[:, :, None] & free[:, None, :]) + np.eye(5) * held[:, :, None]
        lam, V = np.linalg.eigh(Hf)
        lam = np.abs(lam)
        lam += mi[:, None] * (lam.max(axis=1, keepdims=True) + 1e-12)
        step = -np.einsum("kij,kj->ki", V, np.einsum("kji,kj->ki", V, pg) / lam)
        xn = np.clip(x + step, lo, hi)
        fn = _batch_value(xn, W[idx], logn, logd, logl)
        at_min = np.abs(pg).max(axis=1) <= gtol * np.maximum(1.0, np.abs(fi))
        better = (fn < fi) & ~at_min
        acc = idx[better]
        if acc.size:
            X[acc] = xn[better]
            f[acc], grad[acc], H[acc] = _batch_derivs(X[acc], W[acc], logn, logd, logl)
        mu[idx] = np.where(better, np.maximum(mi / 4, 1e-12), mi * 10)
        flat = better & (fi - fn <= 1e-15 * np.maximum(1.0, np.abs(fi)))
        stop = at_min | flat | (~better & (mi > 1e11))
        converged[idx[stop]] = True
        active[idx[stop]] = False
    return X, f, converged


def _bootstrap_refits(logn, logd, logl, x_full, huber, counts):
    """Refit every resample (rows of `counts`: how often each run was drawn) to its own optimum:
    from the full-data optimum and from its best grid point, and, where the two disagree, from its
    next N_STARTS_BOOT − 1 grid points as well; the best end of each resample's starts is kept.
    Returns the (n_boot × 5) optima and which of them converged."""
    n_boot = len(counts)
    grid_values = counts @ huber.T                                        # n_boot × grid
    order = np.argsort(grid_values, axis=1, kind="stable")[:, :N_STARTS_BOOT]
    X, f, ok = _newton_batch(np.concatenate([np.repeat(x_full[None], n_boot, 0), GRID[order[:, 0]]]),
                             np.concatenate([counts, counts]), logn, logd, logl)
    X, f, ok = X.reshape(2, n_boot, 5), f.reshape(2, n_boot), ok.reshape(2, n_boot)
    best = np.argmin(f, axis=0)
    x_best, f_best, ok_best = X[best, np.arange(n_boot)], f[best, np.arange(n_boot)], ok[best, np.arange(n_boot)]
    split = np.flatnonzero(np.abs(f[0] - f[1]) > 1e-9 * np.maximum(1.0, f_best))
    if split.size and N_STARTS_BOOT > 1:
        k = N_STARTS_BOOT - 1
        Xm, fm, okm = _newton_batch(GRID[order[split, 1:]].reshape(-1, 5), np.repeat(counts[split], k, 0),
                                    logn, logd, logl)
        Xm, fm, okm = Xm.reshape(-1, k, 5), fm.reshape(-1, k), okm.reshape(-1, k)
        j = np.argmin(fm, axis=1)
        r = np.arange(len(split))
        lower = fm[r, j] < f_best[split]
        x_best[split[lower]], ok_best[split[lower]] = Xm[r, j][lower], okm[r, j][lower]
    return x_best, ok_best


@dataclass
class Fit:
    """A fitted law with what a user must know before trusting it."""
    law: Law
    ci: dict                     # parameter -> (lo, hi), 95 % bootstrap
    draws: np.ndarray            # bootstrap draws, columns E, A, B, alpha, beta
    warnings: list[str]
    problems: list[str]          # why the data cannot identify the law (empty = usable)

    @property
    def identifiable(self) -> bool:
        return not self.problems


def check_identifiable(logn, logd, x, ci) -> list[str]:
    """What these runs cannot tell apart, in words (empty when the law is identified):
    * N and D move together: with a fixed tokens-per-parameter ratio (the usual D = 20·N sweep)
      the parameter term A/N^α and the data term B/D^β are both powers of N, so any split of the
      loss between them fits equally well and the compute-optimal allocation is arbitrary;
    * an estimate sits on its search bound (the optimiser ran out of room, not into a minimum);
    * an exponent's bootstrap interval is wider than MAX_EXPONENT_CI_WIDTH."""
    problems = []
    slope, icept = np.polyfit(logn, logd, 1) if np.ptp(logn) > 0 else (0.0, float(np.mean(logd)))
    spread = float(np.std(logd - (slope * logn + icept)))
    if spread < MIN_LOG_RATIO_SPREAD:
        ratio = np.exp(logd - logn)
        problems.append(
            f"the runs' tokens per parameter hardly vary (D/N from {ratio.min():.3g} to {ratio.max():.3g}; after "
            f"allowing for size, ln D varies by only {spread:.2f}): the loss cannot be split between model size and "
            "data, so the compute-optimal allocation is arbitrary. Train each size on at least three token counts "
            "(e.g. 10, 20 and 40 tokens per parameter)")
    names = ("a=log A", "b=log B", "e=log E", "alpha", "beta")
    for v, (lo, hi), name in zip(x, BOUNDS, names):
        if min(v - lo, hi - v) < 1e-3 * (hi - lo):
            problems.append(f"{name} = {v:.3g} sits on its search bound [{lo:g}, {hi:g}]: the data do not pin it down")
    for k in ("alpha", "beta"):
        lo, hi = ci[k]
        if hi - lo > MAX_EXPONENT_CI_WIDTH:
            problems.append(f"the 95 % bootstrap interval of {k} is [{lo:.3g}, {hi:.3g}], too wide to plan with")
    return problems


@functools.cache
def _blas():
    """threadpoolctl's view of the loaded BLAS libraries, found once. scipy.optimize is imported
    first: scipy ships its own OpenBLAS, which the controller only sees once it is loaded."""
    import scipy.optimize  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def fit_law(params, tokens, losses, n_boot: int = 200, seed: int = 0, name: str = "user") -> Fit:
    """Fit E, A, B, α, β (Hoffmann et al. 2022's method: Huber loss on log-loss residuals of the
    log-sum-exp form, L-BFGS from the best starts of the 4,500-point grid); 95 % intervals from
    `n_boot` bootstrap resamples, each refitted to its own optimum (from the full-data optimum
    and its own best grid starts, all resamples at once: _bootstrap_refits).

    BLAS runs single-threaded here: scipy's L-BFGS-B calls BLAS on 5-element vectors thousands
    of times and the batched refits on 5×5 matrices, and OpenBLAS's threads waking for each call
    cost far more than they give on a busy machine (bench/scaling_fit.py prints the ratio)."""
    with _blas().limit(limits=1, user_api="blas"):
        return _fit_law(params, tokens, losses, n_boot, seed, name)


def _fit_law(params, tokens, losses, n_boot: int, seed: int, name: str) -> Fit:
    params, tokens, losses = (np.asarray(x, float) for x in (params, tokens, losses))
    if len(params) < 5:
        raise LlmplanError(f"need at least 5 finished runs to fit a scaling law, got {len(params)}")
    if (params <= 0).any() or (tokens <= 0).any() or (losses <= 0).any():
        raise LlmplanError("params, tokens and loss must all be positive")
    logn, logd, logl = np.log(params), np.log(tokens), np.log(losses)
    huber = _grid_huber(logn, logd, logl)
    res, n_ok = _fit_once(logn, logd, logl, N_STARTS, grid_values=huber.sum(axis=1))
    warnings = []
    if not res.success:
        warnings.append(f"none of the {N_STARTS} L-BFGS starts converged ({res.message}); the best is reported")
    a, b, e, alpha, beta = res.x
    law = Law(name, math.exp(e), math.exp(a), math.exp(b), float(alpha), float(beta), "fit to user runs")
    rng = np.random.default_rng(seed)
    # each resample as how often each run was drawn (the same sum as over its repeated rows)
    counts = np.array([np.bincount(rng.integers(0, len(params), len(params)), minlength=len(params))
                       for _ in range(n_boot)], float).reshape(n_boot, len(params))
    x_boot, ok = _bootstrap_refits(logn, logd, logl, res.x, huber, counts)
    failed = int(np.sum(~ok))
    if failed:
        warnings.append(f"{failed} of {n_boot} bootstrap refits did not converge (their best start is kept)")
    draws = np.column_stack([np.exp(x_boot[:, 2]), np.exp(x_boot[:, 0]), np.exp(x_boot[:, 1]), x_boot[:, 3], x_boot[:, 4]])
    ci = {k: (float(np.percentile(draws[:, i], 2.5)), float(np.percentile(draws[:, i], 97.5)))
          for i, k in enumerate(("E", "A", "B", "alpha", "beta"))}
    problems = check_identifiable(logn, logd, res.x, ci)
    if not res.success:
        problems.append("the fit did not converge")
    return Fit(law, ci, draws, warnings, problems)


def loss_quantiles(law: Law, n, d):
    """(p10, p90) of the loss at (N, D) over a fitted law's bootstrap draws (vectorised over
    points × draws); (None, None) for published constants, which come without joint draws."""
    draws = law.draws
    if draws is None or len(draws) == 0:
        return None, None
    n, d = np.asarray(n, float)[..., None], np.asarray(d, float)[..., None]
    E, A, B, al, be = (draws[:, i] for i in range(5))
    loss = E + A / n**al + B / d**be
    return np.percentile(loss, 10, axis=-1), np.percentile(loss, 90, axis=-1)
