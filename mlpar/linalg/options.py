"""The PETSc options database: which options nothing has used (PETSc's ``-options_left``).

petsc4py 3.18 lists the options (``PETSc.Options().getAll()``) but does not say whether
PETSc has read them; the C function ``PetscOptionsUsed`` does, and is reached through
ctypes in the PETSc library this process has loaded (none is searched on disk).  Where
that library cannot be found, :func:`unused_options` returns None.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

from petsc4py import PETSc


def _loaded_petsc_libraries() -> list[str]:
    """Paths of the PETSc libraries mapped into this process (Linux; elsewhere none)."""
    try:
        with open("/proc/self/maps") as fh:
            return sorted({line.split()[-1] for line in fh
                           if "libpetsc" in line and line.split()[-1].startswith("/")})
    except OSError:
        return []


@lru_cache(maxsize=1)
def _options_used():
    """``PetscOptionsUsed`` of the loaded PETSc library, or None."""
    for path in [None, *_loaded_petsc_libraries()]:   # None: the process's global symbols
        try:
            function = ctypes.CDLL(path).PetscOptionsUsed
        except (OSError, AttributeError):
            continue
        function.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int))
        function.restype = ctypes.c_int
        return function
    return None


def unused_options() -> list[str] | None:
    """The options set in the database (``-name value``) that nothing has read so far, or
    None when this PETSc cannot tell."""
    used = _options_used()
    if used is None:
        return None
    out = []
    for name, value in PETSc.Options().getAll().items():
        flag = ctypes.c_int(0)
        if used(None, name.encode(), ctypes.byref(flag)) != 0:
            return None
        if not flag.value:
            out.append(f"-{name} {value}" if value else f"-{name}")
    return out
