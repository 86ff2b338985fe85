"""The neuron hierarchy below the trained network: a list of coarse levels, plain data.

Level l − 1 is obtained from level l by Ruge–Stüben coarsening of the neurons
(:mod:`mlpar.multilevel.amg`) of the network linearised at x_k; it holds the
transfer P_l (r_l × r_{l−1}, applied to every parameter block), the narrower
network's objective and its own subproblem solver.  Rank 0 coarsens and
broadcasts, so every rank holds the same operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from mlpar.multilevel import amg, models
from mlpar.multilevel.parameters import MultilevelParameters
from mlpar.protocols import Linearization


def neuron_transfer(objective, lin: Linearization, prm: MultilevelParameters,
                    orthonormal: bool = False) -> amg.Transfer | None:
    """Ruge–Stüben coarsening of the neurons of ``objective``'s network linearised in ``lin``
    (collective: rank 0 coarsens the neuron graph, dense or sparse (:func:`sparse_graph`),
    orthonormalises the basis of range(P) if asked, and broadcasts); None when coarsening
    stalls (no coarser level).  With ``prm.amg_sample`` the graph comes from a fixed sample of
    the training rows (:func:`mlpar.multilevel.amg.sample_rows`)."""
    comm = objective.comm
    layout = objective.layout
    objective.flops.add_evaluation(transfer_work(objective, prm))
    J = _sampled_rows(comm, lin.J, objective.m, prm.amg_sample)
    transfer = None
    if prm.amg_couplings > 0:
        graph = sparse_graph(comm, J, layout, prm.amg_couplings)
    else:
        blocks = comm.sum_to_root(amg.gram_blocks(J, layout))
        graph = None if blocks is None else amg.auxiliary_matrix(blocks)
    if graph is not None:
        coarsen = amg.coarsen_graph if prm.amg_couplings > 0 else amg.coarsen
        transfer = coarsen(graph, theta=prm.theta, strength=prm.strength,
                           interpolation=prm.interpolation, blocks=layout.n_blocks)
        if amg.stalled(transfer, prm.max_coarse_ratio) or transfer.widths[1] < 1:
            transfer = None
        elif orthonormal:
            transfer = amg.orthonormalized(transfer)
    return comm.bcast(transfer)


def transfer_work(objective, prm: MultilevelParameters) -> float:
    """What :func:`neuron_transfer` of ``objective``'s neurons costs, in flop equivalents
    (:func:`mlpar.multilevel.amg.setup_work` of the rows the graph is estimated from)."""
    rows = objective.m if prm.amg_sample <= 0 else min(objective.m, prm.amg_sample)
    return amg.setup_work(rows, objective.layout, prm.amg_couplings)


def _sampled_rows(comm, J: np.ndarray, m: int, sample: int) -> np.ndarray:
    """The local rows of J that are in the sample of ``sample`` of the m global rows (all of J
    when the sample is every row)."""
    if sample <= 0 or sample >= m:
        return J
    lo = comm.offset(J.shape[0])
    rows = amg.sample_rows(m, sample)
    mine = rows[(rows >= lo) & (rows < lo + J.shape[0])] - lo
    return J[mine]


def sparse_graph(comm, J: np.ndarray, layout, couplings: int) -> sp.csr_matrix | None:
    """The neuron graph A = Σ_x A_xx/‖A_xx‖∞ with only ``couplings`` strongest couplings per
    row (:func:`mlpar.multilevel.amg.strongest_couplings`), on rank 0 (None elsewhere);
    collective, and no rank holds an r × r array.

    The rows of A are formed in chunks I of :func:`mlpar.multilevel.amg.chunk_rows` rows:
    every rank computes J_x[:, I]ᵀJ_x over its rows and the chunk is summed on its owner
    (chunk k on rank k mod P).  A first pass gives the norms ‖A_xx‖∞ (the largest absolute
    row sum of each block, a max over ranks), a second the same chunks again, of which the
    owner keeps the strongest couplings; rank 0 gathers them (at most 2K per row).
    """
    r = layout.width
    c = amg.chunk_rows(r, layout.n_blocks)
    starts = range(0, r, c)
    buf = np.empty((layout.n_blocks, c, r))

    def chunks():
        for k, lo in enumerate(starts):
            hi = min(lo + c, r)
            rows = amg.gram_rows(J, layout, lo, hi, out=buf[:, :hi - lo])
            if hi - lo < c:
                rows = np.ascontiguousarray(rows)
            yield lo, comm.sum_to(rows, k % comm.size)

    local = np.zeros(layout.n_blocks)
    for _, rows in chunks():
        if rows is not None:
            local = np.maximum(local, amg.row_norms(rows))
    norms = comm.maximum(local)
    kept = [amg.strongest_couplings(rows, norms, lo, couplings)
            for lo, rows in chunks() if rows is not None]
    parts = [np.concatenate([k[j] for k in kept]) if kept else
             np.empty(0, dtype=np.float64 if j == 2 else np.int64) for j in range(3)]
    gathered = [comm.gather_to_root(part) for part in parts]
    if not comm.is_root:
        return None
    return amg.sparse_graph(*gathered, r)


def sparse_arrays(name: str, P: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The CSR matrix ``P`` as named arrays ``{name}_data``, ``_indices``, ``_indptr`` and
    ``_shape`` (for a checkpoint); :func:`sparse_from_arrays` takes it back."""
    return {f"{name}_data": P.data, f"{name}_indices": P.indices, f"{name}_indptr": P.indptr,
            f"{name}_shape": np.array(P.shape)}


def sparse_from_arrays(name: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """The CSR matrix that :func:`sparse_arrays` stored under ``name``."""
    return sp.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"],
                          arrays[f"{name}_indptr"]), shape=tuple(arrays[f"{name}_shape"]))


@dataclass
class Level:
    """One coarse level: the transfer from it to the level above, its narrower network's
    objective, and its solver."""

    transfer: amg.Transfer
    objective: object
    solver: object

    @property
    def width(self) -> int:
        return self.transfer.widths[1]


class Hierarchy:
    """The coarse levels below the trained network, finest first.

    ``levels[j]`` is level L−j−1; its transfer maps it to level L−j.  ``built_at`` is the
    fine iteration of the last build (−1: none yet).
    """

    def __init__(self, fine, make_solver: Callable, prm: MultilevelParameters):
        self.fine = fine
        self.comm = fine.comm
        self.make_solver = make_solver
        self.prm = prm
        self.levels: list[Level] = []
        self.built_at = -1
        self.built_from: Linearization | None = None
        self.on_build: Callable[[Hierarchy], None] | None = None
        """Called after every build (the command line prints the first level table)."""

    def __repr__(self) -> str:
        """The level table: width, parameters, nonzeros of P and coarsening ratio per level."""
        rows = [f"{'level':>5} {'width':>7} {'params':>8} {'nnz(P)':>8} {'ratio':>6}",
                f"{len(self.levels):5d} {self.fine.layout.width:7d} {self.fine.n:8d} "
                f"{'':>8} {'':>6}"]
        above = self.fine.layout.width
        for j, level in enumerate(self.levels):
            rows.append(f"{len(self.levels) - j - 1:5d} {level.width:7d} {level.objective.n:8d} "
                        f"{level.transfer.P.nnz:8d} {level.width / above:6.3f}")
            above = level.width
        return "\n".join(rows)

    def destroy(self) -> None:
        for level in self.levels:
            level.solver.destroy()
        self.levels = []

    @property
    def widths(self) -> list[int]:
        return [self.fine.layout.width] + [level.width for level in self.levels]

    def setup_work(self) -> float:
        """The estimated work of coarsening the trained network's neurons: the largest part
        of a build, whose coarser levels have fewer neurons."""
        return transfer_work(self.fine, self.prm)

    def _transfer_at(self, objective, lin: Linearization) -> amg.Transfer | None:
        """Coarsen the neurons of ``objective``'s network linearised in ``lin`` (None: no
        coarser level)."""
        return neuron_transfer(objective, lin, self.prm, self.prm.coarse_model != "network"
                               and self.prm.galerkin_basis == "orthonormal")

    def build(self, lin: Linearization, iteration: int) -> None:
        """Build every level below the fine one from the linearisation ``lin`` at x_k."""
        self.destroy()
        self.built_at = iteration
        self.built_from = lin
        objective = self.fine
        while len(self.levels) + 1 < self.prm.levels and objective.layout.width > self.prm.min_width:
            transfer = self._transfer_at(objective, lin)
            if transfer is None:
                break
            self._add_level(transfer)
            if len(self.levels) + 1 < self.prm.levels:
                objective, y0 = self.coarse_model(len(self.levels) - 1, objective, lin)
                lin = objective.linearize(y0)
        if self.on_build is not None:
            self.on_build(self)

    def state(self, lin: Linearization) -> dict[str, np.ndarray]:
        """The hierarchy as named arrays (checkpointed) at the fine linearisation ``lin``; empty
        if none is built.  A resumed run needs it even when it is rebuilt at every recursive
        attempt: the screening of the next rebuild reads it; ``built_here`` says whether it was
        built at ``lin`` itself (after a rejected step a due rebuild then keeps it).  The state
        of level j's solver (``--pc auto``'s switch) is under the prefix ``L{j}_``."""
        if self.built_at < 0:
            return {}
        out = {"built_at": np.array([self.built_at]),
               "built_here": np.array([int(self.built_from is lin)])}
        for j, level in enumerate(self.levels):
            t = level.transfer
            out.update(sparse_arrays(f"P{j}", t.P))
            out.update({f"P{j}_coarse": t.coarse, f"P{j}_alpha": np.array([t.alpha])})
            out.update({f"L{j}_{k}": v for k, v in level.solver.state(None).items()})
        return out

    def restore(self, arrays: dict[str, np.ndarray], lin: Linearization) -> None:
        """Rebuild the levels that :meth:`state` gave at ``lin`` (so a resumed run reuses them)."""
        self.destroy()
        if "built_at" not in arrays:
            return
        self.built_at = int(arrays["built_at"][0])
        if "built_here" in arrays and arrays["built_here"][0]:
            self.built_from = lin
        j = 0
        while f"P{j}_data" in arrays:
            self._add_level(amg.Transfer(sparse_from_arrays(f"P{j}", arrays),
                                         arrays[f"P{j}_coarse"],
                                         float(arrays[f"P{j}_alpha"][0]),
                                         self.fine.layout.n_blocks))
            prefix = f"L{j}_"
            self.levels[j].solver.restore({k[len(prefix):]: v for k, v in arrays.items()
                                           if k.startswith(prefix)}, self.levels[j].objective,
                                          None)
            j += 1

    def _add_level(self, transfer: amg.Transfer) -> None:
        base = self.fine.narrower(transfer.widths[1])
        self.levels.append(Level(transfer, base, self.make_solver(base)))

    def coarse_model(self, j: int, objective, lin: Linearization):
        """The coarse objective of level L−j−1 at the linearisation ``lin`` of ``objective``
        (level L−j), and its x_0.

        ``galerkin``: the level's Taylor model restricted to range(P), from s = 0.
        ``restricted``: the level's own loss on x_k + range(P), from y = 0.
        ``network``: the narrower network f^{l−1} from x_0 (see :meth:`start`); the caller
        adds the first-order correction.
        """
        level = self.levels[j]
        if self.prm.coarse_model == "network":
            return level.objective, self.start(j, lin.x)
        model = models.galerkin if self.prm.coarse_model == "galerkin" else models.restricted
        return model(objective, lin, level.transfer), np.zeros(level.objective.n)

    def start(self, j: int, x: np.ndarray) -> np.ndarray:
        """The coarse starting point x_0 of level L−j−1 from the level-(L−j) iterate x."""
        t = self.levels[j].transfer
        self._charge(t)
        if self.prm.coarse_start == "injection":
            return t.inject(x)
        return t.collect(x) if self.prm.coarse_start == "collect" else t.restrict(x)

    def restrict(self, j: int, g: np.ndarray) -> np.ndarray:
        self._charge(self.levels[j].transfer)
        return self.levels[j].transfer.restrict(g)

    def prolong(self, j: int, y: np.ndarray) -> np.ndarray:
        self._charge(self.levels[j].transfer)
        return self.levels[j].transfer.prolong(y)

    def _charge(self, t: amg.Transfer) -> None:
        """A transfer applies P or Pᵀ to every parameter block: 2·(d+2)·nnz(P) flops."""
        self.fine.flops.add(2.0 * t.blocks * t.P.nnz)
