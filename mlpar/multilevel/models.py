"""Coarse models of a level: what the recursion minimises on the level below.

For a level with objective f (linearised at x_k: F, J, g) and a transfer P_full
(P on each parameter block, :class:`mlpar.multilevel.amg.Transfer`):

* :class:`GalerkinObjective` h(s) = ½‖F + J P_full s‖² from s = 0: the level's
  Gauss–Newton model restricted to range(P), coherent to second order;
* :class:`GalerkinQuadratic`: the same for a general loss (ARC), the second-order
  Taylor model restricted to range(P);
* :class:`RestrictedObjective` h(y) = f(x_k + P_full y) from y = 0: the level's own
  loss on the affine subspace, coherent to every order; its decrease is the level's
  actual decrease (``exact_decrease``);
* :class:`CorrectedObjective` h(y) = f^{l−1}(y) + δᵀ(y − y_0): the seed's narrower
  network with the first-order correction δ = R g − ∇f^{l−1}(y_0).

Each is again an :class:`mlpar.protocols.Objective`, so the same solvers, the same
step rules and the same recursion apply on every level.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlpar.model.layout import ParameterLayout
from mlpar.multilevel.amg import Transfer
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquaresProducts
from mlpar.protocols import FlopCounter, Linearization


def coarse_jacobian(J: np.ndarray, transfer: Transfer, m: int, flops: FlopCounter) -> np.ndarray:
    """J_H = J P_full for the local rows of J, charged 2·m·(d+2)·nnz(P) flops for the m
    global rows; column-major, like the level's J."""
    flops.add(2.0 * transfer.blocks * m * transfer.P.nnz)
    return np.asfortranarray(transfer.coarse_columns(J))


def galerkin(objective, lin: Linearization, transfer: Transfer):
    """The level's Taylor model at ``lin`` restricted to range(P_full): Gauss–Newton for a
    least-squares objective, second order for a general loss."""
    layout = objective.layout.with_width(transfer.widths[1])
    if objective.second_order:
        return GalerkinQuadratic(lin, transfer, objective.comm, objective.m, objective.flops,
                                 layout)
    return GalerkinObjective(lin, transfer, objective.comm, objective.m, objective.flops, layout)


def restricted(objective, lin: Linearization, transfer: Transfer) -> "RestrictedObjective":
    """The level's own loss on the affine subspace lin.x + range(P_full)."""
    return RestrictedObjective(objective, lin, transfer)


class GalerkinObjective(LeastSquaresProducts):
    """h(s) = ½‖F + J P s‖²: the Gauss–Newton model of the level above, restricted to range(P).

    With J_H = J P_full (formed once, locally), h is again a distributed least-squares
    function of the coarse correction s (x_0 = 0), with ∇h(0) = P_fullᵀ Jᵀ F = R g
    (α = 1): coherent to first and second order.
    """

    coherent = True

    def __init__(self, lin: Linearization, transfer: Transfer, comm: Comm, m: int,
                 flops: FlopCounter, layout: ParameterLayout):
        self.comm, self.m, self.flops, self.layout = comm, m, flops, layout
        self.n = layout.size
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


class RestrictedObjective(LeastSquaresProducts):
    """h(y) = f(x_k + P_full y): the level's own loss on the affine subspace x_k + range(P).

    A least-squares function of the coarse parameters y (x_0 = 0) with residuals
    F(x_k + P_full y) and Jacobian J_H(y) = J(x_k + P_full y) P_full, so that
    ∇h(0) = P_fullᵀ ∇f(x_k) = R g (α = 1) and h(y) − h(0) is the true decrease of f:
    coherent to every order.

    Each linearisation at y ≠ 0 evaluates the trained network's Jacobian a block of rows
    at a time and keeps only its product with the composed transfers (no second m × n
    Jacobian beside the fine level's); at y = 0 it takes F and J of the level's own
    linearisation ``lin`` at x_k (which must stay valid while the model is minimised).
    Both are charged alike, as a linearisation of h: the transfers x_k + P_full y and the
    products J P_full (2·m·(d+2)·nnz(P)) of this level and of the restricted levels it is
    built on, then f and ∇h (2·m·n_H).
    """

    coherent = True
    exact_decrease = True

    def __init__(self, base, lin: Linearization, transfer: Transfer):
        self.comm, self.m, self.flops = base.comm, base.m, base.flops
        self.layout = base.layout.with_width(transfer.widths[1])
        self.n = self.layout.size
        self.base = base
        self.lin = lin
        self.x = lin.x
        self.transfer = transfer

    @property
    def m_local(self) -> int:
        return self.base.m_local

    def _point(self, y: np.ndarray) -> np.ndarray:
        self._charge_point()
        return self.x + self.transfer.prolong(y)

    def _charge_point(self) -> None:
        self.flops.add(2.0 * self.transfer.blocks * self.transfer.P.nnz)

    def _charge_product(self) -> None:
        self.flops.add(2.0 * self.transfer.blocks * self.m * self.transfer.P.nnz)

    def value(self, y: np.ndarray) -> float:
        return self.base.value(self._point(y))

    def residuals_and_projected_jacobian(self, y: np.ndarray, project, columns: int
                                         ) -> tuple[np.ndarray, np.ndarray]:
        """F and J_H Q at x_k + P_full y, for a map ``project`` of rows of J_H to rows of
        J_H Q (``columns`` columns): a restricted model of this one, a level further down,
        composes its transfer with this level's."""
        F, JQ = self.base.residuals_and_projected_jacobian(
            self._point(y), lambda J: project(self.transfer.coarse_columns(J)), columns)
        self._charge_product()
        return F, JQ

    def residuals_and_jacobian(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F and J_H = J P_full at x_k + P_full y, in the level's own coordinates."""
        return self.residuals_and_projected_jacobian(y, lambda J: J, self.n)

    def _charge_reused_linearization(self) -> None:
        """The flops of :meth:`residuals_and_jacobian`, in the same order: the transfers of
        every restricted level down to the trained network, then their products J P."""
        chain = [self]
        while isinstance(chain[-1].base, RestrictedObjective):
            chain.append(chain[-1].base)
        for level in chain:
            level._charge_point()
        for level in reversed(chain):
            level._charge_product()

    def linearize(self, y: np.ndarray) -> Linearization:
        if not y.any():   # h at x_k: the level's F and J, without evaluating the network
            self._charge_reused_linearization()
            J_H = np.asfortranarray(self.transfer.coarse_columns(self.lin.J))
            return self._linearization(y, self.lin.F, J_H)
        return self._linearization(y, *self.residuals_and_jacobian(y))


class CorrectedObjective:
    """h(y) = f(y) + δᵀ(y − y_0): a coarse objective with first-order correction."""

    coherent = False
    exact_decrease = False

    def __init__(self, base, y0: np.ndarray, delta: np.ndarray):
        self.base = base
        self.y0 = y0
        self.delta = delta
        self.comm, self.flops, self.m, self.n = base.comm, base.flops, base.m, base.n
        self.layout = base.layout
        self.second_order = base.second_order

    @property
    def m_local(self) -> int:
        return self.base.m_local

    def value(self, y: np.ndarray) -> float:
        return self.base.value(y) + float(self.delta @ (y - self.y0))

    def linearize(self, y: np.ndarray) -> Linearization:
        lin = self.base.linearize(y)
        return dataclasses.replace(lin, f=lin.f + float(self.delta @ (y - self.y0)),
                                   g=lin.g + self.delta, least_squares_gradient=False)

    # The products with J and ∇²h are those of the base objective: the correction is linear.

    def jac(self, lin, s):
        return self.base.jac(lin, s)

    def jac_t(self, lin, y_local):
        return self.base.jac_t(lin, y_local)

    def normal_local(self, lin, s):
        return self.base.normal_local(lin, s)

    def gram(self, lin):
        return self.base.gram(lin)

    def jacobian_rows(self, lin):
        return self.base.jacobian_rows(lin)

    def column_norms2(self, lin):
        return self.base.column_norms2(lin)

    def basis_columns(self, lin, basis):
        return self.base.basis_columns(lin, basis)

    def neuron_blocks(self, lin):
        return self.base.neuron_blocks(lin)

    def row_norms2(self, lin):
        return self.base.row_norms2(lin)

    def gauss_newton_curvature(self, lin, s):
        return self.base.gauss_newton_curvature(lin, s)

    def hessvec(self, lin, s):
        return self.base.hessvec(lin, s)


class GalerkinQuadratic:
    """q(s) = f + (Qᵀg)ᵀs + ½ sᵀ Qᵀ∇²f Q s with Q = P_full (P on each block), from s = 0.

    The second-order Taylor model of the level above, restricted to range(P):
    coherent to first and second order (∇q(0) = Qᵀg, ∇²q = Qᵀ∇²f Q).  With
    J_H = J Q formed once locally (2·m·(d+2)·nnz(P) flops), a product ∇²q s costs
    4m·n_H + the transfers.  Being quadratic, q is its own Taylor model, so a
    coarse ARC iteration on it is the ARC step restricted to the coarse space.
    """

    coherent = True
    exact_decrease = False
    second_order = True

    def __init__(self, lin: Linearization, transfer: Transfer, comm: Comm, m: int,
                 flops: FlopCounter, layout: ParameterLayout):
        self.comm, self.m, self.flops = comm, m, flops
        self.layout = layout
        self.n = layout.size
        self.J_H = coarse_jacobian(lin.J, transfer, m, flops)
        self.d = lin.d
        self.f0 = lin.f
        self.g0 = transfer.restrict(lin.g) / transfer.alpha
        fine_curvature = lin.curvature
        self.curvature = lambda s: transfer.restrict(fine_curvature(transfer.prolong(s))) \
            / transfer.alpha
        # P and Pᵀ on every block, and the fine curvature blocks (2(d+2)² r_f; 18 r_f for d = 1)
        self._transfer_flops = (4.0 * transfer.blocks * transfer.P.nnz
                                + 2.0 * transfer.blocks ** 2 * transfer.widths[0])

    @property
    def m_local(self) -> int:
        return self.d.size

    def _hess(self, s: np.ndarray) -> np.ndarray:
        self.flops.add(4.0 * self.m * self.n + self._transfer_flops)
        return self.comm.sum(self.J_H.T @ (self.d * (self.J_H @ s))) + self.curvature(s)

    def value(self, s: np.ndarray) -> float:
        return self.f0 + float(self.g0 @ s) + 0.5 * float(s @ self._hess(s))

    def linearize(self, s: np.ndarray) -> Linearization:
        Hs = self._hess(s)
        return Linearization(
            x=s.copy(), f=self.f0 + float(self.g0 @ s) + 0.5 * float(s @ Hs), g=self.g0 + Hs,
            F=np.empty(0), J=self.J_H, least_squares_gradient=False, d=self.d,
            curvature=self.curvature)

    def hessvec(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        return self._hess(s)
