"""mlpar: recursive multilevel Levenberg–Marquardt training of wide shallow networks over MPI."""

__version__ = "0.1.0"
