"""The communication layer: every collective mlpar performs goes through here.

Rows of the least-squares problem (training points) are distributed in
contiguous blocks; parameters are small and replicated.  Sums of local
contributions use ``Allreduce`` on buffers; decisions taken from clocks, files
or signals are made on rank 0 and broadcast, so all ranks always agree.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def block_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """Contiguous block [lo, hi) of 0..n−1 owned by ``rank`` of ``size``.

    The first n mod size ranks get one item more; a rank may own nothing.
    """
    q, extra = divmod(n, size)
    lo = rank * q + min(rank, extra)
    return lo, lo + q + (1 if rank < extra else 0)


class Comm:
    """A thin wrapper of an MPI communicator with the few collectives mlpar needs."""

    def __init__(self, comm: MPI.Comm):
        self.mpi = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def block_range(self, n: int) -> tuple[int, int]:
        """This rank's block of n items."""
        return block_range(n, self.size, self.rank)

    def block_counts(self, n: int) -> list[int]:
        """The size of every rank's block of n items (for allgather and reduce_scatter)."""
        return [hi - lo for lo, hi in (block_range(n, self.size, q) for q in range(self.size))]

    def sum(self, local: np.ndarray) -> np.ndarray:
        """Σ over ranks of a float64 array (a new array; ``local`` is untouched)."""
        out = np.empty_like(local, dtype=np.float64)
        self.mpi.Allreduce(np.ascontiguousarray(local, dtype=np.float64), out, op=MPI.SUM)
        return out

    def sum_to_root(self, buf: np.ndarray) -> np.ndarray | None:
        """Σ over ranks of a contiguous float64 buffer, on rank 0 only (in place there;
        None elsewhere): half the traffic of :meth:`sum` for data only rank 0 reads."""
        return self.sum_to(buf, 0)

    def sum_to(self, buf: np.ndarray, rank: int) -> np.ndarray | None:
        """Σ over ranks of a contiguous float64 buffer, on ``rank`` only (in place there;
        None elsewhere)."""
        if self.size == 1:
            return buf
        if self.rank == rank:
            self.mpi.Reduce(MPI.IN_PLACE, buf, op=MPI.SUM, root=rank)
            return buf
        self.mpi.Reduce(buf, None, op=MPI.SUM, root=rank)
        return None

    def maximum(self, local: np.ndarray) -> np.ndarray:
        """Elementwise max over ranks of a float64 array (a new array)."""
        out = np.ascontiguousarray(local, dtype=np.float64).copy()
        self.mpi.Allreduce(MPI.IN_PLACE, out, op=MPI.MAX)
        return out

    def offset(self, count: int) -> int:
        """Σ of ``count`` over the lower ranks (where this rank's block of a rank-ordered
        concatenation starts)."""
        return int(self.mpi.exscan(int(count)) or 0)

    def gather_to_root(self, local: np.ndarray) -> np.ndarray | None:
        """Concatenation, in rank order, of every rank's 1-D array (float64 or int64, the same
        on all ranks; blocks of any length), on rank 0 only (None elsewhere)."""
        local = np.ascontiguousarray(local)
        counts = self.mpi.gather(local.size, root=0)
        if not self.is_root:
            self.mpi.Gatherv(local, None, root=0)
            return None
        out = np.empty(sum(counts), dtype=local.dtype)
        displs = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
        kind = MPI.DOUBLE if local.dtype == np.float64 else MPI.INT64_T
        self.mpi.Gatherv(local, [out, counts, displs, kind], root=0)
        return out

    def sum_scalar(self, value: float) -> float:
        """Σ over ranks of one number."""
        return float(self.sum(np.array([value]))[0])

    def sum_inplace(self, buf: np.ndarray) -> np.ndarray:
        """Σ over ranks of a contiguous float64 buffer, in place."""
        self.mpi.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf

    def reduce_scatter(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Σ over ranks of ``local``, of which this rank receives its block."""
        out = np.empty(counts[self.rank])
        self.mpi.Reduce_scatter(np.ascontiguousarray(local), out, recvcounts=counts, op=MPI.SUM)
        return out

    def allgather(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Concatenation, in rank order, of every rank's block."""
        out = np.empty(sum(counts))
        displs = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
        self.mpi.Allgatherv(np.ascontiguousarray(local), [out, counts, displs, MPI.DOUBLE])
        return out

    def bcast(self, obj):
        """Rank 0's (small, trusted) Python object on every rank."""
        return self.mpi.bcast(obj, root=0)

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on some rank."""
        return self.max_scalar(1.0 if flag else 0.0) > 0.0

    def max_scalar(self, value: float) -> float:
        """Max over ranks of one number."""
        buf = np.array([value], dtype=np.float64)
        self.mpi.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
        return float(buf[0])

    def first(self, obj):
        """The first non-None of the ranks' (small, trusted) objects, in rank order, on every
        rank (None if all are None): one rank's error message, known to all."""
        return next((o for o in self.mpi.allgather(obj) if o is not None), None)

    def node_size(self) -> int:
        """How many ranks of this communicator share this rank's node (and its memory)."""
        local = self.mpi.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_size()
        finally:
            local.Free()

    def barrier(self) -> None:
        self.mpi.Barrier()

    def abort(self, code: int) -> None:
        """End the whole job now (a failing rank must never hang the others)."""
        self.mpi.Abort(code)


def world() -> Comm:
    """The communicator of all ranks of the job."""
    return Comm(MPI.COMM_WORLD)


def wrap(comm=None) -> Comm:
    """A :class:`Comm` for an mpi4py communicator, a :class:`Comm` as it is, or the world's."""
    if comm is None:
        return world()
    return comm if isinstance(comm, Comm) else Comm(comm)


def library_version() -> str:
    """The MPI library's own version line."""
    return MPI.Get_library_version().replace("\0", "").splitlines()[0].strip()
