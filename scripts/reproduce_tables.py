#!/usr/bin/env python
"""Reproduce the seed's tables: LM against RLM on Poisson ν=20 (r=2^9), Poisson ν=25 (r=2^10)
and Helmholtz ν=5 (r=2^10), 5 runs each, under MPI; writes docs/results.md.

Usage (from the repository root, after ``make setup``)::

    .venv/bin/python scripts/reproduce_tables.py                    # 2 ranks, seeds 0..4
    .venv/bin/python scripts/reproduce_tables.py --ranks 2 --seeds 0 1 --out /tmp/results.md
    .venv/bin/python scripts/reproduce_tables.py --label spread -- --init spread  # extra mlpar options
    .venv/bin/python scripts/reproduce_tables.py --methods arc rarc --label arc
    .venv/bin/python scripts/reproduce_tables.py --methods arc rarc --set losses --label losses
    .venv/bin/python scripts/reproduce_tables.py --seeds 0 --out /tmp/t.md --plot docs/figures/seed-comparison.png

Each run is ``mpiexec -n RANKS python -m mlpar --problem P --nu NU --width R --method M
--seed S`` (plus the extra options); the table gives the mean iteration count, the RMSE range,
the median flops, the range of the flops "save" (flops_matvec of LM / flops_matvec of RLM,
seed by seed), and the wall-time ratio, next to the figures of the talk.  ``--set losses``
runs instead the ``fit`` problem with each loss (l2, l1, logistic), for the higher-order
methods (``--methods arc rarc``).  ``--plot FIG.png`` also draws, from the same runs, the loss
of both methods against the iteration and against flops_matvec on each problem (one line per
seed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpar.io.output import read_result  # noqa: E402

EXPERIMENTS = {
    # (label, problem, nu, width, options, seed's LM iter, RLM iter, RMSE, save)
    "seed": [
        ("Poisson ν=20, r=2^9", "poisson", 20.0, 512, [], 282, 193, "1e-3", "1.2–1.75"),
        ("Poisson ν=25, r=2^10", "poisson", 25.0, 1024, [], 632, 347, "1e-2–1e-3", "1.2–3.15"),
        ("Helmholtz ν=5, r=2^10", "helmholtz", 5.0, 1024, [], 1243, 1229, "1e-2–1e-3", "1.2–3.1"),
    ],
    "losses": [
        (f"fit ν=10, r=2^8, t=60, {loss}", "fit", 10.0, 256,
         ["--loss", loss, "--points", "60", "--l1-smoothing", "1e-2", "--gtol", "1e-6"],
         "", "", "", "")
        for loss in ("l2", "l1", "logistic")
    ],
}


def run_one(problem, nu, width, method, seed, ranks, extra, workdir) -> Path:
    out = Path(workdir) / f"{problem}-{nu:g}-{width}-{method}-{seed}-{'_'.join(extra)}.h5"
    cmd = ["mpiexec", "--map-by", ":OVERSUBSCRIBE", "-n", str(ranks), sys.executable, "-m",
           "mlpar", "--problem", problem, "--nu", str(nu), "--width", str(width), "--method",
           method, "--seed", str(seed), "--out", str(out), "--force", "--quiet", *extra]
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return out


def comparison_figure(outputs: dict[str, dict[str, list[Path]]]):
    """The seed's comparison: loss against iteration (top row) and against flops_matvec
    (bottom row), one column per problem, one line per method and seed.

    Parameters
    ----------
    outputs : dict
        {problem label: {method: [output file of each seed]}}.

    Returns
    -------
    matplotlib.figure.Figure
    """
    # imported here: the tables alone do not need matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mlpar.plot import read_run

    fig = Figure(figsize=(4.2 * len(outputs), 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(outputs), squeeze=False)
    for col, (label, by_method) in enumerate(outputs.items()):
        for color, (method, paths) in zip(("C0", "C3"), by_method.items()):
            for k, path in enumerate(paths):
                history = read_run(path).history
                for ax, x in zip(axes[:, col], ("iteration", "flops_matvec")):
                    ax.plot(history[x], history["loss"], color=color, linewidth=1, alpha=0.8,
                            label=method if k == 0 else None)
        axes[0, col].set(title=label, xlabel="iteration", ylabel="loss f", yscale="log")
        axes[1, col].set(xlabel="flops_matvec", ylabel="loss f", xscale="log", yscale="log")
        axes[0, col].legend()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs=2, default=["lm", "rlm"], metavar=("BASE", "MULTILEVEL"))
    ap.add_argument("--set", choices=sorted(EXPERIMENTS), default="seed",
                    help="the seed's three problems, or fit with each loss")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results.md"))
    ap.add_argument("--label", default="default",
                    help="names the table's block in --out (each label has its own block)")
    ap.add_argument("--plot", metavar="FIG.png",
                    help="also draw the loss of both methods against iteration and flops")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="options passed to mlpar (after --)")
    args = ap.parse_args()
    extra = [a for a in args.extra if a != "--"]
    command = " ".join(["python", "scripts/reproduce_tables.py", *sys.argv[1:]])
    base, multi = args.methods
    lines = [f"| problem | method | iter (mean) | iter range | RMSE range | flops (median) "
             f"| save (flops {base}/{multi}) | median save | wall time ratio | seed's LM/RLM iter "
             f"| seed's RMSE | seed's RLM save | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    outputs = {}
    with tempfile.TemporaryDirectory() as workdir:
        for label, problem, nu, width, options, it_lm, it_rlm, rmse_seed, save_seed \
                in EXPERIMENTS[args.set]:
            outputs[label] = {m: [run_one(problem, nu, width, m, s, args.ranks,
                                          [*options, *extra], workdir) for s in args.seeds]
                              for m in (base, multi)}
            res = {m: [read_result(str(path))["attrs"] for path in paths]
                   for m, paths in outputs[label].items()}
            saves = [a["flops_matvec"] / b["flops_matvec"] for a, b in zip(res[base], res[multi])]
            walls = [a["wall_time"] / b["wall_time"] for a, b in zip(res[base], res[multi])]
            for m, seed_iter in ((base, it_lm), (multi, it_rlm)):
                its = [int(a["iterations"]) for a in res[m]]
                rm = [float(a["rmse"]) for a in res[m]]
                flops = statistics.median(float(a["flops_matvec"]) for a in res[m])
                status = {str(a["status"]) for a in res[m]}
                extra_cols = (f"{min(saves):.2f}–{max(saves):.2f} | {statistics.median(saves):.2f} | "
                              f"{statistics.median(walls):.2f}") if m == multi else " | | "
                lines.append(f"| {label} | {m} | {statistics.mean(its):.0f} | {min(its)}–{max(its)} "
                             f"| {min(rm):.1e}–{max(rm):.1e} | {flops:.2e} | {extra_cols} | {seed_iter} | "
                             f"{rmse_seed} | {save_seed if m == multi else ''} | "
                             f"{', '.join(sorted(status))} |")
            print(lines[-2], lines[-1], sep="\n", flush=True)
        if args.plot:
            comparison_figure(outputs).savefig(args.plot, dpi=80)
            print(f"figure written to {args.plot}")
    table = "\n".join(lines)
    header = (f"Command: `{command}` ({args.ranks} MPI ranks, seeds {args.seeds}); machine: "
              f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}.\n")
    text = Path(args.out).read_text() if Path(args.out).exists() else ""
    start = f"<!-- reproduce_tables:{args.label}:begin -->"
    end = f"<!-- reproduce_tables:{args.label}:end -->"
    block = f"{start}\n{header}\n{table}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    Path(args.out).write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
