"""The d-dimensional network (d = 2, 3): operator values, Jacobians and curvature blocks against
finite differences, the problems' right-hand sides, the training points, the AMG blocks."""

import numpy as np
import pytest
from helpers import fd_jacobian

from mlpar.model import activations, problems
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import (
    apply_curvature,
    apply_operator,
    curvature_entries,
    initial_parameters,
    operator_curvature,
    operator_jacobian,
)
from mlpar.model.problems import (
    INPUT_DIMS,
    ResidualBlock,
    boundary_points,
    interior_points,
    make_problem,
    row_count,
)
from mlpar.multilevel import amg

LAPLACIAN = ((2, 1.0),)
OPERATORS = {"value": ((0, 1.0),), "laplacian": ((2, -1.0),), "helmholtz": ((2, 1.0), (0, 9.0))}


def _random_network(width, d, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-1, 1, width), rng.normal(0, 2, d * width),
                           rng.normal(0, 1, width)])


def _points(count, d, seed):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (count, d))


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("activation", activations.NAMES)
def test_laplacian_matches_finite_differences_in_z(d, activation):
    """Δĝ = Σ_l ∂²ĝ/∂z_l², each by the central difference (fourth order, Richardson)."""
    p = _random_network(5, d, 2)
    z = _points(7, d, 3)

    def second(h):
        total = np.zeros(z.shape[0])
        for axis in range(d):
            e = np.zeros(d)
            e[axis] = h
            total += (apply_operator(activation, p, z + e, ((0, 1.0),))
                      - 2 * apply_operator(activation, p, z, ((0, 1.0),))
                      + apply_operator(activation, p, z - e, ((0, 1.0),))) / h ** 2
        return total
    fd = (16 * second(1e-3 / 2) - second(1e-3)) / 15
    assert np.allclose(apply_operator(activation, p, z, LAPLACIAN), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("operator", OPERATORS)
def test_operator_jacobian_matches_finite_differences(d, activation, operator):
    terms = OPERATORS[operator]
    p = _random_network(6, d, 1)
    z = _points(9, d, 4)
    values, J = operator_jacobian(activation, p, z, terms)
    assert J.shape == (9, (d + 2) * 6)
    assert np.allclose(values, apply_operator(activation, p, z, terms), rtol=1e-13, atol=1e-13)
    J_fd = fd_jacobian(lambda q: apply_operator(activation, q, z, terms), p)
    assert np.allclose(J, J_fd, rtol=1e-6, atol=1e-7 * np.abs(J).max())


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("operator", OPERATORS)
def test_curvature_blocks_match_finite_differences_of_the_jacobian(d, operator):
    """M = Σ_j u_j ∇²_p D(ĝ)(z_j) times any s equals the derivative of Jᵀu along s."""
    terms = OPERATORS[operator]
    width = 5
    layout = ParameterLayout(width, d)
    p = _random_network(width, d, 5)
    z = _points(11, d, 6)
    u = np.random.default_rng(7).normal(size=11)
    M = operator_curvature("tanh", p, z, terms, u)
    assert M.shape == (layout.curvature_entries, width) == ((d + 2) * (d + 3) // 2, width)
    H_fd = fd_jacobian(lambda q: operator_jacobian("tanh", q, z, terms)[1].T @ u, p)
    H = np.column_stack([apply_curvature(M, e, layout) for e in np.eye(layout.size)])
    assert np.allclose(H, H_fd, rtol=1e-6, atol=1e-7 * np.abs(H).max())
    assert np.allclose(H, H.T, rtol=0, atol=1e-14 * np.abs(H).max())
    # nothing couples two neurons
    neuron = np.arange(layout.size) % width
    assert np.all(H[neuron[:, None] != neuron[None, :]] == 0)


def test_curvature_entries_are_the_upper_triangle():
    assert curvature_entries(ParameterLayout(3, 1)) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2),
                                                        (2, 2)]
    assert len(curvature_entries(ParameterLayout(3, 3))) == ParameterLayout(3, 3).curvature_entries


def test_the_d_dimensional_formulas_reduce_to_the_one_dimensional_ones():
    """Points of shape (m, 1) take the d > 1 code; it agrees with the 1-D code to rounding."""
    p = _random_network(6, 1, 8)
    z = np.linspace(0.05, 0.95, 9)
    for terms in OPERATORS.values():
        v1, J1 = operator_jacobian("sigmoid", p, z, terms)
        vd, Jd = operator_jacobian("sigmoid", p, z[:, None], terms)
        assert np.allclose(vd, v1, rtol=1e-13, atol=1e-13)
        assert np.allclose(Jd, J1, rtol=1e-13, atol=1e-13 * np.abs(J1).max())
        u = np.linspace(-1, 1, 9)
        M1 = operator_curvature("sigmoid", p, z, terms, u)
        Md = operator_curvature("sigmoid", p, z[:, None], terms, u)
        assert np.allclose(Md, M1, rtol=1e-12, atol=1e-12 * np.abs(M1).max())


def test_d_dimensional_operators_are_only_identity_and_laplacian():
    with pytest.raises(ValueError, match="Laplacian"):
        apply_operator("tanh", _random_network(3, 2, 0), _points(4, 2, 0), ((1, 1.0),))


@pytest.mark.parametrize("name", INPUT_DIMS)
def test_true_solution_solves_the_pde(name):
    """D(u_T) = g at the interior points, by central differences of u_T."""
    prob = make_problem(name, 3.0, a1=1.0, a2=2.0, k=1.5)
    d = prob.input_dim
    z = interior_points(prob, 6)
    h = 1e-4
    lap = sum((prob.exact(z + h * e) - 2 * prob.exact(z) + prob.exact(z - h * e)) / h ** 2
              for e in np.eye(d))
    terms = dict(prob.terms)
    residual = terms.get(2, 0.0) * lap + terms.get(0, 0.0) * prob.exact(z) - prob.rhs(z)
    assert np.max(np.abs(residual)) < 1e-5 * np.max(np.abs(prob.rhs(z)))


@pytest.mark.parametrize("d,name", [(2, "poisson2d"), (3, "poisson3d")])
def test_training_points_cover_the_grid_once(d, name):
    prob = make_problem(name, 2.0)
    t = 4
    interior, m = row_count(prob, t)
    inner = interior_points(prob, t)
    zeta, data = boundary_points(prob, t)
    assert (interior, m) == (t ** d, (t + 2) ** d)
    assert inner.shape == (t ** d, d) and zeta.shape == ((t + 2) ** d - t ** d, d)
    assert np.all((inner > 0) & (inner < 1))
    assert np.all(np.any((zeta == 0) | (zeta == 1), axis=1))
    grid = np.round(np.concatenate([inner, zeta]) * (t + 1)).astype(int)
    assert len({tuple(g) for g in grid}) == m                      # every grid point once
    assert np.array_equal(data, prob.exact(zeta))
    # every face holds its (t+2)^(d-1) grid points
    for axis in range(d):
        for side in (0.0, 1.0):
            assert np.sum(zeta[:, axis] == side) == (t + 2) ** (d - 1)


def test_blocks_partition_the_residuals_in_2d():
    """Any split of the rows into blocks reproduces the full residuals and Jacobian."""
    prob = make_problem("helmholtz2d", 1.0)
    t = 4
    _, m = row_count(prob, t)
    p = initial_parameters(7, 4.0, 0, "spread", input_dim=2)
    F, J = ResidualBlock(prob, "sigmoid", t, 1.0, 0, m).residuals_and_jacobian(p)
    cuts = [(0, 0), (0, 5), (5, 16), (16, 30), (30, m)]
    pieces = [ResidualBlock(prob, "sigmoid", t, 1.0, lo, hi).residuals_and_jacobian(p)
              for lo, hi in cuts]
    assert np.allclose(np.concatenate([f for f, _ in pieces]), F, rtol=1e-14, atol=1e-14)
    assert np.allclose(np.concatenate([j for _, j in pieces]), J, rtol=1e-14, atol=1e-14)
    J_fd = fd_jacobian(ResidualBlock(prob, "sigmoid", t, 1.0, 0, m).residuals, p)
    assert np.allclose(J, J_fd, rtol=1e-6, atol=1e-7 * np.abs(J).max())


def test_projected_jacobian_formed_by_row_blocks_in_2d(monkeypatch):
    """F and J Q, J formed 3 rows at a time across the interior/boundary split, equal the
    full residuals and the product of the full Jacobian."""
    prob = make_problem("poisson2d", 3.0)
    t, width = 4, 7
    _, m = row_count(prob, t)
    p = initial_parameters(width, 3.0, 0, "spread", input_dim=2)
    block = ResidualBlock(prob, "sigmoid", t, 1.0, 3, m - 2)
    F, J = block.residuals_and_jacobian(p)
    Q = np.random.default_rng(0).normal(size=(p.size, 5))
    monkeypatch.setattr(problems, "PROJECTED_BLOCK_ENTRIES", 3 * p.size)
    F_b, JQ = block.residuals_and_projected_jacobian(p, lambda rows: rows @ Q, 5)
    assert JQ.flags.f_contiguous and JQ.shape == (m - 5, 5)
    np.testing.assert_allclose(F_b, F, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(JQ, J @ Q, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("scheme", ["uniform", "spread"])
def test_initial_parameters_in_2d(scheme):
    p = initial_parameters(64, 6.0, 3, scheme, input_dim=2)
    assert p.size == 4 * 64
    assert np.array_equal(p, initial_parameters(64, 6.0, 3, scheme, input_dim=2))
    v, W, b = ParameterLayout(64, 2).split(p)
    if scheme == "uniform":
        assert np.all(np.abs(p) <= 1)
    else:   # every hyperplane w_iᵀz + b_i = 0 meets the unit square: a sign change at corners
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
        a = corners @ W + b
        assert np.all(a.min(axis=0) <= 0) and np.all(a.max(axis=0) >= 0)
    assert np.array_equal(initial_parameters(16, 6.0, 3, scheme, input_dim=1),
                          initial_parameters(16, 6.0, 3, scheme))


def test_auxiliary_matrix_has_one_normalised_term_per_block_in_2d():
    """gram_blocks takes the d + 2 = 4 diagonal blocks J_xᵀJ_x; A sums them each scaled to
    ‖·‖∞ = 1, so A is symmetric with ‖A‖∞ ≤ 4; the transfer acts on 4 blocks."""
    prob = make_problem("poisson2d", 3.0)
    t, width = 5, 12
    layout = ParameterLayout(width, 2)
    _, m = row_count(prob, t)
    p = initial_parameters(width, 3.0, 1, "spread", input_dim=2)
    _, J = ResidualBlock(prob, "sigmoid", t, 1.0, 0, m).residuals_and_jacobian(p)
    blocks = amg.gram_blocks(J, layout)
    assert blocks.shape == (4, width, width)
    for k in range(4):
        Jx = J[:, k * width:(k + 1) * width]
        assert np.allclose(blocks[k], Jx.T @ Jx, rtol=1e-14, atol=0)
    A = amg.auxiliary_matrix(blocks)
    expected = sum(B / np.abs(B).sum(axis=1).max() for B in blocks)
    assert np.allclose(A, expected, rtol=1e-14, atol=0)
    assert np.allclose(A, A.T) and np.abs(A).sum(axis=1).max() <= 4 + 1e-12
    transfer = amg.coarsen(A, blocks=layout.n_blocks)
    r_c = transfer.widths[1]
    assert transfer.prolong(np.ones(4 * r_c)).size == layout.size
    assert transfer.collect(p).size == 4 * r_c
    assert np.array_equal(transfer.inject(p), layout.as_blocks(p)[:, transfer.coarse].ravel())
