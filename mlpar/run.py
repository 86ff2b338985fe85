"""One command-line run: start-up banner, training with progress, output file, summary."""

from __future__ import annotations

import platform

import numpy as np

import mlpar
from mlpar import comm as comm_layer
from mlpar.config import Config
from mlpar.lm import STATUS_MESSAGES
from mlpar.output import write_result
from mlpar.report import Progress
from mlpar.train import problem_size, train


def versions() -> dict[str, str]:
    """Versions of mlpar and of the libraries it runs on (stored in output files)."""
    import h5py
    import scipy
    from petsc4py import PETSc
    petsc = ".".join(str(v) for v in PETSc.Sys.getVersion())
    return {"mlpar_version": mlpar.__version__, "petsc_version": petsc,
            "mpi_library": comm_layer.library_version(), "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "h5py_version": h5py.__version__,
            "hdf5_version": h5py.version.hdf5_version, "python_version": platform.python_version()}


def execute(cfg: Config, comm) -> str:
    """Train as configured, write ``cfg.out`` on rank 0, and return the final status."""
    progress = Progress(comm.is_root and not cfg.quiet, cfg.progress_interval)
    t, m, n = problem_size(cfg)
    info = versions()
    progress.say(f"mlpar {info['mlpar_version']}: {cfg.problem} nu={cfg.nu:g}, width {cfg.width} "
                 f"({n} weights), {t} training points ({m} residuals), method {cfg.method}, "
                 f"{comm.size} rank(s); PETSc {info['petsc_version']}, {info['mpi_library']}")
    outcome = train(cfg, comm, on_record=lambda rec, state: progress.record(rec))
    progress.flush()
    state = outcome.state
    if comm.is_root:
        attrs = {"status": state.status, "message": STATUS_MESSAGES[state.status],
                 "iterations": state.iteration, "rmse": outcome.rmse, "loss": outcome.loss,
                 "gnorm": outcome.gnorm, "lambda": state.lam,
                 "flops_matvec": outcome.flops_matvec, "nranks": comm.size,
                 "wall_time": outcome.wall_time, "training_points": outcome.points,
                 "config": cfg.to_json(), **info}
        write_result(cfg.out, attrs=attrs, params=state.x, history=state.history,
                     solution=outcome.solution)
    comm.barrier()
    if comm.is_root:
        print(f"{state.status}: {STATUS_MESSAGES[state.status]} after {state.iteration} "
              f"iterations, {outcome.wall_time:.2f} s\n"
              f"  loss {outcome.loss:.4e}  |grad| {outcome.gnorm:.3e}  RMSE {outcome.rmse:.3e}  "
              f"flops_matvec {outcome.flops_matvec:.3e}\n  output: {cfg.out}", flush=True)
    return state.status
