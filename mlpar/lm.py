"""Levenberg–Marquardt on the distributed least-squares objective (q = 1).

At x_k with f, g = ∇f = JᵀF and regularisation λ_k, the Taylor step solves

    (JᵀJ + λ_k I) s = −g                                   (linsolve)

and is judged by the ratio of actual to predicted reduction

    ρ_k = (f(x_k) − f(x_k + s)) / pred,   pred = −gᵀs − ½ sᵀJᵀJs  (Taylor part).

With 0 < η1 ≤ η2 < 1 and 0 < γ2 ≤ γ1 < 1 < γ3 (method.md §1.3):

    ρ ≥ η2:       accept, λ ← max(λ_min, γ2 λ)
    η1 ≤ ρ < η2:  accept, λ ← max(λ_min, γ1 λ)
    ρ < η1:       reject, λ ← γ3 λ

The loop stops when ‖g‖ ≤ gtol, f ≤ ftol, or after ``max_iter`` iterations; it
fails when λ exceeds λ_max or ``max_rejections`` steps in a row are rejected.
Every rank holds the same x and takes the same decision; the accept/stop
decision itself is broadcast from rank 0 so that ranks can never part ways.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from mlpar.leastsquares import LeastSquares, Linearization, LinearSolveError
from mlpar.parameters import LMParameters

if TYPE_CHECKING:  # linsolve imports PETSc, which must be initialised by __main__ first
    from mlpar.linsolve import RegularizedSolver

STATUS_MESSAGES = {
    "converged": "the gradient norm or the loss reached its tolerance",
    "max_iter": "the iteration limit was reached",
    "interrupted": "the run was interrupted by a signal and checkpointed",
    "failed": "λ exceeded λ_max or too many consecutive steps were rejected",
}


def update_lambda(rho: float, lam: float, prm: LMParameters) -> tuple[bool, float]:
    """The three-case rule: return (accepted, new λ) for the ratio ρ."""
    if rho >= prm.eta2:
        return True, max(prm.lambda_min, prm.gamma2 * lam)
    if rho >= prm.eta1:
        return True, max(prm.lambda_min, prm.gamma1 * lam)
    return False, prm.gamma3 * lam


def ratio(actual: float, predicted: float) -> float:
    """ρ = actual / predicted reduction; −inf when either is not a positive finite number."""
    if not (math.isfinite(actual) and math.isfinite(predicted)) or predicted <= 0.0:
        return -math.inf
    return actual / predicted


@dataclass
class Proposal:
    """A trial step s with its predicted reduction and where it came from."""

    s: np.ndarray
    pred: float
    level: int
    ksp_its: int = 0
    f_trial: float | None = None
    """f(x + s) when the proposer has already evaluated it (a restricted coarse model, whose
    loss is the level's own): the ratio test then does not evaluate it again."""


@dataclass
class Record:
    """One fine-level iteration, as stored in the history."""

    iteration: int
    loss: float
    gnorm: float
    lam: float
    rho: float
    accepted: bool
    level: int
    ksp_its: int
    time: float
    flops_matvec: float
    widths: tuple[int, ...] = ()
    """Widths of the levels whose steps this iteration could take, the trained network first
    (one entry for a single-level method; the multilevel methods pad with 0 up to their
    number of levels)."""


@dataclass
class State:
    """Everything needed to continue a run bit for bit (what a checkpoint stores).

    ``f0`` is f(x_0) (the loss tolerance is relative to it), ``flops`` and
    ``elapsed`` the cost and wall time spent so far, ``method_state`` the
    arrays a multilevel method keeps between iterations (e.g. a reused hierarchy).
    """

    x: np.ndarray
    lam: float
    f0: float
    iteration: int = 0
    rejections: int = 0
    history: list[Record] = field(default_factory=list)
    status: str = "running"
    f: float = math.nan
    gnorm: float = math.nan
    flops: float = 0.0
    elapsed: float = 0.0
    method_state: dict[str, np.ndarray] = field(default_factory=dict)


def taylor_step(objective, solver: RegularizedSolver, lin: Linearization, lam: float,
                level: int) -> Proposal:
    """The Gauss–Newton step regularised by λ and its Taylor-model decrease
    pred = −gᵀs − ½‖Js‖²; a failed KSP gives a step that the ratio test rejects."""
    try:
        s, info = solver.solve(lin, lam)
    except LinearSolveError:
        return Proposal(np.zeros_like(lin.x), -math.inf, level)
    pred = -float(lin.g @ s) - 0.5 * objective.gauss_newton_curvature(lin, s)
    return Proposal(s, pred, level, info.iterations)


class LevenbergMarquardt:
    """Single-level LM; :meth:`propose` is the hook the multilevel method overrides,
    :attr:`step` the Taylor-step rule the higher-order methods replace."""

    level = 0
    step = staticmethod(taylor_step)

    def __init__(self, objective: LeastSquares, solver: RegularizedSolver, prm: LMParameters):
        self.objective = objective
        self.solver = solver
        self.prm = prm

    def taylor_step(self, lin: Linearization, lam: float) -> Proposal:
        return self.step(self.objective, self.solver, lin, lam, self.level)

    def export_state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """Arrays the method keeps between iterations at the current linearisation ``lin``
        (stored in checkpoints)."""
        return self.solver.export_state(lin)

    def import_state(self, arrays: dict[str, np.ndarray], lin: Linearization) -> None:
        """Take back what :meth:`export_state` gave (resume), at the linearisation ``lin``."""
        self.solver.import_state(arrays, lin)

    def level_widths(self) -> tuple[int, ...]:
        """The widths of the levels in use, the trained network first (see :class:`Record`)."""
        return (self.objective.n // 3,)

    def propose(self, lin: Linearization, lam: float, iteration: int) -> Proposal:
        """The trial step of fine iteration ``iteration`` (0-based)."""
        return self.taylor_step(lin, lam)

    def iterate(self, lin: Linearization, lam: float, iteration: int
                ) -> tuple[Proposal, float, bool, float]:
        """One trial: return (proposal, ρ, accepted, new λ)."""
        prop = self.propose(lin, lam, iteration)
        rho, accepted, lam_new, _ = judge(self.objective, lin, prop, lam, self.prm)
        return prop, rho, accepted, lam_new


def judge(objective, lin: Linearization, prop: Proposal, lam: float, prm: LMParameters
          ) -> tuple[float, bool, float, float]:
    """Ratio test of a trial step on ``objective``: (ρ, accepted, new λ, f(x + s)), the same on
    every rank (f(x + s) = ∞ when nothing is predicted).

    The decision is rank 0's, broadcast, so that ranks never disagree.
    """
    comm = objective.comm
    if prop.pred <= 0:
        f_trial = math.inf
    elif prop.f_trial is not None:
        f_trial = prop.f_trial
    else:
        f_trial = objective.value(lin.x + prop.s)
    rho = ratio(lin.f - f_trial, prop.pred)
    accepted, lam_new = comm.bcast(update_lambda(rho, lam, prm) if comm.is_root else None)
    return rho, accepted, lam_new, f_trial


def run(method: LevenbergMarquardt, state: State, *, max_iter: int, gtol: float, ftol: float,
        on_record: Callable[[Record, State], None] | None = None,
        should_stop: Callable[[State], bool] | None = None) -> State:
    """Iterate from ``state`` until a stopping test holds; returns the updated state.

    Stops with ``converged`` when ‖g‖ <= gtol or f <= ftol·f0. ``on_record`` is
    called after every iteration, when ``state`` is complete (progress,
    checkpoints); ``should_stop`` (collective: every rank must return the same
    value) ends the run with status ``interrupted``.  A state taken from a
    checkpoint continues exactly as the uninterrupted run would have.
    """
    obj, prm = method.objective, method.prm
    t_start = time.perf_counter() - state.elapsed
    obj.flops.total = state.flops
    lin = obj.linearize(state.x)
    if state.iteration > 0:  # a resumed run: this linearization was paid for before the stop
        obj.flops.total = state.flops
    method.import_state(state.method_state, lin)
    state.status = "running"
    while True:
        gnorm = float(np.linalg.norm(lin.g))
        state.f, state.gnorm = lin.f, gnorm
        if not (math.isfinite(lin.f) and math.isfinite(gnorm)):
            state.status = "failed"
        elif gnorm <= gtol or lin.f <= ftol * state.f0:
            state.status = "converged"
        elif state.iteration >= max_iter:
            state.status = "max_iter"
        elif state.lam > prm.lambda_max or state.rejections >= prm.max_rejections:
            state.status = "failed"
        elif should_stop is not None and should_stop(state):
            state.status = "interrupted"
        if state.status != "running":
            return state
        prop, rho, accepted, lam_new = method.iterate(lin, state.lam, state.iteration)
        lam_used = state.lam
        state.lam = lam_new
        state.iteration += 1
        if accepted:
            state.x = lin.x + prop.s
            state.rejections = 0
            lin = obj.linearize(state.x)
        else:
            state.rejections += 1
        state.elapsed = time.perf_counter() - t_start
        state.flops = obj.flops.total
        state.method_state = method.export_state(lin)
        rec = Record(state.iteration, lin.f, float(np.linalg.norm(lin.g)), lam_used, rho, accepted,
                     prop.level, prop.ksp_its, state.elapsed, state.flops, method.level_widths())
        state.history.append(rec)
        if on_record is not None:
            on_record(rec, state)
