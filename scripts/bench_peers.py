#!/usr/bin/env python
"""Side-by-side benchmark of mlpar against what users would pick instead: scipy, PETSc TAO, PyTorch.

Every method trains the same network ĝ(z) = Σ vᵢ σ(wᵢz + bᵢ) (σ = mlpar's ``sigmoid``,
tanh(x/2)) on the same scaled residuals F (mlpar's ``ResidualBlock``: L = ½‖F‖²) from the
same initial weights (mlpar's ``initial_parameters(width, nu, seed, init)``):

* mlpar ``lm`` and ``rlm`` (the default method) on 1 and 2 MPI ranks;
* ``scipy.optimize.least_squares``: ``trf`` (exact dense Jacobian), ``trf`` with
  ``tr_solver='lsmr'``, ``dogbox``, ``lm`` (MINPACK; it refuses fewer residuals than weights,
  which is reported as refused with its message);
* PETSc TAO BRGN through petsc4py, ``lm`` regulariser, Armijo line search in its subsolver;
* PyTorch (CPU, float64): L-BFGS with strong Wolfe line search, Adam, and the
  ``torch-levenberg-marquardt`` package, with the network and the operator written
  analytically in torch (u″ = Σ v w² σ″(wz + b)).

scipy and TAO get mlpar's numpy residuals and Jacobian; torch computes its own.

Measured per method and seed: the time to the first iterate whose RMSE against the exact
solution on the 1000-point test grid is at most 1e-3, the RMSE at the end (the time cap, or
the method's own stop), iterations and residual evaluations, failures. Twice:

* **in process**: set-up (imports, problem, PETSc objects, hierarchy) excluded, and the time
  spent on the RMSE checks themselves taken out. The RMSE is checked at iterates at least
  ``CHECK_INTERVAL`` seconds of training apart, so a time to target is late by at most that;
* **whole command**: the wall time of a fresh command that trains until the target is
  reached. For mlpar this is ``mpiexec -n N python -m mlpar ... --max-iter K`` with K the
  iteration at which the in-process run reached the target (the runs are deterministic; the
  RMSE of its output file is checked); for a peer, this script's worker with a stop at the
  target (with :data:`COMMAND_CAP_FACTOR` times the cap). Methods that did not reach the
  target in process are not run again.

Medians over the seeds; a seed that did not reach the target counts as infinitely slow.
The ratio columns divide by mlpar's best (fastest median of its rows) on that problem.

Usage (from the repository root, after ``make bench-peers`` has installed the peers)::

    .venv/bin/python scripts/bench_peers.py --quick          # one seed, seed's problems, < 2 min
    .venv/bin/python scripts/bench_peers.py                  # everything, 5 seeds
    .venv/bin/python scripts/bench_peers.py --seeds 0 1 --time-cap 10 --cases poisson-20

A peer that is not installed is reported as missing. The command and the machine are printed
before the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from benchrun import ROOT

sys.path.insert(0, str(ROOT))   # this checkout's mlpar, not an installed one

# mlpar's model functions: the one place that names their modules.
from mlpar.model.network import initial_parameters  # noqa: E402
from mlpar.model.problems import (  # noqa: E402
    ResidualBlock,
    make_problem,
    problem_point_count,
    rmse,
    row_count,
    test_grid,
)

TARGET_RMSE = 1e-3
TARGET_FACTOR = 3
"""The issue's target: mlpar's default at least this many times faster than the best peer."""
COMMAND_CAP_FACTOR = 3.0
"""A whole-command rerun of a peer may train this many times the cap to reach the target again
(on a loaded machine the same run can take longer the second time)."""
QUICK_TIME_CAP = 2.0
QUICK_MLPAR_TIME_CAP = 15.0
"""--quick ends every run at the target; mlpar's rows get a longer cap there, so that the
check that they reach the target does not depend on the machine's load (a smoke test, not a
measurement)."""
CHECK_INTERVAL = 0.01
"""Seconds of training between two RMSE checks (at most one check per iterate)."""
ACTIVATION = "sigmoid"
LAMBDA_P = 1.0
"""The boundary penalty of every method's residuals, given to mlpar explicitly (its default
may depend on the problem's dimension)."""
TEST_POINTS = 1000
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
              "PYTHONPATH": str(ROOT)}


@dataclass(frozen=True)
class Case:
    """One training problem: mlpar's ``--problem --nu --width --points --init``."""

    problem: str
    nu: float
    width: int
    points: int
    init: str

    @property
    def label(self) -> str:
        pts = f", {self.points} points" if self.points else ""
        # helmholtz2d's solution is set by a₁ = 1, a₂ = 4, k = 1 (mlpar's defaults), not ν
        nu = "" if self.problem == "helmholtz2d" else f" ν={self.nu:g}"
        return f"{self.problem}{nu} r={self.width}{pts}, {self.init} init"

    @property
    def input_dim(self) -> int:
        return make_problem(self.problem, self.nu).input_dim

    @property
    def training_points(self) -> int:
        """t: interior points (per axis for d > 1), mlpar's default when ``points`` is 0."""
        return self.points or problem_point_count(make_problem(self.problem, self.nu))

    def initial(self, seed: int) -> np.ndarray:
        """mlpar's initial weights of this case (``spread`` at ν, or for d > 1 at the highest
        axial frequency of the solution, as :func:`mlpar.api.initial_frequency`)."""
        problem = make_problem(self.problem, self.nu)
        nu = self.nu if problem.input_dim == 1 else problem.frequency
        return initial_parameters(self.width, nu, seed, self.init, problem.input_dim)


CASES = {"poisson-20": ("poisson", 20.0, 512, 0), "poisson-25": ("poisson", 25.0, 1024, 0),
         "helmholtz-5": ("helmholtz", 5.0, 1024, 0),
         "poisson2d-5": ("poisson2d", 5.0, 64, 0), "helmholtz2d": ("helmholtz2d", 20.0, 64, 0),
         "fit-40": ("fit", 40.0, 2048, 4096), "poisson-20-2000": ("poisson", 20.0, 512, 2000)}
SEED_CASES = ("poisson-20", "poisson-25", "helmholtz-5")
LARGE_CASES = ("fit-40", "poisson-20-2000")
"""The issue's larger cases, run only with ``--large`` (or named in ``--cases``)."""
DEFAULT_CASES = tuple(k for k in CASES if k not in LARGE_CASES)


@dataclass(frozen=True)
class Method:
    """A row of the tables: who trains, how, on how many ranks; for mlpar, ``args`` are its
    command-line options beyond the problem's (``--method lm --solve-form direct``)."""

    name: str
    family: str
    ranks: int = 1
    args: str = ""

    @property
    def is_mlpar(self) -> bool:
        return self.family == "mlpar"

    def mlpar_options(self) -> dict:
        """``args`` as :func:`mlpar.solve` options: ``--solve-form direct`` → solve_form."""
        words = self.args.split()
        if len(words) % 2 or not all(w.startswith("--") for w in words[::2]):
            raise ValueError(f"mlpar variant {self.args!r}: expected pairs '--option value'")
        return {k[2:].replace("-", "_"): v for k, v in zip(words[::2], words[1::2])}


def mlpar_method(args: str, ranks: int) -> Method:
    """The mlpar row of ``args`` (``--method lm`` unless they name a method)."""
    if "--method" not in args.split():
        args = f"--method lm {args}".strip()
    return Method("mlpar " + args.replace("--method ", "", 1), "mlpar", ranks, args)


MLPAR_METHODS = ("--method lm", "--method rlm")
METHODS = [mlpar_method(args, ranks) for args in MLPAR_METHODS for ranks in (1, 2)] + [
           Method("scipy trf", "scipy"), Method("scipy trf-lsmr", "scipy"),
           Method("scipy dogbox", "scipy"), Method("scipy lm", "scipy"),
           Method("TAO BRGN lm", "tao"),
           Method("torch L-BFGS", "torch"), Method("torch Adam", "torch"),
           Method("torch-levenberg-marquardt", "torch-lm")]
MLPAR_DEFAULT = "mlpar rlm"
"""mlpar's default method (``--method`` default), the one the target is about."""
PEER_MODULES = {"mlpar": "mpi4py", "scipy": "scipy", "tao": "petsc4py", "torch": "torch",
                "torch-lm": "torch_levenberg_marquardt"}


@dataclass
class SeedResult:
    """One method on one case and seed.

    ``status``: ``reached`` (RMSE <= target at some iterate), ``not reached``, ``failed``
    (an exception: ``message``), ``refused`` (the method declined the problem: ``message``),
    ``missing`` (not installed).
    """

    seed: int
    status: str
    message: str = ""
    time_to_target: float | None = None
    iterations_to_target: int | None = None
    final_rmse: float | None = None
    iterations: int = 0
    evaluations: int = 0
    elapsed: float = 0.0
    command_time: float | None = None


class StopRun(Exception):
    """Raised from a peer's callback to end its run (time cap or target reached)."""


class Tracker:
    """Follows a run's iterates: RMSE on the test grid, training time without the tracker's own
    time, and the decision to stop (time cap, or the target when ``stop_at_target``).

    Parameters
    ----------
    case : the problem trained.
    time_cap : seconds of training after which the run stops.
    stop_at_target : stop at the first iterate with RMSE <= :data:`TARGET_RMSE`.
    """

    def __init__(self, case: Case, time_cap: float, stop_at_target: bool):
        self.problem = make_problem(case.problem, case.nu)
        self.z = test_grid(self.problem, TEST_POINTS)[1]   # mlpar's: 32 × 32 for d = 2
        self.time_cap = time_cap
        self.stop_at_target = stop_at_target
        self.t0 = time.perf_counter()
        self.overhead = 0.0
        self.iterations = 0
        self.evaluations = 0
        self.last_check = -math.inf
        self.x_last: np.ndarray | None = None
        self.time_to_target: float | None = None
        self.iterations_to_target: int | None = None
        self.elapsed = 0.0
        self.stop = False

    def start(self) -> None:
        """Training starts now (set-up is over)."""
        self.t0 = time.perf_counter()
        self.overhead = 0.0

    @contextlib.contextmanager
    def excluded(self):
        """Time spent inside is not training time (the run's own bookkeeping for us)."""
        t_in = time.perf_counter()
        try:
            yield
        finally:
            self.overhead += time.perf_counter() - t_in

    def iterate(self, x: np.ndarray, clock: float | None = None) -> bool:
        """Record a new iterate ``x``; return True when the run should stop.

        ``clock`` is the method's own elapsed training time (mlpar's record time, which
        includes the tracker's earlier overhead); by default the tracker's clock.
        """
        with self.excluded():
            now = (time.perf_counter() - self.t0) if clock is None else clock
            self.elapsed = now - self.overhead
            self.iterations += 1
            self.x_last = np.array(x, dtype=np.float64)
            if self.time_to_target is None and self.elapsed - self.last_check >= CHECK_INTERVAL:
                self.last_check = self.elapsed
                if rmse(self.problem, ACTIVATION, self.x_last, self.z) <= TARGET_RMSE:
                    self.time_to_target = self.elapsed
                    self.iterations_to_target = self.iterations
            self.stop = (self.elapsed >= self.time_cap
                         or (self.stop_at_target and self.time_to_target is not None))
        return self.stop

    def result(self, seed: int, status: str | None = None, message: str = "") -> SeedResult:
        """The seed's result from what was tracked."""
        final = (rmse(self.problem, ACTIVATION, self.x_last, self.z)
                 if self.x_last is not None else None)
        if self.time_to_target is None and final is not None and final <= TARGET_RMSE:
            # the run ended (converged) between two checks: its last iterate is the first
            # one known to be on target
            self.time_to_target, self.iterations_to_target = self.elapsed, self.iterations
        if status is None:
            status = "reached" if self.time_to_target is not None else "not reached"
        return SeedResult(seed, status, message, self.time_to_target, self.iterations_to_target,
                          final, self.iterations, self.evaluations, self.elapsed)


def residual_block(case: Case) -> ResidualBlock:
    """mlpar's residuals of ``case``, all rows (one process)."""
    problem = make_problem(case.problem, case.nu)
    t = case.training_points
    return ResidualBlock(problem, ACTIVATION, t, LAMBDA_P, 0, row_count(problem, t)[1])


# ----------------------------------------------------------------------------------- mlpar

def mlpar_solve(spec: dict, on_iteration) -> str:
    """Train with mlpar in this process (:func:`mlpar.solve`) on the ranks of the job;
    ``on_iteration(record, x)`` runs on rank 0 after every fine iteration and returns True to
    end the run (every rank then raises :class:`StopRun` out of ``mlpar.solve``). Returns
    the run's status, ``stopped`` when ``on_iteration`` ended it.
    """
    from mpi4py import MPI

    import mlpar

    comm = MPI.COMM_WORLD

    def callback(record, x):
        stop = bool(on_iteration(record, x)) if comm.rank == 0 else None
        if comm.bcast(stop, root=0):
            raise StopRun

    try:
        return mlpar.solve(spec, comm=comm, on_iteration=callback).status
    except StopRun:
        return "stopped"


def mlpar_spec(case: Case, method: Method, seed: int) -> dict:
    """The :func:`mlpar.solve` options of ``method`` on ``case`` from ``seed``: the residuals
    and initial weights the peers get (:func:`residual_block`, :meth:`Case.initial`)."""
    return {"problem": case.problem, "nu": case.nu, "width": case.width, "points": case.points,
            "seed": seed, "init": case.init, "lambda_p": LAMBDA_P, "max_iter": 10 ** 9,
            **method.mlpar_options()}


def run_mlpar(case: Case, method: Method, seed: int, tracker: Tracker) -> SeedResult:
    """mlpar on the ranks of this job; rank 0's tracker holds the result."""
    spec = mlpar_spec(case, method, seed)

    def on_iteration(record, x):
        return tracker.iterate(x, clock=record.time)

    status = mlpar_solve(spec, on_iteration)
    if status == "stopped":
        return tracker.result(seed)
    return tracker.result(seed, "failed" if status == "failed" else None, f"mlpar {status}")


# ----------------------------------------------------------------------------------- scipy

def run_scipy(case: Case, method: Method, seed: int, tracker: Tracker) -> SeedResult:
    """``scipy.optimize.least_squares``; an evaluation that lowers the cost is the new iterate,
    and the time cap or the target ends the run through an exception from the residual."""
    from scipy.optimize import least_squares

    block = residual_block(case)
    x0 = case.initial(seed)
    kind = method.name.split()[1]
    options = {"trf": {"method": "trf", "tr_solver": "exact"},
               "trf-lsmr": {"method": "trf", "tr_solver": "lsmr"},
               "dogbox": {"method": "dogbox", "tr_solver": "exact"},
               "lm": {"method": "lm"}}[kind]
    tol = np.finfo(float).eps
    best = {"cost": math.inf}

    def fun(x):
        if tracker.stop:
            raise StopRun
        tracker.evaluations += 1
        F = block.residuals(x)
        cost = 0.5 * float(F @ F)
        if cost < best["cost"]:
            if math.isfinite(best["cost"]):   # the first evaluation is x0, not an iterate
                tracker.iterate(x)
            best["cost"] = cost
        return F

    def jac(x):
        return np.ascontiguousarray(block.residuals_and_jacobian(x)[1])

    tracker.start()
    try:
        found = least_squares(fun, x0, jac=jac, ftol=tol, xtol=tol, gtol=tol,
                              max_nfev=10 ** 9, **options)
    except StopRun:
        return tracker.result(seed)
    except ValueError as exc:
        if kind == "lm" and tracker.evaluations <= 1:   # MINPACK checks m >= n after f(x0)
            return tracker.result(seed, "refused", str(exc))
        raise
    return tracker.result(seed, message=f"least_squares: {found.message}")


# ------------------------------------------------------------------------------------- TAO

def run_tao(case: Case, method: Method, seed: int, tracker: Tracker) -> SeedResult:
    """PETSc TAO BRGN (``lm`` regulariser, Armijo line search), one rank; the monitor sees
    every iterate and ends the run with a user reason."""
    import petsc4py
    petsc4py.init([])
    from petsc4py import PETSc

    block = residual_block(case)
    x0 = case.initial(seed)
    m, n = block.size, x0.size
    opts = PETSc.Options()
    opts["tao_brgn_regularization_type"] = "lm"
    opts["tao_brgn_subsolver_tao_ls_type"] = "armijo"
    comm = PETSc.COMM_SELF
    x = PETSc.Vec().createSeq(n, comm=comm)
    x.array[:] = x0
    R = PETSc.Vec().createSeq(m, comm=comm)
    J = PETSc.Mat().createDense((m, n), comm=comm)
    J.setUp()

    def residual(tao, xv, f):
        tracker.evaluations += 1
        f.array[:] = block.residuals(xv.array_r)

    def jacobian(tao, xv, jmat, pmat):
        jmat.getDenseArray()[:] = block.residuals_and_jacobian(xv.array_r)[1]
        jmat.assemble()

    def monitor(tao):
        if tao.getIterationNumber() > 0 and tracker.iterate(tao.getSolution().array_r):
            tao.setConvergedReason(PETSc.TAO.Reason.CONVERGED_USER)

    tao = PETSc.TAO().create(comm=comm)
    tao.setType("brgn")
    tao.setResidual(residual, R)
    tao.setJacobianResidual(jacobian, J, J)
    tao.setSolution(x)
    tao.setTolerances(gatol=0.0, grtol=0.0, gttol=0.0)
    tao.setMaximumIterations(10 ** 9)
    tao.setMaximumFunctionEvaluations(10 ** 9)
    tao.setFromOptions()
    tao.setUp()
    # BRGN iterates in its subsolver; a Python monitor set on BRGN itself is never called
    tao.getBRGNSubsolver().setMonitor(monitor)
    tracker.start()
    tao.solve()
    reason = tao.getConvergedReason()
    for obj in (tao, J, R, x):
        obj.destroy()
    if reason == PETSc.TAO.Reason.CONVERGED_USER:
        return tracker.result(seed)
    names = [k for k in dir(PETSc.TAO.Reason) if getattr(PETSc.TAO.Reason, k) == reason]
    return tracker.result(seed, "failed" if reason < 0 else None,
                          f"TAO stopped: {' / '.join(names) or reason}")


# ----------------------------------------------------------------------------------- torch

def torch_network(case: Case, x0: np.ndarray):
    """A ``torch.nn.Module`` holding p = [v; w⁽¹⁾…w⁽ᵈ⁾; b] whose forward maps rows
    (z₁…z_d, is_boundary) to mlpar's scaled operator values √c·D(ĝ)(z) (interior) or
    √c_bc·ĝ(z) (boundary), so that forward − target = mlpar's F. The operator is written
    analytically: with aᵢ = wᵢᵀz + bᵢ, D(ĝ) = Σ_k c_k Σᵢ vᵢ‖wᵢ‖^k σ⁽ᵏ⁾(aᵢ) for mlpar's terms
    (k, c_k), k ∈ {0, 2}: the identity and u″ (d = 1) or the Laplacian
    Δĝ = Σ vᵢ‖wᵢ‖²σ″(aᵢ) (d > 1)."""
    import torch

    block = residual_block(case)
    scale, scale_bc = block.scale, block.scale_bc
    terms = block.problem.terms
    r, d = case.width, block.problem.input_dim

    class Network(torch.nn.Module):
        """ĝ(z) = Σ vᵢ σ(wᵢᵀz + bᵢ), σ(x) = tanh(x/2), and the problem's operator on it."""

        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))

        def forward(self, rows):
            z, boundary = rows[..., :d], rows[..., d]
            v, b = self.p[:r], self.p[(d + 1) * r:]
            W = self.p[r:(d + 1) * r].reshape(d, r)
            T = torch.tanh(0.5 * (z @ W + b))          # σ = T
            sech2 = 1.0 - T * T
            # σ″(x) = −½ T sech²(x/2); ‖wᵢ‖^k for k = 0, 2
            derivative = {0: T, 2: -0.5 * T * sech2}
            norm2 = (W * W).sum(dim=0)
            power = {0: torch.ones_like(norm2), 2: norm2}
            interior = sum(c * (derivative[k] @ (v * power[k])) for k, c in terms)
            value = T @ v
            return torch.where(boundary > 0, scale_bc * value, scale * interior)

    def with_flag(z, flag):
        z = z.reshape(z.shape[0], d)
        return np.column_stack([z, np.full(z.shape[0], flag)])

    rows = np.concatenate([with_flag(block.z, 0.0), with_flag(block.z_bc, 1.0)])
    target = np.concatenate([block.scaled_target, block.scaled_u_bc])
    return (Network(), torch.tensor(rows, dtype=torch.float64),
            torch.tensor(target, dtype=torch.float64))


def run_torch(case: Case, method: Method, seed: int, tracker: Tracker) -> SeedResult:
    """torch L-BFGS (strong Wolfe) or Adam on L = ½‖F‖², one iteration per optimiser step."""
    import torch

    torch.set_num_threads(1)
    x0 = case.initial(seed)
    net, rows, target = torch_network(case, x0)
    if method.name == "torch Adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        # one iteration per step; max_eval (by default 5/4 max_iter) bounds the line search
        # too, so it gets torch's 25 line-search evaluations explicitly
        optimizer = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=1, max_eval=26,
                                      history_size=100, tolerance_grad=0.0,
                                      tolerance_change=0.0, line_search_fn="strong_wolfe")
    cache = {"x": None}

    def closure():
        """½‖F‖² and its gradient; L-BFGS evaluates the point its line search accepted once
        more at the start of its next step: that repeat is served from the cache."""
        x = net.p.detach()
        if cache["x"] is not None and torch.equal(cache["x"], x):
            net.p.grad = cache["grad"].clone()
            return cache["loss"]
        tracker.evaluations += 1
        optimizer.zero_grad()
        F = net(rows) - target
        loss = 0.5 * (F @ F)
        loss.backward()
        cache.update(x=x.clone(), grad=net.p.grad.clone(), loss=loss.detach())
        return loss

    tracker.start()
    while True:
        before = net.p.detach().clone()
        optimizer.step(closure)
        x = net.p.detach()
        if not torch.all(torch.isfinite(x)):
            return tracker.result(seed, "failed", "non-finite weights")
        if tracker.iterate(x.numpy()):
            return tracker.result(seed)
        if torch.equal(before, x):
            return tracker.result(seed, message="no progress (the step left the weights equal)")


def run_torch_lm(case: Case, method: Method, seed: int, tracker: Tracker) -> SeedResult:
    """The ``torch-levenberg-marquardt`` package's ``LevenbergMarquardtModule`` with its
    defaults (MSE loss on F, standard damping, QR solve), one ``training_step`` per
    iteration."""
    import torch
    from torch_levenberg_marquardt.training import LevenbergMarquardtModule

    torch.set_num_threads(1)
    x0 = case.initial(seed)
    net, rows, target = torch_network(case, x0)
    module = LevenbergMarquardtModule(net)
    tracker.start()
    while True:
        _, _, stop_training, _ = module.training_step(rows, target)
        tracker.evaluations += 1
        if tracker.iterate(module.flat_params.numpy()):
            return tracker.result(seed)
        if stop_training:
            return tracker.result(seed, message="the package's damping strategy stopped")


RUNNERS = {"mlpar": run_mlpar, "scipy": run_scipy, "tao": run_tao, "torch": run_torch,
           "torch-lm": run_torch_lm}


def worker(job: dict) -> None:
    """Run one method on every case and seed of ``job``; rank 0 prints the results as one JSON
    line, a list per case of a result per seed. An exception of a seed is that seed's
    failure."""
    method = Method(**job["method"])
    results = []
    for case in (Case(**c) for c in job["cases"]):
        per_seed = []
        for seed in job["seeds"]:
            tracker = Tracker(case, job["time_cap"], job["stop_at_target"])
            try:
                res = RUNNERS[method.family](case, method, seed, tracker)
            except Exception as exc:   # a peer's failure is a row of the table, not a crash
                res = tracker.result(seed, "failed", f"{type(exc).__name__}: {exc}")
            per_seed.append(asdict(res))
        results.append(per_seed)
    if not method.is_mlpar or _rank() == 0:
        print(json.dumps(results), flush=True)


def _rank() -> int:
    from mpi4py import MPI
    return MPI.COMM_WORLD.rank


# ---------------------------------------------------------------------------------- driver

def installed(method: Method) -> bool:
    """Whether the method's package can be imported here."""
    return importlib.util.find_spec(PEER_MODULES[method.family]) is not None


def worker_command(job: dict, ranks: int) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    if ranks > 1 or job["method"]["family"] == "mlpar":
        cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks)] + cmd
    return cmd


def run_command(cmd: list[str], timeout: float) -> tuple[int | None, str, str, float]:
    """Run ``cmd`` in its own process group with the workers' environment; return (exit code,
    or None when it was killed at ``timeout`` with its whole group, e.g. mpiexec's ranks;
    stdout; stderr; wall time)."""
    env = {**os.environ, **WORKER_ENV}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err, time.perf_counter() - t0
    return proc.returncode, out, err, time.perf_counter() - t0


def run_job(job: dict, ranks: int, timeout: float) -> tuple[list | None, str, float]:
    """Run a worker; return (its results or None, an error message, wall time)."""
    code, out, err, wall = run_command(worker_command(job, ranks), timeout)
    if code is None:
        return None, f"worker killed after {timeout:.0f} s", wall
    if code != 0:
        tail = (err.strip().splitlines() or ["(no output)"])[-1]
        return None, f"worker exit {code}: {tail}", wall
    return json.loads(out.strip().splitlines()[-1]), "", wall


def mlpar_command_time(case: Case, method: Method, seed: int, iterations: int,
                       timeout: float) -> tuple[float | None, str]:
    """Wall time of ``mpiexec -n N python -m mlpar ... --max-iter K``; checks the RMSE of
    its output file."""
    from mlpar.io.output import read_result

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.h5"
        cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(method.ranks), sys.executable,
               "-m", "mlpar", "--problem", case.problem, "--nu", f"{case.nu:g}",
               "--width", str(case.width), "--points", str(case.points),
               "--lambda-p", f"{LAMBDA_P:g}",
               *method.args.split(), "--seed", str(seed), "--init", case.init,
               "--max-iter", str(iterations), "--out", str(out), "--quiet"]
        code, _, err, wall = run_command(cmd, timeout)
        if code is None:
            return None, f"mlpar command killed after {timeout:.0f} s"
        if code != 0:
            return None, f"mlpar command exit {code}: {err.strip()[-200:]}"
        error = float(read_result(str(out))["attrs"]["rmse"])
    if error > TARGET_RMSE:
        return None, f"mlpar command ended at RMSE {error:.2e} after {iterations} iterations"
    return wall, ""


def measure(method: Method, case: Case, seeds: list[int], time_cap: float,
            stop_at_target: bool, whole_command: bool) -> list[SeedResult]:
    """Every seed of one method on one case, in process (one worker), then each seed that
    reached the target once more as a whole command."""
    if not installed(method):
        return [SeedResult(s, "missing", f"{PEER_MODULES[method.family]} is not installed")
                for s in seeds]
    timeout = 2 * time_cap * len(seeds) + 60
    job = {"cases": [asdict(case)], "method": asdict(method), "seeds": seeds,
           "time_cap": time_cap, "stop_at_target": stop_at_target}
    raw, error, _ = run_job(job, method.ranks, timeout)
    if raw is None:
        return [SeedResult(s, "failed", error) for s in seeds]
    results = [SeedResult(**r) for r in raw[0]]
    for res in results:
        if whole_command and res.status == "reached":
            res.command_time, note = command_time(case, method, res, job, timeout)
            if note:
                res.message = (res.message + "; " + note).lstrip("; ")
    return results


def command_time(case: Case, method: Method, res: SeedResult, job: dict, timeout: float
                 ) -> tuple[float | None, str]:
    """Wall time of a whole command that trains ``case`` from ``res.seed`` to the target
    (None and why if it did not)."""
    if method.is_mlpar:
        return mlpar_command_time(case, method, res.seed, res.iterations_to_target, timeout)
    one = {**job, "cases": [asdict(case)], "seeds": [res.seed], "stop_at_target": True,
           "time_cap": COMMAND_CAP_FACTOR * job["time_cap"]}
    again, error, wall = run_job(one, method.ranks, timeout)
    if again is None:
        return None, f"whole command: {error}"
    if again[0][0]["status"] != "reached":
        return None, f"whole command: {again[0][0]['status']} {again[0][0]['message']}".strip()
    return wall, ""


@dataclass
class Row:
    """A method's medians over the seeds on one case."""

    method: Method
    results: list[SeedResult]
    time: float = math.inf
    command: float = math.inf
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        def median_or_inf(values):
            return statistics.median(values) if values else math.inf
        self.time = median_or_inf([r.time_to_target if r.time_to_target is not None
                                   else math.inf for r in self.results])
        self.command = median_or_inf([r.command_time if r.command_time is not None
                                      else math.inf for r in self.results])
        self.notes = sorted({f"{r.status}: {r.message}" if r.status in ("failed", "refused",
                                                                        "missing")
                             else r.message for r in self.results if r.message})

    @property
    def status(self) -> str:
        kinds = {r.status for r in self.results}
        for kind in ("missing", "refused"):
            if kinds == {kind}:
                return kind
        reached = sum(r.status == "reached" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        text = f"{reached}/{len(self.results)}"
        return text + (f", {failed} failed" if failed else "")

    def median(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.results if getattr(r, name) is not None
                  and r.status not in ("missing", "refused")]
        return statistics.median(values) if values else None


def _seconds(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3g}"


def _ratio(value: float, best: float) -> str:
    if not (math.isfinite(value) and math.isfinite(best)):
        return "—"
    return f"{value / best:.2f}"


def print_table(case: Case, rows: list[Row], time_cap: float, mlpar_cap: float | None) -> None:
    """One Markdown table for ``case`` and the line on the target (``mlpar_cap``: mlpar's
    own time cap when it differs)."""
    mlpar_rows = [r for r in rows if r.method.is_mlpar]
    best = min((r.time for r in mlpar_rows), default=math.inf)
    best_cmd = min((r.command for r in mlpar_rows), default=math.inf)
    default = min((r.time for r in mlpar_rows if r.method.name == MLPAR_DEFAULT),
                  default=math.inf)
    caps = f"time cap {time_cap:g} s" + (f", mlpar {mlpar_cap:g} s" if mlpar_cap else "")
    print(f"\n### {case.label} ({caps})\n")
    columns = ["method", "ranks", "reached", "time to RMSE 1e-3 [s]", "× mlpar best",
               f"× {MLPAR_DEFAULT}", "whole command [s]", "× mlpar best", "final RMSE",
               "iterations", "evaluations", "notes"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        final = row.median("final_rmse")
        its, evs = row.median("iterations"), row.median("evaluations")
        active = row.status not in ("missing", "refused")
        print(f"| {row.method.name} | {row.method.ranks} | {row.status} | "
              f"{_seconds(row.time)} | {_ratio(row.time, best)} | {_ratio(row.time, default)} | "
              f"{_seconds(row.command)} | "
              f"{_ratio(row.command, best_cmd)} | "
              f"{f'{final:.2e}' if final is not None else '—'} | "
              f"{f'{its:.0f}' if active and its is not None else '—'} | "
              f"{f'{evs:.0f}' if active and evs else '—'} | "
              f"{'; '.join(row.notes)} |", flush=True)
    peers = [r for r in rows if not r.method.is_mlpar and math.isfinite(r.time)]
    if not math.isfinite(default):
        print(f"\ntarget: not met ({MLPAR_DEFAULT} did not reach RMSE {TARGET_RMSE:g})")
    elif not peers:
        # every peer needs more than the cap: the factor is known only to exceed cap / default
        bound = time_cap / default
        decided = bound >= TARGET_FACTOR
        print(f"\ntarget: {'met' if decided else 'undecided'}: {MLPAR_DEFAULT} {default:.3g} s, "
              f"no peer reached RMSE {TARGET_RMSE:g} within the {time_cap:g} s cap, so the "
              f"factor is above {bound:.2f}"
              + ("" if decided else f" (a cap of {TARGET_FACTOR * default:.3g} s would decide)"))
    else:
        best_peer = min(peers, key=lambda r: r.time)
        factor = best_peer.time / default
        print(f"\ntarget (mlpar's default {MLPAR_DEFAULT}, best of its rows, at least "
              f"{TARGET_FACTOR} times faster than the best peer, in process): best peer "
              f"{best_peer.method.name} "
              f"{best_peer.time:.3g} s / {MLPAR_DEFAULT} {default:.3g} s = {factor:.2f}: "
              f"{'met' if factor >= TARGET_FACTOR else 'not met'}")


def print_saved_tables(dump: list[dict], time_cap: float) -> None:
    """The tables of a ``--json`` dump, as the run printed them (``time_cap``: the run's)."""
    for entry in dump:
        rows = [Row(Method(**r["method"]), [SeedResult(**x) for x in r["results"]])
                for r in entry["rows"]]
        print_table(Case(**entry["case"]), rows, time_cap, None)


def print_preamble() -> None:
    """The command and the machine, before the tables."""
    import scipy
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for module in ("torch", "torch_levenberg_marquardt", "petsc4py"):
        if importlib.util.find_spec(module) is not None:
            version = getattr(__import__(module), "__version__", "?")
            print(f"{module} {version}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one seed, the seed's three problems, uniform init, a short cap, every run "
                         "ended at the target")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(DEFAULT_CASES),
                    help=f"default: all but the large ones ({', '.join(LARGE_CASES)})")
    ap.add_argument("--large", action="store_true",
                    help=f"add the issue's larger cases ({', '.join(LARGE_CASES)})")
    ap.add_argument("--mlpar-variant", action="append", default=[], metavar="ARGS",
                    help="one more mlpar row with these options, e.g. '--solve-form direct' "
                         "or '--method rlm --coarse-model galerkin' (--method lm unless given); "
                         "repeatable")
    ap.add_argument("--mlpar-ranks", nargs="+", type=int, default=[1, 2],
                    help="MPI ranks of the mlpar rows")
    ap.add_argument("--inits", nargs="+", choices=["uniform", "spread"],
                    default=["uniform", "spread"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--time-cap", type=float, default=20.0, help="seconds of training per run")
    ap.add_argument("--methods", nargs="+", default=None,
                    help="names of the methods to run (default: all), e.g. 'scipy trf'")
    ap.add_argument("--stop-at-target", action="store_true",
                    help="end every run at the target (no final RMSE at the cap)")
    ap.add_argument("--no-command", action="store_true",
                    help="skip the whole-command measurements")
    ap.add_argument("--json", metavar="FILE", help="also write every seed's result to FILE")
    ap.add_argument("--tables", metavar="FILE",
                    help="print the tables of a --json FILE of an earlier run (give its "
                         "--time-cap) and run nothing")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.tables:
        print_saved_tables(json.loads(Path(args.tables).read_text()), args.time_cap)
        return
    if args.quick:
        args.cases, args.inits, args.seeds = list(SEED_CASES), ["uniform"], [0]
        args.stop_at_target = True
        if "--time-cap" not in sys.argv:
            args.time_cap = QUICK_TIME_CAP
    if args.large:
        args.cases += [k for k in LARGE_CASES if k not in args.cases]
    variants = [mlpar_method(v, ranks) for v in args.mlpar_variant for ranks in args.mlpar_ranks]
    methods = [m for m in METHODS + variants if args.methods is None or m.name in args.methods
               or m in variants]
    methods = [m for m in methods if not m.is_mlpar or m.ranks in args.mlpar_ranks]
    cases = [Case(*CASES[key], init) for init in args.inits for key in args.cases]
    print_preamble()
    dump = []
    for case in cases:
        rows = []
        for method in methods:
            cap = QUICK_MLPAR_TIME_CAP if args.quick and method.is_mlpar else args.time_cap
            t0 = time.perf_counter()
            rows.append(Row(method, measure(method, case, args.seeds, cap, args.stop_at_target,
                                            not args.no_command)))
            print(f"[{case.label}: {method.name}, {method.ranks} rank(s): "
                  f"{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        print_table(case, rows, args.time_cap, QUICK_MLPAR_TIME_CAP if args.quick else None)
        dump.append({"case": asdict(case), "rows": [
            {"method": asdict(r.method), "results": [asdict(x) for x in r.results]}
            for r in rows]})
        if args.json:   # after every case, so that an interrupted run keeps what it measured
            Path(args.json).write_text(json.dumps(dump, indent=1))
    print(f"\nfinished {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")


if __name__ == "__main__":
    main()
