"""Training problems of the seed as scaled least-squares residuals.

For a PDE D(u) = g on (0, 1) with u(0) = A, u(1) = B, training points z_1..z_t
and boundary penalty λ_p, the seed's loss is

    L(p) = 1/(2t) ( Σ_j (D(ĝ)(z_j) − g(z_j))² + λ_p ((ĝ(0) − A)² + (ĝ(1) − B)²) ).

We write it as L = ½‖F‖² with the m = t + 2 stacked residuals

    F_j     = (D(ĝ)(z_j) − g(z_j)) / √t                 j = 1..t
    F_{t+k} = √(λ_p / t) (ĝ(ζ_k) − U_k)                  ζ = (0, 1), U = (A, B)

and J = ∂F/∂p.  ``fit`` has D = identity, g = the target, and no boundary rows,
so its loss 1/(2t) Σ (ĝ(z_j) − y_j)² is half the seed's L2 loss.

Problems:

* ``poisson``:   −u'' = g,        u_T = cos νz              (g = ν² cos νz)
* ``helmholtz``: u'' + ν² u = 0,  u_T = sin νz + cos νz
* ``fit``:       ĝ ≈ y = cos νz

Rows are numbered globally (interior points first, then the boundary rows) so
that any contiguous block of rows can be evaluated on its own: this is how the
rows are distributed over MPI ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mlpar.model.network import Terms, apply_operator, operator_curvature, operator_jacobian

NAMES = ("poisson", "helmholtz", "fit")


@dataclass(frozen=True)
class Problem:
    """A linear 1D problem D(u) = g on (0, 1), with optional Dirichlet rows."""

    name: str
    nu: float
    terms: Terms
    rhs: Callable[[np.ndarray], np.ndarray]
    exact: Callable[[np.ndarray], np.ndarray]
    boundary: tuple[tuple[float, float], ...]


def make_problem(name: str, nu: float) -> Problem:
    """Return the seed's problem ``name`` at frequency ν."""
    if name == "poisson":
        def exact(z):
            return np.cos(nu * z)
        return Problem(name, nu, ((2, -1.0),), lambda z: nu ** 2 * np.cos(nu * z), exact,
                       ((0.0, 1.0), (1.0, math.cos(nu))))
    if name == "helmholtz":
        def exact(z):
            return np.sin(nu * z) + np.cos(nu * z)
        return Problem(name, nu, ((2, 1.0), (0, nu ** 2)), np.zeros_like, exact,
                       ((0.0, 1.0), (1.0, math.sin(nu) + math.cos(nu))))
    if name == "fit":
        def exact(z):
            return np.cos(nu * z)
        return Problem(name, nu, ((0, 1.0),), exact, exact, ())
    raise ValueError(f"unknown problem {name!r}; expected one of {', '.join(NAMES)}")


def default_point_count(nu: float) -> int:
    """Interior points of the equispaced grid with h = 1/(3ν) (Shannon): t = ⌈3ν⌉ − 1."""
    return max(1, math.ceil(3.0 * nu - 1e-12) - 1)


def training_points(t: int) -> np.ndarray:
    """The t equispaced interior points z_j = j/(t+1), j = 1..t, of (0, 1)."""
    return np.arange(1, t + 1) / (t + 1)


def test_points(count: int = 1000) -> np.ndarray:
    """``count`` equispaced points of [0, 1], endpoints included, for the RMSE."""
    return np.linspace(0.0, 1.0, count)


class ResidualBlock:
    """The residuals F_lo..F_{hi−1} (global row numbers) of one problem.

    Parameters
    ----------
    problem, activation : what is trained.
    t : number of interior training points (global).
    lambda_p : boundary penalty λ_p.
    lo, hi : the global rows this block owns, 0 <= lo <= hi <= m.
    """

    def __init__(self, problem: Problem, activation: str, t: int, lambda_p: float,
                 lo: int, hi: int):
        self.problem = problem
        self.activation = activation
        z = training_points(t)
        nb = len(problem.boundary)
        if not 0 <= lo <= hi <= t + nb:
            raise ValueError(f"row range [{lo}, {hi}) outside 0..{t + nb}")
        self.z = z[lo:min(hi, t)]
        self.target = problem.rhs(self.z)
        rows = range(max(lo, t), hi)
        self.z_bc = np.array([problem.boundary[j - t][0] for j in rows])
        self.u_bc = np.array([problem.boundary[j - t][1] for j in rows])
        self.scale = 1.0 / math.sqrt(t)
        self.scale_bc = math.sqrt(lambda_p / t)
        self.size = hi - lo
        # F = √c (D(ĝ) − g): the row scale folded into the operator and the data
        self.scaled_terms = tuple((k, self.scale * c) for k, c in problem.terms)
        self.scaled_target = self.scale * self.target
        self.scaled_terms_bc = ((0, self.scale_bc),)
        self.scaled_u_bc = self.scale_bc * self.u_bc

    @property
    def row_scale(self) -> np.ndarray:
        """√c_j for each row: F_j = √c_j r_j with c_j = 1/t inside, λ_p/t on the boundary."""
        return np.concatenate([np.full(self.z.size, self.scale),
                               np.full(self.z_bc.size, self.scale_bc)])

    def curvature(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Σ_j u_j ∇²F_j over the block's rows, as (6, r) blocks (see
        :func:`mlpar.network.operator_curvature`)."""
        k = self.z.size
        M = operator_curvature(self.activation, p, self.z, self.problem.terms,
                               self.scale * u[:k])
        if self.z_bc.size:
            M += operator_curvature(self.activation, p, self.z_bc, ((0, 1.0),),
                                    self.scale_bc * u[k:])
        return M

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """Return the block's residuals F_lo..F_{hi−1} at p."""
        F = np.empty(self.size)
        k = self.z.size
        F[:k] = apply_operator(self.activation, p, self.z, self.scaled_terms) - self.scaled_target
        if self.z_bc.size:
            F[k:] = (apply_operator(self.activation, p, self.z_bc, self.scaled_terms_bc)
                     - self.scaled_u_bc)
        return F

    def residuals_and_jacobian(self, p: np.ndarray, out: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (F, J) of the block at p, J of shape (hi − lo, 3r), column-major unless
        ``out`` says otherwise."""
        J = np.empty((self.size, p.size), order="F") if out is None else out
        F = np.empty(self.size)
        k = self.z.size
        values, _ = operator_jacobian(self.activation, p, self.z, self.scaled_terms, out=J[:k])
        F[:k] = values - self.scaled_target
        if self.z_bc.size:
            values, _ = operator_jacobian(self.activation, p, self.z_bc, self.scaled_terms_bc,
                                          out=J[k:])
            F[k:] = values - self.scaled_u_bc
        return F, J


def rmse(problem: Problem, activation: str, p: np.ndarray, z: np.ndarray) -> float:
    """Root-mean-square error sqrt(mean (ĝ(z) − u_T(z))²) on the points z."""
    err = apply_operator(activation, p, z, ((0, 1.0),)) - problem.exact(z)
    return float(np.sqrt(np.mean(err ** 2)))
