"""The ``auto`` solve form's rule (mlpar.linalg.forms): its cost and memory boundaries, the
CG form it falls back to, and the forms it gives the 1-D and 2-D problems."""

import pytest

from mlpar.linalg.forms import AUTO_MG_MAX_WEIGHTS, CG_ITERATIONS, MAX_NUMBERS, auto_form


def _cg(m, n):
    """Flops of CG_ITERATIONS CG iterations: a product with J and one with Jᵀ each."""
    return CG_ITERATIONS * 4.0 * m * n


@pytest.mark.parametrize("m", [400, 1521, 3721, 100_000])
def test_the_normal_gram_matrix_is_factorised_up_to_the_cost_of_400_cg_iterations(m):
    # m >= n: JᵀJ + λI costs 2mn² + n³/3 + 2n²; the last n at or below the CG budget
    def direct_ok(n):
        return 2.0 * m * n * n + n**3 / 3.0 + 2.0 * n * n <= _cg(m, n)

    last = max(n for n in range(1, min(m, 801) + 1) if direct_ok(n))
    assert auto_form(m, last) == "direct"
    if last < m:
        assert auto_form(m, last + 1) == "normal"
    # about n = 800 when m >> n (2n <= 1600), less when n is close to m
    assert last <= 800 and (m < 10_000 or last >= 790)


@pytest.mark.parametrize("n", [800, 1536, 20_000])
def test_the_row_gram_matrix_is_factorised_up_to_the_cost_of_400_cg_iterations(n):
    # m <= n and g = JᵀF: JJᵀ + λI costs 2m²n + m³/3 + 2m² + 2mn
    def direct_ok(m):
        return 2.0 * m * m * n + m**3 / 3.0 + 2.0 * m * m + 2.0 * m * n <= _cg(m, n)

    last = max(m for m in range(1, 801) if direct_ok(m))
    assert auto_form(last, n) == "direct"
    assert auto_form(last + 1, n) == ("residual" if last + 1 < n else "normal")
    assert auto_form(last + 1, n, pc="jacobi") == "normal"  # residual takes no pc


def test_the_direct_form_must_fit_2_to_the_25_numbers_per_rank():
    # cheap in flops (m = 100 rows), but the gathered rows and JJᵀ: m·n + m² numbers
    m = 100
    n_fits = (MAX_NUMBERS - m * m) // m
    assert auto_form(m, n_fits) == "direct"
    assert auto_form(m, n_fits + 1) == "residual"


def test_without_a_least_squares_gradient_only_the_normal_gram_matrix_is_formed():
    # m < n, g not JᵀF: JJᵀ cannot give the step; JᵀJ (n = 1536) costs far more than CG
    assert auto_form(61, 1536, least_squares_gradient=False) == "normal"
    assert auto_form(61, 60, least_squares_gradient=False) == "direct"


def test_the_forms_of_the_1d_reference_runs_and_the_2d_problems():
    # 1-D poisson at ν = 20: 59 interior + 2 boundary rows, width 512 and every narrower
    # coarse level of rlm: direct, as the seed's rule (m <= 256 or n <= 300) chose
    assert all(auto_form(61, 3 * r) == "direct" for r in range(1, 513))
    # helmholtz2d (1521 rows) and poisson2d at ν = 20 (3721 rows), width 128: n = 512
    assert auto_form(1521, 512) == "direct" and auto_form(3721, 512) == "direct"
    # width 512 in 2D (n = 2048): CG, which the 1-D rule chose too
    assert auto_form(1521, 2048) == "residual" and auto_form(3721, 2048) == "normal"


def test_pc_auto_takes_the_residual_form_where_it_may_not_turn_mg_on():
    # m = 1000 rows: the direct form costs more than 400 CG iterations at any n > m
    m, widest = 1000, AUTO_MG_MAX_WEIGHTS
    assert auto_form(m, widest, True, "auto") == "normal"          # mg may come: normal
    assert auto_form(m, widest + 1, True, "auto") == "residual"    # it may not: as none
    assert auto_form(m, widest + 1, True, "mg") == "normal"        # asked for: normal
