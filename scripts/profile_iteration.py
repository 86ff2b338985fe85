#!/usr/bin/env python
"""Where mlpar's in-process time to RMSE 1e-3 goes, by kind of work (one rank, cProfile).

Trains one problem of ``scripts/bench_peers.py`` as that benchmark does (``mlpar.solve`` in
this process, the RMSE on the test grid checked after every iteration, the check's own time
left out), once without the profiler (the time to the target) and once under cProfile until
the same iteration, and sums the profile's own time (cProfile's ``tottime``) of every function
into a few kinds of work:

* ``σ and its derivatives``: :mod:`mlpar.model.activations` (tanh, exp and the elementwise
  formulas of σ^(k));
* ``network values and Jacobians``: :mod:`mlpar.model.network` and :mod:`mlpar.model.problems`
  (the arguments wᵀz + b, the operator's values, the entries of J);
* ``products with J, gradient``: :mod:`mlpar.parallel.leastsquares` (JᵀF, Js, Jᵀy, JᵀJ);
* ``Gram matrices, solve set-up``: :mod:`mlpar.linalg` (JJᵀ of the direct form, the KSP's
  right-hand side and diagonal);
* ``PETSc KSP solve``: the calls into petsc4py (Cholesky factorisation and solve, or CG);
* ``multilevel``: :mod:`mlpar.multilevel` and scipy.sparse (transfers P y, J P, coarse models);
* ``MPI``: the calls into mpi4py (on one rank: the cost of the calls themselves);
* ``driver, ratio test, records``: the rest of mlpar (:mod:`mlpar.optim`, :mod:`mlpar.api`);
* ``numpy's Python layer``: numpy functions written in Python (``norm``, ``diff``, ...);
* ``other``.

numpy's compiled calls (ufuncs, ``matmul``) are not profiled on their own: their time is that
of the Python function that called them. The profiler adds a cost per Python call, so the
Python-heavy kinds weigh more here than in the unprofiled run; the last column scales each
kind to the unprofiled time (an estimate).

Usage (from the repository root)::

    .venv/bin/python scripts/profile_iteration.py --case poisson2d-5 --init uniform --method rlm
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys

import bench_peers as bp

KINDS = (
    ("σ and its derivatives", ("mlpar/model/activations.py",)),
    ("network values and Jacobians", ("mlpar/model/network.py", "mlpar/model/problems.py")),
    ("products with J, gradient", ("mlpar/parallel/leastsquares.py",)),
    ("Gram matrices, solve set-up", ("mlpar/linalg/",)),
    ("PETSc KSP solve", ("petsc4py",)),
    ("multilevel", ("mlpar/multilevel/", "scipy/sparse", "sparsetools")),
    ("MPI", ("mpi4py",)),
    ("driver, ratio test, records", ("mlpar/",)),
    ("numpy's Python layer", ("numpy/",)),
)


def kind(filename: str, name: str) -> str:
    """The kind of work of a profiled function (its file, or for a compiled call its name)."""
    where = filename if filename != "~" else name
    for label, marks in KINDS:
        if any(mark in where for mark in marks):
            return label
    return "other"


def train(spec: dict, case: bp.Case, max_iter: int, profile: cProfile.Profile | None):
    """Run ``spec`` until the RMSE target (or ``max_iter``), the profiler (if any) on during
    the training only; the tracker of the run."""
    import mlpar

    tracker = bp.Tracker(case, float("inf"), stop_at_target=True)

    def on_iteration(record, x):
        if profile is not None:
            profile.disable()
        stop = tracker.iterate(x, clock=record.time) or tracker.iterations >= max_iter
        if profile is not None:
            profile.enable()
        if stop:
            raise bp.StopRun

    if profile is not None:
        profile.enable()
    try:
        mlpar.solve(dict(spec, max_iter=10 ** 9), on_iteration=on_iteration)
    except bp.StopRun:
        pass
    finally:
        if profile is not None:
            profile.disable()
    return tracker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=list(bp.CASES), default="poisson-20")
    ap.add_argument("--init", choices=["uniform", "spread"], default="uniform")
    ap.add_argument("--method", default="rlm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iter", type=int, default=20000,
                    help="stop here if the target is not reached")
    args = ap.parse_args()
    problem, nu, width, points = bp.CASES[args.case]
    case = bp.Case(problem, nu, width, points, args.init)
    spec = {"problem": problem, "nu": nu, "width": width, "points": points, "seed": args.seed,
            "init": args.init, "method": args.method}
    train(spec, case, 2, None)   # imports and PETSc start-up outside both measurements
    plain = train(spec, case, args.max_iter, None)
    iterations = plain.iterations_to_target or plain.iterations
    profile = cProfile.Profile()
    train(spec, case, iterations, profile)
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in pstats.Stats(profile).stats.items():
        label = kind(filename, name)
        totals[label] = totals.get(label, 0.0) + tottime
    profiled = sum(totals.values())
    unprofiled = plain.time_to_target if plain.time_to_target is not None else plain.elapsed
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"{case.label}, mlpar {args.method}, seed {args.seed}, 1 rank: "
          f"{'RMSE 1e-3 reached' if plain.time_to_target is not None else 'target not reached'}"
          f" after {iterations} iterations, {unprofiled:.3f} s in process without the profiler, "
          f"{profiled:.3f} s under it")
    print("| kind of work | profiled [s] | share | ms per iteration (scaled) |")
    print("|---|---|---|---|")
    for label in [k for k, _ in KINDS] + ["other"]:
        t = totals.get(label, 0.0)
        print(f"| {label} | {t:.3f} | {t / profiled:.0%} | "
              f"{t / profiled * unprofiled / iterations * 1e3:.3f} |")


if __name__ == "__main__":
    main()
