"""Recursive multilevel LM: coherence of the coarse models, the two-level step, convergence."""

import numpy as np
import pytest
from mpi4py import MPI

from mlpar.comm import Comm
from mlpar.config import Config
from mlpar.leastsquares import FlopCounter, LeastSquares
from mlpar.linsolve import RegularizedSolver
from mlpar.lm import LMParameters
from mlpar.multilevel import (CorrectedObjective, Hierarchy, MultilevelLM,
                              MultilevelParameters)
from mlpar.network import initial_parameters
from mlpar.problems import ResidualBlock, make_problem
from mlpar.train import train


def _setup(coarse_model="galerkin", coarse_start="collect", nu=10.0, width=96, seed=0):
    comm = Comm(MPI.COMM_SELF)
    prob = make_problem("poisson", nu)
    t = 29
    flops = FlopCounter()
    fine = LeastSquares(ResidualBlock(prob, "sigmoid", t, 1.0, 0, t + 2), comm, t + 2, 3 * width,
                        flops)
    mprm = MultilevelParameters(coarse_model=coarse_model, coarse_start=coarse_start,
                                coarse_max_iter=3, kappa_h=0.1)
    hierarchy = Hierarchy(fine, lambda obj: RegularizedSolver(obj, "auto", 1e-12), mprm)
    solver = RegularizedSolver(fine, "auto", 1e-12)
    method = MultilevelLM(fine, solver, LMParameters(), mprm, hierarchy)
    x = initial_parameters(width, nu, seed)
    for _ in range(2):   # move away from the initial point so that the test is not special
        lin = fine.linearize(x)
        x = x + method.taylor_step(lin, 0.05).s
    lin = fine.linearize(x)
    hierarchy.build(lin, 0)
    return method, hierarchy, fine, lin


@pytest.mark.parametrize("start", ["collect", "injection", "restriction"])
def test_first_order_coherence_of_the_network_model(start):
    method, h, fine, lin = _setup("network", start)
    try:
        Rg = h.restrict(0, lin.g)
        base, y0 = h.coarse_model(0, fine, lin)
        lin0 = base.linearize(y0)
        coarse = CorrectedObjective(base, y0, Rg - lin0.g)
        g_mu = coarse.linearize(y0).g
        assert np.allclose(g_mu, Rg, rtol=1e-12, atol=1e-12 * np.abs(Rg).max())
        # and ∇μ is the gradient of μ: finite differences along a random direction
        d = np.random.default_rng(0).normal(size=y0.size)
        eps = 1e-6
        fd = (coarse.value(y0 + eps * d) - coarse.value(y0 - eps * d)) / (2 * eps)
        assert fd == pytest.approx(float(g_mu @ d), rel=1e-5)
    finally:
        method.solver.destroy()
        h.destroy()


def test_galerkin_model_is_coherent_to_second_order():
    method, h, fine, lin = _setup("galerkin")
    try:
        t = h.transfers[0]
        coarse, s0 = h.coarse_model(0, fine, lin)
        lin0 = coarse.linearize(s0)
        assert np.allclose(lin0.g, t.restrict(lin.g), rtol=1e-12, atol=1e-12 * np.abs(lin.g).max())
        assert lin0.f == pytest.approx(lin.f, rel=1e-13)
        s = np.random.default_rng(1).normal(size=s0.size) * 1e-3
        Ps = t.prolong(s)
        gn = lin.f + lin.g @ Ps + 0.5 * np.sum((lin.J @ Ps) ** 2)
        assert coarse.value(s) == pytest.approx(gn, rel=1e-12)
    finally:
        method.solver.destroy()
        h.destroy()


def test_a_two_level_step_reduces_the_loss():
    method, h, fine, lin = _setup("galerkin")
    try:
        prop = method._recursive_step(0, fine, lin, 1.0)
        assert prop is not None and prop.level == 1
        assert prop.pred > 0
        assert fine.value(lin.x + prop.s) < lin.f
    finally:
        method.solver.destroy()
        h.destroy()


@pytest.mark.parametrize("model", ["galerkin", "network"])
def test_the_ratio_test_never_accepts_an_increase(model):
    method, h, fine, lin = _setup(model)
    try:
        for lam in (1e-4, 1e-2, 1.0, 1e2):
            prop, rho, accepted, lam_new = method.iterate(lin, lam, iteration=0)
            f_new = fine.value(lin.x + prop.s)
            assert accepted == (rho >= method.prm.eta1)
            if accepted:
                assert f_new < lin.f and lam_new <= lam
            else:
                assert lam_new > lam
    finally:
        method.solver.destroy()
        h.destroy()


def test_hierarchy_levels_shrink_and_respect_the_minimum_width():
    comm = Comm(MPI.COMM_SELF)
    prob = make_problem("poisson", 10.0)
    fine = LeastSquares(ResidualBlock(prob, "sigmoid", 29, 1.0, 0, 31), comm, 31, 3 * 256,
                        FlopCounter())
    h = Hierarchy(fine, lambda obj: RegularizedSolver(obj, "auto", 1e-10),
                  MultilevelParameters(levels=4, min_width=8))
    try:
        h.build(fine.linearize(initial_parameters(256, 10.0, 0)), 0)
        widths = h.widths
        assert len(widths) >= 3 and all(a > b for a, b in zip(widths, widths[1:]))
        assert all(w > 8 for w in widths[:-1])
    finally:
        h.destroy()


def test_rlm_solves_poisson_nu5():
    cfg = Config(problem="poisson", nu=5.0, width=64, method="rlm", max_iter=2000, kappa_h=0.1,
                 quiet=True)
    out = train(cfg, Comm(MPI.COMM_SELF))
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-3
    levels = {rec.level for rec in out.state.history if rec.accepted}
    assert levels == {0, 1}, "both fine and coarse steps were taken"


def test_a_rejected_step_keeps_the_hierarchy_and_a_new_point_rebuilds_it():
    method, h, fine, lin = _setup("galerkin")
    try:
        method.propose(lin, 1.0, iteration=0)
        first = h.transfers[0]
        method.propose(lin, 1.5, iteration=1)      # same linearisation: a rejected step
        assert h.transfers[0] is first and h.built_at == 1
        moved = fine.linearize(lin.x + 1e-3)
        method.propose(moved, 1.0, iteration=2)
        assert h.transfers[0] is not first and h.built_from is moved
    finally:
        method.solver.destroy()
        h.destroy()
