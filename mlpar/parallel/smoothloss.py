"""Second-order information of the training loss: f, ∇f and exact Hessian–vector products.

With the residuals r_j of :mod:`mlpar.model.problems`, weights c_j and a loss φ of
:mod:`mlpar.model.losses`, the objective is f(p) = Σ_j c_j φ(r_j).  Writing
F_j = √c_j r_j (the rows of :class:`mlpar.model.problems.ResidualBlock`), J = ∂F/∂p,
u_j = √c_j φ'(r_j) and d_j = φ''(r_j),

    ∇f  = Jᵀu,
    ∇²f = Jᵀ diag(d) J + M,        M = Σ_j u_j ∇²F_j,

and M is block-diagonal with one (d+2)×(d+2) block per neuron, stored as its
E = (d+2)(d+3)/2 upper-triangle entries (:func:`mlpar.model.network.operator_curvature`).  So ∇²f s costs two products with J
and one with M, and the Hessian is never formed.  Rows are distributed over the
ranks; ∇f and M are summed in one Allreduce per linearisation, and each product
∇²f s sums Jᵀ(d ∘ Js) in one Allreduce of n numbers.  For ``l2``, u = F, d = 1
and Jᵀ d J is the Gauss–Newton matrix of LM.

Flops charged: 2mn for Jᵀu and 2Emr for M at each linearisation (E weighted
sums over an m × r array per operator term, r neurons; 4mn for d = 1), 4mn + 2(d+2)n
per ∇²f s (6n for d = 1).
"""

from __future__ import annotations

import numpy as np

from mlpar.model import losses
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import apply_curvature, evaluation_work
from mlpar.model.problems import ResidualBlock
from mlpar.parallel.comm import Comm
from mlpar.protocols import FlopCounter, Linearization


class SmoothLoss:
    """f(p) = Σ_j c_j φ(r_j) over rows distributed on the ranks of ``comm``."""

    coherent = False
    """Not a Galerkin model: a coarse level built on it needs the first-order correction."""
    exact_decrease = False
    second_order = True

    def __init__(self, block: ResidualBlock, comm: Comm, m: int, layout: ParameterLayout,
                 flops: FlopCounter, loss: str = "l2", delta: float = 1e-3):
        self.block = block
        self.comm = comm
        self.m = m
        self.layout = layout
        self.n = layout.size
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
        self.flops.add_evaluation(evaluation_work(self.m, self.layout, jacobian=False))
        phi, _, _ = self._phi(self.block.residuals(x))
        return self.comm.sum_scalar(float(self.c @ phi))

    def linearize(self, x: np.ndarray) -> Linearization:
        """f, ∇f and the local pieces of ∇²f at x (one Allreduce of n + 1 + Er numbers).

        The returned ``J`` is this objective's buffer: valid until the next call."""
        if self._J is None or self._J.shape != (self.m_local, x.size):
            self._J = np.empty((self.m_local, x.size), order="F")
        self.flops.add_evaluation(evaluation_work(self.m, self.layout, jacobian=True))
        F, J = self.block.residuals_and_jacobian(x, out=self._J)
        phi, d1, d2 = self._phi(F)
        u = self.sqrt_c * d1
        n = x.size
        entries = self.layout.curvature_entries
        buf = np.empty(n + 1 + entries * self.layout.width)
        buf[:n] = J.T @ u
        buf[n] = float(self.c @ phi)
        buf[n + 1:] = self.block.curvature(x, u).ravel()
        self.comm.sum_inplace(buf)
        self.flops.add(2.0 * self.m * self.n + 2.0 * entries * self.m * self.layout.width)
        M = buf[n + 1:].reshape(entries, self.layout.width)
        layout = self.layout
        return Linearization(x=x.copy(), f=float(buf[n]), g=buf[:n], F=F, J=J,
                                        least_squares_gradient=self.loss == "l2", d=d2,
                                        curvature=lambda s: apply_curvature(M, s, layout))

    def hessvec(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """∇²f(x) s = Jᵀ(d ∘ Js) + M s at the point of ``lin`` (one Allreduce)."""
        self.flops.add(4.0 * self.m * self.n + 2.0 * self.layout.n_blocks * self.n)
        return self.comm.sum(lin.J.T @ (lin.d * (lin.J @ s))) + lin.curvature(s)

    def narrower(self, width: int) -> "SmoothLoss":
        """The same loss for a network of ``width`` neurons on the same rows."""
        return SmoothLoss(self.block, self.comm, self.m, self.layout.with_width(width),
                          self.flops, self.loss, self.delta)
