"""Which model pays at a recursive slot: the decayed decrease-per-work record of each kind."""

from __future__ import annotations

import math

import numpy as np


class CostAwareChoice:
    """Which model pays at a recursive slot: the coarse one or the Taylor one.

    A *trial* of a kind k (Taylor, recursive) is its consecutive steps up to and
    including the first accepted one, at most ``patience`` steps: the rejections
    before an acceptance are how LM adapts λ, part of the price of that step,
    not a verdict on the kind.  For each kind the choice keeps the decayed sums
    D_k = Σ β^a log(f_before/f_after) and C_k = Σ β^a work over its past trials
    (a trial that ends without acceptance adds its cost and no decrease), and takes
    the kind of larger efficiency D_k/C_k.  Each kind is tried once before the
    comparison starts (the Taylor one first), and a kind refused ``retry`` slots in
    a row is tried again, so that both estimates follow the iteration; each retry
    that does not win the comparison back doubles that kind's wait, so a kind that
    keeps losing costs O(log k) trials over k slots.  The relative (log) decrease
    makes trials made at different losses comparable.

    The coarse model needs the neuron hierarchy, whose AMG set-up can cost more work than
    a whole LM run that converges in a few iterations (from spread weights).  A (re)build
    is therefore bought only when the Taylor steps are slow: when, at their rate D_t/C_t,
    the set-up's work would gain less than ``worth`` of log-decrease (a decade of the
    loss; :meth:`worth_building`).  From the seed's uniform weights LM's first steps
    barely move the loss and the hierarchy is built within a few steps; where LM gains
    orders of magnitude per step it is not built until that stops.
    """

    KINDS = ("taylor", "coarse")

    def __init__(self, decay: float = 0.5, retry: int = 8, patience: int = 4,
                 worth: float = math.log(10.0)):
        self.decay = decay
        self.worth = worth
        self.retry = retry
        self.patience = patience
        self.sums = np.full((2, 2), np.nan)   # rows: kinds; columns: D, C
        self.refused = np.zeros(2, dtype=int)   # slots in a row each kind was not taken
        self.wait = np.full(2, retry)           # slots a refused kind waits for a retry
        self.open = np.array([-1.0, 0.0, 0.0, 0.0])   # trial under way: kind, f_before, C, steps

    def prefers_coarse(self) -> bool:
        """Whether the next recursive slot should try the coarse model."""
        if self.open[0] >= 0:
            return self.open[0] == 1
        unknown = np.isnan(self.sums[:, 1])
        if unknown[0] or self.refused[0] >= self.wait[0]:
            return False
        if unknown[1] or self.refused[1] >= self.wait[1]:
            return True
        return self._coarse_is_cheaper()

    def worth_building(self, setup_work: float) -> bool:
        """Whether a set-up of ``setup_work`` pays: the Taylor steps' recorded efficiency
        D_t/C_t would gain less than ``worth`` with that work (True before any record)."""
        d_t, c_t = self.sums[0]
        return bool(np.isnan(d_t) or d_t * setup_work < self.worth * c_t)

    def _coarse_is_cheaper(self) -> bool:
        (d_t, c_t), (d_c, c_c) = self.sums
        return bool(d_c * c_t >= d_t * c_c)

    def record(self, kind: str, f_before: float, f_after: float, work: float) -> None:
        """Account one step of ``kind``; f_after = f_before if it was rejected.  A step of
        the other kind than the open trial's (the coarse model asked for, but not useful)
        closes that trial without decrease."""
        k = self.KINDS.index(kind)
        if self.open[0] >= 0 and self.open[0] != k:
            self._close(f_after=self.open[1])
        if self.open[0] < 0:
            self.open[:] = (k, f_before, 0.0, 0.0)
        self.open[2:] += (work, 1.0)
        if f_after < f_before or self.open[3] >= self.patience:
            self._close(f_after)

    def _close(self, f_after: float) -> None:
        k, f_before, work, _ = self.open
        k = int(k)
        gain = math.log(f_before / f_after) if f_after > 0 and f_before > f_after else 0.0
        retried = self.refused[k] >= self.wait[k]
        self.sums[k] = self.decay * np.nan_to_num(self.sums[k]) + (gain, work)
        if not np.isnan(self.sums).any():
            if self._coarse_is_cheaper() == (k == 1):
                self.wait[k] = self.retry
            elif retried:
                self.wait[k] *= 2
        self.refused[k] = 0
        self.refused[1 - k] += 1
        self.open[:] = (-1.0, 0.0, 0.0, 0.0)

    def state(self) -> dict[str, np.ndarray]:
        """The choice's memory as named arrays (checkpointed)."""
        return {"sums": self.sums.copy(), "refused": self.refused.copy(),
                "wait": self.wait.copy(), "open": self.open.copy()}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back :meth:`state`; what it lacks keeps its initial value (a fresh run)."""
        for name in ("sums", "refused", "wait", "open"):
            if name in arrays:
                setattr(self, name, np.array(arrays[name], dtype=getattr(self, name).dtype))
