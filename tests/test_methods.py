"""One behaviour contract, written once and run for every method (scipy's mixin pattern):
converges on a small Poisson problem, never accepts an increase, follows the λ rule, resumes
bit for bit from a checkpoint, and names why it stopped."""

import numpy as np
from helpers import resumes_bit_for_bit
from mpi4py import MPI

import mlpar
from mlpar.api import train
from mlpar.config import Config
from mlpar.optim.common import TERMINATION
from mlpar.parallel.comm import Comm

SELF = Comm(MPI.COMM_SELF)
POISSON = {"problem": "poisson", "nu": 5.0, "width": 64, "quiet": True}


class MethodContract:
    """The behaviours every method must show; subclasses set ``method`` and ``options``."""

    method = ""
    options: dict = {}
    multilevel = False
    max_iter = 3000

    def run(self, **more):
        return mlpar.solve({**POISSON, "method": self.method, "max_iter": self.max_iter,
                            **self.options, **more}, comm=SELF)

    def test_converges_on_a_small_poisson_problem(self):
        result = self.run()
        assert result.status == "converged", result.message
        assert result.reason in ("gtol", "ftol") and result.message
        assert result.rmse < 1e-3
        levels = {rec.level for rec in result.history if rec.accepted}
        assert levels == ({0, 1} if self.multilevel else {0})

    def test_the_ratio_test_never_accepts_an_increase_and_lambda_follows_it(self):
        history = self.run(max_iter=60).history
        for before, rec in zip(history, history[1:]):
            if rec.accepted:
                assert rec.loss < before.loss
                assert rec.rho >= 0.1
            else:
                assert rec.loss == before.loss
        for rec, after in zip(history, history[1:]):
            if not rec.accepted:
                assert after.lam > rec.lam, "a rejected step must raise λ"

    def test_a_checkpointed_stateresumes_bit_for_bit(self, tmp_path):
        resumes_bit_for_bit(tmp_path, {**POISSON, "method": self.method, **self.options}, 25, 40)


    def test_an_iteration_limit_is_named_in_the_message(self):
        result = self.run(max_iter=3)
        assert (result.status, result.reason) == ("max_iter", "max_iter")
        assert "--max-iter 3" in result.message
        assert all(rec.ksp_reason for rec in result.history)


class TestLM(MethodContract):
    method = "lm"


class TestRLM(MethodContract):
    method = "rlm"
    multilevel = True
    options = {"kappa_h": 0.1}
    max_iter = 5000


class TestARC(MethodContract):
    method = "arc"


class TestRARC(MethodContract):
    method = "rarc"
    multilevel = True
    options = {"kappa_h": 0.1}
    max_iter = 5000


def test_a_resume_after_a_rejected_step_keeps_the_hierarchy_built_there(tmp_path):
    """rarc, three levels: the run stopped just after a rejected step whose hierarchy was built
    at the same point; when the next rebuild falls due there, the uninterrupted run keeps the
    hierarchy, and so must the resumed one (it used to rebuild it, charging its coarse
    linearisations again: 2976 flops more from iteration 24 on)."""
    resumes_bit_for_bit(tmp_path, {"problem": "helmholtz", "nu": 5.0, "width": 16, "seed": 2,
                                    "min_width": 4, "method": "rarc", "quiet": True}, 17, 30)


def test_every_termination_reason_has_a_status_of_the_output_file():
    assert {status for status, _ in TERMINATION.values()} == {
        "converged", "max_iter", "interrupted", "failed"}


def test_a_non_finite_loss_is_named_as_such():
    """A state whose weights became NaN (as after an overflow): the run fails at once with the
    reason ``nonfinite``, not with a message about λ."""
    cfg = Config(**POISSON, method="lm", max_iter=10).validate()
    state = train(cfg, SELF).state
    state.x[:] = np.nan
    state.status = "running"
    out = train(cfg, SELF, state=state).state
    assert (out.status, out.reason) == ("failed", "nonfinite")
    assert "not finite" in out.message


def test_rlm_spends_fewer_flops_than_lm_on_a_reduced_seed_problem():
    """The seed's claim on a smaller case of its first problem (Poisson ν = 20, uniform
    initialisation): the multilevel method reaches the same tolerance for fewer flops."""
    case = {"problem": "poisson", "nu": 20.0, "width": 256, "seed": 0, "max_iter": 4000,
            "quiet": True}
    lm, rlm = (mlpar.solve({**case, "method": m}, comm=SELF) for m in ("lm", "rlm"))
    assert lm.status == rlm.status == "converged"
    assert rlm.flops_matvec < lm.flops_matvec / 1.2, (rlm.flops_matvec, lm.flops_matvec)
