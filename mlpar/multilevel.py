"""Recursive multilevel Levenberg–Marquardt (RLM / MLM, method.md §1).

Levels l = L (the trained network, width r_L) down to 0 are networks of widths
r_L > r_{L−1} > ... on the same training points.  Level l−1 is obtained from
level l by Ruge–Stüben coarsening of the neurons (:mod:`mlpar.amg`), which
gives the prolongation P_l (r_l × r_{l−1}, applied to each of v, w, b) and the
restriction R_l = α P_lᵀ.

At an iterate x_k of level l with gradient g = ∇h^l(x_k), the coarse model is
taken only when it is *useful*: ‖R g‖ ≥ κ_H ‖g‖ and ‖R g‖ > ε_H.  Two coarse
models are offered (``coarse_model``):

* ``network`` (the seed's): the narrower network f^{l−1} started at x_0 (the
  C-neurons' w, b with v_H = Pᵀv, "collect"; or injection, or Rx_k), with the
  first-order correction

      h^{l−1}(y) = f^{l−1}(y) + (R g − ∇f^{l−1}(x_0))ᵀ (y − x_0),

  so that ∇h^{l−1}(x_0) = R g;
* ``galerkin`` (default): h^{l−1}(s) = ½‖F + J P s‖² from s = 0, the level's
  Gauss–Newton model restricted to range(P), coherent to second order; by default
  on an orthonormal basis Q of range(P), so that the coarse λ‖s‖² regularises as
  the fine one does (:func:`mlpar.amg.orthonormalized`);
* ``restricted``: h^{l−1}(y) = f^l(x_k + P y) from y = 0, the level's own loss on
  the affine subspace x_k + range(P) (same basis choice), coherent to every order:
  its coarse iterations are nonlinear (each one re-linearises the level's network)
  and the predicted reduction of the resulting step is the actual one (ρ = 1), so
  an accepted recursive step leaves the λ of the level that took it unchanged.

The coarse model is minimised approximately by the same
method (recursively), starting from λ_0 = λ_k, for at most ``coarse_max_iter``
iterations or until ‖∇h^{l−1}‖ ≤ ε_H.  If at least one coarse iteration
succeeded, the fine trial step is s = P (x_* − x_0) with predicted reduction
h^{l−1}(x_0) − h^{l−1}(x_*); otherwise the level falls back to a Taylor step.
The trial step is then judged by the ratio test of :mod:`mlpar.lm`, at the
level that asked for it.

The fine-level iterations follow a V-cycle pattern: ``pre_smooth`` Taylor
iterations, one recursive attempt, ``post_smooth`` Taylor iterations, repeated.
With ``model_choice = "cost"`` a recursive slot also weighs what each kind of
step has recently bought: decrease of log f per flop (:class:`CostAwareChoice`).

The same recursion drives the higher-order family: :class:`MultilevelARC`
(RARC) takes cubic-regularised Taylor steps (:mod:`mlpar.arc`) on every level;
its Galerkin coarse model is the second-order Taylor model restricted to
range(P) (:class:`mlpar.secondorder.GalerkinQuadratic`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.sparse as sp

from mlpar import amg
from mlpar.arc import cubic_step
from mlpar.comm import Comm
from mlpar.leastsquares import LeastSquares, Linearization, RestrictedObjective
from mlpar.lm import LevenbergMarquardt, LMParameters, Proposal, judge
from mlpar.parameters import MultilevelParameters


class CorrectedObjective:
    """h(y) = f(y) + δᵀ(y − y_0): a coarse objective with first-order correction."""

    coherent = False

    def __init__(self, base: LeastSquares, y0: np.ndarray, delta: np.ndarray):
        self.base = base
        self.y0 = y0
        self.delta = delta
        self.comm, self.flops, self.m, self.n = base.comm, base.flops, base.m, base.n

    @property
    def m_local(self) -> int:
        return self.base.m_local

    def value(self, y: np.ndarray) -> float:
        return self.base.value(y) + float(self.delta @ (y - self.y0))

    def linearize(self, y: np.ndarray) -> Linearization:
        lin = self.base.linearize(y)
        lin.f += float(self.delta @ (y - self.y0))
        lin.g = lin.g + self.delta
        lin.least_squares_gradient = False
        return lin

    def jac(self, lin, s):
        return self.base.jac(lin, s)

    def jac_t(self, lin, y):
        return self.base.jac_t(lin, y)

    def gauss_newton_curvature(self, lin, s):
        return self.base.gauss_newton_curvature(lin, s)

    def hessvec(self, lin, s):
        """∇²h = ∇²f: the correction is linear."""
        return self.base.hessvec(lin, s)


class Hierarchy:
    """The coarse levels below the trained network: transfers, objectives, solvers.

    ``transfers[j]`` maps level L−j−1 to level L−j (P of size r_{L−j} × r_{L−j−1});
    ``objectives[j]`` and ``solvers[j]`` are those of level L−j−1.  Rank 0
    coarsens and broadcasts, so every rank holds the same operators.
    """

    def __init__(self, fine, make_solver: Callable, prm: MultilevelParameters):
        self.fine = fine
        self.comm: Comm = fine.comm
        self.make_solver = make_solver
        self.prm = prm
        self.transfers: list[amg.Transfer] = []
        self.objectives: list = []
        self.solvers: list = []
        self.built_at = -1
        self.built_from: Linearization | None = None

    def destroy(self) -> None:
        for solver in self.solvers:
            solver.destroy()
        self.transfers, self.objectives, self.solvers = [], [], []

    @property
    def widths(self) -> list[int]:
        return [self.fine.n // 3] + [t.widths[1] for t in self.transfers]

    def _transfer_at(self, lin: Linearization) -> amg.Transfer | None:
        """Coarsen the neurons of the network linearised in ``lin`` (None: no coarser level)."""
        r = lin.x.size // 3
        blocks = self.comm.sum_to_root(amg.gram_blocks(lin.J, r))
        transfer = None
        if blocks is not None:
            A = amg.auxiliary_matrix(blocks)
            transfer = amg.coarsen(A, theta=self.prm.theta, strength=self.prm.strength,
                                   interpolation=self.prm.interpolation)
            if amg.stalled(transfer, self.prm.max_coarse_ratio) or transfer.widths[1] < 1:
                transfer = None
            elif self.prm.coarse_model != "network" and self.prm.galerkin_basis == "orthonormal":
                transfer = amg.orthonormalized(transfer)
        return self.comm.bcast(transfer)

    def build(self, lin: Linearization, iteration: int) -> None:
        """Build every level below the fine one from the linearisation ``lin`` at x_k."""
        self.destroy()
        self.built_at = iteration
        self.built_from = lin
        objective = self.fine
        while len(self.transfers) + 1 < self.prm.levels and lin.x.size // 3 > self.prm.min_width:
            transfer = self._transfer_at(lin)
            if transfer is None:
                break
            self._add_level(transfer)
            if len(self.transfers) + 1 < self.prm.levels:
                objective, y0 = self.coarse_model(len(self.transfers) - 1, objective, lin)
                lin = objective.linearize(y0)

    def export(self) -> dict[str, np.ndarray]:
        """The hierarchy as named arrays (checkpoint ``method_state``); empty if none is built.
        A resumed run needs it even when it is rebuilt at every recursive attempt: the
        screening of the next rebuild (:meth:`MultilevelLM._screened_out`) reads it."""
        if self.built_at < 0:
            return {}
        out = {"built_at": np.array([self.built_at])}
        for j, t in enumerate(self.transfers):
            out.update({f"P{j}_data": t.P.data, f"P{j}_indices": t.P.indices,
                        f"P{j}_indptr": t.P.indptr, f"P{j}_shape": np.array(t.P.shape),
                        f"P{j}_coarse": t.coarse, f"P{j}_alpha": np.array([t.alpha])})
        return out

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the levels exported by :meth:`export` (so a resumed run reuses them)."""
        self.destroy()
        if "built_at" not in arrays:
            return
        self.built_at = int(arrays["built_at"][0])
        j = 0
        while f"P{j}_data" in arrays:
            P = sp.csr_matrix((arrays[f"P{j}_data"], arrays[f"P{j}_indices"],
                               arrays[f"P{j}_indptr"]), shape=tuple(arrays[f"P{j}_shape"]))
            t = amg.Transfer(P, arrays[f"P{j}_coarse"], float(arrays[f"P{j}_alpha"][0]))
            self._add_level(t)
            j += 1

    def _add_level(self, transfer: amg.Transfer) -> None:
        base = self.fine.narrower(3 * transfer.widths[1])
        self.transfers.append(transfer)
        self.objectives.append(base)
        self.solvers.append(self.make_solver(base))

    def coarse_model(self, j: int, objective, lin: Linearization):
        """The coarse objective of level L−j−1 at the linearisation ``lin`` of ``objective``
        (level L−j), and its x_0.

        ``galerkin``: the level's Taylor model restricted to range(P), from s = 0
        (``objective.galerkin``).  ``network``: the narrower network f^{l−1} from x_0
        (see :meth:`start`); the caller adds the first-order correction.
        """
        if self.prm.coarse_model != "network":
            t = self.transfers[j]
            model = objective.galerkin if self.prm.coarse_model == "galerkin" else objective.restricted
            return model(lin, t), np.zeros(3 * t.widths[1])
        return self.objectives[j], self.start(j, lin.x)

    def start(self, j: int, x: np.ndarray) -> np.ndarray:
        """The coarse starting point x_0 of level L−j−1 from the level-(L−j) iterate x."""
        t = self.transfers[j]
        self._charge(t)
        if self.prm.coarse_start == "injection":
            return t.inject(x)
        return t.collect(x) if self.prm.coarse_start == "collect" else t.restrict(x)

    def restrict(self, j: int, g: np.ndarray) -> np.ndarray:
        self._charge(self.transfers[j])
        return self.transfers[j].restrict(g)

    def prolong(self, j: int, y: np.ndarray) -> np.ndarray:
        self._charge(self.transfers[j])
        return self.transfers[j].prolong(y)

    def _charge(self, t: amg.Transfer) -> None:
        """A transfer applies P or Pᵀ to the three parameter blocks: 2·3·nnz(P) flops."""
        self.fine.flops.add(6.0 * t.P.nnz)


class CostAwareChoice:
    """Which model pays at a recursive slot: the coarse one or the Taylor one.

    A *trial* of a kind k (Taylor, recursive) is its consecutive steps up to and
    including the first accepted one, at most ``patience`` steps: the rejections
    before an acceptance are how LM adapts λ, part of the price of that step,
    not a verdict on the kind.  For each kind the choice keeps the decayed sums
    D_k = Σ β^a log(f_before/f_after) and C_k = Σ β^a flops over its past trials
    (a trial that ends without acceptance adds its cost and no decrease), and takes
    the kind of larger efficiency D_k/C_k.  Each kind is tried once before the
    comparison starts (the Taylor one first), and a kind refused ``retry`` slots in
    a row is tried again, so that both estimates follow the iteration; each retry
    that does not win the comparison back doubles that kind's wait, so a kind that
    keeps losing costs O(log k) trials over k slots.  The relative (log) decrease
    makes trials made at different losses comparable.
    """

    KINDS = ("taylor", "coarse")

    def __init__(self, decay: float = 0.5, retry: int = 8, patience: int = 4):
        self.decay = decay
        self.retry = retry
        self.patience = patience
        self.sums = np.full((2, 2), np.nan)   # rows: kinds; columns: D, C
        self.refused = np.zeros(2, dtype=int)   # slots in a row each kind was not taken
        self.wait = np.full(2, retry)           # slots a refused kind waits for a retry
        self.open = np.array([-1.0, 0.0, 0.0, 0.0])   # trial under way: kind, f_before, C, steps

    def prefers_coarse(self) -> bool:
        """Whether the next recursive slot should try the coarse model."""
        if self.open[0] >= 0:
            return self.open[0] == 1
        unknown = np.isnan(self.sums[:, 1])
        if unknown[0] or self.refused[0] >= self.wait[0]:
            return False
        if unknown[1] or self.refused[1] >= self.wait[1]:
            return True
        return self._coarse_is_cheaper()

    def _coarse_is_cheaper(self) -> bool:
        (d_t, c_t), (d_c, c_c) = self.sums
        return bool(d_c * c_t >= d_t * c_c)

    def record(self, kind: str, f_before: float, f_after: float, flops: float) -> None:
        """Account one step of ``kind``; f_after = f_before if it was rejected.  A step of
        the other kind than the open trial's (the coarse model asked for, but not useful)
        closes that trial without decrease."""
        k = self.KINDS.index(kind)
        if self.open[0] >= 0 and self.open[0] != k:
            self._close(f_after=self.open[1])
        if self.open[0] < 0:
            self.open[:] = (k, f_before, 0.0, 0.0)
        self.open[2:] += (flops, 1.0)
        if f_after < f_before or self.open[3] >= self.patience:
            self._close(f_after)

    def _close(self, f_after: float) -> None:
        k, f_before, flops, _ = self.open
        k = int(k)
        gain = math.log(f_before / f_after) if f_after > 0 and f_before > f_after else 0.0
        retried = self.refused[k] >= self.wait[k]
        self.sums[k] = self.decay * np.nan_to_num(self.sums[k]) + (gain, flops)
        if not np.isnan(self.sums).any():
            if self._coarse_is_cheaper() == (k == 1):
                self.wait[k] = self.retry
            elif retried:
                self.wait[k] *= 2
        self.refused[k] = 0
        self.refused[1 - k] += 1
        self.open[:] = (-1.0, 0.0, 0.0, 0.0)

    def export(self) -> np.ndarray:
        return np.concatenate([self.sums.ravel(), self.refused, self.wait, self.open])

    def restore(self, array: np.ndarray) -> None:
        """The state :meth:`export` gave; a checkpoint written before trials lasted to their
        first acceptance holds only the sums and refusals, and resumes with no trial open."""
        self.sums = np.array(array[:4], dtype=float).reshape(2, 2)
        self.refused = np.array(array[4:6], dtype=int)
        if len(array) >= 12:
            self.wait = np.array(array[6:8], dtype=int)
            self.open = np.array(array[8:12], dtype=float)


class MultilevelLM(LevenbergMarquardt):
    """RLM: LM whose trial steps may come from the recursive coarse models."""

    def __init__(self, objective, solver, prm: LMParameters,
                 mprm: MultilevelParameters, hierarchy: Hierarchy):
        super().__init__(objective, solver, prm)
        self.mprm = mprm
        self.hierarchy = hierarchy
        self.choice = CostAwareChoice() if mprm.model_choice == "cost" else None

    def export_state(self, lin: Linearization) -> dict[str, np.ndarray]:
        out = {**self.hierarchy.export(), **super().export_state(lin)}
        if self.choice is not None:
            out["model_choice"] = self.choice.export()
        return out

    def import_state(self, arrays: dict[str, np.ndarray], lin: Linearization) -> None:
        self.hierarchy.restore(arrays)
        if self.choice is not None and "model_choice" in arrays:
            self.choice.restore(arrays["model_choice"])
        super().import_state(arrays, lin)

    def iterate(self, lin: Linearization, lam: float, iteration: int):
        """One trial; a recursive step of the ``restricted`` model (whose predicted
        reduction is the actual one, ρ = 1) leaves λ as it was, and the trial's
        decrease and cost feed the cost-aware choice."""
        flops_before = self.objective.flops.total
        prop, rho, accepted, lam_new = super().iterate(lin, lam, iteration)
        lam_new = self._lambda_after(prop, accepted, lam, lam_new)
        if self.choice is not None and self.recursive_slot(iteration):
            f_after = lin.f - rho * prop.pred if accepted else lin.f
            self.choice.record("coarse" if prop.level > 0 else "taylor", lin.f, f_after,
                               self.objective.flops.total - flops_before)
        return prop, rho, accepted, lam_new

    def level_widths(self) -> tuple[int, ...]:
        """The widths of the current hierarchy, the trained network first, padded with 0 up to
        ``levels`` (a level that coarsening did not produce, or no hierarchy built yet)."""
        widths = self.hierarchy.widths
        return tuple(widths) + (0,) * (self.mprm.levels - len(widths))

    @staticmethod
    def _lambda_after(prop: Proposal, accepted: bool, lam: float, lam_new: float) -> float:
        """The λ a level continues with after judging ``prop``: ``lam_new`` from the ratio
        test, except that an accepted step of the restricted model from the level below keeps
        ``lam``.  Such a step carries the loss it reached (``f_trial``), so its predicted
        reduction is the actual one (ρ = 1), which says nothing about how well the Taylor
        model fits; on the fine level and on every coarse level alike."""
        return lam if accepted and prop.f_trial is not None else lam_new

    def recursive_slot(self, iteration: int) -> bool:
        """Whether fine iteration k is the recursive slot of the V-cycle pattern
        (pre_smooth Taylor iterations, one recursive attempt, post_smooth Taylor)."""
        period = self.mprm.pre_smooth + 1 + self.mprm.post_smooth
        return self.mprm.levels > 1 and iteration % period == self.mprm.pre_smooth

    def propose(self, lin: Linearization, lam: float, iteration: int) -> Proposal:
        if self.recursive_slot(iteration) and (self.choice is None
                                               or self.choice.prefers_coarse()):
            h = self.hierarchy
            every = self.mprm.rebuild_every
            if h.built_at < 0 or (every > 0 and iteration - h.built_at >= every):
                if h.built_from is lin:   # rejected step: same point, same hierarchy
                    h.built_at = iteration
                elif self._screened_out(lin, iteration):
                    return self.taylor_step(lin, lam)
                else:
                    h.build(lin, iteration)
            if h.transfers:
                prop = self._recursive_step(0, self.objective, lin, lam)
                if prop is not None:
                    return prop
        return self.taylor_step(lin, lam)

    def _screened_out(self, lin: Linearization, iteration: int) -> bool:
        """Whether a due rebuild can be skipped: the hierarchy at hand, built fewer than
        ``screen_age`` iterations ago, already finds the coarse model not useful at g.
        The neuron graph moves little between nearby iterates, so the AMG set-up (which
        costs several LM iterations when m is small) is then spent only when the coarse
        model stands a chance; an older hierarchy is rebuilt and tested afresh."""
        h = self.hierarchy
        age = self.mprm.screen_age
        return (bool(h.transfers) and 0 < iteration - h.built_at < age
                and self._useful(0, lin.g) is None)

    def _useful(self, j: int, g: np.ndarray) -> np.ndarray | None:
        """R g if the coarse model of level L−j−1 is useful at g, else None."""
        Rg = self.hierarchy.restrict(j, g)
        norm_Rg = float(np.linalg.norm(Rg))
        if norm_Rg >= self.mprm.kappa_h * float(np.linalg.norm(g)) and norm_Rg > self.mprm.eps_h:
            return Rg
        return None

    def _recursive_step(self, j: int, objective, lin: Linearization, lam: float
                        ) -> Proposal | None:
        """Try the coarse model below level L−j (whose objective is linearised in ``lin``);
        None if it is not useful or no coarse iteration succeeded."""
        h = self.hierarchy
        Rg = self._useful(j, lin.g)
        if Rg is None:
            return None
        coarse, y0 = h.coarse_model(j, objective, lin)
        lin0 = coarse.linearize(y0)
        if not coarse.coherent:  # first-order correction
            coarse = CorrectedObjective(coarse, y0, Rg - lin0.g)
            lin0.g = Rg.copy()
            lin0.least_squares_gradient = False
        y, h_y, successes, ksp_its = self._minimize(j + 1, coarse, h.solvers[j], lin0, lam)
        if successes == 0:
            return None
        # the restricted model's value is the level's own loss at x + P y: known, not re-evaluated
        known = h_y if isinstance(coarse, RestrictedObjective) else None
        return Proposal(h.prolong(j, y - y0), lin0.f - h_y, j + 1, ksp_its, f_trial=known)

    def _minimize(self, depth: int, objective, solver, lin: Linearization, lam: float
                  ) -> tuple[np.ndarray, float, int, int]:
        """Approximately minimise a coarse model from ``lin``; (y, its value there, successes,
        KSP iterations)."""
        successes = ksp_total = 0
        x, f_x = lin.x, lin.f
        for _ in range(self.mprm.coarse_max_iter):
            if lin is None:
                lin = objective.linearize(x)
            if float(np.linalg.norm(lin.g)) <= self.mprm.eps_h:
                break
            prop = None
            if depth < len(self.hierarchy.transfers):
                prop = self._recursive_step(depth, objective, lin, lam)
            if prop is None:
                prop = self.step(objective, solver, lin, lam, depth)
            ksp_total += prop.ksp_its
            _, accepted, lam_new, f_trial = judge(objective, lin, prop, lam, self.prm)
            lam = self._lambda_after(prop, accepted, lam, lam_new)
            if accepted:
                successes += 1
                x, f_x, lin = lin.x + prop.s, f_trial, None
        return x, f_x, successes, ksp_total


class MultilevelARC(MultilevelLM):
    """RARC: the recursion of RLM with cubic-regularised (q = 2) steps on every level."""

    step = staticmethod(cubic_step)
