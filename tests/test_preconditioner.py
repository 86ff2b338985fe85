"""The preconditioners of the normal-form CG against dense computations of the same operators."""

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from mlpar.api import train
from mlpar.config import Config, ConfigError
from mlpar.linalg.linsolve import RegularizedSolver
from mlpar.linalg.preconditioner import NeuronBlockJacobi, TwoLevel
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.multilevel import amg
from mlpar.multilevel.hierarchy import Hierarchy
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.multilevel.preconditioning import HierarchySpace, RebuiltNeuronSpace
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.protocols import FlopCounter

LAM = 1e-3


def _objective(t=40, width=8, nu=4.0, seed=2):
    comm = Comm(MPI.COMM_SELF)
    prob = make_problem("poisson", nu)
    m = t + len(prob.boundary)
    block = ResidualBlock(prob, "sigmoid", t, 0.5, 0, m)
    obj = LeastSquares(block, comm, m, ParameterLayout(width), FlopCounter())
    lin = obj.linearize(initial_parameters(width, nu, seed=seed, scheme="spread"))
    return obj, lin


def _dense(lin, lam=LAM):
    J = np.asarray(lin.J)
    return J.T @ J + lam * np.eye(J.shape[1])


def _amg_basis(lin, width):
    """P_full of the Ruge–Stüben coarsening of the neuron graph at ``lin`` (injection)."""
    A = amg.auxiliary_matrix(amg.gram_blocks(lin.J, ParameterLayout(width)))
    return amg.coarsen(A, interpolation="injection").P_full


def _block_jacobi_dense(A, width):
    """blockdiag over neurons i of A restricted to the indices (i, r + i, 2r + i)."""
    M = np.zeros_like(A)
    for i in range(width):
        idx = np.array([i, width + i, 2 * width + i])
        M[np.ix_(idx, idx)] = A[np.ix_(idx, idx)]
    return M


def _two_level_dense(A, P, S):
    """Q + (I − QA) S (I − AQ) with Q = P (PᵀAP)⁻¹ Pᵀ."""
    Q = P @ np.linalg.solve(P.T @ A @ P, P.T)
    eye = np.eye(A.shape[0])
    return Q + (eye - Q @ A) @ S @ (eye - A @ Q)


def _matrix_of(ctx, n):
    return np.column_stack([ctx.apply_full(e) for e in np.eye(n)])


def test_block_jacobi_applies_the_inverse_of_the_neuron_blocks():
    obj, lin = _objective()
    ctx = NeuronBlockJacobi(obj.comm, [obj.n])
    ctx.bind(obj, lin, LAM)
    A = _dense(lin)
    v = np.random.default_rng(0).standard_normal(obj.n)
    expected = np.linalg.solve(_block_jacobi_dense(A, 8), v)
    assert np.allclose(ctx.apply_full(v), expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("smoother", ["identity", "bjacobi"])
def test_two_level_matches_the_dense_formula(smoother):
    obj, lin = _objective()
    P = _amg_basis(lin, 8)
    assert 0 < P.shape[1] < obj.n
    ctx = TwoLevel(obj.comm, [obj.n], lambda objective, lin: P, smoother)
    ctx.bind(obj, lin, LAM)
    A = _dense(lin)
    S = np.eye(obj.n) / LAM if smoother == "identity" else np.linalg.inv(_block_jacobi_dense(A, 8))
    M_inv = _two_level_dense(A, P.toarray(), S)
    V = np.random.default_rng(1).standard_normal((obj.n, 3))
    for v in V.T:
        expected = M_inv @ v
        assert np.allclose(ctx.apply_full(v), expected, rtol=1e-7,
                           atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("smoother", ["identity", "bjacobi"])
def test_two_level_is_symmetric_positive_definite(smoother):
    obj, lin = _objective()
    P = _amg_basis(lin, 8)
    ctx = TwoLevel(obj.comm, [obj.n], lambda objective, lin: P, smoother)
    ctx.bind(obj, lin, LAM)
    M = _matrix_of(ctx, obj.n)
    assert np.allclose(M, M.T, rtol=0, atol=1e-8 * np.abs(M).max())
    assert np.linalg.eigvalsh(0.5 * (M + M.T)).min() > 0


def test_two_level_without_coarse_space_is_the_smoother():
    obj, lin = _objective()
    ctx = TwoLevel(obj.comm, [obj.n], lambda objective, lin: None)
    ctx.bind(obj, lin, LAM)
    v = np.arange(obj.n, dtype=float)
    assert ctx.coarse_size == 0 and np.allclose(ctx.apply_full(v), v / LAM, rtol=1e-15)


def test_two_level_is_exact_on_the_coarse_space_and_the_null_space():
    """M⁻¹A is the identity on range(P) and on the vectors of null(J) A-orthogonal to range(P)."""
    obj, lin = _objective(t=11, width=8)       # m = 13 < n = 24: null(J) is not empty
    P = _amg_basis(lin, 8)
    ctx = TwoLevel(obj.comm, [obj.n], lambda objective, lin: P)
    ctx.bind(obj, lin, LAM)
    A = _dense(lin)
    Pd = P.toarray()
    coarse = Pd @ np.random.default_rng(2).standard_normal(P.shape[1])
    assert np.allclose(ctx.apply_full(A @ coarse), coarse, rtol=1e-8)
    _, _, Vt = np.linalg.svd(np.asarray(lin.J))
    null = Vt[13:].T                            # null(J)
    _, _, Wt = np.linalg.svd(Pd.T @ A @ null)   # A-orthogonal to range(P), within null(J)
    y = null @ Wt[-1]
    assert np.abs(Pd.T @ A @ y).max() < 1e-10 * np.abs(A).max()
    assert np.allclose(ctx.apply_full(A @ y), y, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("pc", ["none", "jacobi", "bjacobi", "mg"])
@pytest.mark.parametrize("shape", [(40, 8), (11, 8)])   # m > n and m < n
def test_a_preconditioned_solve_gives_the_dense_step(pc, shape):
    t, width = shape
    obj, lin = _objective(t=t, width=width)
    P = _amg_basis(lin, width)
    solver = RegularizedSolver(obj.comm, obj.n, obj.m, obj.m_local, "normal", rtol=1e-12, pc=pc,
                               coarse_basis=lambda objective, lin: P)
    try:
        s, info = solver.solve(obj, lin, LAM)
    finally:
        solver.destroy()
    exact = np.linalg.solve(_dense(lin), -lin.g)
    assert info.form == "normal" and info.reason.startswith("CONVERGED")
    assert np.allclose(s, exact, rtol=1e-6, atol=1e-8 * np.abs(exact).max()), \
        f"{pc}: max error {np.abs(s - exact).max():.2e}"


def test_auto_takes_the_normal_form_when_preconditioned():
    # m = 902 < n = 1200: forming JJᵀ (2m²n) costs more than 400 CG iterations (4mn each)
    obj, lin = _objective(t=900, width=400)
    forms = {pc: RegularizedSolver(obj.comm, obj.n, obj.m, obj.m_local, "auto", pc=pc)
             for pc in ("none", "mg")}
    assert forms["none"].choose_form(lin) == "residual"
    assert forms["mg"].choose_form(lin) == "normal"
    for solver in forms.values():
        solver.destroy()


def test_the_preconditioner_needs_a_parameter_space_form():
    with pytest.raises(ConfigError, match="--pc mg"):
        Config(pc="mg", solve_form="residual").validate()
    obj, _ = _objective()
    with pytest.raises(ValueError, match="parameter space"):
        RegularizedSolver(obj.comm, obj.n, obj.m, obj.m_local, "direct", pc="bjacobi")


def test_lm_coarsens_for_the_preconditioner_every_n_solves_at_a_new_point():
    obj, lin = _objective()
    space = RebuiltNeuronSpace(MultilevelParameters(), rebuild_every=2)
    P0 = space(obj, lin)
    assert sp.issparse(P0) and P0.shape[0] == obj.n
    assert space(obj, lin) is P0           # second solve
    assert space(obj, lin) is P0           # due, but a rejected step: same point
    lin1 = obj.linearize(lin.x + 1e-3)
    assert space(obj, lin1) is not P0       # due at a new point: rebuilt


@pytest.mark.parametrize("method", ["lm", "rlm"])
def test_a_preconditioned_run_takes_the_same_steps(method):
    """t = 300 points, r = 128, the normal form: every fine step is a Krylov solve.  rlm
    chooses its steps by the ‖Rg‖ test alone here: the cost-aware choice weighs flops, which
    the preconditioner changes."""
    runs = {}
    for pc in ("none", "mg"):
        cfg = Config(problem="poisson", nu=8.0, width=128, points=300, method=method,
                     init="spread", max_iter=6, pc=pc, solve_form="normal",
                     model_choice="gradient",
                     quiet=True).validate()
        runs[pc] = train(cfg, Comm(MPI.COMM_WORLD.Dup()))
    losses = {pc: [r.loss for r in out.state.history] for pc, out in runs.items()}
    assert np.allclose(losses["mg"], losses["none"], rtol=1e-5), losses
    cg = {pc: sum(r.ksp_its for r in out.state.history if r.level == 0)
          for pc, out in runs.items()}
    assert cg["mg"] < cg["none"], cg


def test_rlm_levels_take_the_level_below_and_the_fine_level_coarsens_until_it_exists():
    obj, lin = _objective()
    hierarchy = Hierarchy(obj, lambda level_objective: None,
                          MultilevelParameters(levels=2, min_width=2))
    own = RebuiltNeuronSpace(MultilevelParameters(), rebuild_every=40)
    space = HierarchySpace(hierarchy, own)
    before = space(obj, lin)                  # no hierarchy yet: its own coarsening
    assert before is own.P and before is not None
    hierarchy.build(lin, 0)
    assert len(hierarchy.levels) == 1
    assert space(obj, lin) is hierarchy.levels[0].transfer.P_full
    coarse = hierarchy.levels[0].objective
    assert space(coarse, coarse.linearize(np.zeros(coarse.n))) is None   # the coarsest level
