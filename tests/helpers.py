"""What the serial tests share: running ``python -m mlpar`` under mpiexec, and a
finite-difference Jacobian."""

import os
import subprocess
import sys
from pathlib import Path

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
