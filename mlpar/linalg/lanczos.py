"""The ARC subproblem min gᵀs + ½sᵀHs + (λ/3)‖s‖³ by Lanczos on a PETSc shell matrix.

H = ∇²f is a matrix-free PETSc ``python`` Mat on parameter vectors split in
blocks over the ranks (a product gathers s, applies the objective's exact
Hessian–vector product and keeps the local block).  Lanczos from q_1 = g/‖g‖
builds an orthonormal basis Q_k of the Krylov space K_k(H, g), kept fully
reorthogonalised, and the tridiagonal T_k = Q_kᵀHQ_k.  On that subspace the
cubic model is minimised exactly (:func:`mlpar.linalg.cubic.cubic_minimizer`) with
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
the model.  After a rejected step only λ changes, so the next solve starts from
the Krylov space already built (no Hessian products unless it must grow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from petsc4py import PETSc
from scipy.linalg import eigh_tridiagonal

from mlpar.linalg.cubic import cubic_minimizer
from mlpar.parallel.comm import Comm
from mlpar.protocols import LinearSolveError

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

    @property
    def reason(self) -> str:
        """Whether the step condition was met, in the words of a KSP converged reason."""
        return "CONVERGED_STEP_CONDITION" if self.condition_met else "DIVERGED_MAX_IT"


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
        self.counts = comm.block_counts(n)
        local = self.counts[comm.rank]
        self._op = _HessianOperator(comm, self.counts)
        self.H = PETSc.Mat().createPython(((local, n), (local, n)), self._op, comm=comm.mpi)
        self.H.setUp()
        self._q, self._w = self.H.createVecs()
        self._krylov: _Krylov | None = None

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
        for obj in (self.H, self._q, self._w):
            obj.destroy()
        self._krylov = None

    def state(self, lin) -> dict[str, np.ndarray]:
        """The size of the Krylov space built at the linearisation ``lin`` (0 if none)."""
        kry = self._krylov
        return {"krylov_size": np.array([kry.k if kry is not None and kry.lin is lin else 0])}

    def restore(self, arrays: dict[str, np.ndarray], objective, lin) -> None:
        """Rebuild the Krylov space of :meth:`state` at the resumed linearisation ``lin``: its
        Hessian products were paid for before the stop, so they are not charged again."""
        size = int(arrays["krylov_size"][0]) if "krylov_size" in arrays else 0
        self._krylov = None
        if size == 0:
            return
        kry = self._start(objective, lin)
        with objective.flops.uncharged():
            while kry.k < size:
                self._extend(kry)

    def _start(self, objective, lin) -> "_Krylov":
        """A new Krylov space K(H, g) at ``lin``, from q_1 = g/‖g‖."""
        gnorm = float(np.linalg.norm(lin.g))
        self._krylov = _Krylov(objective, lin, self.max_it, self.comm.block_range(self.n), gnorm)
        self._op.objective, self._op.lin = objective, lin
        return self._krylov

    def solve(self, objective, lin, lam: float) -> tuple[np.ndarray, CubicInfo]:
        """Return s ≈ argmin m(s) on a Krylov subspace and what was done.

        The Krylov space depends on H and g only, not on λ: called again with the same
        ``objective`` and ``lin`` (a rejected step, now with a larger λ), the solver
        reuses the vectors it has, and computes new Hessian products only if the space
        must grow.  The subspace dimension is chosen exactly as a fresh solve would
        (the first k that meets the stopping rule), so reuse changes the cost, never
        the step.  ``iterations`` counts new products.
        """
        gnorm = float(np.linalg.norm(lin.g))
        if not (np.isfinite(gnorm) and gnorm > 0 and np.isfinite(lam) and lam > 0):
            raise LinearSolveError(f"cubic subproblem with |g| = {gnorm}, λ = {lam}",
                                   "DIVERGED_NANORINF")
        kry = self._krylov
        if kry is None or kry.lin is not lin or kry.objective is not objective:
            kry = self._start(objective, lin)
        self._op.objective, self._op.lin = objective, lin
        relative_tol = min(RELATIVE_TOL, np.sqrt(gnorm)) * gnorm
        products = 0
        k = 0
        while True:
            k += 1
            while kry.k < k:
                products += self._extend(kry)
            theta, V = eigh_tridiagonal(np.array(kry.alpha[:k]), np.array(kry.beta[:k - 1]))
            e1 = np.zeros(k)
            e1[0] = gnorm
            y, _ = cubic_minimizer(theta, V, e1, lam)
            ynorm = float(np.linalg.norm(y))
            b_next = kry.beta[k - 1] if k < kry.k else kry.b_next
            model_gnorm = b_next * abs(y[-1])
            exhausted = b_next <= 1e-12 * max(np.abs(kry.alpha[:k]).max(), gnorm)
            met = model_gnorm <= min(self.theta * ynorm ** 2, relative_tol) or exhausted
            if met or k == self.max_it:
                break
        s = self.comm.allgather(y @ kry.basis[:k], self.counts)
        alpha, beta = np.array(kry.alpha[:k]), np.array(kry.beta[:k - 1])
        Ty = alpha * y
        Ty[:-1] += beta * y[1:]
        Ty[1:] += beta * y[:-1]
        pred = -(gnorm * y[0] + 0.5 * float(y @ Ty))
        return s, CubicInfo(products, model_gnorm, ynorm, pred,
                            model_gnorm <= self.theta * ynorm ** 2 or exhausted)

    def _extend(self, kry: "_Krylov") -> int:
        """One Lanczos step: q_k from the previous remainder, H q_k, α_k, and the
        reorthogonalised remainder β_{k+1} q_{k+1}; returns the number of products (1)."""
        comm, k = self.comm, kry.k
        if k > 0:
            kry.beta.append(kry.b_next)
            kry.basis[k] = kry.r / kry.b_next
        self._q.getArray()[:] = kry.basis[k]
        self.H.mult(self._q, self._w)
        Hq = self._w.getArray(readonly=True)
        kry.alpha.append(comm.sum_scalar(float(Hq @ kry.basis[k])))
        r = Hq.copy()
        for _ in range(2):   # classical Gram–Schmidt, twice: Q stays orthonormal
            r -= kry.basis[:k + 1].T @ comm.sum(kry.basis[:k + 1] @ r)
        kry.b_next = float(np.sqrt(comm.sum_scalar(float(r @ r))))
        kry.r = r
        kry.k += 1
        if not (np.isfinite(kry.alpha[-1]) and np.isfinite(kry.b_next)):
            raise LinearSolveError("non-finite Hessian product in the cubic subproblem",
                                   "DIVERGED_NANORINF")
        return 1


class _Krylov:
    """The Lanczos state at one linearisation: Q_k (local rows), T_k, and β_{k+1} q_{k+1}."""

    def __init__(self, objective, lin, max_it: int, rows: tuple[int, int], gnorm: float):
        lo, hi = rows
        self.objective, self.lin = objective, lin
        self.basis = np.empty((max_it + 1, hi - lo))
        self.basis[0] = lin.g[lo:hi] / gnorm
        self.alpha: list[float] = []
        self.beta: list[float] = []
        self.b_next = 0.0
        self.r = None
        self.k = 0
