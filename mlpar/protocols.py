"""The interfaces between the layers: objectives, linearisations, regularised solvers.

Every level of every method works on an *objective* h(p) of n parameters whose
residual rows are distributed over the ranks (the trained network's loss, or a
coarse model of it).  A method asks the objective for a :class:`Linearization`
at a point and hands that to a *regularised solver*, which returns the trial step

    s ≈ −(B + λI)⁻¹ g,      B = JᵀJ (LM, q = 1) or ∇²f (ARC, q = 2, cubic term),

using only products that the objective provides: the solver never reads the
Jacobian itself, so one solver serves the network, the Galerkin, the restricted
and the corrected models alike.  This module is pure (numpy, typing).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


class LinearSolveError(RuntimeError):
    """A regularised subproblem solve failed (e.g. a negative KSP converged reason).

    ``reason`` is the solver's name for the failure (PETSc's ``KSPConvergedReason`` name)."""

    def __init__(self, message: str, reason: str = "FAILED"):
        super().__init__(message)
        self.reason = reason


class SolverOptionsError(ValueError):
    """The solver options (the PETSc options database) ask for something the solver
    refuses: raised on every rank of the solver at once (exit status 2)."""


#: Work of a BLAS-3 flop (the Gram products JJᵀ, JᵀJ of the direct and assembled solves, their
#: factorisations) in units of a flop of the products with J: those run 2–6 times faster per
#: flop at the seed's sizes on the project's VM, 20 times at m ≥ 1000 (docs/notes/2026-12-work.md).
DENSE_WORK = 0.2


class FlopCounter:
    """Floating-point operations spent in matrix–vector products, all levels together
    (``total``: the seed's measure of cost), and beside them ``evaluation``: the work that
    measure leaves out, in flop equivalents (evaluating the network and its Jacobian, the
    AMG set-up; :data:`mlpar.model.network.RESIDUAL_WORK`), and ``dense``: the part of
    ``total`` spent in dense matrix–matrix products and factorisations, which :attr:`work`
    weighs at :data:`DENSE_WORK`.  All are charged for the m global rows, so every rank holds
    the same numbers."""

    def __init__(self, total: float = 0.0):
        self.total = float(total)
        self.evaluation = 0.0
        self.dense = 0.0
        self._paused = 0

    def add(self, flops: float) -> None:
        if not self._paused:
            self.total += flops

    def add_dense(self, flops: float) -> None:
        """Charge flops of a dense matrix–matrix product or factorisation (BLAS-3): in the
        seed's measure like any others, in :attr:`work` at :data:`DENSE_WORK` of a product
        with J's (they run several times faster per flop)."""
        if not self._paused:
            self.total += flops
            self.dense += flops

    def add_evaluation(self, flops: float) -> None:
        """Charge work outside the seed's measure (flop equivalents)."""
        if not self._paused:
            self.evaluation += flops

    @property
    def work(self) -> float:
        """Everything charged: what the cost-aware choice of the multilevel methods weighs
        (:class:`mlpar.multilevel.choice.CostAwareChoice`)."""
        return self.total - (1.0 - DENSE_WORK) * self.dense + self.evaluation

    @contextlib.contextmanager
    def uncharged(self):
        """Work done inside is not counted: a resumed run redoing what its checkpoint
        already paid for (the linearisation at the stored point, a Krylov space)."""
        self._paused += 1
        try:
            yield self
        finally:
            self._paused -= 1


@dataclass(frozen=True)
class Linearization:
    """f, ∇f and the local residual block and Jacobian of an objective at one point x.

    Immutable: a coarse model that changes f or g (the first-order correction)
    returns a new one (:func:`dataclasses.replace`).  ``J`` is owned by the
    objective that made it and read only through that objective's products.
    """

    x: np.ndarray
    f: float
    g: np.ndarray
    F: np.ndarray
    J: np.ndarray
    least_squares_gradient: bool = True
    """True when g = JᵀF exactly (no coarse-model correction), so residual-space solves apply."""
    d: np.ndarray | None = None
    """φ''(r_j) for the local rows (second-order objectives only)."""
    curvature: Callable[[np.ndarray], np.ndarray] | None = None
    """s ↦ M s, the residual-curvature part of ∇²f, replicated (second-order objectives)."""


class Objective(Protocol):
    """A distributed objective h(p): what the methods and the solvers need of it.

    Attributes: ``comm`` (:class:`mlpar.parallel.comm.Comm`), ``m`` global rows,
    ``m_local`` rows on this rank, ``n`` parameters, ``flops`` (:class:`FlopCounter`),
    ``coherent`` (True when the model is first-order coherent by construction and
    needs no correction), ``second_order`` (True when :meth:`hessvec` is the exact
    Hessian of a general loss, False for ½‖F‖² and its Gauss–Newton products).
    """

    comm: object
    m: int
    n: int
    flops: FlopCounter
    coherent: bool

    @property
    def m_local(self) -> int: ...

    def value(self, x: np.ndarray) -> float:
        """h(x), the same on every rank."""

    def linearize(self, x: np.ndarray) -> Linearization:
        """f, ∇f and the local pieces at x."""

    def jac(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """The local block J_p s (no communication)."""

    def jac_t(self, lin: Linearization, y_local: np.ndarray) -> np.ndarray:
        """Jᵀy = Σ_p J_pᵀ y_p, summed over the ranks."""

    def normal_local(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """This rank's J_pᵀ(J_p s) (not summed): the normal-equations product."""

    def gram(self, lin: Linearization) -> np.ndarray:
        """JᵀJ = Σ_p J_pᵀJ_p (n × n, replicated)."""

    def jacobian_rows(self, lin: Linearization) -> np.ndarray:
        """Every row of J (m × n, replicated: an Allgatherv)."""

    def column_norms2(self, lin: Linearization) -> np.ndarray:
        """diag(JᵀJ), summed over the ranks."""

    def basis_columns(self, lin: Linearization, basis) -> np.ndarray:
        """The local rows J_p B for a sparse n × k basis B (no communication)."""

    def neuron_blocks(self, lin: Linearization) -> np.ndarray:
        """The blocks of JᵀJ coupling each neuron's own weights, shape (r, d+2, d+2),
        replicated."""

    def row_norms2(self, lin: Linearization) -> np.ndarray:
        """diag(J_p J_pᵀ) for the local rows."""

    def gauss_newton_curvature(self, lin: Linearization, s: np.ndarray) -> float:
        """sᵀJᵀJs, summed over the ranks."""


class SecondOrderObjective(Objective, Protocol):
    """An objective with exact Hessian products (ARC, q = 2)."""

    def hessvec(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """∇²h(x) s at the point of ``lin``, summed over the ranks."""


class SubproblemSolver(Protocol):
    """Solves one level's regularised subproblem; each level has its own instance."""

    def solve(self, objective: Objective, lin: Linearization, lam: float):
        """(s, info): the step at ``lin`` for regularisation λ, through ``objective``'s products;
        raises :class:`LinearSolveError` when the solve fails."""

    def state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """What the solver carries between iterations at the linearisation ``lin``
        (checkpointed)."""

    def restore(self, arrays: dict[str, np.ndarray], objective: Objective,
                lin: Linearization) -> None:
        """Take back :meth:`state` at the resumed linearisation ``lin``."""

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
