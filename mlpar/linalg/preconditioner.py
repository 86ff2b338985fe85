"""Preconditioners for the regularised Gauss–Newton system in parameter space.

The ``normal`` solve form (:mod:`mlpar.linalg.linsolve`) runs CG on

    A s = −g,      A = JᵀJ + λI,

n = (d + 2) r parameters ordered by blocks [v; w; b] (d = 1).  The contexts here
are PETSc python preconditioners (``pc.setType('python');
pc.setPythonContext(ctx)``: PETSc calls ``ctx.apply(pc, x, y)`` for y = M⁻¹x).
They reach J only through the objective's products, like the solver, and hold
nothing of PETSc: this module is numpy/scipy only.

``bjacobi``
    M = blockdiag(B_i + λI) over the neurons i, B_i the (d+2) × (d+2) block of
    JᵀJ that couples neuron i's own weights (v_i, w_i, b_i).
``mg``
    Two levels, the coarse space range(P) given by the AMG coarsening of the
    neurons (P = P_full = blkdiag(P, P, P), n × n_c, from
    :mod:`mlpar.multilevel.amg`): the Galerkin coarse operator

        A_c = PᵀAP = (JP)ᵀ(JP) + λPᵀP        (n_c × n_c, formed and factorised
                                              by Cholesky on every rank),

    the coarse correction Q = P A_c⁻¹ Pᵀ, a smoother S, and

        M⁻¹ = Q + (I − QA) S (I − AQ)

    (coarse correction, smoothing, coarse correction: the "balancing" symmetric
    multiplicative order).  M⁻¹ is symmetric positive definite for every SPD S,
    so CG applies.  The default smoother is S = λ⁻¹I (``identity``); the neuron
    block Jacobi inverse is the alternative (``bjacobi``).

Why S = λ⁻¹I.  J has far fewer significant singular values than n (m < n, and
neurons with similar (w_i, b_i) give nearly parallel columns), so most of A's
eigenvalues sit at λ, and unpreconditioned CG, started from zero with a
right-hand side in range(Jᵀ), never sees them.  A preconditioner that is not a
multiple of the identity there (Jacobi, block Jacobi, or the pre-/post-smoothing
order S Q S with a block Jacobi S) spreads that cluster and costs iterations
instead of saving them (docs/notes/2026-12-preconditioner.md).  With S = λ⁻¹I,
M⁻¹A is the identity on the vectors of null(J) that are A-orthogonal to
range(P), and CG iterates only on the part of range(Jᵀ) that the coarse space
leaves.  (The S Q S order would need 2S − SAS positive definite, which
S = λ⁻¹I is not.)

``auto``
    No preconditioner until a solve has needed more than N = :data:`AUTO_ITERATIONS` CG
    iterations, then ``mg`` for every later solve of the level
    (:class:`mlpar.linalg.linsolve.RegularizedSolver` applies the rule); never on a level
    of more than :data:`mlpar.linalg.forms.AUTO_MG_MAX_WEIGHTS` weights, whose dense coarse
    matrices would not fit.

How N follows from the costs.  A plain CG iteration costs one product with A (4mn flops).
A preconditioned one costs three (one for CG, two inside M⁻¹, which meet range(P) and cost
4mn + 4m·n_c together) and the application's own work (the gather of x, two coarse solves
of 2n_c² each, the Python callback); the set-up (JP and (JP)ᵀ(JP), 2m·nnz(P) + 2m·n_c² flops
per linearisation, and lm's coarsening) comes on top.  With c the cost of a preconditioned
iteration in plain ones, ``mg`` pays when the plain count k exceeds c·k_mg + set-up.
Measured (docs/benchmarks.md, issue 17, 2 ranks): on the idle machine ``mg`` makes an LM
iteration faster wherever plain CG needs about 190 iterations per step or more, each time
cutting the count 3.8-fold or more (Poisson ν = 20, r = 512, 2000 points, spread: 397 → 104,
0.28 s per LM iteration against 0.40; ``fit`` ν = 40, r = 2048, 8192 points: 182 → 22,
2.0× sooner to RMSE 1e-3; Poisson ν = 40, r = 2048, 4096 points: 1236 → 64, 5.8×); where
plain CG needs tens (the seed's uniform init: 6.7 → 6.3) it loses.  Yet N = 150 slowed
``rlm`` from uniform weights at r = 2048 (Poisson ν = 40, λ_p = 1000: 236 s to RMSE 1e-3
against 202 s, 222 iterations against 119): once its Taylor steps were cheap, its
cost-aware choice took few coarse steps (about 6 in the last 120 iterations, against half
of them before).  Hence
N = 600, which none of those ``rlm`` solves passes; ``lm`` from spread weights gains from
``--pc mg`` or ``-mlpar_pc_auto_its 150``.  The solve that exceeds N is kept; the next
one is preconditioned.  It stays on: the plain count grows as LM lowers λ, and a
preconditioned solve does not tell what the plain one would cost, so switching off would
need a plain solve of at least N iterations to find out.

The parameter vectors of the ``normal`` form are split in blocks over the ranks
(``counts``); :meth:`ParameterSpacePC.apply` gathers the block, computes the
full y = M⁻¹x the same way on every rank (every reduction is an Allreduce) and
keeps its own block.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable

import numpy as np

from mlpar.protocols import Linearization, Objective

if TYPE_CHECKING:   # the configuration imports this module's names before MPI starts
    from mlpar.parallel.comm import Comm

PRECONDITIONERS = ("none", "jacobi", "bjacobi", "mg", "auto")
SMOOTHERS = ("identity", "bjacobi")
#: ``auto`` turns ``mg`` on after a solve of more than this many CG iterations (see above;
#: the PETSc option ``-mlpar_pc_auto_its`` changes it).
AUTO_ITERATIONS = 600

CoarseBasis = Callable[[Objective, Linearization], object]
"""(objective, lin) ↦ the sparse n × n_c prolongation P_full of the level's coarse space at
``lin``, or None when there is none."""


class ParameterSpacePC:
    """A PETSc python PC on parameter vectors split in blocks over the ranks: y = M⁻¹x.

    Subclasses give :meth:`prepare` (the set-up at a linearisation and λ) and
    :meth:`apply_full` (M⁻¹ on a full, replicated vector).
    """

    def __init__(self, comm: Comm, counts: list[int]):
        self.comm = comm
        self.counts = counts
        self.objective: Objective | None = None
        self.lin: Linearization | None = None
        self.lam = 0.0

    def bind(self, objective: Objective, lin: Linearization, lam: float) -> None:
        """Set up M for A = JᵀJ + λI at ``lin`` (collective; called before each solve)."""
        self.objective, self.lam = objective, lam
        self.prepare(objective, lin, lam)
        self.lin = lin

    def prepare(self, objective: Objective, lin: Linearization, lam: float) -> None:
        raise NotImplementedError

    def apply_full(self, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def setUp(self, pc) -> None:
        """Nothing: :meth:`bind` did the set-up for the solve at hand."""

    def apply(self, pc, X, Y) -> None:
        """Y = M⁻¹X on this rank's block."""
        full = self.comm.allgather(X.getArray(readonly=True), self.counts)
        lo = sum(self.counts[:self.comm.rank])
        Y.getArray()[:] = self.apply_full(full)[lo:lo + self.counts[self.comm.rank]]


class NeuronBlockJacobi(ParameterSpacePC):
    """M = blockdiag(B_i + λI): the (d+2) × (d+2) block of A of each neuron's own weights.

    The blocks come from :meth:`mlpar.protocols.Objective.neuron_blocks` once per
    linearisation (2·m·r·(d+2)(d+3)/2 flops) and are inverted for each λ
    ((d+2)³ r); one application costs 2(d+2)² r flops.
    """

    def __init__(self, comm: Comm, counts: list[int]):
        super().__init__(comm, counts)
        self._blocks: np.ndarray | None = None
        self._inverse: np.ndarray | None = None

    def prepare(self, objective: Objective, lin: Linearization, lam: float) -> None:
        nb = objective.layout.n_blocks
        if lin is not self.lin or self._blocks is None:
            self._blocks = objective.neuron_blocks(lin)
            objective.flops.add(objective.m * objective.n * (nb + 1))
        self._inverse = np.linalg.inv(self._blocks + lam * np.eye(nb))
        objective.flops.add(nb ** 3 * self._blocks.shape[0])

    def apply_full(self, v: np.ndarray) -> np.ndarray:
        nb, r = self._inverse.shape[1], self._inverse.shape[0]
        self.objective.flops.add(2.0 * nb * nb * r)
        return np.einsum("ixy,yi->xi", self._inverse, v.reshape(nb, r)).ravel()


class TwoLevel(ParameterSpacePC):
    """M⁻¹ = Q + (I − QA) S (I − AQ), Q = P (PᵀAP)⁻¹ Pᵀ on the coarse space range(P).

    ``coarse_basis(objective, lin)`` gives P (n × n_c, sparse) at each solve, or None
    (then Q = 0 and M⁻¹ = S).  When the linearisation or P changes, the local rows J P
    are stored and A_c = (JP)ᵀ(JP) + λPᵀP is formed (2·m·nnz(P) + 2·m·n_c² flops, one
    Allreduce of n_c²); A_c is factorised for each λ (n_c³/3).  The two products with A
    in M⁻¹ meet range(P) on one side, so with J P at hand they cost 4mn + 4m·n_c instead
    of 8mn:

        A Q v = Jᵀ(JP c) + λPc,   c = A_c⁻¹Pᵀv;      PᵀA y = (JP)ᵀ(Jy) + λPᵀy.

    One application costs these, two coarse solves (2·(2·nnz(P) + 2n_c²)) and the
    smoother.
    """

    def __init__(self, comm: Comm, counts: list[int], coarse_basis: CoarseBasis,
                 smoother: str = "identity"):
        super().__init__(comm, counts)
        if smoother not in SMOOTHERS:
            raise ValueError(f"unknown smoother {smoother!r}; expected one of "
                             f"{', '.join(SMOOTHERS)}")
        self.coarse_basis = coarse_basis
        self.block_jacobi = NeuronBlockJacobi(comm, counts) if smoother == "bjacobi" else None
        self.P = None
        self._JP: np.ndarray | None = None
        self._gram: np.ndarray | None = None
        self._PtP: np.ndarray | None = None
        self._factor = None
        self.paid_at: Linearization | None = None
        """The linearisation of a resumed run's checkpoint when its set-up was already paid
        for there (its flops are not charged again)."""

    @property
    def coarse_size(self) -> int:
        """n_c, the dimension of the coarse space (0: none)."""
        return 0 if self.P is None else self.P.shape[1]

    def prepare(self, objective: Objective, lin: Linearization, lam: float) -> None:
        P = self.coarse_basis(objective, lin)
        if P is not None and (P is not self.P or lin is not self.lin):
            with (objective.flops.uncharged() if lin is self.paid_at
                  else contextlib.nullcontext()):
                self._JP = objective.basis_columns(lin, P)
                objective.flops.add_dense(2.0 * objective.m * P.shape[1] ** 2)
            self._gram = self.comm.sum(self._JP.T @ self._JP)
            self._PtP = (P.T @ P).toarray()
        self.P = P
        if self.block_jacobi is not None:
            self.block_jacobi.bind(objective, lin, lam)
        if P is not None:
            import scipy.linalg as sla  # here, not at start-up: only the mg preconditioner
            self._factor = sla.cho_factor(self._gram + lam * self._PtP)
            objective.flops.add_dense(P.shape[1] ** 3 / 3.0)

    def coarse_solve(self, u: np.ndarray) -> np.ndarray:
        """c = A_c⁻¹ u for a coarse vector u."""
        import scipy.linalg as sla
        self.objective.flops.add(2.0 * self.P.shape[1] ** 2)
        return sla.cho_solve(self._factor, u)

    def restrict(self, v: np.ndarray) -> np.ndarray:
        """Pᵀ v."""
        self.objective.flops.add(2.0 * self.P.nnz)
        return self.P.T @ v

    def prolong(self, c: np.ndarray) -> np.ndarray:
        """P c."""
        self.objective.flops.add(2.0 * self.P.nnz)
        return self.P @ c

    def operator_on_basis(self, c: np.ndarray) -> np.ndarray:
        """A P c = Jᵀ(JP c) + λPc (one Allreduce of n numbers, 2mn + 2m·n_c flops)."""
        self.objective.flops.add(2.0 * self.objective.m * self.P.shape[1])
        return self.objective.jac_t(self.lin, self._JP @ c) + self.lam * self.prolong(c)

    def restricted_operator(self, y: np.ndarray) -> np.ndarray:
        """PᵀA y = (JP)ᵀ(Jy) + λPᵀy (one Allreduce of n_c numbers, 2mn + 2m·n_c flops)."""
        self.objective.flops.add(2.0 * self.objective.m * self.P.shape[1])
        Jy = self.objective.jac(self.lin, y)
        return self.comm.sum(self._JP.T @ Jy) + self.lam * self.restrict(y)

    def smooth(self, v: np.ndarray) -> np.ndarray:
        """S v: λ⁻¹v, or the neuron block Jacobi inverse."""
        if self.block_jacobi is not None:
            return self.block_jacobi.apply_full(v)
        return v / self.lam

    def apply_full(self, v: np.ndarray) -> np.ndarray:
        if self.P is None:
            return self.smooth(v)
        c = self.coarse_solve(self.restrict(v))           # Q v = P c
        y = self.smooth(v - self.operator_on_basis(c))    # S (I − AQ) v
        return self.prolong(c - self.coarse_solve(self.restricted_operator(y))) + y


def make_context(kind: str, comm: Comm, counts: list[int], coarse_basis: CoarseBasis | None,
                 smoother: str = "identity") -> ParameterSpacePC:
    """The python PC context of ``bjacobi`` or ``mg`` (``jacobi`` is PETSc's own PCJACOBI)."""
    if kind == "bjacobi":
        return NeuronBlockJacobi(comm, counts)
    if kind == "mg":
        return TwoLevel(comm, counts, coarse_basis or (lambda objective, lin: None), smoother)
    raise ValueError(f"no python preconditioner {kind!r}; expected bjacobi or mg")
