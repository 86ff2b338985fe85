"""The sparse AMG set-up (chunked Gram rows, strongest couplings, gathered on rank 0): the same
hierarchy on any rank count as the serial computation on all rows (run under mpiexec -n 1,
2, 3), and the collectives it uses."""

import numpy as np
import pytest
from conftest import assert_all, distributed_objective
from mpi4py import MPI

from mlpar.model.network import initial_parameters
from mlpar.multilevel import amg
from mlpar.multilevel.hierarchy import neuron_transfer, sparse_graph
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.parallel.comm import Comm

WIDTH = 96


def _objective(comm, t, rows=None):
    return distributed_objective(comm, "poisson", 12.0, t, WIDTH, 1.0, rows)


@pytest.mark.parametrize("couplings,sample", [(3, 0), (8, 0), (WIDTH, 0), (6, 40)])
def test_the_sparse_hierarchy_is_the_serial_one_on_any_rank_count(comm, couplings, sample):
    t = 70
    p = initial_parameters(WIDTH, 12.0, seed=2)
    prm = MultilevelParameters(amg_couplings=couplings, amg_sample=sample)
    got = neuron_transfer(_objective(comm, t), _objective(comm, t).linearize(p), prm)
    serial = _objective(Comm(MPI.COMM_SELF), t, rows=(0, t + 2))
    J = serial.linearize(p).J
    if sample:
        J = J[amg.sample_rows(t + 2, sample)]
    want = amg.coarsen_graph(sparse_graph(Comm(MPI.COMM_SELF), J, serial.layout, couplings),
                             interpolation=prm.interpolation)
    same = (got is not None and np.array_equal(got.coarse, want.coarse)
            and (got.P != want.P).nnz == 0)
    assert_all(comm, same, f"C-set {None if got is None else got.coarse.size} against "
                           f"{want.coarse.size}")


def test_gather_sum_to_max_and_offset(comm):
    local = np.arange(comm.rank + 1, dtype=np.int64) + 10 * comm.rank
    gathered = comm.gather_to_root(local)
    expected = np.concatenate([np.arange(q + 1) + 10 * q for q in range(comm.size)])
    ok = np.array_equal(gathered, expected) if comm.is_root else gathered is None
    last = comm.size - 1
    total = comm.sum_to(np.full(3, comm.rank + 1.0), last)
    ok &= (np.array_equal(total, np.full(3, comm.size * (comm.size + 1) / 2))
           if comm.rank == last else total is None)
    ok &= np.array_equal(comm.maximum(np.array([comm.rank, -comm.rank], dtype=float)),
                         [comm.size - 1, 0.0])
    ok &= comm.offset(comm.rank + 1) == comm.rank * (comm.rank + 1) // 2
    assert_all(comm, ok, f"rank {comm.rank}")
