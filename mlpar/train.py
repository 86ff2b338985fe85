"""A training run: configuration in, trained weights and history out.

This module wires the pieces together (problem rows of this rank, objective,
PETSc solver, method) and knows nothing about the command line or files.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mlpar import losses
from mlpar.arc import AdaptiveCubic
from mlpar.comm import Comm
from mlpar.config import Config
from mlpar.lanczos import CubicSolver
from mlpar.leastsquares import FlopCounter, LeastSquares
from mlpar.linsolve import RegularizedSolver
from mlpar.lm import LevenbergMarquardt, LMParameters, State, run
from mlpar.multilevel import Hierarchy, MultilevelARC, MultilevelLM, MultilevelParameters
from mlpar.network import apply_operator, initial_parameters
from mlpar.problems import (ResidualBlock, default_point_count, make_problem, rmse, test_points,
                            training_points)
from mlpar.secondorder import SmoothLoss


@dataclass
class Outcome:
    """What a run produced (identical on every rank)."""

    state: State
    loss: float
    gnorm: float
    rmse: float
    flops_matvec: float
    wall_time: float
    points: int
    solution: dict


def evaluate(cfg: Config, x) -> tuple[float, dict]:
    """RMSE against the true solution and the solution on the test grid, for weights x."""
    problem = make_problem(cfg.problem, cfg.nu)
    z = test_points(cfg.test_points)
    solution = {"z": z, "u": apply_operator(cfg.activation, x, z, ((0, 1.0),)),
                "u_true": problem.exact(z)}
    return rmse(problem, cfg.activation, x, z), solution


def seed_loss(cfg: Config, x) -> float:
    """The seed's formula of the configured loss on the interior training residuals
    r_j = D(ĝ)(z_j) − g(z_j) (:func:`mlpar.losses.seed_loss`)."""
    problem = make_problem(cfg.problem, cfg.nu)
    z = training_points(problem_size(cfg)[0])
    residuals = apply_operator(cfg.activation, x, z, problem.terms) - problem.rhs(z)
    return losses.seed_loss(cfg.loss, residuals)


def problem_size(cfg: Config) -> tuple[int, int, int]:
    """(t, m, n): interior training points, residual rows, weights."""
    problem = make_problem(cfg.problem, cfg.nu)
    t = cfg.points or default_point_count(cfg.nu)
    return t, t + len(problem.boundary), 3 * cfg.width


def multilevel_parameters(cfg: Config) -> MultilevelParameters:
    """The recursion's settings taken from the configuration (ε_H is the gradient tolerance)."""
    given = {f.name: getattr(cfg, f.name) for f in fields(MultilevelParameters)
             if hasattr(cfg, f.name)}
    given["coarse_model"] = cfg.resolved_coarse_model
    given["rebuild_every"] = cfg.resolved_rebuild_every
    return MultilevelParameters(**given, eps_h=cfg.gtol)


def train(cfg: Config, comm: Comm, on_record=None, should_stop=None,
          state: State | None = None) -> Outcome:
    """Run the configured method from the configured initial weights, or continue ``state``.

    ``on_record(record, state)`` runs after every iteration; ``should_stop(state)``
    is collective and interrupts the run when true (see :func:`mlpar.lm.run`).
    """
    problem = make_problem(cfg.problem, cfg.nu)
    t, m, n = problem_size(cfg)
    lo, hi = comm.block_range(m)
    flops = FlopCounter()
    block = ResidualBlock(problem, cfg.activation, t, cfg.lambda_p, lo, hi)
    if cfg.method in ("arc", "rarc"):
        objective = SmoothLoss(block, comm, m, n, flops, cfg.loss, cfg.l1_smoothing)

        def make_solver(level_objective):
            return CubicSolver(comm, level_objective.n, cfg.cubic_theta, cfg.krylov_max_it)
    else:
        objective = LeastSquares(block, comm, m, n, flops)

        def make_solver(level_objective):
            return RegularizedSolver(level_objective, cfg.solve_form, cfg.ksp_rtol)
    solver = make_solver(objective)
    prm = LMParameters(lambda0=cfg.lambda0, lambda_min=cfg.lambda_min)
    hierarchy = None
    if cfg.method in ("rlm", "rarc"):
        mprm = multilevel_parameters(cfg)
        hierarchy = Hierarchy(objective, make_solver, mprm)
        kind = MultilevelARC if cfg.method == "rarc" else MultilevelLM
        method = kind(objective, solver, prm, mprm, hierarchy)
    else:
        method = (AdaptiveCubic if cfg.method == "arc" else LevenbergMarquardt)(objective, solver,
                                                                                prm)
    if state is None:
        x0 = initial_parameters(cfg.width, cfg.nu, cfg.seed, cfg.init)
        state = State(x0, cfg.lambda0, f0=objective.value(x0))
    try:
        state = run(method, state, max_iter=cfg.max_iter, gtol=cfg.gtol, ftol=cfg.ftol,
                    on_record=on_record, should_stop=should_stop)
    finally:
        solver.destroy()
        if hierarchy is not None:
            hierarchy.destroy()
    error, solution = evaluate(cfg, state.x)
    return Outcome(state, state.f, state.gnorm, error, state.flops, state.elapsed, t, solution)

