"""The 2D benchmarks of issue 18: helmholtz2d (a₁ = 1, a₂ = 4, k = 1) and poisson2d with lm and
rlm side by side, each as one ``python -m mlpar`` run on RANKS ranks with a wall-clock limit.

Prints, per run: relative L2 error and RMSE on the test grid, wall time, iterations, status, and
the exact command.  A run still going at the limit gets SIGUSR1 (forwarded by mpiexec to the
ranks), checkpoints and stops with status ``interrupted``: its figures are those at the limit.

    python scripts/bench_2d.py                      # both problems, lm and rlm, 600 s each
    python scripts/bench_2d.py --limit 120 --problems helmholtz2d --methods lm
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchrun import ROOT, print_header

#: The options of each benchmark beyond the problem's defaults (see docs/notes/2026-12-2d.md):
#: a narrower network than the 1D default (width 512) and the direct solve, whose cost per
#: iteration (2mn² + n³/3) is far below that of CG on these ill-conditioned normal equations.
SETTINGS = {"helmholtz2d": ["--width", "128", "--solve-form", "direct"],
            "poisson2d": ["--width", "128", "--solve-form", "direct"]}


def run(problem: str, method: str, ranks: int, limit: float, extra: list[str]) -> dict:
    """One run; returns its figures from the output file."""
    import h5py
    out = Path(tempfile.mkdtemp(prefix="bench2d-")) / f"{problem}-{method}.h5"
    args = ["--problem", problem, "--method", method, *SETTINGS[problem], *extra, "--quiet",
            "--out", str(out)]
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks), sys.executable, "-m",
           "mlpar", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        proc.communicate()
    if proc.returncode not in (0, 75):
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    with h5py.File(out, "r") as fh:
        a = fh.attrs
        figures = {key: a[key] for key in ("rel_l2", "rmse", "wall_time", "iterations", "status",
                                           "training_points", "flops_matvec")}
    out.unlink()
    out.parent.rmdir()
    figures["command"] = "mpiexec -n %d python -m mlpar %s" % (
        ranks, " ".join(a for a in args[:-2]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["helmholtz2d", "poisson2d"])
    parser.add_argument("--methods", nargs="+", default=["lm", "rlm"])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--limit", type=float, default=600.0, help="seconds per run")
    parser.add_argument("extra", nargs="*", help="more mlpar options for every run (after --)")
    ns = parser.parse_args()
    print_header(["problem", "method", "rel. L2", "RMSE", "time (s)", "iterations", "status",
                  "flops_matvec", "command"])
    for problem in ns.problems:
        for method in ns.methods:
            f = run(problem, method, ns.ranks, ns.limit, ns.extra)
            print(f"| {problem} | {method} | {f['rel_l2']:.2e} | {f['rmse']:.2e} | "
                  f"{f['wall_time']:.0f} | {f['iterations']} | {f['status']} | "
                  f"{f['flops_matvec']:.2e} | `{f['command']}` |", flush=True)


if __name__ == "__main__":
    main()
