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


def derivatives(name: str, x: np.ndarray, order: int, first: int = 0) -> np.ndarray:
    """Return D with D[k − first] = σ^(k)(x) for k = first..order.

    Parameters
    ----------
    name : one of :data:`NAMES`.
    x : arguments (any shape).
    order : highest derivative, first..:data:`MAX_ORDER`.
    first : lowest derivative wanted (the others are not computed).
    """
    if name not in NAMES:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(NAMES)}")
    if not 0 <= first <= order <= MAX_ORDER:
        raise ValueError(f"derivative order {order} outside 0..{MAX_ORDER} "
                         f"(or below the first order {first})")
    x = np.asarray(x, dtype=np.float64)
    D = np.empty((order - first + 1,) + x.shape)
    if name == "tanh":
        _tanh_derivatives(x, first, order, D)
        return D
    if name == "sigmoid":
        _tanh_derivatives(0.5 * x, first, order, D)
        for k in range(max(first, 1), order + 1):
            D[k - first] *= 0.5 ** k
        return D
    if name == "logit":
        if first == 0:
            from scipy.special import expit  # only here: its import costs start-up time
            D[0] = expit(x)
        if order >= 1:
            lo = max(first, 1)
            _tanh_derivatives(0.5 * x, lo, order, D[lo - first:])
            for k in range(lo, order + 1):
                D[k - first] *= 0.5 ** (k + 1)
        return D
    # softplus: σ' = logit, σ^(k) = logit^(k−1)
    if first == 0:
        D[0] = np.logaddexp(0.0, x)
    if order >= 1:
        lo = max(first, 1)
        D[lo - first:] = derivatives("logit", x, order - 1, lo - 1)
    return D
