"""Every method gives the same weights on any number of ranks (to rounding): the run on all
ranks against the same run on this rank alone, in one process (no mpiexec per case)."""

import numpy as np
import pytest
from conftest import assert_all
from mpi4py import MPI

import mlpar

SMALL = {"problem": "poisson", "nu": 5.0, "width": 64, "max_iter": 15, "quiet": True}
CASES = {
    "lm": {"method": "lm"},
    "rlm": {"method": "rlm"},
    "arc-logistic": {"method": "arc", "loss": "logistic"},
    "rarc-l1": {"method": "rarc", "loss": "l1", "kappa_h": 0.1},
    "rlm-restricted-3-levels": {"method": "rlm", "coarse_model": "restricted",
                                "interpolation": "injection", "levels": 3, "min_width": 4,
                                "rebuild_every": 5, "kappa_h": 0.1, "coarse_max_iter": 3},
    "lm-normal-form": {"method": "lm", "solve_form": "normal", "ksp_rtol": 1e-12},
    "lm-residual-form": {"method": "lm", "solve_form": "residual", "ksp_rtol": 1e-12},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_do_not_depend_on_the_number_of_ranks(comm, case):
    options = {**SMALL, **CASES[case]}
    distributed = mlpar.solve(options, comm=comm)
    alone = mlpar.solve(options, comm=MPI.COMM_SELF)
    rel = np.linalg.norm(distributed.x - alone.x) / np.linalg.norm(alone.x)
    assert_all(comm, rel < 1e-8, f"{comm.size} ranks differ from 1 rank by {rel:.2e}")
    assert_all(comm, distributed.iterations == alone.iterations, "iteration counts differ")
    same = comm.mpi.allgather(distributed.x.tobytes())
    assert_all(comm, len(set(same)) == 1, "the ranks hold different weights")
