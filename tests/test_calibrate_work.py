"""``scripts/calibrate_work.py`` times the kinds of work the cost-aware choice weighs and prints
them beside the work model's charge: one row per case, every figure a positive number."""

import subprocess
import sys

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "calibrate_work.py"


def test_calibration_prints_a_row_of_positive_figures_per_case():
    out = subprocess.run([sys.executable, str(SCRIPT), "--cases", "poisson2d:5:64:0",
                          "poisson:10:64:0"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ")]
    assert [r[0].strip() for r in rows[1:]] == ["poisson2d:5:64:0", "poisson:10:64:0"]
    assert rows[1][1].strip() == "256 × 256"
    for row in rows[1:]:
        figures = [float(row[k]) for k in (2, 3, 4, 5, 6, 8, 10)]
        assert all(f > 0 for f in figures), row
        assert row[7].strip().split(" ")[1].startswith("(64→")
        assert float(row[9].split()[0]) > 0 and row[9].split()[1] == "(direct)"
    assert "command:" in out.stdout
