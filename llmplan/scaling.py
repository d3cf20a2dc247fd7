"""Scaling laws: L(N, D) = E + A/N^α + B/D^β, the compute-optimal split, repeated data, and
fitting a law to the team's own small runs.

Constants: Hoffmann et al. 2022 (Chinchilla, approach 3) and Besiroglu et al. 2024 (its
replication). Fitting follows Hoffmann: Huber loss (δ = 1e-3) on log-loss residuals of the
log-sum-exp form LSE(a − α·log N, b − β·log D, e) with A = eᵃ, B = eᵇ, E = eᵉ, L-BFGS from a
grid of initialisations; intervals by bootstrap over runs.
Repeated data: Muennighoff et al. 2023 — U unique tokens seen for R repetitions beyond the
first epoch count as D' = U + U·R*·(1 − e^(−R/R*)), R* ≈ 15.4.
"""

import math
from dataclasses import asdict, dataclass

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
        return asdict(self)


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


def _objective(theta, logn, logd, logl):
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * logn, b - beta * logd, np.full_like(logn, e)])
    m = terms.max(axis=0)
    lse = m + np.log(np.exp(terms - m).sum(axis=0))
    r = lse - logl
    absr = np.abs(r)
    huber = np.where(absr <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA))
    w = np.exp(terms - lse)                    # softmax weights: d lse / d term
    g = np.where(absr <= HUBER_DELTA, r, HUBER_DELTA * np.sign(r))
    grad = np.array([
        (g * w[0]).sum(), (g * w[1]).sum(), (g * w[2]).sum(),
        (g * w[0] * -logn).sum(), (g * w[1] * -logd).sum(),
    ])
    # Scaled by 1/δ (same minimiser): raw Huber values are ~1e-6 and L-BFGS would stop early.
    return huber.sum() / HUBER_DELTA, grad / HUBER_DELTA


def _lbfgs(x0, logn, logd, logl):
    from scipy.optimize import minimize

    return minimize(_objective, x0, args=(logn, logd, logl), jac=True, method="L-BFGS-B",
                    bounds=[(-10, 40), (-10, 40), (-3, 3), (0.01, 3), (0.01, 3)],
                    options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9})


def _fit_once(logn, logd, logl):
    best = None
    for a in (0.0, 5.0, 10.0, 15.0, 20.0, 25.0):
        for b in (0.0, 5.0, 10.0, 15.0, 20.0, 25.0):
            for e in (-1.0, 0.0, 0.5, 1.0):
                for alpha in (0.0, 0.5, 1.0, 1.5, 2.0):
                    for beta in (0.0, 0.5, 1.0, 1.5, 2.0):
                        x0 = np.array([a, b, e, alpha, beta])
                        val = _objective(x0, logn, logd, logl)[0]
                        if best is None or val < best[0]:
                            best = (val, x0)
    # Refine the best few grid points with L-BFGS.
    starts = [best[1]] + [best[1] + np.array(d) for d in ((2, 2, 0, 0.1, 0.1), (-2, -2, 0, -0.1, -0.1), (0, 0, 0.3, 0, 0))]
    result = None
    for x0 in starts:
        r = _lbfgs(x0, logn, logd, logl)
        if result is None or r.fun < result.fun:
            result = r
    return result


def fit_law(params, tokens, losses, n_boot: int = 200, seed: int = 0, name: str = "user") -> tuple[Law, dict]:
    """Fit E, A, B, α, β; returns the law and {param: (lo, hi)} 95% bootstrap intervals."""
    params, tokens, losses = (np.asarray(x, float) for x in (params, tokens, losses))
    if len(params) < 5:
        raise LlmplanError(f"need at least 5 finished runs to fit a scaling law, got {len(params)}")
    if (params <= 0).any() or (tokens <= 0).any() or (losses <= 0).any():
        raise LlmplanError("params, tokens and loss must all be positive")
    logn, logd, logl = np.log(params), np.log(tokens), np.log(losses)
    res = _fit_once(logn, logd, logl)
    if not res.success and "ABNORMAL" in str(res.message).upper():
        raise LlmplanError(f"the scaling-law fit did not converge ({res.message}); nothing was stored")
    a, b, e, alpha, beta = res.x
    law = Law(name, math.exp(e), math.exp(a), math.exp(b), float(alpha), float(beta), "fit to user runs")
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(params), len(params))
        r = _lbfgs(res.x, logn[idx], logd[idx], logl[idx])   # resamples start from the full-data optimum
        a_, b_, e_, al_, be_ = r.x
        boots.append((math.exp(e_), math.exp(a_), math.exp(b_), al_, be_))
    boots = np.array(boots)
    ci = {k: (float(np.percentile(boots[:, i], 2.5)), float(np.percentile(boots[:, i], 97.5)))
          for i, k in enumerate(("E", "A", "B", "alpha", "beta"))}
    return law, ci
