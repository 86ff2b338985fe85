"""Adaptive regularisation with cubics (ARC, q = 2) on the training loss.

At x_k with f, g = ∇f, H = ∇²f (exact, as products: :mod:`mlpar.parallel.smoothloss`)
and regularisation λ_k, the trial step approximately minimises

    m(s) = f + gᵀs + ½ sᵀHs + (λ_k/3)‖s‖³,

to the step condition of Birgin et al. (q = 2):  m(s) < m(0) and
‖∇m(s)‖ ≤ θ‖s‖².  The minimisation runs on a Krylov (Lanczos) subspace
(:mod:`mlpar.linalg.lanczos`), where the small problem is solved exactly by
:func:`mlpar.linalg.cubic.cubic_minimizer`.  The step is judged, and λ updated, exactly as in LM
(:func:`mlpar.optim.common.judge`), with the Taylor decrease
pred = T₂(x, 0) − T₂(x, s) = −gᵀs − ½ sᵀHs.  H may be indefinite: the cubic
term keeps the model bounded below, and the global minimiser of the model is
characterised by (H + μI)s = −g, μ = λ‖s‖, H + μI ⪰ 0 (Cartis, Gould & Toint 2011).
"""

from __future__ import annotations

import math

import numpy as np

from mlpar.optim.common import Proposal
from mlpar.protocols import (
    Linearization,
    LinearSolveError,
    SecondOrderObjective,
    SubproblemSolver,
)


def cubic_step(objective: SecondOrderObjective, solver: SubproblemSolver, lin: Linearization, lam: float,
               level: int) -> Proposal:
    """The ARC trial step and its Taylor decrease −gᵀs − ½sᵀHs; a failed solve gives a step
    that the ratio test rejects."""
    try:
        s, info = solver.solve(objective, lin, lam)
    except LinearSolveError as exc:
        return Proposal(np.zeros_like(lin.x), -math.inf, level, ksp_reason=exc.reason)
    return Proposal(s, info.pred, level, info.iterations, info.reason)
