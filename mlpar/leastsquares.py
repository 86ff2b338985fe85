"""The distributed least-squares objective f(p) = ½‖F(p)‖² and its products.

Each rank owns a contiguous block of the residual rows F_p, J_p; global
quantities are sums over ranks:

    f = ½ Σ_p ‖F_p‖²,   ∇f = Σ_p J_pᵀ F_p,   JᵀJ s = Σ_p J_pᵀ (J_p s).

Every product with J or Jᵀ is charged 2·m·n floating-point operations (m global
rows, n parameters) to a shared :class:`FlopCounter`, the seed's measure of cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpar.amg import Transfer
from mlpar.comm import Comm
from mlpar.problems import ResidualBlock


class LinearSolveError(RuntimeError):
    """A regularised linear solve failed (e.g. a negative KSP converged reason)."""


class FlopCounter:
    """Floating-point operations spent in matrix–vector products, all levels together."""

    def __init__(self, total: float = 0.0):
        self.total = float(total)

    def add(self, flops: float) -> None:
        self.total += flops


@dataclass
class Linearization:
    """f, ∇f and the local residual block and Jacobian at one point x."""

    x: np.ndarray
    f: float
    g: np.ndarray
    F: np.ndarray
    J: np.ndarray
    least_squares_gradient: bool = True
    """True when g = JᵀF exactly (no coarse-model correction), so residual-space solves apply."""


class LeastSquares:
    """f(p) = ½‖F(p)‖² with rows distributed over the ranks of ``comm``."""

    coherent = False
    """Not a Galerkin model: a coarse level built on it needs the first-order correction."""

    def __init__(self, block: ResidualBlock, comm: Comm, m: int, n: int, flops: FlopCounter):
        self.block = block
        self.comm = comm
        self.m = m
        self.n = n
        self.flops = flops
        self._J = None

    @property
    def m_local(self) -> int:
        return self.block.size

    def residuals_and_jacobian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's residuals F_p(x) and Jacobian J_p(x) (no communication, no flops)."""
        return self.block.residuals_and_jacobian(x)

    def value(self, x: np.ndarray) -> float:
        """f(x) = ½ Σ_p ‖F_p(x)‖²."""
        F = self.block.residuals(x)
        return 0.5 * self.comm.sum_scalar(float(F @ F))

    def linearize(self, x: np.ndarray) -> Linearization:
        """f, ∇f = JᵀF, and the local F, J at x (one Allreduce of n + 1 numbers).

        The returned ``J`` is this objective's buffer: valid until the next call."""
        if self._J is None or self._J.shape != (self.m_local, x.size):
            self._J = np.empty((self.m_local, x.size), order="F")
        F, J = self.block.residuals_and_jacobian(x, out=self._J)
        return self._linearization(x, F, J)

    def _linearization(self, x: np.ndarray, F: np.ndarray, J: np.ndarray) -> Linearization:
        """f = ½‖F‖² and ∇f = JᵀF from the local F, J (one Allreduce of n + 1 numbers, 2mn flops)."""
        buf = np.empty(J.shape[1] + 1)
        buf[:-1] = J.T @ F
        buf[-1] = 0.5 * float(F @ F)
        self.comm.sum_inplace(buf)
        self.flops.add(2.0 * self.m * self.n)
        return Linearization(x=x.copy(), f=float(buf[-1]), g=buf[:-1], F=F, J=J)

    def jac(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """The local block J_p s (no communication)."""
        self.flops.add(2.0 * self.m * self.n)
        return lin.J @ s

    def jac_t(self, lin: Linearization, y_local: np.ndarray) -> np.ndarray:
        """Jᵀy = Σ_p J_pᵀ y_p for y distributed like the rows."""
        self.flops.add(2.0 * self.m * self.n)
        return self.comm.sum(lin.J.T @ y_local)

    def gauss_newton_curvature(self, lin: Linearization, s: np.ndarray) -> float:
        """sᵀJᵀJs = Σ_p ‖J_p s‖²."""
        Js = self.jac(lin, s)
        return self.comm.sum_scalar(float(Js @ Js))

    def narrower(self, n: int) -> "LeastSquares":
        """The same residuals for a network of n/3 neurons."""
        return LeastSquares(self.block, self.comm, self.m, n, self.flops)

    def galerkin(self, lin: Linearization, transfer: Transfer) -> "GalerkinObjective":
        """The Gauss–Newton model at ``lin`` restricted to range(P_full)."""
        return GalerkinObjective(lin, transfer, self.comm, self.m, self.flops)

    def restricted(self, lin: Linearization, transfer: Transfer) -> "RestrictedObjective":
        """f itself on the affine subspace lin.x + range(P_full)."""
        return RestrictedObjective(self, lin.x, transfer)


def coarse_jacobian(J: np.ndarray, transfer: Transfer, m: int, flops: FlopCounter) -> np.ndarray:
    """J_H = J P_full for the local rows of J (each of the blocks v, w, b times P), charged
    2·m·3·nnz(P) flops for the m global rows; column-major, like the level's J."""
    flops.add(6.0 * m * transfer.P.nnz)
    return np.asfortranarray(transfer.coarse_columns(J))


class GalerkinObjective(LeastSquares):
    """h(s) = ½‖F + J P s‖²: the Gauss–Newton model of the level above, restricted to range(P).

    With J_H = J P_full (formed once, locally: 2·m·3·nnz(P) flops), h is again a
    distributed least-squares function of the coarse correction s (x_0 = 0), with
    ∇h(0) = P_fullᵀ Jᵀ F = R g (α = 1): coherent to first and second order.
    """

    coherent = True

    def __init__(self, lin: Linearization, transfer: Transfer, comm: Comm, m: int, flops):
        super().__init__(None, comm, m, 3 * transfer.widths[1], flops)
        self.J_H = coarse_jacobian(lin.J, transfer, m, flops)
        self.F = lin.F

    @property
    def m_local(self) -> int:
        return self.F.size

    def value(self, s: np.ndarray) -> float:
        Fs = self.F + self.J_H @ s
        self.flops.add(2.0 * self.m * self.n)
        return 0.5 * self.comm.sum_scalar(float(Fs @ Fs))

    def linearize(self, s: np.ndarray) -> Linearization:
        self.flops.add(2.0 * self.m * self.n)   # F + J_H s
        return self._linearization(s, self.F + self.J_H @ s, self.J_H)


class RestrictedObjective(LeastSquares):
    """h(y) = f(x_k + P_full y): the level's own loss on the affine subspace x_k + range(P).

    A least-squares function of the coarse parameters y (x_0 = 0) with residuals
    F(x_k + P_full y) and Jacobian J_H(y) = J(x_k + P_full y) P_full, so that
    ∇h(0) = P_fullᵀ ∇f(x_k) = R g (α = 1) and h(y) − h(0) is the true decrease of f:
    coherent to every order.  Each linearisation evaluates the level's Jacobian and
    forms J P_full (2·m·3·nnz(P) flops) and J_HᵀF (2·m·n_H).
    """

    coherent = True

    def __init__(self, base: LeastSquares, x: np.ndarray, transfer: Transfer):
        super().__init__(base.block, base.comm, base.m, 3 * transfer.widths[1], base.flops)
        self.base = base
        self.x = x
        self.transfer = transfer

    def _point(self, y: np.ndarray) -> np.ndarray:
        self.flops.add(6.0 * self.transfer.P.nnz)
        return self.x + self.transfer.prolong(y)

    def value(self, y: np.ndarray) -> float:
        return self.base.value(self._point(y))

    def residuals_and_jacobian(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F and J_H = J P_full at x_k + P_full y, in the level's own coordinates (so that a
        restricted model of this one, a level further down, composes the transfers)."""
        F, J = self.base.residuals_and_jacobian(self._point(y))
        return F, coarse_jacobian(J, self.transfer, self.m, self.flops)

    def linearize(self, y: np.ndarray) -> Linearization:
        return self._linearization(y, *self.residuals_and_jacobian(y))
