"""Run configuration: every option defined once, then defaults, TOML file, command line,
validation.

Each option is one field of :class:`Config`, declared with :func:`option`: its type (the
annotation), its default, its help text, its group in ``--help``, and optionally its
choices, a check of its value and how a placeholder default (``auto``, ``-1``, ``0``) is
resolved, or a default that depends on the problem's input dimension (1-D or 2-D/3-D).
The argparse parser, the TOML reader, ``--help`` (which shows every default and
the choices) and the validation are all derived from these fields; nothing else lists
options.  Defaults that another module owns (:class:`mlpar.optim.common.LMParameters`,
:class:`mlpar.multilevel.parameters.MultilevelParameters`) are read from it.

To add an option, add one field to :class:`Config` in the section of its group::

    my_option: float = option(1.0, "what it does", METHOD, check=positive)

and it is at once ``--my-option``, the TOML key ``my_option`` / ``my-option``, shown in
``--help`` with its default, type-checked and checked by ``check``.  Checks that involve
several options go in :meth:`Config.validate`.

Precedence: built-in defaults < ``--config FILE.toml`` < command-line options.
Arguments that start with a single dash (``-ksp_type cg``) and their values are PETSc
options and are passed on untouched, except a single-dash spelling of an mlpar option
(``-width 16``), which is an error.  :meth:`Config.validate` replaces every placeholder by
the value it stands for, so a validated configuration (the one stored in output files and
checkpoints) holds the values actually used.  Every problem is reported as a
:class:`ConfigError` whose message names the option or file and what was expected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from mlpar.linalg.forms import AUTO_MG_MAX_WEIGHTS
from mlpar.linalg.preconditioner import AUTO_ITERATIONS, PRECONDITIONERS
from mlpar.model import activations
from mlpar.model.layout import ParameterLayout
from mlpar.model.losses import NAMES as LOSSES
from mlpar.model.problems import NAMES as PROBLEMS
from mlpar.model.problems import input_dim, make_problem, problem_point_count
from mlpar.multilevel.parameters import (
    INTERPOLATIONS,
    RARC_REBUILD_EVERY,
    RLM_REBUILD_EVERY,
    SPARSE_COUPLINGS,
    SPARSE_FROM_WIDTH,
    STRENGTHS,
    MultilevelParameters,
)
from mlpar.optim.common import LMParameters

METHODS = ("lm", "rlm", "arc", "rarc")
SOLVE_FORMS = ("auto", "normal", "residual", "assembled", "direct")
INITS = ("spread", "uniform")
COARSE_STARTS = ("collect", "injection", "restriction")
COARSE_MODELS = ("auto", "galerkin", "network", "restricted")
GALERKIN_BASES = ("orthonormal", "interpolation")
MODEL_CHOICES = ("gradient", "cost")

# The groups of ``--help``, in this order.
PROBLEM, NETWORK, METHOD, MULTILEVEL, SOLVER, OUTPUT, RUN = (
    "problem", "network", "method", "multilevel", "solver", "output/checkpoints", "run")
GROUPS = (PROBLEM, NETWORK, METHOD, MULTILEVEL, SOLVER, OUTPUT, RUN)

#: The largest integer an option may take (numpy and PETSc index with 64-bit integers).
INT_MAX = 2 ** 63 - 1

#: More levels than any width below 2**63 can be coarsened into (each coarse level is at
#: most 0.8 times as wide as the one above: log(2**63) / log(1.25) < 196).
MAX_LEVELS = 200

#: A configuration file is read only up to this size (``--config /dev/zero`` never ends).
MAX_CONFIG_BYTES = 2 ** 20

#: Prefixes of PETSc's own option names: a single-dash mlpar option name that starts with one
#: of them (``-ksp_rtol``) is PETSc's option, not a typo.
PETSC_PREFIXES = ("ksp_", "pc_", "mat_", "vec_", "snes_", "tao_", "log_", "options_")


class ConfigError(ValueError):
    """A bad option, value or configuration file (exit status 2)."""


# Checks of one value: None when fine, else what is wrong (after "--name: ").

Check = Callable[[Any], "str | None"]


def positive(value) -> str | None:
    """A number > 0 (an integer > 0 is "a positive integer")."""
    if value > 0:
        return None
    return (f"must be a positive integer, got {value}" if isinstance(value, int)
            else f"must be > 0, got {value}")


def nonnegative(value) -> str | None:
    """A number >= 0."""
    return None if value >= 0 else f"must be >= 0, got {value}"


def inside(low: float, high: float) -> Check:
    """A number in the open interval (low, high)."""
    def check(value):
        return None if low < value < high else f"must be in ({low:g}, {high:g}), got {value}"
    return check


def at_most(limit: int, why: str) -> Check:
    """A positive integer no larger than ``limit`` (``why`` says where the limit comes from)."""
    def check(value):
        if value > limit:
            return f"must be at most {limit} ({why}), got {value}"
        return positive(value)
    return check


def option(default, help: str, group: str, *, choices: tuple[str, ...] | None = None,
           check: Check | None = None, auto=None, resolve: Callable[["Config"], Any] | None = None,
           metavar: str | None = None, by_dimension: tuple | None = None):
    """One option: a :class:`Config` field with its ``--help`` text, group and rules.

    Parameters
    ----------
    default : the built-in value (shown in ``--help``).
    help : what the option does, in a few words.
    group : one of :data:`GROUPS`, the section of ``--help``.
    choices : the allowed values of a string option.
    check : a check of the value (:func:`positive`, :func:`nonnegative`, :func:`inside`).
    auto, resolve : a placeholder value and the function giving what it stands for on a
        configuration; :meth:`Config.validate` replaces ``auto`` by ``resolve(cfg)``.
    metavar : the value's name in ``--help`` (default: the option name in capitals).
    by_dimension : (default of the 1-D problems, default of the 2-D and 3-D problems), for an
        option whose default depends on the problem; ``default`` is then ``None``, which
        :class:`Config` replaces by the configured problem's default when it is made.  A value
        given in a file or on the command line is used as it is, and checked like any other.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "group": group, "choices": choices, "check": check, "auto": auto,
        "resolve": resolve, "metavar": metavar, "by_dimension": by_dimension})


def _coarse_model_of(cfg: "Config") -> str:
    """restricted for rlm, galerkin for rarc (the restricted model needs a least-squares
    loss)."""
    return "galerkin" if cfg.method in ("arc", "rarc") else MultilevelParameters.coarse_model


def _rebuild_every_of(cfg: "Config") -> int:
    """400 for rlm, 10 for rarc (docs/notes/2026-12-work.md; docs/results.md, "How often the
    hierarchy is rebuilt"), 40 for the preconditioner's own coarse space (lm)."""
    if cfg.method == "rarc":
        return RARC_REBUILD_EVERY
    return RLM_REBUILD_EVERY if cfg.method == "rlm" else MultilevelParameters.rebuild_every


def _amg_couplings_of(cfg: "Config") -> int:
    """The dense set-up below width 2048 (and for direct interpolation, which needs whole rows
    of A), 64 couplings per neuron from there on."""
    if cfg.width < SPARSE_FROM_WIDTH or cfg.interpolation == "direct":
        return 0
    return SPARSE_COUPLINGS


def _amg_couplings_check(value: int) -> str | None:
    return None if value >= -1 else (f"must be >= 0, or -1 for the width's default, "
                                     f"got {value}")


def _points_of(cfg: "Config") -> int:
    """The equispaced grid with h = 1/(3ν) (per axis; ν the highest axial frequency of the
    solution for d > 1); ConfigError when ν makes it impossibly large."""
    problem = make_problem(cfg.problem, cfg.nu, cfg.a1, cfg.a2, cfg.k)
    frequency = problem.frequency if problem.input_dim > 1 else cfg.nu
    if not 3.0 * frequency < INT_MAX:
        raise ConfigError(f"--nu {cfg.nu:g}: the default grid h = 1/(3ν) would have more "
                          f"than {INT_MAX:.2g} training points; give a smaller --nu or set "
                          f"--points")
    return problem_point_count(problem)


def _problem_data_is_finite(name: str, nu: float, a1: float = 1.0, a2: float = 4.0,
                            k: float = 1.0) -> bool:
    """Whether the problem's operator coefficients, right-hand side, true solution and
    boundary values at frequency ν are finite floats (a huge ν overflows ν²)."""
    z = np.linspace(0.0, 1.0, 5)
    if input_dim(name) > 1:
        z = np.repeat(z[:, None], input_dim(name), axis=1)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            problem = make_problem(name, nu, a1, a2, k)
            samples = (problem.rhs(z), problem.exact(z), [c for _, c in problem.terms],
                       [g for _, g in problem.boundary])
            return all(np.all(np.isfinite(np.asarray(s, dtype=float))) for s in samples)
    except OverflowError:
        return False


def _rebuild_every_check(value: int) -> str | None:
    return None if value >= -1 else (f"must be >= 0, or -1 for the method's default, "
                                     f"got {value}")


_ML = "rlm, rarc: "
_LM = LMParameters
_MLP = MultilevelParameters


@dataclass
class Config:
    """Every setting of a run: one field per option (see the module docstring)."""

    # problem
    problem: str = option("poisson", "training problem", PROBLEM, choices=PROBLEMS)
    nu: float = option(20.0, "frequency ν of the true solution / target", PROBLEM,
                       check=positive)
    points: int = option(0, "interior training points, per axis for the 2D/3D problems (a "
                         "t × t or t × t × t grid, plus the grid points on the boundary; 0: "
                         "the equispaced grid h = 1/(3ν), ν the highest axial frequency of "
                         "the solution)", PROBLEM, check=nonnegative, auto=0,
                         resolve=_points_of)
    loss: str = option("l2", "loss function (lm and rlm need l2)", PROBLEM, choices=LOSSES)
    lambda_p: float = option(None, "boundary penalty λ_p", PROBLEM, check=nonnegative,
                             by_dimension=(1.0, 1000.0))
    l1_smoothing: float = option(1e-3, "l1: train sqrt(r^2 + δ^2) − δ with this δ instead "
                                       "of |r|", PROBLEM, check=positive)
    test_points: int = option(1000, "points of the RMSE test grid on [0,1]; for 2D/3D about "
                              "this many in all (round(N^(1/d)) per axis)", PROBLEM,
                              check=positive)
    a1: float = option(1.0, "helmholtz2d: u = sin(a1 π x) sin(a2 π y)", PROBLEM)
    a2: float = option(4.0, "helmholtz2d: see --a1", PROBLEM)
    k: float = option(1.0, "helmholtz2d: wave number k of Δu + k²u = f", PROBLEM)
    # network
    width: int = option(None, "hidden-layer width r", NETWORK, check=positive,
                        by_dimension=(512, 128))
    activation: str = option("sigmoid", "σ as the seed defines it", NETWORK,
                             choices=activations.NAMES)
    init: str = option(None, "initial weights: uniform (the seed's regime) draws U(-1,1), "
                             "spread puts the kinks in (0,1)", NETWORK, choices=INITS,
                       by_dimension=("uniform", "spread"))
    # method
    method: str = option("rlm", "optimisation method", METHOD, choices=METHODS)
    max_iter: int = option(5000, "limit on fine-level iterations", METHOD, check=nonnegative)
    max_time: float = option(0.0, "stop after this many seconds of training (rank 0's clock; a "
                             "resumed run's earlier parts count; 0: no limit); the output file "
                             "then has status max_iter, reason max_time", METHOD,
                             check=nonnegative, metavar="SECONDS")
    gtol: float = option(1e-8, "stop when ||grad f|| <= GTOL", METHOD, check=positive)
    ftol: float = option(None, "stop when f <= FTOL * f(x0) (relative to the initial loss)",
                         METHOD, check=nonnegative, by_dimension=(1e-10, 1e-12))
    lambda0: float = option(_LM.lambda0, "initial regularisation λ_0", METHOD, check=positive)
    lambda_min: float = option(_LM.lambda_min, "lower bound on λ", METHOD, check=positive)
    # multilevel
    levels: int = option(_MLP.levels, _ML + "number of levels, the trained network included",
                         MULTILEVEL, check=at_most(MAX_LEVELS, "each coarse level is at most "
                                                   f"{_MLP.max_coarse_ratio:g} times as wide "
                                                   "as the one above"))
    min_width: int = option(_MLP.min_width, _ML + "do not coarsen a level narrower than this",
                            MULTILEVEL, check=positive)
    coarse_max_iter: int = option(_MLP.coarse_max_iter, _ML + "iteration cap on each coarse "
                                  "level", MULTILEVEL, check=positive)
    kappa_h: float = option(_MLP.kappa_h, _ML + "recurse only if ||R g|| >= KAPPA_H ||g||",
                            MULTILEVEL, check=nonnegative)
    pre_smooth: int = option(_MLP.pre_smooth, _ML + "Taylor iterations before each recursive "
                             "attempt (V-cycle)", MULTILEVEL, check=nonnegative)
    post_smooth: int = option(_MLP.post_smooth, _ML + "Taylor iterations after each recursive "
                              "attempt (V-cycle)", MULTILEVEL, check=nonnegative)
    theta: float = option(_MLP.theta, _ML + "AMG strength threshold (the seed's epsilon)",
                          MULTILEVEL, check=inside(0, 1))
    strength: str = option(_MLP.strength, _ML + "strong couplings: min (the seed's rule) or "
                           "abs", MULTILEVEL, choices=STRENGTHS)
    interpolation: str = option(_MLP.interpolation, _ML + "AMG interpolation", MULTILEVEL,
                                choices=INTERPOLATIONS)
    amg_couplings: int = option(-1, _ML + "AMG set-up: keep the K most negative and the K "
                                "largest |a_ij| of each neuron's row of the neuron graph, formed "
                                "in row chunks with no r x r array (0: the dense graph; -1: 0 "
                                f"below width {SPARSE_FROM_WIDTH}, {SPARSE_COUPLINGS} from "
                                "there)", MULTILEVEL, check=_amg_couplings_check, auto=-1,
                                resolve=_amg_couplings_of, metavar="K")
    amg_sample: int = option(_MLP.amg_sample, _ML + "AMG set-up: estimate the neuron graph "
                             "from a fixed sample of S training rows (0: all rows)",
                             MULTILEVEL, check=nonnegative, metavar="S")
    coarse_start: str = option(_MLP.coarse_start, _ML + "coarse starting point: collect "
                               "(C-neurons' w, b and v_H = P^T v), injection onto the "
                               "C-neurons, or restriction R x", MULTILEVEL,
                               choices=COARSE_STARTS)
    coarse_model: str = option("auto", _ML + "coarse model: galerkin (the level's "
                               "Gauss-Newton, for rarc second-order Taylor, model on range(P)) "
                               "or network (the narrower network with first-order correction, "
                               "the seed's) or restricted (the level's own loss on x + "
                               "range(P), rlm only); auto: restricted for rlm, galerkin for "
                               "rarc", MULTILEVEL, choices=COARSE_MODELS, auto="auto",
                               resolve=_coarse_model_of)
    galerkin_basis: str = option(_MLP.galerkin_basis, _ML + "basis of range(P) for the "
                                 "galerkin model: orthonormal (coarse λ regularises like the "
                                 "fine one) or the interpolation P itself", MULTILEVEL,
                                 choices=GALERKIN_BASES)
    rebuild_every: int = option(-1, _ML + "rebuild the hierarchy every N iterations (0: build "
                                f"once; -1: {RLM_REBUILD_EVERY} for rlm, {RARC_REBUILD_EVERY} "
                                f"for rarc, {_MLP.rebuild_every} for lm's --pc mg)", MULTILEVEL,
                                check=_rebuild_every_check, auto=-1, resolve=_rebuild_every_of,
                                metavar="N")
    screen_age: int = option(_MLP.screen_age, _ML + "skip a due rebuild while the hierarchy is "
                             "younger than this many iterations and already finds the coarse "
                             "model not useful (0: never skip)", MULTILEVEL, check=nonnegative)
    model_choice: str = option(_MLP.model_choice, _ML + "at a recursive slot take the coarse "
                               "model when it is useful (gradient: the ||R g|| test only; cost: "
                               "also while its measured decrease per unit of work, the seed's "
                               "flops and the network's evaluations, is at least the Taylor "
                               "step's, and build the hierarchy only when the Taylor steps "
                               "would gain less than a decade of the loss with its work)",
                               MULTILEVEL, choices=MODEL_CHOICES)
    # solver
    solve_form: str = option("auto", "regularised solve: normal, residual, assembled or direct "
                             "(Cholesky of the smaller Gram matrix, m × m or n × n); auto "
                             "chooses per level", SOLVER, choices=SOLVE_FORMS)
    ksp_rtol: float = option(1e-10, "default KSP relative tolerance (the PETSc option "
                             "-ksp_rtol wins)", SOLVER, check=inside(0, 1))
    pc: str = option("auto", "preconditioner of the parameter-space CG (normal form; auto then "
                     "takes it over the residual form): jacobi, bjacobi (per-neuron blocks), "
                     "mg (two levels on the AMG neuron coarse space), or auto (none until a "
                     f"solve needs more than {AUTO_ITERATIONS} CG iterations, then mg, on levels "
                     f"of at most {AUTO_MG_MAX_WEIGHTS} weights; none on the direct and "
                     "residual forms, where no preconditioner applies); the "
                     "PETSc option -mlpar_pc wins", SOLVER, choices=PRECONDITIONERS)
    cubic_theta: float = option(0.5, "arc: Lanczos stops when ||grad m(s)|| <= CUBIC_THETA "
                                "||s||^2", SOLVER, check=positive)
    krylov_max_it: int = option(300, "arc: at most this many Lanczos iterations per "
                                "subproblem", SOLVER, check=positive)
    # output/checkpoints
    out: str = option("mlpar.h5", "output file (HDF5)", OUTPUT, metavar="FILE.h5")
    force: bool = option(False, "overwrite an existing output file", OUTPUT)
    checkpoint_every: int = option(0, "iterations between checkpoints (0: none)", OUTPUT,
                                   check=nonnegative)
    checkpoint_seconds: float = option(0.0, "seconds between checkpoints (0: none; rank 0's "
                                            "clock decides)", OUTPUT, check=nonnegative)
    resume: str = option("", "continue the run stored in this file", OUTPUT,
                         metavar="FILE.h5")
    # run
    seed: int = option(0, "seeds every random choice", RUN, check=nonnegative)
    progress_interval: float = option(1.0, "seconds between progress lines", RUN,
                                      check=positive)
    quiet: bool = option(False, "print only the summary", RUN)

    def __post_init__(self) -> None:
        """The defaults that depend on the problem's dimension, for the options not given."""
        for opt in OPTIONS:
            if opt.by_dimension is not None and getattr(self, opt.name) is None:
                setattr(self, opt.name, opt.by_dimension[input_dim(self.problem) > 1])

    def validate(self) -> "Config":
        """Check every field, replace placeholders by the values they stand for; raise
        ConfigError naming the first bad option."""
        for opt in OPTIONS:
            setattr(self, opt.name, opt.checked(getattr(self, opt.name)))
        if self.lambda_min >= LMParameters.lambda_max:
            raise ConfigError(f"--lambda-min: must be below λ_max = {LMParameters.lambda_max:g}, "
                              f"got {self.lambda_min}")
        if self.lambda_min > self.lambda0:
            raise ConfigError(f"--lambda-min ({self.lambda_min}) must not exceed --lambda0 "
                              f"({self.lambda0})")
        if self.amg_couplings > 0 and self.interpolation == "direct":
            raise ConfigError(f"--amg-couplings {self.amg_couplings} keeps only the strongest "
                              "couplings, on which direct interpolation is not defined; use "
                              "--interpolation injection or --amg-couplings 0")
        if self.method in ("lm", "rlm") and self.loss != "l2":
            raise ConfigError(f"--method {self.method} is a least-squares method and needs "
                              f"--loss l2 (got --loss {self.loss}); use --method arc or rarc "
                              f"for {self.loss}")
        if self.method in ("arc", "rarc") and self.coarse_model == "restricted":
            raise ConfigError("--coarse-model restricted is implemented for rlm only; use "
                              "galerkin or network with --method rarc")
        if self.pc not in ("none", "auto") and self.solve_form in ("residual", "direct"):
            raise ConfigError(f"--pc {self.pc} acts in parameter space: use it with --solve-form "
                              f"auto, normal or assembled, not {self.solve_form}")
        if not self.out:
            raise ConfigError("--out: an output file name is required")
        if not _problem_data_is_finite(self.problem, self.nu, self.a1, self.a2, self.k):
            raise ConfigError(f"--nu {self.nu:g}: the {self.problem} problem's coefficients or "
                              f"data overflow double precision (ν² must be finite)")
        for opt in OPTIONS:
            if opt.auto is not None and getattr(self, opt.name) == opt.auto:
                setattr(self, opt.name, opt.resolve(self))
        return self

    @property
    def layout(self) -> ParameterLayout:
        """The parameter layout of the configured network."""
        return ParameterLayout(self.width, input_dim(self.problem))

    @property
    def resolved_coarse_model(self) -> str:
        """The coarse model used (``auto`` resolved, also before :meth:`validate`)."""
        return _coarse_model_of(self) if self.coarse_model == "auto" else self.coarse_model

    @property
    def resolved_rebuild_every(self) -> int:
        """The rebuild interval used (-1 resolved, also before :meth:`validate`)."""
        return _rebuild_every_of(self) if self.rebuild_every == -1 else self.rebuild_every

    def to_json(self) -> str:
        """The configuration as a JSON object (stored in output files; resolved values once
        validated)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Option:
    """What :func:`option` declared for one field of :class:`Config`."""

    name: str
    type: type
    default: Any
    help: str
    group: str
    choices: tuple[str, ...] | None
    check: Check | None
    auto: Any
    resolve: Callable[[Config], Any] | None
    metavar: str | None
    by_dimension: tuple | None

    @property
    def flag(self) -> str:
        """The command-line spelling, ``--max-iter``."""
        return "--" + self.name.replace("_", "-")

    def checked(self, value):
        """``value`` with the type this option needs (an int is a valid float), or
        ConfigError naming the option and what is wrong."""
        kind = self.type
        fits = (isinstance(value, bool) if kind is bool else
                not isinstance(value, bool) and (isinstance(value, kind) or
                                                 (kind is float and isinstance(value, int))))
        if not fits:
            raise ConfigError(f"{self.flag}: expected {kind.__name__}, got {value!r}")
        if kind is float:
            try:
                value = float(value)
            except OverflowError:
                raise ConfigError(f"{self.flag}: a {_digits(value)}-digit integer is too large "
                                  f"for a floating-point number") from None
            if not math.isfinite(value):
                raise ConfigError(f"{self.flag}: must be a finite number, got {value!r}")
        if kind is int and abs(value) > INT_MAX:
            raise ConfigError(f"{self.flag}: a {_digits(value)}-digit integer is out of range "
                              f"(at most {INT_MAX})")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.flag}: {value!r} is not one of {', '.join(self.choices)}")
        problem = self.check(value) if self.check is not None else None
        if problem is not None:
            raise ConfigError(f"{self.flag}: {problem}")
        return value

    def help_text(self) -> str:
        """The ``--help`` line: what it does and its default."""
        if self.type is bool:
            return self.help
        return f"{self.help} (default: {self.default_text})".replace("%", "%%")

    @property
    def default_text(self) -> str:
        """The default as ``--help`` shows it: ``512``, or ``512 in 1D, 128 in 2D/3D``."""
        if self.by_dimension is None:
            return str(self.default)
        one, more = self.by_dimension
        return f"{one} in 1D, {more} in 2D/3D"


def _digits(value: int) -> int:
    """The number of decimal digits of a (huge) integer, without converting it to text."""
    return math.floor(math.log10(abs(value))) + 1


def _option_of(f: dataclasses.Field) -> Option:
    if "group" not in f.metadata:
        raise TypeError(f"Config.{f.name}: declare every option with option(default, help, "
                        f"group, ...)")
    return Option(f.name, _TYPES[f.name], f.default, **f.metadata)


_TYPES = typing.get_type_hints(Config)
#: Every option, in the order of :class:`Config`.
OPTIONS: tuple[Option, ...] = tuple(_option_of(f) for f in fields(Config))
_BY_NAME = {opt.name: opt for opt in OPTIONS}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def _parser() -> _Parser:
    p = _Parser(prog="mlpar", description=(
        "Train the seed's shallow network with (multilevel) Levenberg–Marquardt or "
        "cubic regularisation (ARC) over MPI. "
        "Arguments with a single dash (-ksp_type cg, -ksp_monitor) go to PETSc."),
        allow_abbrev=False)
    sections = {group: p.add_argument_group(group) for group in GROUPS}
    sections[RUN].add_argument("--config", metavar="FILE.toml",
                               help="read options from a TOML file (the command line wins)")
    for opt in OPTIONS:
        section = sections[opt.group]
        if opt.type is bool:
            section.add_argument(opt.flag, action="store_true", default=None,
                                 help=opt.help_text())
        else:
            section.add_argument(opt.flag, type=opt.type, default=None, help=opt.help_text(),
                                 choices=opt.choices,
                                 metavar=None if opt.choices else
                                 (opt.metavar or opt.name.upper()))
    return p


def split_petsc_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate PETSc options (single dash, with their values) from mlpar's; a single-dash
    spelling of an mlpar option (``-width``) is a ConfigError."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and not _is_number(a):
            _refuse_single_dash_mlpar_option(a)
            petsc.append(a)
            while i + 1 < len(argv) and (not argv[i + 1].startswith("-")
                                         or _is_number(argv[i + 1])):
                i += 1
                petsc.append(argv[i])
        else:
            ours.append(a)
        i += 1
    return ours, petsc


def _refuse_single_dash_mlpar_option(arg: str) -> None:
    name = arg[1:].split("=", 1)[0].replace("-", "_")
    if name.startswith(PETSC_PREFIXES):
        return
    if name in _BY_NAME or name == "config":
        raise ConfigError(f"{arg}: unknown option; did you mean --{name.replace('_', '-')}?")


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
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"--config {path}: larger than {MAX_CONFIG_BYTES // 2 ** 20} MiB, not "
                          f"a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: {_not_text(raw)}, not UTF-8 text (TOML files are "
                          f"UTF-8; byte {exc.start} cannot be decoded)") from None
    if "\0" in text:
        raise ConfigError(f"--config {path}: a binary file (it contains NUL bytes), not TOML "
                          f"text")
    try:
        data = tomllib.loads(text)
    except ValueError as exc:   # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _BY_NAME:
            raise ConfigError(f"--config {path}: unknown key {key!r}")
        if isinstance(value, dict):
            raise ConfigError(f"--config {path}: key {key!r} must be a value, not a table")
        out[name] = value
    return out


def _not_text(raw: bytes) -> str:
    """What a file that is not UTF-8 looks like."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text"
    if raw.startswith(b"\x89HDF"):
        return "an HDF5 file"
    return "a binary file"


def parse(argv: list[str]) -> tuple[Config, list[str], dict]:
    """Return the validated configuration, the PETSc arguments of a command line, and the
    options it set explicitly (command line or ``--config`` file) as {field: value}."""
    ours, petsc = split_petsc_args(argv)
    ns = _parser().parse_args(ours)
    values = {}
    if ns.config:
        values.update(load_toml(ns.config))
    for opt in OPTIONS:
        v = getattr(ns, opt.name)
        if v is not None:
            values[opt.name] = v
    cfg = Config(**values)
    if ns.config:
        try:
            cfg.validate()
        except ConfigError as exc:
            raise ConfigError(f"{exc} (after reading {ns.config})") from None
        return cfg, petsc, values
    return cfg.validate(), petsc, values


def resolve_given(given: dict, base: Config) -> dict:
    """The explicitly given options with their placeholders (``--coarse-model auto``)
    replaced by what they stand for in ``base`` updated with ``given``."""
    merged = Config(**{**dataclasses.asdict(base), **given})
    out = dict(given)
    for name, value in given.items():
        opt = _BY_NAME[name]
        if opt.auto is not None and value == opt.auto:
            out[name] = opt.resolve(merged)
    return out


def usage_help() -> str:
    """The text of ``--help``."""
    return _parser().format_help()


def config_from_json(text: str) -> Config:
    """The configuration stored in an output or checkpoint file (placeholders of older files
    resolved)."""
    data = json.loads(text)
    return Config(**{k: v for k, v in data.items() if k in _BY_NAME}).validate()
