"""Whole runs on the 2D problems: a small Poisson problem converges with lm and rlm, the output
file holds the 2D solution, and a 2D checkpoint resumes bit for bit."""

import numpy as np
import pytest
from helpers import run_mlpar
from mpi4py import MPI

from mlpar.api import evaluate, train
from mlpar.config import Config
from mlpar.io.output import read_result
from mlpar.parallel.comm import Comm

SMALL = dict(problem="poisson2d", nu=2.0, width=16, points=6, init="spread", lambda_p=1.0,
             min_width=4, max_iter=800, ftol=1e-9, quiet=True)


@pytest.mark.parametrize("method", ["lm", "rlm"])
def test_small_2d_poisson_converges(method):
    """u = sin 2x sin 2y on a 6 × 6 grid: the test-grid error (31 × 31 points) is small."""
    out = train(Config(**SMALL, method=method).validate(), Comm(MPI.COMM_SELF))
    assert out.state.status == "converged", out.state.message
    assert out.rel_l2 < 1e-3 and out.rmse < 1e-3
    if method == "rlm":   # a coarse level of the 2D network was built
        assert any(len(r.widths) > 1 and r.widths[1] > 0 for r in out.state.history)


def test_evaluate_gives_the_2d_solution_on_the_test_grid():
    cfg = Config(problem="helmholtz2d", width=4, test_points=50).validate()
    x = np.zeros(cfg.layout.size)
    error, solution = evaluate(cfg, x)
    assert set(solution) == {"x", "y", "u", "u_true"}
    nx = round(50 ** 0.5)
    assert solution["x"].shape == (nx,) and solution["u"].shape == (nx, nx)
    X, Y = np.meshgrid(solution["x"], solution["y"], indexing="ij")
    assert np.allclose(solution["u_true"], np.sin(np.pi * X) * np.sin(4 * np.pi * Y), atol=1e-15)
    # ĝ = 0: the error is the solution itself
    assert error["rel_l2"] == pytest.approx(1.0)
    assert error["rmse"] == pytest.approx(np.sqrt(np.mean(solution["u_true"] ** 2)))


RUN = ["--problem", "helmholtz2d", "--a2", "2", "--width", "16", "--points", "6", "--quiet",
       "--seed", "2", "--min-width", "4"]


@pytest.mark.parametrize("method", ["rlm", "arc"])
def test_2d_resume_continues_bit_for_bit(tmp_path, method):
    ref, part = tmp_path / "ref.h5", tmp_path / "part.h5"
    proc = run_mlpar([*RUN, "--method", method, "--max-iter", "30", "--out", ref], 2)
    assert proc.returncode == 0, proc.stderr
    proc = run_mlpar([*RUN, "--method", method, "--max-iter", "17", "--checkpoint-every", "5",
                      "--out", part], 2)
    assert proc.returncode == 0, proc.stderr
    proc = run_mlpar(["--resume", part, "--max-iter", "30"], 2)
    assert proc.returncode == 0, proc.stderr
    a, b = read_result(ref), read_result(part)
    assert np.array_equal(a["params"], b["params"])
    for key in a["history"]:
        if key != "time":
            assert np.array_equal(a["history"][key], b["history"][key]), key
    for key in ("flops_matvec", "loss", "rmse", "rel_l2", "iterations"):
        assert a["attrs"][key] == b["attrs"][key], key
    assert a["solution"]["u"].ndim == 2 and a["attrs"]["rel_l2"] > 0
