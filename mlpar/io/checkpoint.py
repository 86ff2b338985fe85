"""Checkpoints: the full state of a run, stored in the output file's ``checkpoint`` group.

Every output file mlpar writes (at each checkpoint and at the end) carries

    checkpoint/                       attrs: format = "mlpar-checkpoint", schema_version,
                                      nranks, iteration, rejections, lam, f0, f, gnorm, flops,
                                      elapsed, config (JSON), weights_sha256, state_sha256
    checkpoint/x                      the weights p = [v; w; b]
    checkpoint/history/<field>        the history so far (one entry per fine iteration)
    checkpoint/components/<c>/<name>  the state of each stateful component c of the method
                                      (solver, hierarchy, choice), as it saves it

Schemas 1 and 2 (a flat ``method_state`` group, no ``ksp_reason`` in the history; schema 1
also without the level widths) and 3 (no ``pc`` in the history) are still read: their
arrays are handed to the components they belong to.

so that ``--resume FILE.h5`` continues exactly where the run stopped: on the same number of
ranks the final weights equal those of an uninterrupted run bit for bit (the state is
restored exactly and every later computation is deterministic); on another number of ranks
they agree to rounding.  The file is replaced atomically (``output.atomic_write``), so a
crash at any instant leaves the previous checkpoint readable.  Loading validates the
format, the schema version, the presence and shapes of every item, and the SHA-256 of the
weights and of the whole state, and raises :class:`OutputFileError` with a message naming
the file and the problem.
"""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

from mlpar.config import Config, ConfigError, config_from_json, resolve_given
from mlpar.io.output import (
    HISTORY_FIELDS,
    TEXT_FIELDS,
    OutputFileError,
    history_column,
    write_history,
)
from mlpar.optim.driver import Record, State

FORMAT = "mlpar-checkpoint"
SCHEMA_VERSION = 4
#: Schema 1 (before the history recorded the level widths) is still read: its records get
#: empty widths, which leave the state digest as schema 1 computed it.  Schema 2 kept the
#: components' arrays in one flat group and no solver reasons; schema 3 no preconditioners.
READABLE_VERSIONS = (1, 2, 3, 4)
#: The first schema that stores each history field (the others are in every schema).
SINCE = {"widths": 2, "ksp_reason": 3, "pc": 4}
SCALARS = ("iteration", "rejections", "lam", "f0", "f", "gnorm", "flops", "elapsed")
#: Options a resumed run may change; every other option must match the checkpoint.
RESUMABLE_OVERRIDES = frozenset({"max_iter", "max_time", "out", "force", "checkpoint_every",
                                 "resume", "checkpoint_seconds", "progress_interval", "quiet"})


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def _state_digest(state: State, version: int = SCHEMA_VERSION,
                  flat: dict[str, np.ndarray] | None = None) -> str:
    """SHA-256 of the whole state: x, the scalars, the history, the components' arrays.
    Schemas 1 and 2 hashed their flat ``method_state`` (``flat``) and had no solver reasons."""
    h = hashlib.sha256()

    def feed(a):
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())

    feed(state.x)
    feed(np.array([float(getattr(state, k)) for k in SCALARS]))
    for key in HISTORY_FIELDS:
        column = history_column(state.history, key)
        if key not in TEXT_FIELDS:
            feed(column)
        elif version >= SINCE[key]:
            h.update(b"\0".join(column.tolist()))
    if version >= 3:
        for c in sorted(state.components):
            for k in sorted(state.components[c]):
                feed(state.components[c][k])
    else:
        for k in sorted(flat):
            feed(flat[k])
    return h.hexdigest()


def _components_of_flat(flat: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The components' arrays of a schema-1/2 ``method_state``: the hierarchy's transfers,
    the cost-aware choice's packed array (4 sums, 2 refusals[, 2 waits, 4 open-trial
    entries]) and the Lanczos solver's Krylov size."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in flat.items():
        if key == "krylov_size":
            out.setdefault("solver", {})[key] = value
        elif key == "model_choice":
            choice = {"sums": value[:4].reshape(2, 2), "refused": value[4:6]}
            if len(value) >= 12:
                choice.update(wait=value[6:8], open=value[8:12])
            out["choice"] = choice
        else:
            out.setdefault("hierarchy", {})[key] = value
    return out


def write_checkpoint(group: h5py.Group, cfg: Config, state: State, nranks: int) -> None:
    """Store ``state`` and the configuration in ``group`` (an open, writable HDF5 group)."""
    group.attrs["format"] = FORMAT
    group.attrs["schema_version"] = SCHEMA_VERSION
    group.attrs["nranks"] = nranks
    group.attrs["config"] = cfg.to_json()
    for key in SCALARS:
        group.attrs[key] = getattr(state, key)
    group.attrs["weights_sha256"] = _digest(state.x)
    group.attrs["state_sha256"] = _state_digest(state)
    group.create_dataset("x", data=state.x)
    write_history(group.create_group("history"), state.history)
    components = group.create_group("components")
    for name, arrays in state.components.items():
        sub = components.create_group(name)
        for key, value in arrays.items():
            sub.create_dataset(key, data=value)


def read_checkpoint(path: str) -> tuple[Config, State]:
    """The configuration and state stored in ``path``; OutputFileError if unusable."""
    try:
        fh = h5py.File(path, "r")
    except FileNotFoundError:
        raise OutputFileError(f"--resume {path}: no such file") from None
    except OSError as exc:
        raise OutputFileError(f"--resume {path}: not a readable HDF5 file ({exc})") from None
    try:
        with fh:
            return _read(path, fh)
    except (KeyError, OSError, ValueError, TypeError) as exc:
        if isinstance(exc, OutputFileError):
            raise
        raise OutputFileError(f"--resume {path}: damaged checkpoint ({exc})") from None


def _read(path: str, fh: h5py.File) -> tuple[Config, State]:
    if "checkpoint" not in fh:
        raise OutputFileError(f"--resume {path}: no mlpar checkpoint in this file "
                              f"(format attribute {fh.attrs.get('format')!r})")
    g = fh["checkpoint"]
    if g.attrs.get("format") != FORMAT:
        raise OutputFileError(f"--resume {path}: the checkpoint group is not an mlpar checkpoint")
    version = int(g.attrs.get("schema_version", -1))
    if version > SCHEMA_VERSION:
        raise OutputFileError(f"--resume {path}: checkpoint schema version {version} is newer "
                              f"than this mlpar understands ({SCHEMA_VERSION}); upgrade mlpar")
    if version not in READABLE_VERSIONS:
        raise OutputFileError(f"--resume {path}: unknown checkpoint schema version {version}")
    try:
        cfg = config_from_json(str(g.attrs["config"]))
    except (ConfigError, json.JSONDecodeError, TypeError) as exc:
        raise OutputFileError(f"--resume {path}: stored configuration is invalid ({exc})") from None
    x = g["x"][()]
    n = cfg.layout.size
    if x.shape != (n,):
        raise OutputFileError(f"--resume {path}: weights have shape {x.shape}, the stored "
                              f"configuration needs ({n},)")
    if _digest(x) != g.attrs["weights_sha256"]:
        raise OutputFileError(f"--resume {path}: checksum mismatch: the weights are corrupted")
    hist = g["history"]
    fields = [k for k in HISTORY_FIELDS
              if version >= SINCE.get(k, 1)]
    columns = {k: hist[k][()] for k in fields}
    if len({len(c) for c in columns.values()}) != 1:
        raise OutputFileError(f"--resume {path}: history columns have different lengths")
    history = [Record(**{k: _py(columns[k][i]) for k in fields})
               for i in range(len(columns["iteration"]))]
    scalars = {k: _py(g.attrs[k]) for k in SCALARS}
    state = State(x=x, lam=scalars["lam"], f0=scalars["f0"], iteration=scalars["iteration"],
                  rejections=scalars["rejections"], history=history, f=scalars["f"],
                  gnorm=scalars["gnorm"], flops=scalars["flops"], elapsed=scalars["elapsed"])
    flat = None
    if version >= 3:
        state.components = {c: {k: v[()] for k, v in grp.items()}
                            for c, grp in g["components"].items()}
    else:
        flat = {k: v[()] for k, v in g["method_state"].items()}
        state.components = _components_of_flat(flat)
    if len(history) != state.iteration:
        raise OutputFileError(f"--resume {path}: history has {len(history)} entries for "
                              f"{state.iteration} iterations")
    if _state_digest(state, version, flat) != g.attrs["state_sha256"]:
        raise OutputFileError(f"--resume {path}: checksum mismatch: the state is corrupted")
    return cfg, state


def _py(value):
    """numpy scalar → the Python scalar (bit-exact for floats); a row of ``widths`` → a tuple;
    bytes (a solver reason) → str."""
    if isinstance(value, np.ndarray):   # a row of the widths
        return tuple(int(v) for v in value)
    value = value.item() if hasattr(value, "item") else value
    return value.decode() if isinstance(value, bytes) else value


def merge_resume_config(stored: Config, given: dict, path: str) -> Config:
    """The stored configuration with the command line's allowed overrides applied.

    ``given`` holds the options named on the command line (or in ``--config``); a
    placeholder among them (``--coarse-model auto``) stands for the value it resolves to
    with the stored options.  Any other option whose value differs from the stored one is
    an error.
    """
    data = json.loads(stored.to_json())
    for key, value in resolve_given(given, stored).items():
        if key in RESUMABLE_OVERRIDES:
            data[key] = value
        elif data.get(key) != value:
            raise ConfigError(f"--resume {path}: --{key.replace('_', '-')} {value!r} differs from "
                              f"the checkpoint's {data.get(key)!r}; only "
                              f"{', '.join(sorted('--' + k.replace('_', '-') for k in RESUMABLE_OVERRIDES))}"
                              f" may change on resume")
    if "out" not in given:
        data["out"] = path
    data["force"] = True if data["out"] == path else data.get("force", False)
    data["resume"] = path
    return Config(**data).validate()
