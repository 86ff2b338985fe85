"""``scripts/profile_iteration.py`` sorts the profile into its kinds of work and prints a row for
each, the shares adding up to the whole."""

import subprocess
import sys

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "profile_iteration.py"
sys.path.insert(0, str(SCRIPT.parent))

import profile_iteration  # noqa: E402


def test_kinds_of_profiled_functions():
    kind = profile_iteration.kind
    assert kind("/x/mlpar/model/activations.py", "_tanh_derivatives") == "σ and its derivatives"
    assert kind("/x/mlpar/model/network.py", "operator_jacobian") == \
        "network values and Jacobians"
    assert kind("~", "<method 'solve' of 'petsc4py.PETSc.KSP' objects>") == "PETSc KSP solve"
    assert kind("~", "<method 'Allreduce' of 'mpi4py.MPI.Comm' objects>") == "MPI"
    assert kind("/x/mlpar/linalg/linsolve.py", "_solve_direct") == "Gram matrices, solve set-up"
    assert kind("/x/mlpar/optim/driver.py", "step") == "driver, ratio test, records"
    assert kind("/x/site-packages/scipy/sparse/_base.py", "__matmul__") == "multilevel"
    assert kind("~", "<built-in method builtins.len>") == "other"


def test_profile_prints_every_kind_and_the_shares_add_up():
    out = subprocess.run([sys.executable, str(SCRIPT), "--case", "poisson2d-5", "--method", "lm",
                          "--max-iter", "20"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "mlpar lm, seed 0, 1 rank" in out.stdout
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    labels = [r[1].strip() for r in rows]
    assert labels == [k for k, _ in profile_iteration.KINDS] + ["other"]
    shares = [float(r[3].strip().rstrip("%")) for r in rows]
    assert abs(sum(shares) - 100) <= len(shares) * 0.5   # each share rounded to 1 %
    assert float(rows[labels.index("network values and Jacobians")][2]) > 0
