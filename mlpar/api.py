"""The library entry point: options in, trained weights and history out.

    >>> import mlpar
    >>> result = mlpar.solve({"problem": "poisson", "nu": 5, "width": 32, "method": "lm"})
    >>> result.status, result.iterations, result.rmse          # doctest: +SKIP

This module wires the pieces together (problem rows of this rank, objective,
PETSc solver, method) and knows nothing about the command line or files;
:mod:`mlpar.cli` adds progress, checkpoints, signals and the output file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from mlpar.config import Config
from mlpar.model import losses
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import apply_operator, initial_parameters
from mlpar.model.problems import (
    Problem,
    ResidualBlock,
    errors,
    interior_points,
    make_problem,
    problem_point_count,
    row_count,
    test_grid,
)
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.multilevel.preconditioning import HierarchySpace, RebuiltNeuronSpace
from mlpar.optim.arc import cubic_step
from mlpar.optim.common import LMParameters
from mlpar.optim.driver import Record, State, Tolerances, run
from mlpar.optim.lm import taylor_step
from mlpar.optim.method import SingleLevelMethod
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.parallel.smoothloss import SmoothLoss
from mlpar.protocols import FlopCounter


@dataclass
class Result:
    """What a run produced (:func:`solve`, :func:`train`), identical on every rank."""

    status: str
    """``converged``, ``max_iter``, ``interrupted`` or ``failed``."""
    reason: str
    """Which test ended the run (:data:`mlpar.optim.common.TERMINATION`)."""
    message: str
    x: np.ndarray
    """The trained weights, laid out as ``layout`` says."""
    layout: ParameterLayout
    iterations: int
    loss: float
    gnorm: float
    rmse: float
    rel_l2: float
    """‖ĝ − u_T‖/‖u_T‖ on the test grid."""
    flops_matvec: float
    wall_time: float
    history: list[Record]
    config: Config
    state: State
    """Everything a checkpoint stores (the command line writes it; :func:`train` continues it)."""
    solution: dict
    """The network and the true solution on the test grid (as in the output file)."""


def configured_problem(cfg: Config) -> Problem:
    """The configured problem (ν; a₁, a₂, k for helmholtz2d)."""
    return make_problem(cfg.problem, cfg.nu, cfg.a1, cfg.a2, cfg.k)


#: Names of the axes of the d-dimensional test grid in the output's ``solution`` group.
AXES = ("x", "y", "z")


def evaluate(cfg: Config, x) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Errors against the true solution, {"rmse", "rel_l2"}, and the solution on the test
    grid, for weights x.

    The solution is {z, u, u_true} on the 1-D grid; for d > 1 the axes x, y (, z) and u,
    u_true as d-dimensional arrays, u[i, j] = ĝ(x_i, y_j)."""
    problem = configured_problem(cfg)
    axis, z = test_grid(problem, cfg.test_points)
    rmse, rel_l2 = errors(problem, cfg.activation, x, z)
    u, u_true = apply_operator(cfg.activation, x, z, ((0, 1.0),)), problem.exact(z)
    if problem.input_dim == 1:
        solution = {"z": z, "u": u, "u_true": u_true}
    else:
        shape = (axis.size,) * problem.input_dim
        solution = {name: axis for name in AXES[:problem.input_dim]}
        solution.update(u=u.reshape(shape), u_true=u_true.reshape(shape))
    return {"rmse": rmse, "rel_l2": rel_l2}, solution


def seed_loss(cfg: Config, x) -> float:
    """The seed's formula of the configured loss on the interior training residuals
    r_j = D(ĝ)(z_j) − g(z_j) (:func:`mlpar.model.losses.seed_loss`)."""
    problem = configured_problem(cfg)
    z = interior_points(problem, points_per_dimension(cfg))
    residuals = apply_operator(cfg.activation, x, z, problem.terms) - problem.rhs(z)
    return losses.seed_loss(cfg.loss, residuals)


def points_per_dimension(cfg: Config) -> int:
    """t: ``--points``, or the problem's default (h = 1/(3ν))."""
    return cfg.points or problem_point_count(configured_problem(cfg))


def initial_frequency(cfg: Config) -> float:
    """The ν of the ``spread`` initialisation: ``--nu`` in 1D, the highest axial frequency of
    the solution for d > 1 (ν for poisson2d/3d, π max(a₁, a₂) for helmholtz2d)."""
    problem = configured_problem(cfg)
    return cfg.nu if problem.input_dim == 1 else problem.frequency


def problem_size(cfg: Config) -> tuple[int, int, int]:
    """(T, m, n): interior training points (tᵈ), residual rows, weights."""
    interior, m = row_count(configured_problem(cfg), points_per_dimension(cfg))
    return interior, m, cfg.layout.size


def multilevel_parameters(cfg: Config) -> MultilevelParameters:
    """The recursion's settings taken from the configuration (ε_H is the gradient tolerance)."""
    given = {f.name: getattr(cfg, f.name) for f in fields(MultilevelParameters)
             if hasattr(cfg, f.name)}
    given["coarse_model"] = cfg.resolved_coarse_model
    given["rebuild_every"] = cfg.resolved_rebuild_every
    return MultilevelParameters(**given, eps_h=cfg.gtol)


def release_petsc_objects(comm: Comm) -> None:
    """Destroy, collectively and now, the PETSc objects whose Python handles are gone.

    petsc4py defers such destructions to PETSc's garbage list; left there, they would be
    destroyed at interpreter exit on a communicator the caller may have freed by then."""
    from petsc4py import PETSc
    PETSc.garbage_cleanup(comm.mpi)


def build(cfg: Config, comm: Comm):
    """(objective, solver, method, hierarchy or None) of the configured run on ``comm``."""
    from mlpar.linalg.linsolve import RegularizedSolver  # PETSc: imported once it is initialised
    _, m, _ = problem_size(cfg)
    lo, hi = comm.block_range(m)
    flops = FlopCounter()
    block = ResidualBlock(configured_problem(cfg), cfg.activation, points_per_dimension(cfg),
                          cfg.lambda_p, lo, hi)
    second_order = cfg.method in ("arc", "rarc")
    mprm = multilevel_parameters(cfg)
    hierarchy = None
    if second_order:
        from mlpar.linalg.lanczos import CubicSolver
        objective = SmoothLoss(block, comm, m, cfg.layout, flops, cfg.loss, cfg.l1_smoothing)

        def make_solver(level_objective):
            return CubicSolver(comm, level_objective.n, cfg.cubic_theta, cfg.krylov_max_it)
    else:
        objective = LeastSquares(block, comm, m, cfg.layout, flops)

        def make_solver(level_objective):
            # the coarse space of the two-level preconditioner: the hierarchy's level below
            # (rlm), or a coarsening of its own (lm), built only if the preconditioner asks
            own = RebuiltNeuronSpace(mprm, mprm.rebuild_every)
            space = own if hierarchy is None else HierarchySpace(hierarchy, own)
            return RegularizedSolver(comm, level_objective.n, level_objective.m,
                                     level_objective.m_local, cfg.solve_form, cfg.ksp_rtol,
                                     cfg.pc, space)
    step_rule = cubic_step if second_order else taylor_step
    prm = LMParameters(lambda0=cfg.lambda0, lambda_min=cfg.lambda_min)
    if cfg.method in ("rlm", "rarc"):
        # the multilevel modules (scipy.sparse, pyamg) are imported only by the methods using them
        from mlpar.multilevel.hierarchy import Hierarchy
        from mlpar.multilevel.recursion import MultilevelMethod
        hierarchy = Hierarchy(objective, make_solver, mprm)
        solver = make_solver(objective)
        method = MultilevelMethod(objective, solver, prm, step_rule, hierarchy.prm, hierarchy)
    else:
        solver = make_solver(objective)
        method = SingleLevelMethod(objective, solver, prm, step_rule)
    return objective, solver, method, hierarchy


def _with_time_limit(should_stop, cfg: Config, comm: Comm):
    """``should_stop`` followed by the collective test of ``--max-time`` (rank 0's elapsed
    time, broadcast, so every rank stops at the same iteration)."""
    if not cfg.max_time:
        return should_stop

    def test(state) -> str | None:
        reason = should_stop(state) if should_stop is not None else None
        late = comm.bcast(state.elapsed >= cfg.max_time if comm.is_root else None)
        return reason or ("max_time" if late else None)
    return test


def train(cfg: Config, comm: Comm, on_record=None, should_stop=None,
          state: State | None = None, on_build=None) -> Result:
    """Run the configured method from the configured initial weights, or continue ``state``.

    ``on_record(record, state)`` runs after every iteration; ``should_stop(state)``
    is collective and returns None to go on or the reason to stop (see
    :func:`mlpar.optim.driver.run`).  ``cfg.max_time`` is tested after it, on rank 0's
    clock.
    """
    objective, solver, method, hierarchy = build(cfg, comm)
    if hierarchy is not None:
        hierarchy.on_build = on_build
    if state is None:
        x0 = initial_parameters(cfg.width, initial_frequency(cfg), cfg.seed, cfg.init,
                                cfg.layout.input_dim)
        state = State(x0, cfg.lambda0, f0=objective.value(x0))
    try:
        state = run(method, state, Tolerances(cfg.max_iter, cfg.gtol, cfg.ftol, cfg.max_time),
                    on_record=on_record, should_stop=_with_time_limit(should_stop, cfg, comm))
    finally:
        solver.destroy()
        if hierarchy is not None:
            hierarchy.destroy()
    release_petsc_objects(comm)   # collective: not on the way out of one rank's exception
    error, solution = evaluate(cfg, state.x)
    return Result(state.status, state.reason, state.message, state.x, cfg.layout,
                  state.iteration, state.f, state.gnorm, error["rmse"], error["rel_l2"],
                  state.flops, state.elapsed, state.history, cfg, state, solution)


def _initialise_petsc(petsc_options: list[str]) -> None:
    import petsc4py
    if "petsc4py.PETSc" in sys.modules:
        if petsc_options:   # PETSc already runs: add them to its options database
            from petsc4py import PETSc
            PETSc.Options().insertString(" ".join(petsc_options))
        return
    # PETSc's world stays MPI's: every PETSc object is created on an explicit communicator,
    # and a caller's communicator may be freed before PETSc finalises at exit.
    petsc4py.init(["mlpar"] + list(petsc_options))


def solve(options: dict | Config | None = None, comm=None,
          on_iteration: Callable[[Record, np.ndarray], None] | None = None,
          petsc_options: list[str] | None = None) -> Result:
    """Train the network the options describe and return the result; writes no file.

    Parameters
    ----------
    options : the run's options by their long names (``{"problem": "poisson", "nu": 20,
        "width": 512, "method": "rlm"}``; see ``python -m mlpar --help``), or a
        :class:`mlpar.config.Config`.  Unset options take their defaults.
    comm : an mpi4py communicator (default: ``MPI.COMM_WORLD``) or a
        :class:`mlpar.parallel.comm.Comm`; the training points are distributed over it.
    on_iteration : called as ``on_iteration(record, x)`` after every fine iteration, on every
        rank, with the iteration's :class:`mlpar.optim.driver.Record` and the current weights.
    petsc_options : PETSc options (``["-ksp_type", "cg"]``) for the subproblem solves.

    Returns
    -------
    Result : status, reason and message, the weights, the history and the figures of the run.
    """
    from mlpar.parallel.comm import wrap
    comm = wrap(comm)
    if isinstance(options, Config):
        cfg = options.validate()
    else:
        cfg = Config(**(options or {})).validate()
    _initialise_petsc(petsc_options or [])
    on_record = None if on_iteration is None else (lambda rec, st: on_iteration(rec, st.x))
    return train(cfg, comm, on_record=on_record)
