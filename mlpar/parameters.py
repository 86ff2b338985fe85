"""Constants of the methods, in one PETSc-free place (the configuration takes its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LMParameters:
    """Constants of the ratio test and the λ update (defaults: method.md §1.5)."""

    eta1: float = 0.1
    eta2: float = 0.75
    gamma1: float = 0.85
    gamma2: float = 0.5
    gamma3: float = 1.5
    lambda0: float = 0.05
    lambda_min: float = 1e-6
    lambda_max: float = 1e12
    max_rejections: int = 60

    def __post_init__(self):
        if not 0 < self.eta1 <= self.eta2 < 1:
            raise ValueError("need 0 < eta1 <= eta2 < 1")
        if not 0 < self.gamma2 <= self.gamma1 < 1 < self.gamma3:
            raise ValueError("need 0 < gamma2 <= gamma1 < 1 < gamma3")
        if not 0 < self.lambda_min <= self.lambda0 < self.lambda_max:
            raise ValueError("need 0 < lambda_min <= lambda0 < lambda_max")


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
    """rlm's; rarc keeps :data:`RARC_REBUILD_EVERY` (the configuration resolves it per method)."""
    screen_age: int = 10
    model_choice: str = "cost"
    max_coarse_ratio: float = 0.8


#: rarc's default rebuild interval: 40, rlm's, gave it less than 10 on the seed's table
#: (median flops save 1.27 / 1.14 / 0.67 against 1.42 / 1.12 / 0.87; docs/results.md).
RARC_REBUILD_EVERY = 10
