"""``--pc auto``: no preconditioner until a solve needs more than N CG iterations, then the
two-level ``mg``; against the unpreconditioned run and a dense solve, and through a
checkpoint."""

import numpy as np
import pytest
from helpers import resumes_bit_for_bit
from mpi4py import MPI
from petsc4py import PETSc

from mlpar.api import train
from mlpar.config import Config
from mlpar.linalg.linsolve import RegularizedSolver
from mlpar.linalg.preconditioner import AUTO_ITERATIONS
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.multilevel.preconditioning import RebuiltNeuronSpace
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.protocols import FlopCounter

SELF = Comm(MPI.COMM_SELF)
#: r = 64, 200 points, the normal form: spread init needs 19-32 CG iterations per LM step,
#: uniform init 6.
SMALL = {"problem": "poisson", "nu": 8.0, "width": 64, "points": 200, "method": "lm",
         "max_iter": 8, "solve_form": "normal", "quiet": True}
LOW = 20   # a threshold N that the spread runs pass at their second step


@pytest.fixture
def threshold():
    """Sets ``-mlpar_pc_auto_its`` for one test: ``threshold(N)``."""
    def set_to(value: int) -> None:
        PETSc.Options()["mlpar_pc_auto_its"] = value
    yield set_to
    PETSc.Options().delValue("mlpar_pc_auto_its")


def _run(**more):
    return train(Config(**{**SMALL, **more}).validate(), SELF).state


def test_auto_is_none_while_every_solve_stays_below_n():
    runs = {pc: _run(pc=pc, init="uniform") for pc in ("none", "auto")}
    assert max(r.ksp_its for r in runs["auto"].history) <= AUTO_ITERATIONS
    assert np.array_equal(runs["auto"].x, runs["none"].x)
    assert runs["auto"].flops == runs["none"].flops
    assert [r.loss for r in runs["auto"].history] == [r.loss for r in runs["none"].history]
    assert {r.pc for r in runs["auto"].history} == {"none"}


def test_auto_is_none_on_the_direct_form():
    """The seed's sizes (form auto resolves to direct): no Krylov solve, nothing to switch."""
    options = {"solve_form": "auto", "points": 0, "max_iter": 6}
    runs = {pc: _run(pc=pc, **options) for pc in ("none", "auto")}
    assert np.array_equal(runs["auto"].x, runs["none"].x)
    assert runs["auto"].flops == runs["none"].flops
    assert {r.pc for r in runs["auto"].history} == {""}
    Config(pc="auto", solve_form="residual").validate()   # auto means none there: no error


def test_auto_switches_after_a_solve_above_n_and_takes_the_same_steps(threshold):
    none = _run(pc="none", init="spread", ksp_rtol=1e-12)
    n = none.history[0].ksp_its   # the first solve stays at N, a later one passes it
    threshold(n)
    auto = _run(pc="auto", init="spread", ksp_rtol=1e-12)
    first = next(i for i, r in enumerate(none.history) if r.ksp_its > n)
    assert 0 < first < len(none.history) - 2
    k = first + 1   # the solve that passed N is unpreconditioned, the next ones are not
    assert [r.pc for r in auto.history] == ["none"] * k + ["mg"] * (len(auto.history) - k)
    assert [r.loss for r in auto.history[:k]] == [r.loss for r in none.history[:k]]
    losses = [[r.loss for r in run.history] for run in (auto, none)]
    assert np.allclose(*losses, rtol=1e-6), losses
    cg = [sum(r.ksp_its for r in run.history[k:]) for run in (auto, none)]
    assert cg[0] < cg[1], cg


def test_auto_stays_off_on_a_level_too_wide_for_the_dense_coarse_matrices(threshold,
                                                                            monkeypatch):
    """Above AUTO_MG_MAX_WEIGHTS weights (here lowered to 3r - 1) the same run that switches
    mg on stays unpreconditioned throughout, step for step as --pc none."""
    from mlpar.linalg import forms
    none = _run(pc="none", init="spread", ksp_rtol=1e-12)
    threshold(LOW)
    assert max(r.ksp_its for r in none.history) > LOW
    monkeypatch.setattr(forms, "AUTO_MG_MAX_WEIGHTS", 3 * SMALL["width"] - 1)
    auto = _run(pc="auto", init="spread", ksp_rtol=1e-12)
    assert {r.pc for r in auto.history} == {"none"}
    assert np.array_equal(auto.x, none.x)


def _objective():
    prob = make_problem("poisson", 4.0)
    m = 40 + len(prob.boundary)
    obj = LeastSquares(ResidualBlock(prob, "sigmoid", 40, 0.5, 0, m), SELF, m,
                       ParameterLayout(8), FlopCounter())
    return obj, obj.linearize(initial_parameters(8, 4.0, seed=2, scheme="spread"))


def test_the_switched_solver_gives_the_dense_step(threshold):
    threshold(0)   # every solve needs more than 0 iterations: mg from the second one
    obj, lin = _objective()
    lam = 1e-3
    J = np.asarray(lin.J)
    exact = np.linalg.solve(J.T @ J + lam * np.eye(obj.n), -lin.g)
    solver = RegularizedSolver(SELF, obj.n, obj.m, obj.m_local, "normal", rtol=1e-12,
                               pc="auto", coarse_basis=RebuiltNeuronSpace(
                                   MultilevelParameters(), 0))
    try:
        used = []
        for _ in range(2):
            s, info = solver.solve(obj, lin, lam)
            assert np.allclose(s, exact, rtol=1e-6, atol=1e-8 * np.abs(exact).max())
            used.append(info.pc)
        state = solver.state(lin)
    finally:
        solver.destroy()
    assert used == ["none", "mg"]
    assert state["pc_auto_on"][0] == 1 and state["pc_setup_here"][0] == 1
    assert state["space_P_shape"][0] == obj.n


def test_the_options_database_pc_holds_auto_off(threshold):
    threshold(LOW)
    PETSc.Options()["pc_type"] = "jacobi"
    try:
        run = _run(pc="auto", init="spread")
    finally:
        PETSc.Options().delValue("pc_type")
    assert max(r.ksp_its for r in run.history) > LOW
    assert {r.pc for r in run.history} == {"jacobi"}


@pytest.mark.parametrize("method, stop", [("lm", 1), ("lm", 4), ("rlm", 4)])
def test_a_switched_run_resumes_bit_for_bit(tmp_path, threshold, method, stop):
    """Stopped before (lm, 1) or after the switch, written to a checkpoint, read back and
    continued: the uninterrupted run's weights, flops, losses and preconditioners."""
    threshold(LOW)
    options = {**SMALL, "method": method, "init": "spread", "pc": "auto"}
    end = options.pop("max_iter")
    whole = resumes_bit_for_bit(tmp_path, options, stop, end)
    assert "mg" in {r.pc for r in whole.history}
