"""mlpar: recursive multilevel Levenberg–Marquardt training of wide shallow networks over MPI.

Layers, each importing only the ones listed before it: ``model`` (pure numpy maths),
``parallel`` (MPI and the distributed objectives), ``linalg`` (PETSc solves), ``optim``
(ratio test, driver, step rules), ``multilevel`` (AMG coarsening, hierarchy, recursion),
``io`` (HDF5 output and checkpoints), ``cli`` (the command line).  :func:`solve` is the
library entry point.
"""

__version__ = "0.1.0"


def solve(options=None, comm=None, on_iteration=None, petsc_options=None):
    """Train as ``options`` say and return the result (see :func:`mlpar.api.solve`)."""
    from mlpar.api import solve as _solve
    return _solve(options, comm, on_iteration, petsc_options)
