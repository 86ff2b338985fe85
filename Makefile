# mlpar — make setup | run | test | bench.   See README.md.
VENV    ?= .venv
PY      := $(VENV)/bin/python
MPIEXEC ?= mpiexec
NP      ?= 2
# Open MPI refuses root without these; more ranks than cores need oversubscription.
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe
MPIRUN  := $(MPIEXEC) --map-by :OVERSUBSCRIBE
PYTEST_MPI := -m mpi4py -m pytest -q -p no:cacheprovider --color=no --timeout=300 --timeout-method=thread

.PHONY: setup run test test-serial test-mpi bench peers bench-peers bench-startup
setup:
	@bash scripts/setup_debian.sh

run: setup
	@mkdir -p runs
	$(MPIRUN) -n $(NP) $(PY) -m mpi4py -m mlpar --out runs/default.h5 --force $(ARGS)
	$(PY) -m mlpar.plot runs/default.h5 --out runs/default.png

test: setup test-serial test-mpi

test-serial:
	$(PY) -m pytest -q --color=no --timeout=600 tests --ignore=tests/mpi

test-mpi:
	timeout 900 $(MPIRUN) -n 2 $(PY) $(PYTEST_MPI) tests/mpi
	timeout 900 $(MPIRUN) -n 3 $(PY) $(PYTEST_MPI) tests/mpi

bench: setup
	$(PY) scripts/bench_lm.py
	$(PY) scripts/bench_arc.py
	$(PY) scripts/bench_rlm.py

# Optional peers of the side-by-side benchmark, pinned (constraints-peers.txt: CPU torch).
peers: setup
	$(PY) -m pip install -q -c constraints-debian.txt -c constraints-peers.txt \
		torch torch-levenberg-marquardt

bench-peers: peers
	OMP_NUM_THREADS=1 $(PY) scripts/bench_peers.py $(ARGS)

# Start-up time of the mlpar command (part of bench-peers' whole-command times).
bench-startup: setup
	$(PY) scripts/bench_startup.py $(ARGS)
