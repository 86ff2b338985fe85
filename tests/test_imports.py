"""The ``lm`` command does not import what only other methods need (pyamg and the scipy
submodules of the multilevel, preconditioner, cubic and logit code): their imports are a good
part of the command's start-up time (scripts/bench_startup.py). The ``rlm`` run of the same
probe does import pyamg and scipy.sparse, so the probe sees imports when there are some."""

import json
import os
import subprocess
import sys

from helpers import MPI_ENV, ROOT

HEAVY = ("pyamg", "scipy.sparse", "scipy.linalg", "scipy.optimize", "scipy.special")
PROBE = f"""
import json, sys
from mlpar.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "imported": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def imported_by_command(method, tmp_path):
    """Run mlpar's command line (``main``) on a small problem in a fresh interpreter; return
    which of :data:`HEAVY` are in its ``sys.modules`` afterwards."""
    args = ["--problem", "poisson", "--nu", "5", "--width", "16", "--max-iter", "3",
            "--method", method, "--out", str(tmp_path / f"{method}.h5"), "--quiet"]
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["code"] == 0
    return found["imported"]


def test_lm_command_imports_neither_pyamg_nor_the_scipy_submodules(tmp_path):
    assert imported_by_command("lm", tmp_path) == []


def test_rlm_command_imports_the_amg_modules(tmp_path):
    imported = imported_by_command("rlm", tmp_path)
    assert "pyamg" in imported and "scipy.sparse" in imported
