"""Coarse spaces of the neuron hierarchy for the two-level preconditioner of the LM step.

The preconditioner (:class:`mlpar.linalg.preconditioner.TwoLevel`) lives in the
linear-algebra layer and takes its coarse space as data: a callable
(objective, lin) ↦ P_full (n × n_c, sparse) or None.  The callables here give it
the AMG coarsening of this layer (:mod:`mlpar.multilevel.amg`), so linalg never
imports multilevel:

* :class:`RebuiltNeuronSpace` for a single-level method (``lm``): its own
  Ruge–Stüben coarsening of the trained network's neurons, rebuilt every N solves;
* :class:`HierarchySpace` for every level of ``rlm``: the transfer of the level
  below it in the method's :class:`mlpar.multilevel.hierarchy.Hierarchy` (none on
  the coarsest level, or before the hierarchy is first built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.protocols import Linearization

if TYPE_CHECKING:   # the hierarchy (scipy.sparse, pyamg) is imported when a space is built
    from mlpar.multilevel.hierarchy import Hierarchy


_ELSEWHERE = object()   # RebuiltNeuronSpace.built_from of a coarsening restored from elsewhere


class RebuiltNeuronSpace:
    """P_full of one Ruge–Stüben coarsening of the neurons at the current linearisation,
    rebuilt when ``rebuild_every`` solves (0: never) have used it and the point has moved
    (a rejected LM step re-solves at the same point)."""

    def __init__(self, prm: MultilevelParameters, rebuild_every: int):
        self.prm = prm
        self.rebuild_every = rebuild_every
        self.P = None
        self.built_from: Linearization | None = None
        self.solves = 0

    def __call__(self, objective, lin: Linearization):
        due = self.built_from is None or (self.rebuild_every > 0
                                          and self.solves >= self.rebuild_every)
        if due and lin is not self.built_from:
            from mlpar.multilevel.hierarchy import neuron_transfer
            transfer = neuron_transfer(objective, lin, self.prm)
            self.P = None if transfer is None else transfer.P_full
            self.built_from, self.solves = lin, 0
        self.solves += 1
        return self.P

    def state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """P_full, the solves that used it and whether it was built at ``lin`` (checkpointed,
        so that a resumed run rebuilds when the uninterrupted one would); empty before the
        first coarsening."""
        if self.built_from is None:
            return {}
        out = {"space_solves": np.array([self.solves]),
               "space_built_here": np.array([int(self.built_from is lin)])}
        if self.P is not None:
            from mlpar.multilevel.hierarchy import sparse_arrays
            out.update(sparse_arrays("space_P", self.P))
        return out

    def restore(self, arrays: dict[str, np.ndarray], lin: Linearization) -> None:
        """Take back what :meth:`state` gave, at the linearisation ``lin``."""
        if "space_solves" not in arrays:
            return
        from mlpar.multilevel.hierarchy import sparse_from_arrays
        self.solves = int(arrays["space_solves"][0])
        # a coarsening made elsewhere only needs to differ from every later linearisation
        self.built_from = lin if arrays["space_built_here"][0] else _ELSEWHERE
        self.P = (sparse_from_arrays("space_P", arrays) if "space_P_data" in arrays else None)


class HierarchySpace:
    """P_full of the hierarchy's level just below the level of the objective at hand (found by
    its width: the widths of a hierarchy decrease strictly), or None below the coarsest.

    Until the hierarchy has a level below the trained network (the cost-aware choice may take
    Taylor steps before the first recursive attempt builds it), the trained network's solves
    take the coarse space of ``fallback`` (a :class:`RebuiltNeuronSpace`) instead."""

    def __init__(self, hierarchy: Hierarchy, fallback: RebuiltNeuronSpace | None = None):
        self.hierarchy = hierarchy
        self.fallback = fallback

    def __call__(self, objective, lin: Linearization):
        widths = self.hierarchy.widths
        width = objective.layout.width
        depth = widths.index(width) if width in widths else len(widths)
        levels = self.hierarchy.levels
        if depth < len(levels):
            return levels[depth].transfer.P_full
        if depth == 0 and self.fallback is not None:
            return self.fallback(objective, lin)
        return None

    def state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """The fallback's state (the hierarchy checkpoints itself)."""
        return {} if self.fallback is None else self.fallback.state(lin)

    def restore(self, arrays: dict[str, np.ndarray], lin: Linearization) -> None:
        if self.fallback is not None:
            self.fallback.restore(arrays, lin)
