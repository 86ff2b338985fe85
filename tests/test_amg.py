"""AMG coarsening of the neurons: the auxiliary matrix, the C/F splitting, the prolongation."""

import numpy as np
import pytest
import scipy.sparse as sp

from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.multilevel import amg


def _jacobian(nu=20.0, width=128, seed=0):
    prob = make_problem("poisson", nu)
    t = 59
    _, J = ResidualBlock(prob, "sigmoid", t, 1.0, 0, t + 2).residuals_and_jacobian(
        initial_parameters(width, nu, seed))
    return J


def _neuron_graph(width=128, seed=0):
    J = _jacobian(width=width, seed=seed)
    return amg.auxiliary_matrix(amg.gram_blocks(J, ParameterLayout(width)))


def test_gram_blocks_are_the_diagonal_blocks_of_JtJ():
    J = _jacobian(width=16)
    B = J.T @ J
    blocks = amg.gram_blocks(J, ParameterLayout(16))
    for k in range(3):
        assert np.allclose(blocks[k], B[16 * k:16 * (k + 1), 16 * k:16 * (k + 1)], rtol=1e-12)
    assert np.array_equal(amg.gram_blocks(np.zeros((0, 12)), ParameterLayout(4)), np.zeros((3, 4, 4)))


def test_auxiliary_matrix_normalises_each_block_by_its_infinity_norm():
    blocks = np.array([[[2.0, -1.0], [-1.0, 2.0]], [[4.0, 0.0], [0.0, 1.0]], np.zeros((2, 2))])
    expected = blocks[0] / 3.0 + blocks[1] / 4.0
    assert np.allclose(amg.auxiliary_matrix(blocks), expected)


def _strong(A, theta):
    """Independent strength rule of the seed: −a_ij ≥ θ max_{k≠i, a_ik<0} |a_ik|."""
    r = A.shape[0]
    S = np.zeros_like(A, dtype=bool)
    for i in range(r):
        neg = [-A[i, k] for k in range(r) if k != i and A[i, k] < 0]
        if neg:
            bound = theta * max(neg)
            S[i] = [(j != i) and (-A[i, j] >= bound) and A[i, j] < 0 for j in range(r)]
    return S


@pytest.mark.parametrize("seed", [0, 1])
def test_splitting_and_prolongation_properties(seed):
    A = _neuron_graph(seed=seed)
    t = amg.coarsen(A, theta=0.25)
    P = t.P.toarray()
    r, rc = P.shape
    assert 0 < rc < r
    assert np.array_equal(P[t.coarse], np.eye(rc))               # identity rows on C
    assert np.all(np.abs(P).sum(axis=1) > 0)                      # no zero row
    assert np.linalg.matrix_rank(P) == rc                         # full column rank
    S = _strong(A, 0.25)
    is_c = np.zeros(r, dtype=bool)
    is_c[t.coarse] = True
    for i in np.flatnonzero(~is_c):
        if S[i].any():                                           # F with strong couplings
            assert (S[i] & is_c).any(), f"F-neuron {i} has no strong C-neighbour"


def test_direct_interpolation_matches_the_formula():
    """Rows of P for F-points against the classical direct-interpolation formula."""
    A = _neuron_graph(width=48, seed=3)
    t = amg.coarsen(A, theta=0.25)
    P = t.P.toarray()
    S = _strong(A, 0.25)
    is_c = np.zeros(A.shape[0], dtype=bool)
    is_c[t.coarse] = True
    col = {c: k for k, c in enumerate(t.coarse)}
    checked = 0
    for i in np.flatnonzero(~is_c):
        Pi = [j for j in np.flatnonzero(S[i] & is_c)]
        if not Pi:
            continue
        off = [k for k in range(A.shape[0]) if k != i]
        neg_all = sum(A[i, k] for k in off if A[i, k] < 0)
        pos_all = sum(A[i, k] for k in off if A[i, k] > 0)
        neg_p = sum(A[i, j] for j in Pi if A[i, j] < 0)
        pos_p = sum(A[i, j] for j in Pi if A[i, j] > 0)
        alpha = neg_all / neg_p
        if pos_p == 0:
            diag, beta = A[i, i] + pos_all, 0.0
        else:
            diag, beta = A[i, i], pos_all / pos_p
        expected = np.zeros(P.shape[1])
        for j in Pi:
            expected[col[j]] = -(alpha if A[i, j] < 0 else beta) * A[i, j] / diag
        assert np.allclose(P[i], expected, rtol=1e-10, atol=1e-14), i
        checked += 1
    assert checked > 0


def test_promotion_removes_zero_rows():
    """A neuron coupled to nothing strongly-C would get a zero row: it becomes C."""
    A = np.array([[2.0, -1.0, 0.0, 0.0], [-1.0, 2.0, -1.0, 0.0], [0.0, -1.0, 2.0, 0.0],
                  [0.0, 0.0, 0.0, 1.0]])
    t = amg.coarsen(A)
    assert 3 in t.coarse
    assert np.all(np.diff(t.P.indptr) > 0)


@pytest.mark.parametrize("interpolation", amg.INTERPOLATIONS)
def test_a_graph_without_strong_couplings_keeps_every_neuron(interpolation):
    """No off-diagonal entry: RS makes every neuron F, with no C-neighbour; all are promoted,
    and the stalled test then refuses the level (injection once failed on the empty C set)."""
    t = amg.coarsen(np.diag([1.0, 2.0, 3.0]), interpolation=interpolation)
    assert list(t.coarse) == [0, 1, 2] and t.widths == (3, 3)
    assert amg.stalled(t)


def test_transfers_act_blockwise():
    P = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    t = amg.Transfer(P, np.array([0, 2]), alpha=2.0)
    y = np.arange(6.0)
    assert np.allclose(t.prolong(y), np.concatenate([P @ y[0:2], P @ y[2:4], P @ y[4:6]]))
    g = np.arange(9.0)
    assert np.allclose(t.restrict(g), 2.0 * np.concatenate([P.T @ g[0:3], P.T @ g[3:6],
                                                              P.T @ g[6:9]]))
    assert np.allclose(t.R.toarray(), 2.0 * P.T.toarray())
    assert np.array_equal(t.inject(g), np.array([0.0, 2.0, 3.0, 5.0, 6.0, 8.0]))
    assert np.allclose(t.collect(g), [0.5, 2.5, 3.0, 5.0, 6.0, 8.0])
    assert t.widths == (3, 2)
    assert amg.stalled(t, 0.5) and not amg.stalled(t, 0.8)
    J = np.arange(18.0).reshape(2, 9) ** 1.5
    P_full = np.kron(np.eye(3), P.toarray())
    assert np.allclose(t.coarse_columns(J), J @ P_full)


@pytest.mark.parametrize("interpolation", ["direct", "injection"])
def test_orthonormalized_basis_spans_range_of_P(interpolation):
    """QᵀQ = I and P = Q(QᵀP) (same range), whether Q comes from a dense QR (direct)
    or from scaling the disjoint columns of an injection P; injection keeps P's pattern."""
    t = amg.coarsen(_neuron_graph(width=96, seed=1), interpolation=interpolation)
    q = amg.orthonormalized(t)
    P, Q = t.P.toarray(), q.P.toarray()
    assert np.allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-12)
    assert np.allclose(Q @ (Q.T @ P), P, atol=1e-12)
    assert np.array_equal(q.coarse, t.coarse)
    if interpolation == "injection":
        assert np.array_equal((Q != 0), (P != 0))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown strength"):
        amg.coarsen(np.eye(3), strength="max")
    with pytest.raises(ValueError, match="unknown interpolation"):
        amg.coarsen(np.eye(3), interpolation="smooth")
