"""Recursive multilevel Levenberg–Marquardt (RLM / MLM, method.md §1).

Levels l = L (the trained network, width r_L) down to 0 are networks of widths
r_L > r_{L−1} > ... on the same training points.  Level l−1 is obtained from
level l by Ruge–Stüben coarsening of the neurons (:mod:`mlpar.multilevel.amg`), which
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
  the fine one does (:func:`mlpar.multilevel.amg.orthonormalized`);
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
The trial step is then judged by the ratio test of :mod:`mlpar.optim.common`, at
the level that asked for it.

The fine-level iterations follow a V-cycle pattern: ``pre_smooth`` Taylor
iterations, one recursive attempt, ``post_smooth`` Taylor iterations, repeated.
With ``model_choice = "cost"`` a recursive slot also weighs what each kind of
step has recently bought: decrease of log f per unit of work (:class:`CostAwareChoice`):
the seed's flops and, beside them, the evaluations of the network and the AMG set-up in
flop equivalents, which the seed's measure leaves out and a user's clock does not; and it
builds the hierarchy only when the Taylor steps would not gain a decade of the loss with the
set-up's work (from spread weights LM converges in fewer iterations than a set-up costs).

The same recursion drives the higher-order family: with the step rule
:func:`mlpar.optim.arc.cubic_step` (RARC) every level takes cubic-regularised
Taylor steps; its Galerkin coarse model is the second-order Taylor model
restricted to range(P) (:class:`mlpar.multilevel.models.GalerkinQuadratic`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlpar.multilevel.choice import CostAwareChoice
from mlpar.multilevel.hierarchy import Hierarchy
from mlpar.multilevel.models import CorrectedObjective
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.optim.common import LMParameters, Proposal, judge
from mlpar.optim.method import SingleLevelMethod
from mlpar.protocols import Linearization


class MultilevelMethod(SingleLevelMethod):
    """RLM (step rule: the LM Taylor step) or RARC (the cubic step): trial steps may come
    from the recursive coarse models of ``hierarchy``."""

    def __init__(self, objective, solver, prm: LMParameters, step_rule,
                 mprm: MultilevelParameters, hierarchy: Hierarchy):
        super().__init__(objective, solver, prm, step_rule)
        self.mprm = mprm
        self.hierarchy = hierarchy
        self.choice = CostAwareChoice() if mprm.model_choice == "cost" else None

    def state(self, lin: Linearization) -> dict[str, dict[str, np.ndarray]]:
        out = {**super().state(lin), "hierarchy": self.hierarchy.state(lin)}
        if self.choice is not None:
            out["choice"] = self.choice.state()
        return out

    def restore(self, components: dict[str, dict[str, np.ndarray]], lin: Linearization) -> None:
        self.hierarchy.restore(components.get("hierarchy", {}), lin)
        if self.choice is not None:
            self.choice.restore(components.get("choice", {}))
        super().restore(components, lin)

    def iterate(self, lin: Linearization, lam: float, iteration: int):
        """One trial; the trial's decrease and work (the seed's flops and the network's
        evaluations, :attr:`mlpar.protocols.FlopCounter.work`) feed the cost-aware choice."""
        work_before = self.objective.flops.work
        prop, rho, accepted, lam_new = super().iterate(lin, lam, iteration)
        if self.choice is not None and self.recursive_slot(iteration):
            f_after = lin.f - rho * prop.pred if accepted else lin.f
            self.choice.record("coarse" if prop.level > 0 else "taylor", lin.f, f_after,
                               self.objective.flops.work - work_before)
        return prop, rho, accepted, lam_new

    def level_widths(self) -> tuple[int, ...]:
        """The widths of the current hierarchy, the trained network first, padded with 0 up to
        ``levels`` (a level that coarsening did not produce, or no hierarchy built yet)."""
        widths = self.hierarchy.widths
        return tuple(widths) + (0,) * (self.mprm.levels - len(widths))

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
                elif self._screened_out(lin, iteration) or not self._worth_building(h):
                    return self.taylor_step(lin, lam)
                else:
                    h.build(lin, iteration)
            if h.levels:
                prop = self._recursive_step(0, self.objective, lin, lam)
                if prop is not None:
                    return prop
        return self.taylor_step(lin, lam)

    def _worth_building(self, h: Hierarchy) -> bool:
        """Whether the AMG set-up pays for itself against the Taylor steps' recent progress
        (:meth:`CostAwareChoice.worth_building`; always under the seed's choice)."""
        return self.choice is None or self.choice.worth_building(h.setup_work())

    def _screened_out(self, lin: Linearization, iteration: int) -> bool:
        """Whether a due rebuild can be skipped: the hierarchy at hand, built fewer than
        ``screen_age`` iterations ago, already finds the coarse model not useful at g.
        The neuron graph moves little between nearby iterates, so the AMG set-up (which
        costs several LM iterations when m is small) is then spent only when the coarse
        model stands a chance; an older hierarchy is rebuilt and tested afresh."""
        h = self.hierarchy
        age = self.mprm.screen_age
        return (bool(h.levels) and 0 < iteration - h.built_at < age
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
            lin0 = dataclasses.replace(lin0, g=Rg.copy(), least_squares_gradient=False)
        y, h_y, successes, ksp_its, last = self._minimize(j + 1, coarse, h.levels[j].solver,
                                                          lin0, lam)
        if successes == 0:
            return None
        return Proposal(h.prolong(j, y - y0), lin0.f - h_y, j + 1, ksp_its, last.ksp_reason,
                        pc=last.pc, exact=coarse.exact_decrease, f_trial=h_y)

    def _minimize(self, depth: int, objective, solver, lin: Linearization, lam: float
                  ) -> tuple[np.ndarray, float, int, int, Proposal | None]:
        """Approximately minimise a coarse model from ``lin``; (y, its value there, successes,
        KSP iterations, the last proposal: its solve's reason and preconditioner)."""
        successes = ksp_total = 0
        last = None
        x, f_x = lin.x, lin.f
        for _ in range(self.mprm.coarse_max_iter):
            if lin is None:
                lin = objective.linearize(x)
            if float(np.linalg.norm(lin.g)) <= self.mprm.eps_h:
                break
            prop = None
            if depth < len(self.hierarchy.levels):
                prop = self._recursive_step(depth, objective, lin, lam)
            if prop is None:
                prop = self.step_rule(objective, solver, lin, lam, depth)
            ksp_total += prop.ksp_its
            last = prop
            _, accepted, lam, f_trial = judge(objective, lin, prop, lam, self.prm)
            if accepted:
                successes += 1
                x, f_x, lin = lin.x + prop.s, f_trial, None
        return x, f_x, successes, ksp_total, last
