"""jobs/ on a real single-node SLURM: a signalled job checkpoints, requeues and finishes with
the uninterrupted run's weights; a sweep array runs to the end."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, run_mlpar
from slurm_cluster import LocalSlurm, ensure_installed

from mlpar.io.output import read_result

pytestmark = pytest.mark.slurm
# lm from uniform weights converges after about 1500 iterations (1.4 s on 2 ranks; the job
# checkpoints every one of them, several seconds more), so the USR1 arrives while it trains.
# (rlm converges after about 230, in well under a second: the signal could come too late.)
RUN = ["--problem", "poisson", "--nu", "20", "--width", "512", "--method", "lm", "--seed", "0",
       "--init", "uniform", "--max-iter", "3000", "--quiet"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = ensure_installed()
    if reason is not None:
        pytest.skip(reason)
    # munged wants every directory above its socket world-executable: pytest's are 0700
    root = Path(tempfile.mkdtemp(prefix="mlpar-slurm-"))
    os.chmod(root, 0o755)
    cluster = LocalSlurm(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root)


def _sbatch(slurm, tmp_path, script, *args, env=""):
    exports = f"ALL,MLPAR_RUNS={tmp_path},MLPAR_PYTHON={sys.executable}{env}"
    out = slurm.run(["sbatch", "--parsable", "--chdir", str(ROOT), "--output",
                     str(tmp_path / "slurm-%j.out"), f"--export={exports}", *args,
                     str(ROOT / "jobs" / script)] + list(RUN if script == "train.sbatch" else []))
    return out.stdout.strip().split(";")[0]


def test_usr1_checkpoints_requeues_and_finishes_like_an_uninterrupted_run(slurm, tmp_path):
    reference = tmp_path / "reference.h5"
    assert run_mlpar([*RUN, "--out", reference], 2).returncode == 0
    job = _sbatch(slurm, tmp_path, "train.sbatch", "--ntasks=2", "--job-name=req",
                  env=",MLPAR_LAUNCH=mpirun,MLPAR_CHECKPOINT_EVERY=1")
    result = tmp_path / f"req-{job}" / "result.h5"
    t0 = time.monotonic()
    while not result.exists():
        assert time.monotonic() - t0 < 120, slurm.job_state(job)
        time.sleep(0.5)
    slurm.run(["scancel", "--signal=USR1", "--batch", job])
    t0 = time.monotonic()
    while int(slurm.job_state(job).get("Restarts", "0")) < 1:
        assert time.monotonic() - t0 < 120, slurm.job_state(job)
        time.sleep(1.0)
    slurm.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=False)
    info = slurm.wait_job(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, timeout=240)
    log = (tmp_path / f"slurm-{job}.out").read_text()
    assert info["JobState"] == "COMPLETED", log
    assert "requeueing job" in log and "restart 1" in log, log
    ours, ref = read_result(str(result)), read_result(str(reference))
    assert ours["attrs"]["status"] == ref["attrs"]["status"]
    assert np.array_equal(ours["params"], ref["params"]), "weights differ after the requeue"


def test_a_sweep_array_runs_to_the_end(slurm, tmp_path):
    job = _sbatch(slurm, tmp_path, "sweep.sbatch", "--ntasks=1", "--array=0-2",
                  env=",MLPAR_LAUNCH=mpirun,SEEDS=0 1 2,WIDTHS=32,METHODS=lm,"
                      "MLPAR_ARGS=--nu 5 --max-iter 50")
    for task in range(3):
        info = slurm.wait_job(f"{job}_{task}", {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
        assert info["JobState"] == "COMPLETED", (tmp_path / f"slurm-{job}.out")
    rundir = tmp_path / f"sweep-{job}"
    assert sorted(p.name for p in rundir.glob("*.h5")) == [f"lm-r32-s{s}.h5" for s in range(3)]
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "gather_runs.py"), str(rundir),
                            "--csv"], capture_output=True, text=True, check=True).stdout
    assert len(table.strip().splitlines()) == 4 and "lm-r32-s2.h5" in table
