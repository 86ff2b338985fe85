"""Activations: derivatives to order 4 against finite differences and 50-digit references."""

import mpmath
import numpy as np
import pytest

from mlpar.model import activations

mpmath.mp.dps = 50
FORMULAS = {
    "sigmoid": lambda x: (mpmath.exp(x) - 1) / (mpmath.exp(x) + 1),
    "tanh": lambda x: (mpmath.exp(2 * x) - 1) / (mpmath.exp(2 * x) + 1),
    "logit": lambda x: mpmath.exp(x) / (mpmath.exp(x) + 1),
    "softplus": lambda x: mpmath.log(mpmath.exp(x) + 1),
}


@pytest.mark.parametrize("name", activations.NAMES)
def test_derivatives_match_finite_differences(name):
    x = np.linspace(-6, 6, 41)
    D = activations.derivatives(name, x, 4)
    h = 1e-5
    for k in range(1, 5):
        lower = activations.derivatives(name, np.stack([x - h, x + h]), k - 1)[k - 1]
        fd = (lower[1] - lower[0]) / (2 * h)
        assert np.allclose(D[k], fd, rtol=1e-6, atol=1e-8), (name, k)


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("x0", [-1e4, -700.0, -30.0, -0.3, 0.0, 2.5, 30.0, 700.0, 1e4])
def test_values_and_derivatives_against_50_digit_reference(name, x0):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        D = activations.derivatives(name, np.array([x0]), 4)[:, 0]
    for k in range(5):
        ref = float(mpmath.diff(FORMULAS[name], mpmath.mpf(x0), k))
        if abs(ref) < 1e-300:      # below the normal range: only require tiny
            assert abs(D[k]) < 1e-290, (name, x0, k, D[k])
        else:   # at 0 the odd/even derivatives vanish exactly; mpmath.diff gives ~1e-60
            assert D[k] == pytest.approx(ref, rel=1e-11, abs=1e-15 if x0 == 0 else 0), (name, x0, k)


def test_identities():
    x = np.linspace(-40, 40, 801)
    sig = activations.derivatives("sigmoid", x, 4)
    logit = activations.derivatives("logit", x, 4)
    soft = activations.derivatives("softplus", x, 4)
    assert np.allclose(sig[0], 2 * logit[0] - 1, rtol=1e-15, atol=1e-15)
    assert np.allclose(sig[1:], 2 * logit[1:], rtol=1e-15, atol=0)
    assert np.array_equal(soft[1:], logit[:4])


def test_bad_name_and_order():
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        activations.derivatives("relu", np.zeros(2), 1)
    with pytest.raises(ValueError, match="order 5 outside 0..4"):
        activations.derivatives("tanh", np.zeros(2), 5)


@pytest.mark.parametrize("name", activations.NAMES)
def test_a_range_of_orders_equals_the_full_table(name):
    x = np.linspace(-50, 50, 201)
    full = activations.derivatives(name, x, 4)
    for first in range(5):
        for order in range(first, 5):
            part = activations.derivatives(name, x, order, first)
            assert np.array_equal(part, full[first:order + 1]), (first, order)
    with pytest.raises(ValueError, match="below the first order"):
        activations.derivatives(name, x, 1, 2)
