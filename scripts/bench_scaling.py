#!/usr/bin/env python
"""Per-iteration times of ``lm`` and ``rlm`` on 1 and 2 ranks, split compute/communication.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/bench_scaling.py --json runs/scaling.json \\
        --lock /tmp/mlpar-bench.lock
    .venv/bin/python scripts/bench_scaling.py --cases lm:16384:1024 --ranks 1 2 --max-iter 3

Each case ``METHOD:POINTS:WIDTH`` trains ``--problem fit`` (``--points`` training points,
``--width`` neurons, seed 0, ``--max-iter`` iterations, every tolerance off) on each number of
``--ranks`` under ``mpiexec`` (with ``--lock``: under ``flock LOCK``, one run at a time).  The
time of one whole iteration is the difference of consecutive entries of the history's ``time``
(the output file's ``history/time``, the wall time so far); the first iteration also pays the
first linearisation and, for rlm, the first hierarchy, so the table shows it apart from the
mean of the others.

Inside the run every collective of :class:`mlpar.parallel.comm.Comm` is timed, counted and
its size in bytes added up (the time includes the wait for the slowest rank: load imbalance
shows as communication).  PETSc's own reductions inside the Krylov solvers (CG's dot products,
Allreduces of one number) do not go through ``Comm`` and count as compute.  "J" is the time
in the fine residuals-and-Jacobian evaluations, "AMG" in the hierarchy's set-up, of which "AMG Gram
blocks" the local Gram blocks J_xᵀJ_x (every rank) and "AMG serial" rank 0's own coarsening
(auxiliary matrix, splitting, interpolation), all on rank 0.

Before a case runs, :func:`mlpar.memory.estimate` gives the peak memory of its ranks; a case
above ``--max-gb`` (summed over the ranks of the node) is skipped and said so.  ``--json``
writes every figure for ``scripts/plot_scaling.py``, after every case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict

from benchrun import ROOT, print_header, timed

#: amg.py's functions that only rank 0 runs in a hierarchy build (the serial fraction of rlm).
SERIAL_AMG = ("auxiliary_matrix", "coarsen", "orthonormalized")
DEFAULT_CASES = ["lm:65536:4096", "rlm:32768:4096", "rlm:65536:4096"]
#: The leaf collectives of Comm (sum_scalar and any go through sum and max_scalar).
COLLECTIVES = (
    "sum",
    "sum_to_root",
    "sum_inplace",
    "reduce_scatter",
    "allgather",
    "bcast",
    "max_scalar",
    "first",
)


def _payload_bytes(name: str, args) -> int:
    """Bytes of float64 data a collective moves per rank: its array argument's size (the full
    vector for reduce_scatter, the gathered vector for allgather); 0 for pickled objects."""
    if name == "allgather":
        return 8 * sum(args[1])
    if name in ("bcast", "first", "max_scalar"):
        return 0 if name != "max_scalar" else 8
    return int(getattr(args[0], "nbytes", 0))


def _instrument(cls, names, table) -> None:
    """Wrap ``cls``'s methods ``names`` so that each call adds [calls, seconds, bytes]."""
    for name in names:
        fn = getattr(cls, name)

        def wrapper(self, *args, _fn=fn, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(self, *args, **kwargs)
            finally:
                row = table[_name]
                row[0] += 1
                row[1] += time.perf_counter() - t0
                row[2] += _payload_bytes(_name, args)

        setattr(cls, name, wrapper)


def worker(spec: dict) -> None:
    """One run of ``spec`` on this job's ranks; rank 0 prints its figures as one JSON line."""
    import petsc4py

    petsc4py.init(["bench"])

    from mlpar.api import train
    from mlpar.config import Config
    from mlpar.model import problems
    from mlpar.multilevel import amg, hierarchy
    from mlpar.parallel import comm as comm_module

    coll = defaultdict(lambda: [0, 0.0, 0])
    parts = defaultdict(lambda: [0, 0.0])
    _instrument(comm_module.Comm, COLLECTIVES, coll)
    block = problems.ResidualBlock
    block.residuals_and_jacobian = timed(parts, "J", block.residuals_and_jacobian)
    hierarchy.Hierarchy._transfer_at = timed(parts, "AMG", hierarchy.Hierarchy._transfer_at)
    amg.gram_blocks = timed(parts, "AMG Gram blocks", amg.gram_blocks)
    for name in SERIAL_AMG:  # rank 0's part of the set-up (those of amg.py's functions it has)
        if hasattr(amg, name):
            setattr(amg, name, timed(parts, "AMG serial", getattr(amg, name)))

    comm = comm_module.world()
    cfg = Config(
        problem="fit",
        points=spec["points"],
        width=spec["width"],
        method=spec["method"],
        seed=0,
        max_iter=spec["max_iter"],
        gtol=0.0,
        ftol=0.0,
        quiet=True,
    )
    comm.barrier()
    t0 = time.perf_counter()
    out = train(cfg, comm)
    total = time.perf_counter() - t0
    comm_s = sum(row[1] for row in coll.values())
    comm_max = comm.max_scalar(comm_s)
    comm_min = -comm.max_scalar(-comm_s)
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    peaks = comm.mpi.gather(peak_mb, root=0)
    if not comm.is_root:
        return
    hist = out.history
    times = [0.0] + [r.time for r in hist]
    flops = [0.0] + [r.flops_matvec for r in hist]
    print(
        json.dumps(
            {
                "spec": spec,
                "ranks": comm.size,
                "iterations": out.iterations,
                "iteration_s": [b - a for a, b in zip(times, times[1:])],
                "iteration_flops": [b - a for a, b in zip(flops, flops[1:])],
                "ksp_its": [r.ksp_its for r in hist],
                "levels": [r.level for r in hist],
                "widths": [list(r.widths) for r in hist],
                "total_s": total,
                "elapsed_s": out.wall_time,
                "flops_matvec": out.flops_matvec,
                "comm_s_rank0": comm_s,
                "comm_s_max": comm_max,
                "comm_s_min": comm_min,
                "collectives": {
                    k: {"calls": v[0], "s": v[1], "bytes": v[2]} for k, v in coll.items()
                },
                "parts": {k: {"calls": v[0], "s": v[1]} for k, v in parts.items()},
                "peak_mb": peaks,
                "loss": out.loss,
            }
        )
    )


def estimate_gb(method: str, points: int, width: int, ranks: int) -> float:
    """mlpar's own estimate of the case's peak memory, summed over its ``ranks`` (GB)."""
    from mlpar import memory
    from mlpar.config import Config

    est = memory.estimate(Config(problem="fit", points=points, width=width, method=method), ranks)
    return (est.root_bytes + (ranks - 1) * est.other_bytes) / 1e9


def run_case(spec: dict, ranks: int, lock: str | None) -> tuple[dict, str]:
    """Run one case on ``ranks`` ranks (under ``flock lock`` if given); its JSON and the load
    average (``uptime``) just before it started."""
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "PYTHONPATH": str(ROOT),
    }
    inner = [
        "mpiexec",
        "--map-by",
        ":OVERSUBSCRIBE",
        "-n",
        str(ranks),
        sys.executable,
        __file__,
        "--worker",
        json.dumps(spec),
    ]
    # The load average is read inside the lock, just before the run.
    shell = 'cat /proc/loadavg >&2; exec "$@"'
    cmd = ["sh", "-c", shell, "sh", *inner]
    if lock:
        cmd = ["flock", lock, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(inner)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    load = " ".join(out.stderr.strip().splitlines()[0].split()[:3])
    return json.loads(out.stdout.strip().splitlines()[-1]), load


def summarise(d: dict) -> dict:
    """Per-iteration figures of one run: the first iteration, the mean of the others, the
    communication share of the whole run on rank 0 (and the slowest rank's)."""
    its = d["iteration_s"]
    rest = its[1:] or its
    return {
        "first_s": its[0],
        "mean_s": sum(rest) / len(rest),
        "mean_flops": sum(d["iteration_flops"][1:] or d["iteration_flops"])
        / len(d["iteration_flops"][1:] or d["iteration_flops"]),
        "comm_share": d["comm_s_rank0"] / d["total_s"],
        "comm_share_max": d["comm_s_max"] / d["total_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", metavar="METHOD:POINTS:WIDTH", default=DEFAULT_CASES)
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--max-iter", type=int, default=3)
    ap.add_argument(
        "--max-gb",
        type=float,
        default=20.0,
        help="skip a case whose estimated memory (all ranks) exceeds this",
    )
    ap.add_argument("--lock", help="run every case under `flock LOCK` (the shared bench lock)")
    ap.add_argument("--json", help="write every run's figures to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    print_header(
        [
            "method",
            "points t",
            "width r",
            "ranks",
            "load avg",
            "est. GB",
            "first it. [s]",
            "mean of the others [s]",
            "flops/it.",
            "comm share",
            "speed-up 1→N",
            "peak MB per rank",
        ]
    )
    runs = []
    for case in args.cases:
        method, points, width = case.split(":")
        spec = {
            "method": method,
            "points": int(points),
            "width": int(width),
            "max_iter": args.max_iter,
        }
        base = None
        for ranks in args.ranks:
            gb = estimate_gb(method, spec["points"], spec["width"], ranks)
            label = f"| {method} | {points} | {width} | {ranks} |"
            if gb > args.max_gb:
                print(
                    f"{label} — | {gb:.1f} | skipped: estimate above {args.max_gb} GB |", flush=True
                )
                runs.append({"spec": spec, "ranks": ranks, "estimate_gb": gb, "skipped": True})
                continue
            d, load = run_case(spec, ranks, args.lock)
            s = summarise(d)
            d.update(summary=s, load_average=load, estimate_gb=gb)
            runs.append(d)
            base = s["mean_s"] if ranks == 1 else base
            speedup = f"{base / s['mean_s']:.2f}" if base and ranks > 1 else "—"
            print(
                f"{label} {load} | {gb:.1f} | {s['first_s']:.2f} | {s['mean_s']:.2f} | "
                f"{s['mean_flops']:.3g} | {100 * s['comm_share']:.1f} % "
                f"(max {100 * s['comm_share_max']:.1f} %) | {speedup} | "
                f"{' / '.join(f'{p:.0f}' for p in d['peak_mb'])} |",
                flush=True,
            )
            _write(args.json, runs)
    if args.json:
        print(f"written: {args.json}")


def _write(path: str | None, runs: list) -> None:
    """The runs so far and the command to ``path`` (after every case: a stopped benchmark
    keeps the cases it finished)."""
    if path:
        with open(path, "w") as fh:
            json.dump(
                {"command": " ".join([sys.executable, *sys.argv]), "runs": runs}, fh, indent=1
            )


if __name__ == "__main__":
    main()
