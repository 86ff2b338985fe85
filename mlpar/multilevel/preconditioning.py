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

from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.protocols import Linearization

if TYPE_CHECKING:   # the hierarchy (scipy.sparse, pyamg) is imported when a space is built
    from mlpar.multilevel.hierarchy import Hierarchy


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
