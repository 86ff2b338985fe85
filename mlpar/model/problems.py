"""Training problems of the seed as scaled least-squares residuals, in d = 1, 2, 3 dimensions.

For a PDE D(u) = g on Ω = (0, 1)ᵈ with Dirichlet data u = U on ∂Ω, T interior
training points z_1..z_T, boundary points ζ_1..ζ_B and boundary penalty λ_p, the
loss is the seed's

    L(p) = 1/(2T) ( Σ_j (D(ĝ)(z_j) − g(z_j))² + λ_p Σ_k (ĝ(ζ_k) − U(ζ_k))² )

(d = 1: ζ = (0, 1), B = 2).  We write it as L = ½‖F‖² with the m = T + B stacked residuals

    F_j     = (D(ĝ)(z_j) − g(z_j)) / √T                 j = 1..T
    F_{T+k} = √(λ_p / T) (ĝ(ζ_k) − U(ζ_k))               k = 1..B

and J = ∂F/∂p.  ``fit`` has D = identity, g = the target, and no boundary rows,
so its loss 1/(2T) Σ (ĝ(z_j) − y_j)² is half the seed's L2 loss.

Problems (x, y, z the coordinates for d > 1):

* ``poisson``:     −u'' = g,            u_T = cos νz              (g = ν² cos νz)
* ``helmholtz``:   u'' + ν² u = 0,      u_T = sin νz + cos νz
* ``fit``:         ĝ ≈ y = cos νz
* ``poisson2d``:   −Δu = g on (0, 1)²,  u_T = sin νx sin νy       (g = 2ν² u_T)
* ``poisson3d``:   −Δu = g on (0, 1)³,  u_T = sin νx sin νy sin νz (g = 3ν² u_T)
* ``helmholtz2d``: Δu + k²u = g on (0, 1)², u_T = sin a₁πx sin a₂πy
  (g = (k² − π²(a₁² + a₂²)) u_T; a₁ = 1, a₂ = 4, k = 1 by default, the PINN benchmark)

ν keeps its 1-D meaning (radians per unit length) in every dimension.

Training points for d > 1, with t = ``--points`` points per dimension: the
tensor grid of spacing h = 1/(t + 1),

    interior  z = (i₁h, …, i_dh),  1 ≤ i_l ≤ t                    T = tᵈ points
    boundary  the grid points (i₁h, …, i_dh), 0 ≤ i_l ≤ t + 1, with some i_l ∈ {0, t+1}
              (every face, each edge and corner once)             B = (t+2)ᵈ − tᵈ points

each set in lexicographic order (the last coordinate fastest).  Rows are
numbered globally, interior points first, then the boundary rows, so that any
contiguous block of rows can be evaluated on its own: this is how the rows are
distributed over MPI ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mlpar.model.network import Terms, apply_operator, operator_curvature, operator_jacobian

NAMES = ("poisson", "helmholtz", "fit", "poisson2d", "poisson3d", "helmholtz2d")
INPUT_DIMS = {"poisson2d": 2, "poisson3d": 3, "helmholtz2d": 2}
"""The input dimension d of each problem that is not one-dimensional."""
PROJECTED_BLOCK_ENTRIES = 1 << 22
"""Entries of J formed at once by :meth:`ResidualBlock.residuals_and_projected_jacobian`
(32 MB): bounded, where J itself may not fit twice in memory."""


def input_dim(name: str) -> int:
    """The dimension d of the domain (0, 1)ᵈ of problem ``name``."""
    return INPUT_DIMS.get(name, 1)


@dataclass(frozen=True)
class Problem:
    """A linear problem D(u) = g on (0, 1)ᵈ, with optional Dirichlet rows.

    Functions of the points take an array of shape (m,) for d = 1 and (m, d) otherwise.
    ``boundary`` lists the 1-D Dirichlet pairs (z, u(z)); for d > 1 it is empty and
    the boundary rows are the grid points on ∂Ω with the data ``exact`` there
    (``dirichlet``)."""

    name: str
    nu: float
    terms: Terms
    rhs: Callable[[np.ndarray], np.ndarray]
    exact: Callable[[np.ndarray], np.ndarray]
    boundary: tuple[tuple[float, float], ...]
    input_dim: int = 1
    dirichlet: bool = False
    frequency: float = 0.0
    """The highest angular frequency of u_T along an axis (sets the default point count)."""


def make_problem(name: str, nu: float, a1: float = 1.0, a2: float = 4.0, k: float = 1.0
                 ) -> Problem:
    """Return the problem ``name`` at frequency ν (helmholtz2d: a₁, a₂ and k instead)."""
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
    if name in ("poisson2d", "poisson3d"):
        d = INPUT_DIMS[name]

        def exact(z):
            return np.prod(np.sin(nu * z), axis=1)
        return Problem(name, nu, ((2, -1.0),), lambda z: d * nu ** 2 * exact(z), exact, (),
                       d, True, nu)
    if name == "helmholtz2d":
        def exact(z):
            return np.sin(a1 * math.pi * z[:, 0]) * np.sin(a2 * math.pi * z[:, 1])
        factor = k ** 2 - math.pi ** 2 * (a1 ** 2 + a2 ** 2)
        return Problem(name, nu, ((2, 1.0), (0, k ** 2)), lambda z: factor * exact(z), exact,
                       (), 2, True, math.pi * max(abs(a1), abs(a2)))
    raise ValueError(f"unknown problem {name!r}; expected one of {', '.join(NAMES)}")


def default_point_count(nu: float) -> int:
    """Interior points (per dimension) of the equispaced grid with h = 1/(3ν) (Shannon):
    t = ⌈3ν⌉ − 1."""
    return max(1, math.ceil(3.0 * nu - 1e-12) - 1)


def problem_point_count(problem: Problem) -> int:
    """The default t of ``problem``: :func:`default_point_count` of ν, or for d > 1 of the
    highest axial frequency of u_T."""
    return default_point_count(problem.frequency if problem.input_dim > 1 else problem.nu)


def training_points(t: int) -> np.ndarray:
    """The t equispaced interior points z_j = j/(t+1), j = 1..t, of (0, 1)."""
    return np.arange(1, t + 1) / (t + 1)


def _grid(axis: np.ndarray, d: int) -> np.ndarray:
    """The tensor grid axis × … × axis (d times) as (len(axis)ᵈ, d), last coordinate fastest."""
    return np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)


def interior_points(problem: Problem, t: int) -> np.ndarray:
    """The interior training points: (t,) for d = 1, the (tᵈ, d) grid otherwise."""
    if problem.input_dim == 1:
        return training_points(t)
    return _grid(training_points(t), problem.input_dim)


def boundary_points(problem: Problem, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The boundary rows' points and Dirichlet data (ζ, U(ζ)); empty for ``fit``."""
    if not problem.dirichlet:
        return (np.array([zb for zb, _ in problem.boundary]),
                np.array([ub for _, ub in problem.boundary]))
    full = _grid(np.arange(t + 2) / (t + 1), problem.input_dim)
    on_boundary = np.any((full == 0.0) | (full == 1.0), axis=1)
    zeta = full[on_boundary]
    return zeta, problem.exact(zeta)


def row_count(problem: Problem, t: int) -> tuple[int, int]:
    """(T, m): interior points and residual rows for t points (per dimension)."""
    interior = t ** problem.input_dim
    if not problem.dirichlet:
        return interior, interior + len(problem.boundary)
    return interior, (t + 2) ** problem.input_dim


def test_points(count: int = 1000) -> np.ndarray:
    """``count`` equispaced points of [0, 1], endpoints included, for the RMSE."""
    return np.linspace(0.0, 1.0, count)


def test_axis_count(count: int, d: int) -> int:
    """Points per axis of the d-dimensional test grid of about ``count`` points:
    round(count^(1/d)), at least 2."""
    return count if d == 1 else max(2, round(count ** (1.0 / d)))


def test_grid(problem: Problem, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(axis, points): the equispaced axis of [0, 1] with :func:`test_axis_count` points and
    the tensor grid of (0, 1)ᵈ on it ((m,) for d = 1, (m, d) otherwise, last coordinate
    fastest)."""
    axis = test_points(test_axis_count(count, problem.input_dim))
    return axis, (axis if problem.input_dim == 1 else _grid(axis, problem.input_dim))


class ResidualBlock:
    """The residuals F_lo..F_{hi−1} (global row numbers) of one problem.

    Parameters
    ----------
    problem, activation : what is trained.
    t : interior training points (global), per dimension for d > 1 (T = tᵈ of them).
    lambda_p : boundary penalty λ_p.
    lo, hi : the global rows this block owns, 0 <= lo <= hi <= m.
    """

    def __init__(self, problem: Problem, activation: str, t: int, lambda_p: float,
                 lo: int, hi: int):
        self.problem = problem
        self.activation = activation
        interior, m = row_count(problem, t)
        if not 0 <= lo <= hi <= m:
            raise ValueError(f"row range [{lo}, {hi}) outside 0..{m}")
        self.z = interior_points(problem, t)[lo:min(hi, interior)]
        self.target = problem.rhs(self.z)
        zeta, data = boundary_points(problem, t)
        rows = slice(max(lo, interior) - interior, max(hi, interior) - interior)
        self.z_bc = zeta[rows]
        self.u_bc = data[rows]
        self.scale = 1.0 / math.sqrt(interior)
        self.scale_bc = math.sqrt(lambda_p / interior)
        self.size = hi - lo
        # F = √c (D(ĝ) − g): the row scale folded into the operator and the data
        self.scaled_terms = tuple((k, self.scale * c) for k, c in problem.terms)
        self.scaled_target = self.scale * self.target
        self.scaled_terms_bc = ((0, self.scale_bc),)
        self.scaled_u_bc = self.scale_bc * self.u_bc

    @property
    def row_scale(self) -> np.ndarray:
        """√c_j for each row: F_j = √c_j r_j with c_j = 1/t inside, λ_p/t on the boundary."""
        return np.concatenate([np.full(self.z.shape[0], self.scale),
                               np.full(self.z_bc.shape[0], self.scale_bc)])

    def curvature(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Σ_j u_j ∇²F_j over the block's rows, as ((d+2)(d+3)/2, r) blocks (see
        :func:`mlpar.model.network.operator_curvature`)."""
        k = self.z.shape[0]
        M = operator_curvature(self.activation, p, self.z, self.problem.terms,
                               self.scale * u[:k])
        if self.z_bc.shape[0]:
            M += operator_curvature(self.activation, p, self.z_bc, ((0, 1.0),),
                                    self.scale_bc * u[k:])
        return M

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """Return the block's residuals F_lo..F_{hi−1} at p."""
        F = np.empty(self.size)
        k = self.z.shape[0]
        F[:k] = apply_operator(self.activation, p, self.z, self.scaled_terms) - self.scaled_target
        if self.z_bc.shape[0]:
            F[k:] = (apply_operator(self.activation, p, self.z_bc, self.scaled_terms_bc)
                     - self.scaled_u_bc)
        return F

    def residuals_and_jacobian(self, p: np.ndarray, out: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (F, J) of the block at p, J of shape (hi − lo, (d + 2)r), column-major unless
        ``out`` says otherwise."""
        J = np.empty((self.size, p.size), order="F") if out is None else out
        F = np.empty(self.size)
        k = self.z.shape[0]
        values, _ = operator_jacobian(self.activation, p, self.z, self.scaled_terms, out=J[:k])
        F[:k] = values - self.scaled_target
        if self.z_bc.shape[0]:
            values, _ = operator_jacobian(self.activation, p, self.z_bc, self.scaled_terms_bc,
                                          out=J[k:])
            F[k:] = values - self.scaled_u_bc
        return F, J

    def residuals_and_projected_jacobian(self, p: np.ndarray, project: Callable, columns: int
                                         ) -> tuple[np.ndarray, np.ndarray]:
        """Return (F, J Q) of the block at p, where ``project`` maps a block of rows of J
        (column-major, (d + 2)r columns) to the same rows of J Q (``columns`` columns).

        J is formed :data:`PROJECTED_BLOCK_ENTRIES` numbers at a time, so only J Q (column-major)
        and one block of J are held: the restricted coarse models need J(x) P, never J."""
        JQ = np.empty((self.size, columns), order="F")
        F = np.empty(self.size)
        rows = max(1, PROJECTED_BLOCK_ENTRIES // p.size)
        k = self.z.shape[0]
        parts = ((self.z, self.scaled_terms, self.scaled_target, 0),
                 (self.z_bc, self.scaled_terms_bc, self.scaled_u_bc, k))
        for z, terms, data, offset in parts:
            for lo in range(0, z.shape[0], rows):
                zc = z[lo:lo + rows]
                J = np.empty((zc.shape[0], p.size), order="F")
                values, _ = operator_jacobian(self.activation, p, zc, terms, out=J)
                F[offset + lo:offset + lo + zc.shape[0]] = values - data[lo:lo + rows]
                JQ[offset + lo:offset + lo + zc.shape[0]] = project(J)
        return F, JQ


def rmse(problem: Problem, activation: str, p: np.ndarray, z: np.ndarray) -> float:
    """Root-mean-square error sqrt(mean (ĝ(z) − u_T(z))²) on the points z."""
    return errors(problem, activation, p, z)[0]


def errors(problem: Problem, activation: str, p: np.ndarray, z: np.ndarray
           ) -> tuple[float, float]:
    """(RMSE, relative L2 error) of ĝ on the points z: sqrt(mean e²) and ‖e‖/‖u_T‖,
    e = ĝ(z) − u_T(z)."""
    exact = problem.exact(z)
    err = apply_operator(activation, p, z, ((0, 1.0),)) - exact
    return float(np.sqrt(np.mean(err ** 2))), float(np.linalg.norm(err) / np.linalg.norm(exact))
