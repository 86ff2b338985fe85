"""Checkpoints and restarts: bit-for-bit resume, signals, kill -9 at random moments, bad files."""

import hashlib
import os
import random
import shutil
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import run_mlpar, start_mlpar

from mlpar.io.checkpoint import SCALARS, read_checkpoint
from mlpar.io.output import HISTORY_FIELDS, read_result

DATA = Path(__file__).parent / "data"
RUN = ["--problem", "poisson", "--nu", "10", "--width", "128", "--ftol", "1e-14", "--quiet",
       "--seed", "3"]


def _same_run(a, b, exact=True):
    """Final weights and history of two output files agree (bit for bit if exact)."""
    ra, rb = read_result(a), read_result(b)
    if exact:
        assert np.array_equal(ra["params"], rb["params"])
        for key in ra["history"]:
            if key != "time":
                assert np.array_equal(ra["history"][key], rb["history"][key]), key
        assert ra["attrs"]["flops_matvec"] == rb["attrs"]["flops_matvec"]
    else:
        rel = np.linalg.norm(ra["params"] - rb["params"]) / np.linalg.norm(ra["params"])
        assert rel < 1e-8, rel
    assert ra["attrs"]["iterations"] == rb["attrs"]["iterations"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, 120 iterations, per method and rank count."""
    cache = {}

    def get(method, nranks, extra=()):
        key = (method, nranks, tuple(extra))
        if key not in cache:
            out = tmp_path_factory.mktemp("ref") / f"{method}-{nranks}.h5"
            proc = run_mlpar([*RUN, "--method", method, *extra, "--max-iter", "120", "--out", out],
                             nranks)
            assert proc.returncode == 0, proc.stderr
            cache[key] = out
        return cache[key]
    return get


#: RLM with the restricted coarse model and the cost-aware choice, whose state is checkpointed
COST_AWARE = ["--coarse-model", "restricted", "--interpolation", "injection",
              "--model-choice", "cost", "--kappa-h", "0.1", "--coarse-max-iter", "3"]


@pytest.mark.parametrize("method,extra", [("lm", []), ("rlm", []), ("arc", []), ("rarc", []),
                                          ("rlm", COST_AWARE)],
                         ids=["lm", "rlm", "arc", "rarc", "rlm-cost"])
@pytest.mark.parametrize("nranks", [1, 2])
def test_resume_continues_bit_for_bit(tmp_path, reference, method, extra, nranks):
    """ARC checkpoints also after rejected steps, where the uninterrupted run reuses its
    Krylov space: the resumed run rebuilds it without charging its products twice."""
    out = tmp_path / "part.h5"
    proc = run_mlpar([*RUN, "--method", method, *extra, "--max-iter", "45",
                      "--checkpoint-every", "10", "--out", out], nranks)
    assert proc.returncode == 0, proc.stderr
    proc = run_mlpar(["--resume", out, "--max-iter", "120"], nranks)
    assert proc.returncode == 0, proc.stderr
    _same_run(reference(method, nranks, extra), out)


def test_resume_on_another_rank_count_agrees_to_rounding(tmp_path, reference):
    out = tmp_path / "part.h5"
    assert run_mlpar([*RUN, "--method", "lm", "--max-iter", "40", "--out", out], 1).returncode == 0
    proc = run_mlpar(["--resume", out, "--max-iter", "120", "--out", tmp_path / "b.h5"], 3)
    assert proc.returncode == 0, proc.stderr
    _same_run(reference("lm", 1), tmp_path / "b.h5", exact=False)


def test_a_time_limit_stops_every_rank_at_one_iteration_and_the_run_resumes(tmp_path, reference):
    """--max-time 1e-6 stops after the first iteration (the test comes after each iteration,
    on rank 0's clock); the output file says why, and --resume without the limit continues
    bit for bit."""
    out = tmp_path / "part.h5"
    proc = run_mlpar([*RUN, "--method", "rlm", "--max-iter", "120", "--max-time", "1e-6",
                      "--out", out], 2)
    assert proc.returncode == 0, proc.stderr
    attrs = read_result(out)["attrs"]
    assert (attrs["status"], attrs["reason"], attrs["iterations"]) == ("max_iter", "max_time", 1)
    assert "the time limit --max-time 1e-06 s was reached" in attrs["message"]
    proc = run_mlpar(["--resume", out, "--max-time", "0"], 2)
    assert proc.returncode == 0, proc.stderr
    _same_run(reference("rlm", 2), out)


def _wait_for_progress(proc, path, timeout=60):
    """Wait until the run has written its first checkpoint."""
    t0 = time.monotonic()
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.parametrize("sig,nranks", [(signal.SIGTERM, 1), (signal.SIGUSR1, 2),
                                        (signal.SIGINT, 1)])
def test_a_signal_checkpoints_and_exits_75(tmp_path, reference, sig, nranks):
    out = tmp_path / "run.h5"
    proc = start_mlpar([*RUN, "--method", "rlm", "--max-iter", "120", "--checkpoint-every", "1",
                        "--out", out], nranks)
    _wait_for_progress(proc, out)
    # SIGUSR1 is forwarded to the ranks by mpiexec; SIGTERM/SIGINT go to the ranks directly
    if sig == signal.SIGUSR1:
        proc.send_signal(sig)
    else:
        for pid in _rank_pids(proc.pid):
            os.kill(pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 75, stderr
    attrs = read_result(out)["attrs"]
    assert attrs["status"] == "interrupted" and 0 < attrs["iterations"] < 120
    proc = run_mlpar(["--resume", out], nranks)
    assert proc.returncode == 0, proc.stderr
    _same_run(reference("rlm", nranks), out)


def _rank_pids(mpiexec_pid, required=True):
    """The python rank processes started by an mpiexec (children found through /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if int(fields[1]) == mpiexec_pid and "mlpar" in cmd:
                pids.append(int(entry))
    assert pids or not required, "no rank process found"
    return pids


def _kill_job(proc):
    """kill -9 of mpiexec and of its ranks (Open MPI may start them in another process group)."""
    ranks = _rank_pids(proc.pid, required=False)   # none if the run has just finished
    os.killpg(proc.pid, signal.SIGKILL)   # mpiexec is not reaped yet: its group exists
    for pid in ranks:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue   # already gone with its process group
    proc.communicate()
    t0 = time.monotonic()
    while any(os.path.exists(f"/proc/{pid}") for pid in ranks):
        assert time.monotonic() - t0 < 30, "rank processes survived kill -9"
        time.sleep(0.05)


def test_kill_9_at_random_moments_never_loses_the_last_checkpoint(tmp_path, reference):
    rng = random.Random(1234)
    # moments inside the run, however fast this machine trains: the checkpointed run is
    # slower than the reference, whose training time bounds the wait
    duration = float(read_result(reference("rlm", 1))["attrs"]["wall_time"])
    resumed = 0
    for trial in range(10):
        out = tmp_path / f"run{trial}.h5"
        proc = start_mlpar([*RUN, "--method", "rlm", "--max-iter", "120", "--checkpoint-every",
                            "1", "--out", out], 1)
        _wait_for_progress(proc, out)
        time.sleep(rng.uniform(0.0, 0.9 * duration))
        _kill_job(proc)
        cfg, state = read_checkpoint(str(out))       # always readable, checksums verified
        assert cfg.width == 128 and state.iteration >= 1
        if state.iteration < 120:
            proc = run_mlpar(["--resume", out], 1)
            assert proc.returncode == 0, proc.stderr
            resumed += 1
        _same_run(reference("rlm", 1), out)
    assert resumed >= 5


def _bad_file(tmp_path, reference, kind):
    good = reference("lm", 1)
    bad = tmp_path / f"{kind}.h5"
    data = good.read_bytes()
    if kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "not-hdf5":
        bad.write_text("hello\n")
    elif kind == "foreign":
        with h5py.File(bad, "w") as fh:
            fh["data"] = np.arange(3)
    else:
        bad.write_bytes(data)
        with h5py.File(bad, "r+") as fh:
            if kind == "flipped":
                x = fh["checkpoint/x"]
                x[5] = x[5] + 1e-12
            elif kind == "newer":
                fh["checkpoint"].attrs["schema_version"] = 99
            elif kind == "history":
                del fh["checkpoint/history/loss"]
    return bad


@pytest.mark.parametrize("kind,fragment", [
    ("truncated", "not a readable HDF5 file"), ("not-hdf5", "not a readable HDF5 file"),
    ("foreign", "no mlpar checkpoint"), ("flipped", "checksum mismatch"),
    ("newer", "schema version 99 is newer"), ("history", "damaged checkpoint")])
def test_bad_checkpoints_are_refused_cleanly(tmp_path, reference, kind, fragment):
    bad = _bad_file(tmp_path, reference, kind)
    proc = run_mlpar(["--resume", bad, "--out", tmp_path / "o.h5"], 2, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("mlpar: error:") == 1 and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_resume_refuses_a_changed_setting(tmp_path, reference):
    proc = run_mlpar(["--resume", reference("lm", 1), "--width", "64",
                      "--out", tmp_path / "o.h5"], 1, timeout=60)
    assert proc.returncode == 2
    assert "--width 64 differs from the checkpoint's 128" in proc.stderr


def test_a_stale_temporary_file_is_removed(tmp_path):
    out = tmp_path / "o.h5"
    (tmp_path / "o.h5.tmp").write_bytes(b"half a file")
    proc = run_mlpar([*RUN, "--method", "lm", "--max-iter", "3", "--out", out], 1)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "o.h5.tmp").exists() and read_result(out)["attrs"]["iterations"] == 3


def test_reading_options_and_files_does_not_initialise_petsc():
    """Rank 0 reads options and checkpoints before petsc4py.init(args); importing PETSc there
    would drop the PETSc options and run PetscInitialize (collective) on one rank only."""
    import subprocess
    import sys
    code = ("import sys, mlpar.__main__, mlpar.cli.main, mlpar.io.checkpoint, mlpar.config, "
            "mlpar.io.output; "
            "assert 'petsc4py.PETSc' not in sys.modules, 'PETSc imported too early'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_reused_hierarchy_is_checkpointed_and_resumed_bit_for_bit(tmp_path):
    args = [*RUN, "--method", "rlm", "--rebuild-every", "7", "--post-smooth", "0"]
    full, part = tmp_path / "full.h5", tmp_path / "part.h5"
    assert run_mlpar([*args, "--max-iter", "60", "--out", full], 1).returncode == 0
    assert run_mlpar([*args, "--max-iter", "25", "--out", part], 1).returncode == 0
    with h5py.File(part, "r") as fh:
        assert "P0_data" in fh["checkpoint/components/hierarchy"]
    proc = run_mlpar(["--resume", part, "--max-iter", "60"], 1)
    assert proc.returncode == 0, proc.stderr
    _same_run(full, part)


def test_a_failing_rank_ends_the_whole_job(tmp_path):
    """Rank 0 cannot write its checkpoint (the directory vanished) while rank 1 waits in a
    collective: the job must end with an error, not hang."""
    rundir = tmp_path / "gone"
    rundir.mkdir()
    out = rundir / "run.h5"
    proc = start_mlpar([*RUN, "--method", "lm", "--max-iter", "100000", "--ftol", "0",
                        "--checkpoint-every", "1", "--out", out], 2)
    _wait_for_progress(proc, out)
    # one atomic rename: deleting the files raced with the run writing its next checkpoint
    rundir.rename(tmp_path / "elsewhere")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None)
    assert "mlpar: rank 0 of 2: unexpected error" in stderr


@pytest.mark.parametrize("method", ["arc", "rarc"])
def test_resume_right_after_a_rejected_step_is_bit_for_bit(tmp_path, reference, method):
    """Stopped just after a rejected Taylor step, the uninterrupted run would reuse its Krylov
    space: the resumed one must make the same steps and charge the same flops."""
    ref = reference(method, 2)
    history = read_result(ref)["history"]
    accepted, level = history["accepted"], history["level"]
    stop = next(k for k in range(30, accepted.size)
                if not accepted[k - 1] and not accepted[k] and level[k - 1] == level[k] == 0)
    out = tmp_path / "part.h5"
    proc = run_mlpar([*RUN, "--method", method, "--max-iter", str(stop), "--out", out], 2)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as fh:
        assert fh["checkpoint/components/solver/krylov_size"][0] > 0
    proc = run_mlpar(["--resume", out, "--max-iter", "120"], 2)
    assert proc.returncode == 0, proc.stderr
    _same_run(ref, out)


#: Checkpoints written by mlpar's schema 2 (before the components had groups of their own),
#: with RUN: rlm stopped at iteration 45, arc at 35 just after a rejected step.
SCHEMA2 = {"rlm": (DATA / "schema2-rlm-45.h5", 45), "arc": (DATA / "schema2-arc-35.h5", 35)}


def test_a_schema_2_checkpoint_still_resumes_arc(tmp_path, reference):
    """Its flat ``method_state`` (the Krylov size) is handed to the solver: the resumed run
    takes the uninterrupted one's decisions (the same flops, iteration by iteration the same
    losses). The fixture's first iterations were computed by an earlier code, so weights and
    losses agree to rounding, not bit for bit (the current schema's resume is bit for bit:
    the tests above)."""
    fixture, stopped = SCHEMA2["arc"]
    out = tmp_path / "v2.h5"
    shutil.copy(fixture, out)
    _, state = read_checkpoint(out)
    assert state.iteration == stopped and state.components
    proc = run_mlpar(["--resume", out, "--max-iter", "120"], 1)
    assert proc.returncode == 0, proc.stderr
    ref, res = read_result(reference("arc", 1)), read_result(out)
    assert res["attrs"]["flops_matvec"] == ref["attrs"]["flops_matvec"]
    np.testing.assert_allclose(res["history"]["loss"], ref["history"]["loss"], rtol=1e-8)
    np.testing.assert_allclose(res["params"], ref["params"], rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def schema2_rlm_resumed(tmp_path_factory):
    """The rlm schema-2 fixture resumed to iteration 120 (by today's code)."""
    out = tmp_path_factory.mktemp("schema2") / "whole.h5"
    shutil.copy(SCHEMA2["rlm"][0], out)
    proc = run_mlpar(["--resume", out, "--max-iter", "120"], 1)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_schema_2_checkpoint_still_resumes_rlm(tmp_path, schema2_rlm_resumed):
    """The flat ``method_state`` of rlm is split into its components: the hierarchy's
    transfers and the cost-aware choice's packed array (4 sums, 2 refusals, 2 waits, 4
    open-trial entries).  The fixture's iterations were chosen by the former choice (decrease
    per seed flop; now per unit of work), so no uninterrupted run of today's code passes
    through its state; instead the resumed run must go on as a resume of its own continuation
    does, bit for bit."""
    fixture, stopped = SCHEMA2["rlm"]
    with h5py.File(fixture, "r") as fh:
        flat = {k: v[()] for k, v in fh["checkpoint/method_state"].items()}
    _, state = read_checkpoint(fixture)
    assert state.iteration == stopped
    choice, hierarchy = state.components["choice"], state.components["hierarchy"]
    np.testing.assert_array_equal(choice["sums"].ravel(), flat["model_choice"][:4])
    np.testing.assert_array_equal(np.concatenate([choice["refused"], choice["wait"],
                                                  choice["open"]]), flat["model_choice"][4:])
    assert set(hierarchy) == set(flat) - {"model_choice"}
    part = tmp_path / "part.h5"
    shutil.copy(fixture, part)
    for limit in ("80", "120"):
        proc = run_mlpar(["--resume", part, "--max-iter", limit], 1)
        assert proc.returncode == 0, proc.stderr
    _same_run(schema2_rlm_resumed, part)


def _schema1_state_digest(state, flat: dict) -> str:
    """The state digest as schema 1 computed it (no level widths, solver reasons or
    preconditioners in the history; the flat ``method_state``)."""
    h = hashlib.sha256()
    arrays = [state.x, np.array([float(getattr(state, k)) for k in SCALARS]),
              *(np.asarray([getattr(r, k) for r in state.history], dtype=np.float64)
                for k in HISTORY_FIELDS if k not in ("widths", "ksp_reason", "pc")),
              *(flat[k] for k in sorted(flat))]
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def test_a_schema_1_checkpoint_without_level_widths_still_resumes(tmp_path,
                                                                   schema2_rlm_resumed):
    """A checkpoint written before the history recorded the level widths resumes as the
    schema-2 fixture it is made from; its iterations get widths 0, the later ones are
    recorded as in the schema-2 fixture's resumed run."""
    out = tmp_path / "v1.h5"
    shutil.copy(SCHEMA2["rlm"][0], out)
    _, state = read_checkpoint(out)
    with h5py.File(out, "r+") as fh:
        g = fh["checkpoint"]
        flat = {k: v[()] for k, v in g["method_state"].items()}
        del g["history/widths"]
        g.attrs["schema_version"] = 1
        g.attrs["state_sha256"] = _schema1_state_digest(state, flat)
    proc = run_mlpar(["--resume", out, "--max-iter", "120"], 1)
    assert proc.returncode == 0, proc.stderr
    ref, res = read_result(schema2_rlm_resumed), read_result(out)
    assert res["attrs"]["flops_matvec"] == ref["attrs"]["flops_matvec"]
    assert np.array_equal(res["params"], ref["params"])
    widths, ref_widths = res["history"]["widths"], ref["history"]["widths"]
    assert widths.shape == ref_widths.shape == (120, 3)
    assert np.all(widths[:45] == 0) and np.array_equal(widths[45:], ref_widths[45:])
    assert np.all(ref_widths[:, 0] == ref_widths[0, 0]) and ref_widths[:, 1].max() > 0
