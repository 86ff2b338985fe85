"""Adaptive regularisation with cubics (ARC, q = 2) on the training loss.

At x_k with f, g = ∇f, H = ∇²f (exact, as products: :mod:`mlpar.secondorder`)
and regularisation λ_k, the trial step approximately minimises

    m(s) = f + gᵀs + ½ sᵀHs + (λ_k/3)‖s‖³,

to the step condition of Birgin et al. (q = 2):  m(s) < m(0) and
‖∇m(s)‖ ≤ θ‖s‖².  The minimisation runs on a Krylov (Lanczos) subspace
(:mod:`mlpar.lanczos`), where the small problem is solved exactly by
:func:`cubic_minimizer`.  The step is judged, and λ updated, exactly as in LM
(:func:`mlpar.lm.judge`), with the Taylor decrease
pred = T₂(x, 0) − T₂(x, s) = −gᵀs − ½ sᵀHs.  H may be indefinite: the cubic
term keeps the model bounded below, and the global minimiser of the model is
characterised by (H + μI)s = −g, μ = λ‖s‖, H + μI ⪰ 0 (Cartis, Gould & Toint 2011).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import brentq

from mlpar.leastsquares import Linearization, LinearSolveError
from mlpar.lm import LevenbergMarquardt, Proposal

if TYPE_CHECKING:  # lanczos imports PETSc, which must be initialised by __main__ first
    from mlpar.lanczos import CubicSolver


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


def cubic_step(objective, solver: CubicSolver, lin: Linearization, lam: float,
               level: int) -> Proposal:
    """The ARC trial step and its Taylor decrease −gᵀs − ½sᵀHs; a failed solve gives a step
    that the ratio test rejects."""
    try:
        s, info = solver.solve(objective, lin, lam)
    except LinearSolveError:
        return Proposal(np.zeros_like(lin.x), -math.inf, level)
    return Proposal(s, info.pred, level, info.iterations)


class AdaptiveCubic(LevenbergMarquardt):
    """ARC (q = 2): the LM loop of :func:`mlpar.lm.run` with cubic-regularised Taylor steps."""

    step = staticmethod(cubic_step)
