"""Algebraic-multigrid coarsening of the neurons (the seed's construction, method.md §2).

From the Gauss–Newton matrix B = JᵀJ ordered by parameter blocks [v; w; b]
(d + 2 blocks for d inputs, :class:`mlpar.model.layout.ParameterLayout`), the
auxiliary r × r "neuron graph" is

    A = Σ_x A_xx/‖A_xx‖∞  over the blocks x,     A_xx = J_xᵀ J_x
    (= A_vv/‖A_vv‖∞ + A_ww/‖A_ww‖∞ + A_bb/‖A_bb‖∞ for d = 1).

Neuron i is strongly coupled to j when −a_ij ≥ θ max_{a_ik<0} |a_ik| (θ = 0.25,
the seed's "usually"; ``strength="abs"`` uses |a_ij| ≥ θ max_k |a_ik|).  The
Ruge–Stüben first pass splits the neurons into C (kept) and F, and classical
direct interpolation gives the prolongation P (r × r_c) with identity rows on
the C-neurons.  An F-neuron left with no strong C-neighbour would get a zero
row of P; it is promoted to C instead, so P has no zero row and full column
rank.  The restriction is R = αPᵀ.  P acts identically on every parameter
block: P_full = blkdiag(P, …, P) (d + 2 copies).

PyAMG provides strength, splitting and interpolation (``pyamg.strength``,
``pyamg.classical``); this module is pure (no MPI, no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from pyamg.classical.interpolate import direct_interpolation
from pyamg.classical.split import RS
from pyamg.strength import classical_strength_of_connection

from mlpar.model.layout import ParameterLayout
from mlpar.multilevel.parameters import INTERPOLATIONS, STRENGTHS


def gram_blocks(J: np.ndarray, layout: ParameterLayout) -> np.ndarray:
    """The diagonal blocks J_xᵀJ_x (one per parameter block x) of JᵀJ, shape (d + 2, r, r);
    J is m × (d + 2)r."""
    r = layout.width
    out = np.empty((layout.n_blocks, r, r))
    for k in range(layout.n_blocks):
        Jx = J[:, k * r:(k + 1) * r]
        np.matmul(Jx.T, Jx, out=out[k])
    return out


def auxiliary_matrix(blocks: np.ndarray) -> np.ndarray:
    """A = Σ_x A_xx/‖A_xx‖∞ over the parameter blocks; a zero block contributes nothing."""
    A = np.zeros(blocks.shape[1:])
    for block in blocks:
        norm = np.abs(block).sum(axis=1).max() if block.size else 0.0
        if norm > 0:
            A += block / norm
    return A


#: Bytes of the Gram-row chunk J_x[:, I]ᵀ J_x (all d + 2 blocks) the sparse set-up forms at once.
CHUNK_BYTES = 32e6

#: Flop equivalents of the AMG set-up of one level, measured against the products with J on
#: the project's VM (``scripts/calibrate_work.py``, docs/notes/2026-12-work.md): per entry
#: (row, i, j) of the Gram blocks J_xᵀJ_x (a BLAS-3 product, about 15 times the products'
#: speed per flop), per pair (i, j) of the neuron graph (strength, Ruge–Stüben splitting,
#: interpolation, orthonormal basis: about 35 ns a pair at r = 512–1024), and per level
#: (the calls themselves: about 2 ms, which is all of it at r = 64).
SETUP_WORK_PER_GRAM_ENTRY = 0.13
SETUP_WORK_PER_PAIR = 400.0
SETUP_WORK_PER_LEVEL = 2e7


def setup_work(m: int, layout: ParameterLayout, couplings: int = 0) -> float:
    """Flop equivalents of one coarsening of ``layout``'s neurons from m rows of J:
    SETUP_WORK_PER_GRAM_ENTRY·(d+2)·m·r² + SETUP_WORK_PER_PAIR·(pairs of the graph: r² dense,
    r·couplings sparse) + SETUP_WORK_PER_LEVEL."""
    r = layout.width
    pairs = r * (min(r, couplings) if couplings > 0 else r)
    return (SETUP_WORK_PER_GRAM_ENTRY * layout.n_blocks * m * r * r
            + SETUP_WORK_PER_PAIR * pairs + SETUP_WORK_PER_LEVEL)


def chunk_rows(width: int, n_blocks: int, budget: float = CHUNK_BYTES) -> int:
    """Neuron rows per chunk of the sparse set-up: n_blocks · c · r doubles within ``budget``
    (at least one row); the chunks are [kc, (k+1)c), the same on any rank count."""
    return int(max(1, min(width, budget // (n_blocks * width * 8))))


def gram_rows(J: np.ndarray, layout: ParameterLayout, lo: int, hi: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """Rows lo..hi−1 of every diagonal block, J_x[:, lo:hi]ᵀ J_x, shape (d + 2, hi − lo, r)
    (the local rows' share: summed over the ranks it is the row block of J_xᵀJ_x)."""
    r = layout.width
    if out is None:
        out = np.empty((layout.n_blocks, hi - lo, r))
    for k in range(layout.n_blocks):
        Jx = J[:, k * r:(k + 1) * r]
        np.matmul(Jx[:, lo:hi].T, Jx, out=out[k])
    return out


def row_norms(rows: np.ndarray) -> np.ndarray:
    """max_i Σ_j |g_ij| over the given rows of each block (shape (d + 2,)): ‖A_xx‖∞ is the
    largest of these over all row chunks."""
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0])
    return np.abs(rows).sum(axis=2).max(axis=1)


def strongest_couplings(rows: np.ndarray, norms: np.ndarray, lo: int, k: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept couplings of neuron rows lo, lo+1, … of A = Σ_x A_xx/‖A_xx‖∞, from those rows
    of the Gram blocks (``rows``, shape (d + 2, c, r)) and the norms; as COO (rows, columns,
    values).

    Per row, off the diagonal: the k smallest and the k largest a_ij, exact zeros dropped.
    They hold the k most negative a_ij (which decide the strength rule ``min``,
    −a_ij ≥ θ max(−a_ik)) and the k largest |a_ij| (the rule ``abs`` and the injection), at
    most 2k entries; one ``argpartition`` per chunk.  With 2k ≥ r every nonzero is kept.
    """
    c, r = rows.shape[1:]
    A = np.zeros((c, r))
    for block, norm in zip(rows, norms):
        if norm > 0:
            A += block / norm
    A[np.arange(c), lo + np.arange(c)] = 0.0
    if 2 * k >= r:
        cols = np.broadcast_to(np.arange(r), (c, r))
    else:
        part = np.argpartition(A, (k - 1, r - k), axis=1)
        cols = np.concatenate([part[:, :k], part[:, r - k:]], axis=1)
    values = np.take_along_axis(A, cols, axis=1)
    keep = values != 0
    row_index = np.broadcast_to(lo + np.arange(c)[:, None], cols.shape)
    return row_index[keep], cols[keep], values[keep]


def sparse_graph(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                 width: int) -> sp.csr_matrix:
    """The r × r CSR neuron graph of the kept couplings (in any order; sorted indices)."""
    graph = sp.csr_matrix((values, (rows, cols)), shape=(width, width))
    graph.sort_indices()
    return graph


def sample_rows(m: int, size: int) -> np.ndarray:
    """A deterministic sample of ``size`` of the m training rows (sorted global indices, the
    same on any rank count); all rows when size is 0 or at least m."""
    if size <= 0 or size >= m:
        return np.arange(m)
    return np.sort(np.random.default_rng(20).choice(m, size, replace=False))


@dataclass(frozen=True)
class Transfer:
    """Prolongation P of neurons (r_f × r_c) and R = αPᵀ, acting on each of the ``blocks``
    parameter blocks ([v; w; b]: 3) alike."""

    P: sp.csr_matrix
    coarse: np.ndarray
    alpha: float = 1.0
    blocks: int = 3

    @property
    def R(self) -> sp.csr_matrix:
        return (self.alpha * self.P.T).tocsr()

    @property
    def widths(self) -> tuple[int, int]:
        return self.P.shape

    @cached_property
    def P_full(self) -> sp.csr_matrix:
        """blkdiag(P, …, P): P on each parameter block (formed once per transfer)."""
        return sp.block_diag([self.P] * self.blocks, format="csr")

    @cached_property
    def P_full_T(self) -> sp.csr_matrix:
        """P_fullᵀ in CSR (formed once per transfer)."""
        return self.P_full.T.tocsr()

    def prolong(self, y: np.ndarray) -> np.ndarray:
        """P_full y for coarse parameters y of width r_c."""
        return self.P_full @ y

    def restrict(self, g: np.ndarray) -> np.ndarray:
        """R_full g = α P_fullᵀ g for fine parameters g of width r_f."""
        return self.alpha * (self.P_full_T @ g)

    def coarse_columns(self, J: np.ndarray) -> np.ndarray:
        """J P_full for a matrix J whose columns are ordered like the parameters of width r_f,
        computed as (P_fullᵀ Jᵀ)ᵀ: no copy of a column-major J, and a column-major result."""
        return (self.P_full_T @ J.T).T

    def inject(self, x: np.ndarray) -> np.ndarray:
        """The C-neurons' own weights (every block)."""
        return x.reshape(self.blocks, -1)[:, self.coarse].ravel()

    def collect(self, x: np.ndarray) -> np.ndarray:
        """The C-neurons' inner weights (w, b), and outer weights v_H = Pᵀv (v is block 0).

        An F-neuron i interpolated from C-neurons j (σ_i ≈ Σ_j P_ij σ_j in the
        sense of the neuron graph) hands its output weight over to them, so that
        the coarse network's output stays close to the fine one's.
        """
        blocks = x.reshape(self.blocks, -1)
        return np.concatenate([self.P.T @ blocks[0], blocks[1:, self.coarse].ravel()])


def _injection(As: sp.csr_matrix, splitting: np.ndarray) -> sp.csr_matrix:
    """Injection P: each F-neuron i takes the C-neuron j of largest |a_ij| ≠ 0 among the stored
    entries of row i of the CSR graph ``As`` (ties: the smallest j), each C-neuron itself; an
    F-neuron with no stored C-neighbour gets an empty row."""
    r = splitting.size
    coarse = np.flatnonzero(splitting)
    column = np.full(r, -1)
    column[coarse] = np.arange(coarse.size)
    As = As.sorted_indices() if not As.has_sorted_indices else As
    counts = np.diff(As.indptr)
    rows = np.repeat(np.arange(r), counts)
    weight = np.where(splitting[As.indices] == 1, np.abs(As.data), 0.0)
    best = np.zeros(r)
    stored = np.flatnonzero(counts)
    if stored.size:
        best[stored] = np.maximum.reduceat(weight, As.indptr[:-1][stored])
    hits = np.flatnonzero((weight == best[rows]) & (weight > 0))
    f_rows, first = np.unique(rows[hits], return_index=True)
    strongest = np.full(r, -1)
    strongest[f_rows] = As.indices[hits[first]]
    cols = np.where(splitting == 1, column, column[np.maximum(strongest, 0)])
    keep = (splitting == 1) | (strongest >= 0)
    return sp.csr_matrix((np.ones(keep.sum()), (np.arange(r)[keep], cols[keep])),
                         shape=(r, coarse.size))


def _interpolation(As: sp.csr_matrix, S: sp.csr_matrix, splitting: np.ndarray,
                   kind: str) -> sp.csr_matrix:
    """P for the splitting from the neuron graph ``As`` (CSR): PyAMG's direct interpolation,
    or injection (:func:`_injection`)."""
    if kind == "direct":
        return sp.csr_matrix(direct_interpolation(As, S, splitting))
    return _injection(As, splitting)


def _dense_to_csr(A: np.ndarray) -> sp.csr_matrix:
    """All r² entries of a dense matrix as CSR, built directly (no scan for nonzeros)."""
    r = A.shape[0]
    return sp.csr_matrix((np.ascontiguousarray(A).ravel(), np.tile(np.arange(r), r),
                          np.arange(0, r * r + 1, r)), shape=A.shape)


def coarsen(A: np.ndarray, *, theta: float = 0.25, strength: str = "min",
            interpolation: str = "direct", alpha: float = 1.0, blocks: int = 3) -> Transfer:
    """C/F splitting and prolongation of the neuron graph A (dense, symmetric)."""
    return coarsen_graph(_dense_to_csr(A), theta=theta, strength=strength,
                         interpolation=interpolation, alpha=alpha, blocks=blocks)


def coarsen_graph(As: sp.csr_matrix, *, theta: float = 0.25, strength: str = "min",
                  interpolation: str = "direct", alpha: float = 1.0,
                  blocks: int = 3) -> Transfer:
    """C/F splitting and prolongation of the neuron graph ``As`` in CSR: every entry of A
    (:func:`coarsen`), or only the strongest couplings of each row (:func:`sparse_graph`;
    then ``interpolation`` must be injection, as direct interpolation on a truncated row
    loses the row sums it divides by)."""
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; expected one of {', '.join(STRENGTHS)}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; "
                         f"expected one of {', '.join(INTERPOLATIONS)}")
    S = classical_strength_of_connection(As, theta=theta, norm=strength)
    S = sp.csr_matrix(S)
    S.setdiag(0)
    S.eliminate_zeros()
    splitting = np.asarray(RS(S), dtype=np.intc)
    while True:
        P = _interpolation(As, S, splitting, interpolation)
        empty = np.flatnonzero((np.diff(P.indptr) == 0) & (splitting == 0))
        if empty.size == 0:
            break
        splitting[empty] = 1   # promote F-neurons without a C-neighbour to C
    P.sort_indices()
    return Transfer(P, np.flatnonzero(splitting), alpha, blocks)


def orthonormalized(transfer: Transfer) -> Transfer:
    """The same coarse space range(P) with an orthonormal basis Q (P = QT, QᵀQ = I).

    With Q, the coarse regularisation λ‖s_H‖² equals the fine one, λ‖Q s_H‖², so a
    Galerkin coarse LM step is exactly the fine LM step restricted to range(P).
    When no row of P has two nonzeros (injection), its columns are already
    orthogonal and Q is P with unit columns: no dense r_f × r_c factorisation.
    """
    P = transfer.P
    if P.nnz and np.diff(P.indptr).max() <= 1:
        norms = np.sqrt(np.asarray(P.multiply(P).sum(axis=0)).ravel())
        Q = (P @ sp.diags(1.0 / norms)).tocsr()
        Q.sort_indices()
        return Transfer(Q, transfer.coarse, transfer.alpha, transfer.blocks)
    Q, _ = np.linalg.qr(P.toarray())
    return Transfer(sp.csr_matrix(Q), transfer.coarse, transfer.alpha, transfer.blocks)


def stalled(transfer: Transfer, max_ratio: float = 0.8) -> bool:
    """True when coarsening no longer pays: r_c/r_f > max_ratio or nothing was removed."""
    r_f, r_c = transfer.widths
    return r_c == r_f or r_c > max_ratio * r_f
