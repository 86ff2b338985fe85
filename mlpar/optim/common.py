"""What every method and every level shares: the ratio test, the λ update, the trial step
record and the termination reasons.

A trial step s at x_k, with predicted reduction pred > 0 (the decrease of the
level's model), is judged by the ratio of actual to predicted reduction

    ρ_k = (f(x_k) − f(x_k + s)) / pred.

With 0 < η1 ≤ η2 < 1 and 0 < γ2 ≤ γ1 < 1 < γ3 (method.md §1.3):

    ρ ≥ η2:       accept, λ ← max(λ_min, γ2 λ)
    η1 ≤ ρ < η2:  accept, λ ← max(λ_min, γ1 λ)
    ρ < η1:       reject, λ ← γ3 λ

The same arithmetic serves LM (q = 1) and ARC (q = 2), on the fine level and on
every coarse level.  The decision is rank 0's, broadcast, so ranks never part ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LMParameters:
    """Constants of the ratio test and the λ update (defaults: method.md §1.5)."""

    eta1: float = 0.1
    eta2: float = 0.75
    gamma1: float = 0.85
    gamma2: float = 0.5
    gamma3: float = 1.5
    lambda0: float = 0.05
    lambda_min: float = 1e-6
    lambda_max: float = 1e12
    max_rejections: int = 60

    def __post_init__(self):
        if not 0 < self.eta1 <= self.eta2 < 1:
            raise ValueError("need 0 < eta1 <= eta2 < 1")
        if not 0 < self.gamma2 <= self.gamma1 < 1 < self.gamma3:
            raise ValueError("need 0 < gamma2 <= gamma1 < 1 < gamma3")
        # λ0 above λ_max is not refused here: the run starts and stops at once with status
        # failed and reason lambda0, which names the cause
        if not 0 < self.lambda_min <= self.lambda0 or not self.lambda_min < self.lambda_max:
            raise ValueError("need 0 < lambda_min <= lambda0 and lambda_min < lambda_max")


# Functions of the ratio test.

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


@dataclass(frozen=True)
class Proposal:
    """A trial step s with its predicted reduction and where it came from."""

    s: np.ndarray
    pred: float
    level: int
    ksp_its: int = 0
    ksp_reason: str = ""
    """The subproblem solver's converged reason (PETSc's name), or why it failed."""
    pc: str = ""
    """The preconditioner of the step's Krylov solve (:attr:`mlpar.linalg.linsolve.SolveInfo.pc`;
    for a recursive step, of the last coarse solve); empty when it had none."""
    exact: bool = False
    """True when ``pred`` is the actual decrease (a step of the restricted coarse model,
    whose loss is the level's own): ρ = 1 says nothing of the model's fit, so the λ of the
    level that takes it is kept, and f(x + s) = ``f_trial`` is not evaluated again."""
    f_trial: float = math.nan
    """f(x + s) when ``exact``."""


def judge(objective, lin, prop: Proposal, lam: float, prm: LMParameters
          ) -> tuple[float, bool, float, float]:
    """Ratio test of a trial step on ``objective``: (ρ, accepted, λ to continue with,
    f(x + s)), the same on every rank (f(x + s) = ∞ when nothing is predicted).

    An accepted ``exact`` step keeps λ (see :attr:`Proposal.exact`).
    """
    comm = objective.comm
    if prop.pred <= 0:
        f_trial = math.inf
    elif prop.exact:
        f_trial = prop.f_trial
    else:
        f_trial = objective.value(lin.x + prop.s)
    rho = ratio(lin.f - f_trial, prop.pred)
    accepted, lam_new = comm.bcast(update_lambda(rho, lam, prm) if comm.is_root else None)
    if accepted and prop.exact:
        lam_new = lam
    return rho, accepted, lam_new, f_trial


# Termination: the reason a run stopped, the status it gives, and a message naming the cause.

#: reason -> (status of the output file, message template; fields of :func:`termination`).
TERMINATION = {
    "gtol": ("converged", "the gradient norm {gnorm:.3e} reached the tolerance --gtol {gtol:g}"),
    "ftol": ("converged", "the loss {f:.3e} fell below --ftol {ftol:g} times its initial "
                          "value {f0:.3e}"),
    "max_iter": ("max_iter", "the iteration limit --max-iter {max_iter} was reached"),
    "max_time": ("max_iter", "the time limit --max-time {max_time:g} s was reached"),
    "interrupted": ("interrupted", "the run was interrupted by a signal and checkpointed"),
    "nonfinite": ("failed", "the loss or its gradient is not finite (f = {f}, |g| = {gnorm}): "
                            "the iteration diverged"),
    "lambda_max": ("failed", "the regularisation λ = {lam:.3e} exceeded λ_max = {lambda_max:g}: "
                             "no trial step decreases the loss"),
    "lambda0": ("failed", "the initial regularisation --lambda0 {lam:g} exceeds λ_max = "
                          "{lambda_max:g}: the method cannot take a step"),
    "rejections": ("failed", "{rejections} consecutive trial steps were rejected{ksp}"),
}
STATUSES = ("running", "converged", "max_iter", "interrupted", "failed")


def termination(reason: str, **values) -> tuple[str, str]:
    """(status, message) for a termination ``reason`` of :data:`TERMINATION`."""
    status, template = TERMINATION[reason]
    return status, template.format(**values)
