"""The preconditioners on parameter vectors split over the ranks: the same result at any rank
count as the serial dense computation (run under mpiexec -n 1, 2, 3)."""

import numpy as np
import pytest
from conftest import assert_all, distributed_objective
from petsc4py import PETSc

from mlpar.linalg.linsolve import RegularizedSolver
from mlpar.linalg.preconditioner import make_context
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.multilevel import amg

LAM = 1e-3
WIDTH = 8


def _objective(comm, t, rows=None):
    return distributed_objective(comm, "poisson", 4.0, t, WIDTH, 0.5, rows)


def _serial(comm, t):
    """J of every row, at the test's point, on every rank; and the AMG basis P_full from it."""
    full = _objective(comm, t, rows=(0, t + 2))
    p = initial_parameters(WIDTH, 4.0, seed=3, scheme="spread")
    _, J = full.block.residuals_and_jacobian(p)
    J = np.asarray(J)
    A = amg.auxiliary_matrix(amg.gram_blocks(J, ParameterLayout(WIDTH)))
    return p, J, amg.coarsen(A, interpolation="injection").P_full


def _dense_inverse(kind, J, P):
    A = J.T @ J + LAM * np.eye(J.shape[1])
    if kind == "bjacobi":
        M = np.zeros_like(A)
        for i in range(WIDTH):
            idx = np.array([i, WIDTH + i, 2 * WIDTH + i])
            M[np.ix_(idx, idx)] = A[np.ix_(idx, idx)]
        return np.linalg.inv(M)
    Pd = P.toarray()
    Q = Pd @ np.linalg.solve(Pd.T @ A @ Pd, Pd.T)
    eye = np.eye(A.shape[0])
    return Q + (eye - Q @ A) @ (eye / LAM) @ (eye - A @ Q)


@pytest.mark.parametrize("kind", ["bjacobi", "mg"])
def test_the_application_through_petsc_vectors_is_rank_invariant(comm, kind):
    t = 40
    obj = _objective(comm, t)
    p, J, P = _serial(comm, t)
    lin = obj.linearize(p)
    n = obj.n
    counts = comm.block_counts(n)
    ctx = make_context(kind, comm, counts, lambda objective, lin: P)
    ctx.bind(obj, lin, LAM)
    v = np.cos(np.arange(n) * 0.7)
    lo, hi = comm.block_range(n)
    X = PETSc.Vec().createMPI((hi - lo, n), comm=comm.mpi)
    Y = X.duplicate()
    X.getArray()[:] = v[lo:hi]
    ctx.apply(None, X, Y)
    y = comm.allgather(Y.getArray(readonly=True), counts)
    X.destroy()
    Y.destroy()
    expected = _dense_inverse(kind, J, P) @ v
    assert_all(comm, np.allclose(y, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max()),
               f"{kind}: max error {np.abs(y - expected).max():.2e}")


@pytest.mark.parametrize("pc", ["jacobi", "bjacobi", "mg"])
@pytest.mark.parametrize("t", [40, 11])   # m > n and m < n
def test_a_preconditioned_solve_gives_the_dense_step_on_any_rank_count(comm, pc, t):
    obj = _objective(comm, t)
    p, J, P = _serial(comm, t)
    lin = obj.linearize(p)
    solver = RegularizedSolver(comm, obj.n, obj.m, obj.m_local, "normal", rtol=1e-12, pc=pc,
                               coarse_basis=lambda objective, lin: P)
    try:
        s, info = solver.solve(obj, lin, LAM)
    finally:
        solver.destroy()
    F = np.asarray(_objective(comm, t, rows=(0, t + 2)).block.residuals(p))
    exact = np.linalg.solve(J.T @ J + LAM * np.eye(obj.n), -J.T @ F)
    assert_all(comm, np.allclose(s, exact, rtol=1e-6, atol=1e-8 * np.abs(exact).max()),
               f"{pc}: max error {np.abs(s - exact).max():.2e} ({info.iterations} its)")
