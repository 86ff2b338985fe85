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


def _interpolation(A: np.ndarray, As: sp.csr_matrix, S: sp.csr_matrix, splitting: np.ndarray,
                   kind: str) -> sp.csr_matrix:
    """P for the splitting: PyAMG's direct interpolation, or injection (each F-neuron takes
    the C-neuron j of largest |a_ij| ≠ 0).  ``A`` is the dense neuron graph, ``As`` the same
    matrix in CSR (what PyAMG reads)."""
    if kind == "direct":
        return sp.csr_matrix(direct_interpolation(As, S, splitting))
    coarse = np.flatnonzero(splitting)
    if coarse.size == 0:   # no strong coupling anywhere: every row empty, promoted below
        return sp.csr_matrix((splitting.size, 0))
    column = np.full(splitting.size, -1)
    column[coarse] = np.arange(coarse.size)
    to_coarse = np.abs(A[:, coarse])
    strongest = coarse[np.argmax(to_coarse, axis=1)]
    rows = np.arange(splitting.size)
    has_c = to_coarse.max(axis=1) > 0
    cols = np.where(splitting == 1, column[rows], column[strongest])
    keep = (splitting == 1) | has_c
    return sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])),
                         shape=(splitting.size, coarse.size))


def _dense_to_csr(A: np.ndarray) -> sp.csr_matrix:
    """All r² entries of a dense matrix as CSR, built directly (no scan for nonzeros)."""
    r = A.shape[0]
    return sp.csr_matrix((np.ascontiguousarray(A).ravel(), np.tile(np.arange(r), r),
                          np.arange(0, r * r + 1, r)), shape=A.shape)


def coarsen(A: np.ndarray, *, theta: float = 0.25, strength: str = "min",
            interpolation: str = "direct", alpha: float = 1.0, blocks: int = 3) -> Transfer:
    """C/F splitting and prolongation of the neuron graph A (dense, symmetric)."""
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; expected one of {', '.join(STRENGTHS)}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; "
                         f"expected one of {', '.join(INTERPOLATIONS)}")
    As = _dense_to_csr(A)
    S = classical_strength_of_connection(As, theta=theta, norm=strength)
    S = sp.csr_matrix(S)
    S.setdiag(0)
    S.eliminate_zeros()
    splitting = np.asarray(RS(S), dtype=np.intc)
    while True:
        P = _interpolation(A, As, S, splitting, interpolation)
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
