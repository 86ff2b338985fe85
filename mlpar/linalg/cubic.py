"""The cubic subproblem on a small subspace: min bᵀy + ½yᵀTy + (λ/3)‖y‖³ (pure numpy/scipy).

Used by the Lanczos solver of ARC (:mod:`mlpar.linalg.lanczos`) on the tridiagonal
T_k of its Krylov space.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq


def cubic_minimizer(theta: np.ndarray, V: np.ndarray, b: np.ndarray, lam: float
                    ) -> tuple[np.ndarray, float]:
    """Global minimiser y of bᵀy + ½yᵀTy + (λ/3)‖y‖³ for T = V diag(θ) Vᵀ; returns (y, μ = λ‖y‖).

    μ is the root of ‖y(μ)‖ = μ/λ, y(μ) = −(T + μI)⁻¹b, on μ > max(0, −θ_min),
    where ‖y(μ)‖ − μ/λ decreases.  In the "hard case" (b has no component along
    the eigenvectors of θ_min < 0 and no root exists) μ = −θ_min and y is
    completed along such an eigenvector to ‖y‖ = μ/λ.
    """
    if not lam > 0:
        raise ValueError(f"the cubic regularisation must be > 0, got {lam}")
    beta = V.T @ b
    low = max(0.0, -float(theta.min()))

    def coords(mu):
        return -beta / (theta + mu)

    def excess(mu):
        return float(np.linalg.norm(coords(mu))) - mu / lam

    scale = max(1.0, float(np.abs(theta).max()))
    start = low + 1e-13 * scale if theta.min() <= 0 else 0.0
    if excess(start) > 0:
        high = low + 1.01 * math.sqrt(lam * float(np.linalg.norm(beta))) + 1e-300
        while excess(high) > 0:   # safeguard against rounding in the bound above
            high = 2.0 * high + 1e-300
        mu = brentq(excess, start, high, xtol=1e-15 * high, rtol=4 * np.finfo(float).eps,
                    maxiter=500)
        return V @ coords(mu), mu
    mu = low   # hard case
    keep = theta > theta.min() + 1e-12 * scale
    yhat = np.zeros_like(beta)
    yhat[keep] = -beta[keep] / (theta[keep] + mu)
    extra = (mu / lam) ** 2 - float(yhat @ yhat)
    yhat[np.argmin(theta)] += math.sqrt(max(extra, 0.0))
    return V @ yhat, mu
