"""Recursive multilevel LM: coherence of the coarse models, the two-level step, convergence."""

import numpy as np
import pytest
from mpi4py import MPI

from mlpar.api import multilevel_parameters, train
from mlpar.config import Config, ConfigError
from mlpar.linalg.linsolve import RegularizedSolver
from mlpar.model import problems
from mlpar.model.layout import ParameterLayout
from mlpar.model.network import evaluation_work, initial_parameters
from mlpar.model.problems import ResidualBlock, make_problem
from mlpar.multilevel.amg import setup_work
from mlpar.multilevel.choice import CostAwareChoice
from mlpar.multilevel.hierarchy import Hierarchy
from mlpar.multilevel.models import CorrectedObjective
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.multilevel.recursion import MultilevelMethod
from mlpar.optim import driver
from mlpar.optim.common import LMParameters, judge
from mlpar.optim.lm import taylor_step
from mlpar.optim.method import SingleLevelMethod
from mlpar.parallel.comm import Comm
from mlpar.parallel.leastsquares import LeastSquares
from mlpar.protocols import DENSE_WORK, FlopCounter


def _solver(objective, rtol=1e-12):
    """The regularised solver of a level with ``objective``'s sizes."""
    return RegularizedSolver(objective.comm, objective.n, objective.m, objective.m_local, "auto",
                             rtol)


def _setup(coarse_model="galerkin", coarse_start="collect", nu=10.0, width=96, seed=0, **prm):
    """RLM on Poisson ν = 10 (29 points) at a point two LM steps from x₀, its hierarchy built
    there; every recursive slot asks for the coarse model (``model_choice="gradient"``)
    unless ``prm`` says otherwise."""
    comm = Comm(MPI.COMM_SELF)
    prob = make_problem("poisson", nu)
    t = 29
    flops = FlopCounter()
    fine = LeastSquares(ResidualBlock(prob, "sigmoid", t, 1.0, 0, t + 2), comm, t + 2,
                        ParameterLayout(width), flops)
    mprm = MultilevelParameters(**{"coarse_model": coarse_model, "coarse_start": coarse_start,
                                   "coarse_max_iter": 3, "kappa_h": 0.1,
                                   "model_choice": "gradient", **prm})
    hierarchy = Hierarchy(fine, _solver, mprm)
    method = MultilevelMethod(fine, _solver(fine), LMParameters(), taylor_step, mprm, hierarchy)
    x = initial_parameters(width, nu, seed)
    for _ in range(2):   # move away from the initial point so that the test is not special
        lin = fine.linearize(x)
        x = x + method.taylor_step(lin, 0.05).s
    lin = fine.linearize(x)
    hierarchy.build(lin, 0)
    return method, hierarchy, fine, lin


def _fine_and_hierarchy(width, **prm):
    """The Poisson ν = 10 objective (29 points) of a ``width``-neuron network, and an
    (unbuilt) hierarchy below it with the multilevel parameters ``prm``."""
    prob = make_problem("poisson", 10.0)
    fine = LeastSquares(ResidualBlock(prob, "sigmoid", 29, 1.0, 0, 31), Comm(MPI.COMM_SELF), 31,
                        ParameterLayout(width), FlopCounter())
    return fine, Hierarchy(fine, lambda obj: _solver(obj, 1e-10), MultilevelParameters(**prm))


@pytest.fixture
def rlm_setup():
    """:func:`_setup` as a fixture: the solvers and hierarchies it made are destroyed after
    the test, whatever its outcome."""
    made = []

    def make(*args, **prm):
        made.append(_setup(*args, **prm))
        return made[-1]
    yield make
    for method, hierarchy, _, _ in made:
        method.solver.destroy()
        hierarchy.destroy()


@pytest.fixture
def fine_and_hierarchy():
    """:func:`_fine_and_hierarchy` as a fixture: the hierarchies are destroyed after the test."""
    made = []

    def make(width, **prm):
        made.append(_fine_and_hierarchy(width, **prm))
        return made[-1]
    yield make
    for _, hierarchy in made:
        hierarchy.destroy()


def _first_coarse_model(h, fine, lin):
    """The transfer, coarse model, start y₀ and linearisation at y₀ of the level below the
    fine one at ``lin``, checked coherent to first order: ∇h(y₀) = R g."""
    t = h.levels[0].transfer
    coarse, y0 = h.coarse_model(0, fine, lin)
    lin0 = coarse.linearize(y0)
    assert np.allclose(lin0.g, t.restrict(lin.g), rtol=1e-12, atol=1e-12 * np.abs(lin.g).max())
    return t, coarse, y0, lin0


def _central_difference(fun, y, d, eps=1e-6):
    """(fun(y + εd) − fun(y − εd)) / 2ε: the directional derivative, independently of any gradient."""
    return (fun(y + eps * d) - fun(y - eps * d)) / (2 * eps)


@pytest.mark.parametrize("start", ["collect", "injection", "restriction"])
def test_first_order_coherence_of_the_network_model(rlm_setup, start):
    method, h, fine, lin = rlm_setup("network", start)
    Rg = h.restrict(0, lin.g)
    base, y0 = h.coarse_model(0, fine, lin)
    lin0 = base.linearize(y0)
    coarse = CorrectedObjective(base, y0, Rg - lin0.g)
    g_mu = coarse.linearize(y0).g
    assert np.allclose(g_mu, Rg, rtol=1e-12, atol=1e-12 * np.abs(Rg).max())
    # and ∇μ is the gradient of μ: finite differences along a random direction
    d = np.random.default_rng(0).normal(size=y0.size)
    assert _central_difference(coarse.value, y0, d) == pytest.approx(float(g_mu @ d), rel=1e-5)


def test_galerkin_model_is_coherent_to_second_order(rlm_setup):
    method, h, fine, lin = rlm_setup("galerkin")
    t, coarse, s0, lin0 = _first_coarse_model(h, fine, lin)
    assert lin0.f == pytest.approx(lin.f, rel=1e-13)
    s = np.random.default_rng(1).normal(size=s0.size) * 1e-3
    Ps = t.prolong(s)
    gn = lin.f + lin.g @ Ps + 0.5 * np.sum((lin.J @ Ps) ** 2)
    assert coarse.value(s) == pytest.approx(gn, rel=1e-12)


def test_a_two_level_step_reduces_the_loss(rlm_setup):
    method, h, fine, lin = rlm_setup("galerkin")
    prop = method._recursive_step(0, fine, lin, 1.0)
    assert prop is not None and prop.level == 1
    assert prop.pred > 0
    assert fine.value(lin.x + prop.s) < lin.f


def test_restricted_model_is_the_loss_on_the_subspace(rlm_setup):
    method, h, fine, lin = rlm_setup("restricted")
    t, coarse, y0, lin0 = _first_coarse_model(h, fine, lin)
    assert lin0.f == pytest.approx(lin.f, rel=1e-14)
    rng = np.random.default_rng(2)
    y = rng.normal(size=y0.size) * 1e-2
    assert coarse.value(y) == pytest.approx(fine.value(lin.x + t.prolong(y)), rel=1e-14)
    # away from y = 0 the gradient is still that of h: central differences
    g = coarse.linearize(y).g
    d = rng.normal(size=y.size)
    assert _central_difference(coarse.value, y, d) == pytest.approx(float(g @ d), rel=1e-6)


def test_a_restricted_step_carries_the_loss_it_reached(rlm_setup):
    """The restricted model's value is the fine loss at x + P y, evaluated at the very same
    point, so the fine ratio test takes it as it is; a Galerkin step's model value is not
    the loss, and the test evaluates the loss itself."""
    method, h, fine, lin = rlm_setup("restricted")
    prop = method._recursive_step(0, fine, lin, 1.0)
    assert prop is not None and prop.exact
    assert prop.f_trial == fine.value(lin.x + prop.s)
    assert prop.pred == pytest.approx(lin.f - prop.f_trial, rel=1e-14)
    rho, accepted, _, f_trial = judge(fine, lin, prop, 1.0, method.prm)
    assert f_trial == prop.f_trial and rho == pytest.approx(1.0, rel=1e-12) and accepted
    method, h, fine, lin = rlm_setup("galerkin")
    assert not method._recursive_step(0, fine, lin, 1.0).exact


def test_restricted_models_compose_across_three_levels(fine_and_hierarchy):
    fine, h = fine_and_hierarchy(256, levels=3, min_width=8, coarse_model="restricted",
                                 interpolation="injection")
    lin = fine.linearize(initial_parameters(256, 10.0, 0))
    h.build(lin, 0)
    assert len(h.levels) == 2
    t1, t2 = (level.transfer for level in h.levels)
    mid, y0 = h.coarse_model(0, fine, lin)
    bottom, z0 = h.coarse_model(1, mid, mid.linearize(y0))
    z = np.random.default_rng(3).normal(size=z0.size) * 1e-2
    assert bottom.value(z) == pytest.approx(fine.value(lin.x + t1.prolong(t2.prolong(z))),
                                            rel=1e-14)
    g = bottom.linearize(z).g
    d = np.random.default_rng(4).normal(size=z.size)
    assert _central_difference(bottom.value, z, d) == pytest.approx(float(g @ d), rel=1e-6)


def test_restricted_jacobians_by_row_blocks_and_reused_at_the_start(fine_and_hierarchy,
                                                                     monkeypatch):
    """Three levels, J formed a few rows at a time: J_H(z) = J(x + P₁P₂z) P₁P₂ against the
    dense product, and at z = 0 the level's own J taken over at the same flop charge."""
    monkeypatch.setattr(problems, "PROJECTED_BLOCK_ENTRIES", 5 * 3 * 256)   # 5 rows a block
    fine, h = fine_and_hierarchy(256, levels=3, min_width=8, coarse_model="restricted",
                                 interpolation="injection")
    lin = fine.linearize(initial_parameters(256, 10.0, 0))
    h.build(lin, 0)
    t1, t2 = (level.transfer for level in h.levels)
    Q = (t1.P_full @ t2.P_full).toarray()
    mid, y0 = h.coarse_model(0, fine, lin)
    mid_lin = mid.linearize(y0)
    bottom, z0 = h.coarse_model(1, mid, mid_lin)
    charged = []
    for z in (np.random.default_rng(5).normal(size=z0.size) * 1e-2, z0):
        F, J = fine.block.residuals_and_jacobian(lin.x + Q @ z)
        before = fine.flops.total
        zlin = bottom.linearize(z)
        charged.append(fine.flops.total - before)
        np.testing.assert_allclose(zlin.J, J @ Q, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(zlin.F, F, rtol=1e-12, atol=1e-14)
        assert zlin.f == pytest.approx(0.5 * float(F @ F), rel=1e-13)
    assert zlin.F is mid_lin.F   # at z = 0: the level's own residuals, not re-evaluated
    assert charged[1] == pytest.approx(charged[0], rel=1e-15)


def test_the_work_beside_the_seed_flops_charges_every_evaluation_of_the_network(
        fine_and_hierarchy):
    """The cost-aware choice weighs work = the seed's flops + the network's evaluations and
    the AMG set-up: a restricted coarse level evaluates the *trained* network (charged at its
    width, r = 256), a Galerkin one evaluates nothing, and each built level pays its set-up."""
    fine, h = fine_and_hierarchy(256, levels=3, min_width=8, coarse_model="restricted",
                                 interpolation="injection")
    flops = fine.flops
    lin = fine.linearize(initial_parameters(256, 10.0, 0))
    assert flops.evaluation == evaluation_work(31, fine.layout, jacobian=True) \
        == 70.0 * 3 * 31 * 256
    before = flops.evaluation
    h.build(lin, 0)
    widths = h.widths
    assert len(widths) == 3
    assert flops.evaluation - before == pytest.approx(   # the middle level's J is reused at y₀
        sum(setup_work(31, fine.layout.with_width(w)) for w in widths[:2]), rel=1e-14)
    mid, y0 = h.coarse_model(0, fine, lin)
    bottom, z0 = h.coarse_model(1, mid, mid.linearize(y0))
    z = np.random.default_rng(6).normal(size=z0.size) * 1e-2
    for call, jacobian in ((bottom.value, False), (bottom.linearize, True)):
        before = flops.evaluation
        call(z)
        assert flops.evaluation - before == evaluation_work(31, fine.layout, jacobian)
        assert flops.work == flops.total + flops.evaluation
    before = flops.evaluation
    bottom.linearize(z0)                  # at the start: the level's own F and J, no evaluation
    assert flops.evaluation == before
    galerkin_fine, galerkin_h = fine_and_hierarchy(256, levels=2, coarse_model="galerkin")
    galerkin_lin = galerkin_fine.linearize(lin.x)
    galerkin_h.build(galerkin_lin, 0)
    coarse, s0 = galerkin_h.coarse_model(0, galerkin_fine, galerkin_lin)
    before = galerkin_fine.flops.evaluation
    coarse.linearize(s0 + 1e-3)
    coarse.value(s0 + 1e-3)
    assert galerkin_fine.flops.evaluation == before
    charged = (flops.total, flops.evaluation)
    with flops.uncharged():               # a resumed run's replay pays for nothing
        fine.linearize(lin.x)
    assert (flops.total, flops.evaluation) == charged


def test_the_work_charges_dense_products_at_a_fraction_of_their_flops(fine_and_hierarchy):
    """The direct solve's JJᵀ and its factorisation, and the Gram JᵀJ, count fully in the
    seed's flops and at DENSE_WORK of a product with J's flop in the choice's work."""
    fine, _ = fine_and_hierarchy(256)
    m, n, flops = fine.m, fine.n, fine.flops
    lin = fine.linearize(initial_parameters(256, 10.0, 0))
    solver = _solver(fine)
    assert solver.choose_form(lin) == "direct" and m <= n
    before = (flops.total, flops.dense, flops.evaluation)
    solver.solve(fine, lin, 1e-2)
    dense = flops.dense - before[1]
    assert dense - 2.0 * m * m * n in (pytest.approx(m ** 3 / 3.0), pytest.approx(2 * m ** 3 / 3.0))
    assert flops.total - before[0] > dense
    fine.gram(lin)
    assert flops.dense - before[1] - dense == 2.0 * m * n * n
    assert flops.work == pytest.approx(flops.total - (1.0 - DENSE_WORK) * flops.dense
                                       + flops.evaluation, rel=1e-15)
    solver.destroy()


def test_cost_aware_choice_tries_both_then_takes_the_cheaper_decrease():
    choice = CostAwareChoice(decay=0.5, retry=3, patience=4)
    assert not choice.prefers_coarse()          # the Taylor model is tried first
    choice.record("taylor", 1.0, 0.5, 100.0)
    assert choice.prefers_coarse()              # then the coarse one
    choice.record("coarse", 0.5, 0.4, 10.0)     # log(1.25)/10 > log(2)/100
    assert choice.prefers_coarse()
    for _ in range(4):                          # a trial lasts up to `patience` rejections
        assert choice.prefers_coarse()
        choice.record("coarse", 0.4, 0.4, 10.0)
    (d_c, c_c) = choice.sums[1]
    assert (d_c, c_c) == pytest.approx((0.5 * np.log(1.25), 0.5 * 10.0 + 40.0))
    assert not choice.prefers_coarse()          # now the Taylor step pays more per flop
    choice.record("taylor", 0.4, 0.4, 100.0)    # rejected: λ adapts, the trial stays open
    assert not choice.prefers_coarse()
    choice.record("taylor", 0.4, 0.3, 100.0)    # one trial: two steps, one decrease
    d_t, c_t = choice.sums[0]
    assert (d_t, c_t) == pytest.approx((0.5 * np.log(2.0) + np.log(4 / 3), 50.0 + 200.0))
    choice.record("taylor", 0.3, 0.2, 100.0)
    choice.record("taylor", 0.2, 0.15, 100.0)
    assert choice.prefers_coarse()              # refused 3 slots in a row: retried
    for _ in range(4):
        choice.record("coarse", 0.15, 0.15, 10.0)
    assert list(choice.wait) == [3, 6]          # the retry lost: the coarse model waits twice as long
    assert not choice.prefers_coarse()
    copy = CostAwareChoice(decay=0.5, retry=3, patience=4)
    copy.restore(choice.state())
    assert all(np.array_equal(getattr(copy, a), getattr(choice, a), equal_nan=True)
               for a in ("sums", "refused", "wait", "open"))


def test_cost_aware_choice_closes_an_open_trial_the_usefulness_test_refused():
    """The coarse model was asked for, but ‖Rg‖ was too small: a Taylor step was taken
    instead, and the coarse trial ends with its cost and no decrease."""
    choice = CostAwareChoice(decay=0.5, retry=3, patience=4)
    choice.record("taylor", 1.0, 0.5, 100.0)
    choice.record("coarse", 0.5, 0.5, 10.0)     # rejected: the coarse trial is open
    choice.record("taylor", 0.5, 0.4, 100.0)    # the next slot's coarse model was not useful
    assert choice.sums[1] == pytest.approx((0.0, 10.0))
    assert choice.sums[0] == pytest.approx((0.5 * np.log(2.0) + np.log(1.25), 150.0))
    assert choice.open[0] == -1
    former = CostAwareChoice(decay=0.5, retry=3)   # a checkpoint of the former layout
    former.restore({"sums": choice.sums, "refused": choice.refused})
    assert np.array_equal(former.sums, choice.sums) and former.open[0] == -1
    assert list(former.wait) == [3, 3]


@pytest.mark.parametrize("model", ["galerkin", "network", "restricted"])
def test_the_ratio_test_never_accepts_an_increase(rlm_setup, model):
    method, h, fine, lin = rlm_setup(model)
    for lam in (1e-4, 1e-2, 1.0, 1e2):
        prop, rho, accepted, lam_new = method.iterate(lin, lam, iteration=0)
        f_new = fine.value(lin.x + prop.s)
        assert accepted == (rho >= method.prm.eta1)
        if accepted:
            assert f_new < lin.f and lam_new <= lam
        else:
            assert lam_new > lam


def test_hierarchy_levels_shrink_and_respect_the_minimum_width(fine_and_hierarchy):
    fine, h = fine_and_hierarchy(256, levels=4, min_width=8)
    h.build(fine.linearize(initial_parameters(256, 10.0, 0)), 0)
    widths = h.widths
    assert len(widths) >= 3 and all(a > b for a, b in zip(widths, widths[1:]))
    assert all(w > 8 for w in widths[:-1])


def test_rlm_solves_poisson_nu5():
    cfg = Config(problem="poisson", nu=5.0, width=64, method="rlm", max_iter=5000, kappa_h=0.1,
                 quiet=True)
    out = train(cfg, Comm(MPI.COMM_SELF))
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-3
    levels = {rec.level for rec in out.state.history if rec.accepted}
    assert levels == {0, 1}, "both fine and coarse steps were taken"


def _iterates(method, x0: np.ndarray, iterations: int, before=lambda: None):
    """The iterates x_0..x_k of ``method`` driven from x0 (λ_0 = 0.05) for ``iterations``,
    and what ``before()`` said before each iteration."""
    state = driver.State(x=x0.copy(), lam=0.05, f0=method.objective.value(x0))
    lin = driver.start(method, state)
    xs, said = [state.x.copy()], []
    for _ in range(iterations):
        said.append(before())
        _, lin = driver.step(method, state, lin, 0.0)
        xs.append(state.x.copy())
    return np.array(xs), said


@pytest.mark.parametrize("scheme", ["spread", "uniform"])
def test_the_hierarchy_is_built_only_when_the_taylor_steps_are_slow(scheme):
    """The hierarchy is built at the first slot after the first Taylor step where, at the
    Taylor steps' recorded rate D_t/C_t, the set-up's work would gain less than a decade of
    the loss.  From spread weights LM gains more than that throughout: rlm takes LM's steps
    and builds nothing.  From the seed's uniform weights it is built within a few steps."""
    x0 = initial_parameters(96, 10.0, 0, scheme)
    fine, h = _fine_and_hierarchy(96, model_choice="cost", coarse_max_iter=3)
    rlm = MultilevelMethod(fine, _solver(fine), LMParameters(), taylor_step, h.prm, h)

    def slow():
        d_t, c_t = rlm.choice.sums[0]
        return h.built_at < 0 and d_t * h.setup_work() < np.log(10.0) * c_t

    xs, said = _iterates(rlm, x0, 12, slow)
    expected = said.index(True) if True in said else -1
    assert h.built_at == expected
    if scheme == "spread":
        assert expected == -1
        plain, _ = _fine_and_hierarchy(96)
        lm = SingleLevelMethod(plain, _solver(plain), LMParameters(), taylor_step)
        np.testing.assert_array_equal(xs, _iterates(lm, x0, 12)[0])
        lm.solver.destroy()
    else:
        assert 1 <= expected <= 6
    rlm.solver.destroy()
    h.destroy()


def test_cost_aware_choice_buys_a_set_up_only_below_a_decade_of_taylor_progress():
    choice = CostAwareChoice(decay=0.5, retry=3, patience=4)
    assert choice.worth_building(1e9)              # nothing known: the seed's behaviour
    choice.record("taylor", 1.0, 0.01, 100.0)      # log(100) per 100 of work
    assert choice.worth_building(49.0) and not choice.worth_building(51.0)


def test_rlm_with_the_restricted_model_and_the_cost_aware_choice_solves_poisson_nu5():
    cfg = Config(problem="poisson", nu=5.0, width=64, method="rlm", max_iter=5000, kappa_h=0.1,
                 coarse_model="restricted", interpolation="injection", coarse_max_iter=3,
                 model_choice="cost", quiet=True)
    out = train(cfg, Comm(MPI.COMM_SELF))
    assert out.state.status == "converged", out.state.status
    assert out.rmse < 1e-3
    history = out.state.history
    assert {rec.level for rec in history if rec.accepted} == {0, 1}
    # an accepted restricted step (ρ = 1 by construction) leaves λ unchanged
    kept = [b.lam == a.lam for a, b in zip(history, history[1:]) if a.level == 1 and a.accepted]
    assert kept and all(kept)


def test_a_rejected_step_keeps_the_hierarchy_and_a_new_point_rebuilds_it(rlm_setup):
    method, h, fine, lin = rlm_setup("galerkin", screen_age=0, rebuild_every=1)
    method.propose(lin, 1.0, iteration=0)
    first = h.levels[0].transfer
    method.propose(lin, 1.5, iteration=1)      # same linearisation: a rejected step
    assert h.levels[0].transfer is first and h.built_at == 1
    moved = fine.linearize(lin.x + 1e-3)
    method.propose(moved, 1.0, iteration=2)
    assert h.levels[0].transfer is not first and h.built_from is moved


@pytest.mark.parametrize("method, model", [("rlm", "restricted"), ("rarc", "galerkin")])
def test_the_default_coarse_model_is_resolved_per_method(method, model):
    """``--coarse-model auto``: the restricted model needs a least-squares loss, so rarc takes
    the Galerkin one; an explicit choice is kept."""
    assert multilevel_parameters(Config(method=method)).coarse_model == model
    assert multilevel_parameters(Config(method=method, coarse_model="network")).coarse_model \
        == "network"


@pytest.mark.parametrize("method, every", [("rlm", 400), ("rarc", 10), ("lm", 40)])
def test_the_default_rebuild_interval_is_resolved_per_method(method, every):
    """``--rebuild-every -1`` (the default): rlm rebuilds every 400 iterations, rarc every 10,
    lm's preconditioner its own coarse space every 40; an explicit interval, 0 included, is
    kept, and below -1 is refused."""
    assert multilevel_parameters(Config(method=method)).rebuild_every == every
    for explicit in (0, 7):
        assert multilevel_parameters(Config(method=method, rebuild_every=explicit)
                                     ).rebuild_every == explicit
    with pytest.raises(ConfigError, match="--rebuild-every"):
        Config(method=method, rebuild_every=-2).validate()


def test_every_level_keeps_its_lambda_after_an_accepted_restricted_step(fine_and_hierarchy,
                                                                          monkeypatch):
    """On level 1 of a three-level restricted hierarchy, an accepted step from level 2
    (ρ = 1 by construction) hands the next level-1 iteration the λ it had; after a level-1
    Taylor step, λ follows the ratio test as usual."""
    fine, h = fine_and_hierarchy(256, levels=3, min_width=8, coarse_model="restricted",
                                 interpolation="injection", coarse_max_iter=5, kappa_h=0.05,
                                 model_choice="gradient")
    method = MultilevelMethod(fine, None, LMParameters(), taylor_step, h.prm, h)
    lin = fine.linearize(initial_parameters(256, 10.0, 0))
    h.build(lin, 0)
    mid, y0 = h.coarse_model(0, fine, lin)
    judged = []   # per level-1 iteration: (level of its step, λ judged with, accepted, λ after)

    def recording_judge(objective, lin, prop, lam, prm):
        out = judge(objective, lin, prop, lam, prm)
        if objective is mid:
            judged.append((prop.level, lam, out[1], out[2]))
        return out
    monkeypatch.setattr("mlpar.multilevel.recursion.judge", recording_judge)
    pairs = []
    for lam in (0.05, 1.0):   # from 0.05 level 1 rejects its own Taylor steps first
        judged.clear()
        method._minimize(1, mid, h.levels[0].solver, mid.linearize(y0), lam)
        pairs += zip(judged, judged[1:])
    from_below = [b[1] == a[1] for a, b in pairs if a[0] == 2 and a[2]]
    assert len(from_below) >= 2 and all(from_below)
    own = [b[1] == a[3] != a[1] for a, b in pairs if a[0] == 1]
    assert own and all(own)
