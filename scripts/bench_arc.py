#!/usr/bin/env python
"""Benchmark of the ARC building blocks: linearisation with the curvature blocks, exact
Hessian–vector products per second, and ARC iterations (Lanczos subproblem), for
(t, r) = (60, 512) and (2^14, 2^10) on 1 and 2 ranks.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/bench_arc.py
    .venv/bin/python scripts/bench_arc.py --cases 60x512 --ranks 1 2 3 --loss logistic

Each case runs under ``mpiexec -n N`` as a worker on the ``fit`` problem with t training points
and width r: it times one linearisation (f, ∇f and the 3×3 curvature blocks, one Allreduce),
``--products`` products ∇²f·v, and ``--iterations`` ARC iterations with at most
``--krylov-max-it`` Lanczos steps each.  The figures and the command are printed as a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time

from benchrun import peak_rss_mb, print_header, run_worker

CASES = {"60x512": (60, 512), "16384x1024": (2 ** 14, 2 ** 10)}


def worker(t: int, r: int, loss: str, products: int, iterations: int, krylov: int) -> None:
    import petsc4py
    petsc4py.init(["bench"])
    import numpy as np

    from mlpar.api import build
    from mlpar.config import Config
    from mlpar.model.network import initial_parameters
    from mlpar.optim.driver import State, Tolerances, run
    from mlpar.parallel.comm import world

    comm = world()
    cfg = Config(problem="fit", nu=20.0, width=r, points=t, method="arc", loss=loss,
                 krylov_max_it=krylov).validate()
    obj, solver, method, _ = build(cfg, comm)
    x = initial_parameters(r, 20.0, 0)

    comm.barrier()
    t0 = time.perf_counter()
    lin = obj.linearize(x)
    comm.barrier()
    t_lin = time.perf_counter() - t0

    v = np.linspace(-1.0, 1.0, x.size)
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(products):
        v = obj.hessvec(lin, v)
        v /= np.linalg.norm(v)
    comm.barrier()
    t_prod = (time.perf_counter() - t0) / products

    state = State(x, 0.05, f0=lin.f)
    comm.barrier()
    t0 = time.perf_counter()
    state = run(method, state, Tolerances(max_iter=iterations, gtol=0.0, ftol=0.0))
    comm.barrier()
    t_iter = (time.perf_counter() - t0) / max(1, state.iteration)
    lanczos = sum(rec.ksp_its for rec in state.history) / max(1, state.iteration)
    solver.destroy()
    peak_mb = peak_rss_mb(comm)
    if comm.is_root:
        print(json.dumps({"linearize_s": t_lin, "hessvec_per_s": 1.0 / t_prod,
                          "hessvec_gflops": 4.0 * t * 3 * r / t_prod / 1e9,
                          "arc_iteration_s": t_iter, "lanczos_per_iteration": lanczos,
                          "peak_rss_mb_per_rank": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--loss", choices=["l2", "l1", "logistic"], default="l2")
    ap.add_argument("--products", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--krylov-max-it", type=int, default=20)
    ap.add_argument("--worker", nargs=2, type=int, metavar=("T", "R"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, args.loss, args.products, args.iterations, args.krylov_max_it)
        return
    print_header(["t", "r", "ranks", "linearize [s]", "∇²f·v products/s", "GFlop/s",
                  "ARC iteration [s]", "Lanczos steps/iteration", "peak RSS/rank [MB]"])
    for case in args.cases:
        t, r = CASES[case]
        for n in args.ranks:
            d = run_worker(__file__, n, [str(t), str(r), "--loss", args.loss, "--products",
                                          str(args.products), "--iterations", str(args.iterations),
                                          "--krylov-max-it", str(args.krylov_max_it)])
            print(f"| {t} | {r} | {n} | {d['linearize_s']:.3f} | {d['hessvec_per_s']:.1f} | "
                  f"{d['hessvec_gflops']:.2f} | {d['arc_iteration_s']:.3f} | "
                  f"{d['lanczos_per_iteration']:.0f} | {d['peak_rss_mb_per_rank']:.0f} |", flush=True)

if __name__ == "__main__":
    main()
