#!/usr/bin/env python
"""Does multilevel pay in wall time?  LM and RLM, with and without the preconditioner.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/bench_multilevel.py --set large --seeds 0 --cap 240
    .venv/bin/python scripts/bench_multilevel.py --set seed --seeds 0 1 2 3 4
    .venv/bin/python scripts/bench_multilevel.py --set mid --configs lm "lm --pc mg" "lm --pc auto"
    .venv/bin/python scripts/bench_multilevel.py --set large --cases 1 \
        --extra "--lambda-p 1000 --ftol 1e-14" --configs "lm --pc none" "lm --pc auto"

Each run is one configuration (method and options, plus the mlpar and PETSc options of
``--extra``, read by mlpar's own command-line parser) on one problem and seed, under
``mpiexec -n RANKS``, through :func:`mlpar.api.train`.  After every fine iteration
the RMSE of the network on the test grid is computed (its time is taken out of the
figures: it is the same for every method), and the run records the wall time at which
RMSE ≤ ``--target`` first holds.  A run ends when the method's own tests stop it, after
``--cap`` seconds of wall time (rank 0's clock, broadcast), or, with ``--stop-at-target``
(the default for ``--set large`` and ``mid``), when the target is reached.

The table gives, per configuration and problem: wall time to the target (— if not reached),
total wall time, fine iterations, CG iterations per fine Taylor step (the steps of the
trained network; recursive steps solve on coarse levels), seconds per fine iteration, and
flops of the matrix–vector products (the seed's measure); then, for each configuration
against the first one of the problem, the ratios of time to target and of flops.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time

from benchrun import print_header, run_worker

from mlpar.config import ConfigError, parse

LARGE = [  # (label, problem, nu, width, points, init)
    ("poisson ν=40 r=2048 t=4096 uniform", "poisson", 40.0, 2048, 4096, "uniform"),
    ("poisson ν=40 r=2048 t=4096 spread", "poisson", 40.0, 2048, 4096, "spread"),
    ("fit ν=40 r=2048 t=8192 uniform", "fit", 40.0, 2048, 8192, "uniform"),
    ("fit ν=40 r=2048 t=8192 spread", "fit", 40.0, 2048, 8192, "spread"),
]
MID = [  # where plain CG needs a few hundred iterations per step (docs/benchmarks.md, --pc auto)
    ("poisson ν=20 r=512 t=2000 spread", "poisson", 20.0, 512, 2000, "spread"),
]
SEED = [
    ("poisson ν=20 r=512", "poisson", 20.0, 512, 0, "uniform"),
    ("poisson ν=25 r=1024", "poisson", 25.0, 1024, 0, "uniform"),
    ("helmholtz ν=5 r=1024", "helmholtz", 5.0, 1024, 0, "uniform"),
]
CONFIGS = {  # name: (mlpar options, PETSc options)
    "lm": ({"method": "lm"}, []),
    "lm --pc none": ({"method": "lm", "pc": "none"}, []),
    "lm --pc jacobi": ({"method": "lm", "pc": "jacobi"}, []),
    "lm --pc bjacobi": ({"method": "lm", "pc": "bjacobi"}, []),
    "lm --pc mg": ({"method": "lm", "pc": "mg"}, []),
    "lm --pc auto": ({"method": "lm", "pc": "auto"}, []),
    "lm --pc mg (bjacobi smoother)": ({"method": "lm", "pc": "mg"},
                                      ["-mlpar_pc_smoother", "bjacobi"]),
    "rlm": ({"method": "rlm"}, []),
    "rlm --pc mg": ({"method": "rlm", "pc": "mg"}, []),
    "rlm --pc auto": ({"method": "rlm", "pc": "auto"}, []),
    "rlm --coarse-model galerkin": ({"method": "rlm", "coarse_model": "galerkin"}, []),
    "rlm --levels 2": ({"method": "rlm", "levels": 2}, []),
    "rlm --coarse-model galerkin --levels 2": ({"method": "rlm", "coarse_model": "galerkin",
                                                "levels": 2}, []),
}
DEFAULT_CONFIGS = {"large": ["lm", "lm --pc mg", "rlm --pc mg"],
                   "mid": ["lm", "lm --pc mg", "lm --pc auto"],
                   "seed": ["lm", "rlm", "rlm --coarse-model galerkin"]}


def worker(spec: dict) -> None:
    import petsc4py
    petsc4py.init(["bench", *spec["petsc"]])

    from mlpar.api import evaluate, train
    from mlpar.config import Config
    from mlpar.parallel.comm import world

    comm = world()
    cfg = Config(**spec["options"], max_iter=spec["max_iter"], quiet=True).validate()
    reached = {"time": None, "iteration": None}
    clock = {"evaluation": 0.0, "work": 0.0}

    def on_record(rec, state):
        # the run's own time: its elapsed time less the RMSE evaluations of earlier records
        clock["work"] = state.elapsed - clock["evaluation"]
        t0 = time.perf_counter()
        error = evaluate(cfg, state.x)[0]["rmse"]
        clock["evaluation"] += time.perf_counter() - t0
        if reached["time"] is None and error <= spec["target"]:
            reached["time"], reached["iteration"] = clock["work"], state.iteration

    def should_stop(state):
        stop = (state.elapsed > spec["cap"]
                or (spec["stop_at_target"] and reached["time"] is not None))
        return "interrupted" if comm.bcast(stop if comm.is_root else None) else None

    comm.barrier()
    out = train(cfg, comm, on_record=on_record, should_stop=should_stop)
    fine = [r.ksp_its for r in out.state.history if r.level == 0]
    if comm.is_root:
        its = max(1, out.state.iteration)
        print(json.dumps({
            "time_to_target": reached["time"], "iteration_at_target": reached["iteration"],
            "wall": clock["work"], "iterations": out.state.iteration,
            "cg_per_fine_step": statistics.mean(fine) if fine else 0.0,
            "s_per_iteration": clock["work"] / its, "flops": out.flops_matvec,
            "rmse": out.rmse, "status": out.state.status, "reason": out.state.reason,
            "losses": [r.loss for r in out.state.history],
            "cg": [r.ksp_its for r in out.state.history],
            "pc": [r.pc for r in out.state.history],
            "times": [r.time for r in out.state.history]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("large", "mid", "seed"), default="large")
    ap.add_argument("--configs", nargs="+", choices=sorted(CONFIGS))
    ap.add_argument("--cases", nargs="+", type=int, help="indices into the set's problems")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--cap", type=float, default=240.0, help="wall-time cap per run [s]")
    ap.add_argument("--max-iter", type=int, default=5000)
    ap.add_argument("--target", type=float, default=1e-3, help="RMSE target")
    ap.add_argument("--stop-at-target", choices=("yes", "no"))
    ap.add_argument("--extra", default="", metavar="OPTIONS",
                    help="mlpar and PETSc options for every run, as on mlpar's command line "
                         "(\"--lambda-p 1000 --ftol 1e-14\")")
    ap.add_argument("--history", action="store_true",
                    help="after each row, the loss and CG iterations of every fine iteration")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    cases = {"large": LARGE, "mid": MID, "seed": SEED}[args.set]
    if args.cases:
        cases = [cases[i] for i in args.cases]
    configs = args.configs or DEFAULT_CONFIGS[args.set]
    try:
        _, extra_petsc, extra = parse(shlex.split(args.extra))
    except ConfigError as exc:
        raise SystemExit(f"--extra: {exc}") from None
    if args.extra:
        print(f"options of every run: {extra}, PETSc {extra_petsc}")
    stop_at_target = (args.stop_at_target or ("no" if args.set == "seed" else "yes")) == "yes"
    print_header(["problem", "seed", "configuration", "time to RMSE ≤ target [s]",
                  "total wall [s]", "iterations", "CG its / fine step", "s / iteration",
                  "flops", "final RMSE", "status", "time-to-target ratio (first/this)",
                  "flops ratio (first/this)"])
    for label, problem, nu, width, points, init in cases:
        for seed in args.seeds:
            first = None
            for name in configs:
                options, petsc = CONFIGS[name]
                spec = {"options": {"problem": problem, "nu": nu, "width": width,
                                    "points": points, "init": init, "seed": seed, **options,
                                    **extra},
                        "petsc": petsc + extra_petsc, "max_iter": args.max_iter, "cap": args.cap,
                        "target": args.target, "stop_at_target": stop_at_target}
                d = run_worker(__file__, args.ranks, [json.dumps(spec)])
                first = first or d
                ttt = d["time_to_target"]
                ratio = (f"{first['time_to_target'] / ttt:.2f}"
                         if ttt and first["time_to_target"] else "—")
                print(f"| {label} | {seed} | {name} | "
                      f"{'—' if ttt is None else f'{ttt:.1f}'} | {d['wall']:.1f} | "
                      f"{d['iterations']} | {d['cg_per_fine_step']:.1f} | "
                      f"{d['s_per_iteration']:.2f} | {d['flops']:.2e} | {d['rmse']:.1e} | "
                      f"{d['status']} ({d['reason']}) | {ratio} | "
                      f"{first['flops'] / d['flops']:.2f} |", flush=True)
                if args.history:
                    print(f"<!-- {name}: losses {d['losses']} CG {d['cg']} pc {d['pc']} "
                          f"elapsed {d['times']} -->", flush=True)


if __name__ == "__main__":
    main()
