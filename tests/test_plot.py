"""The figure of ``python -m mlpar.plot``: its panels hold the output file's data."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import ROOT, run_mlpar

from mlpar.plot import main, make_figure


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real short runs (rlm with two levels, lm) and their files read back with h5py.  The
    rlm run takes the seed's choice by gradient, which tries the coarse model at once (the
    cost-aware choice waits while LM's steps are fast)."""
    folder = tmp_path_factory.mktemp("plot")
    paths = []
    for method, extra in (("rlm", ["--levels", "2", "--model-choice", "gradient"]), ("lm", [])):
        out = folder / f"{method}.h5"
        proc = run_mlpar(["--problem", "poisson", "--nu", 5, "--width", 64, "--method", method,
                          *extra, "--max-iter", 40, "--out", out, "--quiet"])
        assert proc.returncode == 0, proc.stderr
        paths.append(out)
    data = []
    for path in paths:
        with h5py.File(path, "r") as fh:
            data.append({key: fh[key][()] for group in ("history", "solution")
                         for key in (f"{group}/{name}" for name in fh[group])})
    return paths, data


def axes_by_label(fig):
    return {ax.get_label(): ax for ax in fig.axes}


PANEL_DATASETS = {"loss_iteration": ("iteration", "loss"), "loss_time": ("time", "loss"),
                  "gnorm_iteration": ("iteration", "gnorm"), "gnorm_time": ("time", "gnorm"),
                  "lambda_iteration": ("iteration", "lam"), "level_iteration": ("iteration", "level")}
"""Each history panel and the (x, y) datasets of the file it must show."""


def test_history_panels_hold_the_files_datasets(runs):
    paths, data = runs
    axes = axes_by_label(make_figure(paths))
    for label, (x, y) in PANEL_DATASETS.items():
        lines = axes[label].lines
        assert len(lines) == len(paths), label
        for line, datasets in zip(lines, data):
            np.testing.assert_array_equal(line.get_xdata(), datasets[f"history/{x}"])
            np.testing.assert_array_equal(line.get_ydata(), datasets[f"history/{y}"])
    assert axes["loss_time"].get_xlabel() == "wall time [s]"
    assert axes["loss_iteration"].get_yscale() == "log"


def test_the_multilevel_run_took_coarse_steps_and_they_are_drawn(runs):
    paths, data = runs
    rlm_levels, lm_levels = (line.get_ydata() for line in
                             axes_by_label(make_figure(paths))["level_iteration"].lines)
    assert 0 in rlm_levels and rlm_levels.max() >= 1   # both fine and coarse steps
    assert set(lm_levels) == {0}


def test_widths_panel_draws_each_existing_level_and_hides_absent_ones(runs):
    paths, data = runs
    lines = axes_by_label(make_figure(paths))["widths_iteration"].lines
    expected = [(d["history/iteration"], column) for d in data
                for column in d["history/widths"].T if column.any()]
    assert len(lines) == len(expected) == 3   # rlm: 64 and its coarse level; lm: 64
    for line, (iteration, column) in zip(lines, expected):
        np.testing.assert_array_equal(line.get_xdata(), iteration)
        np.testing.assert_array_equal(line.get_ydata(), np.where(column > 0, column, np.nan))


def test_solution_and_error_panels_hold_the_test_grid(runs):
    paths, data = runs
    axes = axes_by_label(make_figure(paths))
    solution, error = axes["solution"].lines, axes["error"].lines
    assert len(solution) == 2 * len(paths) and len(error) == len(paths)
    for k, datasets in enumerate(data):
        z, u, exact = (datasets[f"solution/{name}"] for name in ("z", "u", "u_true"))
        np.testing.assert_array_equal(solution[2 * k].get_xdata(), z)
        np.testing.assert_array_equal(solution[2 * k].get_ydata(), u)
        np.testing.assert_array_equal(solution[2 * k + 1].get_ydata(), exact)
        np.testing.assert_array_equal(error[k].get_ydata(), np.abs(u - exact))


def test_legend_names_each_file_and_its_method(runs):
    paths, _ = runs
    legend = axes_by_label(make_figure(paths))["legend"].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["rlm.h5 (rlm)", "lm.h5 (lm)"]


def write_synthetic_2d_result(path, nx=7, ny=5):
    """A file in the output layout whose solution is a 2-D grid (no mlpar problem is 2-D yet)."""
    x, y = np.linspace(0, 1, nx), np.linspace(0, 2, ny)
    u_true = np.sin(np.pi * x)[None, :] * np.cos(y)[:, None]
    u = u_true + 1e-3 * np.arange(nx * ny).reshape(ny, nx)
    iterations = np.arange(1, 4)
    with h5py.File(path, "w") as fh:
        fh.attrs["format"] = "mlpar-result"
        fh.attrs["config"] = json.dumps({"method": "lm"})
        history = fh.create_group("history")
        for name, values in {"iteration": iterations, "loss": [1.0, 0.1, 0.01],
                             "gnorm": [2.0, 0.5, 0.1], "lam": [0.05, 0.025, 0.0125],
                             "level": [0, 0, 0], "time": [0.1, 0.2, 0.3],
                             "widths": [[8], [8], [8]]}.items():
            history.create_dataset(name, data=np.asarray(values))
        solution = fh.create_group("solution")
        for name, values in {"x": x, "y": y, "u": u, "u_true": u_true}.items():
            solution.create_dataset(name, data=values)
    return x, y, u, u_true


def test_a_2d_solution_is_drawn_as_heat_maps(tmp_path):
    x, y, u, u_true = write_synthetic_2d_result(tmp_path / "grid.h5")
    axes = axes_by_label(make_figure([tmp_path / "grid.h5"]))
    assert "solution" not in axes and "error" not in axes
    for label, values in (("solution 0", u), ("exact 0", u_true), ("error 0", u - u_true)):
        (mesh,) = axes[label].collections
        np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(), values.ravel())
        corners = mesh.get_coordinates()   # shading="nearest": cell edges half-way between points
        assert corners[0, 0, 0] == pytest.approx(x[0] - (x[1] - x[0]) / 2)
        assert corners[-1, 0, 1] == pytest.approx(y[-1] + (y[1] - y[0]) / 2)


def test_command_line_writes_the_figure(runs, tmp_path):
    paths, _ = runs
    out = tmp_path / "compare.png"
    assert main([str(p) for p in paths] + ["--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind, fragment", [("missing", "no such file"),
                                            ("text", "not an HDF5 file"),
                                            ("other_hdf5", "not an mlpar output file")])
def test_a_file_that_is_no_result_gives_one_error_line(tmp_path, kind, fragment):
    path = tmp_path / "input.h5"
    if kind == "text":
        path.write_text("not hdf5\n")
    elif kind == "other_hdf5":
        with h5py.File(path, "w") as fh:
            fh.create_dataset("data", data=np.zeros(3))
    proc = subprocess.run([sys.executable, "-m", "mlpar.plot", str(path), "--out",
                           str(tmp_path / "fig.png")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"mlpar.plot: error: {path}: ") and fragment in line
    assert not (tmp_path / "fig.png").exists()


def test_plotting_imports_neither_mpi_nor_petsc():
    code = ("import sys, mlpar.plot; "
            "print(sorted(m for m in ('mpi4py', 'petsc4py') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
