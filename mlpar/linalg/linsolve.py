"""Regularised Gauss–Newton solves (JᵀJ + λI) s = −g on PETSc KSP.

Four equivalent forms, all on ``comm``'s ranks:

``normal``
    KSP on a matrix-free shell operator x ↦ JᵀJx + λx in parameter space.  The
    parameter vector is split in blocks over the ranks; one product gathers x
    (Allgatherv), applies the local J_pᵀJ_p, and sums the blocks back
    (Reduce_scatter).  4mn flops.
``residual``
    When g = JᵀF and there are fewer residuals than weights (m < n), the same
    step is s = −Jᵀ(JJᵀ + λI)⁻¹F.  The KSP runs on a vector distributed like the
    training points; a product y ↦ J(Jᵀy) + λy costs one Allreduce of n numbers.
    4mn flops.
``assembled``
    The n × n matrix JᵀJ + λI is formed (2mn² flops, charged; one Allreduce of n²
    numbers) as a PETSc dense matrix; a product costs 2n² flops.  For small problems.

``direct``
    The smaller of the two Gram systems is formed on every rank and factorised
    there by a KSP on PETSc.COMM_SELF, ``preonly`` with a Cholesky PC by default.
    When g = JᵀF and m <= n: the m × m matrix JJᵀ + λI from the gathered rows of J
    (2m²n flops, charged; an Allgatherv of m·n numbers; m³/3 + 2m² to factorise
    and solve), then s = −Jᵀy (2mn flops).  Otherwise (fewer weights than
    residuals, as on a narrow coarse level, or g not JᵀF): the n × n matrix
    JᵀJ + λI (2mn² flops, one Allreduce of n² numbers; n³/3 + 2n²) and s directly.
    No Krylov iterations at all.  The options database reaches these KSPs too
    (``-ksp_type cg -pc_type none`` solves the same systems iteratively).

``auto`` takes ``direct`` when forming and factorising the Gram matrix costs at most
400 CG iterations (and it fits), otherwise ``residual`` (g = JᵀF, m < n) or ``normal``:
the rule of :func:`mlpar.linalg.forms.auto_form`.

Preconditioners (``pc``, or ``-mlpar_pc`` in the options database, which wins):
``jacobi``, ``bjacobi`` (per-neuron blocks) and ``mg`` (two levels on the AMG neuron
coarse space) of :mod:`mlpar.linalg.preconditioner`, on the parameter-space forms
``normal`` and ``assembled``; ``auto`` then takes ``normal`` where it would take
``residual``.  They do not apply to ``residual``: its KSP works on m-vectors of the
row space, where the neuron hierarchy does not act; nor to ``direct``, which has no
Krylov iterations.  ``coarse_basis`` gives ``mg`` its coarse space at each solve.

``auto`` starts without a preconditioner and turns ``mg`` on for every later solve once a
solve of a parameter-space form has needed more than N CG iterations
(:data:`mlpar.linalg.preconditioner.AUTO_ITERATIONS`, or ``-mlpar_pc_auto_its N``); the
iteration count is the same on every rank, so every rank switches at the same solve.  It
is none on the ``direct`` and ``residual`` forms (and when the options database sets
``-pc_type``); the form ``auto`` takes ``normal`` for it where it would take ``residual``.
Whether ``mg`` is on, with its coarse space, is the solver's checkpointed :meth:`state`.

Every product goes through the objective handed to :meth:`RegularizedSolver.solve`
(:class:`mlpar.protocols.Objective`): the solver never reads the Jacobian itself,
so the same solver serves a level's network and its coarse models.

The KSP is CG with no preconditioner and relative tolerance 1e-10 unless the
PETSc options database says otherwise (``-ksp_type``, ``-ksp_rtol``,
``-ksp_max_it``, ``-pc_type jacobi``, ``-ksp_monitor``, ...).  Any CG iterate
started from zero decreases the quadratic model, so an iteration limit
(DIVERGED_MAX_IT) still yields a usable step; any other negative reason is an error.

Options PETSc refuses (an unknown ``-ksp_type``, ``-ksp_rtol abc``, ``-pc_type lu`` on a
matrix-free operator) and tolerances it accepts but cannot honour (``-ksp_max_it -3``) are
found where each KSP is configured and where it solves (its set-up, where PETSc refuses a
PC the operator cannot serve, runs inside the first solve), on every rank of the solver
together, and raised as one :class:`mlpar.protocols.SolverOptionsError` naming the option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from petsc4py import PETSc

from mlpar.linalg import preconditioner
from mlpar.linalg.forms import auto_form, auto_may_precondition
from mlpar.parallel.comm import Comm
from mlpar.protocols import Linearization, LinearSolveError, Objective, SolverOptionsError

FORMS = ("auto", "normal", "residual", "assembled", "direct")

_REASONS = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items()
            if k.isupper() and isinstance(v, int)}


_LOCATION = re.compile(r"^\[\d+\] (\w+)\(\) at ")


def petsc_error_message(exc: "PETSc.Error") -> str:
    """PETSc's own words for an error: its last message line (the most specific one) and
    the outermost PETSc call it came from, ``Unable to find requested KSP type x
    (KSPSetFromOptions)``."""
    lines = [line for line in str(exc).splitlines()[1:] if line.strip()]
    calls = [m.group(1) for m in map(_LOCATION.match, lines) if m]
    words = [line.split("] ", 1)[-1] for line in lines if not _LOCATION.match(line)]
    text = words[-1].strip() if words else f"PETSc error code {exc.ierr}"
    return f"{text} ({calls[0]})" if calls else text


def _culprit(message: str) -> str:
    """The options of the database that ``message`` mentions (by value, as a word), or all
    of them: what the user set, for the error line."""
    given = PETSc.Options().getAll()
    named = [f"-{k} {v}" for k, v in given.items()
             if v and re.search(rf"\b{re.escape(v)}\b", message, re.IGNORECASE)]
    every = [f"-{k} {v}" if v else f"-{k}" for k, v in given.items()]
    return " ".join(named or every)


def _tolerance_problem(ksp) -> str | None:
    """What is wrong with the tolerances of ``ksp`` or those the options database holds for
    it, read by its type or not (PETSc 3.18 takes ``-ksp_max_it -3`` without complaint, and
    a ``preonly`` KSP never reads it), or None."""
    prefix = "-" + (ksp.getOptionsPrefix() or "") + "ksp_"
    database = PETSc.Options(ksp.getOptionsPrefix())
    rtol, atol, divtol, max_it = ksp.getTolerances()
    if database.hasName("ksp_max_it"):
        max_it = database.getInt("ksp_max_it")
    rtol, atol, divtol = (database.getReal("ksp_" + name) if database.hasName("ksp_" + name)
                          else value for name, value in
                          (("rtol", rtol), ("atol", atol), ("divtol", divtol)))
    if max_it < 1:
        return f"PETSc option {prefix}max_it {max_it}: must be a positive integer"
    if not 0 <= rtol < 1:
        return f"PETSc option {prefix}rtol {rtol:g}: must be in [0, 1)"
    if not atol >= 0:
        return f"PETSc option {prefix}atol {atol:g}: must be >= 0"
    if not divtol >= 1:
        return f"PETSc option {prefix}divtol {divtol:g}: must be >= 1"
    return None


@dataclass(frozen=True)
class SolveInfo:
    """What one regularised solve did."""

    form: str
    iterations: int
    reason: str
    pc: str = ""
    """The preconditioner of the Krylov solve (``none``, ``jacobi``, ``bjacobi``, ``mg``, or
    the PC type the options database chose); empty for ``direct``."""


class _ResidualSpaceOperator:
    """Shell context: y ↦ J(Jᵀy) + λy on vectors distributed like the rows."""

    def __init__(self):
        self.objective = None
        self.lin = None
        self.lam = 0.0

    def mult(self, mat, X, Y):
        x = X.getArray(readonly=True)
        obj, lin = self.objective, self.lin
        Y.getArray()[:] = obj.jac(lin, obj.jac_t(lin, x)) + self.lam * x

    def getDiagonal(self, mat, D):
        D.getArray()[:] = self.objective.row_norms2(self.lin) + self.lam


class _NormalOperator:
    """Shell context: x ↦ JᵀJx + λx on parameter vectors split in blocks over ranks."""

    def __init__(self, comm: Comm, counts: list[int]):
        self.comm = comm
        self.counts = counts
        self.objective = None
        self.lin = None
        self.lam = 0.0

    def mult(self, mat, X, Y):
        x = X.getArray(readonly=True)
        full = self.comm.allgather(x, self.counts)
        local = self.objective.normal_local(self.lin, full)
        Y.getArray()[:] = self.comm.reduce_scatter(local, self.counts) + self.lam * x

    def getDiagonal(self, mat, D):
        diag = self.objective.column_norms2(self.lin)
        lo, hi = self.comm.block_range(diag.size)
        D.getArray()[:] = diag[lo:hi] + self.lam


class RegularizedSolver:
    """Solves (JᵀJ + λI)s = −g for the objectives of one level: n parameters, m residual
    rows of which ``m_local`` on this rank (every objective handed to :meth:`solve` must
    have these sizes)."""

    def __init__(self, comm: Comm, n: int, m: int, m_local: int, form: str = "auto",
                 rtol: float = 1e-10, pc: str = "none",
                 coarse_basis: preconditioner.CoarseBasis | None = None):
        if form not in FORMS:
            raise ValueError(f"unknown solve form {form!r}; expected one of {', '.join(FORMS)}")
        database = PETSc.Options()
        self.pc = database.getString("mlpar_pc", pc)
        if self.pc not in preconditioner.PRECONDITIONERS:
            raise ValueError(f"unknown preconditioner {self.pc!r}; expected one of "
                             f"{', '.join(preconditioner.PRECONDITIONERS)}")
        if self.pc not in ("none", "auto") and form in ("residual", "direct"):
            raise ValueError(f"the preconditioner {self.pc!r} acts in parameter space: it applies "
                             f"to the normal and assembled forms, not to {form!r}")
        self.auto_iterations = database.getInt("mlpar_pc_auto_its",
                                               preconditioner.AUTO_ITERATIONS)
        if self.auto_iterations < 0:
            raise SolverOptionsError(f"PETSc option -mlpar_pc_auto_its {self.auto_iterations}: "
                                     "must be >= 0")
        self.active_pc = "none" if self.pc == "auto" else self.pc
        """The preconditioner in force: ``pc``, or for ``auto`` none until it switches."""
        self._auto_held = False   # the options database chose the PC: auto never switches
        self._paid_at: Linearization | None = None   # see TwoLevel.paid_at
        self.coarse_basis = coarse_basis
        self._pc_context: preconditioner.ParameterSpacePC | None = None
        self.comm = comm
        self.n, self.m, self.m_local = n, m, m_local
        self.form = form
        self.rtol = rtol
        self.counts = comm.block_counts(n)
        self._ksp: dict[str, tuple] = {}

    def destroy(self) -> None:
        """Free the PETSc objects (collective); call before the run ends."""
        for ksp, A, _, x, b in self._ksp.values():
            for obj in (ksp, A, x, b):
                obj.destroy()
        self._ksp.clear()

    def state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """What later solves depend on, at the current linearisation ``lin`` (checkpointed):
        for ``auto`` whether ``mg`` is on (``pc_auto_on``); while ``mg`` is on, the coarse
        space's state and whether the preconditioner was set up at ``lin`` (``pc_setup_here``,
        so that a resumed run does not charge that set-up again).  Empty for every other
        choice."""
        out = {}
        if self.pc == "auto":
            out["pc_auto_on"] = np.array([int(self.active_pc == "mg")])
        if self.active_pc == "mg":
            ctx = self._pc_context
            out["pc_setup_here"] = np.array([int(ctx is not None and ctx.lin is lin
                                                 and ctx.coarse_size > 0)])
            out.update(getattr(self.coarse_basis, "state", lambda lin: {})(lin))
        return out

    def restore(self, arrays: dict[str, np.ndarray], objective: Objective,
                lin: Linearization) -> None:
        """Take back what :meth:`state` gave, at ``lin``."""
        if self.pc == "auto" and "pc_auto_on" in arrays and arrays["pc_auto_on"][0]:
            self._switch_on()
        if "pc_setup_here" in arrays:
            restore = getattr(self.coarse_basis, "restore", None)
            if restore is not None:
                restore(arrays, lin)
            self._paid_at = lin if arrays["pc_setup_here"][0] else None

    def _switch_on(self) -> None:
        """``auto`` turns ``mg`` on: the parameter-space KSPs are made again, as ``--pc mg``
        makes them (collective: every rank switches at the same solve)."""
        self.active_pc = "mg"
        for form in ("normal", "assembled"):
            if form in self._ksp:
                ksp, A, _, x, b = self._ksp.pop(form)
                for obj in (ksp, A, x, b):
                    obj.destroy()

    def choose_form(self, lin: Linearization) -> str:
        """The form used for this linearization."""
        if self.form == "auto":
            return auto_form(self.m, self.n, lin.least_squares_gradient, self.pc)
        if self.form == "residual" and not lin.least_squares_gradient:
            return "normal"
        return self.form

    def _make_ksp(self, form: str):
        """The KSP, operator and vectors of ``form``, created once (then from the options
        database): CG without preconditioner on ``comm``'s ranks, or, for the direct forms, a
        Cholesky factorisation (preonly) of the m × m (``direct``) or n × n (``direct-normal``)
        matrix held by every rank."""
        n = self.n
        comm = self.comm.mpi
        if form in ("direct", "direct-normal"):
            comm = PETSc.COMM_SELF
            local = glob = self.m if form == "direct" else n
            ctx = None
        elif form == "residual":
            local, glob, ctx = self.m_local, self.m, _ResidualSpaceOperator()
        else:
            local, glob = self.counts[self.comm.rank], n
            ctx = _NormalOperator(self.comm, self.counts) if form == "normal" else None
        if ctx is not None:
            A = PETSc.Mat().createPython(((local, glob), (local, glob)), ctx, comm=comm)
        else:
            A = PETSc.Mat().createDense(((local, glob), (local, glob)), comm=comm)
        A.setUp()
        ksp = PETSc.KSP().create(comm=comm)
        if form in ("direct", "direct-normal"):
            ksp.setType(PETSc.KSP.Type.PREONLY)
            ksp.getPC().setType(PETSc.PC.Type.CHOLESKY)
        else:
            ksp.setType(PETSc.KSP.Type.CG)
            ksp.getPC().setType(PETSc.PC.Type.NONE)
            if form in ("normal", "assembled"):
                self._configure_pc(ksp)
        ksp.setTolerances(rtol=self.rtol, atol=1e-300, max_it=10000)
        ksp.setOperators(A)
        self._in_lockstep(ksp.setFromOptions, lambda: _tolerance_problem(ksp))
        if self._pc_context is not None and ksp.getPC().getType() != PETSc.PC.Type.PYTHON:
            self._pc_context = None   # the options database chose another -pc_type
        if (self.pc == "auto" and form in ("normal", "assembled")
                and ksp.getPC().getType() != PETSc.PC.Type.NONE and self._pc_context is None):
            self._auto_held = True
        x, b = A.createVecs()
        self._ksp[form] = (ksp, A, ctx, x, b)
        return self._ksp[form]

    def _configure_pc(self, ksp) -> None:
        """The preconditioner hook of the parameter-space forms (``--pc`` / ``-mlpar_pc``):
        PETSc's Jacobi, or a python context of :mod:`mlpar.linalg.preconditioner`
        (``-mlpar_pc_smoother identity|bjacobi`` chooses the smoother of ``mg``).  A
        preconditioned CG stops on the unpreconditioned residual, so that every choice
        solves to the same tolerance (``-ksp_norm_type`` overrides)."""
        if self.active_pc == "none":
            return
        pc = ksp.getPC()
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        if self.active_pc == "jacobi":
            pc.setType(PETSc.PC.Type.JACOBI)
            return
        smoother = PETSc.Options().getString("mlpar_pc_smoother", "identity")
        self._pc_context = preconditioner.make_context(self.active_pc, self.comm, self.counts,
                                                       self.coarse_basis, smoother)
        if isinstance(self._pc_context, preconditioner.TwoLevel):
            self._pc_context.paid_at = self._paid_at
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(self._pc_context)

    def _in_lockstep(self, call, check=lambda: None) -> None:
        """``call()`` (a PETSc configuration call or solve) then ``check()`` on every rank of the
        solver; a PETSc error (an option PETSc refuses, ``-ksp_error_if_not_converged``) or a
        problem ``check`` names, on any rank, is one SolverOptionsError on every rank (one
        Allreduce of a flag when all is well)."""
        try:
            call()
            problem = check()
        except PETSc.Error as exc:
            text = petsc_error_message(exc)
            problem = f"PETSc option {_culprit(text)}: {text}"
        if self.comm.any(problem is not None):
            raise SolverOptionsError(self.comm.first(problem))

    @staticmethod
    def _outcome(ksp) -> tuple[int, str]:
        """(iterations, converged reason) of the last solve; a negative reason other than the
        iteration limit (a CG iterate from zero still decreases the model) is an error."""
        reason = ksp.getConvergedReason()
        its = ksp.getIterationNumber()
        name = _REASONS.get(reason, str(reason))
        if reason < 0 and reason != PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT:
            raise LinearSolveError(f"KSP {ksp.getType()} failed: {name} after {its} iterations",
                                   name)
        return its, name

    def _check_sizes(self, objective: Objective) -> None:
        if (objective.n, objective.m, objective.m_local) != (self.n, self.m, self.m_local):
            raise ValueError(f"solver for n = {self.n}, m = {self.m} ({self.m_local} local rows) "
                             f"called with an objective of n = {objective.n}, m = {objective.m} "
                             f"({objective.m_local} local rows)")

    def _solve_direct(self, objective: Objective, lin: Linearization, lam: float
                      ) -> tuple[np.ndarray, SolveInfo]:
        """s = −Jᵀ(JJᵀ + λI)⁻¹F (m <= n and g = JᵀF) or s = −(JᵀJ + λI)⁻¹g, the smaller
        system formed and factorised on every rank."""
        comm, m, n = self.comm, self.m, self.n
        residual_side = lin.least_squares_gradient and m <= n
        key = "direct" if residual_side else "direct-normal"
        ksp, A, _, x, b = self._ksp.get(key) or self._make_ksp(key)
        G = A.getDenseArray()
        if residual_side:
            J = objective.jacobian_rows(lin)
            np.matmul(J, J.T, out=G)
            objective.flops.add_dense(2.0 * m * n * m)
            b.getArray()[:] = comm.allgather(lin.F, comm.block_counts(m))
        else:
            G[:] = objective.gram(lin)
            b.getArray()[:] = -lin.g
        G[np.diag_indices_from(G)] += lam
        A.assemble()
        ksp.setOperators(A)   # the values changed: factorise again
        self._in_lockstep(lambda: ksp.solve(b, x))
        its, name = self._outcome(ksp)
        k = G.shape[0]
        factor = {PETSc.PC.Type.CHOLESKY: k ** 3 / 3.0,
                  PETSc.PC.Type.LU: 2.0 * k ** 3 / 3.0}.get(ksp.getPC().getType(), 0.0)
        applications = its if ksp.getType() == PETSc.KSP.Type.PREONLY else its + 1
        objective.flops.add_dense(factor)
        objective.flops.add(2.0 * k * k * applications)
        if residual_side:
            lo, hi = comm.block_range(m)
            s = -objective.jac_t(lin, x.getArray(readonly=True)[lo:hi])
        else:
            s = x.getArray(readonly=True).copy()
        return s, SolveInfo("direct", its, name)

    def solve(self, objective: Objective, lin: Linearization, lam: float
              ) -> tuple[np.ndarray, SolveInfo]:
        """Return s ≈ −(JᵀJ + λI)⁻¹ g at ``lin`` and what the KSP did; the products are
        ``objective``'s."""
        self._check_sizes(objective)
        form = self.choose_form(lin)
        if form == "direct":
            return self._solve_direct(objective, lin, lam)
        s, info = self._solve_krylov(objective, lin, lam, form)
        if (self.pc == "auto" and self.active_pc == "none" and not self._auto_held
                and form in ("normal", "assembled") and info.iterations > self.auto_iterations
                and auto_may_precondition(self.n)):
            self._switch_on()
        return s, info

    def _solve_krylov(self, objective: Objective, lin: Linearization, lam: float, form: str
                      ) -> tuple[np.ndarray, SolveInfo]:
        """The CG solve of ``form`` (``normal``, ``residual`` or ``assembled``)."""
        ksp, A, ctx, x, b = self._ksp.get(form) or self._make_ksp(form)
        lo, hi = self.comm.block_range(self.n)
        if form == "assembled":
            G = objective.gram(lin)
            G[np.diag_indices_from(G)] += lam
            A.getDenseArray()[:] = G[lo:hi]
            A.assemble()
        else:
            ctx.objective, ctx.lin, ctx.lam = objective, lin, lam
        if self._pc_context is not None and form in ("normal", "assembled"):
            self._pc_context.bind(objective, lin, lam)
        ksp.setOperators(A)
        if form == "residual":
            b.getArray()[:] = lin.F
        else:
            b.getArray()[:] = -lin.g[lo:hi]
        x.set(0.0)
        self._in_lockstep(lambda: ksp.solve(b, x))
        its, name = self._outcome(ksp)
        if form == "assembled":  # one 2n² product per iteration, plus the initial residual
            objective.flops.add(2.0 * self.n ** 2 * (its + 1))
        if form == "residual":
            s = -objective.jac_t(lin, x.getArray(readonly=True))
        else:
            s = self.comm.allgather(x.getArray(readonly=True), self.counts)
        pc = ksp.getPC().getType()
        return s, SolveInfo(form, its, name, self.active_pc if pc == PETSc.PC.Type.PYTHON else pc)
