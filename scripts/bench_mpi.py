#!/usr/bin/env python
"""This machine's MPI: ping-pong latency α and bandwidth β, and Allreduce time against size.

Usage (from the repository root, after ``make setup``; as root Open MPI wants
``OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``)::

    mpiexec -n 2 .venv/bin/python scripts/bench_mpi.py --json runs/mpi-2.json
    mpiexec --map-by :OVERSUBSCRIBE -n 4 .venv/bin/python scripts/bench_mpi.py --json runs/mpi-4.json
    mpiexec -n 2 .venv/bin/python scripts/bench_mpi.py --quick      # a few seconds

Ping-pong (ranks 0 and 1 only): rank 0 sends b bytes to rank 1, which sends them back; the
one-way time is half the round trip, the minimum over the repeats.  Allreduce (every rank):
the minimum over the repeats of the slowest rank's time of one ``Allreduce`` of b bytes of
float64 (MPI.SUM) after a barrier.  Each is fitted by least squares to the α–β model

    t(b) = α + b / β,

α the latency (s) and β the bandwidth (bytes/s), over the sizes of the table (relative
residuals, so that the small sizes count as much as the large ones).  The table, the fit and
the command are printed on rank 0; ``--json`` writes them for ``scripts/plot_scaling.py``.
More ranks than cores (``--map-by :OVERSUBSCRIBE``) measure the scheduler as much as MPI:
the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np
from mpi4py import MPI

#: Message sizes in bytes: 8 B … 64 MB, by factors of 4 then 2 at the top.
SIZES = [8 * 4**k for k in range(12)] + [2**26]
QUICK_SIZES = [8, 512, 32768, 2**20]


def repeats_for(nbytes: int, quick: bool) -> int:
    """How many repetitions at ``nbytes``: many for small messages, a few for 64 MB."""
    base = 5 if quick else 20
    return max(3, min(2000 if not quick else 50, base * (2**22 // max(nbytes, 1))))


def pingpong(comm: MPI.Comm, nbytes: int, reps: int) -> float | None:
    """One-way time (s) of ``nbytes`` between ranks 0 and 1: the minimum of half the round
    trips on rank 0 (None elsewhere)."""
    buf = np.zeros(max(nbytes // 8, 1))
    rank = comm.Get_rank()
    best = np.inf
    comm.Barrier()
    for _ in range(reps):
        if rank == 0:
            t0 = MPI.Wtime()
            comm.Send(buf, dest=1, tag=7)
            comm.Recv(buf, source=1, tag=7)
            best = min(best, (MPI.Wtime() - t0) / 2)
        elif rank == 1:
            comm.Recv(buf, source=0, tag=7)
            comm.Send(buf, dest=0, tag=7)
    comm.Barrier()
    return best if rank == 0 else None


def allreduce(comm: MPI.Comm, nbytes: int, reps: int) -> float:
    """Time (s) of one Allreduce of ``nbytes`` of float64: the minimum over ``reps`` of the
    slowest rank's time after a barrier."""
    send = np.ones(max(nbytes // 8, 1))
    recv = np.empty_like(send)
    best = np.inf
    for _ in range(reps):
        comm.Barrier()
        t0 = MPI.Wtime()
        comm.Allreduce(send, recv, op=MPI.SUM)
        best = min(best, comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX))
    return best


def fit_alpha_beta(sizes, times) -> tuple[float, float]:
    """(α, β) of t = α + b/β by least squares on the relative residuals (t_i − α − b_i/β)/t_i,
    a 2 × 2 linear problem in (α, 1/β); 1/β is kept ≥ 0 (β = inf if the times do not grow)."""
    b = np.asarray(sizes, dtype=float)
    t = np.asarray(times, dtype=float)
    A = np.column_stack([1.0 / t, b / t])
    (alpha, inv_beta), *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
    if inv_beta <= 0:
        return float(np.min(t)), float("inf")
    return float(alpha), float(1.0 / inv_beta)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="four sizes up to 1 MB and few repetitions (a few seconds)",
    )
    ap.add_argument("--json", help="write the table and the fit to this file (rank 0)")
    args = ap.parse_args(argv)

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size < 2:
        sys.exit("bench_mpi.py needs at least 2 ranks (mpiexec -n 2 ...)")
    sizes = QUICK_SIZES if args.quick else SIZES
    cores = os.cpu_count() or 1
    oversubscribed = size > cores
    load_before = load_average()

    rows = []
    for nbytes in sizes:
        reps = repeats_for(nbytes, args.quick)
        pp = pingpong(comm, nbytes, reps)
        ar = allreduce(comm, nbytes, reps)
        if rank == 0:
            rows.append({"bytes": nbytes, "reps": reps, "pingpong_s": pp, "allreduce_s": ar})

    if rank != 0:
        return None
    pp_alpha, pp_beta = fit_alpha_beta([r["bytes"] for r in rows], [r["pingpong_s"] for r in rows])
    ar_alpha, ar_beta = fit_alpha_beta([r["bytes"] for r in rows], [r["allreduce_s"] for r in rows])
    command = "mpiexec -n {} {} {}".format(
        size, sys.executable, " ".join([sys.argv[0], *sys.argv[1:]])
    )
    result = {
        "ranks": size,
        "cores": cores,
        "oversubscribed": oversubscribed,
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
        "host": platform.node(),
        "load_average": {"before": load_before, "after": load_average()},
        "command": command,
        "rows": rows,
        "pingpong": {"alpha_s": pp_alpha, "beta_Bps": pp_beta},
        "allreduce": {"alpha_s": ar_alpha, "beta_Bps": ar_beta},
    }
    label = f"{size} ranks" + (f", OVERSUBSCRIBED on {cores} cores" if oversubscribed else "")
    print(f"# MPI on {result['host']} ({label}): {result['mpi']}")
    print(f"# load average before: {load_before}, after: {result['load_average']['after']}")
    print(
        "| bytes | repeats | ping-pong one-way [µs] | ping-pong [GB/s] | "
        f"Allreduce on {size} [µs] | Allreduce [GB/s] |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['bytes']} | {r['reps']} | {r['pingpong_s'] * 1e6:.2f} | "
            f"{r['bytes'] / r['pingpong_s'] / 1e9:.3f} | {r['allreduce_s'] * 1e6:.2f} | "
            f"{r['bytes'] / r['allreduce_s'] / 1e9:.3f} |"
        )
    print(
        f"fit t = α + b/β: ping-pong α = {pp_alpha * 1e6:.2f} µs, β = {pp_beta / 1e9:.2f} GB/s; "
        f"Allreduce ({label}) α = {ar_alpha * 1e6:.2f} µs, β = {ar_beta / 1e9:.2f} GB/s"
    )
    print(f"command: {command}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
        print(f"written: {args.json}")
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
