"""Figures of mlpar output files: how the training went and what it produced.

``python -m mlpar.plot RESULT.h5 [more.h5 ...] [--out FIG.png|FIG.pdf]`` draws, for one run or
several overlaid (to compare methods):

* the loss and the gradient norm against the iteration and against the wall time;
* λ, the level that produced each step (0 is the trained network) and the widths of the
  levels of the hierarchy in use at each iteration;
* the trained network against the true solution on the test grid, and the pointwise error
  |u − u_true|: curves for a 1-D problem, heat maps (one row per run) when ``solution/u``
  is a 2-D grid.

This module only reads the output file (the layout is in :mod:`mlpar.io.output` and
docs/guide.md): it imports neither MPI nor PETSc and draws with matplotlib's Agg canvas, so
it runs on a login node or a laptop without a display. The legend of each run is the file
name and the method stored in the file's ``config`` attribute.

Examples
--------
>>> from mlpar.plot import make_figure                 # doctest: +SKIP
>>> fig = make_figure(["runs/lm.h5", "runs/rlm.h5"])    # doctest: +SKIP
>>> fig.savefig("compare.png")                          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FORMAT = "mlpar-result"
"""The root attribute ``format`` of an mlpar output file."""

HISTORY_PANELS = [
    # (axes label, x field, y field, title, y scale)
    ("loss_iteration", "iteration", "loss", "loss f", "log"),
    ("loss_time", "time", "loss", "loss f", "log"),
    ("gnorm_iteration", "iteration", "gnorm", "gradient norm ‖∇f‖", "log"),
    ("gnorm_time", "time", "gnorm", "gradient norm ‖∇f‖", "log"),
    ("lambda_iteration", "iteration", "lambda", "regularisation λ", "log"),
    ("level_iteration", "iteration", "level", "level of the step (0: trained network)", "linear"),
]
"""The history panels, in the order of the figure's first two rows."""

LAMBDA_FIELDS = ("lam", "lambda")
"""Names under which the history may store λ: ``lam`` (the Record field the files hold
today) and ``lambda`` (the name of the outside contract)."""

COLUMNS = 12
"""Columns of the figure's grid: a history panel spans 3, a 1-D solution panel 6, a heat map 4."""


class PlotInputError(ValueError):
    """A file that cannot be plotted: missing, not HDF5, or not an mlpar output file."""


@dataclass
class Run:
    """What the figure needs from one output file.

    Attributes
    ----------
    name : str
        The legend: file name and method.
    history : dict of str to ndarray
        ``history/*`` datasets; λ is stored under ``lambda`` whatever the file calls it.
    solution : dict of str to ndarray
        ``solution/*`` datasets (``z``, ``u``, ``u_true``; or ``x``, ``y`` for a 2-D grid).
    """

    name: str
    history: dict[str, np.ndarray]
    solution: dict[str, np.ndarray]


def read_run(path: str | Path) -> Run:
    """Read the history and the solution of one output file.

    Parameters
    ----------
    path : str or Path
        An mlpar output file (root attribute ``format == "mlpar-result"``).

    Returns
    -------
    Run

    Raises
    ------
    PlotInputError
        If the file is missing, is not HDF5, is not an mlpar output file, or lacks a
        dataset the figure needs.
    """
    path = Path(path)
    if not path.is_file():
        raise PlotInputError(f"{path}: no such file")
    try:
        fh = h5py.File(path, "r")
    except OSError:
        raise PlotInputError(f"{path}: not an HDF5 file") from None
    with fh:
        if fh.attrs.get("format") != FORMAT:
            raise PlotInputError(f"{path}: not an mlpar output file (root attribute format is "
                                 f"{fh.attrs.get('format')!r}, expected {FORMAT!r})")
        for group in ("history", "solution"):
            if group not in fh:
                raise PlotInputError(f"{path}: no group {group!r}")
        history = {key: fh["history"][key][()] for key in fh["history"]}
        solution = {key: fh["solution"][key][()] for key in fh["solution"]}
        method = json.loads(fh.attrs.get("config", "{}")).get("method", "?")
    for name in LAMBDA_FIELDS:
        if name in history:
            history["lambda"] = history.pop(name)
    needed = [f"history/{field}" for _, x, y, *_ in HISTORY_PANELS for field in (x, y)
              if field not in history]
    needed += [f"solution/{field}" for field in ("u", "u_true") if field not in solution]
    if needed:
        raise PlotInputError(f"{path}: missing dataset {sorted(set(needed))[0]}")
    return Run(name=f"{path.name} ({method})", history=history, solution=solution)


def make_figure(paths) -> Figure:
    """Draw the figure of one or several output files (overlaid).

    Parameters
    ----------
    paths : sequence of str or Path
        mlpar output files; each gets its own colour and legend entry.

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas (no display needed). Each axes carries a label
        (``ax.get_label()``): the names of :data:`HISTORY_PANELS`, ``widths_iteration``, and
        ``solution`` and ``error`` (1-D), or ``solution 0``, ``exact 0``, ``error 0``, ... one
        row per run (2-D). In every history panel, the line of run k is ``ax.lines[k]``; in
        the 1-D solution panel the lines of run k are ``2k`` (network) and ``2k + 1`` (exact).

    Raises
    ------
    PlotInputError
        If a file cannot be read (:func:`read_run`), or there is none.
    """
    runs = [read_run(p) for p in paths]
    if not runs:
        raise PlotInputError("no output file given")
    grid_2d = [run.solution["u"].ndim == 2 for run in runs]
    solution_rows = len(runs) if any(grid_2d) else 1
    fig = Figure(figsize=(16, 7 + 3.5 * solution_rows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 + solution_rows, COLUMNS)
    colors = [f"C{k % 10}" for k in range(len(runs))]

    for slot, (label, x, y, title, scale) in enumerate(HISTORY_PANELS):
        row, col = divmod(slot, 4)
        ax = fig.add_subplot(grid[row, 3 * col:3 * col + 3], label=label)
        for run, color in zip(runs, colors):
            style = dict(marker=".", markersize=3, linestyle="none") if y == "level" else {}
            ax.plot(run.history[x], run.history[y], color=color, label=run.name, **style)
        ax.set(title=title, xlabel="wall time [s]" if x == "time" else "iteration",
               yscale=scale)
        if y == "level":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _plot_widths(fig.add_subplot(grid[1, 6:9], label="widths_iteration"), runs, colors)
    legend_ax = fig.add_subplot(grid[1, 9:12], label="legend")
    legend_ax.axis("off")
    legend_ax.legend(*fig.axes[0].get_legend_handles_labels(), loc="center", title="runs")

    if any(grid_2d):
        for k, run in enumerate(runs):
            _plot_heat_maps(fig, grid, 2 + k, k, run)
    else:
        _plot_curves(fig.add_subplot(grid[2, 0:6], label="solution"),
                     fig.add_subplot(grid[2, 6:12], label="error"), runs, colors)
    return fig


def _plot_widths(ax, runs: list[Run], colors: list[str]) -> None:
    """The width of every level at each iteration (0 in the file: level absent, not drawn)."""
    for run, color in zip(runs, colors):
        widths = run.history.get("widths", np.zeros((0, 0), dtype=int))
        for level in range(widths.shape[1]):
            column = widths[:, level]
            if column.any():
                ax.plot(run.history["iteration"], np.where(column > 0, column, np.nan),
                        color=color, linestyle=("-", "--", "-.", ":")[level % 4],
                        label=f"{run.name}, level {level}")
    ax.set(title="widths of the levels (level 0 solid, 1 dashed, 2 dash-dot)", xlabel="iteration",
           ylabel="neurons", yscale="log")


def _plot_curves(ax_u, ax_err, runs: list[Run], colors: list[str]) -> None:
    """1-D: the network and the true solution over z, and |u − u_true| on a log scale."""
    for run, color in zip(runs, colors):
        z, u, exact = run.solution["z"], run.solution["u"], run.solution["u_true"]
        ax_u.plot(z, u, color=color, label=run.name)
        ax_u.plot(z, exact, color=color, linestyle="--", alpha=0.6, label="true solution")
        ax_err.plot(z, np.abs(u - exact), color=color, label=run.name)
    ax_u.set(title="trained network u (solid) and true solution (dashed)", xlabel="z")
    ax_err.set(title="pointwise error |u − u_true|", xlabel="z", yscale="log")


def _plot_heat_maps(fig, grid, row: int, k: int, run: Run) -> None:
    """2-D: heat maps of u, u_true and u − u_true of run ``k`` on one row of the grid.

    The coordinates are ``solution/x`` and ``solution/y`` if the file has them, else a ``z``
    of shape u.shape + (2,), else the grid indices.
    """
    sol = run.solution
    u = sol["u"]
    if "x" in sol and "y" in sol:
        x, y = sol["x"], sol["y"]
    elif "z" in sol and sol["z"].shape == u.shape + (2,):
        x, y = sol["z"][..., 0], sol["z"][..., 1]
    else:
        x, y = np.arange(u.shape[1]), np.arange(u.shape[0])
    for col, (label, values, cmap) in enumerate([("solution", u, "viridis"),
                                                 ("exact", sol["u_true"], "viridis"),
                                                 ("error", u - sol["u_true"], "RdBu_r")]):
        ax = fig.add_subplot(grid[row, 4 * col:4 * col + 4], label=f"{label} {k}")
        mesh = ax.pcolormesh(x, y, values, shading="nearest", cmap=cmap)
        fig.colorbar(mesh, ax=ax)
        ax.set(title=f"{run.name}: {dict(solution='u', exact='u_true', error='u − u_true')[label]}",
               xlabel="x", ylabel="y", aspect="equal")


def main(argv: list[str] | None = None) -> int:
    """``python -m mlpar.plot``: write the figure of the given output files.

    Parameters
    ----------
    argv : list of str, optional
        The command line without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 with one line ``mlpar.plot: error: ...`` on standard error if a file
        cannot be plotted.
    """
    parser = argparse.ArgumentParser(prog="mlpar.plot", description=(
        "Plot mlpar output files: loss, gradient norm, λ, levels and widths of the hierarchy, "
        "and the trained solution against the true one. Several files are overlaid."))
    parser.add_argument("results", nargs="+", metavar="RESULT.h5", help="mlpar output files")
    parser.add_argument("--out", default=None, metavar="FIG.png|FIG.pdf",
                        help="the figure (default: the first file's name with .png)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results[0]).with_suffix(".png")
    try:
        fig = make_figure(args.results)
        if out.suffix[1:] not in fig.canvas.get_supported_filetypes():
            raise PlotInputError(f"{out}: unknown figure format {out.suffix!r} (use .png or .pdf)")
        fig.savefig(out, dpi=100)
    except (PlotInputError, OSError) as exc:
        print(f"mlpar.plot: error: {exc}", file=sys.stderr)
        return 2
    print(f"mlpar.plot: figure written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
