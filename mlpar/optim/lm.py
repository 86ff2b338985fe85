"""Levenberg–Marquardt (q = 1): the regularised Gauss–Newton step and its Taylor decrease.

At x_k with f, g = ∇f = JᵀF and regularisation λ_k, the Taylor step solves

    (JᵀJ + λ_k I) s = −g                                   (mlpar.linalg.linsolve)

and predicts the reduction pred = −gᵀs − ½ sᵀJᵀJs of the Taylor (Gauss–Newton)
model; the step is judged by :func:`mlpar.optim.common.judge`.
"""

from __future__ import annotations

import math

import numpy as np

from mlpar.optim.common import Proposal
from mlpar.protocols import Linearization, LinearSolveError, Objective, SubproblemSolver


def taylor_step(objective: Objective, solver: SubproblemSolver, lin: Linearization, lam: float,
                level: int) -> Proposal:
    """The Gauss–Newton step regularised by λ and its Taylor-model decrease
    pred = −gᵀs − ½‖Js‖²; a failed solve gives a step that the ratio test rejects, with
    the solver's reason."""
    try:
        s, info = solver.solve(objective, lin, lam)
    except LinearSolveError as exc:
        return Proposal(np.zeros_like(lin.x), -math.inf, level, ksp_reason=exc.reason)
    pred = -float(lin.g @ s) - 0.5 * objective.gauss_newton_curvature(lin, s)
    return Proposal(s, pred, level, info.iterations, info.reason, pc=info.pc)
