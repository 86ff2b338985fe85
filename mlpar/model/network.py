"""The shallow network of the seed and its derivatives.

The network is

    ĝ(z, p) = Σ_{i=1..r} v_i σ(w_i z + b_i),      p = [v; w; b] ∈ R^{3r},

(one input, one hidden layer of width r, no output bias).  A linear differential
operator D(u) = Σ_k c_k u^(k) applied to ĝ is again a sum over neurons,

    D(ĝ)(z) = Σ_k c_k Σ_i v_i w_i^k σ^(k)(a_i),   a_i = w_i z + b_i,

and its parameter Jacobian has, for each term (k, c), the columns

    ∂/∂v_i = c w_i^k σ^(k)(a_i)
    ∂/∂w_i = c v_i (k w_i^(k−1) σ^(k)(a_i) + w_i^k z σ^(k+1)(a_i))
    ∂/∂b_i = c v_i w_i^k σ^(k+1)(a_i).

Each point's D(ĝ)(z) depends on neuron i only through (v_i, w_i, b_i), so its
Hessian in p is block-diagonal with one symmetric 3×3 block per neuron
(:func:`operator_curvature`); it needs σ up to order k + 2.

Everything here is pure numpy; rows (points) are processed in blocks so that the
r × m temporaries stay bounded for wide networks and many points.  Jacobians are
column-major (J is stored as the rows of Jᵀ, one per parameter).
"""

from __future__ import annotations

import numpy as np

from mlpar.model import activations

#: Rows of z handled at once; bounds the (order+2) m×r temporaries.
ROW_BLOCK = 2048

Terms = tuple[tuple[int, float], ...]
"""A linear operator Σ_k c_k d^k/dz^k, as ((k, c_k), ...)."""


def split(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the views (v, w, b) of p = [v; w; b]."""
    r = p.size // 3
    return p[:r], p[r:2 * r], p[2 * r:]


def _orders(terms: Terms, extra: int) -> tuple[int, int]:
    """The lowest and highest derivative of σ that the operator (plus ``extra``) needs."""
    return min(k for k, _ in terms), max(k for k, _ in terms) + extra


def apply_operator(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms) -> np.ndarray:
    """Return D(ĝ)(z_j) = Σ_k c_k ĝ^(k)(z_j) for every point z_j."""
    v, w, b = split(p)
    out = np.empty(z.size)
    low, top = _orders(terms, 0)
    for lo in range(0, z.size, ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, zb[:, None] * w + b, top, low)
        acc = np.zeros(zb.size)
        for k, c in terms:
            acc += c * (S[k - low] @ (v * w ** k))
        out[lo:lo + ROW_BLOCK] = acc
    return out


def operator_jacobian(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (D(ĝ)(z), J) with J_{j,:} = ∂ D(ĝ)(z_j) / ∂p, columns ordered [v; w; b].

    J is filled through its transpose Jᵀ (neuron-major: one row per parameter),
    so a column-major J (the default) is written contiguously, and products
    P_fullᵀ Jᵀ (:meth:`mlpar.amg.Transfer.coarse_columns`) read it without a copy.

    Parameters
    ----------
    activation : name of σ (see :mod:`mlpar.activations`).
    p : parameters [v; w; b], length 3r.
    z : points, shape (m,).
    terms : the operator D as ((k, c_k), ...).
    out : optional preallocated (m, 3r) array for J (any memory order).
    """
    v, w, b = split(p)
    r = v.size
    m = z.size
    J = np.empty((m, 3 * r), order="F") if out is None else out
    values = np.empty(m)
    low, top = _orders(terms, 1)
    for lo in range(0, m, ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, w[:, None] * zb + b[:, None], top, low)
        JT = J[lo:lo + zb.size].T
        Jv, Jw, Jb = JT[:r], JT[r:2 * r], JT[2 * r:]
        for i, (k, c) in enumerate(terms):
            wk = (c * w ** k)[:, None]
            Sk, Sk1 = S[k - low], S[k + 1 - low]
            # ∂/∂v = c w^k S_k,  ∂/∂b = c v w^k S_{k+1},  ∂/∂w = z ∂/∂b + c k v w^(k−1) S_k
            if i == 0:   # the first term writes J in place (no zero fill), the others add
                np.multiply(Sk, wk, out=Jv)
                np.multiply(Sk1, v[:, None] * wk, out=Jb)
                np.multiply(Jb, zb, out=Jw)
            else:
                Jv += Sk * wk
                term_b = Sk1 * (v[:, None] * wk)
                Jb += term_b
                term_b *= zb
                Jw += term_b
            if k > 0:
                Jw += Sk * (c * k * v * w ** (k - 1))[:, None]
        values[lo:lo + zb.size] = v @ Jv
    return values, J


CURVATURE_ENTRIES = ("vv", "vw", "vb", "ww", "wb", "bb")
"""Rows of the (6, r) array returned by :func:`operator_curvature`."""


def operator_curvature(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                       weights: np.ndarray) -> np.ndarray:
    """Return M = Σ_j weights_j ∇²_p D(ĝ)(z_j) as its 3×3 blocks per neuron, shape (6, r).

    Row e of the result holds entry e of :data:`CURVATURE_ENTRIES` for every
    neuron.  For a term c·(d/dz)^k and S_q = σ^(q)(w z + b), the nonzero second
    derivatives of c v w^k S_k are

        ∂²/∂v∂w = c (k w^(k−1) S_k + w^k z S_{k+1})       ∂²/∂v∂b = c w^k S_{k+1}
        ∂²/∂w²  = c v (k(k−1) w^(k−2) S_k + 2k w^(k−1) z S_{k+1} + w^k z² S_{k+2})
        ∂²/∂w∂b = c v (k w^(k−1) S_{k+1} + w^k z S_{k+2})  ∂²/∂b² = c v w^k S_{k+2}

    (∂²/∂v² = 0), each summed over the points with the given weights.
    """
    v, w, b = split(p)
    M = np.zeros((6, v.size))
    vv, vw, vb, ww, wb, bb = M
    low, top = _orders(terms, 2)
    for lo in range(0, z.size, ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        ub = weights[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, zb[:, None] * w + b, top, low)
        uz, uzz = ub * zb, ub * zb * zb
        for k, c in terms:
            Sk, Sk1, Sk2 = S[k - low], S[k + 1 - low], S[k + 2 - low]
            A0, A1, A1z = ub @ Sk, ub @ Sk1, uz @ Sk1
            A2, A2z, A2zz = ub @ Sk2, uz @ Sk2, uzz @ Sk2
            wk = c * w ** k
            wk1 = c * k * w ** (k - 1) if k >= 1 else np.zeros_like(w)
            wk2 = c * k * (k - 1) * w ** (k - 2) if k >= 2 else np.zeros_like(w)
            vw += wk1 * A0 + wk * A1z
            vb += wk * A1
            ww += v * (wk2 * A0 + 2.0 * wk1 * A1z + wk * A2zz)
            wb += v * (wk1 * A1 + wk * A2z)
            bb += v * wk * A2
    return M


def apply_curvature(M: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The block-diagonal product M s for M from :func:`operator_curvature` (18r flops)."""
    vv, vw, vb, ww, wb, bb = M
    sv, sw, sb = split(s)
    return np.concatenate([vv * sv + vw * sw + vb * sb,
                           vw * sv + ww * sw + wb * sb,
                           vb * sv + wb * sw + bb * sb])


def initial_parameters(width: int, nu: float, seed: int, scheme: str = "spread") -> np.ndarray:
    """Initial weights p = [v; w; b], the same on every rank for a given seed.

    ``spread``: w_i ~ N(0, (ν/2)²), kink positions c_i ~ U(0, 1), b_i = −w_i c_i, so
    that every neuron varies inside (0, 1) on the scale of the target, and
    v_i ~ U(−1, 1)/√r.  ``uniform``: v, w, b ~ U(−1, 1) (method.md §3).
    """
    rng = np.random.default_rng(seed)
    if scheme == "uniform":
        return rng.uniform(-1.0, 1.0, 3 * width)
    if scheme != "spread":
        raise ValueError(f"unknown initialisation {scheme!r}; expected spread or uniform")
    w = rng.normal(0.0, nu / 2.0, width)
    c = rng.uniform(0.0, 1.0, width)
    v = rng.uniform(-1.0, 1.0, width) / np.sqrt(width)
    return np.concatenate([v, w, -w * c])
