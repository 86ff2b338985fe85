"""Second-order information of the training loss: f, ∇f and exact Hessian–vector products.

With the residuals r_j of :mod:`mlpar.problems`, weights c_j and a loss φ of
:mod:`mlpar.losses`, the objective is f(p) = Σ_j c_j φ(r_j).  Writing
F_j = √c_j r_j (the rows of :class:`mlpar.problems.ResidualBlock`), J = ∂F/∂p,
u_j = √c_j φ'(r_j) and d_j = φ''(r_j),

    ∇f  = Jᵀu,
    ∇²f = Jᵀ diag(d) J + M,        M = Σ_j u_j ∇²F_j,

and M is block-diagonal with one 3×3 block per neuron
(:func:`mlpar.network.operator_curvature`).  So ∇²f s costs two products with J
and one with M, and the Hessian is never formed.  Rows are distributed over the
ranks; ∇f and M are summed in one Allreduce per linearisation, and each product
∇²f s sums Jᵀ(d ∘ Js) in one Allreduce of n numbers.  For ``l2``, u = F, d = 1
and Jᵀ d J is the Gauss–Newton matrix of LM.

Flops charged: 2mn for Jᵀu and 4mn for M at each linearisation (six weighted
sums over an m × r array per operator term, with r = n/3), 4mn + 6n per ∇²f s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mlpar import losses
from mlpar.amg import Transfer
from mlpar.comm import Comm
from mlpar.leastsquares import FlopCounter, Linearization, coarse_jacobian
from mlpar.network import apply_curvature
from mlpar.problems import ResidualBlock


@dataclass
class SecondOrderLinearization(Linearization):
    """A :class:`Linearization` that also carries what ∇²f s needs at x."""

    d: np.ndarray | None = None
    """φ''(r_j) for the local rows."""
    curvature: Callable[[np.ndarray], np.ndarray] | None = None
    """s ↦ M s, the residual-curvature part of ∇²f (replicated on every rank)."""


class SmoothLoss:
    """f(p) = Σ_j c_j φ(r_j) over rows distributed on the ranks of ``comm``."""

    coherent = False
    """Not a Galerkin model: a coarse level built on it needs the first-order correction."""

    def __init__(self, block: ResidualBlock, comm: Comm, m: int, n: int, flops: FlopCounter,
                 loss: str = "l2", delta: float = 1e-3):
        self.block = block
        self.comm = comm
        self.m = m
        self.n = n
        self.flops = flops
        self.loss = loss
        self.delta = delta
        self.sqrt_c = block.row_scale
        self.c = self.sqrt_c ** 2
        self._J = None

    @property
    def m_local(self) -> int:
        return self.block.size

    def _phi(self, F: np.ndarray):
        return losses.derivatives(self.loss, F / self.sqrt_c, self.delta)

    def value(self, x: np.ndarray) -> float:
        phi, _, _ = self._phi(self.block.residuals(x))
        return self.comm.sum_scalar(float(self.c @ phi))

    def linearize(self, x: np.ndarray) -> SecondOrderLinearization:
        """f, ∇f and the local pieces of ∇²f at x (one Allreduce of n + 1 + 2n numbers).

        The returned ``J`` is this objective's buffer: valid until the next call."""
        if self._J is None or self._J.shape != (self.m_local, x.size):
            self._J = np.empty((self.m_local, x.size), order="F")
        F, J = self.block.residuals_and_jacobian(x, out=self._J)
        phi, d1, d2 = self._phi(F)
        u = self.sqrt_c * d1
        n = x.size
        buf = np.empty(n + 1 + 2 * n)
        buf[:n] = J.T @ u
        buf[n] = float(self.c @ phi)
        buf[n + 1:] = self.block.curvature(x, u).ravel()
        self.comm.sum_inplace(buf)
        self.flops.add(6.0 * self.m * self.n)
        M = buf[n + 1:].reshape(6, n // 3)
        return SecondOrderLinearization(x=x.copy(), f=float(buf[n]), g=buf[:n], F=F, J=J,
                                        least_squares_gradient=self.loss == "l2", d=d2,
                                        curvature=lambda s: apply_curvature(M, s))

    def hessvec(self, lin: SecondOrderLinearization, s: np.ndarray) -> np.ndarray:
        """∇²f(x) s = Jᵀ(d ∘ Js) + M s at the point of ``lin`` (one Allreduce)."""
        self.flops.add(4.0 * self.m * self.n + 6.0 * self.n)
        return self.comm.sum(lin.J.T @ (lin.d * (lin.J @ s))) + lin.curvature(s)

    def narrower(self, n: int) -> "SmoothLoss":
        """The same loss for a network of n/3 neurons on the same rows."""
        return SmoothLoss(self.block, self.comm, self.m, n, self.flops, self.loss, self.delta)

    def galerkin(self, lin: SecondOrderLinearization, transfer: Transfer) -> "GalerkinQuadratic":
        """The second-order Taylor model at ``lin`` restricted to range(P_full)."""
        return GalerkinQuadratic(lin, transfer, self.comm, self.m, self.flops)


class GalerkinQuadratic:
    """q(s) = f + (Qᵀg)ᵀs + ½ sᵀ Qᵀ∇²f Q s with Q = blkdiag(P, P, P), from s = 0.

    The second-order Taylor model of the level above, restricted to range(P):
    coherent to first and second order (∇q(0) = Qᵀg, ∇²q = Qᵀ∇²f Q).  With
    J_H = J Q formed once locally (2·m·3·nnz(P) flops), a product ∇²q s costs
    4m·n_H + the transfers.  Being quadratic, q is its own Taylor model, so a
    coarse ARC iteration on it is the ARC step restricted to the coarse space.
    """

    coherent = True

    def __init__(self, lin: SecondOrderLinearization, transfer: Transfer, comm: Comm, m: int,
                 flops: FlopCounter):
        r_f, r_c = transfer.widths
        self.comm, self.m, self.n, self.flops = comm, m, 3 * r_c, flops
        self.J_H = coarse_jacobian(lin.J, transfer, m, flops)
        self.d = lin.d
        self.f0 = lin.f
        self.g0 = transfer.restrict(lin.g) / transfer.alpha
        fine_curvature = lin.curvature
        self.curvature = lambda s: transfer.restrict(fine_curvature(transfer.prolong(s))) \
            / transfer.alpha
        self._transfer_flops = 12.0 * transfer.P.nnz + 18.0 * r_f

    @property
    def m_local(self) -> int:
        return self.d.size

    def _hess(self, s: np.ndarray) -> np.ndarray:
        self.flops.add(4.0 * self.m * self.n + self._transfer_flops)
        return self.comm.sum(self.J_H.T @ (self.d * (self.J_H @ s))) + self.curvature(s)

    def value(self, s: np.ndarray) -> float:
        return self.f0 + float(self.g0 @ s) + 0.5 * float(s @ self._hess(s))

    def linearize(self, s: np.ndarray) -> SecondOrderLinearization:
        Hs = self._hess(s)
        return SecondOrderLinearization(
            x=s.copy(), f=self.f0 + float(self.g0 @ s) + 0.5 * float(s @ Hs), g=self.g0 + Hs,
            F=np.empty(0), J=self.J_H, least_squares_gradient=False, d=self.d,
            curvature=self.curvature)

    def hessvec(self, lin: SecondOrderLinearization, s: np.ndarray) -> np.ndarray:
        return self._hess(s)

    def galerkin(self, lin: SecondOrderLinearization, transfer: Transfer) -> "GalerkinQuadratic":
        """q restricted once more, around the point of ``lin``: a level further down."""
        return GalerkinQuadratic(lin, transfer, self.comm, self.m, self.flops)
