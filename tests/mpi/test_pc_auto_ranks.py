"""``--pc auto`` switches at the same step on every rank and on any number of ranks, and the
weights agree with the run on one rank to rounding."""

import numpy as np
import pytest
from conftest import assert_all
from mpi4py import MPI
from petsc4py import PETSc

import mlpar

#: spread init, the normal form: 19-32 CG iterations per LM step, so N = 20 switches at the
#: second step (lm) and on the coarse level's solves (rlm).
SMALL = {"problem": "poisson", "nu": 8.0, "width": 64, "points": 200, "init": "spread",
         "max_iter": 8, "solve_form": "normal", "ksp_rtol": 1e-12, "pc": "auto",
         "quiet": True}


@pytest.mark.parametrize("method", ["lm", "rlm"])
def test_auto_switches_alike_on_any_number_of_ranks(comm, method):
    PETSc.Options()["mlpar_pc_auto_its"] = 20
    try:
        options = {**SMALL, "method": method}
        distributed = mlpar.solve(options, comm=comm)
        alone = mlpar.solve(options, comm=MPI.COMM_SELF)
    finally:
        PETSc.Options().delValue("mlpar_pc_auto_its")
    used = [r.pc for r in distributed.history]
    assert_all(comm, "mg" in used and used[0] == "none", f"no switch: {used}")
    assert_all(comm, used == [r.pc for r in alone.history], "switched at another step")
    rel = np.linalg.norm(distributed.x - alone.x) / np.linalg.norm(alone.x)
    assert_all(comm, rel < 1e-8, f"{comm.size} ranks differ from 1 rank by {rel:.2e}")
    same = comm.mpi.allgather(distributed.x.tobytes())
    assert_all(comm, len(set(same)) == 1, "the ranks hold different weights")
