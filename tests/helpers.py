"""What the serial tests share: running ``python -m mlpar`` under mpiexec, a
finite-difference Jacobian, and the resume-bit-for-bit contract."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe"}


def run_mlpar(args, nranks=1, timeout=180, cwd=None):
    """Run mlpar on ``nranks`` ranks; a hang fails the test through ``timeout``."""
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(nranks), sys.executable,
           "-m", "mlpar", *map(str, args)]
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
                          env=env)


#: Jobs started by :func:`start_mlpar`; the ``tests/conftest.py`` fixture kills any still running
#: when a test ends, so a test that fails while its job hangs leaves nothing behind.
STARTED: list[subprocess.Popen] = []


def start_mlpar(args, nranks=1):
    """Start mlpar under mpiexec in its own process group (for signals and kill -9)."""
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(nranks), sys.executable,
           "-m", "mlpar", *map(str, args)]
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env, start_new_session=True)
    STARTED.append(proc)
    return proc


def fd_jacobian(fun, p, h=1e-6):
    """Central differences of ``fun`` at p, column k with the step h·max(1, |p_k|): an
    oracle independent of any analytic Jacobian."""
    cols = []
    for k in range(p.size):
        e = np.zeros_like(p)
        e[k] = h * max(1.0, abs(p[k]))
        cols.append((fun(p + e) - fun(p - e)) / (2 * e[k]))
    return np.stack(cols, axis=1)


def resumes_bit_for_bit(tmp_path, options: dict, stop: int, end: int):
    """A run stopped at ``stop``, written to a checkpoint, read back and continued to ``end``
    is the run to ``end``: same weights, flops, losses, solver reasons and preconditioners.
    Returns the uninterrupted run's state."""
    from mpi4py import MPI

    from mlpar.api import train
    from mlpar.config import Config
    from mlpar.io.checkpoint import _read, write_checkpoint
    from mlpar.parallel.comm import Comm

    alone = Comm(MPI.COMM_SELF)
    cfg = Config(**options, max_iter=end).validate()
    whole = train(cfg, alone).state
    cfg.max_iter = stop
    part = train(cfg, alone).state
    with h5py.File(tmp_path / "c.h5", "w") as fh:
        write_checkpoint(fh.create_group("checkpoint"), cfg, part, 1)
    with h5py.File(tmp_path / "c.h5", "r") as fh:
        _, stored = _read(str(tmp_path / "c.h5"), fh)
    cfg.max_iter = end
    resumed = train(cfg, alone, state=stored).state
    assert np.array_equal(resumed.x, whole.x)
    assert resumed.flops == whole.flops
    assert [r.loss for r in resumed.history] == [r.loss for r in whole.history]
    assert [r.ksp_reason for r in resumed.history] == [r.ksp_reason for r in whole.history]
    assert [r.pc for r in resumed.history] == [r.pc for r in whole.history]
    return whole
