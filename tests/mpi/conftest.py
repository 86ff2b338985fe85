"""Tests in this folder run under `mpiexec -n N python -m mpi4py -m pytest` (N = 1, 2, 3).

They check distributed pieces against a serial oracle computed on every rank;
assertions are made collective so that all ranks pass or fail together.
"""

import pytest
from mpi4py import MPI

from mlpar.parallel.comm import Comm


@pytest.fixture
def comm():
    dup = MPI.COMM_WORLD.Dup()
    yield Comm(dup)
    dup.Free()


def assert_all(comm: Comm, ok: bool, message: str = "") -> None:
    """Fail on every rank if the condition fails on any rank."""
    everywhere = comm.mpi.allreduce(bool(ok), op=MPI.LAND)
    assert everywhere, f"{message} (failed on rank {comm.rank}: {not ok})"
