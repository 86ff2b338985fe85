"""``python -m mlpar``: see :mod:`mlpar.cli.main`."""

from mlpar.cli.main import main_exit

if __name__ == "__main__":
    main_exit()
