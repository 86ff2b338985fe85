"""``scripts/bench_peers.py --quick`` runs and prints a table per problem with a row per method,
and mlpar reaches the target RMSE on Poisson ν = 20 (the peers that are not installed are
reported as missing)."""

import json
import os
import subprocess
import sys

from helpers import MPI_ENV, ROOT

SCRIPT = ROOT / "scripts" / "bench_peers.py"
sys.path.insert(0, str(SCRIPT.parent))

import bench_peers  # noqa: E402


def test_quick_benchmark_has_a_row_per_method_and_mlpar_reaches_the_target(tmp_path):
    dump = tmp_path / "quick.json"
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(dump)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert f"command: {sys.executable} {SCRIPT} --quick" in out.stdout
    cases = json.loads(dump.read_text())
    assert [c["case"]["problem"] for c in cases] == ["poisson", "poisson", "helmholtz"]
    names = [(m.name, m.ranks) for m in bench_peers.METHODS]
    for case in cases:
        assert [(r["method"]["name"], r["method"]["ranks"]) for r in case["rows"]] == names
        header = f"### {bench_peers.Case(**case['case']).label}"
        table = out.stdout.split(header)[1].split("###")[0]
        for name, ranks in names:
            assert f"| {name} | {ranks} |" in table
    poisson20 = cases[0]
    assert poisson20["case"]["nu"] == 20.0
    for row in poisson20["rows"]:
        results = row["results"]
        if row["method"]["family"] == "mlpar":
            assert [r["status"] for r in results] == ["reached"], results
            assert results[0]["time_to_target"] <= bench_peers.QUICK_MLPAR_TIME_CAP
            assert results[0]["final_rmse"] <= bench_peers.TARGET_RMSE
        elif not bench_peers.installed(bench_peers.Method(**row["method"])):
            assert [r["status"] for r in results] == ["missing"]
    scipy_lm = next(r for r in poisson20["rows"] if r["method"]["name"] == "scipy lm")
    if bench_peers.installed(bench_peers.Method(**scipy_lm["method"])):
        assert scipy_lm["results"][0]["status"] == "refused"
        assert "residuals" in scipy_lm["results"][0]["message"]


def test_torch_residuals_are_mlpar_residuals():
    """The analytic torch network and operator (the 2-D Laplacian too) give mlpar's F on every
    problem of the benchmark."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    for problem, nu, width, points in bench_peers.CASES.values():
        case = bench_peers.Case(problem, nu, min(width, 64), min(points, 300), "spread")
        x0 = case.initial(3)
        net, rows, target = bench_peers.torch_network(case, x0)
        F = (net(rows) - target).detach().numpy()
        expected = bench_peers.residual_block(case).residuals(x0)
        np.testing.assert_allclose(F, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_torch_gradient_is_mlpar_jacobian_transpose_times_residuals():
    """Autograd of the torch network's ½‖F‖² equals Jᵀ F with mlpar's analytic Jacobian, on the
    2-D problems (the Laplacian's derivatives in the weights) and a 1-D one."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    for key in ("poisson2d-5", "helmholtz2d", "helmholtz-5"):
        problem, nu, _, _ = bench_peers.CASES[key]
        case = bench_peers.Case(problem, nu, 24, 0, "spread")
        x0 = case.initial(1)
        net, rows, target = bench_peers.torch_network(case, x0)
        F = net(rows) - target
        (0.5 * (F @ F)).backward()
        Fm, J = bench_peers.residual_block(case).residuals_and_jacobian(x0)
        expected = J.T @ Fm
        np.testing.assert_allclose(net.p.grad.numpy(), expected, rtol=1e-10,
                                   atol=1e-12 * np.abs(expected).max())


def test_mlpar_variant_options():
    """A variant's options are mlpar.solve's keys, with --method lm unless it names one."""
    import pytest

    row = bench_peers.mlpar_method("--solve-form direct", 2)
    assert (row.name, row.ranks) == ("mlpar lm --solve-form direct", 2)
    assert row.mlpar_options() == {"method": "lm", "solve_form": "direct"}
    row = bench_peers.mlpar_method("--method rlm --coarse-model galerkin", 1)
    assert row.name == "mlpar rlm --coarse-model galerkin"
    assert row.mlpar_options() == {"method": "rlm", "coarse_model": "galerkin"}
    assert bench_peers.mlpar_method("--method rlm", 1) == bench_peers.METHODS[2]
    with pytest.raises(ValueError):
        bench_peers.mlpar_method("--solve-form", 1).mlpar_options()


def test_saved_tables_divide_by_mlpar_best_and_by_the_default(tmp_path):
    """``--tables FILE`` prints a --json dump's table again: the time columns are the medians
    over the seeds, divided by mlpar's fastest row and by mlpar's default, and the target line
    compares the best peer with the default."""
    def row(name, family, times):
        method = {"name": name, "family": family, "ranks": 1,
                  "args": "--method " + name.split()[1] if family == "mlpar" else ""}
        return {"method": method, "results": [
            {"seed": s, "status": "reached" if t else "not reached", "time_to_target": t,
             "final_rmse": 1e-4, "iterations": 10} for s, t in enumerate(times)]}
    case = {"problem": "poisson", "nu": 20.0, "width": 512, "points": 0, "init": "uniform"}
    dump = [{"case": case, "rows": [row("mlpar lm", "mlpar", [0.5, 0.4, 0.6]),
                                    row(bench_peers.MLPAR_DEFAULT, "mlpar", [1.0, 3.0, 0.9]),
                                    row("scipy trf", "scipy", [2.0, None, 2.2])]}]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))
    out = subprocess.run([sys.executable, str(SCRIPT), "--tables", str(path), "--time-cap", "4"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "(time cap 4 s)" in out.stdout
    assert f"| × mlpar best | × {bench_peers.MLPAR_DEFAULT} |" in out.stdout
    assert "| mlpar lm | 1 | 3/3 | 0.5 | 1.00 | 0.50 |" in out.stdout
    assert f"| {bench_peers.MLPAR_DEFAULT} | 1 | 3/3 | 1 | 2.00 | 1.00 |" in out.stdout
    assert "| scipy trf | 1 | 2/3 | 2.2 | 4.40 | 2.20 |" in out.stdout   # median of 2, 2.2, inf
    assert "= 2.20: not met" in out.stdout


def test_mlpar_rows_train_the_peers_residuals_from_their_weights():
    """mlpar's f(x0) is ½‖F(x0)‖² of the residuals and weights the peers get, on a 1-D and a
    2-D case (whatever mlpar's own defaults for the boundary penalty are)."""
    import numpy as np

    import mlpar

    for key in ("poisson-20", "poisson2d-5"):
        problem, nu, _, _ = bench_peers.CASES[key]
        case = bench_peers.Case(problem, nu, 16, 0, "spread")
        spec = bench_peers.mlpar_spec(case, bench_peers.METHODS[0], 2)
        result = mlpar.solve({**spec, "max_iter": 1})
        F = bench_peers.residual_block(case).residuals(case.initial(2))
        np.testing.assert_allclose(result.state.f0, 0.5 * float(F @ F), rtol=1e-13)


def test_a_run_that_ends_between_two_checks_on_target_has_reached_it(monkeypatch):
    """The RMSE is checked at iterates CHECK_INTERVAL apart; an iterate after the last check
    that is on target, the run's last, counts as reaching the target then."""
    import numpy as np

    case = bench_peers.Case("poisson", 20.0, 16, 0, "spread")
    tracker = bench_peers.Tracker(case, time_cap=10.0, stop_at_target=True)
    rmse_of = {0.0: 1.0, 1.0: 1e-4}   # the first iterate off target, the second on it
    monkeypatch.setattr(bench_peers, "rmse", lambda problem, act, x, z: rmse_of[float(x[0])])
    assert not tracker.iterate(np.zeros(3), clock=0.5)        # checked: off target
    assert not tracker.iterate(np.ones(3), clock=0.505)       # within the interval: not checked
    assert tracker.time_to_target is None
    result = tracker.result(0, None, "converged")
    assert result.status == "reached" and result.iterations_to_target == 2
    assert result.time_to_target == tracker.elapsed and result.final_rmse == 1e-4
    tracker = bench_peers.Tracker(case, time_cap=10.0, stop_at_target=True)
    tracker.iterate(np.zeros(3), clock=0.5)
    assert tracker.result(0).status == "not reached"
