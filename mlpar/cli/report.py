"""Progress lines and the final summary, printed by rank 0 only."""

from __future__ import annotations

import sys
import time

from mlpar.optim.driver import Record

HEADER = (f"{'iter':>6} {'level':>5} {'loss':>11} {'|grad|':>10} {'lambda':>9} {'rho':>9} "
          f"{'acc':>3} {'krylov':>6} {'pc':>7} {'time[s]':>8}")


def format_record(rec: Record) -> str:
    """One fixed-width line: iteration, level, loss, ‖g‖, λ, ρ, accepted, Krylov iterations
    (KSP for lm/rlm, new Lanczos products for arc/rarc), their preconditioner (``--pc auto``
    shows where it turns ``mg`` on; blank without a Krylov solve), time."""
    return (f"{rec.iteration:6d} {rec.level:5d} {rec.loss:11.4e} {rec.gnorm:10.3e} {rec.lam:9.2e} "
            f"{rec.rho:9.2e} {'yes' if rec.accepted else 'no':>3} {rec.ksp_its:6d} "
            f"{rec.pc:>7} {rec.time:8.2f}")


class Progress:
    """Prints a line at most every ``interval`` seconds (and the first one) on rank 0."""

    def __init__(self, enabled: bool, interval: float, stream=sys.stdout):
        self.enabled = enabled
        self.interval = interval
        self.stream = stream
        self._last = None
        self._pending = None

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def record(self, rec: Record) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._last is None:
            self.say(HEADER)
        if self._last is None or now - self._last >= self.interval:
            self.say(format_record(rec))
            self._last = now
            self._pending = None
        else:
            self._pending = rec

    def flush(self) -> None:
        """Print the last record if it was held back by the pace."""
        if self._pending is not None:
            self.say(format_record(self._pending))
            self._pending = None
