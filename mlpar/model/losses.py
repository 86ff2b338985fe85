"""Per-residual loss functions φ of the seed, in the smooth forms that are trained.

A problem's loss is f(p) = Σ_j c_j φ(r_j) over its residuals r_j (interior rows
c_j = 1/t, boundary rows c_j = λ_p/t; see :mod:`mlpar.model.problems`).

``l2``        φ(r) = ½ r²                     (f is half the seed's L2 loss)
``l1``        φ(r) = √(r² + δ²) − δ           (smooth |r|; |φ(r) − |r|| ≤ δ)
``logistic``  φ(r) = 2 log cosh(r/2)          (negative log-likelihood of a logistic
                                               error, minus its constant 2 log 2)

The seed's logistic loss (1/t) Σ 1/(1 + e^{y−ĝ}) = (1/t) Σ 1/(1 + e^{−r}) decreases
without bound in the direction ĝ → −∞ and is not minimised at ĝ = y, so it
cannot be trained; :func:`seed_loss` evaluates it (and the seed's L1 and L2) for
reporting.  Every φ here is even, convex, smooth and has its minimum 0 at r = 0.
"""

from __future__ import annotations

import math

import numpy as np

NAMES = ("l2", "l1", "logistic")


def derivatives(name: str, r: np.ndarray, delta: float = 1e-3
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (φ(r), φ'(r), φ''(r)) elementwise; ``delta`` is the L1 smoothing δ > 0."""
    if name == "l2":
        return 0.5 * r * r, r.copy(), np.ones_like(r)
    if name == "l1":
        if not delta > 0:
            raise ValueError(f"the L1 smoothing δ must be > 0, got {delta}")
        root = np.sqrt(r * r + delta * delta)
        return root - delta, r / root, delta * delta / root ** 3
    if name == "logistic":
        a = np.abs(r)
        th = np.tanh(0.5 * r)
        # 2 log cosh(r/2) = |r| + 2 log(1 + e^{−|r|}) − 2 log 2, without overflow
        return a + 2.0 * np.log1p(np.exp(-a)) - 2.0 * math.log(2.0), th, 0.5 * (1.0 - th * th)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(NAMES)}")


def seed_loss(name: str, r: np.ndarray) -> float:
    """The seed's formula of loss ``name`` on residuals r = ĝ − y, as written in the talk:
    (1/t)Σ|r|, (1/t)Σr², (1/t)Σ 1/(1 + e^{−r})."""
    if name == "l1":
        return float(np.mean(np.abs(r)))
    if name == "l2":
        return float(np.mean(r * r))
    if name == "logistic":
        return float(np.mean(0.5 * (1.0 + np.tanh(0.5 * r))))   # = 1/(1 + e^{−r}), stably
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(NAMES)}")
