"""A method as the driver sees it: proposes a trial step, judges it, and keeps its state."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlpar.optim.common import LMParameters, Proposal, judge
from mlpar.protocols import Linearization, Objective, SubproblemSolver


class SingleLevelMethod:
    """A method whose every trial step is the Taylor step of ``step_rule`` on the trained
    network: LM with :func:`mlpar.optim.lm.taylor_step`, ARC with
    :func:`mlpar.optim.arc.cubic_step`.  The multilevel methods
    (:class:`mlpar.multilevel.recursion.MultilevelMethod`) change :meth:`propose`.
    """

    level = 0

    def __init__(self, objective: Objective, solver: SubproblemSolver, prm: LMParameters,
                 step_rule: Callable[..., Proposal]):
        self.objective = objective
        self.solver = solver
        self.prm = prm
        self.step_rule = step_rule

    def taylor_step(self, lin: Linearization, lam: float) -> Proposal:
        return self.step_rule(self.objective, self.solver, lin, lam, self.level)

    def state(self, lin: Linearization) -> dict[str, dict[str, np.ndarray]]:
        """The state of each stateful component at the current linearisation ``lin``,
        by component name (checkpointed)."""
        return {"solver": self.solver.state(lin)}

    def restore(self, components: dict[str, dict[str, np.ndarray]], lin: Linearization) -> None:
        """Take back what :meth:`state` gave (resume), at the linearisation ``lin``."""
        self.solver.restore(components.get("solver", {}), self.objective, lin)

    def level_widths(self) -> tuple[int, ...]:
        """The widths of the levels in use, the trained network first (see
        :class:`mlpar.optim.driver.Record`)."""
        return (self.objective.layout.width,)

    def propose(self, lin: Linearization, lam: float, iteration: int) -> Proposal:
        """The trial step of fine iteration ``iteration`` (0-based)."""
        return self.taylor_step(lin, lam)

    def iterate(self, lin: Linearization, lam: float, iteration: int
                ) -> tuple[Proposal, float, bool, float]:
        """One trial: return (proposal, ρ, accepted, new λ)."""
        prop = self.propose(lin, lam, iteration)
        rho, accepted, lam_new, _ = judge(self.objective, lin, prop, lam, self.prm)
        return prop, rho, accepted, lam_new
