"""The distributed least-squares objective f(p) = ½‖F(p)‖² and its products.

Each rank owns a contiguous block of the residual rows F_p, J_p; global
quantities are sums over ranks:

    f = ½ Σ_p ‖F_p‖²,   ∇f = Σ_p J_pᵀ F_p,   JᵀJ s = Σ_p J_pᵀ (J_p s).

Every product with J or Jᵀ is charged 2·m·n floating-point operations (m global
rows, n parameters) to a shared :class:`mlpar.protocols.FlopCounter`, the seed's
measure of cost; every evaluation of the network is charged beside it
(:func:`mlpar.model.network.evaluation_work`).  The coarse models of the multilevel methods
(:mod:`mlpar.multilevel.models`) are least-squares objectives of the same kind.
"""

from __future__ import annotations

import numpy as np

from mlpar.model.layout import ParameterLayout
from mlpar.model.network import evaluation_work
from mlpar.model.problems import ResidualBlock
from mlpar.parallel.comm import Comm
from mlpar.protocols import FlopCounter, Linearization


class LeastSquaresProducts:
    """The products with J of a least-squares objective whose linearisations carry the
    local Jacobian block ``lin.J`` (this objective's own; see :class:`mlpar.protocols.Objective`)."""

    coherent = False
    """Not a Galerkin model: a coarse level built on it needs the first-order correction."""
    exact_decrease = False
    """True for a coarse model whose decrease is the level's actual decrease."""
    second_order = False

    comm: Comm
    m: int
    n: int
    flops: FlopCounter

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

    def normal_local(self, lin: Linearization, s: np.ndarray) -> np.ndarray:
        """This rank's J_pᵀ(J_p s), not summed (4mn flops charged for the global product)."""
        self.flops.add(4.0 * self.m * self.n)
        return lin.J.T @ (lin.J @ s)

    def gram(self, lin: Linearization) -> np.ndarray:
        """JᵀJ = Σ_p J_pᵀJ_p (n × n, every rank; one Allreduce of n² numbers; 2mn² flops)."""
        self.flops.add_dense(2.0 * self.m * self.n ** 2)
        return self.comm.sum(lin.J.T @ lin.J)

    def jacobian_rows(self, lin: Linearization) -> np.ndarray:
        """All m rows of J on every rank (an Allgatherv of m·n numbers; no flops)."""
        if self.comm.size == 1:
            return lin.J
        rows = self.comm.block_counts(self.m)
        return self.comm.allgather(np.ascontiguousarray(lin.J).ravel(),
                                   [c * self.n for c in rows]).reshape(self.m, self.n)

    def basis_columns(self, lin: Linearization, basis) -> np.ndarray:
        """The local rows J_p B for a sparse n × k basis B, computed as (Bᵀ J_pᵀ)ᵀ (no
        communication; 2·m·nnz(B) flops)."""
        self.flops.add(2.0 * self.m * basis.nnz)
        return np.asfortranarray((basis.T @ lin.J.T).T)

    def neuron_blocks(self, lin: Linearization) -> np.ndarray:
        """The (d+2) × (d+2) diagonal blocks of JᵀJ that couple one neuron's own weights
        (v_i, w_i, b_i for d = 1): B_i[x, y] = Σ_j J_{j,(x,i)} J_{j,(y,i)}, shape (r, d+2, d+2),
        summed over the ranks."""
        nb, r = self.layout.n_blocks, self.layout.width
        out = np.empty((r, nb, nb))
        for x in range(nb):
            for y in range(x, nb):
                out[:, x, y] = np.einsum("ji,ji->i", lin.J[:, x * r:(x + 1) * r],
                                         lin.J[:, y * r:(y + 1) * r])
                out[:, y, x] = out[:, x, y]
        return self.comm.sum(out)

    def column_norms2(self, lin: Linearization) -> np.ndarray:
        """diag(JᵀJ), summed over the ranks."""
        return self.comm.sum(np.einsum("ij,ij->j", lin.J, lin.J))

    def row_norms2(self, lin: Linearization) -> np.ndarray:
        """diag(J_p J_pᵀ) for the local rows."""
        return np.einsum("ij,ij->i", lin.J, lin.J)

    def gauss_newton_curvature(self, lin: Linearization, s: np.ndarray) -> float:
        """sᵀJᵀJs = Σ_p ‖J_p s‖²."""
        Js = self.jac(lin, s)
        return self.comm.sum_scalar(float(Js @ Js))


class LeastSquares(LeastSquaresProducts):
    """f(p) = ½‖F(p)‖² of the network laid out as ``layout``, rows distributed over the
    ranks of ``comm`` (this rank's rows: ``block``)."""

    def __init__(self, block: ResidualBlock, comm: Comm, m: int, layout: ParameterLayout,
                 flops: FlopCounter):
        self.block = block
        self.comm = comm
        self.m = m
        self.layout = layout
        self.n = layout.size
        self.flops = flops
        self._J = None

    @property
    def m_local(self) -> int:
        return self.block.size

    def residuals_and_jacobian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's residuals F_p(x) and Jacobian J_p(x) (no communication, no flops)."""
        return self.block.residuals_and_jacobian(x)

    def residuals_and_projected_jacobian(self, x: np.ndarray, project, columns: int
                                         ) -> tuple[np.ndarray, np.ndarray]:
        """This rank's F_p(x) and J_p(x) Q, J_p formed a block of rows at a time (see
        :meth:`mlpar.model.problems.ResidualBlock.residuals_and_projected_jacobian`)."""
        self.flops.add_evaluation(evaluation_work(self.m, self.layout, jacobian=True))
        return self.block.residuals_and_projected_jacobian(x, project, columns)

    def value(self, x: np.ndarray) -> float:
        """f(x) = ½ Σ_p ‖F_p(x)‖²."""
        self.flops.add_evaluation(evaluation_work(self.m, self.layout, jacobian=False))
        F = self.block.residuals(x)
        return 0.5 * self.comm.sum_scalar(float(F @ F))

    def linearize(self, x: np.ndarray) -> Linearization:
        """f, ∇f = JᵀF, and the local F, J at x (one Allreduce of n + 1 numbers).

        The returned ``J`` is this objective's buffer: valid until the next call."""
        if self._J is None or self._J.shape != (self.m_local, x.size):
            self._J = np.empty((self.m_local, x.size), order="F")
        self.flops.add_evaluation(evaluation_work(self.m, self.layout, jacobian=True))
        F, J = self.block.residuals_and_jacobian(x, out=self._J)
        return self._linearization(x, F, J)

    def narrower(self, width: int) -> "LeastSquares":
        """The same residuals for a network of ``width`` neurons."""
        return LeastSquares(self.block, self.comm, self.m, self.layout.with_width(width),
                            self.flops)
