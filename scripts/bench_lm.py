#!/usr/bin/env python
"""Benchmark of the LM building blocks: time per LM iteration, Gauss–Newton products per second,
memory peak, for (t, r) = (60, 512), (2^14, 2^10), (2^16, 2^12) on 1 and 2 ranks.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/bench_lm.py                 # all cases, 1 and 2 ranks
    .venv/bin/python scripts/bench_lm.py --cases 60x512 --ranks 1 2 3

Each case runs under ``mpiexec -n N`` as a worker that builds the ``fit`` problem with t
training points and width r, times the Jacobian evaluation, ``--products`` matrix-free
products JᵀJx (the KSP operator of the ``normal`` form), and ``--iterations`` LM iterations
with the KSP capped at ``--ksp-max-it`` iterations (so every case finishes in seconds to
minutes). The figures and the exact command are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time

from benchrun import peak_rss_mb, print_header, run_worker

CASES = {"60x512": (60, 512), "16384x1024": (2 ** 14, 2 ** 10), "65536x4096": (2 ** 16, 2 ** 12)}


def worker(t: int, r: int, products: int, iterations: int, ksp_max_it: int) -> None:
    import petsc4py
    petsc4py.init(["bench", "-ksp_max_it", str(ksp_max_it)])
    import numpy as np

    from mlpar.api import build
    from mlpar.config import Config
    from mlpar.model.network import initial_parameters
    from mlpar.optim.driver import State, Tolerances, run
    from mlpar.parallel.comm import world

    comm = world()
    cfg = Config(problem="fit", nu=20.0, width=r, points=t, method="lm").validate()
    obj, solver, method, _ = build(cfg, comm)
    x = initial_parameters(r, cfg.nu, 0)

    comm.barrier()
    t0 = time.perf_counter()
    lin = obj.linearize(x)
    comm.barrier()
    t_jac = time.perf_counter() - t0

    v = np.linspace(-1.0, 1.0, x.size)
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(products):
        v = obj.jac_t(lin, obj.jac(lin, v))
        v /= np.linalg.norm(v)
    comm.barrier()
    t_prod = (time.perf_counter() - t0) / products

    state = State(x, 0.05, f0=lin.f)
    comm.barrier()
    t0 = time.perf_counter()
    state = run(method, state, Tolerances(max_iter=iterations, gtol=0.0, ftol=0.0))
    comm.barrier()
    t_iter = (time.perf_counter() - t0) / max(1, state.iteration)
    form = solver.choose_form(lin)
    ksp = sum(rec.ksp_its for rec in state.history) / max(1, state.iteration)
    solver.destroy()
    peak_mb = peak_rss_mb(comm)
    if comm.is_root:
        print(json.dumps({"t": t, "r": r, "ranks": comm.size, "jacobian_s": t_jac,
                          "gn_products_per_s": 1.0 / t_prod, "gn_product_gflops": 4.0 * t * 3 * r / t_prod / 1e9,
                          "lm_iteration_s": t_iter, "ksp_its_per_iteration": ksp, "form": form,
                          "peak_rss_mb_per_rank": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--products", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--ksp-max-it", type=int, default=20)
    ap.add_argument("--worker", nargs=2, type=int, metavar=("T", "R"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, args.products, args.iterations, args.ksp_max_it)
        return
    print_header(["t", "r", "ranks", "Jacobian [s]", "JᵀJx products/s", "GFlop/s",
                  "LM iteration [s]", "KSP its/iteration", "form", "peak RSS/rank [MB]"])
    for case in args.cases:
        t, r = CASES[case]
        for n in args.ranks:
            d = run_worker(__file__, n, [str(t), str(r), "--products", str(args.products),
                                          "--iterations", str(args.iterations),
                                          "--ksp-max-it", str(args.ksp_max_it)])
            print(f"| {t} | {r} | {n} | {d['jacobian_s']:.3f} | {d['gn_products_per_s']:.1f} | "
                  f"{d['gn_product_gflops']:.2f} | {d['lm_iteration_s']:.3f} | "
                  f"{d['ksp_its_per_iteration']:.0f} | {d['form']} | {d['peak_rss_mb_per_rank']:.0f} |", flush=True)

if __name__ == "__main__":
    main()
