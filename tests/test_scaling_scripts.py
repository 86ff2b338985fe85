"""The scaling scripts: the α–β model of ``scripts/plot_scaling.py`` against closed forms, the
α–β fit of ``scripts/bench_mpi.py`` on exact data, and both benchmarks run for real on tiny
sizes (``bench_mpi.py --quick`` under ``mpiexec -n 2``, ``bench_scaling.py`` on 1 and 2 ranks),
their JSON turned into model inputs and a figure, so that the scripts do not rot."""

import json
import math
import os
import subprocess
import sys

import pytest
from helpers import MPI_ENV, ROOT

SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_mpi  # noqa: E402
import plot_scaling  # noqa: E402


def _method(t_rest=2.0, t_gram=0.0, t_serial=0.0, calls=10.0, nbytes=8e4, **extra):
    """Model inputs of a method measured at (t, r) = (1024, 64)."""
    return {
        "points": 1024,
        "width": 64,
        "t_rest_s": t_rest,
        "t_gram_s": t_gram,
        "t_serial_s": t_serial,
        "collectives": {
            "sum": {"calls_per_it": calls, "bytes_per_call": nbytes},
            "allgather": {"calls_per_it": calls, "bytes_per_call": nbytes},
            **extra,
        },
    }


def test_no_communication_and_no_serial_part_is_perfect_scaling():
    method = _method()
    for ranks in (1, 2, 16, 256):
        assert plot_scaling.strong_efficiency(
            method, 2**20, 2**12, ranks, 0.0, math.inf
        ) == pytest.approx(1.0)
        assert plot_scaling.weak_efficiency(
            method, 2**20, 2**12, ranks, 0.0, math.inf
        ) == pytest.approx(1.0)


def test_serial_part_gives_amdahls_law():
    # W = 2 s at the measured size, S = 0.5 s; at (2m0, 2r0) W grows 4×, S 4× (r²).
    method = _method(t_rest=2.0, t_serial=0.5)
    W, S = 8.0, 2.0
    for ranks in (1, 4, 64):
        amdahl = (W + S) / (ranks * (W / ranks + S))
        assert plot_scaling.strong_efficiency(
            method, 2048, 128, ranks, 0.0, math.inf
        ) == pytest.approx(amdahl)
        # weak scaling keeps the rows per rank: the serial part costs nothing extra
        assert plot_scaling.weak_efficiency(
            method, 2048, 128, ranks, 0.0, math.inf
        ) == pytest.approx(1.0)


def test_collective_costs_against_the_alpha_beta_formulas():
    alpha, beta, b = 2e-6, 1e9, 1e6
    assert plot_scaling.collective_time("allreduce", b, 1, alpha, beta) == 0.0
    # P = 8: three steps; Allreduce moves 2 (P−1)/P b, Allgatherv (P−1)/P b
    assert plot_scaling.collective_time("allreduce", b, 8, alpha, beta) == pytest.approx(
        6 * alpha + 2 * 7 / 8 * b / beta
    )
    assert plot_scaling.collective_time("half", b, 8, alpha, beta) == pytest.approx(
        3 * alpha + 7 / 8 * b / beta
    )
    assert plot_scaling.collective_time("latency", b, 8, alpha, beta) == pytest.approx(3 * alpha)
    with pytest.raises(ValueError):
        plot_scaling.collective_time("gossip", b, 8, alpha, beta)


def test_communication_grows_with_width_and_gram_blocks_with_its_square():
    alpha, beta = 0.0, 1e9
    method = _method(
        calls=1.0, nbytes=1e6, sum_to_root={"calls_per_it": 1.0, "bytes_per_call": 1e6}
    )
    c1 = plot_scaling.communication(method, 1024, 64, 2, alpha, beta)
    c2 = plot_scaling.communication(method, 1024, 128, 2, alpha, beta)
    # at P = 2: Allreduce b/β, Allgatherv b/(2β), Reduce b/β
    assert c1 == pytest.approx((1 + 0.5 + 1) * 1e6 / beta)
    assert c2 == pytest.approx((2 * 1 + 2 * 0.5 + 4 * 1) * 1e6 / beta)


def test_efficiency_decreases_with_the_number_of_ranks():
    method = _method(t_serial=0.01, sum_to_root={"calls_per_it": 0.5, "bytes_per_call": 1e5})
    for m, r in plot_scaling.SIZES:
        strong = [
            plot_scaling.strong_efficiency(method, m, r, p, 2e-6, 5e9)
            for p in (1, 2, 16, 64, 256, 1024)
        ]
        weak = [
            plot_scaling.weak_efficiency(method, m, r, p, 2e-6, 5e9)
            for p in (1, 2, 16, 64, 256, 1024)
        ]
        assert strong[0] == pytest.approx(1.0) and weak[0] == pytest.approx(1.0)
        assert all(a > b for a, b in zip(strong, strong[1:])), strong
        assert all(a >= b for a, b in zip(weak, weak[1:])), weak
        assert strong[-1] < 0.9


def test_alpha_beta_fit_recovers_exact_data():
    alpha, beta = 1.5e-6, 4e9
    sizes = bench_mpi.SIZES
    a, b = bench_mpi.fit_alpha_beta(sizes, [alpha + s / beta for s in sizes])
    assert a == pytest.approx(alpha, rel=1e-9)
    assert b == pytest.approx(beta, rel=1e-9)
    # times that do not grow with the size: no bandwidth term
    assert bench_mpi.fit_alpha_beta([8, 80, 800], [1e-6, 1e-6, 1e-6])[1] == math.inf


def _run(cmd: list, timeout: int) -> subprocess.CompletedProcess:
    """``cmd`` (a script of scripts/ and its arguments) in the repository root."""
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def test_benchmarks_run_and_feed_the_model(tmp_path):
    mpi_json, scaling_json = tmp_path / "mpi.json", tmp_path / "scaling.json"
    mpiexec = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", "2", sys.executable]
    out = _run([*mpiexec, SCRIPTS / "bench_mpi.py", "--quick", "--json", mpi_json], 120)
    assert out.returncode == 0, out.stderr
    assert "fit t = α + b/β: ping-pong α =" in out.stdout
    mpi = json.loads(mpi_json.read_text())
    assert mpi["ranks"] == 2
    assert [r["bytes"] for r in mpi["rows"]] == bench_mpi.QUICK_SIZES
    assert all(r["pingpong_s"] > 0 and r["allreduce_s"] > 0 for r in mpi["rows"])
    assert mpi["pingpong"]["alpha_s"] > 0

    cases = ["lm:2048:300", "rlm:2048:300"]   # n = 900 < m: auto takes the normal form
    cmd = [sys.executable, SCRIPTS / "bench_scaling.py", "--cases", *cases, "--ranks", 1, 2]
    out = _run([*cmd, "--max-iter", 2, "--json", scaling_json], 300)
    assert out.returncode == 0, out.stderr
    runs = json.loads(scaling_json.read_text())["runs"]
    assert [(d["spec"]["method"], d["ranks"]) for d in runs] == [
        ("lm", 1),
        ("lm", 2),
        ("rlm", 1),
        ("rlm", 2),
    ]
    for d in runs:
        assert len(d["iteration_s"]) == d["iterations"] == 2
        assert sum(d["iteration_s"]) == pytest.approx(d["elapsed_s"])
        assert len(d["peak_mb"]) == d["ranks"]
    # the same rows on 1 and 2 ranks: the same iterations and flops, rounding apart
    for a, b in ((runs[0], runs[1]), (runs[2], runs[3])):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-8)
        assert b["flops_matvec"] == pytest.approx(a["flops_matvec"], rel=1e-12)
    two = runs[1]["collectives"]
    assert two["allgather"]["calls"] >= two["reduce_scatter"]["calls"] > 0  # normal form: CG

    inputs_json, png = tmp_path / "inputs.json", tmp_path / "scaling.png"
    plot_scaling.main(
        [
            "--mpi",
            str(mpi_json),
            "--scaling",
            str(scaling_json),
            "--write-inputs",
            str(inputs_json),
            "--out",
            str(png),
        ]
    )
    inputs = json.loads(inputs_json.read_text())
    assert set(inputs["methods"]) == {"lm", "rlm"}
    assert png.stat().st_size > 0
    rows = plot_scaling.table(inputs, inputs["alpha_s"], inputs["beta_Bps"])
    assert len(rows) == 2 * len(plot_scaling.SIZES) * len(plot_scaling.RANKS)
    assert all(0 < row["strong"] <= 1 + 1e-12 and 0 < row["weak"] <= 1 + 1e-12 for row in rows)
