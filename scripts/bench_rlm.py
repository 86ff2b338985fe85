#!/usr/bin/env python
"""Where an iteration's wall time goes, RLM against LM, on the seed's problems.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/bench_rlm.py
    .venv/bin/python scripts/bench_rlm.py --problems poisson:25:1024 --ranks 1 2 --iterations 500

Each case (problem, ν, width r, in the seed's regime ``--init uniform``, seed 0) runs
``--iterations`` fine iterations of ``lm`` and of ``rlm`` with the defaults, under ``mpiexec
-n N``, with timers around the parts of an iteration:

* ``J``: evaluations of the residuals and the Jacobian (σ and its derivatives on the m × r
  grid, J filled), on the fine network whichever level asked for them;
* ``F``: evaluations of the residuals alone (trial points);
* ``J·P``: the coarse Jacobians J P of the restricted model;
* ``AMG``: the coarsening (Gram blocks J_xᵀJ_x, their reduction, splitting, interpolation);
* ``solve``: the regularised linear solves on every level;
* ``rest``: everything else (Python of the recursion, transfers, reductions, ratio tests).

Times are rank 0's, in ms per fine iteration; counts are per fine iteration.  The figures
and the command are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from benchrun import print_header, run_worker, timed

PARTS = ("J", "F", "J·P", "AMG", "solve")


def worker(problem: str, nu: float, width: int, method: str, iterations: int) -> None:
    import petsc4py
    petsc4py.init(["bench"])

    from mlpar.api import train
    from mlpar.config import Config
    from mlpar.linalg import linsolve
    from mlpar.model import problems
    from mlpar.multilevel import hierarchy, models
    from mlpar.parallel.comm import world

    table = defaultdict(lambda: [0, 0.0])
    block = problems.ResidualBlock
    block.residuals_and_jacobian = timed(table, "J", block.residuals_and_jacobian)
    # the restricted coarse model's Jacobians, formed a block of rows at a time with J·P
    block.residuals_and_projected_jacobian = timed(table, "J",
                                                    block.residuals_and_projected_jacobian)
    block.residuals = timed(table, "F", block.residuals)
    models.coarse_jacobian = timed(table, "J·P", models.coarse_jacobian)
    hierarchy.Hierarchy._transfer_at = timed(table, "AMG", hierarchy.Hierarchy._transfer_at)
    linsolve.RegularizedSolver.solve = timed(table, "solve", linsolve.RegularizedSolver.solve)

    comm = world()
    cfg = Config(problem=problem, nu=nu, width=width, method=method, init="uniform", seed=0,
                 max_iter=iterations, gtol=0.0, ftol=0.0, quiet=True)
    comm.barrier()
    t0 = time.perf_counter()
    out = train(cfg, comm)
    comm.barrier()
    total = time.perf_counter() - t0
    its = max(1, out.state.iteration)
    if comm.is_root:
        parts = {p: {"calls": table[p][0] / its, "ms": 1e3 * table[p][1] / its} for p in PARTS}
        print(json.dumps({"iterations": out.state.iteration, "ms": 1e3 * total / its,
                          "parts": parts, "loss": out.state.f}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", metavar="PROBLEM:NU:WIDTH",
                    default=["poisson:20:512", "poisson:25:1024", "helmholtz:5:1024"])
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--worker", nargs=4, metavar=("PROBLEM", "NU", "WIDTH", "METHOD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        problem, nu, width, method = args.worker
        worker(problem, float(nu), int(width), method, args.iterations)
        return
    print_header(["problem", "ranks", "method", "iterations", "ms/iteration",
                  "J per it. (ms)", "F per it. (ms)", "J·P per it. (ms)", "AMG per it. (ms)",
                  "solves per it. (ms)", "rest (ms)"])
    for case in args.problems:
        problem, nu, width = case.split(":")
        for n in args.ranks:
            for method in ("lm", "rlm"):
                d = run_worker(__file__, n, [problem, nu, width, method,
                                             "--iterations", str(args.iterations)])
                p = d["parts"]
                rest = d["ms"] - sum(p[k]["ms"] for k in PARTS)
                cells = [f"{p[k]['calls']:.2f} ({p[k]['ms']:.2f})" for k in PARTS]
                print(f"| {problem} ν={nu} r={width} | {n} | {method} | {d['iterations']} | "
                      f"{d['ms']:.2f} | " + " | ".join(cells) + f" | {rest:.2f} |", flush=True)


if __name__ == "__main__":
    main()
