"""The network's operator values and parameter Jacobians against finite differences."""

import numpy as np
import pytest
from helpers import fd_jacobian

from mlpar.model import activations
from mlpar.model.network import apply_operator, initial_parameters, operator_jacobian, split
from mlpar.model.problems import ResidualBlock, make_problem, training_points

TERMS = {"value": ((0, 1.0),), "second": ((2, -1.0),), "helmholtz": ((2, 1.0), (0, 9.0))}


@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("terms", TERMS)
def test_operator_jacobian_matches_finite_differences(activation, terms):
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(-1, 1, 7), rng.normal(0, 3, 7), rng.normal(0, 1, 7)])
    z = np.linspace(0.05, 0.95, 9)
    values, J = operator_jacobian(activation, p, z, TERMS[terms])
    assert np.allclose(values, apply_operator(activation, p, z, TERMS[terms]), rtol=1e-13, atol=1e-13)
    J_fd = fd_jacobian(lambda q: apply_operator(activation, q, z, TERMS[terms]), p)
    assert np.allclose(J, J_fd, rtol=1e-6, atol=1e-7 * np.abs(J).max())


@pytest.mark.parametrize("activation", activations.NAMES)
def test_second_derivative_in_z_matches_finite_differences(activation):
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(-1, 1, 5), rng.normal(0, 2, 5), rng.normal(0, 1, 5)])
    z = np.linspace(0.1, 0.9, 7)
    h = 1e-4
    u = lambda zz: apply_operator(activation, p, zz, ((0, 1.0),))  # noqa: E731
    fd = (u(z + h) - 2 * u(z) + u(z - h)) / h ** 2
    assert np.allclose(apply_operator(activation, p, z, ((2, 1.0),)), fd, rtol=1e-5, atol=1e-6)


def test_large_arguments_stay_finite_and_exact():
    """Saturated neurons (|w z + b| up to 1e4) give finite values and exact Jacobians."""
    p = np.concatenate([[1.0, -2.0, 0.5], [1e4, -5e3, 3.0], [-2e3, 1e3, 0.1]])
    z = np.array([0.0, 0.2, 0.21, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values, J = operator_jacobian("sigmoid", p, z, ((2, -1.0),))
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(J))
    # neuron 1 at z=0.2 has a = 0: its terms are O(w²) but finite; saturated entries vanish
    v, w, b = split(p)
    a = z[:, None] * w + b
    D = activations.derivatives("sigmoid", a, 3)
    assert np.allclose(J[:, :3], -(w ** 2) * D[2], rtol=1e-14, atol=0)


@pytest.mark.parametrize("problem", ["poisson", "helmholtz", "fit"])
def test_residual_jacobian_of_each_problem(problem):
    prob = make_problem(problem, 3.0)
    t = 8
    m = t + len(prob.boundary)
    block = ResidualBlock(prob, "tanh", t, 0.7, 0, m)
    p = initial_parameters(6, 3.0, seed=3)
    F, J = block.residuals_and_jacobian(p)
    assert np.allclose(F, block.residuals(p), rtol=1e-13, atol=1e-13)
    J_fd = fd_jacobian(block.residuals, p)
    assert np.allclose(J, J_fd, rtol=1e-6, atol=1e-7 * np.abs(J).max())


@pytest.mark.parametrize("problem", ["poisson", "helmholtz"])
def test_true_solution_has_zero_pde_residual(problem):
    """u_T satisfies D(u_T) = g: checks each problem's right-hand side and operator."""
    prob = make_problem(problem, 4.0)
    z = training_points(50)
    h = 1e-4
    u = prob.exact
    second = (u(z + h) - 2 * u(z) + u(z - h)) / h ** 2
    terms = dict(prob.terms)
    residual = terms.get(2, 0.0) * second + terms.get(0, 0.0) * u(z) - prob.rhs(z)
    assert np.max(np.abs(residual)) < 1e-5 * 4.0 ** 2
    for zb, ub in prob.boundary:
        assert u(np.array([zb]))[0] == pytest.approx(ub, abs=1e-15)


def test_blocks_partition_the_residuals():
    """Any split of the rows into blocks reproduces the full residual vector."""
    prob = make_problem("poisson", 5.0)
    t = 14
    p = initial_parameters(10, 5.0, seed=0)
    full = ResidualBlock(prob, "sigmoid", t, 1.0, 0, t + 2).residuals(p)
    pieces = [ResidualBlock(prob, "sigmoid", t, 1.0, lo, hi).residuals(p)
              for lo, hi in [(0, 0), (0, 5), (5, 15), (15, 16)]]
    assert np.allclose(np.concatenate(pieces), full, rtol=1e-14, atol=1e-14)


def test_initial_parameters_are_reproducible():
    assert np.array_equal(initial_parameters(16, 20.0, 7), initial_parameters(16, 20.0, 7))
    assert not np.array_equal(initial_parameters(16, 20.0, 7), initial_parameters(16, 20.0, 8))
    with pytest.raises(ValueError, match="unknown initialisation"):
        initial_parameters(4, 1.0, 0, "zeros")
