"""The seed's activation functions and their derivatives up to order 4.

All four are built on T(y) = tanh(y) and u(y) = sech²(y) = 1 − T²:

    T' = u,   T'' = −2Tu,   T''' = u(4 − 6u),   T'''' = 8Tu(3u − 1),

with u computed as 4e/(1 + e)², e = exp(−2|y|), which neither overflows nor
cancels (1 − T² would lose every digit once |y| > 19).  Then

* ``sigmoid``  σ(x) = (eˣ − 1)/(eˣ + 1) = T(x/2),          σ^(k)(x) = T^(k)(x/2) / 2^k
* ``tanh``     σ(x) = (e²ˣ − 1)/(e²ˣ + 1) = T(x),           σ^(k)(x) = T^(k)(x)
* ``logit``    σ(x) = eˣ/(eˣ + 1) = (1 + T(x/2))/2,         σ^(k)(x) = T^(k)(x/2) / 2^(k+1), k ≥ 1
* ``softplus`` σ(x) = log(eˣ + 1),                          σ^(k) = logit^(k−1), k ≥ 1

Values of ``logit`` and ``softplus`` use ``scipy.special.expit`` and
``numpy.logaddexp`` so that their tails keep full relative accuracy.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

NAMES = ("sigmoid", "tanh", "logit", "softplus")
MAX_ORDER = 4


def _tanh_derivatives(y: np.ndarray, first: int, last: int, out: np.ndarray) -> None:
    """out[k − first] = T^(k)(y) for k = first..last (T = tanh)."""
    T = np.tanh(y)
    if last >= 1:
        e = np.exp(-2.0 * np.abs(y))
        u = 4.0 * e / (1.0 + e) ** 2
    for k in range(first, last + 1):
        d = out[k - first]
        if k == 0:
            d[...] = T
        elif k == 1:
            d[...] = u
        elif k == 2:
            np.multiply(T, u, out=d)
            d *= -2.0
        elif k == 3:
            np.multiply(u, 4.0 - 6.0 * u, out=d)
        else:
            np.multiply(T, u, out=d)
            d *= 8.0 * (3.0 * u - 1.0)


def derivatives(name: str, x: np.ndarray, order: int) -> np.ndarray:
    """Return D with D[k] = σ^(k)(x) for k = 0..order, shape (order + 1,) + x.shape.

    Parameters
    ----------
    name : one of :data:`NAMES`.
    x : arguments (any shape).
    order : highest derivative, 0..:data:`MAX_ORDER`.
    """
    if name not in NAMES:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(NAMES)}")
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"derivative order {order} outside 0..{MAX_ORDER}")
    x = np.asarray(x, dtype=np.float64)
    D = np.empty((order + 1,) + x.shape)
    if name == "tanh":
        _tanh_derivatives(x, 0, order, D)
        return D
    y = 0.5 * x
    if name == "sigmoid":
        _tanh_derivatives(y, 0, order, D)
        for k in range(1, order + 1):
            D[k] *= 0.5 ** k
        return D
    if name == "logit":
        D[0] = expit(x)
        if order >= 1:
            _tanh_derivatives(y, 1, order, D[1:])
            for k in range(1, order + 1):
                D[k] *= 0.5 ** (k + 1)
        return D
    # softplus: σ' = logit, σ^(k) = logit^(k−1)
    D[0] = np.logaddexp(0.0, x)
    if order >= 1:
        D[1:] = derivatives("logit", x, order - 1)
    return D
