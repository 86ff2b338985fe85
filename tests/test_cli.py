"""The command line end to end: bad input, the output file, rank invariance, PETSc options."""

import h5py
import numpy as np
import pytest
from helpers import run_mlpar

from mlpar.io.output import HISTORY_FIELDS, read_result

SMALL = ["--problem", "poisson", "--nu", "5", "--width", "32", "--quiet"]


def _assert_clean_error(proc, fragment):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("mlpar: error:") == 1, proc.stderr
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


BAD_ARGS = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--width", "-5"], "--width: must be a positive integer"),
    (["--width", "abc"], "--width: invalid int value"),
    (["--width", "0"], "--width: must be a positive integer"),
    (["--nu", "nan"], "--nu: must be a finite number"),
    (["--nu", "-3"], "--nu: must be > 0"),
    (["--problem", "heat"], "--problem: invalid choice"),
    (["--method", "lm", "--loss", "l1"], "needs --loss l2"),
    (["--method", "rlm", "--loss", "logistic"], "use --method arc or rarc"),
    (["--method", "arc", "--l1-smoothing", "0"], "--l1-smoothing: must be > 0"),
    (["--method", "rarc", "--krylov-max-it", "0"], "--krylov-max-it: must be a positive"),
    (["--method", "rarc", "--coarse-model", "restricted"], "implemented for rlm only"),
    (["--model-choice", "best"], "--model-choice: invalid choice"),
    (["--max-iter", "-1"], "--max-iter: must be >= 0"),
    (["--lambda-min", "1", "--lambda0", "0.1"], "must not exceed --lambda0"),
    (["--out", "/nonexistent-dir/x.h5"], "does not exist"),
    (["--config", "/nonexistent.toml"], "cannot read"),
]


@pytest.mark.parametrize("nranks", [1, 3])
@pytest.mark.parametrize("args,fragment", BAD_ARGS, ids=[a[0][0] + "=" + a[0][-1] for a in BAD_ARGS])
def test_bad_arguments_give_one_clear_error(tmp_path, args, fragment, nranks):
    _assert_clean_error(run_mlpar([*args, "--out", tmp_path / "o.h5"] if "--out" not in args
                                  else args, nranks, timeout=60), fragment)


BAD_TOML = [
    ("width = ", "not valid TOML"),
    ("widht = 4", "unknown key 'widht'"),
    ('width = "big"', "width: expected int"),
    ("quiet = 1", "quiet: expected bool"),
    ("[width]\nx = 1", "must be a value, not a table"),
    ("nu = -1.0", "--nu: must be > 0"),
]


@pytest.mark.parametrize("text,fragment", BAD_TOML)
def test_bad_config_files_give_one_clear_error(tmp_path, text, fragment):
    cfg = tmp_path / "run.toml"
    cfg.write_text(text + "\n")
    _assert_clean_error(run_mlpar(["--config", cfg, "--out", tmp_path / "o.h5"], 2, timeout=60),
                        fragment)


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"precious")
    _assert_clean_error(run_mlpar([*SMALL, "--max-iter", "1", "--out", out], 2), "file exists")
    assert out.read_bytes() == b"precious"


def test_help_exits_zero():
    proc = run_mlpar(["--help"], 2, timeout=60)
    assert proc.returncode == 0 and "--width" in proc.stdout


def test_config_file_is_read_and_command_line_wins(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('problem = "fit"\nnu = 3.0\nwidth = 9\nmax-iter = 2\nseed = 4\n')
    out = tmp_path / "o.h5"
    proc = run_mlpar(["--config", cfg, "--width", "11", "--out", out, "--quiet"], 1)
    assert proc.returncode == 0, proc.stderr
    res = read_result(out)
    assert res["params"].size == 33 and res["attrs"]["iterations"] == 2
    assert '"problem": "fit"' in res["attrs"]["config"]


def test_output_file_is_complete_and_readable(tmp_path):
    out = tmp_path / "o.h5"
    proc = run_mlpar([*SMALL, "--max-iter", "12", "--out", out], 2)
    assert proc.returncode == 0, proc.stderr
    assert "max_iter" in proc.stdout and "RMSE" in proc.stdout
    with h5py.File(out, "r") as fh:
        for key in ("status", "iterations", "rmse", "loss", "gnorm", "flops_matvec", "nranks",
                    "mlpar_version", "config", "petsc_version", "mpi_library"):
            assert key in fh.attrs, key
        assert fh.attrs["status"] == "max_iter" and fh.attrs["iterations"] == 12
        assert fh.attrs["nranks"] == 2 and fh.attrs["flops_matvec"] > 0
        assert fh["params"].shape == (96,) and "layout" in fh["params"].attrs
        for name in HISTORY_FIELDS:
            assert fh["history"][name].shape[0] == 12, name
        hist = fh["history"]
        # the level widths of each iteration: the trained network first, then the hierarchy
        # in use, 0 for a level not built; a step from level l needs levels 1..l built
        widths, level = hist["widths"][()], hist["level"][()]
        assert widths.shape == (12, 3) and np.all(widths[:, 0] == 32)
        for row, lev in zip(widths, level):
            built = row[row > 0]
            assert np.all(np.diff(built) < 0) and np.all(row[built.size:] == 0)
            assert built.size > lev
        assert level.max() > 0
        assert np.all(np.diff(hist["flops_matvec"][()]) > 0)
        # the loss never increases: rejected steps keep x, accepted ones decrease f
        assert np.all(np.diff(hist["loss"][()]) <= 0)
        assert fh["solution"]["z"].shape[0] >= 1000
        assert np.isclose(fh.attrs["rmse"], np.sqrt(np.mean(
            (fh["solution"]["u"][()] - fh["solution"]["u_true"][()]) ** 2)))
        # l2: f = ½·(seed's L2) + the boundary term, so the seed's value is below 2f
        assert 0 < fh.attrs["seed_loss"] <= 2 * fh.attrs["loss"]
    assert not (tmp_path / "o.h5.tmp").exists()


@pytest.mark.parametrize("method", ["lm", "arc"])
def test_a_single_level_method_records_one_width(tmp_path, method):
    out = tmp_path / "o.h5"
    proc = run_mlpar([*SMALL, "--method", method, "--max-iter", "3", "--out", out])
    assert proc.returncode == 0, proc.stderr
    widths = read_result(out)["history"]["widths"]
    assert widths.shape == (3, 1) and np.all(widths == 32)


def test_logistic_training_reports_the_seed_formula(tmp_path):
    out = tmp_path / "o.h5"
    proc = run_mlpar(["--problem", "fit", "--nu", "3", "--width", "16", "--quiet", "--method", "arc",
                      "--loss", "logistic", "--out", out], 2)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as fh:
        assert fh.attrs["status"] == "converged"
        # at a fit (residuals ≈ 0) the seed's 1/(1 + e^{y − ĝ}) is ½, not its infimum 0
        assert fh.attrs["seed_loss"] == pytest.approx(0.5, abs=1e-3)
        assert fh.attrs["loss"] < 1e-6


@pytest.mark.parametrize("method,extra", [
    ("lm", []), ("rlm", []), ("arc", ["--loss", "logistic"]),
    ("rarc", ["--loss", "l1", "--kappa-h", "0.1"]),
    ("rlm", ["--coarse-model", "restricted", "--model-choice", "cost", "--kappa-h", "0.1",
             "--coarse-max-iter", "3"]),
    ("rlm", ["--coarse-model", "restricted", "--interpolation", "injection", "--levels", "3",
             "--min-width", "4", "--rebuild-every", "5", "--kappa-h", "0.1",
             "--coarse-max-iter", "3"])])
def test_weights_do_not_depend_on_the_number_of_ranks(tmp_path, method, extra):
    params = {}
    for n in (1, 2, 3):
        out = tmp_path / f"o{n}.h5"
        proc = run_mlpar([*SMALL, "--width", "64", "--max-iter", "15", "--method", method,
                          *extra, "--out", out], n)
        assert proc.returncode == 0, proc.stderr
        params[n] = read_result(out)["params"]
    for n in (2, 3):
        rel = np.linalg.norm(params[n] - params[1]) / np.linalg.norm(params[1])
        assert rel < 1e-8, f"{n} ranks differ from 1 rank by {rel:.2e}"


def test_petsc_options_reach_the_ksp(tmp_path):
    proc = run_mlpar([*SMALL, "--max-iter", "1", "--out", tmp_path / "o.h5",
                      "--solve-form", "residual", "-ksp_type", "gmres", "-ksp_monitor",
                      "-ksp_view"], 2)
    assert proc.returncode == 0, proc.stderr
    assert "KSP Residual norm" in proc.stdout
    assert "type: gmres" in proc.stdout


def test_petsc_options_reach_the_direct_solve(tmp_path):
    """The default form on few residuals factorises JJᵀ + λI (preonly, Cholesky); the
    options database can turn it into CG on the same m × m system, with the same result."""
    params = {}
    for name, opts in (("direct", ["-ksp_view"]),
                       ("cg", ["-ksp_type", "cg", "-pc_type", "none", "-ksp_monitor"])):
        out = tmp_path / f"{name}.h5"
        proc = run_mlpar([*SMALL, "--max-iter", "3", "--out", out, *opts], 2)
        assert proc.returncode == 0, proc.stderr
        params[name] = read_result(out)["params"]
        if name == "direct":
            assert "type: preonly" in proc.stdout and "type: cholesky" in proc.stdout
        else:
            assert "KSP Residual norm" in proc.stdout
    rel = np.linalg.norm(params["cg"] - params["direct"]) / np.linalg.norm(params["direct"])
    assert rel < 1e-6, rel
