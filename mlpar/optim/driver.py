"""The iteration driver shared by every method: State, Record, and the set-up/step/run loop.

At each fine iteration k the method proposes a trial step at x_k (a Taylor step
of its own, or a step from a coarse model), the ratio test of
:mod:`mlpar.optim.common` judges it, and the driver moves x and λ, records the
iteration and asks whether to stop.  The loop stops when ‖g‖ ≤ gtol, f ≤ ftol·f(x_0),
after ``max_iter`` iterations or ``max_time`` seconds, when interrupted, or fails
(non-finite loss, λ above λ_max, too many rejections in a row);
:func:`mlpar.optim.common.termination` names the cause.  Every rank holds the same x and
takes the same decisions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mlpar.optim.common import termination


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
    ksp_reason: str = ""
    """The subproblem solver's converged reason for the step of this iteration."""
    pc: str = ""
    """The preconditioner of the step's Krylov solve (``none``, ``mg``, ...; ``--pc auto``
    shows here when it switched); empty when the step had none (``direct``, Lanczos)."""


@dataclass
class State:
    """Everything needed to continue a run bit for bit (what a checkpoint stores).

    ``f0`` is f(x_0) (the loss tolerance is relative to it), ``flops`` and
    ``elapsed`` the cost and wall time spent so far, ``components`` the state of
    each stateful part of the method ({"solver": {...}, "hierarchy": {...}, ...}),
    ``reason`` and ``message`` why the run stopped.
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
    components: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Tolerances:
    """The stopping tests of :func:`run`.  ``max_time`` (seconds, 0: none) is applied by the
    caller's collective ``should_stop`` (each rank's clock is its own); it is here for the
    message."""

    max_iter: int
    gtol: float
    ftol: float
    max_time: float = 0.0


def _stop_reason(state: State, lin, tol: Tolerances, prm, should_stop) -> str | None:
    if not (math.isfinite(lin.f) and math.isfinite(state.gnorm)):
        return "nonfinite"
    if state.gnorm <= tol.gtol:
        return "gtol"
    if lin.f <= tol.ftol * state.f0:
        return "ftol"
    if state.iteration >= tol.max_iter:
        return "max_iter"
    if state.lam > prm.lambda_max:
        return "lambda0" if state.iteration == 0 else "lambda_max"
    if state.rejections >= prm.max_rejections:
        return "rejections"
    if should_stop is not None:
        return should_stop(state)
    return None


def _finish(state: State, reason: str, tol: Tolerances, prm) -> State:
    last = state.history[-1].ksp_reason if state.history else ""
    ksp = f" (the last subproblem solve: {last})" if last else ""
    state.reason = reason
    state.status, state.message = termination(
        reason, gnorm=state.gnorm, f=state.f, f0=state.f0, lam=state.lam,
        rejections=state.rejections, ksp=ksp, lambda_max=prm.lambda_max,
        gtol=tol.gtol, ftol=tol.ftol, max_iter=tol.max_iter, max_time=tol.max_time)
    return state


def start(method, state: State):
    """The linearisation at ``state.x`` with the method's components restored.  A resumed
    run (iteration > 0) paid for that linearisation before it stopped: it is not charged
    again, so the flop count continues exactly."""
    obj = method.objective
    obj.flops.total = state.flops
    if state.iteration > 0:
        with obj.flops.uncharged():
            lin = obj.linearize(state.x)
    else:
        lin = obj.linearize(state.x)
    method.restore(state.components, lin)
    return lin


def step(method, state: State, lin, t_start: float):
    """One fine iteration from ``lin``: (its Record, the linearisation at the new x)."""
    obj = method.objective
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
    state.components = method.state(lin)
    rec = Record(state.iteration, lin.f, float(np.linalg.norm(lin.g)), lam_used, rho, accepted,
                 prop.level, prop.ksp_its, state.elapsed, state.flops, method.level_widths(),
                 prop.ksp_reason, prop.pc)
    state.history.append(rec)
    return rec, lin


def run(method, state: State, tol: Tolerances,
        on_record: Callable[[Record, State], None] | None = None,
        should_stop: Callable[[State], str | None] | None = None) -> State:
    """Iterate from ``state`` until a stopping test holds; returns the updated state.

    ``on_record`` is called after every iteration, when ``state`` is complete
    (progress, checkpoints); ``should_stop`` (collective: every rank must return the
    same value) returns None to go on, or the reason to stop (``interrupted``, ``max_time``:
    a key of :data:`mlpar.optim.common.TERMINATION`).  A state taken from a
    checkpoint continues exactly as the uninterrupted run would have.
    """
    prm = method.prm
    t_start = time.perf_counter() - state.elapsed
    lin = start(method, state)
    state.status, state.reason, state.message = "running", "", ""
    while True:
        state.f, state.gnorm = lin.f, float(np.linalg.norm(lin.g))
        reason = _stop_reason(state, lin, tol, prm, should_stop)
        if reason is not None:
            return _finish(state, reason, tol, prm)
        rec, lin = step(method, state, lin, t_start)
        if on_record is not None:
            on_record(rec, state)
