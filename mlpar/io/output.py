"""The HDF5 output file: written by rank 0, never half-written.

Layout (``format = "mlpar-result"``, ``schema_version`` below):

* root attributes: ``status``, ``reason`` (which test ended the run), ``message``, ``iterations``,
  ``rmse`` and ``rel_l2`` (‖ĝ − u_T‖/‖u_T‖) on the test grid, ``loss``
  (the trained objective f), ``seed_loss`` (the seed's formula of the configured
  loss on the training residuals, :func:`mlpar.model.losses.seed_loss`), ``gnorm``, ``lambda``, ``flops_matvec``, ``nranks``, ``wall_time``,
  ``mlpar_version`` and library versions, ``config`` (the resolved
  configuration as JSON), ``created_utc``;
* ``params``: the final weights p = [v; w⁽¹⁾…w⁽ᵈ⁾; b] (attributes ``layout``, the layout in words,
  and ``blocks``, ``width``, ``input_dim``);
* ``history/<name>``: one entry per fine-level iteration (``lambda`` is ``lam`` under a second
  name), for every field of
  :class:`mlpar.optim.driver.Record`; ``history/widths`` has one row per iteration, the widths of
  the levels in use, the trained network first, 0 for a level that does not exist;
  ``history/ksp_reason`` the subproblem solver's converged reason of each step and
  ``history/pc`` the preconditioner of its Krylov solve (ASCII);
* ``solution/{z, u, u_true}``: the network and the true solution on the test grid (1D);
  for d > 1 ``solution/{x, y}`` (and ``z`` in 3D), the axes of the test grid, and
  ``solution/{u, u_true}`` of shape (nx, ny[, nz]), ``u[i, j] = ĝ(x_i, y_j)``.

The file is written to ``<name>.tmp`` in the same directory, flushed and
fsync'ed, then renamed over ``<name>``: a crash at any instant leaves either the
previous file or the new one, never a torn one.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

import h5py
import numpy as np

from mlpar.optim.driver import Record

FORMAT = "mlpar-result"
#: 2: history/widths; 3: history/ksp_reason, root attribute reason; 4: history/pc
SCHEMA_VERSION = 4
#: The history fields stored as ASCII strings.
TEXT_FIELDS = ("ksp_reason", "pc")
HISTORY_FIELDS = [f.name for f in dataclasses.fields(Record)]


class OutputFileError(ValueError):
    """An output or checkpoint file that cannot be used (exit status 2)."""


def atomic_write(path: str | os.PathLike, fill) -> None:
    """Create ``path`` through ``fill(h5py.File)`` on a temporary name, then rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as fh:
        fill(fh)
        fh.flush()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def history_column(history: list[Record], name: str) -> np.ndarray:
    """The values of one Record field over ``history`` as an array: one entry per iteration;
    for ``widths`` a row per iteration, padded with 0 to the longest row (a run resumed from a
    checkpoint that did not record widths has empty rows before the resume)."""
    values = [getattr(rec, name) for rec in history]
    if name == "widths":
        columns = max((len(w) for w in values), default=0)
        out = np.zeros((len(values), columns), dtype=np.int64)
        for row, w in zip(out, values):
            row[:len(w)] = w
        return out
    if name in TEXT_FIELDS:
        return np.asarray([v.encode() for v in values], dtype=bytes)
    dtype = bool if name == "accepted" else (np.int64 if name in ("iteration", "level", "ksp_its")
                                             else np.float64)
    return np.asarray(values, dtype=dtype)


def write_history(group: h5py.Group, history: list[Record]) -> None:
    """One dataset per Record field, one entry (``widths``: one row) per iteration; ``lambda``
    (the name the interface gives λ) is a second name (an HDF5 hard link) of ``lam``."""
    for name in HISTORY_FIELDS:
        group.create_dataset(name, data=history_column(history, name))
    group["lambda"] = group["lam"]


def write_result(path: str, *, attrs: dict, params: np.ndarray, layout, history: list[Record],
                 solution: dict[str, np.ndarray], extra=None) -> None:
    """Write the output file of a run (rank 0 only); ``extra(fh)`` adds more (a checkpoint)."""
    def fill(fh: h5py.File) -> None:
        fh.attrs["format"] = FORMAT
        fh.attrs["schema_version"] = SCHEMA_VERSION
        fh.attrs["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        for key, value in attrs.items():
            fh.attrs[key] = value
        d = fh.create_dataset("params", data=params)
        d.attrs["layout"] = layout.describe()
        d.attrs["blocks"] = ",".join(layout.blocks)
        d.attrs["width"] = layout.width
        d.attrs["input_dim"] = layout.input_dim
        write_history(fh.create_group("history"), history)
        sol = fh.create_group("solution")
        for key, value in solution.items():
            sol.create_dataset(key, data=value)
        if extra is not None:
            extra(fh)
    atomic_write(path, fill)


def read_result(path: str) -> dict:
    """Read an output file back: attributes, params, history (for tests and tools)."""
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise OutputFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        if fh.attrs.get("format") != FORMAT:
            raise OutputFileError(f"{path}: not an mlpar output file (format attribute "
                                  f"{fh.attrs.get('format')!r})")
        return {"attrs": dict(fh.attrs), "params": fh["params"][()],
                "history": {k: fh["history"][k][()] for k in fh["history"]},
                "solution": {k: fh["solution"][k][()] for k in fh["solution"]}}
