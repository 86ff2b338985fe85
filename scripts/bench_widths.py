"""Large widths: peak memory per rank, AMG set-up time and total time of short rlm runs.

Each case runs ``python -m mlpar`` under ``mpiexec`` with every rank wrapped by this script
(``--rank``): the wrapper times :func:`mlpar.multilevel.hierarchy.neuron_transfer` (the AMG
set-up of every level, collective) and prints, at exit, the rank's peak resident memory
(VmHWM of /proc/self/status).  Run one case at a time under the benchmark lock::

    flock /tmp/mlpar-bench.lock .venv/bin/python scripts/bench_widths.py --width 32768 \\
        --points 1024 --ranks 2 -- --amg-sample 256

Arguments after ``--`` go to mlpar as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchrun import ROOT, print_header  # noqa: E402

MARK = "BENCH_WIDTHS "


def vm_hwm_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def rank_main(argv: list[str]) -> int:
    """One rank: mlpar's command line ``argv`` with the set-up timed; the figures at exit."""
    from mpi4py import MPI

    from mlpar.cli.main import main
    from mlpar.multilevel import hierarchy

    spent = [0.0]
    inner = hierarchy.neuron_transfer

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    hierarchy.neuron_transfer = timed
    start = time.perf_counter()
    code = main(argv)
    total = time.perf_counter() - start
    print(MARK + json.dumps({"rank": MPI.COMM_WORLD.Get_rank(), "peak_mb": vm_hwm_mb(),
                             "setup_s": spent[0], "total_s": total}), flush=True)
    return code


def run_case(width: int, points: int, ranks: int, max_iter: int, extra: list[str]) -> dict:
    """Run one case; the per-rank figures and the command."""
    args = ["--problem", "fit", "--width", str(width), "--points", str(points), "--method",
            "rlm", "--max-iter", str(max_iter), "--out", f"runs/widths-{width}-{points}.h5",
            "--force", *extra]
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks), sys.executable,
           "-m", "mpi4py", __file__, "--rank", "--", *args]
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1"}
    (ROOT / "runs").mkdir(exist_ok=True)
    load = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"case failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    ranks_out = sorted((json.loads(line[len(MARK):]) for line in out.stdout.splitlines()
                        if line.startswith(MARK)), key=lambda d: d["rank"])
    banner = [line for line in out.stdout.splitlines() if "memory" in line.lower()]
    import h5py
    with h5py.File(ROOT / args[args.index("--out") + 1]) as fh:
        loss, iterations = float(fh.attrs["loss"]), int(fh.attrs["iterations"])
    return {"ranks": ranks_out, "load": load, "loss": loss, "iterations": iterations, "command": " ".join(["mpiexec", "-n", str(ranks),
            "python -m mpi4py -m mlpar", *args]), "banner": banner}


def main() -> None:
    if "--rank" in sys.argv:
        rest = sys.argv[sys.argv.index("--rank") + 1:]
        sys.exit(rank_main(rest[1:] if rest[:1] == ["--"] else rest))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, nargs="+", default=[32768])
    parser.add_argument("--points", type=int, nargs="+", default=[1024],
                        help="one per width, or one for all")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=5)
    own, _, extra = " ".join(sys.argv[1:]).partition(" -- ")
    opts = parser.parse_args(own.split())
    points = opts.points * len(opts.width) if len(opts.points) == 1 else opts.points
    print_header(["width", "points", "ranks", "rank 0 peak MB", "other ranks' peak MB",
                  "ratio", "AMG set-up s", "total s", "iterations", "loss", "load"])
    for width, pts in zip(opts.width, points):
        case = run_case(width, pts, opts.ranks, opts.max_iter, extra.split())
        peaks = [r["peak_mb"] for r in case["ranks"]]
        others = max(peaks[1:]) if len(peaks) > 1 else peaks[0]
        root = case["ranks"][0]
        print(f"| {width} | {pts} | {opts.ranks} | {peaks[0]:.0f} | "
              f"{' / '.join(f'{p:.0f}' for p in peaks[1:])} | {peaks[0] / others:.2f} | "
              f"{root['setup_s']:.1f} | {root['total_s']:.1f} | {case['iterations']} | "
              f"{case['loss']:.4e} | {case['load']:.2f} |",
              flush=True)
        print(f"  command: {case['command']}")
        for line in case["banner"]:
            print(f"  {line.strip()}")


if __name__ == "__main__":
    main()
