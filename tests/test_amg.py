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


# The sparse set-up: rows of A in chunks, only the strongest couplings kept.

def _self():
    from mpi4py import MPI

    from mlpar.parallel.comm import Comm
    return Comm(MPI.COMM_SELF)


def _sparse(J, width, couplings):
    from mlpar.multilevel.hierarchy import sparse_graph
    return sparse_graph(_self(), J, ParameterLayout(width), couplings)


def test_the_kept_couplings_are_the_extremes_of_each_row():
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((3, 5, 40))
    norms = np.array([2.0, 0.5, 0.0])                 # a zero block contributes nothing
    lo, k = 10, 3
    rr, cc, vv = amg.strongest_couplings(rows, norms, lo, k)
    A = rows[0] / 2.0 + rows[1] / 0.5
    for i in range(5):
        mine = cc[rr == lo + i]
        assert np.allclose(vv[rr == lo + i], A[i, mine], rtol=0, atol=1e-15)
        off = np.array([j for j in range(40) if j != lo + i])
        negative = set(off[np.argsort(A[i, off])[:k]])
        largest = set(off[np.argsort(-np.abs(A[i, off]))[:k]])
        assert negative | largest <= set(mine) and lo + i not in set(mine)
        assert len(mine) == len(set(mine)) <= 2 * k


def test_with_every_coupling_the_sparse_graph_is_the_dense_one():
    """K ≥ r: the chunked graph is A off the diagonal, and the coarsening is the dense one."""
    J = _jacobian(width=128)
    A = _neuron_graph(width=128)
    G = _sparse(J, 128, 128).toarray()
    assert np.allclose(G, A - np.diag(np.diag(A)), rtol=1e-12, atol=1e-14)
    dense = amg.coarsen(A, interpolation="injection")
    sparse = amg.coarsen_graph(_sparse(J, 128, 128), interpolation="injection")
    assert np.array_equal(sparse.coarse, dense.coarse)
    assert (sparse.P != dense.P).nnz == 0


@pytest.mark.parametrize("couplings", [2, 4, 16])
def test_a_truncated_graph_gives_a_valid_hierarchy(couplings):
    """K < r: P has identity rows on C, one entry 1 per F-row at its strongest kept
    C-neighbour, no zero row, full column rank."""
    width = 128
    G = _sparse(_jacobian(width=width), width, couplings)
    assert np.diff(G.indptr).max() <= 2 * couplings
    t = amg.coarsen_graph(G, interpolation="injection")
    P = t.P.toarray()
    r, rc = P.shape
    assert 0 < rc < r
    assert np.array_equal(P[t.coarse], np.eye(rc))
    assert np.array_equal(np.count_nonzero(P, axis=1), np.ones(r))      # no zero row
    assert np.linalg.matrix_rank(P) == rc
    Gd = G.toarray()
    fine = np.setdiff1d(np.arange(r), t.coarse)
    for i in fine:
        to_c = np.abs(Gd[i, t.coarse])
        assert to_c.max() > 0 and P[i, np.argmax(to_c)] == 1.0


def test_the_row_sample_is_fixed_and_covers_all_rows_when_it_is_zero():
    rows = amg.sample_rows(1000, 100)
    assert np.array_equal(rows, amg.sample_rows(1000, 100))
    assert rows.size == np.unique(rows).size == 100 and rows.min() >= 0 and rows.max() < 1000
    assert np.array_equal(amg.sample_rows(50, 0), np.arange(50))
    assert np.array_equal(amg.sample_rows(50, 80), np.arange(50))


def test_chunks_stay_within_their_budget():
    assert amg.chunk_rows(32768, 3, 32e6) == 40
    assert amg.chunk_rows(8, 3) == 8 and amg.chunk_rows(10 ** 9, 3) == 1
