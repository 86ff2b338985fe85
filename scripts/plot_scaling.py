#!/usr/bin/env python
"""Projected strong and weak scaling efficiency of lm and rlm: an α–β model fed by this
machine's measurements.

Usage (from the repository root, after ``make setup``)::

    # the model's inputs from the two benchmarks' JSON, written to a small file ...
    .venv/bin/python scripts/plot_scaling.py --mpi runs/mpi-2.json \\
        --scaling runs/scaling.json --write-inputs docs/figures/scaling-inputs.json
    # ... from which the table and the figure are made again
    .venv/bin/python scripts/plot_scaling.py --inputs docs/figures/scaling-inputs.json \\
        --out docs/figures/scaling.png
    # another machine's network: override α (s) and β (bytes/s)
    .venv/bin/python scripts/plot_scaling.py --inputs docs/figures/scaling-inputs.json \\
        --alpha 2e-6 --beta 1e10 --out runs/cluster.png

The model of one fine iteration on P ranks, for m rows and width r (n = 3r weights):

    T(P) = W/P + S + C(P),

* W, the distributed compute: the measured one-rank time of an iteration minus its serial part,
  scaled from the measured (m₀, r₀) as m·r/(m₀r₀) (every product with J is O(mn) at a fixed
  number of Krylov iterations) except the hierarchy's Gram blocks J_xᵀJ_x, which scale as
  m·r²/(m₀r₀²);
* S, rank 0's serial AMG set-up (auxiliary matrix, splitting, interpolation of the dense
  r × r neuron graph), scaled as (r/r₀)²; 0 for lm;
* C(P) = Σ over the collectives of an iteration of their α–β cost, with the counts per
  iteration measured by ``bench_scaling.py`` (2 ranks), the sizes scaled with n (Gram blocks
  with r²), and for b bytes on P ranks (p = ⌈log₂P⌉, 0 on one rank):
  Allreduce and Reduce 2pα + 2(P−1)/P·b/β, Allgatherv and Reduce_scatter pα + (P−1)/P·b/β,
  Bcast of a small object pα; CG's dot products (PETSc's, not timed by the benchmark) add two
  Allreduces of 8 bytes per Krylov iteration.

Strong scaling at (m, r): E(P) = T₁/(P·T(P)) with T₁ = W + S.  Weak scaling keeps m/16 rows
per rank (the named size on 16 ranks): E(P) = (W' + S)/(W' + S + C(P)) with W' the compute of
m/16 rows.  Assumed: the Krylov iterations and the rlm recursion per iteration do not change
with m or P (rounding apart, results do not depend on P), rows are split evenly (no load
imbalance), compute runs at the one-rank rate measured here on every rank (no memory-bandwidth
sharing, which on this 2-core VM is not so), and α, β are those of this VM's shared memory
unless overridden.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

#: Ranks of the projection, and the sizes (t, r) of the issue.
RANKS = (16, 64, 256)
SIZES = ((2**20, 2**12), (2**16, 2**14))
WEAK_BASE = 16
#: How the bytes of each collective of Comm grow: with n (∝ r), or with r² (Gram blocks).
SCALES = {"sum_to_root": "r2"}
#: The cost model of each collective of Comm: "allreduce", "half" (Allgatherv,
#: Reduce_scatter: one pass of the data) or "latency" (pickled small objects).
KIND = {
    "sum": "allreduce",
    "sum_inplace": "allreduce",
    "max_scalar": "allreduce",
    "sum_to_root": "allreduce",
    "reduce_scatter": "half",
    "allgather": "half",
    "bcast": "latency",
    "first": "latency",
    "petsc_dots": "allreduce",
}


def collective_time(kind: str, nbytes: float, ranks: int, alpha: float, beta: float) -> float:
    """α–β time (s) of one collective of ``kind`` moving ``nbytes`` on ``ranks`` ranks."""
    if ranks <= 1:
        return 0.0
    p = math.ceil(math.log2(ranks))
    share = (ranks - 1) / ranks
    if kind == "allreduce":
        return 2 * p * alpha + 2 * share * nbytes / beta
    if kind == "half":
        return p * alpha + share * nbytes / beta
    if kind == "latency":
        return p * alpha
    raise ValueError(f"unknown collective kind {kind!r}")


def communication(method: dict, m: int, r: int, ranks: int, alpha: float, beta: float) -> float:
    """C(P): the α–β time of one iteration's collectives of ``method`` (model inputs) at width
    r on ``ranks`` ranks (the sizes do not depend on m)."""
    r0 = method["width"]
    total = 0.0
    for name, c in method["collectives"].items():
        grow = (r / r0) ** 2 if SCALES.get(name) == "r2" else r / r0
        total += c["calls_per_it"] * collective_time(
            KIND[name], c["bytes_per_call"] * grow, ranks, alpha, beta
        )
    return total


def compute_parts(method: dict, m: int, r: int) -> tuple[float, float]:
    """(W, S): the distributed compute and rank 0's serial set-up of one iteration (s) at m
    rows and width r, scaled from the measured one-rank times."""
    m0, r0 = method["points"], method["width"]
    work = method["t_rest_s"] * (m * r) / (m0 * r0) + method["t_gram_s"] * (m * r * r) / (
        m0 * r0 * r0
    )
    serial = method["t_serial_s"] * (r / r0) ** 2
    return work, serial


def iteration_time(method: dict, m: int, r: int, ranks: int, alpha: float, beta: float) -> float:
    """T(P) = W/P + S + C(P)."""
    work, serial = compute_parts(method, m, r)
    return work / ranks + serial + communication(method, m, r, ranks, alpha, beta)


def strong_efficiency(method: dict, m: int, r: int, ranks: int, alpha: float, beta: float) -> float:
    """T₁/(P·T(P)) at fixed (m, r)."""
    work, serial = compute_parts(method, m, r)
    return (work + serial) / (ranks * iteration_time(method, m, r, ranks, alpha, beta))


def weak_efficiency(
    method: dict, m: int, r: int, ranks: int, alpha: float, beta: float, base: int = WEAK_BASE
) -> float:
    """(W' + S)/(W' + S + C(P)) with m/base rows per rank at every P."""
    work, serial = compute_parts(method, m // base, r)
    comm = communication(method, m * ranks // base, r, ranks, alpha, beta)
    return (work + serial) / (work + serial + comm)


def inputs_from_benchmarks(mpi: dict, scaling: dict) -> dict:
    """The model's inputs: α, β of the ping-pong, and per method its largest measured case's
    one-rank compute parts and the 2-rank collectives per iteration."""
    methods = {}
    runs = [d for d in scaling["runs"] if not d.get("skipped")]
    for name in sorted({d["spec"]["method"] for d in runs}):
        mine = [d for d in runs if d["spec"]["method"] == name]
        largest = max(d["spec"]["points"] * d["spec"]["width"] for d in mine)
        case = [d for d in mine if d["spec"]["points"] * d["spec"]["width"] == largest]
        one = next(d for d in case if d["ranks"] == 1)
        two = next(d for d in case if d["ranks"] == 2)
        its = one["iterations"]
        t_it = one["elapsed_s"] / its
        part = {k: v["s"] / its for k, v in one["parts"].items()}
        t_serial = part.get("AMG serial", 0.0)
        t_gram = part.get("AMG Gram blocks", 0.0)
        colls = {
            k: {
                "calls_per_it": v["calls"] / two["iterations"],
                "bytes_per_call": v["bytes"] / max(v["calls"], 1),
            }
            for k, v in two["collectives"].items()
        }
        colls["petsc_dots"] = {
            "calls_per_it": 2 * sum(two["ksp_its"]) / two["iterations"],
            "bytes_per_call": 8,
        }
        methods[name] = {
            "points": one["spec"]["points"],
            "width": one["spec"]["width"],
            "iterations": its,
            "iteration_s_1": t_it,
            "iteration_s_2": two["elapsed_s"] / two["iterations"],
            "t_rest_s": t_it - one["comm_s_rank0"] / its - t_serial - t_gram,
            "t_gram_s": t_gram,
            "t_serial_s": t_serial,
            "collectives": colls,
            "load_average": {"1": one["load_average"], "2": two["load_average"]},
        }
    return {
        "alpha_s": mpi["pingpong"]["alpha_s"],
        "beta_Bps": mpi["pingpong"]["beta_Bps"],
        "allreduce_2": mpi["allreduce"],
        "mpi_command": mpi["command"],
        "scaling_command": scaling["command"],
        "methods": methods,
    }


def table(inputs: dict, alpha: float, beta: float) -> list[dict]:
    """Every projected figure: method, (t, r), P, strong and weak efficiency, T(P)."""
    rows = []
    for name, method in inputs["methods"].items():
        for m, r in SIZES:
            for ranks in RANKS:
                rows.append(
                    {
                        "method": name,
                        "t": m,
                        "r": r,
                        "P": ranks,
                        "strong": strong_efficiency(method, m, r, ranks, alpha, beta),
                        "weak": weak_efficiency(method, m, r, ranks, alpha, beta),
                        "T_s": iteration_time(method, m, r, ranks, alpha, beta),
                    }
                )
    return rows


def plot(inputs: dict, alpha: float, beta: float, out: str) -> None:
    """Strong and weak efficiency against P (1 … 256) for every method and size, to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = [2**k for k in range(9)]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
    styles = {"lm": "-", "rlm": "--"}
    for ax, kind, fn in (
        (axes[0], "strong", strong_efficiency),
        (axes[1], "weak", weak_efficiency),
    ):
        for name, method in inputs["methods"].items():
            for (m, r), colour in zip(SIZES, ("tab:blue", "tab:orange")):
                ax.plot(
                    ranks,
                    [fn(method, m, r, p, alpha, beta) for p in ranks],
                    styles.get(name, ":"),
                    color=colour,
                    marker="o",
                    markersize=3,
                    label=f"{name} t=2^{int(math.log2(m))} r=2^{int(math.log2(r))}",
                )
        if kind == "strong":
            for name, method in inputs["methods"].items():
                e2 = method["iteration_s_1"] / (2 * method["iteration_s_2"])
                ax.plot(
                    [2],
                    [e2],
                    "k" + ("x" if name == "lm" else "+"),
                    markersize=8,
                    label=f"{name} measured, 2 ranks",
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ranks P")
        ax.set_title(
            f"{kind} scaling" + (" (m/16 rows per rank)" if kind == "weak" else ""), fontsize=9
        )
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("efficiency")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.suptitle(
        f"mlpar, modelled: α = {alpha * 1e6:.2f} µs, β = {beta / 1e9:.2f} GB/s", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", help="the model's inputs (JSON written by --write-inputs)")
    ap.add_argument("--mpi", help="bench_mpi.py's JSON (with --scaling, instead of --inputs)")
    ap.add_argument("--scaling", help="bench_scaling.py's JSON")
    ap.add_argument("--write-inputs", help="write the model's inputs to this file")
    ap.add_argument("--alpha", type=float, help="latency α (s), instead of the measured one")
    ap.add_argument("--beta", type=float, help="bandwidth β (bytes/s), instead of the measured")
    ap.add_argument("--out", help="the figure (PNG)")
    args = ap.parse_args(argv)
    if args.inputs:
        with open(args.inputs) as fh:
            inputs = json.load(fh)
    elif args.mpi and args.scaling:
        with open(args.mpi) as fh, open(args.scaling) as gh:
            inputs = inputs_from_benchmarks(json.load(fh), json.load(gh))
    else:
        ap.error("give --inputs, or --mpi and --scaling")
    if args.write_inputs:
        with open(args.write_inputs, "w") as fh:
            json.dump(inputs, fh, indent=1)
    alpha = args.alpha if args.alpha is not None else inputs["alpha_s"]
    beta = args.beta if args.beta is not None else inputs["beta_Bps"]
    print(f"command: {' '.join(['python', *sys.argv])}")
    print(f"α = {alpha * 1e6:.2f} µs, β = {beta / 1e9:.2f} GB/s")
    for name, method in inputs["methods"].items():
        work, serial = compute_parts(method, method["points"], method["width"])
        predicted = iteration_time(method, method["points"], method["width"], 2, alpha, beta)
        print(
            f"{name} measured at t = {method['points']}, r = {method['width']}: "
            f"{method['iteration_s_1']:.2f} s/iteration on 1 rank (serial AMG "
            f"{serial:.2f} s), {method['iteration_s_2']:.2f} s on 2; model on 2: "
            f"{predicted:.2f} s"
        )
    print("| method | t | r | P | strong efficiency | weak efficiency | T(P) per iteration [s] |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in table(inputs, alpha, beta):
        print(
            f"| {row['method']} | 2^{int(math.log2(row['t']))} | 2^{int(math.log2(row['r']))} "
            f"| {row['P']} | {row['strong']:.2f} | {row['weak']:.2f} | {row['T_s']:.3g} |"
        )
    if args.out:
        plot(inputs, alpha, beta, args.out)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
