#!/usr/bin/env python
"""What the cost-aware choice's work model charges, against this machine's clock (one rank).

The choice of :mod:`mlpar.multilevel.choice` weighs each kind of step by its *work*: the
seed's flops (products with J) plus, in flop equivalents, the evaluations of the network and
the AMG set-up (:data:`mlpar.model.network.RESIDUAL_WORK`, :data:`~mlpar.model.network.
JACOBIAN_WORK`, :data:`mlpar.multilevel.amg.SETUP_WORK_PER_PAIR`).  For each problem this
script times, on this machine,

* a product JᵀJs (4·m·n flops): the machine's speed s in flops per second,
* an evaluation of the residuals, and of the residuals with their Jacobian,
* a build of the neuron hierarchy (every level's AMG set-up),
* the LM step's linear solve (λ = 10⁻², the form ``auto`` takes; the direct form's dense
  products are charged at :data:`mlpar.protocols.DENSE_WORK`),

and prints each time beside the model's charge divided by s: a ratio near 1 says the model
weighs that work as the clock does (the choice compares ratios of work, so a common factor
does not matter; what matters is that the kinds of work are weighed alike).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/calibrate_work.py
    .venv/bin/python scripts/calibrate_work.py --cases poisson:20:512:0
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from benchrun import print_header

from mlpar import api
from mlpar.config import Config
from mlpar.model.network import evaluation_work, initial_parameters
from mlpar.parallel.comm import Comm

CASES = ("poisson:20:512:0", "poisson:25:1024:0", "helmholtz:5:1024:0", "poisson:20:512:2000",
         "poisson2d:5:64:0", "fit:40:2048:4096")


def seconds(call, budget: float = 0.3) -> float:
    """The mean time of ``call`` over repetitions filling about ``budget`` seconds."""
    call()
    start = time.perf_counter()
    call()
    reps = max(1, int(budget / max(time.perf_counter() - start, 1e-6)))
    start = time.perf_counter()
    for _ in range(reps):
        call()
    return (time.perf_counter() - start) / reps


def calibrate(spec: str, comm: Comm) -> str:
    """The table row of one ``problem:nu:width:points`` case (points 0: the default)."""
    problem, nu, width, points = spec.split(":")
    options = dict(problem=problem, nu=float(nu), width=int(width), method="rlm")
    if int(points):
        options["points"] = int(points)
    cfg = Config(**options)
    objective, solver, _, hierarchy = api.build(cfg, comm)
    try:
        x = initial_parameters(cfg.width, api.initial_frequency(cfg), 0, "uniform",
                               cfg.layout.input_dim)
        lin = objective.linearize(x)
        m, n, layout = objective.m, objective.n, objective.layout
        s = np.ones(n)
        speed = 4.0 * m * n / seconds(lambda: objective.jac_t(lin, objective.jac(lin, s)))
        t_value = seconds(lambda: objective.value(x))
        t_jacobian = seconds(lambda: objective.linearize(x))
        before = objective.flops.evaluation
        hierarchy.build(lin, 0)
        build_work = objective.flops.evaluation - before
        t_build = seconds(lambda: hierarchy.build(lin, 0), budget=1.0)
        widths = "→".join(str(w) for w in hierarchy.widths)
        before = objective.flops.work
        solver.solve(objective, lin, 1e-2)
        solve_work = objective.flops.work - before
        t_solve = seconds(lambda: solver.solve(objective, lin, 1e-2))
        form = solver.choose_form(lin)
    finally:
        solver.destroy()
        hierarchy.destroy()
    pair = 1e9 / (m * layout.width)
    cells = [f"{spec}", f"{m} × {n}", f"{speed / 1e9:.1f}",
             f"{t_value * pair:.1f}", f"{t_value * speed / evaluation_work(m, layout, False):.2f}",
             f"{t_jacobian * pair:.1f}",
             f"{t_jacobian * speed / evaluation_work(m, layout, True):.2f}",
             f"{t_build * 1e3:.1f} ({widths})", f"{t_build * speed / build_work:.2f}",
             f"{t_solve * 1e3:.2f} ({form})", f"{t_solve * speed / solve_work:.2f}"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES),
                        help="problem:nu:width:points (points 0: the problem's default)")
    args = parser.parse_args(argv)
    from mpi4py import MPI
    comm = Comm(MPI.COMM_SELF)
    print_header(["case", "m × n", "JᵀJs Gflop/s", "residuals ns / (row·neuron)",
                  "clock / model", "with J ns / (row·neuron)", "clock / model",
                  "hierarchy build ms (widths)", "clock / model", "LM step's solve ms (form)",
                  "clock / model"])
    for spec in args.cases:
        print(calibrate(spec, comm), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
