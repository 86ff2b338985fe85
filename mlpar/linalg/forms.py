"""The rule of the ``auto`` solve form: factorise a Gram matrix or run CG.

One regularised Gauss–Newton solve (JᵀJ + λI)s = −g with J of m rows and n columns costs,
in flops,

* by CG (``normal`` in parameter space or ``residual`` in row space): 4mn per iteration
  (one product with J and one with Jᵀ);
* by ``direct`` with the n × n matrix JᵀJ + λI: 2mn² to form it, n³/3 to factorise, 2n²
  to solve;
* by ``direct`` with the m × m matrix JJᵀ + λI (when g = JᵀF and m <= n; s = −Jᵀy): 2m²n
  to form it, m³/3 to factorise, 2m² + 2mn to solve.

``auto`` takes ``direct`` when that cost is at most :data:`CG_ITERATIONS` CG iterations'
worth (4mn each; CG at rtol 1e-10 took 190–440 iterations on the 1-D problems and 1300–1800
on the 2-D ones, docs/notes/2026-12-2d.md) and the numbers the direct form adds per rank
(the Gram matrix, and for JJᵀ the gathered m × n rows) are at most :data:`MAX_NUMBERS`;
otherwise the CG form of today: ``residual`` when g = JᵀF, m < n and no parameter-space
preconditioner is asked for (``--pc auto`` asks for one only up to
:data:`AUTO_MG_MAX_WEIGHTS` weights), else ``normal``.  Dropping the lower-order terms, the cost test
is 2n + n²/(3m) <= 1600 for JᵀJ and 2m + m²/(3n) <= 1600 for JJᵀ.

No PETSc here: :mod:`mlpar.memory` applies the same rule without importing the solver.
"""

from __future__ import annotations

#: ``direct`` when forming and factorising costs no more than this many CG iterations.
CG_ITERATIONS = 400
#: ... and the direct form holds at most this many extra numbers per rank (256 MiB).
MAX_NUMBERS = 2**25
#: ``--pc auto`` turns ``mg`` on only for at most this many weights: its coarse matrix, PᵀP
#: and their factor are dense n_c × n_c on every rank (n_c up to 0.8 n: 3 × 1.4 GB here).
AUTO_MG_MAX_WEIGHTS = 16384


def auto_may_precondition(n: int) -> bool:
    """Whether ``--pc auto`` may turn ``mg`` on for a level of n weights."""
    return n <= AUTO_MG_MAX_WEIGHTS


def direct_cost(m: int, n: int, least_squares_gradient: bool = True) -> tuple[float, int]:
    """(flops, numbers per rank) of one ``direct`` solve: the m × m system JJᵀ + λI when
    g = JᵀF and m <= n, else the n × n system JᵀJ + λI (see the module docstring)."""
    if least_squares_gradient and m <= n:
        return 2.0 * m * m * n + m**3 / 3.0 + 2.0 * m * m + 2.0 * m * n, m * m + m * n
    return 2.0 * m * n * n + n**3 / 3.0 + 2.0 * n * n, n * n


def auto_form(m: int, n: int, least_squares_gradient: bool = True, pc: str = "none") -> str:
    """The form ``auto`` stands for with m residual rows and n weights: ``direct``,
    ``residual`` or ``normal`` (the rule of the module docstring)."""
    flops, numbers = direct_cost(m, n, least_squares_gradient)
    if flops <= CG_ITERATIONS * 4.0 * m * n and numbers <= MAX_NUMBERS:
        return "direct"
    unpreconditioned = pc == "none" or (pc == "auto" and not auto_may_precondition(n))
    if least_squares_gradient and m < n and unpreconditioned:
        return "residual"
    return "normal"
