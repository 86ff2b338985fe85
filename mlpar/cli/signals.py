"""SIGTERM, SIGUSR1 and SIGINT ask the run to checkpoint and stop at the next iteration.

A handler only records the signal; at each iteration boundary all ranks agree
(``Comm.any``) whether any of them was signalled, so they stop together.  Under SLURM,
``#SBATCH --signal=B:USR1@120`` plus a trap that forwards USR1 to the job step gives the
run time to write its checkpoint before the time limit (see jobs/train.sbatch).
"""

from __future__ import annotations

import signal

from mlpar.parallel.comm import Comm

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class StopRequest:
    """Installs the handlers; ``should_stop(state)`` is the collective test of the driver."""

    def __init__(self, comm: Comm):
        self.comm = comm
        self.received: int | None = None
        self._previous = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def should_stop(self, state) -> str | None:
        """``interrupted`` when any rank was signalled, else None (collective)."""
        return "interrupted" if self.comm.any(self.received is not None) else None

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
