"""The ARC subproblem min gᵀs + ½sᵀHs + (λ/3)‖s‖³ by Lanczos on a PETSc shell matrix.

H = ∇²f is a matrix-free PETSc ``python`` Mat on parameter vectors split in
blocks over the ranks (a product gathers s, applies the objective's exact
Hessian–vector product and keeps the local block).  Lanczos from q_1 = g/‖g‖
builds an orthonormal basis Q_k of the Krylov space K_k(H, g), kept fully
reorthogonalised, and the tridiagonal T_k = Q_kᵀHQ_k.  On that subspace the
cubic model is minimised exactly (:func:`mlpar.arc.cubic_minimizer`) with
s = Q_k y; since y solves the small problem, the model gradient there is

    ∇m(s) = β_{k+1} (e_kᵀy) q_{k+1},      ‖∇m(s)‖ = β_{k+1} |y_k|,

so the step condition ‖∇m(s)‖ ≤ θ‖s‖² is checked without another product.
That condition alone is loose when ‖s‖ is large next to ‖g‖ (a few Lanczos
steps then pass it and the method crawls), so Lanczos stops at the stricter

    ‖∇m(s)‖ ≤ min(θ‖s‖², min(κ, ‖g‖^½)‖g‖),      κ = 0.1,

(the second bound is Cartis–Gould–Toint's TC.g, which keeps Newton-like local
convergence), when the Krylov space is exhausted (β_{k+1} ≈ 0:
s is then the exact model minimiser) or after ``max_it`` products; in the last
case the step still decreases the model (K_1 contains the Cauchy step) and
:class:`CubicInfo` says that the condition was not met.  Negative curvature
needs no special treatment: T_k may be indefinite and the cubic term bounds
the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from petsc4py import PETSc
from scipy.linalg import eigh_tridiagonal

from mlpar.arc import cubic_minimizer
from mlpar.comm import Comm, block_range
from mlpar.leastsquares import LinearSolveError

#: κ of the relative stopping bound min(κ, ‖g‖^½)‖g‖ on the model gradient.
RELATIVE_TOL = 0.1


@dataclass(frozen=True)
class CubicInfo:
    """What one subproblem solve did."""

    iterations: int
    model_gnorm: float
    step_norm: float
    pred: float
    condition_met: bool


class _HessianOperator:
    """Shell context: s ↦ ∇²f s on parameter vectors split in blocks over the ranks."""

    def __init__(self, comm: Comm, counts: list[int]):
        self.comm = comm
        self.counts = counts
        self.objective = None
        self.lin = None

    def mult(self, mat, X, Y):
        full = self.comm.allgather(X.getArray(readonly=True), self.counts)
        lo, hi = self.comm.block_range(full.size)
        Y.getArray()[:] = self.objective.hessvec(self.lin, full)[lo:hi]


class CubicSolver:
    """Approximate minimiser of the cubic model of one level (n parameters)."""

    def __init__(self, comm: Comm, n: int, theta: float = 0.5, max_it: int = 300):
        if not theta > 0 or max_it < 1:
            raise ValueError("need theta > 0 and max_it >= 1")
        self.comm = comm
        self.n = n
        self.theta = theta
        self.max_it = min(max_it, n)
        self.counts = [block_range(n, comm.size, q)[1] - block_range(n, comm.size, q)[0]
                       for q in range(comm.size)]
        local = self.counts[comm.rank]
        self._op = _HessianOperator(comm, self.counts)
        self.H = PETSc.Mat().createPython(((local, n), (local, n)), self._op, comm=comm.mpi)
        self.H.setUp()
        self._q, self._w = self.H.createVecs()

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
        for obj in (self.H, self._q, self._w):
            obj.destroy()

    def solve(self, objective, lin, lam: float) -> tuple[np.ndarray, CubicInfo]:
        """Return s ≈ argmin m(s) on a Krylov subspace and what was done."""
        comm = self.comm
        lo, hi = comm.block_range(self.n)
        gnorm = float(np.linalg.norm(lin.g))
        if not (np.isfinite(gnorm) and gnorm > 0 and np.isfinite(lam) and lam > 0):
            raise LinearSolveError(f"cubic subproblem with |g| = {gnorm}, λ = {lam}")
        self._op.objective, self._op.lin = objective, lin
        basis = np.empty((self.max_it + 1, hi - lo))
        basis[0] = lin.g[lo:hi] / gnorm
        relative_tol = min(RELATIVE_TOL, np.sqrt(gnorm)) * gnorm
        alpha, beta = [], []
        q, w = self._q, self._w
        for k in range(self.max_it):
            q.getArray()[:] = basis[k]
            self.H.mult(q, w)
            Hq = w.getArray(readonly=True)
            alpha.append(comm.sum_scalar(float(Hq @ basis[k])))
            r = Hq.copy()
            for _ in range(2):   # classical Gram–Schmidt, twice: Q stays orthonormal
                r -= basis[:k + 1].T @ comm.sum(basis[:k + 1] @ r)
            b_next = float(np.sqrt(comm.sum_scalar(float(r @ r))))
            if not all(np.isfinite(alpha)) or not np.isfinite(b_next):
                raise LinearSolveError("non-finite Hessian product in the cubic subproblem")
            theta, V = eigh_tridiagonal(np.array(alpha), np.array(beta))
            e1 = np.zeros(k + 1)
            e1[0] = gnorm
            y, _ = cubic_minimizer(theta, V, e1, lam)
            ynorm = float(np.linalg.norm(y))
            model_gnorm = b_next * abs(y[-1])
            exhausted = b_next <= 1e-12 * max(np.abs(alpha).max(), gnorm)
            if model_gnorm <= min(self.theta * ynorm ** 2, relative_tol) or exhausted \
                    or k + 1 == self.max_it:
                break
            beta.append(b_next)
            basis[k + 1] = r / b_next
        s = comm.allgather(y @ basis[:k + 1], self.counts)
        Ty = np.array(alpha) * y
        Ty[:-1] += np.array(beta) * y[1:]
        Ty[1:] += np.array(beta) * y[:-1]
        pred = -(gnorm * y[0] + 0.5 * float(y @ Ty))
        met = model_gnorm <= self.theta * ynorm ** 2 or exhausted
        return s, CubicInfo(k + 1, model_gnorm, ynorm, pred, met)
