"""Choices of the recursion, in one PETSc-free place (the configuration takes its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

STRENGTHS = ("min", "abs")
"""Strength-of-connection norms of the AMG coarsening (:func:`mlpar.multilevel.amg.coarsen`)."""
INTERPOLATIONS = ("direct", "injection")
"""Interpolations of the AMG coarsening; here, not in :mod:`amg`, so that the configuration
names them without importing scipy.sparse and pyamg."""


@dataclass(frozen=True)
class MultilevelParameters:
    """Choices of the recursion (defaults chosen by experiment, docs/results.md)."""

    levels: int = 3
    min_width: int = 16
    coarse_max_iter: int = 5
    kappa_h: float = 0.1
    eps_h: float = 1e-8
    pre_smooth: int = 0
    post_smooth: int = 0
    theta: float = 0.25
    strength: str = "min"
    interpolation: str = "injection"
    coarse_start: str = "collect"
    coarse_model: str = "restricted"
    galerkin_basis: str = "orthonormal"
    rebuild_every: int = 40
    """The preconditioner's own coarse space (``lm --pc mg``); rlm rebuilds its hierarchy
    every :data:`RLM_REBUILD_EVERY`, rarc every :data:`RARC_REBUILD_EVERY` (the
    configuration resolves it per method)."""
    screen_age: int = 10
    model_choice: str = "cost"
    max_coarse_ratio: float = 0.8
    amg_couplings: int = 0
    """Couplings kept per neuron by the sparse AMG set-up (0: the dense r × r graph)."""
    amg_sample: int = 0
    """Training rows the neuron graph is estimated from (0: all)."""


#: rlm's default rebuild interval: with the choice weighing work (an AMG set-up costs 30–90
#: LM iterations at the seed's sizes), rebuilding every 400 iterations instead of 40 gave
#: median wall-time ratios lm/rlm 1.63 / 1.59 / 0.83 against 1.63 / 1.00 / 0.55 and flops
#: saves 3.57 / 2.20 / 1.25 against 3.54 / 1.67 / 0.92 on the seed's table (seeds 0–4, 2
#: ranks; docs/notes/2026-12-work.md).
RLM_REBUILD_EVERY = 400

#: rarc's default rebuild interval: 40 (rlm's until 2026-12-03) gave it less than 10 on the seed's table
#: (median flops save 1.27 / 1.14 / 0.67 against 1.42 / 1.12 / 0.87; docs/results.md).
RARC_REBUILD_EVERY = 10

#: From this width on, the configuration's default set-up is the sparse one, with
#: :data:`SPARSE_COUPLINGS` couplings per neuron (the dense graph needs (d + 3) r² numbers).
SPARSE_FROM_WIDTH = 2048
SPARSE_COUPLINGS = 64
