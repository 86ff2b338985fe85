"""The command line end to end: bad input, the output file, rank invariance, PETSc options."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import run_mlpar

from mlpar import memory
from mlpar.cli.main import main
from mlpar.config import config_from_json
from mlpar.io.output import HISTORY_FIELDS, read_result

SMALL = ["--problem", "poisson", "--nu", "5", "--width", "32", "--quiet"]


def _assert_clean_error(proc, fragment, code=2):
    """A subprocess run ended with one message from rank 0, ``code`` and no traceback."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stderr.count("mlpar: error:") == 1, proc.stderr
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def run_in_process(capsys, monkeypatch):
    """``main(argv)`` in this process (no MPI start-up): (exit status, stdout, stderr).  The
    memory check sees a node with 16 GB free, so that its verdicts do not depend on the
    machine."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 16e9)

    def run(args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def _assert_refused(result, fragment):
    code, out, err = result
    assert code == 2, out + err
    assert err.count("mlpar: error:") == 1 and len(err.splitlines()) == 1, err
    assert fragment in err, err
    assert "Traceback" not in out + err


BAD_ARGS = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--width", "-5"], "--width: must be a positive integer"),
    (["--width", "abc"], "--width: invalid int value"),
    (["--width", "0"], "--width: must be a positive integer"),
    (["--nu", "nan"], "--nu: must be a finite number"),
    (["--nu", "-3"], "--nu: must be > 0"),
    (["--nu", "1e400"], "--nu: must be a finite number"),
    (["--nu", "1e308", "--points", "100"], "--nu 1e+308: the poisson problem's coefficients"),
    (["--problem", "helmholtz", "--nu", "1e200", "--points", "9"], "overflow double precision"),
    (["--problem", "heat"], "--problem: invalid choice"),
    (["--method", "lm", "--loss", "l1"], "needs --loss l2"),
    (["--method", "rlm", "--loss", "logistic"], "use --method arc or rarc"),
    (["--method", "arc", "--l1-smoothing", "0"], "--l1-smoothing: must be > 0"),
    (["--method", "rarc", "--krylov-max-it", "0"], "--krylov-max-it: must be a positive"),
    (["--method", "rarc", "--coarse-model", "restricted"], "implemented for rlm only"),
    (["--model-choice", "best"], "--model-choice: invalid choice"),
    (["--max-iter", "-1"], "--max-iter: must be >= 0"),
    (["--rebuild-every", "-2"], "--rebuild-every: must be >= 0, or -1"),
    (["--theta", "1"], "--theta: must be in (0, 1)"),
    (["--seed", "1" + "0" * 400], "--seed: a 401-digit integer is out of range"),
    (["--lambda-min", "1", "--lambda0", "0.1"], "must not exceed --lambda0"),
    (["--lambda-min", "1e13", "--lambda0", "1e13"], "--lambda-min: must be below λ_max"),
    (["--ksp-rtol", "2"], "--ksp-rtol: must be in (0, 1)"),
    (["--levels", "1000000000000"], "--levels: must be at most 200"),
    (["--out", "/nonexistent-dir/x.h5"], "does not exist"),
    (["--config", "/nonexistent.toml"], "cannot read"),
    # a single-dash spelling of an mlpar option is not handed to PETSc
    (["-width", "16"], "-width: unknown option; did you mean --width?"),
    (["-max_iter", "3"], "-max_iter: unknown option; did you mean --max-iter?"),
    (["-coarse-model", "network"], "did you mean --coarse-model?"),
]


@pytest.mark.parametrize("args,fragment", BAD_ARGS, ids=[" ".join(a[0]) for a in BAD_ARGS])
def test_bad_arguments_give_one_clear_error(tmp_path, run_in_process, args, fragment):
    out = [] if "--out" in args else ["--out", tmp_path / "o.h5"]
    _assert_refused(run_in_process([*args, *out]), fragment)


def test_a_bad_argument_under_mpi_gives_one_message_and_exit_2_on_every_rank(tmp_path):
    """Under 3 ranks: rank 0 alone reports, all ranks exit 2, nobody hangs (timeout)."""
    _assert_clean_error(run_mlpar(["-width", "16", "--out", tmp_path / "o.h5"], 3, timeout=60),
                        "did you mean --width?")


BAD_TOML = [
    ("width = ", "not valid TOML"),
    ("widht = 4", "unknown key 'widht'"),
    ('width = "big"', "width: expected int"),
    ("quiet = 1", "quiet: expected bool"),
    ("[width]\nx = 1", "must be a value, not a table"),
    ("nu = -1.0", "--nu: must be > 0"),
    ("nu = 1" + "0" * 400, "--nu: a 401-digit integer is too large for a floating-point"),
    ("width = 1" + "0" * 30, "--width: a 31-digit integer is out of range"),
]


@pytest.mark.parametrize("text,fragment", BAD_TOML, ids=[t[:12] for t, _ in BAD_TOML])
def test_bad_config_files_give_one_clear_error(tmp_path, run_in_process, text, fragment):
    cfg = tmp_path / "run.toml"
    cfg.write_text(text + "\n")
    _assert_refused(run_in_process(["--config", cfg, "--out", tmp_path / "o.h5"]), fragment)


@pytest.mark.parametrize("content,fragment", [
    ('width = 16\n'.encode("utf-16"), "UTF-16 text, not UTF-8 text"),
    (b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00\x00\x08\x08\x00", "an HDF5 file, not UTF-8"),
    (b"width = 16\n\x00\x00", "a binary file (it contains NUL bytes)")],
    ids=["utf16", "hdf5", "nul"])
def test_config_files_that_are_not_toml_text_are_named(tmp_path, run_in_process, content,
                                                       fragment):
    cfg = tmp_path / "run.toml"
    cfg.write_bytes(content)
    _assert_refused(run_in_process(["--config", cfg, "--out", tmp_path / "o.h5"]),
                    f"--config {cfg}: {fragment}")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_config_file_is_refused(tmp_path, run_in_process):
    _assert_refused(run_in_process(["--config", "/dev/zero", "--out", tmp_path / "o.h5"]),
                    "--config /dev/zero: larger than 1 MiB, not a configuration file")


def test_an_output_result_given_as_config_is_refused(tmp_path, run_in_process):
    result = tmp_path / "result.h5"
    with h5py.File(result, "w") as fh:
        fh.attrs["status"] = "converged"
    _assert_refused(run_in_process(["--config", result, "--out", tmp_path / "o.h5"]),
                    "an HDF5 file, not UTF-8 text")


def test_a_bad_config_file_under_mpi_gives_one_message(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_bytes("nu = 3\n".encode("utf-16"))
    _assert_clean_error(run_mlpar(["--config", cfg, "--out", tmp_path / "o.h5"], 2, timeout=60),
                        "UTF-16 text")


def test_an_output_directory_is_refused_even_with_force(tmp_path, run_in_process):
    (tmp_path / "run").mkdir()
    _assert_refused(run_in_process([*SMALL, "--out", tmp_path / "run", "--force"]),
                    f"--out {tmp_path / 'run'}: is a directory")
    assert list((tmp_path / "run").iterdir()) == []


# Sizes that cannot fit a node with 16 GB free (run_in_process): refused before allocating,
# with the estimate, what is available and the option that sets the largest item.
TOO_BIG = [
    (["--width", "100000000"], "AMG set-up", "--width"),
    (["--nu", "1000000"], "Jacobian blocks", "--points/--nu"),
    (["--test-points", "1000000000"], "test grid", "--test-points"),
    (["--width", "30000", "--solve-form", "assembled"], "assembled solve", "--solve-form"),
    (["--points", "50000000"], "Jacobian blocks", "--points/--nu"),
    (["--method", "arc", "--width", "100000000", "--krylov-max-it", "300"], "Lanczos basis",
     "--krylov-max-it"),
]


@pytest.mark.parametrize("args,item,option", TOO_BIG, ids=[" ".join(a) for a, _, _ in TOO_BIG])
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(tmp_path, run_in_process, args,
                                                            item, option):
    code, out, err = run_in_process([*args, "--out", tmp_path / "o.h5"])
    _assert_refused((code, out, err), "not enough memory: the run needs about ")
    assert "but 16 GB is available; the largest item is the " in err and item in err
    assert option in err.split("(set by ")[1]
    assert not (tmp_path / "o.h5").exists()


def test_a_huge_frequency_is_refused_before_its_grid_is_counted(tmp_path, run_in_process):
    _assert_refused(run_in_process(["--nu", "1e19", "--out", tmp_path / "o.h5"]),
                    "--nu 1e+19: the default grid h = 1/(3ν) would have more than")
    _assert_refused(run_in_process(["--nu", "1e308", "--out", tmp_path / "o.h5"]),
                    "--nu 1e+308: the poisson problem's coefficients or data overflow")


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"precious")
    _assert_clean_error(run_mlpar([*SMALL, "--max-iter", "1", "--out", out], 2), "file exists")
    assert out.read_bytes() == b"precious"


def test_help_exits_zero(run_in_process):
    code, out, _ = run_in_process(["--help"])
    assert code == 0 and "--width" in out


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
    proc = run_mlpar([*SMALL[:-1], "--max-iter", "12", "--out", out], 2)   # with the banner
    assert proc.returncode == 0, proc.stderr
    assert "max_iter" in proc.stdout and "RMSE" in proc.stdout
    estimate = memory.estimate(config_from_json(read_result(out)["attrs"]["config"]), 2)
    assert f"memory estimate {memory.summary(estimate)}" in proc.stdout
    with h5py.File(out, "r") as fh:
        for key in ("status", "iterations", "rmse", "loss", "gnorm", "flops_matvec", "nranks",
                    "mlpar_version", "config", "petsc_version", "mpi_library"):
            assert key in fh.attrs, key
        assert fh.attrs["status"] == "max_iter" and fh.attrs["iterations"] == 12
        # the configuration holds the values used, no placeholders
        config = json.loads(fh.attrs["config"])
        assert config["coarse_model"] == "restricted" and config["rebuild_every"] == 400
        assert config["points"] == fh.attrs["training_points"] == 14
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


def test_petsc_options_reach_the_ksp_and_unused_ones_are_reported(tmp_path):
    proc = run_mlpar([*SMALL, "--max-iter", "2", "--out", tmp_path / "o.h5",
                      "--solve-form", "residual", "-ksp_type", "gmres", "-ksp_monitor",
                      "-ksp_view", "-ksp_tpye", "cg", "-pc_factor_levels", "2"], 2)
    assert proc.returncode == 0, proc.stderr
    assert "KSP Residual norm" in proc.stdout
    assert "type: gmres" in proc.stdout
    # once, from rank 0, after the first iteration set the solvers up
    assert proc.stderr.count("mlpar: warning:") == 1, proc.stderr
    assert ("mlpar: warning: PETSc option(s) -ksp_tpye cg -pc_factor_levels 2 not used by the "
            "set-up") in proc.stderr


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


PETSC_REFUSED = [
    (["-ksp_type", "nonsense"], "PETSc option -ksp_type nonsense: Unable to find requested "
                                "KSP type nonsense"),
    (["-pc_type", "nonsense"], "PETSc option -pc_type nonsense: Unable to find requested PC "
                               "type nonsense"),
    (["--solve-form", "residual", "-ksp_rtol", "abc"], "PETSc option -ksp_rtol abc: Input "
                                                       "string abc has no numeric value"),
    (["--solve-form", "normal", "-pc_type", "lu"], "PETSc option -pc_type lu: Could not locate "
                                                   "a solver type for factorization type LU"),
    (["-ksp_max_it", "-3"], "PETSc option -ksp_max_it -3: must be a positive integer"),
    # an error of the solve itself, asked for by the options
    (["--solve-form", "normal", "-ksp_error_if_not_converged", "-ksp_max_it", "1"],
     "PETSc option -ksp_error_if_not_converged -ksp_max_it 1: KSPSolve has not converged"),
]


@pytest.mark.parametrize("args,fragment", PETSC_REFUSED, ids=[" ".join(a) for a, _ in PETSC_REFUSED])
def test_petsc_options_petsc_refuses_give_one_message_on_every_rank(tmp_path, args, fragment):
    """Whether PETSc refuses an option when the KSP reads it or when it is first set up, all
    ranks stop together with exit 2; an existing result given with --force is left as it was."""
    out = tmp_path / "o.h5"
    out.write_bytes(b"precious")
    _assert_clean_error(run_mlpar([*SMALL, "--max-iter", "3", "--out", out, "--force", *args], 2,
                                  timeout=60), fragment)
    assert out.read_bytes() == b"precious"


def test_an_initial_lambda_above_its_limit_fails_with_exit_3(tmp_path):
    out = tmp_path / "o.h5"
    proc = run_mlpar([*SMALL, "--lambda0", "1e300", "--out", out], 2, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "failed: the initial regularisation --lambda0 1e+300 exceeds λ_max" in proc.stdout
    attrs = read_result(out)["attrs"]
    assert attrs["status"] == "failed" and attrs["reason"] == "lambda0"
    assert attrs["iterations"] == 0


def test_a_loss_that_overflows_fails_with_exit_3_and_one_message(tmp_path):
    out = tmp_path / "o.h5"
    proc = run_mlpar([*SMALL, "--lambda-p", "1e308", "--out", out], 2, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    # no traceback, no numpy warnings (only mpiexec's note of the non-zero exit)
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert "mlpar" not in proc.stderr, proc.stderr
    assert "failed: the loss or its gradient is not finite" in proc.stdout
    assert read_result(out)["attrs"]["reason"] == "nonfinite"


def test_the_run_log_shows_the_level_table_of_the_first_hierarchy(tmp_path, run_in_process):
    out = tmp_path / "rlm.h5"
    code, stdout, err = run_in_process(["--problem", "poisson", "--nu", "10", "--width", "128",
                                        "--method", "rlm", "--max-iter", "20", "--out", out])
    assert code == 0, err
    assert stdout.count("neuron hierarchy at iteration") == 1, stdout
    table = []   # the rows under the header: level, width, params[, nnz(P), ratio]
    for line in stdout.split("neuron hierarchy at iteration")[1].splitlines()[2:]:
        if len(line.split()) not in (3, 5):
            break
        table.append(line.split())
    widths = read_result(out)["history"]["widths"]
    built = next(row for row in widths if row[1] > 0)
    assert [int(cells[1]) for cells in table] == list(built[built > 0])
    assert [int(cells[0]) for cells in table] == list(range(len(table) - 1, -1, -1))
