"""Levenberg–Marquardt: the λ rule, the ratio, and convergence on the seed's problems."""

import math

import pytest
from mpi4py import MPI

from mlpar.api import train
from mlpar.config import Config
from mlpar.optim.common import LMParameters, ratio, update_lambda
from mlpar.parallel.comm import Comm


def test_lambda_update_three_cases():
    prm = LMParameters()
    assert update_lambda(0.9, 1.0, prm) == (True, prm.gamma2)
    assert update_lambda(0.5, 1.0, prm) == (True, prm.gamma1)
    assert update_lambda(0.05, 1.0, prm) == (False, prm.gamma3)
    assert update_lambda(0.9, prm.lambda_min, prm) == (True, prm.lambda_min)


def test_ratio_guards_against_bad_predictions():
    assert ratio(1.0, 2.0) == 0.5
    assert ratio(1.0, 0.0) == -math.inf
    assert ratio(math.nan, 1.0) == -math.inf
    assert ratio(1.0, -1.0) == -math.inf


@pytest.mark.parametrize("bad", [dict(eta1=0.8, eta2=0.5), dict(gamma3=0.9),
                                 dict(lambda_min=1.0, lambda0=0.1)])
def test_parameters_are_checked(bad):
    with pytest.raises(ValueError):
        LMParameters(**bad)


def test_lm_solves_poisson_nu5():
    cfg = Config(problem="poisson", nu=5.0, width=64, max_iter=500, quiet=True)
    out = train(cfg, Comm(MPI.COMM_SELF))
    assert out.state.status == "converged"
    assert out.rmse < 1e-3
    assert out.state.iteration < 500


def test_lm_fits_a_function():
    cfg = Config(problem="fit", nu=4.0, width=32, max_iter=500, activation="tanh", quiet=True)
    out = train(cfg, Comm(MPI.COMM_SELF))
    assert out.rmse < 1e-3
