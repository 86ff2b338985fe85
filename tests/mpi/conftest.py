"""Tests in this folder run under `mpiexec -n N python -m mpi4py -m pytest` (N = 1, 2, 3).

They check distributed pieces against a serial oracle computed on every rank;
assertions are made collective so that all ranks pass or fail together.
"""

import pytest
from mpi4py import MPI

from mlpar.model.layout import ParameterLayout
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.protocols import FlopCounter


@pytest.fixture
def comm():
    dup = MPI.COMM_WORLD.Dup()
    yield Comm(dup)
    dup.Free()


def assert_all(comm: Comm, ok: bool, message: str = "") -> None:
    """Fail on every rank if the condition fails on any rank."""
    everywhere = comm.mpi.allreduce(bool(ok), op=MPI.LAND)
    assert everywhere, f"{message} (failed on rank {comm.rank}: {not ok})"


def distributed_objective(comm: Comm, problem: str, nu: float, t: int, width: int,
                          lambda_p: float, rows: tuple[int, int] | None = None) -> LeastSquares:
    """The least-squares objective of a 1-D ``problem`` (t interior points, sigmoid network of
    ``width``), this rank's block of rows (or ``rows``: (0, m) gives the serial oracle)."""
    prob = make_problem(problem, nu)
    m = t + len(prob.boundary)
    lo, hi = rows if rows is not None else comm.block_range(m)
    block = ResidualBlock(prob, "sigmoid", t, lambda_p, lo, hi)
    return LeastSquares(block, comm, m, ParameterLayout(width), FlopCounter())
