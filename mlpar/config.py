"""Run configuration: defaults, TOML file, command line, validation.

Precedence: built-in defaults < ``--config FILE.toml`` < command-line options.
TOML keys are the long option names with ``_`` or ``-`` (``max_iter`` or
``max-iter``).  Arguments that start with a single dash (``-ksp_type cg``) and
their values are PETSc options and are passed on untouched.  Every problem is
reported as a :class:`ConfigError` whose message names the option and what was
expected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, fields

from mlpar.model import activations
from mlpar.model.layout import ParameterLayout
from mlpar.model.losses import NAMES as LOSSES
from mlpar.model.problems import NAMES as PROBLEMS
from mlpar.multilevel.amg import INTERPOLATIONS, STRENGTHS
from mlpar.multilevel.parameters import RARC_REBUILD_EVERY, MultilevelParameters
from mlpar.optim.common import LMParameters

METHODS = ("lm", "rlm", "arc", "rarc")
SOLVE_FORMS = ("auto", "normal", "residual", "assembled", "direct")
INITS = ("spread", "uniform")
COARSE_STARTS = ("collect", "injection", "restriction")
COARSE_MODELS = ("auto", "galerkin", "network", "restricted")
GALERKIN_BASES = ("orthonormal", "interpolation")
MODEL_CHOICES = ("gradient", "cost")


class ConfigError(ValueError):
    """A bad option, value or configuration file (exit status 2)."""


@dataclass
class Config:
    """Every setting of a run (``--help`` texts: ``_HELP``)."""

    problem: str = "poisson"
    nu: float = 20.0
    width: int = 512
    points: int = 0
    activation: str = "sigmoid"
    loss: str = "l2"
    method: str = "rlm"
    seed: int = 0
    init: str = "uniform"
    max_iter: int = 5000
    gtol: float = 1e-8
    ftol: float = 1e-10
    lambda_p: float = 1.0
    lambda0: float = LMParameters.lambda0
    lambda_min: float = LMParameters.lambda_min
    solve_form: str = "auto"
    ksp_rtol: float = 1e-10
    test_points: int = 1000
    out: str = "mlpar.h5"
    force: bool = False
    checkpoint_every: int = 0
    resume: str = ""
    progress_interval: float = 1.0
    quiet: bool = False
    levels: int = MultilevelParameters.levels
    min_width: int = MultilevelParameters.min_width
    coarse_max_iter: int = MultilevelParameters.coarse_max_iter
    kappa_h: float = MultilevelParameters.kappa_h
    pre_smooth: int = MultilevelParameters.pre_smooth
    post_smooth: int = MultilevelParameters.post_smooth
    theta: float = MultilevelParameters.theta
    strength: str = MultilevelParameters.strength
    interpolation: str = MultilevelParameters.interpolation
    coarse_start: str = MultilevelParameters.coarse_start
    coarse_model: str = "auto"
    galerkin_basis: str = MultilevelParameters.galerkin_basis
    rebuild_every: int = -1
    screen_age: int = MultilevelParameters.screen_age
    model_choice: str = MultilevelParameters.model_choice
    checkpoint_seconds: float = 0.0
    l1_smoothing: float = 1e-3
    cubic_theta: float = 0.5
    krylov_max_it: int = 300

    def validate(self) -> "Config":
        """Check every field; raise ConfigError naming the first bad one."""
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{_opt(name)}: {getattr(self, name)!r} is not one of "
                                  f"{', '.join(allowed)}")
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _TYPES[f.name]
            ok = (isinstance(value, bool) if kind is bool
                  else isinstance(value, kind) and not isinstance(value, bool)
                  or (kind is float and isinstance(value, int) and not isinstance(value, bool)))
            if not ok:
                raise ConfigError(f"{_opt(f.name)}: expected {kind.__name__}, got {value!r}")
            if kind is float:
                setattr(self, f.name, float(value))
                if not math.isfinite(value):
                    raise ConfigError(f"--{_opt(f.name)}: must be a finite number, got {value!r}")
        choice("problem", PROBLEMS)
        choice("activation", activations.NAMES)
        choice("loss", LOSSES)
        choice("method", METHODS)
        choice("init", INITS)
        choice("solve_form", SOLVE_FORMS)
        choice("strength", STRENGTHS)
        choice("interpolation", INTERPOLATIONS)
        choice("coarse_start", COARSE_STARTS)
        choice("coarse_model", COARSE_MODELS)
        choice("galerkin_basis", GALERKIN_BASES)
        choice("model_choice", MODEL_CHOICES)
        for name in ("nu", "lambda0", "lambda_min", "ksp_rtol", "gtol", "progress_interval",
                     "l1_smoothing", "cubic_theta"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{_opt(name)}: must be > 0, got {getattr(self, name)}")
        for name in ("width", "test_points", "levels", "min_width", "coarse_max_iter",
                     "krylov_max_it"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_opt(name)}: must be a positive integer, got {getattr(self, name)}")
        for name in ("points", "max_iter", "seed", "checkpoint_every", "pre_smooth", "post_smooth",
                     "screen_age"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_opt(name)}: must be >= 0, got {getattr(self, name)}")
        for name in ("ftol", "lambda_p", "checkpoint_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_opt(name)}: must be >= 0, got {getattr(self, name)}")
        if self.rebuild_every < -1:
            raise ConfigError(f"--rebuild-every: must be >= 0, or -1 for the method's default, "
                              f"got {self.rebuild_every}")
        if not 0 < self.theta < 1:
            raise ConfigError(f"--theta: must be in (0, 1), got {self.theta}")
        if self.kappa_h < 0:
            raise ConfigError(f"--kappa-h: must be >= 0, got {self.kappa_h}")
        if self.lambda_min > self.lambda0:
            raise ConfigError(f"--lambda-min ({self.lambda_min}) must not exceed --lambda0 ({self.lambda0})")
        if self.method in ("lm", "rlm") and self.loss != "l2":
            raise ConfigError(f"--method {self.method} is a least-squares method and needs --loss l2 "
                              f"(got --loss {self.loss}); use --method arc or rarc for "
                              f"{self.loss}")
        if self.method in ("arc", "rarc") and self.coarse_model == "restricted":
            raise ConfigError("--coarse-model restricted is implemented for rlm only; use galerkin "
                              "or network with --method rarc")
        if not self.out:
            raise ConfigError("--out: an output file name is required")
        return self

    @property
    def layout(self) -> ParameterLayout:
        """The parameter layout of the configured network."""
        return ParameterLayout(self.width)

    @property
    def resolved_coarse_model(self) -> str:
        """The coarse model ``auto`` stands for: restricted for rlm, galerkin for rarc (the
        restricted model needs a least-squares loss)."""
        if self.coarse_model != "auto":
            return self.coarse_model
        return "galerkin" if self.method in ("arc", "rarc") else MultilevelParameters.coarse_model

    @property
    def resolved_rebuild_every(self) -> int:
        """The rebuild interval -1 stands for: 40 for rlm, 10 for rarc (docs/results.md, "How
        often the hierarchy is rebuilt")."""
        if self.rebuild_every >= 0:
            return self.rebuild_every
        return RARC_REBUILD_EVERY if self.method == "rarc" else MultilevelParameters.rebuild_every

    def to_json(self) -> str:
        """The resolved configuration as a JSON object (stored in output files)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


_TYPES = typing.get_type_hints(Config)

_HELP = {
    "problem": "training problem", "nu": "frequency ν of the true solution / target",
    "width": "hidden-layer width r", "points": "training points (default: h = 1/(3ν))",
    "activation": "σ as the seed defines it", "loss": "loss function (lm and rlm need l2)",
    "method": "optimisation method", "seed": "seeds every random choice",
    "init": "initial weights: 'uniform' (default, the seed's regime) draws U(-1,1), 'spread' puts the kinks in (0,1)",
    "max_iter": "limit on fine-level iterations", "gtol": "stop when ||grad f|| <= GTOL",
    "ftol": "stop when f <= FTOL * f(x0) (relative to the initial loss)", "lambda_p": "boundary penalty λ_p",
    "lambda0": "initial regularisation λ_0", "lambda_min": "lower bound on λ",
    "solve_form": "regularised solve: auto, normal, residual, assembled or direct (Cholesky of the smaller Gram matrix, m × m or n × n)",
    "ksp_rtol": "default KSP relative tolerance (the PETSc option -ksp_rtol wins)",
    "test_points": "points of the RMSE test grid on [0,1]", "out": "output file (HDF5)",
    "force": "overwrite an existing output file",
    "checkpoint_every": "iterations between checkpoints (0: none)",
    "resume": "continue the run stored in this file",
    "progress_interval": "seconds between progress lines", "quiet": "print only the summary",
    "levels": "rlm, rarc: number of levels, the trained network included",
    "min_width": "rlm, rarc: do not coarsen a level narrower than this",
    "coarse_max_iter": "rlm, rarc: iteration cap on each coarse level",
    "kappa_h": "rlm, rarc: recurse only if ||R g|| >= KAPPA_H ||g||",
    "pre_smooth": "rlm, rarc: Taylor iterations before each recursive attempt (V-cycle)",
    "post_smooth": "rlm, rarc: Taylor iterations after each recursive attempt (V-cycle)",
    "theta": "rlm, rarc: AMG strength threshold (the seed's epsilon)",
    "strength": "rlm, rarc: strong couplings: min (the seed's rule) or abs",
    "interpolation": "rlm, rarc: AMG interpolation: direct or injection",
    "coarse_start": "rlm, rarc: coarse starting point: collect (C-neurons' w, b and v_H = P^T v), injection onto the C-neurons, or restriction R x",
    "coarse_model": "rlm, rarc: coarse model: galerkin (the level's Gauss-Newton, for rarc "
                    "second-order Taylor, model on range(P)) or network "
                    "(the narrower network with first-order correction, the seed's) or "
                    "restricted (the level's own loss on x + range(P), rlm only); auto, the "
                    "default: restricted for rlm, galerkin for rarc",
    "model_choice": "rlm, rarc: at a recursive slot take the coarse model when it is useful "
                    "(gradient: the ||R g|| test only; cost, the default: also while its measured "
                    "decrease per flop is at least the Taylor step's)",
    "checkpoint_seconds": "seconds between checkpoints (0: none; rank 0's clock decides)",
    "galerkin_basis": "rlm, rarc: basis of range(P) for the galerkin model: orthonormal (coarse λ "
                      "regularises like the fine one) or the interpolation P itself",
    "rebuild_every": "rlm, rarc: rebuild the hierarchy every N iterations (0: build once; "
                     "-1, the default: 40 for rlm, 10 for rarc)",
    "screen_age": "rlm, rarc: skip a due rebuild while the hierarchy is younger than this many "
                  "iterations and already finds the coarse model not useful (0: never skip)",
    "l1_smoothing": "l1: train sqrt(r^2 + δ^2) − δ with this δ instead of |r|",
    "cubic_theta": "arc: Lanczos stops when ||grad m(s)|| <= CUBIC_THETA ||s||^2",
    "krylov_max_it": "arc: at most this many Lanczos iterations per subproblem",
}

_CHOICES = {"problem": PROBLEMS, "activation": activations.NAMES, "loss": LOSSES,
            "method": METHODS, "init": INITS, "solve_form": SOLVE_FORMS,
            "strength": STRENGTHS, "interpolation": INTERPOLATIONS, "coarse_start": COARSE_STARTS,
            "coarse_model": COARSE_MODELS, "galerkin_basis": GALERKIN_BASES,
            "model_choice": MODEL_CHOICES}


def _opt(name: str) -> str:
    return name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def _parser() -> _Parser:
    p = _Parser(prog="mlpar", description=(
        "Train the seed's shallow network with (multilevel) Levenberg–Marquardt or "
        "cubic regularisation (ARC) over MPI. "
        "Arguments with a single dash (-ksp_type cg, -ksp_monitor) go to PETSc."),
        allow_abbrev=False)
    p.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file")
    for f in fields(Config):
        kind = _TYPES[f.name]
        if kind is bool:
            p.add_argument(f"--{_opt(f.name)}", action="store_true", default=None,
                           help=_HELP[f.name])
        else:
            p.add_argument(f"--{_opt(f.name)}", type=kind, default=None, help=_HELP[f.name],
                           choices=_CHOICES.get(f.name), metavar=None if f.name in _CHOICES
                           else f.name.upper())
    return p


def split_petsc_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate PETSc options (single dash, with their values) from mlpar's."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and not _is_number(a):
            petsc.append(a)
            while i + 1 < len(argv) and (not argv[i + 1].startswith("-")
                                         or _is_number(argv[i + 1])):
                i += 1
                petsc.append(argv[i])
        else:
            ours.append(a)
        i += 1
    return ours, petsc


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_toml(path: str) -> dict:
    """Read a TOML configuration file into {field: value}; unknown keys are errors."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _TYPES:
            raise ConfigError(f"--config {path}: unknown key {key!r}")
        if isinstance(value, dict):
            raise ConfigError(f"--config {path}: key {key!r} must be a value, not a table")
        out[name] = value
    return out


def parse(argv: list[str]) -> tuple[Config, list[str], dict]:
    """Return the validated configuration, the PETSc arguments of a command line, and the
    options it set explicitly (command line or ``--config`` file) as {field: value}."""
    ours, petsc = split_petsc_args(argv)
    ns = _parser().parse_args(ours)
    values = {}
    if ns.config:
        values.update(load_toml(ns.config))
    for f in fields(Config):
        v = getattr(ns, f.name)
        if v is not None:
            values[f.name] = v
    cfg = Config(**values)
    if ns.config:
        try:
            cfg.validate()
        except ConfigError as exc:
            raise ConfigError(f"{exc} (after reading {ns.config})") from None
        return cfg, petsc, values
    return cfg.validate(), petsc, values


def usage_help() -> str:
    return _parser().format_help()


def config_from_json(text: str) -> Config:
    """The configuration stored in an output or checkpoint file."""
    data = json.loads(text)
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in data.items() if k in known}).validate()

