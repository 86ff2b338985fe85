#!/usr/bin/env python
"""Gather mlpar output files (e.g. a sweep's) into one table.

Usage::

    python scripts/gather_runs.py runs/sweep-1234/            # aligned text table
    python scripts/gather_runs.py runs/sweep-1234/*.h5 --csv  # CSV on standard output

One row per file: file, status, problem, nu, width, method, seed, iterations, loss, RMSE,
flops_matvec, ranks, wall time. Files that are not mlpar output files are reported on
standard error and skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlpar.io.output import OutputFileError, read_result  # noqa: E402

COLUMNS = ["file", "status", "problem", "nu", "width", "method", "seed", "iterations", "loss",
           "rmse", "flops_matvec", "nranks", "wall_time"]


def row(path: Path) -> dict:
    attrs = read_result(str(path))["attrs"]
    cfg = json.loads(str(attrs["config"]))
    values = {**{k: cfg[k] for k in ("problem", "nu", "width", "method", "seed")},
              **{k: attrs[k] for k in ("status", "iterations", "loss", "rmse", "flops_matvec",
                                        "nranks", "wall_time")}}
    values["file"] = path.name
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="output files or directories holding them")
    ap.add_argument("--csv", action="store_true", help="CSV instead of an aligned table")
    args = ap.parse_args()
    files = []
    for p in map(Path, args.paths):
        files += sorted(p.glob("*.h5")) if p.is_dir() else [p]
    rows = []
    for f in files:
        try:
            rows.append(row(f))
        except OutputFileError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    if args.csv:
        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
        return 0
    cells = [COLUMNS] + [[f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in COLUMNS]
                         for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    for c in cells:
        print("  ".join(v.rjust(wd) for v, wd in zip(c, widths)))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
