"""The shallow network of the seed and its derivatives, for inputs z ∈ ℝᵈ (d = 1, 2, 3).

The network is

    ĝ(z, p) = Σ_{i=1..r} v_i σ(w_iᵀz + b_i),      p = [v; w⁽¹⁾; …; w⁽ᵈ⁾; b] ∈ ℝ^{(d+2)r}

(one hidden layer of width r, no output bias; :class:`mlpar.model.layout.ParameterLayout`).

**d = 1.**  A linear differential operator D(u) = Σ_k c_k u^(k) applied to ĝ is
again a sum over neurons,

    D(ĝ)(z) = Σ_k c_k Σ_i v_i w_i^k σ^(k)(a_i),   a_i = w_i z + b_i,

and its parameter Jacobian has, for each term (k, c), the columns

    ∂/∂v_i = c w_i^k σ^(k)(a_i)
    ∂/∂w_i = c v_i (k w_i^(k−1) σ^(k)(a_i) + w_i^k z σ^(k+1)(a_i))
    ∂/∂b_i = c v_i w_i^k σ^(k+1)(a_i).

**d > 1.**  A term (k, c) is c·Δ^(k/2) with k ∈ {0, 2}: the identity (k = 0) or
the Laplacian (k = 2), which for d = 1 is d²/dz² again.  With a_i = w_iᵀz + b_i
and q_i = ‖w_i‖^k (1 or ‖w_i‖²),

    D(ĝ)(z) = Σ_k c_k Σ_i v_i q_i σ^(k)(a_i),       (Δĝ = Σ_i v_i ‖w_i‖² σ''(a_i))

and the Jacobian columns of a term, ∂q_i/∂w_i^(l) = k w_i^(l) (0 or 2 w_i^(l)), are

    ∂/∂v_i      = c q_i σ^(k)(a_i)
    ∂/∂w_i^(l)  = c v_i (k w_i^(l) σ^(k)(a_i) + q_i z_l σ^(k+1)(a_i))
    ∂/∂b_i      = c v_i q_i σ^(k+1)(a_i).

Points are passed as an array of shape (m,) for d = 1 and (m, d) for d > 1; the
shape says which formulas apply (the 1-D code is the seed's, unchanged).

Each point's D(ĝ)(z) depends on neuron i only through (v_i, w_i, b_i), so its
Hessian in p is block-diagonal with one symmetric (d+2)×(d+2) block per neuron
(:func:`operator_curvature`); it needs σ up to order k + 2.

Everything here is pure numpy; rows (points) are processed in blocks so that the
r × m temporaries stay bounded for wide networks and many points.  Jacobians are
column-major (J is stored as the rows of Jᵀ, one per parameter).
"""

from __future__ import annotations

import numpy as np

from mlpar.model import activations
from mlpar.model.layout import ParameterLayout

#: Rows of z handled at once; bounds the (order+2) m×r temporaries.
ROW_BLOCK = 2048

#: Flop equivalents of evaluating the network's residuals at one (training row, neuron)
#: pair: σ and its derivatives, the operator's sum (about 9 ns against ~0.08 ns per flop of
#: the products with J on the project's 2-core VM, docs/notes/2026-12-work.md).  The seed's
#: measure (:class:`mlpar.protocols.FlopCounter`) counts none of it; the cost-aware choice
#: of the multilevel methods must, or a coarse iteration that evaluates the network looks
#: free.
RESIDUAL_WORK = 100.0
#: Flop equivalents per (row, neuron, parameter block) of the residuals with their Jacobian
#: (16–26 ns per (row, neuron) for the d + 2 = 3 blocks of a 1-D network, 21 ns for 4 in 2-D).
JACOBIAN_WORK = 70.0


def evaluation_work(m: int, layout: ParameterLayout, jacobian: bool) -> float:
    """Flop equivalents of one evaluation of m rows of the network laid out as ``layout``:
    RESIDUAL_WORK·m·r for the residuals, JACOBIAN_WORK·(d+2)·m·r with the Jacobian."""
    per_pair = JACOBIAN_WORK * layout.n_blocks if jacobian else RESIDUAL_WORK
    return per_pair * m * layout.width


Terms = tuple[tuple[int, float], ...]
"""A linear operator Σ_k c_k d^k/dz^k (d = 1) or Σ_k c_k Δ^(k/2), k ∈ {0, 2} (d > 1), as
((k, c_k), ...)."""


def layout_of(p: np.ndarray, z: np.ndarray) -> ParameterLayout:
    """The layout of p for points z of shape (m,) (d = 1) or (m, d)."""
    return ParameterLayout.of_size(p.size, 1 if z.ndim == 1 else z.shape[1])


def split(p: np.ndarray, input_dim: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the views (v, W, b) of p = [v; w⁽¹⁾…w⁽ᵈ⁾; b] (W = w for d = 1, else (d, r))."""
    return ParameterLayout.of_size(p.size, input_dim).split(p)


def _weights(layout: ParameterLayout, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The views (v, W, b) of p with W of shape (d, r) for every d (also d = 1)."""
    blocks = layout.as_blocks(p)
    return blocks[0], blocks[1:-1], blocks[-1]


def _check_terms(terms: Terms) -> None:
    """For d > 1 only the identity (k = 0) and the Laplacian (k = 2) are defined."""
    if any(k not in (0, 2) for k, _ in terms):
        raise ValueError(f"operator {terms}: for d > 1 the terms are the identity (k = 0) "
                         f"and the Laplacian (k = 2) only")


def _norm_power(W: np.ndarray, k: int) -> np.ndarray:
    """q_i = ‖w_i‖^k for k ∈ {0, 2}, W of shape (d, r)."""
    return np.ones(W.shape[1]) if k == 0 else (W * W).sum(axis=0)


def _arguments(W: np.ndarray, b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """a_ji = w_iᵀz_j + b_i, shape (m, r), summed coordinate by coordinate (elementwise: an
    entry does not depend on which other rows are computed with it)."""
    a = z[:, 0, None] * W[0] + b
    for axis in range(1, W.shape[0]):
        a += z[:, axis, None] * W[axis]
    return a


def _orders(terms: Terms, extra: int) -> tuple[int, int]:
    """The lowest and highest derivative of σ that the operator (plus ``extra``) needs."""
    return min(k for k, _ in terms), max(k for k, _ in terms) + extra


def apply_operator(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms) -> np.ndarray:
    """Return D(ĝ)(z_j) for every point z_j: Σ_k c_k ĝ^(k)(z_j) for d = 1, Σ_k c_k Δ^(k/2)ĝ(z_j)
    for d > 1 (z of shape (m, d))."""
    if z.ndim > 1:
        return _apply_operator_nd(activation, p, z, terms)
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


def _apply_operator_nd(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms) -> np.ndarray:
    """:func:`apply_operator` for d > 1: Σ_k c_k Σ_i v_i ‖w_i‖^k σ^(k)(w_iᵀz + b_i)."""
    _check_terms(terms)
    v, W, b = _weights(layout_of(p, z), p)
    out = np.empty(z.shape[0])
    low, top = _orders(terms, 0)
    coefficients = [(k, c * v * _norm_power(W, k)) for k, c in terms]
    for lo in range(0, z.shape[0], ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, _arguments(W, b, zb), top, low)
        acc = np.zeros(zb.shape[0])
        for k, cvq in coefficients:
            acc += S[k - low] @ cvq
        out[lo:lo + ROW_BLOCK] = acc
    return out


def operator_jacobian(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (D(ĝ)(z), J) with J_{j,:} = ∂ D(ĝ)(z_j) / ∂p, columns ordered like p.

    J is filled through its transpose Jᵀ (neuron-major: one row per parameter),
    so a column-major J (the default) is written contiguously, and products
    P_fullᵀ Jᵀ (:meth:`mlpar.multilevel.amg.Transfer.coarse_columns`) read it without a copy.

    Parameters
    ----------
    activation : name of σ (see :mod:`mlpar.model.activations`).
    p : parameters [v; w⁽¹⁾…w⁽ᵈ⁾; b], length (d + 2)r.
    z : points, shape (m,) for d = 1, (m, d) otherwise.
    terms : the operator D as ((k, c_k), ...).
    out : optional preallocated (m, (d + 2)r) array for J (any memory order).
    """
    m = z.shape[0]
    J = np.empty((m, p.size), order="F") if out is None else out
    if z.ndim > 1:
        return _operator_jacobian_nd(activation, p, z, terms, J), J
    v, w, b = split(p)
    r = v.size
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


def _operator_jacobian_nd(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                          J: np.ndarray) -> np.ndarray:
    """Fill J with the d > 1 columns of the module docstring; return D(ĝ)(z)."""
    _check_terms(terms)
    layout = layout_of(p, z)
    v, W, b = _weights(layout, p)
    r, d = layout.width, layout.input_dim
    m = z.shape[0]
    values = np.empty(m)
    low, top = _orders(terms, 1)
    scaled = [(k, c * _norm_power(W, k), c * k * v * W) for k, c in terms]
    for lo in range(0, m, ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, _arguments(W, b, zb).T, top, low)
        JT = J[lo:lo + zb.shape[0]].T
        Jv, Jb = JT[:r], JT[(d + 1) * r:]
        Jw = [JT[(1 + axis) * r:(2 + axis) * r] for axis in range(d)]
        for i, (k, cq, ckvw) in enumerate(scaled):
            Sk, Sk1 = S[k - low], S[k + 1 - low]
            # ∂/∂v = c q S_k,  ∂/∂b = c v q S_{k+1},  ∂/∂w⁽ˡ⁾ = z_l ∂/∂b + c k v w⁽ˡ⁾ S_k
            term_b = Sk1 * (v * cq)[:, None]
            if i == 0:   # the first term writes J in place (no zero fill), the others add
                np.multiply(Sk, cq[:, None], out=Jv)
                Jb[...] = term_b
                for axis in range(d):
                    np.multiply(term_b, zb[:, axis], out=Jw[axis])
            else:
                Jv += Sk * cq[:, None]
                Jb += term_b
                for axis in range(d):
                    Jw[axis] += term_b * zb[:, axis]
            if k > 0:
                for axis in range(d):
                    Jw[axis] += Sk * ckvw[axis][:, None]
        values[lo:lo + zb.shape[0]] = v @ Jv
    return values


def curvature_entries(layout: ParameterLayout) -> list[tuple[int, int]]:
    """The (row, column) block indices, row ≤ column, of the rows of :func:`operator_curvature`:
    the upper triangle of the (d+2)×(d+2) block row by row (index 0 is v, 1..d are w⁽¹⁾…w⁽ᵈ⁾,
    d + 1 is b; for d = 1: vv, vw, vb, ww, wb, bb)."""
    nb = layout.n_blocks
    return [(alpha, beta) for alpha in range(nb) for beta in range(alpha, nb)]


def operator_curvature(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                       weights: np.ndarray) -> np.ndarray:
    """Return M = Σ_j weights_j ∇²_p D(ĝ)(z_j) as its (d+2)×(d+2) blocks per neuron, shape
    ((d+2)(d+3)/2, r).

    Row e of the result holds entry e of :func:`curvature_entries` for every
    neuron.  For d = 1, a term c·(d/dz)^k and S_q = σ^(q)(w z + b), the nonzero second
    derivatives of c v w^k S_k are

        ∂²/∂v∂w = c (k w^(k−1) S_k + w^k z S_{k+1})       ∂²/∂v∂b = c w^k S_{k+1}
        ∂²/∂w²  = c v (k(k−1) w^(k−2) S_k + 2k w^(k−1) z S_{k+1} + w^k z² S_{k+2})
        ∂²/∂w∂b = c v (k w^(k−1) S_{k+1} + w^k z S_{k+2})  ∂²/∂b² = c v w^k S_{k+2}

    (∂²/∂v² = 0), each summed over the points with the given weights.  For d > 1, a term
    c·Δ^(k/2), q = ‖w‖^k, q_l = ∂q/∂w⁽ˡ⁾ = k w⁽ˡ⁾ and q_lm = ∂²q/∂w⁽ˡ⁾∂w⁽ᵐ⁾ = k δ_lm,
    those of c v q S_k(wᵀz + b) are

        ∂²/∂v∂w⁽ˡ⁾ = c (q_l S_k + q z_l S_{k+1})          ∂²/∂v∂b = c q S_{k+1}
        ∂²/∂w⁽ˡ⁾∂w⁽ᵐ⁾ = c v (q_lm S_k + (q_l z_m + q_m z_l) S_{k+1} + q z_l z_m S_{k+2})
        ∂²/∂w⁽ˡ⁾∂b = c v (q_l S_{k+1} + q z_l S_{k+2})     ∂²/∂b² = c v q S_{k+2}.
    """
    if z.ndim > 1:
        return _operator_curvature_nd(activation, p, z, terms, weights)
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


def _operator_curvature_nd(activation: str, p: np.ndarray, z: np.ndarray, terms: Terms,
                           weights: np.ndarray) -> np.ndarray:
    """:func:`operator_curvature` for d > 1 (the second formulas of its docstring)."""
    _check_terms(terms)
    layout = layout_of(p, z)
    v, W, b = _weights(layout, p)
    d = layout.input_dim
    row = {entry: e for e, entry in enumerate(curvature_entries(layout))}
    M = np.zeros((len(row), layout.width))
    vb, bb = M[row[0, d + 1]], M[row[d + 1, d + 1]]
    low, top = _orders(terms, 2)
    for lo in range(0, z.shape[0], ROW_BLOCK):
        zb = z[lo:lo + ROW_BLOCK]
        ub = weights[lo:lo + ROW_BLOCK]
        S = activations.derivatives(activation, _arguments(W, b, zb), top, low)
        uz = [ub * zb[:, axis] for axis in range(d)]
        for k, c in terms:
            Sk, Sk1, Sk2 = S[k - low], S[k + 1 - low], S[k + 2 - low]
            A0, A1, A2 = ub @ Sk, ub @ Sk1, ub @ Sk2
            A1z = [uzl @ Sk1 for uzl in uz]
            A2z = [uzl @ Sk2 for uzl in uz]
            cq = c * _norm_power(W, k)
            cql = c * k * W                      # c ∂q/∂w⁽ˡ⁾, row l = axis
            vb += cq * A1
            bb += v * cq * A2
            for axis in range(d):
                M[row[0, 1 + axis]] += cql[axis] * A0 + cq * A1z[axis]
                M[row[1 + axis, d + 1]] += v * (cql[axis] * A1 + cq * A2z[axis])
                for other in range(axis, d):
                    A2zz = (uz[axis] * zb[:, other]) @ Sk2
                    ww = cql[axis] * A1z[other] + cql[other] * A1z[axis] + cq * A2zz
                    if axis == other:
                        ww += c * k * A0
                    M[row[1 + axis, 1 + other]] += v * ww
    return M


def apply_curvature(M: np.ndarray, s: np.ndarray, layout: ParameterLayout) -> np.ndarray:
    """The block-diagonal product M s for M from :func:`operator_curvature`:
    (M s)_α = Σ_β M_αβ s_β over the d + 2 blocks (2(d+2)²r flops; 18r for d = 1)."""
    row = {entry: e for e, entry in enumerate(curvature_entries(layout))}
    blocks = layout.as_blocks(s)
    out = np.empty(s.size)
    for alpha, out_block in enumerate(layout.as_blocks(out)):
        acc = M[row[min(alpha, 0), max(alpha, 0)]] * blocks[0]
        for beta in range(1, layout.n_blocks):
            acc = acc + M[row[min(alpha, beta), max(alpha, beta)]] * blocks[beta]
        out_block[...] = acc
    return out


def initial_parameters(width: int, nu: float, seed: int, scheme: str = "spread",
                       input_dim: int = 1) -> np.ndarray:
    """Initial weights p = [v; w⁽¹⁾…w⁽ᵈ⁾; b], the same on every rank for a given seed.

    ``spread``: w_i ~ N(0, (ν/2)² I_d), kink centres c_i ~ U(0, 1)ᵈ, b_i = −w_iᵀc_i, so
    that every neuron's hyperplane w_iᵀz + b_i = 0 passes through the domain (0, 1)ᵈ and
    the neuron varies there on the scale of the target, and v_i ~ U(−1, 1)/√r.
    ``uniform``: every block ~ U(−1, 1) (method.md §3).  Draws, in this order: w
    (d × r), c (d × r), v; for d = 1 the seed's numbers.
    """
    layout = ParameterLayout(width, input_dim)
    rng = np.random.default_rng(seed)
    if scheme == "uniform":
        return rng.uniform(-1.0, 1.0, layout.size)
    if scheme != "spread":
        raise ValueError(f"unknown initialisation {scheme!r}; expected spread or uniform")
    W = rng.normal(0.0, nu / 2.0, (input_dim, width))
    c = rng.uniform(0.0, 1.0, (input_dim, width))
    v = rng.uniform(-1.0, 1.0, width) / np.sqrt(width)
    return np.concatenate([v, W.ravel(), -(W * c).sum(axis=0)])
