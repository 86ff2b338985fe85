"""The command line: arguments → configuration → training → output file, and exit codes.

Exit status: 0 converged or iteration limit reached, 2 bad input (options,
configuration or files; one message from rank 0, every rank exits), 3 the
method failed (diverged), 75 interrupted (checkpointed, may be resumed), 1 an
unexpected error (the failing rank prints it and aborts the whole job, so no
rank is ever left waiting).
"""

from __future__ import annotations

import os
import sys
import traceback

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 75
EXIT_CODES = {"converged": EXIT_OK, "max_iter": EXIT_OK, "failed": EXIT_FAILED,
              "interrupted": EXIT_INTERRUPTED}


def _abort_on_exception(comm):
    """Replace sys.excepthook: print the error with the rank, then MPI_Abort."""
    def hook(kind, value, tb):
        sys.stderr.write(f"mlpar: rank {comm.rank} of {comm.size}: unexpected error\n")
        traceback.print_exception(kind, value, tb)
        sys.stderr.flush()
        comm.abort(EXIT_UNEXPECTED)
    sys.excepthook = hook


def _fail(comm, message: str) -> int:
    if comm.is_root:
        sys.stderr.write(f"mlpar: error: {message}\n")
        sys.stderr.flush()
    return EXIT_USAGE


def _preflight(cfg, comm, node_ranks: int) -> str | None:
    """Checks that involve the environment, files and memory, done on rank 0 before anything
    is allocated (None = fine); ``node_ranks`` ranks share rank 0's node."""
    from mlpar import memory
    step_tasks = os.environ.get("SLURM_STEP_NUM_TASKS")
    if step_tasks and step_tasks.isdigit() and int(step_tasks) != comm.size:
        return (f"srun started {step_tasks} tasks but MPI sees {comm.size}: the MPI library and "
                f"srun do not agree on the process manager (try srun --mpi=pmix)")
    out = os.path.abspath(cfg.out)
    if os.path.isdir(out):
        return f"--out {cfg.out}: is a directory; give the name of the output file"
    if not os.path.isdir(os.path.dirname(out)):
        return f"--out {cfg.out}: directory {os.path.dirname(out)} does not exist"
    if os.path.exists(out) and not cfg.force:
        return f"--out {cfg.out}: file exists (use --force to overwrite it)"
    if not os.access(os.path.dirname(out), os.W_OK):
        return f"--out {cfg.out}: directory is not writable"
    return memory.shortage(memory.estimate(cfg, comm.size), node_ranks,
                           memory.available_bytes())


def _configure(argv: list[str], comm, node_ranks: int):
    """Rank 0's reading of the command line (and checkpoint): ("ok", (cfg, petsc_args, state)),
    ("error", message) or ("exit", code)."""
    from mlpar.config import ConfigError, parse
    from mlpar.io.checkpoint import merge_resume_config, read_checkpoint
    from mlpar.io.output import OutputFileError
    try:
        cfg, petsc_args, given = parse(argv)
        state = None
        if cfg.resume:
            stored, state = read_checkpoint(cfg.resume)
            cfg = merge_resume_config(stored, given, cfg.resume)
    except (ConfigError, OutputFileError) as exc:
        return "error", str(exc)
    except SystemExit as exc:  # --help printed its text
        return "exit", exc.code or 0
    problem = _preflight(cfg, comm, node_ranks)
    if problem is not None:
        return "error", problem
    return "ok", (cfg, petsc_args, state)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) on every rank of the job and
    return the exit status (the same on every rank)."""
    from mlpar.parallel.comm import world
    from mlpar.protocols import SolverOptionsError

    comm = world()
    argv = sys.argv[1:] if argv is None else argv
    node_ranks = comm.node_size()
    kind, payload = comm.bcast(_configure(argv, comm, node_ranks) if comm.is_root else None)
    if kind == "error":
        return _fail(comm, payload)
    if kind == "exit":
        return payload
    cfg, petsc_args, state = payload

    import petsc4py
    petsc4py.init(["mlpar"] + petsc_args, comm=comm.mpi)
    from mlpar.cli.run import execute
    try:
        return EXIT_CODES[execute(cfg, comm, state)]
    except SolverOptionsError as exc:   # raised on every rank together
        return _fail(comm, str(exc))


def main_exit() -> None:
    """Entry point of the ``mlpar`` console script: a rank's unexpected error ends the job."""
    from mlpar.parallel.comm import world
    _abort_on_exception(world())
    sys.exit(main())

