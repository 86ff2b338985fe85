"""What the benchmark scripts share: the command/machine header of their tables, running one
worker under ``mpiexec``, the peak memory of a worker's ranks, and timing a function's calls."""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def print_header(columns: list[str]) -> None:
    """The command, the machine, and the head of a Markdown table with ``columns``."""
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


def run_worker(script: str, ranks: int, args: list[str]) -> dict:
    """Run ``script --worker ARGS`` on ``ranks`` MPI ranks; return the JSON its rank 0 printed."""
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PYTHONPATH": str(ROOT)}
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks), sys.executable, script,
           "--worker", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb(comm) -> float:
    """The largest peak resident memory of the ranks of ``comm``, in MB."""
    return comm.max_scalar(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def timed(table: dict, part: str, fn):
    """``fn`` with its calls counted and timed into ``table[part]``."""
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[part][0] += 1
            table[part][1] += time.perf_counter() - t0
    return wrapper
