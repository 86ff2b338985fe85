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
