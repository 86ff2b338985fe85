"""The memory estimate per rank: its arithmetic, the form it assumes, the refusal."""

import math

import pytest

from mlpar import memory
from mlpar.config import Config
from mlpar.linalg.forms import AUTO_MG_MAX_WEIGHTS


def _terms(terms):
    return {t.what: t.bytes for t in terms}


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_the_jacobian_block_is_the_rank_s_rows_times_the_weights(nranks):
    cfg = Config(method="lm", nu=20.0, width=300, points=1001, pc="none").validate()
    est = memory.estimate(cfg, nranks)
    m = 1001 + 2                                  # interior points and 2 boundary rows
    assert _terms(est.root)["Jacobian block"] == math.ceil(m / nranks) * 900 * 8
    # m > n = 900: forming JᵀJ (2mn²) costs more than 400 CG iterations (4mn each): the
    # normal form, whose Krylov vectors are in parameter space
    assert memory.solve_form(cfg, m, 900) == "normal"
    assert _terms(est.root)["Krylov vectors (normal solve)"] == memory.KRYLOV_VECTORS * 900 * 8
    # a single-level method without mg (no AMG set-up on rank 0): the same on every rank
    assert est.root == est.other


def test_the_direct_form_holds_the_gathered_rows_and_the_gram_matrix():
    cfg = Config(method="lm", nu=5.0, width=32).validate()     # m = 16 <= 256 < n = 96
    terms = _terms(memory.estimate(cfg, 2).root)
    m = cfg.points + 2
    assert terms["gathered Jacobian rows (direct solve)"] == m * 96 * 8
    assert terms["JJᵀ + λI and its factor (direct solve)"] == 2 * m * m * 8


def test_assembled_and_lanczos_terms_grow_with_their_options():
    lm = _terms(memory.estimate(Config(method="lm", width=1000, solve_form="assembled"
                                       ).validate(), 4).root)
    assert lm["JᵀJ + λI and its sum (assembled solve)"] == (2 * 3000 ** 2 + 750 * 3000) * 8
    arc = _terms(memory.estimate(Config(method="arc", width=1000, krylov_max_it=99
                                        ).validate(), 4).root)
    assert arc["Lanczos basis"] == (100 + memory.KRYLOV_VECTORS) * 750 * 8


def test_rank_0_alone_carries_the_amg_set_up():
    est = memory.estimate(Config(method="rlm", width=1000).validate(), 2)
    r2 = 1000 * 1000
    assert _terms(est.root)["AMG set-up: Gram blocks, auxiliary matrix, CSR copy"] == \
        3 * r2 * 8 + r2 * 8 + r2 * 12
    assert _terms(est.other)["AMG Gram blocks"] == 3 * r2 * 8
    assert est.root_bytes > est.other_bytes
    assert est.node_bytes(3) == est.root_bytes + 2 * est.other_bytes


def test_a_run_is_refused_only_when_its_node_is_short():
    est = memory.estimate(Config(method="rlm", width=64).validate(), 4)
    need = est.node_bytes(4)
    assert memory.shortage(est, 4, need) is None
    assert memory.shortage(est, 4, None) is None          # nothing known: no refusal
    message = memory.shortage(est, 4, need - 1)
    assert message.startswith("not enough memory: the run needs about ")
    assert f"for the 4 ranks of this node), but {memory.gigabytes(need - 1)} is available" \
        in message


def test_this_machine_reports_some_available_memory():
    available = memory.available_bytes()
    assert available is not None and available > 0


def test_the_sparse_amg_set_up_grows_like_r_k_not_r_squared():
    """--amg-couplings K: chunk buffers (d + 4) c r, the rank's kept couplings ⌈r/P⌉·2K and
    rank 0's gathered graph r·2K; doubling r at fixed K (and c r) doubles the graph terms."""
    def terms(width, nranks):
        cfg = Config(problem="fit", method="rlm", width=width, points=512,
                     amg_couplings=64).validate()
        est = memory.estimate(cfg, nranks)
        return _terms(est.root), _terms(est.other)

    root, other = terms(32768, 4)
    c = 32e6 // (3 * 32768 * 8)
    assert other["AMG set-up: Gram row chunk, its auxiliary rows and partition"] == \
        7 * c * 32768 * 8
    assert other["AMG set-up: kept couplings of the rank's rows"] == 8192 * 128 * 24
    assert root["AMG set-up: gathered sparse graph, its CSR copy and strength"] == \
        32768 * 128 * 48
    assert "AMG Gram blocks" not in other
    wider, _ = terms(65536, 4)
    assert wider["AMG set-up: gathered sparse graph, its CSR copy and strength"] == \
        2 * root["AMG set-up: gathered sparse graph, its CSR copy and strength"]


def test_an_impossible_width_is_refused_with_the_dense_set_up_named():
    """r = 2^16 with the dense graph needs 6 r² numbers on rank 0 (~200 GB): refused on a
    24 GB node, naming the set-up and its option; the sparse set-up of the same run fits."""
    dense = memory.estimate(Config(problem="fit", method="rlm", width=65536, points=512,
                                   amg_couplings=0).validate(), 2)
    message = memory.shortage(dense, 2, 24e9)
    assert message is not None
    assert "the largest item is the AMG set-up: Gram blocks, auxiliary matrix, CSR copy" in message
    assert "(set by --width)" in message
    sparse = memory.estimate(Config(problem="fit", method="rlm", width=65536,
                                    points=512).validate(), 2)
    assert memory.shortage(sparse, 2, 24e9) is None
    assert sparse.node_bytes(2) < 16e9 and sparse.root_bytes < 1.5 * sparse.other_bytes


def test_the_direct_form_counts_the_gathered_rows_of_the_coarse_levels_too():
    cfg = Config(method="rlm", nu=5.0, width=40, solve_form="direct").validate()
    terms = _terms(memory.estimate(cfg, 2).other)
    m, r = cfg.points + 2, 40
    coarse = sum(memory.coarse_widths(r, cfg.levels, cfg.min_width))
    assert terms["gathered Jacobian rows (direct solve)"] == m * 3 * r * 8
    assert terms["coarse levels' gathered Jacobian rows (direct solve, at most)"] == \
        m * 3 * coarse * 8


def test_the_sampled_rows_are_counted():
    cfg = Config(problem="fit", method="rlm", width=64, points=1000, amg_sample=100).validate()
    assert _terms(memory.estimate(cfg, 4).other)["AMG sampled Jacobian rows"] == 25 * 192 * 8


def test_the_two_level_preconditioner_counts_its_rows_j_p_and_coarse_matrices():
    """lm on the normal form with --pc mg or auto: J P (m_local × n_c) and 3 n_c² for the
    coarse matrix, PᵀP and the factor, n_c the weights of the widest coarse level, and the
    AMG set-up of its coarse space; none with --pc none or on the direct form."""
    def terms(**options):
        cfg = Config(method="lm", nu=20.0, width=300, points=1001, **options).validate()
        est = memory.estimate(cfg, 2)
        return _terms(est.root), _terms(est.other)

    m_local = math.ceil(1003 / 2)
    n_c = 3 * memory.coarse_widths(300, 2, Config().min_width)[0]
    for pc in ("mg", "auto"):
        root, other = terms(pc=pc)
        assert other["mg preconditioner: J P rows (at most)"] == m_local * n_c * 8
        assert other["mg preconditioner: coarse matrix, PᵀP and factor (at most)"] == \
            3 * n_c * n_c * 8
        assert "AMG set-up: Gram blocks, auxiliary matrix, CSR copy" in root
    root, _ = terms(pc="none")
    assert not any(what.startswith(("mg preconditioner", "AMG")) for what in root)
    direct, _ = terms(solve_form="direct")
    assert not any(what.startswith("mg preconditioner") for what in direct)


def test_rlm_s_preconditioners_sum_over_the_levels_that_have_one():
    cfg = Config(method="rlm", nu=20.0, width=300, points=1001, pc="mg").validate()
    widths = memory.coarse_widths(300, cfg.levels, cfg.min_width)
    assert len(widths) >= 2
    other = _terms(memory.estimate(cfg, 3).other)
    assert other["mg preconditioner: J P rows (at most)"] == \
        math.ceil(1003 / 3) * 3 * sum(widths) * 8


def test_pc_auto_counts_only_the_levels_where_it_may_switch_on():
    """r = 8192 in 1-D, 4 levels: the fine level (24576 weights) and the first coarse one are
    above AUTO_MG_MAX_WEIGHTS; only the preconditioner of the level below them is counted."""
    cfg = Config(problem="fit", method="rlm", width=8192, points=30000, levels=4).validate()
    assert memory.solve_form(cfg, 30000, 3 * 8192) == "normal"
    widths = [8192] + memory.coarse_widths(8192, cfg.levels, cfg.min_width)
    kept = [3 * below for above, below in zip(widths, widths[1:])
            if 3 * above <= AUTO_MG_MAX_WEIGHTS]
    assert kept and len(kept) < len(widths) - 1
    other = _terms(memory.estimate(cfg, 2).other)
    assert other["mg preconditioner: coarse matrix, PᵀP and factor (at most)"] == \
        3 * sum(c * c for c in kept) * 8
