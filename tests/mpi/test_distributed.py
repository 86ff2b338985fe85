"""Distributed objective and PETSc solves against serial oracles, on any number of ranks."""

import numpy as np
import pytest
from conftest import assert_all, distributed_objective

from mlpar.linalg.linsolve import RegularizedSolver
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.parallel.comm import block_range
from mlpar.protocols import FlopCounter


def _objective(comm, problem="poisson", nu=4.0, t=11, width=8, rows=None):
    obj = distributed_objective(comm, problem, nu, t, width, 0.5, rows)
    return obj, obj.block.problem, obj.m


@pytest.mark.parametrize("problem", ["poisson", "helmholtz", "fit"])
def test_gradient_and_loss_match_serial(comm, problem):
    obj, prob, m = _objective(comm, problem)
    full, _, _ = _objective(comm, problem, rows=(0, m))
    p = initial_parameters(8, 4.0, seed=5)
    lin = obj.linearize(p)
    F, J = full.block.residuals_and_jacobian(p)
    assert_all(comm, np.isclose(lin.f, 0.5 * F @ F, rtol=1e-13), "loss")
    assert_all(comm, np.allclose(lin.g, J.T @ F, rtol=1e-12, atol=1e-12 * np.abs(J.T @ F).max()),
               "gradient")
    s = np.linspace(-1, 1, p.size)
    assert_all(comm, np.isclose(obj.gauss_newton_curvature(lin, s), np.sum((J @ s) ** 2),
                                rtol=1e-12), "curvature")
    assert_all(comm, np.isclose(obj.value(p), lin.f, rtol=1e-14), "value")


def test_a_rank_without_rows(comm):
    """Fewer rows than ranks: the empty ranks take part in every collective."""
    obj, prob, m = _objective(comm, "fit", t=1, width=3)
    p = initial_parameters(3, 4.0, seed=1)
    lin = obj.linearize(p)
    F, J = _objective(comm, "fit", t=1, width=3, rows=(0, 1))[0].block.residuals_and_jacobian(p)
    assert_all(comm, np.allclose(lin.g, J.T @ F, rtol=1e-13), "gradient with empty ranks")


@pytest.mark.parametrize("form", ["normal", "residual", "assembled", "direct", "auto"])
@pytest.mark.parametrize("shape", [(11, 8), (40, 4)])  # m < n and m > n
def test_solve_forms_match_dense_solve(comm, form, shape):
    t, width = shape
    obj, prob, m = _objective(comm, "poisson", t=t, width=width)
    full, _, _ = _objective(comm, "poisson", t=t, width=width, rows=(0, m))
    p = initial_parameters(width, 4.0, seed=2)
    lin = obj.linearize(p)
    lam = 1e-2
    solver = RegularizedSolver(comm, obj.n, obj.m, obj.m_local, form, rtol=1e-13)
    try:
        s, info = solver.solve(obj, lin, lam)
    finally:
        solver.destroy()
    F, J = full.block.residuals_and_jacobian(p)
    exact = np.linalg.solve(J.T @ J + lam * np.eye(J.shape[1]), -J.T @ F)
    assert_all(comm, np.allclose(s, exact, rtol=1e-7, atol=1e-9 * np.abs(exact).max()),
               f"form {form} ({info.form}): max error {np.abs(s - exact).max():.2e}")
    expected = {"auto": "direct"}.get(form, form)
    assert_all(comm, info.form == expected, f"form used {info.form}, expected {expected}")


def test_flops_are_counted_per_product(comm):
    obj, prob, m = _objective(comm, t=11, width=8)
    lin = obj.linearize(initial_parameters(8, 4.0, seed=2))
    before = obj.flops.total
    solver = RegularizedSolver(comm, obj.n, obj.m, obj.m_local, "normal", rtol=1e-12)
    try:
        _, info = solver.solve(obj, lin, 0.1)
    finally:
        solver.destroy()
    n = 24
    # every KSP product is one JᵀJ product (4mn); CG applies the operator its + 1 times
    spent = obj.flops.total - before
    assert_all(comm, spent in (4.0 * m * n * info.iterations, 4.0 * m * n * (info.iterations + 1)),
               f"flops {spent} for {info.iterations} iterations")


@pytest.mark.parametrize("t,width", [(11, 8), (40, 4)])  # m < n and m > n
def test_the_direct_form_charges_its_products(comm, t, width):
    obj, prob, m = _objective(comm, t=t, width=width)
    lin = obj.linearize(initial_parameters(width, 4.0, seed=2))
    before = obj.flops.total
    solver = RegularizedSolver(comm, obj.n, obj.m, obj.m_local, "direct")
    try:
        _, info = solver.solve(obj, lin, 0.1)
    finally:
        solver.destroy()
    n = 3 * width
    if m < n:   # JJᵀ (2m²n), its Cholesky factor (m³/3) and triangular solves (2m², preonly:
        # 0 its), then s = −Jᵀy (2mn)
        expected = 2.0 * m * m * n + m ** 3 / 3.0 + 2.0 * m * m + 2.0 * m * n
    else:       # JᵀJ (2mn²), its factor (n³/3) and triangular solves (2n²): s directly
        expected = 2.0 * m * n * n + n ** 3 / 3.0 + 2.0 * n * n
    spent = obj.flops.total - before
    assert_all(comm, info.form == "direct" and spent == expected, f"flops {spent} != {expected}")


@pytest.mark.parametrize("n", [0, 1, 5, 7])
def test_block_range_covers_everything_once(comm, n):
    pieces = [block_range(n, comm.size, r) for r in range(comm.size)]
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    sizes = [hi - lo for lo, hi in pieces]
    assert max(sizes) - min(sizes) <= 1


def test_sum_to_root_gives_the_sum_on_rank_0_only(comm):
    buf = np.arange(6.0) * (comm.rank + 1)
    total = comm.sum_to_root(buf)
    expected = np.arange(6.0) * comm.size * (comm.size + 1) / 2
    ok = np.array_equal(total, expected) if comm.is_root else total is None
    assert_all(comm, ok, f"rank {comm.rank}: {total}")


def _smooth_loss(comm, loss, serial=False, t=11, width=8):
    """The loss with rows split over ``comm``, or (``serial``) all rows on this rank alone."""
    from mpi4py import MPI

    from mlpar.parallel.comm import Comm
    from mlpar.parallel.smoothloss import SmoothLoss
    prob = make_problem("helmholtz", 4.0)
    m = t + len(prob.boundary)
    if serial:
        comm = Comm(MPI.COMM_SELF)
    lo, hi = comm.block_range(m)
    block = ResidualBlock(prob, "tanh", t, 0.5, lo, hi)
    return SmoothLoss(block, comm, m, ParameterLayout(width), FlopCounter(), loss, 0.05)


@pytest.mark.parametrize("loss", ["l2", "l1", "logistic"])
def test_hessian_vector_products_match_serial(comm, loss):
    obj = _smooth_loss(comm, loss)
    serial = _smooth_loss(comm, loss, serial=True)
    p = initial_parameters(8, 4.0, seed=3)
    s = np.cos(np.arange(p.size))
    lin, ref = obj.linearize(p), serial.linearize(p)
    Hs, Hs_ref = obj.hessvec(lin, s), serial.hessvec(ref, s)
    assert_all(comm, np.isclose(lin.f, ref.f, rtol=1e-13), "loss")
    assert_all(comm, np.allclose(lin.g, ref.g, rtol=1e-12, atol=1e-13 * np.abs(ref.g).max()),
               "gradient")
    assert_all(comm, np.allclose(Hs, Hs_ref, rtol=1e-12, atol=1e-12 * np.abs(Hs_ref).max()),
               "Hessian-vector product")


def test_cubic_subproblem_matches_a_dense_solve(comm):
    """Lanczos to exhaustion on every rank count gives the global model minimiser of a dense
    eigen-solve (Cartis–Gould–Toint characterisation)."""
    from mlpar.linalg.cubic import cubic_minimizer
    from mlpar.linalg.lanczos import CubicSolver
    obj = _smooth_loss(comm, "logistic")
    serial = _smooth_loss(comm, "logistic", serial=True)
    p = initial_parameters(8, 4.0, seed=4)
    lin, ref = obj.linearize(p), serial.linearize(p)
    lam = 0.3
    solver = CubicSolver(comm, obj.n, theta=1e-12, max_it=obj.n)
    try:
        s, info = solver.solve(obj, lin, lam)
    finally:
        solver.destroy()
    H = np.column_stack([serial.hessvec(ref, e) for e in np.eye(obj.n)])
    theta, V = np.linalg.eigh(0.5 * (H + H.T))
    exact, _ = cubic_minimizer(theta, V, ref.g, lam)
    assert_all(comm, np.allclose(s, exact, rtol=1e-6, atol=1e-8 * np.abs(exact).max()),
               f"Lanczos step differs from the dense one by {np.abs(s - exact).max():.2e}")
