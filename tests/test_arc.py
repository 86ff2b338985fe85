"""The higher-order family: losses, exact Hessian–vector products, the cubic subproblem, ARC and RARC."""

import numpy as np
import pytest
from mpi4py import MPI

from mlpar.api import train
from mlpar.config import Config
from mlpar.linalg.cubic import cubic_minimizer
from mlpar.linalg.lanczos import CubicSolver
from mlpar.model import losses
from mlpar.model.activations import NAMES as ACTIVATIONS
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import NAMES as PROBLEMS
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.multilevel import amg, models
from mlpar.parallel.comm import Comm
from mlpar.parallel.smoothloss import SmoothLoss
from mlpar.protocols import FlopCounter

SELF = Comm(MPI.COMM_SELF)


def _objective(problem="poisson", activation="sigmoid", loss="l2", nu=4.0, width=12, t=11,
               delta=0.05):
    prob = make_problem(problem, nu)
    m = t + len(prob.boundary)
    block = ResidualBlock(prob, activation, t, 0.7, 0, m)
    return SmoothLoss(block, SELF, m, ParameterLayout(width), FlopCounter(), loss, delta)


@pytest.mark.parametrize("loss", losses.NAMES)
def test_loss_derivatives_match_finite_differences(loss):
    r = np.linspace(-3.0, 3.0, 41)
    h = 1e-6
    phi, d1, d2 = losses.derivatives(loss, r, 0.3)
    fp, _, _ = losses.derivatives(loss, r + h, 0.3)
    fm, _, _ = losses.derivatives(loss, r - h, 0.3)
    _, gp, _ = losses.derivatives(loss, r + h, 0.3)
    _, gm, _ = losses.derivatives(loss, r - h, 0.3)
    assert np.allclose((fp - fm) / (2 * h), d1, atol=1e-8)
    assert np.allclose((gp - gm) / (2 * h), d2, atol=1e-7)
    assert np.all(phi >= 0) and phi[20] == 0.0 and np.all(d2 > 0)


def test_smoothed_l1_is_within_delta_of_the_absolute_value_and_logistic_is_stable():
    r = np.array([-1e3, -2.0, 0.0, 0.5, 1e3])
    phi, _, _ = losses.derivatives("l1", r, 1e-3)
    assert np.all(np.abs(phi - np.abs(r)) <= 1e-3)
    phi, d1, d2 = losses.derivatives("logistic", r)
    assert np.all(np.isfinite(phi)) and phi[-1] == pytest.approx(1e3 - 2 * np.log(2))
    assert np.allclose(phi[1:4], 2 * np.log(np.cosh(r[1:4] / 2)), rtol=1e-12, atol=1e-15)


def test_seed_logistic_formula_is_not_minimised_at_the_data():
    # (1/t) Σ 1/(1 + e^{y − ĝ}) keeps decreasing as ĝ → −∞: why it is not what is trained
    r = np.zeros(5)
    assert losses.seed_loss("logistic", r) == pytest.approx(0.5)
    assert losses.seed_loss("logistic", r - 10) < losses.seed_loss("logistic", r)
    assert losses.seed_loss("l1", np.array([1.0, -3.0])) == 2.0
    assert losses.seed_loss("l2", np.array([1.0, -3.0])) == 5.0


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", losses.NAMES)
def test_gradient_and_hessian_vector_products_match_finite_differences(problem, activation, loss):
    obj = _objective(problem, activation, loss)
    rng = np.random.default_rng(3)
    x = initial_parameters(12, 4.0, 1) + 0.1 * rng.normal(size=36)
    lin = obj.linearize(x)
    assert lin.f == pytest.approx(obj.value(x), rel=1e-14)
    d = rng.normal(size=x.size)
    h = 1e-4

    def slope(step):
        return (obj.value(x + step * d) - obj.value(x - step * d)) / (2 * step)
    fd_grad = (4 * slope(h / 2) - slope(h)) / 3       # Richardson: O(h⁴)
    assert fd_grad == pytest.approx(float(lin.g @ d), rel=1e-7, abs=1e-9 * np.abs(lin.g).sum())
    Hd = obj.hessvec(lin, d)   # before linearizing elsewhere: lin.J is the objective's buffer

    def central(step):
        return (obj.linearize(x + step * d).g - obj.linearize(x - step * d).g) / (2 * step)
    fd_hess = (4 * central(h / 2) - central(h)) / 3     # Richardson: O(h⁴)
    assert np.linalg.norm(Hd - fd_hess) <= 1e-6 * np.linalg.norm(fd_hess)
    # symmetric, as a Hessian must be
    lin = obj.linearize(x)
    e = rng.normal(size=x.size)
    assert float(e @ Hd) == pytest.approx(float(d @ obj.hessvec(lin, e)), rel=1e-10)


def test_hessian_has_negative_curvature_away_from_a_minimum():
    obj = _objective("poisson", "tanh", "l2", nu=6.0, width=16, t=17)
    x = initial_parameters(16, 6.0, 0, "uniform")
    lin = obj.linearize(x)
    H = np.column_stack([obj.hessvec(lin, e) for e in np.eye(x.size)])
    assert np.allclose(H, H.T, rtol=1e-10, atol=1e-10 * np.abs(H).max())
    assert np.linalg.eigvalsh(H).min() < 0


def _check_global_cubic_minimizer(T, b, lam):
    theta, V = np.linalg.eigh(T)
    y, mu = cubic_minimizer(theta, V, b, lam)
    n = np.linalg.norm(y)
    assert mu == pytest.approx(lam * n, rel=1e-9)
    assert np.linalg.norm((T + mu * np.eye(len(b))) @ y + b) <= 1e-8 * (np.linalg.norm(b) + mu * n)
    assert theta.min() + mu >= -1e-9 * np.abs(theta).max()
    return y


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("lam", [1e-3, 1.0, 1e3])
def test_cubic_minimizer_is_the_global_minimizer(seed, lam):
    """Cartis–Gould–Toint: y is the global minimiser iff (T + μI)y = −b, μ = λ‖y‖, T + μI ⪰ 0;
    and no random point has a lower model value."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(8, 8))
    T = A + A.T
    b = rng.normal(size=8)
    y = _check_global_cubic_minimizer(T, b, lam)

    def model(z):
        return b @ z + 0.5 * z @ T @ z + lam / 3 * np.linalg.norm(z) ** 3
    trials = y + rng.normal(size=(2000, 8)) * np.linalg.norm(y)
    assert min(model(z) for z in trials) >= model(y) - 1e-12 * abs(model(y))


def test_cubic_minimizer_hard_case():
    T = np.diag([-2.0, 1.0, 3.0])
    b = np.array([0.0, 1.0, 1.0])      # orthogonal to the eigenvector of −2
    y = _check_global_cubic_minimizer(T, b, 1.0)   # ‖y(μ = 2)‖ < 2/λ: no root past μ = 2
    assert abs(y[0]) > 0                # the step uses the negative-curvature direction


@pytest.mark.parametrize("loss", losses.NAMES)
@pytest.mark.parametrize("lam", [1e-4, 1e-1, 1e2])
def test_lanczos_step_meets_the_step_condition(loss, lam):
    obj = _objective("poisson", "sigmoid", loss, nu=6.0, width=24, t=17)
    x = initial_parameters(24, 6.0, 2)
    lin = obj.linearize(x)
    solver = CubicSolver(SELF, obj.n, theta=0.5, max_it=obj.n)
    try:
        s, info = solver.solve(obj, lin, lam)
    finally:
        solver.destroy()
    Hs = obj.hessvec(lin, s)
    ns = np.linalg.norm(s)
    grad_m = lin.g + Hs + lam * ns * s
    model_decrease = -(lin.g @ s + 0.5 * s @ Hs + lam / 3 * ns ** 3)
    assert info.condition_met
    assert model_decrease > 0
    assert np.linalg.norm(grad_m) <= 0.5 * ns ** 2 * (1 + 1e-6) + 1e-10 * np.linalg.norm(lin.g)
    assert info.pred == pytest.approx(-(lin.g @ s + 0.5 * s @ Hs), rel=1e-8)
    assert info.model_gnorm == pytest.approx(np.linalg.norm(grad_m), rel=1e-4, abs=1e-10)


def test_a_rejected_step_reuses_the_krylov_space():
    obj = _objective("poisson", "sigmoid", "l2", nu=6.0, width=24, t=17)
    lin = obj.linearize(initial_parameters(24, 6.0, 2))
    reused, fresh = CubicSolver(SELF, obj.n), CubicSolver(SELF, obj.n)
    try:
        _, first = reused.solve(obj, lin, 1e-3)
        before = obj.flops.total
        s, again = reused.solve(obj, lin, 1e-1)       # same point, larger λ: a rejected step
        reuse_flops = obj.flops.total - before
        s_fresh, new = fresh.solve(obj, lin, 1e-1)
    finally:
        reused.destroy()
        fresh.destroy()
    assert first.iterations > 0 and again.iterations < new.iterations
    assert reuse_flops < 0.5 * new.iterations * 4 * obj.m * obj.n
    for step, info in ((s, again), (s_fresh, new)):
        Hs = obj.hessvec(lin, step)
        ns = np.linalg.norm(step)
        assert info.condition_met
        assert np.linalg.norm(lin.g + Hs + 0.1 * ns * step) <= 0.5 * ns ** 2 * (1 + 1e-6)
    assert np.linalg.norm(s - s_fresh) <= 1e-2 * np.linalg.norm(s_fresh)


def test_the_arc_step_condition_holds_at_every_accepted_step(monkeypatch):
    """Wrap the subproblem solver so that each step's model gradient is computed explicitly."""
    checks = []
    original = CubicSolver.solve

    def solve_and_check(self, objective, lin, lam):
        s, info = original(self, objective, lin, lam)
        ns = np.linalg.norm(s)
        Hs = objective.hessvec(lin, s)
        grad_m = np.linalg.norm(lin.g + Hs + lam * ns * s)
        decrease = -(lin.g @ s + 0.5 * s @ Hs + lam / 3 * ns ** 3)
        checks.append((grad_m <= self.theta * ns ** 2 * (1 + 1e-6)
                       + 1e-12 * np.linalg.norm(lin.g), decrease > 0))
        return s, info

    monkeypatch.setattr(CubicSolver, "solve", solve_and_check)
    cfg = Config(problem="poisson", nu=5.0, width=32, method="arc", max_iter=150, quiet=True,
                 krylov_max_it=96)
    out = train(cfg, SELF)
    accepted = [rec.accepted for rec in out.state.history]
    assert len(checks) == len(accepted) and sum(accepted) > 20
    for (condition, decrease), acc in zip(checks, accepted):
        assert decrease
        if acc:
            assert condition


def test_arc_solves_poisson_nu5():
    cfg = Config(problem="poisson", nu=5.0, width=64, method="arc", max_iter=3000, quiet=True)
    out = train(cfg, SELF)
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-3


@pytest.mark.parametrize("loss,gtol", [("logistic", 1e-8), ("l1", 1e-6)])
def test_arc_fits_with_the_logistic_and_l1_losses(loss, gtol):
    # smoothed L1 has curvature 1/δ at zero residual: a tight gtol costs many iterations
    cfg = Config(problem="fit", nu=5.0, width=32, points=40, method="arc", loss=loss,
                 l1_smoothing=1e-2, gtol=gtol, max_iter=3000, quiet=True)
    out = train(cfg, SELF)
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-2


def test_rarc_solves_poisson_nu5_using_both_levels():
    cfg = Config(problem="poisson", nu=5.0, width=64, method="rarc", max_iter=5000, kappa_h=0.1,
                 quiet=True)
    out = train(cfg, SELF)
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-3
    assert {rec.level for rec in out.state.history if rec.accepted} == {0, 1}


def test_galerkin_quadratic_is_coherent_to_second_order():
    obj = _objective("helmholtz", "tanh", "logistic", nu=3.0, width=40, t=13)
    x = initial_parameters(40, 3.0, 4)
    lin = obj.linearize(x)
    A = amg.auxiliary_matrix(amg.gram_blocks(lin.J, ParameterLayout(40)))
    t = amg.orthonormalized(amg.coarsen(A))
    q = models.galerkin(obj, lin, t)
    s0 = np.zeros(q.n)
    lin0 = q.linearize(s0)
    assert lin0.f == lin.f
    assert np.allclose(lin0.g, t.restrict(lin.g), rtol=1e-13, atol=1e-13 * np.abs(lin.g).max())
    s = np.random.default_rng(0).normal(size=q.n)
    Ps = t.prolong(s)
    taylor = lin.f + lin.g @ Ps + 0.5 * Ps @ obj.hessvec(lin, Ps)
    assert q.value(s) == pytest.approx(taylor, rel=1e-12)
    assert np.allclose(q.hessvec(lin0, s), t.restrict(obj.hessvec(lin, Ps)), rtol=1e-12,
                       atol=1e-12 * np.abs(obj.hessvec(lin, Ps)).max())
