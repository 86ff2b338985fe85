"""How much memory a run needs on each rank, by arithmetic alone, before anything is allocated.

The estimate counts the arrays whose size grows with the problem (8-byte floats):

* the local Jacobian block, m_local × n, of the trained network, and one block
  m_local × n_l for each coarse level of rlm / rarc (the narrower networks or the
  restricted columns J P; their widths are bounded by the coarsening ratio
  :attr:`MultilevelParameters.max_coarse_ratio` of each level to the next);
* the matrices of the regularised solve of the fine level (the form ``auto`` chooses as
  :meth:`mlpar.linalg.linsolve.RegularizedSolver.choose_form` does): ``direct`` holds the
  gathered rows of J (m × n) and JJᵀ and its factor (m × m) on every rank, or JᵀJ, its
  sum and its factor (n × n); ``assembled`` JᵀJ and its sum (n × n) plus the rank's rows of
  the PETSc matrix; the Krylov forms a few vectors; ARC's Lanczos basis holds
  ``krylov_max_it`` + 1 vectors of the rank's share of the n weights;
* the AMG set-up of rlm / rarc (its largest level, the trained network's), dense
  (``--amg-couplings 0``): the d + 2 r × r Gram blocks of the neurons on every rank, and on
  rank 0 their sum, the auxiliary matrix and its CSR copy (values and column indices); sparse
  (K couplings a neuron): on every rank one chunk of c rows of the Gram blocks and the chunk's
  auxiliary rows and partition indices ((d + 4) c r numbers, c from
  :func:`mlpar.multilevel.amg.chunk_rows`), and the kept couplings of its chunks (2K per row
  of its ⌈r/P⌉ rows, as row, column and value), on rank 0 also the whole kept graph gathered
  (2K r entries) with its CSR copy and strength matrix: O(r K), no r²; with ``--amg-sample``
  the sampled rows of J are copied (S/P rows);
* the two-level preconditioner ``mg`` (``--pc mg``, or ``auto`` in case it switches on:
  up to :data:`mlpar.linalg.forms.AUTO_MG_MAX_WEIGHTS` weights) of
  the Krylov forms ``normal`` and ``assembled``, on each level that has one (lm's fine level;
  every level of rlm / rarc above the coarsest): the rows J P (m_local × n_c, n_c the
  weights of the level below), and the coarse matrix (JP)ᵀ(JP) + λPᵀP with PᵀP and the
  Cholesky factor (3 n_c²); lm then also pays the AMG set-up of its coarse space;
* the RMSE test grid (points, network values, true solution), on every rank;
* the interpreter with its libraries (:data:`BASELINE`).

The history grows by about :data:`RECORD` bytes an iteration as the run goes; it is not
counted up front (a large ``--max-iter`` is a limit, rarely reached).

:func:`available_bytes` reads what this node has free; the command line refuses a run whose
estimate, for all the ranks sharing rank 0's node, exceeds it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from mlpar.linalg.forms import auto_form, auto_may_precondition
from mlpar.model.problems import make_problem, row_count
from mlpar.multilevel.parameters import MultilevelParameters

DOUBLE = 8
#: Python, numpy, scipy, petsc4py, h5py and MPI of one rank (measured resident size ≈ 120 MB).
BASELINE = 150e6
#: Bytes of one history record (a Python object of 13 fields).
RECORD = 1000
#: Vectors of length n or m_local a Krylov solve keeps (solution, rhs, CG's r, p, w, ...).
KRYLOV_VECTORS = 8


@dataclass(frozen=True)
class Term:
    """One item of the estimate: what it is, its bytes, and the options that size it."""

    what: str
    bytes: float
    options: str


@dataclass(frozen=True)
class Estimate:
    """The memory of rank 0 and of every other rank, item by item."""

    root: tuple[Term, ...]
    other: tuple[Term, ...]
    nranks: int

    @property
    def root_bytes(self) -> float:
        return sum(t.bytes for t in self.root)

    @property
    def other_bytes(self) -> float:
        return sum(t.bytes for t in self.other)

    def node_bytes(self, node_ranks: int) -> float:
        """What rank 0's node needs when ``node_ranks`` ranks (rank 0 included) share it."""
        return self.root_bytes + (node_ranks - 1) * self.other_bytes

    def largest(self) -> Term:
        """Rank 0's largest item."""
        return max(self.root, key=lambda t: t.bytes)


def coarse_widths(width: int, levels: int, min_width: int) -> list[float]:
    """The widest coarse levels a hierarchy of ``levels`` levels can have: each at most
    :attr:`MultilevelParameters.max_coarse_ratio` of the one above, none below
    ``min_width`` (the recursion stops coarsening there)."""
    out: list[float] = []
    ratio = MultilevelParameters.max_coarse_ratio
    while len(out) < levels - 1 and (out[-1] if out else width) * ratio >= min_width:
        out.append((out[-1] if out else width) * ratio)
    return out


def solve_form(cfg, m: int, n: int) -> str:
    """The form of the fine level's regularised solve (``auto`` resolved as the solver does,
    by :func:`mlpar.linalg.forms.auto_form`)."""
    if cfg.method in ("arc", "rarc"):
        return "lanczos"
    if cfg.solve_form != "auto":
        return cfg.solve_form
    return auto_form(m, n, True, cfg.pc)


def _solve_terms(cfg, m: int, m_local: int, n: int, nranks: int) -> list[Term]:
    form = solve_form(cfg, m, n)
    n_local = math.ceil(n / nranks)
    if form == "lanczos":
        return [Term("Lanczos basis", (cfg.krylov_max_it + 1 + KRYLOV_VECTORS) * n_local * DOUBLE,
                     "--krylov-max-it, --width")]
    if form == "direct" and m <= n:
        return [Term("gathered Jacobian rows (direct solve)", m * n * DOUBLE,
                     "--points/--nu, --width"),
                Term("JJᵀ + λI and its factor (direct solve)", 2 * m * m * DOUBLE,
                     "--points/--nu, --solve-form")]
    if form == "direct":
        return [Term("JᵀJ + λI, its sum and factor (direct solve)", 3 * n * n * DOUBLE,
                     "--width, --solve-form")]
    if form == "assembled":
        return [Term("JᵀJ + λI and its sum (assembled solve)",
                     (2 * n * n + n_local * n) * DOUBLE, "--width, --solve-form")]
    size = m_local if form == "residual" else n
    return [Term(f"Krylov vectors ({form} solve)", KRYLOV_VECTORS * size * DOUBLE,
                 "--width")]


def _two_level_terms(cfg, m: int, m_local: int, n: int) -> list[Term]:
    """The ``mg`` preconditioner's J P rows and coarse matrices, summed over the levels that
    have one (none when ``--pc`` cannot turn it on or the form takes no preconditioner)."""
    if cfg.pc not in ("mg", "auto") or solve_form(cfg, m, n) not in ("normal", "assembled"):
        return []
    multilevel = cfg.method in ("rlm", "rarc")
    widths = [cfg.width] + coarse_widths(cfg.width, cfg.levels if multilevel else 2,
                                         cfg.min_width)
    per_neuron = n / cfg.width
    coarse_n = [per_neuron * below for above, below in zip(widths, widths[1:])
                if cfg.pc == "mg" or auto_may_precondition(math.ceil(per_neuron * above))]
    if not coarse_n:
        return []
    options = "--pc, --width" + (", --levels" if multilevel else "")
    return [Term("mg preconditioner: J P rows (at most)", m_local * sum(coarse_n) * DOUBLE,
                 "--points/--nu, " + options),
            Term("mg preconditioner: coarse matrix, PᵀP and factor (at most)",
                 3 * sum(c * c for c in coarse_n) * DOUBLE, options)]


def estimate(cfg, nranks: int) -> Estimate:
    """The memory per rank of the run ``cfg`` (a validated :class:`mlpar.config.Config`) on
    ``nranks`` ranks."""
    problem = make_problem(cfg.problem, cfg.nu, cfg.a1, cfg.a2, cfg.k)
    r = cfg.width
    n = cfg.layout.size
    m = row_count(problem, cfg.points)[1]
    m_local = math.ceil(m / nranks)
    data = "--points/--nu, --width"
    every = [Term("Jacobian block", m_local * n * DOUBLE, data)]
    multilevel = cfg.method in ("rlm", "rarc")
    if multilevel:
        coarse = sum(coarse_widths(r, cfg.levels, cfg.min_width))
        every.append(Term("coarse levels' Jacobian blocks (at most)",
                          m_local * n / r * coarse * DOUBLE, data + ", --levels"))
    every += _solve_terms(cfg, m, m_local, n, nranks)
    if multilevel and solve_form(cfg, m, n) == "direct" and m <= n:
        every.append(Term("coarse levels' gathered Jacobian rows (direct solve, at most)",
                          m * n / r * coarse * DOUBLE, "--points/--nu, --width, --levels"))
    mg = _two_level_terms(cfg, m, m_local, n)
    every += mg
    every.append(Term("training vectors", 4 * (m_local + n) * DOUBLE, data))
    every.append(Term("test grid", 5 * cfg.test_points * DOUBLE, "--test-points"))
    every.append(Term("interpreter and libraries", BASELINE, "the number of ranks per node"))
    root = list(every)
    coarsens = multilevel or bool(mg)
    if coarsens and cfg.amg_sample and cfg.amg_sample < m:
        sampled = Term("AMG sampled Jacobian rows", math.ceil(cfg.amg_sample / nranks) * n
                       * DOUBLE, "--amg-sample, --width")
        every.append(sampled)
        root.append(sampled)
    if coarsens and cfg.amg_couplings > 0:
        every_amg, root_amg = _sparse_amg_terms(cfg.layout.n_blocks, r, cfg.amg_couplings,
                                                nranks)
        every += every_amg
        root += every_amg + root_amg
    elif coarsens:
        blocks = cfg.layout.n_blocks * r * r * DOUBLE
        every.append(Term("AMG Gram blocks", blocks, "--width"))
        root.append(Term("AMG set-up: Gram blocks, auxiliary matrix, CSR copy",
                         blocks + r * r * DOUBLE + r * r * (DOUBLE + 4), "--width"))
    return Estimate(tuple(root), tuple(every), nranks)


#: Bytes of one kept coupling: row and column (int64) and value.
COUPLING = 3 * 8


def _sparse_amg_terms(n_blocks: int, r: int, k: int, nranks: int
                      ) -> tuple[list[Term], list[Term]]:
    """The sparse AMG set-up's terms: (every rank's, rank 0's in addition)."""
    # imported here: the lm command never imports pyamg
    from mlpar.multilevel.amg import chunk_rows

    c = chunk_rows(r, n_blocks)
    kept = min(2 * k, r)
    options = "--amg-couplings, --width"
    every = [Term("AMG set-up: Gram row chunk, its auxiliary rows and partition",
                  (n_blocks + 4) * c * r * DOUBLE, "--width"),
             Term("AMG set-up: kept couplings of the rank's rows",
                  math.ceil(r / nranks) * kept * COUPLING, options)]
    root = [Term("AMG set-up: gathered sparse graph, its CSR copy and strength",
                 r * kept * (COUPLING + 12 + 12), options)]
    return every, root


def _meminfo_available() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_available() -> float | None:
    """What the cgroup (v2) of this process may still allocate, if it is limited."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            current = float(fh.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else float(limit) - current


def available_bytes() -> float | None:
    """Memory this node can still give (MemAvailable, bounded by a cgroup limit; the
    physical memory where /proc is absent); None when it cannot be told."""
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not found:
        try:
            found = [float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))]
        except (ValueError, OSError):
            return None
    return min(found)


def gigabytes(value: float) -> str:
    """``value`` bytes in words (``12.3 GB``, ``45 MB``)."""
    if value >= 1e9:
        return f"{value / 1e9:.3g} GB"
    return f"{value / 1e6:.3g} MB"


def shortage(est: Estimate, node_ranks: int, available: float | None) -> str | None:
    """The refusal message when the ranks on rank 0's node need more than ``available``
    bytes (None: it fits, or nothing is known about the memory)."""
    need = est.node_bytes(node_ranks)
    if available is None or need <= available:
        return None
    big = est.largest()
    node = f" ({gigabytes(need)} for the {node_ranks} ranks of this node)" if node_ranks > 1 else ""
    return (f"not enough memory: the run needs about {summary(est)}{node}, but "
            f"{gigabytes(available)} is available; the largest item is the {big.what}, "
            f"{gigabytes(big.bytes)} (set by {big.options})")


def summary(est: Estimate) -> str:
    """The estimate per rank in words (the banner's)."""
    if est.nranks == 1:
        return gigabytes(est.root_bytes)
    return (f"{gigabytes(est.root_bytes)} on rank 0 and {gigabytes(est.other_bytes)} on each "
            f"other rank")
