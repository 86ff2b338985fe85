"""Two-dimensional problems on any number of ranks: the distributed objectives against a serial
oracle, and whole runs that agree with the single-rank run."""

import numpy as np
import pytest
from conftest import assert_all
from mpi4py import MPI

from mlpar.api import train
from mlpar.config import Config
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem, row_count
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.parallel.smoothloss import SmoothLoss
from mlpar.protocols import FlopCounter

T, WIDTH = 5, 9
LAYOUT = ParameterLayout(WIDTH, 2)


def _blocks(comm, name="helmholtz2d"):
    """This rank's rows and all rows of the problem."""
    prob = make_problem(name, 2.0)
    _, m = row_count(prob, T)
    lo, hi = comm.block_range(m)
    return (ResidualBlock(prob, "tanh", T, 0.5, lo, hi), ResidualBlock(prob, "tanh", T, 0.5, 0, m),
            m)


@pytest.mark.parametrize("name", ["poisson2d", "helmholtz2d"])
def test_2d_least_squares_matches_serial(comm, name):
    block, full, m = _blocks(comm, name)
    obj = LeastSquares(block, comm, m, LAYOUT, FlopCounter())
    p = initial_parameters(WIDTH, 4.0, 5, "spread", input_dim=2)
    lin = obj.linearize(p)
    F, J = full.residuals_and_jacobian(p)
    assert_all(comm, np.isclose(lin.f, 0.5 * F @ F, rtol=1e-13), "loss")
    g = J.T @ F
    assert_all(comm, np.allclose(lin.g, g, rtol=1e-12, atol=1e-12 * np.abs(g).max()), "gradient")
    rows = obj.jacobian_rows(lin)
    assert_all(comm, np.allclose(rows, J, rtol=1e-14, atol=1e-14 * np.abs(J).max()), "rows of J")


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_2d_hessian_vector_products_match_serial(comm, loss):
    block, full, m = _blocks(comm)
    obj = SmoothLoss(block, comm, m, LAYOUT, FlopCounter(), loss, 0.05)
    serial = SmoothLoss(full, Comm(MPI.COMM_SELF), m, LAYOUT, FlopCounter(), loss, 0.05)
    p = initial_parameters(WIDTH, 4.0, 6, "spread", input_dim=2)
    s = np.linspace(-1.0, 1.0, p.size)
    lin, ref = obj.linearize(p), serial.linearize(p)
    assert_all(comm, np.allclose(lin.g, ref.g, rtol=1e-12, atol=1e-13 * np.abs(ref.g).max()),
               "gradient")
    Hs, ref_Hs = obj.hessvec(lin, s), serial.hessvec(ref, s)
    assert_all(comm, np.allclose(Hs, ref_Hs, rtol=1e-11, atol=1e-12 * np.abs(ref_Hs).max()),
               "Hessian-vector product")


@pytest.mark.parametrize("method", ["lm", "rlm", "rarc"])
def test_2d_run_agrees_with_the_single_rank_run(comm, method):
    """Rows split over the ranks change only the rounding of the sums: after 12 iterations
    the weights agree with the one-rank run to 1e-8 and the iterations are the same steps."""
    cfg = Config(problem="poisson2d", nu=2.0, width=12, points=5, method=method, max_iter=12,
                 min_width=4, quiet=True, init="spread").validate()
    ours = train(cfg, comm).state
    alone = train(cfg, Comm(MPI.COMM_SELF)).state
    drift = np.linalg.norm(ours.x - alone.x) / np.linalg.norm(alone.x)
    assert_all(comm, drift < 1e-8, f"{method}: weights differ by {drift:.1e}")
    assert_all(comm, [r.accepted for r in ours.history] == [r.accepted for r in alone.history]
               and [r.level for r in ours.history] == [r.level for r in alone.history],
               f"{method}: different steps")
