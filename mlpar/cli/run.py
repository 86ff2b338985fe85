"""One command-line run: start-up banner, training with progress and checkpoints, output file,
summary."""

from __future__ import annotations

import platform
import sys
import time

import numpy as np

import mlpar
from mlpar import memory
from mlpar.api import evaluate, problem_size, seed_loss, train
from mlpar.cli.report import Progress
from mlpar.cli.signals import StopRequest
from mlpar.config import Config
from mlpar.io.checkpoint import write_checkpoint
from mlpar.io.output import write_result
from mlpar.optim.driver import State
from mlpar.parallel import comm as comm_layer


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


class OutputWriter:
    """Writes the output file (rank 0): at checkpoints with status ``running``, and at the end."""

    def __init__(self, cfg: Config, comm, info: dict):
        self.cfg, self.comm, self.info = cfg, comm, info
        self.last_write = time.monotonic()

    def write(self, state: State, status: str) -> None:
        if not self.comm.is_root:
            return
        error, solution = evaluate(self.cfg, state.x)
        attrs = {"status": status, "reason": state.reason,
                 "message": state.message or "checkpoint of a running job",
                 "iterations": state.iteration, **error, "loss": state.f,
                 "seed_loss": seed_loss(self.cfg, state.x),
                 "gnorm": state.gnorm, "lambda": state.lam, "flops_matvec": state.flops,
                 "nranks": self.comm.size, "wall_time": state.elapsed,
                 "training_points": problem_size(self.cfg)[0], "config": self.cfg.to_json(),
                 **self.info}
        write_result(self.cfg.out, attrs=attrs, params=state.x, layout=self.cfg.layout,
                     history=state.history,
                     solution=solution,
                     extra=lambda fh: write_checkpoint(fh.create_group("checkpoint"), self.cfg,
                                                       state, self.comm.size))
        self.last_write = time.monotonic()

    def after_iteration(self, state: State) -> None:
        """Checkpoint every ``checkpoint_every`` iterations and/or ``checkpoint_seconds``
        seconds; rank 0's clock decides and every rank learns it."""
        every, seconds = self.cfg.checkpoint_every, self.cfg.checkpoint_seconds
        due = bool(every) and state.iteration % every == 0
        if seconds:
            late = self.comm.is_root and time.monotonic() - self.last_write >= seconds
            due = self.comm.bcast(due or late)
        if due:
            self.write(state, "running")


class UnusedOptionsReport:
    """Warns on rank 0 of PETSc options nothing has read (misspelt, or meant for a solver
    this run does not use), as PETSc's ``-options_left`` does: once the first iteration
    has set up the solvers, and at the end for those still unread; each option once."""

    def __init__(self, comm):
        self.comm = comm
        self.reported: set[str] = set()
        self.after_set_up = False

    def after_iteration(self) -> None:
        """Called after every iteration: reports after the first one of this run."""
        if not self.after_set_up:
            self.after_set_up = True
            self.report("by the set-up")

    def report(self, when: str) -> None:
        if not self.comm.is_root:
            return
        from mlpar.linalg.options import unused_options
        left = [o for o in unused_options() or () if o not in self.reported]
        if left:
            sys.stderr.write(f"mlpar: warning: PETSc option(s) {' '.join(left)} not used "
                             f"{when} (misspelt, or for a solver this run does not use)\n")
            sys.stderr.flush()
            self.reported.update(left)


def execute(cfg: Config, comm, state: State | None = None) -> str:
    """Train as configured (or continue ``state``), write ``cfg.out``, return the final status."""
    progress = Progress(comm.is_root and not cfg.quiet, cfg.progress_interval)
    t, m, n = problem_size(cfg)
    info = versions()
    progress.say(f"mlpar {info['mlpar_version']}: {cfg.problem} nu={cfg.nu:g}, width {cfg.width} "
                 f"({n} weights), {t} training points ({m} residuals), method {cfg.method}, "
                 f"{comm.size} rank(s); PETSc {info['petsc_version']}, {info['mpi_library']}; "
                 f"memory estimate {memory.summary(memory.estimate(cfg, comm.size))}")
    if state is not None:
        progress.say(f"resuming {cfg.resume} at iteration {state.iteration}")
    writer = OutputWriter(cfg, comm, info)
    stop = StopRequest(comm)
    unused = UnusedOptionsReport(comm)

    tables_shown = []

    def on_build(hierarchy):   # the level table of the first build (rlm, rarc)
        if not tables_shown:
            tables_shown.append(hierarchy.built_at)
            every = f"every {cfg.rebuild_every} iterations" if cfg.rebuild_every else "never"
            progress.say(f"neuron hierarchy at iteration {hierarchy.built_at} (rebuilt "
                         f"{every}):\n{hierarchy!r}")

    def on_record(rec, st):
        progress.record(rec)
        unused.after_iteration()
        writer.after_iteration(st)

    try:
        # overflow and 0/0 are found by the driver (a non-finite loss or gradient ends the run
        # as failed with that reason): numpy's warnings would only repeat it on every rank
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            outcome = train(cfg, comm, on_record=on_record, should_stop=stop.should_stop,
                            state=state, on_build=on_build)
    finally:
        stop.restore()
    progress.flush()
    unused.report("by the run")
    state = outcome.state
    writer.write(state, state.status)
    comm.barrier()
    if comm.is_root:
        print(f"{state.status}: {state.message} after {state.iteration} "
              f"iterations, {outcome.wall_time:.2f} s\n"
              f"  loss {outcome.loss:.4e}  |grad| {outcome.gnorm:.3e}  RMSE {outcome.rmse:.3e}  "
              f"rel. L2 {outcome.rel_l2:.3e}  "
              f"flops_matvec {outcome.flops_matvec:.3e}\n  output: {cfg.out}", flush=True)
    return state.status
