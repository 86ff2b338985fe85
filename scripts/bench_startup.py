#!/usr/bin/env python
"""Start-up time of the mlpar command: the wall time of ``mpiexec -n N python -m mlpar`` on a
problem so small (Poisson ν = 5, r = 16, one iteration) that the time is the interpreter, the
imports, MPI and PETSc initialisation and the output file. It is part of every whole-command
time of scripts/bench_peers.py.

Each checkout given with ``--roots`` is timed with this interpreter and its own ``mlpar``
(PYTHONPATH), alternating between the checkouts, ``--repeat`` times; the median is printed
with the time of ``python -c 'import mlpar.cli.run'`` alone (the modules a run imports), per method and rank count.
The first rows split the start-up into its layers (no mlpar in them): the interpreter,
``mpiexec`` itself, what a scipy script imports, then under ``mpiexec -n 1`` numpy with
``MPI_Init``, petsc4py's initialisation and h5py, each row adding one.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_startup.py                       # this checkout
    .venv/bin/python scripts/bench_startup.py --roots /work/main .   # before / after a change
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchrun import ROOT

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1"}


def wall(cmd: list[str], root: Path) -> float:
    """Wall time of ``cmd`` run with ``root``'s mlpar; a failure ends the benchmark."""
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=300)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} (PYTHONPATH={root}) failed:\n{out.stderr}")
    return elapsed


def command(method: str, ranks: int, out: Path) -> list[str]:
    """The smallest mlpar run of ``method`` on ``ranks`` ranks."""
    return ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks), sys.executable, "-m",
            "mlpar", "--problem", "poisson", "--nu", "5", "--width", "16", "--max-iter", "1",
            "--method", method, "--out", str(out), "--force", "--quiet"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roots", nargs="+", type=Path, default=[ROOT],
                    help="checkouts whose mlpar is timed (default: this one)")
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--methods", nargs="+", default=["lm", "rlm"])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    roots = [r.resolve() for r in args.roots]
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    one_rank = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", "1", sys.executable, "-c"]
    mpi = "import numpy; from mpi4py import MPI"
    petsc = mpi + ("; import petsc4py; petsc4py.init(); from petsc4py import PETSc; "
                   "PETSc.Vec().createSeq(3)")
    runs = [("python -c pass", [sys.executable, "-c", "pass"]),
            ("mpiexec -n 1 python -c pass", one_rank + ["pass"]),
            ("python: import numpy, scipy.optimize", [sys.executable, "-c",
                                                      "import numpy, scipy.optimize"]),
            ("mpiexec -n 1: numpy, MPI_Init", one_rank + [mpi]),
            ("... and petsc4py.init(), a Vec", one_rank + [petsc]),
            ("... and import h5py", one_rank + [petsc + "; import h5py"]),
            # the modules of a run (the command line, api, the solvers), without MPI's start-up
            ("python -c 'import mlpar.cli.run'", [sys.executable, "-c", "import mlpar.cli.run"])]
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            for ranks in args.ranks:
                runs.append((f"mlpar --method {method}, {ranks} rank(s)",
                             command(method, ranks, Path(tmp) / "run.h5")))
        print("\n| run | " + " | ".join(str(r) for r in roots) + " |")
        print("|---|" + "---|" * len(roots))
        for label, cmd in runs:
            times = {root: [] for root in roots}
            for _ in range(args.repeat):
                for root in roots:
                    times[root].append(wall(cmd, root))
            print(f"| {label} | " + " | ".join(f"{statistics.median(times[r]):.2f} s"
                                              for r in roots) + " |", flush=True)
    print(f"\nmedians of {args.repeat}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
